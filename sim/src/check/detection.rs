//! Detection checkers: every outage (a crash, a pause, an application
//! fault) and whether, when and as what vigil noticed it, judged from the
//! failure detector's verdicts and the health monitor's statuses.

use vigil_core::health::{HealthStatus, Liveness};
use vigil_core::{Duration, InstanceId, Instant};

use super::ExpectationOutcome;
use crate::scenario::Scenario;
use crate::text::{fmt_duration, fmt_instant};
use crate::world::{MonitorChange, Observations, Outage, OutageKind, Simulation};

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
    pub(super) began_at: Instant,
    #[serde(skip)]
    pub(super) down_for: Duration,
    #[serde(skip)]
    pub(super) detected_at: Option<Instant>,
    /// The verdict stood before the outage began.
    #[serde(skip)]
    pub(super) standing: bool,
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
pub(super) fn detect(sim: &Simulation<'_>, instance: InstanceId, outage: &Outage) -> Detection {
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

pub(super) fn detected_within(sim: &Simulation<'_>, bound: Duration) -> ExpectationOutcome {
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

pub(super) fn failure_types(sim: &Simulation<'_>) -> ExpectationOutcome {
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
