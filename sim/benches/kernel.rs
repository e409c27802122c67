//! Kernel throughput: events per second for the heartbeat workload.
//!
//! Every node but the control node is an instance heartbeating every second
//! to the control node, whose failure detector watches all of them. The
//! simulated duration is chosen so each run processes about 4 million events
//! whatever the node count: the figure that matters is events per second,
//! which must stay roughly flat as nodes are added (cost is per event, not
//! per node).
//!
//! `cargo bench -p vigil-sim` prints `thrpt` in events/s (criterion's
//! "elem/s"). The `hour` group runs 1 000 nodes for one simulated hour;
//! simulated seconds per wall second is 3600 divided by its time.
//!
//! The `fleet` group is the same kernel with the registry, the health
//! monitor and the client balancer in the loop (issue 3): 1 000 instances
//! of one service probed every second (liveness and readiness, as the
//! scenario loader builds `health = { interval = "1s", timeout = "500ms" }`)
//! and heartbeating, with a client calling the service 1 000 times a second
//! (Poisson) from 5 s, for 60 simulated seconds. It is built from TOML with
//! `vigil_sim::parse`, so it is exactly what a scenario file would run.
//!
//! The `chaos` group is issue 4's benchmark, `scenarios/bench/fleet-1000-hour.toml`:
//! 1 000 instances in four services probed every second, 1 000 calls/s, a
//! random fault schedule (crashes, hangs, leaks, slowness, errors, lossy
//! links, full disks, lost hosts, a zone's power cut) and recovery acting
//! on all of it, for one simulated hour. Ten runs take a few minutes;
//! `cargo bench -p vigil-sim --bench kernel -- chaos` runs it alone.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_core::Duration;
use vigil_sim::Simulation;
use vigil_sim::scenario::Scenario;

fn heartbeat_fleet(nodes: u32, duration: Duration) -> Scenario {
    Scenario::heartbeat_fleet(nodes - 1, duration)
}

/// Issue 3's workload, as a scenario file would state it.
const FLEET_TOML: &str = r#"
name = "bench-fleet"
duration = "60s"
seed = 1

[[service]]
name = "svc"
instances = 1000
health = { interval = "1s", timeout = "500ms" }

[load]
target = "svc"
rate = 1000
shape = "poisson"
timeout = "1s"
start = "5s"
"#;

fn events_of(scenario: &Scenario) -> u64 {
    let mut sim = Simulation::new(scenario, 1);
    sim.run();
    sim.events_processed()
}

fn kernel(c: &mut Criterion) {
    let mut group = c.benchmark_group("heartbeat");
    group.sample_size(10);
    for nodes in [10u32, 100, 1_000, 10_000] {
        // About two events per instance per simulated second: ~4 M events
        // per run, long enough that start-up (every agent's first beat, the
        // queue growing to its working size) does not dominate.
        let secs = (2_000_000 / u64::from(nodes)).max(10);
        let scenario = heartbeat_fleet(nodes, Duration::from_secs(secs));
        let events = events_of(&scenario);
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("{nodes}-nodes"), |b| {
            b.iter_batched(
                || Simulation::new(&scenario, 1),
                |mut sim| {
                    sim.run();
                    sim.events_processed()
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    whole_runs(c, "hour", "1000-nodes-1h", &heartbeat_fleet(1_000, Duration::from_secs(3600)));
    let fleet = vigil_sim::parse(FLEET_TOML, "bench-fleet").expect("the bench scenario is valid");
    whole_runs(c, "fleet", "1000-instances-health-load-60s", &fleet);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/bench/fleet-1000-hour.toml");
    let chaos = vigil_sim::load_file(std::path::Path::new(path)).expect("the bench scenario is valid");
    whole_runs(c, "chaos", "1000-instances-faults-recovery-1h", &chaos);
}

/// A group of one benchmark: ten whole runs of `scenario` (seed 1), its
/// throughput in events.
fn whole_runs(c: &mut Criterion, group: &str, name: &str, scenario: &Scenario) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Elements(events_of(scenario)));
    g.bench_function(name, |b| {
        b.iter_batched(
            || Simulation::new(scenario, 1),
            |mut sim| {
                sim.run();
                sim.events_processed()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
