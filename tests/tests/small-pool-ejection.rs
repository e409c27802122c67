//! Envoy's `max_ejection_percent` rounds down: a client of three instances
//! at the default 10 % ejects none of them, however badly one fails, unless
//! `always_eject_one_host` is set. The scenario option reaches the client's
//! balancer, and the shipped `erroring-instance` scenario, whose clients
//! must route around the failing instance themselves, sets it.

use std::path::Path;

use vigil_sim::scenario::{self, Scenario};

fn erroring_instance() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/erroring-instance.toml");
    scenario::load_file(&path).expect("the shipped scenario loads")
}

#[test]
fn envoy_ejects_from_a_small_pool_only_with_always_eject_one_host() {
    let with = erroring_instance();
    assert_eq!(with.load.as_ref().map(|l| l.always_eject_one_host), Some(true), "the scenario opts in");
    let report = vigil_sim::run(&with, with.seed);
    let on = report.calls.as_ref().expect("the scenario has load");
    assert!(on.ejections >= 1, "one of three may be ejected: {}", report.to_text());

    let mut without = with.clone();
    if let Some(load) = without.load.as_mut() {
        load.always_eject_one_host = false;
    }
    let report = vigil_sim::run(&without, without.seed);
    let off = report.calls.as_ref().expect("the scenario has load");
    assert_eq!(off.ejections, 0, "10 % of 3 rounds down to none: {}", report.to_text());
    assert!(
        off.error > on.error,
        "without the client's own ejection more calls meet the failing instance: {} <= {}",
        off.error,
        on.error
    );
}
