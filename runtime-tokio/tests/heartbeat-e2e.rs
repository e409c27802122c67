//! Heartbeats over real UDP on loopback: a control node and three instance
//! agents, each on its own driver task. A crashed agent must be declared
//! dead in time, its siblings must stay alive, and a restarted agent (new
//! incarnation) must be alive again.

mod support;

use tokio::time::Instant as TokioInstant;
use vigil_core::control::ControlPlane;
use vigil_core::fleet::InstanceNode;
use vigil_core::health::{HealthEvent, Liveness};
use vigil_core::{Duration, InstanceId};
use vigil_tokio::{Clock, DriverHandle, incarnation_now};

use support::{Change, DEAD_AFTER, EventLog, INTERVAL, change, spawn_agent, spawn_control, wait_all_alive};

/// The deadline under test: a crash is declared within `DEAD_AFTER` (500 ms)
/// of the last heartbeat, plus a generous margin for a loaded machine.
const DEAD_WITHIN: Duration = Duration::from_secs(3);

/// A restarted agent beats within one `INTERVAL`; the margin is generous.
const ALIVE_AGAIN_WITHIN: Duration = Duration::from_secs(3);

const INSTANCES: [u32; 3] = [0, 1, 2];
const CRASHED: u32 = 1;

struct Fleet {
    clock: Clock,
    control: DriverHandle<ControlPlane>,
    log: EventLog,
    /// Agents by instance id; `None` once crashed.
    agents: Vec<Option<DriverHandle<InstanceNode>>>,
    incarnations: Vec<u64>,
}

/// Bring the fleet up and wait until the detector sees every instance alive.
async fn fleet_all_alive() -> Fleet {
    let clock = Clock::start();
    let (control, events) = spawn_control(clock, &INSTANCES).await;
    let mut log = EventLog::new(events);
    let mut agents = Vec::new();
    let mut incarnations = Vec::new();
    for instance in INSTANCES {
        let incarnation = incarnation_now();
        agents.push(Some(spawn_agent(clock, instance, incarnation, control.local_addr()).await));
        incarnations.push(incarnation);
    }
    wait_all_alive(&mut log, &INSTANCES).await;
    Fleet { clock, control, log, agents, incarnations }
}

/// Crash one agent, and wait for the detector to declare it dead within
/// [`DEAD_WITHIN`]. Checks the verdict was not premature.
async fn crash_and_wait_dead(fleet: &mut Fleet, instance: u32) {
    let agent = fleet.agents[instance as usize].take().expect("agent running");
    agent.abort().await;
    let crashed_at = TokioInstant::now();
    let dead = fleet
        .log
        .wait_for(crashed_at + DEAD_WITHIN, "the crashed instance declared dead", |e| {
            change(e) == Change { instance, from: Liveness::Suspect, to: Liveness::Dead }
        })
        .await;
    // On the machine's own timeline (no wall-clock margin involved): the
    // detector never declares death before `DEAD_AFTER` of silence.
    let HealthEvent::LivenessChanged { last_heard, .. } = dead.event else {
        unreachable!("matched a liveness change above")
    };
    assert!(
        dead.at >= last_heard + DEAD_AFTER,
        "declared dead at {} after last hearing at {}: premature",
        dead.at,
        last_heard
    );
}

async fn shutdown_agents(fleet: Fleet) -> (ControlPlane, EventLog) {
    for agent in fleet.agents.into_iter().flatten() {
        let stats = agent.stats();
        assert_eq!(stats.unknown_destinations, 0, "agent knows the control node: {stats:?}");
        assert_eq!(stats.send_errors, 0, "{stats:?}");
        assert!(stats.messages_sent > 0, "agent sent heartbeats: {stats:?}");
        agent.shutdown().await.expect("agent shuts down cleanly");
    }
    let stats = fleet.control.stats();
    assert_eq!(stats.malformed_datagrams, 0, "{stats:?}");
    let control = fleet.control.shutdown().await.expect("control shuts down cleanly");
    let mut log = fleet.log;
    log.collect_queued();
    (control, log)
}

fn alive(instance: u32) -> Change {
    Change { instance, from: Liveness::Unknown, to: Liveness::Alive }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_instance_is_declared_dead_in_time_and_siblings_stay_alive() {
    let mut fleet = fleet_all_alive().await;
    crash_and_wait_dead(&mut fleet, CRASHED).await;

    // Keep watching for as long again: the survivors must not waver.
    fleet.log.collect_until(TokioInstant::now() + DEAD_AFTER + INTERVAL).await;
    let (control, log) = shutdown_agents(fleet).await;

    assert_eq!(
        log.changes_of(CRASHED),
        [
            alive(CRASHED),
            Change { instance: CRASHED, from: Liveness::Alive, to: Liveness::Suspect },
            Change { instance: CRASHED, from: Liveness::Suspect, to: Liveness::Dead },
        ]
    );
    for survivor in [0, 2] {
        assert_eq!(log.changes_of(survivor), [alive(survivor)], "instance {survivor} left Alive");
    }
    let status = |instance| control.detector().instance(InstanceId(instance)).map(|s| s.status);
    assert_eq!(status(0), Some(Liveness::Alive));
    assert_eq!(status(CRASHED), Some(Liveness::Dead));
    assert_eq!(status(2), Some(Liveness::Alive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_instance_with_new_incarnation_is_alive_again() {
    let mut fleet = fleet_all_alive().await;
    crash_and_wait_dead(&mut fleet, CRASHED).await;

    // A new life: fresh machine state, fresh socket, higher incarnation.
    let old_incarnation = fleet.incarnations[CRASHED as usize];
    let new_incarnation = incarnation_now();
    assert!(new_incarnation > old_incarnation);
    let restarted = spawn_agent(fleet.clock, CRASHED, new_incarnation, fleet.control.local_addr()).await;
    fleet.agents[CRASHED as usize] = Some(restarted);
    fleet
        .log
        .wait_for(TokioInstant::now() + ALIVE_AGAIN_WITHIN, "the restarted instance alive again", |e| {
            change(e) == Change { instance: CRASHED, from: Liveness::Dead, to: Liveness::Alive }
        })
        .await;

    let newest = fleet
        .control
        .with_machine(|control| control.detector().instance(InstanceId(CRASHED)).and_then(|s| s.newest))
        .await
        .expect("control running");
    assert_eq!(newest.map(|(incarnation, _seq)| incarnation), Some(new_incarnation));

    let (control, log) = shutdown_agents(fleet).await;
    for survivor in [0, 2] {
        assert_eq!(log.changes_of(survivor), [alive(survivor)], "instance {survivor} left Alive");
    }
    for instance in INSTANCES {
        let status = control.detector().instance(InstanceId(instance)).map(|s| s.status);
        assert_eq!(status, Some(Liveness::Alive), "instance {instance}");
    }
}
