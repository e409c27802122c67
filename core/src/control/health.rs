//! The health controller: heartbeat liveness (the failure detector) and
//! active checks (the health monitor), and the probes on the wire.
//!
//! It owns the health view every other controller reads (who is alive,
//! ready, healthy) and publishes each change of verdict as
//! [`Event::Health`], and each heartbeat that was news as
//! [`Event::HeartbeatAccepted`]. It hears nothing: it is first in the
//! round, and membership reaches it through [`joined`](HealthController::joined)
//! and [`left`](HealthController::left).

use std::collections::{BTreeMap, VecDeque};

use super::event::Event;
use super::roster::Roster;
use crate::envelope::Output;
use crate::health::{
    FailureDetector, FailureReason, HealthConfigError, HealthMonitor, InstanceHealthConfig, LivenessTimeouts,
    MonitorOutput, ProbeId, ProbeOutcome, ProbeResult,
};
use crate::id::{InstanceId, ServiceId};
use crate::message::{Heartbeat, Message, Probe};
use crate::time::{Duration, Instant};

/// A probe on the wire, by the message id it was sent with.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    probe: ProbeId,
    sent_at: Instant,
    deadline: Instant,
}

/// Liveness and active checks of every watched instance.
#[derive(Debug, Clone)]
pub struct HealthController {
    detector: FailureDetector,
    monitor: HealthMonitor,
    /// Timeout classes known to the detector.
    liveness_classes: usize,
    /// Active checks of each class, kept for runtime registrations.
    health_classes: Vec<Option<InstanceHealthConfig>>,
    /// Probes sent and not yet answered, by message id (the probe's
    /// monitor-wide round number). Entries leave on the answer or at their
    /// deadline: at most one per check in flight.
    probes: BTreeMap<u64, InFlight>,
    /// Heartbeats that were news since the last turn, in arrival order.
    accepted: Vec<(InstanceId, Instant, u32)>,
    /// Probes that went unanswered since the last turn.
    timed_out: Vec<(InstanceId, Instant)>,
}

impl HealthController {
    pub(super) fn new(
        liveness_classes: &[LivenessTimeouts],
        health_classes: &[Option<InstanceHealthConfig>],
    ) -> Result<Self, HealthConfigError> {
        Ok(HealthController {
            detector: FailureDetector::new(liveness_classes)?,
            monitor: HealthMonitor::new(),
            liveness_classes: liveness_classes.len(),
            health_classes: health_classes.to_vec(),
            probes: BTreeMap::new(),
            accepted: Vec::new(),
            timed_out: Vec::new(),
        })
    }

    /// The failure detector, for queries.
    pub fn detector(&self) -> &FailureDetector {
        &self.detector
    }

    /// The health monitor, for queries.
    pub fn monitor(&self) -> &HealthMonitor {
        &self.monitor
    }

    /// The active checks of `class` (validated), or an error for a class
    /// that does not exist or an instance id the detector cannot hold.
    /// Called before anything changes: an error changes nothing.
    pub(super) fn admit(
        &self,
        instance: InstanceId,
        class: usize,
    ) -> Result<Option<InstanceHealthConfig>, HealthConfigError> {
        if class >= self.liveness_classes {
            return Err(HealthConfigError::UnknownClass { class, classes: self.liveness_classes });
        }
        if instance.0 > crate::health::MAX_INSTANCE_ID {
            return Err(HealthConfigError::InstanceIdTooLarge {
                id: instance.0,
                max: crate::health::MAX_INSTANCE_ID,
            });
        }
        let health = self.health_classes.get(class).cloned().flatten();
        if let Some(h) = &health {
            h.validate()?;
        }
        Ok(health)
    }

    /// Membership: start watching a new instance (admitted by
    /// [`admit`](Self::admit), so it cannot fail).
    pub(super) fn joined(
        &mut self,
        now: Instant,
        instance: InstanceId,
        service: ServiceId,
        class: usize,
        health: Option<&InstanceHealthConfig>,
    ) {
        // Fresh ids for both: the catalog just accepted this one.
        let _ = self.detector.register(now, instance, class);
        if let Some(h) = health {
            let _ = self.monitor.register(now, instance, service, h);
        }
    }

    /// Membership: stop watching an instance.
    pub(super) fn left(&mut self, instance: InstanceId) {
        self.detector.deregister(instance);
        self.monitor.deregister(instance);
    }

    /// A heartbeat arrived. Only news renews the monitor's heartbeat
    /// checks (the detector drops duplicates and reordered beats); news is
    /// published at the next turn.
    pub(super) fn heartbeat(&mut self, now: Instant, hb: &Heartbeat, roster: &Roster) {
        let accepted = self.detector.stats().accepted;
        self.detector.on_heartbeat(now, hb);
        if self.detector.stats().accepted > accepted {
            if roster.monitored(hb.instance) {
                self.monitor.heartbeat(now, hb.instance);
            }
            let missed = self.detector.instance(hb.instance).map_or(0, |l| l.missed_before_newest);
            self.accepted.push((hb.instance, now, missed));
        }
    }

    /// An answer to probe message `id` arrived: `ok` or an error status.
    pub(super) fn probe_reply(&mut self, now: Instant, id: u64, ok: bool) {
        self.probe_answered(now, id, |latency| {
            if ok {
                ProbeOutcome::Success { latency }
            } else {
                ProbeOutcome::Failure { reason: FailureReason::Error(503) }
            }
        });
    }

    /// Probe message `id` was refused: nothing listens at the instance.
    pub(super) fn probe_refused(&mut self, now: Instant, id: u64) {
        self.probe_answered(now, id, |_| ProbeOutcome::Failure { reason: FailureReason::Refused });
    }

    fn probe_answered(&mut self, now: Instant, id: u64, outcome: impl FnOnce(Duration) -> ProbeOutcome) {
        // Unknown ids: answers after the deadline, or duplicates.
        if let Some(f) = self.probes.remove(&id) {
            let result = ProbeResult { probe: f.probe, outcome: outcome(now - f.sent_at) };
            self.monitor.handle_probe_result(now, result);
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.detector.handle_timeout(now);
        self.monitor.handle_timeout(now);
    }

    /// Forget probes past their deadline: the monitor has counted them
    /// unresponsive. Ids grow with time, so the oldest come first.
    pub(super) fn expire_probes(&mut self, now: Instant) {
        while let Some((&id, f)) = self.probes.first_key_value() {
            if f.deadline > now {
                break;
            }
            self.timed_out.push((f.probe.instance, f.deadline));
            self.probes.remove(&id);
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let probe = self.probes.first_key_value().map(|(_, f)| f.deadline);
        crate::time::earliest(
            crate::time::earliest(self.detector.poll_timeout(), self.monitor.poll_timeout()),
            probe,
        )
    }

    /// The turn: publish the heartbeats that were news, then the
    /// detector's verdicts, then the monitor's (its probes go out to the
    /// instances' nodes in the order the monitor asked for them). Every
    /// verdict is also an output for the driver.
    pub(super) fn publish(
        &mut self,
        now: Instant,
        roster: &Roster,
        events: &mut Vec<Event>,
        outputs: &mut VecDeque<Output>,
    ) {
        for (instance, at, missed) in self.accepted.drain(..) {
            events.push(Event::HeartbeatAccepted { instance, at, missed });
        }
        for (instance, at) in self.timed_out.drain(..) {
            events.push(Event::ProbeTimedOut { instance, at });
        }
        while let Some(event) = self.detector.poll_event() {
            events.push(Event::Health(event));
            outputs.push_back(Output::Health(event));
        }
        while let Some(output) = self.monitor.poll_output() {
            match output {
                MonitorOutput::Probe(request) => {
                    let Some(node) = roster.node(request.instance) else {
                        continue; // registered with the monitor, so it has a node: unreachable
                    };
                    let id = request.probe.seq;
                    let f = InFlight { probe: request.probe, sent_at: now, deadline: request.deadline };
                    self.probes.insert(id, f);
                    let timeout_ms = u32::try_from((request.deadline - now).as_millis()).unwrap_or(u32::MAX);
                    let probe = Probe { id, kind: request.kind, timeout_ms };
                    outputs.push_back(Output::Send { to: node, message: Message::Probe(probe) });
                }
                MonitorOutput::Event(event) => {
                    events.push(Event::Health(event));
                    outputs.push_back(Output::Health(event));
                }
            }
        }
    }
}

/// The health an instance's verdicts add up to, as the catalog records it.
pub(super) fn catalog_health(
    health: &HealthController,
    roster: &Roster,
    instance: InstanceId,
) -> Option<crate::registry::HealthStatus> {
    use crate::health::{HealthStatus, Liveness};
    use crate::registry::HealthStatus as Catalog;
    let liveness = health.detector.instance(instance)?.status;
    if liveness == Liveness::Dead {
        return Some(Catalog::Critical);
    }
    if roster.monitored(instance) {
        return match health.monitor.status(instance)? {
            HealthStatus::Healthy => Some(Catalog::Passing),
            HealthStatus::Degraded => Some(Catalog::Warning),
            HealthStatus::Unresponsive | HealthStatus::Failed => Some(Catalog::Critical),
            HealthStatus::Unknown => None,
        };
    }
    match liveness {
        Liveness::Alive => Some(Catalog::Passing),
        Liveness::Suspect => Some(Catalog::Warning),
        Liveness::Unknown | Liveness::Dead => None,
    }
}
