//! Sliding windows over the most recent probe results: exact p99 latency
//! and failure share.
//!
//! Windows count *samples*, not time: "the last N probes" has the same
//! meaning whatever the probe interval, costs a fixed amount of memory, and
//! needs no timer to age samples out. Quantiles are exact over the window
//! (nearest rank over a sorted copy), not estimated: a window is small (at
//! most [`MAX_WINDOW_SAMPLES`]) and exactness keeps results independent of
//! the order samples arrived in.
//!
//! # Cost
//!
//! [`LatencyWindow::record`] is O(window) in the worst case (a `memmove` in
//! the sorted copy, a few hundred bytes for the usual windows); a quantile
//! query is O(1). [`OutcomeWindow::record`] and its queries are O(1).

use std::collections::VecDeque;

use crate::time::Duration;

/// The largest window accepted, in samples.
pub const MAX_WINDOW_SAMPLES: u16 = 4096;

/// The last `capacity` latencies, with an exact sorted copy for quantiles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyWindow {
    capacity: usize,
    /// Arrival order, oldest first: which sample leaves next.
    arrivals_ns: VecDeque<u64>,
    /// The same samples, ascending.
    sorted_ns: Vec<u64>,
}

impl LatencyWindow {
    /// An empty window of `capacity` samples (clamped to
    /// `1..=MAX_WINDOW_SAMPLES`).
    pub fn new(capacity: u16) -> Self {
        let capacity = usize::from(capacity.clamp(1, MAX_WINDOW_SAMPLES));
        LatencyWindow {
            capacity,
            arrivals_ns: VecDeque::with_capacity(capacity),
            sorted_ns: Vec::with_capacity(capacity),
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.arrivals_ns.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.arrivals_ns.is_empty()
    }

    /// Add a latency, evicting the oldest when full.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        if self.arrivals_ns.len() >= self.capacity {
            if let Some(old) = self.arrivals_ns.pop_front() {
                // Present by construction: every arrival is in the sorted copy.
                if let Ok(i) = self.sorted_ns.binary_search(&old) {
                    self.sorted_ns.remove(i);
                }
            }
        }
        self.arrivals_ns.push_back(ns);
        let i = self.sorted_ns.partition_point(|&x| x <= ns);
        self.sorted_ns.insert(i, ns);
        debug_assert_eq!(self.sorted_ns.len(), self.arrivals_ns.len());
    }

    /// The `permille`/1000 quantile by nearest rank (the smallest sample
    /// that at least that share of samples do not exceed), or `None` when
    /// empty. `permille` above 1000 is taken as 1000.
    pub fn quantile(&self, permille: u16) -> Option<Duration> {
        let n = self.sorted_ns.len();
        if n == 0 {
            return None;
        }
        let permille = usize::from(permille.min(1000));
        // rank = ceil(q·n), 1-based; at least 1.
        let rank = (permille * n).div_ceil(1000).max(1);
        self.sorted_ns.get(rank - 1).map(|&ns| Duration::from_nanos(ns))
    }

    /// The 99th percentile (nearest rank): with fewer than 100 samples this
    /// is the maximum.
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(990)
    }
}

/// The last `capacity` outcomes (pass or fail), with a running failure count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeWindow {
    capacity: usize,
    /// `true` for a failure, oldest first.
    failed: VecDeque<bool>,
    failures: usize,
}

impl OutcomeWindow {
    /// An empty window of `capacity` outcomes (clamped to
    /// `1..=MAX_WINDOW_SAMPLES`).
    pub fn new(capacity: u16) -> Self {
        let capacity = usize::from(capacity.clamp(1, MAX_WINDOW_SAMPLES));
        OutcomeWindow { capacity, failed: VecDeque::with_capacity(capacity), failures: 0 }
    }

    /// Outcomes held.
    pub fn len(&self) -> usize {
        self.failed.len()
    }

    /// Whether no outcome is held.
    pub fn is_empty(&self) -> bool {
        self.failed.is_empty()
    }

    /// Add an outcome, evicting the oldest when full.
    pub fn record(&mut self, failed: bool) {
        if self.failed.len() >= self.capacity && self.failed.pop_front() == Some(true) {
            self.failures -= 1;
        }
        self.failed.push_back(failed);
        self.failures += usize::from(failed);
    }

    /// Failures held.
    pub fn failures(&self) -> usize {
        self.failures
    }

    /// The failure share in thousandths, rounded down; 0 when empty.
    pub fn failed_permille(&self) -> u16 {
        match self.failed.len() {
            0 => 0,
            // ≤ 1000 since failures ≤ len.
            n => u16::try_from(self.failures * 1000 / n).unwrap_or(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let mut w = LatencyWindow::new(200);
        for v in 1..=200 {
            w.record(ms(v));
        }
        assert_eq!(w.p99(), Some(ms(198)));
        assert_eq!(w.quantile(500), Some(ms(100)));
        assert_eq!(w.quantile(0), Some(ms(1)));
        assert_eq!(w.quantile(1000), Some(ms(200)));
        let mut small = LatencyWindow::new(10);
        assert_eq!(small.p99(), None);
        small.record(ms(5));
        small.record(ms(50));
        assert_eq!(small.p99(), Some(ms(50)), "under 100 samples p99 is the maximum");
    }

    #[test]
    fn latency_window_forgets_the_oldest() {
        let mut w = LatencyWindow::new(3);
        for v in [900, 1, 2, 3] {
            w.record(ms(v));
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.p99(), Some(ms(3)), "the 900 ms outlier aged out");
    }

    #[test]
    fn outcome_window_counts_failures_exactly() {
        let mut w = OutcomeWindow::new(4);
        assert_eq!(w.failed_permille(), 0);
        for f in [true, false, true, true] {
            w.record(f);
        }
        assert_eq!(w.failed_permille(), 750);
        w.record(false); // evicts a failure
        assert_eq!((w.len(), w.failures(), w.failed_permille()), (4, 2, 500));
    }

    proptest! {
        /// The window's quantiles equal those of a naive sort of the last N samples.
        #[test]
        fn quantiles_match_a_naive_sort(
            cap in 1u16..40,
            samples in proptest::collection::vec(0u64..1000, 0..200),
            q in 0u16..=1000,
        ) {
            let mut w = LatencyWindow::new(cap);
            for &s in &samples {
                w.record(Duration::from_nanos(s));
            }
            let start = samples.len().saturating_sub(usize::from(cap));
            let mut last: Vec<u64> = samples[start..].to_vec();
            last.sort_unstable();
            let expected = if last.is_empty() {
                None
            } else {
                let rank = (usize::from(q) * last.len()).div_ceil(1000).max(1);
                Some(Duration::from_nanos(last[rank - 1]))
            };
            prop_assert_eq!(w.quantile(q), expected);
        }
    }
}
