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

use crate::health::{
    AgentConfig, FailureDetector, HealthConfigError, HealthEvent, HeartbeatAgent, LivenessTimeouts,
};
use crate::id::{InstanceId, NodeId};
use crate::machine::Machine;
use crate::message::Message;
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
}

/// Settings of the control node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// Timeout classes; each watched instance names one by index.
    pub liveness_classes: Vec<LivenessTimeouts>,
    /// The instances to watch from the start, with their class.
    pub instances: Vec<(InstanceId, usize)>,
}

/// The control node: watches the fleet's heartbeats and publishes verdicts.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    detector: FailureDetector,
}

impl ControlPlane {
    /// A control node booting at `now`.
    pub fn new(config: &ControlConfig, now: Instant) -> Result<Self, HealthConfigError> {
        let mut detector = FailureDetector::new(&config.liveness_classes)?;
        for &(instance, class) in &config.instances {
            if class >= config.liveness_classes.len() {
                return Err(HealthConfigError::ZeroTimeout { which: "liveness class (index out of range)" });
            }
            detector.register(now, instance, class)?;
        }
        Ok(ControlPlane { detector })
    }

    /// The failure detector, for queries.
    pub fn detector(&self) -> &FailureDetector {
        &self.detector
    }
}

impl Machine for ControlPlane {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Message { message, .. } => self.detector.on_message(now, &message),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.detector.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.detector.poll_timeout()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.detector.poll_event().map(Output::Health)
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
}

impl Machine for Node {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        match self {
            Node::Control(m) => m.handle(now, input),
            Node::Instance(m) => m.handle(now, input),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Node::Control(m) => m.handle_timeout(now),
            Node::Instance(m) => m.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Node::Control(m) => m.poll_timeout(),
            Node::Instance(m) => m.poll_timeout(),
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        match self {
            Node::Control(m) => m.poll_output(),
            Node::Instance(m) => m.poll_output(),
        }
    }
}

/// Re-exported so drivers need only this module.
pub use crate::health::Liveness;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[test]
    fn instance_heartbeats_reach_control_and_make_it_alive() {
        let timeouts =
            LivenessTimeouts { suspect_after: Duration::from_secs(2), dead_after: Duration::from_secs(3) };
        let config = ControlConfig { liveness_classes: vec![timeouts], instances: vec![(InstanceId(0), 0)] };
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
