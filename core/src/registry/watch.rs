//! The change log and watches: how clients learn what changed after an index.
//!
//! Each change is logged with the index it produced, so the log holds
//! consecutive indices and the change after index `i` sits at a computable
//! offset: finding where a watcher resumes is O(1), and answering it costs
//! O(changes since) rather than O(catalog).

use std::collections::VecDeque;

use super::{DeregisterReason, HealthStatus, Instance};
use crate::id::{InstanceId, ServiceId};

/// A watch on one service, from [`Registry::watch`](super::Registry::watch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct WatchId(pub u64);

/// One change to the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// The registry index this change produced.
    pub index: u64,
    /// The service concerned.
    pub service: ServiceId,
    /// The instance concerned.
    pub instance: InstanceId,
    /// What happened.
    pub kind: ChangeKind,
}

/// What happened to an instance. Changes name what changed; the current
/// record is [`Registry::instance`](super::Registry::instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// It joined the catalog.
    Registered {
        /// Its health on joining.
        health: HealthStatus,
    },
    /// It re-registered with different metadata (version, zone, tags,
    /// weight, endpoints or lease).
    Updated,
    /// Its health changed.
    HealthChanged {
        /// Before.
        from: HealthStatus,
        /// Now.
        to: HealthStatus,
    },
    /// It left the catalog.
    Deregistered {
        /// Why.
        reason: DeregisterReason,
    },
}

/// The answer to [`Registry::poll_watch`](super::Registry::poll_watch).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WatchResult {
    /// The changes to the watched service after the index asked about,
    /// oldest first. Resume from `index` next time.
    Changes {
        /// The registry index now.
        index: u64,
        /// The changes, in index order; never empty.
        changes: Vec<Change>,
    },
    /// The whole state of the watched service: the watcher was too far
    /// behind for the change log, asked with index 0, or asked with an index
    /// the registry never reached (it restarted). Resume from `index`.
    Snapshot {
        /// The registry index now.
        index: u64,
        /// Every instance of the service, in id order, whatever its health.
        instances: Vec<Instance>,
    },
}

impl WatchResult {
    /// The index to resume from.
    pub fn index(&self) -> u64 {
        match self {
            WatchResult::Changes { index, .. } | WatchResult::Snapshot { index, .. } => *index,
        }
    }
}

/// The last `capacity` changes, with consecutive indices.
#[derive(Clone, Debug)]
pub(super) struct ChangeLog {
    entries: VecDeque<Change>,
    capacity: usize,
}

impl ChangeLog {
    pub(super) fn new(capacity: usize) -> Self {
        ChangeLog { entries: VecDeque::with_capacity(capacity.min(4096)), capacity }
    }

    /// Append `change`, dropping the oldest at capacity.
    pub(super) fn push(&mut self, change: Change) {
        debug_assert!(
            self.entries.back().is_none_or(|last| last.index + 1 == change.index),
            "change log indices must be consecutive"
        );
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(change);
    }

    /// Every change after `since`, or `None` when the log no longer reaches
    /// back that far. `current` is the registry's index; an index beyond it
    /// is from another life of the registry, and also gets `None`.
    pub(super) fn since(&self, since: u64, current: u64) -> Option<impl Iterator<Item = &Change>> {
        if since > current {
            return None;
        }
        let skip = match self.entries.front() {
            None => {
                // Nothing logged yet: only "after the current index" is
                // answerable, and it is empty.
                return (since == current).then(|| self.entries.range(0..0));
            }
            Some(first) if since + 1 < first.index => return None,
            Some(first) => since + 1 - first.index,
        };
        let skip = usize::try_from(skip).unwrap_or(usize::MAX).min(self.entries.len());
        Some(self.entries.range(skip..))
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}
