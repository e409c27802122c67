//! The simulated network carries authenticated frames, with the same code
//! as the tokio driver ([`vigil_core::auth`]).
//!
//! # Why
//!
//! The frame is what keeps forged and replayed datagrams out in
//! production; running it here means every scenario exercises the replay
//! windows against the network's own duplication and reordering (a
//! duplicated message's second copy is now dropped as a replay, as it
//! would be for real), and an attacker fault can show that forged and
//! replayed traffic changes nothing.
//!
//! # Typed frames, not bytes
//!
//! The event queue carries a [`Frame`]: header, message and tag as values
//! (`Copy`, no heap). Sealing encodes header and message with postcard into
//! a stack buffer and computes the tag over those bytes; opening re-encodes
//! them the same way and checks the tag: the MAC covers exactly the bytes a
//! datagram would hold, and the simulator moves no per-message allocation.
//! Carrying bytes instead would need a buffer per event (or a slab), and
//! decoding on delivery, for no check the typed form misses: a frame can
//! only be tampered with by building another `Frame`, which is what the
//! attacker fault does.
//!
//! In production probes and calls to an instance go over HTTP, not in
//! frames; here they travel as messages like everything else, so they are
//! sealed too. The host's refusal for a dead process (`Refused`) is sealed
//! by the host's slot with the last life's session.
//!
//! The fleet's key is derived from the run's seed, so a run stays a pure
//! function of (scenario, seed); an attacker node never holds it.

use rand::RngExt as _;
use vigil_core::NodeId;
use vigil_core::auth::{Frame, KEY_LEN, Key, KeyId, Keyring, Sealer};
use vigil_core::message::Message;
use vigil_core::rng::Seed;

/// The fleet's key id in every run.
pub(super) const KEY_ID: KeyId = KeyId(1);

/// The fleet's key and the keyring every node opens with.
pub(super) struct Wire {
    pub(super) key: Key,
    pub(super) keyring: Keyring,
}

impl Wire {
    /// The key of the run seeded `seed`.
    pub(super) fn new(seed: Seed) -> Wire {
        let mut rng = seed.child_named("wire-key").rng();
        let mut bytes = [0u8; KEY_LEN];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&rng.random::<u64>().to_le_bytes());
        }
        let key = Key::from_bytes(bytes);
        Wire { keyring: Keyring::fleet(KEY_ID, &key), key }
    }
}

/// Seal `message` from `sealer`'s node to `to`.
pub(super) fn seal(sealer: &mut Sealer, to: NodeId, message: Message) -> Frame {
    // Every message fits `MAX_MESSAGE_LEN` (a core test proves it), and a
    // run cannot send 2^64 frames.
    sealer.seal_frame(to, message).expect("a protocol message always fits a frame")
}
