//! Properties of the frame: what a sender seals, a receiver opens once;
//! anything else is dropped and counted.

use proptest::prelude::*;

use super::*;
use crate::id::{InstanceId, ServiceId};
use crate::message::{CallReport, EndpointUpdate, Heartbeat};

const KEY: Key = Key::from_bytes([7; KEY_LEN]);
const OTHER_KEY: Key = Key::from_bytes([8; KEY_LEN]);
const ID: KeyId = KeyId(1);
/// The receiving node.
const ME: NodeId = NodeId(0);

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(i, incarnation, seq)| {
            Message::Heartbeat(Heartbeat { instance: InstanceId(i), incarnation, seq })
        }),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), any::<u64>()).prop_map(
            |(i, s, n, routable, index)| {
                Message::EndpointUpdate(EndpointUpdate {
                    instance: InstanceId(i),
                    service: ServiceId(s),
                    node: NodeId(n),
                    routable,
                    index,
                })
            }
        ),
        (any::<u32>(), any::<[u32; 6]>()).prop_map(|(i, v)| {
            Message::CallReport(CallReport {
                instance: InstanceId(i),
                ok: v[0],
                errors: v[1],
                refused: v[2],
                timed_out: v[3],
                since_ok_ms: v[4],
                since_failure_ms: v[5],
            })
        }),
        Just(Message::Subscribe),
    ]
}

fn opener() -> Opener {
    Opener::new(ME, Keyring::fleet(ID, &KEY), 16)
}

fn seal(sealer: &mut Sealer, message: &Message) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = sealer.seal(ME, message, &mut buf).expect("fits");
    buf[..len].to_vec()
}

proptest! {
    #[test]
    fn a_sealed_frame_opens_to_the_same_message(
        message in message(), from in any::<u32>(), session in any::<u64>()
    ) {
        let mut sealer = Sealer::new(NodeId(from), ID, &KEY, session);
        let datagram = seal(&mut sealer, &message);
        prop_assert!(datagram.len() <= MAX_FRAME_LEN);
        let (header, opened) = opener().open(&datagram).expect("opens");
        prop_assert_eq!(opened, message);
        prop_assert_eq!(header, Header { from: NodeId(from), to: ME, key_id: ID, session, seq: 0 });
        // The typed form is the same frame: same tag, and it opens too.
        let mut typed = Sealer::new(NodeId(from), ID, &KEY, session);
        let frame = typed.seal_frame(ME, message).expect("fits");
        prop_assert_eq!(&frame.tag.0[..], &datagram[datagram.len() - TAG_LEN..]);
        prop_assert_eq!(opener().open_frame(&frame), Ok(()));
    }

    #[test]
    fn any_single_bit_flip_is_rejected(message in message(), bit in any::<prop::sample::Index>()) {
        let mut sealer = Sealer::new(NodeId(3), ID, &KEY, 1);
        let mut datagram = seal(&mut sealer, &message);
        let bit = bit.index(datagram.len() * 8);
        datagram[bit / 8] ^= 1 << (bit % 8);
        let mut opener = opener();
        let error = opener.open(&datagram).expect_err("a flipped bit never opens");
        // A flip in the version byte is another version; in the key id an
        // unknown key; anywhere else the tag fails.
        let expected = match bit / 8 {
            0 => Rejection::Malformed,
            9 | 10 => Rejection::UnknownKey,
            _ => Rejection::Unauthenticated,
        };
        prop_assert_eq!(error.rejection(), expected);
        prop_assert_eq!(opener.stats().accepted, 0);
        prop_assert_eq!(opener.stats().dropped(), 1);
    }

    #[test]
    fn a_flip_in_a_typed_frame_is_rejected(message in message(), byte in 0..TAG_LEN, bit in 0..8u8, seq in any::<u64>()) {
        let mut sealer = Sealer::new(NodeId(3), ID, &KEY, 1);
        let mut frame = sealer.seal_frame(ME, message).expect("fits");
        let mut tampered_tag = frame;
        tampered_tag.tag.0[byte] ^= 1 << bit;
        prop_assert_eq!(opener().open_frame(&tampered_tag).map_err(|e| e.rejection()), Err(Rejection::Unauthenticated));
        // Changing the header without resealing: the tag no longer fits.
        if seq != frame.header.seq {
            frame.header.seq = seq;
            prop_assert_eq!(opener().open_frame(&frame).map_err(|e| e.rejection()), Err(Rejection::Unauthenticated));
        }
    }

    #[test]
    fn a_replay_is_rejected(messages in prop::collection::vec(message(), 1..20), replayed in any::<prop::sample::Index>()) {
        let mut sealer = Sealer::new(NodeId(3), ID, &KEY, 5);
        let datagrams: Vec<_> = messages.iter().map(|m| seal(&mut sealer, m)).collect();
        let mut opener = opener();
        for datagram in &datagrams {
            prop_assert!(opener.open(datagram).is_ok());
        }
        let again = &datagrams[replayed.index(datagrams.len())];
        prop_assert_eq!(opener.open(again).map_err(|e| e.rejection()), Err(Rejection::Replayed));
        prop_assert_eq!(opener.stats().replayed, 1);
    }

    #[test]
    fn reordering_within_the_window_is_accepted_once_each(
        order in Just((0..replay::WINDOW).collect::<Vec<_>>()).prop_shuffle(),
        duplicate_every in 1..8usize,
    ) {
        let mut sealer = Sealer::new(NodeId(3), ID, &KEY, 5);
        let beat = |seq| Message::Heartbeat(Heartbeat { instance: InstanceId(0), incarnation: 1, seq });
        let datagrams: Vec<_> = (0..replay::WINDOW).map(|s| seal(&mut sealer, &beat(s))).collect();
        let mut opener = opener();
        let mut accepted = Vec::new();
        for (i, &n) in order.iter().enumerate() {
            let datagram = &datagrams[usize::try_from(n).expect("small")];
            let (header, _) = opener.open(datagram).expect("first delivery within the window");
            accepted.push(header.seq);
            if i % duplicate_every == 0 {
                prop_assert!(opener.open(datagram).is_err(), "a duplicate");
            }
        }
        accepted.sort_unstable();
        prop_assert_eq!(accepted, (0..replay::WINDOW).collect::<Vec<_>>());
        prop_assert_eq!(opener.stats().accepted, replay::WINDOW);
    }

    #[test]
    fn an_older_session_is_rejected(old in 0..u64::MAX, newer_by in 1..1000u64, message in message()) {
        let new = old.saturating_add(newer_by);
        let mut before = Sealer::new(NodeId(3), ID, &KEY, old);
        let captured = seal(&mut before, &message);
        let mut after = Sealer::new(NodeId(3), ID, &KEY, new);
        let mut opener = opener();
        prop_assert!(opener.open(&seal(&mut after, &message)).is_ok());
        prop_assert_eq!(
            opener.open(&captured),
            Err(OpenError::OldSession { from: NodeId(3), session: old, current: new })
        );
        // A newer session starts a fresh window: seq 0 again is fine.
        let mut later = Sealer::new(NodeId(3), ID, &KEY, new.saturating_add(1));
        prop_assert_eq!(opener.open(&seal(&mut later, &message)).is_ok(), new < u64::MAX);
    }
}

#[test]
fn a_frame_for_another_node_is_rejected_and_sequences_are_per_destination() {
    let mut sealer = Sealer::new(NodeId(3), ID, &KEY, 1);
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = sealer.seal(NodeId(9), &Message::Subscribe, &mut buf).expect("fits");
    let for_nine = buf[..len].to_vec();
    let mut opener = opener();
    assert_eq!(opener.open(&for_nine), Err(OpenError::Misdirected { from: NodeId(3), to: NodeId(9) }));
    assert_eq!(opener.stats().misdirected, 1);
    // The frame to node 9 did not use up a number towards this node.
    let (header, _) = opener.open(&seal(&mut sealer, &Message::Subscribe)).expect("opens");
    assert_eq!(header.seq, 0);
    assert_eq!(sealer.sealed(), 2);
}

#[test]
fn a_wrong_key_or_an_unknown_key_id_is_rejected() {
    let beat = Message::Heartbeat(Heartbeat { instance: InstanceId(6), incarnation: 3, seq: 0 });
    let mut forger = Sealer::new(NodeId(6), ID, &OTHER_KEY, 9);
    let mut opener = opener();
    assert_eq!(opener.open(&seal(&mut forger, &beat)), Err(OpenError::Unauthenticated { from: NodeId(6) }));
    let mut unknown = Sealer::new(NodeId(6), KeyId(2), &KEY, 9);
    assert_eq!(
        opener.open(&seal(&mut unknown, &beat)),
        Err(OpenError::UnknownKey { from: NodeId(6), key_id: KeyId(2) })
    );
    assert_eq!(opener.stats(), AuthStats { unauthenticated: 1, unknown_key: 1, ..AuthStats::default() });
}

#[test]
fn a_node_key_overrides_the_fleet_key_for_that_node_only() {
    let beat = Message::Subscribe;
    let mut ring = Keyring::fleet(ID, &KEY);
    ring.add_node_key(NodeId(6), KeyId(7), &OTHER_KEY);
    let mut opener = Opener::new(ME, ring, 16);
    // A fleet-key holder can no longer speak as node 6 ...
    let mut as_six = Sealer::new(NodeId(6), ID, &KEY, 1);
    assert_eq!(opener.open(&seal(&mut as_six, &beat)).map_err(|e| e.rejection()), Err(Rejection::UnknownKey));
    // ... node 6 itself can, with its own key ...
    let mut six = Sealer::new(NodeId(6), KeyId(7), &OTHER_KEY, 1);
    assert!(opener.open(&seal(&mut six, &beat)).is_ok());
    // ... and others still use the fleet key.
    let mut five = Sealer::new(NodeId(5), ID, &KEY, 1);
    assert!(opener.open(&seal(&mut five, &beat)).is_ok());
    // Removing 6's last own key puts it back under the fleet key.
    assert!(opener.keyring_mut().remove_node_key(NodeId(6), KeyId(7)));
    let mut as_six = Sealer::new(NodeId(6), ID, &KEY, 2);
    assert!(opener.open(&seal(&mut as_six, &beat)).is_ok());
}

#[test]
fn rotation_accepts_both_keys_until_the_old_one_is_retired() {
    let new_id = KeyId(2);
    let mut opener = opener();
    opener.keyring_mut().add_fleet_key(new_id, &OTHER_KEY);
    let mut sender = Sealer::new(NodeId(1), ID, &KEY, 1);
    assert!(opener.open(&seal(&mut sender, &Message::Subscribe)).is_ok(), "old key still accepted");
    sender.rekey(new_id, &OTHER_KEY);
    assert!(opener.open(&seal(&mut sender, &Message::Subscribe)).is_ok(), "new key accepted");
    let mut laggard = Sealer::new(NodeId(2), ID, &KEY, 1);
    assert!(opener.keyring_mut().remove_fleet_key(ID));
    assert_eq!(
        opener.open(&seal(&mut laggard, &Message::Subscribe)).map_err(|e| e.rejection()),
        Err(Rejection::UnknownKey)
    );
}

#[test]
fn senders_beyond_the_bound_are_refused_but_known_ones_go_on() {
    let mut opener = Opener::new(ME, Keyring::fleet(ID, &KEY), 2);
    let mut sealers: Vec<_> = (0..3).map(|n| Sealer::new(NodeId(n), ID, &KEY, 1)).collect();
    let beat = Message::Subscribe;
    assert!(opener.open(&seal(&mut sealers[0], &beat)).is_ok());
    assert!(opener.open(&seal(&mut sealers[1], &beat)).is_ok());
    assert_eq!(
        opener.open(&seal(&mut sealers[2], &beat)),
        Err(OpenError::TooManySenders { from: NodeId(2) })
    );
    assert!(opener.open(&seal(&mut sealers[0], &beat)).is_ok());
    assert_eq!(opener.senders(), 2);
}

#[test]
fn garbage_is_malformed_and_an_authentic_undecodable_message_too() {
    let mut opener = opener();
    assert_eq!(opener.open(&[]), Err(OpenError::TooShort { len: 0, min: OVERHEAD }));
    assert_eq!(
        opener.open(b"GET / HTTP/1.1\r\n\r\n"),
        Err(OpenError::UnsupportedVersion { found: b'G', expected: FRAME_VERSION })
    );
    // A key holder's frame whose body is not a message this build knows.
    let header = Header { from: NodeId(1), to: ME, key_id: ID, session: 1, seq: 0 };
    let mut datagram = header.to_bytes().to_vec();
    datagram.push(0x7f);
    let tag = frame::tag_of(&KEY.mac(), &datagram);
    datagram.extend_from_slice(&tag.0);
    assert_eq!(opener.open(&datagram), Err(OpenError::Undecodable { from: NodeId(1) }));
    assert_eq!(opener.stats().malformed, 3);
    // Not recorded: seq 0 of that session is still acceptable.
    let mut sender = Sealer::new(NodeId(1), ID, &KEY, 1);
    assert!(opener.open(&seal(&mut sender, &Message::Subscribe)).is_ok());
}

#[test]
fn the_largest_message_fits_the_stack_buffer() {
    let report = Message::CallReport(CallReport {
        instance: InstanceId(u32::MAX),
        ok: u32::MAX,
        errors: u32::MAX,
        refused: u32::MAX,
        timed_out: u32::MAX,
        since_ok_ms: u32::MAX,
        since_failure_ms: u32::MAX,
    });
    let update = Message::EndpointUpdate(EndpointUpdate {
        instance: InstanceId(u32::MAX),
        service: ServiceId(u32::MAX),
        node: NodeId(u32::MAX),
        routable: true,
        index: u64::MAX,
    });
    for message in [report, update] {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let len = postcard::to_slice(&message, &mut buf).expect("fits").len();
        assert!(len <= 40, "{message:?}: {len} bytes");
    }
}

#[test]
fn keys_parse_from_hex_and_never_print() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    let key = Key::from_hex(&format!(" {hex}\n")).expect("valid");
    assert_eq!(key.as_bytes()[1], 0x11);
    assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    assert_eq!(Key::from_hex("abcd"), Err(KeyError::WrongLength { digits: 4 }));
    assert_eq!(Key::from_hex(&hex.replace('0', "g")), Err(KeyError::NotHex));
}
