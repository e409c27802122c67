//! `scenarios/forged-heartbeats.toml`: an attacker without the fleet's key
//! forges heartbeats for every instance and replays captured frames while
//! `checkout/1` is dead. Beyond the file's expectations (which include
//! `forged_frames_dropped`), the attack must change nothing at all: the
//! same run without the `forge` fault publishes the same verdicts, the
//! same health and routing changes, the same recovery outputs and the
//! same client outcomes, event for event. Checked with and without
//! recovery, on a few seeds (`vigil sweep` runs 200).

use vigil_core::InstanceId;
use vigil_core::health::Liveness;
use vigil_sim::Simulation;
use vigil_sim::check::{self, ExpectationOutcome};
use vigil_sim::scenario::{FaultAction, Scenario};
use vigil_tests::scenarios_dir;

const SEEDS: [u64; 3] = [1, 2, 3];

fn load() -> Scenario {
    let path = scenarios_dir().join("forged-heartbeats.toml");
    vigil_sim::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The same scenario with recovery on: a restarted receiver starts with
/// empty replay windows, the frame's documented weak spot.
fn with_recovery() -> Scenario {
    let path = scenarios_dir().join("forged-heartbeats.toml");
    let text = std::fs::read_to_string(&path).expect("readable");
    let text = text.replace("[expect]", "[recovery]\n\n[expect]\nno_restart_of_healthy_instances = true");
    vigil_sim::parse(&text, "forged-heartbeats-recovery.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn without_attack(scenario: &Scenario) -> Scenario {
    let mut plain = scenario.clone();
    plain.faults.retain(|f| !matches!(f.action, FaultAction::Forge { .. }));
    assert_eq!(plain.faults.len() + 1, scenario.faults.len(), "the file has one forge fault");
    plain.expect.forged_frames_dropped = false;
    plain
}

/// What a run did that anyone outside the network could see.
#[derive(Debug, PartialEq)]
struct Visible {
    verdicts: Vec<vigil_sim::world::Verdict>,
    monitor: Vec<vigil_sim::world::MonitorVerdict>,
    balance: Vec<(vigil_core::Instant, vigil_core::balance::BalanceEvent)>,
    recovery: Vec<(vigil_core::Instant, vigil_core::recovery::RecoveryOutput)>,
    platform: Vec<vigil_sim::world::PlatformEvent>,
    outages: Vec<Vec<(vigil_sim::world::OutageKind, vigil_core::Instant, Option<vigil_core::Instant>)>>,
    calls: [u64; 6],
}

fn run(scenario: &Scenario, seed: u64) -> (Visible, vigil_sim::world::AttackStats) {
    let mut sim = Simulation::new(scenario, seed);
    sim.run();
    let failed: Vec<ExpectationOutcome> = check::evaluate(&sim).into_iter().filter(|e| !e.passed).collect();
    assert!(failed.is_empty(), "{} seed {seed}: {failed:?}", scenario.name);
    let o = sim.observations();
    let c = &o.calls;
    let visible = Visible {
        verdicts: o.verdicts.clone(),
        monitor: o.monitor.clone(),
        balance: o.balance.clone(),
        recovery: o.recovery.clone(),
        platform: o.platform.clone(),
        outages: o.outages.iter().map(|l| l.iter().map(|x| (x.kind, x.began, x.ended)).collect()).collect(),
        calls: [c.total, c.ok, c.error, c.refused, c.timeout, c.no_endpoint],
    };
    (visible, o.attack)
}

fn attack_changes_nothing(scenario: &Scenario) {
    let plain = without_attack(scenario);
    for seed in SEEDS {
        let (attacked, stats) = run(scenario, seed);
        let (quiet, none) = run(&plain, seed);
        assert_eq!(none.sent(), 0, "no attacker without the fault");
        assert!(stats.forged > 0 && stats.forged_unknown_key > 0, "seed {seed}: forged: {stats:?}");
        assert!(stats.replayed > 0 && stats.misdirected > 0, "seed {seed}: replayed: {stats:?}");
        let r = &stats.received;
        assert!(
            r.unauthenticated > 0 && r.unknown_key > 0 && r.replayed > 0 && r.misdirected > 0,
            "seed {seed}: every kind of attack frame reached a receiver and was dropped: {r:?}"
        );
        assert_eq!(r.accepted, 0, "seed {seed}: an attack frame was accepted");
        assert_eq!(
            stats.sent(),
            stats.dropped() + stats.unheard,
            "seed {seed}: every frame sent landed somewhere: {stats:?}"
        );
        assert_eq!(attacked, quiet, "seed {seed}: the attack changed what the fleet did");
    }
}

#[test]
fn forged_and_replayed_frames_are_all_dropped_and_change_nothing() {
    let scenario = load();
    attack_changes_nothing(&scenario);
    // And the dead instance stays dead, under forged heartbeats in its
    // name, to the end of the run.
    let checkout_1 = InstanceId(1);
    assert_eq!(scenario.node_name(Scenario::node_of(checkout_1)), "checkout/1");
    let mut sim = Simulation::new(&scenario, 1);
    sim.run();
    let verdicts: Vec<Liveness> =
        sim.observations().verdicts.iter().filter(|v| v.instance == checkout_1).map(|v| v.to).collect();
    assert_eq!(verdicts.last(), Some(&Liveness::Dead), "{verdicts:?}");
}

#[test]
fn with_recovery_the_attack_changes_nothing_either() {
    attack_changes_nothing(&with_recovery());
}
