//! An instance already declared dead when its host crashes counts as
//! detected at once: the detector held it dead for the whole outage.

use vigil_sim::world::OutageKind;

const SCENARIO: &str = r#"
name = "dead-then-crash"
duration = "60s"
seed = 3

[[service]]
name = "web"
instances = 2
heartbeat = { interval = "1s", suspect_after = "3s", dead_after = "5s" }

[[fault]]
at = "10s"
duration = "20s"
kind = "partition"
mode = "isolate"
target = "web/0"

[[fault]]
at = "20s"
duration = "20s"
kind = "crash"
target = "web/0"

[expect]
detected_within = "6s"
no_false_dead = true
alive_at_end = true
"#;

#[test]
fn an_instance_already_dead_when_it_crashes_counts_as_detected() {
    let scenario = vigil_sim::parse(SCENARIO, "dead-then-crash.toml").unwrap_or_else(|e| panic!("{e}"));
    let report = vigil_sim::run(&scenario, scenario.seed);
    // Declared dead during the isolation (by ~15 s), and never alive again
    // until the restart at 40 s.
    assert_eq!(report.verdicts.dead, 1, "{}", report.to_text());
    let crash =
        report.detections.iter().find(|d| d.kind == OutageKind::Crash).expect("the crash is an outage");
    assert!(
        crash.detected_ms.is_some_and(|ms| ms <= crash.began_ms),
        "dead throughout the crash, yet reported as {:?}:\n{}",
        crash.detected_ms,
        report.to_text()
    );
    assert!(report.passed, "{}", report.to_text());
}
