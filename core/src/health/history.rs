//! A bounded record of an instance's status transitions, for operators and
//! tests ("what happened to checkout/2 in the last minutes?").
//!
//! A ring: the newest [`HISTORY_LEN`] transitions are kept, older ones fall
//! off. Memory per instance is bounded (64 × 32 bytes) and grows lazily, so
//! an instance that never changes costs nothing.

use std::collections::VecDeque;

use super::status::{HealthStatus, TransitionReason};
use crate::time::Instant;

/// Transitions kept per instance.
pub const HISTORY_LEN: usize = 64;

/// One reported status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    /// When it happened.
    pub at: Instant,
    /// The status before.
    pub from: HealthStatus,
    /// The status after.
    pub to: HealthStatus,
    /// Why.
    pub reason: TransitionReason,
}

/// The newest [`HISTORY_LEN`] transitions of one instance, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransitionHistory {
    ring: VecDeque<Transition>,
    /// Transitions ever recorded, including those that fell off.
    total: u64,
}

impl TransitionHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a transition, dropping the oldest when full.
    pub fn push(&mut self, transition: Transition) {
        if self.ring.len() >= HISTORY_LEN {
            self.ring.pop_front();
        }
        self.ring.push_back(transition);
        self.total += 1;
    }

    /// The kept transitions, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Transition> + ExactSizeIterator {
        self.ring.iter()
    }

    /// The newest transition, if any.
    pub fn last(&self) -> Option<&Transition> {
        self.ring.back()
    }

    /// Transitions kept (at most [`HISTORY_LEN`]).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether nothing was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Transitions ever recorded, including those no longer kept.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept transitions at or after `since`, oldest first.
    pub fn since(&self, since: Instant) -> impl Iterator<Item = &Transition> {
        // Transitions are pushed in time order: skip the older prefix.
        let start = self.ring.partition_point(|t| t.at < since);
        self.ring.range(start..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::status::Cause;

    fn t(at: u64) -> Transition {
        Transition {
            at: Instant::from_secs(at),
            from: HealthStatus::Healthy,
            to: HealthStatus::Failed,
            reason: TransitionReason { check: None, cause: Cause::FlapSettled },
        }
    }

    #[test]
    fn history_is_bounded_and_keeps_the_newest() {
        let mut h = TransitionHistory::new();
        for i in 0..200 {
            h.push(t(i));
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h.total(), 200);
        assert_eq!(h.iter().next().map(|t| t.at), Some(Instant::from_secs(200 - HISTORY_LEN as u64)));
        assert_eq!(h.last().map(|t| t.at), Some(Instant::from_secs(199)));
        assert_eq!(h.since(Instant::from_secs(190)).count(), 10);
    }
}
