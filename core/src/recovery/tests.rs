//! Tests of the recovery coordinator: each strategy, escalation step,
//! limit, backoff path, dependency and storm rule on purpose, then
//! properties over arbitrary sequences of inputs.

use proptest::prelude::*;
use proptest::strategy::Strategy as PropStrategy;

use super::Strategy;
use super::marks;
use super::*;
use crate::Machine;
use crate::health::{CheckRef, ProbeKind, TransitionReason};
use crate::machine::Checked;
use crate::rng::Seed;

fn s(n: u32) -> ServiceId {
    ServiceId(n)
}

fn i(n: u32) -> InstanceId {
    InstanceId(n)
}

/// A configuration of `services` (id, dependencies) with generous
/// intensity, so each test turns on only the rule it tests.
fn config(services: &[(u32, &[u32])]) -> RecoveryConfig {
    RecoveryConfig {
        services: services
            .iter()
            .map(|(id, deps)| ServiceSpec {
                id: s(*id),
                policy: None,
                depends_on: deps.iter().map(|&d| s(d)).collect(),
            })
            .collect(),
        instance_intensity: Intensity { max_restarts: 64, period: Duration::from_secs(1) },
        service_intensity: Intensity { max_restarts: 64, period: Duration::from_secs(1) },
        limits: Limits { max_concurrent: 64, max_service_share_permille: 1000 },
        ..RecoveryConfig::default()
    }
}

/// The coordinator under the contract checker, with a clock.
struct Harness {
    c: Checked<RecoveryCoordinator>,
    now: Instant,
    log: Vec<RecoveryOutput>,
}

impl Harness {
    fn new(config: RecoveryConfig) -> Self {
        Harness {
            c: Checked::new(RecoveryCoordinator::new(config, Seed(7)).expect("valid config")),
            now: Instant::ZERO,
            log: Vec::new(),
        }
    }

    /// Register instances `ids` under `service`.
    fn with(mut self, service: u32, ids: impl IntoIterator<Item = u32>) -> Self {
        for id in ids {
            self.input(RecoveryInput::Register { instance: i(id), service: s(service) });
        }
        self.log.clear();
        self
    }

    fn drain(&mut self) -> Vec<RecoveryOutput> {
        let out: Vec<RecoveryOutput> = std::iter::from_fn(|| self.c.poll_output()).collect();
        self.log.extend(out.iter().copied());
        out
    }

    fn input(&mut self, input: RecoveryInput) -> Vec<RecoveryOutput> {
        self.c.handle(self.now, input);
        self.drain()
    }

    fn fail(&mut self, instance: u32, failure: FailureType) -> Vec<RecoveryOutput> {
        let service = self.c.get().service_of(i(instance)).expect("registered");
        self.input(RecoveryInput::Failure(FailureReport { instance: i(instance), service, failure }))
    }

    fn healthy(&mut self, instance: u32) -> Vec<RecoveryOutput> {
        self.input(RecoveryInput::Healthy { instance: i(instance) })
    }

    fn outcome(&mut self, id: ActionId, outcome: Outcome) -> Vec<RecoveryOutput> {
        self.input(RecoveryInput::Outcome { id, outcome })
    }

    /// Advance to `at` and fire timers.
    fn at(&mut self, at: Instant) -> Vec<RecoveryOutput> {
        assert!(at >= self.now);
        self.now = at;
        self.c.handle_timeout(at);
        self.drain()
    }

    /// Advance to the coordinator's next deadline.
    fn next_timer(&mut self) -> Vec<RecoveryOutput> {
        let at = self.c.poll_timeout().expect("a deadline");
        self.at(at.max(self.now))
    }

    fn episode(&self, instance: u32) -> Option<EpisodeView> {
        self.c.get().episode(i(instance))
    }
}

fn actions(out: &[RecoveryOutput]) -> Vec<Action> {
    out.iter()
        .filter_map(|o| match o {
            RecoveryOutput::Action(a) => Some(*a),
            RecoveryOutput::Decision(_) => None,
        })
        .collect()
}

fn decisions(out: &[RecoveryOutput]) -> Vec<DecisionKind> {
    out.iter()
        .filter_map(|o| match o {
            RecoveryOutput::Decision(d) => Some(d.kind),
            RecoveryOutput::Action(_) => None,
        })
        .collect()
}

fn kinds(out: &[RecoveryOutput]) -> Vec<ActionKind> {
    actions(out).into_iter().map(|a| a.kind).collect()
}

fn the_action(out: &[RecoveryOutput]) -> Action {
    let a = actions(out);
    assert_eq!(a.len(), 1, "exactly one action in {out:?}");
    a[0]
}

fn withheld(out: &[RecoveryOutput]) -> Vec<HoldReason> {
    decisions(out)
        .into_iter()
        .filter_map(|d| match d {
            DecisionKind::Withheld { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- strategies

#[test]
fn crash_is_restarted_at_once_and_correlation_ids_tie_it_together() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, 0..3);
    let out = h.fail(1, FailureType::Crashed);
    assert_eq!(
        decisions(&out)[..2],
        [
            DecisionKind::Detected { failure: FailureType::Crashed },
            DecisionKind::Acting { kind: ActionKind::Restart, attempt: 1, rung: 0 }
        ]
    );
    let action = the_action(&out);
    assert_eq!(action.kind, ActionKind::Restart);
    assert_eq!(action.instance, Some(i(1)));
    assert_eq!(action.at, Instant::ZERO, "recovery starts at detection");
    let out2 = h.outcome(action.id, Outcome::Succeeded);
    assert_eq!(decisions(&out2), [DecisionKind::Resolved { by_action: true }]);
    // Every output of the episode carries the one correlation id.
    for o in &h.log {
        let c = match o {
            RecoveryOutput::Action(a) => Some(a.id.correlation),
            RecoveryOutput::Decision(d) => d.correlation,
        };
        assert_eq!(c, Some(action.id.correlation));
    }
    assert_eq!(h.episode(1), None);
    assert_eq!(h.c.get().in_flight(), 0);
}

#[test]
fn each_failure_type_takes_its_default_first_rung() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, 0..12);
    assert_eq!(kinds(&h.fail(0, FailureType::Crashed)), [ActionKind::Restart]);
    assert_eq!(kinds(&h.fail(1, FailureType::Unresponsive)), [ActionKind::Restart]);
    assert_eq!(kinds(&h.fail(2, FailureType::Degraded)), [ActionKind::Reroute]);
    assert_eq!(kinds(&h.fail(3, FailureType::CrashLooping)), [ActionKind::Replace]);
}

#[test]
fn degraded_reroutes_then_scales_out_once_per_service() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, 0..10);
    let reroute = the_action(&h.fail(0, FailureType::Degraded));
    assert_eq!(reroute.kind, ActionKind::Reroute);
    // Still degraded after the reroute: add capacity.
    h.outcome(reroute.id, Outcome::Failed);
    let out = h.next_timer();
    assert_eq!(kinds(&out), [ActionKind::ScaleOut { by: 1 }]);
    // A second degraded instance reroutes, then waits for the scale-out in flight.
    let r2 = the_action(&h.fail(1, FailureType::Degraded));
    let out = h.outcome(r2.id, Outcome::Failed);
    assert!(actions(&out).is_empty());
    let out = h.next_timer();
    assert_eq!(withheld(&out), [HoldReason::ScaleOutInFlight]);
    assert!(actions(&out).is_empty());
}

#[test]
fn named_policies_apply_per_service_type() {
    let mut cfg = config(&[(0, &[]), (1, &[])]);
    cfg.policies.insert(
        "database".into(),
        Policy { crashed: Ladder::new([Rung::new(Strategy::Replace, 1)]), ..Policy::default() },
    );
    cfg.services[1].policy = Some("database".into());
    let mut h = Harness::new(cfg).with(0, [0]).with(1, [1]);
    assert_eq!(kinds(&h.fail(0, FailureType::Crashed)), [ActionKind::Restart]);
    assert_eq!(kinds(&h.fail(1, FailureType::Crashed)), [ActionKind::Replace]);
}

#[test]
fn an_empty_ladder_asks_a_human_at_once() {
    let mut cfg = config(&[(0, &[])]);
    cfg.default_policy.degraded = Ladder::default();
    let mut h = Harness::new(cfg).with(0, [0]);
    let out = h.fail(0, FailureType::Degraded);
    assert_eq!(
        kinds(&out),
        [ActionKind::AskHuman { reason: HumanReason::LadderExhausted { failure: FailureType::Degraded } }]
    );
    assert!(matches!(h.episode(0).map(|e| e.phase), Some(EpisodePhase::AskedHuman { .. })));
    // Healthy again: the episode ends, without an action of its own.
    assert_eq!(decisions(&h.healthy(0)), [DecisionKind::Resolved { by_action: false }]);
}

#[test]
fn a_reroute_holds_its_slot_until_the_instance_is_healthy() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_concurrent = 1;
    let mut h = Harness::new(cfg).with(0, [0, 1]);
    let reroute = the_action(&h.fail(0, FailureType::Degraded));
    assert_eq!(reroute.kind, ActionKind::Reroute);
    // Out of rotation, the instance keeps its action in flight and its slot.
    let out = h.fail(1, FailureType::Crashed);
    assert_eq!(withheld(&out), [HoldReason::GlobalLimit { max: 1 }]);
    assert_eq!(h.c.get().in_flight(), 1);
    // Healthy again: the reroute resolved it, and the slot goes to the crash.
    let out = h.healthy(0);
    assert_eq!(decisions(&out)[0], DecisionKind::Resolved { by_action: true });
    let restart = the_action(&out);
    assert_eq!((restart.instance, restart.kind), (Some(i(1)), ActionKind::Restart));
    let stats = h.c.get().stats();
    assert_eq!((stats.episodes, stats.actions, stats.resolved), (2, 2, 1));
}

#[test]
fn a_reroute_that_never_answers_climbs_to_a_scale_out_after_the_action_timeout() {
    let cfg = config(&[(0, &[])]);
    let timeout = cfg.action_timeout;
    let mut h = Harness::new(cfg).with(0, [0]);
    let reroute = the_action(&h.fail(0, FailureType::Degraded));
    assert!(h.at(Instant::ZERO + (timeout - Duration::from_millis(1))).is_empty(), "not before the timeout");
    let mut out = h.at(Instant::ZERO + timeout);
    assert_eq!(
        decisions(&out)[..2],
        [
            DecisionKind::AttemptFailed { attempt: reroute.id.attempt, timed_out: true },
            DecisionKind::Escalated { from_rung: 0, to_rung: 1 },
        ]
    );
    if actions(&out).is_empty() {
        out = h.next_timer(); // backing off after the failed attempt
    }
    assert_eq!(kinds(&out), [ActionKind::ScaleOut { by: 1 }]);
}

#[test]
fn a_finished_scale_out_lets_the_service_scale_out_again() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, 0..10);
    let r0 = the_action(&h.fail(0, FailureType::Degraded));
    h.outcome(r0.id, Outcome::Failed);
    let scale = the_action(&h.next_timer());
    assert_eq!(scale.kind, ActionKind::ScaleOut { by: 1 });
    let r1 = the_action(&h.fail(1, FailureType::Degraded));
    h.outcome(r1.id, Outcome::Failed);
    assert_eq!(withheld(&h.next_timer()), [HoldReason::ScaleOutInFlight]);
    // The scale-out is done: the service may scale out again, for instance 1.
    let out = h.outcome(scale.id, Outcome::Succeeded);
    let next = the_action(&out);
    assert_eq!((next.instance, next.kind), (Some(i(1)), ActionKind::ScaleOut { by: 1 }));
}

// ---------------------------------------------------------------- escalation

#[test]
fn crash_ladder_restarts_then_replaces_then_asks_a_human() {
    marks::take("asked_human");
    let mut h = Harness::new(config(&[(0, &[])])).with(0, [0]);
    let mut seen = Vec::new();
    let mut out = h.fail(0, FailureType::Crashed);
    for _ in 0..8 {
        let a = actions(&out);
        if let Some(a) = a.first() {
            seen.push(a.kind);
            if let ActionKind::AskHuman { .. } = a.kind {
                break;
            }
            h.outcome(a.id, Outcome::Failed);
        }
        out = h.next_timer();
    }
    assert_eq!(
        seen,
        [
            ActionKind::Restart,
            ActionKind::Restart,
            ActionKind::Restart,
            ActionKind::Replace,
            ActionKind::AskHuman { reason: HumanReason::LadderExhausted { failure: FailureType::Crashed } },
        ]
    );
    let escalations: Vec<DecisionKind> =
        decisions(&h.log).into_iter().filter(|d| matches!(d, DecisionKind::Escalated { .. })).collect();
    assert_eq!(
        escalations,
        [
            DecisionKind::Escalated { from_rung: 0, to_rung: 1 },
            DecisionKind::Escalated { from_rung: 1, to_rung: 2 }
        ]
    );
    assert_eq!(marks::take("asked_human"), 1);
    assert_eq!(h.c.get().stats().asked_human, 1);
    // Nothing more is tried, and no timer is left.
    assert_eq!(h.c.poll_timeout(), None);
}

#[test]
fn an_action_without_outcome_times_out_as_failed() {
    marks::take("action_timed_out");
    let mut h = Harness::new(config(&[(0, &[])])).with(0, [0]);
    let a = the_action(&h.fail(0, FailureType::Crashed));
    assert_eq!(h.c.poll_timeout(), Some(Instant::ZERO + Duration::from_secs(60)));
    let out = h.at(Instant::from_secs(60));
    assert!(
        decisions(&out).contains(&DecisionKind::AttemptFailed { attempt: a.id.attempt, timed_out: true })
    );
    assert_eq!(marks::take("action_timed_out"), 1);
    // The late outcome is stale.
    marks::take("stale_outcome");
    assert!(h.outcome(a.id, Outcome::Succeeded).is_empty());
    assert_eq!(marks::take("stale_outcome"), 1);
    assert_eq!(h.c.get().stats().stale_outcomes, 1);
}

#[test]
fn a_worse_report_reclassifies_a_pending_episode() {
    marks::take("reclassified_by_report");
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_concurrent = 1;
    let mut h = Harness::new(cfg).with(0, [0, 1]);
    h.fail(0, FailureType::Crashed);
    h.fail(1, FailureType::Degraded); // held: the global limit
    let out = h.fail(1, FailureType::Crashed);
    assert!(
        decisions(&out)
            .contains(&DecisionKind::Reclassified { from: FailureType::Degraded, to: FailureType::Crashed })
    );
    assert_eq!(marks::take("reclassified_by_report"), 1);
    // A milder report joins the episode and changes nothing.
    assert!(h.fail(1, FailureType::Degraded).is_empty());
    assert_eq!(h.episode(1).map(|e| e.failure), Some(FailureType::Crashed));
    assert_eq!(h.c.get().stats().duplicate_reports, 1);
}

/// Fail every action of `instance`'s episode, opened by a `failure`
/// report, until a human is asked; returns each action's kind and the rung
/// its `Acting` decision named (`None` for the ask).
fn climb_to_a_human(h: &mut Harness, instance: u32, failure: FailureType) -> Vec<(ActionKind, Option<u8>)> {
    let mut seen = Vec::new();
    let mut out = h.fail(instance, failure);
    // A step budget: a ladder that never ends fails the test instead of hanging it.
    for _ in 0..MAX_RUNGS * 8 {
        if actions(&out).is_empty() {
            out = h.next_timer();
            continue;
        }
        let a = the_action(&out);
        let rung = decisions(&out).into_iter().find_map(|d| match d {
            DecisionKind::Acting { rung, attempt, .. } if attempt == a.id.attempt => Some(rung),
            _ => None,
        });
        seen.push((a.kind, rung));
        if let ActionKind::AskHuman { .. } = a.kind {
            return seen;
        }
        out = h.outcome(a.id, Outcome::Failed);
    }
    panic!("no human asked within the step budget: {seen:?}");
}

#[test]
fn every_default_ladder_climbs_to_a_human_in_its_documented_order() {
    use ActionKind::{Replace, Reroute, Restart, ScaleOut};
    let ask = |failure| (ActionKind::AskHuman { reason: HumanReason::LadderExhausted { failure } }, None);
    let expected = [
        (
            FailureType::Crashed,
            vec![(Restart, Some(0)), (Restart, Some(0)), (Restart, Some(0)), (Replace, Some(1))],
        ),
        (FailureType::Unresponsive, vec![(Restart, Some(0)), (Restart, Some(0)), (Replace, Some(1))]),
        (FailureType::Degraded, vec![(Reroute, Some(0)), (ScaleOut { by: 1 }, Some(1))]),
        (FailureType::CrashLooping, vec![(Replace, Some(0)), (Replace, Some(0))]),
    ];
    for (failure, mut ladder) in expected {
        let mut h = Harness::new(config(&[(0, &[])])).with(0, [0]);
        ladder.push(ask(failure));
        assert_eq!(climb_to_a_human(&mut h, 0, failure), ladder, "the {failure} ladder");
        let e = h.episode(0).expect("an asked episode stays open");
        assert!(matches!(e.phase, EpisodePhase::AskedHuman { .. }));
        assert_eq!(e.attempts as usize, ladder.len(), "the ask is the last attempt");
        assert_eq!(h.c.poll_timeout(), None, "nothing more is tried for {failure}");
    }
}

#[test]
fn worse_reports_reclassify_a_held_episode_in_order_of_severity() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_concurrent = 1;
    let mut h = Harness::new(cfg).with(0, [0, 1]);
    the_action(&h.fail(0, FailureType::Crashed)); // takes the only slot
    h.fail(1, FailureType::Degraded);
    let mut reclassified = Vec::new();
    for failure in [FailureType::Unresponsive, FailureType::Crashed, FailureType::CrashLooping] {
        let out = h.fail(1, failure);
        reclassified
            .extend(decisions(&out).into_iter().filter(|d| matches!(d, DecisionKind::Reclassified { .. })));
    }
    let step = |from, to| DecisionKind::Reclassified { from, to };
    assert_eq!(
        reclassified,
        [
            step(FailureType::Degraded, FailureType::Unresponsive),
            step(FailureType::Unresponsive, FailureType::Crashed),
            step(FailureType::Crashed, FailureType::CrashLooping),
        ]
    );
    // Nothing is worse than crash-looping: milder reports only join.
    for failure in [FailureType::Degraded, FailureType::Unresponsive, FailureType::Crashed] {
        assert!(h.fail(1, failure).is_empty());
    }
    assert_eq!(h.episode(1).map(|e| e.failure), Some(FailureType::CrashLooping));
    assert_eq!(h.c.get().stats().duplicate_reports, 3);
}

#[test]
fn a_worse_report_during_an_action_waits_for_its_outcome() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, [0]);
    let reroute = the_action(&h.fail(0, FailureType::Degraded));
    assert!(h.fail(0, FailureType::Crashed).is_empty(), "no second action beside the one in flight");
    let e = h.episode(0).expect("open");
    assert_eq!(e.failure, FailureType::Degraded);
    assert_eq!(e.phase, EpisodePhase::Acting { id: reroute.id, strategy: Strategy::Reroute });
    assert_eq!(h.c.get().stats().duplicate_reports, 1);
}

// -------------------------------------------------------------------- limits

#[test]
fn the_global_limit_holds_and_releases_oldest_first() {
    let mut cfg = config(&[(0, &[]), (1, &[]), (2, &[]), (3, &[])]);
    cfg.limits.max_concurrent = 2;
    let mut h = Harness::new(cfg).with(0, [0]).with(1, [1]).with(2, [2]).with(3, [3]);
    let a0 = the_action(&h.fail(0, FailureType::Crashed));
    the_action(&h.fail(1, FailureType::Crashed));
    let out = h.fail(2, FailureType::Crashed);
    assert!(actions(&out).is_empty());
    assert_eq!(withheld(&out), [HoldReason::GlobalLimit { max: 2 }]);
    let out = h.fail(3, FailureType::Crashed);
    assert!(actions(&out).is_empty());
    assert_eq!(h.c.get().in_flight(), 2);
    // A slot frees: the oldest held episode (instance 2) goes first.
    let out = h.outcome(a0.id, Outcome::Succeeded);
    assert_eq!(the_action(&out).instance, Some(i(2)));
    assert_eq!(h.c.get().in_flight(), 2);
}

#[test]
fn a_service_never_recovers_more_than_its_share() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_service_share_permille = 250;
    cfg.storm.min_instances = 1000; // not a storm test
    let mut h = Harness::new(cfg).with(0, 0..8);
    assert_eq!(h.c.get().service_limit(s(0)), 2);
    let mut started = 0;
    for n in 0..4 {
        started += actions(&h.fail(n, FailureType::Crashed)).len();
    }
    assert_eq!(started, 2);
    assert_eq!(h.c.get().in_flight_of(s(0)), 2);
    assert_eq!(
        h.episode(2).map(|e| e.phase),
        Some(EpisodePhase::Pending { held: Some(HoldReason::ServiceLimit { max: 2 }) })
    );
}

#[test]
fn a_singleton_service_may_always_recover_its_instance() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_service_share_permille = 100;
    let mut h = Harness::new(cfg).with(0, [0]);
    assert_eq!(h.c.get().service_limit(s(0)), 1);
    assert_eq!(kinds(&h.fail(0, FailureType::Crashed)), [ActionKind::Restart]);
}

#[test]
fn deregistering_abandons_the_episode_and_frees_its_slot() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_concurrent = 1;
    let mut h = Harness::new(cfg).with(0, [0, 1]);
    h.fail(0, FailureType::Crashed);
    assert!(actions(&h.fail(1, FailureType::Crashed)).is_empty());
    let out = h.input(RecoveryInput::Deregister { instance: i(0) });
    assert_eq!(decisions(&out)[0], DecisionKind::Abandoned);
    assert_eq!(the_action(&out).instance, Some(i(1)));
}

#[test]
fn a_withheld_episode_says_why_once_per_change_of_reason() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_concurrent = 1;
    let mut h = Harness::new(cfg).with(0, 0..10);
    the_action(&h.fail(0, FailureType::Crashed));
    assert_eq!(withheld(&h.fail(1, FailureType::Crashed)), [HoldReason::GlobalLimit { max: 1 }]);
    // Reconsidered on the next input for the same reason: not repeated.
    let out = h.fail(2, FailureType::Crashed);
    let about: Vec<Option<InstanceId>> = out
        .iter()
        .filter_map(|o| match o {
            RecoveryOutput::Decision(d) if matches!(d.kind, DecisionKind::Withheld { .. }) => {
                Some(d.instance)
            }
            _ => None,
        })
        .collect();
    assert_eq!(about, [Some(i(2))]);
    // A new reason is news, for each held episode.
    let out = h.input(RecoveryInput::ObserveUnhealthy { scope: StormScope::Global, unhealthy: 9, total: 10 });
    let storm = HoldReason::Storm { scope: StormScope::Global };
    assert_eq!(withheld(&out), [storm, storm]);
}

#[test]
fn deregistering_a_healthy_instance_shrinks_its_services_share() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_service_share_permille = 250;
    let mut h = Harness::new(cfg).with(0, 0..8);
    assert_eq!(h.c.get().service_limit(s(0)), 2);
    for n in 4..8 {
        assert!(h.input(RecoveryInput::Deregister { instance: i(n) }).is_empty(), "no episode to abandon");
    }
    assert_eq!(h.c.get().service_of(i(7)), None);
    assert_eq!(h.c.get().service_limit(s(0)), 1);
    the_action(&h.fail(0, FailureType::Crashed));
    assert_eq!(withheld(&h.fail(1, FailureType::Crashed)), [HoldReason::ServiceLimit { max: 1 }]);
    // A departed instance's reports are refused.
    h.input(RecoveryInput::Failure(FailureReport {
        instance: i(7),
        service: s(0),
        failure: FailureType::Crashed,
    }));
    assert_eq!(h.c.get().stats().rejected_inputs, 1);
}

#[test]
fn instances_register_in_any_id_order_and_a_departed_id_may_join_another_service() {
    let mut c = RecoveryCoordinator::new(config(&[(0, &[]), (1, &[])]), Seed(1)).expect("valid");
    let t = Instant::ZERO;
    assert_eq!(c.register(t, i(5), s(0)), Ok(()));
    assert_eq!(c.register(t, i(2), s(0)), Ok(()), "below the largest id");
    assert_eq!((c.service_of(i(2)), c.service_of(i(5))), (Some(s(0)), Some(s(0))));
    assert_eq!(c.service_limit(s(0)), 2);
    assert!(c.deregister(t, i(2)));
    assert_eq!(c.register(t, i(2), s(1)), Ok(()));
    assert_eq!(c.service_of(i(2)), Some(s(1)));
    assert_eq!((c.service_limit(s(0)), c.service_limit(s(1))), (1, 1));
    // Undeclared services have no share and nothing in flight.
    assert_eq!((c.service_limit(s(9)), c.in_flight_of(s(9))), (0, 0));
    assert_eq!(c.poll_output(), None, "registration decides nothing");
}

// ----------------------------------------------------------------- intensity

#[test]
fn instance_intensity_exceeded_means_crash_looping_and_replace() {
    marks::take("crash_looping");
    let mut cfg = config(&[(0, &[])]);
    cfg.instance_intensity = Intensity { max_restarts: 2, period: Duration::from_secs(600) };
    cfg.backoff.reset_after = Duration::from_secs(3600);
    let mut h = Harness::new(cfg).with(0, [0]);
    for _ in 0..2 {
        let mut out = h.fail(0, FailureType::Crashed);
        // Backed off after the first restart: traffic is taken away at
        // once, the restart waits.
        if actions(&out).iter().all(|a| a.id.attempt == INTERIM_REROUTE) {
            out = h.next_timer();
        }
        let a = the_action(&out);
        assert_eq!(a.kind, ActionKind::Restart);
        h.outcome(a.id, Outcome::Succeeded);
    }
    // A third crash within the period: crash-looping, replaced instead.
    h.fail(0, FailureType::Crashed);
    let out = h.next_timer();
    assert_eq!(
        decisions(&out)[..2],
        [
            DecisionKind::IntensityExceeded { scope: IntensityScope::Instance },
            DecisionKind::Reclassified { from: FailureType::Crashed, to: FailureType::CrashLooping },
        ]
    );
    assert_eq!(kinds(&out), [ActionKind::Replace]);
    assert_eq!(marks::take("crash_looping"), 1);
}

#[test]
fn service_intensity_counts_restarts_of_all_its_instances() {
    let mut cfg = config(&[(0, &[])]);
    cfg.service_intensity = Intensity { max_restarts: 2, period: Duration::from_secs(600) };
    cfg.storm.min_instances = 1000;
    let mut h = Harness::new(cfg).with(0, 0..4);
    assert_eq!(kinds(&h.fail(0, FailureType::Crashed)), [ActionKind::Restart]);
    assert_eq!(kinds(&h.fail(1, FailureType::Crashed)), [ActionKind::Restart]);
    let out = h.fail(2, FailureType::Crashed);
    assert!(decisions(&out).contains(&DecisionKind::IntensityExceeded { scope: IntensityScope::Service }));
    assert_eq!(kinds(&out), [ActionKind::Replace]);
    // Once the period has passed, restarts are allowed again. The period is
    // closed, as Erlang/OTP's: at 600 s the restarts at 0 s still count.
    h.at(Instant::from_secs(600) + Duration::from_nanos(1));
    assert_eq!(kinds(&h.fail(3, FailureType::Crashed)), [ActionKind::Restart]);
}

#[test]
fn a_crash_looping_ladder_skips_restarts_while_intensity_is_exceeded() {
    marks::take("restart_rung_skipped");
    let mut cfg = config(&[(0, &[])]);
    cfg.instance_intensity = Intensity { max_restarts: 1, period: Duration::from_secs(600) };
    cfg.default_policy.crash_looping =
        Ladder::new([Rung::new(Strategy::Restart, 1), Rung::new(Strategy::Replace, 1)]);
    let mut h = Harness::new(cfg).with(0, [0]);
    let a = the_action(&h.fail(0, FailureType::Crashed));
    h.outcome(a.id, Outcome::Failed);
    let out = h.next_timer();
    assert_eq!(kinds(&out), [ActionKind::Replace]);
    assert_eq!(marks::take("restart_rung_skipped"), 1);
}

// ------------------------------------------------------------------- backoff

#[test]
fn backoff_grows_within_its_bounds_and_resets_after_quiet() {
    marks::take("backoff_reset");
    let mut cfg = config(&[(0, &[])]);
    cfg.default_policy.crashed = Ladder::new([Rung::new(Strategy::Restart, 8)]);
    let backoff = cfg.backoff;
    let mut h = Harness::new(cfg).with(0, [0]);
    let mut a = the_action(&h.fail(0, FailureType::Crashed));
    assert_eq!(a.at, h.now, "first attempt without delay");
    for n in 0..5 {
        let out = h.outcome(a.id, Outcome::Failed);
        let [HoldReason::Backoff { until }] = withheld(&out)[..] else {
            panic!("backoff expected in {out:?}")
        };
        let delay = until.saturating_duration_since(h.now);
        assert!(delay <= backoff.ceiling(n), "delay {delay:?} over ceiling {:?}", backoff.ceiling(n));
        let out = h.next_timer();
        a = the_action(&out);
        assert_eq!(a.at, until);
    }
    h.outcome(a.id, Outcome::Succeeded);
    // A recurrence soon after: the restart is backed off; only traffic is
    // taken away at once.
    let out = h.fail(0, FailureType::Crashed);
    assert_eq!(kinds(&out), [ActionKind::Reroute]);
    assert_eq!(actions(&out)[0].id.attempt, INTERIM_REROUTE);
    assert!(matches!(withheld(&out)[..], [HoldReason::Backoff { .. }]));
    let a = the_action(&h.next_timer());
    h.outcome(a.id, Outcome::Succeeded);
    // Quiet for `reset_after`: immediate again.
    h.at(h.now + backoff.reset_after);
    assert_eq!(kinds(&h.fail(0, FailureType::Crashed)), [ActionKind::Restart]);
    assert_eq!(marks::take("backoff_reset"), 1);
}

// -------------------------------------------------------------- dependencies

/// checkout (0) depends on payments (1); two instances each.
fn checkout_payments() -> Harness {
    Harness::new(config(&[(0, &[1]), (1, &[])])).with(0, [0, 1]).with(1, [10, 11])
}

#[test]
fn the_root_cause_is_recovered_first_and_dependents_heal_without_restarts() {
    marks::take("held_for_dependency");
    marks::take("settle_after_dependency");
    let mut h = checkout_payments();
    let p0 = the_action(&h.fail(10, FailureType::Crashed));
    let p1 = the_action(&h.fail(11, FailureType::Crashed));
    assert_eq!(p0.service, s(1));
    // Checkout's instances time out on payments: held for the root cause.
    for n in [0, 1] {
        let out = h.fail(n, FailureType::Unresponsive);
        assert!(actions(&out).is_empty());
        assert_eq!(withheld(&out), [HoldReason::Dependency { root: s(1) }]);
    }
    assert!(marks::take("held_for_dependency") > 0);
    // Payments recovers: checkout settles instead of restarting.
    h.outcome(p0.id, Outcome::Succeeded);
    let out = h.outcome(p1.id, Outcome::Succeeded);
    assert!(actions(&out).is_empty());
    assert!(matches!(withheld(&out)[..], [HoldReason::Settling { .. }, HoldReason::Settling { .. }]));
    assert!(marks::take("settle_after_dependency") > 0);
    // They heal by themselves within the grace: no restart at all.
    h.healthy(0);
    h.healthy(1);
    let restarts = actions(&h.log).into_iter().filter(|a| a.service == s(0)).count();
    assert_eq!(restarts, 0, "no pointless restarts of dependents");
}

#[test]
fn a_dependent_still_failing_after_the_grace_is_recovered() {
    let mut h = checkout_payments();
    let p0 = the_action(&h.fail(10, FailureType::Crashed));
    h.fail(11, FailureType::Crashed);
    h.fail(0, FailureType::Unresponsive);
    h.outcome(p0.id, Outcome::Succeeded); // payments at 50 %: still impaired
    assert!(matches!(
        h.episode(0).map(|e| e.phase),
        Some(EpisodePhase::Pending { held: Some(HoldReason::Dependency { .. }) })
    ));
    let p1 = actions(&h.log).into_iter().find(|a| a.instance == Some(i(11))).expect("payments/1 restarted");
    h.outcome(p1.id, Outcome::Succeeded);
    let out = h.next_timer();
    assert_eq!(the_action(&out).instance, Some(i(0)));
    assert_eq!(the_action(&out).at, Instant::ZERO + Duration::from_secs(10));
}

#[test]
fn in_a_chain_the_deepest_impaired_service_is_the_root() {
    let mut h =
        Harness::new(config(&[(0, &[1]), (1, &[2]), (2, &[])])).with(0, [0]).with(1, [1]).with(2, [2]);
    the_action(&h.fail(2, FailureType::Crashed));
    assert_eq!(withheld(&h.fail(1, FailureType::Unresponsive)), [HoldReason::Dependency { root: s(2) }]);
    assert_eq!(withheld(&h.fail(0, FailureType::Unresponsive)), [HoldReason::Dependency { root: s(2) }]);
}

#[test]
fn a_policy_may_opt_out_of_holding_for_dependencies() {
    let mut cfg = config(&[(0, &[1]), (1, &[])]);
    cfg.default_policy.hold_for_dependencies = false;
    let mut h = Harness::new(cfg).with(0, [0]).with(1, [1]);
    h.fail(1, FailureType::Crashed);
    assert_eq!(kinds(&h.fail(0, FailureType::Crashed)), [ActionKind::Restart]);
}

#[test]
fn circuits_isolate_a_failing_dependency_and_probe_it_half_open() {
    marks::take("circuit_opened");
    marks::take("circuit_reopened");
    marks::take("circuit_closed");
    let mut cfg = config(&[(0, &[1]), (1, &[])]);
    cfg.default_policy.isolate_dependencies = true;
    let mut h = Harness::new(cfg).with(0, [0]).with(1, [1]);
    h.fail(1, FailureType::Crashed);
    let out = h.fail(0, FailureType::Unresponsive);
    let open = the_action(&out);
    assert!(decisions(&out).contains(&DecisionKind::Isolating { circuit: open.id.correlation, to: s(1) }));
    assert_eq!((open.service, open.instance, open.kind), (s(0), None, ActionKind::OpenCircuit { to: s(1) }));
    assert_eq!(marks::take("circuit_opened"), 1);
    // After open_for, a half-open probe.
    let out = h.at(Instant::from_secs(30));
    let probe = the_action(&out);
    assert_eq!(probe.kind, ActionKind::HalfOpen { to: s(1) });
    assert_eq!(probe.id.correlation, open.id.correlation);
    // It fails: open again, for twice as long.
    let out = h.outcome(probe.id, Outcome::Failed);
    assert_eq!(decisions(&out), [DecisionKind::CircuitProbeFailed]);
    assert_eq!(kinds(&out), [ActionKind::OpenCircuit { to: s(1) }]);
    assert_eq!(marks::take("circuit_reopened"), 1);
    let out = h.at(Instant::from_secs(30 + 60));
    let probe = the_action(&out);
    let out = h.outcome(probe.id, Outcome::Succeeded);
    assert_eq!(kinds(&out), [ActionKind::CloseCircuit { to: s(1) }]);
    assert_eq!(marks::take("circuit_closed"), 1);
}

#[test]
fn a_dependent_waits_to_confirm_and_a_dependency_reported_meanwhile_is_the_root_cause() {
    marks::take("confirm_dependencies");
    let cfg = config(&[(0, &[1]), (1, &[])]);
    let confirm = cfg.dependency.confirm;
    assert!(!confirm.is_zero(), "on by default");
    let mut h = Harness::new(cfg).with(0, [0, 1]).with(1, [10, 11]);
    // The dependent's failure is reported first: it waits to confirm.
    let out = h.fail(0, FailureType::Crashed);
    assert!(actions(&out).is_empty(), "no action on a symptom at once: {out:?}");
    assert_eq!(withheld(&out), [HoldReason::Settling { until: h.now + confirm }]);
    assert_eq!(marks::take("confirm_dependencies"), 1);
    // Its dependency's failure comes a moment later: the root cause acts,
    // the dependent is held for it.
    h.now += Duration::from_millis(500);
    let root = the_action(&h.fail(10, FailureType::Crashed));
    assert_eq!(root.instance, Some(i(10)));
    let out = h.next_timer();
    assert!(actions(&out).is_empty(), "the dependent is still held: {out:?}");
    assert_eq!(
        h.episode(0).map(|e| e.phase),
        Some(EpisodePhase::Pending { held: Some(HoldReason::Dependency { root: s(1) }) })
    );
}

#[test]
fn a_dependent_whose_dependencies_are_fine_acts_after_confirming() {
    let cfg = config(&[(0, &[1]), (1, &[])]);
    let confirm = cfg.dependency.confirm;
    let mut h = Harness::new(cfg).with(0, [0, 1]).with(1, [10, 11]);
    let start = h.now;
    assert!(actions(&h.fail(0, FailureType::Crashed)).is_empty());
    let a = the_action(&h.next_timer());
    assert_eq!((a.instance, a.kind, a.at), (Some(i(0)), ActionKind::Restart, start + confirm));
    // A service without dependencies never waits to confirm.
    let b = the_action(&h.fail(10, FailureType::Crashed));
    assert_eq!(b.at, h.now);
}

#[test]
fn with_no_grace_a_dependent_acts_as_soon_as_its_dependency_recovers() {
    let mut cfg = config(&[(0, &[1]), (1, &[])]);
    cfg.dependency.grace = Duration::ZERO;
    cfg.dependency.confirm = Duration::ZERO;
    let mut h = Harness::new(cfg).with(0, [0, 1]).with(1, [10, 11]);
    let p = the_action(&h.fail(10, FailureType::Crashed));
    assert_eq!(withheld(&h.fail(0, FailureType::Unresponsive)), [HoldReason::Dependency { root: s(1) }]);
    let out = h.outcome(p.id, Outcome::Succeeded);
    let a = the_action(&out);
    assert_eq!((a.instance, a.kind, a.at), (Some(i(0)), ActionKind::Restart, h.now));
}

#[test]
fn a_dependent_still_backing_off_waits_out_its_backoff_not_a_grace() {
    let mut cfg = config(&[(0, &[1]), (1, &[])]);
    cfg.dependency.grace = Duration::ZERO;
    cfg.dependency.confirm = Duration::ZERO;
    let mut h = Harness::new(cfg).with(0, [0, 1]).with(1, [10, 11]);
    // Checkout/0 crashes while payments is fine: restarted, which fails.
    let a = the_action(&h.fail(0, FailureType::Crashed));
    let out = h.outcome(a.id, Outcome::Failed);
    let [HoldReason::Backoff { until }] = withheld(&out)[..] else { panic!("backoff expected in {out:?}") };
    assert!(until > h.now);
    // Payments fails meanwhile: checkout is held for it.
    let p = the_action(&h.fail(10, FailureType::Crashed));
    assert_eq!(
        h.episode(0).map(|e| e.phase),
        Some(EpisodePhase::Pending { held: Some(HoldReason::Dependency { root: s(1) }) })
    );
    // Payments recovers before checkout's backoff ends: the backoff still holds.
    let out = h.outcome(p.id, Outcome::Succeeded);
    assert!(actions(&out).is_empty());
    assert_eq!(withheld(&out), [HoldReason::Backoff { until }]);
    assert_eq!(the_action(&h.next_timer()).at, until);
}

/// checkout (0) depends on payments (1), which isolates; payments' crash
/// ladder is empty, so its instance stays failing (a human is asked) and
/// sets no timer: only the circuit's timers run.
fn isolated_payments() -> (Harness, Action) {
    let mut cfg = config(&[(0, &[1]), (1, &[])]);
    cfg.default_policy.isolate_dependencies = true;
    cfg.policies.insert("payments".into(), Policy { crashed: Ladder::default(), ..Policy::default() });
    cfg.services[1].policy = Some("payments".into());
    let mut h = Harness::new(cfg).with(0, [0]).with(1, [1]);
    assert!(matches!(kinds(&h.fail(1, FailureType::Crashed))[..], [ActionKind::AskHuman { .. }]));
    let open = the_action(&h.fail(0, FailureType::Unresponsive));
    assert_eq!(open.kind, ActionKind::OpenCircuit { to: s(1) });
    (h, open)
}

#[test]
fn a_half_open_probe_that_times_out_opens_the_circuit_again_for_longer() {
    marks::take("circuit_reopened");
    let (mut h, open) = isolated_payments();
    assert_eq!(h.c.poll_timeout(), Some(Instant::from_secs(30)), "open_for");
    let probe = the_action(&h.next_timer());
    assert_eq!(probe.kind, ActionKind::HalfOpen { to: s(1) });
    assert_eq!(h.c.poll_timeout(), Some(Instant::from_secs(30 + 60)), "the probe's action_timeout");
    // No answer in time: a failed probe.
    let out = h.next_timer();
    assert_eq!(decisions(&out), [DecisionKind::CircuitProbeFailed]);
    let reopen = the_action(&out);
    assert_eq!(reopen.kind, ActionKind::OpenCircuit { to: s(1) });
    assert_eq!(reopen.id, ActionId { correlation: open.id.correlation, attempt: 3 });
    assert_eq!(marks::take("circuit_reopened"), 1);
    assert_eq!(h.c.poll_timeout(), Some(Instant::from_secs(90 + 60)), "open twice as long");
    // The probe's answer, too late, closes nothing.
    assert!(h.outcome(probe.id, Outcome::Succeeded).is_empty());
    assert_eq!(h.c.get().stats().stale_outcomes, 1);
}

#[test]
fn outcomes_naming_no_probe_in_flight_are_stale_and_change_nothing() {
    marks::take("stale_outcome");
    let (mut h, open) = isolated_payments();
    // The open action itself expects no answer that could close the circuit.
    assert!(h.outcome(open.id, Outcome::Succeeded).is_empty());
    // Nor does an action nobody started.
    let unknown = ActionId { correlation: CorrelationId(999), attempt: 1 };
    assert!(h.outcome(unknown, Outcome::Failed).is_empty());
    assert_eq!(marks::take("stale_outcome"), 2);
    assert_eq!(h.c.get().stats().stale_outcomes, 2);
    assert_eq!(h.c.poll_timeout(), Some(Instant::from_secs(30)), "the circuit still waits open_for");
}

#[test]
fn a_circuit_closed_by_a_good_probe_stays_closed_until_the_hold_begins_again() {
    let (mut h, open) = isolated_payments();
    let probe = the_action(&h.next_timer());
    assert_eq!(kinds(&h.outcome(probe.id, Outcome::Succeeded)), [ActionKind::CloseCircuit { to: s(1) }]);
    // Payments is still failing and checkout still held: the circuit stays
    // closed, and nothing is timed while they wait for a human.
    assert!(actions(&h.fail(0, FailureType::Unresponsive)).is_empty());
    assert_eq!(h.c.poll_timeout(), None);
    assert!(h.at(Instant::from_secs(1000)).is_empty());
    // Payments heals (checkout settles), then fails again: a new hold, a new circuit.
    h.healthy(1);
    let out = h.fail(1, FailureType::Crashed);
    let reopened = actions(&out).into_iter().find(|a| a.kind == ActionKind::OpenCircuit { to: s(1) });
    let reopened = reopened.expect("the circuit opens again");
    assert_ne!(reopened.id.correlation, open.id.correlation, "a circuit of its own");
    assert!(
        decisions(&out).contains(&DecisionKind::Isolating { circuit: reopened.id.correlation, to: s(1) })
    );
}

// ----------------------------------------------------------------- partitions

#[test]
fn a_cut_off_instance_is_rerouted_at_once_and_never_restarted_while_held() {
    marks::take("held_unreachable");
    let mut h = Harness::new(config(&[(0, &[])])).with(0, [0, 1, 2]);
    let until = h.now + Duration::from_secs(60);
    h.input(RecoveryInput::Unreachable { instance: i(0), until, why: Unreachability::CutOff });
    let out = h.fail(0, FailureType::Unresponsive);
    // Traffic away at once (the 3 s rule), nothing else.
    assert_eq!(kinds(&out), [ActionKind::Reroute]);
    assert_eq!(actions(&out)[0].id.attempt, INTERIM_REROUTE);
    assert_eq!(withheld(&out), [HoldReason::Partitioned { until, why: Unreachability::CutOff }]);
    assert_eq!(h.c.get().in_flight(), 0, "an interim reroute holds no slot");
    // The partition heals before the hold lapses: healed by itself.
    h.at(h.now + Duration::from_secs(20));
    let out = h.healthy(0);
    assert!(decisions(&out).contains(&DecisionKind::Resolved { by_action: false }));
    assert!(
        !h.log.iter().any(|o| matches!(o, RecoveryOutput::Action(a) if a.kind == ActionKind::Restart)),
        "no restart of a cut-off instance: {:?}",
        h.log
    );
    assert!(marks::take("held_unreachable") >= 1);
}

#[test]
fn a_hold_that_lapses_or_is_withdrawn_lets_recovery_act() {
    marks::take("unreachable_lapsed");
    let mut h = Harness::new(config(&[(0, &[])])).with(0, [0, 1]);
    let until = h.now + Duration::from_secs(3);
    h.input(RecoveryInput::Unreachable { instance: i(0), until, why: Unreachability::AwaitingClients });
    h.fail(0, FailureType::Unresponsive);
    // Nobody said it was alive: at `until`, it is restarted.
    let out = h.next_timer();
    assert_eq!(h.now, until);
    assert_eq!(kinds(&out), [ActionKind::Restart]);
    assert_eq!(marks::take("unreachable_lapsed"), 1);
    // Withdrawn before it lapses: acts at once.
    h.input(RecoveryInput::Unreachable {
        instance: i(1),
        until: h.now + Duration::from_secs(60),
        why: Unreachability::AwaitingClients,
    });
    assert_eq!(kinds(&h.fail(1, FailureType::Unresponsive)), [ActionKind::Reroute]);
    let out = h.input(RecoveryInput::Reachable { instance: i(1) });
    assert_eq!(kinds(&out), [ActionKind::Restart], "its clients' calls fail too: a failure");
}

#[test]
fn an_action_on_an_instance_judged_cut_off_frees_its_slot_for_the_others() {
    marks::take("unreachable_action_released");
    let mut cfg = config(&[(0, &[])]);
    cfg.limits = Limits { max_concurrent: 8, max_service_share_permille: 1 };
    let mut h = Harness::new(cfg).with(0, [0, 1, 2, 3, 4, 5]);
    // A restart starts on 2 before the judgment comes.
    let restart = the_action(&h.fail(2, FailureType::Unresponsive));
    assert_eq!(restart.kind, ActionKind::Restart);
    // A real crash elsewhere waits for the service's one slot.
    let out = h.fail(0, FailureType::Crashed);
    assert_eq!(withheld(&out), [HoldReason::ServiceLimit { max: 1 }]);
    // 2 is judged cut off: its restart, which cannot be confirmed until
    // the partition heals, no longer holds back the crash.
    let until = h.now + Duration::from_secs(60);
    let out = h.input(RecoveryInput::Unreachable { instance: i(2), until, why: Unreachability::CutOff });
    assert_eq!(kinds(&out), [ActionKind::Restart]);
    assert_eq!(actions(&out)[0].instance, Some(i(0)));
    assert_eq!(h.c.get().in_flight(), 1);
    assert_eq!(marks::take("unreachable_action_released"), 1);
    // The late outcome of 2's restart frees nothing twice.
    h.outcome(restart.id, Outcome::Failed);
    assert_eq!(h.c.get().in_flight(), 1);
}

#[test]
fn instances_judged_cut_off_do_not_make_a_storm() {
    let mut cfg = config(&[(0, &[])]);
    cfg.storm.min_instances = 4;
    let mut h = Harness::new(cfg).with(0, 0..6);
    let until = h.now + Duration::from_secs(60);
    for n in [3, 4, 5] {
        h.input(RecoveryInput::Unreachable { instance: i(n), until, why: Unreachability::CutOff });
        h.fail(n, FailureType::Unresponsive);
    }
    assert!(!h.c.get().in_storm(StormScope::Service(s(0))), "one partition, not three failures");
    // A real silence elsewhere is acted on at once.
    assert_eq!(kinds(&h.fail(0, FailureType::Unresponsive)), [ActionKind::Restart]);
}

// ---------------------------------------------------------------------- storm

#[test]
fn a_mass_failure_is_a_storm_and_nothing_more_is_restarted() {
    marks::take("storm_entered");
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_service_share_permille = 200; // 2 of 10 at once
    let mut h = Harness::new(cfg).with(0, 0..10);
    for n in 0..8 {
        h.fail(n, FailureType::Unresponsive);
    }
    let restarts = actions(&h.log).len();
    assert_eq!(restarts, 2, "only what the share allowed before the storm");
    assert!(decisions(&h.log).iter().any(|d| matches!(
        d,
        DecisionKind::StormSuspected { scope: StormScope::Global, unhealthy: 5, total: 10 }
    )));
    assert!(h.c.get().in_storm(StormScope::Service(s(0))));
    assert!(marks::take("storm_entered") >= 1);
    assert!(
        withheld(&h.log).contains(&HoldReason::Storm { scope: StormScope::Global }),
        "held for the storm: {:?}",
        withheld(&h.log)
    );
}

#[test]
fn a_mass_crash_is_no_storm_the_limits_pace_it_instead() {
    // Crashed instances answered (refusals, errors): the observer reaches
    // them, so however many crash, the observer is not suspected.
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_service_share_permille = 200; // 2 of 10 at once
    let mut h = Harness::new(cfg).with(0, 0..10);
    for n in 0..8 {
        h.fail(n, FailureType::Crashed);
    }
    assert!(!h.c.get().in_storm(StormScope::Global));
    assert!(!h.c.get().in_storm(StormScope::Service(s(0))));
    assert_eq!(actions(&h.log).len(), 2, "the service share paces the restarts");
    assert!(withheld(&h.log).contains(&HoldReason::ServiceLimit { max: 2 }), "{:?}", withheld(&h.log));
    assert!(!decisions(&h.log).iter().any(|d| matches!(d, DecisionKind::StormSuspected { .. })));
}

#[test]
fn an_observed_storm_holds_from_the_first_report_and_settles_after() {
    marks::take("settle_after_storm");
    let mut h = Harness::new(config(&[(0, &[])])).with(0, 0..10);
    // The monitor's summary: 9 of 10 unhealthy (it is partitioned).
    let out = h.input(RecoveryInput::ObserveUnhealthy {
        scope: StormScope::Service(s(0)),
        unhealthy: 9,
        total: 10,
    });
    assert!(matches!(decisions(&out)[..], [DecisionKind::StormSuspected { unhealthy: 9, total: 10, .. }]));
    for n in 0..4 {
        let out = h.fail(n, FailureType::Unresponsive);
        assert!(actions(&out).is_empty(), "no restart during a storm");
    }
    // The partition heals: the summary is clean, but 4 of 10 episodes are
    // still open: the storm lasts until the healthy reports come in.
    let out = h.input(RecoveryInput::ObserveUnhealthy {
        scope: StormScope::Service(s(0)),
        unhealthy: 0,
        total: 10,
    });
    assert!(decisions(&out).is_empty());
    h.healthy(0);
    let out = h.healthy(1);
    assert!(decisions(&out).contains(&DecisionKind::StormCleared { scope: StormScope::Service(s(0)) }));
    assert!(actions(&out).is_empty(), "held instances settle first");
    assert!(marks::take("settle_after_storm") > 0);
    for n in 2..4 {
        h.healthy(n);
    }
    assert!(actions(&h.log).is_empty(), "a healthy fleet behind a partitioned monitor is never restarted");
    assert_eq!(h.c.poll_timeout(), None);
}

#[test]
fn a_whole_service_degraded_is_an_overload_not_a_storm() {
    let mut cfg = config(&[(0, &[])]);
    cfg.limits.max_service_share_permille = 200;
    let mut h = Harness::new(cfg).with(0, 0..10);
    for n in 0..10 {
        h.fail(n, FailureType::Degraded);
    }
    assert!(!h.c.get().in_storm(StormScope::Global));
    assert_eq!(kinds(&h.log), [ActionKind::Reroute, ActionKind::Reroute]);
}

#[test]
fn small_services_are_never_in_a_storm() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, 0..3);
    for n in 0..3 {
        assert_eq!(actions(&h.fail(n, FailureType::Crashed)).len(), 1);
    }
}

#[test]
fn a_global_storm_holds_without_a_timer_then_held_episodes_settle_and_act() {
    let cfg = config(&[(0, &[])]);
    let settle = cfg.storm.settle;
    let mut h = Harness::new(cfg).with(0, 0..10);
    let out = h.input(RecoveryInput::ObserveUnhealthy { scope: StormScope::Global, unhealthy: 9, total: 10 });
    assert_eq!(
        decisions(&out),
        [DecisionKind::StormSuspected { scope: StormScope::Global, unhealthy: 9, total: 10 }]
    );
    for n in 0..2 {
        let out = h.fail(n, FailureType::Crashed);
        assert!(actions(&out).is_empty());
        assert_eq!(withheld(&out), [HoldReason::Storm { scope: StormScope::Global }]);
    }
    assert_eq!(h.c.poll_timeout(), None, "a storm ends by an input, not a timer");
    // The observer sees clearly again; two of ten still fail (under the exit share).
    let out = h.input(RecoveryInput::ObserveUnhealthy { scope: StormScope::Global, unhealthy: 0, total: 10 });
    assert!(decisions(&out).contains(&DecisionKind::StormCleared { scope: StormScope::Global }));
    let until = h.now + settle;
    assert_eq!(withheld(&out), [HoldReason::Settling { until }, HoldReason::Settling { until }]);
    // Still failing after settling: recovered.
    let out = h.next_timer();
    assert_eq!(kinds(&out), [ActionKind::Restart, ActionKind::Restart]);
    assert!(actions(&out).iter().all(|a| a.at == until));
}

// ---------------------------------------------------------- inputs and config

#[test]
fn inputs_that_make_no_sense_are_refused_and_change_nothing() {
    let mut c = RecoveryCoordinator::new(config(&[(0, &[]), (1, &[])]), Seed(1)).expect("valid");
    let t = Instant::ZERO;
    assert_eq!(c.register(t, i(0), s(9)), Err(RecoveryError::UnknownService { service: s(9) }));
    assert_eq!(
        c.register(t, i(MAX_INSTANCES), s(0)),
        Err(RecoveryError::InstanceIdTooLarge { instance: i(MAX_INSTANCES), max: MAX_INSTANCES - 1 })
    );
    assert_eq!(c.register(t, i(0), s(0)), Ok(()));
    assert_eq!(c.register(t, i(0), s(0)), Ok(()), "idempotent");
    assert_eq!(
        c.register(t, i(0), s(1)),
        Err(RecoveryError::ServiceMismatch { instance: i(0), registered: s(0) })
    );
    let report = FailureReport { instance: i(5), service: s(0), failure: FailureType::Crashed };
    assert_eq!(c.report_failure(t, report), Err(RecoveryError::NotRegistered { instance: i(5) }));
    let report = FailureReport { instance: i(0), service: s(1), failure: FailureType::Crashed };
    assert!(c.report_failure(t, report).is_err());
    assert!(!c.deregister(t, i(5)));
    assert_eq!(c.poll_output(), None);
    c.handle(t, RecoveryInput::Failure(report));
    assert_eq!(c.stats().rejected_inputs, 1);
    assert_eq!(c.poll_output(), None);
}

#[test]
fn health_events_map_to_failure_reports() {
    let reason = TransitionReason {
        check: Some(CheckRef { index: 0, kind: ProbeKind::Liveness }),
        cause: crate::health::Cause::ProbePassed,
    };
    let needs = crate::health::HealthEvent::NeedsRecovery {
        instance: i(3),
        service: s(1),
        status: crate::health::HealthStatus::Failed,
        reason,
        at: Instant::ZERO,
    };
    assert_eq!(
        FailureReport::from_health_event(&needs),
        Some(FailureReport { instance: i(3), service: s(1), failure: FailureType::Crashed })
    );
    assert_eq!(
        FailureType::from_status(crate::health::HealthStatus::Unresponsive),
        Some(FailureType::Unresponsive)
    );
    assert_eq!(FailureType::from_status(crate::health::HealthStatus::Healthy), None);
    let degraded = crate::health::HealthEvent::StatusChanged {
        instance: i(3),
        service: s(1),
        from: crate::health::HealthStatus::Healthy,
        to: crate::health::HealthStatus::Degraded,
        reason,
        at: Instant::ZERO,
    };
    assert_eq!(FailureReport::from_health_event(&degraded).map(|r| r.failure), Some(FailureType::Degraded));
    let healthy = crate::health::HealthEvent::StatusChanged {
        instance: i(3),
        service: s(1),
        from: crate::health::HealthStatus::Degraded,
        to: crate::health::HealthStatus::Healthy,
        reason,
        at: Instant::ZERO,
    };
    assert_eq!(RecoveryInput::from_health_event(&healthy), Some(RecoveryInput::Healthy { instance: i(3) }));
    assert!(matches!(RecoveryInput::from_health_event(&needs), Some(RecoveryInput::Failure(_))));
}

#[test]
fn bad_configurations_are_rejected_with_a_reason() {
    let build = |f: &dyn Fn(&mut RecoveryConfig)| {
        let mut cfg = config(&[(0, &[1]), (1, &[])]);
        f(&mut cfg);
        RecoveryCoordinator::new(cfg, Seed(0)).err()
    };
    assert_eq!(build(&|_| {}), None);
    assert_eq!(
        build(&|c| c.limits.max_concurrent = 0),
        Some(RecoveryConfigError::Zero { which: "limits.max_concurrent" })
    );
    assert_eq!(
        build(&|c| c.limits.max_service_share_permille = 1001),
        Some(RecoveryConfigError::Share { which: "limits.max_service_share_permille", value: 1001 })
    );
    assert_eq!(
        build(&|c| c.backoff.base = Duration::ZERO),
        Some(RecoveryConfigError::ZeroInterval { which: "backoff.base" })
    );
    assert!(matches!(
        build(&|c| c.backoff.cap = Duration::from_secs(1)),
        Some(RecoveryConfigError::CapBelowBase { .. })
    ));
    assert_eq!(
        build(&|c| c.instance_intensity.period = Duration::ZERO),
        Some(RecoveryConfigError::ZeroInterval { which: "instance_intensity" })
    );
    assert!(matches!(
        build(&|c| c.service_intensity.max_restarts = MAX_INTENSITY_RESTARTS + 1),
        Some(RecoveryConfigError::TooLarge { .. })
    ));
    assert_eq!(
        build(&|c| c.action_timeout = Duration::ZERO),
        Some(RecoveryConfigError::ZeroInterval { which: "action_timeout" })
    );
    assert_eq!(
        build(&|c| c.storm.exit_permille = 600),
        Some(RecoveryConfigError::StormHysteresis { enter: 500, exit: 600 })
    );
    assert!(matches!(
        build(&|c| c.default_policy.crashed = Ladder::new([Rung::new(Strategy::Restart, 0)])),
        Some(RecoveryConfigError::EmptyRung { failure: FailureType::Crashed, .. })
    ));
    assert!(matches!(
        build(
            &|c| c.default_policy.crashed = Ladder::new(vec![Rung::new(Strategy::Restart, 1); MAX_RUNGS + 1])
        ),
        Some(RecoveryConfigError::TooManyRungs { .. })
    ));
    assert!(matches!(
        build(&|c| c.services[0].policy = Some("nope".into())),
        Some(RecoveryConfigError::UnknownPolicy { .. })
    ));
    assert_eq!(
        build(&|c| c.services[1].depends_on = vec![s(0)]),
        Some(RecoveryConfigError::Cycle { cycle: vec![s(0), s(1)] })
    );
    assert!(matches!(
        build(&|c| c.default_policy.degraded = Ladder::new([Rung::new(Strategy::ScaleOut { by: 0 }, 1)])),
        Some(RecoveryConfigError::Zero { .. })
    ));
}

#[test]
fn every_setting_is_checked() {
    let build = |f: &dyn Fn(&mut RecoveryConfig)| {
        let mut cfg = config(&[(0, &[])]);
        f(&mut cfg);
        RecoveryCoordinator::new(cfg, Seed(0)).err()
    };
    let zero = Duration::ZERO;
    assert_eq!(
        build(&|c| c.backoff.reset_after = zero),
        Some(RecoveryConfigError::ZeroInterval { which: "backoff.reset_after" })
    );
    assert_eq!(
        build(&|c| c.circuit.open_for = zero),
        Some(RecoveryConfigError::ZeroInterval { which: "circuit.open_for" })
    );
    assert!(matches!(
        build(&|c| c.circuit.open_for_max = Duration::from_secs(1)),
        Some(RecoveryConfigError::CapBelowBase { .. })
    ));
    assert_eq!(
        build(&|c| c.instance_intensity.max_restarts = 0),
        Some(RecoveryConfigError::Zero { which: "instance_intensity" })
    );
    assert!(matches!(
        build(&|c| c.limits.max_concurrent = MAX_INSTANCES),
        Some(RecoveryConfigError::TooLarge { which: "limits.max_concurrent", .. })
    ));
    assert_eq!(
        build(&|c| c.storm.enter_permille = 0),
        Some(RecoveryConfigError::Share { which: "storm.enter_permille", value: 0 })
    );
    assert_eq!(
        build(&|c| c.storm.min_instances = 0),
        Some(RecoveryConfigError::Zero { which: "storm.min_instances" })
    );
    assert!(matches!(
        build(&|c| c.policies = (0..=MAX_POLICIES).map(|n| (n.to_string(), Policy::default())).collect()),
        Some(RecoveryConfigError::TooLarge { which: "policies", .. })
    ));
    assert!(matches!(
        build(&|c| c.services = (0..=MAX_SERVICES as u32).map(|n| ServiceSpec::new(s(n))).collect()),
        Some(RecoveryConfigError::TooLarge { which: "services", .. })
    ));
}

#[test]
fn identifiers_and_types_print_stably() {
    let id = ActionId { correlation: CorrelationId(7), attempt: 2 };
    assert_eq!(id.to_string(), "rec#7.2");
    let names: Vec<String> = FailureType::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["crashed", "unresponsive", "degraded", "crash-looping"]);
    let strategies = [Strategy::Restart, Strategy::Replace, Strategy::Reroute, Strategy::ScaleOut { by: 2 }];
    let names: Vec<String> = strategies.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["restart", "replace", "reroute", "scale-out+2"]);
    assert_eq!(FailureType::from_status(crate::health::HealthStatus::Degraded), Some(FailureType::Degraded));
    let ready = crate::health::HealthEvent::ReadinessChanged {
        instance: i(0),
        service: s(0),
        ready: false,
        at: Instant::ZERO,
    };
    assert_eq!(FailureReport::from_health_event(&ready), None);
}

#[test]
fn an_episode_can_be_inspected() {
    let mut h = Harness::new(config(&[(0, &[])])).with(0, [0]);
    let a = the_action(&h.fail(0, FailureType::Crashed));
    assert_eq!(h.c.get().service_of(i(0)), Some(s(0)));
    assert_eq!(
        h.episode(0),
        Some(EpisodeView {
            correlation: a.id.correlation,
            service: s(0),
            failure: FailureType::Crashed,
            position: Position::default(),
            attempts: 1,
            detected_at: Instant::ZERO,
            phase: EpisodePhase::Acting { id: a.id, strategy: Strategy::Restart },
        })
    );
}

#[test]
fn undrained_decisions_beyond_the_cap_are_dropped_but_actions_never_are() {
    let mut c = RecoveryCoordinator::new(config(&[(0, &[])]), Seed(1)).expect("valid");
    c.output_cap = 2;
    for n in 0..3 {
        c.register(Instant::ZERO, i(n), s(0)).expect("registers");
    }
    for n in 0..3 {
        let report = FailureReport { instance: i(n), service: s(0), failure: FailureType::Crashed };
        c.report_failure(Instant::ZERO, report).expect("reports");
    }
    let out: Vec<RecoveryOutput> = std::iter::from_fn(|| c.poll_output()).collect();
    assert_eq!(actions(&out).len(), 3, "every action kept");
    assert_eq!(decisions(&out).len(), 2);
    assert_eq!(c.stats().decisions_dropped, 4);
}

#[test]
fn named_policies_and_the_service_graph_are_checked_too() {
    let build = |f: &dyn Fn(&mut RecoveryConfig)| {
        let mut cfg = config(&[(0, &[1]), (1, &[])]);
        f(&mut cfg);
        RecoveryCoordinator::new(cfg, Seed(0)).err()
    };
    let bad = Policy { crashed: Ladder::new([Rung::new(Strategy::Restart, 0)]), ..Policy::default() };
    assert_eq!(
        build(&|c| {
            c.policies.insert("database".into(), bad.clone());
        }),
        Some(RecoveryConfigError::EmptyRung { policy: "database".into(), failure: FailureType::Crashed })
    );
    assert_eq!(
        build(&|c| c.services.push(ServiceSpec::new(s(0)))),
        Some(RecoveryConfigError::DuplicateService(s(0)))
    );
    assert_eq!(
        build(&|c| c.services[1].depends_on = vec![s(7)]),
        Some(RecoveryConfigError::UnknownDependency { service: s(1), dependency: s(7) })
    );
}

#[test]
fn error_messages_say_what_is_wrong_and_what_to_do() {
    let mut c = RecoveryCoordinator::new(config(&[(0, &[]), (1, &[])]), Seed(1)).expect("valid");
    let t = Instant::ZERO;
    let refused = [
        c.register(t, i(0), s(9)),
        c.register(t, i(MAX_INSTANCES), s(0)),
        c.report_failure(t, FailureReport { instance: i(5), service: s(0), failure: FailureType::Crashed }),
        c.register(t, i(0), s(0)).and_then(|()| c.register(t, i(0), s(1))),
    ];
    let messages: Vec<String> = refused.into_iter().map(|r| r.expect_err("refused").to_string()).collect();
    assert_eq!(
        messages,
        [
            "service#9 is not declared in the recovery configuration; declare it in `RecoveryConfig::services`",
            "instance#1048576 exceeds the supported maximum instance id 1048575",
            "instance#5 is not registered; register it with its service first",
            "instance#0 is already registered under service#0; deregister it first",
        ]
    );
    let config_errors = [
        (
            RecoveryConfigError::Zero { which: "limits.max_concurrent" },
            "`limits.max_concurrent` must be greater than zero",
        ),
        (
            RecoveryConfigError::ZeroInterval { which: "action_timeout" },
            "`action_timeout` must be a positive duration",
        ),
        (
            RecoveryConfigError::TooLarge { which: "policies", value: 257, max: 256 },
            "`policies` is 257, but at most 256 is accepted",
        ),
        (
            RecoveryConfigError::Share { which: "storm.enter_permille", value: 0 },
            "`storm.enter_permille` is 0‰, but must be between 1 and 1000 permille",
        ),
        (
            RecoveryConfigError::CapBelowBase { base: Duration::from_secs(10), cap: Duration::from_secs(1) },
            "backoff `cap` (1s) must be at least `base` (10s)",
        ),
        (
            RecoveryConfigError::StormHysteresis { enter: 500, exit: 600 },
            "storm `exit_permille` (600) must be below `enter_permille` (500)",
        ),
        (
            RecoveryConfigError::EmptyRung { policy: "database".into(), failure: FailureType::Crashed },
            "policy `database`: a rung of the crashed ladder has zero attempts",
        ),
        (
            RecoveryConfigError::TooManyRungs {
                policy: "default".into(),
                failure: FailureType::CrashLooping,
                rungs: 9,
                max: MAX_RUNGS,
            },
            "policy `default`: the crash-looping ladder has 9 rungs, at most 8 are accepted",
        ),
        (
            RecoveryConfigError::UnknownPolicy { service: s(2), policy: "nope".into() },
            "service#2 uses policy `nope`, which is not defined",
        ),
        (RecoveryConfigError::DuplicateService(s(3)), "service#3 is declared twice"),
        (
            RecoveryConfigError::UnknownDependency { service: s(0), dependency: s(9) },
            "service#0 depends on service#9, which is not declared",
        ),
        (
            RecoveryConfigError::Cycle { cycle: vec![s(4)] },
            "the service dependency graph has a cycle: service#4 -> service#4",
        ),
    ];
    for (error, message) in config_errors {
        assert_eq!(error.to_string(), message);
    }
}

// The tracing test lives in `core/tests/recovery-tracing.rs`: a process of
// its own, since tracing's callsite cache is shared by parallel tests.

// ---------------------------------------------------------------- properties

#[derive(Clone, Debug)]
enum Op {
    Fail(u32, FailureType),
    Healthy(u32),
    /// Outcome of the `n`-th action in flight (modulo their number).
    Outcome(usize, bool),
    Advance(u64),
    Observe(u32, u32),
    Deregister(u32),
    Register(u32),
    /// Judged cut off for this many milliseconds.
    Unreachable(u32, u64, bool),
    Reachable(u32),
}

const FLEET: u32 = 24;

fn op() -> impl PropStrategy<Value = Op> {
    let failure = prop_oneof![
        Just(FailureType::Crashed),
        Just(FailureType::Unresponsive),
        Just(FailureType::Degraded),
        Just(FailureType::CrashLooping),
    ];
    prop_oneof![
        6 => (0..FLEET, failure).prop_map(|(n, f)| Op::Fail(n, f)),
        3 => (0..FLEET).prop_map(Op::Healthy),
        4 => (0..64_usize, any::<bool>()).prop_map(|(n, ok)| Op::Outcome(n, ok)),
        3 => (0..120_000_u64).prop_map(Op::Advance),
        1 => (0..=10_u32, 10..=10_u32).prop_map(|(u, t)| Op::Observe(u, t)),
        1 => (0..FLEET).prop_map(Op::Deregister),
        1 => (0..FLEET).prop_map(Op::Register),
        2 => (0..FLEET, 0..60_000_u64, any::<bool>()).prop_map(|(n, ms, c)| Op::Unreachable(n, ms, c)),
        1 => (0..FLEET).prop_map(Op::Reachable),
    ]
}

/// Three services, 0 → 1 → 2, eight instances each; small limits.
fn fleet_config() -> RecoveryConfig {
    let mut cfg = config(&[(0, &[1]), (1, &[2]), (2, &[])]);
    cfg.limits = Limits { max_concurrent: 3, max_service_share_permille: 250 };
    cfg.instance_intensity = Intensity { max_restarts: 2, period: Duration::from_secs(60) };
    cfg.service_intensity = Intensity { max_restarts: 4, period: Duration::from_secs(60) };
    cfg.backoff = BackoffConfig {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(30),
        reset_after: Duration::from_secs(120),
    };
    cfg.default_policy.isolate_dependencies = true;
    cfg
}

/// Run `ops`; check the limits after every step; return every output.
fn run(ops: &[Op], seed: u64) -> Vec<RecoveryOutput> {
    let cfg = fleet_config();
    let max = cfg.limits.max_concurrent;
    let mut h = Harness {
        c: Checked::new(RecoveryCoordinator::new(cfg, Seed(seed)).expect("valid")),
        now: Instant::ZERO,
        log: Vec::new(),
    };
    for n in 0..FLEET {
        h.input(RecoveryInput::Register { instance: i(n), service: s(n % 3) });
    }
    let mut in_flight: Vec<ActionId> = Vec::new();
    let mut previous = [0_u32; 3];
    for op in ops {
        let out = match *op {
            Op::Fail(n, failure) => {
                h.input(RecoveryInput::Failure(FailureReport { instance: i(n), service: s(n % 3), failure }))
            }
            Op::Healthy(n) => h.healthy(n),
            Op::Outcome(k, ok) if !in_flight.is_empty() => {
                let id = in_flight.remove(k % in_flight.len());
                h.outcome(id, if ok { Outcome::Succeeded } else { Outcome::Failed })
            }
            Op::Outcome(..) => Vec::new(),
            Op::Advance(ms) => {
                let to = h.now + Duration::from_millis(ms);
                let mut out = Vec::new();
                while let Some(t) = h.c.poll_timeout().filter(|&t| t <= to) {
                    out.extend(h.at(t.max(h.now)));
                }
                out.extend(h.at(to));
                out
            }
            Op::Observe(u, t) => h.input(RecoveryInput::ObserveUnhealthy {
                scope: StormScope::Global,
                unhealthy: u * 3,
                total: t * 3,
            }),
            Op::Deregister(n) => h.input(RecoveryInput::Deregister { instance: i(n) }),
            Op::Register(n) => h.input(RecoveryInput::Register { instance: i(n), service: s(n % 3) }),
            Op::Unreachable(n, ms, confirmed) => h.input(RecoveryInput::Unreachable {
                instance: i(n),
                until: h.now + Duration::from_millis(ms),
                why: if confirmed { Unreachability::CutOff } else { Unreachability::AwaitingClients },
            }),
            Op::Reachable(n) => h.input(RecoveryInput::Reachable { instance: i(n) }),
        };
        for a in actions(&out) {
            if !matches!(a.kind, ActionKind::AskHuman { .. } | ActionKind::CloseCircuit { .. }) {
                in_flight.push(a.id);
            }
        }
        let c = h.c.get();
        assert!(c.in_flight() <= max, "global limit: {} > {max}", c.in_flight());
        for svc in 0..3 {
            let (now, limit) = (c.in_flight_of(s(svc)), c.service_limit(s(svc)));
            // Deregistering instances shrinks a service under actions already
            // in flight, which cannot be taken back: then nothing new starts
            // until it is within its share again.
            let before = previous[svc as usize];
            assert!(now <= limit || now <= before, "service {svc}: {now} in flight over its limit {limit}");
            previous[svc as usize] = now;
        }
    }
    h.log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn limits_hold_for_any_sequence(ops in proptest::collection::vec(op(), 0..120), seed: u64) {
        run(&ops, seed);
    }

    #[test]
    fn same_inputs_and_seed_give_same_outputs(ops in proptest::collection::vec(op(), 0..80), seed: u64) {
        prop_assert_eq!(run(&ops, seed), run(&ops, seed));
    }
}

/// The user's rule: a recovery action starts within 3 s of detection,
/// always. A recurrence after a recent restart waits for backoff to
/// restart, but is rerouted the moment it is detected; once, not on every
/// reconsideration; and a retry after a failed attempt (the episode has
/// acted already) is not rerouted again.
#[test]
fn a_backed_off_episode_is_rerouted_at_once_and_restarted_after_the_backoff() {
    marks::take("interim_reroute");
    let mut cfg = config(&[(0, &[])]);
    cfg.default_policy.crashed = Ladder::new([Rung::new(Strategy::Restart, 8)]);
    let mut h = Harness::new(cfg).with(0, [0]);
    let first = the_action(&h.fail(0, FailureType::Crashed));
    assert_eq!((first.kind, first.at), (ActionKind::Restart, h.now), "no backoff yet: restarted at once");
    h.outcome(first.id, Outcome::Succeeded);
    let detected = h.now;
    let out = h.fail(0, FailureType::Crashed);
    let reroute = the_action(&out);
    assert_eq!(
        (reroute.kind, reroute.at, reroute.id.attempt),
        (ActionKind::Reroute, detected, INTERIM_REROUTE)
    );
    let [HoldReason::Backoff { until }] = withheld(&out)[..] else { panic!("backoff expected in {out:?}") };
    assert!(until > detected, "the restart itself is backed off");
    assert_eq!(marks::take("interim_reroute"), 1);
    let restart = the_action(&h.next_timer());
    assert_eq!((restart.kind, restart.at, restart.id.attempt), (ActionKind::Restart, until, 1));
    // The restart fails: the retry backs off again, with no second reroute
    // (the instance is out of rotation until its episode ends).
    let out = h.outcome(restart.id, Outcome::Failed);
    assert!(actions(&out).is_empty(), "{out:?}");
    assert!(matches!(withheld(&out)[..], [HoldReason::Backoff { .. }]));
    assert_eq!(marks::take("interim_reroute"), 0);
    let again = the_action(&h.next_timer());
    assert_eq!(again.kind, ActionKind::Restart);
    let reroutes = actions(&h.log).into_iter().filter(|a| a.kind == ActionKind::Reroute).count();
    assert_eq!(reroutes, 1);
}
