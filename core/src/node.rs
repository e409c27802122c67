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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Settings of the control node.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlConfig {
    /// Timeout classes; each watched instance names one by index.
    pub liveness_classes: Vec<LivenessTimeouts>,
    /// Active health checks of each class (same index as
    /// `liveness_classes`; missing or `None`: heartbeat liveness only).
    pub health_classes: Vec<Option<InstanceHealthConfig>>,
    /// The instances to watch from the start.
    pub instances: Vec<WatchedInstance>,
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
    subscribers: BTreeSet<NodeId>,
    /// Bumped on every routability change; stamps every update.
    index: u64,
    outputs: VecDeque<Output>,
    refused_subscriptions: u64,
}

impl ControlPlane {
    /// A control node booting at `now`.
    pub fn new(config: &ControlConfig, now: Instant) -> Result<Self, HealthConfigError> {
        let mut detector = FailureDetector::new(&config.liveness_classes)?;
        let mut monitor = HealthMonitor::new();
        let mut nodes = Vec::new();
        let mut monitored = Vec::new();
        for w in &config.instances {
            if w.class >= config.liveness_classes.len() {
                return Err(HealthConfigError::UnknownClass {
                    class: w.class,
                    classes: config.liveness_classes.len(),
                });
            }
            detector.register(now, w.instance, w.class)?;
            let health = config.health_classes.get(w.class).and_then(Option::as_ref);
            if let Some(health) = health {
                monitor.register(now, w.instance, w.service, health)?;
            }
            if nodes.len() <= w.instance.index() {
                nodes.resize(w.instance.index() + 1, None);
                monitored.resize(w.instance.index() + 1, false);
            }
            nodes[w.instance.index()] = Some(w.node);
            monitored[w.instance.index()] = health.is_some();
        }
        let routable = vec![false; nodes.len()];
        let mut control = ControlPlane {
            detector,
            monitor,
            probes: BTreeMap::new(),
            monitored,
            routable,
            nodes,
            subscribers: BTreeSet::new(),
            index: 0,
            outputs: VecDeque::new(),
            refused_subscriptions: 0,
        };
        // Registration may already have asked for probes: keep them for the
        // driver's first drain.
        control.collect_events(now);
        Ok(control)
    }

    /// The health monitor, for queries.
    pub fn monitor(&self) -> &HealthMonitor {
        &self.monitor
    }

    /// Whether clients are told to send `instance` traffic.
    pub fn is_routable(&self, instance: InstanceId) -> bool {
        self.routable.get(instance.index()).copied().unwrap_or(false)
    }

    fn should_route(&self, instance: InstanceId) -> bool {
        let alive = self.detector.instance(instance).is_some_and(|s| s.status == Liveness::Alive);
        let monitored = self.monitored.get(instance.index()).copied().unwrap_or(false);
        alive && (!monitored || self.monitor.instance(instance).is_some_and(|v| v.ready))
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
        while let Some(event) = self.detector.poll_event() {
            if let HealthEvent::LivenessChanged { instance, .. } = event {
                touched.push(instance);
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
                    self.outputs.push_back(Output::Send { to: node, message: Message::Probe(Probe { id }) });
                }
                MonitorOutput::Event(event) => {
                    match event {
                        HealthEvent::ReadinessChanged { instance, .. }
                        | HealthEvent::StatusChanged { instance, .. } => touched.push(instance),
                        _ => {}
                    }
                    self.outputs.push_back(Output::Health(event));
                }
            }
        }
        for instance in touched {
            let is = self.should_route(instance);
            let Some(was) = self.routable.get_mut(instance.index()) else { continue };
            if *was == is {
                continue;
            }
            *was = is;
            self.index += 1;
            if let Some(message) = self.update_for(instance, is) {
                for &to in &self.subscribers {
                    self.outputs.push_back(Output::Send { to, message });
                }
            }
        }
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
                if fresh && self.monitored.get(hb.instance.index()).copied().unwrap_or(false) {
                    self.monitor.heartbeat(now, hb.instance);
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
        let checks = [self.detector.poll_timeout(), self.monitor.poll_timeout()].into_iter().flatten().min();
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
            health_classes: Vec::new(),
            instances: vec![WatchedInstance {
                instance: InstanceId(0),
                node: NodeId(1),
                service: ServiceId(0),
                class: 0,
            }],
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
}
