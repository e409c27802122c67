//! Outlier ejection: take an endpoint that fails more than its peers out of
//! rotation for a while, longer each time (Envoy's outlier detection).
//!
//! Two detectors feed it:
//!
//! - *consecutive errors*: `consecutive_errors` failures in a row eject at
//!   once (fast, for an endpoint that fails everything);
//! - *success rate*: every `interval`, among endpoints with at least
//!   `request_volume` requests in the interval, and only if there are at
//!   least `minimum_hosts` of them, those whose success rate is below
//!   `mean − k·stdev` are ejected, worst first (slow, for an endpoint that
//!   fails more than the others; a service-wide failure moves the mean, not
//!   the outliers, and ejects nobody).
//!
//! An ejection lasts `base_ejection_time × n`, `n` the endpoint's ejection
//! multiplier, capped at `max_ejection_time`. The multiplier rises by one
//! at each ejection while `n × base < max + base`, so it stops at
//! `⌈max / base⌉ + 1` (11 with the defaults) instead of growing while the
//! time is capped: Envoy's rule, which keeps the way back short for an
//! endpoint that was ejected many times. At the end of each interval in
//! which an endpoint stayed in rotation, its multiplier drops by one
//! (Envoy's decay), so an endpoint that failed once long ago starts again
//! from the base time.
//!
//! Envoy returns an endpoint only at the interval tick after its time is
//! up, vigil at the exact instant; the decay is counted as Envoy counts it
//! all the same: not at the end of the interval in which the endpoint was
//! ejected or came back (`ejected_this_interval`), which is the tick at
//! which Envoy would have returned it, but at each end after. When an
//! endpoint comes back, its consecutive-error count restarts from zero (as
//! Envoy's un-ejection resets its consecutive 5xx and gateway-failure
//! counters), so failures of requests still in flight, or of panic-mode
//! picks, while it was out do not re-eject it after very few new ones.
//!
//! An ejection is allowed while `100 × (ejected + 1) ≤
//! max_ejection_percent × endpoints` (Envoy's cap: it rounds down, to zero
//! endpoints for small sets), or, with `always_eject_one_host`, when none
//! is ejected. An ejection beyond the cap is skipped and counted
//! (`ejections_skipped`).

use crate::time::{Duration, Instant};

/// Why an endpoint was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EjectionReason {
    /// `consecutive_errors` failures in a row.
    ConsecutiveErrors,
    /// Success rate below `mean − k·stdev` of its peers.
    SuccessRate,
}

/// Outlier bookkeeping of one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct OutlierState {
    pub(super) consecutive_errors: u32,
    /// Results in the current interval.
    pub(super) requests: u32,
    /// Successes in the current interval.
    pub(super) successes: u32,
    /// Ejected until then, if ejected.
    pub(super) ejected_until: Option<Instant>,
    /// The ejection multiplier: how many times ejected, less decay.
    pub(super) ejections: u32,
    /// Ejected at some point during the current interval.
    pub(super) ejected_this_interval: bool,
}

impl OutlierState {
    pub(super) fn is_ejected(&self) -> bool {
        self.ejected_until.is_some()
    }

    /// Start an ejection: raise the multiplier as Envoy does (by one while
    /// `multiplier × base < max + base`) and return how long it lasts,
    /// `min(base × multiplier, max)`.
    pub(super) fn start_ejection(&mut self, base: Duration, max: Duration) -> Duration {
        if u128::from(self.ejections) * base.as_nanos() < max.as_nanos() + base.as_nanos() {
            self.ejections = self.ejections.saturating_add(1);
        }
        base.checked_mul(self.ejections).map_or(max, |t| t.min(max))
    }

    /// Back from ejection: consecutive failures seen while out restart from
    /// zero (Envoy's un-ejection resets its consecutive-error counters).
    pub(super) fn end_ejection(&mut self) {
        self.ejected_until = None;
        self.consecutive_errors = 0;
    }

    /// Count a result; returns whether the consecutive-error threshold was
    /// just reached (the counter then restarts).
    pub(super) fn record(&mut self, success: bool, threshold: Option<u32>) -> bool {
        self.requests = self.requests.saturating_add(1);
        if success {
            self.successes = self.successes.saturating_add(1);
            self.consecutive_errors = 0;
            return false;
        }
        self.consecutive_errors = self.consecutive_errors.saturating_add(1);
        match threshold {
            Some(t) if self.consecutive_errors >= t => {
                self.consecutive_errors = 0;
                true
            }
            _ => false,
        }
    }

    /// Success rate in the current interval, in [0, 1].
    pub(super) fn success_rate(&self) -> f64 {
        f64::from(self.successes) / f64::from(self.requests.max(1))
    }
}

/// How many endpoints of `total` may be ejected at once: Envoy allows an
/// ejection while `100 × (ejected + 1) ≤ percent × total`, i.e. while fewer
/// than `⌊total × percent / 100⌋` are out, or, with
/// `always_eject_one_host`, while none is.
pub(super) fn max_ejected(total: usize, max_ejection_percent: u32, always_eject_one_host: bool) -> usize {
    let by_percent = total * max_ejection_percent as usize / 100;
    if always_eject_one_host && total > 0 { by_percent.max(1) } else { by_percent }
}

/// The success-rate threshold `mean − k·stdev` over `rates`, or `None`
/// when there are fewer than `minimum_hosts` of them.
pub(super) fn success_rate_threshold(
    rates: impl Iterator<Item = f64> + Clone,
    minimum_hosts: u32,
    k: f64,
) -> Option<f64> {
    let count = rates.clone().count();
    if count == 0 || count < minimum_hosts as usize {
        return None;
    }
    let n = count as f64;
    let mean = rates.clone().sum::<f64>() / n;
    let variance = rates.map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    Some(mean - k * variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Envoy's cap, `100 × (ejected + 1) ≤ max_ejection_percent × hosts`,
    /// rounds down: fewer than 10 hosts at 10 % eject none unless
    /// `always_eject_one_host`.
    #[test]
    fn envoy_max_ejection_percent_rounds_down_unless_always_eject_one_host() {
        assert_eq!(max_ejected(3, 10, false), 0, "3 hosts at 10 %: none");
        assert_eq!(max_ejected(9, 10, false), 0);
        assert_eq!(max_ejected(10, 10, false), 1);
        assert_eq!(max_ejected(19, 10, false), 1);
        assert_eq!(max_ejected(20, 10, false), 2);
        assert_eq!(max_ejected(4, 50, false), 2);
        assert_eq!(max_ejected(3, 100, false), 3);
        assert_eq!(max_ejected(0, 10, false), 0);
        // always_eject_one_host: the first ejection regardless of the
        // percentage, even 0; the further ones by the percentage.
        assert_eq!(max_ejected(3, 10, true), 1);
        assert_eq!(max_ejected(3, 0, true), 1);
        assert_eq!(max_ejected(20, 10, true), 2);
        assert_eq!(max_ejected(0, 10, true), 0);
        // The same as Envoy's test, ejection by ejection.
        for total in 1..=40usize {
            for percent in [0u32, 1, 10, 33, 50, 100] {
                for always in [false, true] {
                    let mut ejected = 0usize;
                    while 100 * (ejected + 1) <= percent as usize * total || (always && ejected == 0) {
                        ejected += 1;
                    }
                    assert_eq!(max_ejected(total, percent, always), ejected, "{total} {percent} {always}");
                }
            }
        }
    }

    /// Envoy's `ejectHost`: the multiplier rises while `backoff × base <
    /// max + base`, so with base 30 s and max 300 s it stops at 11 = max /
    /// base + 1, and the time never exceeds the max.
    #[test]
    fn envoy_caps_the_ejection_multiplier_at_max_over_base_plus_one() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(300));
        let mut s = OutlierState::default();
        let times: Vec<u64> = (0..15).map(|_| s.start_ejection(base, max).as_secs()).collect();
        assert_eq!(times, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300, 300, 300, 300]);
        assert_eq!(s.ejections, 11);
        // Not a divisor: base 40 s, max 300 s: 9 = ⌈300 / 40⌉ + 1.
        let mut s = OutlierState::default();
        for _ in 0..20 {
            assert!(s.start_ejection(Duration::from_secs(40), max) <= max);
        }
        assert_eq!(s.ejections, 9);
        // max = base: 2, and every ejection lasts the base time.
        let mut s = OutlierState::default();
        for _ in 0..5 {
            assert_eq!(s.start_ejection(base, base), base);
        }
        assert_eq!(s.ejections, 2);
    }

    #[test]
    fn threshold_needs_enough_hosts() {
        assert_eq!(success_rate_threshold([1.0; 4].into_iter(), 5, 1.9), None);
        let t = success_rate_threshold([1.0, 1.0, 1.0, 1.0, 0.5].into_iter(), 5, 1.9).expect("5 hosts");
        // mean 0.9, stdev 0.2: threshold 0.52, so 0.5 is an outlier.
        assert!((t - 0.52).abs() < 1e-9, "{t}");
    }

    #[test]
    fn consecutive_errors_trigger_once_per_run() {
        let mut s = OutlierState::default();
        assert!(!s.record(false, Some(3)));
        assert!(!s.record(false, Some(3)));
        assert!(s.record(false, Some(3)));
        assert!(!s.record(false, Some(3)), "the count restarts");
        assert!(!s.record(true, Some(3)));
        assert_eq!(s.consecutive_errors, 0);
        assert_eq!((s.requests, s.successes), (5, 1));
    }
}
