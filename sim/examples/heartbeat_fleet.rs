//! Run the benchmark's heartbeat workload once, for profilers:
//! `cargo run --release -p vigil-sim --example heartbeat_fleet -- 10000 20`
//! (nodes, simulated seconds). Prints events processed, the trace hash and,
//! on stderr, the wall time and events per second.
//!
//! A third argument `health` runs the `fleet` workload of the kernel
//! benchmark instead: one service of `nodes - 1` instances probed every
//! second (`health = { interval = "1s", timeout = "500ms" }`) and called by
//! a client 1 000 times a second from 5 s:
//! `cargo run --release -p vigil-sim --example heartbeat_fleet -- 1001 60 health`.

// The wall-clock read reports the run's speed; it never enters the run.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::time::Instant as WallClock;

use vigil_core::Duration;
use vigil_sim::Simulation;
use vigil_sim::scenario::Scenario;

fn heartbeat(instances: u32, secs: u64) -> Scenario {
    Scenario::heartbeat_fleet(instances, Duration::from_secs(secs))
}

fn health(instances: u32, secs: u64) -> Scenario {
    let source = format!(
        r#"
name = "health-fleet"
duration = "{secs}s"
seed = 1
max_events = 9_000_000_000_000_000_000

[[service]]
name = "svc"
instances = {instances}
health = {{ interval = "1s", timeout = "500ms" }}

[load]
target = "svc"
rate = 1000
shape = "poisson"
timeout = "1s"
start = "{start}s"
"#,
        start = 5.min(secs.saturating_sub(1)),
    );
    vigil_sim::parse(&source, "heartbeat_fleet").unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes = args.next().and_then(|a| a.parse::<u64>().ok()).unwrap_or(1_000);
    let secs = args.next().and_then(|a| a.parse::<u64>().ok()).unwrap_or(60).max(1);
    let instances = u32::try_from(nodes.saturating_sub(1).max(1)).unwrap_or(u32::MAX);
    let scenario = match args.next().as_deref() {
        Some("health") => health(instances, secs),
        Some(other) => panic!("unknown workload {other:?}: expected `health` or nothing"),
        None => heartbeat(instances, secs),
    };
    let mut sim = Simulation::new(&scenario, 1);
    let start = WallClock::now();
    sim.run();
    let wall = start.elapsed();
    let events = sim.events_processed();
    println!("{events} events, trace {}", sim.trace_hash().hex());
    eprintln!(
        "{:.3} s wall, {:.2} M events/s, {:.1} simulated s per wall s",
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64() / 1e6,
        secs as f64 / wall.as_secs_f64()
    );
}
