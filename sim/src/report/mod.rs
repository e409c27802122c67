//! The report of one run: a serde structure, printed as stable text or as
//! JSON.
//!
//! Everything in the text form is a function of `(scenario, seed)`, so it can
//! be snapshot-tested; the wall-clock figure (`wall_ms`) exists only in the
//! JSON form and in the CLI's separate timing line.
//!
//! [`replay`] is the same run as a readable timeline. Both read what the
//! world observed and what the checkers made of it; nothing below them
//! (world, check) reads a report.

use std::fmt::Write as _;

use vigil_core::balance::BalanceEvent;
use vigil_core::health::Liveness;
use vigil_core::{Duration, Instant};

use crate::check::{self, Detection, ExpectationOutcome};
use crate::world::net::NetworkStats;
use crate::world::{AttackStats, Simulation};

pub mod replay;

pub use crate::text::{describe, fmt_duration, fmt_instant, names};

/// The outcome of one seeded run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// Final trace hash, 16 hex digits.
    pub trace_hash: String,
    /// Events the kernel processed.
    pub events_processed: u64,
    /// Simulated time covered, in ms.
    pub simulated_ms: u64,
    /// Wall-clock time the run took, in ms (not deterministic; absent from
    /// the text report).
    pub wall_ms: u64,
    /// Whether every expectation held.
    pub passed: bool,
    /// Each expectation's outcome.
    pub expectations: Vec<ExpectationOutcome>,
    /// Each scheduled fault with when it began and ended.
    pub faults: Vec<FaultRecord>,
    /// Each outage (crash, pause, hang, slow, errors, flap) with its
    /// detection.
    pub detections: Vec<Detection>,
    /// Verdict changes by destination state.
    pub verdicts: VerdictCounts,
    /// What the network did.
    pub network: NetworkStats,
    /// What `forge` faults' attackers sent and what became of it, when the
    /// scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<AttackStats>,
    /// Client calls, when the scenario has load.
    pub calls: Option<CallReport>,
    /// Calls between services, one per `depends_on` edge in file order
    /// (not part of the load's availability).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_calls: Vec<EdgeReport>,
    /// What recovery did, when the scenario has `[recovery]`.
    pub recovery: Option<RecoveryReport>,
}

/// What recovery did about the run's faults.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecoveryReport {
    /// The overall judgement.
    pub verdict: Resilience,
    /// Whether every expectation held (the run PASSED).
    pub expectations_held: bool,
    /// Per fault occurrence that caused an outage.
    pub faults: Vec<FaultRecovery>,
    /// Detection latency over every detected outage.
    pub detection: Percentiles,
    /// From detection to the first recovery action.
    pub recovery_start: Percentiles,
    /// From an outage's start to its instance's return to health.
    pub time_to_restore: Percentiles,
    /// Actions taken, by kind, in order of first use.
    pub actions: Vec<(String, u64)>,
    /// Most recovery actions in flight at once.
    pub max_concurrent: u32,
    /// Episodes that ended asking a human.
    pub asked_human: u64,
    /// Per service, the share of its instances' time in rotation (the
    /// fleet's view; clients' view is `calls`), from the load's start (or
    /// 5 s) to the end.
    pub services: Vec<(String, Option<f64>)>,
}

/// How the system stood up to the run's faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resilience {
    /// Every detected outage was restored, and every expectation held.
    Resilient,
    /// Recovery ran out of automated steps and asked a human (by design,
    /// not a failure of recovery), and every expectation held.
    HeldForHuman,
    /// An expectation failed, or an outage was never restored.
    NotResilient,
}

impl Resilience {
    fn text(self) -> &'static str {
        match self {
            Resilience::Resilient => "RESILIENT: every detected outage restored, every expectation held",
            Resilience::HeldForHuman => "HELD FOR A HUMAN: recovery exhausted its ladder and asked for help",
            Resilience::NotResilient => "NOT RESILIENT: see the failed expectations and unrestored outages",
        }
    }
}

/// What recovery did about one fault occurrence.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FaultRecovery {
    /// Index of the occurrence (as in `faults`).
    pub index: usize,
    /// The fault in words.
    pub description: String,
    /// Outages it caused.
    pub outages: u64,
    /// Worst detection latency of its outages, ms.
    pub detected_after_ms: Option<u64>,
    /// First recovery action, ms after the first detection.
    pub recovery_started_after_ms: Option<u64>,
    /// Worst time from a detected outage's start to its return to health,
    /// ms, over those restored; `None` if none was.
    pub restored_after_ms: Option<u64>,
    /// Outages never restored.
    pub unrestored: u64,
    /// Detected outages not restored when the run ended, but begun less
    /// than the restore bound (`restored_within`, else the product's 30 s)
    /// before the end: still within their time, so no verdict either way.
    pub recovering_at_end: u64,
    /// Actions taken for its outages, in order, in words.
    pub actions: Vec<String>,
}

/// p50, p99 and max of a latency, in ms; `None` without samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: Option<u64>,
    /// 99th percentile.
    pub p99_ms: Option<u64>,
    /// Largest.
    pub max_ms: Option<u64>,
}

impl Percentiles {
    fn of(samples: &[Duration]) -> Percentiles {
        let mut h =
            hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures is a valid precision");
        for d in samples {
            // Auto-resizing: recording a u64 cannot fail.
            let _ = h.record(millis(*d));
        }
        if samples.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: samples.len() as u64,
            p50_ms: Some(h.value_at_quantile(0.5)),
            p99_ms: Some(h.value_at_quantile(0.99)),
            max_ms: Some(h.max()),
        }
    }

    fn text(&self) -> String {
        match (self.p50_ms, self.p99_ms, self.max_ms) {
            (Some(p50), Some(p99), Some(max)) => format!(
                "p50 {} p99 {} max {} (n={})",
                fmt_duration(Duration::from_millis(p50)),
                fmt_duration(Duration::from_millis(p99)),
                fmt_duration(Duration::from_millis(max)),
                self.count
            ),
            _ => "-".to_string(),
        }
    }
}

/// The product's restore bound ("service restored within 30 s"), used for
/// the verdict when a scenario sets no `restored_within`.
const RESTORE_BOUND: Duration = Duration::from_secs(30);

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RecoveryReport {
    fn new(sim: &Simulation<'_>, passed: bool) -> RecoveryReport {
        let scenario = sim.scenario();
        let obs = sim.observations();
        let services: Vec<String> = scenario.services.iter().map(|s| s.name.clone()).collect();
        let all = check::recoveries(sim);
        let mut faults: Vec<FaultRecovery> = Vec::new();
        let (mut detection, mut start, mut restore) = (Vec::new(), Vec::new(), Vec::new());
        let mut unrestored_total = 0;
        // An outage the run ended on before its restore bound is not
        // unrestored: it had no time to be (the `restored_within` rule).
        let bound = scenario.expect.restored_within.unwrap_or(RESTORE_BOUND);
        let end = Instant::ZERO + sim.duration();
        let in_time = |r: &check::Recovery| end.saturating_duration_since(r.detection.began_at()) <= bound;
        let mut seen: Vec<(usize, vigil_core::recovery::ActionId)> = Vec::new();
        for r in &all {
            let detected = r.detection.latency();
            let started = match (r.started_at, r.detection.detected_at()) {
                (Some(s), Some(d)) => Some(s.saturating_duration_since(d)),
                _ => None,
            };
            let restored = r.restored_at.map(|at| at.saturating_duration_since(r.detection.began_at()));
            detection.extend(detected);
            start.extend(started);
            if r.detection.detected_at().is_some() {
                match restored {
                    Some(t) => restore.push(t),
                    None if in_time(r) => {}
                    None => unrestored_total += 1,
                }
            }
            let Some(index) = r.fault.map(|f| f as usize) else { continue };
            let entry = match faults.iter_mut().position(|f| f.index == index) {
                Some(k) => &mut faults[k],
                None => {
                    faults.push(FaultRecovery {
                        index,
                        description: sim
                            .plan()
                            .get(index)
                            .map_or_else(String::new, |f| describe(scenario, f)),
                        outages: 0,
                        detected_after_ms: None,
                        recovery_started_after_ms: None,
                        restored_after_ms: None,
                        unrestored: 0,
                        recovering_at_end: 0,
                        actions: Vec::new(),
                    });
                    faults.last_mut().expect("just pushed")
                }
            };
            entry.outages += 1;
            if let Some(d) = detected {
                entry.detected_after_ms = Some(entry.detected_after_ms.unwrap_or(0).max(millis(d)));
            }
            if entry.recovery_started_after_ms.is_none() {
                entry.recovery_started_after_ms = started.map(millis);
            }
            // Only detected outages needed restoring.
            match restored {
                _ if r.detection.detected_at().is_none() => {}
                Some(t) => {
                    entry.restored_after_ms = Some(entry.restored_after_ms.unwrap_or(0).max(millis(t)));
                }
                None if in_time(r) => entry.recovering_at_end += 1,
                None => entry.unrestored += 1,
            }
            for action in &r.actions {
                // A scale-out serves every outage of its service: once.
                if !seen.contains(&(index, action.id)) {
                    seen.push((index, action.id));
                    entry.actions.push(crate::text::action_words(action.kind, &services));
                }
            }
        }
        faults.sort_by_key(|f| f.index);
        let mut actions: Vec<(String, u64)> = Vec::new();
        let mut asked_human = 0;
        for (_, a) in check::actions(obs) {
            if matches!(a.kind, vigil_core::recovery::ActionKind::AskHuman { .. }) {
                asked_human += 1;
            }
            let name = check::action_class(a.kind).map_or("circuit trial", |c| c.name()).to_string();
            match actions.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => actions.push((name, 1)),
            }
        }
        let verdict = if !passed || (unrestored_total > 0 && asked_human == 0) {
            Resilience::NotResilient
        } else if asked_human > 0 {
            Resilience::HeldForHuman
        } else {
            Resilience::Resilient
        };
        RecoveryReport {
            verdict,
            expectations_held: passed,
            faults,
            detection: Percentiles::of(&detection),
            recovery_start: Percentiles::of(&start),
            time_to_restore: Percentiles::of(&restore),
            actions,
            max_concurrent: obs.max_in_flight,
            asked_human,
            services: check::service_availability(
                sim,
                Instant::ZERO + scenario.load.as_ref().map_or(Duration::from_secs(5), |l| l.start),
            ),
        }
    }

    /// The verdict in words. A run whose expectations all held can still
    /// be not resilient (an outage never restored that no expectation
    /// checks): say so plainly, beside the PASSED it would contradict.
    fn verdict_text(&self) -> String {
        let unrestored: u64 = self.faults.iter().map(|f| f.unrestored).sum();
        if self.verdict == Resilience::NotResilient && self.expectations_held {
            return format!(
                "NOT RESILIENT: every expectation held, but {unrestored} detected outage(s) were never \
                 restored (no expectation checks it; add `restored_within` to [expect])"
            );
        }
        let recovering: u64 = self.faults.iter().map(|f| f.recovering_at_end).sum();
        if self.verdict == Resilience::Resilient && recovering > 0 {
            return format!(
                "RESILIENT SO FAR: every expectation held; {recovering} outage(s) still recovering when \
                 the run ended, within their restore bound"
            );
        }
        self.verdict.text().to_string()
    }

    fn write(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "
recovery  {}",
            self.verdict_text()
        );
        let _ = writeln!(s, "  detection        {}", self.detection.text());
        let _ = writeln!(s, "  recovery start   {}", self.recovery_start.text());
        let _ = writeln!(s, "  time to restore  {}", self.time_to_restore.text());
        let actions: Vec<String> = self.actions.iter().map(|(n, c)| format!("{n} x{c}")).collect();
        let _ = writeln!(
            s,
            "  actions          {} (at most {} at once)",
            if actions.is_empty() { "none".to_string() } else { actions.join(", ") },
            self.max_concurrent
        );
        let services: Vec<String> = self
            .services
            .iter()
            .map(|(name, share)| {
                format!("{name} {}", share.map_or_else(|| "-".to_string(), crate::text::fmt_share))
            })
            .collect();
        let _ = writeln!(s, "  in rotation      {}", services.join(", "));
        for f in &self.faults {
            let ms = |v: Option<u64>| {
                v.map_or_else(|| "-".to_string(), |v| fmt_duration(Duration::from_millis(v)))
            };
            let restored = match (f.detected_after_ms, f.unrestored, f.restored_after_ms) {
                (None, _, _) => "nothing to restore".to_string(),
                (Some(_), 0, _) if f.recovering_at_end > 0 => {
                    format!("still recovering when the run ended ({} outage(s))", f.recovering_at_end)
                }
                (Some(_), 0, v) => format!("restored {}", ms(v)),
                (Some(_), n, _) => format!("NOT restored ({n} outage(s))"),
            };
            let _ = writeln!(
                s,
                "  #{:<2} {}: {} outage(s); detected {}, acted {} later, {}",
                f.index,
                f.description,
                f.outages,
                ms(f.detected_after_ms),
                ms(f.recovery_started_after_ms),
                restored
            );
            if !f.actions.is_empty() {
                let _ = writeln!(s, "      actions: {}", f.actions.join(" -> "));
            }
        }
    }
}

/// Client calls as clients saw them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CallReport {
    /// Calls that ended.
    pub total: u64,
    /// Succeeded.
    pub ok: u64,
    /// Answered with an error.
    pub error: u64,
    /// Refused: nothing listened.
    pub refused: u64,
    /// No answer in time.
    pub timeout: u64,
    /// No routable endpoint.
    pub no_endpoint: u64,
    /// `ok / total`, or `None` when no call ended.
    pub availability: Option<f64>,
    /// Endpoints the client's balancer ejected (outlier detection).
    pub ejections: u64,
    /// Times the client's balancer entered panic mode once calls began.
    pub panics: u64,
    /// Median latency, µs.
    pub latency_p50_us: u64,
    /// 99th percentile latency, µs.
    pub latency_p99_us: u64,
    /// Largest latency, µs.
    pub latency_max_us: u64,
    /// Per targeted service, in the load's order (every call above went
    /// to one of them).
    pub services: Vec<ServiceCalls>,
}

/// The calls to one targeted service.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServiceCalls {
    /// The service's name.
    pub service: String,
    /// Its share of the load, as the scenario asks.
    pub share: f64,
    /// Calls that ended.
    pub total: u64,
    /// Succeeded.
    pub ok: u64,
    /// Answered with an error.
    pub error: u64,
    /// Refused: nothing listened.
    pub refused: u64,
    /// No answer in time.
    pub timeout: u64,
    /// No routable endpoint.
    pub no_endpoint: u64,
    /// `ok / total`, or `None` when no call ended.
    pub availability: Option<f64>,
}

/// The calls on one edge of the call graph, as the callers' clients saw
/// them end.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EdgeReport {
    /// The calling service.
    pub caller: String,
    /// The service called.
    pub dependency: String,
    /// Calls that ended.
    pub total: u64,
    /// Succeeded.
    pub ok: u64,
    /// Answered with an error.
    pub error: u64,
    /// Refused: nothing listened.
    pub refused: u64,
    /// No answer in time.
    pub timeout: u64,
    /// No routable endpoint.
    pub no_endpoint: u64,
    /// `ok / total`, or `None` when no call ended.
    pub availability: Option<f64>,
}

/// A fault as it happened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FaultRecord {
    /// Index in the scenario's (time-sorted) fault list.
    pub index: usize,
    /// Line in the scenario file.
    pub line: usize,
    /// What it did, in words.
    pub description: String,
    /// Simulated ms it began.
    pub began_ms: Option<u64>,
    /// Simulated ms it ended.
    pub ended_ms: Option<u64>,
}

/// How many verdict changes went to each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerdictCounts {
    /// Changes to `alive`.
    pub alive: u64,
    /// Changes to `suspect`.
    pub suspect: u64,
    /// Changes to `dead`.
    pub dead: u64,
}

impl Report {
    /// Build the report of a finished simulation. `wall_ms` is measured by
    /// the caller: this crate never reads a clock.
    pub fn new(sim: &Simulation<'_>, seed: u64, wall_ms: u64) -> Report {
        let scenario = sim.scenario();
        let expectations = check::evaluate(sim);
        let obs = sim.observations();
        let mut verdicts = VerdictCounts::default();
        for v in &obs.verdicts {
            match v.to {
                Liveness::Alive => verdicts.alive += 1,
                Liveness::Suspect => verdicts.suspect += 1,
                Liveness::Dead => verdicts.dead += 1,
                Liveness::Unknown => {}
            }
        }
        let passed = expectations.iter().all(|e| e.passed);
        Report {
            recovery: scenario.recovery.as_ref().map(|_| RecoveryReport::new(sim, passed)),
            scenario: scenario.name.clone(),
            seed,
            trace_hash: sim.trace_hash().hex(),
            events_processed: sim.events_processed(),
            simulated_ms: sim.now().as_millis(),
            wall_ms,
            passed,
            expectations,
            faults: sim
                .plan()
                .iter()
                .zip(&obs.faults)
                .enumerate()
                .map(|(index, (fault, span))| FaultRecord {
                    index,
                    line: fault.line,
                    description: describe(scenario, fault),
                    began_ms: span.began.map(Instant::as_millis),
                    ended_ms: span.ended.map(Instant::as_millis),
                })
                .collect(),
            detections: check::detections(sim),
            verdicts,
            network: *sim.network().stats(),
            attack: sim
                .plan()
                .iter()
                .any(|f| matches!(f.action, crate::scenario::FaultAction::Forge { .. }))
                .then_some(sim.observations().attack),
            service_calls: obs
                .service_calls
                .iter()
                .map(|e| {
                    let name =
                        |i: usize| scenario.services.get(i).map_or_else(String::new, |s| s.name.clone());
                    let c = &e.calls;
                    EdgeReport {
                        caller: name(e.caller),
                        dependency: name(e.dependency),
                        total: c.total,
                        ok: c.ok,
                        error: c.error,
                        refused: c.refused,
                        timeout: c.timeout,
                        no_endpoint: c.no_endpoint,
                        availability: c.availability(),
                    }
                })
                .collect(),
            calls: scenario.load.as_ref().map(|load| {
                let c = &obs.calls;
                CallReport {
                    total: c.total,
                    ok: c.ok,
                    error: c.error,
                    refused: c.refused,
                    timeout: c.timeout,
                    no_endpoint: c.no_endpoint,
                    availability: c.availability(),
                    ejections: obs
                        .balance
                        .iter()
                        .filter(|(_, e)| matches!(e, BalanceEvent::Ejected { .. }))
                        .count() as u64,
                    // Counted from the first call: before it, at boot, no
                    // instance is routable yet and the client panics by rule.
                    panics: obs
                        .balance
                        .iter()
                        .filter(|(at, e)| {
                            matches!(e, BalanceEvent::PanicEntered { .. })
                                && *at >= Instant::ZERO + load.start
                        })
                        .count() as u64,
                    latency_p50_us: c.latency_us.value_at_quantile(0.5),
                    latency_p99_us: c.latency_us.value_at_quantile(0.99),
                    latency_max_us: c.latency_us.max(),
                    services: load
                        .targets
                        .iter()
                        .zip(&obs.calls_by_target)
                        .map(|(t, c)| ServiceCalls {
                            service: scenario
                                .services
                                .get(t.service)
                                .map_or_else(String::new, |s| s.name.clone()),
                            share: t.share,
                            total: c.total,
                            ok: c.ok,
                            error: c.error,
                            refused: c.refused,
                            timeout: c.timeout,
                            no_endpoint: c.no_endpoint,
                            availability: c.availability(),
                        })
                        .collect(),
                }
            }),
        }
    }

    /// The report as stable text: no wall-clock figures.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let passed = self.expectations.iter().filter(|e| e.passed).count();
        let _ = writeln!(s, "scenario  {}", self.scenario);
        let _ = writeln!(s, "seed      {}", self.seed);
        let _ = writeln!(s, "trace     {}", self.trace_hash);
        let _ = writeln!(
            s,
            "events    {} over {} simulated",
            self.events_processed,
            fmt_duration(Duration::from_millis(self.simulated_ms))
        );
        let _ = writeln!(
            s,
            "result    {} ({passed}/{} expectations hold)",
            if self.passed { "PASSED" } else { "FAILED" },
            self.expectations.len()
        );
        let _ = writeln!(s, "\nexpectations");
        for e in &self.expectations {
            let _ = writeln!(s, "  {} {:<16} {}", if e.passed { "ok  " } else { "FAIL" }, e.name, e.required);
            let _ = writeln!(s, "       {:<16} {}", "", e.observed);
        }
        if !self.faults.is_empty() {
            let _ = writeln!(s, "\nfaults");
            for f in &self.faults {
                let _ = writeln!(
                    s,
                    "  #{:<2} line {:<4} {:<12} {:<12} {}",
                    f.index,
                    f.line,
                    opt_ms(f.began_ms),
                    opt_ms(f.ended_ms),
                    f.description
                );
            }
        }
        if !self.detections.is_empty() {
            let _ = writeln!(s, "\noutages");
            for d in &self.detections {
                let latency = match (d.detected_ms, &d.detected_as) {
                    (Some(det), Some(what)) => {
                        format!("{what} after {}", fmt_duration(Duration::from_millis(det - d.began_ms)))
                    }
                    _ => "not detected".to_string(),
                };
                let kind = d.kind.name();
                let _ = writeln!(
                    s,
                    "  {:<16} {kind:<6} {:<12} back {:<12} {latency}",
                    d.instance,
                    opt_ms(Some(d.began_ms)),
                    opt_ms(d.ended_ms),
                );
            }
        }
        if let Some(c) = &self.calls {
            let to = match c.services.as_slice() {
                [only] => only.service.clone(),
                several => format!("{} services", several.len()),
            };
            let _ = writeln!(
                s,
                "\ncalls     {} (to {to})",
                calls_text(c.total, c.availability, [c.error, c.refused, c.timeout, c.no_endpoint])
            );
            if c.services.len() > 1 {
                let width = c.services.iter().map(|t| t.service.len()).max().unwrap_or(0);
                for t in &c.services {
                    let _ = writeln!(
                        s,
                        "  {:<width$}  {} (share {})",
                        t.service,
                        calls_text(t.total, t.availability, [t.error, t.refused, t.timeout, t.no_endpoint]),
                        crate::text::fmt_share(t.share),
                    );
                }
            }
            let _ = writeln!(s, "balancer  {} ejection(s), {} panic(s)", c.ejections, c.panics);
            let _ = writeln!(
                s,
                "latency   p50 {} p99 {} max {}",
                fmt_micros(c.latency_p50_us),
                fmt_micros(c.latency_p99_us),
                fmt_micros(c.latency_max_us)
            );
        }
        if !self.service_calls.is_empty() {
            let _ = writeln!(s, "\ncalls between services (not counted in the load's availability)");
            let edges: Vec<String> =
                self.service_calls.iter().map(|e| format!("{} -> {}", e.caller, e.dependency)).collect();
            let width = edges.iter().map(String::len).max().unwrap_or(0);
            for (edge, e) in edges.iter().zip(&self.service_calls) {
                let _ = writeln!(
                    s,
                    "  {edge:<width$}  {}",
                    calls_text(e.total, e.availability, [e.error, e.refused, e.timeout, e.no_endpoint])
                );
            }
        }
        if let Some(r) = &self.recovery {
            r.write(&mut s);
        }
        let v = &self.verdicts;
        let _ = writeln!(s, "\nverdicts  {} alive, {} suspect, {} dead", v.alive, v.suspect, v.dead);
        let n = &self.network;
        let _ = writeln!(
            s,
            "network   sent {} delivered {} lost {} partitioned {} duplicated {} reordered {} to-down-host {}",
            n.sent, n.delivered, n.lost, n.partitioned, n.duplicated, n.reordered, n.host_down
        );
        // Frames the receivers refused (vigil_core::auth): only when some
        // were, so that a run without duplicates or an attacker reads as
        // before.
        let a = &n.auth;
        if a.dropped() > 0 {
            let _ = writeln!(
                s,
                "frames    dropped {}: replayed {} (duplicates included), forged {}, unknown key {}, old session {}, misdirected {}, malformed {}",
                a.dropped(),
                a.replayed,
                a.unauthenticated,
                a.unknown_key,
                a.old_session,
                a.misdirected,
                a.malformed + a.too_many_senders,
            );
        }
        if let Some(a) = &self.attack {
            let _ = writeln!(
                s,
                "attacker  sent {} (forged {}, replayed {}, misdirected {}): accepted {}, dropped {}, unheard {}",
                a.sent(),
                a.forged,
                a.replayed,
                a.misdirected,
                a.received.accepted,
                a.dropped(),
                a.unheard
            );
        }
        s
    }
}

/// `N ended, S ok; E error, R refused, T timeout, X no endpoint`.
fn calls_text(total: u64, availability: Option<f64>, [error, refused, timeout, none]: [u64; 4]) -> String {
    let share = availability.map_or_else(|| "-".to_string(), crate::text::fmt_share);
    format!(
        "{total} ended, {share} ok; {error} error, {refused} refused, {timeout} timeout, {none} no endpoint"
    )
}

fn fmt_micros(us: u64) -> String {
    if us < 1000 { format!("{us}us") } else { fmt_duration(Duration::from_micros(us)) }
}

fn opt_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_string(), |ms| fmt_instant(Instant::from_millis(ms)))
}
