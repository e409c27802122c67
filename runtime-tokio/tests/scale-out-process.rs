//! Scale-out over real processes on loopback: a degraded instance's
//! ladder asks for one more instance of its service, the
//! [`ProcessPlatform`] starts a standby slot as a `vigil-instance` child,
//! and the executor registers it with the control plane, whose failure
//! detector then sees it alive from its own heartbeats.
//!
//! The degraded verdict is real: the control node probes instance 0's
//! liveness over HTTP at a stand-in served by the test, which fails one
//! probe in two (an error rate, never enough failures in a row to fail
//! the check). Once the stand-in answers well again, the asking instance
//! is healthy and its episode resolved by the action.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant as TokioInstant;
use vigil_core::control::{ControlConfig, ControlPlane};
use vigil_core::health::{
    CheckConfig, ErrorRateRule, HealthEvent, HealthStatus, InstanceHealthConfig, Liveness, LivenessTimeouts,
    ProbeCheck, ProbeKind,
};
use vigil_core::recovery::{
    ActionKind, DecisionKind, Ladder, Policy, RecoveryConfig, RecoveryOutput, Rung, ServiceSpec, Strategy,
};
use vigil_core::{Duration, InstanceId, NodeId, ServiceId};
use vigil_tokio::platform::ProcessEvent;
use vigil_tokio::probe::HttpTarget;
use vigil_tokio::{
    Clock, Driver, DriverEvent, ExecutorConfig, HttpPeer, Platform, ProcessPlatform,
    spawn_recovery_executor_with,
};

use support::{
    CONTROL, DEAD_AFTER, RecoveryLog, SUSPECT_AFTER, agent_node, any_loopback_port, control_config,
    instance_spec, ms, scratch_root, wait_process_event,
};

const SERVICE: ServiceId = ServiceId(0);
/// The instance whose health degrades: a `vigil-instance` child for its
/// heartbeats, probed over HTTP at the test's stand-in. Class 0.
const DEGRADED: InstanceId = InstanceId(0);
/// The standby slot: an id and a node no agent derives by itself
/// (`vigil-instance` would take instance + 1), so the node the control
/// plane records can only come from the slot.
const STANDBY: (InstanceId, NodeId) = (InstanceId(1), NodeId(20));
/// The class of scaled-out instances: heartbeats only (a `vigil-instance`
/// without `VIGIL_HTTP` answers no probes).
const HEARTBEAT_CLASS: usize = 1;

/// Probes of the degraded instance: every 100 ms.
const PROBE: Duration = Duration::from_millis(100);
/// Generous bounds of each step on a loaded machine.
const ALIVE_WITHIN: Duration = Duration::from_secs(5);
const DEGRADED_WITHIN: Duration = Duration::from_secs(10);
const SCALED_OUT_WITHIN: Duration = Duration::from_secs(15);
const RESOLVED_WITHIN: Duration = Duration::from_secs(15);
const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// A liveness endpoint that fails every other probe until told to heal.
async fn flaky_livez(healed: Arc<AtomicBool>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let calls = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/livez",
        get(move || {
            let (calls, healed) = (Arc::clone(&calls), Arc::clone(&healed));
            async move {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                if healed.load(Ordering::Relaxed) || n % 2 == 0 {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(any_loopback_port()).await.expect("bind the stand-in");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, server)
}

/// The control node's settings: instance 0 in class 0 (heartbeats, and a
/// liveness probe judged by its error rate); class 1 heartbeats only;
/// a degraded instance's ladder is one scale-out.
fn config() -> ControlConfig {
    let timeouts = LivenessTimeouts { suspect_after: SUSPECT_AFTER, dead_after: DEAD_AFTER };
    let probe = ProbeCheck {
        interval: PROBE,
        timeout: PROBE,
        // Above 10 % of the last 10 probes failed, judged from 6: degraded.
        error_rate: Some(ErrorRateRule {
            window_samples: 10,
            min_samples: 6,
            degraded_permille: 100,
            failed_permille: None,
        }),
        ..ProbeCheck::default()
    };
    // Five failures in a row fail the check; one in two never does.
    let liveness = CheckConfig::probe_with(ProbeKind::Liveness, probe).with_thresholds(5, 1);
    let policy =
        Policy { degraded: Ladder::new([Rung::new(Strategy::ScaleOut { by: 1 }, 1)]), ..Policy::default() };
    let recovery = RecoveryConfig {
        services: vec![ServiceSpec::new(SERVICE)],
        default_policy: policy,
        // Far beyond the test: the action is ended by the asker's health.
        action_timeout: Duration::from_secs(600),
        ..RecoveryConfig::default()
    };
    ControlConfig {
        liveness_classes: vec![timeouts, timeouts],
        health_classes: vec![Some(InstanceHealthConfig { checks: vec![liveness], flap: None }), None],
        recovery: Some(recovery),
        ..control_config(&[DEGRADED.0])
    }
}

/// Receive health events until `done` holds; panic with those seen if
/// `deadline` passes first.
async fn wait_health(
    rx: &mut broadcast::Receiver<DriverEvent>,
    deadline: TokioInstant,
    what: &str,
    mut done: impl FnMut(&HealthEvent) -> bool,
) -> DriverEvent {
    let mut seen = Vec::new();
    loop {
        let Ok(received) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            panic!("deadline passed waiting for {what}; health events so far: {seen:#?}");
        };
        let event = received.expect("control driver alive and subscriber not lagging");
        if done(&event.event) {
            return event;
        }
        seen.push(event.event);
    }
}

fn turned_alive(event: &HealthEvent, who: InstanceId) -> bool {
    matches!(event, HealthEvent::LivenessChanged { instance, to: Liveness::Alive, .. } if *instance == who)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_instance_scales_its_service_out_and_the_new_process_registers_and_turns_alive() {
    let clock = Clock::start();
    let healed = Arc::new(AtomicBool::new(false));
    let (livez, stand_in) = flaky_livez(Arc::clone(&healed)).await;

    let control = ControlPlane::new(&config(), clock.now()).expect("valid control config");
    let (actions, actions_rx) = mpsc::channel(64);
    let peer = HttpPeer {
        liveness: Some(HttpTarget::new(livez, "/livez").expect("valid target")),
        ..HttpPeer::default()
    };
    let driver = Driver::bind(CONTROL, any_loopback_port(), clock, control, support::test_auth())
        .await
        .expect("bind control")
        .with_http_peers([(agent_node(DEGRADED.0), peer)])
        .with_recovery(actions);
    let (mut health, mut recovery) = (driver.subscribe(), RecoveryLog::new(driver.subscribe_recovery()));
    let control = driver.spawn();

    let root = scratch_root("scale-out");
    let platform =
        Arc::new(ProcessPlatform::new(&root).with_service(SERVICE, instance_spec(control.local_addr())));
    platform.add_instance(DEGRADED, SERVICE).expect("service has a spec");
    platform.add_standby(SERVICE, [STANDBY]).expect("a fresh slot");
    let mut processes = platform.subscribe();
    let config = ExecutorConfig::default().with_scale_out_class(SERVICE, HEARTBEAT_CLASS);
    let executor =
        spawn_recovery_executor_with(control.machine_ref(), Arc::clone(&platform), actions_rx, config);
    platform.start(DEGRADED).await.expect("vigil-instance starts");
    let started = TokioInstant::now();

    wait_health(&mut health, started + ALIVE_WITHIN, "instance 0 alive", |e| turned_alive(e, DEGRADED)).await;
    wait_health(&mut health, started + DEGRADED_WITHIN, "instance 0 degraded", |e| {
        matches!(e, HealthEvent::StatusChanged { instance, to: HealthStatus::Degraded, .. } if *instance == DEGRADED)
    })
    .await;

    // The ladder's one rung: a scale-out of the service, for instance 0.
    let scale_out = recovery
        .wait_for(
            TokioInstant::now() + SCALED_OUT_WITHIN,
            "a scale-out",
            |o| matches!(o, RecoveryOutput::Action(a) if matches!(a.kind, ActionKind::ScaleOut { .. })),
        )
        .await;
    let RecoveryOutput::Action(scale_out) = scale_out else { unreachable!("matched an action above") };
    assert_eq!((scale_out.kind, scale_out.service), (ActionKind::ScaleOut { by: 1 }, SERVICE));
    assert_eq!(scale_out.instance, Some(DEGRADED));

    // The standby slot runs, as its own process.
    let spawned = wait_process_event(
        &mut processes,
        started + SCALED_OUT_WITHIN,
        "the standby's start",
        |e| matches!(e, ProcessEvent::Started { instance, .. } if *instance == STANDBY.0),
    )
    .await;
    let ProcessEvent::Started { pid, at: spawned_tokio, .. } = spawned else { unreachable!("a start") };
    assert_eq!(platform.pid(STANDBY.0), Some(pid));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} is not running");
    assert_eq!(platform.standby(SERVICE), [], "the slot is spent");

    // Registered by the executor, then alive from its own heartbeats.
    let alive = wait_health(&mut health, spawned_tokio + ALIVE_WITHIN, "the new instance alive", |e| {
        turned_alive(e, STANDBY.0)
    })
    .await;
    let (service, node, class, routable) = control
        .with_machine(|c: &ControlPlane| {
            let record = c.registry().instance(STANDBY.0).expect("registered");
            (
                c.registry().service_name(record.service).map(str::to_owned),
                c.node_of(STANDBY.0),
                c.detector().instance(STANDBY.0).map(|l| l.class),
                c.is_routable(STANDBY.0),
            )
        })
        .await
        .expect("control running");
    assert_eq!(service.as_deref(), Some("service-0"));
    assert_eq!((node, class, routable), (Some(STANDBY.1), Some(HEARTBEAT_CLASS), true));
    let stats = executor.stats();
    assert_eq!((stats.scaled_out, stats.registered, stats.registrations_failed), (1, 1, 0), "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    let spawned_at = clock.to_vigil(spawned_tokio);
    eprintln!(
        "scale-out timing (ms): action -> spawned {}, spawned -> alive {}, action -> alive {}",
        ms(scale_out.at, spawned_at),
        ms(spawned_at, alive.at),
        ms(scale_out.at, alive.at),
    );

    // The asker heals: its episode ends, by the action.
    healed.store(true, Ordering::Relaxed);
    let resolved = recovery
        .wait_for(TokioInstant::now() + RESOLVED_WITHIN, "the episode resolved", |o| {
            matches!(o, RecoveryOutput::Decision(d)
                if d.instance == Some(DEGRADED) && matches!(d.kind, DecisionKind::Resolved { .. }))
        })
        .await;
    let RecoveryOutput::Decision(resolved) = resolved else { unreachable!("a decision") };
    assert_eq!(resolved.kind, DecisionKind::Resolved { by_action: true });
    recovery.collect_queued();
    assert_eq!(recovery.actions(), [scale_out], "one action in all");

    control.shutdown().await.expect("control shuts down cleanly");
    let stats = tokio::time::timeout(FINISH_WITHIN, executor)
        .await
        .expect("the executor stops once the control driver is gone")
        .expect("the executor did not panic");
    assert_eq!((stats.actions, stats.failed), (1, 0), "{stats:?}");
    for instance in [DEGRADED, STANDBY.0] {
        platform.stop(instance).await.expect("children die");
        assert_eq!(platform.pid(instance), None);
    }
    stand_in.abort();
    let _ = std::fs::remove_dir_all(&root);
}
