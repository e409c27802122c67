//! Random requests against the API's router in-process
//! ([`vigil_tokio::api::app`], driven with `tower::ServiceExt::oneshot`):
//! random methods, paths, query strings, headers, content types and
//! bodies, malformed ones included. None panics; every 4xx/5xx answer is
//! JSON `{error, kind}`; no request without the write token changes the
//! catalog.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use tower::ServiceExt as _;
use vigil_core::control::{ControlConfig, ControlPlane};
use vigil_core::health::LivenessTimeouts;
use vigil_core::{Duration, NodeId};
use vigil_tokio::api::{ErrorBody, RegisterInstance};
use vigil_tokio::{ApiConfig, Clock, Driver, DriverHandle};

const TOKEN: &str = "fuzz-write-token";
const READ_TOKEN: &str = "fuzz-read-token";

/// How many random requests: modest, for CI (each is one in-process call).
const CASES: u32 = 512;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    driver: DriverHandle<ControlPlane>,
    app: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (driver, app) = runtime.block_on(async {
            let clock = Clock::start();
            let config = ControlConfig {
                liveness_classes: vec![LivenessTimeouts {
                    suspect_after: Duration::from_secs(30),
                    dead_after: Duration::from_secs(60),
                }],
                ..ControlConfig::default()
            };
            let machine = ControlPlane::new(&config, clock.now()).unwrap();
            let driver = Driver::bind(
                NodeId(0),
                "127.0.0.1:0".parse().unwrap(),
                clock,
                machine,
                vigil_tokio::WireAuth::insecure_no_auth(),
            )
            .await
            .unwrap()
            .spawn();
            // A few instances, so that reads and deletes find something.
            driver
                .with_machine_mut(|c, now| {
                    for id in 0..5 {
                        c.register(now, RegisterInstance::new(id, "web", "v1", id + 1).to_request()).unwrap();
                    }
                })
                .await
                .unwrap();
            let app = vigil_tokio::api::app(driver.machine_ref(), &ApiConfig::with_tokens(READ_TOKEN, TOKEN))
                .unwrap();
            (driver, app)
        });
        Fixture { runtime, driver, app }
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("v1".to_owned()),
        Just("instances".to_owned()),
        Just("services".to_owned()),
        "[0-9]{1,11}",
        "%[0-9A-F]{2}%[0-9A-F]{2}",
        "[a-z%.~-]{0,12}",
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?limit=1000".to_owned()),
        Just("?limit=0".to_owned()),
        Just("?after=3&limit=2".to_owned()),
        "\\?[a-z]{1,6}=[a-z0-9%+]{0,8}(&tag=[a-z]{0,4}){0,3}",
    ];
    (prop::collection::vec(segment, 0..5), query).prop_map(|(segments, query)| {
        let mut path = String::from("/");
        path.push_str(&segments.join("/"));
        path.push_str(&query);
        path
    })
}

fn token() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(format!("Bearer {READ_TOKEN}"))),
        Just(Some(format!("Bearer {TOKEN}"))),
        Just(Some(TOKEN.to_owned())),
        Just(Some(format!("Basic {TOKEN}"))),
        "[ -~]{0,24}".prop_map(Some),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=utf-8".to_owned())),
        Just(Some("text/plain".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        "[ -~]{0,24}".prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(br#"{"id": 9, "service": "web", "version": "v1", "node": 10}"#.to_vec()),
        (0u32..20, "[a-z]{0,8}", "[a-z0-9.]{0,6}").prop_map(|(id, service, version)| {
            format!(r#"{{"id": {id}, "service": "{service}", "version": "{version}", "node": {}}}"#, id + 1)
                .into_bytes()
        }),
        "[ -~]{0,64}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..128),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_panic_refuse_in_json_and_change_nothing_without_the_write_token(
        method in method(),
        path in path(),
        token in token(),
        content_type in content_type(),
        body in body(),
        extra in prop::option::of(("[a-z-]{1,12}", "[ -~]{0,16}")),
    ) {
        let fixture = fixture();
        let mut request = Request::builder().method(method.clone()).uri(&path);
        if let Some(token) = &token {
            if let Ok(value) = header::HeaderValue::from_str(token) {
                request = request.header(header::AUTHORIZATION, value);
            }
        }
        if let Some(content_type) = &content_type {
            if let Ok(value) = header::HeaderValue::from_str(content_type) {
                request = request.header(header::CONTENT_TYPE, value);
            }
        }
        if let Some((name, value)) = &extra {
            if let (Ok(name), Ok(value)) =
                (header::HeaderName::from_bytes(name.as_bytes()), header::HeaderValue::from_str(value))
            {
                request = request.header(name, value);
            }
        }
        // Paths the strategy makes are valid URIs; skip one that is not.
        let Ok(request) = request.body(Body::from(body.clone())) else { return Ok(()) };
        let writes = token.as_deref() == Some(&format!("Bearer {TOKEN}"));
        let (status, content, body_bytes, index_before, index_after) = fixture.runtime.block_on(async {
            let index = || fixture.driver.with_machine(|c| c.registry().index());
            let before = index().await.unwrap();
            let response = fixture.app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let content = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response.into_body().collect().await.expect("a body").to_bytes();
            (status, content, bytes, before, index().await.unwrap())
        });
        prop_assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}: 500");
        if (status.is_client_error() || status.is_server_error()) && method != Method::HEAD {
            prop_assert_eq!(content.as_deref(), Some("application/json"), "{} {}: {}", method, path, status);
            let error: Result<ErrorBody, _> = serde_json::from_slice(&body_bytes);
            prop_assert!(error.is_ok(), "{} {}: {} {:?}", method, path, status, body_bytes);
            let error = error.unwrap();
            prop_assert!(!error.error.is_empty() && !error.kind.is_empty(), "{:?}", error);
        }
        if !writes {
            prop_assert_eq!(index_before, index_after, "{} {} changed the catalog without the write token", method, path);
        }
    }
}
