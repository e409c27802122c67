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

mod agent;
mod detector;

pub use agent::{AgentConfig, HeartbeatAgent};
pub use detector::{DetectorStats, FailureDetector, InstanceLiveness};

use crate::id::InstanceId;
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
    /// The instance is already registered.
    #[error("instance id {0} is already registered")]
    AlreadyRegistered(u32),
}
