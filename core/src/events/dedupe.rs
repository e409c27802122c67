//! The publish dedupe window: a retrying publisher's duplicates dropped.
//!
//! A publisher retries a publish until it is acked, with the same event id,
//! so a publish whose ack was lost arrives twice. The broker remembers each
//! `(source, id)` it took for `window` (two minutes by default, as
//! JetStream's `Nats-Msg-Id`) and answers a repeat with the first one's
//! sequence number instead of storing it again: the publisher sees its ack,
//! consumers see the event once. A repeat after the window is taken as new:
//! the window must outlast the publisher's retries (document it to users).
//!
//! Memory is bounded: at most `capacity` ids. When it is full of ids still
//! inside their window, a new publish is refused ([`Seen::Full`]): dropping
//! an old id early would let its duplicate through, silently. Ids leave in
//! the order they came (their deadlines grow with time), so expiry is a
//! queue pop; lookups are O(log n).

use std::collections::{BTreeMap, VecDeque};

use crate::time::{Duration, Instant};

/// What the window says of a publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// New: take it; remembered under the sequence number given.
    New,
    /// A duplicate of the publish stored as this sequence number: ack it
    /// again, store nothing.
    Duplicate(u64),
    /// The window is full of ids still inside it: refuse the publish (with
    /// a reason; the publisher retries later).
    Full,
}

/// Remembered publish ids; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct DedupeWindow {
    window: Duration,
    capacity: usize,
    by_key: BTreeMap<(String, String), u64>,
    /// `(expires, source, id)`, oldest first.
    order: VecDeque<(Instant, String, String)>,
}

impl DedupeWindow {
    /// A window of `window`, holding at most `capacity` ids.
    pub fn new(window: Duration, capacity: usize) -> Self {
        DedupeWindow { window, capacity: capacity.max(1), by_key: BTreeMap::new(), order: VecDeque::new() }
    }

    /// Is `(source, id)`, published at `now`, new? If so it is remembered as
    /// `seq` until `now + window`.
    pub fn check(&mut self, now: Instant, source: &str, id: &str, seq: u64) -> Seen {
        self.expire(now);
        if let Some(&first) = self.by_key.get(&(source.to_owned(), id.to_owned())) {
            return Seen::Duplicate(first);
        }
        if self.by_key.len() >= self.capacity {
            return Seen::Full;
        }
        self.by_key.insert((source.to_owned(), id.to_owned()), seq);
        self.order.push_back((now.saturating_add(self.window), source.to_owned(), id.to_owned()));
        Seen::New
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((expires, _, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            if let Some((_, source, id)) = self.order.pop_front() {
                self.by_key.remove(&(source, id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(120);

    #[test]
    fn a_retry_inside_the_window_is_a_duplicate_and_after_it_new() {
        let mut w = DedupeWindow::new(WINDOW, 10);
        let t = Instant::from_secs(1);
        assert_eq!(w.check(t, "/p", "e-1", 7), Seen::New);
        assert_eq!(w.check(Instant::from_secs(100), "/p", "e-1", 8), Seen::Duplicate(7));
        assert_eq!(w.check(Instant::from_secs(100), "/other", "e-1", 9), Seen::New, "ids are per source");
        assert_eq!(w.check(Instant::from_secs(121), "/p", "e-1", 10), Seen::New, "the window has passed");
    }

    #[test]
    fn a_full_window_refuses_rather_than_forgetting_early() {
        let mut w = DedupeWindow::new(WINDOW, 2);
        assert_eq!(w.check(Instant::from_secs(0), "/p", "a", 1), Seen::New);
        assert_eq!(w.check(Instant::from_secs(1), "/p", "b", 2), Seen::New);
        assert_eq!(w.check(Instant::from_secs(2), "/p", "c", 3), Seen::Full);
        assert_eq!(w.check(Instant::from_secs(2), "/p", "a", 4), Seen::Duplicate(1), "still remembered");
        // Once `a` leaves its window there is room again.
        assert_eq!(w.check(Instant::from_secs(120), "/p", "c", 5), Seen::New);
        assert_eq!(w.len(), 2);
    }

    proptest! {
        /// Whatever the order of publishes and retries, within the window a
        /// consumer would see each id once: every id is `New` exactly once
        /// per window, and its duplicates name its first sequence number.
        #[test]
        fn each_id_is_new_once_per_window(
            publishes in prop::collection::vec((0u8..20, 0u64..200_000), 1..200),
        ) {
            let mut publishes = publishes;
            publishes.sort_by_key(|&(_, ms)| ms);
            let mut w = DedupeWindow::new(WINDOW, 1000);
            let mut first: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
            for (seq, &(id, ms)) in publishes.iter().enumerate() {
                let now = Instant::from_millis(ms);
                let seq = seq as u64;
                let key = id.to_string();
                match w.check(now, "/p", &key, seq) {
                    Seen::New => {
                        if let Some(&(at, _)) = first.get(&id) {
                            prop_assert!(ms >= at + 120_000, "id {id} new again inside its window");
                        }
                        first.insert(id, (ms, seq));
                    }
                    Seen::Duplicate(s) => {
                        let (at, fs) = first[&id];
                        prop_assert!(ms < at + 120_000);
                        prop_assert_eq!(s, fs);
                    }
                    Seen::Full => prop_assert!(false, "capacity 1000 is never reached by 20 ids"),
                }
            }
        }
    }
}
