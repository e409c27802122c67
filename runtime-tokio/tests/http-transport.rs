//! The driver's HTTP transports on loopback, case by case: a probe that
//! times out feeds nothing back (the monitor's own deadline counts the
//! round unresponsive), exchanges beyond the in-flight bound are dropped
//! and counted, and a call with no routable endpoint resolves at once.

mod loopback;

use std::net::SocketAddr;

use tokio::time::Instant as TokioInstant;
use vigil_core::client::{CallOutcome, ClientConfig, ClientNode};
use vigil_core::control::{ControlConfig, ControlPlane, WatchedInstance};
use vigil_core::health::{
    CheckConfig, HealthStatus, InstanceHealthConfig, LivenessTimeouts, ProbeCheck, ProbeKind,
};
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, NodeId, ServiceId};
use vigil_tokio::probe::HttpTarget;
use vigil_tokio::{Clock, DiscoveryClient, DiscoveryConfig, Driver, HttpPeer, TransportConfig};

/// The fleet key every node of these tests shares (64 hex digits, as in a
/// configuration file).
const TEST_WIRE_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Every node's [`vigil_tokio::WireAuth`]: the shared test key, id 1.
fn test_auth() -> vigil_tokio::WireAuth {
    vigil_tokio::WireAuth::fleet_hex(1, TEST_WIRE_KEY).expect("a valid key")
}

const WITHIN: Duration = Duration::from_secs(5);
const PROBE: Duration = Duration::from_millis(100);

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_instance_is_unresponsive_and_the_in_flight_bound_drops_the_excess() {
    let (hung, _server) = loopback::hung_server().await;
    let clock = Clock::start();
    let probe = ProbeCheck { interval: PROBE, timeout: PROBE, ..ProbeCheck::default() };
    let config = ControlConfig {
        recovery: None,
        seed: vigil_core::rng::Seed(0),
        registry: Default::default(),
        service_names: Vec::new(),
        liveness_classes: vec![LivenessTimeouts {
            suspect_after: Duration::from_secs(60),
            dead_after: Duration::from_secs(60),
        }],
        health_classes: vec![Some(InstanceHealthConfig {
            // Two checks: two probes per round, one more than the bound.
            checks: vec![
                CheckConfig::probe_with(ProbeKind::Liveness, probe).with_thresholds(2, 1),
                CheckConfig::probe_with(ProbeKind::Readiness, probe).with_thresholds(2, 1),
            ],
            flap: None,
        })],
        instances: vec![WatchedInstance {
            instance: InstanceId(0),
            node: NodeId(1),
            service: ServiceId(0),
            class: 0,
            zone: None,
        }],
    };
    let control = ControlPlane::new(&config, clock.now()).expect("valid config");
    let peer =
        HttpPeer { health: Some(HttpTarget::new(hung, "/readyz").unwrap()), liveness: None, service: None };
    let transport = TransportConfig { probe_timeout: PROBE, max_in_flight: 1, ..TransportConfig::default() };
    let control = Driver::bind(NodeId(0), loopback_any(), clock, control, test_auth())
        .await
        .expect("bind")
        .with_http_peers([(NodeId(1), peer)])
        .with_transport(transport)
        .spawn();

    let deadline = TokioInstant::now() + WITHIN;
    loop {
        let status = control.with_machine(|c| c.monitor().status(InstanceId(0))).await.unwrap();
        let stats = control.stats();
        if status == Some(HealthStatus::Unresponsive) && stats.http_timeouts > 0 && stats.http_dropped > 0 {
            // Timeouts feed nothing back: the only probe answers are none.
            assert_eq!(stats.datagrams_received, 0, "{stats:?}");
            break;
        }
        assert!(TokioInstant::now() < deadline, "not unresponsive in time: {status:?}, {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    control.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_call_with_no_routable_endpoint_resolves_at_once() {
    let clock = Clock::start();
    let machine = ClientNode::new(ClientConfig::default(), clock.now(), Seed(1)).expect("valid config");
    // A control node that never answers: nothing is ever routable.
    let silent = loopback::closed_port().await;
    let client = DiscoveryClient::start(
        clock,
        machine,
        DiscoveryConfig::new(NodeId(9), NodeId(0), silent).with_auth(test_auth()),
    )
    .await
    .expect("client starts");
    for _ in 0..3 {
        let done = tokio::time::timeout(WITHIN, client.call()).await.expect("resolves").expect("running");
        assert_eq!((done.outcome, done.instance), (CallOutcome::NoEndpoint, None));
    }
    assert_eq!(client.driver().stats().calls_done, 3);
    client.shutdown().await.expect("clean shutdown");
}
