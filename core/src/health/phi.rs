//! The phi-accrual failure detector (Hayashibara et al., 2004), as Akka
//! tunes it.
//!
//! A fixed timeout is either too eager on a jittery network or too slow on a
//! steady one. Phi accrual learns the distribution of heartbeat inter-arrival
//! times and reports, instead of a yes/no, a suspicion level
//! `phi = -log10(P(a heartbeat arrives later than now))`: phi 1 means a 10 %
//! chance the instance is still alive and merely late, phi 8 (the default
//! threshold) one in 10⁸. The health monitor uses it on heartbeat checks to
//! suspect a silent instance *earlier* than its TTL when its heartbeats have
//! been regular; the TTL stays the upper bound.
//!
//! # Determinism
//!
//! The window sums are kept as exact integers (nanoseconds, `u128`), so the
//! mean and variance depend only on the samples, not on the order of
//! floating-point additions. The transcendental functions come from `libm`,
//! a pure-Rust port of musl's maths: `f64::exp`/`ln` call the platform's C
//! library, whose last bit may differ between platforms, and a seed must
//! replay bit for bit on any machine.
//!
//! # Model
//!
//! As Akka's `PhiAccrualFailureDetector`: the normal distribution's tail is
//! approximated with the logistic function
//! `cdf(y) ≈ 1 / (1 + exp(-y(1.5976 + 0.070566 y²)))`, where
//! `y = (elapsed - (mean + acceptable_heartbeat_pause)) / max(stddev, min_std_deviation)`.
//! The window starts with two synthetic samples around
//! `first_heartbeat_estimate` (± a quarter of it), and an interval that ends
//! a suspicion (the first beat after phi crossed the threshold) is not
//! recorded, so one long pause does not teach the detector to tolerate long
//! pauses.
//!
//! # Cost
//!
//! `heartbeat` is O(1) (a ring of at most `max_sample_size` intervals, with
//! running sums); `phi` is O(1); `suspect_at` is O(1): it inverts the
//! formula in closed form (Cardano) instead of searching.

use std::collections::VecDeque;

use super::HealthConfigError;
use crate::time::{Duration, Instant};

/// The largest inter-arrival interval recorded; longer ones are clamped.
/// Keeps the exact `u128` sums far from overflow: 1 000 samples of one hour
/// squared is about 1.3·10³¹, against `u128::MAX` ≈ 3.4·10³⁸.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The largest `max_sample_size` accepted.
pub const MAX_SAMPLE_SIZE: u16 = 10_000;

/// The largest threshold accepted.
///
/// Not an underflow limit (an `f64` holds `10^-threshold` down to about
/// `10^-308`, subnormals to `5·10^-324`). The arithmetic that does bound
/// the threshold is [`PhiAccrual::suspect_at`]'s closed form, which takes
/// `p = 10^-threshold` and `ln((1 - p) / p)`: past `threshold ≈ 308.25`,
/// `1 / p` overflows to infinity, the cubic's root is NaN and the closed
/// form no longer finds the crossing; and [`PhiAccrual::phi`]'s
/// `exp(-u)` turns subnormal (losing precision) once phi passes ≈ 307.65,
/// and zero (phi = ∞) past ≈ 323.3. Up to about 307 both agree, which
/// `threshold_bound_leaves_a_margin_below_where_the_arithmetic_fails`
/// checks. 100 is kept well inside that: no useful threshold comes near it
/// (Akka suggests 8 to 12; at 100 a detector of steady 1 s heartbeats with
/// the 100 ms deviation floor already waits mean + 14 σ, about 2.4 s, and
/// `10^-100` is no longer a probability the logistic approximation of the
/// normal tail models), and a value in the hundreds is a typo for a small
/// one far more often than an intent.
pub const MAX_PHI_THRESHOLD: f64 = 100.0;

/// Settings of a [`PhiAccrual`] detector. Defaults are Akka's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhiConfig {
    /// Suspicion level at or above which the instance is suspected (Akka: 8).
    pub threshold: f64,
    /// Inter-arrival samples kept (Akka: 1000). Bounds the window's memory.
    pub max_sample_size: u16,
    /// Floor of the standard deviation (Akka: 100 ms): a perfectly regular
    /// heartbeat would otherwise make phi explode at the first jitter.
    pub min_std_deviation: Duration,
    /// Pause tolerated on top of the mean interval (Akka's class default:
    /// 0; its cluster configuration uses 3 s).
    pub acceptable_heartbeat_pause: Duration,
    /// Expected interval before any is measured (Akka: 1 s).
    pub first_heartbeat_estimate: Duration,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig {
            threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation: Duration::from_millis(100),
            acceptable_heartbeat_pause: Duration::ZERO,
            first_heartbeat_estimate: Duration::from_secs(1),
        }
    }
}

impl PhiConfig {
    /// Check the settings make sense.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold <= MAX_PHI_THRESHOLD) {
            return Err(HealthConfigError::InvalidPhi { which: "threshold (must be in (0, 100])" });
        }
        if self.max_sample_size == 0 || self.max_sample_size > MAX_SAMPLE_SIZE {
            return Err(HealthConfigError::InvalidPhi { which: "max_sample_size (must be in 1..=10000)" });
        }
        if self.min_std_deviation.is_zero() {
            return Err(HealthConfigError::ZeroTimeout { which: "phi.min_std_deviation" });
        }
        if self.first_heartbeat_estimate.is_zero() || self.first_heartbeat_estimate > MAX_INTERVAL {
            return Err(HealthConfigError::InvalidPhi {
                which: "first_heartbeat_estimate (must be in (0, 1h])",
            });
        }
        Ok(())
    }
}

/// A phi-accrual detector for one heartbeat stream.
#[derive(Clone, Debug)]
pub struct PhiAccrual {
    config: PhiConfig,
    /// Inter-arrival times, oldest first; at most `max_sample_size`.
    intervals_ns: VecDeque<u64>,
    sum_ns: u128,
    sum_sq_ns2: u128,
    last: Option<Instant>,
}

impl PhiAccrual {
    /// A detector that has heard nothing yet.
    pub fn new(config: PhiConfig) -> Result<Self, HealthConfigError> {
        config.validate()?;
        let mut phi = PhiAccrual {
            config,
            intervals_ns: VecDeque::with_capacity(usize::from(config.max_sample_size).min(64)),
            sum_ns: 0,
            sum_sq_ns2: 0,
            last: None,
        };
        let estimate_ns = duration_ns(config.first_heartbeat_estimate);
        let spread_ns = estimate_ns / 4;
        phi.record(estimate_ns - spread_ns);
        phi.record(estimate_ns + spread_ns);
        Ok(phi)
    }

    /// The settings.
    pub fn config(&self) -> &PhiConfig {
        &self.config
    }

    /// When the last heartbeat arrived, if any has.
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.last
    }

    /// Samples in the window (including the two synthetic ones until they
    /// are pushed out).
    pub fn samples(&self) -> usize {
        self.intervals_ns.len()
    }

    /// A heartbeat arrived at `now`.
    pub fn heartbeat(&mut self, now: Instant) {
        if let Some(last) = self.last {
            // The first beat after a suspicion ends an abnormal pause: do not
            // learn from it (as Akka).
            if self.is_available(now) {
                self.record(duration_ns(now - last));
            }
        }
        self.last = Some(now);
    }

    /// The suspicion level at `now`: 0 before the first heartbeat, then
    /// growing with silence. May be `f64::INFINITY` after a long silence.
    pub fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last else { return 0.0 };
        let elapsed_ms = nanos_to_ms(duration_ns(now - last));
        let (mean_ms, std_ms) = self.mean_std_ms();
        phi_of(elapsed_ms, mean_ms, std_ms)
    }

    /// Whether phi at `now` is below the threshold.
    pub fn is_available(&self, now: Instant) -> bool {
        self.phi(now) < self.config.threshold
    }

    /// The earliest instant at which phi reaches the threshold if no
    /// heartbeat arrives, or `None` before the first heartbeat.
    pub fn suspect_at(&self) -> Option<Instant> {
        let last = self.last?;
        let (mean_ms, std_ms) = self.mean_std_ms();
        let elapsed_ms = mean_ms + crossing_y(self.config.threshold) * std_ms;
        let mut at = last + Duration::from_nanos(ms_to_nanos_ceil(elapsed_ms));
        // The closed form and `phi` round differently; step forward until
        // `phi` agrees, so "suspected at `suspect_at`" always holds. Bounded:
        // the step doubles, so 64 steps cover the whole timeline.
        let mut step_ns = 1_000u64;
        for _ in 0..64 {
            if !self.is_available(at) || at == Instant::MAX {
                break;
            }
            at += Duration::from_nanos(step_ns);
            step_ns = step_ns.saturating_mul(2);
        }
        Some(at)
    }

    /// Mean of the window plus the acceptable pause, and the standard
    /// deviation floored at `min_std_deviation`, both in milliseconds.
    fn mean_std_ms(&self) -> (f64, f64) {
        let n = self.intervals_ns.len() as u128;
        debug_assert!(n >= 1, "the window always holds at least one sample");
        let n = n.max(1);
        // Exact: n·Σx² - (Σx)² is the population variance times n², never
        // negative (Cauchy–Schwarz), and fits u128 thanks to MAX_INTERVAL.
        let var_n2 = n * self.sum_sq_ns2 - self.sum_ns * self.sum_ns;
        let mean_ns = self.sum_ns as f64 / n as f64;
        let std_ns = libm::sqrt(var_n2 as f64) / n as f64;
        let mean_ms = nanos_to_ms_f(mean_ns) + duration_ms(self.config.acceptable_heartbeat_pause);
        let std_ms = nanos_to_ms_f(std_ns).max(duration_ms(self.config.min_std_deviation));
        (mean_ms, std_ms)
    }

    fn record(&mut self, interval_ns: u64) {
        let interval_ns = interval_ns.min(duration_ns(MAX_INTERVAL));
        if self.intervals_ns.len() >= usize::from(self.config.max_sample_size) {
            if let Some(old) = self.intervals_ns.pop_front() {
                self.sum_ns -= u128::from(old);
                self.sum_sq_ns2 -= u128::from(old) * u128::from(old);
            }
        }
        self.intervals_ns.push_back(interval_ns);
        self.sum_ns += u128::from(interval_ns);
        self.sum_sq_ns2 += u128::from(interval_ns) * u128::from(interval_ns);
    }
}

/// The `y` (deviations past the mean) at which phi reaches `threshold`, in
/// closed form. Finite for thresholds up to about 308 (see
/// [`MAX_PHI_THRESHOLD`]).
fn crossing_y(threshold: f64) -> f64 {
    // phi >= T  <=>  e/(1+e) <= p, p = 10^-T, e = exp(-u)
    //           <=>  u >= ln((1-p)/p), u = y(a + b y²): strictly increasing in y.
    let p = libm::pow(10.0, -threshold);
    let u_min = libm::log((1.0 - p) / p);
    // Depressed cubic y³ + c y - d = 0, one real root (c > 0): Cardano.
    let c = 1.5976 / 0.070566;
    let d = u_min / 0.070566;
    let disc = libm::sqrt(d * d / 4.0 + c * c * c / 27.0);
    libm::cbrt(d / 2.0 + disc) + libm::cbrt(d / 2.0 - disc)
}

/// Akka's formula, branch for branch (the two branches are equal in exact
/// arithmetic; each is the numerically stable one on its side).
fn phi_of(elapsed_ms: f64, mean_ms: f64, std_ms: f64) -> f64 {
    let y = (elapsed_ms - mean_ms) / std_ms;
    let e = libm::exp(-y * (1.5976 + 0.070566 * y * y));
    if elapsed_ms > mean_ms { -libm::log10(e / (1.0 + e)) } else { -libm::log10(1.0 - 1.0 / (1.0 + e)) }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn duration_ms(d: Duration) -> f64 {
    nanos_to_ms(duration_ns(d))
}

fn nanos_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn nanos_to_ms_f(ns: f64) -> f64 {
    ns / 1e6
}

fn ms_to_nanos_ceil(ms: f64) -> u64 {
    let ns = libm::ceil(ms * 1e6);
    if ns.is_nan() || ns <= 0.0 {
        0
    } else if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(interval_ms: u64, beats: u64) -> PhiAccrual {
        let mut d = PhiAccrual::new(PhiConfig::default()).expect("defaults are valid");
        for i in 0..beats {
            d.heartbeat(Instant::from_millis(i * interval_ms));
        }
        d
    }

    #[test]
    fn phi_is_zero_before_the_first_heartbeat() {
        let d = PhiAccrual::new(PhiConfig::default()).expect("valid");
        assert_eq!(d.phi(Instant::from_secs(100)), 0.0);
        assert_eq!(d.suspect_at(), None);
    }

    #[test]
    fn phi_rises_with_silence_and_crosses_the_threshold() {
        let d = steady(1000, 20);
        let last = Instant::from_millis(19_000);
        let mut previous = d.phi(last);
        assert!(previous < 1.0, "right after a beat phi is low: {previous}");
        for ms in (100..5000).step_by(100) {
            let now = last + Duration::from_millis(ms);
            let phi = d.phi(now);
            assert!(phi >= previous, "phi never decreases with silence ({phi} < {previous} at +{ms}ms)");
            previous = phi;
        }
        assert!(d.is_available(last + Duration::from_millis(1100)));
        assert!(!d.is_available(last + Duration::from_secs(3)));
        let at = d.suspect_at().expect("heard from");
        assert!(d.phi(at) >= 8.0);
        assert!(d.phi(Instant::from_nanos(at.as_nanos() - 2_000)) < 8.0, "suspect_at is the crossing");
        // Regular 1 s beats with the 100 ms floor: the crossing is near
        // mean + 5.4 σ ≈ 1.54 s after the last beat.
        let after = at - last;
        assert!(after > Duration::from_millis(1400) && after < Duration::from_millis(1700), "{after:?}");
    }

    #[test]
    fn jittery_heartbeats_widen_the_tolerance() {
        let regular = steady(1000, 50);
        let mut jittery = PhiAccrual::new(PhiConfig::default()).expect("valid");
        let mut t = 0u64;
        for i in 0..50u64 {
            t += if i % 2 == 0 { 600 } else { 1400 };
            jittery.heartbeat(Instant::from_millis(t));
        }
        let r = regular.suspect_at().expect("heard") - regular.last_heartbeat().expect("heard");
        let j = jittery.suspect_at().expect("heard") - jittery.last_heartbeat().expect("heard");
        assert!(j > r, "jitter makes the detector more patient: {j:?} <= {r:?}");
    }

    #[test]
    fn a_long_pause_is_not_learned() {
        let mut d = steady(1000, 10);
        let before = d.samples();
        d.heartbeat(Instant::from_secs(60));
        assert_eq!(d.samples(), before, "the beat ending a suspicion is not a sample");
        d.heartbeat(Instant::from_secs(61));
        assert_eq!(d.samples(), before + 1);
    }

    #[test]
    fn window_is_bounded() {
        let config = PhiConfig { max_sample_size: 5, ..PhiConfig::default() };
        let mut d = PhiAccrual::new(config).expect("valid");
        for i in 0..100 {
            d.heartbeat(Instant::from_millis(i * 1000));
        }
        assert_eq!(d.samples(), 5);
    }

    #[test]
    fn acceptable_pause_delays_suspicion() {
        let config = PhiConfig { acceptable_heartbeat_pause: Duration::from_secs(3), ..PhiConfig::default() };
        let mut d = PhiAccrual::new(config).expect("valid");
        for i in 0..20 {
            d.heartbeat(Instant::from_secs(i));
        }
        let after = d.suspect_at().expect("heard") - Instant::from_secs(19);
        assert!(after > Duration::from_secs(4), "{after:?}");
    }

    /// Hayashibara et al.'s phi is `-log10` of a tail probability; what
    /// bounds the threshold is where `f64` stops representing the pieces of
    /// the computation, not where `10^-threshold` underflows: the closed
    /// form of `suspect_at` finds the crossing `phi` computes up to about
    /// 307, and fails (NaN) past 308.25, where `1 / 10^-threshold`
    /// overflows. The accepted bound, 100, is well inside.
    #[test]
    fn threshold_bound_leaves_a_margin_below_where_the_arithmetic_fails() {
        let base = steady(1000, 20);
        let last = base.last_heartbeat().expect("heard");
        for threshold in [8.0, MAX_PHI_THRESHOLD, 200.0, 300.0, 307.0] {
            let mut d = base.clone();
            d.config.threshold = threshold;
            assert!(crossing_y(threshold).is_finite(), "{threshold}");
            let at = d.suspect_at().expect("heard");
            assert!(at - last < Duration::from_secs(10), "{threshold}: {:?}", at - last);
            assert!(d.phi(at) >= threshold, "{threshold}: suspected at suspect_at");
            let before = Instant::from_nanos(at.as_nanos() - 2_000);
            assert!(d.phi(before) < threshold, "{threshold}: not 2 µs before: suspect_at is the crossing");
        }
        assert!(crossing_y(308.0).is_finite());
        assert!(crossing_y(309.0).is_nan(), "1 / 10^-309 overflows: no closed form past 308.25");
        // phi itself still rises, finite up to about 323, then infinite.
        assert!(base.phi(last + Duration::from_secs(10)).is_infinite());
        assert!(PhiConfig { threshold: MAX_PHI_THRESHOLD, ..PhiConfig::default() }.validate().is_ok());
    }

    #[test]
    fn bad_settings_are_rejected() {
        for threshold in [0.0, -1.0, f64::NAN, f64::INFINITY, 1000.0] {
            let config = PhiConfig { threshold, ..PhiConfig::default() };
            assert!(matches!(PhiAccrual::new(config), Err(HealthConfigError::InvalidPhi { .. })));
        }
        let config = PhiConfig { max_sample_size: 0, ..PhiConfig::default() };
        assert!(PhiAccrual::new(config).is_err());
        let config = PhiConfig { min_std_deviation: Duration::ZERO, ..PhiConfig::default() };
        assert!(PhiAccrual::new(config).is_err());
    }
}
