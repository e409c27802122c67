//! The machines a driver actually runs: one per node.
//!
//! Capability machines (health today; registry, recovery, deployment and
//! scaling as they land) are composed here into two roles:
//!
//! - [`ControlPlane`]: the control node, which watches the fleet and decides.
//! - [`InstanceNode`]: the agent beside each service instance.
//!
//! Both speak the same [`Input`] and [`Output`], so a driver (the simulator,
//! or the tokio adapter) routes every node's traffic the same way without
//! knowing what the node does. [`Node`] is either role, for drivers that hold
//! a whole fleet in one table.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::balance::BalanceEvent;
use crate::client::{CallDone, ClientNode};
use crate::health::{
    AgentConfig, FailureDetector, FailureReason, HealthConfigError, HealthEvent, HealthMonitor,
    HeartbeatAgent, InstanceHealthConfig, Liveness, LivenessTimeouts, MonitorOutput, ProbeId, ProbeOutcome,
    ProbeResult,
};
use crate::id::{InstanceId, NodeId, ServiceId};
use crate::machine::Machine;
use crate::message::{EndpointUpdate, Message, Probe};
use crate::recovery::{
    Action, ActionId, ActionKind, Decision, DecisionKind, FailureReport, FailureType, Outcome,
    RecoveryConfig, RecoveryConfigError, RecoveryCoordinator, RecoveryInput, RecoveryOutput, StormScope,
};
use crate::registry::{
    ChangeKind, HealthStatus as CatalogHealth, RegisterOutcome, Registration, Registry, RegistryConfig,
    RegistryConfigError, RegistryError,
};
use crate::rng::Seed;
use crate::time::{Duration, Instant};

/// What a driver feeds a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A message arrived from the network.
    Message {
        /// The sender.
        from: NodeId,
        /// What it sent.
        message: Message,
    },
    /// The application asks a client to make a call (see
    /// [`ClientNode`]); other roles ignore it.
    Call {
        /// Unique among the client's outstanding calls.
        id: u64,
    },
}

/// What a node asks its driver to do.
///
/// Not `Copy`: recovery outputs are boxed (they are rare and large), so
/// the common outputs stay small.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send `message` to node `to`. Delivery is best effort: the network may
    /// lose, delay, duplicate or reorder it.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// A health verdict changed: publish it.
    Health(HealthEvent),
    /// A client's call finished: hand the outcome to the application.
    CallDone(CallDone),
    /// A client's balancer ejected or returned an endpoint, or entered or
    /// left panic mode.
    Balance(BalanceEvent),
    /// The recovery coordinator decided something: an action to carry out
    /// (restart, replace, …; report its outcome with
    /// [`ControlPlane::recovery_outcome`]) or a decision for the record.
    Recovery(Box<RecoveryOutput>),
}

/// Settings of the control node.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlConfig {
    /// Timeout classes; each watched instance names one by index.
    pub liveness_classes: Vec<LivenessTimeouts>,
    /// Active health checks of each class (same index as
    /// `liveness_classes`; missing or `None`: heartbeat liveness only).
    pub health_classes: Vec<Option<InstanceHealthConfig>>,
    /// The service catalog's settings (leases, critical deregistration,
    /// limits).
    pub registry: RegistryConfig,
    /// Catalog name of each service of `instances`, by `ServiceId` index
    /// (missing: `service-N`).
    pub service_names: Vec<String>,
    /// The instances to watch from the start.
    pub instances: Vec<WatchedInstance>,
    /// Automated recovery; `None`: verdicts are published, nothing acts on
    /// them.
    pub recovery: Option<RecoveryConfig>,
    /// Seed of the control node's random choices (recovery's jitter).
    pub seed: Seed,
}

impl Default for ControlConfig {
    /// One liveness class (suspect after 3 s, dead after 5 s), no active
    /// checks, the default catalog, no instances yet.
    fn default() -> Self {
        ControlConfig {
            liveness_classes: vec![LivenessTimeouts {
                suspect_after: Duration::from_secs(3),
                dead_after: Duration::from_secs(5),
            }],
            health_classes: Vec::new(),
            registry: RegistryConfig::default(),
            service_names: Vec::new(),
            instances: Vec::new(),
            recovery: None,
            seed: Seed(0),
        }
    }
}

/// Why the control node refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The catalog refused the registration (bad names, limits, an id
    /// already used by another service…). Nothing changed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The health settings of the instance's class are invalid.
    #[error(transparent)]
    Health(#[from] HealthConfigError),
    /// The catalog settings are invalid.
    #[error(transparent)]
    RegistryConfig(#[from] RegistryConfigError),
    /// The recovery settings are invalid.
    #[error(transparent)]
    RecoveryConfig(#[from] RecoveryConfigError),
}

/// A runtime registration: who the instance is, where it runs, and which
/// timeout and health class watches it.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterRequest {
    /// Catalog record: id, service, version, zone, tags, weight,
    /// endpoints, lease.
    pub registration: Registration,
    /// Where the instance's agent runs.
    pub node: NodeId,
    /// Index of its timeout and health class.
    pub class: usize,
}

/// An instance the control node watches from boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchedInstance {
    /// The instance.
    pub instance: InstanceId,
    /// Where it runs: where clients send it calls.
    pub node: NodeId,
    /// Its service.
    pub service: ServiceId,
    /// Index of its timeout and health class.
    pub class: usize,
}

/// Most clients a control node keeps subscribed; further subscriptions are
/// ignored (and counted) until the table has room.
pub const MAX_SUBSCRIBERS: usize = 4096;

/// A probe on the wire, by the message id it was sent with.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    probe: ProbeId,
    sent_at: Instant,
    deadline: Instant,
}

/// Heartbeat loss (permille of recent beats) from which an alive instance
/// that stops answering probes is judged unreachable rather than hung: 7.5 %,
/// more than one beat lost in the last 16 or so.
/// A clean link loses none; a hung application's sidecar agent loses none.
pub const LOSSY_LINK_PERMILLE: u32 = 75;

/// Heartbeats in a row without a gap after which an instance judged behind
/// a lossy link, whose probes still time out, is judged hung after all. A
/// link losing a quarter of its messages shows thirty in a row about once
/// in five thousand tries; one losing 1 % does three times in four.
pub const RECONSIDER_CLEAN_BEATS: u32 = 30;

/// The control node: watches the fleet's heartbeats and probes its
/// instances, publishes verdicts, and tells subscribed clients which
/// instances are routable.
///
/// An instance is *routable* when the failure detector holds it `Alive`
/// and, if it has active checks, the health monitor holds it ready (started,
/// readiness passing, liveness not failing, not flapping).
#[derive(Debug, Clone)]
pub struct ControlPlane {
    detector: FailureDetector,
    monitor: HealthMonitor,
    /// The service catalog: the one record of what runs where.
    registry: Registry,
    /// Decides how to heal failing instances, if configured.
    recovery: Option<RecoveryCoordinator>,
    /// Registry index up to which changes have been acted on.
    registry_seen: u64,
    /// Timeout and health classes, kept for runtime registrations.
    liveness_classes: usize,
    health_classes: Vec<Option<InstanceHealthConfig>>,
    /// Probes sent and not yet answered, by message id (the probe's
    /// monitor-wide round number). Entries leave on the answer or at their
    /// deadline: at most one per check in flight.
    probes: BTreeMap<u64, InFlight>,
    /// Node of each instance, indexed by instance id.
    nodes: Vec<Option<NodeId>>,
    /// Whether each instance has active checks.
    monitored: Vec<bool>,
    /// What clients were last told, per instance.
    routable: Vec<bool>,
    /// Instances recovery took out of rotation until healthy (a reroute).
    rerouted: Vec<bool>,
    /// The reroute in flight for each instance, if any.
    reroute_action: Vec<Option<ActionId>>,
    /// Instances whose unresponsiveness was judged a lossy link.
    judged_lossy: Vec<bool>,
    /// Per instance: whether it looks down to this observer (suspect or
    /// dead, or its monitor says unresponsive or failed), for the storm
    /// guard.
    looks_down: Vec<bool>,
    /// Service of each watched instance.
    service_of: Vec<Option<ServiceId>>,
    /// Per service id: `(looking down, watched)`; and the fleet's.
    down_by_service: Vec<(u32, u32)>,
    down_total: (u32, u32),
    subscribers: BTreeSet<NodeId>,
    /// Bumped on every routability change; stamps every update.
    index: u64,
    outputs: VecDeque<Output>,
    refused_subscriptions: u64,
}

impl ControlPlane {
    /// A control node booting at `now`, watching `config.instances`.
    pub fn new(config: &ControlConfig, now: Instant) -> Result<Self, ControlError> {
        let detector = FailureDetector::new(&config.liveness_classes)?;
        let mut control = ControlPlane {
            detector,
            monitor: HealthMonitor::new(),
            registry: Registry::new(config.registry.clone())?,
            recovery: match &config.recovery {
                Some(r) => Some(RecoveryCoordinator::new(r.clone(), config.seed.child_named("recovery"))?),
                None => None,
            },
            registry_seen: 0,
            liveness_classes: config.liveness_classes.len(),
            health_classes: config.health_classes.clone(),
            probes: BTreeMap::new(),
            monitored: Vec::new(),
            routable: Vec::new(),
            rerouted: Vec::new(),
            reroute_action: Vec::new(),
            judged_lossy: Vec::new(),
            looks_down: Vec::new(),
            service_of: Vec::new(),
            down_by_service: Vec::new(),
            down_total: (0, 0),
            nodes: Vec::new(),
            subscribers: BTreeSet::new(),
            index: 0,
            outputs: VecDeque::new(),
            refused_subscriptions: 0,
        };
        for w in &config.instances {
            let name = config
                .service_names
                .get(w.service.index())
                .cloned()
                .unwrap_or_else(|| format!("service-{}", w.service.0));
            let registration = Registration::new(w.instance, name, "unknown");
            control.register_inner(now, RegisterRequest { registration, node: w.node, class: w.class })?;
        }
        // Registration may already have asked for probes: keep them for the
        // driver's first drain.
        control.collect_events(now);
        Ok(control)
    }

    /// The service catalog, for queries.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The recovery coordinator, if recovery is configured.
    pub fn recovery(&self) -> Option<&RecoveryCoordinator> {
        self.recovery.as_ref()
    }

    /// How a recovery action went, as the driver saw it (the action could
    /// not be carried out, or it was). An instance that turns healthy ends
    /// its episode by itself; this is for what verdicts cannot tell. Drain
    /// [`poll_output`](Machine::poll_output) afterwards.
    pub fn recovery_outcome(&mut self, now: Instant, id: ActionId, outcome: Outcome) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        if let Some(r) = self.recovery.as_mut() {
            r.report_outcome(now, id, outcome);
        }
        self.collect_events(now);
    }

    /// Feed the recovery coordinator what `event` means for it.
    fn recovery_input(&mut self, now: Instant, event: &HealthEvent) {
        let monitored = |i: InstanceId, m: &[bool]| m.get(i.index()).copied().unwrap_or(false);
        let input = match *event {
            // Heartbeat liveness speaks for instances without active
            // checks; the monitor speaks for the others.
            HealthEvent::LivenessChanged { instance, to, .. } if !monitored(instance, &self.monitored) => {
                match to {
                    Liveness::Dead => self.registry.instance(instance).map(|i| {
                        RecoveryInput::Failure(FailureReport {
                            instance,
                            service: i.service,
                            failure: FailureType::Unresponsive,
                        })
                    }),
                    Liveness::Alive => Some(RecoveryInput::Healthy { instance }),
                    Liveness::Unknown | Liveness::Suspect => None,
                }
            }
            HealthEvent::LivenessChanged { .. } => None,
            _ => RecoveryInput::from_health_event(event).map(|input| self.judge_reachability(input)),
        };
        if let (Some(r), Some(input)) = (self.recovery.as_mut(), input) {
            r.handle(now, input);
        }
    }

    /// An instance its probes call unresponsive while its heartbeats keep
    /// arriving is either hung (its agent is a sidecar and beats on) or
    /// behind a lossy link. The heartbeats tell which: a hung application
    /// loses none, a lossy link loses some. Behind a lossy link a restart
    /// cannot help, so it is reported degraded (reachable, badly): its
    /// ladder takes it out of rotation until healthy instead.
    ///
    /// The judgment is revisited: if the heartbeats turn clean while the
    /// probes still time out, it was a hang after all
    /// ([`reconsider_lossy`](Self::reconsider_lossy)).
    fn judge_reachability(&mut self, input: RecoveryInput) -> RecoveryInput {
        let RecoveryInput::Failure(report) = input else { return input };
        if report.failure != FailureType::Unresponsive {
            return input;
        }
        let Some(liveness) = self.detector.instance(report.instance) else { return input };
        let lossy = liveness.status == Liveness::Alive
            && liveness.heartbeat_loss_permille().is_some_and(|loss| loss >= LOSSY_LINK_PERMILLE);
        if !lossy {
            return input;
        }
        tracing::info!(
            instance = report.instance.0,
            heartbeat_loss_permille = liveness.heartbeat_loss_permille(),
            "unresponsive to probes but heartbeating through a lossy link: degraded, not restarted"
        );
        if let Some(flag) = self.judged_lossy.get_mut(report.instance.index()) {
            *flag = true;
        }
        RecoveryInput::Failure(FailureReport { failure: FailureType::Degraded, ..report })
    }

    /// An instance judged behind a lossy link whose heartbeats are clean
    /// again ([`RECONSIDER_CLEAN_BEATS`] in a row without a gap) while its
    /// probes still time out was hung after all: its reroute is reported
    /// failed and it is reported unresponsive, so recovery reclassifies the
    /// episode and restarts it.
    fn reconsider_lossy(&mut self, now: Instant, instance: InstanceId) {
        let i = instance.index();
        if !self.judged_lossy.get(i).copied().unwrap_or(false) {
            return;
        }
        let clean =
            self.detector.instance(instance).is_some_and(|l| l.clean_streak >= RECONSIDER_CLEAN_BEATS);
        let unresponsive = self.monitor.status(instance) == Some(crate::health::HealthStatus::Unresponsive);
        if !(clean && unresponsive) {
            return;
        }
        self.judged_lossy[i] = false;
        let Some(service) = self.service_of.get(i).copied().flatten() else { return };
        tracing::info!(
            instance = instance.0,
            "heartbeats clean again while probes still fail: hung, not unreachable"
        );
        if let Some(r) = self.recovery.as_mut() {
            if let Some(id) = self.reroute_action.get_mut(i).and_then(Option::take) {
                r.report_outcome(now, id, Outcome::Failed);
            }
            r.handle(
                now,
                RecoveryInput::Failure(FailureReport {
                    instance,
                    service,
                    failure: FailureType::Unresponsive,
                }),
            );
        }
    }

    /// Register (or re-register) an instance at `now`: it joins the
    /// catalog, the failure detector watches its heartbeats, and the
    /// monitor probes it if its class has active checks. A re-registration
    /// updates its metadata and node and renews its lease. On error nothing
    /// changes. Drain [`poll_output`](Machine::poll_output) afterwards.
    pub fn register(
        &mut self,
        now: Instant,
        request: RegisterRequest,
    ) -> Result<RegisterOutcome, ControlError> {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        let outcome = self.register_inner(now, request)?;
        self.collect_events(now);
        Ok(outcome)
    }

    /// Remove an instance at `now` (a clean shutdown): clients are told it
    /// is no longer routable. Returns whether it was registered. Drain
    /// [`poll_output`](Machine::poll_output) afterwards.
    pub fn deregister(&mut self, now: Instant, instance: InstanceId) -> bool {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        let known = self.registry.deregister(now, instance).is_ok();
        self.forget(now, instance);
        self.collect_events(now);
        known
    }

    fn register_inner(
        &mut self,
        now: Instant,
        request: RegisterRequest,
    ) -> Result<RegisterOutcome, ControlError> {
        let RegisterRequest { registration, node, class } = request;
        if class >= self.liveness_classes {
            return Err(HealthConfigError::UnknownClass { class, classes: self.liveness_classes }.into());
        }
        let instance = registration.id;
        if instance.0 > crate::health::MAX_INSTANCE_ID {
            return Err(HealthConfigError::InstanceIdTooLarge {
                id: instance.0,
                max: crate::health::MAX_INSTANCE_ID,
            }
            .into());
        }
        let health = self.health_classes.get(class).cloned().flatten();
        if let Some(h) = &health {
            h.validate()?; // before the catalog changes: errors change nothing
        }
        let service_name = registration.service.clone();
        let outcome = self.registry.register(now, registration)?;
        let service = self.registry.service_id(&service_name).unwrap_or(ServiceId(0));
        if outcome == RegisterOutcome::Created {
            // Fresh ids for both: the catalog just accepted this one.
            let _ = self.detector.register(now, instance, class);
            if let Some(h) = &health {
                let _ = self.monitor.register(now, instance, service, h);
            }
            if let Some(r) = self.recovery.as_mut()
                && let Err(e) = r.register(now, instance, service)
            {
                // A service the recovery configuration does not name is
                // watched but not recovered.
                tracing::warn!(instance = instance.0, service = service.0, error = %e, "not under recovery");
            }
        }
        let i = instance.index();
        if self.nodes.len() <= i {
            self.nodes.resize(i + 1, None);
            self.monitored.resize(i + 1, false);
            self.routable.resize(i + 1, false);
            self.rerouted.resize(i + 1, false);
            self.reroute_action.resize(i + 1, None);
            self.judged_lossy.resize(i + 1, false);
            self.looks_down.resize(i + 1, false);
            self.service_of.resize(i + 1, None);
        }
        if self.service_of[i].is_none() {
            self.service_of[i] = Some(service);
            if self.down_by_service.len() <= service.index() {
                self.down_by_service.resize(service.index() + 1, (0, 0));
            }
            self.down_by_service[service.index()].1 += 1;
            self.down_total.1 += 1;
        }
        self.nodes[i] = Some(node);
        self.monitored[i] = health.is_some();
        Ok(outcome)
    }

    /// Stop watching `instance` everywhere but the catalog (which already
    /// let it go), and tell clients.
    fn forget(&mut self, now: Instant, instance: InstanceId) {
        // Announce first: the update names the node clients knew.
        self.set_routable(instance, false);
        self.detector.deregister(instance);
        self.monitor.deregister(instance);
        let i = instance.index();
        if let Some(service) = self.service_of.get_mut(i).and_then(Option::take) {
            let down = std::mem::take(&mut self.looks_down[i]);
            self.rerouted[i] = false;
            self.reroute_action[i] = None;
            self.judged_lossy[i] = false;
            let counts = &mut self.down_by_service[service.index()];
            counts.0 -= u32::from(down);
            counts.1 -= 1;
            self.down_total.0 -= u32::from(down);
            self.down_total.1 -= 1;
        }
        if let Some(r) = self.recovery.as_mut() {
            r.deregister(now, instance);
        }
        if let Some(node) = self.nodes.get_mut(instance.index()) {
            *node = None;
        }
    }

    /// The catalog health an instance's verdicts add up to.
    fn catalog_health(&self, instance: InstanceId) -> Option<CatalogHealth> {
        let liveness = self.detector.instance(instance)?.status;
        if liveness == Liveness::Dead {
            return Some(CatalogHealth::Critical);
        }
        if self.monitored.get(instance.index()).copied().unwrap_or(false) {
            return match self.monitor.status(instance)? {
                crate::health::HealthStatus::Healthy => Some(CatalogHealth::Passing),
                crate::health::HealthStatus::Degraded => Some(CatalogHealth::Warning),
                crate::health::HealthStatus::Unresponsive | crate::health::HealthStatus::Failed => {
                    Some(CatalogHealth::Critical)
                }
                crate::health::HealthStatus::Unknown => None,
            };
        }
        match liveness {
            Liveness::Alive => Some(CatalogHealth::Passing),
            Liveness::Suspect => Some(CatalogHealth::Warning),
            Liveness::Unknown | Liveness::Dead => None,
        }
    }

    fn set_routable(&mut self, instance: InstanceId, is: bool) {
        let Some(was) = self.routable.get_mut(instance.index()) else { return };
        if *was == is {
            return;
        }
        *was = is;
        self.index += 1;
        let node = self.nodes.get(instance.index()).copied().flatten();
        if let Some(node) = node {
            let message =
                Message::EndpointUpdate(EndpointUpdate { instance, node, routable: is, index: self.index });
            for &to in &self.subscribers {
                self.outputs.push_back(Output::Send { to, message });
            }
        }
    }

    /// The health monitor, for queries.
    pub fn monitor(&self) -> &HealthMonitor {
        &self.monitor
    }

    /// Whether clients are told to send `instance` traffic.
    pub fn is_routable(&self, instance: InstanceId) -> bool {
        self.routable.get(instance.index()).copied().unwrap_or(false)
    }

    /// The node a registered instance runs on (where probes and calls go);
    /// `None` once it leaves.
    pub fn node_of(&self, instance: InstanceId) -> Option<NodeId> {
        self.nodes.get(instance.index()).copied().flatten()
    }

    fn should_route(&self, instance: InstanceId) -> bool {
        if self.registry.instance(instance).is_none() {
            return false;
        }
        let alive = self.detector.instance(instance).is_some_and(|s| s.status == Liveness::Alive);
        let monitored = self.monitored.get(instance.index()).copied().unwrap_or(false);
        let rerouted = self.rerouted.get(instance.index()).copied().unwrap_or(false);
        alive && !rerouted && (!monitored || self.monitor.instance(instance).is_some_and(|v| v.ready))
    }

    /// An answer (or refusal) to probe message `id` arrived at `now`.
    fn probe_answered(&mut self, now: Instant, id: u64, outcome: impl FnOnce(Duration) -> ProbeOutcome) {
        // Unknown ids: answers after the deadline, or duplicates.
        if let Some(f) = self.probes.remove(&id) {
            let result = ProbeResult { probe: f.probe, outcome: outcome(now - f.sent_at) };
            self.monitor.handle_probe_result(now, result);
        }
    }

    /// The failure detector, for queries.
    pub fn detector(&self) -> &FailureDetector {
        &self.detector
    }

    /// Clients subscribed to endpoint updates.
    pub fn subscribers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.subscribers.iter().copied()
    }

    /// Subscriptions refused because the table was full.
    pub fn refused_subscriptions(&self) -> u64 {
        self.refused_subscriptions
    }

    fn update_for(&self, instance: InstanceId, routable: bool) -> Option<Message> {
        let node = self.nodes.get(instance.index()).copied().flatten()?;
        Some(Message::EndpointUpdate(EndpointUpdate { instance, node, routable, index: self.index }))
    }

    fn subscribe(&mut self, client: NodeId) {
        if self.subscribers.contains(&client) {
            return; // a renewal
        }
        if self.subscribers.len() >= MAX_SUBSCRIBERS {
            self.refused_subscriptions += 1;
            return;
        }
        self.subscribers.insert(client);
        let table: Vec<Message> = (0..self.routable.len())
            .filter_map(|i| self.update_for(InstanceId(i as u32), self.routable[i]))
            .collect();
        for message in table {
            self.outputs.push_back(Output::Send { to: client, message });
        }
    }

    /// Move the detector's and monitor's outputs to the output queue: send
    /// probes, publish verdicts, and announce every change of routability
    /// to subscribers.
    fn collect_events(&mut self, now: Instant) {
        let mut touched: Vec<InstanceId> = Vec::new();
        // Recovery hears of verdicts after the storm guard has seen them
        // all: a failure report must not act before a storm it is part of.
        let mut for_recovery: Vec<HealthEvent> = Vec::new();
        while let Some(event) = self.detector.poll_event() {
            if let HealthEvent::LivenessChanged { instance, .. } = event {
                touched.push(instance);
            }
            if self.recovery.is_some() {
                for_recovery.push(event);
            }
            self.outputs.push_back(Output::Health(event));
        }
        while let Some(output) = self.monitor.poll_output() {
            match output {
                MonitorOutput::Probe(request) => {
                    let Some(node) = self.nodes.get(request.instance.index()).copied().flatten() else {
                        continue; // registered with the monitor, so it has a node: unreachable
                    };
                    let id = request.probe.seq;
                    let f = InFlight { probe: request.probe, sent_at: now, deadline: request.deadline };
                    self.probes.insert(id, f);
                    let timeout_ms = u32::try_from((request.deadline - now).as_millis()).unwrap_or(u32::MAX);
                    let probe = Probe { id, kind: request.kind, timeout_ms };
                    self.outputs.push_back(Output::Send { to: node, message: Message::Probe(probe) });
                }
                MonitorOutput::Event(event) => {
                    match event {
                        HealthEvent::ReadinessChanged { instance, .. }
                        | HealthEvent::StatusChanged { instance, .. } => touched.push(instance),
                        _ => {}
                    }
                    if self.recovery.is_some() {
                        for_recovery.push(event);
                    }
                    self.outputs.push_back(Output::Health(event));
                }
            }
        }
        // Instances the catalog let go since the last call (critical too
        // long): forget them everywhere.
        let gone: Vec<InstanceId> = match self.registry.changes_since(self.registry_seen) {
            Some(changes) => changes
                .filter(|c| matches!(c.kind, ChangeKind::Deregistered { .. }))
                .map(|c| c.instance)
                .collect(),
            // The log no longer reaches back: compare with the catalog.
            None => (0..self.nodes.len())
                .map(|i| InstanceId(i as u32))
                .filter(|&i| self.nodes[i.index()].is_some() && self.registry.instance(i).is_none())
                .collect(),
        };
        for instance in gone {
            if self.nodes.get(instance.index()).copied().flatten().is_some() {
                self.forget(now, instance);
            }
        }
        for &instance in &touched {
            if let Some(health) = self.catalog_health(instance) {
                // Known to the detector, so in the catalog; a miss is harmless.
                let _ = self.registry.set_health(now, instance, health);
            }
        }
        self.observe_storm(now, &touched);
        for event in &for_recovery {
            self.recovery_input(now, event);
        }
        for &instance in &touched {
            let is = self.should_route(instance);
            self.set_routable(instance, is);
        }
        self.registry_seen = self.registry.index();
        let mut reroutes: Vec<(InstanceId, bool)> = Vec::new();
        if let Some(r) = self.recovery.as_mut() {
            while let Some(out) = r.poll_output() {
                match out {
                    RecoveryOutput::Action(Action {
                        kind: ActionKind::Reroute,
                        instance: Some(i),
                        id,
                        ..
                    }) => {
                        if let Some(slot) = self.reroute_action.get_mut(i.index()) {
                            *slot = Some(id);
                        }
                        reroutes.push((i, true));
                    }
                    RecoveryOutput::Decision(Decision {
                        kind: DecisionKind::Resolved { .. } | DecisionKind::Abandoned,
                        instance: Some(i),
                        ..
                    }) => reroutes.push((i, false)),
                    _ => {}
                }
                self.outputs.push_back(Output::Recovery(Box::new(out)));
            }
        }
        // A reroute is carried out here, where routing is decided: the
        // instance leaves rotation until its episode ends.
        for (instance, out) in reroutes {
            if !out {
                if let Some(slot) = self.reroute_action.get_mut(instance.index()) {
                    *slot = None;
                }
                if let Some(flag) = self.judged_lossy.get_mut(instance.index()) {
                    *flag = false;
                }
            }
            if let Some(flag) = self.rerouted.get_mut(instance.index()) {
                *flag = out;
                let is = self.should_route(instance);
                self.set_routable(instance, is);
            }
        }
    }

    /// Whether `instance` looks down to this observer because it went
    /// silent: the detector holds it suspect or dead, or its monitor
    /// unresponsive. An instance that answers, even with errors or
    /// refusals (`failed`), proves the observer can reach it, so it says
    /// nothing about the observer being cut off.
    fn looks_down_now(&self, instance: InstanceId) -> bool {
        let silent = self
            .detector
            .instance(instance)
            .is_some_and(|s| matches!(s.status, Liveness::Suspect | Liveness::Dead));
        let monitored = self.monitored.get(instance.index()).copied().unwrap_or(false);
        silent
            || (monitored && self.monitor.status(instance) == Some(crate::health::HealthStatus::Unresponsive))
    }

    /// Tell the storm guard how much of each touched scope looks down.
    /// Suspicion counts: when this observer is cut off, every instance
    /// turns suspect seconds before the first is declared dead, so the
    /// guard holds from the first failure report rather than after a few
    /// restarts of a healthy fleet.
    fn observe_storm(&mut self, now: Instant, touched: &[InstanceId]) {
        if self.recovery.is_none() {
            return;
        }
        let mut changed: Vec<ServiceId> = Vec::new();
        for &instance in touched {
            let i = instance.index();
            let Some(service) = self.service_of.get(i).copied().flatten() else { continue };
            let down = self.looks_down_now(instance);
            if self.looks_down[i] == down {
                continue;
            }
            self.looks_down[i] = down;
            let counts = &mut self.down_by_service[service.index()];
            if down {
                counts.0 += 1;
                self.down_total.0 += 1;
            } else {
                counts.0 -= 1;
                self.down_total.0 -= 1;
            }
            if !changed.contains(&service) {
                changed.push(service);
            }
        }
        if changed.is_empty() {
            return;
        }
        let Some(r) = self.recovery.as_mut() else { return };
        for service in changed {
            let (down, total) = self.down_by_service[service.index()];
            r.observe_unhealthy_share(now, StormScope::Service(service), down, total);
        }
        r.observe_unhealthy_share(now, StormScope::Global, self.down_total.0, self.down_total.1);
    }
}

impl Machine for ControlPlane {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        match input {
            Input::Message { from, message: Message::Subscribe } => self.subscribe(from),
            Input::Message { message: Message::Heartbeat(hb), .. } => {
                let accepted = self.detector.stats().accepted;
                self.detector.on_heartbeat(now, &hb);
                // Only news renews the monitor's heartbeat checks: the
                // detector has dropped duplicates and reordered beats.
                let fresh = self.detector.stats().accepted > accepted;
                if fresh {
                    // Renews the lease; unknown ids were dropped by the detector.
                    let _ = self.registry.renew(now, hb.instance);
                    if self.monitored.get(hb.instance.index()).copied().unwrap_or(false) {
                        self.monitor.heartbeat(now, hb.instance);
                    }
                    self.reconsider_lossy(now, hb.instance);
                }
            }
            Input::Message { message: Message::ProbeReply(r), .. } => {
                self.probe_answered(now, r.id, |latency| {
                    if r.ok {
                        ProbeOutcome::Success { latency }
                    } else {
                        ProbeOutcome::Failure { reason: FailureReason::Error(503) }
                    }
                });
            }
            Input::Message { message: Message::Refused(r), .. } if r.probe => {
                self.probe_answered(now, r.id, |_| ProbeOutcome::Failure { reason: FailureReason::Refused });
            }
            Input::Message { .. } | Input::Call { .. } => {}
        }
        self.collect_events(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        self.detector.handle_timeout(now);
        self.monitor.handle_timeout(now);
        self.registry.handle_timeout(now);
        if let Some(r) = self.recovery.as_mut() {
            r.handle_timeout(now);
        }
        // Watches are answered by queries; nothing to carry out.
        while self.registry.poll_event().is_some() {}
        // Forget probes past their deadline: the monitor has counted them
        // unresponsive. Ids grow with time, so the oldest come first.
        while let Some((&id, f)) = self.probes.first_key_value() {
            if f.deadline > now {
                break;
            }
            self.probes.remove(&id);
        }
        self.collect_events(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let checks = [
            self.detector.poll_timeout(),
            self.monitor.poll_timeout(),
            self.registry.poll_timeout(),
            self.recovery.as_ref().and_then(Machine::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        let probe = self.probes.first_key_value().map(|(_, f)| f.deadline);
        [checks, probe].into_iter().flatten().min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}

/// The agent beside one service instance.
#[derive(Debug, Clone)]
pub struct InstanceNode {
    heartbeat: HeartbeatAgent,
}

impl InstanceNode {
    /// An instance agent booting at `now`.
    pub fn new(config: AgentConfig, now: Instant, seed: Seed) -> Result<Self, HealthConfigError> {
        Ok(InstanceNode { heartbeat: HeartbeatAgent::new(config, now, seed)? })
    }

    /// The heartbeat agent.
    pub fn heartbeat(&self) -> &HeartbeatAgent {
        &self.heartbeat
    }
}

impl Machine for InstanceNode {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        self.heartbeat.handle(now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.heartbeat.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.heartbeat.poll_timeout()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.heartbeat.poll_output()
    }
}

/// Either role, for drivers that keep every node in one table.
///
/// The control plane and the client are boxed: a fleet table holds one
/// control node, a few clients and thousands of instances, and every slot
/// is as large as the largest variant.
#[derive(Debug, Clone)]
pub enum Node {
    /// The control node.
    Control(Box<ControlPlane>),
    /// A service instance's agent.
    Instance(InstanceNode),
    /// A client of a service.
    Client(Box<ClientNode>),
}

impl Machine for Node {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        match self {
            Node::Control(m) => m.handle(now, input),
            Node::Instance(m) => m.handle(now, input),
            Node::Client(m) => m.handle(now, input),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Node::Control(m) => m.handle_timeout(now),
            Node::Instance(m) => m.handle_timeout(now),
            Node::Client(m) => m.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Node::Control(m) => m.poll_timeout(),
            Node::Instance(m) => m.poll_timeout(),
            Node::Client(m) => m.poll_timeout(),
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Node::Control(m) => m.poll_output(),
            Node::Instance(m) => m.poll_output(),
            Node::Client(m) => m.poll_output(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn instance_heartbeats_reach_control_and_make_it_alive() {
        let timeouts =
            LivenessTimeouts { suspect_after: Duration::from_secs(2), dead_after: Duration::from_secs(3) };
        let config = ControlConfig {
            liveness_classes: vec![timeouts],
            instances: vec![WatchedInstance {
                instance: InstanceId(0),
                node: NodeId(1),
                service: ServiceId(0),
                class: 0,
            }],
            ..ControlConfig::default()
        };
        let mut control = Node::Control(Box::new(ControlPlane::new(&config, Instant::ZERO).expect("valid")));
        let agent = AgentConfig {
            instance: InstanceId(0),
            control: NodeId(0),
            interval: Duration::from_secs(1),
            incarnation: 1,
        };
        let mut instance = Node::Instance(InstanceNode::new(agent, Instant::ZERO, Seed(1)).expect("valid"));

        let at = instance.poll_timeout().expect("agent always has a deadline");
        instance.handle_timeout(at);
        let Some(Output::Send { to, message }) = instance.poll_output() else { panic!("expected a send") };
        assert_eq!(to, NodeId(0));
        control.handle(at, Input::Message { from: NodeId(1), message });
        assert_eq!(
            control.poll_output(),
            Some(Output::Health(HealthEvent::LivenessChanged {
                instance: InstanceId(0),
                from: Liveness::Unknown,
                to: Liveness::Alive,
                last_heard: at,
            }))
        );
    }

    const CLIENT: NodeId = NodeId(9);

    fn heartbeat(control: &mut ControlPlane, at: Instant, instance: u32, seq: u64) -> Vec<Output> {
        let hb = crate::message::Heartbeat { instance: InstanceId(instance), incarnation: 1, seq };
        control.handle(at, Input::Message { from: NodeId(instance + 1), message: Message::Heartbeat(hb) });
        std::iter::from_fn(|| control.poll_output()).collect()
    }

    fn updates(outputs: &[Output]) -> Vec<(u32, bool)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, message: Message::EndpointUpdate(u) } if *to == CLIENT => {
                    Some((u.instance.0, u.routable))
                }
                _ => None,
            })
            .collect()
    }

    fn control_with(registry: RegistryConfig) -> ControlPlane {
        let config = ControlConfig { registry, ..ControlConfig::default() };
        let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
        control.handle(Instant::ZERO, Input::Message { from: CLIENT, message: Message::Subscribe });
        assert_eq!(control.poll_output(), None, "an empty catalog has nothing to tell");
        control
    }

    fn request(id: u32, service: &str) -> RegisterRequest {
        RegisterRequest {
            registration: Registration::new(InstanceId(id), service, "v1").zone("a"),
            node: NodeId(id + 1),
            class: 0,
        }
    }

    #[test]
    fn a_refused_registration_changes_nothing() {
        let mut control = control_with(RegistryConfig::default());
        let err = control.register(Instant::ZERO, request(0, "")).expect_err("empty service name");
        assert!(matches!(err, ControlError::Registry(RegistryError::Empty { .. })), "{err}");
        let err = control.register(Instant::ZERO, RegisterRequest { class: 7, ..request(0, "web") });
        assert!(matches!(err, Err(ControlError::Health(HealthConfigError::UnknownClass { .. }))));
        assert!(control.registry().is_empty());
        assert!(control.detector().instance(InstanceId(0)).is_none());
        assert_eq!(control.poll_output(), None);
    }

    #[test]
    fn heartbeats_make_a_registered_instance_passing_and_routable() {
        let mut control = control_with(RegistryConfig::default());
        assert_eq!(control.register(Instant::ZERO, request(0, "web")), Ok(RegisterOutcome::Created));
        assert_eq!(
            control.registry().instance(InstanceId(0)).map(|i| i.health()),
            Some(CatalogHealth::Critical),
            "new instances start critical until heard from"
        );
        let out = heartbeat(&mut control, Instant::from_millis(10), 0, 0);
        assert_eq!(updates(&out), vec![(0, true)]);
        assert!(control.is_routable(InstanceId(0)));
        assert_eq!(
            control.registry().instance(InstanceId(0)).map(|i| i.health()),
            Some(CatalogHealth::Passing)
        );
        // Re-registering with new metadata keeps it routable.
        let again = RegisterRequest {
            registration: Registration::new(InstanceId(0), "web", "v2"),
            ..request(0, "web")
        };
        assert_eq!(control.register(Instant::from_millis(20), again), Ok(RegisterOutcome::Updated));
        assert!(control.is_routable(InstanceId(0)));
    }

    #[test]
    fn an_instance_critical_too_long_leaves_the_catalog_and_rotation() {
        let registry = RegistryConfig {
            default_ttl: Duration::from_secs(2),
            deregister_critical_after: Some(Duration::from_secs(10)),
            ..RegistryConfig::default()
        };
        let mut control = control_with(registry);
        control.register(Instant::ZERO, request(0, "web")).expect("valid");
        control.register(Instant::ZERO, request(1, "web")).expect("valid");
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        let mut out = Vec::new();
        // Instance 1 beats every second; instance 0 once, then falls silent.
        out.extend(heartbeat(&mut control, Instant::ZERO, 0, 0));
        let mut now = Instant::ZERO;
        for s in 0..20u64 {
            now = Instant::from_secs(s);
            out.extend(heartbeat(&mut control, now, 1, s));
            while let Some(t) = control.poll_timeout().filter(|&t| t <= now + Duration::from_secs(1)) {
                control.handle_timeout(t);
                out.extend(std::iter::from_fn(|| control.poll_output()));
            }
        }
        assert!(now >= Instant::from_secs(19));
        assert_eq!(
            updates(&out).iter().filter(|u| u.0 == 0).copied().collect::<Vec<_>>(),
            vec![(0, true), (0, false)]
        );
        assert!(control.registry().instance(InstanceId(0)).is_none(), "critical past 10 s: deregistered");
        assert!(control.detector().instance(InstanceId(0)).is_none(), "and no longer watched");
        assert!(control.registry().instance(InstanceId(1)).is_some(), "the healthy one stays");
        assert!(control.is_routable(InstanceId(1)));
    }

    #[test]
    fn a_clean_deregistration_tells_clients() {
        let mut control = control_with(RegistryConfig::default());
        control.register(Instant::ZERO, request(3, "web")).expect("valid");
        let _ = heartbeat(&mut control, Instant::ZERO, 3, 0);
        assert!(control.deregister(Instant::from_secs(1), InstanceId(3)));
        let out: Vec<Output> = std::iter::from_fn(|| control.poll_output()).collect();
        assert_eq!(updates(&out), vec![(3, false)]);
        assert!(!control.deregister(Instant::from_secs(1), InstanceId(3)), "only once");
        // Its heartbeats are now ignored.
        assert!(updates(&heartbeat(&mut control, Instant::from_secs(2), 3, 1)).is_empty());
    }

    fn recovering_control() -> ControlPlane {
        let recovery = RecoveryConfig {
            services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
            ..RecoveryConfig::default()
        };
        let config = ControlConfig { recovery: Some(recovery), ..ControlConfig::default() };
        let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
        control.register(Instant::ZERO, request(0, "web")).expect("valid");
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        control
    }

    fn recovery_outputs(outputs: &[Output]) -> Vec<RecoveryOutput> {
        outputs.iter().filter_map(|o| if let Output::Recovery(r) = o { Some(**r) } else { None }).collect()
    }

    /// Run the control node's timers up to `until`, collecting outputs.
    fn run_until(control: &mut ControlPlane, until: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(t) = control.poll_timeout().filter(|&t| t <= until) {
            control.handle_timeout(t);
            out.extend(std::iter::from_fn(|| control.poll_output()));
        }
        out
    }

    #[test]
    fn a_silent_instance_is_restarted_and_its_episode_ends_when_it_beats_again() {
        let mut control = recovering_control();
        let _ = heartbeat(&mut control, Instant::ZERO, 0, 0);
        // Silence: dead after 5 s, then recovery acts at once (no backoff on
        // a first attempt).
        let out = run_until(&mut control, Instant::from_secs(6));
        let actions: Vec<crate::recovery::Action> = recovery_outputs(&out)
            .into_iter()
            .filter_map(|r| if let RecoveryOutput::Action(a) = r { Some(a) } else { None })
            .collect();
        assert_eq!(actions.len(), 1, "one action: {out:?}");
        assert_eq!(actions[0].instance, Some(InstanceId(0)));
        assert_eq!(actions[0].kind, crate::recovery::ActionKind::Restart);
        let recovery = control.recovery().expect("configured");
        assert!(recovery.episode(InstanceId(0)).is_some(), "an episode is open");
        // The restarted instance beats again: healthy, the episode ends.
        let back = heartbeat(&mut control, Instant::from_secs(8), 0, 1);
        let resolved = recovery_outputs(&back).iter().any(
            |r| matches!(r, RecoveryOutput::Decision(d) if matches!(d.kind, crate::recovery::DecisionKind::Resolved { .. })),
        );
        assert!(resolved, "resolved on the alive verdict: {back:?}");
        assert!(control.recovery().expect("configured").episode(InstanceId(0)).is_none());
    }

    #[test]
    fn a_failed_action_reported_by_the_driver_is_retried() {
        let mut control = recovering_control();
        let _ = heartbeat(&mut control, Instant::ZERO, 0, 0);
        let out = run_until(&mut control, Instant::from_secs(6));
        let first = recovery_outputs(&out)
            .into_iter()
            .find_map(|r| if let RecoveryOutput::Action(a) = r { Some(a) } else { None })
            .expect("an action");
        control.recovery_outcome(Instant::from_secs(6), first.id, Outcome::Failed);
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        // The retry waits out its backoff (at most 10 s, the first step).
        let out = run_until(&mut control, Instant::from_secs(17));
        let retry = recovery_outputs(&out)
            .into_iter()
            .find_map(|r| if let RecoveryOutput::Action(a) = r { Some(a) } else { None })
            .expect("a second attempt");
        assert_eq!(retry.id.correlation, first.id.correlation, "the same episode");
        assert_eq!(retry.id.attempt, 2);
    }

    /// Recovery for service 0 over `count` heartbeat-only instances, all
    /// beating once at time zero.
    fn recovering_fleet(count: u32) -> ControlPlane {
        let recovery = RecoveryConfig {
            services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
            ..RecoveryConfig::default()
        };
        let config = ControlConfig { recovery: Some(recovery), ..ControlConfig::default() };
        let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
        for i in 0..count {
            control.register(Instant::ZERO, request(i, "web")).expect("valid");
            let _ = std::iter::from_fn(|| control.poll_output()).count();
            heartbeat(&mut control, Instant::ZERO, i, 1);
        }
        control
    }

    fn decisions_of(outputs: &[Output]) -> Vec<(Option<InstanceId>, crate::recovery::DecisionKind)> {
        recovery_outputs(outputs)
            .into_iter()
            .filter_map(
                |r| if let RecoveryOutput::Decision(d) = r { Some((d.instance, d.kind)) } else { None },
            )
            .collect()
    }

    #[test]
    fn a_fleet_gone_silent_is_a_storm_before_anyone_is_declared_dead() {
        // The observer is cut off: no heartbeat arrives from anyone.
        let mut control = recovering_fleet(6);
        let suspected = run_until(&mut control, Instant::from_millis(4500));
        let storm = decisions_of(&suspected)
            .into_iter()
            .find(|(_, d)| matches!(d, crate::recovery::DecisionKind::StormSuspected { .. }));
        assert!(storm.is_some(), "suspicion alone enters the storm: {:?}", decisions_of(&suspected));
        assert!(control.recovery().expect("configured").in_storm(StormScope::Service(ServiceId(0))));
        // Then every instance is declared dead, and none is restarted.
        let dead = run_until(&mut control, Instant::from_secs(30));
        let reports = decisions_of(&dead)
            .iter()
            .filter(|(_, d)| matches!(d, crate::recovery::DecisionKind::Detected { .. }))
            .count();
        assert_eq!(reports, 6, "every instance is reported failing");
        let acted: Vec<RecoveryOutput> =
            recovery_outputs(&dead).into_iter().filter(|r| matches!(r, RecoveryOutput::Action(_))).collect();
        assert!(acted.is_empty(), "a silent fleet is not restarted: {acted:?}");
    }

    #[test]
    fn one_silent_instance_of_six_is_no_storm_and_is_restarted() {
        let mut control = recovering_fleet(6);
        let mut out = Vec::new();
        for t in 1..=10u64 {
            for i in 1..6 {
                out.extend(heartbeat(&mut control, Instant::from_secs(t), i, t + 1));
            }
            out.extend(run_until(&mut control, Instant::from_secs(t)));
        }
        assert!(
            !decisions_of(&out)
                .iter()
                .any(|(_, d)| matches!(d, crate::recovery::DecisionKind::StormSuspected { .. }))
        );
        let restarted: Vec<Option<InstanceId>> = recovery_outputs(&out)
            .into_iter()
            .filter_map(|r| if let RecoveryOutput::Action(a) = r { Some(a.instance) } else { None })
            .collect();
        assert_eq!(restarted, [Some(InstanceId(0))]);
    }

    #[test]
    fn a_rerouted_instance_leaves_rotation_until_its_episode_ends() {
        use crate::health::{CheckConfig, ErrorRateRule, InstanceHealthConfig, ProbeCheck, ProbeKind};
        let readiness = ProbeCheck { error_rate: Some(ErrorRateRule::default()), ..ProbeCheck::default() };
        let recovery = RecoveryConfig {
            services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
            ..RecoveryConfig::default()
        };
        let config = ControlConfig {
            recovery: Some(recovery),
            health_classes: vec![Some(InstanceHealthConfig {
                checks: vec![CheckConfig::probe_with(ProbeKind::Readiness, readiness)],
                flap: None,
            })],
            ..ControlConfig::default()
        };
        let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
        control.register(Instant::ZERO, request(0, "web")).expect("valid");
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        // Answer each probe 1 ms later: ok, or an error for every `bad`-th.
        let mut answered = 0u64;
        let mut routable_at = Vec::new();
        let mut drive = |control: &mut ControlPlane, from: u64, to: u64, bad: Option<u64>| {
            let mut all = Vec::new();
            for ms in (from..to).step_by(500) {
                let now = Instant::from_millis(ms);
                all.extend(heartbeat(control, now, 0, ms + 1));
                let outs = run_until(control, now);
                for o in &outs {
                    if let Output::Send { message: Message::Probe(p), .. } = o {
                        answered += 1;
                        let ok = bad.is_none_or(|b| answered % b != 0);
                        let reply = Message::ProbeReply(crate::message::ProbeReply { id: p.id, ok });
                        control.handle(
                            now + Duration::from_millis(1),
                            Input::Message { from: NodeId(1), message: reply },
                        );
                        all.extend(std::iter::from_fn(|| control.poll_output()));
                    }
                }
                all.extend(outs);
                routable_at.push((ms, control.is_routable(InstanceId(0))));
            }
            all
        };
        let healthy = drive(&mut control, 0, 20_000, None);
        assert!(control.is_routable(InstanceId(0)), "healthy and ready");
        assert!(recovery_outputs(&healthy).is_empty());
        // A quarter of probes fail: degraded, still ready, but recovery
        // reroutes it: out of rotation.
        let degraded = drive(&mut control, 20_000, 60_000, Some(4));
        let reroute = recovery_outputs(&degraded).into_iter().find_map(|r| match r {
            RecoveryOutput::Action(a) if a.kind == crate::recovery::ActionKind::Reroute => Some(a),
            _ => None,
        });
        let reroute = reroute.expect("the default degraded ladder reroutes first");
        assert_eq!(reroute.instance, Some(InstanceId(0)));
        assert!(
            control.monitor().instance(InstanceId(0)).is_some_and(|v| v.ready),
            "the monitor alone would keep it"
        );
        assert!(!control.is_routable(InstanceId(0)), "rerouted: out of rotation");
        // Healthy again: the episode resolves and it rejoins.
        let _ = drive(&mut control, 60_000, 90_000, None);
        assert!(control.is_routable(InstanceId(0)), "back in rotation once healthy");
        assert!(control.recovery().expect("configured").episode(InstanceId(0)).is_none());
    }

    #[test]
    fn a_silent_instance_behind_lossy_heartbeats_is_rerouted_then_restarted_once_they_turn_clean() {
        use crate::health::{CheckConfig, InstanceHealthConfig, ProbeKind};
        let recovery = RecoveryConfig {
            services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
            ..RecoveryConfig::default()
        };
        let config = ControlConfig {
            recovery: Some(recovery),
            health_classes: vec![Some(InstanceHealthConfig {
                checks: vec![CheckConfig::probe(ProbeKind::Liveness)],
                flap: None,
            })],
            ..ControlConfig::default()
        };
        let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
        control.register(Instant::ZERO, request(0, "web")).expect("valid");
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        // Beat every second; `skip` drops every fifth beat (a lossy link);
        // probes are answered while `answer`, else left to time out.
        let mut seq = 0u64;
        let mut run = |control: &mut ControlPlane, from_s: u64, to_s: u64, skip: bool, answer: bool| {
            let mut out = Vec::new();
            for t in from_s..to_s {
                let now = Instant::from_secs(t);
                seq += 1;
                if !(skip && seq % 5 == 0) {
                    out.extend(heartbeat(control, now, 0, seq));
                }
                let outs = run_until(control, now + Duration::from_millis(999));
                for o in &outs {
                    if let (true, Output::Send { message: Message::Probe(p), .. }) = (answer, o) {
                        let reply = Message::ProbeReply(crate::message::ProbeReply { id: p.id, ok: true });
                        control.handle(
                            now + Duration::from_millis(5),
                            Input::Message { from: NodeId(1), message: reply },
                        );
                        out.extend(std::iter::from_fn(|| control.poll_output()));
                    }
                }
                out.extend(outs);
            }
            out
        };
        let kinds = |out: &[Output]| -> Vec<crate::recovery::ActionKind> {
            recovery_outputs(out)
                .into_iter()
                .filter_map(|r| if let RecoveryOutput::Action(a) = r { Some(a.kind) } else { None })
                .collect()
        };
        // Healthy on a lossy link, then its probes stop getting through.
        let warm = run(&mut control, 1, 40, true, true);
        assert!(kinds(&warm).is_empty(), "{:?}", kinds(&warm));
        let lossy = run(&mut control, 40, 50, true, false);
        assert_eq!(kinds(&lossy), [crate::recovery::ActionKind::Reroute], "judged unreachable, not hung");
        assert!(!control.is_routable(InstanceId(0)));
        // The heartbeats turn clean, the probes still fail: it is hung.
        let clean = run(&mut control, 50, 120, false, false);
        assert!(
            kinds(&clean).contains(&crate::recovery::ActionKind::Restart),
            "restarted once the heartbeats show no loss: {:?}",
            kinds(&clean)
        );
    }

    #[test]
    fn without_recovery_nothing_acts_on_verdicts() {
        let mut control = control_with(RegistryConfig::default());
        control.register(Instant::ZERO, request(0, "web")).expect("valid");
        let _ = heartbeat(&mut control, Instant::ZERO, 0, 0);
        let out = run_until(&mut control, Instant::from_secs(30));
        assert!(
            out.iter().any(|o| matches!(
                o,
                Output::Health(HealthEvent::LivenessChanged { to: Liveness::Dead, .. })
            ))
        );
        assert!(recovery_outputs(&out).is_empty());
        assert!(control.recovery().is_none());
    }
}
