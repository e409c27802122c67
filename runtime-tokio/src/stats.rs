//! Counters a driver keeps, readable at any time from its handle.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a driver's counters.
///
/// Every datagram received, and every output drained, lands in exactly one
/// of these, so a test can prove that a branch was taken (a malformed
/// datagram was seen and dropped) rather than infer it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams read from the socket, malformed ones included.
    pub datagrams_received: u64,
    /// Datagrams dropped because they are not frames of this version (too
    /// short, too large, another version), or are authentic but their
    /// message does not decode (see [`WireError`](crate::WireError)).
    pub malformed_datagrams: u64,
    /// Frames under a key id this driver does not hold for the claimed
    /// sender (a sender rotated before this receiver, or a stranger).
    pub unknown_key_datagrams: u64,
    /// Frames whose tag did not verify: forged, or sealed under another key
    /// with the same id.
    pub unauthenticated_datagrams: u64,
    /// Authentic frames accepted before (or older than the replay window):
    /// a replay, or the network duplicating.
    pub replayed_datagrams: u64,
    /// Authentic frames of a session older than the sender's newest:
    /// captured before the sender restarted.
    pub old_session_datagrams: u64,
    /// Authentic frames addressed to another node: a genuine datagram
    /// replayed to the wrong node (or a peer table pointing a node id at
    /// the wrong address).
    pub misdirected_datagrams: u64,
    /// Authentic frames from a new sender beyond
    /// [`MAX_SENDERS`](crate::MAX_SENDERS).
    pub too_many_senders_datagrams: u64,
    /// Failed socket reads.
    pub recv_errors: u64,
    /// Messages handed to the socket.
    pub messages_sent: u64,
    /// `Send` outputs dropped because the destination is not in the peer
    /// table.
    pub unknown_destinations: u64,
    /// `Send` outputs dropped because encoding or the socket write failed.
    pub send_errors: u64,
    /// Health events published.
    pub health_events: u64,
    /// Outputs of a kind this driver does not carry out yet, dropped; also
    /// a `CallDone` nobody waits for, and a recovery action when no
    /// executor was wired ([`Driver::with_recovery`](crate::Driver::with_recovery)).
    pub unhandled_outputs: u64,
    /// Probes carried out as HTTP GETs of a peer's health target
    /// (see [`HttpPeer`](crate::HttpPeer)).
    pub http_probes: u64,
    /// Requests carried out as HTTP GETs of a peer's service target.
    pub http_requests: u64,
    /// HTTP exchanges that did not finish within their timeout: nothing was
    /// fed back (the machine's own deadline counts them).
    pub http_timeouts: u64,
    /// HTTP exchanges not started because
    /// [`TransportConfig::max_in_flight`](crate::TransportConfig::max_in_flight)
    /// were already running: dropped, as a lost datagram would be.
    pub http_dropped: u64,
    /// Peer addresses learned from datagrams
    /// ([`Driver::with_learned_peers`](crate::Driver::with_learned_peers)).
    pub peers_learned: u64,
    /// Balancer events of a client (ejections, panic mode), logged.
    pub balance_events: u64,
    /// Calls answered to a waiting caller ([`DiscoveryClient::call`](crate::DiscoveryClient::call)).
    pub calls_done: u64,
    /// Recovery actions the machine emitted (handed on or dropped).
    pub recovery_actions: u64,
    /// Recovery actions dropped because the executor's channel
    /// ([`Driver::with_recovery`](crate::Driver::with_recovery)) was full
    /// or closed; the coordinator times them out.
    pub recovery_actions_dropped: u64,
    /// Recovery decisions logged and published.
    pub recovery_decisions: u64,
}

/// The live counters, shared between the task and its handle. Relaxed
/// ordering: each counter is independent, and only ever grows.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) datagrams_received: AtomicU64,
    pub(crate) malformed_datagrams: AtomicU64,
    pub(crate) unknown_key_datagrams: AtomicU64,
    pub(crate) unauthenticated_datagrams: AtomicU64,
    pub(crate) replayed_datagrams: AtomicU64,
    pub(crate) old_session_datagrams: AtomicU64,
    pub(crate) misdirected_datagrams: AtomicU64,
    pub(crate) too_many_senders_datagrams: AtomicU64,
    pub(crate) recv_errors: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) unknown_destinations: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) health_events: AtomicU64,
    pub(crate) unhandled_outputs: AtomicU64,
    pub(crate) http_probes: AtomicU64,
    pub(crate) http_requests: AtomicU64,
    pub(crate) http_timeouts: AtomicU64,
    pub(crate) http_dropped: AtomicU64,
    pub(crate) peers_learned: AtomicU64,
    pub(crate) balance_events: AtomicU64,
    pub(crate) calls_done: AtomicU64,
    pub(crate) recovery_actions: AtomicU64,
    pub(crate) recovery_actions_dropped: AtomicU64,
    pub(crate) recovery_decisions: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DriverStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DriverStats {
            datagrams_received: get(&self.datagrams_received),
            malformed_datagrams: get(&self.malformed_datagrams),
            unknown_key_datagrams: get(&self.unknown_key_datagrams),
            unauthenticated_datagrams: get(&self.unauthenticated_datagrams),
            replayed_datagrams: get(&self.replayed_datagrams),
            old_session_datagrams: get(&self.old_session_datagrams),
            misdirected_datagrams: get(&self.misdirected_datagrams),
            too_many_senders_datagrams: get(&self.too_many_senders_datagrams),
            recv_errors: get(&self.recv_errors),
            messages_sent: get(&self.messages_sent),
            unknown_destinations: get(&self.unknown_destinations),
            send_errors: get(&self.send_errors),
            health_events: get(&self.health_events),
            unhandled_outputs: get(&self.unhandled_outputs),
            http_probes: get(&self.http_probes),
            http_requests: get(&self.http_requests),
            http_timeouts: get(&self.http_timeouts),
            http_dropped: get(&self.http_dropped),
            peers_learned: get(&self.peers_learned),
            balance_events: get(&self.balance_events),
            calls_done: get(&self.calls_done),
            recovery_actions: get(&self.recovery_actions),
            recovery_actions_dropped: get(&self.recovery_actions_dropped),
            recovery_decisions: get(&self.recovery_decisions),
        }
    }
}
