//! The event bus's building blocks (issue 10, in progress).
//!
//! vigil's services, and its own control plane, exchange events through a
//! bus that must not lose them, must not make a consumer process one twice,
//! and must let operational events jump a bulk backlog. This folder holds
//! the pure pieces the broker machine is built from, each tested on its own:
//!
//! - [`envelope`]: the event as it travels, CloudEvents 1.0 attributes plus
//!   vigil's extensions (priority, partition key, schema subject and
//!   version, trace context), validated at the edge with clear errors;
//! - [`dedupe`]: the publisher-id window that turns a retrying publisher's
//!   at-least-once into effectively-once (JetStream's `Nats-Msg-Id`, two
//!   minutes by default), bounded in memory with an explicit refusal;
//! - [`lanes`]: priority lanes, highest first, with a bounded share kept for
//!   the lower lanes so a flood of operational events never starves bulk;
//! - [`group`]: a durable consumer group's delivery state: at-least-once
//!   with acks, redelivery after the ack wait with a doubling backoff, dead
//!   letters after `max_deliver`, flow control, ordering per key.
//!
//! Not built yet (the remaining parts): the broker machine that
//! composes these over streams with retention and persistence through
//! `Persist`/`Persisted`, the schema registry, the publisher and consumer
//! machines, the simulated and tokio sides. Nothing here is wired into the
//! control plane.

pub mod dedupe;
pub mod envelope;
pub mod group;
pub mod lanes;

pub use dedupe::{DedupeWindow, Seen};
pub use envelope::{EnvelopeError, EventEnvelope, Priority};
pub use group::{ConsumerGroup, Delivery, GroupConfig};
pub use lanes::Lanes;
