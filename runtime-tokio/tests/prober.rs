//! The real prober on loopback: each way a peer can be well or ill maps to
//! its outcome, and no probe outlasts its timeout.

mod loopback;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::get;
use tokio::time::Instant;
use vigil_tokio::endpoints::{CheckKind, HealthChecks, HealthServer, serve};
use vigil_tokio::{HttpTarget, ProbeOutcome, probe_http, probe_tcp};

use loopback::{closed_port, hung_server, raw_server};

/// The probes' timeout in these tests: short, so they are fast.
const TIMEOUT: Duration = Duration::from_millis(250);

/// What a loaded machine may add to a deadline before a test calls it late.
const MARGIN: Duration = Duration::from_secs(1);

fn target(addr: SocketAddr, path: &str) -> HttpTarget {
    HttpTarget::new(addr, path).expect("valid target")
}

/// A health server whose `/livez` passes and `/readyz` fails.
async fn health_server() -> (SocketAddr, HealthServer) {
    let checks = HealthChecks::new();
    checks.add("db", CheckKind::Readiness, || async { Err::<(), _>("down") }).unwrap();
    checks.mark_started();
    serve("127.0.0.1:0".parse().unwrap(), checks).await.expect("serve")
}

/// Probe, and check the probe ended within the timeout plus the margin.
async fn timed_http(target: &HttpTarget) -> (ProbeOutcome, Duration) {
    let began = Instant::now();
    let outcome = probe_http(target, TIMEOUT).await;
    let took = began.elapsed();
    assert!(took < TIMEOUT + MARGIN, "{target}: the probe outlasted its timeout: {took:?}");
    (outcome, took)
}

#[tokio::test]
async fn a_passing_health_endpoint_is_a_success_with_its_latency() {
    let (addr, _server) = health_server().await;
    let (outcome, took) = timed_http(&target(addr, "/livez")).await;
    let latency = outcome.latency().unwrap_or_else(|| panic!("expected success, got {outcome}"));
    assert!(outcome.is_success());
    assert!(latency > Duration::ZERO && latency <= took, "latency {latency:?}, probe took {took:?}");
}

#[tokio::test]
async fn a_failing_health_endpoint_is_its_status() {
    let (addr, _server) = health_server().await;
    assert_eq!(timed_http(&target(addr, "/readyz")).await.0, ProbeOutcome::HttpStatus(503));
}

#[tokio::test]
async fn statuses_map_as_kubernetes_does() {
    let app = Router::new()
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route("/error", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/moved", get(|| async { Redirect::temporary("/elsewhere") }))
        .route("/no-content", get(|| async { StatusCode::NO_CONTENT }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    assert_eq!(timed_http(&target(addr, "/teapot")).await.0, ProbeOutcome::HttpStatus(418));
    assert_eq!(timed_http(&target(addr, "/error")).await.0, ProbeOutcome::HttpStatus(500));
    assert_eq!(timed_http(&target(addr, "/missing")).await.0, ProbeOutcome::HttpStatus(404));
    assert!(timed_http(&target(addr, "/moved")).await.0.is_success(), "3xx is a success, not followed");
    assert!(timed_http(&target(addr, "/no-content")).await.0.is_success());
    server.abort();
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let addr = closed_port().await;
    assert_eq!(timed_http(&target(addr, "/livez")).await.0, ProbeOutcome::Refused);
    assert_eq!(probe_tcp(addr, TIMEOUT).await, ProbeOutcome::Refused);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_on_time() {
    let (addr, server) = hung_server().await;
    let (outcome, took) = timed_http(&target(addr, "/livez")).await;
    assert_eq!(outcome, ProbeOutcome::Timeout);
    assert!(took >= TIMEOUT, "gave up before the timeout: {took:?}");
    // The connection itself succeeds: the kernel accepts for the hung
    // process. That is why TCP probes cannot see a hang.
    assert!(probe_tcp(addr, TIMEOUT).await.is_success());
    server.abort();
}

#[tokio::test]
async fn tcp_connect_to_an_open_port_is_a_success() {
    let (addr, _server) = health_server().await;
    let outcome = probe_tcp(addr, TIMEOUT).await;
    assert!(outcome.is_success(), "{outcome}");
    assert!(outcome.latency().unwrap() < TIMEOUT + MARGIN);
}

#[tokio::test]
async fn a_stopped_server_goes_from_success_to_refused() {
    let (addr, server) = health_server().await;
    let livez = target(addr, "/livez");
    assert!(timed_http(&livez).await.0.is_success());
    server.shutdown().await.unwrap();
    assert_eq!(timed_http(&livez).await.0, ProbeOutcome::Refused);
    assert_eq!(probe_tcp(addr, TIMEOUT).await, ProbeOutcome::Refused);
}

#[tokio::test]
async fn a_peer_that_closes_or_speaks_garbage_is_an_io_error() {
    let (closes, closes_task) = raw_server(b"").await;
    let outcome = timed_http(&target(closes, "/livez")).await.0;
    assert!(matches!(outcome, ProbeOutcome::Io(_)), "{outcome:?}");

    let (garbage, garbage_task) = raw_server(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    let outcome = timed_http(&target(garbage, "/livez")).await.0;
    assert!(matches!(outcome, ProbeOutcome::Io(_)), "{outcome:?}");

    closes_task.abort();
    garbage_task.abort();
}

#[tokio::test]
async fn a_raw_well_formed_response_is_read_by_its_status() {
    let (addr, task) = raw_server(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
    assert!(timed_http(&target(addr, "/")).await.0.is_success());
    task.abort();
    let (addr, task) = raw_server(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy").await;
    assert_eq!(timed_http(&target(addr, "/")).await.0, ProbeOutcome::HttpStatus(503));
    task.abort();
}

#[tokio::test]
async fn urls_with_a_host_name_resolve_within_the_probe() {
    let (addr, _server) = health_server().await;
    let by_name = HttpTarget::parse(&format!("http://localhost:{}/livez", addr.port())).unwrap();
    // `localhost` may resolve to ::1 first, where nothing listens: the
    // prober tries each address.
    let outcome = timed_http(&by_name).await.0;
    assert!(outcome.is_success(), "{outcome}");
    let by_url: HttpTarget = format!("127.0.0.1:{}/readyz", addr.port()).parse().unwrap();
    assert_eq!(timed_http(&by_url).await.0, ProbeOutcome::HttpStatus(503));
}

#[tokio::test]
async fn probes_run_concurrently_against_a_hung_fleet() {
    let (addr, server) = hung_server().await;
    let livez = target(addr, "/livez");
    let began = Instant::now();
    let probes: Vec<_> = (0..8)
        .map(|_| {
            let livez = livez.clone();
            tokio::spawn(async move { probe_http(&livez, TIMEOUT).await })
        })
        .collect();
    for probe in probes {
        assert_eq!(probe.await.unwrap(), ProbeOutcome::Timeout);
    }
    assert!(began.elapsed() < TIMEOUT + MARGIN, "probes did not run concurrently: {:?}", began.elapsed());
    server.abort();
}
