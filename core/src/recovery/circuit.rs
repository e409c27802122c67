//! Circuit breakers that isolate a failing dependency.
//!
//! When a service's instances are held because a dependency is impaired and
//! its policy says [`isolate_dependencies`](super::Policy::isolate_dependencies),
//! the coordinator opens a circuit from the service to the dependency
//! (callers fail fast instead of piling up on it). After `open_for` it asks
//! for a half-open probe (one trial call); a probe that succeeds closes the
//! circuit, one that fails or times out opens it again for twice as long,
//! up to `open_for_max`.
//!
//! Each circuit is an enum whose transitions consume the old state: a
//! half-open probe can only be asked of an open circuit, and only a probe's
//! result can close it.

use crate::time::{Duration, Instant};

use super::{BackoffConfig, CorrelationId, RecoveryConfigError};

/// Circuit breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CircuitConfig {
    /// How long a circuit stays open before its first half-open probe.
    pub open_for: Duration,
    /// The longest it stays open after repeated failed probes.
    pub open_for_max: Duration,
}

impl Default for CircuitConfig {
    /// 30 s, doubling up to 5 minutes.
    fn default() -> Self {
        CircuitConfig { open_for: Duration::from_secs(30), open_for_max: Duration::from_secs(300) }
    }
}

impl CircuitConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), RecoveryConfigError> {
        if self.open_for.is_zero() {
            return Err(RecoveryConfigError::ZeroInterval { which: "circuit.open_for" });
        }
        if self.open_for_max < self.open_for {
            return Err(RecoveryConfigError::CapBelowBase { base: self.open_for, cap: self.open_for_max });
        }
        Ok(())
    }

    /// How long the circuit stays open after its `trips`-th opening (from 0).
    fn open_duration(&self, trips: u32) -> Duration {
        BackoffConfig { base: self.open_for, cap: self.open_for_max, reset_after: self.open_for }
            .ceiling(trips)
    }
}

/// An open circuit: calls fail fast until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Open {
    pub(crate) id: CorrelationId,
    pub(crate) until: Instant,
    pub(crate) trips: u32,
    pub(crate) attempt: u32,
}

/// A half-open circuit: one probe in flight, answered by `deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HalfOpen {
    pub(crate) id: CorrelationId,
    pub(crate) deadline: Instant,
    pub(crate) trips: u32,
    pub(crate) attempt: u32,
}

/// A circuit that is not closed (closed circuits are not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Circuit {
    Open(Open),
    HalfOpen(HalfOpen),
}

impl Circuit {
    /// A circuit opened at `now` for the first time.
    pub(crate) fn open(id: CorrelationId, now: Instant, config: &CircuitConfig) -> Open {
        Open { id, until: now.saturating_add(config.open_duration(0)), trips: 0, attempt: 1 }
    }

    pub(crate) fn id(&self) -> CorrelationId {
        match self {
            Circuit::Open(o) => o.id,
            Circuit::HalfOpen(h) => h.id,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        match self {
            Circuit::Open(o) => o.until,
            Circuit::HalfOpen(h) => h.deadline,
        }
    }
}

impl Open {
    /// Time is up: try one call.
    pub(crate) fn probe(self, now: Instant, timeout: Duration) -> HalfOpen {
        HalfOpen {
            id: self.id,
            deadline: now.saturating_add(timeout),
            trips: self.trips,
            attempt: self.attempt + 1,
        }
    }
}

impl HalfOpen {
    /// The probe failed or timed out: open again, for longer.
    pub(crate) fn failed(self, now: Instant, config: &CircuitConfig) -> Open {
        let trips = self.trips.saturating_add(1);
        Open {
            id: self.id,
            until: now.saturating_add(config.open_duration(trips)),
            trips,
            attempt: self.attempt + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_probes_double_the_open_time_up_to_the_max() {
        let config = CircuitConfig::default();
        let id = CorrelationId(4);
        let probe_timeout = Duration::from_secs(5);
        let mut now = Instant::from_secs(100);
        let mut open = Circuit::open(id, now, &config);
        let mut open_for = Vec::new();
        for n in 0..6_u32 {
            assert_eq!(Circuit::Open(open).id(), id, "one circuit, one correlation id");
            assert_eq!(open.attempt, 1 + 2 * n, "open, probe, open again: one attempt each");
            open_for.push(open.until.saturating_duration_since(now).as_secs());
            now = Circuit::Open(open).deadline();
            let half = open.probe(now, probe_timeout);
            assert_eq!(Circuit::HalfOpen(half).deadline(), now + probe_timeout);
            assert_eq!(Circuit::HalfOpen(half).id(), id);
            now = half.deadline;
            open = half.failed(now, &config);
        }
        assert_eq!(open_for, [30, 60, 120, 240, 300, 300]);
    }
}
