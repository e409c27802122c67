//! Exponential backoff with full jitter between recovery attempts.
//!
//! The `n`-th delay (from 0) is drawn uniformly from
//! `[0, min(cap, base · 2^n)]` ("full jitter", from AWS's *Exponential
//! Backoff and Jitter*): a fleet whose instances crashed together does not
//! restart in lockstep. The counter resets when an instance has been quiet
//! (no failure) for `reset_after`.
//!
//! The default shape is Kubernetes' CrashLoopBackOff: 10 s doubling to
//! 300 s, reset after 10 minutes of running cleanly. Kubernetes' cannot be
//! tuned and is not jittered; vigil's is both. The first attempt after a
//! quiet period is never delayed: recovery must start within seconds of
//! detection.

use rand::RngExt as _;

use crate::rng::Rng;
use crate::time::Duration;

use super::RecoveryConfigError;

/// Backoff settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BackoffConfig {
    /// The ceiling of the first delay; each later ceiling doubles.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Quiet time after which an instance's attempt counter resets.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    /// Kubernetes' CrashLoopBackOff shape: 10 s, doubling, capped at 300 s,
    /// reset after 10 minutes.
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackoffConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), RecoveryConfigError> {
        if self.base.is_zero() {
            return Err(RecoveryConfigError::ZeroInterval { which: "backoff.base" });
        }
        if self.reset_after.is_zero() {
            return Err(RecoveryConfigError::ZeroInterval { which: "backoff.reset_after" });
        }
        if self.cap < self.base {
            return Err(RecoveryConfigError::CapBelowBase { base: self.base, cap: self.cap });
        }
        Ok(())
    }

    /// The ceiling of the `n`-th delay: `min(cap, base · 2^n)`, without
    /// overflow for any `n`.
    #[must_use]
    pub fn ceiling(&self, n: u32) -> Duration {
        let base_ns = u64::try_from(self.base.as_nanos()).unwrap_or(u64::MAX);
        let cap_ns = u64::try_from(self.cap.as_nanos()).unwrap_or(u64::MAX);
        let scaled = if n >= 64 { u64::MAX } else { base_ns.saturating_mul(1_u64 << n) };
        Duration::from_nanos(scaled.min(cap_ns))
    }

    /// The `n`-th delay, drawn from `[0, ceiling(n)]` with `rng`.
    pub fn delay(&self, n: u32, rng: &mut Rng) -> Duration {
        let ceiling_ns = u64::try_from(self.ceiling(n).as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(rng.random_range(0..=ceiling_ns));
        debug_assert!(delay <= self.ceiling(n));
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Seed;
    use proptest::prelude::*;

    #[test]
    fn default_is_crash_loop_backoff_shape() {
        let b = BackoffConfig::default();
        assert_eq!(b.ceiling(0), Duration::from_secs(10));
        assert_eq!(b.ceiling(1), Duration::from_secs(20));
        assert_eq!(b.ceiling(4), Duration::from_secs(160));
        assert_eq!(b.ceiling(5), Duration::from_secs(300));
        assert_eq!(b.ceiling(200), Duration::from_secs(300));
    }

    proptest! {
        #[test]
        fn delay_is_within_bounds(n in 0_u32..100, base_ms in 1_u64..100_000, extra_ms in 0_u64..1_000_000, seed: u64) {
            let b = BackoffConfig {
                base: Duration::from_millis(base_ms),
                cap: Duration::from_millis(base_ms + extra_ms),
                reset_after: Duration::from_secs(1),
            };
            let mut rng = Seed(seed).rng();
            let d = b.delay(n, &mut rng);
            let exact = (u128::from(base_ms) * 1_000_000).saturating_mul(1_u128 << n.min(100));
            let bound = exact.min(b.cap.as_nanos());
            prop_assert!(d.as_nanos() <= bound);
            prop_assert!(b.ceiling(n) <= b.cap);
        }
    }
}
