//! The recovery controller: turns verdicts into recovery inputs, feeds the
//! storm guard, and publishes the coordinator's actions and decisions.
//!
//! Two judgments live here because they need the health view beside the
//! coordinator's own state:
//!
//! - **Hung, or hard to reach?** An instance its probes call
//!   unresponsive while its heartbeats keep arriving is either hung (its
//!   agent is a sidecar and beats on) or behind a lossy link. A hung
//!   application loses no heartbeats; a lossy link loses some. Behind a
//!   lossy link a restart cannot help, so it is reported degraded: its
//!   ladder takes it out of rotation instead. The judgment is revisited
//!   when the heartbeats turn clean while the probes still fail.
//! - **Cut off, or failed?** An instance whose heartbeats stopped and
//!   whose probes go unanswered (no refusal, no error: silence) is either
//!   down or cut off from the control node. Its clients are a second
//!   vantage point ([`Vantage`], from their [`CallReport`]s): if one got an
//!   answer from it after the control node lost it, it is alive and cut
//!   off, a partition; if their calls fail too, it failed. A cut-off
//!   instance is taken out of rotation and its restarts are held
//!   ([`RecoveryCoordinator::report_unreachable`]): a restart cannot fix
//!   a network, and a healthy instance restarted is an outage made by
//!   recovery. Instances that go silent together in one zone share a
//!   network path: they are one event, so a zone-mate confirmed cut off
//!   speaks for the ones its clients did not call. When the clients have
//!   not said yet (their reports come every second or so), a silent
//!   instance waits `partition.confirm_within` for their word; a service
//!   nobody calls has no one to ask, and its silent instances are judged
//!   failed at once, as before.
//! - **How much of each scope went silent**, for the storm guard; an
//!   instance judged cut off does not count (one partition is one event).

use std::collections::VecDeque;

use super::View;
use super::event::Event;
use super::hearing::{Assessment, Hearing};
use super::vantage::{Evidence, Vantage};
use crate::envelope::Output;
use crate::health::{HealthEvent, HealthStatus, Liveness};
use crate::id::{InstanceId, ServiceId};
use crate::machine::Machine;
use crate::message::CallReport;
use crate::recovery::Unreachability;
use crate::recovery::{
    Action, ActionId, ActionKind, Decision, DecisionKind, FailureReport, FailureType, Outcome,
    PartitionConfig, RecoveryConfig, RecoveryConfigError, RecoveryCoordinator, RecoveryInput, RecoveryOutput,
    StormScope,
};
use crate::rng::Seed;
use crate::time::{Duration, Instant};
use std::collections::{BTreeMap, BTreeSet};

/// Heartbeat loss (permille of recent beats) from which an alive instance
/// that stops answering probes is judged unreachable rather than hung: 7.5 %,
/// more than one beat lost in the last 16 or so.
/// A clean link loses none; a hung application's sidecar agent loses none.
pub const LOSSY_LINK_PERMILLE: u32 = 75;

/// Heartbeats in a row without a gap after which an instance judged behind
/// a lossy link, whose probes still time out, is judged hung after all. A
/// link losing a quarter of its messages shows thirty in a row about once
/// in five thousand tries; one losing 1 % does three times in four.
pub const RECONSIDER_CLEAN_BEATS: u32 = 30;

/// The coordinator and what the control plane tracks for it.
#[derive(Debug, Clone)]
pub struct RecoveryController {
    coordinator: RecoveryCoordinator,
    /// The reroute in flight for each instance, if any.
    reroute_action: Vec<Option<ActionId>>,
    /// Instances whose unresponsiveness was judged a lossy link.
    judged_lossy: Vec<bool>,
    /// Per instance: whether it looks down to this observer (suspect or
    /// dead, or its monitor says unresponsive), for the storm guard.
    looks_down: Vec<bool>,
    /// Per service id: `(looking down, watched)`; and the fleet's.
    down_by_service: Vec<(u32, u32)>,
    down_total: (u32, u32),
    /// What the clients say.
    vantage: Vantage,
    /// Per instance: judged cut off from this observer, and whether its
    /// clients confirmed it (`Some(true)`) or have not said yet.
    cut_off: Vec<Option<bool>>,
    /// Per instance judged cut off: heard again since (its hold shrank to
    /// the settle time; it stays judged until its episode ends).
    healing: Vec<bool>,
    partition: PartitionConfig,
    /// After a cut-off instance is heard again, how long its hold lasts
    /// (its probes must pass first): the storm guard's settle time.
    settle: Duration,
    /// How well this observer hears the fleet.
    hearing: Hearing,
    /// Per instance: restarts held because this observer was deaf when it
    /// looked down.
    deaf_hold: Vec<DeafHold>,
    /// The instances [`DeafHold::Held`], in id order.
    deaf_held: BTreeSet<InstanceId>,
    /// The instances [`DeafHold::Doubted`] (or once so), in id order, and
    /// when their doubt ends.
    deaf_doubted: BTreeMap<InstanceId, Instant>,
}

/// An instance's hold for a deaf observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeafHold {
    /// Not held for deafness.
    None,
    /// Held a moment (`partition.confirm_within`) while the observer's
    /// hearing is in doubt.
    Doubted,
    /// Held while the observer stays deaf (at most `partition.hold`).
    Held,
    /// The observer hears again: the hold shrank to the settle time.
    Releasing,
}

impl RecoveryController {
    pub(super) fn new(config: &RecoveryConfig, seed: Seed) -> Result<Self, RecoveryConfigError> {
        Ok(RecoveryController {
            coordinator: RecoveryCoordinator::new(config.clone(), seed)?,
            reroute_action: Vec::new(),
            judged_lossy: Vec::new(),
            looks_down: Vec::new(),
            down_by_service: Vec::new(),
            down_total: (0, 0),
            vantage: Vantage::default(),
            cut_off: Vec::new(),
            healing: Vec::new(),
            partition: config.partition,
            settle: config.storm.settle,
            hearing: Hearing::default(),
            deaf_hold: Vec::new(),
            deaf_held: BTreeSet::new(),
            deaf_doubted: BTreeMap::new(),
        })
    }

    /// The coordinator, for queries.
    pub fn coordinator(&self) -> &RecoveryCoordinator {
        &self.coordinator
    }

    /// Membership: a new instance is watched (and recovered, if its
    /// service is under recovery).
    pub(super) fn joined(&mut self, now: Instant, instance: InstanceId, service: ServiceId) {
        if let Err(e) = self.coordinator.register(now, instance, service) {
            // A service the recovery configuration does not name is
            // watched but not recovered.
            tracing::warn!(instance = instance.0, service = service.0, error = %e, "not under recovery");
        }
        let i = instance.index();
        if self.looks_down.len() <= i {
            self.reroute_action.resize(i + 1, None);
            self.judged_lossy.resize(i + 1, false);
            self.looks_down.resize(i + 1, false);
            self.cut_off.resize(i + 1, None);
            self.healing.resize(i + 1, false);
            self.deaf_hold.resize(i + 1, DeafHold::None);
        }
        if self.down_by_service.len() <= service.index() {
            self.down_by_service.resize(service.index() + 1, (0, 0));
        }
        self.down_by_service[service.index()].1 += 1;
        self.down_total.1 += 1;
    }

    /// Membership: an instance left (`service` is what the roster held).
    pub(super) fn left(&mut self, now: Instant, instance: InstanceId, service: Option<ServiceId>) {
        let i = instance.index();
        if let Some(service) = service {
            let down = std::mem::take(&mut self.looks_down[i]);
            self.reroute_action[i] = None;
            self.judged_lossy[i] = false;
            self.cut_off[i] = None;
            self.healing[i] = false;
            self.deaf_hold[i] = DeafHold::None;
            self.deaf_held.remove(&instance);
            self.deaf_doubted.remove(&instance);
            self.vantage.forget(instance);
            self.hearing.forget(instance);
            let counts = &mut self.down_by_service[service.index()];
            counts.0 -= u32::from(down);
            counts.1 -= 1;
            self.down_total.0 -= u32::from(down);
            self.down_total.1 -= 1;
        }
        self.coordinator.deregister(now, instance);
    }

    /// How an action went, as the driver saw it.
    pub(super) fn outcome(&mut self, now: Instant, id: ActionId, outcome: Outcome) {
        self.coordinator.report_outcome(now, id, outcome);
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.coordinator.handle_timeout(now);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.coordinator.poll_timeout()
    }

    /// The turn, in three passes over what health published: heartbeats
    /// (a judged-lossy instance may turn out hung), then the storm guard
    /// sees every verdict, then each verdict becomes a recovery input. A
    /// failure report must not act before a storm it is part of.
    pub(super) fn hear(&mut self, now: Instant, view: &View<'_>, events: &[Event]) {
        for event in events {
            if let Event::ProbeTimedOut { instance, at } = *event {
                self.hearing.record_timeout(at, instance);
            }
            if let Event::HeartbeatAccepted { instance, at, missed } = *event {
                self.hearing.record(at, instance, missed);
                self.reconsider_lossy(now, view, instance);
                self.heard_again(now, instance);
            }
        }
        for event in events {
            if let Event::Health(h) = event {
                self.judge_silence(now, view, h.instance());
            }
        }
        self.judge_deafness(now, view, events);
        self.observe_storm(now, view, events);
        for event in events {
            if let Event::Health(h) = event {
                self.recovery_input(now, view, h);
            }
        }
        self.release_answering(now, view, events);
    }

    /// Publish the coordinator's outputs, as events and as outputs for the
    /// driver. A reroute's action id is kept (a lossy-link judgment that
    /// turns out wrong reports it failed); an episode's end forgets it.
    pub(super) fn publish(&mut self, now: Instant, events: &mut Vec<Event>, outputs: &mut VecDeque<Output>) {
        let mut ended: Vec<InstanceId> = Vec::new();
        while let Some(out) = self.coordinator.poll_output() {
            match out {
                RecoveryOutput::Action(Action {
                    kind: ActionKind::Reroute, instance: Some(i), id, ..
                }) => {
                    if let Some(slot) = self.reroute_action.get_mut(i.index()) {
                        *slot = Some(id);
                    }
                }
                RecoveryOutput::Decision(Decision {
                    kind: DecisionKind::Resolved { .. } | DecisionKind::Abandoned,
                    instance: Some(i),
                    ..
                }) => ended.push(i),
                _ => {}
            }
            events.push(Event::Recovery(out));
            outputs.push_back(Output::Recovery(Box::new(out)));
        }
        for instance in ended {
            if let Some(slot) = self.reroute_action.get_mut(instance.index()) {
                *slot = None;
            }
            if let Some(flag) = self.judged_lossy.get_mut(instance.index()) {
                *flag = false;
            }
            if let Some(judged) = self.cut_off.get_mut(instance.index()) {
                let held = judged.take().is_some() || self.deaf_hold[instance.index()] != DeafHold::None;
                self.healing[instance.index()] = false;
                self.deaf_hold[instance.index()] = DeafHold::None;
                self.deaf_held.remove(&instance);
                self.deaf_doubted.remove(&instance);
                // The judgment ends with its episode: a later failure is
                // judged afresh, not held by this one's deadline.
                if held {
                    self.coordinator.handle(now, RecoveryInput::Reachable { instance });
                }
            }
        }
    }

    /// A client's report arrived: a judgment awaiting the clients' word
    /// gets it. Cut off (they reached it): confirmed, and so are its
    /// zone-mates awaiting theirs. Failed (their calls fail too): the
    /// judgment is withdrawn, and recovery acts.
    pub(super) fn call_report(&mut self, now: Instant, view: &View<'_>, report: &CallReport) {
        let instance = report.instance;
        self.vantage.record(now, view.roster.service(instance), report);
        if self.cut_off.get(instance.index()).copied().flatten() != Some(false) {
            return;
        }
        let Some((reached, failed)) = silent_since(view, now, instance) else { return };
        match self.vantage.evidence(instance, reached, failed) {
            Evidence::Reached => self.confirm(now, view, instance),
            Evidence::Failing => self.withdraw(now, instance),
            Evidence::Silent => {}
        }
    }

    /// Judge an instance a health event is about, if it went silent and
    /// is not judged yet: cut off, or failed?
    fn judge_silence(&mut self, now: Instant, view: &View<'_>, instance: InstanceId) {
        let i = instance.index();
        if self.cut_off.get(i).is_none_or(Option::is_some)
            || self.deaf_hold[i] != DeafHold::None
            || !looks_down_now(view, instance)
        {
            return;
        }
        // Heartbeats lost across the fleet make silences everywhere: the
        // deafness judgment speaks for those.
        if self.hearing.beats_doubtful(now) {
            return;
        }
        let Some((reached, failed)) = silent_since(view, now, instance) else { return };
        match self.vantage.evidence(instance, reached, failed) {
            Evidence::Reached => self.confirm(now, view, instance),
            Evidence::Failing => {}
            Evidence::Silent => {
                let zone_confirmed =
                    self.zone_mates(view, instance).any(|m| self.cut_off[m.index()] == Some(true));
                let service = view.roster.service(instance);
                if zone_confirmed {
                    self.confirm(now, view, instance);
                } else if !self.partition.confirm_within.is_zero()
                    && service.is_some_and(|s| self.vantage.watched(now, s))
                {
                    tracing::info!(
                        instance = instance.0,
                        "silent to the control node; waiting for its clients' word before acting"
                    );
                    self.cut_off[i] = Some(false);
                    let until = now.saturating_add(self.partition.confirm_within);
                    self.coordinator.handle(
                        now,
                        RecoveryInput::Unreachable { instance, until, why: Unreachability::AwaitingClients },
                    );
                }
            }
        }
    }

    /// An instance held for deafness, or judged behind a lossy link, that
    /// answers with failures (refusals, errors) proves the observer hears
    /// it: whatever ails it is its own. The hold ends, the reroute is
    /// reported failed, and recovery hears the failure. (One that answers
    /// well resolves its episode.)
    fn release_answering(&mut self, now: Instant, view: &View<'_>, events: &[Event]) {
        for event in events {
            let Event::Health(h) = event else { continue };
            let instance = h.instance();
            // Undamped: the flap damper may report a refusing instance at
            // its worst, unresponsive.
            let failing = view.roster.monitored(instance)
                && view
                    .health
                    .monitor()
                    .instance(instance)
                    .is_some_and(|v| v.raw_status == HealthStatus::Failed);
            let Some(service) = view.roster.service(instance).filter(|_| failing) else { continue };
            let i = instance.index();
            let deaf = self.deaf_hold.get(i).is_some_and(|&d| d != DeafHold::None);
            let lossy = self.judged_lossy.get(i).copied().unwrap_or(false);
            if !(deaf || lossy) {
                continue;
            }
            tracing::info!(instance = instance.0, "answers the observer with failures: its own failure");
            if lossy {
                // Judged behind a lossy link, so rerouted: it answers now,
                // and what it answers is a failure.
                self.judged_lossy[i] = false;
                if let Some(id) = self.reroute_action.get_mut(i).and_then(Option::take) {
                    self.coordinator.report_outcome(now, id, Outcome::Failed);
                }
            }
            if let Some(failure) = FailureType::from_status(HealthStatus::Failed) {
                self.coordinator
                    .handle(now, RecoveryInput::Failure(FailureReport { instance, service, failure }));
            }
            // The failure first, so the episode is reclassified while still
            // held; then the hold ends and recovery acts on what it is.
            if deaf {
                self.deaf_hold[i] = DeafHold::None;
                self.deaf_held.remove(&instance);
                self.deaf_doubted.remove(&instance);
                self.coordinator.handle(now, RecoveryInput::Reachable { instance });
                // Recovery acted on what it heard. While the observer stays
                // deaf, whether that worked cannot be told (probes are lost,
                // and the flap damper holds the worst status): no retry
                // until it hears again, as for every other instance.
                if self.hearing.deaf(now, self.down_total.1) {
                    let until = now.saturating_add(self.partition.hold);
                    self.hold_for_deafness(now, instance, until);
                }
            }
        }
    }

    /// Hold `instance`'s restarts until `until`: this observer is deaf.
    fn hold_for_deafness(&mut self, now: Instant, instance: InstanceId, until: Instant) {
        self.deaf_hold[instance.index()] = DeafHold::Held;
        self.deaf_held.insert(instance);
        self.coordinator
            .handle(now, RecoveryInput::Unreachable { instance, until, why: Unreachability::DeafObserver });
    }

    /// The instances `events` are about that give this observer no answer
    /// (see [`unanswered`]), are not judged cut off, and whose deafness
    /// hold `may_hold` accepts; each once, in event order.
    fn looking_down(
        &self,
        view: &View<'_>,
        events: &[Event],
        may_hold: impl Fn(DeafHold) -> bool,
    ) -> Vec<InstanceId> {
        let mut found: Vec<InstanceId> = Vec::new();
        for event in events {
            let Event::Health(h) = event else { continue };
            let instance = h.instance();
            let i = instance.index();
            if self.deaf_hold.get(i).is_some_and(|&d| may_hold(d))
                && self.cut_off[i].is_none()
                && unanswered(view, instance)
                && !found.contains(&instance)
            {
                found.push(instance);
            }
        }
        found
    }

    /// Is this observer going deaf ([`hearing`](super::hearing))? While it
    /// is, an instance a health event shows looking down (suspect, dead or
    /// unresponsive, not answering with errors) has its restarts held, as
    /// in a partition; once the observer hears again, every hold shrinks to
    /// the settle time, so probes can pass (and end the episodes) before
    /// anything acts. An instance really hung meanwhile is acted on then.
    fn judge_deafness(&mut self, now: Instant, view: &View<'_>, events: &[Event]) {
        if self.partition.hold.is_zero() {
            return;
        }
        let hearing = self.hearing.assess(now, self.down_total.1);
        if hearing == Assessment::Doubtful && !self.partition.confirm_within.is_zero() {
            // Perhaps deafness beginning: wait a moment for the gauge. The
            // coordinator holds for long; the doubt ends here, at
            // `confirm_within` or when the gauge says.
            let until = now.saturating_add(self.partition.hold);
            let doubt_until = now.saturating_add(self.partition.confirm_within);
            for instance in self.looking_down(view, events, |d| d == DeafHold::None) {
                let i = instance.index();
                tracing::info!(
                    instance = instance.0,
                    lossy_instances = self.hearing.lossy_instances(),
                    "looks down while this observer misses some heartbeats of others: waiting to see"
                );
                self.deaf_hold[i] = DeafHold::Doubted;
                self.deaf_doubted.insert(instance, doubt_until);
                self.coordinator.handle(
                    now,
                    RecoveryInput::Unreachable { instance, until, why: Unreachability::DeafObserver },
                );
            }
        } else if hearing == Assessment::Deaf {
            let until = now.saturating_add(self.partition.hold);
            for (instance, _) in std::mem::take(&mut self.deaf_doubted) {
                if self.deaf_hold[instance.index()] != DeafHold::Doubted {
                    continue;
                }
                tracing::info!(instance = instance.0, "the observer is deaf after all; restarts held");
                self.hold_for_deafness(now, instance, until);
            }
            for instance in self.looking_down(view, events, |d| d != DeafHold::Held) {
                tracing::info!(
                    instance = instance.0,
                    lossy_instances = self.hearing.lossy_instances(),
                    "looks down while this observer misses heartbeats of many instances: \
                     the observer is deaf; restarts held"
                );
                self.hold_for_deafness(now, instance, until);
            }
        } else {
            // The doubt is over (the observer hears, or the gauge did not
            // say deaf in time): judge it as any other instance.
            let over: Vec<InstanceId> = self
                .deaf_doubted
                .iter()
                .filter(|&(_, &until)| hearing == Assessment::Clear || until <= now)
                .map(|(&i, _)| i)
                .collect();
            for instance in over {
                self.deaf_doubted.remove(&instance);
                if self.deaf_hold[instance.index()] == DeafHold::Doubted {
                    self.deaf_hold[instance.index()] = DeafHold::None;
                    self.coordinator.handle(now, RecoveryInput::Reachable { instance });
                    self.judge_silence(now, view, instance);
                }
            }
            let until = now.saturating_add(self.settle);
            let monitor = view.health.monitor();
            // A flapping instance is reported at its worst until it calms
            // down: its reported status, shaped by the deafness, is no
            // evidence yet. It stays held until the damping ends.
            let calm: Vec<InstanceId> = self
                .deaf_held
                .iter()
                .copied()
                .filter(|&i| !monitor.instance(i).is_some_and(|v| v.flapping))
                .collect();
            for instance in calm {
                self.deaf_held.remove(&instance);
                let i = instance.index();
                tracing::info!(
                    instance = instance.0,
                    "this observer hears the fleet again; hold shrinks to settle"
                );
                self.deaf_hold[i] = DeafHold::Releasing;
                self.coordinator.handle(
                    now,
                    RecoveryInput::Unreachable { instance, until, why: Unreachability::DeafObserver },
                );
            }
        }
    }

    /// `instance` is alive and cut off from this observer: hold its
    /// restarts for `partition.hold`; its zone-mates awaiting their
    /// clients' word are part of the same partition.
    fn confirm(&mut self, now: Instant, view: &View<'_>, instance: InstanceId) {
        if self.partition.hold.is_zero() {
            return;
        }
        let mut cut: Vec<InstanceId> = vec![instance];
        cut.extend(self.zone_mates(view, instance).filter(|m| self.cut_off[m.index()] == Some(false)));
        let until = now.saturating_add(self.partition.hold);
        for m in cut {
            tracing::info!(
                instance = m.0,
                vouched_for = instance.0,
                "silent to the control node but reached by its clients: cut off, not failed; restarts held"
            );
            self.cut_off[m.index()] = Some(true);
            self.coordinator
                .handle(now, RecoveryInput::Unreachable { instance: m, until, why: Unreachability::CutOff });
        }
    }

    /// The judgment of `instance` no longer holds.
    fn withdraw(&mut self, now: Instant, instance: InstanceId) {
        if let Some(judged) = self.cut_off.get_mut(instance.index())
            && judged.take().is_some()
        {
            self.healing[instance.index()] = false;
            tracing::info!(instance = instance.0, "its clients' calls fail too: failed, not cut off");
            self.coordinator.handle(now, RecoveryInput::Reachable { instance });
        }
    }

    /// A heartbeat from an instance judged cut off: the path is back. Its
    /// hold shrinks to the settle time, so its probes can pass (and end
    /// the episode) before anything acts on it; it stays judged (and out
    /// of the storm guard's count) until then.
    fn heard_again(&mut self, now: Instant, instance: InstanceId) {
        let i = instance.index();
        if self.cut_off.get(i).copied().flatten().is_none() || self.healing[i] {
            return;
        }
        // A deaf observer hears an instance now and then: that is not the
        // path coming back.
        if self.hearing.deaf(now, self.down_total.1) {
            return;
        }
        self.healing[i] = true;
        let until = now.saturating_add(self.settle);
        self.coordinator
            .handle(now, RecoveryInput::Unreachable { instance, until, why: Unreachability::CutOff });
    }

    /// The other registered instances of `instance`'s zone.
    fn zone_mates<'v>(&self, view: &View<'v>, instance: InstanceId) -> impl Iterator<Item = InstanceId> + 'v {
        let catalog = view.catalog;
        let zone = catalog.instance(instance).map(|r| r.zone.clone());
        let len = self.cut_off.len() as u32;
        (0..len).map(InstanceId).filter(move |&m| {
            m != instance && zone.as_ref().is_some_and(|z| catalog.instance(m).is_some_and(|r| &r.zone == z))
        })
    }

    /// Feed the coordinator what `event` means for it.
    fn recovery_input(&mut self, now: Instant, view: &View<'_>, event: &HealthEvent) {
        let input = match *event {
            // Heartbeat liveness speaks for instances without active
            // checks; the monitor speaks for the others.
            HealthEvent::LivenessChanged { instance, to, .. } if !view.roster.monitored(instance) => match to
            {
                Liveness::Dead => view.catalog.instance(instance).map(|i| {
                    RecoveryInput::Failure(FailureReport {
                        instance,
                        service: i.service,
                        failure: FailureType::Unresponsive,
                    })
                }),
                Liveness::Alive => Some(RecoveryInput::Healthy { instance }),
                Liveness::Unknown | Liveness::Suspect => None,
            },
            HealthEvent::LivenessChanged { .. } => None,
            _ => RecoveryInput::from_health_event(event).map(|input| self.judge_reachability(view, input)),
        };
        if let Some(input) = input {
            self.coordinator.handle(now, input);
        }
    }

    /// Unresponsive to probes while heartbeating through a lossy link:
    /// degraded (rerouted), not unresponsive (restarted).
    fn judge_reachability(&mut self, view: &View<'_>, input: RecoveryInput) -> RecoveryInput {
        let RecoveryInput::Failure(report) = input else { return input };
        if report.failure != FailureType::Unresponsive {
            return input;
        }
        let Some(liveness) = view.health.detector().instance(report.instance) else { return input };
        let lossy = liveness.status == Liveness::Alive
            && liveness.heartbeat_loss_permille().is_some_and(|loss| loss >= LOSSY_LINK_PERMILLE);
        if !lossy {
            return input;
        }
        tracing::info!(
            instance = report.instance.0,
            heartbeat_loss_permille = liveness.heartbeat_loss_permille(),
            "unresponsive to probes but heartbeating through a lossy link: degraded, not restarted"
        );
        if let Some(flag) = self.judged_lossy.get_mut(report.instance.index()) {
            *flag = true;
        }
        RecoveryInput::Failure(FailureReport { failure: FailureType::Degraded, ..report })
    }

    /// An instance judged behind a lossy link whose heartbeats are clean
    /// again ([`RECONSIDER_CLEAN_BEATS`] in a row without a gap) while its
    /// probes still time out was hung after all: its reroute is reported
    /// failed and it is reported unresponsive, so recovery reclassifies the
    /// episode and restarts it.
    fn reconsider_lossy(&mut self, now: Instant, view: &View<'_>, instance: InstanceId) {
        let i = instance.index();
        if !self.judged_lossy.get(i).copied().unwrap_or(false) {
            return;
        }
        let health = view.health;
        let clean =
            health.detector().instance(instance).is_some_and(|l| l.clean_streak >= RECONSIDER_CLEAN_BEATS);
        // Undamped: a flapping instance is reported at its worst.
        let unresponsive =
            health.monitor().instance(instance).is_some_and(|v| v.raw_status == HealthStatus::Unresponsive);
        if !(clean && unresponsive) {
            return;
        }
        self.judged_lossy[i] = false;
        let Some(service) = view.roster.service(instance) else { return };
        tracing::info!(
            instance = instance.0,
            "heartbeats clean again while probes still fail: hung, not unreachable"
        );
        if let Some(id) = self.reroute_action.get_mut(i).and_then(Option::take) {
            self.coordinator.report_outcome(now, id, Outcome::Failed);
        }
        self.coordinator.handle(
            now,
            RecoveryInput::Failure(FailureReport { instance, service, failure: FailureType::Unresponsive }),
        );
    }

    /// Tell the storm guard how much of each touched scope looks down.
    /// Suspicion counts: when this observer is cut off, every instance
    /// turns suspect seconds before the first is declared dead, so the
    /// guard holds from the first failure report rather than after a few
    /// restarts of a healthy fleet.
    fn observe_storm(&mut self, now: Instant, view: &View<'_>, events: &[Event]) {
        let mut changed: Vec<ServiceId> = Vec::new();
        for instance in events.iter().filter_map(Event::routing_relevant) {
            let i = instance.index();
            let Some(service) = view.roster.service(instance) else { continue };
            let down = looks_down_now(view, instance)
                && self.cut_off[i].is_none()
                && matches!(self.deaf_hold[i], DeafHold::None | DeafHold::Doubted);
            if self.looks_down[i] == down {
                continue;
            }
            self.looks_down[i] = down;
            let counts = &mut self.down_by_service[service.index()];
            if down {
                counts.0 += 1;
                self.down_total.0 += 1;
            } else {
                counts.0 -= 1;
                self.down_total.0 -= 1;
            }
            if !changed.contains(&service) {
                changed.push(service);
            }
        }
        if changed.is_empty() {
            return;
        }
        for service in changed {
            let (down, total) = self.down_by_service[service.index()];
            self.coordinator.observe_unhealthy_share(now, StormScope::Service(service), down, total);
        }
        self.coordinator.observe_unhealthy_share(
            now,
            StormScope::Global,
            self.down_total.0,
            self.down_total.1,
        );
    }
}

/// Whether `instance` looks down to this observer because it went
/// silent: the detector holds it suspect or dead, or its monitor
/// unresponsive. An instance that answers, even with errors or refusals
/// (`failed`), proves the observer can reach it, so it says nothing
/// about the observer being cut off.
fn looks_down_now(view: &View<'_>, instance: InstanceId) -> bool {
    let silent = view
        .health
        .detector()
        .instance(instance)
        .is_some_and(|s| matches!(s.status, Liveness::Suspect | Liveness::Dead));
    silent
        || (view.roster.monitored(instance)
            && view.health.monitor().status(instance) == Some(HealthStatus::Unresponsive))
}

/// Whether `instance` gives this observer no answer at all: its probes
/// time out (monitored), or its heartbeats stopped (not monitored). A
/// refusal or an error answer proves the observer hears it, deaf or not.
fn unanswered(view: &View<'_>, instance: InstanceId) -> bool {
    if view.roster.monitored(instance) {
        // Undamped: a flapping instance is reported at its worst.
        view.health.monitor().instance(instance).is_some_and(|v| v.raw_status == HealthStatus::Unresponsive)
    } else {
        view.health
            .detector()
            .instance(instance)
            .is_some_and(|s| matches!(s.status, Liveness::Suspect | Liveness::Dead))
    }
}

/// If `instance` went silent to this observer, `(reached, failed)`: the
/// instant after which an answer to one of its clients proves it alive
/// (its last heartbeat plus half the suspect timeout, so that answers it
/// gave just before dying, still in flight, prove nothing), and the
/// instant after which a call its clients could not get answered proves
/// it failed (its last heartbeat).
///
/// Silent means: no heartbeat for half its suspect timeout, and, if it
/// has active checks, its monitor says unresponsive (probes time out). A
/// probe answered with an error or refused proves the observer reaches
/// it: a crashed process, not a partition.
fn silent_since(view: &View<'_>, now: Instant, instance: InstanceId) -> Option<(Instant, Instant)> {
    let detector = view.health.detector();
    let liveness = detector.instance(instance)?;
    let margin = detector.timeouts(liveness.class)?.suspect_after / 2;
    if now.saturating_duration_since(liveness.last_heard) < margin {
        return None;
    }
    if view.roster.monitored(instance)
        && view.health.monitor().status(instance) != Some(HealthStatus::Unresponsive)
    {
        return None;
    }
    Some((liveness.last_heard.saturating_add(margin), liveness.last_heard))
}
