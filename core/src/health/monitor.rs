//! The health monitor: many instances, each with several checks, turned
//! into statuses, verdicts and a history.
//!
//! # Semantics
//!
//! - **Startup gates.** An instance with startup checks runs only those
//!   until every one of them has gone good once; meanwhile its status is
//!   `Unknown` and it is not ready. Liveness and readiness checks are not
//!   scheduled and heartbeats do not reach them. A startup check that goes
//!   bad means the instance failed to start: status `Failed`, and
//!   [`HealthEvent::NeedsRecovery`] naming the startup check. Startup checks
//!   keep running after such a failure; should one pass later, the instance
//!   starts. Once passed, a startup check stops for good.
//! - **Instance status** is the worst status of its liveness and readiness
//!   checks (severity order of [`HealthStatus`]; an instance with only
//!   startup checks is `Healthy` once started).
//! - **Ready** means started, every readiness check serving (`Healthy` or
//!   `Degraded`; a readiness check with no verdict yet is not ready, as in
//!   Kubernetes), no liveness check failing, and not flapping. An instance
//!   without readiness checks is ready as soon as it has started.
//! - **Needs recovery** is raised once when a liveness check goes
//!   `Unresponsive` or `Failed` (or startup fails), and re-armed when none
//!   fails any more and the instance is not flapping. Readiness failures
//!   never ask for recovery.
//! - **Flapping** damps the reported status ([`FlapDamper`]'s rule) and
//!   keeps the instance out of rotation until it settles.
//! - A probe result is matched to its round by [`ProbeId`]; one that
//!   reaches the monitor at or after the round's deadline is ignored, even
//!   if `handle_timeout` has not run yet, so the verdict does not depend on
//!   the order in which a driver delivers a result and a timer that fall on
//!   the same instant.
//!
//! # Cost
//!
//! Every check has at most one pending timer: its next round, its
//! in-flight probe's deadline, or its TTL expiry; every flapping instance
//! one more (its quiet deadline). Timers live in one ordered set keyed
//! `(deadline, instance, slot)`, and each check remembers its own key, so
//! re-arming is an exact O(log n) removal and insertion, and
//! `handle_timeout` costs O(due · log n): idle instances cost nothing. A
//! probe result and a heartbeat cost O(log n) plus the check's window
//! update (O(window) for the latency window's sorted insert) plus
//! O(checks of the instance) to re-aggregate when a check's status changes.
//! Service summaries are maintained incrementally: queries are O(log s).
//!
//! # Bounds
//!
//! Instances: a dense table up to [`MAX_INSTANCE_ID`]. Checks per instance:
//! [`MAX_CHECKS_PER_INSTANCE`](super::MAX_CHECKS_PER_INSTANCE). Windows:
//! [`MAX_WINDOW_SAMPLES`](super::MAX_WINDOW_SAMPLES). History:
//! [`HISTORY_LEN`](super::HISTORY_LEN) per instance. Timers: one per check
//! plus one per instance. Pending outputs: those of one call, drained by
//! the driver before the next (the machine contract).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::check::{CheckConfig, CheckType, InstanceHealthConfig};
use super::detector::MAX_INSTANCE_ID;
use super::flap::FlapDamper;
use super::history::{Transition, TransitionHistory};
use super::hysteresis::{Hysteresis, Polarity};
use super::phi::PhiAccrual;
use super::probe::{ProbeId, ProbeOutcome, ProbeRequest, ProbeResult};
use super::status::{Cause, CheckRef, HealthStatus, ProbeKind, TransitionReason};
use super::window::{LatencyWindow, OutcomeWindow};
use super::{HealthConfigError, HealthEvent};
use crate::id::{InstanceId, ServiceId};
use crate::machine::Machine;
use crate::time::{Duration, Instant};

/// Timer slot of an instance's flap quiet deadline (check slots are their
/// index, below [`MAX_CHECKS_PER_INSTANCE`](super::MAX_CHECKS_PER_INSTANCE)).
const FLAP_SLOT: u16 = u16::MAX;

/// The smallest step by which a heartbeat check re-arms when phi's closed
/// form and its evaluation disagree by rounding: guarantees progress.
const MIN_REARM: Duration = Duration::from_micros(1);

/// What a driver feeds the monitor through [`Machine::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorInput {
    /// The answer to a [`ProbeRequest`].
    ProbeResult(ProbeResult),
    /// A heartbeat from `instance` renewed its heartbeat checks.
    Heartbeat {
        /// The instance heard from.
        instance: InstanceId,
    },
}

/// What the monitor asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorOutput {
    /// Run this probe and feed back its [`ProbeResult`].
    Probe(ProbeRequest),
    /// Publish this event.
    Event(HealthEvent),
}

/// Counters for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Probe requests emitted.
    pub probes_sent: u64,
    /// Probe results that answered their round in time.
    pub results_accepted: u64,
    /// Probe results ignored: late (at or after the deadline), duplicated,
    /// or for an unknown instance, check or round.
    pub results_ignored: u64,
    /// Rounds that ended without a result: counted as unresponsive.
    pub probes_timed_out: u64,
    /// Heartbeats that renewed at least one check.
    pub heartbeats_accepted: u64,
    /// Heartbeats from unknown instances, or that no running check takes
    /// (still starting without a heartbeat startup check, or no heartbeat
    /// check at all).
    pub heartbeats_ignored: u64,
}

/// Counts of one service's instances, maintained as statuses change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceSummary {
    /// Registered instances.
    pub instances: u32,
    /// Instances by reported status, indexed by [`HealthStatus::index`].
    pub by_status: [u32; 5],
    /// Instances in rotation.
    pub ready: u32,
    /// Instances flapping.
    pub flapping: u32,
}

impl ServiceSummary {
    /// Instances whose reported status is `status`.
    pub fn count(&self, status: HealthStatus) -> u32 {
        self.by_status[status.index()]
    }

    /// Share of instances that are `Healthy`, in thousandths (0 when empty).
    pub fn healthy_permille(&self) -> u16 {
        permille(self.count(HealthStatus::Healthy), self.instances)
    }

    /// Share of instances that are serving (`Healthy` or `Degraded`), in
    /// thousandths (0 when empty).
    pub fn serving_permille(&self) -> u16 {
        permille(self.count(HealthStatus::Healthy) + self.count(HealthStatus::Degraded), self.instances)
    }

    /// Share of instances in rotation, in thousandths (0 when empty).
    pub fn ready_permille(&self) -> u16 {
        permille(self.ready, self.instances)
    }
}

fn permille(part: u32, whole: u32) -> u16 {
    if whole == 0 {
        return 0;
    }
    u16::try_from(u64::from(part) * 1000 / u64::from(whole)).unwrap_or(1000)
}

/// One instance, as the monitor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceView {
    /// Its service.
    pub service: ServiceId,
    /// The status reported (damped while flapping).
    pub status: HealthStatus,
    /// The status its checks say, undamped.
    pub raw_status: HealthStatus,
    /// Whether it is in rotation.
    pub ready: bool,
    /// Whether every startup check has passed.
    pub started: bool,
    /// Whether it is flapping.
    pub flapping: bool,
    /// Whether a recovery episode is open (raised, not yet cleared).
    pub needs_recovery: bool,
    /// When it was registered.
    pub registered_at: Instant,
}

/// One check, as the monitor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckView {
    /// Which check.
    pub check: CheckRef,
    /// Its status.
    pub status: HealthStatus,
    /// Why.
    pub cause: Cause,
    /// Whether it is scheduled (startup gating; a passed startup check stops).
    pub running: bool,
    /// Consecutive successes.
    pub successes_in_row: u32,
    /// Consecutive failures.
    pub failures_in_row: u32,
}

/// Per-check-type state.
#[derive(Clone, Debug)]
enum Driven {
    Probe {
        next_run: Instant,
        /// `(seq, deadline)` of the round awaiting its result.
        in_flight: Option<(u64, Instant)>,
        latency: Option<LatencyWindow>,
        errors: Option<OutcomeWindow>,
    },
    Heartbeat {
        /// When the next ttl-silence failure is counted.
        ttl_deadline: Instant,
        phi: Option<PhiAccrual>,
        /// Whether phi already counted its failure in this silence.
        phi_fired: bool,
    },
}

#[derive(Clone, Debug)]
struct CheckState {
    config: CheckConfig,
    check: CheckRef,
    running: bool,
    hysteresis: Hysteresis,
    status: HealthStatus,
    cause: Cause,
    /// This check's key in the timer set, if armed.
    timer: Option<Instant>,
    driven: Driven,
}

#[derive(Clone, Debug)]
struct InstanceState {
    service: ServiceId,
    registered_at: Instant,
    checks: Vec<CheckState>,
    started: bool,
    raw: HealthStatus,
    reported: HealthStatus,
    ready: bool,
    recovery_open: bool,
    flap: Option<FlapDamper>,
    flap_timer: Option<Instant>,
    history: TransitionHistory,
}

/// Watches many instances' health: schedules probes, keeps their deadlines,
/// counts heartbeats, and reports statuses, readiness and recovery
/// verdicts.
///
/// Methods, as a driver uses them:
///
/// - mutators: [`register`](Self::register), [`deregister`](Self::deregister),
///   [`handle_probe_result`](Self::handle_probe_result),
///   [`heartbeat`](Self::heartbeat), [`handle_timeout`](Self::handle_timeout)
///   (or [`Machine::handle`] with a [`MonitorInput`]);
/// - [`poll_output`](Self::poll_output): drain until `None` after every
///   mutation; probe requests and events come out in the order they arose;
/// - [`poll_timeout`](Self::poll_timeout): when to call `handle_timeout`;
/// - getters: [`instance`](Self::instance), [`checks`](Self::checks),
///   [`history`](Self::history), [`service`](Self::service),
///   [`services`](Self::services), [`stats`](Self::stats).
#[derive(Clone, Debug, Default)]
pub struct HealthMonitor {
    slots: Vec<Option<InstanceState>>,
    services: BTreeMap<ServiceId, ServiceSummary>,
    /// `(deadline, instance, slot)`: slot is a check index or [`FLAP_SLOT`].
    timers: BTreeSet<(Instant, InstanceId, u16)>,
    outputs: VecDeque<MonitorOutput>,
    next_seq: u64,
    registered: usize,
    stats: MonitorStats,
}

impl HealthMonitor {
    /// A monitor watching nothing.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- getters -------------------------------------------------------

    /// The monitor's view of `instance`, if registered.
    pub fn instance(&self, instance: InstanceId) -> Option<InstanceView> {
        let st = self.slot(instance)?;
        Some(InstanceView {
            service: st.service,
            status: st.reported,
            raw_status: st.raw,
            ready: st.ready,
            started: st.started,
            flapping: st.flap.as_ref().is_some_and(FlapDamper::is_flapping),
            needs_recovery: st.recovery_open,
            registered_at: st.registered_at,
        })
    }

    /// The reported status of `instance`, if registered.
    pub fn status(&self, instance: InstanceId) -> Option<HealthStatus> {
        self.slot(instance).map(|st| st.reported)
    }

    /// The checks of `instance`, in configuration order (empty if not
    /// registered).
    pub fn checks(&self, instance: InstanceId) -> impl Iterator<Item = CheckView> + '_ {
        self.slot(instance).into_iter().flat_map(|st| {
            st.checks.iter().map(|c| CheckView {
                check: c.check,
                status: c.status,
                cause: c.cause,
                running: c.running,
                successes_in_row: c.hysteresis.successes_in_row(),
                failures_in_row: c.hysteresis.failures_in_row(),
            })
        })
    }

    /// The transition history of `instance`, if registered.
    pub fn history(&self, instance: InstanceId) -> Option<&TransitionHistory> {
        self.slot(instance).map(|st| &st.history)
    }

    /// The phi-accrual detector of a heartbeat check, if it has one.
    pub fn phi(&self, instance: InstanceId, check: u16) -> Option<&PhiAccrual> {
        match &self.slot(instance)?.checks.get(usize::from(check))?.driven {
            Driven::Heartbeat { phi, .. } => phi.as_ref(),
            Driven::Probe { .. } => None,
        }
    }

    /// Every registered instance with its view, in id order.
    pub fn instances(&self) -> impl Iterator<Item = (InstanceId, InstanceView)> + '_ {
        (0..self.slots.len()).filter_map(|i| {
            let id = InstanceId(u32::try_from(i).ok()?);
            self.instance(id).map(|v| (id, v))
        })
    }

    /// Registered instances.
    pub fn len(&self) -> usize {
        self.registered
    }

    /// Whether no instance is registered.
    pub fn is_empty(&self) -> bool {
        self.registered == 0
    }

    /// The summary of `service`, if it has registered instances.
    pub fn service(&self, service: ServiceId) -> Option<&ServiceSummary> {
        self.services.get(&service)
    }

    /// Every service with registered instances, in id order.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &ServiceSummary)> {
        self.services.iter().map(|(&id, s)| (id, s))
    }

    /// Counters.
    pub fn stats(&self) -> MonitorStats {
        self.stats
    }

    // ----- mutators ------------------------------------------------------

    /// Start watching `instance` of `service` at `now`.
    ///
    /// Its status starts `Unknown`. Startup checks (or, without any, all
    /// checks) are armed at once: the first probe round is due at
    /// `now + initial_delay`, the first TTL expires at `now + ttl`. An
    /// instance without startup or readiness checks is ready at once.
    pub fn register(
        &mut self,
        now: Instant,
        instance: InstanceId,
        service: ServiceId,
        config: &InstanceHealthConfig,
    ) -> Result<(), HealthConfigError> {
        if instance.0 > MAX_INSTANCE_ID {
            return Err(HealthConfigError::InstanceIdTooLarge { id: instance.0, max: MAX_INSTANCE_ID });
        }
        config.validate()?;
        if self.slot(instance).is_some() {
            return Err(HealthConfigError::AlreadyRegistered(instance.0));
        }
        let has_startup = config.checks.iter().any(|c| c.kind == ProbeKind::Startup);
        let checks = config
            .checks
            .iter()
            .enumerate()
            .map(|(index, &config)| CheckState {
                config,
                // `validate` bounds the count to MAX_CHECKS_PER_INSTANCE.
                check: CheckRef { index: u16::try_from(index).unwrap_or(u16::MAX - 1), kind: config.kind },
                running: false,
                hysteresis: Hysteresis::new(config.failure_threshold, config.success_threshold),
                status: HealthStatus::Unknown,
                cause: Cause::NotObserved,
                timer: None,
                driven: match config.check {
                    CheckType::Probe(p) => Driven::Probe {
                        next_run: now,
                        in_flight: None,
                        latency: p.latency.map(|r| LatencyWindow::new(r.window_samples)),
                        errors: p.error_rate.map(|r| OutcomeWindow::new(r.window_samples)),
                    },
                    CheckType::Heartbeat(hb) => Driven::Heartbeat {
                        ttl_deadline: now,
                        // Validated above: `new` cannot fail here.
                        phi: hb.phi.and_then(|phi| PhiAccrual::new(phi).ok()),
                        phi_fired: false,
                    },
                },
            })
            .collect();
        let index = instance.index();
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(InstanceState {
            service,
            registered_at: now,
            checks,
            started: !has_startup,
            raw: HealthStatus::Unknown,
            reported: HealthStatus::Unknown,
            ready: false,
            recovery_open: false,
            flap: config.flap.map(|f| FlapDamper::new(f, HealthStatus::Unknown)),
            flap_timer: None,
            history: TransitionHistory::new(),
        });
        self.registered += 1;
        let summary = self.services.entry(service).or_default();
        summary.instances += 1;
        summary.by_status[HealthStatus::Unknown.index()] += 1;
        let count = config.checks.len();
        for i in 0..count {
            let kind = config.checks[i].kind;
            if !has_startup || kind == ProbeKind::Startup {
                self.start_check(now, instance, i);
            }
        }
        tracing::debug!(
            instance = instance.0,
            service = service.0,
            checks = count,
            "health monitor registered"
        );
        let reason = TransitionReason { check: None, cause: Cause::NotObserved };
        self.refresh(now, instance, reason);
        Ok(())
    }

    /// Stop watching `instance`. Returns whether it was registered. No
    /// event is emitted: the registry, which asked, knows.
    pub fn deregister(&mut self, instance: InstanceId) -> bool {
        let Some(st) = self.slots.get_mut(instance.index()).and_then(Option::take) else {
            return false;
        };
        for (i, c) in st.checks.iter().enumerate() {
            if let Some(at) = c.timer {
                self.timers.remove(&(at, instance, slot_of(i)));
            }
        }
        if let Some(at) = st.flap_timer {
            self.timers.remove(&(at, instance, FLAP_SLOT));
        }
        self.registered -= 1;
        if let Some(summary) = self.services.get_mut(&st.service) {
            summary.instances -= 1;
            summary.by_status[st.reported.index()] -= 1;
            summary.ready -= u32::from(st.ready);
            summary.flapping -= u32::from(st.flap.as_ref().is_some_and(FlapDamper::is_flapping));
            if summary.instances == 0 {
                self.services.remove(&st.service);
            }
        }
        tracing::debug!(instance = instance.0, "health monitor deregistered");
        true
    }

    /// A probe result arrived at `now`.
    ///
    /// Counted only if it answers the round in flight for its check and
    /// arrives strictly before that round's deadline; otherwise ignored
    /// (see [`MonitorStats::results_ignored`]).
    pub fn handle_probe_result(&mut self, now: Instant, result: ProbeResult) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        let ProbeId { instance, check, seq } = result.probe;
        let i = usize::from(check);
        let Some(c) = self.slot_mut(instance).and_then(|st| st.checks.get_mut(i)) else {
            self.stats.results_ignored += 1;
            return;
        };
        let Driven::Probe { in_flight, next_run, latency, errors } = &mut c.driven else {
            self.stats.results_ignored += 1;
            return;
        };
        match *in_flight {
            Some((s, deadline)) if s == seq && now < deadline => {}
            // Late results stay in flight: the deadline timer counts the
            // round as unresponsive, whichever of the two the driver
            // delivers first.
            _ => {
                self.stats.results_ignored += 1;
                return;
            }
        }
        *in_flight = None;
        let next = *next_run;
        let failure = match result.outcome {
            ProbeOutcome::Success { latency: l } => {
                if let Some(w) = latency {
                    w.record(l);
                }
                None
            }
            ProbeOutcome::Failure { reason } => Some((reason.status(), reason.cause())),
        };
        if let Some(w) = errors {
            w.record(failure.is_some());
        }
        self.stats.results_accepted += 1;
        self.arm(instance, i, Some(next));
        self.observe(now, instance, i, failure.map_or(Ok(Cause::ProbePassed), Err));
    }

    /// A heartbeat from `instance` arrived at `now`: every running heartbeat
    /// check of the instance counts a success and restarts its TTL.
    pub fn heartbeat(&mut self, now: Instant, instance: InstanceId) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        let Some(st) = self.slot_mut(instance) else {
            self.stats.heartbeats_ignored += 1;
            return;
        };
        let mut renewed = [false; super::check::MAX_CHECKS_PER_INSTANCE];
        let mut any = false;
        for (i, c) in st.checks.iter_mut().enumerate() {
            if !c.running {
                continue;
            }
            if let (Driven::Heartbeat { ttl_deadline, phi, phi_fired }, CheckType::Heartbeat(hb)) =
                (&mut c.driven, c.config.check)
            {
                if let Some(phi) = phi {
                    phi.heartbeat(now);
                }
                *ttl_deadline = now + hb.ttl;
                *phi_fired = false;
                renewed[i] = true;
                any = true;
            }
        }
        if !any {
            self.stats.heartbeats_ignored += 1;
            return;
        }
        self.stats.heartbeats_accepted += 1;
        for (i, &renewed) in renewed.iter().enumerate() {
            if renewed {
                let at = self.heartbeat_deadline(instance, i, now);
                self.arm(instance, i, at);
                self.observe(now, instance, i, Ok(Cause::HeartbeatReceived));
            }
        }
    }

    /// Fire every deadline at or before `now`: start probe rounds, count
    /// rounds without a result and expired TTLs as unresponsive, end
    /// flapping episodes. Safe to call early or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        // Terminates: every timer fired is re-armed strictly after `now`, or
        // not at all.
        while let Some(&(at, instance, slot)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if slot == FLAP_SLOT {
                if let Some(st) = self.slot_mut(instance) {
                    st.flap_timer = None;
                }
                self.fire_flap(now, instance);
            } else {
                let i = usize::from(slot);
                if let Some(c) = self.slot_mut(instance).and_then(|st| st.checks.get_mut(i)) {
                    c.timer = None;
                }
                self.fire_check(now, instance, i);
            }
        }
    }

    /// The earliest deadline, if anything is scheduled. Exact: never early,
    /// never late.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, ..)| at)
    }

    /// The next output, oldest first; `None` when drained.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<MonitorOutput> {
        self.outputs.pop_front()
    }

    // ----- internals -----------------------------------------------------

    fn slot(&self, instance: InstanceId) -> Option<&InstanceState> {
        self.slots.get(instance.index()).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, instance: InstanceId) -> Option<&mut InstanceState> {
        self.slots.get_mut(instance.index()).and_then(Option::as_mut)
    }

    /// Move check `i`'s timer to `at` (or disarm it).
    fn arm(&mut self, instance: InstanceId, i: usize, at: Option<Instant>) {
        let Some(c) =
            self.slots.get_mut(instance.index()).and_then(Option::as_mut).and_then(|st| st.checks.get_mut(i))
        else {
            return;
        };
        if let Some(old) = c.timer.take() {
            self.timers.remove(&(old, instance, slot_of(i)));
        }
        if let Some(at) = at {
            c.timer = Some(at);
            self.timers.insert((at, instance, slot_of(i)));
        }
    }

    /// Schedule check `i` from `now`: its first round, or its first TTL.
    fn start_check(&mut self, now: Instant, instance: InstanceId, i: usize) {
        let Some(c) = self.slot_mut(instance).and_then(|st| st.checks.get_mut(i)) else { return };
        c.running = true;
        let at = match (&mut c.driven, c.config.check) {
            (Driven::Probe { next_run, .. }, CheckType::Probe(p)) => {
                *next_run = now + p.initial_delay;
                *next_run
            }
            (Driven::Heartbeat { ttl_deadline, phi_fired, .. }, CheckType::Heartbeat(hb)) => {
                *ttl_deadline = now + hb.ttl;
                *phi_fired = false;
                *ttl_deadline
            }
            // Driven state is built from the same config: unreachable.
            _ => return,
        };
        self.arm(instance, i, Some(at));
    }

    /// Stop check `i`: no timer, no round in flight.
    fn stop_check(&mut self, instance: InstanceId, i: usize) {
        if let Some(c) = self.slot_mut(instance).and_then(|st| st.checks.get_mut(i)) {
            c.running = false;
            if let Driven::Probe { in_flight, .. } = &mut c.driven {
                *in_flight = None;
            }
        }
        self.arm(instance, i, None);
    }

    /// When heartbeat check `i` next needs attention: its TTL deadline, or
    /// earlier when phi will cross its threshold first.
    fn heartbeat_deadline(&self, instance: InstanceId, i: usize, now: Instant) -> Option<Instant> {
        let c = self.slot(instance)?.checks.get(i)?;
        let Driven::Heartbeat { ttl_deadline, phi, phi_fired } = &c.driven else { return None };
        let phi_at = if *phi_fired { None } else { phi.as_ref().and_then(PhiAccrual::suspect_at) };
        let at = match phi_at {
            Some(p) => p.max(now + MIN_REARM).min(*ttl_deadline),
            None => *ttl_deadline,
        };
        Some(at)
    }

    fn fire_check(&mut self, now: Instant, instance: InstanceId, i: usize) {
        let Some(c) =
            self.slots.get_mut(instance.index()).and_then(Option::as_mut).and_then(|st| st.checks.get_mut(i))
        else {
            return;
        };
        if !c.running {
            return;
        }
        let config = c.config.check;
        let kind = c.check.kind;
        match (&mut c.driven, config) {
            (Driven::Probe { next_run, in_flight, errors, .. }, CheckType::Probe(p)) => {
                let timed_out = matches!(*in_flight, Some((_, deadline)) if deadline <= now);
                if timed_out {
                    *in_flight = None;
                    if let Some(w) = errors {
                        w.record(true);
                    }
                }
                let mut request = None;
                if *next_run <= now && in_flight.is_none() {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let deadline = now + p.timeout;
                    *in_flight = Some((seq, deadline));
                    // Fixed rate from the first round; rounds missed while
                    // the driver was late are skipped, not burst.
                    while *next_run <= now {
                        *next_run += p.interval;
                    }
                    request = Some(ProbeRequest {
                        probe: ProbeId { instance, check: slot_of(i), seq },
                        instance,
                        kind,
                        deadline,
                    });
                }
                let at = in_flight.map_or(*next_run, |(_, deadline)| deadline.min(*next_run));
                self.arm(instance, i, Some(at));
                if let Some(request) = request {
                    self.stats.probes_sent += 1;
                    self.outputs.push_back(MonitorOutput::Probe(request));
                }
                if timed_out {
                    self.stats.probes_timed_out += 1;
                    self.observe(now, instance, i, Err((HealthStatus::Unresponsive, Cause::ProbeTimeout)));
                }
            }
            (Driven::Heartbeat { ttl_deadline, phi, phi_fired }, CheckType::Heartbeat(hb)) => {
                let cause = if *ttl_deadline <= now {
                    *ttl_deadline = now + hb.ttl;
                    *phi_fired = true;
                    Some(Cause::TtlExpired)
                } else if !*phi_fired && phi.as_ref().is_some_and(|phi| !phi.is_available(now)) {
                    *phi_fired = true;
                    Some(Cause::PhiSuspected)
                } else {
                    None // early: phi's closed form ran ahead of its evaluation
                };
                let at = self.heartbeat_deadline(instance, i, now);
                self.arm(instance, i, at);
                if let Some(cause) = cause {
                    self.observe(now, instance, i, Err((HealthStatus::Unresponsive, cause)));
                }
            }
            _ => {}
        }
    }

    /// Count one observation on check `i`: `Ok(cause)` a success, `Err`
    /// a failure of the given type. Re-aggregates the instance if the
    /// check's status changed.
    fn observe(
        &mut self,
        now: Instant,
        instance: InstanceId,
        i: usize,
        observation: Result<Cause, (HealthStatus, Cause)>,
    ) {
        let Some(st) = self.slot_mut(instance) else { return };
        let started = st.started;
        let Some(c) = st.checks.get_mut(i) else { return };
        let latest = match observation {
            Ok(cause) => {
                c.hysteresis.success();
                cause
            }
            Err((status, cause)) => {
                c.hysteresis.failure(status);
                cause
            }
        };
        let (status, cause) = evaluate(c, latest);
        let changed = status != c.status;
        c.status = status;
        c.cause = cause;
        let check = c.check;
        let passed_startup = check.kind == ProbeKind::Startup && c.hysteresis.polarity() == Polarity::Good;
        let reason = TransitionReason { check: Some(check), cause };
        if passed_startup {
            self.stop_check(instance, i);
            let all_passed = self.slot(instance).is_some_and(|st| {
                st.checks.iter().filter(|c| c.check.kind == ProbeKind::Startup).all(|c| !c.running)
            });
            if !started && all_passed {
                self.start_instance(now, instance);
            }
        }
        if changed || passed_startup {
            self.refresh(now, instance, reason);
        }
    }

    /// Every startup check passed: run the others from `now`.
    fn start_instance(&mut self, now: Instant, instance: InstanceId) {
        let Some(st) = self.slot_mut(instance) else { return };
        st.started = true;
        let count = st.checks.len();
        let service = st.service;
        for i in 0..count {
            let is_startup = self.slot(instance).and_then(|st| st.checks.get(i)).map(|c| c.check.kind);
            if is_startup != Some(ProbeKind::Startup) {
                self.start_check(now, instance, i);
            }
        }
        tracing::info!(instance = instance.0, service = service.0, at = %now, "instance started");
    }

    fn fire_flap(&mut self, now: Instant, instance: InstanceId) {
        let Some(st) = self.slots.get_mut(instance.index()).and_then(Option::as_mut) else { return };
        let Some(flap) = &mut st.flap else { return };
        if flap.settle(now) {
            let service = st.service;
            if let Some(s) = self.services.get_mut(&service) {
                s.flapping -= 1;
            }
            tracing::info!(instance = instance.0, service = service.0, at = %now, "instance stopped flapping");
            self.outputs.push_back(MonitorOutput::Event(HealthEvent::FlappingChanged {
                instance,
                service,
                flapping: false,
                at: now,
            }));
            self.refresh(now, instance, TransitionReason { check: None, cause: Cause::FlapSettled });
        } else if let Some(at) = flap.quiet_deadline() {
            // Not quiet yet (the timer was early): wait for the new deadline.
            st.flap_timer = Some(at);
            self.timers.insert((at, instance, FLAP_SLOT));
        }
    }

    /// Re-aggregate `instance` after a check changed (or flapping ended),
    /// and emit every verdict that changed, attributed to `reason`.
    fn refresh(&mut self, now: Instant, instance: InstanceId, reason: TransitionReason) {
        let Some(st) = self.slots.get_mut(instance.index()).and_then(Option::as_mut) else { return };
        let service = st.service;
        let (raw, ready_raw, recovery) = aggregate(st);

        // Flap damping of the raw status.
        let mut flap_started = false;
        if raw != st.raw {
            st.raw = raw;
            if let Some(flap) = &mut st.flap {
                flap_started = flap.change(now, raw).started_flapping;
                let deadline = flap.quiet_deadline();
                if let Some(old) = st.flap_timer.take() {
                    self.timers.remove(&(old, instance, FLAP_SLOT));
                }
                if let Some(at) = deadline {
                    st.flap_timer = Some(at);
                    self.timers.insert((at, instance, FLAP_SLOT));
                }
            }
        }
        let held = st.flap.as_ref().and_then(FlapDamper::held);
        let flapping = held.is_some();
        let reported = held.unwrap_or(raw);
        let ready = ready_raw && !flapping;
        let summary = self.services.entry(service).or_default();

        if flap_started {
            summary.flapping += 1;
            tracing::warn!(instance = instance.0, service = service.0, at = %now, "instance is flapping");
            self.outputs.push_back(MonitorOutput::Event(HealthEvent::FlappingChanged {
                instance,
                service,
                flapping: true,
                at: now,
            }));
        }
        if reported != st.reported {
            let from = st.reported;
            st.reported = reported;
            summary.by_status[from.index()] -= 1;
            summary.by_status[reported.index()] += 1;
            st.history.push(Transition { at: now, from, to: reported, reason });
            tracing::info!(
                instance = instance.0,
                service = service.0,
                from = %from,
                to = %reported,
                reason = %reason,
                at = %now,
                "health status changed"
            );
            self.outputs.push_back(MonitorOutput::Event(HealthEvent::StatusChanged {
                instance,
                service,
                from,
                to: reported,
                reason,
                at: now,
            }));
        }
        if ready != st.ready {
            st.ready = ready;
            if ready {
                summary.ready += 1;
            } else {
                summary.ready -= 1;
            }
            tracing::info!(instance = instance.0, service = service.0, ready, at = %now, "readiness changed");
            self.outputs.push_back(MonitorOutput::Event(HealthEvent::ReadinessChanged {
                instance,
                service,
                ready,
                at: now,
            }));
        }
        match recovery {
            Some((status, why)) if !st.recovery_open => {
                st.recovery_open = true;
                tracing::warn!(
                    instance = instance.0,
                    service = service.0,
                    %status,
                    reason = %why,
                    at = %now,
                    "instance needs recovery"
                );
                self.outputs.push_back(MonitorOutput::Event(HealthEvent::NeedsRecovery {
                    instance,
                    service,
                    status,
                    reason: why,
                    at: now,
                }));
            }
            None if st.recovery_open && !flapping => st.recovery_open = false,
            _ => {}
        }
    }
}

impl Machine for HealthMonitor {
    type Input = MonitorInput;
    type Output = MonitorOutput;

    fn handle(&mut self, now: Instant, input: MonitorInput) {
        match input {
            MonitorInput::ProbeResult(result) => self.handle_probe_result(now, result),
            MonitorInput::Heartbeat { instance } => self.heartbeat(now, instance),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        HealthMonitor::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        HealthMonitor::poll_timeout(self)
    }

    fn poll_output(&mut self) -> Option<MonitorOutput> {
        HealthMonitor::poll_output(self)
    }
}

fn slot_of(i: usize) -> u16 {
    // Bounded by MAX_CHECKS_PER_INSTANCE, far below FLAP_SLOT.
    u16::try_from(i).unwrap_or(FLAP_SLOT - 1)
}

/// A check's status from its hysteresis and windows; `latest` is the cause
/// of the observation just counted.
fn evaluate(c: &CheckState, latest: Cause) -> (HealthStatus, Cause) {
    match c.hysteresis.polarity() {
        Polarity::Unknown => (HealthStatus::Unknown, latest),
        Polarity::Bad(status) => (status, latest),
        Polarity::Good => {
            let (CheckType::Probe(p), Driven::Probe { latency, errors, .. }) = (&c.config.check, &c.driven)
            else {
                return (HealthStatus::Healthy, latest);
            };
            if let (Some(rule), Some(w)) = (&p.error_rate, errors) {
                if w.len() >= usize::from(rule.min_samples) {
                    let failed_permille = w.failed_permille();
                    let cause = Cause::ErrorRate { failed_permille };
                    if rule.failed_permille.is_some_and(|limit| failed_permille > limit) {
                        return (HealthStatus::Failed, cause);
                    }
                    if failed_permille > rule.degraded_permille {
                        return (HealthStatus::Degraded, cause);
                    }
                }
            }
            if let (Some(rule), Some(w)) = (&p.latency, latency) {
                if w.len() >= usize::from(rule.min_samples) {
                    if let Some(p99) = w.p99().filter(|&p99| p99 > rule.p99_max) {
                        let p99_us = u32::try_from(p99.as_micros()).unwrap_or(u32::MAX);
                        return (HealthStatus::Degraded, Cause::SlowP99 { p99_us });
                    }
                }
            }
            // A failure that did not (yet) turn the check bad leaves it
            // healthy: report why it is healthy, not the blip.
            let cause = match latest {
                Cause::HeartbeatReceived | Cause::ProbePassed => latest,
                _ if matches!(c.driven, Driven::Heartbeat { .. }) => Cause::HeartbeatReceived,
                _ => Cause::ProbePassed,
            };
            (HealthStatus::Healthy, cause)
        }
    }
}

/// The instance's undamped status, readiness, and recovery need (the
/// failure type and the failing check) from its checks.
fn aggregate(st: &InstanceState) -> (HealthStatus, bool, Option<(HealthStatus, TransitionReason)>) {
    if !st.started {
        let failed = st
            .checks
            .iter()
            .find(|c| c.check.kind == ProbeKind::Startup && c.status.is_failure())
            .map(|c| (HealthStatus::Failed, TransitionReason { check: Some(c.check), cause: c.cause }));
        let raw = if failed.is_some() { HealthStatus::Failed } else { HealthStatus::Unknown };
        return (raw, false, failed);
    }
    let mut raw = HealthStatus::Healthy;
    let mut ready = true;
    let mut recovery = None;
    for c in st.checks.iter().filter(|c| c.check.kind != ProbeKind::Startup) {
        raw = raw.max(c.status);
        match c.check.kind {
            ProbeKind::Readiness => ready &= c.status.is_serving(),
            ProbeKind::Liveness if c.status.is_failure() => {
                ready = false;
                if recovery.is_none() {
                    recovery = Some((c.status, TransitionReason { check: Some(c.check), cause: c.cause }));
                }
            }
            _ => {}
        }
    }
    (raw, ready, recovery)
}
