//! The kernel's vocabulary: everything that can be scheduled on the event
//! queue, and how each event is folded into the trace hash.
//!
//! What an event *does* is the world's business (`crate::world` dispatches
//! it); what it *is*, its kind and its payload digest, is fixed here, so the
//! trace hash of a run depends only on the sequence of events.

use vigil_core::NodeId;
use vigil_core::auth::Frame;
use vigil_core::message::Message;

use super::trace::StableHasher;

/// Something scheduled on the event queue.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// A sealed frame arrives at its destination (`frame.header.to`),
    /// from the node it claims (`frame.header.from`).
    Deliver { frame: Frame },
    /// A message leaves its sender now (an answer after its service time):
    /// sealed at departure, so frames from one sender to one destination
    /// carry sequence numbers in the order they leave, as over a socket.
    Send { from: NodeId, to: NodeId, message: Message },
    /// The timer queued for `node` fires (if it is still the one wanted).
    Timer { node: NodeId },
    /// Fault occurrence `fault` begins.
    FaultStart { fault: u32 },
    /// Fault occurrence `fault` ends.
    FaultEnd { fault: u32 },
    /// Partition `partition` heals (deferred until its stability time).
    Heal { partition: u32 },
    /// The load generator makes its next call.
    Arrival,
    /// A process dies by itself (out of memory, or its crash loop), if
    /// `incarnation` is still the one running.
    ProcessExit { node: NodeId, incarnation: u64 },
    /// A step of platform action `slot` is due (a boot after its delay).
    Platform { slot: u32 },
    /// A frame from a `forge` fault's attacker arrives at `to` (a replay
    /// aimed elsewhere: not its header's destination).
    Attack { frame: Frame, to: NodeId },
    /// `forge` fault occurrence `fault`'s attacker sends its next frame.
    AttackTick { fault: u32 },
}

impl Event {
    /// The event's kind, as folded into the trace hash.
    pub(crate) fn kind(&self) -> u8 {
        match self {
            Event::Deliver { .. } => 1,
            Event::Timer { .. } => 2,
            Event::FaultStart { .. } => 3,
            Event::FaultEnd { .. } => 4,
            Event::Heal { .. } => 5,
            Event::Arrival => 6,
            Event::ProcessExit { .. } => 7,
            Event::Platform { .. } => 8,
            Event::Attack { .. } => 9,
            Event::AttackTick { .. } => 10,
            Event::Send { .. } => 11,
        }
    }

    /// The node and payload digest folded into the trace hash. An arrival's
    /// payload is the id its call will take, `next_call`.
    pub(crate) fn trace_key(&self, next_call: u64) -> (u32, u64) {
        match *self {
            // The header's sender and destination and the message: the
            // session, sequence and tag follow from the events before.
            Event::Deliver { frame } => {
                (frame.header.to.0, StableHasher::digest(&(frame.header.from.0, frame.message)))
            }
            Event::Send { from, to, message } => (from.0, StableHasher::digest(&(to.0, message))),
            Event::Timer { node } => (node.0, 0),
            Event::FaultStart { fault } | Event::FaultEnd { fault } => (u32::MAX, u64::from(fault)),
            Event::Heal { partition } => (u32::MAX, u64::from(partition)),
            Event::Arrival => (u32::MAX - 1, next_call),
            Event::ProcessExit { node, incarnation } => (node.0, incarnation),
            Event::Platform { slot } => (u32::MAX - 2, u64::from(slot)),
            // An attacker's frames are not numbered by the events before:
            // the whole header and the message.
            Event::Attack { frame, to } => (
                to.0,
                StableHasher::digest(&(
                    frame.header.from.0,
                    frame.header.to.0,
                    frame.header.key_id.0,
                    frame.header.session,
                    frame.header.seq,
                    frame.message,
                )),
            ),
            Event::AttackTick { fault } => (u32::MAX - 3, u64::from(fault)),
        }
    }
}
