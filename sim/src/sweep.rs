//! Sweeps: one scenario across many seeds, summarised.
//!
//! Each `(scenario, seed)` run is independent and deterministic, so a sweep
//! may run them on several threads and still report exactly the same
//! results in the same order: results are gathered by index, never by
//! completion order. This is the only place in the deterministic crates that
//! uses threads.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::report::Report;
use crate::scenario::Scenario;

/// One failing seed and what failed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FailedSeed {
    /// The seed.
    pub seed: u64,
    /// Names of the failed expectations with what was observed.
    pub failed: Vec<String>,
}

/// The outcome of a sweep of one scenario.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepSummary {
    /// Scenario name.
    pub scenario: String,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds where every expectation held.
    pub passed: u64,
    /// The failing seeds, in seed order.
    pub failures: Vec<FailedSeed>,
    /// Lowest client availability over the seeds, if the scenario has load.
    pub worst_availability: Option<f64>,
    /// Slowest detection of an outage over the seeds, in ms.
    pub worst_detection_ms: Option<u64>,
    /// Slowest start of recovery after a detection over the seeds, in ms
    /// (scenarios with `[recovery]`).
    pub worst_recovery_start_ms: Option<u64>,
    /// Longest time to restore an outage over the seeds, in ms (scenarios
    /// with `[recovery]`).
    pub worst_restore_ms: Option<u64>,
    /// Events processed over all seeds.
    pub events: u64,
}

/// Run `scenario` for every seed in `seeds` on `jobs` threads, calling
/// `progress` after each run. Results do not depend on `jobs`.
pub fn sweep(
    scenario: &Scenario,
    seeds: Range<u64>,
    jobs: usize,
    progress: &(dyn Fn() + Sync),
) -> SweepSummary {
    let count = usize::try_from(seeds.end.saturating_sub(seeds.start)).unwrap_or(usize::MAX);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new(vec![None; count]);
    let next = AtomicUsize::new(0);
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            let report = crate::run(scenario, seeds.start + i as u64);
            // A poisoned lock means another worker panicked: a bug, which
            // the scope below re-raises.
            if let Ok(mut r) = results.lock() {
                r[i] = Some(report);
            }
            progress();
        }
    };
    #[allow(clippy::disallowed_methods)] // independent runs, gathered by index: see the module docs
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(worker);
        }
    });
    let reports: Vec<Report> = results.into_inner().unwrap_or_default().into_iter().flatten().collect();
    summarise(scenario, &reports)
}

fn summarise(scenario: &Scenario, reports: &[Report]) -> SweepSummary {
    let failures: Vec<FailedSeed> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| FailedSeed {
            seed: r.seed,
            failed: r
                .expectations
                .iter()
                .filter(|e| !e.passed)
                .map(|e| format!("{}: {}", e.name, e.observed))
                .collect(),
        })
        .collect();
    SweepSummary {
        scenario: scenario.name.clone(),
        seeds: reports.len() as u64,
        passed: reports.iter().filter(|r| r.passed).count() as u64,
        failures,
        worst_availability: reports
            .iter()
            .filter_map(|r| r.calls.as_ref().and_then(|c| c.availability))
            .min_by(f64::total_cmp),
        worst_detection_ms: reports
            .iter()
            .flat_map(|r| r.detections.iter())
            .filter_map(|d| d.detected_ms.map(|t| t - d.began_ms))
            .max(),
        worst_recovery_start_ms: reports
            .iter()
            .filter_map(|r| r.recovery.as_ref().and_then(|rec| rec.recovery_start.max_ms))
            .max(),
        worst_restore_ms: reports
            .iter()
            .filter_map(|r| r.recovery.as_ref().and_then(|rec| rec.time_to_restore.max_ms))
            .max(),
        events: reports.iter().map(|r| r.events_processed).sum(),
    }
}
