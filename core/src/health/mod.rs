//! Health: is each instance alive?
//!
//! Two machines prove the machine contract end to end and are the seed of
//! the health capability:
//!
//! - [`HeartbeatAgent`] runs beside each instance and sends a
//!   [`Heartbeat`](crate::message::Heartbeat) to the control node every
//!   `interval`.
//! - [`FailureDetector`] runs on the control node and turns the arrival (or
//!   absence) of heartbeats into a [`Liveness`] verdict per instance:
//!   `Unknown` until the first beat, `Alive`, then `Suspect` after
//!   `suspect_after` of silence and `Dead` after `dead_after`; any newer
//!   heartbeat makes it `Alive` again.
//!
//! Every verdict change is an output ([`HealthEvent`]) and a structured
//! `tracing` event carrying the instance id, so recovery and the event bus
//! can react to it and an operator can read it.
//!
//! # The health monitor
//!
//! Liveness by heartbeat says only "alive or not". [`HealthMonitor`] says
//! *how* an instance is, and what to do about it:
//!
//! - **Probe kinds** with Kubernetes semantics ([`ProbeKind`]): startup
//!   gates the others; readiness failure only takes the instance out of
//!   rotation ([`HealthEvent::ReadinessChanged`]); liveness failure, or a
//!   startup that fails, asks for recovery ([`HealthEvent::NeedsRecovery`]).
//! - **Check types** ([`CheckType`]): heartbeat/TTL, optionally with a
//!   phi-accrual detector ([`PhiAccrual`]); active probes run by the driver
//!   ([`ProbeRequest`] out, [`ProbeResult`] in, deadlines kept by the
//!   monitor), with optional latency ([`LatencyRule`], exact p99 over a
//!   bounded window) and error-rate ([`ErrorRateRule`]) rules.
//! - **Statuses** that tell failure types apart ([`HealthStatus`]), behind
//!   failure and success thresholds ([`Hysteresis`]), and flap damping
//!   ([`FlapDamper`]).
//! - **Aggregation** per instance (worst relevant check), per service
//!   ([`ServiceSummary`]), and a bounded history of transitions
//!   ([`TransitionHistory`]).
//!
//! The file list is the design: `status.rs` (vocabulary), `probe.rs`
//! (driver protocol), `check.rs` (configuration), `hysteresis.rs`,
//! `window.rs`, `phi.rs`, `flap.rs`, `history.rs` (pure pieces, each tested
//! alone), and `monitor.rs`, which composes them into the machine.

mod agent;
mod check;
mod detector;
mod flap;
mod history;
mod hysteresis;
mod monitor;
mod phi;
mod probe;
mod status;
mod window;

pub use agent::{AgentConfig, HeartbeatAgent};
pub use check::{
    CheckConfig, CheckType, DEFAULT_FAILURE_THRESHOLD, DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_TIMEOUT,
    DEFAULT_SUCCESS_THRESHOLD, ErrorRateRule, HeartbeatCheck, InstanceHealthConfig, LatencyRule,
    MAX_CHECKS_PER_INSTANCE, MAX_THRESHOLD, ProbeCheck,
};
pub use detector::{DEFAULT_RESOLUTION, DetectorStats, FailureDetector, InstanceLiveness, MAX_INSTANCE_ID};
pub use flap::{Damped, FlapConfig, FlapDamper, MAX_FLAP_CHANGES};
pub use history::{HISTORY_LEN, Transition, TransitionHistory};
pub use hysteresis::{Hysteresis, Polarity};
pub use monitor::{
    CheckView, HealthMonitor, InstanceView, MonitorInput, MonitorOutput, MonitorStats, ServiceSummary,
};
pub use phi::{MAX_INTERVAL, MAX_PHI_THRESHOLD, MAX_SAMPLE_SIZE, PhiAccrual, PhiConfig};
pub use probe::{FailureReason, ProbeId, ProbeOutcome, ProbeRequest, ProbeResult};
pub use status::{Cause, CheckRef, HealthStatus, ProbeKind, TransitionReason};
pub use window::{LatencyWindow, MAX_WINDOW_SAMPLES, OutcomeWindow};

use crate::id::{InstanceId, ServiceId};
use crate::time::{Duration, Instant};
use core::fmt;

/// The detector's verdict on one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Registered, never heard from.
    Unknown,
    /// Heard from within `suspect_after`.
    Alive,
    /// Silent for at least `suspect_after`: maybe slow, maybe gone.
    Suspect,
    /// Silent for at least `dead_after`: treat as gone.
    Dead,
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Unknown => "unknown",
            Liveness::Alive => "alive",
            Liveness::Suspect => "suspect",
            Liveness::Dead => "dead",
        })
    }
}

/// What the health machines report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum HealthEvent {
    /// The detector changed its verdict on an instance.
    LivenessChanged {
        /// The instance.
        instance: InstanceId,
        /// The verdict before.
        from: Liveness,
        /// The verdict now.
        to: Liveness,
        /// When the detector last heard from the instance (its registration
        /// time if never).
        last_heard: Instant,
    },
    /// The monitor changed an instance's reported [`HealthStatus`].
    StatusChanged {
        /// The instance.
        instance: InstanceId,
        /// Its service.
        service: ServiceId,
        /// The status before.
        from: HealthStatus,
        /// The status now.
        to: HealthStatus,
        /// What triggered the change.
        reason: TransitionReason,
        /// When.
        at: Instant,
    },
    /// An instance entered or left rotation: ready means "send it traffic".
    ReadinessChanged {
        /// The instance.
        instance: InstanceId,
        /// Its service.
        service: ServiceId,
        /// Whether it is ready now.
        ready: bool,
        /// When.
        at: Instant,
    },
    /// An instance failed its liveness check, or failed to start: recover it
    /// (restart, replace). Raised once per episode; the episode ends when
    /// its liveness checks pass again (a [`HealthEvent::StatusChanged`] says
    /// so) or it is deregistered.
    NeedsRecovery {
        /// The instance.
        instance: InstanceId,
        /// Its service.
        service: ServiceId,
        /// The failure type: `Unresponsive` (hung, cut off) or `Failed`
        /// (crashed, refusing, failed to start).
        status: HealthStatus,
        /// The failing check (its kind tells a failed start from a failed
        /// liveness check) and what it observed.
        reason: TransitionReason,
        /// When.
        at: Instant,
    },
    /// An instance started or stopped flapping (see [`FlapDamper`]).
    FlappingChanged {
        /// The instance.
        instance: InstanceId,
        /// Its service.
        service: ServiceId,
        /// Whether it flaps now.
        flapping: bool,
        /// When.
        at: Instant,
    },
}

impl HealthEvent {
    /// The instance the event is about.
    pub fn instance(&self) -> InstanceId {
        match *self {
            HealthEvent::LivenessChanged { instance, .. }
            | HealthEvent::StatusChanged { instance, .. }
            | HealthEvent::ReadinessChanged { instance, .. }
            | HealthEvent::NeedsRecovery { instance, .. }
            | HealthEvent::FlappingChanged { instance, .. } => instance,
        }
    }
}

/// How long silence may last before an instance is suspected, then dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LivenessTimeouts {
    /// Silence after which the instance is `Suspect`.
    pub suspect_after: Duration,
    /// Silence after which the instance is `Dead`. At least `suspect_after`.
    pub dead_after: Duration,
}

impl LivenessTimeouts {
    /// Check the timeouts make sense on their own.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        if self.suspect_after.is_zero() {
            return Err(HealthConfigError::ZeroTimeout { which: "suspect_after" });
        }
        if self.dead_after < self.suspect_after {
            return Err(HealthConfigError::DeadBeforeSuspect {
                suspect_after: self.suspect_after,
                dead_after: self.dead_after,
            });
        }
        Ok(())
    }
}

/// A health configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthConfigError {
    /// A timeout or interval of zero would fire continuously.
    #[error("`{which}` must be greater than zero")]
    ZeroTimeout {
        /// The offending setting.
        which: &'static str,
    },
    /// `dead_after` shorter than `suspect_after`.
    #[error("`dead_after` ({dead_after:?}) must be at least `suspect_after` ({suspect_after:?})")]
    DeadBeforeSuspect {
        /// The configured suspicion timeout.
        suspect_after: Duration,
        /// The configured death timeout.
        dead_after: Duration,
    },
    /// A heartbeat interval not shorter than the suspicion timeout: every
    /// healthy instance would be suspected between two beats.
    #[error(
        "heartbeat `interval` ({interval:?}) must be shorter than `suspect_after` ({suspect_after:?}), or healthy instances look suspect between beats"
    )]
    IntervalTooLong {
        /// The heartbeat interval.
        interval: Duration,
        /// The suspicion timeout.
        suspect_after: Duration,
    },
    /// The instance id is beyond what the detector's dense table allows.
    #[error("instance id {id} exceeds the supported maximum {max}")]
    InstanceIdTooLarge {
        /// The id given.
        id: u32,
        /// The largest id accepted.
        max: u32,
    },
    /// A watched instance names a timeout class that does not exist.
    #[error("liveness class {class} does not exist (there are {classes})")]
    UnknownClass {
        /// The class asked for.
        class: usize,
        /// How many classes there are.
        classes: usize,
    },
    /// The instance is already registered.
    #[error("instance id {0} is already registered")]
    AlreadyRegistered(u32),
    /// A probe timeout longer than its interval: rounds would overlap.
    #[error(
        "probe `timeout` ({timeout:?}) must not exceed its `interval` ({interval:?}): rounds would overlap"
    )]
    TimeoutLongerThanInterval {
        /// The probe timeout.
        timeout: Duration,
        /// The probe interval.
        interval: Duration,
    },
    /// A threshold or ratio outside its range.
    #[error("`{which}` is {value}, but must be between 1 and {max} (ratios: 0 to 1000 permille)")]
    ThresholdOutOfRange {
        /// The offending setting.
        which: &'static str,
        /// The value given.
        value: u32,
        /// The largest value accepted.
        max: u32,
    },
    /// A sample window that is empty, too large, or shorter than its
    /// minimum sample count.
    #[error(
        "`{which}`: a window of {samples} samples judged from {min_samples} is invalid (need 1 <= min_samples <= samples <= {max})"
    )]
    WindowOutOfRange {
        /// The offending setting.
        which: &'static str,
        /// The window size given.
        samples: u16,
        /// The minimum sample count given.
        min_samples: u16,
        /// The largest window accepted.
        max: u16,
    },
    /// An instance with no checks, or more than the monitor allows.
    #[error("an instance needs between 1 and {max} checks, got {count}")]
    CheckCount {
        /// Checks given.
        count: usize,
        /// The most accepted.
        max: usize,
    },
    /// A phi-accrual setting outside its range.
    #[error("phi-accrual `{which}` is out of range")]
    InvalidPhi {
        /// The offending setting and its range.
        which: &'static str,
    },
}
