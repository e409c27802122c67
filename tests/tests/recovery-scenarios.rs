//! The recovery scenarios, each checked for more than its file's
//! expectations: the order of what recovery did, what it did not do, and
//! why. Each runs on a few seeds (the seed sweep and `vigil sweep` run
//! many more).

use vigil_core::health::HealthStatus;
use vigil_core::recovery::{Action, ActionKind, DecisionKind, HoldReason, RecoveryOutput, Unreachability};
use vigil_core::{InstanceId, Instant};
use vigil_sim::Simulation;
use vigil_sim::check::{self, ExpectationOutcome};
use vigil_sim::scenario::Scenario;
use vigil_sim::world::{FailReason, MonitorChange, OutageKind, PlatformStep};
use vigil_tests::scenarios_dir;

/// Seeds each scenario runs on here.
const SEEDS: [u64; 3] = [1, 2, 3];

fn load(name: &str) -> Scenario {
    let path = scenarios_dir().join(format!("{name}.toml"));
    vigil_sim::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Run `scenario` with `seed`, assert every expectation of the file holds,
/// and hand the finished simulation to `inspect`.
fn each_seed(name: &str, inspect: impl Fn(&Simulation<'_>, u64)) {
    let scenario = load(name);
    for seed in SEEDS {
        let mut sim = Simulation::new(&scenario, seed);
        sim.run();
        let failed: Vec<ExpectationOutcome> =
            check::evaluate(&sim).into_iter().filter(|e| !e.passed).collect();
        assert!(failed.is_empty(), "{name} seed {seed}: {failed:?}");
        inspect(&sim, seed);
    }
}

fn actions(sim: &Simulation<'_>) -> Vec<(Instant, Action)> {
    check::actions(sim.observations()).collect()
}

fn decisions(sim: &Simulation<'_>) -> Vec<(Instant, vigil_core::recovery::Decision)> {
    sim.observations()
        .recovery
        .iter()
        .filter_map(|(at, o)| if let RecoveryOutput::Decision(d) = o { Some((*at, *d)) } else { None })
        .collect()
}

fn instance(scenario: &Scenario, name: &str) -> InstanceId {
    (0..scenario.instance_count())
        .map(InstanceId)
        .find(|&i| scenario.node_name(Scenario::node_of(i)) == name)
        .unwrap_or_else(|| panic!("no instance {name}"))
}

fn service_of(scenario: &Scenario, i: InstanceId) -> &str {
    let (s, _) = scenario.locate(i).expect("an instance of the scenario");
    &scenario.services[s].name
}

#[test]
fn crash_and_restart_restarts_only_the_crashed_instance_once() {
    each_seed("crash-and-restart", |sim, seed| {
        let crashed = instance(sim.scenario(), "checkout/1");
        let acts = actions(sim);
        assert_eq!(acts.len(), 1, "seed {seed}: one action: {acts:?}");
        assert_eq!(acts[0].1.kind, ActionKind::Restart);
        assert_eq!(acts[0].1.instance, Some(crashed));
        let platform = &sim.observations().platform;
        assert!(
            platform.iter().any(|p| p.step == PlatformStep::Restarted && p.instance == Some(crashed)),
            "seed {seed}: the platform restarted it: {platform:?}"
        );
        assert!(
            decisions(sim).iter().any(|(_, d)| matches!(d.kind, DecisionKind::Resolved { by_action: true })),
            "seed {seed}: the episode ends resolved by its restart"
        );
    });
}

#[test]
fn a_crash_loop_climbs_restart_then_replace_then_asks_a_human_and_stops() {
    each_seed("crash-loop-escalation", |sim, seed| {
        let looping = instance(sim.scenario(), "payments/2");
        let acts = actions(sim);
        assert!(
            acts.iter().all(|(_, a)| a.instance == Some(looping)),
            "seed {seed}: only payments/2: {acts:?}"
        );
        let kinds: Vec<ActionKind> = acts.iter().map(|(_, a)| a.kind).collect();
        let first = |k: fn(&ActionKind) -> bool| kinds.iter().position(k);
        let restart = first(|k| *k == ActionKind::Restart).expect("restarted");
        let replace = first(|k| *k == ActionKind::Replace).expect("replaced");
        let human = first(|k| matches!(k, ActionKind::AskHuman { .. })).expect("asked a human");
        assert!(restart < replace && replace < human, "seed {seed}: ladder order: {kinds:?}");
        assert_eq!(human, kinds.len() - 1, "seed {seed}: nothing after asking a human: {kinds:?}");
        // The replacement crash-looped too: the platform said so.
        assert!(
            sim.observations().platform.iter().any(|p| p.step == PlatformStep::Failed(FailReason::DiedAgain)),
            "seed {seed}: restarts and the replacement died again"
        );
    });
}

#[test]
fn simultaneous_failures_are_each_recovered_in_parallel() {
    each_seed("simultaneous-failures", |sim, seed| {
        let scenario = sim.scenario();
        let mut restarted: Vec<String> = actions(sim)
            .iter()
            .filter(|(_, a)| a.kind == ActionKind::Restart)
            .filter_map(|(_, a)| a.instance)
            .map(|i| scenario.node_name(Scenario::node_of(i)))
            .collect();
        restarted.sort();
        assert_eq!(restarted, ["api/1", "web/0", "worker/2"], "seed {seed}");
        assert!(sim.observations().max_in_flight >= 2, "seed {seed}: they overlapped");
    });
}

#[test]
fn a_cascade_restarts_the_root_cause_only_and_its_dependents_heal_by_themselves() {
    each_seed("dependency-cascade", |sim, seed| {
        let scenario = sim.scenario();
        for (_, a) in actions(sim) {
            if let Some(i) = a.instance {
                assert_eq!(service_of(scenario, i), "db", "seed {seed}: only db is acted on: {a:?}");
            }
        }
        // The dependents' calls failed with db, but their liveness checks
        // call no dependency: no api or web instance ever needed recovery,
        // so none had to be held. Their deep readiness checks took them out
        // of rotation, and they came back without being touched.
        let dependents_needing_recovery: Vec<_> = sim
            .observations()
            .monitor
            .iter()
            .filter(|m| matches!(m.change, MonitorChange::NeedsRecovery(_)))
            .filter(|m| service_of(scenario, m.instance) != "db")
            .collect();
        assert!(dependents_needing_recovery.is_empty(), "seed {seed}: {dependents_needing_recovery:?}");
        let api0 = instance(scenario, "api/0");
        let (mut statuses, mut ready) = (Vec::new(), Vec::new());
        for m in sim.observations().monitor.iter().filter(|m| m.instance == api0) {
            match m.change {
                MonitorChange::Status { to, .. } => statuses.push(to),
                MonitorChange::Ready(r) => ready.push(r),
                MonitorChange::NeedsRecovery(_) => {}
            }
        }
        // Its reported status counts readiness too: it failed, and healed.
        assert!(statuses.contains(&HealthStatus::Failed), "seed {seed}: api/0 failed: {statuses:?}");
        assert_eq!(statuses.last(), Some(&HealthStatus::Healthy), "seed {seed}: and healed by itself");
        assert!(ready.contains(&false), "seed {seed}: api/0 left rotation while db was down: {ready:?}");
        assert_eq!(ready.last(), Some(&true), "seed {seed}: and came back by itself");
        // web calls api, which calls db: the cascade reaches it too, and
        // every service spent time out of rotation.
        let shares = check::service_availability(sim, Instant::from_secs(5));
        for (name, share) in &shares {
            let share = share.expect("every service ran");
            assert!(share < 0.999 && share > 0.8, "seed {seed}: {name} in rotation {share}");
        }
    });
}

#[test]
fn a_partitioned_monitor_suspects_itself_and_restarts_nothing() {
    each_seed("monitor-partition", |sim, seed| {
        // The clients still reach every instance and say so: each is cut
        // off, not failed. Traffic is taken away at once (the verdicts had
        // taken it already), and nothing else is done.
        let acts = actions(sim);
        assert!(
            acts.iter().all(|(_, a)| a.kind == ActionKind::Reroute
                && a.id.attempt == vigil_core::recovery::INTERIM_REROUTE),
            "seed {seed}: only interim reroutes: {acts:?}"
        );
        let held: std::collections::BTreeSet<InstanceId> = decisions(sim)
            .iter()
            .filter(|(_, d)| {
                matches!(
                    d.kind,
                    DecisionKind::Withheld {
                        reason: HoldReason::Partitioned { why: Unreachability::CutOff, .. }
                    }
                )
            })
            .filter_map(|(_, d)| d.instance)
            .collect();
        assert_eq!(held.len(), 6, "seed {seed}: every instance judged cut off by its clients' word");
        // One partition is one event. Suspicion alone (the heartbeats stop
        // before the probes have failed enough to judge) may enter the
        // storm guard for a moment; once the instances are judged cut off
        // they no longer count, and the storm is over at once.
        let mut entered: Option<Instant> = None;
        for (at, d) in decisions(sim) {
            match d.kind {
                DecisionKind::StormSuspected { .. } => entered = entered.or(Some(at)),
                DecisionKind::StormCleared { .. } => {
                    if let Some(since) = entered.take() {
                        let lasted = at.saturating_duration_since(since);
                        assert!(
                            lasted < vigil_core::Duration::from_secs(1),
                            "seed {seed}: a storm of {lasted:?}"
                        );
                    }
                }
                _ => {}
            }
        }
        assert!(entered.is_none(), "seed {seed}: a storm was never cleared");
        // The fleet did look dead from the monitor's side.
        let dead = sim.observations().verdicts.iter().filter(|v| v.to == vigil_core::health::Liveness::Dead);
        assert!(dead.count() >= 3, "seed {seed}: the monitor saw the fleet go dark");
    });
}

#[test]
fn a_zone_cut_off_is_held_and_a_real_crash_elsewhere_is_restarted_at_once() {
    each_seed("zone-partition-crash", |sim, seed| {
        let scenario = sim.scenario();
        let crashed = instance(scenario, "checkout/0");
        let zone_c = [instance(scenario, "checkout/2"), instance(scenario, "checkout/5")];
        let acts = actions(sim);
        // Zone c: traffic away at once, never a restart.
        for i in zone_c {
            let on: Vec<ActionKind> =
                acts.iter().filter(|(_, a)| a.instance == Some(i)).map(|(_, a)| a.kind).collect();
            assert_eq!(on, [ActionKind::Reroute], "seed {seed}: {i:?} is only rerouted: {on:?}");
            let held = decisions(sim).iter().any(|(_, d)| {
                d.instance == Some(i)
                    && matches!(
                        d.kind,
                        DecisionKind::Withheld {
                            reason: HoldReason::Partitioned { why: Unreachability::CutOff, .. }
                        }
                    )
            });
            assert!(held, "seed {seed}: {i:?} judged cut off by its clients' word");
        }
        // The crash: restarted once, not held by a limit or a storm.
        let restarts: Vec<Instant> = acts
            .iter()
            .filter(|(_, a)| a.instance == Some(crashed) && a.kind == ActionKind::Restart)
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(restarts.len(), 1, "seed {seed}: {restarts:?}");
        assert!(restarts[0] < Instant::from_secs(45), "seed {seed}: restarted at {}", restarts[0]);
        let held_back = decisions(sim).iter().any(|(_, d)| {
            d.instance == Some(crashed)
                && matches!(
                    d.kind,
                    DecisionKind::Withheld {
                        reason: HoldReason::ServiceLimit { .. }
                            | HoldReason::GlobalLimit { .. }
                            | HoldReason::Storm { .. }
                    }
                )
        });
        assert!(!held_back, "seed {seed}: the crash waits for nothing");
    });
}

#[test]
fn a_deaf_control_node_holds_restarts_and_every_episode_ends_by_itself() {
    each_seed("deaf-observer", |sim, seed| {
        // The only restart is of the instance that really crashed, at
        // once: its refusals reach even a deaf observer. Everyone else only
        // leaves rotation: the fault is the observer's.
        let crashed = instance(sim.scenario(), "payments/2");
        let acts = actions(sim);
        let restarts: Vec<_> = acts.iter().filter(|(_, a)| a.kind != ActionKind::Reroute).collect();
        assert!(
            restarts.iter().all(|(_, a)| a.kind == ActionKind::Restart && a.instance == Some(crashed)),
            "seed {seed}: only the crashed instance is restarted: {restarts:?}"
        );
        let first = restarts.first().map(|(at, _)| *at);
        assert!(
            first.is_some_and(|at| at >= Instant::from_secs(50) && at <= Instant::from_secs(60)),
            "seed {seed}: the crash is restarted within 10 s, not after the deafness (90 s): {first:?}"
        );
        // Deafness was judged, not luck: some episode was held for it.
        let held_deaf = decisions(sim).iter().any(|(_, d)| {
            matches!(
                d.kind,
                DecisionKind::Withheld {
                    reason: HoldReason::Partitioned { why: Unreachability::DeafObserver, .. }
                }
            )
        });
        assert!(held_deaf, "seed {seed}: some episode held for a deaf observer");
        // The loss ends at 90 s: nothing needs recovery at the end.
        let recovery = sim.control().and_then(|c| c.recovery()).expect("the control node runs recovery");
        let open = (0..sim.scenario().instance_count())
            .filter(|&i| recovery.episode(InstanceId(i)).is_some())
            .count();
        assert_eq!(open, 0, "seed {seed}: every episode ended by itself");
    });
}

#[test]
fn memory_exhaustion_is_killed_and_restarted_each_time() {
    each_seed("memory-exhaustion", |sim, seed| {
        let leaking = instance(sim.scenario(), "cart/1");
        let kills = sim.observations().outages[leaking.index()]
            .iter()
            .filter(|o| o.kind == OutageKind::OutOfMemory)
            .count();
        assert!(kills >= 3, "seed {seed}: a 40 s leak over 3 minutes kills it several times ({kills})");
        let restarts = actions(sim).iter().filter(|(_, a)| a.kind == ActionKind::Restart).count();
        assert_eq!(restarts, kills, "seed {seed}: one restart per kill");
    });
}

#[test]
fn cpu_saturation_scales_out_and_never_restarts() {
    each_seed("cpu-saturation-scale-out", |sim, seed| {
        let acts = actions(sim);
        assert!(acts.iter().any(|(_, a)| matches!(a.kind, ActionKind::ScaleOut { .. })), "seed {seed}");
        assert!(
            !acts.iter().any(|(_, a)| matches!(a.kind, ActionKind::Restart | ActionKind::Replace)),
            "seed {seed}: a saturated instance is not broken: {acts:?}"
        );
        let provisioned =
            sim.observations().platform.iter().filter(|p| p.step == PlatformStep::Provisioned).count();
        assert_eq!(provisioned, 3, "seed {seed}: all three standby slots joined");
        let control = sim.control().expect("the control node runs");
        for i in 3..6 {
            assert!(control.is_routable(InstanceId(i)), "seed {seed}: search/{i} serves at the end");
        }
    });
}

#[test]
fn a_zone_crash_fails_restarts_on_dead_hosts_and_replaces_them() {
    each_seed("zone-crash", |sim, seed| {
        let scenario = sim.scenario();
        let platform = &sim.observations().platform;
        assert!(
            platform.iter().any(|p| p.step == PlatformStep::Failed(FailReason::HostDown)),
            "seed {seed}: a restart needs a host: {platform:?}"
        );
        let replaced: Vec<String> = platform
            .iter()
            .filter(|p| p.step == PlatformStep::Replaced)
            .filter_map(|p| p.instance)
            .map(|i| scenario.zone_of(i).unwrap_or("-").to_string())
            .collect();
        assert!(!replaced.is_empty(), "seed {seed}: replacements happened");
        assert!(replaced.iter().all(|z| z == "b"), "seed {seed}: only zone b's instances: {replaced:?}");
    });
}

#[test]
fn a_recovery_storm_respects_the_limits_and_brings_everyone_back() {
    each_seed("recovery-storm", |sim, seed| {
        let obs = sim.observations();
        assert!(obs.max_in_flight <= 3, "seed {seed}: global limit");
        let crashed: Vec<usize> = obs
            .outages
            .iter()
            .enumerate()
            .filter(|(_, o)| o.iter().any(|o| o.kind == OutageKind::Crash))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(crashed.len(), 8, "seed {seed}: 40% of 20");
        let limited = decisions(sim).iter().any(|(_, d)| {
            matches!(
                d.kind,
                DecisionKind::Withheld {
                    reason: HoldReason::GlobalLimit { .. } | HoldReason::ServiceLimit { .. }
                }
            )
        });
        assert!(limited, "seed {seed}: the limits held some back");
        let control = sim.control().expect("the control node runs");
        for i in crashed {
            assert!(control.is_routable(InstanceId(i as u32)), "seed {seed}: feed/{i} is back");
        }
    });
}

#[test]
fn every_recovery_scenario_is_deterministic_and_picks_differ_by_seed() {
    let scenario = load("recovery-storm");
    let picked = |seed: u64| -> Vec<usize> {
        let mut sim = Simulation::new(&scenario, seed);
        sim.run();
        sim.observations().outages.iter().enumerate().filter(|(_, o)| !o.is_empty()).map(|(i, _)| i).collect()
    };
    assert_eq!(picked(7), picked(7), "one seed, one pick");
    assert!(
        (0..5).map(picked).collect::<std::collections::BTreeSet<_>>().len() > 1,
        "seeds pick differently"
    );
}

#[test]
fn the_benchmark_workload_loads_and_its_first_minutes_run_under_recovery() {
    // scenarios/bench is not swept (an hour of 1,000 instances); its first
    // two and a half minutes are enough to show the file is sound.
    let path = scenarios_dir().join("bench").join("fleet-1000-hour.toml");
    let mut scenario = vigil_sim::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.instance_count(), 1000);
    scenario.duration = vigil_core::Duration::from_secs(150);
    let mut sim = Simulation::new(&scenario, 1);
    sim.run();
    assert!(sim.halted().is_none(), "ran to its end");
    assert!(sim.plan().len() >= 2, "the schedule drew faults: {}", sim.plan().len());
    assert!(!actions(&sim).is_empty(), "recovery acted");
}
