//! A run is a pure function of `(scenario, seed)`: for every scenario that
//! ships in `scenarios/`, the same seed gives the same trace and report, and
//! different seeds give different traces.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_sim::{Report, Scenario, Simulation};
use vigil_tests::{display_path, scenario_files};

/// Seeds whose traces must all differ from one another.
const DISTINCT_SEEDS: std::ops::Range<u64> = 0..5;

fn load(file: &Path) -> Scenario {
    vigil_sim::load_file(file).unwrap_or_else(|e| panic!("{e}"))
}

/// The report with the one non-deterministic figure zeroed.
fn deterministic_part(mut report: Report) -> Report {
    report.wall_ms = 0;
    report
}

#[test]
fn scenario_discovery_finds_the_shipped_scenarios() {
    let names: Vec<String> = scenario_files().iter().map(|f| display_path(f)).collect();
    for expected in [
        "scenarios/instance-crash.toml",
        "scenarios/one-way-partition.toml",
        "scenarios/paused-host-clock-skew.toml",
        "scenarios/symmetric-partition.toml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} not discovered; found {names:?}");
    }
}

#[test]
fn same_seed_twice_gives_identical_trace_hash_and_report() {
    for file in scenario_files() {
        let scenario = load(&file);
        let first = deterministic_part(vigil_sim::run(&scenario, scenario.seed));
        let second = deterministic_part(vigil_sim::run(&scenario, scenario.seed));
        assert!(first.events_processed > 0, "{}: the run processed no event", display_path(&file));
        assert_eq!(first.trace_hash, second.trace_hash, "{}: trace hash differs", display_path(&file));
        assert_eq!(first, second, "{}: report differs between two runs of one seed", display_path(&file));
        assert_eq!(first.to_text(), second.to_text(), "{}", display_path(&file));
    }
}

#[test]
fn check_determinism_is_ok_and_agrees_with_a_plain_run() {
    for file in scenario_files() {
        let scenario = load(&file);
        let checked = vigil_sim::check_determinism(&scenario, scenario.seed)
            .unwrap_or_else(|d| panic!("{}: runs diverged: {d:?}", display_path(&file)));
        // Recording the per-event history must not change the run itself.
        let plain = vigil_sim::run(&scenario, scenario.seed);
        assert_eq!(
            deterministic_part(checked),
            deterministic_part(plain),
            "{}: check_determinism's report differs from run's",
            display_path(&file)
        );
    }
}

#[test]
fn writing_a_timeline_does_not_change_the_run() {
    for file in scenario_files() {
        let scenario = load(&file);
        let plain = vigil_sim::run(&scenario, scenario.seed);
        let mut timeline = Vec::new();
        let report = {
            let mut sim = Simulation::new(&scenario, scenario.seed).with_timeline(Box::new(&mut timeline));
            sim.run();
            Report::new(&sim, scenario.seed, 0)
        };
        assert!(!timeline.is_empty(), "{}: empty timeline", display_path(&file));
        assert_eq!(report, plain, "{}: a timeline changed the run", display_path(&file));
    }
}

#[test]
fn different_seeds_give_pairwise_different_trace_hashes() {
    for file in scenario_files() {
        let scenario = load(&file);
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for seed in DISTINCT_SEEDS {
            let report = vigil_sim::run(&scenario, seed);
            assert_eq!(report.seed, seed);
            if let Some(other) = seen.insert(report.trace_hash.clone(), seed) {
                panic!(
                    "{}: seeds {other} and {seed} share trace hash {}",
                    display_path(&file),
                    report.trace_hash
                );
            }
        }
    }
}

#[test]
fn every_scenario_passes_on_its_default_seed() {
    for file in scenario_files() {
        let scenario = load(&file);
        let report = vigil_sim::run(&scenario, scenario.seed);
        assert!(
            report.passed,
            "{} fails on its default seed {}:\n{}",
            display_path(&file),
            scenario.seed,
            report.to_text()
        );
    }
}
