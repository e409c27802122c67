//! Serving the probe routes on a socket of their own.

use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::checks::HealthChecks;

/// Serve [`checks.router()`](HealthChecks::router) on `addr` (port 0: the
/// system picks one) on a new task; the address actually bound and the
/// handle that stops it.
///
/// For a service that already runs axum, merge the router into its own
/// app instead. Kubernetes probes usually target a separate port so that
/// probes keep answering when the main listener is saturated.
pub async fn serve(addr: SocketAddr, checks: HealthChecks) -> io::Result<(SocketAddr, HealthServer)> {
    serve_router(addr, checks.router()).await
}

/// Serve any router on `addr` the way [`serve`] does: the service and its
/// probe routes on one listener ([`Instance`](crate::instance::Instance)).
pub(crate) async fn serve_router(addr: SocketAddr, app: Router) -> io::Result<(SocketAddr, HealthServer)> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // Either `shutdown` sent, or the handle was dropped: stop.
                let _ = stopped.await;
            })
            .await
    });
    tracing::debug!(%local_addr, "http serving");
    Ok((local_addr, HealthServer { local_addr, stop: Some(stop), task }))
}

/// The task serving the probe routes; see [`serve`].
///
/// Dropping the handle stops the server too (gracefully, in the
/// background), so a server never outlives its owner by accident.
#[derive(Debug)]
pub struct HealthServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl HealthServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting connections, let the requests in flight finish
    /// (bounded by the checks' timeouts), and wait for the task to end.
    /// Wrap in `tokio::time::timeout` to bound the wait on slow clients.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => Err(io::Error::other(format!("health server panicked: {join}"))),
            Err(join) => Err(io::Error::other(format!("health server task ended: {join}"))),
        }
    }

    /// Stop at once: connections in flight are cut.
    pub fn abort(&self) {
        self.task.abort();
    }
}
