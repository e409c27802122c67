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

use std::collections::{BTreeSet, VecDeque};

use crate::client::{CallDone, ClientNode};
use crate::health::{
    AgentConfig, FailureDetector, HealthConfigError, HealthEvent, HeartbeatAgent, Liveness, LivenessTimeouts,
};
use crate::id::{InstanceId, NodeId};
use crate::machine::Machine;
use crate::message::{EndpointUpdate, Message};
use crate::rng::Seed;
use crate::time::Instant;

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
}

/// Settings of the control node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// Timeout classes; each watched instance names one by index.
    pub liveness_classes: Vec<LivenessTimeouts>,
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
    /// Index of its liveness timeout class.
    pub class: usize,
}

/// Most clients a control node keeps subscribed; further subscriptions are
/// ignored (and counted) until the table has room.
pub const MAX_SUBSCRIBERS: usize = 4096;

/// The control node: watches the fleet's heartbeats, publishes verdicts,
/// and tells subscribed clients which instances are routable.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    detector: FailureDetector,
    /// Node of each instance, indexed by instance id.
    nodes: Vec<Option<NodeId>>,
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
        let mut nodes = Vec::new();
        for w in &config.instances {
            if w.class >= config.liveness_classes.len() {
                return Err(HealthConfigError::UnknownClass {
                    class: w.class,
                    classes: config.liveness_classes.len(),
                });
            }
            detector.register(now, w.instance, w.class)?;
            if nodes.len() <= w.instance.index() {
                nodes.resize(w.instance.index() + 1, None);
            }
            nodes[w.instance.index()] = Some(w.node);
        }
        Ok(ControlPlane {
            detector,
            nodes,
            subscribers: BTreeSet::new(),
            index: 0,
            outputs: VecDeque::new(),
            refused_subscriptions: 0,
        })
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
        let table: Vec<Message> = self
            .detector
            .instances()
            .filter_map(|(id, s)| self.update_for(id, s.status == Liveness::Alive))
            .collect();
        for message in table {
            self.outputs.push_back(Output::Send { to: client, message });
        }
    }

    /// Move the detector's verdicts to the output queue, announcing every
    /// change of routability to subscribers.
    fn collect_events(&mut self) {
        while let Some(event) = self.detector.poll_event() {
            self.outputs.push_back(Output::Health(event));
            #[allow(unreachable_patterns)] // more health events are coming
            let (instance, was, is) = match event {
                HealthEvent::LivenessChanged { instance, from, to, .. } => {
                    (instance, from == Liveness::Alive, to == Liveness::Alive)
                }
                _ => continue, // other health events do not change routability (yet)
            };
            if was != is {
                self.index += 1;
                if let Some(message) = self.update_for(instance, is) {
                    for &to in &self.subscribers {
                        self.outputs.push_back(Output::Send { to, message });
                    }
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
            Input::Message { message, .. } => self.detector.on_message(now, &message),
            Input::Call { .. } => {}
        }
        self.collect_events();
    }

    fn handle_timeout(&mut self, now: Instant) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        self.detector.handle_timeout(now);
        self.collect_events();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.detector.poll_timeout()
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
/// The control plane is boxed: a fleet table holds one control node and
/// thousands of instances, and every slot is as large as the largest variant.
#[derive(Debug, Clone)]
pub enum Node {
    /// The control node.
    Control(Box<ControlPlane>),
    /// A service instance's agent.
    Instance(InstanceNode),
    /// A client of a service.
    Client(ClientNode),
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
            instances: vec![WatchedInstance { instance: InstanceId(0), node: NodeId(1), class: 0 }],
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
