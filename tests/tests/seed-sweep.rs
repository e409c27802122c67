//! Every shipped scenario holds on many seeds, not just its default one
//! (turmoil's `tests/fs/durability.rs` style sweep). A failure names each
//! failing seed with the command that replays it.

use vigil_tests::{display_path, scenario_files};

/// Seeds swept per scenario; modest so the suite stays fast in debug builds.
const SEEDS: std::ops::Range<u64> = 0..20;

#[test]
fn every_scenario_passes_for_seeds_0_to_20() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for file in scenario_files() {
        let scenario = vigil_sim::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let shown = display_path(&file);
        for seed in SEEDS {
            let report = vigil_sim::run(&scenario, seed);
            runs += 1;
            if !report.passed {
                let failed: Vec<String> = report
                    .expectations
                    .iter()
                    .filter(|e| !e.passed)
                    .map(|e| format!("{}: {}", e.name, e.observed))
                    .collect();
                failures.push(format!(
                    "{shown} seed {seed} ({}); replay: cargo run --release -- run {shown} --seed {seed}",
                    failed.join("; ")
                ));
            }
        }
    }
    assert!(runs >= 4 * SEEDS.end, "swept only {runs} runs");
    assert!(failures.is_empty(), "{} failing run(s):\n{}", failures.len(), failures.join("\n"));
}
