//! Commands that change a running machine: a mutation on the driver task is
//! followed by a full drain, as any input is.

use std::net::SocketAddr;

use vigil_core::Machine as _;
use vigil_core::NodeId;
use vigil_core::client::{ClientConfig, ClientNode};
use vigil_core::envelope::Input;
use vigil_core::rng::Seed;
use vigil_tokio::{Clock, Driver};

/// The fleet key every node of these tests shares (64 hex digits, as in a
/// configuration file).
const TEST_WIRE_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Every node's [`vigil_tokio::WireAuth`]: the shared test key, id 1.
fn test_auth() -> vigil_tokio::WireAuth {
    vigil_tokio::WireAuth::fleet_hex(1, TEST_WIRE_KEY).expect("a valid key")
}

#[tokio::test]
async fn a_mutation_on_the_task_is_drained_like_an_input() {
    let clock = Clock::start();
    let machine = ClientNode::new(ClientConfig::default(), clock.now(), Seed(1)).expect("valid config");
    let driver = Driver::bind(NodeId(9), SocketAddr::from(([127, 0, 0, 1], 0)), clock, machine, test_auth())
        .await
        .expect("bind")
        .spawn();
    // No endpoint is known: the call ends at once with a `CallDone` that
    // nobody waits for, which the drain counts.
    let outstanding = driver
        .with_machine_mut(|client: &mut ClientNode, now| {
            client.handle(now, Input::Call { id: 1 });
            client.outstanding()
        })
        .await
        .expect("driver running");
    assert_eq!(outstanding, 0);
    let stats = driver.stats();
    assert_eq!((stats.unhandled_outputs, stats.calls_done), (1, 0), "drained after the mutation: {stats:?}");
    // The machine is still in a drained state: it takes inputs as before.
    let outstanding = driver.with_machine(|c: &ClientNode| c.outstanding()).await.expect("driver running");
    assert_eq!(outstanding, 0);
    driver.shutdown().await.expect("clean shutdown");
}
