//! Discovery, health monitoring and client-side balancing end to end, on
//! loopback, with real HTTP: one control node probing three instances of
//! service `work` and one of service `other` (axum servers with the health
//! endpoints and a `/work` route, plus their heartbeat agents), and one
//! discovery client of `work` calling them.
//!
//! The story (the "for real" test): all three become routable and
//! serve calls; instance 1 is drained (`/readyz` answers 503) and the
//! monitor fails it; instance 2's HTTP server stops (probes refused) and the
//! monitor fails it; calls keep succeeding on instance 0 and never reach the
//! sick two once the client has heard; instance 1 is restored and takes
//! calls again. Throughout, the `other` instance is healthy and routable
//! at the control node, and the client (which discovers `work` only)
//! never counts it routable nor calls it. Every wait has a deadline: the
//! deadline is the feature.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use tokio::time::Instant as TokioInstant;
use vigil_core::balance::{BalancerConfig, Strategy};
use vigil_core::client::{CallDone, CallOutcome, ClientConfig, ClientNode};
use vigil_core::control::{ControlConfig, ControlPlane, WatchedInstance};
use vigil_core::health::{
    AgentConfig, Cause, CheckConfig, HealthStatus, InstanceHealthConfig, LivenessTimeouts, ProbeCheck,
    ProbeKind,
};
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, NodeId, ServiceId};
use vigil_tokio::instance::{Instance, InstanceConfig};
use vigil_tokio::probe::HttpTarget;
use vigil_tokio::{
    Clock, DiscoveryClient, DiscoveryConfig, Driver, DriverHandle, HealthChecks, TransportConfig,
    incarnation_now,
};

/// The fleet key every node of these tests shares (64 hex digits, as in a
/// configuration file).
const TEST_WIRE_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Every node's [`vigil_tokio::WireAuth`]: the shared test key, id 1.
fn test_auth() -> vigil_tokio::WireAuth {
    vigil_tokio::WireAuth::fleet_hex(1, TEST_WIRE_KEY).expect("a valid key")
}

const CONTROL: NodeId = NodeId(0);
const CLIENT: NodeId = NodeId(100);
const INSTANCES: u32 = 3;
const DRAINED: u32 = 1;
const STOPPED: u32 = 2;
const SURVIVOR: u32 = 0;
/// The instance of another service: healthy all along, never the client's.
const OTHER: u32 = 3;
/// `/work` requests the `other` instance served (the test's one fleet).
static OTHER_SERVED: AtomicU64 = AtomicU64::new(0);
/// The service the client discovers.
const WORK: ServiceId = ServiceId(0);

/// Heartbeats: every 50 ms, suspect after 300 ms, dead after 600 ms.
const BEAT: Duration = Duration::from_millis(50);
/// Both probes (liveness, readiness): every 100 ms, 100 ms to answer.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// Two failures in a row fail a check; one success restores it.
const FAILURES: u32 = 2;
const SUCCESSES: u32 = 1;

/// The deadline of every step. Detection takes `FAILURES` probe rounds
/// (200–300 ms) plus an endpoint update; the rest is margin for a loaded
/// machine.
const WITHIN: Duration = Duration::from_secs(5);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(10);
/// Calls made to show that a set of instances (and no other) serves.
const BATCH: usize = 40;

fn node_of(instance: u32) -> NodeId {
    NodeId(instance + 1)
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Fleet {
    started: TokioInstant,
    control: DriverHandle<ControlPlane>,
    instances: Vec<Instance>,
    client: DiscoveryClient,
}

impl Fleet {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Wait until `query` holds on the control plane.
    async fn wait_control<F>(&self, what: &str, query: F)
    where
        F: Fn(&ControlPlane) -> bool + Clone + Send + 'static,
    {
        let control = &self.control;
        wait(what, || {
            let query = query.clone();
            async move { control.with_machine(move |c| query(c)).await.expect("control running") }
        })
        .await;
    }

    /// Wait until the client's machine sees exactly `instances` routable.
    async fn wait_client_routable(&self, instances: &[u32]) {
        let want: Vec<InstanceId> = instances.iter().map(|&i| InstanceId(i)).collect();
        let what = format!("the client to see exactly {want:?} routable");
        let client = &self.client;
        wait(&what, || {
            let want = want.clone();
            async move { client.routable().await.expect("client running") == want }
        })
        .await;
    }

    /// Make `BATCH` calls; every one must succeed, on an instance of
    /// `allowed`. Returns the calls per instance.
    async fn calls_only_on(&self, allowed: &[u32]) -> BTreeMap<u32, usize> {
        let mut served = BTreeMap::new();
        for _ in 0..BATCH {
            let done = self.call().await;
            assert_eq!(done.outcome, CallOutcome::Ok, "call failed: {done:?}");
            let instance = done.instance.expect("a served call names its instance").0;
            assert!(
                allowed.contains(&instance),
                "call served by {instance}, allowed only {allowed:?}: {done:?}"
            );
            *served.entry(instance).or_insert(0) += 1;
        }
        served
    }

    /// Call until `instance` has served one call successfully.
    async fn wait_served_by(&self, instance: u32) {
        let deadline = TokioInstant::now() + WITHIN;
        let mut seen = Vec::new();
        loop {
            let done = self.call().await;
            if done.outcome == CallOutcome::Ok && done.instance == Some(InstanceId(instance)) {
                return;
            }
            seen.push(done);
            assert!(
                TokioInstant::now() < deadline,
                "no successful call on instance {instance} within {WITHIN:?}; the last calls: {:?}",
                &seen[seen.len().saturating_sub(5)..]
            );
        }
    }

    async fn call(&self) -> CallDone {
        tokio::time::timeout(WITHIN, self.client.call())
            .await
            .expect("the client answers every call within its call timeout")
            .expect("client running")
    }
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

fn health_config() -> InstanceHealthConfig {
    let probe = ProbeCheck { interval: PROBE_INTERVAL, timeout: PROBE_TIMEOUT, ..ProbeCheck::default() };
    InstanceHealthConfig {
        checks: vec![
            CheckConfig::probe_with(ProbeKind::Liveness, probe).with_thresholds(FAILURES, SUCCESSES),
            CheckConfig::probe_with(ProbeKind::Readiness, probe).with_thresholds(FAILURES, SUCCESSES),
        ],
        flap: None,
    }
}

async fn start_instance(instance: u32, control_addr: SocketAddr) -> Instance {
    let checks = HealthChecks::new();
    checks.mark_started();
    let app = Router::new().route(
        "/work",
        get(move || async move {
            if instance == OTHER {
                OTHER_SERVED.fetch_add(1, Ordering::Relaxed);
            }
            format!("served by {instance}")
        }),
    );
    let agent = AgentConfig {
        instance: InstanceId(instance),
        control: CONTROL,
        interval: BEAT,
        incarnation: incarnation_now(),
    };
    Instance::start(
        InstanceConfig::new(node_of(instance), agent, control_addr, checks, app).with_auth(test_auth()),
    )
    .await
    .expect("instance starts")
}

/// Bring up the control node, the three instances and the client.
async fn fleet() -> Fleet {
    let started = TokioInstant::now();
    let clock = Clock::start();
    let config = ControlConfig {
        recovery: None,
        seed: vigil_core::rng::Seed(0),
        registry: Default::default(),
        service_names: vec!["work".into(), "other".into()],
        liveness_classes: vec![LivenessTimeouts {
            suspect_after: Duration::from_millis(300),
            dead_after: Duration::from_millis(600),
        }],
        health_classes: vec![Some(health_config())],
        instances: (0..=OTHER)
            .map(|i| WatchedInstance {
                instance: InstanceId(i),
                node: node_of(i),
                service: if i == OTHER { ServiceId(1) } else { WORK },
                class: 0,
                zone: None,
            })
            .collect(),
    };
    let control = ControlPlane::new(&config, clock.now()).expect("valid control config");
    let control = Driver::bind(CONTROL, loopback(), clock, control, test_auth())
        .await
        .expect("bind control")
        // Clients are not known in advance: answer where they subscribe from.
        .with_learned_peers(true)
        .with_transport(TransportConfig { probe_timeout: PROBE_TIMEOUT, ..TransportConfig::default() });
    let mut instances = Vec::new();
    for i in 0..=OTHER {
        instances.push(start_instance(i, control.local_addr()).await);
    }
    let peers: Vec<_> =
        instances.iter().map(|inst| (inst.node(), inst.http_peer("/work").expect("valid path"))).collect();
    let control = control.with_http_peers(peers).spawn();

    let client_config = ClientConfig {
        control: CONTROL,
        // The control node announces `other`'s instance too: ignored.
        service: Some(WORK),
        call_timeout: Duration::from_millis(500),
        resubscribe_interval: Duration::from_millis(500),
        balancer: BalancerConfig {
            // Round robin, so that one caller making one call at a time
            // reaches every instance: peak-EWMA P2C (the default) never
            // tries an instance whose unsampled estimate (`default_rtt`,
            // 30 ms) exceeds its peers' measured loopback latency.
            strategy: Strategy::RoundRobin,
            // Two of three instances fail in this story: keep panic mode
            // (which would spread calls over the sick ones too) below a third.
            panic_threshold_percent: 30,
            slow_start: None,
            ..BalancerConfig::default()
        },
        ..ClientConfig::default()
    };
    let machine = ClientNode::new(client_config, clock.now(), Seed(7)).expect("valid client config");
    let mut discovery = DiscoveryConfig::new(CLIENT, CONTROL, control.local_addr()).with_auth(test_auth());
    discovery.services = instances
        .iter()
        // `other`'s URL too: only the filter keeps the client from it.
        .map(|inst| (inst.node(), HttpTarget::new(inst.http_addr(), "/work").expect("valid path")))
        .collect();
    discovery.transport.request_timeout = Duration::from_millis(500);
    let client = DiscoveryClient::start(clock, machine, discovery).await.expect("client starts");
    Fleet { started, control, instances, client }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_and_stopped_instances_leave_rotation_and_a_restored_one_returns() {
    let fleet = fleet().await;
    // (step, time from its cause to the client having heard): printed, so a
    // run shows how far inside its deadline each step landed.
    let mut timeline = Vec::new();

    // 1. Everyone routable; calls succeed on all three.
    fleet.wait_control("all four routable", |c| (0..=OTHER).all(|i| c.is_routable(InstanceId(i)))).await;
    assert_eq!(fleet.client.service(), Some(WORK));
    fleet.wait_client_routable(&[0, 1, 2]).await;
    timeline.push(("start to all routable at the client", fleet.elapsed()));
    for i in 0..INSTANCES {
        fleet.wait_served_by(i).await;
    }
    // The client reports its calls' outcomes to the control node over UDP
    // (recovery's second vantage point), about once a second.
    fleet.wait_control("the client's call reports arrive", |c| c.call_reports() > 0).await;

    // 2. Drain instance 1: /readyz answers 503, the monitor fails it.
    let cause = TokioInstant::now();
    fleet.instances[DRAINED as usize].checks().set_ready(false);
    let drained = InstanceId(DRAINED);
    fleet
        .wait_control("the drained instance failed and out of rotation", move |c| {
            let view = c.monitor().instance(drained).expect("watched");
            !view.ready && view.status == HealthStatus::Failed && !c.is_routable(drained)
        })
        .await;
    let causes: Vec<Cause> = fleet
        .control
        .with_machine(move |c| c.monitor().checks(drained).map(|v| v.cause).collect())
        .await
        .unwrap();
    assert!(causes.contains(&Cause::ErrorCode { code: 503 }), "drained: an error answer, not {causes:?}");
    fleet.wait_client_routable(&[0, 2]).await;
    timeline.push(("drain to out of rotation at the client", cause.elapsed()));
    let served = fleet.calls_only_on(&[0, 2]).await;
    assert!(!served.contains_key(&DRAINED));

    // 3. Stop instance 2's HTTP server: probes refused, the monitor fails it
    //    (as refused, not unresponsive); its agent still beats.
    let cause = TokioInstant::now();
    fleet.instances[STOPPED as usize].abort_http();
    let stopped = InstanceId(STOPPED);
    fleet
        .wait_control("the stopped instance failed and out of rotation", move |c| {
            let view = c.monitor().instance(stopped).expect("watched");
            let refused = c.monitor().checks(stopped).any(|v| v.cause == Cause::Refused);
            view.status == HealthStatus::Failed && refused && !c.is_routable(stopped)
        })
        .await;
    fleet.wait_client_routable(&[SURVIVOR]).await;
    timeline.push(("stop to out of rotation at the client", cause.elapsed()));
    let served = fleet.calls_only_on(&[SURVIVOR]).await;
    assert_eq!(served.get(&SURVIVOR), Some(&BATCH));
    let alive =
        fleet.control.with_machine(move |c| c.detector().instance(stopped).map(|s| s.status)).await.unwrap();
    assert_eq!(alive, Some(vigil_core::health::Liveness::Alive), "its process (agent) is still up");

    // 4. Restore instance 1: back in rotation, takes calls again.
    let cause = TokioInstant::now();
    fleet.instances[DRAINED as usize].checks().set_ready(true);
    fleet
        .wait_control("the restored instance ready and routable", move |c| {
            let view = c.monitor().instance(drained).expect("watched");
            view.ready && view.status == HealthStatus::Healthy && c.is_routable(drained)
        })
        .await;
    fleet.wait_client_routable(&[SURVIVOR, DRAINED]).await;
    timeline.push(("restore to back in rotation at the client", cause.elapsed()));
    fleet.wait_served_by(DRAINED).await;
    let served = fleet.calls_only_on(&[SURVIVOR, DRAINED]).await;
    timeline.push(("whole story", fleet.elapsed()));
    eprintln!("timeline: {timeline:?}; last batch served {served:?}");

    let control = fleet.control.stats();
    assert!(control.http_probes > 0, "probes went over HTTP: {control:?}");
    assert_eq!(control.http_dropped, 0, "{control:?}");
    assert_eq!(control.unknown_destinations, 0, "every update reached the client: {control:?}");
    let learned = u64::from(OTHER) + 2;
    assert_eq!(control.peers_learned, learned, "the agents' and the client's addresses: {control:?}");
    let other = InstanceId(OTHER);
    assert!(
        fleet.control.with_machine(move |c| c.is_routable(other)).await.unwrap(),
        "the other service's instance stayed routable at the control node"
    );
    assert_eq!(OTHER_SERVED.load(Ordering::Relaxed), 0, "and the client never called it");
    let client = fleet.client.driver().stats();
    assert!(client.http_requests > 0 && client.calls_done > 0, "{client:?}");
    assert_eq!(client.http_dropped, 0, "{client:?}");
    assert_eq!(client.unknown_destinations, 0, "{client:?}");

    fleet.client.shutdown().await.expect("client stops cleanly");
    fleet.control.shutdown().await.expect("control stops cleanly");
    for instance in fleet.instances {
        instance.shutdown().await.expect("instance stops cleanly");
    }
}
