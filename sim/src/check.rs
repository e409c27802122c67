//! Checkers: turn what a run observed into pass/fail verdicts on the
//! scenario's expectations.
//!
//! Checkers live apart from the machines (as in TigerBeetle's
//! `cluster/*_checker.zig`): they read [`Observations`] gathered by the
//! simulator, never the machines' own opinion of how they did.

use vigil_core::health::Liveness;
use vigil_core::{Duration, InstanceId, Instant, NodeId};

use crate::report::{fmt_duration, fmt_instant};
use crate::scenario::Scenario;
use crate::world::{Halt, HostState, Observations, Outage, OutageKind, Simulation};

/// Extra time allowed after a verdict is due: the detector batches deadlines
/// to 10 ms (`vigil_core::health::detector` resolution).
const DETECTOR_SLACK: Duration = Duration::from_millis(10);

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

/// An outage (crash or pause) and when (whether) the detector declared the
/// instance dead.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    /// Instance name.
    pub instance: String,
    /// Crash or pause.
    pub kind: OutageKind,
    /// Simulated ms the outage began.
    pub began_ms: u64,
    /// Simulated ms the host came back (restart or resume), if within the run.
    pub ended_ms: Option<u64>,
    /// Simulated ms of the first `dead` verdict during the outage.
    pub detected_ms: Option<u64>,
    #[serde(skip)]
    crashed_at: Instant,
    #[serde(skip)]
    down_for: Duration,
    #[serde(skip)]
    detected_at: Option<Instant>,
}

impl Detection {
    /// Time from crash to `dead` verdict.
    pub fn latency(&self) -> Option<Duration> {
        self.detected_at.map(|d| d - self.crashed_at)
    }
}

/// Every outage of the run with its detection.
pub fn detections(sim: &Simulation<'_>) -> Vec<Detection> {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let end = Instant::ZERO + sim.duration();
    let mut out = Vec::new();
    for (i, outages) in obs.outages.iter().enumerate() {
        let instance = InstanceId(i as u32);
        for &Outage { kind, began: crashed_at, ended: restarted_at } in outages {
            let until = restarted_at.unwrap_or(end);
            // Already dead when the outage began (a partition, a pause that
            // ends in a crash): detected from the first instant.
            let dead_before = obs
                .verdicts
                .iter()
                .rev()
                .find(|v| v.instance == instance && v.at <= crashed_at)
                .is_some_and(|v| v.to == Liveness::Dead);
            let detected_at = if dead_before {
                Some(crashed_at)
            } else {
                obs.verdicts
                    .iter()
                    .find(|v| {
                        v.instance == instance
                            && v.to == Liveness::Dead
                            && v.at >= crashed_at
                            && v.at <= until
                    })
                    .map(|v| v.at)
            };
            out.push(Detection {
                instance: scenario.node_name(Scenario::node_of(instance)),
                kind,
                began_ms: crashed_at.as_millis(),
                ended_ms: restarted_at.map(Instant::as_millis),
                detected_ms: detected_at.map(Instant::as_millis),
                crashed_at,
                down_for: until - crashed_at,
                detected_at,
            });
        }
    }
    out
}

/// Evaluate every expectation the scenario states, plus the step budget.
pub fn evaluate(sim: &Simulation<'_>) -> Vec<ExpectationOutcome> {
    let scenario = sim.scenario();
    let expect = &scenario.expect;
    let mut out = vec![completed(sim)];
    if let Some(bound) = expect.detected_within {
        out.push(detected_within(sim, bound));
    }
    if expect.no_false_dead {
        out.push(no_false_dead(sim));
    }
    if expect.alive_at_end {
        out.push(alive_at_end(sim));
    }
    if let Some(least) = expect.availability {
        out.push(availability(sim, least));
    }
    out
}

fn availability(sim: &Simulation<'_>, least: f64) -> ExpectationOutcome {
    let calls = &sim.observations().calls;
    let required = format!(">= {} of client calls succeed", fmt_share(least));
    let (passed, observed) = match calls.availability() {
        None => (false, "no client call ended".to_string()),
        Some(share) => (
            share >= least,
            format!(
                "{} ({} of {} calls; {} error, {} refused, {} timeout, {} no endpoint)",
                fmt_share(share),
                calls.ok,
                calls.total,
                calls.error,
                calls.refused,
                calls.timeout,
                calls.no_endpoint
            ),
        ),
    };
    ExpectationOutcome { name: "availability".into(), passed, required, observed }
}

/// A share as a percentage with as many decimals as a "nines" target needs.
pub fn fmt_share(share: f64) -> String {
    format!("{:.3}%", share * 100.0)
}

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
    }
}

fn detected_within(sim: &Simulation<'_>, bound: Duration) -> ExpectationOutcome {
    let all = detections(sim);
    let due: Vec<&Detection> = all.iter().filter(|d| d.down_for >= bound).collect();
    let required = format!("every outage >= {0} declared dead within {0}", fmt_duration(bound));
    let late: Vec<String> = due
        .iter()
        .filter(|d| d.latency().is_none_or(|l| l > bound))
        .map(|d| match d.latency() {
            Some(l) => format!("{} at {} took {}", d.instance, fmt_instant(d.crashed_at), fmt_duration(l)),
            None => format!("{} at {} never declared dead", d.instance, fmt_instant(d.crashed_at)),
        })
        .collect();
    let observed = if due.is_empty() {
        "no outage lasted long enough to require detection".to_string()
    } else if late.is_empty() {
        let worst = due.iter().filter_map(|d| d.latency()).max().unwrap_or_default();
        format!("worst {} over {} outage(s)", fmt_duration(worst), due.len())
    } else {
        late.join("; ")
    };
    ExpectationOutcome { name: "detected_within".into(), passed: late.is_empty(), required, observed }
}

/// Whether `node` was disturbed at `at`, allowing `grace` after each window.
fn disturbed(obs: &Observations, node: NodeId, at: Instant, grace: Duration) -> bool {
    obs.disturbed[node.index()].iter().any(|&(start, end)| at >= start && end.is_none_or(|e| at <= e + grace))
}

fn no_false_dead(sim: &Simulation<'_>) -> ExpectationOutcome {
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

fn alive_at_end(sim: &Simulation<'_>) -> ExpectationOutcome {
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
