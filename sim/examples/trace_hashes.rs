//! The trace hash of every scenario over a range of seeds, one line each:
//! the table that proves a refactor changed no behaviour.
//!
//! ```text
//! cargo run --release -p vigil-sim --example trace_hashes -- [SEEDS] [FILES…]
//! ```
//!
//! `SEEDS` is how many seeds from 0 (default 10); `FILES` default to every
//! `*.toml` in `scenarios/` and `scenarios/bench/`. Compare two checkouts'
//! tables with `diff`.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().map_or(10, |s| s.parse().expect("SEEDS is a number"));
    let mut files: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if files.is_empty() {
        for dir in ["scenarios", "scenarios/bench"] {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    for file in &files {
        let scenario = match vigil_sim::load_file(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        for seed in 0..seeds {
            let report = vigil_sim::run(&scenario, seed);
            println!("{} {seed} {} {}", file.display(), report.trace_hash, report.events_processed);
        }
    }
}
