//! The health monitor: many instances, each with several checks, turned
//! into statuses, verdicts and a history.
//!
//! The semantics, costs and bounds are documented on [`HealthMonitor`],
//! where users of the re-exported type read them.

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
///
/// # Semantics
///
/// - **Startup gates.** An instance with startup checks runs only those
///   until every one of them has gone good once; meanwhile its status is
///   `Unknown` and it is not ready. Liveness and readiness checks are not
///   scheduled and heartbeats do not reach them. A startup check that goes
///   bad means the instance failed to start: status `Failed`, and
///   [`HealthEvent::NeedsRecovery`] naming the startup check. Startup checks
///   keep running after such a failure; should one pass later, the instance
///   starts. Once passed, a startup check stops for good.
/// - **Instance status** is the worst status of its liveness and readiness
///   checks (severity order of [`HealthStatus`]; an instance with only
///   startup checks is `Healthy` once started).
/// - **Ready** means started, every readiness check serving (`Healthy` or
///   `Degraded`; a readiness check with no verdict yet is not ready, as in
///   Kubernetes), no liveness check failing, and not flapping. An instance
///   without readiness checks is ready as soon as it has started.
/// - **Needs recovery** is raised once when a liveness check goes
///   `Unresponsive` or `Failed` (or startup fails), and re-armed when none
///   fails any more and the instance is not flapping. Readiness failures
///   never ask for recovery.
/// - **Flapping** damps the reported status ([`FlapDamper`]'s rule) and
///   keeps the instance out of rotation until it settles.
/// - A probe result is matched to its round by [`ProbeId`]; one that
///   reaches the monitor at or after the round's deadline is ignored, even
///   if `handle_timeout` has not run yet, so the verdict does not depend on
///   the order in which a driver delivers a result and a timer that fall on
///   the same instant.
///
/// # Cost
///
/// Every check has at most one pending timer: its next round, its
/// in-flight probe's deadline, or its TTL expiry; every flapping instance
/// one more (its quiet deadline). Timers live in one ordered set keyed
/// `(deadline, instance, slot)`, and each check remembers its own key, so
/// re-arming is an exact O(log n) removal and insertion, and
/// `handle_timeout` costs O(due · log n): idle instances cost nothing. A
/// probe result and a heartbeat cost O(log n) plus the check's window
/// update (O(window) for the latency window's sorted insert) plus
/// O(checks of the instance) to re-aggregate when a check's status changes.
/// Service summaries are maintained incrementally: queries are O(log s).
///
/// # Bounds
///
/// Instances: a dense table of boxed slots (one pointer per empty id) up to
/// 2²⁴ (the failure detector's bound). Checks per instance:
/// [`MAX_CHECKS_PER_INSTANCE`](super::MAX_CHECKS_PER_INSTANCE). Windows:
/// [`MAX_WINDOW_SAMPLES`](super::MAX_WINDOW_SAMPLES). History:
/// [`HISTORY_LEN`](super::HISTORY_LEN) per instance. Timers: one per check
/// plus one per instance. Pending outputs: those of one call, drained by
/// the driver before the next (the machine contract).
#[derive(Clone, Debug, Default)]
pub struct HealthMonitor {
    /// Dense by instance id; boxed so an empty slot costs one pointer.
    slots: Vec<Option<Box<InstanceState>>>,
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
        self.slots[index] = Some(Box::new(InstanceState {
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
        }));
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
        self.slots.get(instance.index()).and_then(Option::as_deref)
    }

    fn slot_mut(&mut self, instance: InstanceId) -> Option<&mut InstanceState> {
        self.slots.get_mut(instance.index()).and_then(Option::as_deref_mut)
    }

    /// Move check `i`'s timer to `at` (or disarm it).
    fn arm(&mut self, instance: InstanceId, i: usize, at: Option<Instant>) {
        let Some(c) = self
            .slots
            .get_mut(instance.index())
            .and_then(Option::as_deref_mut)
            .and_then(|st| st.checks.get_mut(i))
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
        let Some(c) = self
            .slots
            .get_mut(instance.index())
            .and_then(Option::as_deref_mut)
            .and_then(|st| st.checks.get_mut(i))
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
                    // Fixed rate from the first round. Rounds missed while the
                    // driver was late are skipped, not burst, and so is a round
                    // that would start before this one's deadline: rounds never
                    // overlap, even when this one started late.
                    *next_run = first_at_or_after(*next_run, p.interval, deadline);
                    request = Some(ProbeRequest {
                        probe: ProbeId { instance, check: slot_of(i), seq },
                        instance,
                        kind,
                        deadline,
                    });
                }
                let at = in_flight.map_or(*next_run, |(_, deadline)| deadline.min(*next_run));
                debug_assert!(at > now, "a probe timer re-armed at or before now would spin");
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
                debug_assert!(at.is_none_or(|at| at > now), "a heartbeat timer re-armed at or before now");
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
        let Some(st) = self.slots.get_mut(instance.index()).and_then(Option::as_deref_mut) else { return };
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
        let Some(st) = self.slots.get_mut(instance.index()).and_then(Option::as_deref_mut) else { return };
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

/// The first instant of the grid `start + k·interval` (k ≥ 0) at or after
/// `bound`: O(1) however far behind the grid is.
fn first_at_or_after(start: Instant, interval: Duration, bound: Instant) -> Instant {
    if start >= bound {
        return start;
    }
    let step_ns = interval.as_nanos().max(1);
    let steps = (bound - start).as_nanos().div_ceil(step_ns);
    start + Duration::from_nanos(u64::try_from(steps * step_ns).unwrap_or(u64::MAX))
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
                    // A band, not a line: once failed by rate, the check stays
                    // failed until the rate is back to the degraded limit, so a
                    // rate hovering at the failure limit does not bounce.
                    let failed_by_rate =
                        c.status == HealthStatus::Failed && matches!(c.cause, Cause::ErrorRate { .. });
                    let limit =
                        if failed_by_rate { Some(rule.degraded_permille) } else { rule.failed_permille };
                    if limit.is_some_and(|limit| failed_permille > limit) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::check::{ErrorRateRule, HeartbeatCheck, LatencyRule, ProbeCheck};
    use crate::health::flap::FlapConfig;
    use crate::health::history::HISTORY_LEN;
    use crate::health::phi::PhiConfig;
    use crate::health::probe::FailureReason;

    const SVC: ServiceId = ServiceId(7);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn ok(latency_ms: u64) -> Option<(Duration, ProbeOutcome)> {
        Some((ms(1), ProbeOutcome::Success { latency: ms(latency_ms) }))
    }

    fn fail(reason: FailureReason) -> Option<(Duration, ProbeOutcome)> {
        Some((ms(1), ProbeOutcome::Failure { reason }))
    }

    /// A driver: fires timers, answers probe requests through `respond`
    /// (after the returned delay, or never), records everything.
    struct Harness {
        m: HealthMonitor,
        now: Instant,
        pending: BTreeMap<(Instant, u64), ProbeResult>,
        requests: Vec<ProbeRequest>,
        events: Vec<HealthEvent>,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                m: HealthMonitor::new(),
                now: Instant::ZERO,
                pending: BTreeMap::new(),
                requests: Vec::new(),
                events: Vec::new(),
            }
        }

        fn register(&mut self, id: u32, config: &InstanceHealthConfig) {
            self.m.register(self.now, InstanceId(id), SVC, config).expect("valid registration");
            self.drain(&mut |_, _| None);
        }

        fn drain(
            &mut self,
            respond: &mut impl FnMut(Instant, &ProbeRequest) -> Option<(Duration, ProbeOutcome)>,
        ) {
            while let Some(out) = self.m.poll_output() {
                match out {
                    MonitorOutput::Probe(req) => {
                        self.requests.push(req);
                        if let Some((delay, outcome)) = respond(self.now, &req) {
                            self.pending.insert(
                                (self.now + delay, req.probe.seq),
                                ProbeResult { probe: req.probe, outcome },
                            );
                        }
                    }
                    MonitorOutput::Event(e) => self.events.push(e),
                }
            }
        }

        fn heartbeat(&mut self, at: Instant, id: u32) {
            self.run_until(at, &mut |_, _| None);
            self.m.heartbeat(at, InstanceId(id));
            self.drain(&mut |_, _| None);
        }

        /// Results due at an instant are delivered before timers of the same
        /// instant (the harder order for "late results never count").
        fn run_until(
            &mut self,
            until: Instant,
            respond: &mut impl FnMut(Instant, &ProbeRequest) -> Option<(Duration, ProbeOutcome)>,
        ) {
            for _ in 0..1_000_000 {
                let timer = self.m.poll_timeout().filter(|&t| t <= until);
                let result = self.pending.first_key_value().map(|(&(t, _), _)| t).filter(|&t| t <= until);
                match (timer, result) {
                    (None, None) => break,
                    (Some(t), Some(r)) if t < r => self.fire(t, respond),
                    (Some(t), None) => self.fire(t, respond),
                    (_, Some(_)) => {
                        let ((at, _), result) = self.pending.pop_first().expect("checked");
                        self.now = at;
                        self.m.handle_probe_result(at, result);
                        self.drain(respond);
                    }
                }
            }
            self.now = until;
        }

        fn fire(
            &mut self,
            at: Instant,
            respond: &mut impl FnMut(Instant, &ProbeRequest) -> Option<(Duration, ProbeOutcome)>,
        ) {
            self.now = at;
            self.m.handle_timeout(at);
            self.drain(respond);
        }

        fn take_events(&mut self) -> Vec<HealthEvent> {
            std::mem::take(&mut self.events)
        }

        fn status(&self, id: u32) -> HealthStatus {
            self.m.status(InstanceId(id)).expect("registered")
        }

        fn view(&self, id: u32) -> InstanceView {
            self.m.instance(InstanceId(id)).expect("registered")
        }
    }

    fn status_changes(events: &[HealthEvent]) -> Vec<(HealthStatus, HealthStatus, Cause)> {
        events
            .iter()
            .filter_map(|e| match *e {
                HealthEvent::StatusChanged { from, to, reason, .. } => Some((from, to, reason.cause)),
                _ => None,
            })
            .collect()
    }

    fn recoveries(events: &[HealthEvent]) -> Vec<(HealthStatus, TransitionReason)> {
        events
            .iter()
            .filter_map(|e| match *e {
                HealthEvent::NeedsRecovery { status, reason, .. } => Some((status, reason)),
                _ => None,
            })
            .collect()
    }

    fn readiness(events: &[HealthEvent]) -> Vec<bool> {
        events
            .iter()
            .filter_map(|e| match *e {
                HealthEvent::ReadinessChanged { ready, .. } => Some(ready),
                _ => None,
            })
            .collect()
    }

    fn one(check: CheckConfig) -> InstanceHealthConfig {
        InstanceHealthConfig { checks: vec![check], flap: None }
    }

    fn liveness() -> CheckConfig {
        CheckConfig::probe(ProbeKind::Liveness)
    }

    #[test]
    fn healthy_probe_goes_healthy_and_ready() {
        let mut h = Harness::new();
        h.register(0, &one(liveness()));
        assert_eq!(readiness(&h.take_events()), vec![true], "no readiness check: ready once started");
        assert_eq!(h.m.poll_timeout(), Some(Instant::ZERO), "first round due at once");
        h.run_until(Instant::from_secs(5), &mut |_, _| ok(5));
        assert_eq!(h.status(0), HealthStatus::Healthy);
        assert_eq!(
            status_changes(&h.take_events()),
            vec![(HealthStatus::Unknown, HealthStatus::Healthy, Cause::ProbePassed)]
        );
        assert_eq!(h.requests.len(), 6, "rounds at 0,1,..,5 s");
        assert_eq!(h.requests[1].deadline, Instant::from_secs(2), "deadline = start + 1 s timeout");
    }

    #[test]
    fn a_late_driver_skips_rounds_and_rounds_never_overlap() {
        let mut m = HealthMonitor::new();
        m.register(Instant::ZERO, InstanceId(0), SVC, &one(liveness())).expect("valid");
        while m.poll_output().is_some() {}
        let mut requests = Vec::new();
        // Timers fired 700 ms late, then an hour late: no burst, no overlap.
        for now in [Instant::from_millis(700), Instant::from_millis(1200), Instant::from_secs(3600)] {
            m.handle_timeout(now);
            while let Some(out) = m.poll_output() {
                if let MonitorOutput::Probe(req) = out {
                    requests.push((now, req.deadline));
                }
            }
            assert!(m.poll_timeout().is_some_and(|t| t > now));
        }
        assert_eq!(
            requests,
            vec![
                (Instant::from_millis(700), Instant::from_millis(1700)),
                (Instant::from_secs(3600), Instant::from_secs(3601)),
            ],
            "the round due at 1 s would overlap the late one: skipped"
        );
        assert_eq!(m.poll_timeout(), Some(Instant::from_secs(3601)));
    }

    #[test]
    fn startup_gates_liveness_and_readiness() {
        let mut h = Harness::new();
        let config = InstanceHealthConfig {
            checks: vec![
                CheckConfig::probe(ProbeKind::Startup).with_thresholds(5, 1),
                CheckConfig::probe(ProbeKind::Liveness),
                CheckConfig::probe(ProbeKind::Readiness),
                CheckConfig::heartbeat(ProbeKind::Liveness, Duration::from_secs(3)),
            ],
            flap: None,
        };
        h.register(0, &config);
        assert!(h.take_events().is_empty(), "not ready while starting");
        // Startup refused twice, then passes at the third round (t = 2 s).
        let mut respond = |now: Instant, req: &ProbeRequest| match req.kind {
            ProbeKind::Startup if now < Instant::from_secs(2) => fail(FailureReason::Refused),
            _ => ok(5),
        };
        h.run_until(Instant::from_millis(1500), &mut respond);
        assert!(h.requests.iter().all(|r| r.kind == ProbeKind::Startup), "others wait for startup");
        h.heartbeat(Instant::from_millis(1600), 0);
        assert_eq!(h.m.stats().heartbeats_ignored, 1, "heartbeats are ignored while starting");
        assert_eq!(h.status(0), HealthStatus::Unknown);
        assert!(!h.view(0).started);

        h.run_until(Instant::from_millis(2500), &mut respond);
        assert!(h.view(0).started);
        let kinds: Vec<ProbeKind> = h.requests.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ProbeKind::Startup,
                ProbeKind::Startup,
                ProbeKind::Startup,
                ProbeKind::Liveness,
                ProbeKind::Readiness
            ]
        );
        h.heartbeat(Instant::from_millis(2600), 0);
        assert_eq!(h.status(0), HealthStatus::Healthy);
        assert_eq!(readiness(&h.take_events()), vec![true]);
        h.run_until(Instant::from_secs(10), &mut |_, r: &ProbeRequest| {
            assert_ne!(r.kind, ProbeKind::Startup, "a passed startup check stops");
            ok(5)
        });
    }

    #[test]
    fn startup_failure_needs_recovery() {
        let mut h = Harness::new();
        let config = InstanceHealthConfig {
            checks: vec![CheckConfig::probe(ProbeKind::Startup), liveness()],
            flap: None,
        };
        h.register(0, &config);
        h.run_until(Instant::from_secs(10), &mut |_, _| None);
        let events = h.take_events();
        assert_eq!(
            status_changes(&events),
            vec![(HealthStatus::Unknown, HealthStatus::Failed, Cause::ProbeTimeout)],
            "a failed start is Failed, whatever the probe saw"
        );
        let rec = recoveries(&events);
        assert_eq!(rec.len(), 1, "raised once: {rec:?}");
        assert_eq!(rec[0].0, HealthStatus::Failed);
        assert_eq!(rec[0].1.check.map(|c| c.kind), Some(ProbeKind::Startup));
        assert!(!h.view(0).ready);
        assert!(h.requests.iter().all(|r| r.kind == ProbeKind::Startup));
    }

    #[test]
    fn readiness_failure_only_removes_from_rotation() {
        let mut h = Harness::new();
        let config = InstanceHealthConfig {
            checks: vec![liveness(), CheckConfig::probe(ProbeKind::Readiness)],
            flap: None,
        };
        h.register(0, &config);
        let mut respond = |now: Instant, req: &ProbeRequest| match req.kind {
            ProbeKind::Readiness if now >= Instant::from_secs(3) => fail(FailureReason::Error(503)),
            _ => ok(5),
        };
        h.run_until(Instant::from_secs(2), &mut respond);
        assert_eq!(readiness(&h.take_events()), vec![true]);
        h.run_until(Instant::from_secs(10), &mut respond);
        let events = h.take_events();
        assert_eq!(readiness(&events), vec![false]);
        assert!(recoveries(&events).is_empty(), "readiness never asks for recovery");
        assert_eq!(
            status_changes(&events),
            vec![(HealthStatus::Healthy, HealthStatus::Failed, Cause::ErrorCode { code: 503 })]
        );
        assert!(!h.view(0).needs_recovery);
    }

    #[test]
    fn liveness_refused_is_failed_and_asks_for_recovery_once() {
        let mut h = Harness::new();
        h.register(0, &one(liveness()));
        let mut respond = |now: Instant, _: &ProbeRequest| {
            if now < Instant::from_secs(3) { ok(5) } else { fail(FailureReason::Refused) }
        };
        h.run_until(Instant::from_secs(20), &mut respond);
        let events = h.take_events();
        assert_eq!(
            status_changes(&events),
            vec![
                (HealthStatus::Unknown, HealthStatus::Healthy, Cause::ProbePassed),
                (HealthStatus::Healthy, HealthStatus::Failed, Cause::Refused)
            ]
        );
        let rec = recoveries(&events);
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].0, HealthStatus::Failed);
        assert_eq!(
            rec[0].1,
            TransitionReason {
                check: Some(CheckRef { index: 0, kind: ProbeKind::Liveness }),
                cause: Cause::Refused
            }
        );
        assert_eq!(readiness(&events), vec![true, false]);
        // Failed at the third refused round: 3, 4, 5 s.
        let failed_at = events.iter().find_map(|e| match *e {
            HealthEvent::StatusChanged { to: HealthStatus::Failed, at, .. } => Some(at),
            _ => None,
        });
        assert_eq!(failed_at, Some(Instant::from_secs(5) + ms(1)));
    }

    #[test]
    fn timeouts_count_as_unresponsive_and_unreachable_too() {
        let mut h = Harness::new();
        h.register(0, &one(liveness()));
        h.register(1, &one(liveness()));
        h.run_until(Instant::from_secs(10), &mut |_, r: &ProbeRequest| {
            if r.instance == InstanceId(0) { None } else { fail(FailureReason::Unreachable) }
        });
        assert_eq!(h.status(0), HealthStatus::Unresponsive);
        assert_eq!(h.status(1), HealthStatus::Unresponsive);
        let rec = recoveries(&h.take_events());
        assert_eq!(rec.len(), 2);
        assert_eq!(rec[0].1.cause, Cause::Unreachable, "driver-reported: known at once");
        assert_eq!(rec[1].1.cause, Cause::ProbeTimeout, "known at the deadline");
        assert!(h.m.stats().probes_timed_out >= 3);
    }

    #[test]
    fn a_result_at_or_after_the_deadline_is_ignored() {
        let mut h = Harness::new();
        h.register(0, &one(liveness().with_thresholds(1, 1)));
        // Answers exactly at the deadline (timeout 1 s), delivered before the
        // timer of the same instant: still too late.
        h.run_until(Instant::from_secs(5), &mut |_, _| {
            Some((ms(1000), ProbeOutcome::Success { latency: ms(1000) }))
        });
        assert_eq!(h.status(0), HealthStatus::Unresponsive);
        assert!(h.m.stats().results_ignored >= 4);
        assert_eq!(h.m.stats().results_accepted, 0);
        // A result for a round that is not in flight is ignored too.
        let stale = ProbeResult {
            probe: ProbeId { instance: InstanceId(0), check: 0, seq: 0 },
            outcome: ProbeOutcome::Success { latency: ms(1) },
        };
        h.m.handle_probe_result(h.now, stale);
        assert_eq!(h.m.poll_output(), None);
        let unknown = ProbeResult { probe: ProbeId { instance: InstanceId(9), check: 3, seq: 0 }, ..stale };
        h.m.handle_probe_result(h.now, unknown);
        assert_eq!(h.status(0), HealthStatus::Unresponsive);
    }

    #[test]
    fn slow_p99_degrades_but_keeps_in_rotation() {
        let mut h = Harness::new();
        let probe = ProbeCheck {
            latency: Some(LatencyRule { window_samples: 20, min_samples: 5, p99_max: ms(100) }),
            ..ProbeCheck::default()
        };
        h.register(0, &one(CheckConfig::probe_with(ProbeKind::Liveness, probe)));
        h.run_until(Instant::from_secs(9), &mut |_, _| ok(10));
        assert_eq!(h.status(0), HealthStatus::Healthy);
        h.run_until(Instant::from_secs(20), &mut |_, _| ok(250));
        assert_eq!(h.status(0), HealthStatus::Degraded);
        assert!(h.view(0).ready, "degraded still serves");
        let events = h.take_events();
        assert!(recoveries(&events).is_empty());
        assert!(status_changes(&events).contains(&(
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            Cause::SlowP99 { p99_us: 250_000 }
        )));
        // Fast again: once the slow samples have left the 20-sample window.
        h.run_until(Instant::from_secs(45), &mut |_, _| ok(10));
        assert_eq!(h.status(0), HealthStatus::Healthy);
    }

    #[test]
    fn error_rate_degrades_then_fails() {
        let mut h = Harness::new();
        let rule = ErrorRateRule {
            window_samples: 12,
            min_samples: 6,
            degraded_permille: 100,
            failed_permille: Some(500),
        };
        let probe = ProbeCheck { error_rate: Some(rule), ..ProbeCheck::default() };
        h.register(0, &one(CheckConfig::probe_with(ProbeKind::Liveness, probe)));
        // One failure in three, never three in a row: degraded.
        let mut round = 0u32;
        h.run_until(Instant::from_secs(15), &mut |_, _| {
            round += 1;
            if round % 3 == 0 { fail(FailureReason::Error(500)) } else { ok(5) }
        });
        assert_eq!(h.status(0), HealthStatus::Degraded);
        assert!(recoveries(&h.take_events()).is_empty());
        // Two failures in three: failed by rate, although never three in a row.
        h.run_until(Instant::from_secs(40), &mut |_, _| {
            round += 1;
            if round % 3 == 0 { ok(5) } else { fail(FailureReason::Error(500)) }
        });
        assert_eq!(h.status(0), HealthStatus::Failed);
        let rec = recoveries(&h.take_events());
        assert_eq!(rec.len(), 1);
        assert!(matches!(rec[0].1.cause, Cause::ErrorRate { failed_permille } if failed_permille > 500));
    }

    #[test]
    fn hysteresis_needs_consecutive_runs() {
        let mut h = Harness::new();
        h.register(0, &one(liveness().with_thresholds(3, 2)));
        // s s f f s f f s s: never three failures in a row.
        let script = [true, true, false, false, true, false, false, true, true];
        let mut i = 0;
        h.run_until(Instant::from_secs(8), &mut |_, _| {
            let good = script.get(i).copied().unwrap_or(true);
            i += 1;
            if good { ok(5) } else { fail(FailureReason::Refused) }
        });
        assert_eq!(
            status_changes(&h.take_events()),
            vec![(HealthStatus::Unknown, HealthStatus::Healthy, Cause::ProbePassed)],
            "two successes to become healthy, and the short failure runs change nothing"
        );
    }

    #[test]
    fn ttl_heartbeat_check() {
        let mut h = Harness::new();
        h.register(
            0,
            &one(CheckConfig::heartbeat(ProbeKind::Liveness, Duration::from_secs(1)).with_thresholds(2, 1)),
        );
        for s in 0..5 {
            h.heartbeat(Instant::from_millis(s * 900 + 100), 0);
        }
        assert_eq!(h.status(0), HealthStatus::Healthy);
        // Last beat at 3.7 s: one failure at 4.7 s, the second at 5.7 s.
        h.run_until(Instant::from_millis(5699), &mut |_, _| None);
        assert_eq!(h.status(0), HealthStatus::Healthy);
        h.run_until(Instant::from_millis(5700), &mut |_, _| None);
        assert_eq!(h.status(0), HealthStatus::Unresponsive);
        let rec = recoveries(&h.take_events());
        assert_eq!(rec[0].1.cause, Cause::TtlExpired);
        h.heartbeat(Instant::from_secs(8), 0);
        assert_eq!(h.status(0), HealthStatus::Healthy);
        assert!(!h.view(0).needs_recovery, "the episode ends when liveness passes again");
    }

    #[test]
    fn phi_suspects_a_regular_heartbeat_before_its_ttl() {
        let mut h = Harness::new();
        let check = CheckConfig {
            kind: ProbeKind::Liveness,
            check: CheckType::Heartbeat(HeartbeatCheck {
                ttl: Duration::from_secs(10),
                phi: Some(PhiConfig::default()),
            }),
            failure_threshold: 1,
            success_threshold: 1,
        };
        h.register(0, &one(check));
        for s in 0..30 {
            h.heartbeat(Instant::from_secs(s), 0);
        }
        let last = Instant::from_secs(29);
        h.run_until(last + ms(1200), &mut |_, _| None);
        assert_eq!(h.status(0), HealthStatus::Healthy, "a little late is fine");
        let phi = h.m.phi(InstanceId(0), 0).expect("phi configured");
        assert!(phi.phi(last + ms(1200)) < 8.0);
        h.run_until(last + Duration::from_secs(2), &mut |_, _| None);
        assert_eq!(h.status(0), HealthStatus::Unresponsive);
        let at = h.take_events().iter().find_map(|e| match *e {
            HealthEvent::StatusChanged { to: HealthStatus::Unresponsive, reason, at, .. } => {
                Some((reason.cause, at))
            }
            _ => None,
        });
        let (cause, at) = at.expect("went unresponsive");
        assert_eq!(cause, Cause::PhiSuspected);
        assert!(at - last < Duration::from_secs(2), "well before the 10 s ttl: {:?}", at - last);
        assert!(h.m.phi(InstanceId(0), 0).expect("phi").phi(at) >= 8.0);
    }

    #[test]
    fn flapping_is_damped_at_the_worse_state_until_quiet() {
        let mut h = Harness::new();
        let flap =
            FlapConfig { max_changes: 3, window: Duration::from_secs(60), quiet: Duration::from_secs(10) };
        h.register(
            0,
            &InstanceHealthConfig { checks: vec![liveness().with_thresholds(1, 1)], flap: Some(flap) },
        );
        // Alternate every round for 10 s, then stay healthy.
        h.run_until(Instant::from_secs(10), &mut |now, _| {
            if now.as_millis() / 1000 % 2 == 0 { ok(5) } else { fail(FailureReason::Refused) }
        });
        let events = h.take_events();
        assert!(events.contains(&HealthEvent::FlappingChanged {
            instance: InstanceId(0),
            service: SVC,
            flapping: true,
            at: Instant::from_millis(3001)
        }));
        assert!(h.view(0).flapping);
        assert_eq!(h.status(0), HealthStatus::Failed, "held at the worse state");
        // Changes at 0 s (unknown→healthy), 1 s, 2 s and 3 s: the fourth
        // reveals the flapping. Two genuine failures before it, none after.
        let recovery_times: Vec<Instant> = events
            .iter()
            .filter_map(|e| match *e {
                HealthEvent::NeedsRecovery { at, .. } => Some(at),
                _ => None,
            })
            .collect();
        assert_eq!(recovery_times, vec![Instant::from_millis(1001), Instant::from_millis(3001)]);
        let reported: Vec<_> = status_changes(&events).into_iter().map(|(_, to, _)| to).collect();
        assert_eq!(
            reported,
            vec![HealthStatus::Healthy, HealthStatus::Failed, HealthStatus::Healthy, HealthStatus::Failed],
            "from 3 s on, no bouncing is reported"
        );
        assert!(!h.view(0).ready, "out of rotation while flapping");

        h.run_until(Instant::from_secs(30), &mut |_, _| ok(5));
        let events = h.take_events();
        assert!(!h.view(0).flapping);
        assert_eq!(h.status(0), HealthStatus::Healthy);
        assert_eq!(
            status_changes(&events),
            vec![(HealthStatus::Failed, HealthStatus::Healthy, Cause::FlapSettled)]
        );
        // Last change at 10 s (healthy again), quiet 10 s: settles at 20 s.
        assert!(events.contains(&HealthEvent::FlappingChanged {
            instance: InstanceId(0),
            service: SVC,
            flapping: false,
            at: Instant::from_millis(20_001)
        }));
        assert_eq!(readiness(&events), vec![true]);
    }

    #[test]
    fn service_summary_counts_by_status() {
        let mut h = Harness::new();
        for id in 0..4 {
            h.register(id, &one(liveness()));
        }
        h.run_until(Instant::from_secs(10), &mut |_, r: &ProbeRequest| {
            if r.instance == InstanceId(3) { fail(FailureReason::Refused) } else { ok(5) }
        });
        let s = *h.m.service(SVC).expect("has instances");
        assert_eq!(s.instances, 4);
        assert_eq!(s.count(HealthStatus::Healthy), 3);
        assert_eq!(s.count(HealthStatus::Failed), 1);
        assert_eq!(s.ready, 3);
        assert_eq!(s.healthy_permille(), 750);
        assert_eq!(s.ready_permille(), 750);
        assert!(h.m.deregister(InstanceId(3)));
        assert!(!h.m.deregister(InstanceId(3)));
        let s = *h.m.service(SVC).expect("has instances");
        assert_eq!((s.instances, s.count(HealthStatus::Failed), s.healthy_permille()), (3, 0, 1000));
        for id in 0..3 {
            h.m.deregister(InstanceId(id));
        }
        assert!(h.m.service(SVC).is_none());
        assert!(h.m.is_empty());
        assert_eq!(h.m.poll_timeout(), None, "deregistering disarms every timer");
    }

    #[test]
    fn history_is_bounded_and_queryable() {
        let mut h = Harness::new();
        h.register(0, &one(liveness().with_thresholds(1, 1)));
        h.run_until(Instant::from_secs(200), &mut |now, _| {
            if now.as_millis() / 1000 % 2 == 0 { ok(5) } else { fail(FailureReason::Refused) }
        });
        let history = h.m.history(InstanceId(0)).expect("registered");
        assert_eq!(history.len(), HISTORY_LEN);
        assert!(history.total() > 190);
        let last = history.last().expect("non-empty");
        assert_eq!(last.to, h.status(0));
        assert!(history.iter().zip(history.iter().skip(1)).all(|(a, b)| a.at <= b.at && a.to == b.from));
    }

    #[test]
    fn bad_registrations_are_rejected_and_change_nothing() {
        let mut m = HealthMonitor::new();
        let good = one(liveness());
        m.register(Instant::ZERO, InstanceId(0), SVC, &good).expect("fresh");
        assert_eq!(
            m.register(Instant::ZERO, InstanceId(0), SVC, &good),
            Err(HealthConfigError::AlreadyRegistered(0))
        );
        assert!(matches!(
            m.register(Instant::ZERO, InstanceId(u32::MAX), SVC, &good),
            Err(HealthConfigError::InstanceIdTooLarge { .. })
        ));
        let bad = one(liveness().with_thresholds(0, 1));
        assert!(m.register(Instant::ZERO, InstanceId(1), SVC, &bad).is_err());
        assert_eq!(m.len(), 1);
        assert_eq!(m.service(SVC).map(|s| s.instances), Some(1));
    }

    #[test]
    fn drives_as_a_machine_under_the_contract_checker() {
        use crate::machine::Checked;
        let mut m = Checked::new(HealthMonitor::new());
        let config =
            one(CheckConfig::heartbeat(ProbeKind::Liveness, Duration::from_secs(1)).with_thresholds(1, 1));
        m.get_mut().register(Instant::ZERO, InstanceId(0), SVC, &config).expect("valid");
        while m.poll_output().is_some() {}
        m.handle(Instant::from_millis(500), MonitorInput::Heartbeat { instance: InstanceId(0) });
        let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
        assert!(matches!(
            out.as_slice(),
            [MonitorOutput::Event(HealthEvent::StatusChanged { to: HealthStatus::Healthy, .. })]
        ));
        assert_eq!(m.poll_timeout(), Some(Instant::from_millis(1500)));
        m.handle_timeout(Instant::from_millis(1500));
        let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
        assert_eq!(out.len(), 3, "status, readiness, recovery: {out:?}");
        m.handle_timeout(Instant::from_millis(1500));
        assert_eq!(m.poll_output(), None, "twice is harmless");
    }

    #[test]
    fn health_event_stays_small() {
        assert!(core::mem::size_of::<HealthEvent>() <= 40, "{}", core::mem::size_of::<HealthEvent>());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Copy, Debug)]
        enum Round {
            Ok,
            Refused,
            Silent,
            /// Answered exactly at the deadline, delivered before the timer.
            LateBeforeTimer,
            /// Answered after the timer counted the round.
            LateAfterTimer,
        }

        fn round() -> impl Strategy<Value = Round> {
            prop_oneof![
                3 => Just(Round::Ok),
                2 => Just(Round::Refused),
                1 => Just(Round::Silent),
                1 => Just(Round::LateBeforeTimer),
                1 => Just(Round::LateAfterTimer),
            ]
        }

        fn drain(m: &mut HealthMonitor) -> Vec<MonitorOutput> {
            std::iter::from_fn(|| m.poll_output()).collect()
        }

        proptest! {
            /// Over any schedule of probe answers, the instance's status never
            /// turns serving on fewer consecutive successes than the success
            /// threshold, nor failing on fewer consecutive failures than the
            /// failure threshold; and an answer that reaches the monitor at or
            /// after its round's deadline never counts as a success.
            #[test]
            fn status_flips_only_after_threshold_runs_and_late_answers_never_count(
                k in 1u32..5,
                m in 1u32..5,
                script in proptest::collection::vec(round(), 1..80),
            ) {
                let probe = ProbeCheck { interval: ms(1000), timeout: ms(500), ..ProbeCheck::default() };
                let config = one(CheckConfig::probe_with(ProbeKind::Liveness, probe).with_thresholds(k, m));
                let mut mon = HealthMonitor::new();
                mon.register(Instant::ZERO, InstanceId(0), SVC, &config).expect("valid");
                drain(&mut mon);
                let (mut ok_run, mut bad_run) = (0u32, 0u32);
                for (r, round) in script.iter().enumerate() {
                    let t0 = Instant::from_secs(r as u64);
                    let before = mon.status(InstanceId(0)).expect("registered");
                    mon.handle_timeout(t0);
                    let req = drain(&mut mon).into_iter().find_map(|o| match o {
                        MonitorOutput::Probe(req) => Some(req),
                        MonitorOutput::Event(_) => None,
                    });
                    let req = req.expect("a round starts every interval");
                    prop_assert_eq!(req.deadline, t0 + ms(500));
                    let success = ProbeResult { probe: req.probe, outcome: ProbeOutcome::Success { latency: ms(5) } };
                    let refused = ProbeResult {
                        probe: req.probe,
                        outcome: ProbeOutcome::Failure { reason: FailureReason::Refused },
                    };
                    match round {
                        Round::Ok => mon.handle_probe_result(t0 + ms(10), success),
                        Round::Refused => mon.handle_probe_result(t0 + ms(10), refused),
                        Round::Silent => {}
                        Round::LateBeforeTimer => mon.handle_probe_result(req.deadline, success),
                        Round::LateAfterTimer => {
                            mon.handle_timeout(req.deadline);
                            drain(&mut mon);
                            mon.handle_probe_result(req.deadline + ms(1), success);
                        }
                    }
                    drain(&mut mon);
                    mon.handle_timeout(req.deadline);
                    drain(&mut mon);
                    if matches!(round, Round::Ok) {
                        ok_run += 1;
                        bad_run = 0;
                    } else {
                        bad_run += 1;
                        ok_run = 0;
                    }
                    let after = mon.status(InstanceId(0)).expect("registered");
                    let check = mon.checks(InstanceId(0)).next().expect("one check");
                    if !before.is_serving() && after.is_serving() {
                        prop_assert!(ok_run >= m, "serving after {} < {} successes", ok_run, m);
                    }
                    if !before.is_failure() && after.is_failure() {
                        prop_assert!(bad_run >= k, "failing after {} < {} failures", bad_run, k);
                    }
                    if matches!(round, Round::LateBeforeTimer | Round::LateAfterTimer) {
                        prop_assert_eq!(check.successes_in_row, 0, "a late answer counted as a success");
                        prop_assert!(check.failures_in_row >= 1, "a late answer did not count as a failure");
                    }
                }
            }

            /// Same schedule, same outputs: the monitor is a pure function of
            /// its inputs. Also checks, at every step, that no timer is left in
            /// the past and that service summaries add up.
            #[test]
            fn outputs_are_deterministic(
                ops in proptest::collection::vec((0u64..700, 0u8..4, 0u32..4, 0u8..6), 1..300),
            ) {
                let first = run_schedule(&ops)?;
                let second = run_schedule(&ops)?;
                prop_assert_eq!(first, second);
            }
        }

        fn configs() -> Vec<InstanceHealthConfig> {
            let rich = ProbeCheck {
                interval: ms(500),
                timeout: ms(300),
                latency: Some(LatencyRule { window_samples: 8, min_samples: 3, p99_max: ms(30) }),
                error_rate: Some(ErrorRateRule {
                    window_samples: 8,
                    min_samples: 4,
                    degraded_permille: 200,
                    failed_permille: Some(600),
                }),
                ..ProbeCheck::default()
            };
            let phi = HeartbeatCheck { ttl: ms(2000), phi: Some(PhiConfig::default()) };
            let flap =
                FlapConfig { max_changes: 3, window: Duration::from_secs(10), quiet: Duration::from_secs(3) };
            vec![
                InstanceHealthConfig {
                    checks: vec![CheckConfig::probe_with(ProbeKind::Liveness, rich).with_thresholds(2, 1)],
                    flap: Some(flap),
                },
                InstanceHealthConfig {
                    checks: vec![CheckConfig {
                        kind: ProbeKind::Liveness,
                        check: CheckType::Heartbeat(phi),
                        failure_threshold: 1,
                        success_threshold: 2,
                    }],
                    flap: Some(flap),
                },
                InstanceHealthConfig {
                    checks: vec![
                        CheckConfig::probe(ProbeKind::Startup).with_thresholds(3, 1),
                        CheckConfig::probe(ProbeKind::Liveness).with_thresholds(2, 1),
                        CheckConfig::probe_with(ProbeKind::Readiness, rich).with_thresholds(1, 1),
                    ],
                    flap: None,
                },
                InstanceHealthConfig::standard(),
            ]
        }

        type Trace = (Vec<(Instant, MonitorOutput)>, Vec<(InstanceId, InstanceView)>);

        fn run_schedule(ops: &[(u64, u8, u32, u8)]) -> Result<Trace, TestCaseError> {
            let mut mon = HealthMonitor::new();
            let mut now = Instant::ZERO;
            let mut trace = Vec::new();
            let mut outstanding: VecDeque<ProbeRequest> = VecDeque::new();
            for (i, config) in configs().iter().enumerate() {
                let service = ServiceId(u32::from(i >= 2));
                mon.register(now, InstanceId(i as u32), service, config).expect("valid");
                collect(&mut mon, now, &mut trace, &mut outstanding);
            }
            for &(delay_ms, op, instance, kind) in ops {
                now += ms(delay_ms);
                match op {
                    0 => mon.handle_timeout(now),
                    1 => mon.heartbeat(now, InstanceId(instance)),
                    2 => {
                        if let Some(req) = outstanding.pop_front() {
                            let outcome = match kind {
                                0 => ProbeOutcome::Failure { reason: FailureReason::Refused },
                                1 => ProbeOutcome::Failure { reason: FailureReason::Error(500) },
                                2 => ProbeOutcome::Failure { reason: FailureReason::Unreachable },
                                k => ProbeOutcome::Success { latency: ms(u64::from(k) * 10) },
                            };
                            mon.handle_probe_result(now, ProbeResult { probe: req.probe, outcome });
                        }
                    }
                    _ => {
                        outstanding.pop_front(); // lost
                    }
                }
                collect(&mut mon, now, &mut trace, &mut outstanding);
                if op == 0 {
                    prop_assert!(mon.poll_timeout().is_none_or(|t| t > now), "a timer left in the past");
                }
                for (_, s) in mon.services() {
                    prop_assert_eq!(s.by_status.iter().sum::<u32>(), s.instances);
                    prop_assert!(s.ready <= s.instances && s.flapping <= s.instances);
                }
            }
            Ok((trace, mon.instances().collect()))
        }

        fn collect(
            mon: &mut HealthMonitor,
            now: Instant,
            trace: &mut Vec<(Instant, MonitorOutput)>,
            outstanding: &mut VecDeque<ProbeRequest>,
        ) {
            while let Some(out) = mon.poll_output() {
                if let MonitorOutput::Probe(req) = out {
                    outstanding.push_back(req);
                }
                trace.push((now, out));
            }
        }
    }
}
