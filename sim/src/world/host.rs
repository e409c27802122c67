//! Hosts: their state (up, down, paused, vacant), their clocks, and the
//! process each runs: booting it (building the node's machine), stopping
//! it, crashing, pausing and resuming it.
//!
//! # Clocks
//!
//! Each machine sees `now` through its own host's clock. A host clock is
//! piecewise linear in simulated time: from an anchor it runs at
//! `1 + drift_ppm / 10⁶` of true rate. A skew fault moves the anchor: the
//! clock steps by an offset and takes a new rate. Clocks machines read are
//! monotonic (like `CLOCK_MONOTONIC`), so a backward step does not turn time
//! back: the clock stands still until the stepped line catches up with the
//! last value it showed.

use vigil_core::auth::{Opener, Sealer};
use vigil_core::client::{ClientConfig, ClientNode};
use vigil_core::control::{ControlConfig, ControlPlane, WatchedInstance};
use vigil_core::fleet::{InstanceNode, Node};
use vigil_core::health::{AgentConfig, LivenessTimeouts};
use vigil_core::machine::Checked;
use vigil_core::registry::RegistryConfig;
use vigil_core::rng::Seed;
use vigil_core::{InstanceId, Instant, NodeId, ServiceId};

use crate::kernel::Event;
use crate::scenario::Scenario;

use super::Simulation;
use super::observe::OutageKind;

const PPM: i128 = 1_000_000;

/// One host's view of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostClock {
    anchor_true: Instant,
    anchor_local: i128,
    drift_ppm: i64,
    floor: Instant,
}

impl Default for HostClock {
    fn default() -> Self {
        HostClock { anchor_true: Instant::ZERO, anchor_local: 0, drift_ppm: 0, floor: Instant::ZERO }
    }
}

impl HostClock {
    /// Whether the clock shows true simulated time.
    pub fn is_exact(&self) -> bool {
        self.drift_ppm == 0 && self.anchor_local == i128::from(self.anchor_true.as_nanos())
    }

    fn line(&self, true_now: Instant) -> i128 {
        let elapsed = i128::from(true_now.as_nanos()) - i128::from(self.anchor_true.as_nanos());
        self.anchor_local + elapsed * (PPM + i128::from(self.drift_ppm)) / PPM
    }

    /// What the host's clock shows at simulated time `true_now`.
    pub fn local(&self, true_now: Instant) -> Instant {
        if self.is_exact() {
            return true_now.max(self.floor);
        }
        let line = self.line(true_now).clamp(0, i128::from(u64::MAX));
        Instant::from_nanos(line as u64).max(self.floor)
    }

    /// The earliest simulated time, not before `true_now`, at which the
    /// clock shows `deadline` or later.
    pub fn true_time_of(&self, deadline: Instant, true_now: Instant) -> Instant {
        if self.local(true_now) >= deadline {
            return true_now;
        }
        if self.is_exact() {
            return deadline;
        }
        // Solve line(t) >= deadline for the least t, rounding up.
        let rate = PPM + i128::from(self.drift_ppm);
        let need = (i128::from(deadline.as_nanos()) - self.anchor_local) * PPM;
        let elapsed = (need + rate - 1).div_euclid(rate);
        let t = i128::from(self.anchor_true.as_nanos()) + elapsed;
        let t = Instant::from_nanos(t.clamp(0, i128::from(u64::MAX)) as u64);
        t.max(true_now)
    }

    /// Step the clock by `offset_ns` at `true_now` and set its drift.
    ///
    /// `drift_ppm` must be greater than −10⁶ (a clock that runs backwards or
    /// stops is not a clock); the scenario loader bounds it far tighter.
    pub fn skew(&mut self, true_now: Instant, offset_ns: i64, drift_ppm: i64) {
        assert!(drift_ppm > -1_000_000, "drift_ppm {drift_ppm} would stop or reverse the clock");
        let shown = self.local(true_now);
        self.anchor_local = self.line(true_now) + i128::from(offset_ns);
        self.anchor_true = true_now;
        self.drift_ppm = drift_ppm;
        self.floor = shown;
    }

    /// How far the clock is ahead of true time at `true_now` (negative:
    /// behind), in nanoseconds.
    pub fn offset_ns(&self, true_now: Instant) -> i128 {
        i128::from(self.local(true_now).as_nanos()) - i128::from(true_now.as_nanos())
    }
}

/// A host's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// Running.
    Up,
    /// Crashed: no machine, messages dropped.
    Down,
    /// Paused: time passes, nothing runs, messages wait.
    Paused,
    /// A standby slot not provisioned yet: no host at all.
    Vacant,
}

pub(super) struct NodeSlot {
    pub(super) machine: Option<Checked<Node>>,
    pub(super) state: HostState,
    pub(super) clock: HostClock,
    /// Simulated time of the earliest timer event queued for this node.
    pub(super) timer_at: Option<Instant>,
    /// Messages that arrived while paused, in arrival order.
    /// (`Deliver` and `Attack` events, scheduled again on resume.)
    pub(super) held: Vec<Event>,
    pub(super) incarnation: u64,
    /// Seals what the node sends (its current life's session).
    pub(super) sealer: Sealer,
    /// Opens what it receives (its current life's replay windows).
    pub(super) opener: Opener,
    /// Host-crash faults in force (they nest): the host has no power, so
    /// nothing answers, not even a refusal, and nothing boots on it.
    pub(super) power_off: u32,
}

/// The catalog settings of a run's control plane, for a fleet of
/// `instances` instances of `services` services. One source: boot uses it,
/// and so does the scenario loader to check names against the registry's
/// limits (`check` accepting a file means `run` can build it).
pub(crate) fn registry_config(instances: u32, services: usize) -> RegistryConfig {
    RegistryConfig {
        // A simulated instance re-registers only by booting with the
        // fleet, so the catalog never lets one go; and it is sized to the
        // fleet, which may pass the default limit.
        deregister_critical_after: None,
        max_instances: (instances as usize).max(1),
        max_services: services.max(1),
        ..RegistryConfig::default()
    }
}

/// The control node's settings, watching `instances`.
fn control_config(scenario: &Scenario, seed: Seed, instances: Vec<WatchedInstance>) -> ControlConfig {
    ControlConfig {
        recovery: scenario.recovery.as_ref().map(|r| r.config.clone()),
        seed,
        health_classes: scenario.services.iter().map(|s| s.health.clone()).collect(),
        registry: registry_config(scenario.instance_count(), scenario.services.len()),
        service_names: scenario.services.iter().map(|s| s.name.clone()).collect(),
        liveness_classes: scenario
            .services
            .iter()
            .map(|s| LivenessTimeouts {
                suspect_after: s.heartbeat.suspect_after,
                dead_after: s.heartbeat.dead_after,
            })
            .collect(),
        instances,
    }
}

/// The settings of the load client aimed at `target`.
fn load_client_config(scenario: &Scenario, target: usize) -> ClientConfig {
    let load = scenario.load.as_ref().expect("a client node exists only with load");
    ClientConfig {
        control: Scenario::CONTROL,
        // The control plane's catalog numbers services in the order their
        // first instance registers: file order (the fleet registers in
        // instance order, and every service's first slot runs), so an id
        // is an index.
        service: Some(ServiceId(load.targets[target].service as u32)),
        call_timeout: load.timeout,
        balancer: super::calls::balancer_of(scenario),
        ..ClientConfig::default()
    }
}

/// The heartbeat agent's settings of `instance`, of service `service`.
fn agent_config(scenario: &Scenario, service: usize, instance: InstanceId, incarnation: u64) -> AgentConfig {
    AgentConfig {
        instance,
        control: Scenario::CONTROL,
        interval: scenario.services[service].heartbeat.interval,
        incarnation,
    }
}

/// A machine a scenario's boot would fail to build, and why.
#[derive(Debug)]
pub(crate) struct BootError {
    /// The service whose settings were refused; `None` for settings of the
    /// whole run.
    pub(crate) service: Option<usize>,
    /// What was refused.
    pub(crate) message: String,
}

/// Build, once and with no fleet registered, every kind of machine boot
/// builds (the control plane, each service's agent and dependency
/// clients, each load client), so that the loader refuses what boot would.
/// Cheap: nothing is sized to the fleet but the catalog's limits.
pub(crate) fn dry_boot(scenario: &Scenario) -> Result<(), BootError> {
    let seed = Seed(0);
    let config = control_config(scenario, seed, Vec::new());
    ControlPlane::new(&config, Instant::ZERO).map_err(|e| BootError {
        service: None,
        message: format!("the control plane refuses this scenario: {e}"),
    })?;
    for (service, spec) in scenario.services.iter().enumerate() {
        let instance = InstanceId(scenario.instances_of(service).start);
        InstanceNode::new(agent_config(scenario, service, instance, 1), Instant::ZERO, seed).map_err(
            |e| BootError {
                service: Some(service),
                message: format!("service `{}`: heartbeat agent: {e}", spec.name),
            },
        )?;
        for &dep in &spec.depends_on {
            ClientNode::new(
                super::calls::dependency_client_config(scenario, service, dep),
                Instant::ZERO,
                seed,
            )
            .map_err(|e| BootError {
                service: Some(service),
                message: format!("service `{}`: client of `{}`: {e}", spec.name, scenario.services[dep].name),
            })?;
        }
    }
    if let Some(load) = &scenario.load {
        for target in 0..load.targets.len() {
            ClientNode::new(load_client_config(scenario, target), Instant::ZERO, seed).map_err(|e| {
                BootError {
                    service: Some(load.targets[target].service),
                    message: format!("load client: {e}"),
                }
            })?;
        }
    }
    Ok(())
}

impl Simulation<'_> {
    pub(super) fn boot(&mut self, node: NodeId) {
        let scenario = self.scenario;
        let slot = &mut self.nodes[node.index()];
        slot.incarnation += 1;
        // A new life seals in a new session (its incarnation: strictly
        // greater), and its replay windows start empty, as a restarted
        // process's would.
        slot.sealer = Sealer::new(node, super::wire::KEY_ID, &self.wire.key, slot.incarnation);
        slot.opener = Opener::new(node, self.wire.keyring.clone(), scenario.node_count() as usize);
        let local = slot.clock.local(self.kernel.now());
        let machine = match scenario.instance_on(node) {
            None if scenario.client_target(node).is_some() => {
                let target = scenario.client_target(node).expect("just checked");
                let config = load_client_config(scenario, target);
                // The first target's client keeps the seed a lone client
                // always had; the others' are their own.
                let base = self.seed.child_named("client");
                let base = if target == 0 { base } else { base.child_named("target").child(target as u64) };
                let seed = base.child(slot.incarnation);
                Node::Client(Box::new(
                    ClientNode::new(config, local, seed)
                        .expect("the scenario loader built this client (dry_boot)"),
                ))
            }
            None => {
                let seed = self.seed.child_named("control").child(slot.incarnation);
                let instances = (0..scenario.instance_count())
                    .filter(|&i| self.provisioned[i as usize])
                    .map(|i| {
                        let class = scenario.locate(InstanceId(i)).map_or(0, |(s, _)| s);
                        WatchedInstance {
                            instance: InstanceId(i),
                            node: Scenario::node_of(InstanceId(i)),
                            service: ServiceId(class as u32),
                            class,
                            zone: scenario.zone_of(InstanceId(i)).map(str::to_owned),
                        }
                    })
                    .collect();
                let config = control_config(scenario, seed, instances);
                Node::Control(Box::new(
                    ControlPlane::new(&config, local)
                        .expect("the scenario loader built this control plane (dry_boot)"),
                ))
            }
            Some(instance) => {
                let (service, _) = scenario.locate(instance).expect("node ids come from the scenario");
                let config = agent_config(scenario, service, instance, slot.incarnation);
                let seed = self.seed.child_named(&self.names[node.index()]).child(slot.incarnation);
                Node::Instance(
                    InstanceNode::new(config, local, seed)
                        .expect("the scenario loader built this agent (dry_boot)"),
                )
            }
        };
        slot.machine = Some(Checked::new(machine));
        slot.state = HostState::Up;
        slot.timer_at = None;
        let incarnation = slot.incarnation;
        if let Some(i) = scenario.instance_on(node) {
            // A fresh process: not hung, no memory used yet, fresh clients
            // of its dependencies.
            let app = &mut self.apps[i.index()];
            app.hung = 0;
            app.started = self.kernel.now();
            self.make_clients(node, local, incarnation);
            self.schedule_exit(node);
        }
        self.drain(node);
    }

    /// Stop the process on `node`: its machine and volatile state are
    /// lost. Returns the state the host was in.
    pub(super) fn stop(&mut self, node: NodeId) -> HostState {
        let slot = &mut self.nodes[node.index()];
        let was = slot.state;
        if matches!(was, HostState::Up | HostState::Paused) {
            slot.state = HostState::Down;
            slot.machine = None;
            slot.timer_at = None;
            self.kernel.release(slot.held.len());
            slot.held.clear();
            if let Some(i) = self.scenario.instance_on(node) {
                // Requests in service die with the process, and so do its
                // clients, their calls and the requests waiting on them.
                self.apps[i.index()].busy_until.clear();
                self.apps[i.index()].calls.lose();
            }
        }
        was
    }

    /// The process on `node` crashes: an outage of `kind` begins.
    pub(super) fn crash(&mut self, node: NodeId, kind: OutageKind, fault: Option<u32>) {
        match self.stop(node) {
            HostState::Down | HostState::Vacant => return,
            // The pause ends in a crash: one outage becomes the other.
            HostState::Paused => self.close_outages(node, |k| k == OutageKind::Pause),
            HostState::Up => {}
        }
        self.open_outage(node, kind, fault);
        self.died(node);
    }

    /// Boot the process on `node` if it is down and its host has power.
    /// Outages a fresh process ends (a crash, a hang, running out of
    /// memory) end. Returns whether it booted.
    pub(super) fn start_process(&mut self, node: NodeId) -> bool {
        let slot = &self.nodes[node.index()];
        if slot.state != HostState::Down || slot.power_off > 0 {
            return false;
        }
        self.close_outages(node, OutageKind::ends_on_restart);
        self.boot(node);
        true
    }

    pub(super) fn pause(&mut self, node: NodeId, fault: Option<u32>) {
        if self.nodes[node.index()].state == HostState::Up {
            self.nodes[node.index()].state = HostState::Paused;
            self.open_outage(node, OutageKind::Pause, fault);
        }
    }

    pub(super) fn resume(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.state != HostState::Paused {
            return;
        }
        slot.state = HostState::Up;
        slot.timer_at = None;
        let held = std::mem::take(&mut slot.held);
        self.kernel.release(held.len());
        self.close_outages(node, |k| k == OutageKind::Pause);
        for event in held {
            self.kernel.schedule(self.kernel.now(), event);
        }
        self.drain(node); // reschedules the timer from the machine's deadline
    }

    /// The host's clock moved: the machine's deadline moves in true time.
    pub(super) fn reschedule(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.state != HostState::Up {
            return;
        }
        slot.timer_at = None;
        self.drain(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_core::Duration;

    #[test]
    fn exact_clock_is_identity() {
        let c = HostClock::default();
        assert_eq!(c.local(Instant::from_secs(5)), Instant::from_secs(5));
        assert_eq!(c.true_time_of(Instant::from_secs(9), Instant::from_secs(5)), Instant::from_secs(9));
    }

    #[test]
    fn forward_step_jumps_and_backward_step_stands_still() {
        let mut c = HostClock::default();
        c.skew(Instant::from_secs(10), 2_000_000_000, 0);
        assert_eq!(c.local(Instant::from_secs(10)), Instant::from_secs(12));
        let mut c = HostClock::default();
        c.skew(Instant::from_secs(10), -2_000_000_000, 0);
        assert_eq!(c.local(Instant::from_secs(11)), Instant::from_secs(10), "stands still");
        assert_eq!(c.local(Instant::from_secs(13)), Instant::from_secs(11));
    }

    #[test]
    fn drift_runs_fast() {
        let mut c = HostClock::default();
        c.skew(Instant::ZERO, 0, 1_000); // 0.1 % fast
        assert_eq!(c.local(Instant::from_secs(1000)), Instant::from_secs(1001));
    }

    proptest! {
        #[test]
        fn local_is_monotonic_and_true_time_of_is_the_least_solution(
            offset_ns in -5_000_000_000i64..5_000_000_000,
            drift_ppm in -100_000i64..100_000,
            at_ms in 0u64..10_000,
            probe_ms in 0u64..100_000,
            deadline_ms in 0u64..200_000,
        ) {
            let mut c = HostClock::default();
            c.skew(Instant::from_millis(at_ms), offset_ns, drift_ppm);
            let t = Instant::from_millis(at_ms + probe_ms);
            prop_assert!(c.local(t) <= c.local(t + Duration::from_nanos(1)));
            let deadline = Instant::from_millis(deadline_ms);
            let now = Instant::from_millis(at_ms);
            let hit = c.true_time_of(deadline, now);
            prop_assert!(hit >= now);
            prop_assert!(c.local(hit) >= deadline);
            if hit > now {
                prop_assert!(c.local(Instant::from_nanos(hit.as_nanos() - 1)) < deadline);
            }
        }
    }
}
