//! The control side of liveness: silence becomes suspicion, then death.
//!
//! # Cost
//!
//! A heartbeat costs amortised O(1), whatever the fleet size. Instances that
//! share timeouts form a *class*; a class keeps two FIFO queues of
//! `(instance, heard_at)` entries, one per stage (suspect, dead). Because all
//! instances of a class share one timeout, deadlines leave each queue in the
//! order entries went in, so the earliest deadline of a class is always at
//! the front. An entry whose instance has been heard from since is stale and
//! is dropped when it reaches the front. Each entry is pushed once and
//! popped once.
//!
//! Deadlines are rounded up to `resolution` (10 ms by default) so the
//! expiries of a large fleet are batched into few wake-ups instead of one per
//! heartbeat. A verdict is therefore late by at most `resolution`.

use std::collections::VecDeque;

use super::{HealthConfigError, HealthEvent, Liveness, LivenessTimeouts};
use crate::id::InstanceId;
use crate::message::{Heartbeat, Message};
use crate::time::{Duration, Instant};

/// Default batching of detector deadlines.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_millis(10);

/// The largest instance id the detector accepts: its table is dense.
pub const MAX_INSTANCE_ID: u32 = 1 << 24;

/// Counters for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Heartbeats that moved an instance's `(incarnation, seq)` forward.
    pub accepted: u64,
    /// Heartbeats older than one already seen (reordered or duplicated).
    pub stale: u64,
    /// Heartbeats from instances that are not registered.
    pub unknown: u64,
}

/// One instance's state, as the detector sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceLiveness {
    /// Current verdict.
    pub status: Liveness,
    /// When it was last heard from (registration time if never).
    pub last_heard: Instant,
    /// Newest `(incarnation, seq)` seen, if any.
    pub newest: Option<(u64, u64)>,
    /// Index of the instance's timeout class.
    pub class: usize,
    /// Heartbeats received lately, out of `beats_expected` (a window of
    /// [`LOSS_WINDOW_BEATS`] / 2 to [`LOSS_WINDOW_BEATS`] beats, halved as
    /// it fills, so older beats weigh less).
    pub beats_received: u32,
    /// Heartbeats sent lately, as the gaps in their sequence numbers tell.
    pub beats_expected: u32,
    /// Heartbeats in a row received with no gap before them.
    pub clean_streak: u32,
    /// Heartbeats missing just before the newest one (the gap in their
    /// sequence numbers, at most 16; 0 for the first of an incarnation).
    pub missed_before_newest: u32,
}

/// About how many recent heartbeats the loss estimate looks at.
pub const LOSS_WINDOW_BEATS: u32 = 16;

/// Fewest expected heartbeats before a loss estimate is given.
pub const LOSS_MIN_BEATS: u32 = 8;

/// Most beats one gap in sequence numbers may count as lost: a long
/// silence is a partition or a stall, judged by the timeouts, not a rate.
const LOSS_MAX_GAP: u64 = 16;

impl InstanceLiveness {
    /// The share of its recent heartbeats that never arrived, in permille,
    /// from the gaps in their sequence numbers; `None` until
    /// [`LOSS_MIN_BEATS`] were expected. A hung application beside a
    /// healthy agent loses none; a lossy link shows here even while the
    /// instance stays alive.
    pub fn heartbeat_loss_permille(&self) -> Option<u32> {
        (self.beats_expected >= LOSS_MIN_BEATS).then(|| {
            let lost = self.beats_expected - self.beats_received.min(self.beats_expected);
            (u64::from(lost) * 1000 / u64::from(self.beats_expected)) as u32
        })
    }
}

#[derive(Debug, Clone)]
struct Class {
    timeouts: LivenessTimeouts,
    suspect_queue: VecDeque<(InstanceId, Instant)>,
    dead_queue: VecDeque<(InstanceId, Instant)>,
}

/// Declares instances suspect, then dead, when their heartbeats stop, and
/// alive again when they resume.
///
/// Register instances with [`register`](FailureDetector::register), feed it
/// heartbeats with [`on_heartbeat`](FailureDetector::on_heartbeat) (or
/// [`on_message`](FailureDetector::on_message)), call
/// [`handle_timeout`](FailureDetector::handle_timeout) at
/// [`poll_timeout`](FailureDetector::poll_timeout), and drain verdict
/// changes with [`poll_event`](FailureDetector::poll_event).
#[derive(Debug, Clone)]
pub struct FailureDetector {
    classes: Vec<Class>,
    slots: Vec<Option<InstanceLiveness>>,
    resolution: Duration,
    events: VecDeque<HealthEvent>,
    stats: DetectorStats,
}

impl FailureDetector {
    /// A detector with one timeout class per entry of `classes`.
    pub fn new(classes: &[LivenessTimeouts]) -> Result<Self, HealthConfigError> {
        for timeouts in classes {
            timeouts.validate()?;
        }
        Ok(FailureDetector {
            classes: classes
                .iter()
                .map(|&timeouts| Class {
                    timeouts,
                    suspect_queue: VecDeque::new(),
                    dead_queue: VecDeque::new(),
                })
                .collect(),
            slots: Vec::new(),
            resolution: DEFAULT_RESOLUTION,
            events: VecDeque::new(),
            stats: DetectorStats::default(),
        })
    }

    /// The timeouts of class `class`, if it exists.
    pub fn timeouts(&self, class: usize) -> Option<LivenessTimeouts> {
        self.classes.get(class).map(|c| c.timeouts)
    }

    /// Batch deadlines to multiples of `resolution` (zero: exact deadlines).
    #[must_use]
    pub fn with_resolution(mut self, resolution: Duration) -> Self {
        self.resolution = resolution;
        self
    }

    /// Start watching `instance` at `now`, with the timeouts of class
    /// `class`. It is `Unknown` until its first heartbeat, and is suspected
    /// if none comes within the class's `suspect_after`.
    pub fn register(
        &mut self,
        now: Instant,
        instance: InstanceId,
        class: usize,
    ) -> Result<(), HealthConfigError> {
        if instance.0 > MAX_INSTANCE_ID {
            return Err(HealthConfigError::InstanceIdTooLarge { id: instance.0, max: MAX_INSTANCE_ID });
        }
        assert!(class < self.classes.len(), "class {class} out of range: a caller bug");
        let index = instance.index();
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        if self.slots[index].is_some() {
            return Err(HealthConfigError::AlreadyRegistered(instance.0));
        }
        self.slots[index] = Some(InstanceLiveness {
            status: Liveness::Unknown,
            last_heard: now,
            newest: None,
            class,
            beats_received: 0,
            beats_expected: 0,
            missed_before_newest: 0,
            clean_streak: 0,
        });
        let class = &mut self.classes[class];
        class.suspect_queue.push_back((instance, now));
        class.dead_queue.push_back((instance, now));
        Ok(())
    }

    /// Stop watching `instance`. Returns whether it was registered.
    pub fn deregister(&mut self, instance: InstanceId) -> bool {
        // Queue entries of a removed instance are skipped lazily as stale.
        self.slots.get_mut(instance.index()).and_then(Option::take).is_some()
    }

    /// The detector's view of `instance`, if registered.
    pub fn instance(&self, instance: InstanceId) -> Option<&InstanceLiveness> {
        self.slots.get(instance.index()).and_then(Option::as_ref)
    }

    /// Every registered instance with its state, in id order.
    pub fn instances(&self) -> impl Iterator<Item = (InstanceId, &InstanceLiveness)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (InstanceId(i as u32), s)))
    }

    /// Counters.
    pub fn stats(&self) -> DetectorStats {
        self.stats
    }

    /// Feed a protocol message; those that are not heartbeats are ignored.
    pub fn on_message(&mut self, now: Instant, message: &Message) {
        if let Message::Heartbeat(hb) = message {
            self.on_heartbeat(now, hb);
        }
    }

    /// A heartbeat arrived at `now`.
    pub fn on_heartbeat(&mut self, now: Instant, hb: &Heartbeat) {
        let Some(Some(slot)) = self.slots.get_mut(hb.instance.index()) else {
            self.stats.unknown += 1;
            return;
        };
        if slot.newest.is_some_and(|newest| (hb.incarnation, hb.seq) <= newest) {
            self.stats.stale += 1;
            return;
        }
        self.stats.accepted += 1;
        // Beats this one says were sent since the last one heard: its own,
        // and any gap in the sequence (same incarnation only).
        let sent = match slot.newest {
            Some((incarnation, seq)) if incarnation == hb.incarnation => (hb.seq - seq).min(LOSS_MAX_GAP + 1),
            _ => 1,
        };
        slot.beats_expected += sent as u32;
        slot.beats_received += 1;
        slot.clean_streak = if sent == 1 { slot.clean_streak.saturating_add(1) } else { 0 };
        slot.missed_before_newest = (sent - 1) as u32;
        while slot.beats_expected > LOSS_WINDOW_BEATS {
            // Both halved alike, so a clean link stays at zero loss.
            slot.beats_expected /= 2;
            slot.beats_received /= 2;
        }
        slot.newest = Some((hb.incarnation, hb.seq));
        let class = slot.class;
        if slot.last_heard != now {
            slot.last_heard = now;
            let class = &mut self.classes[class];
            class.suspect_queue.push_back((hb.instance, now));
            class.dead_queue.push_back((hb.instance, now));
        }
        let from = slot.status;
        if from != Liveness::Alive {
            slot.status = Liveness::Alive;
            Self::emit(&mut self.events, hb.instance, from, Liveness::Alive, now);
        }
    }

    /// Fire every verdict due at or before `now`. Safe to call early or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let resolution = self.resolution;
        for class in &mut self.classes {
            let timeouts = class.timeouts;
            Self::expire(
                &mut class.suspect_queue,
                &mut self.slots,
                &mut self.events,
                now,
                timeouts.suspect_after,
                resolution,
                Liveness::Suspect,
            );
            Self::expire(
                &mut class.dead_queue,
                &mut self.slots,
                &mut self.events,
                now,
                timeouts.dead_after,
                resolution,
                Liveness::Dead,
            );
        }
    }

    /// The earliest instant at which a verdict may change, if any instance
    /// is being watched. May be early (stale entries); never late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.classes
            .iter()
            .flat_map(|class| {
                let t = class.timeouts;
                let suspect = class.suspect_queue.front().map(|&(_, at)| at + t.suspect_after);
                let dead = class.dead_queue.front().map(|&(_, at)| at + t.dead_after);
                suspect.into_iter().chain(dead)
            })
            .min()
            .map(|deadline| round_up(deadline, self.resolution))
    }

    /// The next verdict change, oldest first.
    pub fn poll_event(&mut self) -> Option<HealthEvent> {
        self.events.pop_front()
    }

    fn expire(
        queue: &mut VecDeque<(InstanceId, Instant)>,
        slots: &mut [Option<InstanceLiveness>],
        events: &mut VecDeque<HealthEvent>,
        now: Instant,
        timeout: Duration,
        resolution: Duration,
        verdict: Liveness,
    ) {
        while let Some(&(instance, heard_at)) = queue.front() {
            if round_up(heard_at + timeout, resolution) > now {
                break;
            }
            queue.pop_front();
            let Some(Some(slot)) = slots.get_mut(instance.index()) else {
                continue; // deregistered
            };
            if slot.last_heard != heard_at || slot.status >= verdict {
                continue; // heard from since, or already there
            }
            let from = slot.status;
            slot.status = verdict;
            Self::emit(events, instance, from, verdict, slot.last_heard);
        }
    }

    fn emit(
        events: &mut VecDeque<HealthEvent>,
        instance: InstanceId,
        from: Liveness,
        to: Liveness,
        last_heard: Instant,
    ) {
        tracing::debug!(instance = instance.0, %from, %to, %last_heard, "liveness changed");
        events.push_back(HealthEvent::LivenessChanged { instance, from, to, last_heard });
    }
}

fn round_up(t: Instant, resolution: Duration) -> Instant {
    let step = u64::try_from(resolution.as_nanos()).unwrap_or(u64::MAX);
    if step <= 1 {
        return t;
    }
    let ns = t.as_nanos();
    match ns % step {
        0 => t,
        rem => Instant::from_nanos(ns.saturating_add(step - rem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LivenessTimeouts =
        LivenessTimeouts { suspect_after: Duration::from_secs(2), dead_after: Duration::from_secs(3) };

    fn hb(instance: u32, seq: u64) -> Heartbeat {
        Heartbeat { instance: InstanceId(instance), incarnation: 1, seq }
    }

    fn drain(d: &mut FailureDetector) -> Vec<(u32, Liveness, Liveness)> {
        std::iter::from_fn(|| d.poll_event())
            .filter_map(|event| match event {
                HealthEvent::LivenessChanged { instance, from, to, .. } => Some((instance.0, from, to)),
                _ => None,
            })
            .collect()
    }

    fn detector() -> FailureDetector {
        let mut d = FailureDetector::new(&[T]).expect("valid").with_resolution(Duration::ZERO);
        d.register(Instant::ZERO, InstanceId(0), 0).expect("fresh id");
        d
    }

    fn loss(d: &FailureDetector) -> Option<u32> {
        d.instance(InstanceId(0)).and_then(InstanceLiveness::heartbeat_loss_permille)
    }

    #[test]
    fn heartbeat_loss_is_read_from_gaps_in_sequence_numbers() {
        let mut d = detector();
        // Too little evidence at first.
        for seq in 0..5 {
            d.on_heartbeat(Instant::from_secs(seq), &hb(0, seq));
        }
        assert_eq!(loss(&d), None);
        // A clean link, for long enough to halve the window many times.
        for seq in 5..500 {
            d.on_heartbeat(Instant::from_secs(seq), &hb(0, seq));
        }
        assert_eq!(loss(&d), Some(0), "halving keeps a clean link at zero");
        // Every fifth beat lost from now on: about 200 permille.
        let mut t = 500;
        for seq in (500..1500).filter(|s| s % 5 != 0) {
            t += 1;
            d.on_heartbeat(Instant::from_secs(t), &hb(0, seq));
        }
        let lossy = loss(&d).expect("enough beats");
        assert!((100..=300).contains(&lossy), "about 200 permille: {lossy}");
        // Clean again: the estimate forgets within a few windows.
        for seq in 1500..1700 {
            t += 1;
            d.on_heartbeat(Instant::from_secs(t), &hb(0, seq));
        }
        assert!(loss(&d).expect("enough beats") < 20);
    }

    #[test]
    fn a_long_silence_or_a_new_incarnation_is_not_counted_as_loss_rate() {
        let mut d = detector();
        for seq in 0..40 {
            d.on_heartbeat(Instant::from_secs(seq), &hb(0, seq));
        }
        // A 1,000-beat gap (a partition, say) counts as at most 16 lost,
        // so some forty clean beats later it is forgotten (each halving
        // halves what is left of it), where a thousand would have held the
        // estimate up for many more.
        d.on_heartbeat(Instant::from_secs(1040), &hb(0, 1040));
        assert!(loss(&d).expect("enough beats") < 1000);
        for seq in 1041..1081 {
            d.on_heartbeat(Instant::from_secs(seq), &hb(0, seq));
        }
        let later = loss(&d).expect("enough beats");
        assert!(later < crate::control::LOSSY_LINK_PERMILLE, "{later}");
        // A restarted agent starts its sequence again: no gap across lives.
        let mut d = detector();
        for seq in 0..40 {
            d.on_heartbeat(Instant::from_secs(seq), &hb(0, seq));
        }
        let reborn = Heartbeat { instance: InstanceId(0), incarnation: 2, seq: 0 };
        d.on_heartbeat(Instant::from_secs(41), &reborn);
        assert_eq!(loss(&d), Some(0));
    }

    #[test]
    fn unknown_then_alive_then_suspect_then_dead_then_alive() {
        let mut d = detector();
        d.on_heartbeat(Instant::from_millis(100), &hb(0, 0));
        assert_eq!(drain(&mut d), vec![(0, Liveness::Unknown, Liveness::Alive)]);
        // The registration entry is stale now, so the first wake-up may be
        // early (2.0 s); it must never be late, and an early one is harmless.
        let first = d.poll_timeout().expect("watching one instance");
        assert!(first <= Instant::from_millis(2100));
        d.handle_timeout(first);
        assert!(drain(&mut d).is_empty(), "early wake-up changes nothing");
        assert_eq!(d.poll_timeout(), Some(Instant::from_millis(2100)));

        d.handle_timeout(Instant::from_millis(2099));
        assert!(drain(&mut d).is_empty(), "not due yet");
        d.handle_timeout(Instant::from_millis(2100));
        assert_eq!(drain(&mut d), vec![(0, Liveness::Alive, Liveness::Suspect)]);
        d.handle_timeout(Instant::from_millis(3100));
        assert_eq!(drain(&mut d), vec![(0, Liveness::Suspect, Liveness::Dead)]);
        d.handle_timeout(Instant::from_millis(3100));
        assert!(drain(&mut d).is_empty(), "handle_timeout twice is harmless");

        d.on_heartbeat(Instant::from_secs(5), &hb(0, 1));
        assert_eq!(drain(&mut d), vec![(0, Liveness::Dead, Liveness::Alive)]);
        assert_eq!(d.instance(InstanceId(0)).map(|s| s.status), Some(Liveness::Alive));
    }

    #[test]
    fn never_heard_instance_is_suspected_then_dead() {
        let mut d = detector();
        d.handle_timeout(Instant::from_secs(3));
        assert_eq!(
            drain(&mut d),
            vec![(0, Liveness::Unknown, Liveness::Suspect), (0, Liveness::Suspect, Liveness::Dead)]
        );
    }

    #[test]
    fn steady_heartbeats_keep_alive() {
        let mut d = detector();
        for s in 0..20u64 {
            let now = Instant::from_secs(s);
            d.handle_timeout(now);
            d.on_heartbeat(now, &hb(0, s));
        }
        d.handle_timeout(Instant::from_millis(19_000 + 1_999));
        assert_eq!(drain(&mut d), vec![(0, Liveness::Unknown, Liveness::Alive)]);
    }

    #[test]
    fn stale_and_duplicate_heartbeats_do_not_revive() {
        let mut d = detector();
        d.on_heartbeat(Instant::ZERO, &hb(0, 5));
        d.handle_timeout(Instant::from_secs(3));
        drain(&mut d);
        assert_eq!(d.instance(InstanceId(0)).map(|s| s.status), Some(Liveness::Dead));
        d.on_heartbeat(Instant::from_secs(4), &hb(0, 5)); // duplicate
        d.on_heartbeat(Instant::from_secs(4), &hb(0, 2)); // reordered
        assert!(drain(&mut d).is_empty());
        assert_eq!(d.stats().stale, 2);
        // A restarted instance starts again at seq 0 with a higher incarnation.
        d.on_heartbeat(Instant::from_secs(5), &Heartbeat { instance: InstanceId(0), incarnation: 2, seq: 0 });
        assert_eq!(drain(&mut d), vec![(0, Liveness::Dead, Liveness::Alive)]);
    }

    #[test]
    fn unknown_and_deregistered_instances_are_ignored() {
        let mut d = detector();
        d.on_heartbeat(Instant::ZERO, &hb(9, 0));
        assert_eq!(d.stats().unknown, 1);
        assert!(d.deregister(InstanceId(0)));
        assert!(!d.deregister(InstanceId(0)));
        d.handle_timeout(Instant::from_secs(10));
        assert!(drain(&mut d).is_empty());
    }

    #[test]
    fn bad_configuration_is_rejected() {
        let bad =
            LivenessTimeouts { suspect_after: Duration::from_secs(3), dead_after: Duration::from_secs(1) };
        assert!(matches!(FailureDetector::new(&[bad]), Err(HealthConfigError::DeadBeforeSuspect { .. })));
        let zero = LivenessTimeouts { suspect_after: Duration::ZERO, dead_after: Duration::from_secs(1) };
        assert!(matches!(FailureDetector::new(&[zero]), Err(HealthConfigError::ZeroTimeout { .. })));
        let mut d = detector();
        assert_eq!(d.register(Instant::ZERO, InstanceId(0), 0), Err(HealthConfigError::AlreadyRegistered(0)));
        assert!(matches!(
            d.register(Instant::ZERO, InstanceId(u32::MAX), 0),
            Err(HealthConfigError::InstanceIdTooLarge { .. })
        ));
    }

    #[test]
    fn resolution_batches_deadlines_upwards() {
        let mut d = FailureDetector::new(&[T]).expect("valid");
        d.register(Instant::from_millis(1), InstanceId(0), 0).expect("fresh");
        assert_eq!(d.poll_timeout(), Some(Instant::from_millis(2010)));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Drive the detector as a driver would: before each heartbeat,
        /// fire every deadline due by then; optionally also wake it early.
        /// Returns the verdicts it published.
        fn drive(timeouts: LivenessTimeouts, gaps_ms: &[u64], early_wakeups: &[bool]) -> Vec<Liveness> {
            let mut d = FailureDetector::new(&[timeouts]).expect("valid");
            d.register(Instant::ZERO, InstanceId(0), 0).expect("fresh");
            let mut seen = Vec::new();
            let mut now = Instant::ZERO;
            for (seq, (&gap_ms, &early)) in gaps_ms.iter().zip(early_wakeups.iter().cycle()).enumerate() {
                let next = now + Duration::from_millis(gap_ms);
                while let Some(due) = d.poll_timeout().filter(|&t| t <= next) {
                    d.handle_timeout(due);
                    seen.extend(drain(&mut d).into_iter().map(|(_, _, to)| to));
                }
                if early {
                    d.handle_timeout(next); // "safe to call early or twice"
                    seen.extend(drain(&mut d).into_iter().map(|(_, _, to)| to));
                }
                now = next;
                d.on_heartbeat(now, &hb(0, seq as u64));
                seen.extend(drain(&mut d).into_iter().map(|(_, _, to)| to));
            }
            seen
        }

        proptest! {
            #[test]
            fn an_instance_that_keeps_beating_within_the_timeout_is_never_declared_dead(
                suspect_ms in 100u64..5_000,
                extra_ms in 0u64..5_000,
                gaps in proptest::collection::vec(0.0f64..1.0, 1..200),
                early in proptest::collection::vec(any::<bool>(), 1..8),
            ) {
                let timeouts = LivenessTimeouts {
                    suspect_after: Duration::from_millis(suspect_ms),
                    dead_after: Duration::from_millis(suspect_ms + extra_ms),
                };
                // Every gap strictly shorter than dead_after.
                let dead_ms = suspect_ms + extra_ms;
                let gaps_ms: Vec<u64> = gaps.iter().map(|g| (g * (dead_ms - 1) as f64) as u64).collect();
                let seen = drive(timeouts, &gaps_ms, &early);
                prop_assert!(!seen.contains(&Liveness::Dead), "declared dead: {seen:?}");
                // And when every gap is also shorter than suspect_after, never suspected.
                let short: Vec<u64> = gaps.iter().map(|g| (g * (suspect_ms - 1) as f64) as u64).collect();
                let seen = drive(timeouts, &short, &early);
                prop_assert!(!seen.contains(&Liveness::Suspect), "suspected: {seen:?}");
            }

            #[test]
            fn a_gap_of_dead_after_or_more_is_always_declared_dead(
                suspect_ms in 100u64..5_000,
                extra_ms in 0u64..5_000,
                over_ms in 10u64..5_000,
            ) {
                let timeouts = LivenessTimeouts {
                    suspect_after: Duration::from_millis(suspect_ms),
                    dead_after: Duration::from_millis(suspect_ms + extra_ms),
                };
                let gaps_ms = [0, suspect_ms + extra_ms + over_ms];
                let seen = drive(timeouts, &gaps_ms, &[false]);
                prop_assert_eq!(
                    seen,
                    vec![Liveness::Alive, Liveness::Suspect, Liveness::Dead, Liveness::Alive]
                );
            }
        }
    }
}
