//! Reports and timelines are stable text: snapshots pin them, so any change
//! in behaviour (or in the format users read) shows up as a diff.
//!
//! After an intended change, review and accept with
//! `INSTA_UPDATE=always cargo test -p vigil-tests --test report-snapshot`
//! (or `cargo insta review`).

use vigil_sim::{Report, Scenario, Simulation};
use vigil_tests::{display_path, scenario_files, scenarios_dir};

/// Lines of the timeline's start that are pinned.
const TIMELINE_HEAD: usize = 40;

fn load(name: &str) -> Scenario {
    vigil_sim::load_file(&scenarios_dir().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn timeline(scenario: &Scenario, seed: u64) -> (String, Report) {
    let mut out = Vec::new();
    let report = {
        let mut sim = Simulation::new(scenario, seed).with_timeline(Box::new(&mut out));
        sim.run();
        assert!(sim.timeline_error().is_none(), "writing to a Vec cannot fail");
        Report::new(&sim, seed, 0)
    };
    (String::from_utf8(out).expect("the timeline is UTF-8"), report)
}

#[test]
fn instance_crash_report() {
    let scenario = load("instance-crash.toml");
    let report = vigil_sim::run(&scenario, scenario.seed);
    insta::assert_snapshot!("instance-crash-report", report.to_text());
}

#[test]
fn paused_host_clock_skew_report() {
    let scenario = load("paused-host-clock-skew.toml");
    let report = vigil_sim::run(&scenario, scenario.seed);
    insta::assert_snapshot!("paused-host-clock-skew-report", report.to_text());
}

#[test]
fn crash_and_restart_report() {
    // The recovery section: verdict, percentiles, and the fault's story.
    let scenario = load("crash-and-restart.toml");
    let report = vigil_sim::run(&scenario, scenario.seed);
    insta::assert_snapshot!("crash-and-restart-report", report.to_text());
}

#[test]
fn crash_loop_escalation_replay_of_recovery() {
    // What `vigil replay --filter recovery` shows: the ladder climbing
    // from restarts to a replacement to a human.
    let scenario = load("crash-loop-escalation.toml");
    let mut sim = Simulation::new(&scenario, scenario.seed);
    sim.run();
    let filter = vigil_sim::replay::Filter {
        kinds: Some(vec![vigil_sim::replay::Kind::Recovery]),
        ..vigil_sim::replay::Filter::default()
    };
    let (text, _) = vigil_sim::replay::render(&sim, scenario.seed, &filter);
    insta::assert_snapshot!("crash-loop-escalation-replay-recovery", text);
}

#[test]
fn report_text_contains_no_wall_clock_figure() {
    // A distinctive wall time: if the text form showed it, it would show up.
    const WALL_MS: u64 = 987_654_321;
    for file in scenario_files() {
        let scenario = vigil_sim::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let mut report = vigil_sim::run(&scenario, scenario.seed);
        let without = report.to_text();
        report.wall_ms = WALL_MS;
        let with = report.to_text();
        assert_eq!(without, with, "{}: the text report depends on wall_ms", display_path(&file));
        assert!(!with.contains("987654321") && !with.contains("987654.321"), "{}", display_path(&file));
        assert!(
            !with.to_lowercase().contains("wall"),
            "{}: text mentions wall time:\n{with}",
            display_path(&file)
        );
    }
}

#[test]
fn instance_crash_timeline_head() {
    let scenario = load("instance-crash.toml");
    let (text, _) = timeline(&scenario, scenario.seed);
    let head: Vec<&str> = text.lines().take(TIMELINE_HEAD).collect();
    assert_eq!(head.len(), TIMELINE_HEAD, "the timeline is shorter than {TIMELINE_HEAD} lines");
    insta::assert_snapshot!("instance-crash-timeline-head", head.join("\n"));
}

/// The fault and verdict lines of the whole run: the part of a timeline an
/// operator reads first when a scenario fails.
#[test]
fn instance_crash_timeline_faults_and_verdicts() {
    let scenario = load("instance-crash.toml");
    let (text, report) = timeline(&scenario, scenario.seed);
    let lines: Vec<&str> =
        text.lines().filter(|l| l.contains(" fault#") || l.contains(" verdict ")).collect();
    let verdicts = report.verdicts.alive + report.verdicts.suspect + report.verdicts.dead;
    let verdict_lines = lines.iter().filter(|l| l.contains(" verdict ")).count() as u64;
    assert_eq!(verdict_lines, verdicts, "every verdict change appears once in the timeline");
    insta::assert_snapshot!("instance-crash-timeline-faults-and-verdicts", lines.join("\n"));
}
