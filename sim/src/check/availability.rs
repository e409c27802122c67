//! Availability checkers: the clients' view (the share of the load
//! generator's calls that succeeded, per targeted service and over them
//! all; calls lost) and the fleet's (each service's share of its
//! instances' time in rotation, for the report). Clients call only the
//! services the load targets, so a fault in a service nobody calls costs
//! the clients' view nothing.

use vigil_core::health::Liveness;
use vigil_core::{InstanceId, Instant};

use super::ExpectationOutcome;
use crate::text::fmt_share;
use crate::world::{CallStats, MonitorChange, Simulation};

/// `calls` in words: share, counts and how the rest failed.
fn calls_text(calls: &CallStats) -> String {
    match calls.availability() {
        None => "no client call ended".to_string(),
        Some(share) => format!(
            "{} ({} of {} calls; {} error, {} refused, {} timeout, {} no endpoint)",
            fmt_share(share),
            calls.ok,
            calls.total,
            calls.error,
            calls.refused,
            calls.timeout,
            calls.no_endpoint
        ),
    }
}

/// At least `least` of the calls to each targeted service succeeded (so
/// of all calls too). With one target, the figure is that service's.
pub(super) fn availability(sim: &Simulation<'_>, least: f64) -> ExpectationOutcome {
    let obs = sim.observations();
    let scenario = sim.scenario();
    let holds = |c: &CallStats| c.availability().is_some_and(|share| share >= least);
    let targets = scenario.load.as_ref().map_or(&[][..], |l| l.targets.as_slice());
    let (passed, observed) = if targets.len() <= 1 {
        (holds(&obs.calls), calls_text(&obs.calls))
    } else {
        let mut passed = holds(&obs.calls);
        let mut parts = vec![format!("all targets {}", calls_text(&obs.calls))];
        for (t, calls) in targets.iter().zip(&obs.calls_by_target) {
            passed &= holds(calls);
            let name = scenario.services.get(t.service).map_or("?", |s| s.name.as_str());
            parts.push(format!("{name} {}", calls_text(calls)));
        }
        (passed, parts.join("; "))
    };
    let required = if targets.len() <= 1 {
        format!(">= {} of client calls succeed", fmt_share(least))
    } else {
        format!(">= {} of client calls to each targeted service succeed", fmt_share(least))
    };
    ExpectationOutcome { name: "availability".into(), passed, required, observed }
}

/// At most `most` client calls ended other than in success.
pub(super) fn no_lost_requests(sim: &Simulation<'_>, most: u64) -> ExpectationOutcome {
    let calls = &sim.observations().calls;
    let lost = calls.lost();
    ExpectationOutcome {
        name: "no_lost_requests".into(),
        passed: lost <= most,
        required: format!("<= {most} client call(s) lost"),
        observed: format!(
            "{lost} lost of {} ({} error, {} refused, {} timeout, {} no endpoint)",
            calls.total, calls.error, calls.refused, calls.timeout, calls.no_endpoint
        ),
    }
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
