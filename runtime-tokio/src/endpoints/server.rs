//! Serving the probe routes on a socket of their own, through the shared
//! HTTP server ([`crate::server`]) and its limits.

use std::io;
use std::net::SocketAddr;

use axum::Router;

use super::checks::HealthChecks;
use crate::server::{HttpLimits, HttpServer, Refusals, serve_app};

/// The task serving the probe routes; see [`serve`]. The same server as
/// every other vigil runs ([`HttpServer`]).
pub type HealthServer = HttpServer;

/// Serve [`checks.router()`](HealthChecks::router) on `addr` (port 0: the
/// system picks one) on a new task, with the default [`HttpLimits`]; the
/// address actually bound and the handle that stops it.
///
/// For a service that already runs axum, merge the router into its own
/// app instead. Kubernetes probes usually target a separate port so that
/// probes keep answering when the main listener is saturated.
pub async fn serve(addr: SocketAddr, checks: HealthChecks) -> io::Result<(SocketAddr, HealthServer)> {
    serve_with(addr, checks, HttpLimits::default()).await
}

/// [`serve`] with other limits. Fails with [`io::ErrorKind::InvalidInput`]
/// for limits that do not [validate](HttpLimits::validate).
pub async fn serve_with(
    addr: SocketAddr,
    checks: HealthChecks,
    limits: HttpLimits,
) -> io::Result<(SocketAddr, HealthServer)> {
    serve_router(addr, checks.router(), limits).await
}

/// Serve any router on `addr` the way [`serve`] does: the service and its
/// probe routes on one listener ([`Instance`](crate::instance::Instance)).
/// Answers are left as the routes make them (probe reports are text).
pub(crate) async fn serve_router(
    addr: SocketAddr,
    app: Router,
    limits: HttpLimits,
) -> io::Result<(SocketAddr, HealthServer)> {
    serve_app(addr, app, limits, Refusals::Text).await
}
