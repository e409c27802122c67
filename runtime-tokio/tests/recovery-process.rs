//! Recovery over real processes on loopback: a control node with recovery
//! on, a [`ProcessPlatform`] running each instance as a `vigil-instance`
//! child, and the executor carrying the coordinator's actions out on it.
//!
//! A child killed with `kill -9` must be declared dead, restarted within
//! the product's limit (recovery starts within 3 s of detection), respawned
//! and alive again, its episode resolved; its sibling never touched. A
//! platform that cannot spawn reports each action failed at once, and the
//! coordinator climbs its ladder to a human without waiting for timeouts.

mod support;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;
use vigil_core::control::{ControlConfig, ControlPlane};
use vigil_core::health::Liveness;
use vigil_core::recovery::{
    Action, ActionKind, BackoffConfig, DecisionKind, RecoveryConfig, RecoveryOutput, ServiceSpec,
};
use vigil_core::{Duration, InstanceId, ServiceId};
use vigil_tokio::platform::ProcessEvent;
use vigil_tokio::{
    Clock, Driver, DriverHandle, Platform, ProcessPlatform, ProcessSpec, spawn_recovery_executor,
};

use support::{
    CONTROL, Change, EventLog, RecoveryLog, any_loopback_port, change, control_config, instance_spec, ms,
    scratch_root, wait_all_alive, wait_process_event,
};

const SERVICE: ServiceId = ServiceId(0);
const INSTANCES: [u32; 2] = [0, 1];
const VICTIM: u32 = 1;
const SIBLING: u32 = 0;

/// Generous: a kill is declared dead `DEAD_AFTER` (500 ms) after the last
/// heartbeat; the margin covers a loaded machine.
const DEAD_WITHIN: Duration = Duration::from_secs(5);
/// The product's limit, and the feature under test: recovery starts within
/// 3 s of detection.
const ACTION_WITHIN: Duration = Duration::from_secs(3);
/// From the kill to the episode resolved: detection, restart, a process
/// start and its first heartbeats, with a wide margin.
const RECOVERED_WITHIN: Duration = Duration::from_secs(30);
/// Bound of anything that merely has to finish (a shutdown).
const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// A control node with recovery on for service 0, watching `instances`,
/// handing its actions to the returned receiver; logs subscribed before
/// the start.
async fn spawn_control_with_recovery(
    clock: Clock,
    instances: &[u32],
    recovery: RecoveryConfig,
) -> (DriverHandle<ControlPlane>, EventLog, RecoveryLog, mpsc::Receiver<Action>) {
    let config = ControlConfig { recovery: Some(recovery), ..control_config(instances) };
    let control = ControlPlane::new(&config, clock.now()).expect("valid control config");
    let (actions, actions_rx) = mpsc::channel(64);
    let driver = Driver::bind(CONTROL, any_loopback_port(), clock, control, support::test_auth())
        .await
        .expect("bind control")
        .with_recovery(actions);
    let (log, recovery_log) =
        (EventLog::new(driver.subscribe()), RecoveryLog::new(driver.subscribe_recovery()));
    (driver.spawn(), log, recovery_log, actions_rx)
}

fn recovery_config() -> RecoveryConfig {
    RecoveryConfig { services: vec![ServiceSpec::new(SERVICE)], ..RecoveryConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_is_restarted_and_alive_again_and_its_sibling_is_untouched() {
    let clock = Clock::start();
    let (control, mut log, mut recovery, actions) =
        spawn_control_with_recovery(clock, &INSTANCES, recovery_config()).await;
    let root = scratch_root("recovery-restart");
    let platform =
        Arc::new(ProcessPlatform::new(&root).with_service(SERVICE, instance_spec(control.local_addr())));
    let mut processes = platform.subscribe();
    for instance in INSTANCES {
        platform.add_instance(InstanceId(instance), SERVICE).expect("service has a spec");
        platform.start(InstanceId(instance)).await.expect("vigil-instance starts");
    }
    let executor = spawn_recovery_executor(control.machine_ref(), Arc::clone(&platform), actions);
    wait_all_alive(&mut log, &INSTANCES).await;
    let victim_pid = platform.pid(InstanceId(VICTIM)).expect("victim running");
    let sibling_pid = platform.pid(InstanceId(SIBLING)).expect("sibling running");

    // A crash from outside, as the kernel's OOM killer would do it.
    let killed =
        std::process::Command::new("kill").args(["-9", &victim_pid.to_string()]).status().expect("run kill");
    assert!(killed.success(), "kill -9 {victim_pid}: {killed}");
    let (killed_at, killed_tokio) = (clock.now(), TokioInstant::now());

    let dead = log
        .wait_for(killed_tokio + DEAD_WITHIN, "the killed instance declared dead", |e| {
            change(e) == Change { instance: VICTIM, from: Liveness::Suspect, to: Liveness::Dead }
        })
        .await;
    let dead_tokio = clock.to_tokio(dead.at).expect("a near instant");

    // Within 3 s of the verdict, on the wall clock and on the machine's.
    let restart = recovery
        .wait_for(
            dead_tokio + ACTION_WITHIN,
            "an action on the killed instance",
            |o| matches!(o, RecoveryOutput::Action(a) if a.instance == Some(InstanceId(VICTIM))),
        )
        .await;
    let RecoveryOutput::Action(restart) = restart else { unreachable!("matched an action above") };
    assert_eq!(restart.kind, ActionKind::Restart, "{restart:?}");
    assert!(
        restart.at - dead.at <= ACTION_WITHIN,
        "restart decided {:?} after the verdict",
        restart.at - dead.at
    );

    let respawned = wait_process_event(&mut processes, killed_tokio + RECOVERED_WITHIN, "the respawn", |e| {
        // Not the first start, still queued.
        matches!(e, ProcessEvent::Started { instance, pid, .. }
            if *instance == InstanceId(VICTIM) && *pid != victim_pid)
    })
    .await;
    let ProcessEvent::Started { pid: new_pid, at: respawned_tokio, .. } = respawned else {
        unreachable!("matched a start above")
    };
    assert_eq!(platform.pid(InstanceId(VICTIM)), Some(new_pid));
    let respawned_at = clock.to_vigil(respawned_tokio);

    let alive = log
        .wait_for(killed_tokio + RECOVERED_WITHIN, "the restarted instance alive again", |e| {
            change(e) == Change { instance: VICTIM, from: Liveness::Dead, to: Liveness::Alive }
        })
        .await;
    let resolved = recovery
        .wait_for(killed_tokio + RECOVERED_WITHIN, "the episode resolved", |o| {
            matches!(o, RecoveryOutput::Decision(d)
                if d.instance == Some(InstanceId(VICTIM)) && matches!(d.kind, DecisionKind::Resolved { .. }))
        })
        .await;
    let RecoveryOutput::Decision(resolved) = resolved else { unreachable!("matched a decision above") };
    assert_eq!(resolved.kind, DecisionKind::Resolved { by_action: true });
    eprintln!(
        "restart timing (ms): kill -> dead {}, dead -> restart action {}, action -> respawned {}, \
         respawned -> alive {}, kill -> alive {}, kill -> resolved {}",
        ms(killed_at, dead.at),
        ms(dead.at, restart.at),
        ms(restart.at, respawned_at),
        ms(respawned_at, alive.at),
        ms(killed_at, alive.at),
        ms(killed_at, resolved.at),
    );

    // The sibling: never acted on, never declared dead, same process. (A
    // moment's suspicion on a loaded machine is allowed: it is not what
    // this test is about.)
    log.collect_queued();
    recovery.collect_queued();
    assert!(!recovery.mentions(SIBLING), "recovery touched the sibling: {:#?}", recovery.outputs);
    let sibling = log.changes_of(SIBLING);
    assert!(sibling.iter().all(|c| c.to != Liveness::Dead), "the sibling was declared dead: {sibling:?}");
    assert_eq!(platform.pid(InstanceId(SIBLING)), Some(sibling_pid));
    // One action in all: the restart.
    assert_eq!(recovery.actions(), [restart]);
    let stats = control.stats();
    assert_eq!((stats.recovery_actions, stats.recovery_actions_dropped), (1, 0), "{stats:?}");

    control.shutdown().await.expect("control shuts down cleanly");
    tokio::time::timeout(FINISH_WITHIN, executor)
        .await
        .expect("the executor stops once the control driver is gone")
        .expect("the executor did not panic");
    for instance in INSTANCES {
        platform.stop(InstanceId(instance)).await.expect("children die");
        assert_eq!(platform.pid(InstanceId(instance)), None);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_that_cannot_spawn_reports_each_action_failed_and_the_ladder_climbs_to_a_human() {
    const INSTANCE: u32 = 0;
    let clock = Clock::start();
    // Short backoffs, and an action timeout far longer than the test: every
    // failure below is reported, none is timed out.
    let config = RecoveryConfig {
        backoff: BackoffConfig {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(100),
            reset_after: Duration::from_secs(600),
        },
        action_timeout: Duration::from_secs(600),
        ..recovery_config()
    };
    let (control, mut log, mut recovery, actions) =
        spawn_control_with_recovery(clock, &[INSTANCE], config).await;
    let root = scratch_root("recovery-no-program");
    let missing = root.join("no-such-program");
    let platform = Arc::new(ProcessPlatform::new(&root).with_service(SERVICE, ProcessSpec::new(&missing)));
    platform.add_instance(InstanceId(INSTANCE), SERVICE).expect("service has a spec");
    let executor = spawn_recovery_executor(control.machine_ref(), Arc::clone(&platform), actions);

    // The instance's agent runs in this process; crash it.
    let agent =
        support::spawn_agent(clock, INSTANCE, vigil_tokio::incarnation_now(), control.local_addr()).await;
    wait_all_alive(&mut log, &[INSTANCE]).await;
    agent.abort().await;
    let crashed = TokioInstant::now();
    log.wait_for(crashed + DEAD_WITHIN, "the crashed instance declared dead", |e| {
        change(e) == Change { instance: INSTANCE, from: Liveness::Suspect, to: Liveness::Dead }
    })
    .await;
    recovery
        .wait_for(
            TokioInstant::now() + FINISH_WITHIN,
            "a human asked",
            |o| matches!(o, RecoveryOutput::Action(a) if matches!(a.kind, ActionKind::AskHuman { .. })),
        )
        .await;

    // The default ladder for a silent instance, every rung failing at once.
    let kinds: Vec<ActionKind> = recovery.actions().iter().map(|a| a.kind).collect();
    assert_eq!(kinds[..3], [ActionKind::Restart, ActionKind::Restart, ActionKind::Replace], "{kinds:?}");
    assert!(matches!(kinds[3], ActionKind::AskHuman { .. }), "{kinds:?}");
    let failed: Vec<(u32, bool)> = recovery
        .decisions()
        .into_iter()
        .filter_map(|d| match d {
            DecisionKind::AttemptFailed { attempt, timed_out } => Some((attempt, timed_out)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(1, false), (2, false), (3, false)], "reported failures, not timeouts");
    assert_eq!(platform.pid(InstanceId(INSTANCE)), None, "nothing ever ran");
    let error = platform.restart(InstanceId(INSTANCE)).await.expect_err("the program is missing");
    assert!(error.to_string().contains("no-such-program"), "the error names the program: {error}");

    control.shutdown().await.expect("control shuts down cleanly");
    tokio::time::timeout(FINISH_WITHIN, executor)
        .await
        .expect("the executor stops once the control driver is gone")
        .expect("the executor did not panic");
    let _ = std::fs::remove_dir_all(&root);
}
