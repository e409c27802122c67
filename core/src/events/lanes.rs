//! Priority lanes: higher lanes first, without starving the lower ones.
//!
//! A consumer must get critical and operational events before bulk events
//! queued earlier (a recovery decision must not wait behind a backfill),
//! but a steady stream of high-priority events must not starve the lower
//! lanes forever. The rule: take from the highest non-empty lane, except
//! that after `share` events in a row taken past a waiting lower lane, the
//! lowest waiting lane gets the next turn. So each waiting lane gets at
//! least one event in every `share + 1`, and an operational event waits
//! behind at most the events of higher lanes plus one in `share + 1`
//! lower ones, whatever the backlog below it.
//!
//! Within a lane, order is first in, first out (per-key ordering holds if
//! a key's events share a lane, which the publisher's priority per stream
//! ensures).

use std::collections::VecDeque;

use super::envelope::Priority;

/// Queues, one per [`Priority`]; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Lanes<T> {
    queues: [VecDeque<T>; 4],
    share: u32,
    /// Events taken in a row while a lower lane waited.
    passed_over: u32,
}

impl<T> Lanes<T> {
    /// Empty lanes; a waiting lower lane gets a turn after `share` events
    /// taken past it (at least 1).
    pub fn new(share: u32) -> Self {
        Lanes { queues: Default::default(), share: share.max(1), passed_over: 0 }
    }

    /// Queue `item` in `priority`'s lane.
    pub fn push(&mut self, priority: Priority, item: T) {
        self.queues[priority.lane()].push_back(item);
    }

    /// The next item to deliver, and its lane.
    pub fn pop(&mut self) -> Option<(Priority, T)> {
        let highest = self.queues.iter().position(|q| !q.is_empty())?;
        let lowest = self.queues.iter().rposition(|q| !q.is_empty())?;
        let lane = if lowest != highest && self.passed_over >= self.share {
            self.passed_over = 0;
            lowest
        } else {
            if lowest != highest {
                self.passed_over += 1;
            } else {
                self.passed_over = 0;
            }
            highest
        };
        let item = self.queues[lane].pop_front()?;
        Some((Priority::ALL[lane], item))
    }

    /// Items queued in all lanes.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// Whether every lane is empty.
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// Items queued in `priority`'s lane.
    pub fn len_of(&self, priority: Priority) -> usize {
        self.queues[priority.lane()].len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_operational_event_overtakes_a_bulk_backlog() {
        let mut lanes = Lanes::new(8);
        for i in 0..100_000u32 {
            lanes.push(Priority::Bulk, i);
        }
        lanes.push(Priority::Operational, u32::MAX);
        let (lane, item) = lanes.pop().expect("queued");
        assert_eq!(
            (lane, item),
            (Priority::Operational, u32::MAX),
            "first out, ahead of 100 000 bulk events"
        );
        assert_eq!(lanes.pop(), Some((Priority::Bulk, 0)), "then bulk, in order");
    }

    proptest! {
        /// Within a lane, first in, first out; no item is lost or repeated;
        /// and while a lower lane waits, it is served at least once in every
        /// `share + 1` pops.
        #[test]
        fn lanes_keep_order_lose_nothing_and_starve_no_one(
            pushes in prop::collection::vec(0usize..4, 1..400),
            share in 1u32..10,
        ) {
            let mut lanes = Lanes::new(share);
            for (n, &lane) in pushes.iter().enumerate() {
                lanes.push(Priority::ALL[lane], n);
            }
            let mut last_per_lane = [None::<usize>; 4];
            let mut since_lowest_served = 0u32;
            let mut out = Vec::new();
            while let Some((priority, item)) = lanes.pop() {
                let lane = priority.lane();
                prop_assert_eq!(pushes[item], lane, "an item comes out of its own lane");
                if let Some(prev) = last_per_lane[lane] {
                    prop_assert!(prev < item, "first in, first out within a lane");
                }
                last_per_lane[lane] = Some(item);
                // The lowest lane still waiting after this pop.
                let waiting_below = (lane + 1..4).any(|l| lanes.len_of(Priority::ALL[l]) > 0);
                if waiting_below {
                    since_lowest_served += 1;
                    prop_assert!(since_lowest_served <= share + 1, "a waiting lane starved");
                } else {
                    since_lowest_served = 0;
                }
                out.push(item);
            }
            out.sort_unstable();
            prop_assert_eq!(out, (0..pushes.len()).collect::<Vec<_>>(), "each item exactly once");
        }
    }
}
