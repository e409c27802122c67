//! A small fleet on loopback, shared by the end-to-end tests: one control
//! node (node 0) watching instances, one agent per instance (node `i + 1`);
//! and, for the recovery tests, a log of recovery outputs and helpers for
//! `vigil-instance` children.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::sync::broadcast;
use tokio::time::Instant as TokioInstant;
use vigil_core::control::{ControlConfig, ControlPlane, WatchedInstance};
use vigil_core::fleet::InstanceNode;
use vigil_core::health::{AgentConfig, HealthEvent, Liveness, LivenessTimeouts};
use vigil_core::recovery::{Action, DecisionKind, RecoveryOutput};
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, Instant, NodeId, ServiceId};
use vigil_tokio::platform::ProcessEvent;
use vigil_tokio::{Clock, Driver, DriverEvent, DriverHandle, ProcessSpec};

/// Time between two heartbeats of an agent.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Silence after which the detector suspects an instance.
pub const SUSPECT_AFTER: Duration = Duration::from_millis(300);
/// Silence after which the detector declares an instance dead.
pub const DEAD_AFTER: Duration = Duration::from_millis(500);

/// Generous: covers process start-up and a loaded machine.
pub const ALL_ALIVE_WITHIN: Duration = Duration::from_secs(5);

/// The control node's id.
pub const CONTROL: NodeId = NodeId(0);

/// The node id of instance `i`'s agent.
pub fn agent_node(instance: u32) -> NodeId {
    NodeId(instance + 1)
}

/// The fleet key every node of these tests shares (64 hex digits, as in a
/// configuration file).
pub const TEST_WIRE_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Every node's [`vigil_tokio::WireAuth`]: the shared test key, id 1.
pub fn test_auth() -> vigil_tokio::WireAuth {
    vigil_tokio::WireAuth::fleet_hex(1, TEST_WIRE_KEY).expect("a valid key")
}

/// Port 0 on loopback: the system picks a free port.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Spawn the control node watching `instances`, already subscribed so that
/// no event is missed.
pub async fn spawn_control(
    clock: Clock,
    instances: &[u32],
) -> (DriverHandle<ControlPlane>, broadcast::Receiver<DriverEvent>) {
    let control = ControlPlane::new(&control_config(instances), clock.now()).expect("valid control config");
    let driver =
        Driver::bind(CONTROL, any_loopback_port(), clock, control, test_auth()).await.expect("bind control");
    let events = driver.subscribe();
    (driver.spawn(), events)
}

/// The control node's settings: watch `instances` (node `i + 1`, service
/// 0), suspect after [`SUSPECT_AFTER`], dead after [`DEAD_AFTER`]; no
/// recovery.
pub fn control_config(instances: &[u32]) -> ControlConfig {
    ControlConfig {
        recovery: None,
        seed: vigil_core::rng::Seed(0),
        health_classes: Vec::new(),
        registry: Default::default(),
        service_names: Vec::new(),
        liveness_classes: vec![LivenessTimeouts { suspect_after: SUSPECT_AFTER, dead_after: DEAD_AFTER }],
        instances: instances
            .iter()
            .map(|&i| WatchedInstance {
                instance: InstanceId(i),
                node: NodeId(i + 1),
                service: ServiceId(0),
                class: 0,
                zone: None,
            })
            .collect(),
    }
}

/// Spawn the agent of `instance`, sending to the control node at
/// `control_addr`.
pub async fn spawn_agent(
    clock: Clock,
    instance: u32,
    incarnation: u64,
    control_addr: SocketAddr,
) -> DriverHandle<InstanceNode> {
    let config =
        AgentConfig { instance: InstanceId(instance), control: CONTROL, interval: INTERVAL, incarnation };
    let seed = Seed(u64::from(instance)).child(incarnation);
    let agent = InstanceNode::new(config, clock.now(), seed).expect("valid agent config");
    Driver::bind(agent_node(instance), any_loopback_port(), clock, agent, test_auth())
        .await
        .expect("bind agent")
        .with_peers([(CONTROL, control_addr)])
        .spawn()
}

/// A liveness change, flattened for assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The instance.
    pub instance: u32,
    /// Verdict before.
    pub from: Liveness,
    /// Verdict after.
    pub to: Liveness,
}

/// Flatten an event.
pub fn change(event: &DriverEvent) -> Change {
    match event.event {
        HealthEvent::LivenessChanged { instance, from, to, .. } => Change { instance: instance.0, from, to },
        other => panic!("unexpected health event {other:?}"),
    }
}

/// Every event the control node published, in order, as the test saw them.
#[derive(Debug)]
pub struct EventLog {
    rx: broadcast::Receiver<DriverEvent>,
    /// Everything received so far.
    pub events: Vec<DriverEvent>,
}

impl EventLog {
    /// Start logging from `rx`.
    pub fn new(rx: broadcast::Receiver<DriverEvent>) -> Self {
        EventLog { rx, events: Vec::new() }
    }

    /// Receive events until `done` holds for one of them; panic with the
    /// log so far if `deadline` passes first. Returns the matching event.
    pub async fn wait_for(
        &mut self,
        deadline: TokioInstant,
        what: &str,
        mut done: impl FnMut(&DriverEvent) -> bool,
    ) -> DriverEvent {
        loop {
            let received = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let Ok(received) = received else {
                panic!("deadline passed waiting for {what}; events so far: {:#?}", self.changes());
            };
            let event = received.expect("control driver alive and subscriber not lagging");
            self.events.push(event);
            if done(&event) {
                return event;
            }
        }
    }

    /// Receive events until `deadline`, whatever they are.
    pub async fn collect_until(&mut self, deadline: TokioInstant) {
        while let Ok(received) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.events.push(received.expect("subscriber not lagging"));
        }
    }

    /// Take whatever is already queued (after the driver stopped, say).
    pub fn collect_queued(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(event) => self.events.push(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("subscriber lagged by {n}"),
                Err(_) => return, // empty, or closed with nothing left
            }
        }
    }

    /// The changes so far.
    pub fn changes(&self) -> Vec<Change> {
        self.events.iter().map(change).collect()
    }

    /// The changes so far for one instance.
    pub fn changes_of(&self, instance: u32) -> Vec<Change> {
        self.changes().into_iter().filter(|c| c.instance == instance).collect()
    }
}

/// Wait until the detector has seen every one of `instances` alive.
pub async fn wait_all_alive(log: &mut EventLog, instances: &[u32]) {
    let deadline = TokioInstant::now() + ALL_ALIVE_WITHIN;
    let mut alive = Vec::new();
    while alive.len() < instances.len() {
        let event = log
            .wait_for(deadline, "every instance alive", |e| {
                let c = change(e);
                c.to == Liveness::Alive && instances.contains(&c.instance)
            })
            .await;
        let instance = change(&event).instance;
        if !alive.contains(&instance) {
            alive.push(instance);
        }
    }
}

/// Every recovery output the control driver published, in order.
pub struct RecoveryLog {
    rx: broadcast::Receiver<RecoveryOutput>,
    /// Everything received so far.
    pub outputs: Vec<RecoveryOutput>,
}

impl RecoveryLog {
    /// Start logging from `rx`.
    pub fn new(rx: broadcast::Receiver<RecoveryOutput>) -> Self {
        RecoveryLog { rx, outputs: Vec::new() }
    }

    /// Receive outputs until `done` holds; panic with the log if
    /// `deadline` passes first.
    pub async fn wait_for(
        &mut self,
        deadline: TokioInstant,
        what: &str,
        mut done: impl FnMut(&RecoveryOutput) -> bool,
    ) -> RecoveryOutput {
        loop {
            let Ok(received) = tokio::time::timeout_at(deadline, self.rx.recv()).await else {
                panic!("deadline passed waiting for {what}; recovery so far: {:#?}", self.outputs);
            };
            let output = received.expect("control driver alive and subscriber not lagging");
            self.outputs.push(output);
            if done(&output) {
                return output;
            }
        }
    }

    /// Take whatever is already queued.
    pub fn collect_queued(&mut self) {
        while let Ok(output) = self.rx.try_recv() {
            self.outputs.push(output);
        }
    }

    /// The actions so far.
    pub fn actions(&self) -> Vec<Action> {
        self.outputs
            .iter()
            .filter_map(|o| if let RecoveryOutput::Action(a) = o { Some(*a) } else { None })
            .collect()
    }

    /// The decisions' kinds so far.
    pub fn decisions(&self) -> Vec<DecisionKind> {
        self.outputs
            .iter()
            .filter_map(|o| if let RecoveryOutput::Decision(d) = o { Some(d.kind) } else { None })
            .collect()
    }

    /// Whether any decision or action concerns `instance`.
    pub fn mentions(&self, instance: u32) -> bool {
        self.outputs.iter().any(|o| match o {
            RecoveryOutput::Action(a) => a.instance == Some(InstanceId(instance)),
            RecoveryOutput::Decision(d) => d.instance == Some(InstanceId(instance)),
            _ => false,
        })
    }
}

/// A fresh directory for one test's instances, under Cargo's scratch
/// directory for integration tests.
pub fn scratch_root(test: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}", std::process::id()));
    // Left over from an earlier run with the same pid: start clean.
    let _ = std::fs::remove_dir_all(&root);
    root
}

/// `vigil-instance` beating to `control` every [`INTERVAL`].
pub fn instance_spec(control: std::net::SocketAddr) -> ProcessSpec {
    ProcessSpec::new(env!("CARGO_BIN_EXE_vigil-instance"))
        .env("VIGIL_CONTROL", control.to_string())
        .env("VIGIL_HEARTBEAT_MS", INTERVAL.as_millis().to_string())
        .env("VIGIL_WIRE_KEY", TEST_WIRE_KEY)
}

/// Receive process events until `done` holds; panic if `deadline` passes
/// first.
pub async fn wait_process_event(
    rx: &mut broadcast::Receiver<ProcessEvent>,
    deadline: TokioInstant,
    what: &str,
    mut done: impl FnMut(&ProcessEvent) -> bool,
) -> ProcessEvent {
    loop {
        let Ok(received) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            panic!("deadline passed waiting for {what}");
        };
        let event = received.expect("platform alive and subscriber not lagging");
        if done(&event) {
            return event;
        }
    }
}

/// Milliseconds from `from` to `to` on one clock, for the timing report.
pub fn ms(from: Instant, to: Instant) -> u64 {
    (to - from).as_millis() as u64
}
