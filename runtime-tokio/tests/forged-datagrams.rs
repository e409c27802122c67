//! Forged and replayed datagrams on loopback: an unrelated socket sends
//! heartbeats claiming a dead instance's node (without the key, under a
//! wrong key, under an unknown key id) and replays genuine datagrams it
//! captured while the instance lived. None of it may bring the instance
//! back: it stays dead and unroutable, every datagram is counted as
//! dropped by kind, and a healthy instance beating genuinely is untouched.
//! Bounded: a few hundred datagrams over about a second.

mod support;

use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::time::Instant as TokioInstant;
use vigil_core::auth::{Key, KeyId, Sealer};
use vigil_core::control::ControlPlane;
use vigil_core::health::Liveness;
use vigil_core::message::{Heartbeat, Message};
use vigil_core::{Duration, InstanceId};
use vigil_tokio::{Clock, DriverHandle, MAX_DATAGRAM, incarnation_now, seal_datagram};

use support::{
    Change, EventLog, TEST_WIRE_KEY, agent_node, any_loopback_port, spawn_agent, spawn_control,
    wait_all_alive,
};

/// Loopback delivers at once; the margin covers a loaded machine.
const WITHIN: Duration = Duration::from_secs(5);

/// Forged datagrams of each kind sent during the attack.
const FORGED_PER_KIND: u64 = 100;

/// A heartbeat for instance 0 of incarnation `incarnation`, sealed as its
/// agent's node under `key_id`/`key`.
fn forged_beat(key_id: KeyId, key: &Key, incarnation: u64, seq: u64) -> Vec<u8> {
    let mut sealer = Sealer::new(agent_node(0), key_id, key, u64::MAX - 1);
    let message = Message::Heartbeat(Heartbeat { instance: InstanceId(0), incarnation, seq });
    let mut buf = [0u8; MAX_DATAGRAM];
    let len = seal_datagram(&mut sealer, support::CONTROL, &message, &mut buf).expect("fits");
    buf[..len].to_vec()
}

async fn liveness_of(
    control: &DriverHandle<ControlPlane>,
    instance: u32,
) -> (Liveness, Option<(u64, u64)>, bool) {
    control
        .with_machine(move |c| {
            let state = c.detector().instance(InstanceId(instance)).expect("watched");
            (state.status, state.newest, c.is_routable(InstanceId(instance)))
        })
        .await
        .expect("control running")
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = TokioInstant::now() + WITHIN;
    while !done().await {
        assert!(TokioInstant::now() < deadline, "deadline passed waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_heartbeats_do_not_revive_a_dead_instance() {
    let clock = Clock::start();
    let (control, events) = spawn_control(clock, &[0, 1]).await;
    let control_addr = control.local_addr();
    let mut log = EventLog::new(events);

    // Instance 0's agent beats through a tap that forwards to the control
    // node and keeps a copy of every genuine datagram: what an eavesdropper
    // on the path captures.
    let tap = Arc::new(UdpSocket::bind(any_loopback_port()).await.expect("bind tap"));
    let captured = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let forwarder = tokio::spawn({
        let (tap, captured) = (Arc::clone(&tap), Arc::clone(&captured));
        async move {
            let mut buf = vec![0u8; MAX_DATAGRAM + 1];
            loop {
                let (len, _) = tap.recv_from(&mut buf).await.expect("tap receives");
                tap.send_to(&buf[..len], control_addr).await.expect("tap forwards");
                captured.lock().expect("not poisoned").push(buf[..len].to_vec());
            }
        }
    });
    let incarnation = incarnation_now();
    let doomed = spawn_agent(clock, 0, incarnation, tap.local_addr().expect("tap address")).await;
    let healthy = spawn_agent(clock, 1, incarnation_now(), control_addr).await;
    wait_all_alive(&mut log, &[0, 1]).await;

    // Instance 0 dies: nothing is behind node 1 any more.
    doomed.abort().await;
    forwarder.abort();
    let replays: Vec<Vec<u8>> = captured.lock().expect("not poisoned").clone();
    assert!(!replays.is_empty(), "the tap saw the agent's heartbeats");
    let deadline = TokioInstant::now() + WITHIN;
    log.wait_for(deadline, "instance 0 dead", |e| {
        support::change(e).instance == 0 && support::change(e).to == Liveness::Dead
    })
    .await;
    let (_, newest_dead, routable) = liveness_of(&control, 0).await;
    assert!(!routable, "a dead instance is not routable");
    let before = control.stats();

    // The attack, for about a second: forged heartbeats with the next
    // sequence numbers and the same incarnation (so the detector would take
    // them as fresh), and the captured genuine datagrams, replayed.
    let attacker = UdpSocket::bind(any_loopback_port()).await.expect("bind attacker");
    let wrong_key = Key::from_bytes([0x33; 32]);
    let right_key = Key::from_hex(TEST_WIRE_KEY).expect("valid key");
    let next_seq = newest_dead.map_or(0, |(_, seq)| seq + 1);
    for i in 0..FORGED_PER_KIND {
        let seq = next_seq + i;
        // No MAC at all: a genuine-looking frame with its tag zeroed.
        let mut no_mac = forged_beat(KeyId(1), &right_key, incarnation, seq);
        let tag_at = no_mac.len() - vigil_core::auth::TAG_LEN;
        no_mac[tag_at..].fill(0);
        for datagram in [
            no_mac,
            forged_beat(KeyId(1), &wrong_key, incarnation, seq),
            forged_beat(KeyId(9), &wrong_key, incarnation, seq),
        ] {
            attacker.send_to(&datagram, control_addr).await.expect("send on loopback");
        }
        let replay = &replays[usize::try_from(i).expect("small") % replays.len()];
        attacker.send_to(replay, control_addr).await.expect("send on loopback");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let replayed = FORGED_PER_KIND;
    wait_until("every attack datagram counted", async || {
        let s = control.stats();
        s.unauthenticated_datagrams - before.unauthenticated_datagrams == 2 * FORGED_PER_KIND
            && s.unknown_key_datagrams - before.unknown_key_datagrams == FORGED_PER_KIND
            && s.replayed_datagrams - before.replayed_datagrams == replayed
    })
    .await;

    // Still dead, still unroutable, not one more heartbeat accepted.
    let (status, newest, routable) = liveness_of(&control, 0).await;
    assert_eq!((status, newest, routable), (Liveness::Dead, newest_dead, false));

    // The healthy instance went on beating, genuinely, all along.
    let (_, healthy_before, _) = liveness_of(&control, 1).await;
    wait_until("instance 1 still beating", async || liveness_of(&control, 1).await.1 > healthy_before).await;
    assert_eq!(liveness_of(&control, 1).await.0, Liveness::Alive);

    // Instance 0 restarts (a new session): now the captured datagrams of
    // its old life are refused as such.
    let reborn = spawn_agent(clock, 0, incarnation_now(), control_addr).await;
    wait_until("instance 0 alive again, by its own heartbeats", async || {
        liveness_of(&control, 0).await.0 == Liveness::Alive
    })
    .await;
    let old_before = control.stats().old_session_datagrams;
    for replay in replays.iter().take(10) {
        attacker.send_to(replay, control_addr).await.expect("send on loopback");
    }
    let expected_old = old_before + u64::try_from(replays.len().min(10)).expect("small");
    wait_until("old-session replays counted", async || control.stats().old_session_datagrams == expected_old)
        .await;

    let stats = control.stats();
    assert_eq!(stats.malformed_datagrams, 0, "{stats:?}");
    reborn.shutdown().await.expect("clean");
    healthy.shutdown().await.expect("clean");
    control.shutdown().await.expect("clean");
    log.collect_queued();
    let zero = |from, to| Change { instance: 0, from, to };
    // Alive, suspected, dead, then alive by the restart: the attack added
    // no verdict.
    assert_eq!(
        log.changes_of(0),
        [
            zero(Liveness::Unknown, Liveness::Alive),
            zero(Liveness::Alive, Liveness::Suspect),
            zero(Liveness::Suspect, Liveness::Dead),
            zero(Liveness::Dead, Liveness::Alive),
        ]
    );
    assert_eq!(log.changes_of(1), [Change { instance: 1, from: Liveness::Unknown, to: Liveness::Alive }]);
}

#[tokio::test]
async fn a_driver_refuses_to_start_without_a_key() {
    use vigil_core::health::AgentConfig;
    use vigil_tokio::instance::{Instance, InstanceConfig, StartError};
    let agent = AgentConfig {
        instance: InstanceId(0),
        control: support::CONTROL,
        interval: support::INTERVAL,
        incarnation: incarnation_now(),
    };
    let config = InstanceConfig::new(
        agent_node(0),
        agent,
        any_loopback_port(),
        vigil_tokio::HealthChecks::new(),
        axum::Router::new(),
    );
    assert!(matches!(Instance::start(config).await, Err(StartError::NoWireAuth)));
}
