//! The control plane's JSON API on loopback: an instance registers itself
//! over HTTP at start, its heartbeats make it routable and renew its lease,
//! it leaves the catalog at shutdown; bad requests are refused with a
//! status and a reason, and change nothing. Every wait has a deadline.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use tokio::time::Instant as TokioInstant;
use vigil_core::control::{ControlConfig, ControlPlane};
use vigil_core::health::{
    AgentConfig, CheckConfig, HealthEvent, HealthStatus as MonitorStatus, InstanceHealthConfig, Liveness,
    LivenessTimeouts, ProbeCheck, ProbeKind,
};
use vigil_core::registry::{HEALTH_ENDPOINT, HealthStatus, RegistryConfig};
use vigil_core::{Duration, InstanceId, NodeId};
use vigil_tokio::api::{
    ApiClient, ApiClientError, ApiResponse, Endpoints, ErrorBody, LIVENESS_ENDPOINT, Outcome,
    RegisterInstance,
};
use vigil_tokio::instance::{Instance, InstanceConfig, SelfRegistration, StartError};
use vigil_tokio::probe::HttpTarget;
use vigil_tokio::{
    ApiConfig, ApiServer, Clock, Driver, DriverHandle, HealthChecks, incarnation_now, serve_api,
};

/// The fleet key every node of these tests shares (64 hex digits, as in a
/// configuration file).
const TEST_WIRE_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Every node's [`vigil_tokio::WireAuth`]: the shared test key, id 1.
fn test_auth() -> vigil_tokio::WireAuth {
    vigil_tokio::WireAuth::fleet_hex(1, TEST_WIRE_KEY).expect("a valid key")
}

const CONTROL: NodeId = NodeId(0);
const TOKEN: &str = "s3cret-token";
/// The token that only reads.
const READ_TOKEN: &str = "r3ad-only-token";
/// Heartbeats every 50 ms; suspect after 300 ms, dead after 600 ms.
const BEAT: Duration = Duration::from_millis(50);
/// The registered lease: ten heartbeats long, so only renewal keeps it.
const TTL_MS: u64 = 500;
/// The deadline of every wait: generous for a loaded machine.
const WITHIN: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Control {
    driver: DriverHandle<ControlPlane>,
    api_addr: SocketAddr,
    api: ApiServer,
}

impl Control {
    fn client(&self, token: Option<&str>) -> ApiClient {
        let mut client =
            ApiClient::new(HttpTarget::new(self.api_addr, "/").unwrap()).with_token(token.map(str::to_owned));
        client.timeout = WITHIN;
        client
    }

    async fn query<R, F>(&self, query: F) -> R
    where
        F: FnOnce(&ControlPlane) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.driver.with_machine(query).await.expect("control running")
    }

    async fn shutdown(self) {
        self.api.shutdown().await.expect("api stops cleanly");
        self.driver.shutdown().await.expect("control stops cleanly");
    }
}

/// A control plane watching nothing, with the API (a read token and a
/// write token).
async fn control() -> Control {
    control_with(Vec::new()).await
}

/// [`control`], with `health_classes` (class 0 the only liveness class).
async fn control_with(health_classes: Vec<Option<InstanceHealthConfig>>) -> Control {
    let registry = RegistryConfig { min_ttl: Duration::from_millis(100), ..RegistryConfig::default() };
    control_from(health_classes, registry).await
}

/// [`control_with`], with the catalog's settings.
async fn control_from(
    health_classes: Vec<Option<InstanceHealthConfig>>,
    registry: RegistryConfig,
) -> Control {
    let clock = Clock::start();
    let config = ControlConfig {
        recovery: None,
        seed: vigil_core::rng::Seed(0),
        liveness_classes: vec![LivenessTimeouts {
            suspect_after: Duration::from_millis(300),
            dead_after: Duration::from_millis(600),
        }],
        registry,
        health_classes,
        ..ControlConfig::default()
    };
    assert!(config.instances.is_empty(), "no static instances: everything comes through the API");
    let machine = ControlPlane::new(&config, clock.now()).expect("valid control config");
    let driver =
        Driver::bind(CONTROL, loopback(), clock, machine, test_auth()).await.expect("bind control").spawn();
    let (api_addr, api) =
        serve_api(loopback(), driver.machine_ref(), ApiConfig::with_tokens(READ_TOKEN, TOKEN))
            .await
            .expect("api serves");
    Control { driver, api_addr, api }
}

fn registration(control: &Control, token: Option<&str>) -> SelfRegistration {
    let mut body = RegisterInstance::new(0, "web", "v1", 0);
    body.zone = Some("eu-1".into());
    body.tags = vec!["blue".into(), "canary".into()];
    body.ttl_ms = Some(TTL_MS);
    SelfRegistration::new(control.api_addr, token.map(str::to_owned), body)
}

async fn start_instance(
    control: &Control,
    id: u32,
    registration: SelfRegistration,
) -> Result<Instance, StartError> {
    let checks = HealthChecks::new();
    checks.mark_started();
    let agent = AgentConfig {
        instance: InstanceId(id),
        control: CONTROL,
        interval: BEAT,
        incarnation: incarnation_now(),
    };
    let router = Router::new().route("/work", axum::routing::get(|| async { "done" }));
    let config = InstanceConfig::new(NodeId(id + 1), agent, control.driver.local_addr(), checks, router)
        .with_auth(test_auth())
        .with_registration(registration);
    Instance::start(config).await
}

/// Poll `condition` until it holds; panic naming `what` after `WITHIN`.
async fn wait<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = TokioInstant::now() + WITHIN;
    while !condition().await {
        assert!(TokioInstant::now() < deadline, "deadline of {WITHIN:?} passed waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_registers_itself_becomes_routable_renews_its_lease_and_leaves_at_shutdown() {
    let started = TokioInstant::now();
    let mut timeline = Vec::new();
    let control = control().await;
    let reader = control.client(Some(READ_TOKEN));
    assert!(reader.instances("").await.unwrap().instances.is_empty());

    // 1. Start: it registers (new: 201), critical until heard from.
    let instance = start_instance(&control, 7, registration(&control, Some(TOKEN))).await.expect("starts");
    timeline.push(("start and register", started.elapsed()));
    let registered = instance.registration().expect("self-registered").clone();
    assert_eq!(registered.outcome, Outcome::Created);
    assert_eq!(
        (registered.instance.id, registered.instance.service.as_str()),
        (7, "web"),
        "id from the agent"
    );
    let health_url = format!("http://{}/readyz", instance.http_addr());
    assert_eq!(registered.instance.endpoints.get(HEALTH_ENDPOINT), Some(health_url.as_str()));

    // 2. The catalog lists it, with what it registered.
    let list = reader.instances("").await.unwrap();
    assert_eq!(list.instances.len(), 1, "{list:?}");
    let record = &list.instances[0];
    assert_eq!((record.id, record.version.as_str(), record.zone.as_str()), (7, "v1", "eu-1"));
    assert_eq!(record.tags, ["blue", "canary"]);
    assert_eq!(record.class, Some(0));
    assert_eq!(record.lease.ttl_ms, TTL_MS);
    assert!(list.index > 0);

    // 3. Heartbeats make it alive, passing and routable.
    let cause = TokioInstant::now();
    wait("the instance routable", || async {
        control.driver.with_machine(|c| c.is_routable(InstanceId(7))).await.expect("control running")
    })
    .await;
    timeline.push(("registered to routable", cause.elapsed()));
    let record = reader.instance(7).await.unwrap().expect("registered");
    assert_eq!(record.health, HealthStatus::Passing, "{record:?}");
    assert!(record.routable);
    assert_eq!(record.liveness, Some(Liveness::Alive));
    assert!(record.monitor.is_none(), "class 0 has no active checks");

    // 4. Filters.
    for (query, want) in [
        ("service=web", 1),
        ("service=web&version=v1&zone=eu-1&tag=blue&tag=canary", 1),
        ("version=v2", 0),
        ("zone=us-1", 0),
        ("tag=blue&tag=green", 0),
        ("service=nope", 0),
    ] {
        let got = reader.instances(query).await.unwrap().instances.len();
        assert_eq!(got, want, "GET /v1/instances?{query}");
    }
    let services = reader.services().await.unwrap();
    assert_eq!(services.services.len(), 1, "{services:?}");
    let web = &services.services[0];
    assert_eq!((web.name.as_str(), web.instances, web.passing, web.routable), ("web", 1, 1, 1), "{web:?}");

    // 5. The lease (500 ms) holds only because heartbeats renew it: after
    //    twice its length it is still current.
    tokio::time::sleep(std::time::Duration::from_millis(2 * TTL_MS)).await;
    let record = reader.instance(7).await.unwrap().expect("still registered");
    assert!(!record.lease.expired && record.lease.expires_in_ms <= TTL_MS, "{:?}", record.lease);
    assert_eq!(record.health, HealthStatus::Passing);

    // 6. Re-registering the same metadata only renews (200).
    let writer = control.client(Some(TOKEN));
    let mut body = RegisterInstance::new(7, "web", "v1", 8);
    body.zone = Some("eu-1".into());
    body.tags = vec!["blue".into(), "canary".into()];
    body.ttl_ms = Some(TTL_MS);
    body.endpoints = registered.instance.endpoints.clone();
    let again = writer.register(&body).await.expect("re-registration accepted");
    assert_eq!(again.outcome, Outcome::Renewed);
    assert!(again.instance.routable, "still routable");

    // 7. Shutdown deregisters: gone from the catalog and from rotation.
    let cause = TokioInstant::now();
    instance.shutdown().await.expect("instance stops cleanly");
    timeline.push(("shutdown (deregister, stop)", cause.elapsed()));
    assert_eq!(reader.instance(7).await.unwrap(), None, "deregistered");
    assert!(reader.instances("").await.unwrap().instances.is_empty());
    assert!(reader.services().await.unwrap().services.is_empty(), "empty services are not listed");
    assert!(!control.query(|c| c.is_routable(InstanceId(7))).await);
    assert!(control.query(|c| c.detector().instance(InstanceId(7)).is_none()).await, "no longer watched");

    timeline.push(("whole story", started.elapsed()));
    eprintln!("timeline: {timeline:?}");
    control.shutdown().await;
}

/// Send `body` to `POST /v1/instances` with `token`.
async fn post(control: &Control, token: Option<&str>, body: impl Into<Bytes>) -> ApiResponse {
    control.client(token).send(Method::POST, "/v1/instances", Some(body.into())).await.expect("answered")
}

/// Assert an error answer: `status`, JSON `kind`, and a reason containing
/// `reason`.
fn refused(answer: &ApiResponse, status: StatusCode, kind: &str, reason: &str) {
    let body: ErrorBody = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("error answers are JSON ({e}): {:?}", answer.body));
    assert_eq!(answer.status, status, "{body:?}");
    assert_eq!(body.kind, kind, "{body:?}");
    assert!(body.error.contains(reason), "reason {:?} should mention {reason:?}", body.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_reason_and_change_nothing() {
    let control = control().await;
    let valid = r#"{"id": 1, "service": "web", "version": "v1", "node": 2}"#;

    // Tokens.
    let a = post(&control, None, valid).await;
    refused(&a, StatusCode::UNAUTHORIZED, "unauthorized", "Authorization: Bearer");
    let a = post(&control, Some("guess"), valid).await;
    refused(&a, StatusCode::UNAUTHORIZED, "unauthorized", "invalid token");
    let a = post(&control, Some(&format!("{TOKEN}x")), valid).await;
    refused(&a, StatusCode::UNAUTHORIZED, "unauthorized", "invalid token");
    let writer = control.client(Some(TOKEN));
    let a = control.client(None).send(Method::DELETE, "/v1/instances/1", None).await.unwrap();
    refused(&a, StatusCode::UNAUTHORIZED, "unauthorized", "token");
    // The token is checked before the body is read.
    let a = post(&control, None, vec![b'x'; 1 << 20]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Bodies.
    let a = post(&control, Some(TOKEN), r#"{"id": 1, "service": "web""#).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_json", "EOF while parsing");
    let a = post(
        &control,
        Some(TOKEN),
        r#"{"id": 1, "service": "web", "version": "v1", "node": 2, "colour": 1}"#,
    )
    .await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_json", "unknown field `colour`");
    let a = post(&control, Some(TOKEN), r#"{"id": 1, "service": "web", "node": 2}"#).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_json", "missing field `version`");
    let a = post(&control, Some(TOKEN), r#"{"id": 1, "service": "", "version": "v1", "node": 2}"#).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_registration", "service name must not be empty");
    let a =
        post(&control, Some(TOKEN), r#"{"id": 1, "service": "web", "version": "v1", "node": 2, "class": 5}"#)
            .await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_registration", "liveness class 5 does not exist");
    let a = post(
        &control,
        Some(TOKEN),
        r#"{"id": 1, "service": "web", "version": "v1", "node": 2, "weight": 0}"#,
    )
    .await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_registration", "weight must be at least 1");
    let dup =
        r#"{"id": 1, "service": "web", "version": "v1", "node": 2, "endpoints": {"a": "x:1", "a": "y:2"}}"#;
    refused(
        &post(&control, Some(TOKEN), dup).await,
        StatusCode::BAD_REQUEST,
        "invalid_registration",
        "twice",
    );
    let big = format!(
        r#"{{"id": 1, "service": "web", "version": "v1", "node": 2, "pad": "{}"}}"#,
        "x".repeat(70_000)
    );
    refused(
        &post(&control, Some(TOKEN), big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "65536 bytes",
    );

    // Nothing of that reached the catalog.
    let reader = control.client(Some(READ_TOKEN));
    assert!(reader.instances("").await.unwrap().instances.is_empty());
    assert!(control.query(|c| c.registry().is_empty() && c.detector().instances().count() == 0).await);

    // A valid one is created; the same id for another service conflicts.
    let a = post(&control, Some(TOKEN), valid).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.reason());
    let a = post(&control, Some(TOKEN), r#"{"id": 1, "service": "api", "version": "v1", "node": 2}"#).await;
    refused(&a, StatusCode::CONFLICT, "conflict", "already registered for service \"web\"");

    // Reads and deletes of what is not there.
    refused(
        &writer.send(Method::DELETE, "/v1/instances/99", None).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
        "not registered",
    );
    assert_eq!(writer.deregister(4_294_967_295).await, Ok(false));
    refused(
        &reader.send(Method::GET, "/v1/instances/99", None).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
        "not registered",
    );
    refused(
        &reader.send(Method::GET, "/v1/instances/abc", None).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "not an integer",
    );
    refused(
        &reader.send(Method::GET, "/v1/instances?servce=web", None).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "unknown query parameter",
    );
    refused(
        &reader.send(Method::PUT, "/v1/instances", None).await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method",
    );
    refused(
        &reader.send(Method::GET, "/v2/nothing", None).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
        "route",
    );

    // Hostile bodies: every one refused with a JSON reason, none panics.
    let hostile: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        "[".repeat(10_000).into_bytes(),
        br#"{"id": -1, "service": "web", "version": "v1", "node": 2}"#.to_vec(),
        br#"{"id": 4294967296, "service": "web", "version": "v1", "node": 2}"#.to_vec(),
        br#"{"id": 4294967295, "service": "web", "version": "v1", "node": 2}"#.to_vec(),
        br#"{"id": 2, "service": "web", "version": "v1", "node": 2, "ttl_ms": 18446744073709551615}"#
            .to_vec(),
        br#"{"id": 2, "service": "web", "version": "v1", "node": 2, "class": 18446744073709551615}"#.to_vec(),
        "{\"id\": 2, \"service\": \"w\u{e9}b\", \"version\": \"v1\", \"node\": 2}".as_bytes().to_vec(),
        br#"{"id": 2, "service": "web\u0000", "version": "v1", "node": 2}"#.to_vec(),
        br#"{"id": 2, "service": "web", "version": "v 1", "node": 2}"#.to_vec(),
        format!(r#"{{"id": 2, "service": "{}", "version": "v1", "node": 2}}"#, "a".repeat(5000)).into_bytes(),
        format!(
            r#"{{"id": 2, "service": "web", "version": "v1", "node": 2, "tags": [{}]}}"#,
            (0..100).map(|i| format!("\"t{i}\"")).collect::<Vec<_>>().join(",")
        )
        .into_bytes(),
        br#"{"id": 2, "service": "web", "version": "v1", "node": 2, "endpoints": {"health": 5}}"#.to_vec(),
    ];
    for body in hostile {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let a = post(&control, Some(TOKEN), body).await;
        assert!(a.status.is_client_error(), "{shown}: {} {}", a.status, a.reason());
        assert!(serde_json::from_slice::<ErrorBody>(&a.body).is_ok(), "{shown}: {:?}", a.body);
    }
    assert!(!control.driver.is_finished(), "the control plane survived");
    let ids: Vec<u32> = reader.instances("").await.unwrap().instances.iter().map(|i| i.id).collect();
    assert_eq!(ids, [1], "only the valid registration is in the catalog");

    // Delete it: 204, then 404.
    assert_eq!(writer.deregister(1).await, Ok(true));
    assert_eq!(writer.deregister(1).await, Ok(false));
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_a_token_bodies_must_be_json_and_lists_come_in_pages() {
    let control = control().await;
    let (anonymous, reader, writer) =
        (control.client(None), control.client(Some(READ_TOKEN)), control.client(Some(TOKEN)));
    let valid = r#"{"id": 1, "service": "web", "version": "v1", "node": 2}"#;

    // Reads need a token: the read token or the write token.
    for path in ["/v1/instances", "/v1/instances/1", "/v1/services"] {
        let a = anonymous.send(Method::GET, path, None).await.unwrap();
        refused(&a, StatusCode::UNAUTHORIZED, "unauthorized", "Authorization: Bearer");
        let a = control.client(Some("guess")).send(Method::GET, path, None).await.unwrap();
        refused(&a, StatusCode::UNAUTHORIZED, "unauthorized", "invalid token");
    }
    assert!(reader.instances("").await.unwrap().instances.is_empty());
    assert!(writer.instances("").await.unwrap().instances.is_empty(), "the write token reads too");
    // The read token cannot write.
    refused(&post(&control, Some(READ_TOKEN), valid).await, StatusCode::FORBIDDEN, "forbidden", "read token");
    let a = reader.send(Method::DELETE, "/v1/instances/1", None).await.unwrap();
    refused(&a, StatusCode::FORBIDDEN, "forbidden", "read token");

    // Bodies must be declared JSON: a web page's `text/plain` POST, a form,
    // or none at all is refused before the body is read.
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("json"), None] {
        let a = raw_post(&control, content_type, valid).await;
        refused(&a, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "application/json");
    }
    let a = raw_post(&control, Some("Application/JSON; charset=utf-8"), valid).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.reason());
    assert_eq!(writer.deregister(1).await, Ok(true));

    // What axum refuses before a handler runs is JSON too.
    let a = reader.send(Method::GET, "/v1/instances/%FF%FE", None).await.unwrap();
    refused(&a, StatusCode::BAD_REQUEST, "bad_request", "UTF-8");
    let long = format!("/v1/instances?service={}", "a".repeat(5000));
    let a = reader.send(Method::GET, &long, None).await.unwrap();
    refused(&a, StatusCode::URI_TOO_LONG, "uri_too_long", "at most 4096");

    // 250 instances in two services: pages of at most `limit`, by id,
    // `next` the cursor, the last page without one.
    control
        .driver
        .with_machine_mut(|c, now| {
            for id in 0..250u32 {
                let service = if id % 2 == 0 { "even" } else { "odd" };
                c.register(now, RegisterInstance::new(id, service, "v1", id + 1).to_request()).unwrap();
            }
        })
        .await
        .unwrap();
    let first = reader.instances("").await.unwrap();
    assert_eq!(first.instances.len(), vigil_tokio::api::DEFAULT_PAGE, "the default page");
    assert_eq!(first.next, Some(99));
    let ids: Vec<u32> = first.instances.iter().map(|i| i.id).collect();
    assert_eq!(ids, (0..100).collect::<Vec<_>>(), "by id, across services");
    let page = reader.instances("limit=60&after=99").await.unwrap();
    assert_eq!(
        (page.instances.first().map(|i| i.id), page.instances.len(), page.next),
        (Some(100), 60, Some(159))
    );
    let last = reader.instances("limit=1000&after=159").await.unwrap();
    assert_eq!((last.instances.len(), last.next), (90, None));
    let odd = reader.instances("service=odd&limit=10&after=200").await.unwrap();
    let ids: Vec<u32> = odd.instances.iter().map(|i| i.id).collect();
    assert_eq!((ids, odd.next), ((201..220).step_by(2).collect::<Vec<_>>(), Some(219)));
    let all = reader.all_instances("").await.unwrap();
    assert_eq!(all.iter().map(|i| i.id).collect::<Vec<_>>(), (0..250).collect::<Vec<_>>());
    assert_eq!(reader.all_instances("service=even").await.unwrap().len(), 125);
    for bad in ["limit=0", "limit=1001", "limit=x", "after=-1", "after=abc"] {
        let a = reader.send(Method::GET, &format!("/v1/instances?{bad}"), None).await.unwrap();
        refused(&a, StatusCode::BAD_REQUEST, "invalid_query", "");
    }
    let services = reader.send(Method::GET, "/v1/services?limit=1", None).await.unwrap();
    let services: vigil_tokio::api::ServiceList = serde_json::from_slice(&services.body).unwrap();
    assert_eq!(services.services.len(), 1);
    assert_eq!((services.services[0].name.as_str(), services.next.as_deref()), ("even", Some("even")));
    let rest = reader.send(Method::GET, "/v1/services?after=even", None).await.unwrap();
    let rest: vigil_tokio::api::ServiceList = serde_json::from_slice(&rest.body).unwrap();
    let names: Vec<&str> = rest.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!((names, rest.next), (vec!["odd"], None));
    control.shutdown().await;
}

/// `POST /v1/instances` with the write token and `content_type` (none:
/// no header), over a raw connection.
async fn raw_post(control: &Control, content_type: Option<&str>, body: &str) -> ApiResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(control.api_addr).await.unwrap();
    let content_type = content_type.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    let request = format!(
        "POST /v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{content_type}\
         Origin: http://evil.example\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WITHIN, stream.read_to_end(&mut answer)).await.expect("answered").unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).expect("a status");
    ApiResponse {
        status: StatusCode::from_u16(status).unwrap(),
        body: Bytes::copy_from_slice(&answer[split..]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_refused_or_without_an_api_does_not_start() {
    let control = control().await;

    // Refused (wrong token): fails at once, no retries.
    let started = TokioInstant::now();
    let error = start_instance(&control, 3, registration(&control, Some("wrong"))).await.unwrap_err();
    match &error {
        StartError::Registration { attempts: 1, error: ApiClientError::Refused { status: 401, reason } } => {
            assert!(reason.contains("invalid token"), "{reason}");
        }
        other => panic!("expected a refusal: {other}"),
    }
    eprintln!("refused in {:?}: {error}", started.elapsed());

    // Refused by the registry: the reason says why.
    let mut bad = registration(&control, Some(TOKEN));
    bad.body.service = "-web".into();
    let error = start_instance(&control, 3, bad).await.unwrap_err().to_string();
    assert!(error.contains("invalid character at byte 0"), "{error}");

    // Nothing listens: five tries, 100 ms apart, then it gives up.
    let closed = {
        let listener = std::net::TcpListener::bind(loopback()).unwrap();
        listener.local_addr().unwrap()
    };
    let started = TokioInstant::now();
    let mut gone = registration(&control, Some(TOKEN));
    gone.api = HttpTarget::new(closed, "/").unwrap();
    let error = start_instance(&control, 3, gone).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, StartError::Registration { attempts: 5, error: ApiClientError::Unreachable(_) }),
        "{error}"
    );
    assert!(took >= std::time::Duration::from_millis(400) && took < WITHIN, "{took:?}");
    eprintln!("unreachable: gave up after {took:?}: {error}");

    assert!(control.client(Some(READ_TOKEN)).instances("").await.unwrap().instances.is_empty());
    // The API answers 503 once the control plane is gone.
    let Control { driver, api_addr, api } = control;
    driver.shutdown().await.expect("control stops cleanly");
    let reader = ApiClient::new(HttpTarget::new(api_addr, "/").unwrap()).with_token(Some(READ_TOKEN.into()));
    let error = reader.instances("").await.unwrap_err();
    assert!(matches!(&error, ApiClientError::Refused { status: 503, .. }), "{error}");
    api.shutdown().await.expect("api stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_cut_off_while_read() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let control = control().await;
    let mut stream = tokio::net::TcpStream::connect(control.api_addr).await.unwrap();
    let head = format!(
        "POST /v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // 128 chunks of 1 KiB, twice the limit, with no length announced.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..128 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server may close once it has refused
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WITHIN, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered within {WITHIN:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"kind\":\"too_large\""), "{answer}");
    assert!(control.client(Some(READ_TOKEN)).instances("").await.unwrap().instances.is_empty());
    control.shutdown().await;
}

/// Probes every 100 ms, each within 100 ms; two failures fail a check, one
/// success passes it.
fn active_checks() -> InstanceHealthConfig {
    let probe = ProbeCheck {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(100),
        ..ProbeCheck::default()
    };
    InstanceHealthConfig {
        checks: vec![
            CheckConfig::probe_with(ProbeKind::Liveness, probe).with_thresholds(2, 1),
            CheckConfig::probe_with(ProbeKind::Readiness, probe).with_thresholds(2, 1),
        ],
        flap: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_registered_instance_with_active_checks_is_probed_over_http_until_it_leaves() {
    let started = TokioInstant::now();
    let mut timeline = Vec::new();
    let control = control_with(vec![Some(active_checks())]).await;
    let (reader, writer) = (control.client(Some(READ_TOKEN)), control.client(Some(TOKEN)));
    let monitor = |id: u32| {
        let driver = &control.driver;
        async move {
            driver
                .with_machine(move |c| (c.monitor().instance(InstanceId(id)), c.is_routable(InstanceId(id))))
                .await
                .expect("control running")
        }
    };

    // 1. A health endpoint that is not an http URL: 400, nothing changes.
    let mut bad = RegisterInstance::new(3, "web", "v1", 4);
    bad.endpoints = Endpoints::default().with(HEALTH_ENDPOINT, "ftp://127.0.0.1:1/readyz");
    let a = post(&control, Some(TOKEN), serde_json::to_vec(&bad).unwrap()).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_registration", "\"health\"");
    bad.endpoints = Endpoints::default()
        .with(HEALTH_ENDPOINT, "http://127.0.0.1:1/readyz")
        .with(LIVENESS_ENDPOINT, "http://127.0.0.1:1/livez x");
    let a = post(&control, Some(TOKEN), serde_json::to_vec(&bad).unwrap()).await;
    refused(&a, StatusCode::BAD_REQUEST, "invalid_registration", "\"liveness\"");
    assert!(reader.instances("").await.unwrap().instances.is_empty());

    // 2. It registers itself (health and liveness endpoints added), and the
    //    control node probes it over HTTP: healthy, ready, routable.
    let instance = start_instance(&control, 7, registration(&control, Some(TOKEN))).await.expect("starts");
    let registered = instance.registration().expect("self-registered").clone();
    assert_eq!(registered.instance.node, Some(8), "its node is in the record");
    assert!(registered.instance.endpoints.get(LIVENESS_ENDPOINT).is_some());
    let cause = TokioInstant::now();
    wait("the instance healthy and routable", || async {
        let (view, routable) = monitor(7).await;
        routable && view.is_some_and(|v| v.status == MonitorStatus::Healthy && v.ready)
    })
    .await;
    timeline.push(("registered to healthy and routable", cause.elapsed()));
    let stats = control.driver.stats();
    assert!(stats.http_probes > 0, "{stats:?}");
    assert_eq!(stats.unknown_destinations, 0, "no probe went out as a datagram: {stats:?}");
    let peer = control.driver.http_peer(NodeId(8)).await.unwrap().expect("peer set by the registration");
    assert_eq!(peer.health, Some(instance.health_target()));
    assert_eq!(peer.liveness, Some(HttpTarget::new(instance.http_addr(), "/livez").unwrap()));
    assert_eq!(peer.service, None);
    let record = reader.instance(7).await.unwrap().expect("registered");
    assert_eq!(record.node, Some(8));
    assert!(record.routable && record.monitor.is_some_and(|m| m.ready), "{record:?}");

    // 3. Drained (not ready): out of rotation, but alive: /livez still
    //    passes, so no recovery is asked for.
    let mut events = control.driver.subscribe();
    let cause = TokioInstant::now();
    instance.checks().set_ready(false);
    wait("the drained instance out of rotation", || async { !monitor(7).await.1 }).await;
    timeline.push(("not ready to not routable", cause.elapsed()));
    let mut saw_not_ready = false;
    while let Ok(e) = events.try_recv() {
        if let HealthEvent::ReadinessChanged { instance: InstanceId(7), ready: false, .. } = e.event {
            saw_not_ready = true;
        }
        assert!(!matches!(e.event, HealthEvent::NeedsRecovery { .. }), "{e:?}");
    }
    assert!(saw_not_ready, "ReadinessChanged(false) published");
    // Several liveness rounds later, still no recovery.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (view, routable) = monitor(7).await;
    let view = view.expect("still monitored");
    assert!(!routable && !view.ready, "{view:?}");
    assert!(!view.needs_recovery, "liveness probes go to /livez, which passes: {view:?}");
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e.event, HealthEvent::NeedsRecovery { .. }), "{e:?}");
    }

    // 4. DELETE: the peer goes with it. Another instance registered on the
    //    same node without a health endpoint is probed over UDP (to an
    //    address the driver does not have), not at the old URL.
    assert_eq!(writer.deregister(7).await, Ok(true));
    assert_eq!(control.driver.http_peer(NodeId(8)).await.unwrap(), None, "removed with the instance");
    let after_delete = control.driver.stats();
    let mut other = RegisterInstance::new(9, "web", "v1", 8);
    other.ttl_ms = Some(TTL_MS);
    writer.register(&other).await.expect("registered");
    wait("a probe to node 8 sent as a datagram", || async {
        control.driver.stats().unknown_destinations > after_delete.unknown_destinations
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let later = control.driver.stats();
    assert_eq!(later.http_probes, after_delete.http_probes, "no HTTP probe after the DELETE: {later:?}");
    assert_eq!(writer.deregister(9).await, Ok(true));

    instance.shutdown().await.expect("instance stops cleanly");
    timeline.push(("whole story", started.elapsed()));
    eprintln!("timeline: {timeline:?}");
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_names_nobody_uses_are_forgotten_so_a_new_service_always_registers() {
    // Issue 14: after max_services names came and went, every new service
    // got `503 catalog_full` with an empty catalog. Names nobody uses now
    // make room; only when every known service is in use is one refused.
    let registry = RegistryConfig { max_services: 3, ..RegistryConfig::default() };
    let control = control_from(Vec::new(), registry).await;
    let writer = control.client(Some(TOKEN));
    for n in 1..=12u32 {
        let body = RegisterInstance::new(n, format!("svc-{n}"), "v1", n + 100);
        writer.register(&body).await.unwrap_or_else(|e| panic!("name {n} registers: {e:?}"));
        assert_eq!(writer.deregister(n).await, Ok(true));
    }
    // Three services in use: a fourth is refused, with a reason that says
    // what to do.
    for n in 20..23u32 {
        writer.register(&RegisterInstance::new(n, format!("busy-{n}"), "v1", n + 100)).await.expect("room");
    }
    let answer = post(
        &control,
        Some(TOKEN),
        serde_json::to_vec(&RegisterInstance::new(30, "one-too-many", "v1", 130)).unwrap(),
    )
    .await;
    refused(&answer, StatusCode::SERVICE_UNAVAILABLE, "catalog_full", "max_services");
    let forgotten = control.query(|c| c.registry().reclaimed_services()).await;
    assert!(forgotten >= 12, "forgotten {forgotten}");
    control.shutdown().await;
}
