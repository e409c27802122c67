//! The envelope every node speaks: what a driver feeds a node
//! ([`Input`]) and what a node asks its driver to do ([`Output`]).
//!
//! Every role (the control plane, an instance's agent, a client) takes
//! and gives the same two types, so a driver (the simulator, or the tokio
//! adapter) routes every node's traffic the same way without knowing what
//! the node does. The payloads are the capabilities' own types; this
//! module depends on them, never the other way round, except for the two
//! roles ([`ClientNode`](crate::client::ClientNode) and the control plane)
//! that implement [`Machine`](crate::machine::Machine) over the envelope.

use crate::balance::BalanceEvent;
use crate::health::HealthEvent;
use crate::id::InstanceId;
use crate::id::NodeId;
use crate::message::Message;
use crate::recovery::RecoveryOutput;
use crate::time::Duration;

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
    /// [`ClientNode`](crate::client::ClientNode)); other roles ignore it.
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
    /// [`ControlPlane::recovery_outcome`](crate::control::ControlPlane::recovery_outcome)) or a decision for the record.
    Recovery(Box<RecoveryOutput>),
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The instance answered with success.
    Ok,
    /// The instance answered with an error.
    Error,
    /// Nothing listened at the instance.
    Refused,
    /// No answer within the call timeout.
    Timeout,
    /// No endpoint was routable: the call was never sent.
    NoEndpoint,
}

impl CallOutcome {
    /// Whether the caller got what it asked for.
    pub fn is_success(self) -> bool {
        self == CallOutcome::Ok
    }
}

/// A finished call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CallDone {
    /// The call's id, as given in [`Input::Call`].
    pub id: u64,
    /// The instance that served (or failed) its last attempt, if any.
    pub instance: Option<InstanceId>,
    /// How it ended.
    pub outcome: CallOutcome,
    /// From the call to its outcome, retries included.
    pub latency: Duration,
    /// Attempts made (0 when no endpoint was routable).
    pub attempts: u8,
}
