//! A table of records indexed directly by instance id.
//!
//! Instance ids are small dense integers (see [`crate::id`]), so the catalog
//! keeps its records in a `Vec` indexed by id rather than a tree: a
//! heartbeat's lease renewal is one memory access instead of a walk through
//! a B-tree whose nodes hold large records. Records are boxed so an empty
//! slot costs one pointer. Iteration is in id order, as a `BTreeMap`'s
//! would be. Ids are bounded by [`MAX_INSTANCE_ID`] so a stray id cannot
//! make the table huge.

use crate::id::InstanceId;

/// The largest instance id the catalog accepts (the failure detector's
/// bound too).
pub const MAX_INSTANCE_ID: u32 = crate::health::MAX_INSTANCE_ID;

/// Records by instance id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Dense<T> {
    slots: Vec<Option<Box<T>>>,
    len: usize,
}

impl<T> Default for Dense<T> {
    fn default() -> Self {
        Dense { slots: Vec::new(), len: 0 }
    }
}

impl<T> Dense<T> {
    pub(super) fn get(&self, id: &InstanceId) -> Option<&T> {
        self.slots.get(id.index()).and_then(|s| s.as_deref())
    }

    pub(super) fn get_mut(&mut self, id: &InstanceId) -> Option<&mut T> {
        self.slots.get_mut(id.index()).and_then(|s| s.as_deref_mut())
    }

    pub(super) fn contains_key(&self, id: &InstanceId) -> bool {
        self.get(id).is_some()
    }

    /// Insert or replace the record of `id`, which must not exceed
    /// [`MAX_INSTANCE_ID`] (callers check: a caller bug otherwise).
    pub(super) fn insert(&mut self, id: InstanceId, record: T) -> Option<T> {
        assert!(id.0 <= MAX_INSTANCE_ID, "instance id {} beyond the checked bound", id.0);
        if self.slots.len() <= id.index() {
            self.slots.resize_with(id.index() + 1, || None);
        }
        let old = self.slots[id.index()].replace(Box::new(record)).map(|b| *b);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(super) fn remove(&mut self, id: &InstanceId) -> Option<T> {
        let old = self.slots.get_mut(id.index()).and_then(Option::take).map(|b| *b);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every record with its id, in id order (for invariant checks).
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (InstanceId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_deref().map(|r| (InstanceId(i as u32), r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_in_id_order() {
        let mut d = Dense::default();
        assert!(d.is_empty());
        assert_eq!(d.insert(InstanceId(5), "five"), None);
        assert_eq!(d.insert(InstanceId(2), "two"), None);
        assert_eq!(d.insert(InstanceId(5), "FIVE"), Some("five"));
        assert_eq!(d.len(), 2);
        assert_eq!(d.iter().collect::<Vec<_>>(), vec![(InstanceId(2), &"two"), (InstanceId(5), &"FIVE")]);
        assert_eq!(d.remove(&InstanceId(2)), Some("two"));
        assert_eq!(d.remove(&InstanceId(2)), None);
        assert_eq!(d.remove(&InstanceId(99)), None);
        assert!(!d.contains_key(&InstanceId(2)));
        assert_eq!(d.get(&InstanceId(5)), Some(&"FIVE"));
        assert_eq!(d.len(), 1);
    }
}
