//! Recovery checkers: what recovery did about each outage (its first
//! action, the instance's return to health, the actions taken), and
//! whether it kept its limits and acted only on instances that needed it.

use std::collections::BTreeSet;

use vigil_core::health::{HealthStatus, Liveness};
use vigil_core::recovery::{Action, ActionKind, DecisionKind, RecoveryOutput};
use vigil_core::{Duration, InstanceId, Instant};

use super::ExpectationOutcome;
use super::detection::{Detection, detect};
use crate::scenario::{ActionClass, Scenario};
use crate::text::{fmt_duration, fmt_instant};
use crate::world::{MonitorChange, Observations, Simulation};

/// The class of a recovery action, if it is one expectations name.
pub fn action_class(kind: ActionKind) -> Option<ActionClass> {
    match kind {
        ActionKind::Restart => Some(ActionClass::Restart),
        ActionKind::Replace => Some(ActionClass::Replace),
        ActionKind::Reroute => Some(ActionClass::Reroute),
        ActionKind::ScaleOut { .. } => Some(ActionClass::ScaleOut),
        ActionKind::OpenCircuit { .. } => Some(ActionClass::OpenCircuit),
        ActionKind::AskHuman { .. } => Some(ActionClass::AskHuman),
        _ => None,
    }
}

/// Every recovery action of the run, in order.
pub fn actions<'a>(obs: &'a Observations) -> impl Iterator<Item = (Instant, Action)> + 'a {
    obs.recovery.iter().filter_map(|(at, out)| match out {
        RecoveryOutput::Action(a) => Some((*at, *a)),
        _ => None,
    })
}

/// An outage, its detection, and what recovery did about it.
#[derive(Clone, Debug)]
pub struct Recovery {
    /// The outage and its detection.
    pub detection: Detection,
    /// The instance.
    pub instance: InstanceId,
    /// The fault occurrence behind it, if one.
    pub fault: Option<u32>,
    /// First recovery action on the instance (or a scale-out of its
    /// service) after the outage began; the outage's start when a reroute
    /// of an episode still open kept the instance out of rotation then
    /// (traffic was already taken away: the action was in force).
    pub started_at: Option<Instant>,
    /// When the instance was seen healthy again after the detection (or
    /// the outage's end, when it ended undetected).
    pub restored_at: Option<Instant>,
    /// Actions taken for it, in order, until it was restored.
    pub actions: Vec<Action>,
}

/// When `instance` was seen healthy again, for good, after `from`: the
/// start of the last healthy stretch before `horizon` (the next outage of
/// the instance, or the run's end), if that stretch reaches the horizon.
/// Health is the monitor's status for instances with active checks, else
/// the failure detector's verdict. A process that comes back healthy and
/// dies again (a crash loop) is not restored.
fn restored_at(
    sim: &Simulation<'_>,
    instance: InstanceId,
    from: Instant,
    horizon: Instant,
) -> Option<Instant> {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let monitored = scenario.locate(instance).is_some_and(|(s, _)| scenario.services[s].health.is_some());
    let mut healthy_since = None;
    let mut note = |at: Instant, good: Option<bool>| {
        if at < from || at >= horizon {
            return;
        }
        match good {
            Some(true) => {
                healthy_since.get_or_insert(at);
            }
            Some(false) => healthy_since = None,
            None => {}
        }
    };
    if monitored {
        for m in obs.monitor.iter().filter(|m| m.instance == instance) {
            if let MonitorChange::Status { to, .. } = m.change {
                let good = match to {
                    HealthStatus::Healthy => Some(true),
                    HealthStatus::Unknown => None,
                    _ => Some(false),
                };
                note(m.at, good);
            }
        }
    } else {
        for v in obs.verdicts.iter().filter(|v| v.instance == instance) {
            let good = match v.to {
                Liveness::Alive => Some(true),
                Liveness::Dead => Some(false),
                Liveness::Suspect | Liveness::Unknown => None,
            };
            note(v.at, good);
        }
    }
    healthy_since
}

/// Whether a reroute of `instance` was in force at `at`: issued before it
/// by an episode that had not yet ended (resolved or abandoned). A reroute
/// keeps the instance out of rotation until its episode ends.
fn reroute_in_force(obs: &Observations, instance: InstanceId, at: Instant) -> bool {
    let mut in_force = None;
    for (t, out) in &obs.recovery {
        if *t >= at {
            break;
        }
        match *out {
            RecoveryOutput::Action(a) if a.kind == ActionKind::Reroute && a.instance == Some(instance) => {
                in_force = Some(a.id.correlation);
            }
            RecoveryOutput::Decision(d)
                if matches!(d.kind, DecisionKind::Resolved { .. } | DecisionKind::Abandoned)
                    && d.instance == Some(instance)
                    && d.correlation.is_some()
                    && d.correlation == in_force =>
            {
                in_force = None;
            }
            _ => {}
        }
    }
    in_force.is_some()
}

/// Every outage with what recovery did about it.
pub fn recoveries(sim: &Simulation<'_>) -> Vec<Recovery> {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let all: Vec<(Instant, Action)> = actions(obs).collect();
    let mut out = Vec::new();
    for (i, outages) in obs.outages.iter().enumerate() {
        let instance = InstanceId(i as u32);
        let service = scenario.locate(instance).map(|(s, _)| s);
        for (k, outage) in outages.iter().enumerate() {
            let detection = detect(sim, instance, outage);
            // The next outage that begins after this one ended bounds it.
            let horizon = outages[k + 1..]
                .iter()
                .map(|o| o.began)
                .find(|&b| outage.ended.is_some_and(|e| b >= e))
                .unwrap_or(Instant::ZERO + sim.duration() + Duration::from_nanos(1));
            let restored_at = match detection.detected_at {
                Some(at) => restored_at(sim, instance, at.max(outage.began), horizon),
                None => outage.ended,
            };
            let until = restored_at.unwrap_or(Instant::ZERO + sim.duration());
            let mine: Vec<(Instant, Action)> = all
                .iter()
                .filter(|(at, a)| {
                    *at >= outage.began
                        && *at <= until
                        && (a.instance == Some(instance)
                            || (matches!(a.kind, ActionKind::ScaleOut { .. })
                                && Some(a.service.index()) == service))
                })
                .copied()
                .collect();
            out.push(Recovery {
                detection,
                instance,
                fault: outage.fault,
                started_at: if reroute_in_force(obs, instance, outage.began) {
                    Some(outage.began)
                } else {
                    mine.first().map(|(at, _)| *at)
                },
                restored_at,
                actions: mine.iter().map(|(_, a)| *a).collect(),
            });
        }
    }
    out
}

pub(super) fn recovery_started_within(sim: &Simulation<'_>, bound: Duration) -> ExpectationOutcome {
    let all = recoveries(sim);
    let mut late = Vec::new();
    let mut worst = Duration::ZERO;
    let mut due = 0;
    for r in &all {
        let Some(detected) = r.detection.detected_at else { continue };
        match r.started_at {
            Some(s) if s <= detected + bound => {
                due += 1;
                worst = worst.max(s.saturating_duration_since(detected));
            }
            started => {
                // No action in time is fine only for an outage over by then.
                let over = r.restored_at.into_iter().chain(r.detection.ended_at()).min();
                if over.is_some_and(|e| e <= detected + bound) {
                    continue;
                }
                due += 1;
                let what = match started {
                    Some(s) => format!(
                        "first action {} after detection",
                        fmt_duration(s.saturating_duration_since(detected))
                    ),
                    None => "no recovery action".to_string(),
                };
                late.push(format!(
                    "{} {} at {}: {what}",
                    r.detection.instance,
                    r.detection.kind.name(),
                    fmt_instant(r.detection.began_at)
                ));
            }
        }
    }
    let observed = if due == 0 {
        "no detected outage needed recovery".to_string()
    } else if late.is_empty() {
        format!("worst {} after detection over {due} outage(s)", fmt_duration(worst))
    } else {
        late.join("; ")
    };
    ExpectationOutcome {
        name: "recovery_started_within".into(),
        passed: late.is_empty(),
        required: format!("recovery acts within {} of each detection", fmt_duration(bound)),
        observed,
    }
}

pub(super) fn restored_within(sim: &Simulation<'_>, bound: Duration) -> ExpectationOutcome {
    let all = recoveries(sim);
    let due: Vec<&Recovery> = all.iter().filter(|r| r.detection.detected_at.is_some()).collect();
    let end = Instant::ZERO + sim.duration();
    let mut late = Vec::new();
    let mut worst = Duration::ZERO;
    for r in &due {
        let began = r.detection.began_at;
        match r.restored_at {
            Some(at) if at.saturating_duration_since(began) <= bound => {
                worst = worst.max(at.saturating_duration_since(began));
            }
            Some(at) => late.push(format!(
                "{} {} at {}: restored after {}",
                r.detection.instance,
                r.detection.kind.name(),
                fmt_instant(began),
                fmt_duration(at.saturating_duration_since(began))
            )),
            // Not restored, but the run ended before the bound: no verdict.
            None if end.saturating_duration_since(began) <= bound => {}
            None => late.push(format!(
                "{} {} at {}: never restored",
                r.detection.instance,
                r.detection.kind.name(),
                fmt_instant(began)
            )),
        }
    }
    let observed = if due.is_empty() {
        "no outage was detected".to_string()
    } else if late.is_empty() {
        format!("worst {} over {} detected outage(s)", fmt_duration(worst), due.len())
    } else {
        late.join("; ")
    };
    ExpectationOutcome {
        name: "restored_within".into(),
        passed: late.is_empty(),
        required: format!("every detected outage restored within {} of its start", fmt_duration(bound)),
        observed,
    }
}

/// At most `most` recovery actions were in flight at once.
pub(super) fn max_concurrent_recoveries(sim: &Simulation<'_>, most: u32) -> ExpectationOutcome {
    let seen = sim.observations().max_in_flight;
    ExpectationOutcome {
        name: "max_concurrent_recoveries".into(),
        passed: seen <= most,
        required: format!("<= {most} recovery action(s) in flight at once"),
        observed: format!("at most {seen} at once"),
    }
}

/// How long after an outage's end a restart of its instance still counts
/// as meant for it (verdicts and decisions trail the facts).
const RESTART_GRACE: Duration = Duration::from_secs(30);

pub(super) fn no_restart_of_healthy_instances(sim: &Simulation<'_>) -> ExpectationOutcome {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let mut wrong = Vec::new();
    let mut total = 0;
    for (at, action) in actions(obs) {
        if !matches!(action.kind, ActionKind::Restart | ActionKind::Replace) {
            continue;
        }
        let Some(instance) = action.instance else { continue };
        total += 1;
        let own = obs.outages.get(instance.index()).is_some_and(|outages| {
            outages.iter().any(|o| o.began <= at && o.ended.is_none_or(|e| at <= e + RESTART_GRACE))
        });
        if !own {
            wrong.push(format!(
                "{} of {} at {}",
                if action.kind == ActionKind::Restart { "restart" } else { "replace" },
                scenario.node_name(Scenario::node_of(instance)),
                fmt_instant(at)
            ));
        }
    }
    let observed = if wrong.is_empty() {
        format!("{total} restart(s)/replacement(s), each of an instance with an outage of its own")
    } else {
        let shown: Vec<&str> = wrong.iter().take(5).map(String::as_str).collect();
        let more = wrong.len().saturating_sub(shown.len());
        let tail = if more > 0 { format!(" (+{more} more)") } else { String::new() };
        format!("healthy instance(s) acted on: {}{tail}", shown.join(", "))
    };
    ExpectationOutcome {
        name: "no_restart_of_healthy_instances".into(),
        passed: wrong.is_empty(),
        required: "restarts and replacements only of instances with their own outage".into(),
        observed,
    }
}

pub(super) fn actions_taken(sim: &Simulation<'_>, wanted: &[ActionClass]) -> ExpectationOutcome {
    let taken: BTreeSet<ActionClass> =
        actions(sim.observations()).filter_map(|(_, a)| action_class(a.kind)).collect();
    let missing: Vec<&str> = wanted.iter().filter(|c| !taken.contains(c)).map(|c| c.name()).collect();
    let seen: Vec<&str> = taken.iter().map(|c| c.name()).collect();
    let names: Vec<&str> = wanted.iter().map(|c| c.name()).collect();
    ExpectationOutcome {
        name: "actions_taken".into(),
        passed: missing.is_empty(),
        required: format!("each of {} taken", names.join(", ")),
        observed: if missing.is_empty() {
            format!("taken: {}", seen.join(", "))
        } else {
            format!(
                "never taken: {} (taken: {})",
                missing.join(", "),
                if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
            )
        },
    }
}
