//! Panic mode earns its keep: when the control node wrongly believes most
//! of a service is down, a client that balances over everyone keeps serving,
//! while one that trusts the verdicts crushes the survivors.

use std::path::Path;

use vigil_sim::scenario::{self, Scenario};

fn load() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/panic-mode.toml");
    scenario::load_file(&path).expect("the shipped scenario loads")
}

fn availability(scenario: &Scenario) -> f64 {
    let report = vigil_sim::run(scenario, scenario.seed);
    report.calls.expect("the scenario has load").availability.expect("calls ended")
}

#[test]
fn panic_mode_keeps_the_survivors_from_being_crushed() {
    let with_panic = load();
    assert_eq!(with_panic.load.as_ref().map(|l| l.panic_threshold_percent), Some(50), "default threshold");
    let report = vigil_sim::run(&with_panic, with_panic.seed);
    let calls = report.calls.as_ref().expect("the scenario has load");
    assert!(calls.panics >= 1, "the balancer entered panic mode: {}", report.to_text());
    let on = calls.availability.expect("calls ended");

    let mut without = load();
    if let Some(load) = without.load.as_mut() {
        load.panic_threshold_percent = 0;
    }
    let off = availability(&without);

    assert!(on >= 0.995, "with panic mode: {on}");
    assert!(off < 0.9, "without panic mode the two survivors are overloaded: {off}");
}
