//! Scenario loading: time to parse and validate a file with many faults.
//!
//! Issue 9: the loader located every fault (its `line`) by counting lines
//! from the start of the file, so loading was quadratic in the number of
//! faults (10 000 took 2.9 s, 40 000 took 48 s). Lines are now indexed once
//! per file. The `faults` group parses generated, valid scenarios of 10 000
//! and 100 000 crash faults (five lines each) with `vigil_sim::parse`, the
//! loader's entry point; the target is under 2 s for 100 000, and the time
//! per fault should stay flat as faults are added.
//!
//! `cargo bench -p vigil-sim --bench loader` prints `thrpt` in faults per
//! second (criterion's "elem/s").

use std::fmt::Write as _;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A valid scenario: one service of 10 instances and `faults` crashes of
/// one second each, spread over the run and the instances.
fn scenario_with_faults(faults: usize) -> String {
    let mut text = String::from(
        "name = \"many-faults\"\nduration = \"1h\"\n\n[[service]]\nname = \"web\"\ninstances = 10\n",
    );
    for i in 0..faults {
        let at_ms = i % 3_000_000;
        let _ = write!(
            text,
            "\n[[fault]]\nat = \"{at_ms}ms\"\nkind = \"crash\"\ntarget = \"web/{}\"\nduration = \"1s\"\n",
            i % 10
        );
    }
    text
}

fn faults(c: &mut Criterion) {
    let mut group = c.benchmark_group("faults");
    group.sample_size(10);
    for count in [10_000, 100_000] {
        let text = scenario_with_faults(count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(count.to_string(), |b| {
            b.iter(|| {
                let scenario = vigil_sim::parse(&text, "generated").expect("the generated scenario is valid");
                assert_eq!(scenario.faults.len(), count);
                scenario
            });
        });
    }
    group.finish();
}

criterion_group!(benches, faults);
criterion_main!(benches);
