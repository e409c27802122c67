//! The datagram format: one authenticated frame per UDP datagram.
//!
//! ```text
//! +---------+------+-----+--------+---------+-----+----------------------+------+
//! | version | from | to  | key id | session | seq | postcard(Message)    | tag  |
//! | 1 byte  | u32  | u32 | u16    | u64     | u64 | the message, n bytes | 16 B |
//! +---------+------+-----+--------+---------+-----+----------------------+------+
//! |<--------- 27-byte header, little-endian --->|                        |
//! |<------------------------ covered by the HMAC-SHA256 tag ------------>|
//! ```
//!
//! The frame itself, its checks and its threat model are
//! [`vigil_core::auth`]'s, shared with the simulator: this module sizes
//! datagrams, maps errors, and turns configuration into a [`Sealer`] and an
//! [`Opener`] ([`WireAuth`]).
//!
//! [`Message`] does not say who sent it, but a machine's
//! [`Input::Message`](vigil_core::envelope::Input::Message) needs the sender's
//! [`NodeId`], and a socket address is not a node id (a restarted node may
//! come back on another port). So the sender's id travels in the header,
//! covered by the tag: a datagram can claim to be from a node only if it was
//! sealed under a key the receiver accepts for that node.
//!
//! The version byte comes first so that a node can reject a datagram from an
//! incompatible build by reading one byte, with a clear error, instead of
//! misreading it. Bump [`WIRE_VERSION`] (it is
//! [`FRAME_VERSION`](vigil_core::auth::FRAME_VERSION)) on any change that old
//! decoders would misread (reordering fields or variants); appending a
//! variant to [`Message`] does not need a bump, since old decoders reject the
//! unknown variant index as malformed (`CallReport`, the clients' call
//! outcomes, was appended so).
//!
//! Decoding is strict: a datagram larger than [`MAX_DATAGRAM`], with another
//! version, too short for a header and a tag, under an unknown key, with a
//! tag that does not verify, replayed, from an old session, or authentic but
//! with a message that does not decode is an error ([`WireError`]), never a
//! panic. The driver counts each kind apart
//! ([`DriverStats`](crate::DriverStats)) and drops it.
//!
//! # Keys in configuration
//!
//! A key is 32 bytes written as 64 hexadecimal digits (`openssl rand -hex
//! 32`), with a small key id (1 unless rotating). Every datagram a driver
//! sends is sealed under its send key; it accepts the keys of its keyring.
//! [`WireAuth::fleet`] is the common case: one key, sent under and
//! accepted. Without a key a driver cannot be built: the only way around is
//! [`WireAuth::insecure_no_auth`], for local development, which seals under
//! a well-known all-zero key (key id 0): anyone can forge such frames, and
//! the driver says so loudly when it starts.

use vigil_core::NodeId;
use vigil_core::auth::{Key, KeyError, KeyId, Keyring, OpenError, Opener, SealError, Sealer};
use vigil_core::message::Message;

/// The version byte this build writes and accepts.
///
/// History: 1, the first layout; 2, [`EndpointUpdate`] names the
/// instance's service (a field inserted after `instance`, which a version-1
/// decoder would misread as the node); 3, the authenticated frame (sender,
/// destination, key id, session and sequence in a fixed header, an HMAC tag after the
/// message).
///
/// [`EndpointUpdate`]: vigil_core::message::EndpointUpdate
pub const WIRE_VERSION: u8 = vigil_core::auth::FRAME_VERSION;

/// The largest datagram this crate sends or accepts, in bytes.
///
/// 1200 bytes fit in one packet on any path (the same bound QUIC assumes), so
/// a datagram is never fragmented. Today's messages take about 20, and the
/// frame adds [`OVERHEAD`](vigil_core::auth::OVERHEAD) (43).
pub const MAX_DATAGRAM: usize = 1200;

/// Most senders whose replay windows a driver keeps (only senders whose
/// frames verified are kept, so the fleet's size is what counts).
pub const MAX_SENDERS: usize = 65_536;

/// What one datagram carries once opened: a message and the node that sent
/// it (authenticated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// The protocol message.
    pub message: Message,
}

/// Seal `message` for node `to` as the datagram `sealer` makes next, at
/// the start of `buf`; returns its length.
pub fn seal_datagram(
    sealer: &mut Sealer,
    to: NodeId,
    message: &Message,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let len = sealer.seal(to, message, buf).map_err(WireError::Encode)?;
    if len > MAX_DATAGRAM {
        return Err(WireError::TooLarge { len, max: MAX_DATAGRAM });
    }
    Ok(len)
}

impl Envelope {
    /// Read one datagram, authenticated by `opener`.
    pub fn open(opener: &mut Opener, datagram: &[u8]) -> Result<Envelope, WireError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(WireError::TooLarge { len: datagram.len(), max: MAX_DATAGRAM });
        }
        if datagram.is_empty() {
            return Err(WireError::Empty);
        }
        let (header, message) = opener.open(datagram).map_err(WireError::Frame)?;
        Ok(Envelope { from: header.from, message })
    }
}

/// How a driver authenticates its datagrams: the key it seals under and
/// the keys it accepts; or, for local development only, nothing.
#[derive(Clone, Debug)]
pub struct WireAuth {
    send: (KeyId, Key),
    keyring: Keyring,
    insecure: bool,
}

impl WireAuth {
    /// Seal under `key` (id `key_id`) and accept it from any node: one key
    /// for the whole fleet. Any holder of it can speak as any node; see
    /// [`accept_node_key`](WireAuth::accept_node_key) for keys that pin a
    /// node.
    pub fn fleet(key_id: KeyId, key: Key) -> WireAuth {
        let keyring = Keyring::fleet(key_id, &key);
        WireAuth { send: (key_id, key), keyring, insecure: false }
    }

    /// Seal under `key` (id `key_id`) and accept nothing yet: add what to
    /// accept with [`accept_fleet_key`](WireAuth::accept_fleet_key) and
    /// [`accept_node_key`](WireAuth::accept_node_key). For a node sending
    /// under a key of its own.
    pub fn sending(key_id: KeyId, key: Key) -> WireAuth {
        WireAuth { send: (key_id, key), keyring: Keyring::new(), insecure: false }
    }

    /// [`fleet`](WireAuth::fleet) from 64 hexadecimal digits.
    pub fn fleet_hex(key_id: u16, hex: &str) -> Result<WireAuth, KeyError> {
        Ok(WireAuth::fleet(KeyId(key_id), Key::from_hex(hex)?))
    }

    /// Also accept `key` (id `key_id`) from any node: during a rotation,
    /// the other of the old and the new key.
    #[must_use]
    pub fn accept_fleet_key(mut self, key_id: KeyId, key: &Key) -> WireAuth {
        self.keyring.add_fleet_key(key_id, key);
        self
    }

    /// Accept frames claiming `node` under `key` (id `key_id`) only, and
    /// no fleet key for it any more: a fleet-key holder can no longer speak
    /// as `node`.
    #[must_use]
    pub fn accept_node_key(mut self, node: NodeId, key_id: KeyId, key: &Key) -> WireAuth {
        self.keyring.add_node_key(node, key_id, key);
        self
    }

    /// No authentication, for local development: frames are sealed under
    /// a well-known all-zero key (id 0) that anyone can use, so any
    /// datagram can claim any node. The driver logs a warning at start.
    /// Drivers with a real key drop these frames, and these drop theirs.
    pub fn insecure_no_auth() -> WireAuth {
        let (id, key) = (KeyId(0), Key::from_bytes([0; vigil_core::auth::KEY_LEN]));
        WireAuth { keyring: Keyring::fleet(id, &key), send: (id, key), insecure: true }
    }

    /// Whether this is [`insecure_no_auth`](WireAuth::insecure_no_auth).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The sender and receiver of node `node` in session `session`.
    pub(crate) fn into_parts(self, node: NodeId, session: u64) -> (Sealer, Opener) {
        let sealer = Sealer::new(node, self.send.0, &self.send.1, session);
        (sealer, Opener::new(node, self.keyring, MAX_SENDERS))
    }
}

/// A datagram that could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A datagram of zero bytes.
    #[error("empty datagram")]
    Empty,
    /// The datagram, or the one being written, exceeds [`MAX_DATAGRAM`].
    #[error("datagram of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Its length (a received datagram may have been cut at `max + 1`).
        len: usize,
        /// [`MAX_DATAGRAM`].
        max: usize,
    },
    /// The frame was refused: malformed, unauthenticated, replayed, …
    #[error("{0}")]
    Frame(#[source] OpenError),
    /// The message does not fit the buffer it is written into.
    #[error("cannot seal message: {0}")]
    Encode(#[source] SealError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::InstanceId;
    use vigil_core::auth::{OVERHEAD, Rejection};
    use vigil_core::message::Heartbeat;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(node: u32) -> (Sealer, Opener) {
        WireAuth::fleet_hex(1, HEX).expect("valid key").into_parts(NodeId(node), 1)
    }

    fn beat() -> Message {
        Message::Heartbeat(Heartbeat { instance: InstanceId(3), incarnation: u64::MAX, seq: 42 })
    }

    fn sealed(sealer: &mut Sealer, message: &Message) -> Vec<u8> {
        let mut buf = [0u8; MAX_DATAGRAM];
        let len = seal_datagram(sealer, NodeId(0), message, &mut buf).expect("fits");
        buf[..len].to_vec()
    }

    #[test]
    fn round_trips_once() {
        let (mut sealer, _) = parts(7);
        let (_, mut opener) = parts(0);
        let datagram = sealed(&mut sealer, &beat());
        assert_eq!(datagram[0], WIRE_VERSION);
        assert_eq!(Envelope::open(&mut opener, &datagram), Ok(Envelope { from: NodeId(7), message: beat() }));
        let replayed = Envelope::open(&mut opener, &datagram).map_err(|e| match e {
            WireError::Frame(f) => f.rejection(),
            other => panic!("{other:?}"),
        });
        assert_eq!(replayed, Err(Rejection::Replayed));
    }

    #[test]
    fn a_call_report_round_trips_and_fits_in_a_datagram_many_times_over() {
        use vigil_core::message::CallReport;
        let report = Message::CallReport(CallReport {
            instance: InstanceId(u32::MAX),
            ok: u32::MAX,
            errors: 1,
            refused: 2,
            timed_out: 3,
            since_ok_ms: CallReport::NEVER,
            since_failure_ms: 250,
        });
        let (mut sealer, _) = parts(3);
        let (_, mut opener) = parts(0);
        let datagram = sealed(&mut sealer, &report);
        assert!(datagram.len() < 64 + OVERHEAD, "{} bytes", datagram.len());
        assert_eq!(Envelope::open(&mut opener, &datagram), Ok(Envelope { from: NodeId(3), message: report }));
    }

    #[test]
    fn rejects_every_kind_of_garbage() {
        let (mut sealer, _) = parts(7);
        let good = sealed(&mut sealer, &beat());
        let (_, mut opener) = parts(0);
        assert_eq!(Envelope::open(&mut opener, &[]), Err(WireError::Empty));
        let huge = vec![WIRE_VERSION; MAX_DATAGRAM + 1];
        assert_eq!(
            Envelope::open(&mut opener, &huge),
            Err(WireError::TooLarge { len: MAX_DATAGRAM + 1, max: MAX_DATAGRAM })
        );
        let mut other_version = good.clone();
        other_version[0] = WIRE_VERSION + 1;
        assert_eq!(
            Envelope::open(&mut opener, &other_version),
            Err(WireError::Frame(OpenError::UnsupportedVersion {
                found: WIRE_VERSION + 1,
                expected: WIRE_VERSION
            }))
        );
        for cut in 1..good.len() {
            assert!(Envelope::open(&mut opener, &good[..cut]).is_err(), "truncated to {cut} bytes");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            Envelope::open(&mut opener, &trailing),
            Err(WireError::Frame(OpenError::Unauthenticated { .. }))
        ));
        // None of that used up the genuine datagram's sequence number.
        assert!(Envelope::open(&mut opener, &good).is_ok());
    }

    #[test]
    fn a_version_2_datagram_is_refused_by_its_version_byte() {
        // Version 2 was `[2, postcard(Envelope { from, message })]`.
        let datagram = [2u8, 7, 0, 3, 0xff, 0xff, 1, 42];
        let (_, mut opener) = parts(0);
        assert_eq!(
            Envelope::open(&mut opener, &datagram),
            Err(WireError::Frame(OpenError::UnsupportedVersion { found: 2, expected: WIRE_VERSION }))
        );
    }

    #[test]
    fn insecure_frames_and_keyed_frames_do_not_mix() {
        let (mut insecure, mut insecure_opener) = WireAuth::insecure_no_auth().into_parts(NodeId(0), 1);
        let (mut keyed, mut keyed_opener) = parts(2);
        let from_insecure = sealed(&mut insecure, &beat());
        let from_keyed = sealed(&mut keyed, &beat());
        assert!(Envelope::open(&mut keyed_opener, &from_insecure).is_err());
        assert!(Envelope::open(&mut insecure_opener, &from_keyed).is_err());
        assert!(Envelope::open(&mut insecure_opener, &from_insecure).is_ok());
        assert!(WireAuth::insecure_no_auth().is_insecure());
    }

    #[test]
    fn encoding_into_a_small_buffer_is_an_error() {
        let (mut sealer, _) = parts(7);
        assert!(matches!(seal_datagram(&mut sealer, NodeId(0), &beat(), &mut []), Err(WireError::Encode(_))));
        assert!(matches!(
            seal_datagram(&mut sealer, NodeId(0), &beat(), &mut [0u8; 30]),
            Err(WireError::Encode(_))
        ));
        assert_eq!(sealer.sealed(), 0, "a failed seal uses no sequence number");
    }
}
