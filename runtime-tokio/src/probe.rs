//! Active probes over real sockets: an HTTP GET ([`probe_http`]) and a TCP
//! connect ([`probe_tcp`]), each bounded by a timeout.
//!
//! # Why
//!
//! The health monitor in `vigil-core` decides from probe results; it never
//! opens a socket. This module is the real prober that produces those
//! results, the counterpart of the simulator's simulated request. Its
//! [`ProbeOutcome`] is a plain enum so that mapping it onto core's probe
//! result type is one `match`.
//!
//! # Semantics
//!
//! The timeout covers everything: name resolution, connect, sending the
//! request and receiving the response head. A probe never takes longer than
//! its timeout (plus scheduling delay), whatever the peer does: a hung peer
//! is the case this exists for.
//!
//! | what happened | outcome |
//! | --- | --- |
//! | HTTP response 200–399 (Kubernetes counts redirects as success) | [`ProbeOutcome::Success`] with the latency |
//! | TCP connect succeeded | [`ProbeOutcome::Success`] with the latency |
//! | HTTP response outside 200–399 | [`ProbeOutcome::HttpStatus`] |
//! | connect refused (nothing listens: crashed, stopped) | [`ProbeOutcome::Refused`] |
//! | no answer within the timeout (hung, black-holed) | [`ProbeOutcome::Timeout`] |
//! | any other error (reset, malformed response, resolution failure) | [`ProbeOutcome::Io`] |
//!
//! Latency runs from the start of the probe to the response head (HTTP) or
//! the established connection (TCP), on [`tokio::time::Instant`]. The HTTP
//! probe does not read the body: the status is the verdict. Each probe uses
//! a new connection (`Connection: close`), so a probe measures what a new
//! client would see and no pool hides a dead listener.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use axum::http::uri::{PathAndQuery, Uri};
use axum::http::{Method, Request, header};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The `User-Agent` of HTTP probes.
pub const USER_AGENT: &str = concat!("vigil-probe/", env!("CARGO_PKG_VERSION"));

/// The `User-Agent` of service calls a driver makes for a client
/// ([`HttpPeer::service`](crate::HttpPeer::service)).
pub const CLIENT_USER_AGENT: &str = concat!("vigil-client/", env!("CARGO_PKG_VERSION"));

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// HTTP 2xx or 3xx, or a TCP connection established, after `latency`.
    Success {
        /// From the start of the probe to the response head or connection.
        latency: Duration,
    },
    /// The connection was refused: nothing listens there.
    Refused,
    /// No answer within the timeout: the peer is unresponsive.
    Timeout,
    /// An HTTP response whose status is not 2xx or 3xx.
    HttpStatus(u16),
    /// Any other failure, described.
    Io(String),
}

impl ProbeOutcome {
    /// Whether the probe succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeOutcome::Success { .. })
    }

    /// The latency of a success.
    pub fn latency(&self) -> Option<Duration> {
        match self {
            ProbeOutcome::Success { latency } => Some(*latency),
            _ => None,
        }
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Success { latency } => write!(f, "success in {latency:?}"),
            ProbeOutcome::Refused => f.write_str("connection refused"),
            ProbeOutcome::Timeout => f.write_str("timeout"),
            ProbeOutcome::HttpStatus(status) => write!(f, "HTTP status {status}"),
            ProbeOutcome::Io(error) => write!(f, "I/O error: {error}"),
        }
    }
}

/// Why a probe target was refused. Fix the target: no probe can succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not a URL or `host:port/path`.
    #[error("invalid probe URL {url:?}: {reason}")]
    InvalidUrl {
        /// The text given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// Only `http` is supported (probes run on a trusted network; no TLS).
    #[error("unsupported scheme {0:?} in probe URL: only http is supported")]
    UnsupportedScheme(String),
    /// The path must start with `/` and be a valid request target.
    #[error("invalid probe path {0:?}: it must start with '/' and be a valid URL path")]
    InvalidPath(String),
}

/// Where an HTTP probe goes: a host and port, and the path to GET.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpTarget {
    /// Host as written (brackets stripped from IPv6 literals): what to
    /// connect to.
    host: String,
    port: u16,
    /// The `Host` header: host, and port if not 80, as in the URL.
    authority: String,
    path: PathAndQuery,
}

impl HttpTarget {
    /// `path` (such as `/readyz`) at `addr`.
    pub fn new(addr: SocketAddr, path: &str) -> Result<Self, TargetError> {
        Ok(HttpTarget {
            host: addr.ip().to_string(),
            port: addr.port(),
            authority: addr.to_string(),
            path: parse_path(path)?,
        })
    }

    /// Parse `http://host[:port]/path[?query]`, or the same without
    /// `http://`. The port defaults to 80 and the path to `/`. A host name
    /// is resolved at each probe, within its timeout.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let invalid = |reason: String| TargetError::InvalidUrl { url: url.to_owned(), reason };
        let full = if url.contains("://") { url.to_owned() } else { format!("http://{url}") };
        let uri: Uri = full.parse().map_err(|e: axum::http::uri::InvalidUri| invalid(e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(TargetError::UnsupportedScheme(other.to_owned())),
            None => return Err(invalid("no scheme".to_owned())),
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host".to_owned()))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported".to_owned()));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("no host".to_owned()));
        }
        let path = match uri.path_and_query() {
            Some(path) if path.as_str().starts_with('/') => path.clone(),
            Some(path) if path.as_str().is_empty() => PathAndQuery::from_static("/"),
            Some(path) => return Err(TargetError::InvalidPath(path.as_str().to_owned())),
            None => PathAndQuery::from_static("/"),
        };
        Ok(HttpTarget {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path,
        })
    }

    /// The path and query to GET.
    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// The host to connect to (an IP literal or a name).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header: host, and port if not 80.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }
}

impl FromStr for HttpTarget {
    type Err = TargetError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        HttpTarget::parse(url)
    }
}

impl fmt::Display for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

fn parse_path(path: &str) -> Result<PathAndQuery, TargetError> {
    let invalid = || TargetError::InvalidPath(path.to_owned());
    if !path.starts_with('/') {
        return Err(invalid());
    }
    PathAndQuery::from_str(path).map_err(|_| invalid())
}

/// GET `target` with a new connection; the whole probe is bounded by
/// `timeout`. See the [module docs](self) for the outcomes.
pub async fn probe_http(target: &HttpTarget, timeout: Duration) -> ProbeOutcome {
    get_with(target, timeout, USER_AGENT).await
}

/// [`probe_http`] with another `User-Agent`: the service calls a driver
/// makes for a client are the same GET, told apart in the instance's logs.
pub(crate) async fn get_with(
    target: &HttpTarget,
    timeout: Duration,
    user_agent: &'static str,
) -> ProbeOutcome {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, http_get(target, start, user_agent)).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => ProbeOutcome::Timeout,
    };
    tracing::trace!(%target, %outcome, user_agent, "http get");
    outcome
}

/// Open a TCP connection to `addr` and close it; the probe is bounded by
/// `timeout`. See the [module docs](self) for the outcomes.
pub async fn probe_tcp(addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => ProbeOutcome::Success { latency: start.elapsed() },
        Ok(Err(error)) => io_outcome(&error),
        Err(_elapsed) => ProbeOutcome::Timeout,
    };
    tracing::trace!(%addr, %outcome, "tcp probe");
    outcome
}

pub(crate) fn io_outcome(error: &io::Error) -> ProbeOutcome {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => ProbeOutcome::Refused,
        io::ErrorKind::TimedOut => ProbeOutcome::Timeout,
        _ => ProbeOutcome::Io(error.to_string()),
    }
}

/// Aborts the connection task when the probe ends, whichever way.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn http_get(target: &HttpTarget, start: Instant, user_agent: &'static str) -> ProbeOutcome {
    let stream = match connect(target).await {
        Ok(stream) => stream,
        Err(error) => return io_outcome(&error),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => return ProbeOutcome::Io(error.to_string()),
        };
    // The connection does the socket I/O; it runs beside the request and
    // dies with the probe (timeout included).
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = Request::builder()
        .method(Method::GET)
        .uri(target.path.clone())
        .header(header::HOST, target.authority.as_str())
        .header(header::USER_AGENT, user_agent)
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(request) => request,
        // Every part was validated when the target was built.
        Err(error) => return ProbeOutcome::Io(format!("could not build the request: {error}")),
    };
    match sender.send_request(request).await {
        Ok(response) => {
            let latency = start.elapsed();
            let status = response.status();
            if status.is_success() || status.is_redirection() {
                ProbeOutcome::Success { latency }
            } else {
                ProbeOutcome::HttpStatus(status.as_u16())
            }
        }
        Err(error) => {
            // hyper wraps socket errors; a refusal cannot happen after the
            // connect, so whatever it is, it is an I/O failure.
            ProbeOutcome::Io(error.to_string())
        }
    }
}

/// Connect to the target's host: an IP literal directly, a name through
/// the resolver, trying each address in turn (the last error wins).
pub(crate) async fn connect(target: &HttpTarget) -> io::Result<TcpStream> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return TcpStream::connect(SocketAddr::new(ip, target.port)).await;
    }
    let mut last_error =
        io::Error::new(io::ErrorKind::NotFound, format!("{} resolved to no address", target.host));
    for addr in tokio::net::lookup_host((target.host.as_str(), target.port)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/readyz?verbose").unwrap();
        assert_eq!((t.host(), t.port(), t.path()), ("127.0.0.1", 8080, "/readyz?verbose"));
        assert_eq!(t.to_string(), "http://127.0.0.1:8080/readyz?verbose");

        let t = HttpTarget::parse("localhost:9/livez").unwrap();
        assert_eq!((t.host(), t.port(), t.path()), ("localhost", 9, "/livez"));

        let t: HttpTarget = "http://[::1]:81".parse().unwrap();
        assert_eq!((t.host(), t.port(), t.path()), ("::1", 81, "/"));
        assert_eq!(t.to_string(), "http://[::1]:81/");

        let t = HttpTarget::parse("http://example.invalid").unwrap();
        assert_eq!((t.port(), t.path()), (80, "/"));

        let t = HttpTarget::new("[::1]:8080".parse().unwrap(), "/healthz").unwrap();
        assert_eq!((t.host(), t.port()), ("::1", 8080));
        assert_eq!(t.to_string(), "http://[::1]:8080/healthz");
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(
            matches!(HttpTarget::parse("https://a/b"), Err(TargetError::UnsupportedScheme(s)) if s == "https")
        );
        assert!(matches!(HttpTarget::parse("http://u:p@a/b"), Err(TargetError::InvalidUrl { .. })));
        assert!(matches!(HttpTarget::parse("http:// bad"), Err(TargetError::InvalidUrl { .. })));
        assert!(matches!(HttpTarget::parse(""), Err(TargetError::InvalidUrl { .. })));
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(HttpTarget::new(addr, "livez"), Err(TargetError::InvalidPath(_))));
        assert!(matches!(HttpTarget::new(addr, "/a b"), Err(TargetError::InvalidPath(_))));
        assert!(matches!(HttpTarget::new(addr, ""), Err(TargetError::InvalidPath(_))));
    }
}
