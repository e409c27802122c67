//! How well this observer hears the fleet: is the control node itself
//! going deaf?
//!
//! A control node whose own link drops a share of its messages (a bad NIC,
//! a congested top-of-rack switch, an overloaded host dropping datagrams)
//! sees probe timeouts and heartbeat gaps on many instances at once. Each
//! one, judged alone, looks unresponsive, and the storm guard counts only
//! instances already judged down, a few at a time. Restarting them cannot
//! help: the fault is the observer's, as in a partition. What tells the two
//! apart is the heartbeats that still arrive: their sequence numbers show
//! the gaps. A hung application's sidecar agent loses no beats; a crashed
//! process sends none (no gap is ever seen); a partition is a silence, one
//! long gap when it heals. Intermittent gaps on many instances at once are
//! the observer's own loss.
//!
//! The gauge keeps, over the last [`DEAF_WINDOW`], the heartbeats heard and
//! the beats missing before them (gaps of at most [`DEAF_MAX_GAP`] beats:
//! a longer gap is a silence, judged by the partition logic), and which
//! instances had a gap. The observer is deaf while at least
//! [`DEAF_LOSS_PERMILLE`] of the beats were missed, on at least
//! [`DEAF_MIN_INSTANCES`] instances and a quarter of the fleet: one lossy
//! link is the lossy-link judgment's, not this one's. Deafness shows in
//! gaps a beat late (a gap is seen when the next beat arrives), so some
//! loss on a couple of instances puts the hearing in doubt
//! ([`Assessment::Doubtful`]), and recovery waits a moment for the gauge
//! to decide.
//!
//! The model's limit, said plainly: it measures heartbeat loss only. An
//! observer whose probes are dropped while heartbeats pass (an asymmetric
//! fault on the probe path) is not seen as deaf; its timeouts are judged
//! instance by instance, and the storm guard's counts are the safety net.

use std::collections::{BTreeMap, VecDeque};

use crate::id::InstanceId;
use crate::time::{Duration, Instant};

/// How far back the gauge looks.
pub const DEAF_WINDOW: Duration = Duration::from_secs(5);

/// Share of the beats in the window that were missed (permille) from which
/// the observer is deaf: 10 %. A healthy network loses well under 1 %.
pub const DEAF_LOSS_PERMILLE: u32 = 100;

/// Fewest instances with a gap in the window for the observer to be deaf
/// (and at least a quarter of the watched fleet).
pub const DEAF_MIN_INSTANCES: usize = 3;

/// Longest gap, in beats, that counts as loss; a longer one is a silence.
pub const DEAF_MAX_GAP: u32 = 4;

/// Share of missed beats (permille) from which the observer's hearing is
/// in doubt: 2 %, on at least [`DOUBT_MIN_INSTANCES`] instances. Deafness
/// shows in gaps only when the next beat arrives, a beat or two after it
/// begins, while probes are already timing out; in doubt, recovery waits
/// `partition.confirm_within` for the gauge to say.
pub const DOUBT_LOSS_PERMILLE: u32 = 20;

/// Fewest instances with a gap for the hearing to be in doubt.
pub const DOUBT_MIN_INSTANCES: usize = 1;

/// Fewest instances with a probe timeout in the window for the hearing to
/// be in doubt: one hung instance times out alone, and two may; probes
/// lost on three instances at once are likelier the observer's loss.
/// Only doubt: heartbeats, which a hung application's agent keeps
/// sending, decide.
pub const DOUBT_MIN_TIMING_OUT: usize = 3;

/// What the gauge says of the observer's hearing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assessment {
    /// It hears the fleet.
    Clear,
    /// Some loss on a few instances: perhaps the start of deafness.
    Doubtful,
    /// It misses beats of many instances at once.
    Deaf,
}

/// The observer's recent hearing; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Hearing {
    /// Per whole second of the window: `(second, heard, missed)`.
    buckets: VecDeque<(u64, u32, u32)>,
    /// Gaps in the window, oldest first.
    gaps: VecDeque<(Instant, InstanceId)>,
    /// Gaps in the window per instance; its length is the number of
    /// instances with one.
    gappy: BTreeMap<InstanceId, u32>,
    /// Probe timeouts in the window, oldest first, and per instance.
    timeouts: VecDeque<(Instant, InstanceId)>,
    timing_out: BTreeMap<InstanceId, u32>,
}

impl Hearing {
    /// A heartbeat from `instance` arrived at `at`, `missed` beats missing
    /// before it.
    pub fn record(&mut self, at: Instant, instance: InstanceId, missed: u32) {
        self.expire(at);
        let missed = if missed > DEAF_MAX_GAP { 0 } else { missed };
        let second = at.as_nanos() / 1_000_000_000;
        match self.buckets.back_mut() {
            Some((s, heard, lost)) if *s == second => {
                *heard += 1;
                *lost += missed;
            }
            _ => self.buckets.push_back((second, 1, missed)),
        }
        if missed > 0 {
            self.gaps.push_back((at, instance));
            *self.gappy.entry(instance).or_insert(0) += 1;
        }
    }

    /// A probe of `instance` went unanswered by `at`.
    pub fn record_timeout(&mut self, at: Instant, instance: InstanceId) {
        self.expire(at);
        self.timeouts.push_back((at, instance));
        *self.timing_out.entry(instance).or_insert(0) += 1;
    }

    /// Whether the observer is deaf at `now`, watching `fleet` instances.
    pub fn deaf(&mut self, now: Instant, fleet: u32) -> bool {
        self.assess(now, fleet) == Assessment::Deaf
    }

    /// Whether heartbeats themselves show loss at `now` (a gap on some
    /// instance and at least [`DOUBT_LOSS_PERMILLE`] missed): silences
    /// then may be loss rather than a partition.
    pub fn beats_doubtful(&mut self, now: Instant) -> bool {
        self.expire(now);
        let (heard, missed) = self.totals();
        missed > 0 && missed * 1000 >= u64::from(DOUBT_LOSS_PERMILLE) * (heard + missed)
    }

    fn totals(&self) -> (u64, u64) {
        self.buckets
            .iter()
            .fold((0u64, 0u64), |(h, m), &(_, heard, lost)| (h + u64::from(heard), m + u64::from(lost)))
    }

    /// How the observer hears at `now`, watching `fleet` instances.
    pub fn assess(&mut self, now: Instant, fleet: u32) -> Assessment {
        self.expire(now);
        let (heard, missed) = self.totals();
        let expected = heard + missed;
        let lossy = self.gappy.len();
        let doubt_probes = self.timing_out.len() >= DOUBT_MIN_TIMING_OUT;
        if expected == 0 || lossy == 0 {
            return if doubt_probes { Assessment::Doubtful } else { Assessment::Clear };
        }
        if missed * 1000 >= u64::from(DEAF_LOSS_PERMILLE) * expected
            && lossy >= DEAF_MIN_INSTANCES
            && lossy * 4 >= fleet as usize
        {
            Assessment::Deaf
        } else if doubt_probes
            || (missed * 1000 >= u64::from(DOUBT_LOSS_PERMILLE) * expected && lossy >= DOUBT_MIN_INSTANCES)
        {
            Assessment::Doubtful
        } else {
            Assessment::Clear
        }
    }

    /// Instances with a gap in the window.
    pub fn lossy_instances(&self) -> usize {
        self.gappy.len()
    }

    /// Drop what is older than the window.
    fn expire(&mut self, now: Instant) {
        let from = now.saturating_sub(DEAF_WINDOW);
        let first_second = from.as_nanos() / 1_000_000_000;
        while self.buckets.front().is_some_and(|&(s, _, _)| s < first_second) {
            self.buckets.pop_front();
        }
        while let Some(&(at, instance)) = self.timeouts.front() {
            if at >= from {
                break;
            }
            self.timeouts.pop_front();
            if let Some(n) = self.timing_out.get_mut(&instance) {
                *n -= 1;
                if *n == 0 {
                    self.timing_out.remove(&instance);
                }
            }
        }
        while let Some(&(at, instance)) = self.gaps.front() {
            if at >= from {
                break;
            }
            self.gaps.pop_front();
            if let Some(n) = self.gappy.get_mut(&instance) {
                *n -= 1;
                if *n == 0 {
                    self.gappy.remove(&instance);
                }
            }
        }
    }

    /// Forget `instance` (it left the fleet).
    pub fn forget(&mut self, instance: InstanceId) {
        self.gappy.remove(&instance);
        self.gaps.retain(|&(_, i)| i != instance);
        self.timing_out.remove(&instance);
        self.timeouts.retain(|&(_, i)| i != instance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn a_clean_fleet_is_heard() {
        let mut h = Hearing::default();
        for t in 0..10 {
            for i in 0..10 {
                h.record(at_ms(t * 1000 + i), InstanceId(i as u32), 0);
            }
        }
        assert!(!h.deaf(at_ms(10_000), 10));
    }

    #[test]
    fn one_lossy_instance_is_not_a_deaf_observer() {
        let mut h = Hearing::default();
        for t in 0..10 {
            for i in 0..10 {
                // Instance 3 loses every other beat.
                let missed = u32::from(i == 3 && t % 2 == 0);
                h.record(at_ms(t * 1000 + i), InstanceId(i as u32), missed);
            }
        }
        assert!(!h.deaf(at_ms(10_000), 10));
    }

    #[test]
    fn gaps_on_many_instances_make_a_deaf_observer_until_they_stop() {
        let mut h = Hearing::default();
        for t in 0..4 {
            for i in 0..10u64 {
                let missed = u32::from((i + t) % 3 == 0);
                h.record(at_ms(t * 1000 + i), InstanceId(i as u32), missed);
            }
        }
        assert!(h.deaf(at_ms(4_000), 10));
        assert!(h.lossy_instances() >= DEAF_MIN_INSTANCES);
        // Clean beats from then on: deaf no longer once the gaps age out.
        for t in 4..12 {
            for i in 0..10u64 {
                h.record(at_ms(t * 1000 + i), InstanceId(i as u32), 0);
            }
        }
        assert!(!h.deaf(at_ms(12_000), 10));
    }

    #[test]
    fn a_healed_partition_is_a_silence_not_loss() {
        let mut h = Hearing::default();
        for t in 0..5 {
            for i in 0..10u64 {
                h.record(at_ms(t * 1000 + i), InstanceId(i as u32), 0);
            }
        }
        // Every instance comes back after a long silence.
        for i in 0..10u64 {
            h.record(at_ms(30_000 + i), InstanceId(i as u32), 16);
        }
        assert!(!h.deaf(at_ms(30_100), 10));
    }

    #[test]
    fn a_large_fleet_needs_a_quarter_of_it_to_be_gappy() {
        let mut h = Hearing::default();
        // 100 instances, 10 of them lose every beat in two.
        for t in 0..5 {
            for i in 0..100u64 {
                let missed = u32::from(i < 10);
                h.record(at_ms(t * 1000 + i), InstanceId(i as u32), missed);
            }
        }
        assert!(!h.deaf(at_ms(5_000), 100), "10 lossy instances of 100 are their links' problem");
    }
}
