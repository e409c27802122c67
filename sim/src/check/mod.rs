//! Checkers: turn what a run observed into pass/fail verdicts on the
//! scenario's expectations.
//!
//! Checkers live apart from the machines (as in TigerBeetle's
//! `cluster/*_checker.zig`): they read [`Observations`] gathered by the
//! simulator, never the machines' own opinion of how they did.
//!
//! One module per capability, each judging its side of the world:
//!
//! - `detection`: outages and when, and as what, vigil noticed them
//!   (`detected_within`, `failure_types`);
//! - `liveness`: the failure detector's verdicts (`no_false_dead`,
//!   `alive_at_end`);
//! - `availability`: the clients' calls and the fleet's time in rotation
//!   (`availability`, `no_lost_requests`);
//! - `recovery`: what recovery did about each outage
//!   (`recovery_started_within`, `restored_within`,
//!   `max_concurrent_recoveries`, `no_restart_of_healthy_instances`,
//!   `actions_taken`);
//! - `attack`: what receivers did with a `forge` fault's frames
//!   (`forged_frames_dropped`).
//!
//! This module holds what they share: the outcome of one expectation, and
//! [`evaluate`], which runs every checker the scenario asks for (plus the
//! step budget's, `completes`). A new capability adds its checkers as one
//! more module here, reading the observations its simulated side (in
//! `world/`) records.
//!
//! [`Observations`]: crate::world::Observations

use crate::text::{fmt_duration, fmt_instant};
use crate::world::{Halt, Simulation};

mod attack;
mod availability;
mod detection;
mod liveness;
mod recovery;

pub use crate::text::fmt_share;
pub use availability::service_availability;
pub use detection::{Detection, detections};
pub use recovery::{Recovery, action_class, actions, recoveries};

/// One expectation's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExpectationOutcome {
    /// The expectation's key in the scenario file.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What the scenario asked for.
    pub required: String,
    /// What the run showed.
    pub observed: String,
}

/// Evaluate every expectation the scenario states, plus the step budget.
pub fn evaluate(sim: &Simulation<'_>) -> Vec<ExpectationOutcome> {
    let scenario = sim.scenario();
    let expect = &scenario.expect;
    let mut out = vec![completed(sim)];
    if let Some(bound) = expect.detected_within {
        out.push(detection::detected_within(sim, bound));
    }
    if expect.no_false_dead {
        out.push(liveness::no_false_dead(sim));
    }
    if expect.alive_at_end {
        out.push(liveness::alive_at_end(sim));
    }
    if let Some(least) = expect.availability {
        out.push(availability::availability(sim, least));
    }
    if expect.failure_types {
        out.push(detection::failure_types(sim));
    }
    if let Some(bound) = expect.recovery_started_within {
        out.push(recovery::recovery_started_within(sim, bound));
    }
    if let Some(bound) = expect.restored_within {
        out.push(recovery::restored_within(sim, bound));
    }
    if let Some(most) = expect.max_concurrent_recoveries {
        out.push(recovery::max_concurrent_recoveries(sim, most));
    }
    if expect.no_restart_of_healthy_instances {
        out.push(recovery::no_restart_of_healthy_instances(sim));
    }
    if let Some(most) = expect.max_lost_requests {
        out.push(availability::no_lost_requests(sim, most));
    }
    if !expect.actions_taken.is_empty() {
        out.push(recovery::actions_taken(sim, &expect.actions_taken));
    }
    if expect.forged_frames_dropped {
        out.push(attack::forged_frames_dropped(sim));
    }
    out
}

/// The run reached its end within the step and memory budgets (always
/// checked).
fn completed(sim: &Simulation<'_>) -> ExpectationOutcome {
    let scenario = sim.scenario();
    let required = format!("reach {} within {} events", fmt_duration(scenario.duration), scenario.max_events);
    match sim.halted() {
        None => ExpectationOutcome {
            name: "completes".into(),
            passed: true,
            required,
            observed: format!("reached {}", fmt_duration(scenario.duration)),
        },
        Some(Halt::StepBudget { events, at }) => ExpectationOutcome {
            name: "completes".into(),
            passed: false,
            required,
            observed: format!("step budget spent at {} after {events} events", fmt_instant(at)),
        },
        Some(Halt::MemoryBudget { pending, bytes, at }) => ExpectationOutcome {
            name: "completes".into(),
            passed: false,
            required,
            observed: format!(
                "halted at {}: {pending} events pending (about {} MB), the memory budget \
                 `max_pending_events`; a heartbeat interval far below the network latency does this",
                fmt_instant(at),
                bytes.div_ceil(1_000_000)
            ),
        },
    }
}
