//! Restart intensity, after Erlang/OTP supervisors: at most `max_restarts`
//! restarts within any `period`; one more means the thing restarted is
//! crash-looping, and restarting it again is pointless: escalate.
//!
//! A window keeps only the instants of the last `max_restarts` restarts
//! (a ring, at most [`MAX_INTENSITY_RESTARTS`] entries): a new restart is
//! allowed iff fewer than `max_restarts` of them lie within `period` before
//! now.
//!
//! The window is closed, as OTP's: `supervisor:add_restart/3` keeps the
//! restarts `R` with `R >= Now - Period`, so a restart exactly `period`
//! after an earlier one still counts that one, and only a restart strictly
//! more than `period` later has left it behind. OTP compares whole seconds
//! (`erlang:monotonic_time(second)`), so its window reaches up to a second
//! further in real time; vigil compares exact instants.

use std::collections::VecDeque;

use crate::time::{Duration, Instant};

use super::RecoveryConfigError;

/// Most restarts an intensity limit may allow per period (the window's
/// memory per instance or service).
pub const MAX_INTENSITY_RESTARTS: u32 = 64;

/// An intensity limit: at most `max_restarts` in `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Intensity {
    /// Restarts allowed within `period` (1..=[`MAX_INTENSITY_RESTARTS`]).
    pub max_restarts: u32,
    /// The sliding period, closed: a restart exactly `period` after an
    /// earlier one still counts it (as Erlang/OTP's `now - t =< period`).
    pub period: Duration,
}

impl Intensity {
    /// Check the limit.
    pub fn validate(&self, which: &'static str) -> Result<(), RecoveryConfigError> {
        if self.max_restarts == 0 {
            return Err(RecoveryConfigError::Zero { which });
        }
        if self.max_restarts > MAX_INTENSITY_RESTARTS {
            return Err(RecoveryConfigError::TooLarge {
                which,
                value: u64::from(self.max_restarts),
                max: u64::from(MAX_INTENSITY_RESTARTS),
            });
        }
        if self.period.is_zero() {
            return Err(RecoveryConfigError::ZeroInterval { which });
        }
        Ok(())
    }
}

/// The restarts of one instance or service, within one [`Intensity`].
#[derive(Clone, Debug, Default)]
pub(crate) struct IntensityWindow {
    /// Instants of the most recent restarts, oldest first; at most
    /// `max_restarts` long.
    restarts: VecDeque<Instant>,
}

impl IntensityWindow {
    /// Whether one more restart at `now` stays within `limit`.
    pub(crate) fn allows(&self, limit: Intensity, now: Instant) -> bool {
        let max = limit.max_restarts as usize;
        if self.restarts.len() < max {
            return true;
        }
        // The window is full: the oldest of the last `max` restarts must have
        // left the period, which is closed (OTP keeps `now - t =< period`).
        let oldest = self.restarts[self.restarts.len() - max];
        now.saturating_duration_since(oldest) > limit.period
    }

    /// Record a restart at `now`.
    pub(crate) fn record(&mut self, limit: Intensity, now: Instant) {
        let max = limit.max_restarts as usize;
        debug_assert!(max >= 1);
        while self.restarts.len() >= max {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        assert!(self.restarts.len() <= MAX_INTENSITY_RESTARTS as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_n_in_period_then_refuses_until_the_oldest_leaves() {
        let limit = Intensity { max_restarts: 3, period: Duration::from_secs(60) };
        let mut w = IntensityWindow::default();
        for t in [0, 10, 20] {
            assert!(w.allows(limit, Instant::from_secs(t)));
            w.record(limit, Instant::from_secs(t));
        }
        assert!(!w.allows(limit, Instant::from_secs(30)));
        assert!(!w.allows(limit, Instant::from_secs(59)));
        assert!(!w.allows(limit, Instant::from_secs(60)), "the period is closed");
        assert!(w.allows(limit, Instant::from_secs(61)));
        w.record(limit, Instant::from_secs(61));
        assert!(!w.allows(limit, Instant::from_secs(70)), "10 s, 20 s and 61 s are within 60 s of 70 s");
        assert!(w.allows(limit, Instant::from_nanos(Instant::from_secs(70).as_nanos() + 1)));
    }

    /// OTP's `supervisor:add_restart/3` keeps the restarts `R` with
    /// `R >= Now - Period` and terminates when more than `MaxR` remain
    /// (counting the new one): a restart exactly `Period` after the first
    /// still counts it; one nanosecond later it does not.
    #[test]
    fn otp_counts_a_restart_exactly_period_after_the_first() {
        let limit = Intensity { max_restarts: 1, period: Duration::from_secs(5) };
        let mut w = IntensityWindow::default();
        w.record(limit, Instant::from_secs(100));
        let exactly = Instant::from_secs(105);
        assert!(!w.allows(limit, exactly), "105 - 100 =< 5: two restarts in the period, one too many");
        let just_after = Instant::from_nanos(exactly.as_nanos() + 1);
        assert!(w.allows(limit, just_after), "the first has left the period");
        // The same with several: restarts at 0, 1, 2 s, limit 3 in 10 s.
        let limit = Intensity { max_restarts: 3, period: Duration::from_secs(10) };
        let mut w = IntensityWindow::default();
        for t in [0, 1, 2] {
            w.record(limit, Instant::from_secs(t));
        }
        assert!(!w.allows(limit, Instant::from_secs(10)), "0 s is still in [0, 10]");
        assert!(w.allows(limit, Instant::from_nanos(Instant::from_secs(10).as_nanos() + 1)));
    }
}
