//! One health evaluation: the cost of the monitor processing one probe
//! result, in a fleet of 1 000 instances.
//!
//! Every instance has a liveness probe with a latency rule (exact p99 over
//! the last 100 probes) and an error-rate rule (last 20 probes), plus flap
//! damping: the most expensive check type. Instances are registered 1 ms
//! apart, so each timer wake-up starts exactly one round.
//!
//! - `health/probe_result`: only the processing of the result (match the
//!   round, update both windows, hysteresis, re-aggregate, drain), timed
//!   alone with `iter_custom`; the timer that starts the round is not
//!   counted.
//! - `health/round`: a whole round of one instance: the timer fires, the
//!   request comes out, the result goes in, everything is drained.
//!
//! `cargo bench -p vigil-core --bench health`.

// A benchmark measures wall time; the determinism rules are for the machines.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant as WallClock;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_core::health::{
    CheckConfig, ErrorRateRule, FlapConfig, HealthMonitor, HealthStatus, InstanceHealthConfig, LatencyRule,
    MonitorOutput, ProbeCheck, ProbeKind, ProbeOutcome, ProbeRequest, ProbeResult,
};
use vigil_core::{Duration, InstanceId, Instant, ServiceId};

const FLEET: u32 = 1_000;

fn fleet() -> HealthMonitor {
    let probe = ProbeCheck {
        latency: Some(LatencyRule::new(Duration::from_millis(250))),
        error_rate: Some(ErrorRateRule::default()),
        ..ProbeCheck::default()
    };
    let config = InstanceHealthConfig {
        checks: vec![CheckConfig::probe_with(ProbeKind::Liveness, probe)],
        flap: Some(FlapConfig::default()),
    };
    let mut m = HealthMonitor::new();
    let mut answered = 0u64;
    // Time only moves forward, as `machine::Checked` demands of a driver:
    // rounds already due are run before the next instance registers.
    for i in 0..FLEET {
        let at = Instant::from_millis(u64::from(i));
        answered += run_until(&mut m, at, answered);
        m.register(at, InstanceId(i), ServiceId(i % 10), &config).expect("valid config");
        while m.poll_output().is_some() {}
    }
    // Warm up: 200 rounds each, so both windows are full.
    let until = Instant::from_secs(200);
    answered += run_until(&mut m, until, answered);
    let stats = m.stats();
    assert_eq!(stats.results_accepted, answered, "every answer must be counted");
    assert_eq!(stats.results_ignored + stats.probes_timed_out, 0, "nothing late or ignored");
    assert!(answered >= 190 * u64::from(FLEET), "windows are full: {answered} results");
    assert!(
        m.instances().all(|(_, v)| v.status == HealthStatus::Healthy && v.ready),
        "the fleet is healthy after warm-up"
    );
    m
}

/// Run every round due at or before `until`; returns the results answered.
fn run_until(m: &mut HealthMonitor, until: Instant, answered: u64) -> u64 {
    let mut n = 0;
    while let Some(at) = m.poll_timeout().filter(|&at| at <= until) {
        n += round(m, at, answered + n);
    }
    n
}

/// Fire the next timer and answer the request it produces (if any).
fn round(m: &mut HealthMonitor, now: Instant, n: u64) -> u64 {
    m.handle_timeout(now);
    let mut request = None;
    while let Some(out) = m.poll_output() {
        if let MonitorOutput::Probe(req) = out {
            request = Some(req);
        }
    }
    match request {
        Some(req) => {
            answer(m, now, req, n);
            1
        }
        None => 0,
    }
}

fn answer(m: &mut HealthMonitor, now: Instant, req: ProbeRequest, n: u64) {
    let latency = Duration::from_millis(5 + n % 40);
    let outcome = ProbeOutcome::Success { latency };
    m.handle_probe_result(now + Duration::from_micros(50), ProbeResult { probe: req.probe, outcome });
    while let Some(out) = m.poll_output() {
        black_box(out);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("health");

    let mut m = fleet();
    let mut n = 0u64;
    group.bench_function("probe_result", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                // Untimed: start the next round.
                let now = m.poll_timeout().expect("the fleet always has a next round");
                m.handle_timeout(now);
                let mut request = None;
                while let Some(out) = m.poll_output() {
                    if let MonitorOutput::Probe(req) = out {
                        request = Some(req);
                    }
                }
                let Some(req) = request else { continue };
                n += 1;
                let start = WallClock::now();
                answer(&mut m, now, req, n);
                total += start.elapsed();
            }
            total
        });
    });

    let mut m = fleet();
    group.bench_function("round", |b| {
        b.iter(|| {
            let now = m.poll_timeout().expect("the fleet always has a next round");
            n += 1;
            black_box(round(&mut m, now, n))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
