//! Real time, as the machines see it.
//!
//! Machines never read a clock: the driver passes `now` as a
//! [`vigil_core::Instant`], nanoseconds since an epoch the driver chooses.
//! Here the epoch is a [`tokio::time::Instant`] captured when the [`Clock`]
//! starts, so `now` is "time since this clock started", and a deadline from
//! [`Machine::poll_timeout`](vigil_core::Machine::poll_timeout) maps back to
//! a tokio instant for [`tokio::time::sleep_until`].
//!
//! Reading tokio's clock (rather than `std`'s) means a paused tokio runtime
//! (`tokio::time::pause`) pauses the machines too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_core::time::{Duration, Instant};

/// Maps tokio's monotonic clock onto [`vigil_core::Instant`].
///
/// A `Clock` is a plain value (the base instant): copy it to share one
/// timeline between several drivers, so that instants from different nodes
/// can be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    base: tokio::time::Instant,
}

impl Clock {
    /// A clock whose epoch ([`Instant::ZERO`]) is now.
    pub fn start() -> Self {
        Clock { base: tokio::time::Instant::now() }
    }

    /// A clock whose epoch is `base`.
    pub fn starting_at(base: tokio::time::Instant) -> Self {
        Clock { base }
    }

    /// The tokio instant that is this clock's [`Instant::ZERO`].
    pub fn base(&self) -> tokio::time::Instant {
        self.base
    }

    /// The current time on this clock.
    ///
    /// Monotonic as tokio's clock is (it never goes backwards); the driver
    /// additionally never hands a machine a smaller `now` than before.
    pub fn now(&self) -> Instant {
        self.to_vigil(tokio::time::Instant::now())
    }

    /// `at` on this clock: [`Instant::ZERO`] if `at` is before the epoch,
    /// [`Instant::MAX`] if it is more than about 584 years after it.
    pub fn to_vigil(&self, at: tokio::time::Instant) -> Instant {
        let since = at.saturating_duration_since(self.base);
        Instant::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of `at`, or `None` if tokio cannot represent it (a
    /// deadline that far away is as good as none).
    pub fn to_tokio(&self, at: Instant) -> Option<tokio::time::Instant> {
        self.base.checked_add(Duration::from_nanos(at.as_nanos()))
    }
}

/// A fresh incarnation number for an instance agent that is (re)starting:
/// nanoseconds since the Unix epoch, read from the wall clock.
///
/// The failure detector orders heartbeats by `(incarnation, seq)`, so every
/// life of an instance needs a larger incarnation than the one before, even
/// though the agent keeps no state across restarts. The wall clock provides
/// that across processes as long as it is not stepped back between two
/// restarts; within one process, successive calls are strictly increasing
/// even if it is. (This crate is not under the determinism rules of
/// `vigil-core` and `vigil-sim`: reading the wall clock is fine here.)
pub fn incarnation_now() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX));
    let next = |last: u64| wall.max(last.saturating_add(1));
    // The closure always returns `Some`, so `fetch_update` cannot fail; both
    // arms carry the value it saw.
    let previous = match LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last))) {
        Ok(previous) | Err(previous) => previous,
    };
    next(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn now_is_time_since_start() {
        let clock = Clock::start();
        assert_eq!(clock.now(), Instant::ZERO);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), Instant::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn conversions_round_trip_and_saturate() {
        let clock = Clock::start();
        let at = Instant::from_millis(250);
        let tokio_at = clock.to_tokio(at).expect("representable");
        assert_eq!(tokio_at - clock.base(), Duration::from_millis(250));
        assert_eq!(clock.to_vigil(tokio_at), at);
        tokio::time::advance(Duration::from_secs(1)).await;
        let later = Clock::start();
        assert_eq!(later.to_vigil(clock.base()), Instant::ZERO, "before the epoch saturates to zero");
    }

    #[test]
    fn incarnations_strictly_increase() {
        let mut previous = incarnation_now();
        assert!(previous > 0, "the wall clock is after 1970");
        for _ in 0..1000 {
            let next = incarnation_now();
            assert!(next > previous, "{next} after {previous}");
            previous = next;
        }
    }
}
