//! Peak-EWMA latency: quick to believe bad news, slow to believe good news.
//!
//! Finagle's and Linkerd's estimator, clock-free (time is an argument, as in
//! quinn's `RttEstimator`, unlike tower's `PeakEwma`, which reads the clock):
//!
//! - a sample above the estimate replaces it at once (the *peak*): a
//!   slowing endpoint loses traffic immediately;
//! - a sample below it is blended in with weight `1 − e^(−Δt/τ)`, Δt the
//!   time since the previous sample: the estimate forgets old samples with
//!   time constant τ, not per request, so a busy endpoint and a quiet one
//!   forget at the same speed;
//! - a *read* at `now` decays the estimate toward zero by `e^(−Δt/τ)`
//!   without changing it (Finagle reads by observing a zero sample): an
//!   endpoint that got no traffic after a spike looks cheaper over time and
//!   is eventually tried again, instead of being shunned forever.
//!
//! `exp` is `libm`'s, not std's (which calls the platform's C library and
//! may differ in the last bit): picks depend on these estimates, and a seed
//! must replay bit for bit on any machine.

use crate::time::{Duration, Instant};

/// A peak-EWMA latency estimate, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct PeakEwma {
    estimate_ns: f64,
    stamp: Instant,
    sampled: bool,
}

impl PeakEwma {
    pub(super) const fn new() -> Self {
        PeakEwma { estimate_ns: 0.0, stamp: Instant::ZERO, sampled: false }
    }

    /// Fold in a latency sample taken at `now`.
    pub(super) fn observe(&mut self, now: Instant, rtt: Duration, decay_ns: f64) {
        let rtt_ns = rtt.as_nanos() as f64;
        if !self.sampled || rtt_ns >= self.estimate_ns {
            self.estimate_ns = rtt_ns;
        } else {
            let elapsed_ns = now.saturating_duration_since(self.stamp).as_nanos() as f64;
            let w = libm::exp(-elapsed_ns / decay_ns);
            self.estimate_ns = self.estimate_ns * w + rtt_ns * (1.0 - w);
        }
        self.sampled = true;
        self.stamp = self.stamp.max(now);
    }

    /// The estimate at `now`: `default_ns` before any sample, else the last
    /// estimate decayed toward zero by the time since.
    #[inline]
    pub(super) fn read(&self, now: Instant, default_ns: f64, decay_ns: f64) -> f64 {
        self.read_or(now, || default_ns, decay_ns)
    }

    /// [`read`](Self::read) with the default computed only when needed (it
    /// may cost an `exp`: the common, sampled case must not pay for it).
    #[inline]
    pub(super) fn read_or(&self, now: Instant, default_ns: impl FnOnce() -> f64, decay_ns: f64) -> f64 {
        if !self.sampled {
            return default_ns();
        }
        let elapsed = now.as_nanos().saturating_sub(self.stamp.as_nanos());
        if elapsed == 0 {
            return self.estimate_ns;
        }
        self.estimate_ns * libm::exp(-(elapsed as f64) / decay_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAU: f64 = 10e9;

    #[test]
    fn peaks_jump_up_and_valleys_blend_in_with_time() {
        let mut e = PeakEwma::new();
        assert_eq!(e.read(Instant::ZERO, 30e6, TAU), 30e6, "default before any sample");
        e.observe(Instant::ZERO, Duration::from_millis(10), TAU);
        e.observe(Instant::from_millis(1), Duration::from_millis(100), TAU);
        assert_eq!(e.read(Instant::from_millis(1), 0.0, TAU), 100e6, "a slower sample is believed at once");
        // A fast sample one τ later moves the estimate 1 − 1/e of the way.
        e.observe(Instant::from_millis(10_001), Duration::from_millis(10), TAU);
        let expected = 100e6 / core::f64::consts::E + 10e6 * (1.0 - 1.0 / core::f64::consts::E);
        let got = e.read(Instant::from_millis(10_001), 0.0, TAU);
        assert!((got - expected).abs() < 1.0, "{got} vs {expected}");
    }

    #[test]
    fn reads_decay_toward_zero_without_changing_the_estimate() {
        let mut e = PeakEwma::new();
        e.observe(Instant::ZERO, Duration::from_millis(100), TAU);
        let later = e.read(Instant::from_secs(10), 0.0, TAU);
        assert!((later - 100e6 / core::f64::consts::E).abs() < 1.0);
        assert_eq!(e.read(Instant::ZERO, 0.0, TAU), 100e6, "reading did not mutate");
    }
}
