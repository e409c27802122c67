//! Hosts' clocks: each machine sees `now` through its own host.
//!
//! A host clock is piecewise linear in simulated time: from an anchor it runs
//! at `1 + drift_ppm / 10⁶` of true rate. A skew fault moves the anchor: the
//! clock steps by an offset and takes a new rate. Clocks machines read are
//! monotonic (like `CLOCK_MONOTONIC`), so a backward step does not turn time
//! back: the clock stands still until the stepped line catches up with the
//! last value it showed.

use vigil_core::Instant;

const PPM: i128 = 1_000_000;

/// One host's view of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostClock {
    anchor_true: Instant,
    anchor_local: i128,
    drift_ppm: i64,
    floor: Instant,
}

impl Default for HostClock {
    fn default() -> Self {
        HostClock { anchor_true: Instant::ZERO, anchor_local: 0, drift_ppm: 0, floor: Instant::ZERO }
    }
}

impl HostClock {
    /// Whether the clock shows true simulated time.
    pub fn is_exact(&self) -> bool {
        self.drift_ppm == 0 && self.anchor_local == i128::from(self.anchor_true.as_nanos())
    }

    fn line(&self, true_now: Instant) -> i128 {
        let elapsed = i128::from(true_now.as_nanos()) - i128::from(self.anchor_true.as_nanos());
        self.anchor_local + elapsed * (PPM + i128::from(self.drift_ppm)) / PPM
    }

    /// What the host's clock shows at simulated time `true_now`.
    pub fn local(&self, true_now: Instant) -> Instant {
        if self.is_exact() {
            return true_now.max(self.floor);
        }
        let line = self.line(true_now).clamp(0, i128::from(u64::MAX));
        Instant::from_nanos(line as u64).max(self.floor)
    }

    /// The earliest simulated time, not before `true_now`, at which the
    /// clock shows `deadline` or later.
    pub fn true_time_of(&self, deadline: Instant, true_now: Instant) -> Instant {
        if self.local(true_now) >= deadline {
            return true_now;
        }
        if self.is_exact() {
            return deadline;
        }
        // Solve line(t) >= deadline for the least t, rounding up.
        let rate = PPM + i128::from(self.drift_ppm);
        let need = (i128::from(deadline.as_nanos()) - self.anchor_local) * PPM;
        let elapsed = (need + rate - 1).div_euclid(rate);
        let t = i128::from(self.anchor_true.as_nanos()) + elapsed;
        let t = Instant::from_nanos(t.clamp(0, i128::from(u64::MAX)) as u64);
        t.max(true_now)
    }

    /// Step the clock by `offset_ns` at `true_now` and set its drift.
    ///
    /// `drift_ppm` must be greater than −10⁶ (a clock that runs backwards or
    /// stops is not a clock); the scenario loader bounds it far tighter.
    pub fn skew(&mut self, true_now: Instant, offset_ns: i64, drift_ppm: i64) {
        assert!(drift_ppm > -1_000_000, "drift_ppm {drift_ppm} would stop or reverse the clock");
        let shown = self.local(true_now);
        self.anchor_local = self.line(true_now) + i128::from(offset_ns);
        self.anchor_true = true_now;
        self.drift_ppm = drift_ppm;
        self.floor = shown;
    }

    /// How far the clock is ahead of true time at `true_now` (negative:
    /// behind), in nanoseconds.
    pub fn offset_ns(&self, true_now: Instant) -> i128 {
        i128::from(self.local(true_now).as_nanos()) - i128::from(true_now.as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_core::Duration;

    #[test]
    fn exact_clock_is_identity() {
        let c = HostClock::default();
        assert_eq!(c.local(Instant::from_secs(5)), Instant::from_secs(5));
        assert_eq!(c.true_time_of(Instant::from_secs(9), Instant::from_secs(5)), Instant::from_secs(9));
    }

    #[test]
    fn forward_step_jumps_and_backward_step_stands_still() {
        let mut c = HostClock::default();
        c.skew(Instant::from_secs(10), 2_000_000_000, 0);
        assert_eq!(c.local(Instant::from_secs(10)), Instant::from_secs(12));
        let mut c = HostClock::default();
        c.skew(Instant::from_secs(10), -2_000_000_000, 0);
        assert_eq!(c.local(Instant::from_secs(11)), Instant::from_secs(10), "stands still");
        assert_eq!(c.local(Instant::from_secs(13)), Instant::from_secs(11));
    }

    #[test]
    fn drift_runs_fast() {
        let mut c = HostClock::default();
        c.skew(Instant::ZERO, 0, 1_000); // 0.1 % fast
        assert_eq!(c.local(Instant::from_secs(1000)), Instant::from_secs(1001));
    }

    proptest! {
        #[test]
        fn local_is_monotonic_and_true_time_of_is_the_least_solution(
            offset_ns in -5_000_000_000i64..5_000_000_000,
            drift_ppm in -100_000i64..100_000,
            at_ms in 0u64..10_000,
            probe_ms in 0u64..100_000,
            deadline_ms in 0u64..200_000,
        ) {
            let mut c = HostClock::default();
            c.skew(Instant::from_millis(at_ms), offset_ns, drift_ppm);
            let t = Instant::from_millis(at_ms + probe_ms);
            prop_assert!(c.local(t) <= c.local(t + Duration::from_nanos(1)));
            let deadline = Instant::from_millis(deadline_ms);
            let now = Instant::from_millis(at_ms);
            let hit = c.true_time_of(deadline, now);
            prop_assert!(hit >= now);
            prop_assert!(c.local(hit) >= deadline);
            if hit > now {
                prop_assert!(c.local(Instant::from_nanos(hit.as_nanos() - 1)) < deadline);
            }
        }
    }
}
