//! Authenticated node-to-node frames: every message a node sends travels
//! in a frame that says who sent it, carries a MAC over its whole contents
//! under a key the operator provisions, and can be accepted once only.
//!
//! # Why
//!
//! A heartbeat is a claim, "instance 3 of node 6 is alive", and the control
//! plane acts on it: an alive instance is routable, a dead one gets
//! recovered. Unauthenticated UDP lets anyone who can reach the control
//! node's port make that claim: forged heartbeats were seen to turn a dead
//! instance with nothing behind it into alive, passing and routable. The
//! bearer token of the HTTP API does not help; datagrams never see it.
//! Every message goes through the same frame, so the clients' reports
//! (`CallReport`), subscriptions, endpoint updates, probes and calls are
//! covered alike, with no per-message opt-in to forget.
//!
//! # Threat model, in short
//!
//! An attacker on the network who does not hold a key can send anything,
//! capture everything and send it again. Against that:
//!
//! - **Forgery**: a frame whose tag does not verify is dropped before its
//!   message is even decoded ([`Rejection::Unauthenticated`]); one under a
//!   key id the receiver does not hold likewise ([`Rejection::UnknownKey`]).
//! - **Replay**: every sender numbers its frames within a session; the
//!   receiver keeps, per sender, the highest number seen and a 64-bit
//!   bitmap of those below it ([`replay::WINDOW`]), and accepts each number
//!   once ([`Rejection::Replayed`]). A restarted sender starts a greater
//!   session, which resets the window; a frame of an older session is
//!   dropped ([`Rejection::OldSession`]), so frames captured before a
//!   restart are worthless after it.
//!
//! Not covered: confidentiality (frames are readable; nothing in them is
//! secret); an attacker who holds a key (with a **fleet key**, any holder
//! can speak as any node; **node keys** confine each holder to its own
//! node id, see [`Keyring`]); delay and dropping (the protocol's deadlines
//! already treat a lost message as lost); and a **receiver restart**: the
//! windows live in memory, so a freshly restarted receiver accepts, once,
//! frames of a sender's current session that an attacker captured before,
//! as long as the sender has not restarted since. That replays true
//! statements of the recent past, each once, until the sender's own newer
//! frames move the window past them.
//!
//! # Frame
//!
//! ```text
//! 0        1        5        9        11           19           27            27+n       27+n+16
//! +--------+--------+--------+--------+------------+------------+-------------+----------+
//! | version| from   | to     | key id | session    | seq        | message     | tag      |
//! | u8 = 3 | u32 LE | u32 LE | u16 LE | u64 LE     | u64 LE     | postcard, n | 16 bytes |
//! +--------+--------+--------+--------+------------+------------+-------------+----------+
//! |<-------------------------- covered by the tag ----------------------->|
//! ```
//!
//! The tag is HMAC-SHA256 over everything before it, truncated to 16
//! bytes, checked in constant time. The header is fixed-size so that a
//! receiver reads the key id and checks the MAC before it parses anything
//! an attacker controls. The keyed HMAC state is computed once per key and
//! cloned per frame: the simulator moves millions of frames.
//!
//! # Sessions and sequence numbers
//!
//! A [`Sealer`] belongs to one sender life: its session must exceed every
//! earlier session of the same node id (the tokio driver takes the start
//! time in nanoseconds since the UNIX epoch, the simulator the node's
//! restart count), and its sequence numbers start at 0 and grow by one
//! per frame *per destination*. The header names the destination, and a
//! receiver drops an authentic frame addressed to another node
//! ([`Rejection::Misdirected`]): so a frame captured on its way to one
//! node cannot be replayed to another, and each receiver sees its sender's
//! numbers without gaps. (One counter for all destinations would do
//! neither: a control node talking to a hundred clients moves its counter
//! a hundred times between two frames to one client, and a frame delayed
//! on one link behind that would fall out of the 64-frame window.)
//!
//! # Receiving
//!
//! An [`Opener`] holds the [`Keyring`] and the windows. It checks, in
//! order: the layout (version, length), the key, the tag, the destination,
//! the window; then
//! decodes the message, and only then records the sequence number.
//! Everything refused is counted by kind in [`AuthStats`]. Windows are kept
//! for senders whose frames verified only, so the number tracked is
//! bounded by the key holders, the fleet; [`Opener::new`] takes a bound
//! beyond which new senders are refused ([`Rejection::TooManySenders`]),
//! so that a misconfigured fleet cannot grow it without end.
//!
//! # Rotation
//!
//! Key ids let old and new keys coexist:
//!
//! 1. Add the new key, under a new id, to every receiver's keyring
//!    ([`Keyring::add_fleet_key`]); receivers now accept both.
//! 2. Switch every sender to it ([`Sealer::rekey`]).
//! 3. Once no sender uses the old id (the counters of frames opened
//!    under it stop moving), remove it from every keyring
//!    ([`Keyring::remove_fleet_key`]).
//!
//! A sender switched before every receiver has the new key gets its frames
//! dropped as [`Rejection::UnknownKey`] by the receivers not yet updated.

mod frame;
mod key;
pub mod replay;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use hmac::Mac as _;

pub use frame::{
    FRAME_VERSION, Frame, HEADER_LEN, Header, MAX_FRAME_LEN, MAX_MESSAGE_LEN, OVERHEAD, SealError, Sealer,
    TAG_LEN, Tag,
};
pub use key::{KEY_LEN, Key, KeyError, KeyId, Keyring};

use crate::id::NodeId;
use crate::message::Message;
use replay::{Refusal, Window};

/// Why a frame was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than a header and a tag.
    #[error("frame of {len} bytes is shorter than the minimum of {min}")]
    TooShort {
        /// Its length.
        len: usize,
        /// [`OVERHEAD`].
        min: usize,
    },
    /// The first byte is not [`FRAME_VERSION`]: another build, or not vigil.
    #[error("frame version {found}, expected {expected}")]
    UnsupportedVersion {
        /// The version byte received.
        found: u8,
        /// [`FRAME_VERSION`].
        expected: u8,
    },
    /// Sealed under a key id this receiver does not hold (for that sender).
    #[error("frame claiming node {} under unknown key id {key_id}", from.0)]
    UnknownKey {
        /// The claimed sender.
        from: NodeId,
        /// The key id.
        key_id: KeyId,
    },
    /// The tag does not verify: forged or damaged.
    #[error("frame claiming node {} failed authentication", from.0)]
    Unauthenticated {
        /// The claimed sender.
        from: NodeId,
    },
    /// A sequence number accepted before, or older than the window.
    #[error("replayed frame from node {} (session {session}, seq {seq})", from.0)]
    Replayed {
        /// The sender.
        from: NodeId,
        /// Its session.
        session: u64,
        /// The sequence number.
        seq: u64,
    },
    /// A session older than the sender's newest.
    #[error("frame from node {} of old session {session} (current {current})", from.0)]
    OldSession {
        /// The sender.
        from: NodeId,
        /// The frame's session.
        session: u64,
        /// The newest session seen from the sender.
        current: u64,
    },
    /// Authentic, but addressed to another node.
    #[error("frame from node {} for node {}, not this one", from.0, to.0)]
    Misdirected {
        /// The sender.
        from: NodeId,
        /// The node it was for.
        to: NodeId,
    },
    /// A new sender beyond the bound of tracked senders.
    #[error("frame from node {}: too many senders tracked already", from.0)]
    TooManySenders {
        /// The sender.
        from: NodeId,
    },
    /// Authentic, but the message does not decode (a newer build's message
    /// kind), or bytes are left after it.
    #[error("authentic frame from node {} with an undecodable message", from.0)]
    Undecodable {
        /// The sender.
        from: NodeId,
    },
}

/// The kinds of [`OpenError`], for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// [`OpenError::TooShort`], [`OpenError::UnsupportedVersion`],
    /// [`OpenError::Undecodable`].
    Malformed,
    /// [`OpenError::UnknownKey`].
    UnknownKey,
    /// [`OpenError::Unauthenticated`].
    Unauthenticated,
    /// [`OpenError::Replayed`].
    Replayed,
    /// [`OpenError::OldSession`].
    OldSession,
    /// [`OpenError::Misdirected`].
    Misdirected,
    /// [`OpenError::TooManySenders`].
    TooManySenders,
}

impl OpenError {
    /// Its kind.
    pub fn rejection(&self) -> Rejection {
        match self {
            OpenError::TooShort { .. }
            | OpenError::UnsupportedVersion { .. }
            | OpenError::Undecodable { .. } => Rejection::Malformed,
            OpenError::UnknownKey { .. } => Rejection::UnknownKey,
            OpenError::Unauthenticated { .. } => Rejection::Unauthenticated,
            OpenError::Replayed { .. } => Rejection::Replayed,
            OpenError::OldSession { .. } => Rejection::OldSession,
            OpenError::Misdirected { .. } => Rejection::Misdirected,
            OpenError::TooManySenders { .. } => Rejection::TooManySenders,
        }
    }
}

/// What an [`Opener`] did with the frames it was given: every frame lands
/// in exactly one counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuthStats {
    /// Accepted and handed on.
    pub accepted: u64,
    /// Not a frame of this version, or an authentic one whose message does
    /// not decode.
    pub malformed: u64,
    /// Under a key id not held for the claimed sender.
    pub unknown_key: u64,
    /// The tag did not verify: forged (or damaged).
    pub unauthenticated: u64,
    /// Authentic, but accepted before (or older than the window).
    pub replayed: u64,
    /// Authentic, but of a session older than the sender's newest.
    pub old_session: u64,
    /// Authentic, but for another node (a replay aimed elsewhere).
    pub misdirected: u64,
    /// Authentic, from a new sender beyond the bound.
    pub too_many_senders: u64,
}

impl AuthStats {
    /// Count one rejection.
    pub fn count(&mut self, rejection: Rejection) {
        let counter = match rejection {
            Rejection::Malformed => &mut self.malformed,
            Rejection::UnknownKey => &mut self.unknown_key,
            Rejection::Unauthenticated => &mut self.unauthenticated,
            Rejection::Replayed => &mut self.replayed,
            Rejection::OldSession => &mut self.old_session,
            Rejection::Misdirected => &mut self.misdirected,
            Rejection::TooManySenders => &mut self.too_many_senders,
        };
        *counter += 1;
    }

    /// Frames dropped, of every kind.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.unknown_key
            + self.unauthenticated
            + self.replayed
            + self.old_session
            + self.misdirected
            + self.too_many_senders
    }

    /// Add `other`'s counts to these.
    pub fn add(&mut self, other: &AuthStats) {
        self.accepted += other.accepted;
        self.malformed += other.malformed;
        self.unknown_key += other.unknown_key;
        self.unauthenticated += other.unauthenticated;
        self.replayed += other.replayed;
        self.old_session += other.old_session;
        self.misdirected += other.misdirected;
        self.too_many_senders += other.too_many_senders;
    }
}

/// A receiver's side: the keyring, one replay window per sender, counters.
#[derive(Clone, Debug)]
pub struct Opener {
    local: NodeId,
    keyring: Keyring,
    windows: BTreeMap<NodeId, Window>,
    max_senders: usize,
    stats: AuthStats,
}

impl Opener {
    /// Accept frames for node `local` under `keyring`, tracking at most
    /// `max_senders` senders (the fleet's size is enough: only senders
    /// whose frames verified are tracked).
    pub fn new(local: NodeId, keyring: Keyring, max_senders: usize) -> Opener {
        Opener { local, keyring, windows: BTreeMap::new(), max_senders, stats: AuthStats::default() }
    }

    /// The keyring, to add or retire keys while running (rotation).
    pub fn keyring_mut(&mut self) -> &mut Keyring {
        &mut self.keyring
    }

    /// What was accepted and dropped so far.
    pub fn stats(&self) -> AuthStats {
        self.stats
    }

    /// Senders tracked.
    pub fn senders(&self) -> usize {
        self.windows.len()
    }

    /// Open a datagram: the sender's header and its message, or why not.
    pub fn open(&mut self, datagram: &[u8]) -> Result<(Header, Message), OpenError> {
        let result = self.open_bytes(datagram);
        self.tally(&result);
        result
    }

    /// Check a typed frame (the simulator's form): its tag over the bytes
    /// its header and message encode to, and the window.
    pub fn open_frame(&mut self, frame: &Frame) -> Result<(), OpenError> {
        let result = self.check_frame(frame);
        self.tally(&result);
        result
    }

    fn tally<T>(&mut self, result: &Result<T, OpenError>) {
        match result {
            Ok(_) => self.stats.accepted += 1,
            Err(error) => self.stats.count(error.rejection()),
        }
    }

    fn open_bytes(&mut self, datagram: &[u8]) -> Result<(Header, Message), OpenError> {
        if datagram.len() < OVERHEAD {
            // Even a version byte is worth reporting when it is wrong.
            if let Some(&found) = datagram.first()
                && found != FRAME_VERSION
            {
                return Err(OpenError::UnsupportedVersion { found, expected: FRAME_VERSION });
            }
            return Err(OpenError::TooShort { len: datagram.len(), min: OVERHEAD });
        }
        if datagram[0] != FRAME_VERSION {
            return Err(OpenError::UnsupportedVersion { found: datagram[0], expected: FRAME_VERSION });
        }
        let mut header_bytes = [0u8; HEADER_LEN];
        header_bytes.copy_from_slice(&datagram[..HEADER_LEN]);
        let header = Header::from_bytes(&header_bytes);
        let (covered, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        self.authenticate(&header, covered, tag)?;
        let message = match postcard::take_from_bytes::<Message>(&covered[HEADER_LEN..]) {
            Ok((message, [])) => message,
            _ => return Err(OpenError::Undecodable { from: header.from }),
        };
        self.record(&header);
        Ok((header, message))
    }

    fn check_frame(&mut self, frame: &Frame) -> Result<(), OpenError> {
        let mut buf = [0u8; HEADER_LEN + MAX_MESSAGE_LEN];
        let Ok(covered) = frame::encode_covered(&frame.header, &frame.message, &mut buf) else {
            return Err(OpenError::Undecodable { from: frame.header.from });
        };
        self.authenticate(&frame.header, &buf[..covered], &frame.tag.0)?;
        self.record(&frame.header);
        Ok(())
    }

    /// The key, the tag and the window, in that order; changes nothing.
    fn authenticate(&self, header: &Header, covered: &[u8], tag: &[u8]) -> Result<(), OpenError> {
        let from = header.from;
        let Some(mac) = self.keyring.lookup(from, header.key_id) else {
            return Err(OpenError::UnknownKey { from, key_id: header.key_id });
        };
        let mut mac = mac.clone();
        mac.update(covered);
        // Constant time: the comparison does not tell a forger how many
        // leading bytes it got right.
        mac.verify_truncated_left(tag).map_err(|_| OpenError::Unauthenticated { from })?;
        if header.to != self.local {
            return Err(OpenError::Misdirected { from, to: header.to });
        }
        match self.windows.get(&from) {
            Some(window) => window.check(header.session, header.seq).map_err(|refusal| match refusal {
                Refusal::Replayed => OpenError::Replayed { from, session: header.session, seq: header.seq },
                Refusal::OldSession { current } => {
                    OpenError::OldSession { from, session: header.session, current }
                }
            }),
            None if self.windows.len() >= self.max_senders => Err(OpenError::TooManySenders { from }),
            None => Ok(()),
        }
    }

    /// Record an accepted frame's sequence number.
    fn record(&mut self, header: &Header) {
        self.windows
            .entry(header.from)
            .and_modify(|w| w.accept(header.session, header.seq))
            .or_insert_with(|| Window::new(header.session, header.seq));
    }
}
