//! Active probes: what the monitor asks a driver to run, and what comes back.
//!
//! The monitor never runs a probe itself (that would be I/O). It emits a
//! [`ProbeRequest`] naming the instance, the check and a deadline; the driver
//! carries it out (in sim a simulated request, for real an HTTP GET or a TCP
//! connect) and feeds back a [`ProbeResult`] carrying the same [`ProbeId`].
//! The monitor keeps the clock: a result that reaches it at or after the
//! deadline is ignored, because by then the round was already counted as
//! [`Unresponsive`](super::HealthStatus::Unresponsive). A driver therefore
//! need not (but may) enforce the deadline itself.

use core::fmt;

use super::status::{Cause, HealthStatus, ProbeKind};
use crate::id::InstanceId;
use crate::time::{Duration, Instant};

/// Names one round of one check: results are matched to rounds by it.
///
/// `seq` is unique within a monitor for its whole life (it never restarts,
/// not even when an instance is deregistered and registered again), so a
/// late result can never be mistaken for the answer to a newer round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProbeId {
    /// The probed instance.
    pub instance: InstanceId,
    /// Index of the check in the instance's configuration.
    pub check: u16,
    /// The round: unique across the monitor.
    pub seq: u64,
}

impl fmt::Display for ProbeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/check#{}/round#{}", self.instance, self.check, self.seq)
    }
}

/// "Run this probe now, and answer before `deadline`."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProbeRequest {
    /// Echo this back in the [`ProbeResult`].
    pub probe: ProbeId,
    /// The instance to probe (also in `probe`; here for convenience).
    pub instance: InstanceId,
    /// What the probe is for: a driver may probe `/livez`, `/readyz` or a
    /// startup endpoint accordingly.
    pub kind: ProbeKind,
    /// A result delivered at or after this instant is ignored: the round
    /// counts as unresponsive.
    pub deadline: Instant,
}

/// Why a probe failed, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureReason {
    /// The connection was refused or reset: nothing listens; the process
    /// has most likely crashed. Counts as [`HealthStatus::Failed`].
    Refused,
    /// The instance answered with an error (HTTP 5xx, a failing command's
    /// exit code…). Counts as [`HealthStatus::Failed`].
    Error(u16),
    /// The driver gave up waiting before the monitor's deadline (its own
    /// timer). Counts as [`HealthStatus::Unresponsive`].
    TimedOut,
    /// The instance could not be reached (no route, partition). Counts as
    /// [`HealthStatus::Unresponsive`]: the instance may be fine.
    Unreachable,
}

impl FailureReason {
    /// The failure type this reason stands for.
    pub const fn status(self) -> HealthStatus {
        match self {
            FailureReason::Refused | FailureReason::Error(_) => HealthStatus::Failed,
            FailureReason::TimedOut | FailureReason::Unreachable => HealthStatus::Unresponsive,
        }
    }

    /// The cause recorded for it.
    pub const fn cause(self) -> Cause {
        match self {
            FailureReason::Refused => Cause::Refused,
            FailureReason::Error(code) => Cause::ErrorCode { code },
            FailureReason::TimedOut => Cause::ProbeTimeout,
            FailureReason::Unreachable => Cause::Unreachable,
        }
    }
}

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The instance answered "healthy".
    Success {
        /// Time from sending the probe to its answer, as the driver measured
        /// it. Feeds the latency check.
        latency: Duration,
    },
    /// The probe failed.
    Failure {
        /// How.
        reason: FailureReason,
    },
}

/// The answer to a [`ProbeRequest`], fed back by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProbeResult {
    /// The request's [`ProbeRequest::probe`].
    pub probe: ProbeId,
    /// What the probe found.
    pub outcome: ProbeOutcome,
}
