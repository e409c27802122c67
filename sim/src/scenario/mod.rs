//! Scenario files: a fleet, a network, a schedule of faults and what must
//! hold, written as TOML (format v1, documented for users in
//! `scenarios/README.md`).
//!
//! [`parse`] and [`load_file`] turn text into a [`Scenario`], the validated
//! model the simulator runs: names resolved to [`vigil_core::NodeId`]s,
//! durations parsed, every rule checked. Anything wrong with a file is a
//! [`ScenarioError::Invalid`] that names the file, line and column of the
//! offending text; no input makes the loader panic.

mod error;
#[cfg(test)]
mod limits;
mod load;
mod model;
#[cfg(test)]
mod tests;
pub mod write;

pub use error::ScenarioError;
pub use load::{load_file, parse};
pub use model::*;
pub use write::{WriteError, to_toml};
