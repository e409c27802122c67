//! The simulated platform's less common paths, each with a small scenario:
//! circuits around a failing dependency, a scale-out with nowhere to go, a
//! restart on a frozen host, and faults that end by themselves (power back,
//! a crash loop fixed) with nobody recovering.

use vigil_core::health::Liveness;
use vigil_core::recovery::{ActionKind, DecisionKind, RecoveryOutput};
use vigil_core::{InstanceId, Instant};
use vigil_sim::Simulation;
use vigil_sim::check;
use vigil_sim::scenario::{Scenario, parse};
use vigil_sim::world::{FailReason, HostState, OutageKind, PlatformStep};

fn run(text: &str, seed: u64) -> (Scenario, u64) {
    (parse(text, "inline").unwrap_or_else(|e| panic!("{e}")), seed)
}

fn kinds(sim: &Simulation<'_>) -> Vec<ActionKind> {
    check::actions(sim.observations()).map(|(_, a)| a.kind).collect()
}

/// api calls db; db crashes for 40 s and nothing restarts it (its ladder is
/// empty: a human is asked at once). api's calls to db fail, so its
/// answers do, but its liveness checks call no dependency: api needs no
/// recovery for db's sake. api/0 also hangs while db is down: recovery
/// holds it for the dependency and, with `isolate`, api's policy opens a
/// circuit to db, which api's other instances then skip.
fn dependency(isolate: bool) -> String {
    format!(
        r#"
name = "circuit"
duration = "2m"
seed = 3

[[service]]
name = "db"
instances = 1
policy = "hands_off"
health = {{ interval = "1s", timeout = "500ms", failure_threshold = 2, success_threshold = 2 }}

[[service]]
name = "api"
instances = 3
depends_on = ["db"]
health = {{ interval = "1s", timeout = "500ms", failure_threshold = 2, success_threshold = 2 }}

[load]
target = "api"
rate = 100
timeout = "1s"

[recovery]
circuit = {{ open_for = "10s", open_for_max = "20s" }}
default_policy = {{ isolate_dependencies = {isolate} }}

[recovery.policies.hands_off]
crashed = []
unresponsive = []

[[fault]]
at = "30s"
duration = "40s"
kind = "crash"
target = "db/0"

[[fault]]
at = "32s"
duration = "38s"
kind = "hang"
target = "api/0"
"#
    )
}

#[test]
fn a_circuit_to_a_failing_dependency_keeps_its_callers_serving_then_closes() {
    let (isolated, seed) = run(&dependency(true), 3);
    let mut sim = Simulation::new(&isolated, seed);
    sim.run();
    let acts = kinds(&sim);
    let open = acts.iter().position(|k| matches!(k, ActionKind::OpenCircuit { .. })).expect("opened");
    let trials: Vec<usize> = acts
        .iter()
        .enumerate()
        .filter(|(_, k)| matches!(k, ActionKind::HalfOpen { .. }))
        .map(|(i, _)| i)
        .collect();
    let close = acts.iter().position(|k| matches!(k, ActionKind::CloseCircuit { .. })).expect("closed");
    assert!(open < trials[0] && trials.len() >= 2 && *trials.last().expect("some") < close, "{acts:?}");
    // The first trial, with db still down, failed; the circuit reopened.
    let reopened =
        sim.observations().recovery.iter().any(
            |(_, o)| matches!(o, RecoveryOutput::Decision(d) if d.kind == DecisionKind::CircuitProbeFailed),
        );
    assert!(reopened, "a trial while db is down fails");
    let isolated_share = sim.observations().calls.availability().expect("calls ended");

    // Without the circuit, api fails with db for the whole outage.
    let (plain, seed) = run(&dependency(false), 3);
    let mut without = Simulation::new(&plain, seed);
    without.run();
    assert!(!kinds(&without).iter().any(|k| matches!(k, ActionKind::OpenCircuit { .. })));
    let plain_share = without.observations().calls.availability().expect("calls ended");
    assert!(
        isolated_share > plain_share + 0.1,
        "isolating db keeps api serving: {isolated_share:.3} vs {plain_share:.3}"
    );
}

#[test]
fn a_scale_out_with_no_standby_slot_left_fails_and_the_ladder_climbs() {
    let text = r#"
name = "no-room"
duration = "3m"
seed = 4

[[service]]
name = "search"
instances = 3
cores = 2
capacity = 64
service_time = { kind = "uniform", min = "4ms", max = "8ms" }
health = { interval = "1s", timeout = "900ms", failure_threshold = 3, success_threshold = 3, latency_p99 = "100ms", latency_window = 20 }

[load]
target = "search"
rate = 400
timeout = "2s"

[recovery]
default_policy = { degraded = ["scale_out+3"] }

[[fault]]
at = "30s"
duration = "2m"
kind = "cpu"
target = "search"
factor = 2.5
"#;
    let (scenario, seed) = run(text, 4);
    let mut sim = Simulation::new(&scenario, seed);
    sim.run();
    let platform = &sim.observations().platform;
    assert!(
        platform.iter().any(|p| p.step == PlatformStep::Failed(FailReason::NoCapacity)),
        "no standby slot: {platform:?}"
    );
    assert!(!platform.iter().any(|p| p.step == PlatformStep::Provisioned));
    assert!(kinds(&sim).iter().any(|k| matches!(k, ActionKind::AskHuman { .. })), "the ladder is spent");
}

#[test]
fn a_restart_cannot_reach_a_frozen_host_and_a_replacement_can() {
    let text = r#"
name = "frozen"
duration = "2m"
seed = 5

[[service]]
name = "web"
instances = 3
health = { interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }

[recovery]
default_policy = { unresponsive = ["restart", "replace"] }

[[fault]]
at = "20s"
duration = "90s"
kind = "pause"
target = "web/1"
"#;
    let (scenario, seed) = run(text, 5);
    let mut sim = Simulation::new(&scenario, seed);
    sim.run();
    let platform: Vec<PlatformStep> = sim.observations().platform.iter().map(|p| p.step).collect();
    let failed = platform.iter().position(|s| *s == PlatformStep::Failed(FailReason::HostDown));
    let replaced = platform.iter().position(|s| *s == PlatformStep::Replaced);
    assert!(failed.is_some() && replaced.is_some() && failed < replaced, "{platform:?}");
    // The replacement runs on a fresh host: the pause is over for it.
    assert_eq!(sim.host_state(Scenario::node_of(InstanceId(1))), HostState::Up);
    let pause = &sim.observations().outages[1][0];
    assert_eq!(pause.kind, OutageKind::Pause);
    assert!(pause.ended.is_some_and(|e| e < Instant::from_secs(110)), "ended by the replacement: {pause:?}");
}

#[test]
fn faults_that_end_by_themselves_bring_the_process_back_without_recovery() {
    let text = r#"
name = "self-healing-faults"
duration = "2m"
seed = 6

[[service]]
name = "web"
instances = 3

[[fault]]
at = "20s"
duration = "20s"
kind = "host_crash"
target = "web/0"

[[fault]]
at = "20s"
duration = "30s"
kind = "crash_loop"
target = "web/1"
after = "2s"

[[fault]]
at = "20s"
duration = "40s"
kind = "memory_leak"
target = "web/2"
exhausts_after = "10s"

[expect]
alive_at_end = true
"#;
    let (scenario, seed) = run(text, 6);
    let mut sim = Simulation::new(&scenario, seed);
    sim.run();
    let failed: Vec<_> = check::evaluate(&sim).into_iter().filter(|e| !e.passed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let obs = sim.observations();
    let kinds_of = |i: usize| obs.outages[i].iter().map(|o| (o.kind, o.ended.is_some())).collect::<Vec<_>>();
    assert_eq!(kinds_of(0), [(OutageKind::HostCrash, true)], "power back at the fault's end");
    assert_eq!(kinds_of(1), [(OutageKind::CrashLoop, true)], "one loop, over when the bug is fixed");
    // No recovery: the leak kills it once, and it stays down until the
    // fixed code runs again at the fault's end.
    assert_eq!(kinds_of(2), [(OutageKind::OutOfMemory, true)]);
    assert!(obs.recovery.is_empty() && obs.platform.is_empty(), "nobody recovered anything");
    for i in 0..3u32 {
        let back = obs.verdicts.iter().rev().find(|v| v.instance == InstanceId(i)).map(|v| v.to);
        assert_eq!(back, Some(Liveness::Alive), "web/{i} is back");
    }
}

#[test]
fn a_half_open_trial_is_answered_by_whether_the_dependency_serves() {
    // The outcome of each trial follows db's state: failed while it is
    // down, succeeded once it is back.
    let (scenario, seed) = run(&dependency(true), 3);
    let mut sim = Simulation::new(&scenario, seed);
    sim.run();
    let obs = sim.observations();
    let db_back = obs.outages[0][0].ended.expect("db restarts at the fault's end");
    let mut trials = (0, 0);
    for (at, o) in &obs.recovery {
        if let RecoveryOutput::Action(a) = o
            && matches!(a.kind, ActionKind::HalfOpen { .. })
        {
            let next = obs.recovery.iter().find(|(t, d)| {
                *t >= *at && matches!(d, RecoveryOutput::Action(b) if b.id.correlation == a.id.correlation && b.id.attempt > a.id.attempt)
            });
            let closed = matches!(next, Some((_, RecoveryOutput::Action(b))) if matches!(b.kind, ActionKind::CloseCircuit { .. }));
            assert_eq!(closed, *at >= db_back, "trial at {at}: db back at {db_back}");
            if closed {
                trials.1 += 1;
            } else {
                trials.0 += 1;
            }
        }
    }
    assert!(trials.0 >= 1 && trials.1 == 1, "failed and closing trials: {trials:?}");
}

/// checkout/1's links lose a quarter of all messages for 90 s: its probes
/// time out three in a row often enough to call it unresponsive.
const LOSSY_LINK: &str = r#"
name = "lossy-link"
duration = "3m"
seed = 30

[[service]]
name = "checkout"
instances = 4
health = { interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }

[load]
target = "checkout"
rate = 200
timeout = "1s"

[recovery]

[[fault]]
at = "30s"
duration = "90s"
kind = "network"
target = "checkout/1"
loss = 0.25
"#;

#[test]
fn a_lossy_link_is_mostly_rerouted_not_restarted_and_clients_barely_notice() {
    // A hung application beside a healthy agent loses no heartbeat; a lossy
    // link loses some. Right after the loss begins there may be too few
    // lost beats to tell, so some seeds still restart it once: measured
    // over 200 seeds, 65 restart it with the heartbeat evidence and 199
    // without. Over these 20 seeds the bound is deterministic.
    let (scenario, _) = run(LOSSY_LINK, 0);
    let (mut restarted, mut rerouted) = (0, 0);
    for seed in 0..20 {
        let mut sim = Simulation::new(&scenario, seed);
        sim.run();
        let acts: Vec<_> = check::actions(sim.observations()).map(|(_, a)| a).collect();
        assert!(
            acts.iter().all(|a| a.instance.is_none_or(|i| i == InstanceId(1))),
            "seed {seed}: only checkout/1"
        );
        restarted += usize::from(acts.iter().any(|a| a.kind == ActionKind::Restart));
        rerouted += usize::from(acts.iter().any(|a| a.kind == ActionKind::Reroute));
        let share = sim.observations().calls.availability().expect("calls ended");
        assert!(share >= 0.99, "seed {seed}: clients barely notice: {share}");
    }
    assert!(restarted <= 8, "restarted in {restarted} of 20 seeds");
    assert!(rerouted >= 12, "rerouted in {rerouted} of 20 seeds");
}

#[test]
fn a_hang_on_a_slightly_lossy_network_is_still_restarted_at_once() {
    // The other side of the judgment: 1 % loss everywhere must not make a
    // hung instance look merely unreachable.
    let text = r#"
name = "hang-on-lossy-network"
duration = "2m"
seed = 1

[network]
loss = 0.01

[[service]]
name = "checkout"
instances = 4
health = { interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }

[recovery]

[[fault]]
at = "30s"
duration = "60s"
kind = "hang"
target = "checkout/1"

[expect]
recovery_started_within = "3s"
actions_taken = ["restart"]
"#;
    let (scenario, _) = run(text, 0);
    for seed in 0..20 {
        let mut sim = Simulation::new(&scenario, seed);
        sim.run();
        let failed: Vec<_> = check::evaluate(&sim).into_iter().filter(|e| !e.passed).collect();
        assert!(failed.is_empty(), "seed {seed}: {failed:?}");
    }
}
