//! The control plane's operational API: the service catalog over HTTP, as
//! JSON.
//!
//! # Why
//!
//! The design asks for "a JSON operational API for every piece of
//! operational data; mutations require a token". The first data are the
//! catalog's: which instances run, where, and whether they are well. The
//! first mutations are registration and deregistration: a real instance
//! announces itself when it starts (its id, service, version, endpoints)
//! instead of being listed in the control node's configuration, and leaves
//! when it stops. Its heartbeats then renew the lease (the control plane
//! calls `Registry::renew` on every fresh heartbeat).
//!
//! # Routes
//!
//! | route | token | answer |
//! | --- | --- | --- |
//! | `POST /v1/instances` ([`RegisterInstance`], `Content-Type: application/json`) | write | `201` ([`Registered`], `Location`) when new; `200` when updated or renewed |
//! | `DELETE /v1/instances/{id}` | write | `204`; `404` if not registered |
//! | `GET /v1/instances?service=&version=&zone=&tag=&limit=&after=` | read | `200` [`InstanceList`]: one page, by id (`tag` repeatable: all required) |
//! | `GET /v1/instances/{id}` | read | `200` [`InstanceRecord`]; `404` |
//! | `GET /v1/services?limit=&after=` | read | `200` [`ServiceList`]: one page, by name |
//!
//! # Tokens
//!
//! Two scopes ([`ApiConfig`]): the **read token** reads, the **write
//! token** reads and writes. A server with no write token refuses every
//! mutation (`403`); with no token at all it refuses reads too. Only
//! [`ApiConfig::insecure_open`] (local development; logged as a warning)
//! opens everything without a token. Tokens go in `Authorization: Bearer`,
//! are checked before the body is read (an unauthenticated client cannot
//! make the server read anything) and compare in constant time.
//!
//! # Pages
//!
//! Lists come a page at a time: `limit` entries ([`DEFAULT_PAGE`] = 100
//! unless given, at most [`MAX_PAGE`] = 1000), those after `after` (an
//! instance id, a service name). `next` in the answer is the `after` of
//! the next page, absent on the last. The control driver builds the
//! records of one page only, and the answer is encoded on the HTTP task:
//! a large catalog neither blocks the driver nor makes a large answer.
//! [`ApiClient::all_instances`] reads every page.
//!
//! # Refusals
//!
//! Every refusal with a body is JSON, [`ErrorBody`]
//! (`{"error": reason, "kind": kind}`), including those axum and the
//! server's limits make before a handler runs:
//!
//! | status | kind | when |
//! | --- | --- | --- |
//! | 400 | `invalid_json` | the body is not JSON, or not a [`RegisterInstance`] (a missing or unknown field, a wrong type); the reason is serde's, with line and column |
//! | 400 | `invalid_registration` | the registry or the control plane refused it (empty or invalid names, zero weight, lease out of range, unknown class…), or its `health` or `liveness` endpoint is not an `http://` URL; the reason is its error's |
//! | 400 | `invalid_query` | an unknown query parameter, an id that is not a `u32`, a `limit` outside 1..=[`MAX_PAGE`] |
//! | 400 | `bad_request` | what axum refuses before the handler (a path that is not UTF-8 once decoded) |
//! | 401 | `unauthorized` | no token, or an unknown one (`WWW-Authenticate: Bearer`) |
//! | 403 | `forbidden` | a mutation with the read token; a mutation on a server without a write token; any request on a server without a token |
//! | 404 | `not_found` | unknown instance or route |
//! | 405 | `method_not_allowed` | e.g. `PUT /v1/instances` |
//! | 408 | `timeout` | the body did not arrive within [`HttpLimits::body_read_timeout`], or the request took over [`HttpLimits::request_timeout`] |
//! | 409 | `conflict` | the id is registered for another service |
//! | 413 | `too_large` | a body over [`ApiConfig::body_limit`] (by `Content-Length` at once, else as it is read) |
//! | 414 | `uri_too_long` | a request target over [`HttpLimits::max_uri_bytes`] |
//! | 415 | `unsupported_media_type` | a body not declared `application/json` (a web page's `text/plain` or form POST, or no `Content-Type`) |
//! | 503 | `overloaded` | [`HttpLimits::max_concurrent_requests`] requests in progress |
//! | 503 | `catalog_full` | the catalog's instance limit is reached, or all `max_services` known services are in use (a service with no instance and no watch is forgotten to make room; ids are never reused) |
//! | 503 | `unavailable` | the control plane's driver is not running |
//!
//! What hyper's parser refuses itself (a malformed head, a bad or
//! duplicate `Content-Length`, a head over
//! [`HttpLimits::max_header_bytes`]: `400`, `431`) gets a bare status line
//! without a body and the connection closed, and a head that does not
//! arrive within [`HttpLimits::header_read_timeout`] no answer at all; see
//! [`crate::server`] for why.
//!
//! # Limits
//!
//! The server is vigil's shared one ([`crate::server`]), with
//! [`ApiConfig::limits`]: head within 5 s (also the idle keep-alive
//! timeout), body within 10 s, request within 30 s, at most 512
//! connections (and the process's descriptor budget) and 128 requests at
//! once, heads up to 16 KiB, targets up to 4 KiB. The control node's
//! probes share none of it: an attack on the API cannot starve them
//! (`tests/attack-http.rs`).
//!
//! # Probes of registered instances
//!
//! A registration with a `health` endpoint
//! ([`HEALTH_ENDPOINT`](vigil_core::registry::HEALTH_ENDPOINT)) sets, in the
//! same step as it joins the catalog, the control driver's
//! [`HttpPeer`](crate::transport::HttpPeer) for its node: probes GET that
//! URL, liveness probes its [`LIVENESS_ENDPOINT`] instead if it has one (so
//! that a drained instance is not taken for a dead one). Without that, the
//! probes its class's active checks ask for would go out as datagrams to a
//! node the driver has no address for, and it would never become ready.
//! Both must parse as [`HttpTarget`](crate::probe::HttpTarget)s, else
//! `400` before anything changes. The peer goes when the instance does
//! (`DELETE`, or re-registered without a health endpoint or on another
//! node; one let go by the catalog at the next mutation). One instance per
//! node: peers are by node. A peer configured on the driver directly is
//! left alone unless a registration on its node replaces it.
//!
//! # How
//!
//! The server holds a [`MachineRef`] to the control plane's driver, not the
//! machine: every request runs one closure on the driver task, between two
//! inputs ([`MachineRef::with_machine_mut`] for mutations, which drains the
//! outputs, such as clients' endpoint updates, before answering). A
//! rejected registration changes nothing (the control plane's guarantee).
//! The server does not keep the driver alive: once its handle is dropped,
//! requests get `503`.
//!
//! Times in records (`lease.expires_in_ms`, `critical_for_ms`,
//! `registered_ms_ago`) are relative to the control node's clock at the
//! moment of answering.
//!
//! # Self-registration
//!
//! An [`Instance`](crate::Instance) given a
//! [`SelfRegistration`](crate::instance::SelfRegistration) registers
//! through [`ApiClient`] when it starts and deregisters when it shuts
//! down.

mod client;
mod model;
mod routes;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use vigil_core::control::ControlPlane;

pub use client::{ApiClient, ApiClientError, ApiResponse, DEFAULT_CLIENT_TIMEOUT, DEFAULT_MAX_ANSWER};
pub use model::{
    Endpoints, ErrorBody, InstanceList, InstanceRecord, Lease, MonitorCounts, MonitorRecord, Outcome,
    RegisterInstance, Registered, ServiceList, ServiceRecord,
};
pub use routes::{DEFAULT_PAGE, MAX_PAGE, MAX_TAG_FILTERS};

use crate::driver::MachineRef;
use crate::server::{HttpLimits, HttpServer, Refusals, serve_app, with_request_limits};

/// The endpoint name of an instance's liveness URL (`/livez`): liveness
/// probes go there instead of to its
/// [`HEALTH_ENDPOINT`](vigil_core::registry::HEALTH_ENDPOINT), so that a
/// drained instance (not ready) is not taken for a dead one.
pub const LIVENESS_ENDPOINT: &str = "liveness";

/// Default [`ApiConfig::body_limit`]: 64 KiB, far above any valid
/// registration (16 endpoints and 32 tags of 256 bytes each).
pub const DEFAULT_BODY_LIMIT: usize = 64 << 10;

/// Settings of the API server.
///
/// [`Default`] has no token and is not open: every request is refused
/// (`403`). Give it tokens ([`with_token`](Self::with_token),
/// [`with_tokens`](Self::with_tokens)), or, for local development only,
/// [`insecure_open`](Self::insecure_open).
#[derive(Clone, Default)]
pub struct ApiConfig {
    /// The bearer token reads need (the write token also reads); `None`:
    /// only the write token reads.
    pub read_token: Option<String>,
    /// The bearer token mutations need; `None`: mutations are refused
    /// (unless [`insecure_open`](Self::insecure_open)).
    pub write_token: Option<String>,
    /// No token needed for anything: anyone who reaches the API can read
    /// the catalog and register instances the control node then probes.
    /// Only for local development; logged as a warning at start. Cannot be
    /// combined with tokens.
    pub insecure_open: bool,
    /// Largest request body read; beyond it, `413`. Default
    /// [`DEFAULT_BODY_LIMIT`].
    pub body_limit: usize,
    /// Timeouts and bounds of the server ([`HttpLimits::default`]).
    pub limits: HttpLimits,
}

/// Why an [`ApiConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiConfigError {
    /// An empty (or blank) token would make `Authorization: Bearer ` a pass.
    #[error("the API {0} token must not be empty")]
    EmptyToken(&'static str),
    /// `insecure_open` with a token: say which is meant.
    #[error("ApiConfig::insecure_open cannot be combined with a token: drop one")]
    OpenWithToken,
    /// The HTTP limits are invalid.
    #[error(transparent)]
    Limits(#[from] crate::server::HttpLimitsError),
}

impl ApiConfig {
    /// Mutations and reads need `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        ApiConfig { write_token: Some(token.into()), ..ApiConfig::new() }
    }

    /// Reads need `read` (or `write`); mutations need `write`.
    pub fn with_tokens(read: impl Into<String>, write: impl Into<String>) -> Self {
        ApiConfig { read_token: Some(read.into()), write_token: Some(write.into()), ..ApiConfig::new() }
    }

    /// Everything open, without a token: for local development only.
    pub fn insecure_open() -> Self {
        ApiConfig { insecure_open: true, ..ApiConfig::new() }
    }

    /// No token, not open (every request refused), default limits.
    pub fn new() -> Self {
        ApiConfig {
            read_token: None,
            write_token: None,
            insecure_open: false,
            body_limit: DEFAULT_BODY_LIMIT,
            limits: HttpLimits::default(),
        }
    }

    /// Check the settings.
    pub fn validate(&self) -> Result<(), ApiConfigError> {
        for (which, token) in [("read", &self.read_token), ("write", &self.write_token)] {
            if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(ApiConfigError::EmptyToken(which));
            }
        }
        if self.insecure_open && (self.read_token.is_some() || self.write_token.is_some()) {
            return Err(ApiConfigError::OpenWithToken);
        }
        self.limits.validate()?;
        Ok(())
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("read_token", &self.read_token.as_ref().map(|_| "<redacted>"))
            .field("write_token", &self.write_token.as_ref().map(|_| "<redacted>"))
            .field("insecure_open", &self.insecure_open)
            .field("body_limit", &self.body_limit)
            .field("limits", &self.limits)
            .finish()
    }
}

/// The API's routes behind its request-level limits and JSON refusals,
/// without a listener: what [`serve_api`] serves on each connection, and
/// what in-process tests drive (`tower::ServiceExt::oneshot`). Connection
/// limits (header timeout, connection bound) come only with [`serve_api`].
pub fn app(control: MachineRef<ControlPlane>, config: &ApiConfig) -> Result<Router, ApiConfigError> {
    config.validate()?;
    Ok(with_request_limits(api_routes(control, config), &config.limits, Refusals::Json))
}

/// The bare routes, for `config`.
fn api_routes(control: MachineRef<ControlPlane>, config: &ApiConfig) -> Router {
    routes::router(routes::Api {
        control,
        read_token: config.read_token.as_deref().map(Arc::from),
        write_token: config.write_token.as_deref().map(Arc::from),
        open: config.insecure_open,
        body_limit: config.body_limit,
        http_peers: Arc::default(),
    })
}

/// Serve the API on `addr` (port 0: the system picks) for the control
/// plane behind `control` ([`DriverHandle::machine_ref`](crate::DriverHandle::machine_ref)),
/// on a new task; the address bound and the handle that stops it.
///
/// Fails with [`io::ErrorKind::InvalidInput`] for a config that does not
/// [validate](ApiConfig::validate), and when the socket cannot be bound.
pub async fn serve_api(
    addr: SocketAddr,
    control: MachineRef<ControlPlane>,
    config: ApiConfig,
) -> io::Result<(SocketAddr, ApiServer)> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if config.insecure_open {
        tracing::warn!(
            "INSECURE: control API open without a token (ApiConfig::insecure_open): anyone who reaches \
             it can read the catalog and register instances the control node will probe; local \
             development only"
        );
    } else if config.write_token.is_none() {
        tracing::warn!("control API without a write token: every mutation is refused");
    }
    let routes = api_routes(control, &config);
    let (local_addr, server) = serve_app(addr, routes, config.limits, Refusals::Json).await?;
    tracing::info!(%local_addr, "control API serving");
    Ok((local_addr, ApiServer(server)))
}

/// The task serving the API; dropping it stops the server (gracefully, in
/// the background).
#[derive(Debug)]
pub struct ApiServer(HttpServer);

impl ApiServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// The server's counters: connections accepted, refused, closed.
    pub fn stats(&self) -> crate::server::HttpServerStats {
        self.0.stats()
    }

    /// The most connections it holds at once
    /// ([`HttpServer::max_connections`]).
    pub fn max_connections(&self) -> usize {
        self.0.max_connections()
    }

    /// Stop accepting connections, let requests in flight finish, and wait
    /// for the task to end.
    pub async fn shutdown(self) -> io::Result<()> {
        self.0.shutdown().await
    }

    /// Stop at once: connections in flight are cut.
    pub fn abort(&self) {
        self.0.abort();
    }
}
