//! How long listing a large catalog over the control API takes, and how
//! long it holds up the control driver.
//!
//! `cargo run --release -p vigil-tokio --example api_list_load -- [INSTANCES]`
//! registers INSTANCES (default 20 000) instances directly on the control
//! driver, then reads the whole catalog over loopback HTTP, page by page
//! (`?limit=1000&after=`), while another task pings the driver with an
//! empty query every millisecond. It prints the time and bytes of the
//! listing and the worst ping: the longest the driver was busy with
//! something else, which is what a `dead_after` timer must never wait for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;
use vigil_core::control::{ControlConfig, ControlPlane};
use vigil_core::registry::RegistryConfig;
use vigil_core::{NodeId, health::LivenessTimeouts};
use vigil_tokio::api::{Endpoints, InstanceList, RegisterInstance};
use vigil_tokio::probe::HttpTarget;
use vigil_tokio::{ApiClient, ApiConfig, Clock, Driver, serve_api};

const TOKEN: &str = "load-token";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let clock = Clock::start();
    let config = ControlConfig {
        liveness_classes: vec![LivenessTimeouts {
            suspect_after: vigil_core::Duration::from_millis(300),
            dead_after: vigil_core::Duration::from_millis(600),
        }],
        registry: RegistryConfig { max_instances: 1 << 20, ..RegistryConfig::default() },
        ..ControlConfig::default()
    };
    let machine = ControlPlane::new(&config, clock.now()).expect("valid config");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let driver =
        Driver::bind(NodeId(0), loopback, clock, machine, vigil_tokio::wire::WireAuth::insecure_no_auth())
            .await
            .expect("bind")
            .spawn();
    let (api_addr, _api) =
        serve_api(loopback, driver.machine_ref(), ApiConfig::with_token(TOKEN)).await.expect("serve");

    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let chunk = chunk.to_vec();
        driver
            .with_machine_mut(move |c: &mut ControlPlane, now| {
                for id in chunk {
                    let mut r = RegisterInstance::new(id, format!("svc-{}", id % 50), "v1.2.3", id + 1);
                    // As large as the registry allows: 32 tags, 16 endpoints,
                    // ~200 bytes each (about 12 KB of JSON per record).
                    let pad = "x".repeat(180);
                    r.tags = (0..32).map(|t| format!("tag-{t}-{id}-{pad}")).collect();
                    r.endpoints = Endpoints(
                        (0..16)
                            .map(|e| (format!("endpoint-{e}"), format!("http://10.0.0.1:{}/{pad}", 8000 + e)))
                            .collect(),
                    );
                    r.ttl_ms = Some(3_600_000);
                    c.register(now, r.to_request()).expect("registers");
                }
            })
            .await
            .expect("driver running");
    }
    println!("registered {n} instances in {:?}", started.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let worst_us = Arc::new(AtomicU64::new(0));
    let pings = Arc::new(AtomicU64::new(0));
    let pinger = {
        let (stop, worst_us, control) = (Arc::clone(&stop), Arc::clone(&worst_us), driver.machine_ref());
        let pings = Arc::clone(&pings);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                control.with_machine(|_| ()).await.expect("driver running");
                let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                worst_us.fetch_max(us, Ordering::Relaxed);
                pings.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let idle_worst = worst_us.swap(0, Ordering::Relaxed);
    pings.store(0, Ordering::Relaxed);

    let mut client =
        ApiClient::new(HttpTarget::new(api_addr, "/").expect("target")).with_token(Some(TOKEN.into()));
    client.timeout = Duration::from_secs(60);
    client.max_answer = 1 << 30;
    let started = Instant::now();
    let (mut listed, mut bytes, mut pages, mut largest) = (0usize, 0usize, 0usize, 0usize);
    let mut after: Option<u32> = None;
    loop {
        let path = match after {
            Some(a) => format!("/v1/instances?limit=1000&after={a}"),
            None => "/v1/instances?limit=1000".to_owned(),
        };
        let answer = client.send(Method::GET, &path, None).await.expect("answers");
        assert!(answer.status.is_success(), "{}: {}", answer.status, answer.reason());
        let page: InstanceList = serde_json::from_slice(&answer.body).expect("a list");
        listed += page.instances.len();
        bytes += answer.body.len();
        largest = largest.max(answer.body.len());
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = pinger.await;
    println!(
        "listed {listed} instances in {pages} pages, {bytes} bytes (largest page {largest}), in {took:?}; \
         worst of {} driver pings while listing {} µs (idle: {idle_worst} µs)",
        pings.load(Ordering::Relaxed),
        worst_us.load(Ordering::Relaxed)
    );
}
