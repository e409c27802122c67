//! # vigil-core
//!
//! The decisions of vigil, as synchronous, deterministic state machines.
//!
//! Nothing in this crate reads a clock, touches a socket or a file, spawns a
//! thread or draws from the operating system's randomness. Time comes in as an
//! argument ([`time::Instant`]), randomness comes in as a seed
//! ([`rng::Seed`]), and every effect goes out as an output value for a driver
//! to carry out. That is what lets the same code run under the seeded
//! simulator (`vigil-sim`) and under tokio (`vigil-tokio`): what is proven in
//! simulation is what runs in production.
//!
//! The contract every machine follows is [`machine::Machine`]. The folders are
//! the architecture: one per capability ([`health`]; [`registry`], the
//! service catalog; [`balance`], client-side load balancing over it;
//! [`recovery`], which acts on failures under limits; deploy, scaling,
//! trace and chaos as they land), plus the shared
//! vocabulary
//! ([`time`], [`id`], [`rng`], [`message`]). [`control`] composes the
//! capabilities' controllers into the control plane; [`envelope`] is the
//! [`Input`] and [`Output`] every node speaks; [`fleet`] holds the node
//! roles a driver runs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod balance;
pub mod client;
pub mod control;
pub mod envelope;
pub mod events;
pub mod fleet;
pub mod health;
pub mod id;
pub mod machine;
pub mod message;
pub mod recovery;
pub mod registry;
pub mod rng;
pub mod time;

pub use control::ControlPlane;
pub use envelope::{Input, Output};
pub use fleet::{InstanceNode, Node};
pub use id::{InstanceId, NodeId, ServiceId};
pub use machine::Machine;
pub use time::{Duration, Instant};
