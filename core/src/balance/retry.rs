//! The retry budget: retries may add at most a share of the load.
//!
//! Retrying a failed request is how a client rides out one sick instance;
//! retrying every request when the whole service is struggling is how a
//! client finishes it off. Finagle and Linkerd therefore bound retries by a
//! *budget*: at most `budget_percent` of the requests of the last `window`,
//! plus a floor of `min_retries_per_second × window` so a quiet client can
//! still retry.
//!
//! Requests and retries are counted in [`BUCKETS`] buckets of
//! `window / BUCKETS`; the window is the current bucket and the ones before
//! it. A retry is granted only if, counting it, the retries in the window
//! stay within `requests × budget_percent / 100 + floor`. Because a retry
//! granted near the end of one window still counts in the next, the
//! guarantee for an arbitrary window `W` is: retries in `W` ≤
//! `budget_percent` % of the requests in `W` and the window before it, plus
//! the floor (the floor is not doubled).
//!
//! Each call costs O(`BUCKETS`), with no allocation after construction.

use super::config::RetryBudgetConfig;
use crate::time::Instant;

/// Buckets per window.
pub const BUCKETS: usize = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bucket {
    /// Which bucket of the timeline this is (`now / bucket width`).
    number: u64,
    requests: u64,
    retries: u64,
}

/// Counts requests and grants retries within budget. Time is passed in.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    config: RetryBudgetConfig,
    bucket_ns: u64,
    buckets: [Bucket; BUCKETS],
    floor: u64,
}

impl RetryBudget {
    /// A budget with `config`, which must be valid
    /// ([`RetryBudgetConfig::validate`]); an invalid window is widened to the
    /// shortest valid one.
    pub fn new(config: RetryBudgetConfig) -> Self {
        let window_ns = u64::try_from(config.window.as_nanos()).unwrap_or(u64::MAX);
        let bucket_ns = (window_ns / BUCKETS as u64).max(1);
        let window_ms = u64::try_from(config.window.as_millis()).unwrap_or(u64::MAX);
        let floor = u64::from(config.min_retries_per_second).saturating_mul(window_ms) / 1000;
        RetryBudget { config, bucket_ns, buckets: [Bucket::default(); BUCKETS], floor }
    }

    /// The settings.
    pub fn config(&self) -> &RetryBudgetConfig {
        &self.config
    }

    /// Count one original request (not a retry) at `now`.
    pub fn record_request(&mut self, now: Instant) {
        let b = self.bucket(now);
        b.requests = b.requests.saturating_add(1);
    }

    /// Whether a retry may be sent at `now`; if so, it is counted.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        if self.available(now) == 0 {
            return false;
        }
        let b = self.bucket(now);
        b.retries = b.retries.saturating_add(1);
        true
    }

    /// How many retries would be granted at `now`.
    pub fn available(&self, now: Instant) -> u64 {
        let (requests, retries) = self.window_totals(now);
        let allowed = requests.saturating_mul(u64::from(self.config.budget_percent)) / 100 + self.floor;
        allowed.saturating_sub(retries)
    }

    /// `(requests, retries)` counted in the window ending at `now`.
    pub fn window_totals(&self, now: Instant) -> (u64, u64) {
        let current = now.as_nanos() / self.bucket_ns;
        let oldest = current.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.number >= oldest && b.number <= current)
            .fold((0, 0), |(q, r), b| (q + b.requests, r + b.retries))
    }

    /// The retries allowed whatever the request count.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let number = now.as_nanos() / self.bucket_ns;
        let b = &mut self.buckets[(number % BUCKETS as u64) as usize];
        if b.number != number {
            *b = Bucket { number, requests: 0, retries: 0 };
        }
        b
    }
}
