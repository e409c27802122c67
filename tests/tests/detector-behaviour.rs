//! What the failure detector does under each kind of fault, as a user would
//! check it: from the report and the verdicts the control node published.
//!
//! Every scenario here is written inline. The fleet is the same throughout
//! (see [`FLEET`]): heartbeats every 1 s, suspect after 3 s of silence, dead
//! after 5 s, one-way latency 1–5 ms, and a detector that rounds deadlines up
//! to 10 ms.

use vigil_core::InstanceId;
use vigil_core::health::Liveness;
use vigil_sim::world::{HostState, OutageKind, Verdict};
use vigil_sim::{Report, Scenario, Simulation};

/// Three `web` instances (`web/0..2`, instances 0–2) and two `db` instances
/// (`db/0..1`, instances 3–4), all with the same heartbeat timing.
const FLEET: &str = r#"
duration = "60s"
seed = 11

[[service]]
name = "web"
instances = 3
heartbeat = { interval = "1s", suspect_after = "3s", dead_after = "5s" }

[[service]]
name = "db"
instances = 2
heartbeat = { interval = "1s", suspect_after = "3s", dead_after = "5s" }
"#;

const INSTANCES: u32 = 5;
const DEAD_AFTER_MS: u64 = 5_000;
const INTERVAL_MS: u64 = 1_000;
/// Largest one-way latency (1–5 ms) plus the detector's 10 ms resolution.
const SLACK_MS: u64 = 5 + 10;

/// A finished run, kept after the simulation is gone.
struct Outcome {
    report: Report,
    verdicts: Vec<Verdict>,
    /// Each instance's verdict in the control node's view at the end
    /// (`None` if the control node is down or never registered it).
    final_status: Vec<Option<Liveness>>,
    /// Each node's host state at the end; node 0 is the control node.
    host: Vec<HostState>,
}

impl Outcome {
    /// `(ms, from, to)` of every verdict change of `instance`, in order.
    fn changes(&self, instance: u32) -> Vec<(u64, Liveness, Liveness)> {
        self.verdicts
            .iter()
            .filter(|v| v.instance == InstanceId(instance))
            .map(|v| (v.at.as_millis(), v.from, v.to))
            .collect()
    }

    /// Changes of `instance` to `to` at or after `from_ms`.
    fn to_after(&self, instance: u32, to: Liveness, from_ms: u64) -> Vec<u64> {
        self.changes(instance)
            .into_iter()
            .filter(|&(at, _, t)| t == to && at >= from_ms)
            .map(|c| c.0)
            .collect()
    }

    fn expectation(&self, name: &str) -> &vigil_sim::check::ExpectationOutcome {
        self.report
            .expectations
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no `{name}` in the report:\n{}", self.report.to_text()))
    }
}

/// Parse `name` + [`FLEET`] + `rest` and run it on the file's seed.
fn run(name: &str, rest: &str) -> Outcome {
    run_with(name, "", rest)
}

/// [`run`], with `top` among the top-level keys (before any table).
fn run_with(name: &str, top: &str, rest: &str) -> Outcome {
    let source = format!("name = \"{name}\"\n{top}\n{FLEET}\n{rest}");
    let scenario: Scenario =
        vigil_sim::parse(&source, &format!("{name}.toml")).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = Simulation::new(&scenario, scenario.seed);
    sim.run();
    let report = Report::new(&sim, scenario.seed, 0);
    let final_status = (0..scenario.instance_count())
        .map(|i| sim.control().and_then(|c| c.detector().instance(InstanceId(i))).map(|s| s.status))
        .collect();
    let host = (0..scenario.node_count()).map(|n| sim.host_state(vigil_core::NodeId(n))).collect();
    Outcome { report, verdicts: sim.observations().verdicts.clone(), final_status, host }
}

/// The node of fleet instance `i`.
fn node(i: u32) -> usize {
    i as usize + 1
}

#[test]
fn a_crashed_instance_never_restarted_is_declared_dead_and_stays_dead() {
    let out = run(
        "crash-forever",
        r#"
        [[fault]]
        at = "10s"
        kind = "crash"
        target = "web/0"

        [expect]
        detected_within = "6s"
        no_false_dead = true
        alive_at_end = true
        "#,
    );
    // Its last heartbeat left at most one interval before the crash.
    let dead = out.to_after(0, Liveness::Dead, 10_000);
    assert_eq!(dead.len(), 1, "declared dead once: {:?}", out.changes(0));
    let dead = dead[0];
    assert!(dead > 10_000 + DEAD_AFTER_MS - INTERVAL_MS, "dead at {dead} ms: too early");
    assert!(dead <= 10_000 + DEAD_AFTER_MS + SLACK_MS, "dead at {dead} ms: too late");
    assert!(out.to_after(0, Liveness::Alive, 10_000).is_empty(), "came back to life: {:?}", out.changes(0));
    assert_eq!(out.final_status[0], Some(Liveness::Dead));
    assert_eq!(out.host[node(0)], HostState::Down);

    // The report names the outage, its detection, and no return.
    assert_eq!(out.report.detections.len(), 1);
    let d = &out.report.detections[0];
    assert_eq!(
        (d.instance.as_str(), d.kind, d.began_ms, d.ended_ms),
        ("web/0", OutageKind::Crash, 10_000, None)
    );
    assert_eq!(d.detected_ms, Some(dead));
    let text = out.report.to_text();
    assert!(text.lines().any(|l| l.trim_start().starts_with("web/0") && l.contains("dead after")), "{text}");

    // Nobody else is touched, and the down instance is not held against
    // `alive_at_end`: the run passes.
    for i in 1..INSTANCES {
        assert_eq!(out.changes(i).len(), 1, "instance {i}: {:?}", out.changes(i));
        assert_eq!(out.final_status[i as usize], Some(Liveness::Alive));
    }
    assert!(out.report.passed, "{}", out.report.to_text());
    assert!(out.expectation("alive_at_end").observed.contains("all 4 running"), "{text}");
}

#[test]
fn an_explicit_restart_brings_a_crashed_instance_back() {
    let out = run(
        "crash-then-restart",
        r#"
        [[fault]]
        at = "10s"
        kind = "crash"
        target = "db/1"

        [[fault]]
        at = "30s"
        kind = "restart"
        target = "db/1"

        [expect]
        alive_at_end = true
        "#,
    );
    let instance = 4;
    assert_eq!(out.to_after(instance, Liveness::Dead, 10_000).len(), 1, "{:?}", out.changes(instance));
    let alive = out.to_after(instance, Liveness::Alive, 30_000);
    assert_eq!(alive.len(), 1, "{:?}", out.changes(instance));
    // A booting agent beats within one interval.
    assert!(alive[0] <= 30_000 + INTERVAL_MS + SLACK_MS, "alive again at {} ms", alive[0]);
    assert_eq!(out.report.detections[0].ended_ms, Some(30_000));
    assert_eq!(out.host[node(instance)], HostState::Up);
    assert!(out.report.passed, "{}", out.report.to_text());
}

#[test]
fn a_paused_instance_is_declared_dead_and_alive_again_as_soon_as_it_resumes() {
    let out = run(
        "pause-instance",
        r#"
        [[fault]]
        at = "10s"
        duration = "10s"
        kind = "pause"
        target = "web/1"

        [expect]
        detected_within = "6s"
        no_false_dead = true
        alive_at_end = true
        "#,
    );
    let dead = out.to_after(1, Liveness::Dead, 10_000);
    assert_eq!(dead.len(), 1, "{:?}", out.changes(1));
    assert!(dead[0] <= 10_000 + DEAD_AFTER_MS + SLACK_MS, "dead at {} ms", dead[0]);
    // On resume the agent sends the beat it owes at once (no wait for the
    // next interval), so the control node hears it within one latency.
    let alive = out.to_after(1, Liveness::Alive, 20_000);
    assert_eq!(alive.len(), 1, "{:?}", out.changes(1));
    assert!(alive[0] <= 20_000 + SLACK_MS, "alive again only at {} ms", alive[0]);

    let d = &out.report.detections[0];
    assert_eq!((d.kind, d.began_ms, d.ended_ms), (OutageKind::Pause, 10_000, Some(20_000)));
    assert_eq!(out.final_status[1], Some(Liveness::Alive));
    assert!(out.report.passed, "{}", out.report.to_text());
}

#[test]
fn a_paused_control_node_gets_the_held_heartbeats_on_resume_and_accuses_no_one() {
    let out = run(
        "pause-control",
        r#"
        [[fault]]
        at = "10s"
        duration = "10s"
        kind = "pause"
        target = "control"

        [expect]
        alive_at_end = true
        "#,
    );
    // The heartbeats sent during the pause wait for the control node and
    // arrive on resume, before its overdue timers fire.
    let n = out.report.network;
    assert_eq!(n.delivered, n.sent, "messages were dropped: {n:?}");
    for i in 0..INSTANCES {
        let kinds: Vec<(Liveness, Liveness)> = out.changes(i).iter().map(|&(_, f, t)| (f, t)).collect();
        assert_eq!(
            kinds,
            [(Liveness::Unknown, Liveness::Alive)],
            "instance {i} changed verdict around the pause: {:?}",
            out.changes(i)
        );
    }
    assert!(out.report.passed, "{}", out.report.to_text());
}

#[test]
fn an_isolated_control_node_declares_every_instance_dead_then_alive_after_the_heal() {
    let out = run(
        "isolate-control",
        r#"
        [[fault]]
        at = "10s"
        duration = "10s"
        kind = "partition"
        mode = "isolate"
        target = "control"

        [expect]
        no_false_dead = true
        alive_at_end = true
        "#,
    );
    for i in 0..INSTANCES {
        let dead = out.to_after(i, Liveness::Dead, 10_000);
        assert_eq!(dead.len(), 1, "instance {i}: {:?}", out.changes(i));
        assert!(dead[0] <= 10_000 + DEAD_AFTER_MS + SLACK_MS, "instance {i} dead at {} ms", dead[0]);
        let alive = out.to_after(i, Liveness::Alive, 20_000);
        assert_eq!(alive.len(), 1, "instance {i}: {:?}", out.changes(i));
        assert!(alive[0] <= 20_000 + INTERVAL_MS + SLACK_MS, "instance {i} alive at {} ms", alive[0]);
        assert_eq!(out.final_status[i as usize], Some(Liveness::Alive));
    }
    let f = &out.report.faults[0];
    assert_eq!((f.began_ms, f.ended_ms), (Some(10_000), Some(20_000)));
    assert!(out.report.network.partitioned > 0);
    assert!(out.report.detections.is_empty(), "a partition is no outage of a host");
    // Every dead verdict falls in the fault's window: the checker agrees.
    assert!(out.report.passed, "{}", out.report.to_text());
}

/// Isolate the control node at 10 s; heal per `heal` (a fault table or a
/// `duration`), with the network's `stability` time.
fn short_partition(name: &str, stability: &str, heal: &str) -> Outcome {
    run(
        name,
        &format!(
            r#"
            [network]
            stability = "{stability}"

            [[fault]]
            at = "10s"
            kind = "partition"
            mode = "isolate"
            target = "control"
            {heal}
            "#
        ),
    )
}

#[test]
fn a_partition_that_heals_before_its_stability_time_lasts_until_then() {
    // Asked to last 2 s, too short to get anyone declared dead; stability
    // keeps it 10 s, long enough.
    let out = short_partition("stable-partition", "10s", "duration = \"2s\"");
    let f = &out.report.faults[0];
    assert_eq!((f.began_ms, f.ended_ms), (Some(10_000), Some(20_000)), "{}", out.report.to_text());
    for i in 0..INSTANCES {
        assert_eq!(out.to_after(i, Liveness::Dead, 10_000).len(), 1, "instance {i}: {:?}", out.changes(i));
        assert!(out.to_after(i, Liveness::Alive, 20_000).len() == 1, "instance {i}: {:?}", out.changes(i));
    }

    // Control: the same partition without stability ends when asked to,
    // before anyone can be declared dead.
    let out = short_partition("unstable-partition", "0s", "duration = \"2s\"");
    let f = &out.report.faults[0];
    assert_eq!((f.began_ms, f.ended_ms), (Some(10_000), Some(12_000)));
    assert_eq!(out.report.verdicts.dead, 0, "{}", out.report.to_text());
}

#[test]
fn an_explicit_heal_before_the_stability_time_is_deferred_until_then() {
    let heal = r#"
            [[fault]]
            at = "12s"
            kind = "heal"
    "#;
    let out = short_partition("stable-heal", "10s", heal);
    let partition = &out.report.faults[0];
    assert_eq!(
        (partition.began_ms, partition.ended_ms),
        (Some(10_000), Some(20_000)),
        "{}",
        out.report.to_text()
    );
    for i in 0..INSTANCES {
        assert_eq!(out.to_after(i, Liveness::Dead, 10_000).len(), 1, "instance {i}: {:?}", out.changes(i));
    }
}

#[test]
fn a_one_way_partition_blocks_only_the_direction_it_names() {
    // Heartbeats flow from instances to the control node: cutting the
    // other direction changes nothing.
    let harmless = run(
        "one-way-from-control",
        r#"
        [[fault]]
        at = "10s"
        duration = "20s"
        kind = "partition"
        mode = "one_way"
        from = ["control"]
        to = ["web/*"]
        "#,
    );
    assert_eq!(
        harmless.report.verdicts.suspect + harmless.report.verdicts.dead,
        0,
        "{}",
        harmless.report.to_text()
    );

    let harmful = run(
        "one-way-to-control",
        r#"
        [[fault]]
        at = "10s"
        duration = "20s"
        kind = "partition"
        mode = "one_way"
        from = ["web/*"]
        to = ["control"]
        "#,
    );
    for i in 0..3 {
        assert_eq!(harmful.to_after(i, Liveness::Dead, 10_000).len(), 1, "web/{i}: {:?}", harmful.changes(i));
    }
    for i in 3..INSTANCES {
        assert_eq!(harmful.changes(i).len(), 1, "db instance {i} was touched: {:?}", harmful.changes(i));
    }
}

#[test]
fn a_restarted_control_node_rebuilds_its_view_from_heartbeats() {
    let out = run(
        "control-crash",
        r#"
        [[fault]]
        at = "10s"
        duration = "5s"
        kind = "crash"
        target = "control"

        [expect]
        no_false_dead = true
        alive_at_end = true
        "#,
    );
    for i in 0..INSTANCES {
        // Known from the start, forgotten in the crash, learnt again: the
        // fresh control node starts every instance at `unknown`.
        let from_unknown: Vec<u64> = out
            .changes(i)
            .into_iter()
            .filter(|&(_, from, to)| from == Liveness::Unknown && to == Liveness::Alive)
            .map(|c| c.0)
            .collect();
        assert_eq!(from_unknown.len(), 2, "instance {i}: {:?}", out.changes(i));
        assert!(from_unknown[0] < 10_000);
        assert!(
            (15_000..=15_000 + INTERVAL_MS + SLACK_MS).contains(&from_unknown[1]),
            "instance {i} known again only at {} ms",
            from_unknown[1]
        );
        assert_eq!(out.final_status[i as usize], Some(Liveness::Alive));
    }
    assert_eq!(out.report.verdicts.dead, 0, "{}", out.report.to_text());
    assert!(out.report.network.host_down > 0, "heartbeats to the crashed control node are dropped");
    assert_eq!(out.host[0], HostState::Up);
    assert!(out.report.passed, "{}", out.report.to_text());
}

#[test]
fn a_control_node_that_stays_down_fails_alive_at_end() {
    let out = run(
        "control-gone",
        r#"
        [[fault]]
        at = "10s"
        kind = "crash"
        target = "control"

        [expect]
        alive_at_end = true
        "#,
    );
    assert_eq!(out.host[0], HostState::Down);
    assert!(out.final_status.iter().all(Option::is_none));
    let alive = out.expectation("alive_at_end");
    assert!(!alive.passed, "{}", out.report.to_text());
    assert!(alive.observed.contains("control node is not running"), "{}", alive.observed);
    assert!(!out.report.passed);
}

#[test]
fn a_paused_instance_that_crashes_has_a_pause_then_a_crash_and_stays_down() {
    let out = run(
        "pause-then-crash",
        r#"
        [[fault]]
        at = "10s"
        duration = "20s"
        kind = "pause"
        target = "web/2"

        [[fault]]
        at = "12s"
        kind = "crash"
        target = "web/2"
        "#,
    );
    let outages: Vec<(OutageKind, u64, Option<u64>)> =
        out.report.detections.iter().map(|d| (d.kind, d.began_ms, d.ended_ms)).collect();
    assert_eq!(outages, [(OutageKind::Pause, 10_000, Some(12_000)), (OutageKind::Crash, 12_000, None)]);
    // The resume at 30 s finds a crashed host and leaves it down.
    assert_eq!(out.host[node(2)], HostState::Down);
    assert!(out.to_after(2, Liveness::Alive, 10_000).is_empty(), "{:?}", out.changes(2));
    assert_eq!(out.final_status[2], Some(Liveness::Dead));
}

#[test]
fn a_tiny_step_budget_fails_completes_and_the_run() {
    let out = run_with("tiny-budget", "max_events = 25", "");
    let completes = out.expectation("completes");
    assert!(!completes.passed);
    assert!(completes.observed.contains("step budget spent"), "{}", completes.observed);
    assert!(!out.report.passed);
    assert_eq!(out.report.events_processed, 25);
    assert!(out.report.simulated_ms < 60_000, "stopped early, at {} ms", out.report.simulated_ms);
    assert!(out.report.to_text().contains("result    FAILED"));
}

#[test]
fn total_loss_gets_everyone_declared_dead_and_no_false_dead_catches_it() {
    // Nothing ever arrives, and no fault explains it: this must fail.
    let out = run(
        "total-loss",
        r#"
        [network]
        loss = 1.0

        [expect]
        no_false_dead = true
        alive_at_end = true
        "#,
    );
    for i in 0..INSTANCES {
        let changes = out.changes(i);
        let kinds: Vec<(Liveness, Liveness)> = changes.iter().map(|&(_, f, t)| (f, t)).collect();
        assert_eq!(
            kinds,
            [(Liveness::Unknown, Liveness::Suspect), (Liveness::Suspect, Liveness::Dead)],
            "instance {i}"
        );
        // Registered at 0 and never heard from.
        assert!(changes[1].0 <= DEAD_AFTER_MS + SLACK_MS, "instance {i} dead only at {} ms", changes[1].0);
    }
    let n = out.report.network;
    assert_eq!(n.delivered, 0);
    assert!(n.sent > 0 && n.lost == n.sent, "{n:?}");
    assert!(out.report.detections.is_empty(), "no host went down");
    assert!(!out.expectation("no_false_dead").passed, "{}", out.report.to_text());
    assert!(!out.expectation("alive_at_end").passed, "{}", out.report.to_text());
    assert!(!out.report.passed);
}

#[test]
fn overlapping_application_faults_nest() {
    // web/0 fails everything from 20 s to 50 s; a milder errors fault in the
    // middle ends at 30 s. The outer fault is still in force after that: the
    // instance must not look healthy again before 50 s.
    let src = r#"
name = "nested-errors"
duration = "80s"
seed = 4

[[service]]
name = "web"
instances = 3
health = { interval = "500ms", timeout = "300ms", failure_threshold = 2, success_threshold = 2 }

[[fault]]
at = "20s"
duration = "30s"
kind = "errors"
target = "web/0"
rate = 1.0

[[fault]]
at = "25s"
duration = "5s"
kind = "errors"
target = "web/0"
rate = 0.2
"#;
    let scenario = vigil_sim::parse(src, "nested-errors.toml").expect("valid scenario");
    let mut sim = vigil_sim::Simulation::new(&scenario, scenario.seed);
    sim.run();
    let healthy_again: Vec<_> = sim
        .observations()
        .monitor
        .iter()
        .filter(|m| m.instance.0 == 0)
        .filter_map(|m| match m.change {
            vigil_sim::world::MonitorChange::Status {
                to: vigil_core::health::HealthStatus::Healthy, ..
            } => Some(m.at),
            _ => None,
        })
        .collect();
    let second = vigil_core::Instant::from_secs;
    assert!(
        healthy_again.iter().all(|&t| t < second(21) || t > second(50)),
        "web/0 looked healthy while still failing everything: {healthy_again:?}"
    );
    assert!(healthy_again.iter().any(|&t| t > second(50)), "and healthy once the faults are over");
}
