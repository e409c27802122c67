//! The vocabulary of the health monitor: what a check concluded and why.
//!
//! Statuses tell failure *types* apart because recovery treats them
//! differently: an [`Unresponsive`](HealthStatus::Unresponsive) instance may
//! be hung or cut off by a partition (wait, or restart), a
//! [`Failed`](HealthStatus::Failed) one crashed or refuses (restart), a
//! [`Degraded`](HealthStatus::Degraded) one still serves, only badly (shed
//! load, do not restart). Every type here is small and `Copy`: they travel
//! inside [`HealthEvent`](super::HealthEvent), which the simulator moves by
//! the million.

use core::fmt;

/// What the monitor concluded about a check, an instance, or a service.
///
/// Declared from best to worst: `Ord` is severity, so "the worst of several
/// statuses" is `max`. `Unknown` ranks between the serving statuses and the
/// failing ones: missing information must never make an instance look
/// healthier than a check that has actually passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every relevant check passes within its limits.
    Healthy,
    /// Passing, but slow (p99 latency over its limit) or erroring more than
    /// its limit: still serving, still in rotation.
    Degraded,
    /// No verdict yet: never probed, still starting, or just registered.
    Unknown,
    /// Does not answer in time: hung, overloaded, or cut off.
    Unresponsive,
    /// Answers "no": refused connections (crashed), error responses, failed to
    /// start, or an error rate over its failure limit.
    Failed,
}

impl HealthStatus {
    /// Every status, best first: the index order of per-status counters.
    pub const ALL: [HealthStatus; 5] = [
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Unknown,
        HealthStatus::Unresponsive,
        HealthStatus::Failed,
    ];

    /// Dense index of the status (its position in [`HealthStatus::ALL`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether an instance with this status can serve traffic.
    pub const fn is_serving(self) -> bool {
        matches!(self, HealthStatus::Healthy | HealthStatus::Degraded)
    }

    /// Whether this status is a failure (`Unresponsive` or `Failed`).
    pub const fn is_failure(self) -> bool {
        matches!(self, HealthStatus::Unresponsive | HealthStatus::Failed)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unknown => "unknown",
            HealthStatus::Unresponsive => "unresponsive",
            HealthStatus::Failed => "failed",
        })
    }
}

/// What a check is for, with Kubernetes semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Has the instance finished starting? Until every startup check has
    /// passed, liveness and readiness checks do not run and their results
    /// are ignored; a startup check that fails past its threshold means the
    /// instance failed to start and needs recovery.
    Startup,
    /// May the instance receive traffic? Failure only takes it out of
    /// rotation.
    Readiness,
    /// Is the instance alive? Failure asks for recovery.
    Liveness,
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
        })
    }
}

/// Which check of an instance: its position in the instance's
/// configuration, and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct CheckRef {
    /// Index of the check in [`InstanceHealthConfig::checks`](super::InstanceHealthConfig::checks).
    pub index: u16,
    /// The check's kind.
    pub kind: ProbeKind,
}

/// Why a check (and so possibly its instance) has the status it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// Nothing observed yet.
    NotObserved,
    /// An active probe succeeded within its limits.
    ProbePassed,
    /// A heartbeat renewed the check's TTL.
    HeartbeatReceived,
    /// The instance refused the probe's connection: typically crashed.
    Refused,
    /// The instance answered with an error.
    ErrorCode {
        /// The error code it answered with (an HTTP status, an exit code…).
        code: u16,
    },
    /// The probe's target could not be reached (no route, partition), as
    /// reported by the driver.
    Unreachable,
    /// No probe result arrived before the probe's deadline.
    ProbeTimeout,
    /// No heartbeat arrived within the TTL.
    TtlExpired,
    /// The phi-accrual suspicion level crossed its threshold.
    PhiSuspected,
    /// p99 latency over the window exceeds the check's limit.
    SlowP99 {
        /// The observed p99, in microseconds (saturated at `u32::MAX`).
        p99_us: u32,
    },
    /// The share of failed probes over the window exceeds a limit.
    ErrorRate {
        /// The observed failure share, in thousandths.
        failed_permille: u16,
    },
    /// The instance stopped flapping: its reported status follows its checks
    /// again.
    FlapSettled,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::NotObserved => f.write_str("not observed"),
            Cause::ProbePassed => f.write_str("probe passed"),
            Cause::HeartbeatReceived => f.write_str("heartbeat received"),
            Cause::Refused => f.write_str("connection refused"),
            Cause::ErrorCode { code } => write!(f, "error code {code}"),
            Cause::Unreachable => f.write_str("unreachable"),
            Cause::ProbeTimeout => f.write_str("probe timed out"),
            Cause::TtlExpired => f.write_str("ttl expired"),
            Cause::PhiSuspected => f.write_str("phi over threshold"),
            Cause::SlowP99 { p99_us } => write!(f, "p99 {p99_us}us over limit"),
            Cause::ErrorRate { failed_permille } => write!(f, "error rate {failed_permille}‰ over limit"),
            Cause::FlapSettled => f.write_str("flapping settled"),
        }
    }
}

/// Why an instance's status changed: the check whose observation triggered
/// the change (if a check did), and what that check observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct TransitionReason {
    /// The triggering check; `None` for instance-level causes (the end of
    /// flapping).
    pub check: Option<CheckRef>,
    /// What was observed.
    pub cause: Cause,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check {
            Some(check) => write!(f, "{} check #{}: {}", check.kind, check.index, self.cause),
            None => write!(f, "{}", self.cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_puts_unknown_between_serving_and_failing() {
        assert!(HealthStatus::Healthy < HealthStatus::Degraded);
        assert!(HealthStatus::Degraded < HealthStatus::Unknown);
        assert!(HealthStatus::Unknown < HealthStatus::Unresponsive);
        assert!(HealthStatus::Unresponsive < HealthStatus::Failed);
        for (i, s) in HealthStatus::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn reasons_display_for_operators() {
        let r = TransitionReason {
            check: Some(CheckRef { index: 2, kind: ProbeKind::Liveness }),
            cause: Cause::ErrorCode { code: 503 },
        };
        assert_eq!(r.to_string(), "liveness check #2: error code 503");
    }
}
