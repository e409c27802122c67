//! The operational events capabilities talk through.
//!
//! No controller calls into another: each publishes what it observed or
//! decided as [`Event`]s, and the composition hands them to the
//! controllers after it (see the round in [`control`](super)). These are
//! also the events vigil publishes to the outside (the event bus), so
//! their names are stable: [`Event::name`] is a dotted name that never
//! changes meaning once released, and the serde form is
//! `{"event": "<variant>", "data": {…}}` with snake_case variant names.
//!
//! Events are small and `Copy`: a round's events live in one reused
//! buffer, so an event costs no allocation in steady state.

use crate::health::HealthEvent;
use crate::id::{InstanceId, NodeId, ServiceId};
use crate::recovery::{DecisionKind, RecoveryOutput};
use crate::time::Instant;

/// One operational event: something a capability observed or decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// An instance joined the fleet (its first registration). Membership:
    /// every controller hears it at once, before anything else about it.
    InstanceJoined {
        /// The instance.
        instance: InstanceId,
        /// Its service.
        service: ServiceId,
        /// Where it runs.
        node: NodeId,
        /// When.
        at: Instant,
    },
    /// An instance left the fleet: deregistered, or let go by the catalog
    /// (critical too long, lease expired). Membership, like a join.
    InstanceLeft {
        /// The instance.
        instance: InstanceId,
        /// When.
        at: Instant,
    },
    /// A heartbeat from the instance was news (not a duplicate, not
    /// reordered): it is alive as far as this observer can tell. Internal:
    /// as frequent as heartbeats, so an event bus does not publish it by
    /// default.
    HeartbeatAccepted {
        /// The instance.
        instance: InstanceId,
        /// When it arrived.
        at: Instant,
        /// Heartbeats missing just before it (the gap in sequence
        /// numbers, at most 16): loss on the way, as this observer hears it.
        missed: u32,
    },
    /// A probe got no answer by its deadline (lost on the way, or the
    /// instance did not answer). As frequent as probes, like heartbeats.
    ProbeTimedOut {
        /// The probed instance.
        instance: InstanceId,
        /// The probe's deadline.
        at: Instant,
    },
    /// A health verdict changed (liveness, status, readiness, flapping, or
    /// a request for recovery).
    Health(HealthEvent),
    /// Recovery decided something: an action to carry out, or a decision
    /// for the record (detected, held, resolved, …).
    Recovery(RecoveryOutput),
    /// Clients were told to send the instance traffic, or to stop.
    RoutabilityChanged {
        /// The instance.
        instance: InstanceId,
        /// Whether it is routable now.
        routable: bool,
        /// The routing table's version that carries the change (the
        /// `index` of the endpoint update clients received).
        index: u64,
        /// When.
        at: Instant,
    },
}

impl Event {
    /// The event's stable dotted name (`health.liveness_changed`,
    /// `recovery.action`, …): what a subscriber filters on.
    pub fn name(&self) -> &'static str {
        match self {
            Event::InstanceJoined { .. } => "membership.joined",
            Event::InstanceLeft { .. } => "membership.left",
            Event::HeartbeatAccepted { .. } => "health.heartbeat",
            Event::ProbeTimedOut { .. } => "health.probe_timed_out",
            Event::Health(h) => match h {
                HealthEvent::LivenessChanged { .. } => "health.liveness_changed",
                HealthEvent::StatusChanged { .. } => "health.status_changed",
                HealthEvent::ReadinessChanged { .. } => "health.readiness_changed",
                HealthEvent::NeedsRecovery { .. } => "health.needs_recovery",
                HealthEvent::FlappingChanged { .. } => "health.flapping_changed",
            },
            Event::Recovery(RecoveryOutput::Action(_)) => "recovery.action",
            Event::Recovery(RecoveryOutput::Decision(d)) => match d.kind {
                DecisionKind::Resolved { .. } => "recovery.resolved",
                DecisionKind::Abandoned => "recovery.abandoned",
                _ => "recovery.decision",
            },
            Event::RoutabilityChanged { .. } => "routing.changed",
        }
    }

    /// The instance the event is about, if it is about one.
    pub fn instance(&self) -> Option<InstanceId> {
        match *self {
            Event::InstanceJoined { instance, .. }
            | Event::InstanceLeft { instance, .. }
            | Event::HeartbeatAccepted { instance, .. }
            | Event::ProbeTimedOut { instance, .. }
            | Event::RoutabilityChanged { instance, .. } => Some(instance),
            Event::Health(h) => Some(h.instance()),
            Event::Recovery(RecoveryOutput::Action(a)) => a.instance,
            Event::Recovery(RecoveryOutput::Decision(d)) => d.instance,
        }
    }

    /// For a verdict that can change whether the instance should get
    /// traffic (liveness, readiness or status), the instance.
    pub(super) fn routing_relevant(&self) -> Option<InstanceId> {
        match *self {
            Event::Health(
                HealthEvent::LivenessChanged { instance, .. }
                | HealthEvent::ReadinessChanged { instance, .. }
                | HealthEvent::StatusChanged { instance, .. },
            ) => Some(instance),
            _ => None,
        }
    }
}
