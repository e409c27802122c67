//! Liveness checkers: the failure detector's verdicts are right. No
//! instance is declared dead outside a fault's window (with the grace its
//! timeouts need), and every running instance is alive at the end.

use vigil_core::health::Liveness;
use vigil_core::{Duration, InstanceId, Instant, NodeId};

use super::ExpectationOutcome;
use crate::scenario::Scenario;
use crate::text::fmt_instant;
use crate::world::{HostState, Observations, Simulation};

/// Extra time allowed after a verdict is due: the detector batches deadlines
/// to 10 ms (`vigil_core::health::detector` resolution).
const DETECTOR_SLACK: Duration = Duration::from_millis(10);

/// Whether `node` was disturbed at `at`, allowing `grace` after each window.
fn disturbed(obs: &Observations, node: NodeId, at: Instant, grace: Duration) -> bool {
    obs.disturbed[node.index()].iter().any(|&(start, end)| at >= start && end.is_none_or(|e| at <= e + grace))
}

pub(super) fn no_false_dead(sim: &Simulation<'_>) -> ExpectationOutcome {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let mut false_dead = Vec::new();
    for v in obs.verdicts.iter().filter(|v| v.to == Liveness::Dead) {
        let node = Scenario::node_of(v.instance);
        let grace = scenario
            .locate(v.instance)
            .map_or(Duration::ZERO, |(s, _)| scenario.services[s].heartbeat.dead_after)
            + DETECTOR_SLACK;
        if !disturbed(obs, node, v.at, grace) && !disturbed(obs, Scenario::CONTROL, v.at, grace) {
            false_dead.push(format!("{} at {}", scenario.node_name(node), fmt_instant(v.at)));
        }
    }
    let dead_total = obs.verdicts.iter().filter(|v| v.to == Liveness::Dead).count();
    let observed = if false_dead.is_empty() {
        format!("{dead_total} dead verdict(s), all during faults")
    } else {
        let shown: Vec<&str> = false_dead.iter().take(5).map(String::as_str).collect();
        let more = false_dead.len().saturating_sub(shown.len());
        let tail = if more > 0 { format!(" (+{more} more)") } else { String::new() };
        format!("healthy instance(s) declared dead: {}{tail}", shown.join(", "))
    };
    ExpectationOutcome {
        name: "no_false_dead".into(),
        passed: false_dead.is_empty(),
        required: "no dead verdict outside a fault's window".into(),
        observed,
    }
}

pub(super) fn alive_at_end(sim: &Simulation<'_>) -> ExpectationOutcome {
    let scenario = sim.scenario();
    let required = "every running instance alive at the end".to_string();
    let Some(control) = sim.control() else {
        return ExpectationOutcome {
            name: "alive_at_end".into(),
            passed: false,
            required,
            observed: "the control node is not running at the end".into(),
        };
    };
    let mut running = 0;
    let mut wrong = Vec::new();
    for i in 0..scenario.instance_count() {
        let instance = InstanceId(i);
        let node = Scenario::node_of(instance);
        if sim.host_state(node) != HostState::Up {
            continue;
        }
        running += 1;
        let status = control.detector().instance(instance).map(|s| s.status);
        if status != Some(Liveness::Alive) {
            let shown = status.map_or_else(|| "unregistered".to_string(), |s| s.to_string());
            wrong.push(format!("{} is {shown}", scenario.node_name(node)));
        }
    }
    let observed =
        if wrong.is_empty() { format!("all {running} running instance(s) alive") } else { wrong.join(", ") };
    ExpectationOutcome { name: "alive_at_end".into(), passed: wrong.is_empty(), required, observed }
}
