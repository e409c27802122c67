//! Every HTTP server vigil runs, with one set of limits: the control API
//! ([`serve_api`](crate::serve_api)), the health endpoints
//! ([`endpoints::serve`](crate::endpoints::serve)) and an
//! [`Instance`](crate::Instance)'s listener all serve through
//! one accept loop and one tower stack, configured by [`HttpLimits`].
//!
//! # Why
//!
//! A server that keeps every connection it is offered for as long as the
//! client likes can be emptied of descriptors by anyone who can reach it:
//! idle connections, headers sent one line every ten seconds (slowloris),
//! bodies sent a byte at a time. In the control node that is worse than a
//! slow API: the control node's own outgoing probes need descriptors too,
//! and a probe that cannot open a socket fails, so an attacker who never
//! authenticates could get a healthy instance declared failed and
//! restarted. Hence:
//!
//! - every phase of a request has a deadline (hyper's header read timeout,
//!   which also bounds idle keep-alive time; a deadline on the whole body;
//!   a deadline on the whole request);
//! - connections are bounded per server ([`HttpLimits::max_connections`])
//!   and for the whole process, at a share of `RLIMIT_NOFILE` that keeps a
//!   reserve for what the node does itself (probes, datagram sockets,
//!   files): [`connection_budget`];
//! - requests are bounded per server
//!   ([`HttpLimits::max_concurrent_requests`]): beyond it, `503` at once
//!   rather than a queue;
//! - heads, URIs and bodies have a size bound.
//!
//! The prober ([`crate::probe`]) shares none of this: each probe opens its
//! own connection, bounded only by the driver's
//! [`TransportConfig::max_in_flight`](crate::TransportConfig::max_in_flight),
//! out of the descriptors the budget leaves over.
//!
//! # How
//!
//! The accept loop is ours (as in axum's "serve with hyper" examples) so
//! that it can refuse connections beyond the bounds: a connection over a
//! bound is accepted and closed at once (counted in
//! [`HttpServerStats::refused`]), so that the client hears a close rather
//! than waiting in the kernel's backlog. Each accepted connection is served
//! by `hyper::server::conn::http1` with [`TokioTimer`], and every request
//! goes through a tower stack (outermost first): the refusal renderer
//! (JSON for the API), the URI bound (`414`), load shedding on the
//! concurrency bound (`503`), the request deadline (`408`,
//! `tower_http::timeout::TimeoutLayer`), the body size bound (`413`,
//! `tower_http::limit::RequestBodyLimitLayer`) and the body deadline
//! (`tower_http::timeout::RequestBodyDeadlineLayer`: the body stream fails,
//! and the handler answers `408`).
//!
//! # What hyper answers itself
//!
//! Some requests never reach the stack: hyper's HTTP/1 parser refuses them
//! while reading the head and writes its own answer, a bare status line
//! with no body, then closes the connection. There is no hook to give those
//! a body (hyper 1 `Conn::on_parse_error` writes a fixed `MessageHead`):
//!
//! | status | when |
//! | --- | --- |
//! | `400` | a malformed request line or header, a bad or duplicate `Content-Length`, both `Content-Length` and `Transfer-Encoding` |
//! | `431` | a head over [`HttpLimits::max_header_bytes`], or more than [`HttpLimits::max_headers`] headers |
//! | `414` | a URI over 65 534 bytes that still fits the head bound (the stack answers, with a body, for URIs over [`HttpLimits::max_uri_bytes`]) |
//! | none | a head not complete within [`HttpLimits::header_read_timeout`]: the connection is closed without an answer |

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyDeadlineLayer, TimeoutLayer};

/// Default [`HttpLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`HttpLimits::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`HttpLimits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`HttpLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default [`HttpLimits::max_concurrent_requests`].
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 128;
/// Default [`HttpLimits::max_header_bytes`].
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
/// Default [`HttpLimits::max_headers`].
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default [`HttpLimits::max_uri_bytes`].
pub const DEFAULT_MAX_URI_BYTES: usize = 4 << 10;
/// Default [`HttpLimits::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// The smallest head bound hyper accepts (its read buffer's minimum).
pub const MIN_HEADER_BYTES: usize = 8 << 10;

/// Descriptors kept out of the connection budget at least (unless the
/// limit is so low that this would be more than half of it): see
/// [`connection_budget`].
pub const MIN_DESCRIPTOR_RESERVE: u64 = 256;

/// The limits of one HTTP server. [`Default`] gives the documented
/// defaults (the `DEFAULT_*` constants of this module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest time a client may take to send a request head, from the
    /// moment the server waits for one: on a new connection, and between
    /// two requests of a kept-alive connection, so it is also the idle
    /// timeout. Past it, the connection is closed (without an answer:
    /// hyper sends none). Default 5 s: a head is one packet.
    pub header_read_timeout: Duration,
    /// Whether a connection may carry several requests. Default `true`.
    pub keep_alive: bool,
    /// Longest time a request body may take, in all, from the moment the
    /// handler starts reading it: past it the read fails and the handler
    /// answers `408` (the API does). Default 10 s: a valid body is at most
    /// kilobytes.
    pub body_read_timeout: Duration,
    /// Longest time a request may take, head excluded, body and handler
    /// included: past it, `408`. Default 30 s. Health checks longer than
    /// this are cut too (probers give up long before).
    pub request_timeout: Duration,
    /// Most connections open at once on this server; beyond it a new one
    /// is closed at once. Also capped for the whole process by
    /// [`connection_budget`]. Default 512.
    pub max_connections: usize,
    /// Most requests handled at once on this server; beyond it, `503` at
    /// once (never a queue). Default 128.
    pub max_concurrent_requests: usize,
    /// Largest request head (request line and headers), in bytes: beyond
    /// it, `431` from hyper. Default 16 KiB; at least [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Most headers in one request: beyond it, `431` from hyper. Default 64.
    pub max_headers: usize,
    /// Longest request target (path and query), in bytes: beyond it, `414`.
    /// Default 4 KiB.
    pub max_uri_bytes: usize,
    /// Largest request body any route may read: beyond it, `413`. Default
    /// 1 MiB; a route may read less (the API reads at most
    /// [`ApiConfig::body_limit`](crate::ApiConfig::body_limit)).
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive: true,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Why [`HttpLimits`] were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpLimitsError {
    /// A timeout is zero (which would refuse everything).
    #[error("HTTP limit {0} must be more than zero")]
    ZeroTimeout(&'static str),
    /// A bound is zero.
    #[error("HTTP limit {0} must be at least 1")]
    ZeroBound(&'static str),
    /// `max_header_bytes` under hyper's minimum.
    #[error("HTTP limit max_header_bytes must be at least {MIN_HEADER_BYTES}, not {0}")]
    HeaderBoundTooSmall(usize),
}

impl HttpLimits {
    /// Check every limit.
    pub fn validate(&self) -> Result<(), HttpLimitsError> {
        for (name, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(HttpLimitsError::ZeroTimeout(name));
            }
        }
        for (name, n) in [
            ("max_connections", self.max_connections),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_headers", self.max_headers),
            ("max_uri_bytes", self.max_uri_bytes),
            ("max_body_bytes", self.max_body_bytes),
        ] {
            if n == 0 {
                return Err(HttpLimitsError::ZeroBound(name));
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(HttpLimitsError::HeaderBoundTooSmall(self.max_header_bytes));
        }
        Ok(())
    }
}

/// How many incoming connections all of a process's servers may hold at
/// once, given its soft `RLIMIT_NOFILE` of `soft`: `soft` less a reserve
/// of a quarter of it, at least [`MIN_DESCRIPTOR_RESERVE`] (but never more
/// than half): 1 024 → 768, 4 096 → 3 072, 65 536 → 49 152, 256 → 128.
///
/// The reserve is for what the node does itself: the control driver's
/// probes and calls (one descriptor each while in flight), its datagram
/// sockets, files, and the listeners.
pub fn connection_budget(soft: u64) -> usize {
    let reserve = (soft / 4).max(MIN_DESCRIPTOR_RESERVE.min(soft / 2));
    usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX).max(1)
}

/// The process's soft `RLIMIT_NOFILE`, if it can be read.
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _hard)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The budget used where the limit cannot be read.
const FALLBACK_BUDGET: usize = 768;

/// The process-wide connection permits, sized by [`connection_budget`] of
/// the limit in force when the first server starts.
fn process_permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let budget = descriptor_limit().map_or(FALLBACK_BUDGET, connection_budget);
        tracing::debug!(budget, "incoming HTTP connection budget for the process");
        Arc::new(Semaphore::new(budget.min(Semaphore::MAX_PERMITS)))
    })
}

/// How a server renders the refusals its limits make (`408`, `413`, `414`,
/// `503`), and whether it rewrites the refusals of its routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusals {
    /// Plain text; a route's answers are left as they are (the health
    /// endpoints' reports, a user's routes).
    Text,
    /// The API's `{"error", "kind"}`: every 4xx/5xx answer that is not JSON
    /// already (axum's rejections, tower-http's refusals) is rewritten.
    Json,
}

/// The body of a JSON refusal; the same shape as
/// [`ErrorBody`](crate::api::ErrorBody).
#[derive(Serialize)]
struct Refusal<'a> {
    error: &'a str,
    kind: &'a str,
}

/// The `kind` of a refusal with `status` whose handler gave none.
pub(crate) fn kind_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// A refusal in `style`.
pub(crate) fn refusal(style: Refusals, status: StatusCode, kind: &str, reason: &str) -> Response {
    match style {
        Refusals::Text => (status, format!("{reason}\n")).into_response(),
        Refusals::Json => {
            let body = serde_json::to_vec(&Refusal { error: reason, kind }).unwrap_or_default();
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
                .into_response()
        }
    }
}

/// Longest reason kept from a non-JSON refusal that is rewritten.
const MAX_REWRITTEN_REASON: usize = 1024;

/// Rewrite a 4xx/5xx answer that is not JSON into `{"error", "kind"}`,
/// keeping its status and headers, its text as the reason (or the status's
/// name when it has none).
async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, MAX_REWRITTEN_REASON).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let reason = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_ascii_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&Refusal { error: &reason, kind: kind_of(status) }).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// `414` for a request target over the bound.
async fn bound_uri(State((max, style)): State<(usize, Refusals)>, request: Request, next: Next) -> Response {
    let len = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > max {
        return refusal(
            style,
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            &format!("the request target is {len} bytes; at most {max}"),
        );
    }
    next.run(request).await
}

/// `app` behind the request-level limits: the service every connection
/// runs. Also what in-process tests drive (`tower::ServiceExt::oneshot`).
pub(crate) fn with_request_limits(app: Router, limits: &HttpLimits, style: Refusals) -> Router {
    let overloaded = move |_: tower::BoxError| async move {
        refusal(
            style,
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in progress; try again shortly",
        )
    };
    let stack = ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state((limits.max_uri_bytes, style), bound_uri))
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(RequestBodyDeadlineLayer::new(limits.body_read_timeout))
        .service(app);
    let stacked = Router::new().fallback_service(stack);
    match style {
        Refusals::Text => stacked,
        Refusals::Json => stacked.layer(axum::middleware::map_response(json_refusals)),
    }
}

/// Counters of one server.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: AtomicU64,
}

/// What a server has done so far ([`HttpServer::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpServerStats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections closed at once because a bound was reached.
    pub refused: u64,
    /// Served connections that have ended (by the client, a timeout, or an
    /// error).
    pub closed: u64,
}

impl HttpServerStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.accepted.saturating_sub(self.closed)
    }
}

/// Serve `app` on `addr` (port 0: the system picks) with `limits`, on a
/// new task; the address bound and the handle that stops it.
pub(crate) async fn serve_app(
    addr: SocketAddr,
    app: Router,
    limits: HttpLimits,
    style: Refusals,
) -> io::Result<(SocketAddr, HttpServer)> {
    limits.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let local_addr = listener.local_addr()?;
    let app = with_request_limits(app, &limits, style);
    let (stop, stopped) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let max_connections = limits.max_connections.min(process_permits().available_permits().max(1));
    let task = tokio::spawn(accept_loop(listener, app, limits, stopped, Arc::clone(&counters)));
    tracing::debug!(%local_addr, "http serving");
    Ok((local_addr, HttpServer { local_addr, stop: Some(stop), task, counters, max_connections }))
}

/// The kernel's queue of connections completed but not yet accepted
/// (capped by `net.core.somaxconn`). tokio's default, 128, overflowed under
/// a flood of 400 connections: Linux then drops the client's final ACK
/// (`tcp_abort_on_overflow = 0`), and a client that sends nothing believes
/// it is connected to a server that never saw it. With room in the queue
/// the accept loop sees every connection, and refuses those over the bound
/// at once.
const LISTEN_BACKLOG: u32 = 1024;

/// How long to pause accepting after an accept error (out of descriptors,
/// most likely), so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    mut stopped: watch::Receiver<bool>,
    counters: Arc<Counters>,
) -> io::Result<()> {
    let own = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let process = Arc::clone(process_permits());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(limits.keep_alive)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_headers(limits.max_headers);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; pausing");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let permits = match (Arc::clone(&own).try_acquire_owned(), Arc::clone(&process).try_acquire_owned()) {
                    (Ok(own), Ok(process)) => (own, process),
                    _ => {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "connection bound reached; closed");
                        drop(stream);
                        continue;
                    }
                };
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                connections.spawn(serve_connection(connection, stopped.clone(), permits, Arc::clone(&counters)));
            }
        }
    }
    // Stop accepting; let the connections finish what they are doing
    // (each bounded by the timeouts).
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

type Connection =
    hyper::server::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, TowerToHyperService<Router>>;

async fn serve_connection(
    connection: Connection,
    mut stopped: watch::Receiver<bool>,
    permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    counters: Arc<Counters>,
) {
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "http connection ended with an error");
    }
    counters.closed.fetch_add(1, Ordering::Relaxed);
    drop(permits);
}

/// A running HTTP server (the API, health endpoints, an instance).
///
/// Dropping the handle stops the server too (gracefully, in the
/// background), so a server never outlives its owner by accident.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: JoinHandle<io::Result<()>>,
    counters: Arc<Counters>,
    max_connections: usize,
}

impl HttpServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What it has done so far.
    pub fn stats(&self) -> HttpServerStats {
        HttpServerStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            closed: self.counters.closed.load(Ordering::Relaxed),
        }
    }

    /// The most connections it holds at once: its
    /// [`HttpLimits::max_connections`], or less if the process's
    /// [`connection_budget`] left less when it started.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Stop accepting connections, let the requests in flight finish
    /// (bounded by the request timeout), and wait for the task to end.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => Err(io::Error::other(format!("http server panicked: {join}"))),
            Err(join) => Err(io::Error::other(format!("http server task ended: {join}"))),
        }
    }

    /// Stop at once: connections in flight are cut.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_reserve() {
        assert_eq!(connection_budget(1024), 768);
        assert_eq!(connection_budget(4096), 3072);
        assert_eq!(connection_budget(65_536), 49_152);
        assert_eq!(connection_budget(256), 128);
        assert_eq!(connection_budget(2), 1);
        assert_eq!(connection_budget(0), 1);
    }

    #[test]
    fn limits_validate() {
        assert_eq!(HttpLimits::default().validate(), Ok(()));
        let zero = HttpLimits { request_timeout: Duration::ZERO, ..HttpLimits::default() };
        assert_eq!(zero.validate(), Err(HttpLimitsError::ZeroTimeout("request_timeout")));
        let small = HttpLimits { max_header_bytes: 100, ..HttpLimits::default() };
        assert_eq!(small.validate(), Err(HttpLimitsError::HeaderBoundTooSmall(100)));
        let none = HttpLimits { max_connections: 0, ..HttpLimits::default() };
        assert_eq!(none.validate(), Err(HttpLimitsError::ZeroBound("max_connections")));
    }
}
