//! `/livez`, `/readyz` and `/healthz` served on loopback: status codes and
//! bodies for passing, failing, slow and panicking checks; `?verbose` and
//! `?exclude=`; the startup gate; the drain switch; routing errors.

mod loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Method;
use tokio::time::Instant;
use vigil_tokio::endpoints::{CheckKind, HealthChecks, HealthServer, serve};

use loopback::{get, request};

/// The timeout of slow checks: short, so the tests are fast.
const SLOW_TIMEOUT: Duration = Duration::from_millis(200);

/// What a loaded machine may add to a deadline before a test calls it late.
const MARGIN: Duration = Duration::from_secs(1);

async fn ok() -> Result<(), String> {
    Ok(())
}

async fn down() -> Result<(), String> {
    Err("connection refused by db:5432".to_owned())
}

async fn start(checks: &HealthChecks) -> (std::net::SocketAddr, HealthServer) {
    serve("127.0.0.1:0".parse().unwrap(), checks.clone()).await.expect("serve on loopback")
}

#[tokio::test]
async fn all_passing_answers_ok_and_verbose_lists_every_check() {
    let checks = HealthChecks::new();
    checks.add("ping", CheckKind::Both, ok).unwrap();
    checks.add("loop", CheckKind::Liveness, ok).unwrap();
    checks.add("db", CheckKind::Readiness, ok).unwrap();
    checks.mark_started();
    let (addr, server) = start(&checks).await;

    for path in ["/livez", "/readyz", "/healthz"] {
        assert_eq!(get(addr, path).await, (200, "ok".to_owned()), "{path}");
    }
    assert_eq!(get(addr, "/livez?verbose").await.1, "[+]ping ok\n[+]loop ok\nlivez check passed\n");
    assert_eq!(
        get(addr, "/readyz?verbose").await.1,
        "[+]ping ok\n[+]db ok\n[+]drain ok\nreadyz check passed\n"
    );
    assert_eq!(
        get(addr, "/healthz?verbose=1").await.1,
        "[+]ping ok\n[+]loop ok\n[+]db ok\n[+]drain ok\nhealthz check passed\n"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_checks_at_all_passes() {
    let checks = HealthChecks::new();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;
    assert_eq!(get(addr, "/livez").await, (200, "ok".to_owned()));
    assert_eq!(get(addr, "/livez?verbose").await.1, "livez check passed\n");
    assert_eq!(get(addr, "/readyz?verbose").await.1, "[+]drain ok\nreadyz check passed\n");
}

#[tokio::test]
async fn the_startup_gate_answers_starting_without_running_checks() {
    let runs = Arc::new(AtomicUsize::new(0));
    let checks = HealthChecks::new();
    let counted = Arc::clone(&runs);
    checks
        .add("counted", CheckKind::Both, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            ok()
        })
        .unwrap();
    let (addr, _server) = start(&checks).await;

    for path in ["/livez", "/readyz", "/healthz", "/livez?verbose"] {
        assert_eq!(get(addr, path).await, (503, "starting".to_owned()), "{path}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0, "no check runs before startup is over");

    checks.mark_started();
    assert_eq!(get(addr, "/livez").await, (200, "ok".to_owned()));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_liveness_check_fails_livez_and_healthz_only() {
    let checks = HealthChecks::new();
    checks.add("ping", CheckKind::Both, ok).unwrap();
    checks.add("deadlock", CheckKind::Liveness, || async { Err::<(), _>("event loop stalled 12s") }).unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    let (status, body) = get(addr, "/livez").await;
    assert_eq!(status, 503);
    assert_eq!(body, "[+]ping ok\n[-]deadlock failed: event loop stalled 12s\nlivez check failed\n");
    assert_eq!(get(addr, "/readyz").await, (200, "ok".to_owned()));
    let (status, body) = get(addr, "/healthz").await;
    assert_eq!(status, 503);
    assert!(body.contains("[-]deadlock failed: event loop stalled 12s\n"), "{body}");
    assert!(body.ends_with("healthz check failed\n"), "{body}");
}

#[tokio::test]
async fn a_failing_readiness_check_fails_readyz_and_healthz_only() {
    let checks = HealthChecks::new();
    checks.add("db", CheckKind::Readiness, down).unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    assert_eq!(get(addr, "/livez").await, (200, "ok".to_owned()));
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body, "[-]db failed: connection refused by db:5432\n[+]drain ok\nreadyz check failed\n");
    assert_eq!(get(addr, "/healthz").await.0, 503);
}

#[tokio::test]
async fn a_slow_check_fails_as_timeout_on_time_and_is_cancelled() {
    let dropped = Arc::new(AtomicBool::new(false));
    let checks = HealthChecks::new();
    checks.add("ping", CheckKind::Both, ok).unwrap();
    let flag = Arc::clone(&dropped);
    checks
        .add_with_timeout("slow", CheckKind::Readiness, SLOW_TIMEOUT, move || {
            let guard = SetOnDrop(Arc::clone(&flag));
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<(), String>(())
            }
        })
        .unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    let began = Instant::now();
    let (status, body) = get(addr, "/readyz").await;
    let took = began.elapsed();
    assert_eq!(status, 503);
    assert_eq!(body, "[+]ping ok\n[-]slow failed: timeout after 200ms\n[+]drain ok\nreadyz check failed\n");
    assert!(took >= SLOW_TIMEOUT, "answered before the timeout: {took:?}");
    assert!(took < SLOW_TIMEOUT + MARGIN, "the timeout is the feature: took {took:?}");

    // The hung check does not outlive the request: its task was aborted.
    let deadline = Instant::now() + MARGIN;
    while !dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the timed-out check was never cancelled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Liveness does not include the slow check, so it is not slowed down.
    assert_eq!(get(addr, "/livez").await, (200, "ok".to_owned()));
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn checks_run_concurrently() {
    const CHECKS: u32 = 5;
    const EACH: Duration = Duration::from_millis(200);
    let checks = HealthChecks::new();
    for i in 0..CHECKS {
        checks
            .add(format!("c{i}"), CheckKind::Both, || async {
                tokio::time::sleep(EACH).await;
                Ok::<(), String>(())
            })
            .unwrap();
    }
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    let began = Instant::now();
    assert_eq!(get(addr, "/livez").await, (200, "ok".to_owned()));
    let took = began.elapsed();
    // One after the other would take CHECKS × EACH = 1 s.
    assert!(took < EACH * CHECKS - Duration::from_millis(100), "checks ran one after the other: {took:?}");
}

#[tokio::test]
async fn a_panicking_check_fails_without_breaking_the_server() {
    let checks = HealthChecks::new();
    checks
        .add("boom", CheckKind::Liveness, || async {
            if true {
                panic!("check bug");
            }
            Ok::<(), String>(())
        })
        .unwrap();
    checks
        .add("eager-boom", CheckKind::Liveness, || -> std::future::Ready<Result<(), String>> {
            panic!("panics before returning a future")
        })
        .unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    for _ in 0..2 {
        let (status, body) = get(addr, "/livez").await;
        assert_eq!(status, 503);
        assert_eq!(body, "[-]boom failed: panicked\n[-]eager-boom failed: panicked\nlivez check failed\n");
    }
    assert_eq!(get(addr, "/readyz").await, (200, "ok".to_owned()));
}

#[tokio::test]
async fn exclude_skips_checks_and_warns_about_unknown_names() {
    let runs = Arc::new(AtomicUsize::new(0));
    let checks = HealthChecks::new();
    checks.add("ping", CheckKind::Both, ok).unwrap();
    let counted = Arc::clone(&runs);
    checks
        .add("db", CheckKind::Readiness, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            down()
        })
        .unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    assert_eq!(get(addr, "/readyz?exclude=db").await, (200, "ok".to_owned()));
    assert_eq!(runs.load(Ordering::SeqCst), 0, "an excluded check does not run");
    assert_eq!(
        get(addr, "/readyz?exclude=db&verbose").await.1,
        "[+]ping ok\n[+]db excluded: ok\n[+]drain ok\nreadyz check passed\n"
    );
    assert_eq!(
        get(addr, "/readyz?exclude=db&exclude=ping&exclude=nope&exclude=zzz&verbose").await.1,
        "[+]ping excluded: ok\n[+]db excluded: ok\n[+]drain ok\n\
         warn: some health checks cannot be excluded: no matches for \"nope\",\"zzz\"\n\
         readyz check passed\n"
    );
    // An unknown name changes nothing else: still failing, now with the warning.
    let (status, body) = get(addr, "/readyz?exclude=nope").await;
    assert_eq!(status, 503);
    assert!(body.contains("[-]db failed:") && body.contains("no matches for \"nope\""), "{body}");
    // `db` is not a liveness check: excluding it from /livez is unknown there.
    assert!(get(addr, "/livez?exclude=db&verbose").await.1.contains("no matches for \"db\""));
    // Percent-encoded names decode.
    assert_eq!(get(addr, "/readyz?exclude=%64b").await, (200, "ok".to_owned()));
}

#[tokio::test]
async fn draining_fails_readyz_while_livez_stays_up() {
    let checks = HealthChecks::new();
    checks.add("ping", CheckKind::Both, ok).unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;
    assert_eq!(get(addr, "/readyz").await.0, 200);

    checks.set_ready(false);
    assert!(!checks.is_ready());
    assert_eq!(get(addr, "/livez").await, (200, "ok".to_owned()));
    assert_eq!(
        get(addr, "/readyz").await,
        (503, "[+]ping ok\n[-]drain failed: draining\nreadyz check failed\n".into())
    );
    assert_eq!(get(addr, "/healthz").await.0, 503);
    // Like kube-apiserver's shutdown check, it can be excluded explicitly.
    assert_eq!(get(addr, "/readyz?exclude=drain").await.0, 200);

    checks.set_ready(true);
    assert_eq!(get(addr, "/readyz").await, (200, "ok".to_owned()));
}

#[tokio::test]
async fn checks_added_or_removed_while_serving_take_effect() {
    let checks = HealthChecks::new();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;
    assert_eq!(get(addr, "/livez").await.0, 200);

    checks.add("late", CheckKind::Liveness, down).unwrap();
    assert_eq!(get(addr, "/livez").await.0, 503);
    assert!(checks.remove("late"));
    assert_eq!(get(addr, "/livez").await.0, 200);
}

#[tokio::test]
async fn unknown_paths_wrong_methods_and_odd_queries_never_break_it() {
    let checks = HealthChecks::new();
    checks.add("ping", CheckKind::Both, ok).unwrap();
    checks.mark_started();
    let (addr, _server) = start(&checks).await;

    assert_eq!(get(addr, "/").await.0, 404);
    assert_eq!(get(addr, "/livez/ping").await.0, 404);
    assert_eq!(get(addr, "/metrics").await.0, 404);
    assert_eq!(request(Method::POST, addr, "/livez").await.0, 405);
    assert_eq!(request(Method::DELETE, addr, "/readyz").await.0, 405);
    assert_eq!(request(Method::HEAD, addr, "/healthz").await, (200, String::new()));
    for odd in [
        "/livez?",
        "/livez?&&&",
        "/livez?exclude",
        "/livez?exclude=",
        "/livez?exclude=%ff%fe%",
        "/livez?verbose=%%&exclude=%zz",
        "/livez?exclude=a%0Ab&verbose",
    ] {
        let (status, body) = get(addr, odd).await;
        assert_eq!(status, 200, "{odd}: {body}");
    }
    // A control character in an unknown name cannot break the line format.
    let body = get(addr, "/livez?exclude=a%0Ab&verbose").await.1;
    assert!(body.contains("no matches for \"a b\"\n"), "{body}");
}

#[tokio::test]
async fn the_router_merges_into_a_users_app() {
    let checks = HealthChecks::new();
    checks.mark_started();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" })).merge(checks.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await });

    assert_eq!(get(addr, "/").await, (200, "hello".to_owned()));
    assert_eq!(get(addr, "/readyz").await, (200, "ok".to_owned()));
    task.abort();
}

#[tokio::test]
async fn shutdown_stops_the_server_and_dropping_the_handle_does_too() {
    let checks = HealthChecks::new();
    checks.mark_started();

    let (addr, server) = start(&checks).await;
    assert_eq!(server.local_addr(), addr);
    assert_eq!(get(addr, "/livez").await.0, 200);
    tokio::time::timeout(MARGIN, server.shutdown()).await.expect("shutdown is prompt").unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still listening after shutdown");

    let (addr, server) = start(&checks).await;
    drop(server);
    let deadline = Instant::now() + MARGIN;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still listening after the handle was dropped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
