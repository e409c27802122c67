//! `vigil shrink` and the scenario writer it stands on: a failing run with
//! many faults shrinks to the one fault that matters, the result is a valid
//! scenario that still fails the same expectation, and every shipped
//! scenario survives a write and a read unchanged.

mod common;
use common::*;

use std::path::PathBuf;

use proptest::prelude::*;
use vigil_sim::scenario::{self, Scenario, to_toml};
use vigil_sim::shrink::{self, Options, ShrinkError};
use vigil_sim::{Simulation, check};

/// Eight harmless faults (short partitions of other services, clock skews)
/// and one crash of `checkout/2` that heartbeats (dead after 5 s) cannot
/// detect within the 1 s asked for.
const MANY_FAULTS: &str = r#"
name = "many-faults"
duration = "3m"
seed = 7

[[service]]
name = "checkout"
instances = 4

[[service]]
name = "payments"
instances = 3

[[service]]
name = "search"
instances = 2

[[fault]]
at = "10s"
duration = "2s"
kind = "partition"
mode = "isolate"
target = "search/0"

[[fault]]
at = "20s"
duration = "20s"
kind = "clock_skew"
target = "payments/1"
offset = "200ms"

[[fault]]
at = "25s"
duration = "1s"
kind = "partition"
groups = [["payments/0"], ["search/1"]]

[[fault]]
at = "35s"
duration = "30s"
kind = "clock_skew"
target = "search/1"
drift_ppm = 1000

[[fault]]
at = "45s"
duration = "2s"
kind = "partition"
mode = "one_way"
from = "payments/2"
to = "search/0"

[[fault]]
at = "50s"
duration = "40s"
kind = "crash"
target = "checkout/2"

[[fault]]
at = "70s"
duration = "3s"
kind = "partition"
mode = "isolate"
target = "payments/0"

[[fault]]
at = "80s"
duration = "10s"
kind = "clock_skew"
target = "checkout/0"
offset = "-100ms"

[[fault]]
at = "100s"
duration = "2s"
kind = "partition"
mode = "isolate"
target = "search/1"

[expect]
detected_within = "1s"
"#;

fn failing(scenario: &Scenario, seed: u64) -> Vec<String> {
    let mut sim = Simulation::new(scenario, seed);
    sim.run();
    check::evaluate(&sim).into_iter().filter(|o| !o.passed).map(|o| o.name).collect()
}

fn lineless(mut s: Scenario) -> Scenario {
    for f in &mut s.faults {
        f.line = 0;
    }
    s
}

fn options(max_runs: u32) -> Options {
    Options { seed: 7, max_runs, expectation: None }
}

#[test]
fn many_faults_shrink_to_the_crash_that_fails() {
    let original = scenario::parse(MANY_FAULTS, "many").expect("loads");
    assert_eq!(failing(&original, 7), ["detected_within"], "the scenario fails as designed");
    let mut progress = Vec::new();
    let shrunk =
        shrink::shrink(&original, &options(200), &mut |l| progress.push(l.to_string())).expect("shrinks");
    let s = &shrunk.scenario;
    assert_eq!(s.faults.len(), 1, "{}", shrunk.toml);
    assert!(matches!(s.faults[0].action, scenario::FaultAction::Crash(_)), "{}", shrunk.toml);
    assert_eq!((s.services.len(), s.instance_count()), (1, 1), "{}", shrunk.toml);
    assert!(s.duration < original.duration, "{}", shrunk.toml);
    assert_eq!(shrunk.expectation, "detected_within");
    assert!(shrunk.observed.contains(" took "), "detected late, as in the original: {}", shrunk.observed);
    assert!(!shrunk.budget_spent && shrunk.runs <= 200);
    assert!(
        progress.first().is_some_and(|l| l.contains("keeping `detected_within` failing")),
        "{progress:?}"
    );

    // The file (header and all) loads and fails the same expectation.
    let file = shrunk.file("many.toml");
    assert!(file.starts_with("# Shrunk by `vigil shrink` from many.toml with seed 7"), "{file}");
    assert!(file.contains("# Before: 9 fault(s), 3 service(s), 9 instance(s), duration 3m"), "{file}");
    let again = scenario::parse(&file, "shrunk").expect("the shrunk file loads");
    assert_eq!(failing(&again, again.seed), ["detected_within"]);
    assert_eq!(lineless(again.clone()), lineless(s.clone()));
    // Writing it again gives the same text: the round trip holds for
    // shrunk scenarios too.
    assert_eq!(to_toml(&again).expect("writable"), shrunk.toml);
    assert!(
        shrunk.summary().starts_with("faults 9 -> 1, services 3 -> 1, instances 9 -> 1, duration 3m -> ")
    );
}

/// Six faults under recovery; only the full disk on `db/1` defeats it (its
/// policy only restarts, and a restart keeps the disk full).
const RECOVERY_MANY: &str = r#"name = "recovery-many"
duration = "4m"
seed = 7

[[service]]
name = "web"
instances = 3
health = { interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }

[[service]]
name = "api"
instances = 3
health = { interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }

[[service]]
name = "db"
instances = 2
policy = "restart_only"
health = { interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }

[load]
target = "web"
rate = 50
timeout = "1s"

[recovery]
action_timeout = "20s"

[recovery.policies.restart_only]
crashed = ["restart*3"]

[[fault]]
at = "20s"
kind = "crash"
target = "web/0"

[[fault]]
at = "40s"
duration = "30s"
kind = "hang"
target = "api/1"

[[fault]]
at = "60s"
duration = "2m"
kind = "disk_full"
target = "db/1"

[[fault]]
at = "70s"
duration = "20s"
kind = "slow"
target = "web/2"
latency = "50ms"

[[fault]]
at = "90s"
kind = "crash"
target = "api/2"

[[fault]]
at = "100s"
duration = "30s"
kind = "network"
target = "web/1"
latency = "5ms"

[expect]
restored_within = "60s"
"#;

#[test]
fn a_recovery_failure_shrinks_to_the_fault_recovery_cannot_fix() {
    let original = scenario::parse(RECOVERY_MANY, "recovery-many").expect("loads");
    assert_eq!(failing(&original, 7), ["restored_within"], "the scenario fails as designed");
    let shrunk = shrink::shrink(&original, &options(200), &mut |_| {}).expect("shrinks");
    let s = &shrunk.scenario;
    assert_eq!(s.faults.len(), 1, "{}", shrunk.toml);
    assert!(matches!(s.faults[0].action, scenario::FaultAction::DiskFull(_)), "{}", shrunk.toml);
    assert_eq!(s.services.len(), 1, "{}", shrunk.toml);
    assert_eq!(s.services[0].name, "db", "{}", shrunk.toml);
    assert_eq!(s.services[0].policy.as_deref(), Some("restart_only"), "the policy that fails it stays");
    assert!(s.recovery.is_some() && s.duration < original.duration, "{}", shrunk.toml);
    let again = scenario::parse(&shrunk.file("recovery-many.toml"), "shrunk").expect("loads");
    assert_eq!(failing(&again, again.seed), ["restored_within"]);
}

#[test]
fn shrinking_is_deterministic_and_bounded_by_the_run_budget() {
    let original = scenario::parse(MANY_FAULTS, "many").expect("loads");
    let a = shrink::shrink(&original, &options(40), &mut |_| {}).expect("shrinks");
    let b = shrink::shrink(&original, &options(40), &mut |_| {}).expect("shrinks");
    assert_eq!((a.toml.as_str(), a.runs), (b.toml.as_str(), b.runs));
    let tight = shrink::shrink(&original, &options(4), &mut |_| {}).expect("shrinks");
    assert!(tight.runs <= 4 && tight.budget_spent, "{} runs", tight.runs);
    let loaded = scenario::parse(&tight.toml, "tight").expect("loads");
    assert_eq!(failing(&loaded, 7), ["detected_within"], "whatever is kept still fails");
}

#[test]
fn a_named_expectation_that_passes_is_refused() {
    let original = scenario::parse(MANY_FAULTS, "many").expect("loads");
    let opts = Options { expectation: Some("completes".into()), ..options(10) };
    match shrink::shrink(&original, &opts, &mut |_| {}) {
        Err(ShrinkError::NotFailing { name, failing, .. }) => {
            assert_eq!((name.as_str(), failing), ("completes", vec!["detected_within".to_string()]));
        }
        other => panic!("expected NotFailing, got {other:?}"),
    }
    let opts = Options { expectation: Some("availability".into()), ..options(10) };
    assert!(matches!(
        shrink::shrink(&original, &opts, &mut |_| {}),
        Err(ShrinkError::UnknownExpectation { known, .. }) if known == ["completes", "detected_within"]
    ));
}

#[test]
fn cli_writes_the_shrunk_scenario_and_prints_how_much_smaller() {
    let input = TempFile::new("many.toml", MANY_FAULTS);
    let output = TempFile::path_only("many-shrunk.toml");
    let out = vigil(&["shrink", &input.path(), "--seed", "7", "-o", &output.path(), "--max-runs", "200"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("faults 9 -> 1, services 3 -> 1, instances 9 -> 1, duration 3m -> "),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("shrink: faults: faults 1"),
        "progress on stderr: {}",
        text(&out.stderr)
    );
    let run = vigil(&["run", &output.path()]);
    assert_eq!(code(&run), 1, "the shrunk file fails: {}", text(&run.stdout));
    assert!(text(&run.stdout).contains("FAIL detected_within"), "{}", text(&run.stdout));

    // Without -o the scenario goes to stdout (valid TOML), the summary to stderr.
    let out = vigil(&["shrink", &input.path(), "--max-runs", "200"]);
    assert_eq!(code(&out), 0);
    assert!(scenario::parse(&text(&out.stdout), "stdout").is_ok(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("faults 9 -> 1"), "{}", text(&out.stderr));
}

#[test]
fn cli_shrink_of_a_passing_run_exits_1_with_a_message() {
    let passing = scenarios_dir().join("instance-crash.toml");
    let out = vigil(&["shrink", &passing.display().to_string(), "--seed", "42"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("passes with seed 42: nothing to shrink"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn cli_shrink_of_a_bad_file_exits_2() {
    let bad = TempFile::new("bad.toml", "name = \"x\"\nduration = 30\n");
    let out = vigil(&["shrink", &bad.path()]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bad.toml:2:"), "{}", text(&out.stderr));
    let many = TempFile::new("many-expect.toml", MANY_FAULTS);
    let out = vigil(&["shrink", &many.path(), "--expect", "availability"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("states no expectation `availability`"), "{}", text(&out.stderr));
}

#[test]
fn every_shipped_scenario_round_trips_through_the_writer() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ is readable")
        .map(|e| e.expect("lists").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let original = scenario::load_file(&file).expect("shipped scenarios load");
        let written = to_toml(&original).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let again = scenario::parse(&written, "written")
            .unwrap_or_else(|e| panic!("{} written back does not load: {e}\n{written}", file.display()));
        assert_eq!(lineless(again), lineless(original), "{} changed:\n{written}", file.display());
    }
}

fn shipped() -> Vec<Scenario> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ is readable")
        .map(|e| e.expect("lists").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.iter().map(|f| scenario::load_file(f).expect("loads")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// What the shrinker makes of a shipped scenario (fewer faults, fewer
    /// instances or services, faults moved, shorter durations) writes and
    /// reads back unchanged, or is a candidate the loader refuses.
    #[test]
    fn shrunk_variants_of_shipped_scenarios_round_trip(
        pick in 0usize..64,
        keep in proptest::collection::vec(any::<bool>(), 16),
        counts in proptest::collection::vec(0u32..8, 8),
        shift_secs in 0u64..40,
        scale in 1u64..=4,
    ) {
        let all = shipped();
        let base = &all[pick % all.len()];
        let mut s = base.clone();
        s.faults = s.faults.iter().enumerate().filter(|(i, _)| keep[i % keep.len()]).map(|(_, f)| f.clone()).collect();
        let counts: Vec<Option<u32>> = s
            .services
            .iter()
            .enumerate()
            .map(|(i, svc)| match counts[i % counts.len()] {
                0 => None,
                c => Some(c.min(svc.instances)),
            })
            .collect();
        let Some(mut s) = shrink::resize(&s, &counts) else { return Ok(()) };
        for f in &mut s.faults {
            f.at = f.at.saturating_sub(vigil_core::Duration::from_secs(shift_secs));
            f.duration = f.duration.map(|d| (d / scale as u32).max(vigil_core::Duration::from_millis(1)));
        }
        // Still a valid scenario: the run outlasts every fault's start and
        // the load's.
        let second = vigil_core::Duration::from_secs(1);
        let floor = s.faults.iter().map(|f| f.at + second).chain(s.load.as_ref().map(|l| l.start + second)).max();
        s.duration = (s.duration / scale as u32).max(floor.unwrap_or(second));
        // And `forged_frames_dropped` needs its `forge` fault (the
        // shrinker skips a candidate without it: the loader refuses it).
        if !s.faults.iter().any(|f| matches!(f.action, scenario::FaultAction::Forge { .. })) {
            s.expect.forged_frames_dropped = false;
        }
        let written = to_toml(&s).expect("every shrunk variant has a file form");
        let again = scenario::parse(&written, "variant").map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
        prop_assert_eq!(lineless(again), lineless(s), "{}", written);
    }
}

/// The crash that fails is of `checkout/5`, in a zoned service, while load
/// goes to another service and a zone partition muddies the water.
const RETARGET: &str = r#"
name = "retarget"
duration = "2m"
seed = 1

[[service]]
name = "front"
instances = 2

[[service]]
name = "checkout"
instances = 6
zones = ["a", "b", "c"]

[load]
target = "front"
rate = 20

[[fault]]
at = "40s"
duration = "30s"
kind = "crash"
target = "checkout/5"

[[fault]]
at = "50s"
duration = "2s"
kind = "partition"
groups = [["zone:a"], ["zone:b"]]

[expect]
detected_within = "2s"
"#;

#[test]
fn shrink_drops_load_zones_and_other_services_and_renumbers_the_crashed_instance() {
    let original = scenario::parse(RETARGET, "retarget").expect("loads");
    let shrunk =
        shrink::shrink(&original, &Options { seed: 1, max_runs: 100, expectation: None }, &mut |_| {})
            .expect("shrinks");
    let s = &shrunk.scenario;
    assert!(s.load.is_none(), "{}", shrunk.toml);
    assert_eq!(s.services.len(), 1, "{}", shrunk.toml);
    assert_eq!((s.services[0].name.as_str(), s.services[0].instances), ("checkout", 1), "{}", shrunk.toml);
    assert!(s.services[0].zones.is_empty(), "{}", shrunk.toml);
    assert!(shrunk.toml.contains("kind = \"crash\"\ntarget = \"checkout/0\""), "{}", shrunk.toml);
    assert!(s.faults[0].at < original.faults[0].at, "moved earlier: {}", shrunk.toml);
    assert!(s.faults[0].at >= vigil_core::Duration::from_secs(5), "not into the warm-up: {}", shrunk.toml);
    assert!(s.duration <= vigil_core::Duration::from_secs(30), "{}", shrunk.toml);
    assert_eq!(failing(s, 1), ["detected_within"]);
}
