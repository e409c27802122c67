//! The frame: header, message, tag; and the sender's side, [`Sealer`].

use std::collections::BTreeMap;

use hmac::Mac as _;

use super::key::{Key, KeyId, Mac};
use crate::id::NodeId;
use crate::message::Message;

/// The version byte of the frame layout, the first byte of every datagram.
///
/// History (shared with the tokio crate's `WIRE_VERSION`, which is this):
/// 1, the first layout; 2, `EndpointUpdate` names its service; 3, the
/// authenticated frame (this module).
pub const FRAME_VERSION: u8 = 3;

/// Bytes of the fixed header: version, sender, destination, key id,
/// session, sequence.
pub const HEADER_LEN: usize = 1 + 4 + 4 + 2 + 8 + 8;

/// Bytes of the tag: HMAC-SHA256 truncated to its first 16 bytes (128
/// bits, as RFC 2104 §5 allows: a forger's chance per try is 2^-128).
pub const TAG_LEN: usize = 16;

/// Bytes a frame adds to the encoded message.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The largest encoded [`Message`] (postcard), with room to spare: a
/// frame is built and checked in a stack buffer of `HEADER_LEN` plus this,
/// never on the heap. The largest message today, a `CallReport` of
/// maximal values, takes 36 bytes.
pub const MAX_MESSAGE_LEN: usize = 128;

/// The largest frame: [`OVERHEAD`] plus [`MAX_MESSAGE_LEN`].
pub const MAX_FRAME_LEN: usize = OVERHEAD + MAX_MESSAGE_LEN;

/// What a frame says about itself, in front of the message, covered by the
/// tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The node the frame claims to come from.
    pub from: NodeId,
    /// The node it is for: a receiver drops frames for another node, so a
    /// frame captured on its way to one node cannot be replayed to
    /// another.
    pub to: NodeId,
    /// The key that sealed it.
    pub key_id: KeyId,
    /// The sender's session: strictly greater after every restart of the
    /// sender, so a receiver knows to start a new replay window.
    pub session: u64,
    /// The frame's number in its session towards `to`: 0 first, then +1
    /// per frame to that destination. Numbered per destination so that a
    /// receiver sees its sender's numbers without gaps, and reordering on
    /// one link is not mistaken for age because the sender was busy
    /// talking to others.
    pub seq: u64,
}

impl Header {
    /// The header's bytes (little-endian integers after the version byte).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = FRAME_VERSION;
        out[1..5].copy_from_slice(&self.from.0.to_le_bytes());
        out[5..9].copy_from_slice(&self.to.0.to_le_bytes());
        out[9..11].copy_from_slice(&self.key_id.0.to_le_bytes());
        out[11..19].copy_from_slice(&self.session.to_le_bytes());
        out[19..27].copy_from_slice(&self.seq.to_le_bytes());
        out
    }

    /// Read a header from its bytes; the version byte must be
    /// [`FRAME_VERSION`] (checked by the caller, who reports it).
    pub(crate) fn from_bytes(bytes: &[u8; HEADER_LEN]) -> Header {
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Header {
            from: NodeId(u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])),
            to: NodeId(u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]])),
            key_id: KeyId(u16::from_le_bytes([bytes[9], bytes[10]])),
            session: u64_at(11),
            seq: u64_at(19),
        }
    }
}

/// A frame's tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag(pub [u8; TAG_LEN]);

/// A frame in typed form: what the simulator carries through its event
/// queue instead of bytes. It is exactly the datagram (header, message,
/// tag); a receiver checks it by re-encoding header and message into a
/// stack buffer, so the MAC is computed over the very bytes a datagram
/// would hold, and no frame allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The message.
    pub message: Message,
    /// The tag over `header` and `message`.
    pub tag: Tag,
}

/// A message that cannot be sealed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The output buffer (or [`MAX_MESSAGE_LEN`]) is too small.
    #[error("cannot encode the message into the frame: {0}")]
    Encode(#[source] postcard::Error),
    /// The session's sequence numbers are used up (after 2^64 frames).
    #[error("sequence numbers of session {session} exhausted")]
    Exhausted {
        /// The session.
        session: u64,
    },
}

/// Encode `header` and `message` at the start of `buf`; returns the
/// length covered by the tag.
pub(crate) fn encode_covered(
    header: &Header,
    message: &Message,
    buf: &mut [u8],
) -> Result<usize, postcard::Error> {
    if buf.len() < HEADER_LEN {
        return Err(postcard::Error::SerializeBufferFull);
    }
    buf[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    let body = postcard::to_slice(message, &mut buf[HEADER_LEN..])?.len();
    Ok(HEADER_LEN + body)
}

/// The tag of `covered` (header and message bytes) under `mac`.
pub(crate) fn tag_of(mac: &Mac, covered: &[u8]) -> Tag {
    let mut mac = mac.clone();
    mac.update(covered);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    Tag(tag)
}

/// A sender's side: its id, the key it seals under, its session and the
/// next sequence number towards each destination (one entry per
/// destination it has sent to: bounded by the peers it talks to).
#[derive(Clone)]
pub struct Sealer {
    from: NodeId,
    key_id: KeyId,
    mac: Mac,
    session: u64,
    next_seq: BTreeMap<NodeId, u64>,
    sealed: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("from", &self.from)
            .field("key_id", &self.key_id)
            .field("session", &self.session)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Seal as `from` under key `key_id`, in session `session`, which must
    /// be greater than any session `from` used before (see
    /// [`Header::session`]).
    pub fn new(from: NodeId, key_id: KeyId, key: &Key, session: u64) -> Sealer {
        Sealer { from, key_id, mac: key.mac(), session, next_seq: BTreeMap::new(), sealed: 0 }
    }

    /// Seal under another key from the next frame on (a rotation's second
    /// step); the session and sequence go on.
    pub fn rekey(&mut self, key_id: KeyId, key: &Key) {
        self.key_id = key_id;
        self.mac = key.mac();
    }

    /// The node it seals as.
    pub fn from(&self) -> NodeId {
        self.from
    }

    /// The session.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Frames sealed so far.
    pub fn sealed(&self) -> u64 {
        self.sealed
    }

    /// Write the datagram for `message` at the start of `buf`; returns its
    /// length. A failed seal uses up no sequence number.
    pub fn seal(&mut self, to: NodeId, message: &Message, buf: &mut [u8]) -> Result<usize, SealError> {
        let header = self.peek_header(to)?;
        let covered = encode_covered(&header, message, buf).map_err(SealError::Encode)?;
        let end = covered + TAG_LEN;
        if buf.len() < end {
            return Err(SealError::Encode(postcard::Error::SerializeBufferFull));
        }
        let tag = tag_of(&self.mac, &buf[..covered]);
        buf[covered..end].copy_from_slice(&tag.0);
        self.advance(&header);
        Ok(end)
    }

    /// `message` as a typed [`Frame`] (the simulator's form).
    pub fn seal_frame(&mut self, to: NodeId, message: Message) -> Result<Frame, SealError> {
        let header = self.peek_header(to)?;
        let mut buf = [0u8; HEADER_LEN + MAX_MESSAGE_LEN];
        let covered = encode_covered(&header, &message, &mut buf).map_err(SealError::Encode)?;
        let tag = tag_of(&self.mac, &buf[..covered]);
        self.advance(&header);
        Ok(Frame { header, message, tag })
    }

    fn peek_header(&self, to: NodeId) -> Result<Header, SealError> {
        let seq = self.next_seq.get(&to).copied().unwrap_or(0);
        if seq == u64::MAX {
            return Err(SealError::Exhausted { session: self.session });
        }
        Ok(Header { from: self.from, to, key_id: self.key_id, session: self.session, seq })
    }

    fn advance(&mut self, header: &Header) {
        self.next_seq.insert(header.to, header.seq + 1);
        self.sealed += 1;
    }
}
