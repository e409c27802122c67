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
//! count including this one, capped at `max_ejection_time`. Each interval
//! in which an endpoint is neither ejected nor was ejected, its count drops
//! by one (Envoy's multiplier decay), so an endpoint that failed once long
//! ago starts again from the base time.
//!
//! At most `max_ejection_percent` of the endpoints are ejected at once, and
//! at least one when the percentage is above zero; an ejection beyond the
//! cap is skipped and counted (`ejections_skipped`).

use crate::time::Instant;

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

/// How many endpoints of `total` may be ejected at once.
pub(super) fn max_ejected(total: usize, max_ejection_percent: u32) -> usize {
    if max_ejection_percent == 0 || total == 0 {
        return 0;
    }
    (total * max_ejection_percent as usize / 100).max(1)
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

    #[test]
    fn at_least_one_may_be_ejected_when_enabled() {
        assert_eq!(max_ejected(3, 10), 1);
        assert_eq!(max_ejected(100, 10), 10);
        assert_eq!(max_ejected(19, 10), 1);
        assert_eq!(max_ejected(3, 0), 0);
        assert_eq!(max_ejected(0, 10), 0);
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
