//! The node machines a driver runs, one per node of the fleet.
//!
//! Three roles speak the same [`Input`] and [`Output`]:
//!
//! - [`ControlPlane`]: the control node, which watches the fleet and
//!   decides (composed in [`control`](crate::control)).
//! - [`InstanceNode`]: the agent beside each service instance.
//! - [`ClientNode`]: a caller of a service, balancing over its instances.
//!
//! [`Node`] is any of them, for drivers that hold a whole fleet in one
//! table (the simulator).

use crate::client::ClientNode;
use crate::control::ControlPlane;
use crate::envelope::{Input, Output};
use crate::health::{AgentConfig, HealthConfigError, HeartbeatAgent};
use crate::machine::Machine;
use crate::message::Transmit;
use crate::rng::Seed;
use crate::time::Instant;

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
        // The agent expects nothing; a message is handed on so the
        // contract's checks still apply, a call is not for this role.
        if let Input::Message { message, .. } = input {
            self.heartbeat.handle(now, message);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.heartbeat.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.heartbeat.poll_timeout()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.heartbeat.poll_output().map(|Transmit { to, message }| Output::Send { to, message })
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
