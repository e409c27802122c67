//! A durable consumer group's delivery state: what is owed, what is in
//! flight, what comes back, and what goes to the dead letters.
//!
//! At-least-once delivery, as JetStream's consumers: an event handed to the
//! group's consumers stays *in flight* until acked; if no ack comes within
//! `ack_wait`, it is delivered again, after a backoff that doubles per
//! attempt (capped); after `max_deliver` deliveries without an ack it goes
//! to the dead letters instead (a poison event must not block the group
//! forever, nor be retried forever). A negative ack redelivers after the
//! backoff at once. At most `max_in_flight` events are un-acked at a time:
//! flow control, so a slow consumer is not buried.
//!
//! Ordering per key: an event whose partition key has an earlier event in
//! flight waits until that one is acked or dead, so a key's events are
//! handled in publish order, one at a time; events of other keys go on.
//!
//! The group knows stream sequence numbers and keys only; the stream keeps
//! the events. Everything is keyed by sequence number in ordered maps, so
//! the state is deterministic and each step O(log n).

use std::collections::{BTreeMap, BTreeSet};

use crate::time::{Duration, Instant};

/// How a group delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// How long a delivery waits for its ack before it is redelivered.
    pub ack_wait: Duration,
    /// Deliveries before an un-acked event goes to the dead letters.
    pub max_deliver: u32,
    /// Un-acked events at most.
    pub max_in_flight: usize,
    /// Wait before the first redelivery; doubles per attempt, capped at
    /// `ack_wait`.
    pub backoff: Duration,
}

impl Default for GroupConfig {
    /// 30 s ack wait, 5 deliveries, 1000 in flight, 1 s first backoff.
    fn default() -> Self {
        GroupConfig {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            max_in_flight: 1000,
            backoff: Duration::from_secs(1),
        }
    }
}

/// One delivery to hand to a consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The event's stream sequence number.
    pub seq: u64,
    /// 1 for the first delivery.
    pub attempt: u32,
}

#[derive(Clone, Debug)]
struct InFlight {
    key: Option<String>,
    attempt: u32,
    /// When it is due again: the ack deadline, or the end of a backoff.
    due: Instant,
}

/// A consumer group's delivery state; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    config: GroupConfig,
    /// Events published to the stream and not yet taken, in order, with
    /// their keys.
    pending: BTreeMap<u64, Option<String>>,
    in_flight: BTreeMap<u64, InFlight>,
    /// `(due, seq)` for everything in flight.
    due: BTreeSet<(Instant, u64)>,
    /// Keys with an event in flight, and which.
    busy_keys: BTreeMap<String, u64>,
    dead: Vec<u64>,
    acked: u64,
}

impl ConsumerGroup {
    /// An empty group.
    pub fn new(config: GroupConfig) -> Self {
        ConsumerGroup {
            config,
            pending: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            due: BTreeSet::new(),
            busy_keys: BTreeMap::new(),
            dead: Vec::new(),
            acked: 0,
        }
    }

    /// The stream took event `seq` (sequence numbers grow) with `key`.
    pub fn published(&mut self, seq: u64, key: Option<String>) {
        self.pending.insert(seq, key);
    }

    /// The next delivery due at `now`, if any: a redelivery whose time has
    /// come first (oldest first), else the oldest pending event whose key is
    /// free, while fewer than `max_in_flight` are un-acked. An event past
    /// `max_deliver` goes to the dead letters on the way.
    pub fn next(&mut self, now: Instant) -> Option<Delivery> {
        while let Some(&(due, seq)) = self.due.first() {
            if due > now {
                break;
            }
            self.due.remove(&(due, seq));
            let Some(f) = self.in_flight.get_mut(&seq) else { continue };
            if f.attempt >= self.config.max_deliver {
                self.finish(seq);
                self.dead.push(seq);
                continue;
            }
            f.attempt += 1;
            f.due = now.saturating_add(self.config.ack_wait);
            let (due, attempt) = (f.due, f.attempt);
            self.due.insert((due, seq));
            return Some(Delivery { seq, attempt });
        }
        if self.in_flight.len() >= self.config.max_in_flight {
            return None;
        }
        let seq = self
            .pending
            .iter()
            .find(|(_, key)| key.as_ref().is_none_or(|k| !self.busy_keys.contains_key(k)))
            .map(|(&seq, _)| seq)?;
        let key = self.pending.remove(&seq).flatten();
        if let Some(k) = &key {
            self.busy_keys.insert(k.clone(), seq);
        }
        let due = now.saturating_add(self.config.ack_wait);
        self.in_flight.insert(seq, InFlight { key, attempt: 1, due });
        self.due.insert((due, seq));
        Some(Delivery { seq, attempt: 1 })
    }

    /// A consumer acked `seq`. Returns whether it was in flight (an ack for
    /// something acked, dead or unknown changes nothing).
    pub fn ack(&mut self, seq: u64) -> bool {
        if !self.in_flight.contains_key(&seq) {
            return false;
        }
        self.finish(seq);
        self.acked += 1;
        true
    }

    /// A consumer could not handle `seq` now: redeliver it after the
    /// backoff (or send it to the dead letters, at its last attempt, when
    /// due). Returns whether it was in flight.
    pub fn nack(&mut self, now: Instant, seq: u64) -> bool {
        let Some(f) = self.in_flight.get_mut(&seq) else { return false };
        self.due.remove(&(f.due, seq));
        let exponent = f.attempt.saturating_sub(1).min(30);
        let backoff = self.config.backoff.saturating_mul(1 << exponent).min(self.config.ack_wait);
        f.due = now.saturating_add(backoff);
        self.due.insert((f.due, seq));
        true
    }

    /// When the next redelivery is due, for the driver's timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.first().map(|&(due, _)| due)
    }

    /// Sequence numbers given up on, in the order they died.
    pub fn dead_letters(&self) -> &[u64] {
        &self.dead
    }

    /// Un-acked events (delivered, or waiting out a backoff).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Events not yet delivered.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Events acked so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    fn finish(&mut self, seq: u64) {
        if let Some(f) = self.in_flight.remove(&seq) {
            self.due.remove(&(f.due, seq));
            if let Some(k) = f.key
                && self.busy_keys.get(&k) == Some(&seq)
            {
                self.busy_keys.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn config() -> GroupConfig {
        GroupConfig {
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
            max_in_flight: 4,
            backoff: Duration::from_millis(100),
        }
    }

    #[test]
    fn an_unacked_event_is_redelivered_then_dead_lettered() {
        let mut g = ConsumerGroup::new(config());
        g.published(1, None);
        assert_eq!(g.next(Instant::from_secs(0)), Some(Delivery { seq: 1, attempt: 1 }));
        assert_eq!(g.next(Instant::from_secs(1)), None, "in flight, not due");
        assert_eq!(g.next(Instant::from_secs(5)), Some(Delivery { seq: 1, attempt: 2 }));
        assert_eq!(g.next(Instant::from_secs(10)), Some(Delivery { seq: 1, attempt: 3 }));
        assert_eq!(g.next(Instant::from_secs(15)), None, "max_deliver reached: dead");
        assert_eq!(g.dead_letters(), [1]);
        assert!(!g.ack(1), "a late ack for a dead event changes nothing");
    }

    #[test]
    fn a_key_waits_for_its_earlier_event_and_other_keys_go_on() {
        let mut g = ConsumerGroup::new(config());
        g.published(1, Some("a".into()));
        g.published(2, Some("a".into()));
        g.published(3, Some("b".into()));
        let t = Instant::from_secs(0);
        assert_eq!(g.next(t).map(|d| d.seq), Some(1));
        assert_eq!(g.next(t).map(|d| d.seq), Some(3), "2 waits behind 1 (same key)");
        assert_eq!(g.next(t), None);
        assert!(g.ack(1));
        assert_eq!(g.next(t).map(|d| d.seq), Some(2));
    }

    #[test]
    fn flow_control_bounds_the_unacked_events() {
        let mut g = ConsumerGroup::new(config());
        for seq in 1..=10 {
            g.published(seq, None);
        }
        let t = Instant::from_secs(0);
        let taken: Vec<u64> = std::iter::from_fn(|| g.next(t)).map(|d| d.seq).collect();
        assert_eq!(taken, [1, 2, 3, 4]);
        assert!(g.ack(2));
        assert_eq!(g.next(t).map(|d| d.seq), Some(5));
    }

    #[test]
    fn a_nack_redelivers_after_a_doubling_backoff() {
        let mut g = ConsumerGroup::new(config());
        g.published(1, None);
        g.next(Instant::from_millis(0));
        assert!(g.nack(Instant::from_millis(0), 1));
        assert_eq!(g.next(Instant::from_millis(99)), None);
        assert_eq!(g.next(Instant::from_millis(100)), Some(Delivery { seq: 1, attempt: 2 }));
        assert!(g.nack(Instant::from_millis(100), 1));
        assert_eq!(g.next(Instant::from_millis(299)), None, "the second backoff is 200 ms");
        assert_eq!(g.next(Instant::from_millis(300)), Some(Delivery { seq: 1, attempt: 3 }));
    }

    proptest! {
        /// Whatever consumers do (ack, nack, stay silent), every published
        /// event ends acked or dead, never both, never lost; a key never has
        /// two events out at once; and in-flight never passes its bound.
        #[test]
        fn every_event_ends_acked_or_dead_and_keys_stay_ordered(
            keys in prop::collection::vec(prop::option::of(0u8..3), 1..40),
            choices in prop::collection::vec(0u8..4, 0..400),
        ) {
            let cfg = config();
            let mut g = ConsumerGroup::new(cfg);
            for (i, key) in keys.iter().enumerate() {
                g.published(i as u64 + 1, key.map(|k| k.to_string()));
            }
            let mut now = Instant::ZERO;
            let mut acked: BTreeSet<u64> = BTreeSet::new();
            let mut out: BTreeMap<u64, Option<u8>> = BTreeMap::new();
            let mut choices = choices.into_iter();
            // Drive until everything settles: consumers act per the
            // choices, then (choices spent) ack everything.
            for _ in 0..10_000 {
                if let Some(d) = g.next(now) {
                    // What died on the way is no longer out.
                    out.retain(|s, _| g.in_flight.contains_key(s));
                    let key = keys[(d.seq - 1) as usize];
                    if let Some(k) = key {
                        let clash = out.iter().any(|(&s, &kk)| s != d.seq && kk == Some(k));
                        prop_assert!(!clash, "two events of key {k} out at once");
                    }
                    out.insert(d.seq, key);
                    match choices.next() {
                        Some(0) | None => { prop_assert!(g.ack(d.seq)); out.remove(&d.seq); acked.insert(d.seq); }
                        Some(1) => { prop_assert!(g.nack(now, d.seq)); }
                        _ => {} // silent: the ack wait runs
                    }
                } else if let Some(at) = g.poll_timeout() {
                    now = at.max(now);
                    // Whatever is out and now due comes back or dies.
                    out.retain(|s, _| g.in_flight.contains_key(s));
                } else {
                    break;
                }
                prop_assert!(g.in_flight() <= cfg.max_in_flight);
            }
            let dead: BTreeSet<u64> = g.dead_letters().iter().copied().collect();
            prop_assert!(acked.is_disjoint(&dead));
            let all: BTreeSet<u64> = (1..=keys.len() as u64).collect();
            let ended: BTreeSet<u64> = acked.union(&dead).copied().collect();
            prop_assert_eq!(ended, all, "every event ends acked or dead");
            prop_assert_eq!(g.pending() + g.in_flight(), 0);
        }
    }
}
