//! Pick costs of the client-side balancer over 1,000 endpoints.
//!
//! Each iteration is one pick and the release of its endpoint (`abandon`,
//! O(1) through the `Pick`), so outstanding counts stay flat; the
//! `p2c_full_cycle` case adds a latency sample and an outcome
//! (`on_result`), i.e. the whole per-request cost. Time advances 1 µs per
//! iteration so the peak-EWMA decay is really computed.
//! Target (issue 3): a P2C pick over 1,000 endpoints within 100 ns.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_core::InstanceId;
use vigil_core::balance::{Balancer, BalancerConfig, Endpoint, Strategy};
use vigil_core::rng::Seed;
use vigil_core::time::{Duration, Instant};

const N: u32 = 1_000;

fn micros(us: u64) -> Instant {
    Instant::from_nanos(us * 1_000)
}

fn balancer(strategy: Strategy, weighted: bool) -> (Balancer, u64) {
    let config = BalancerConfig { strategy, slow_start: None, ..Default::default() };
    let mut b = Balancer::new(config, Seed(42)).expect("default config is valid");
    let endpoints: Vec<Endpoint<'_>> = (0..N)
        .map(|i| Endpoint {
            id: InstanceId(i),
            weight: if weighted { 1 + i % 10 } else { 1 },
            version: if i % 10 == 0 { "v2" } else { "v1" },
            healthy: true,
        })
        .collect();
    b.set_endpoints(Instant::ZERO, &endpoints).expect("valid endpoints");
    // Warm the latency estimates: every endpoint has samples.
    let warm = 20 * u64::from(N);
    for t in 0..warm {
        let p = b.pick(micros(t), Some(t)).expect("endpoints are healthy");
        b.on_result(micros(t), p, Duration::from_micros(500 + (t * 7919) % 5000), true);
    }
    (b, warm)
}

fn bench_pick(c: &mut Criterion, name: &str, strategy: Strategy, weighted: bool, keyed: bool) {
    let (mut b, mut t) = balancer(strategy, weighted);
    c.bench_function(name, |bench| {
        bench.iter(|| {
            t += 1;
            let key = keyed.then_some(t);
            let p = b.pick(black_box(micros(t)), black_box(key)).expect("endpoints are healthy");
            b.abandon(black_box(p));
        })
    });
}

fn benches(c: &mut Criterion) {
    bench_pick(c, "p2c_pick_1000", Strategy::LeastLoaded, false, false);
    bench_pick(c, "p2c_weighted_pick_1000", Strategy::LeastLoaded, true, false);
    bench_pick(c, "weighted_pick_1000", Strategy::Weighted, true, false);
    bench_pick(c, "round_robin_pick_1000", Strategy::RoundRobin, false, false);
    bench_pick(c, "consistent_hash_pick_1000", Strategy::ConsistentHash, false, true);

    let (mut b, mut t) = balancer(Strategy::LeastLoaded, false);
    c.bench_function("p2c_full_cycle_1000", |bench| {
        bench.iter(|| {
            t += 1;
            let p = b.pick(black_box(micros(t)), None).expect("endpoints are healthy");
            b.on_result(micros(t), p, Duration::from_micros(500 + (t * 7919) % 5000), true);
        })
    });
}

criterion_group!(balance, benches);
criterion_main!(balance);
