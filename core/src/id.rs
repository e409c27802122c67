//! Identifiers shared by every machine.
//!
//! Ids are small dense integers, chosen by whoever builds the fleet (the
//! scenario loader, or the user's control plane). Dense ids let machines keep
//! per-instance state in a `Vec` indexed by id: no hashing on the hot path,
//! and iteration order that is the id order, always.

use core::fmt;

/// Address of a machine on the network: what a driver routes messages by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct NodeId(pub u32);

/// A service: a set of interchangeable instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ServiceId(pub u32);

/// One instance of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct InstanceId(pub u32);

impl NodeId {
    /// The id as an index into a dense table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl InstanceId {
    /// The id as an index into a dense table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl ServiceId {
    /// The id as an index into a dense table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node#{}", self.0)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service#{}", self.0)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instance#{}", self.0)
    }
}
