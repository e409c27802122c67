//! Attacks on the control API over loopback, bounded in count and time:
//! idle floods, slowloris heads, slow bodies, oversized and malformed
//! requests. Whatever an unauthenticated client does to the API, the
//! control node's own probes of a healthy instance keep passing (no
//! verdict changes, nothing needs recovery), slow connections are closed
//! within the configured timeouts, every refusal that has a body is JSON
//! `{error, kind}`, and a list never answers more than a page.
//!
//! Each test prints its figures (`--nocapture` to see them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use axum::Router;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use vigil_core::control::{ControlConfig, ControlPlane};
use vigil_core::health::{
    AgentConfig, CheckConfig, HealthEvent, HealthStatus as MonitorStatus, InstanceHealthConfig,
    LivenessTimeouts, ProbeCheck, ProbeKind,
};
use vigil_core::registry::RegistryConfig;
use vigil_core::{Duration, InstanceId, NodeId};
use vigil_tokio::api::{ErrorBody, RegisterInstance};
use vigil_tokio::instance::{Instance, InstanceConfig, SelfRegistration};
use vigil_tokio::{
    ApiConfig, ApiServer, Clock, Driver, DriverHandle, HealthChecks, HttpLimits, incarnation_now, serve_api,
};

/// Every node's datagram key: one fleet key for the test.
fn wire_auth() -> vigil_tokio::WireAuth {
    vigil_tokio::WireAuth::fleet_hex(1, &"5a".repeat(32)).expect("a valid key")
}

const CONTROL: NodeId = NodeId(0);
const TOKEN: &str = "attack-write-token";
const READ_TOKEN: &str = "attack-read-token";
/// Generous deadline of every wait, for a loaded 2-core machine.
const WITHIN: StdDuration = StdDuration::from_secs(10);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Tight limits, so that the attacks hit them quickly.
fn limits() -> HttpLimits {
    HttpLimits {
        header_read_timeout: StdDuration::from_millis(500),
        body_read_timeout: StdDuration::from_millis(500),
        request_timeout: StdDuration::from_secs(2),
        max_connections: 48,
        max_concurrent_requests: 16,
        ..HttpLimits::default()
    }
}

struct Control {
    driver: DriverHandle<ControlPlane>,
    api_addr: SocketAddr,
    api: ApiServer,
}

/// A control plane whose class 0 probes over HTTP every 100 ms (two
/// failures fail a check), with the API under [`limits`].
async fn control() -> Control {
    let clock = Clock::start();
    let probe = ProbeCheck {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(100),
        ..ProbeCheck::default()
    };
    let checks = InstanceHealthConfig {
        checks: vec![
            CheckConfig::probe_with(ProbeKind::Liveness, probe).with_thresholds(2, 1),
            CheckConfig::probe_with(ProbeKind::Readiness, probe).with_thresholds(2, 1),
        ],
        flap: None,
    };
    let config = ControlConfig {
        liveness_classes: vec![LivenessTimeouts {
            suspect_after: Duration::from_millis(300),
            dead_after: Duration::from_millis(600),
        }],
        registry: RegistryConfig { min_ttl: Duration::from_millis(100), ..RegistryConfig::default() },
        health_classes: vec![Some(checks)],
        ..ControlConfig::default()
    };
    let machine = ControlPlane::new(&config, clock.now()).expect("valid control config");
    let driver =
        Driver::bind(CONTROL, loopback(), clock, machine, wire_auth()).await.expect("bind control").spawn();
    let api_config = ApiConfig { limits: limits(), ..ApiConfig::with_tokens(READ_TOKEN, TOKEN) };
    let (api_addr, api) = serve_api(loopback(), driver.machine_ref(), api_config).await.expect("api serves");
    Control { driver, api_addr, api }
}

/// A healthy instance, registered through the API, heartbeating every
/// 50 ms and probed by the control node over HTTP.
async fn healthy_instance(control: &Control, id: u32) -> Instance {
    let checks = HealthChecks::new();
    checks.mark_started();
    let agent = AgentConfig {
        instance: InstanceId(id),
        control: CONTROL,
        interval: Duration::from_millis(50),
        incarnation: incarnation_now(),
    };
    let registration = SelfRegistration::new(
        control.api_addr,
        Some(TOKEN.to_owned()),
        RegisterInstance::new(id, "web", "v1", 0),
    );
    let config =
        InstanceConfig::new(NodeId(id + 1), agent, control.driver.local_addr(), checks, Router::new())
            .with_registration(registration)
            .with_auth(wire_auth());
    let instance = Instance::start(config).await.expect("instance starts");
    let deadline = Instant::now() + WITHIN;
    loop {
        let (healthy, routable) = control
            .driver
            .with_machine(move |c| {
                let healthy = c
                    .monitor()
                    .instance(InstanceId(id))
                    .is_some_and(|v| v.status == MonitorStatus::Healthy && v.ready && !v.needs_recovery);
                (healthy, c.is_routable(InstanceId(id)))
            })
            .await
            .expect("control running");
        if healthy && routable {
            return instance;
        }
        assert!(Instant::now() < deadline, "the instance never became healthy and routable");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// How an attacking connection ended.
#[derive(Clone, Copy, Debug)]
struct Ended {
    /// From connect to the server's close (read of 0 bytes or an error).
    lived: StdDuration,
    /// Whether the server answered something before closing.
    answered: bool,
    /// The connection was never established (the kernel's accept queue
    /// overflowed, say): a refusal too, and nothing held open.
    connect_failed: Option<std::io::ErrorKind>,
}

/// Connect, send `head` then `drip` one byte every `every` (until the
/// server closes or `give_up` passes), and report when the server closed.
async fn slow_client(
    addr: SocketAddr,
    head: Vec<u8>,
    drip: Vec<u8>,
    every: StdDuration,
    give_up: StdDuration,
) -> Option<Ended> {
    let start = Instant::now();
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => {
            return Some(Ended { lived: start.elapsed(), answered: false, connect_failed: Some(e.kind()) });
        }
    };
    let _ = stream.write_all(&head).await;
    let mut drip = drip.into_iter();
    let mut buf = [0u8; 1024];
    let mut answered = false;
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Some(Ended { lived: start.elapsed(), answered, connect_failed: None }),
                Ok(_) => answered = true,
            },
            () = tokio::time::sleep(every) => {
                if start.elapsed() > give_up {
                    return None; // never closed: the assertion below fails
                }
                if let Some(byte) = drip.next() {
                    if stream.write_all(&[byte]).await.is_err() {
                        return Some(Ended { lived: start.elapsed(), answered, connect_failed: None });
                    }
                }
            }
        }
    }
}

/// Watch the control node's verdicts on `id` until `stop`: every health
/// event about it, and whether it ever stopped being healthy and routable.
async fn watch_verdicts(control: &Control, id: u32, stop: Instant) -> (Vec<HealthEvent>, u64, u64) {
    let mut events = control.driver.subscribe();
    let (mut seen, mut checks, mut bad) = (Vec::new(), 0u64, 0u64);
    while Instant::now() < stop {
        while let Ok(e) = events.try_recv() {
            seen.push(e.event);
        }
        let fine = control
            .driver
            .with_machine(move |c| {
                c.is_routable(InstanceId(id))
                    && c.monitor()
                        .instance(InstanceId(id))
                        .is_some_and(|v| v.status == MonitorStatus::Healthy && v.ready && !v.needs_recovery)
            })
            .await
            .expect("control running");
        checks += 1;
        bad += u64::from(!fine);
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    while let Ok(e) = events.try_recv() {
        seen.push(e.event);
    }
    (seen, checks, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_idle_and_slow_connections_change_no_verdict_and_are_closed_in_time() {
    let control = control().await;
    let instance = healthy_instance(&control, 7).await;
    let probes_before = control.driver.stats().http_probes;
    let addr = control.api_addr;
    // Generous: the configured timeouts are 0.5 s; a loaded 2-core machine
    // (CI) may run the 400 clients and the server slowly.
    let give_up = StdDuration::from_secs(30);
    let tick = StdDuration::from_millis(150);

    // 400 connections, interleaved: 80 slowloris heads (a byte every
    // 150 ms, never finished), 40 slow bodies (a valid head, then a byte
    // every 150 ms), 280 idle (nothing sent).
    let mut attackers = Vec::new();
    for i in 0..400 {
        let (kind, head, drip) = match i % 10 {
            0 | 1 => (
                "slowloris",
                b"GET /v1/instances HTTP/1.1\r\nHost: x\r\n".to_vec(),
                b"X-Slow: ".iter().copied().cycle().take(200).collect(),
            ),
            2 => (
                "slow body",
                format!(
                    "POST /v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                     Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
                )
                .into_bytes(),
                vec![b' '; 200],
            ),
            _ => ("idle", Vec::new(), Vec::new()),
        };
        attackers.push((kind, tokio::spawn(slow_client(addr, head, drip, tick, give_up))));
    }

    // Meanwhile the control node keeps probing the instance: 3 s of verdicts.
    let (events, checks, bad) = watch_verdicts(&control, 7, Instant::now() + StdDuration::from_secs(3)).await;

    let mut lived: std::collections::BTreeMap<&str, (usize, StdDuration, usize)> = Default::default();
    let mut connect_failed: std::collections::BTreeMap<String, usize> = Default::default();
    for (kind, attacker) in attackers {
        let ended = attacker
            .await
            .expect("attacker task")
            .unwrap_or_else(|| panic!("a {kind} connection was still open after {give_up:?}"));
        let entry = lived.entry(kind).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(ended.lived);
        entry.2 += usize::from(ended.answered);
        if let Some(kind) = ended.connect_failed {
            *connect_failed.entry(format!("{kind:?}")).or_insert(0usize) += 1;
        }
    }
    let stats = control.api.stats();
    let probes = control.driver.stats().http_probes - probes_before;
    eprintln!(
        "attack: {stats:?} (bound {}); longest lives and answered counts: {lived:?}; \
         connects that failed: {connect_failed:?}; \
         {probes} probes during the attack; {checks} verdict checks, {bad} not healthy; events {events:?}",
        control.api.max_connections()
    );

    assert_eq!(bad, 0, "the instance stayed healthy and routable throughout: {events:?}");
    for event in &events {
        assert!(
            !matches!(
                event,
                HealthEvent::NeedsRecovery { .. }
                    | HealthEvent::LivenessChanged { .. }
                    | HealthEvent::ReadinessChanged { .. }
            ),
            "no verdict changed: {event:?}"
        );
    }
    assert!(probes >= 20, "the control node kept probing ({probes} probes in 3 s)");
    assert!(stats.refused > 0, "the connection bound refused some of the 400: {stats:?}");
    assert!(stats.accepted >= 48, "{stats:?}");
    // Each accepted slow connection was closed by the header timeout
    // (500 ms), the body deadline (500 ms) or the request timeout (2 s);
    // the refused ones at once. Generous: a loaded machine may be slow.
    for (kind, (_, longest, _)) in &lived {
        assert!(*longest < StdDuration::from_secs(10), "{kind} connections lived up to {longest:?}");
    }
    // The slow bodies that were accepted got a JSON 408, not silence.
    assert!(lived["slow body"].2 > 0, "some slow bodies were answered: {lived:?}");

    // The flood is over: the API serves again, and all its connections closed.
    let reader = vigil_tokio::ApiClient::new(vigil_tokio::HttpTarget::new(addr, "/").unwrap())
        .with_token(Some(READ_TOKEN.to_owned()));
    let list = reader.instances("").await.expect("the API answers after the flood");
    assert_eq!(list.instances.len(), 1);
    assert!(control.api.stats().open() <= 1, "{:?}", control.api.stats());

    instance.shutdown().await.expect("instance stops");
    control.api.shutdown().await.expect("api stops");
    control.driver.shutdown().await.expect("control stops");
}

/// Send `request` on a new connection; the whole answer, until the server
/// closes (within [`WITHIN`]).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await; // the server may close early
    let mut answer = Vec::new();
    match tokio::time::timeout(WITHIN, stream.read_to_end(&mut answer)).await {
        Ok(_) => {}
        Err(_) => panic!(
            "no close within {WITHIN:?} for {:?}",
            String::from_utf8_lossy(&request[..request.len().min(80)])
        ),
    }
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, answer[split..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_are_refused_cleanly_and_in_json_where_a_body_is_possible() {
    let control = control().await;
    let addr = control.api_addr;
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let close = "Connection: close\r\n";
    let json_ct = "Content-Type: application/json\r\n";
    let body = r#"{"id": 1, "service": "web", "version": "v1", "node": 2}"#;

    // Refusals the stack or the handlers make: JSON with a reason.
    let json_cases: Vec<(&str, String, u16, &str)> = vec![
        ("unknown route", format!("GET /nope HTTP/1.1\r\nHost: x\r\n{close}\r\n"), 404, "not_found"),
        (
            "wrong method",
            format!("PATCH /v1/instances HTTP/1.1\r\nHost: x\r\n{close}\r\n"),
            405,
            "method_not_allowed",
        ),
        (
            "bad UTF-8 id",
            format!("GET /v1/instances/%C3%28 HTTP/1.1\r\nHost: x\r\n{auth}{close}\r\n"),
            400,
            "bad_request",
        ),
        (
            "long URI",
            format!("GET /v1/instances?{} HTTP/1.1\r\nHost: x\r\n{close}\r\n", "a".repeat(6000)),
            414,
            "uri_too_long",
        ),
        (
            "no token",
            format!(
                "POST /v1/instances HTTP/1.1\r\nHost: x\r\n{json_ct}Content-Length: {}\r\n{close}\r\n{body}",
                body.len()
            ),
            401,
            "unauthorized",
        ),
        (
            "text/plain from a web page",
            format!(
                "POST /v1/instances HTTP/1.1\r\nHost: x\r\n{auth}Origin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{close}\r\n{body}",
                body.len()
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "declared 2 MB",
            format!(
                "POST /v1/instances HTTP/1.1\r\nHost: x\r\n{auth}{json_ct}Content-Length: 2000000\r\n{close}\r\n"
            ),
            413,
            "too_large",
        ),
        (
            "body that stops",
            format!(
                "POST /v1/instances HTTP/1.1\r\nHost: x\r\n{auth}{json_ct}Content-Length: 100\r\n{close}\r\n{{\"id\":"
            ),
            408,
            "timeout",
        ),
    ];
    for (what, request, status, kind) in &json_cases {
        let started = Instant::now();
        let (got, head, body) = raw(addr, request.as_bytes()).await;
        assert_eq!(got, *status, "{what}: {head}");
        let error: ErrorBody = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
        assert_eq!(error.kind, *kind, "{what}: {error:?}");
        assert!(!error.error.is_empty(), "{what}: a reason");
        eprintln!("{what}: {got} {kind} in {:?}: {}", started.elapsed(), error.error);
    }

    // Refusals hyper's parser makes itself: a bare status, no body, and the
    // connection closed (see `vigil_tokio::server`).
    let bare_cases: Vec<(&str, String, u16)> = vec![
        (
            "bad Content-Length",
            "POST /v1/instances HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_owned(),
            400,
        ),
        (
            "duplicate Content-Length",
            "POST /v1/instances HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nxx"
                .to_owned(),
            400,
        ),
        (
            "30 KB of headers",
            format!("GET /v1/instances HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(30_000)),
            431,
        ),
        (
            "100 headers",
            format!(
                "GET /v1/instances HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..100).map(|i| format!("X-{i}: y\r\n")).collect::<String>()
            ),
            431,
        ),
        ("garbage", "\x16\x03\x01 not http at all\r\n\r\n".to_owned(), 400),
    ];
    for (what, request, status) in &bare_cases {
        let (got, head, body) = raw(addr, request.as_bytes()).await;
        assert_eq!(got, *status, "{what}: {head}");
        assert!(body.is_empty(), "{what}: hyper's own answer has no body: {body:?}");
        eprintln!("{what}: {got}, closed, no body");
    }

    // Nothing of that changed the catalog, and the server is still there.
    assert!(control.driver.with_machine(|c| c.registry().is_empty()).await.unwrap());
    let (got, _, _) = raw(
        addr,
        format!("GET /v1/services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_TOKEN}\r\n{close}\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(got, 200);
    control.api.shutdown().await.expect("api stops");
    control.driver.shutdown().await.expect("control stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_catalog_is_listed_a_bounded_page_at_a_time() {
    let control = control().await;
    control
        .driver
        .with_machine_mut(|c, now| {
            for id in 0..5_000u32 {
                let mut r = RegisterInstance::new(id, format!("svc-{}", id % 7), "v1", id + 1);
                r.ttl_ms = Some(3_600_000);
                c.register(now, r.to_request()).expect("registers");
            }
        })
        .await
        .unwrap();
    let reader = vigil_tokio::ApiClient::new(vigil_tokio::HttpTarget::new(control.api_addr, "/").unwrap())
        .with_token(Some(READ_TOKEN.to_owned()));
    let largest = Arc::new(AtomicU64::new(0));
    let (mut after, mut listed, mut pages) = (None::<u32>, 0usize, 0usize);
    loop {
        let query = match after {
            Some(a) => format!("limit=1000&after={a}"),
            None => "limit=1000".to_owned(),
        };
        let answer = reader
            .send(axum::http::Method::GET, &format!("/v1/instances?{query}"), None)
            .await
            .expect("answers");
        largest.fetch_max(answer.body.len() as u64, Ordering::Relaxed);
        let page: vigil_tokio::api::InstanceList = serde_json::from_slice(&answer.body).expect("a page");
        assert!(page.instances.len() <= vigil_tokio::api::MAX_PAGE);
        listed += page.instances.len();
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!((listed, pages), (5_000, 5));
    let default = reader.instances("").await.unwrap();
    assert_eq!(default.instances.len(), vigil_tokio::api::DEFAULT_PAGE);
    let a = reader.send(axum::http::Method::GET, "/v1/instances?limit=5000", None).await.unwrap();
    assert_eq!(a.status, 400, "a page over the bound is refused: {}", a.reason());
    eprintln!("5000 instances in {pages} pages; largest page {} bytes", largest.load(Ordering::Relaxed));
    control.api.shutdown().await.expect("api stops");
    control.driver.shutdown().await.expect("control stops");
}
