//! Messages machines exchange over the network.
//!
//! One enum for the whole protocol, so a driver routes bytes without knowing
//! which capability they belong to. Messages are plain data (`Copy` where
//! possible): the simulator moves millions of them a second and must not
//! allocate for each. The tokio driver encodes them with `postcard`.

use crate::id::InstanceId;

/// A protocol message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// "I am alive": sent by an instance agent to the control node.
    Heartbeat(Heartbeat),
}

/// A liveness beacon.
///
/// `(incarnation, seq)` orders beacons: a restarted agent has a higher
/// incarnation, and within an incarnation `seq` counts up, so a receiver can
/// drop a delayed or duplicated beacon that says nothing new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Heartbeat {
    /// Who is alive.
    pub instance: InstanceId,
    /// Which life of the instance this is; higher after every restart.
    pub incarnation: u64,
    /// Counts up from 0 within one incarnation.
    pub seq: u64,
}
