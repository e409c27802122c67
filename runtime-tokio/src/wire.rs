//! The datagram format: one [`Envelope`] per UDP datagram.
//!
//! ```text
//! +---------+------------------------------------------+
//! | version | postcard(Envelope { from, message })     |
//! | 1 byte  | the rest of the datagram, nothing after  |
//! +---------+------------------------------------------+
//! ```
//!
//! [`Message`] does not say who sent it, but a machine's
//! [`Input::Message`](vigil_core::envelope::Input::Message) needs the sender's
//! [`NodeId`], and a socket address is not a node id (a restarted node may
//! come back on another port). So the sender's id travels in the envelope.
//!
//! The version byte comes first so that a node can reject a datagram from an
//! incompatible build by reading one byte, with a clear error, instead of
//! misreading it. Bump [`WIRE_VERSION`] on any change that old decoders would
//! misread (reordering fields or variants); appending a variant to
//! [`Message`] does not need a bump, since old decoders reject the unknown
//! variant index as malformed (`CallReport`, the clients' call outcomes,
//! was appended so: a control node of an older build counts a newer
//! client's reports as malformed and drops them; everything else works).
//!
//! Decoding is strict: a datagram larger than [`MAX_DATAGRAM`], with another
//! version, with a body that does not decode, or with bytes left over is an
//! error ([`WireError`]), never a panic. The driver counts and drops it.

use serde::{Deserialize, Serialize};
use vigil_core::NodeId;
use vigil_core::message::Message;

/// The version byte this build writes and accepts.
///
/// History: 1, the first layout; 2, [`EndpointUpdate`] names the
/// instance's service (a field inserted after `instance`, which a version-1
/// decoder would misread as the node).
///
/// [`EndpointUpdate`]: vigil_core::message::EndpointUpdate
pub const WIRE_VERSION: u8 = 2;

/// The largest datagram this crate sends or accepts, in bytes.
///
/// 1200 bytes fit in one packet on any path (the same bound QUIC assumes), so
/// a datagram is never fragmented. Today's messages take about 20.
pub const MAX_DATAGRAM: usize = 1200;

/// What one datagram carries: a message and the node that sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// The protocol message.
    pub message: Message,
}

impl Envelope {
    /// Write the datagram for this envelope at the start of `buf`; returns
    /// its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let Some((version, body)) = buf.split_first_mut() else {
            return Err(WireError::Encode(postcard::Error::SerializeBufferFull));
        };
        *version = WIRE_VERSION;
        let body_len = postcard::to_slice(self, body).map_err(WireError::Encode)?.len();
        let len = 1 + body_len;
        if len > MAX_DATAGRAM {
            return Err(WireError::TooLarge { len, max: MAX_DATAGRAM });
        }
        Ok(len)
    }

    /// Read one datagram.
    pub fn decode(datagram: &[u8]) -> Result<Envelope, WireError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(WireError::TooLarge { len: datagram.len(), max: MAX_DATAGRAM });
        }
        let Some((&version, body)) = datagram.split_first() else {
            return Err(WireError::Empty);
        };
        if version != WIRE_VERSION {
            return Err(WireError::UnsupportedVersion { found: version, expected: WIRE_VERSION });
        }
        let (envelope, rest) = postcard::take_from_bytes::<Envelope>(body).map_err(WireError::Decode)?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes { len: rest.len() });
        }
        Ok(envelope)
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
    /// The first byte is not [`WIRE_VERSION`]: another build, or not vigil.
    #[error("wire version {found}, expected {expected}")]
    UnsupportedVersion {
        /// The version byte received.
        found: u8,
        /// [`WIRE_VERSION`].
        expected: u8,
    },
    /// The body is not a valid envelope.
    #[error("undecodable envelope: {0}")]
    Decode(#[source] postcard::Error),
    /// A valid envelope followed by bytes that belong to nothing.
    #[error("{len} trailing bytes after the envelope")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// The envelope does not fit the buffer it is written into.
    #[error("cannot encode envelope: {0}")]
    Encode(#[source] postcard::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::InstanceId;
    use vigil_core::message::Heartbeat;

    fn envelope() -> Envelope {
        Envelope {
            from: NodeId(7),
            message: Message::Heartbeat(Heartbeat {
                instance: InstanceId(3),
                incarnation: u64::MAX,
                seq: 42,
            }),
        }
    }

    fn encoded() -> Vec<u8> {
        let mut buf = [0u8; MAX_DATAGRAM];
        let len = envelope().encode(&mut buf).expect("fits");
        buf[..len].to_vec()
    }

    #[test]
    fn round_trips() {
        let datagram = encoded();
        assert_eq!(datagram[0], WIRE_VERSION);
        assert_eq!(Envelope::decode(&datagram), Ok(envelope()));
    }

    #[test]
    fn a_call_report_round_trips_and_fits_in_a_datagram_many_times_over() {
        use vigil_core::message::CallReport;
        let report = Envelope {
            from: NodeId(3),
            message: Message::CallReport(CallReport {
                instance: InstanceId(u32::MAX),
                ok: u32::MAX,
                errors: 1,
                refused: 2,
                timed_out: 3,
                since_ok_ms: CallReport::NEVER,
                since_failure_ms: 250,
            }),
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let len = report.encode(&mut buf).expect("fits");
        assert!(len < 64, "{len} bytes");
        assert_eq!(Envelope::decode(&buf[..len]), Ok(report));
    }

    #[test]
    fn rejects_every_kind_of_garbage() {
        let good = encoded();
        assert_eq!(Envelope::decode(&[]), Err(WireError::Empty));
        let mut other_version = good.clone();
        other_version[0] = WIRE_VERSION + 1;
        assert_eq!(
            Envelope::decode(&other_version),
            Err(WireError::UnsupportedVersion { found: WIRE_VERSION + 1, expected: WIRE_VERSION })
        );
        for cut in 1..good.len() {
            assert!(
                matches!(Envelope::decode(&good[..cut]), Err(WireError::Decode(_))),
                "truncated to {cut} bytes"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Envelope::decode(&trailing), Err(WireError::TrailingBytes { len: 1 }));
        let huge = vec![WIRE_VERSION; MAX_DATAGRAM + 1];
        assert_eq!(
            Envelope::decode(&huge),
            Err(WireError::TooLarge { len: MAX_DATAGRAM + 1, max: MAX_DATAGRAM })
        );
        // An unknown `Message` variant index.
        let mut unknown_variant = vec![WIRE_VERSION, 7, 0x7f];
        unknown_variant.extend_from_slice(&good[3..]);
        assert!(matches!(Envelope::decode(&unknown_variant), Err(WireError::Decode(_))));
    }

    #[test]
    fn an_endpoint_update_carries_its_service_and_a_version_1_datagram_is_refused() {
        use vigil_core::ServiceId;
        use vigil_core::message::EndpointUpdate;
        let update = Envelope {
            from: NodeId(0),
            message: Message::EndpointUpdate(EndpointUpdate {
                instance: InstanceId(4),
                service: ServiceId(2),
                node: NodeId(5),
                routable: true,
                index: 9,
            }),
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let len = update.encode(&mut buf).expect("fits");
        assert_eq!(Envelope::decode(&buf[..len]), Ok(update));
        // The same bytes from a build before the service field: refused by
        // the version byte, not misread.
        buf[0] = 1;
        assert_eq!(
            Envelope::decode(&buf[..len]),
            Err(WireError::UnsupportedVersion { found: 1, expected: WIRE_VERSION })
        );
    }

    #[test]
    fn encoding_into_a_small_buffer_is_an_error() {
        assert!(matches!(envelope().encode(&mut []), Err(WireError::Encode(_))));
        assert!(matches!(envelope().encode(&mut [0u8; 4]), Err(WireError::Encode(_))));
    }
}
