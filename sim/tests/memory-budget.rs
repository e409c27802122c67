//! The memory budget (`max_pending_events`): a valid file whose heartbeats
//! outpace the network latency halts with a clear message instead of
//! filling memory (it reached 5.5 GB in 35 s before the budget), and a
//! normal scenario never comes near it.

use vigil_sim::{load_file, parse, run};

/// The ten-line file of issue 14: a heartbeat every nanosecond over a
/// network that takes a second, so every heartbeat is still in flight
/// when the next thousands are sent.
fn flood(budget: &str) -> String {
    format!(
        "name = \"heartbeat-flood\"\nduration = \"1m\"\n{budget}\n\n[network]\n\
         latency = {{ kind = \"uniform\", min = \"1s\", max = \"1s\" }}\n\n\
         [[service]]\nname = \"svc\"\ninstances = 1\nheartbeat = {{ interval = \"1ns\" }}\n"
    )
}

#[test]
fn a_heartbeat_flood_halts_on_the_memory_budget() {
    let scenario = parse(&flood("max_pending_events = 20000"), "flood.toml").expect("a valid file");
    let report = run(&scenario, 1);
    assert!(!report.passed);
    let completes = report.expectations.iter().find(|e| e.name == "completes").expect("always checked");
    assert!(!completes.passed);
    for words in
        ["20001 events pending", "MB", "the memory budget `max_pending_events`", "heartbeat interval"]
    {
        assert!(completes.observed.contains(words), "`{}` lacks `{words}`", completes.observed);
    }
    // It stopped at the budget: long before the first heartbeat could
    // arrive, having processed about as many events as it queued.
    assert!(report.simulated_ms < 1000, "ran to {} ms", report.simulated_ms);
    assert!(report.events_processed < 100_000, "{} events", report.events_processed);
}

#[test]
fn the_default_budget_leaves_normal_scenarios_alone() {
    // A paused host holds messages (they count as pending): the budget
    // must not bite on it, nor on a crash and restart.
    for name in ["paused-host-clock-skew.toml", "crash-and-restart.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name);
        let scenario = load_file(&path).expect("a shipped scenario loads");
        let report = run(&scenario, 1);
        let completes = report.expectations.iter().find(|e| e.name == "completes").expect("always checked");
        assert!(completes.passed, "{name}: {}", completes.observed);
        assert!(report.passed, "{name}: {:?}", report.expectations);
    }
}
