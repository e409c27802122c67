//! The recovery machine: episodes, their phases, and the rules that let an
//! action start.
//!
//! See the [module documentation](super) for the semantics. Here:
//!
//! - per-episode phases as an enum of structs whose transitions consume the
//!   old phase ([`Pending::start`] can only be called on a pending episode,
//!   [`Acting::fail`] only on an acting one);
//! - the one place actions start ([`RecoveryCoordinator::consider`]),
//!   which applies the storm guard, dependencies, backoff, intensity and
//!   limits in that order;
//! - bookkeeping kept incrementally (actions in flight in total and per
//!   service, open episodes per service) and asserted against a recount in
//!   test builds.

use std::collections::{BTreeMap, VecDeque};

use crate::Machine;
use crate::id::{InstanceId, ServiceId};
use crate::rng::{Rng, Seed};
use crate::time::Instant;

use super::circuit::{Circuit, HalfOpen, Open};
use super::graph::ServiceGraph;
use super::intensity::IntensityWindow;
use super::storm::{StormChange, StormGuard};
use super::{
    Action, ActionId, ActionKind, CorrelationId, Decision, DecisionKind, FailureReport, FailureType,
    HoldReason, HumanReason, IntensityScope, MAX_INSTANCES, MAX_PENDING_OUTPUTS, MAX_RUNGS, MAX_SERVICES,
    Outcome, Policy, Position, RecoveryConfig, RecoveryConfigError, RecoveryError, RecoveryInput,
    RecoveryOutput, StormScope, Strategy, Unreachability,
};

/// Most circuits open at once (one per service and dependency pair, at most).
const MAX_CIRCUITS: usize = MAX_SERVICES;

/// Counters, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryStats {
    /// Episodes opened.
    pub episodes: u64,
    /// Recovery actions started (circuit and ask-human actions excluded).
    pub actions: u64,
    /// Episodes resolved (healthy again).
    pub resolved: u64,
    /// Episodes whose ladder was spent.
    pub asked_human: u64,
    /// Storms entered.
    pub storms: u64,
    /// Outcomes naming no action in flight (late, duplicate, unknown).
    pub stale_outcomes: u64,
    /// Failure reports that joined an open episode.
    pub duplicate_reports: u64,
    /// Inputs refused through [`Machine::handle`] (see [`RecoveryError`]).
    pub rejected_inputs: u64,
    /// Decisions dropped because [`MAX_PENDING_OUTPUTS`] were undrained.
    pub decisions_dropped: u64,
}

/// The phase of an episode, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpisodePhase {
    /// Wants to act; `held` says why it does not yet.
    Pending {
        /// The reason last given, if any.
        held: Option<HoldReason>,
    },
    /// An action is in flight.
    Acting {
        /// The action.
        id: ActionId,
        /// Its strategy.
        strategy: Strategy,
    },
    /// The ladder is spent; a human was asked.
    AskedHuman {
        /// When.
        since: Instant,
    },
}

/// One open episode, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpisodeView {
    /// Its correlation id.
    pub correlation: CorrelationId,
    /// The instance's service.
    pub service: ServiceId,
    /// The failure type it is treated as.
    pub failure: FailureType,
    /// Where it stands on its ladder.
    pub position: Position,
    /// Actions started so far.
    pub attempts: u32,
    /// When it was opened.
    pub detected_at: Instant,
    /// Its phase.
    pub phase: EpisodePhase,
}

/// The attempt number of the reroute an episode starts with when its first
/// attempt must wait for backoff (an instance restarted recently): the
/// first action after a detection starts at once, always, and backoff
/// delays only the restart (and so does a partition hold, see
/// [`HoldReason::Partitioned`]). It is not an attempt of the ladder (attempts
/// count from 1), needs no outcome, and ends with its episode, as every
/// reroute does.
pub const INTERIM_REROUTE: u32 = 0;

/// An episode that wants to act.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    /// Not before this instant (backoff or settling).
    not_before: Instant,
    /// Whether `not_before` comes from settling after a storm or dependency.
    settling: bool,
    /// The reason last announced.
    held: Option<HoldReason>,
}

/// An episode with one action in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acting {
    id: ActionId,
    strategy: Strategy,
    deadline: Instant,
    /// Whether it counts against the limits. An action on an instance
    /// later judged cut off stops counting: it cannot be confirmed until
    /// the partition heals, and must not hold back the others.
    holds_slot: bool,
}

/// An episode whose ladder is spent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AskedHuman {
    since: Instant,
}

/// An episode's phase. Transitions consume the phase they leave.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    Pending(Pending),
    Acting(Acting),
    AskedHuman(AskedHuman),
}

impl Phase {
    /// The action in flight, if the episode is acting.
    fn acting(self) -> Option<Acting> {
        match self {
            Phase::Acting(acting) => Some(acting),
            _ => None,
        }
    }

    /// The pending state, if the episode wants to act.
    fn pending(self) -> Option<Pending> {
        match self {
            Phase::Pending(pending) => Some(pending),
            _ => None,
        }
    }
}

impl Pending {
    fn new(not_before: Instant) -> Self {
        Pending { not_before, settling: false, held: None }
    }

    /// Withhold for `reason`; the flag says whether it is news.
    fn hold(self, reason: HoldReason) -> (Pending, bool) {
        (Pending { held: Some(reason), ..self }, self.held != Some(reason))
    }

    /// A storm or dependency hold ended: wait until `until` at least.
    fn settle(self, until: Instant) -> Pending {
        if until > self.not_before {
            Pending { not_before: until, settling: true, held: None }
        } else {
            Pending { held: None, ..self }
        }
    }

    fn start(self, id: ActionId, strategy: Strategy, deadline: Instant) -> Acting {
        Acting { id, strategy, deadline, holds_slot: true }
    }

    fn ask_human(self, now: Instant) -> AskedHuman {
        AskedHuman { since: now }
    }
}

impl Acting {
    /// The attempt failed; the next may start at `not_before`.
    fn fail(self, not_before: Instant) -> Pending {
        Pending::new(not_before)
    }
}

/// One recovery episode of one instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Episode {
    id: CorrelationId,
    service: ServiceId,
    failure: FailureType,
    position: Position,
    attempts: u32,
    detected_at: Instant,
    phase: Phase,
    /// Whether the instance was taken out of rotation at once because its
    /// first attempt waits for backoff (see [`INTERIM_REROUTE`]).
    rerouted_at_once: bool,
}

#[derive(Clone, Debug)]
struct ServiceState {
    policy: usize,
    instances: u32,
    /// Instances of the service with an open episode.
    failing: u32,
    /// Actions in flight on the service's instances.
    acting: u32,
    intensity: IntensityWindow,
    scale_out_in_flight: bool,
}

#[derive(Clone, Debug)]
struct InstanceRecord {
    service: ServiceId,
    intensity: IntensityWindow,
    /// Actions started since the instance was last quiet for
    /// `backoff.reset_after`: the backoff exponent.
    attempts_since_reset: u32,
    /// When its last episode ended.
    quiet_since: Option<Instant>,
    /// Judged cut off from the observer rather than failed: `(until,
    /// confirmed)`; see [`RecoveryCoordinator::report_unreachable`].
    unreachable: Option<(Instant, Unreachability)>,
}

/// Decides how to recover failing instances, and when not to.
///
/// A sans-IO [`Machine`]: feed it [`RecoveryInput`]s (or call the methods
/// of the same meaning, which return errors), call
/// [`handle_timeout`](Machine::handle_timeout) at
/// [`poll_timeout`](Machine::poll_timeout), and drain
/// [`poll_output`](Machine::poll_output) after every mutation. Semantics in
/// the [module documentation](super).
///
/// Methods: construction ([`new`](Self::new)); getters
/// ([`in_flight`](Self::in_flight), [`in_flight_of`](Self::in_flight_of),
/// [`service_limit`](Self::service_limit), [`episode`](Self::episode),
/// [`in_storm`](Self::in_storm), [`stats`](Self::stats)); `handle_*`
/// mutators ([`register`](Self::register), [`deregister`](Self::deregister),
/// [`report_failure`](Self::report_failure),
/// [`report_healthy`](Self::report_healthy),
/// [`report_outcome`](Self::report_outcome),
/// [`observe_unhealthy_share`](Self::observe_unhealthy_share)); and the
/// [`Machine`] methods.
#[derive(Clone, Debug)]
pub struct RecoveryCoordinator {
    config: RecoveryConfig,
    /// Index 0 is the default policy, then the named ones in name order.
    policies: Vec<Policy>,
    services: BTreeMap<ServiceId, ServiceState>,
    graph: ServiceGraph,
    /// Dense by instance id, grown to the largest registered id.
    instances: Vec<Option<InstanceRecord>>,
    episodes: BTreeMap<InstanceId, Episode>,
    by_correlation: BTreeMap<CorrelationId, InstanceId>,
    circuits: BTreeMap<(ServiceId, ServiceId), Circuit>,
    storm: StormGuard,
    registered: u32,
    open: u32,
    acting: u32,
    next_correlation: u64,
    rng: Rng,
    outputs: VecDeque<RecoveryOutput>,
    /// [`MAX_PENDING_OUTPUTS`]; smaller in tests, to reach the cap.
    pub(super) output_cap: usize,
    stats: RecoveryStats,
}

impl RecoveryCoordinator {
    /// A coordinator for `config`; backoff jitter draws from `seed`.
    pub fn new(config: RecoveryConfig, seed: Seed) -> Result<Self, RecoveryConfigError> {
        config.validate()?;
        let graph = ServiceGraph::new(config.services.iter().map(|s| (s.id, s.depends_on.as_slice())))?;
        let mut policies = vec![config.default_policy.clone()];
        let mut index_of = BTreeMap::new();
        for (name, policy) in &config.policies {
            index_of.insert(name.clone(), policies.len());
            policies.push(policy.clone());
        }
        let services = config
            .services
            .iter()
            .map(|spec| {
                let policy = spec.policy.as_ref().map_or(0, |name| index_of[name]);
                let state = ServiceState {
                    policy,
                    instances: 0,
                    failing: 0,
                    acting: 0,
                    intensity: IntensityWindow::default(),
                    scale_out_in_flight: false,
                };
                (spec.id, state)
            })
            .collect();
        Ok(RecoveryCoordinator {
            storm: StormGuard::new(config.storm),
            config,
            policies,
            services,
            graph,
            instances: Vec::new(),
            episodes: BTreeMap::new(),
            by_correlation: BTreeMap::new(),
            circuits: BTreeMap::new(),
            registered: 0,
            open: 0,
            acting: 0,
            next_correlation: 1,
            rng: seed.child_named("recovery").rng(),
            outputs: VecDeque::new(),
            output_cap: MAX_PENDING_OUTPUTS,
            stats: RecoveryStats::default(),
        })
    }

    // ---------------------------------------------------------------- getters

    /// Recovery actions in flight over the fleet.
    pub fn in_flight(&self) -> u32 {
        self.acting
    }

    /// Recovery actions in flight on `service`'s instances.
    pub fn in_flight_of(&self, service: ServiceId) -> u32 {
        self.services.get(&service).map_or(0, |s| s.acting)
    }

    /// Most actions `service` may have in flight now:
    /// `max(1, ⌊instances × share / 1000⌋)`.
    pub fn service_limit(&self, service: ServiceId) -> u32 {
        self.services.get(&service).map_or(0, |s| self.limit_of(s))
    }

    fn limit_of(&self, service: &ServiceState) -> u32 {
        let share =
            u64::from(service.instances) * u64::from(self.config.limits.max_service_share_permille) / 1000;
        u32::try_from(share).unwrap_or(u32::MAX).max(1)
    }

    /// The service `instance` is registered under, if it is.
    pub fn service_of(&self, instance: InstanceId) -> Option<ServiceId> {
        self.record(instance).ok().map(|r| r.service)
    }

    /// The open episode of `instance`, if any.
    pub fn episode(&self, instance: InstanceId) -> Option<EpisodeView> {
        self.episodes.get(&instance).map(|e| EpisodeView {
            correlation: e.id,
            service: e.service,
            failure: e.failure,
            position: e.position,
            attempts: e.attempts,
            detected_at: e.detected_at,
            phase: match e.phase {
                Phase::Pending(p) => EpisodePhase::Pending { held: p.held },
                Phase::Acting(a) => EpisodePhase::Acting { id: a.id, strategy: a.strategy },
                Phase::AskedHuman(h) => EpisodePhase::AskedHuman { since: h.since },
            },
        })
    }

    /// Whether a storm is suspected in `scope`.
    pub fn in_storm(&self, scope: StormScope) -> bool {
        self.storm.is_active(scope)
    }

    /// Counters.
    pub fn stats(&self) -> RecoveryStats {
        self.stats
    }

    // --------------------------------------------------------------- handle_*

    /// `instance` joined `service`. Registering again under the same
    /// service changes nothing.
    pub fn register(
        &mut self,
        now: Instant,
        instance: InstanceId,
        service: ServiceId,
    ) -> Result<(), RecoveryError> {
        if !self.services.contains_key(&service) {
            return Err(RecoveryError::UnknownService { service });
        }
        if instance.0 >= MAX_INSTANCES {
            return Err(RecoveryError::InstanceIdTooLarge { instance, max: MAX_INSTANCES - 1 });
        }
        if let Some(Some(record)) = self.instances.get(instance.index()) {
            if record.service == service {
                return Ok(());
            }
            return Err(RecoveryError::ServiceMismatch { instance, registered: record.service });
        }
        if self.instances.len() <= instance.index() {
            self.instances.resize(instance.index() + 1, None);
        }
        self.instances[instance.index()] = Some(InstanceRecord {
            service,
            intensity: IntensityWindow::default(),
            attempts_since_reset: 0,
            quiet_since: None,
            unreachable: None,
        });
        self.service_mut(service).instances += 1;
        self.registered += 1;
        self.schedule(now);
        Ok(())
    }

    /// `instance` left. Its episode, if any, is abandoned (and its action
    /// slot freed). Returns whether it was registered.
    pub fn deregister(&mut self, now: Instant, instance: InstanceId) -> bool {
        let Some(record) = self.instances.get_mut(instance.index()).and_then(Option::take) else {
            return false;
        };
        if let Some(episode) = self.close_episode(instance) {
            self.decide(
                now,
                Some(episode.id),
                Some(episode.service),
                Some(instance),
                DecisionKind::Abandoned,
            );
        }
        let service = self.service_mut(record.service);
        service.instances -= 1;
        self.registered -= 1;
        self.schedule(now);
        true
    }

    /// `report.instance` fails. Opens an episode, or joins the open one
    /// (a worse failure type reclassifies a pending episode).
    pub fn report_failure(&mut self, now: Instant, report: FailureReport) -> Result<(), RecoveryError> {
        let FailureReport { instance, service, failure } = report;
        let record = self.record(instance)?;
        if record.service != service {
            return Err(RecoveryError::ServiceMismatch { instance, registered: record.service });
        }
        if let Some(mut episode) = self.episodes.remove(&instance) {
            let worse = severity(failure) > severity(episode.failure);
            if worse && matches!(episode.phase, Phase::Pending(_)) {
                mark!("reclassified_by_report");
                self.decide(
                    now,
                    Some(episode.id),
                    Some(service),
                    Some(instance),
                    DecisionKind::Reclassified { from: episode.failure, to: failure },
                );
                episode.failure = failure;
                episode.position = Position::default();
            } else {
                self.stats.duplicate_reports += 1;
            }
            self.episodes.insert(instance, episode);
        } else {
            let id = CorrelationId(self.next_correlation);
            self.next_correlation += 1;
            let reset_after = self.config.backoff.reset_after;
            let record = self.record_mut(instance);
            if record.quiet_since.is_some_and(|q| now.saturating_duration_since(q) >= reset_after) {
                mark!("backoff_reset");
                record.attempts_since_reset = 0;
            }
            let not_before = self.backoff_until(now, instance);
            let mut pending = Pending::new(not_before);
            // A service with dependencies fails with them, and its failure
            // may be reported a moment before theirs: give the root cause
            // `dependency.confirm` to show up before acting on the symptom.
            let confirm = self.config.dependency.confirm;
            if !confirm.is_zero()
                && self.policy_of(service).hold_for_dependencies
                && !self.graph.dependencies_of(service).is_empty()
            {
                mark!("confirm_dependencies");
                pending = pending.settle(now.saturating_add(confirm));
            }
            self.episodes.insert(
                instance,
                Episode {
                    id,
                    service,
                    failure,
                    position: Position::default(),
                    attempts: 0,
                    detected_at: now,
                    phase: Phase::Pending(pending),
                    rerouted_at_once: false,
                },
            );
            self.by_correlation.insert(id, instance);
            self.service_mut(service).failing += 1;
            self.open += 1;
            self.stats.episodes += 1;
            self.decide(now, Some(id), Some(service), Some(instance), DecisionKind::Detected { failure });
        }
        self.schedule(now);
        Ok(())
    }

    /// `instance` is healthy again: its episode, if any, is resolved.
    pub fn report_healthy(&mut self, now: Instant, instance: InstanceId) {
        if self.resolve(now, instance) {
            self.schedule(now);
        }
    }

    /// The observer cannot reach `instance`, but it looks cut off rather
    /// than failed: its clients still reach it (`confirmed`), or it went
    /// silent while clients who would know have not said yet. Until
    /// `until` (or [`report_reachable`](Self::report_reachable)), its
    /// episode, open or to come, takes it out of rotation at once and
    /// holds every other action ([`HoldReason::Partitioned`]); it does not
    /// count for the storm guard (one partition is one event, not many
    /// failures); and an action already in flight on it stops counting
    /// against the limits, so it holds back no other recovery.
    pub fn report_unreachable(
        &mut self,
        now: Instant,
        instance: InstanceId,
        until: Instant,
        why: Unreachability,
    ) -> Result<(), RecoveryError> {
        self.record(instance)?;
        self.record_mut(instance).unreachable = Some((until, why));
        if let Some(episode) = self.episodes.get_mut(&instance)
            && let Phase::Acting(acting) = &mut episode.phase
            && acting.holds_slot
        {
            mark!("unreachable_action_released");
            acting.holds_slot = false;
            let (service, strategy) = (episode.service, acting.strategy);
            self.release(service, strategy);
        }
        self.schedule(now);
        Ok(())
    }

    /// The judgment of [`report_unreachable`](Self::report_unreachable) is
    /// withdrawn: recovery treats `instance` as any other from now on.
    pub fn report_reachable(&mut self, now: Instant, instance: InstanceId) {
        if let Some(Some(record)) = self.instances.get_mut(instance.index())
            && record.unreachable.take().is_some()
        {
            self.schedule(now);
        }
    }

    /// Whether `instance` is judged cut off from the observer now.
    pub fn is_unreachable(&self, now: Instant, instance: InstanceId) -> bool {
        self.record(instance).ok().and_then(|r| r.unreachable).is_some_and(|(until, _)| until > now)
    }

    /// How the action `id` went. An outcome for an action not in flight
    /// (late, duplicate, unknown) is counted and ignored.
    pub fn report_outcome(&mut self, now: Instant, id: ActionId, outcome: Outcome) {
        if let Some(&instance) = self.by_correlation.get(&id.correlation) {
            let in_flight = self.episodes[&instance].phase.acting().is_some_and(|a| a.id == id);
            if !in_flight {
                self.stale(id);
                return;
            }
            match outcome {
                Outcome::Succeeded => {
                    self.resolve(now, instance);
                }
                Outcome::Failed => self.fail_attempt(now, instance, false),
            }
        } else if let Some((&key, &circuit)) = self.circuits.iter().find(|(_, c)| c.id() == id.correlation) {
            match circuit {
                Circuit::HalfOpen(half) if half.attempt == id.attempt => {
                    self.probe_done(now, key, half, outcome)
                }
                _ => return self.stale(id),
            }
        } else {
            return self.stale(id);
        }
        self.schedule(now);
    }

    /// The driver's view of a scope: `unhealthy` of `total` instances (for
    /// example from the health monitor's service summaries). The storm
    /// guard takes the worse of this and its own count.
    pub fn observe_unhealthy_share(&mut self, now: Instant, scope: StormScope, unhealthy: u32, total: u32) {
        self.storm.observe(scope, unhealthy, total);
        self.schedule(now);
    }

    // -------------------------------------------------------------- internals

    fn stale(&mut self, id: ActionId) {
        mark!("stale_outcome");
        self.stats.stale_outcomes += 1;
        tracing::debug!(target: "vigil::recovery", correlation = id.correlation.0, attempt = id.attempt, "stale outcome ignored");
    }

    fn record(&self, instance: InstanceId) -> Result<&InstanceRecord, RecoveryError> {
        self.instances
            .get(instance.index())
            .and_then(Option::as_ref)
            .ok_or(RecoveryError::NotRegistered { instance })
    }

    fn record_mut(&mut self, instance: InstanceId) -> &mut InstanceRecord {
        self.instances[instance.index()].as_mut().expect("episodes exist only for registered instances")
    }

    fn service_mut(&mut self, service: ServiceId) -> &mut ServiceState {
        self.services.get_mut(&service).expect("instances are registered only under declared services")
    }

    /// When the next attempt on `instance` may start: at once after a quiet
    /// period, else after a jittered exponential delay.
    fn backoff_until(&mut self, now: Instant, instance: InstanceId) -> Instant {
        let n = self.record_mut(instance).attempts_since_reset;
        if n == 0 {
            return now;
        }
        let delay = self.config.backoff.delay(n - 1, &mut self.rng);
        now.saturating_add(delay)
    }

    /// Remove `instance`'s episode and undo its counts.
    fn close_episode(&mut self, instance: InstanceId) -> Option<Episode> {
        let episode = self.episodes.remove(&instance)?;
        self.by_correlation.remove(&episode.id);
        if let Phase::Acting(acting) = episode.phase
            && acting.holds_slot
        {
            self.release(episode.service, acting.strategy);
        }
        let service = self.service_mut(episode.service);
        service.failing -= 1;
        self.open -= 1;
        Some(episode)
    }

    fn release(&mut self, service: ServiceId, strategy: Strategy) {
        let state = self.service_mut(service);
        state.acting -= 1;
        if let Strategy::ScaleOut { .. } = strategy {
            state.scale_out_in_flight = false;
        }
        self.acting -= 1;
    }

    /// End `instance`'s episode as healed; returns whether it had one.
    fn resolve(&mut self, now: Instant, instance: InstanceId) -> bool {
        let Some(episode) = self.close_episode(instance) else { return false };
        let by_action = matches!(episode.phase, Phase::Acting(_));
        self.record_mut(instance).quiet_since = Some(now);
        self.stats.resolved += 1;
        self.decide(
            now,
            Some(episode.id),
            Some(episode.service),
            Some(instance),
            DecisionKind::Resolved { by_action },
        );
        true
    }

    /// The action in flight on `instance` failed (or timed out): count it
    /// against its rung and back off. Callers name an acting episode.
    fn fail_attempt(&mut self, now: Instant, instance: InstanceId, timed_out: bool) {
        let mut episode = self.episodes.remove(&instance).expect("callers name an open episode");
        let acting = episode.phase.acting().expect("callers name an episode with an action in flight");
        if acting.holds_slot {
            self.release(episode.service, acting.strategy);
        }
        let (id, service) = (episode.id, episode.service);
        self.decide(
            now,
            Some(id),
            Some(service),
            Some(instance),
            DecisionKind::AttemptFailed { attempt: acting.id.attempt, timed_out },
        );
        let ladder = self.policy_of(service).ladder(episode.failure);
        let (position, climbed) = episode.position.after_failure(ladder);
        if climbed {
            self.decide(
                now,
                Some(id),
                Some(service),
                Some(instance),
                DecisionKind::Escalated { from_rung: episode.position.rung, to_rung: position.rung },
            );
        }
        episode.position = position;
        let not_before = self.backoff_until(now, instance);
        episode.phase = Phase::Pending(acting.fail(not_before));
        self.episodes.insert(instance, episode);
    }

    fn policy_of(&self, service: ServiceId) -> &Policy {
        &self.policies[self.services[&service].policy]
    }

    /// Whether `service` is impaired: at least `impaired_permille` of its
    /// instances have an open episode.
    fn impaired(&self, service: ServiceId) -> bool {
        let state = &self.services[&service];
        state.failing > 0
            && u64::from(state.failing) * 1000
                >= u64::from(self.config.dependency.impaired_permille) * u64::from(state.instances)
    }

    /// Re-evaluate storms, then give every pending episode, oldest first, a
    /// chance to act.
    fn schedule(&mut self, now: Instant) {
        // The storm guard counts instances that went silent (unresponsive),
        // the one failure an observer's own trouble looks like. A crashed
        // instance answered (it refused, or erred), so the observer reaches
        // it; a degraded one is slow, and a whole slow service calls for
        // scaling out; a crash-looping one was seen to come and go.
        // An instance judged cut off is part of one partition, not one of
        // many failures: it does not count.
        let mut down: BTreeMap<ServiceId, u32> = BTreeMap::new();
        for (&instance, episode) in &self.episodes {
            if episode.failure == FailureType::Unresponsive && !self.is_unreachable(now, instance) {
                *down.entry(episode.service).or_insert(0) += 1;
            }
        }
        self.update_storm(now, StormScope::Global, (down.values().sum(), self.registered));
        let counts: Vec<(ServiceId, u32, u32)> = self
            .services
            .iter()
            .map(|(&id, s)| (id, down.get(&id).copied().unwrap_or(0), s.instances))
            .collect();
        for (id, down, instances) in counts {
            self.update_storm(now, StormScope::Service(id), (down, instances));
        }
        let mut order: Vec<(CorrelationId, InstanceId)> = self
            .episodes
            .iter()
            .filter(|(_, e)| e.phase.pending().is_some())
            .map(|(&instance, e)| (e.id, instance))
            .collect();
        order.sort_unstable();
        for (_, instance) in order {
            self.consider(now, instance);
        }
        #[cfg(test)]
        self.check_counts();
    }

    fn update_storm(&mut self, now: Instant, scope: StormScope, counted: (u32, u32)) {
        let service = match scope {
            StormScope::Global => None,
            StormScope::Service(s) => Some(s),
        };
        match self.storm.evaluate(scope, counted) {
            Some(StormChange::Entered) => {
                mark!("storm_entered");
                self.stats.storms += 1;
                let (unhealthy, total) = self.storm.share(scope, counted);
                self.decide(
                    now,
                    None,
                    service,
                    None,
                    DecisionKind::StormSuspected { scope, unhealthy, total },
                );
            }
            Some(StormChange::Cleared) => {
                self.decide(now, None, service, None, DecisionKind::StormCleared { scope })
            }
            None => {}
        }
    }

    /// The one place an action starts: apply, in order, the storm guard,
    /// dependencies, backoff, the ladder and intensity, and the limits.
    fn consider(&mut self, now: Instant, instance: InstanceId) {
        // `schedule` lists pending episodes, and considering one changes no other.
        let mut episode = self.episodes.remove(&instance).expect("schedule considers open episodes");
        let mut pending = episode.phase.pending().expect("schedule considers pending episodes");
        let (id, service) = (episode.id, episode.service);
        // Cut off rather than failed: traffic away at once, nothing else
        // until the judgment lapses or is withdrawn.
        match self.record(instance).ok().and_then(|r| r.unreachable) {
            Some((until, why)) if until > now => {
                mark!("held_unreachable");
                self.reroute_at_once(now, instance, &mut episode);
                self.withhold(now, instance, episode, pending, HoldReason::Partitioned { until, why });
                return;
            }
            Some(_) => {
                mark!("unreachable_lapsed");
                self.record_mut(instance).unreachable = None;
            }
            None => {}
        }
        let hold = self.hold_reason(service);
        if let Some(reason) = hold {
            // Isolate the root cause when the hold begins (not on every
            // reconsideration: a circuit closed by a good probe stays closed).
            if let HoldReason::Dependency { root } = reason
                && pending.held != Some(reason)
                && self.policy_of(service).isolate_dependencies
                && !self.circuits.contains_key(&(service, root))
                && self.circuits.len() < MAX_CIRCUITS
            {
                self.open_circuit(now, episode.id, instance, service, root);
            }
            self.withhold(now, instance, episode, pending, reason);
            return;
        }
        // A storm or dependency hold just ended: let the instance settle.
        match pending.held {
            Some(HoldReason::Storm { .. }) => {
                mark!("settle_after_storm");
                pending = pending.settle(now.saturating_add(self.config.storm.settle));
            }
            Some(HoldReason::Dependency { .. }) => {
                mark!("settle_after_dependency");
                pending = pending.settle(now.saturating_add(self.config.dependency.grace));
            }
            _ => {}
        }
        if pending.not_before > now {
            let until = pending.not_before;
            let reason =
                if pending.settling { HoldReason::Settling { until } } else { HoldReason::Backoff { until } };
            // The first action starts at once, always: backoff delays the
            // restart, not taking traffic away.
            if !pending.settling && self.reroute_at_once(now, instance, &mut episode) {
                mark!("interim_reroute");
            }
            self.withhold(now, instance, episode, pending, reason);
            return;
        }
        // Choose the strategy: climb past restarts the intensity forbids.
        let mut steps = 0;
        let strategy = loop {
            steps += 1;
            assert!(steps <= MAX_RUNGS * 2 + 2, "each step climbs a rung or reclassifies once");
            let ladder = self.policy_of(service).ladder(episode.failure);
            let Some(rung) = ladder.rung(episode.position) else {
                self.ask_human(now, instance, episode, pending);
                return;
            };
            if rung.strategy != Strategy::Restart {
                break rung.strategy;
            }
            let limit = self.config.instance_intensity;
            let instance_ok = self.record_mut(instance).intensity.allows(limit, now);
            let service_ok = self.services[&service].intensity.allows(self.config.service_intensity, now);
            if instance_ok && service_ok {
                break rung.strategy;
            }
            let scope = if instance_ok { IntensityScope::Service } else { IntensityScope::Instance };
            self.decide(
                now,
                Some(id),
                Some(service),
                Some(instance),
                DecisionKind::IntensityExceeded { scope },
            );
            if episode.failure == FailureType::CrashLooping {
                mark!("restart_rung_skipped");
                let from = episode.position;
                episode.position = from.climb();
                self.decide(
                    now,
                    Some(id),
                    Some(service),
                    Some(instance),
                    DecisionKind::Escalated { from_rung: from.rung, to_rung: episode.position.rung },
                );
            } else {
                mark!("crash_looping");
                self.decide(
                    now,
                    Some(id),
                    Some(service),
                    Some(instance),
                    DecisionKind::Reclassified { from: episode.failure, to: FailureType::CrashLooping },
                );
                episode.failure = FailureType::CrashLooping;
                episode.position = Position::default();
            }
        };
        let state = &self.services[&service];
        let limit = self.limit_of(state);
        let reason = if matches!(strategy, Strategy::ScaleOut { .. }) && state.scale_out_in_flight {
            Some(HoldReason::ScaleOutInFlight)
        } else if self.acting >= self.config.limits.max_concurrent {
            Some(HoldReason::GlobalLimit { max: self.config.limits.max_concurrent })
        } else if state.acting >= limit {
            Some(HoldReason::ServiceLimit { max: limit })
        } else {
            None
        };
        if let Some(reason) = reason {
            self.withhold(now, instance, episode, pending, reason);
            return;
        }
        // Start.
        episode.attempts += 1;
        let action = ActionId { correlation: id, attempt: episode.attempts };
        let (instance_intensity, service_intensity) =
            (self.config.instance_intensity, self.config.service_intensity);
        let record = self.record_mut(instance);
        record.attempts_since_reset = record.attempts_since_reset.saturating_add(1);
        if strategy == Strategy::Restart {
            record.intensity.record(instance_intensity, now);
        }
        let state = self.service_mut(service);
        if strategy == Strategy::Restart {
            state.intensity.record(service_intensity, now);
        }
        if let Strategy::ScaleOut { .. } = strategy {
            state.scale_out_in_flight = true;
        }
        state.acting += 1;
        self.acting += 1;
        self.stats.actions += 1;
        let rung = episode.position.rung;
        episode.phase =
            Phase::Acting(pending.start(action, strategy, now.saturating_add(self.config.action_timeout)));
        self.episodes.insert(instance, episode);
        let kind = ActionKind::from(strategy);
        self.decide(
            now,
            Some(id),
            Some(service),
            Some(instance),
            DecisionKind::Acting { kind, attempt: action.attempt, rung },
        );
        self.act(Action { id: action, service, instance: Some(instance), kind, at: now });
    }

    /// Why `service`'s instances may not act now for reasons outside the
    /// episode: a storm, or an impaired dependency.
    fn hold_reason(&self, service: ServiceId) -> Option<HoldReason> {
        if let Some(scope) =
            [StormScope::Global, StormScope::Service(service)].into_iter().find(|&s| self.storm.is_active(s))
        {
            return Some(HoldReason::Storm { scope });
        }
        let policy = self.policy_of(service);
        if !policy.hold_for_dependencies {
            return None;
        }
        let root = self.graph.root_cause(service, |d| self.impaired(d))?;
        mark!("held_for_dependency");
        Some(HoldReason::Dependency { root })
    }

    /// Take `instance` out of rotation at once, if its episode has not
    /// acted yet (see [`INTERIM_REROUTE`]); returns whether it did.
    fn reroute_at_once(&mut self, now: Instant, instance: InstanceId, episode: &mut Episode) -> bool {
        if episode.attempts > 0 || episode.rerouted_at_once {
            return false;
        }
        episode.rerouted_at_once = true;
        self.act(Action {
            id: ActionId { correlation: episode.id, attempt: INTERIM_REROUTE },
            service: episode.service,
            instance: Some(instance),
            kind: ActionKind::Reroute,
            at: now,
        });
        true
    }

    fn withhold(
        &mut self,
        now: Instant,
        instance: InstanceId,
        mut episode: Episode,
        pending: Pending,
        reason: HoldReason,
    ) {
        let (pending, news) = pending.hold(reason);
        episode.phase = Phase::Pending(pending);
        let (id, service) = (episode.id, episode.service);
        self.episodes.insert(instance, episode);
        if news {
            self.decide(now, Some(id), Some(service), Some(instance), DecisionKind::Withheld { reason });
        }
    }

    fn ask_human(&mut self, now: Instant, instance: InstanceId, mut episode: Episode, pending: Pending) {
        mark!("asked_human");
        episode.attempts += 1;
        let id = ActionId { correlation: episode.id, attempt: episode.attempts };
        let (service, failure) = (episode.service, episode.failure);
        episode.phase = Phase::AskedHuman(pending.ask_human(now));
        self.episodes.insert(instance, episode);
        self.stats.asked_human += 1;
        self.decide(now, Some(id.correlation), Some(service), Some(instance), DecisionKind::AskedHuman);
        let reason = HumanReason::LadderExhausted { failure };
        self.act(Action {
            id,
            service,
            instance: Some(instance),
            kind: ActionKind::AskHuman { reason },
            at: now,
        });
    }

    /// Open a circuit from `from` to `to` on behalf of the episode `cause`
    /// of `instance`: a decision of the episode names the circuit, so the
    /// two correlation ids are tied together.
    fn open_circuit(
        &mut self,
        now: Instant,
        cause: CorrelationId,
        instance: InstanceId,
        from: ServiceId,
        to: ServiceId,
    ) {
        mark!("circuit_opened");
        let id = CorrelationId(self.next_correlation);
        self.next_correlation += 1;
        self.decide(
            now,
            Some(cause),
            Some(from),
            Some(instance),
            DecisionKind::Isolating { circuit: id, to },
        );
        let open = Circuit::open(id, now, &self.config.circuit);
        self.circuits.insert((from, to), Circuit::Open(open));
        self.circuit_action(now, from, open.id, open.attempt, ActionKind::OpenCircuit { to });
    }

    fn circuit_action(
        &mut self,
        now: Instant,
        from: ServiceId,
        id: CorrelationId,
        attempt: u32,
        kind: ActionKind,
    ) {
        self.act(Action {
            id: ActionId { correlation: id, attempt },
            service: from,
            instance: None,
            kind,
            at: now,
        });
    }

    fn probe_done(
        &mut self,
        now: Instant,
        (from, to): (ServiceId, ServiceId),
        half: HalfOpen,
        outcome: Outcome,
    ) {
        match outcome {
            Outcome::Succeeded => {
                mark!("circuit_closed");
                self.circuits.remove(&(from, to));
                self.circuit_action(now, from, half.id, half.attempt + 1, ActionKind::CloseCircuit { to });
            }
            Outcome::Failed => self.reopen(now, (from, to), half),
        }
    }

    fn reopen(&mut self, now: Instant, (from, to): (ServiceId, ServiceId), half: HalfOpen) {
        mark!("circuit_reopened");
        self.decide(now, Some(half.id), Some(from), None, DecisionKind::CircuitProbeFailed);
        let open: Open = half.failed(now, &self.config.circuit);
        self.circuits.insert((from, to), Circuit::Open(open));
        self.circuit_action(now, from, open.id, open.attempt, ActionKind::OpenCircuit { to });
    }

    fn decide(
        &mut self,
        at: Instant,
        correlation: Option<CorrelationId>,
        service: Option<ServiceId>,
        instance: Option<InstanceId>,
        kind: DecisionKind,
    ) {
        let decision = Decision { correlation, service, instance, at, kind };
        trace_decision(&decision);
        if self.outputs.len() >= self.output_cap {
            self.stats.decisions_dropped += 1;
            return;
        }
        self.outputs.push_back(RecoveryOutput::Decision(decision));
    }

    fn act(&mut self, action: Action) {
        trace_action(&action);
        self.outputs.push_back(RecoveryOutput::Action(action));
    }

    /// Recount what is kept incrementally, and check the limits hold.
    #[cfg(test)]
    fn check_counts(&self) {
        let holds = |e: &Episode| e.phase.acting().is_some_and(|a| a.holds_slot);
        let acting = self.episodes.values().filter(|e| holds(e)).count();
        assert_eq!(acting, self.acting as usize);
        assert_eq!(self.episodes.len(), self.open as usize);
        assert_eq!(self.by_correlation.len(), self.episodes.len());
        assert!(self.acting <= self.config.limits.max_concurrent);
        for (&id, state) in &self.services {
            let mine = self.episodes.values().filter(|e| e.service == id);
            assert_eq!(mine.clone().count(), state.failing as usize);
            assert_eq!(mine.filter(|e| holds(e)).count(), state.acting as usize);
        }
    }
}

/// Every decision is also a `tracing` event (target `vigil::recovery`),
/// carrying its correlation id; so is every action ([`trace_action`]).
fn trace_decision(decision: &Decision) {
    tracing::info!(
        target: "vigil::recovery",
        correlation = decision.correlation.map(|c| c.0),
        service = decision.service.map(|s| s.0),
        instance = decision.instance.map(|i| i.0),
        at = %decision.at,
        decision = ?decision.kind,
        "recovery decision"
    );
}

/// Every action is also a `tracing` event, as [`trace_decision`].
fn trace_action(action: &Action) {
    tracing::info!(
        target: "vigil::recovery",
        correlation = action.id.correlation.0,
        attempt = action.id.attempt,
        service = action.service.0,
        instance = action.instance.map(|i| i.0),
        at = %action.at,
        action = ?action.kind,
        "recovery action"
    );
}

/// Worse failure types reclassify a pending episode.
fn severity(failure: FailureType) -> u8 {
    match failure {
        FailureType::Degraded => 0,
        FailureType::Unresponsive => 1,
        FailureType::Crashed => 2,
        FailureType::CrashLooping => 3,
    }
}

impl Machine for RecoveryCoordinator {
    type Input = RecoveryInput;
    type Output = RecoveryOutput;

    fn handle(&mut self, now: Instant, input: RecoveryInput) {
        let result = match input {
            RecoveryInput::Register { instance, service } => self.register(now, instance, service),
            RecoveryInput::Deregister { instance } => {
                self.deregister(now, instance);
                Ok(())
            }
            RecoveryInput::Failure(report) => self.report_failure(now, report),
            RecoveryInput::Healthy { instance } => {
                self.report_healthy(now, instance);
                Ok(())
            }
            RecoveryInput::Outcome { id, outcome } => {
                self.report_outcome(now, id, outcome);
                Ok(())
            }
            RecoveryInput::Unreachable { instance, until, why } => {
                self.report_unreachable(now, instance, until, why)
            }
            RecoveryInput::Reachable { instance } => {
                self.report_reachable(now, instance);
                Ok(())
            }
            RecoveryInput::ObserveUnhealthy { scope, unhealthy, total } => {
                self.observe_unhealthy_share(now, scope, unhealthy, total);
                Ok(())
            }
        };
        if let Err(error) = result {
            self.stats.rejected_inputs += 1;
            tracing::warn!(target: "vigil::recovery", %error, "recovery input refused");
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let timed_out: Vec<InstanceId> = self
            .episodes
            .iter()
            .filter(|(_, e)| e.phase.acting().is_some_and(|a| a.deadline <= now))
            .map(|(&i, _)| i)
            .collect();
        // Failing one attempt changes no other episode: each is still acting.
        for instance in timed_out {
            mark!("action_timed_out");
            self.fail_attempt(now, instance, true);
        }
        let due: Vec<(ServiceId, ServiceId)> =
            self.circuits.iter().filter(|(_, c)| c.deadline() <= now).map(|(&k, _)| k).collect();
        for key in due {
            match self.circuits[&key] {
                Circuit::Open(open) => {
                    let half = open.probe(now, self.config.action_timeout);
                    self.circuits.insert(key, Circuit::HalfOpen(half));
                    self.circuit_action(
                        now,
                        key.0,
                        half.id,
                        half.attempt,
                        ActionKind::HalfOpen { to: key.1 },
                    );
                }
                Circuit::HalfOpen(half) => self.reopen(now, key, half),
            }
        }
        self.schedule(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let episodes = self.episodes.values().filter_map(|e| match e.phase {
            Phase::Acting(a) => Some(a.deadline),
            Phase::Pending(p) => match p.held {
                None | Some(HoldReason::Backoff { .. } | HoldReason::Settling { .. }) => Some(p.not_before),
                Some(HoldReason::Partitioned { until, .. }) => Some(until),
                Some(_) => None,
            },
            Phase::AskedHuman(_) => None,
        });
        let circuits = self.circuits.values().map(Circuit::deadline);
        episodes.chain(circuits).min()
    }

    fn poll_output(&mut self) -> Option<RecoveryOutput> {
        self.outputs.pop_front()
    }
}
