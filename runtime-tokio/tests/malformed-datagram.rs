//! Garbage on the wire: datagrams that are not vigil frames must be
//! counted and dropped, and the driver must go on working. (Well-formed
//! frames that are forged or replayed: `forged-datagrams.rs`.)

mod support;

use tokio::net::UdpSocket;
use tokio::time::Instant as TokioInstant;
use vigil_core::auth::{Key, KeyId, Sealer};
use vigil_core::control::ControlPlane;
use vigil_core::health::Liveness;
use vigil_core::message::{Heartbeat, Message};
use vigil_core::{Duration, InstanceId, NodeId};
use vigil_tokio::{Clock, DriverHandle, MAX_DATAGRAM, WIRE_VERSION, incarnation_now, seal_datagram};

use support::{
    Change, EventLog, TEST_WIRE_KEY, any_loopback_port, spawn_agent, spawn_control, wait_all_alive,
};

/// Loopback delivers at once; the margin covers a loaded machine.
const WITHIN: Duration = Duration::from_secs(3);

/// A genuine heartbeat datagram, sealed under the fleet's test key.
fn heartbeat_datagram(from: NodeId, instance: u32) -> Vec<u8> {
    let key = Key::from_hex(TEST_WIRE_KEY).expect("valid key");
    let mut sealer = Sealer::new(from, KeyId(1), &key, incarnation_now());
    let message = Message::Heartbeat(Heartbeat { instance: InstanceId(instance), incarnation: 1, seq: 0 });
    let mut buf = [0u8; MAX_DATAGRAM];
    let len = seal_datagram(&mut sealer, support::CONTROL, &message, &mut buf).expect("fits");
    buf[..len].to_vec()
}

/// One datagram of each kind of garbage.
fn garbage() -> Vec<Vec<u8>> {
    let valid = heartbeat_datagram(NodeId(42), 0);
    let mut other_version = valid.clone();
    other_version[0] = WIRE_VERSION.wrapping_add(1);
    vec![
        Vec::new(),                                 // empty
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),         // not vigil at all
        other_version,                              // another build
        vec![WIRE_VERSION, 0xff, 0xff, 0xff, 0xff], // undecodable body
        valid[..2].to_vec(),                        // truncated
        vec![WIRE_VERSION; MAX_DATAGRAM + 300],     // oversized
    ]
}

/// Poll `control`'s newest heartbeat seq from instance 0.
async fn newest_seq(control: &DriverHandle<ControlPlane>) -> u64 {
    control
        .with_machine(|c| c.detector().instance(InstanceId(0)).and_then(|s| s.newest))
        .await
        .expect("control running")
        .map_or(0, |(_incarnation, seq)| seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_counted_and_dropped_and_the_driver_survives() {
    let clock = Clock::start();
    let (control, events) = spawn_control(clock, &[0]).await;
    let mut log = EventLog::new(events);
    let agent = spawn_agent(clock, 0, incarnation_now(), control.local_addr()).await;
    wait_all_alive(&mut log, &[0]).await;

    let garbage = garbage();
    let expected = u64::try_from(garbage.len()).expect("a few");
    let attacker = UdpSocket::bind(any_loopback_port()).await.expect("bind");
    for datagram in &garbage {
        attacker.send_to(datagram, control.local_addr()).await.expect("send on loopback");
    }
    let deadline = TokioInstant::now() + WITHIN;
    while control.stats().malformed_datagrams < expected {
        assert!(TokioInstant::now() < deadline, "garbage not all counted: {:?}", control.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!control.is_finished(), "the driver survived the garbage");

    // Heartbeats still get through and are still accepted.
    let seq_before = newest_seq(&control).await;
    let deadline = TokioInstant::now() + WITHIN;
    while newest_seq(&control).await < seq_before + 3 {
        assert!(TokioInstant::now() < deadline, "heartbeats stopped after the garbage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A genuine heartbeat (sealed under the fleet key) for an instance
    // nobody watches is not garbage: it reaches the detector, which counts
    // it as unknown.
    attacker.send_to(&heartbeat_datagram(NodeId(42), 99), control.local_addr()).await.expect("send");
    let deadline = TokioInstant::now() + WITHIN;
    loop {
        let unknown = control.with_machine(|c| c.detector().stats().unknown).await.expect("running");
        if unknown == 1 {
            break;
        }
        assert!(TokioInstant::now() < deadline, "valid frame never reached the detector");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stats = control.stats();
    assert_eq!(stats.malformed_datagrams, expected, "only the garbage is malformed: {stats:?}");
    assert!(stats.datagrams_received > expected, "{stats:?}");
    agent.shutdown().await.expect("agent shuts down cleanly");
    control.shutdown().await.expect("control shuts down cleanly");
    log.collect_queued();
    let alive = Change { instance: 0, from: Liveness::Unknown, to: Liveness::Alive };
    assert_eq!(log.changes(), [alive], "the garbage changed no verdict");
}
