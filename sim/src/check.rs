//! Checkers: turn what a run observed into pass/fail verdicts on the
//! scenario's expectations.
//!
//! Checkers live apart from the machines (as in TigerBeetle's
//! `cluster/*_checker.zig`): they read [`Observations`] gathered by the
//! simulator, never the machines' own opinion of how they did.

use std::collections::BTreeSet;

use vigil_core::health::{HealthStatus, Liveness};
use vigil_core::recovery::{Action, ActionKind, RecoveryOutput};
use vigil_core::{Duration, InstanceId, Instant, NodeId};

use crate::scenario::{ActionClass, Scenario};
use crate::text::{fmt_duration, fmt_instant};
use crate::world::{Halt, HostState, MonitorChange, Observations, Outage, OutageKind, Simulation};

pub use crate::text::fmt_share;

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

/// An outage (a crash, a pause, or an application fault) and when
/// (whether) vigil noticed it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    /// Instance name.
    pub instance: String,
    /// What happened to it.
    pub kind: OutageKind,
    /// Simulated ms the outage began.
    pub began_ms: u64,
    /// Simulated ms it ended (restart, resume, fault over), if within the run.
    pub ended_ms: Option<u64>,
    /// Simulated ms of the first verdict that something was wrong.
    pub detected_ms: Option<u64>,
    /// That verdict: `dead` (failure detector) or the health monitor's
    /// status (`unresponsive`, `failed`, `degraded`).
    pub detected_as: Option<String>,
    #[serde(skip)]
    began_at: Instant,
    #[serde(skip)]
    down_for: Duration,
    #[serde(skip)]
    detected_at: Option<Instant>,
    /// The verdict stood before the outage began.
    #[serde(skip)]
    standing: bool,
}

impl Detection {
    /// When the outage began.
    pub fn began_at(&self) -> Instant {
        self.began_at
    }

    /// When it was detected, if it was.
    pub fn detected_at(&self) -> Option<Instant> {
        self.detected_at
    }

    /// When the outage ended, if within the run.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended_ms.map(Instant::from_millis)
    }

    /// Time from the outage's start to the first verdict.
    pub fn latency(&self) -> Option<Duration> {
        self.detected_at.map(|d| d - self.began_at)
    }

    /// Whether the verdict is a failure type this kind of outage can show.
    /// A crashed process refuses (`failed`) or goes silent (`dead`); a
    /// paused host is silent (`unresponsive`, `dead`); a hung application
    /// answers nothing (`unresponsive`); a slow one is `degraded` (or
    /// `unresponsive` when slower than the probe timeout); an erroring one
    /// is `failed` or `degraded`; a flapping one anything bad.
    pub fn type_matches(&self) -> Option<bool> {
        // A verdict that stood before the outage began (dead from a
        // partition, say) says nothing about this outage's type.
        if self.detected_at == Some(self.began_at) && self.standing {
            return None;
        }
        let seen = self.detected_as.as_deref()?;
        let allowed: &[&str] = match self.kind {
            OutageKind::Crash => &["failed", "dead"],
            OutageKind::Pause => &["unresponsive", "dead"],
            OutageKind::Hang => &["unresponsive"],
            OutageKind::Slow => &["degraded", "unresponsive"],
            OutageKind::Errors => &["failed", "degraded"],
            OutageKind::Flap => &["failed", "degraded", "unresponsive", "dead"],
            OutageKind::HostCrash => &["unresponsive", "dead"],
            OutageKind::OutOfMemory | OutageKind::CrashLoop => &["failed", "unresponsive", "dead"],
            OutageKind::Cpu => &["degraded", "unresponsive"],
            OutageKind::DiskFull => &["failed", "degraded"],
        };
        Some(allowed.contains(&seen))
    }
}

fn is_bad(status: HealthStatus) -> bool {
    matches!(status, HealthStatus::Degraded | HealthStatus::Unresponsive | HealthStatus::Failed)
}

/// The first verdict that `instance` is unwell at or after `from` and not
/// after `until`, or the unwell state already standing at `from` (then
/// the flag is true).
fn first_bad_verdict(
    obs: &Observations,
    instance: InstanceId,
    from: Instant,
    until: Instant,
) -> Option<(Instant, String, bool)> {
    // Standing state at `from`: the last verdict of each source before it.
    let dead_before = obs
        .verdicts
        .iter()
        .rev()
        .find(|v| v.instance == instance && v.at <= from)
        .is_some_and(|v| v.to == Liveness::Dead);
    if dead_before {
        return Some((from, "dead".to_string(), true));
    }
    let status_before = obs.monitor.iter().rev().find_map(|m| match m.change {
        MonitorChange::Status { to, .. } if m.instance == instance && m.at <= from => Some(to),
        _ => None,
    });
    if let Some(status) = status_before.filter(|&s| is_bad(s)) {
        return Some((from, status.to_string(), true));
    }
    let dead = obs
        .verdicts
        .iter()
        .find(|v| v.instance == instance && v.to == Liveness::Dead && v.at >= from && v.at <= until)
        .map(|v| (v.at, "dead".to_string(), false));
    let status = obs.monitor.iter().find_map(|m| match m.change {
        MonitorChange::Status { to, .. }
            if m.instance == instance && is_bad(to) && m.at >= from && m.at <= until =>
        {
            Some((m.at, to.to_string(), false))
        }
        _ => None,
    });
    match (dead, status) {
        (Some(d), Some(s)) => Some(if s.0 < d.0 { s } else { d }),
        (d, s) => d.or(s),
    }
}

/// The detection of one outage of `instance`.
fn detect(sim: &Simulation<'_>, instance: InstanceId, outage: &Outage) -> Detection {
    let &Outage { kind, began, ended, .. } = outage;
    let end = Instant::ZERO + sim.duration();
    let until = ended.unwrap_or(end);
    let found = first_bad_verdict(sim.observations(), instance, began, until);
    Detection {
        instance: sim.scenario().node_name(Scenario::node_of(instance)),
        kind,
        began_ms: began.as_millis(),
        ended_ms: ended.map(Instant::as_millis),
        detected_ms: found.as_ref().map(|f| f.0.as_millis()),
        detected_as: found.as_ref().map(|f| f.1.clone()),
        began_at: began,
        down_for: until - began,
        standing: found.as_ref().is_some_and(|f| f.2),
        detected_at: found.map(|f| f.0),
    }
}

/// Every outage of the run with its detection, in order of start.
pub fn detections(sim: &Simulation<'_>) -> Vec<Detection> {
    let mut out = Vec::new();
    for (i, outages) in sim.observations().outages.iter().enumerate() {
        for outage in outages {
            out.push(detect(sim, InstanceId(i as u32), outage));
        }
    }
    out.sort_by_key(|d| (d.began_at, d.instance.clone()));
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
    if expect.failure_types {
        out.push(failure_types(sim));
    }
    if let Some(bound) = expect.recovery_started_within {
        out.push(recovery_started_within(sim, bound));
    }
    if let Some(bound) = expect.restored_within {
        out.push(restored_within(sim, bound));
    }
    if let Some(most) = expect.max_concurrent_recoveries {
        let seen = sim.observations().max_in_flight;
        out.push(ExpectationOutcome {
            name: "max_concurrent_recoveries".into(),
            passed: seen <= most,
            required: format!("<= {most} recovery action(s) in flight at once"),
            observed: format!("at most {seen} at once"),
        });
    }
    if expect.no_restart_of_healthy_instances {
        out.push(no_restart_of_healthy_instances(sim));
    }
    if let Some(most) = expect.max_lost_requests {
        let calls = &sim.observations().calls;
        let lost = calls.total - calls.ok;
        out.push(ExpectationOutcome {
            name: "no_lost_requests".into(),
            passed: lost <= most,
            required: format!("<= {most} client call(s) lost"),
            observed: format!(
                "{lost} lost of {} ({} error, {} refused, {} timeout, {} no endpoint)",
                calls.total, calls.error, calls.refused, calls.timeout, calls.no_endpoint
            ),
        });
    }
    if !expect.actions_taken.is_empty() {
        out.push(actions_taken(sim, &expect.actions_taken));
    }
    out
}

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
    /// service) after the outage began.
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

/// Per service, the share of its instances' time in rotation, as the
/// control node judged it: alive in the detector's view and, for instances
/// with active checks, ready in the monitor's. Counted from `from` to the
/// run's end, for every instance that was ever alive (a standby slot from
/// the moment it joined). It is the fleet's view, not the clients' (which
/// the `[load]` calls measure), and the only one a service without traffic
/// has.
pub fn service_availability(sim: &Simulation<'_>, from: Instant) -> Vec<(String, Option<f64>)> {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let end = Instant::ZERO + sim.duration();
    let mut per_service = vec![(0u128, 0u128); scenario.services.len()];
    for i in 0..scenario.instance_count() {
        let instance = InstanceId(i);
        let Some((s, _)) = scenario.locate(instance) else { continue };
        let monitored = scenario.services[s].health.is_some();
        // Changes of (alive, ready) in time order; both sources are in
        // order, merged here.
        let mut changes: Vec<(Instant, Option<bool>, Option<bool>)> = obs
            .verdicts
            .iter()
            .filter(|v| v.instance == instance)
            .map(|v| (v.at, Some(v.to == Liveness::Alive), None))
            .collect();
        if monitored {
            changes.extend(obs.monitor.iter().filter(|m| m.instance == instance).filter_map(
                |m| match m.change {
                    MonitorChange::Ready(r) => Some((m.at, None, Some(r))),
                    _ => None,
                },
            ));
        }
        changes.sort_by_key(|c| c.0); // stable: same-instant order kept
        let Some(joined) = changes.iter().find(|c| c.1 == Some(true)).map(|c| c.0) else { continue };
        let start = joined.max(from);
        if start >= end {
            continue;
        }
        let (mut alive, mut ready) = (false, !monitored);
        let mut since = start;
        let mut routable_ns = 0u128;
        for (at, a, r) in changes {
            let at = at.clamp(start, end);
            if alive && ready {
                routable_ns += u128::from((at - since).as_nanos() as u64);
            }
            since = at;
            alive = a.unwrap_or(alive);
            ready = r.unwrap_or(ready);
        }
        if alive && ready {
            routable_ns += u128::from((end - since).as_nanos() as u64);
        }
        per_service[s].0 += routable_ns;
        per_service[s].1 += u128::from((end - start).as_nanos() as u64);
    }
    scenario
        .services
        .iter()
        .zip(per_service)
        .map(|(svc, (up, total))| (svc.name.clone(), (total > 0).then(|| up as f64 / total as f64)))
        .collect()
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
                started_at: mine.first().map(|(at, _)| *at),
                restored_at,
                actions: mine.iter().map(|(_, a)| *a).collect(),
            });
        }
    }
    out
}

fn recovery_started_within(sim: &Simulation<'_>, bound: Duration) -> ExpectationOutcome {
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

fn restored_within(sim: &Simulation<'_>, bound: Duration) -> ExpectationOutcome {
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

/// How long after an outage's end a restart of its instance still counts
/// as meant for it (verdicts and decisions trail the facts).
const RESTART_GRACE: Duration = Duration::from_secs(30);

fn no_restart_of_healthy_instances(sim: &Simulation<'_>) -> ExpectationOutcome {
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

fn actions_taken(sim: &Simulation<'_>, wanted: &[ActionClass]) -> ExpectationOutcome {
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

fn failure_types(sim: &Simulation<'_>) -> ExpectationOutcome {
    let all = detections(sim);
    let detected: Vec<&Detection> = all.iter().filter(|d| d.detected_as.is_some()).collect();
    let wrong: Vec<String> = detected
        .iter()
        .filter(|d| d.type_matches() == Some(false))
        .map(|d| {
            format!(
                "{} {} at {} seen as {}",
                d.instance,
                d.kind.name(),
                fmt_instant(d.began_at),
                d.detected_as.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let observed = if wrong.is_empty() {
        format!("{} of {} outage(s) detected, each as its own failure type", detected.len(), all.len())
    } else {
        wrong.join("; ")
    };
    ExpectationOutcome {
        name: "failure_types".into(),
        passed: wrong.is_empty(),
        required: "each detected outage classified as its failure type".into(),
        observed,
    }
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
    let required = format!("every outage >= {0} detected within {0}", fmt_duration(bound));
    let late: Vec<String> = due
        .iter()
        .filter(|d| d.latency().is_none_or(|l| l > bound))
        .map(|d| match d.latency() {
            Some(l) => format!("{} at {} took {}", d.instance, fmt_instant(d.began_at), fmt_duration(l)),
            None => format!("{} at {} never detected", d.instance, fmt_instant(d.began_at)),
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
