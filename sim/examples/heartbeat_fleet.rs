//! Run the benchmark's heartbeat workload once, for profilers:
//! `cargo run --release -p vigil-sim --example heartbeat_fleet -- 10000 20`
//! (nodes, simulated seconds). Prints events processed and the trace hash.

use vigil_core::Duration;
use vigil_sim::Simulation;
use vigil_sim::scenario::{
    DEFAULT_SERVICE_TIME, Expectations, HeartbeatConfig, NetworkConfig, Scenario, Service,
};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let nodes = args.next().and_then(Result::ok).unwrap_or(1_000);
    let secs = args.next().and_then(Result::ok).unwrap_or(60);
    let scenario = Scenario {
        name: "heartbeat-fleet".into(),
        description: None,
        duration: Duration::from_secs(secs),
        seed: 1,
        max_events: u64::MAX,
        network: NetworkConfig::default(),
        services: vec![Service {
            name: "svc".into(),
            instances: u32::try_from(nodes.saturating_sub(1).max(1)).unwrap_or(u32::MAX),
            heartbeat: HeartbeatConfig::default(),
            service_time: DEFAULT_SERVICE_TIME,
            health: None,
            zones: Vec::new(),
            capacity: None,
        }],
        faults: Vec::new(),
        load: None,
        expect: Expectations::default(),
    };
    let mut sim = Simulation::new(&scenario, 1);
    sim.run();
    println!("{} events, trace {}", sim.events_processed(), sim.trace_hash().hex());
}
