//! Failure and success thresholds: one bad answer is not an outage.
//!
//! A check goes *bad* only after `failure_threshold` consecutive failures,
//! and *good* only after `success_threshold` consecutive successes; from the
//! initial "no verdict" state the same thresholds apply in either direction.
//! Anything shorter than a run of the threshold's length never changes the
//! verdict between good and bad (a property test holds the code to it).
//!
//! While bad, the failure type follows the latest failure without waiting:
//! a hung instance that then crashes goes from `Unresponsive` to `Failed` at
//! once, because both are already "bad" and the newer type is the truer one.

use super::status::HealthStatus;

/// The verdict of a run of observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// Not enough consecutive observations of either kind yet.
    Unknown,
    /// At least `success_threshold` consecutive successes, and not yet
    /// `failure_threshold` consecutive failures since.
    Good,
    /// At least `failure_threshold` consecutive failures, and not yet
    /// `success_threshold` consecutive successes since; carries the latest
    /// failure's type (`Unresponsive` or `Failed`).
    Bad(HealthStatus),
}

/// Consecutive-run counters for one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    failure_threshold: u32,
    success_threshold: u32,
    polarity: Polarity,
    successes_in_row: u32,
    failures_in_row: u32,
}

impl Hysteresis {
    /// Counters for the given thresholds. Zero thresholds behave as 1
    /// (configuration validation rejects them before they get here).
    pub fn new(failure_threshold: u32, success_threshold: u32) -> Self {
        Hysteresis {
            failure_threshold: failure_threshold.max(1),
            success_threshold: success_threshold.max(1),
            polarity: Polarity::Unknown,
            successes_in_row: 0,
            failures_in_row: 0,
        }
    }

    /// The current verdict.
    pub fn polarity(&self) -> Polarity {
        self.polarity
    }

    /// Consecutive successes so far (saturating).
    pub fn successes_in_row(&self) -> u32 {
        self.successes_in_row
    }

    /// Consecutive failures so far (saturating).
    pub fn failures_in_row(&self) -> u32 {
        self.failures_in_row
    }

    /// Count a success. Returns whether the polarity changed.
    pub fn success(&mut self) -> bool {
        self.failures_in_row = 0;
        self.successes_in_row = self.successes_in_row.saturating_add(1);
        if self.polarity != Polarity::Good && self.successes_in_row >= self.success_threshold {
            self.polarity = Polarity::Good;
            return true;
        }
        false
    }

    /// Count a failure of type `status` (`Unresponsive` or `Failed`; any
    /// other status is taken as `Failed`). Returns whether the polarity
    /// changed (including a change of failure type while bad).
    pub fn failure(&mut self, status: HealthStatus) -> bool {
        let status = if status.is_failure() { status } else { HealthStatus::Failed };
        self.successes_in_row = 0;
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        match self.polarity {
            Polarity::Bad(old) => {
                self.polarity = Polarity::Bad(status);
                old != status
            }
            Polarity::Good | Polarity::Unknown if self.failures_in_row >= self.failure_threshold => {
                self.polarity = Polarity::Bad(status);
                true
            }
            Polarity::Good | Polarity::Unknown => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn k_failures_to_go_bad_m_successes_to_go_good() {
        let mut h = Hysteresis::new(3, 2);
        assert!(!h.success());
        assert!(h.success());
        assert_eq!(h.polarity(), Polarity::Good);
        assert!(!h.failure(HealthStatus::Unresponsive));
        assert!(!h.failure(HealthStatus::Unresponsive));
        assert!(!h.success(), "a success resets the failure run");
        assert!(!h.failure(HealthStatus::Unresponsive));
        assert!(!h.failure(HealthStatus::Unresponsive));
        assert!(h.failure(HealthStatus::Unresponsive));
        assert_eq!(h.polarity(), Polarity::Bad(HealthStatus::Unresponsive));
        assert!(h.failure(HealthStatus::Failed), "the failure type follows the latest failure");
        assert_eq!(h.polarity(), Polarity::Bad(HealthStatus::Failed));
        assert!(!h.success());
        assert!(h.success());
        assert_eq!(h.polarity(), Polarity::Good);
    }

    proptest! {
        /// The verdict never flips between good and bad on fewer consecutive
        /// results than the threshold of the direction it flips in.
        #[test]
        fn never_flips_on_fewer_consecutive_results_than_threshold(
            k in 1u32..6,
            m in 1u32..6,
            outcomes in proptest::collection::vec(any::<Option<bool>>(), 0..200),
        ) {
            let mut h = Hysteresis::new(k, m);
            let mut run_ok = 0u32;
            let mut run_bad = 0u32;
            for o in outcomes {
                let before = h.polarity();
                match o {
                    None | Some(true) => {
                        run_ok += 1;
                        run_bad = 0;
                        h.success();
                    }
                    Some(false) => {
                        run_bad += 1;
                        run_ok = 0;
                        h.failure(HealthStatus::Failed);
                    }
                }
                let after = h.polarity();
                let became_good = after == Polarity::Good && before != Polarity::Good;
                let became_bad = matches!(after, Polarity::Bad(_)) && !matches!(before, Polarity::Bad(_));
                prop_assert!(!became_good || run_ok >= m, "good after {run_ok} < {m} successes");
                prop_assert!(!became_bad || run_bad >= k, "bad after {run_bad} < {k} failures");
            }
        }
    }
}
