//! `vigil`: run seeded failure scenarios through the simulator.
//!
//! Exit codes: 0 when everything holds, 1 when an expectation fails or a
//! run is not deterministic, 2 on bad input or usage.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigil_sim::scenario::{self, Scenario};
use vigil_sim::{Report, Simulation};

/// Self-healing operations, proven in simulation.
#[derive(Parser)]
#[command(name = "vigil", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scenario files; print the first error of each bad one.
    Check {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run one scenario with one seed and print its report.
    Run {
        /// Scenario file (TOML).
        file: PathBuf,
        /// Seed; defaults to the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write every event, one line each, to PATH (`-` for stdout).
        #[arg(long, value_name = "PATH")]
        timeline: Option<PathBuf>,
        /// Run twice and compare trace hashes event by event.
        #[arg(long)]
        check_determinism: bool,
        /// Override the scenario's step budget.
        #[arg(long, value_name = "N")]
        max_events: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Run { file, seed, json, timeline, check_determinism, max_events } => {
            let mut scenario = match scenario::load_file(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(n) = max_events {
                scenario.max_events = n;
            }
            if json && timeline.as_deref() == Some(Path::new("-")) {
                eprintln!(
                    "error: --json and --timeline - both write to stdout; give the timeline a file path"
                );
                return ExitCode::from(2);
            }
            let seed = seed.unwrap_or(scenario.seed);
            run(&scenario, seed, json, timeline.as_deref(), check_determinism)
        }
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut bad = 0;
    for file in files {
        match scenario::load_file(file) {
            Ok(s) => println!(
                "ok   {}: `{}`, {} service(s), {} instance(s), {} fault(s)",
                file.display(),
                s.name,
                s.services.len(),
                s.instance_count(),
                s.faults.len()
            ),
            Err(e) => {
                bad += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) }
}

fn run(scenario: &Scenario, seed: u64, json: bool, timeline: Option<&Path>, determinism: bool) -> ExitCode {
    let out: Option<Box<dyn Write>> = match timeline {
        None => None,
        Some(p) if p == Path::new("-") => Some(Box::new(BufWriter::new(io::stdout()))),
        Some(p) => match File::create(p) {
            Ok(f) => Some(Box::new(BufWriter::new(f))),
            Err(e) => {
                eprintln!("error: cannot write timeline {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
    };
    let (mut report, wall, timeline_error) = timed(|| {
        let mut sim = Simulation::new(scenario, seed);
        if let Some(out) = out {
            sim = sim.with_timeline(out);
        }
        sim.run();
        (Report::new(&sim, seed, 0), sim.timeline_error().map(ToString::to_string))
    });
    report.wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
    if let Some(e) = timeline_error {
        eprintln!("error: writing the timeline failed: {e}");
        return ExitCode::from(2);
    }
    let mut code = if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) };
    let mut determinism_line = None;
    if determinism {
        match vigil_sim::check_determinism(scenario, seed) {
            Ok(second) if second.trace_hash == report.trace_hash => {
                determinism_line = Some(format!(
                    "determinism ok: replays agree event by event; trace {} over {} events",
                    report.trace_hash, report.events_processed
                ));
            }
            Ok(second) => {
                determinism_line = Some(format!(
                    "determinism FAILED: trace {} then {}",
                    report.trace_hash, second.trace_hash
                ));
                code = ExitCode::from(1);
            }
            Err(d) => {
                let at = |t: Option<vigil_core::Instant>| {
                    t.map_or_else(|| "end of run".to_string(), |t| t.to_string())
                };
                determinism_line = Some(format!(
                    "determinism FAILED: first divergent event #{} at {} (first run) / {} (second run)",
                    d.event_index,
                    at(d.first_at),
                    at(d.second_at)
                ));
                code = ExitCode::from(1);
            }
        }
    }
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        }
        if let Some(line) = determinism_line {
            eprintln!("{line}");
        }
    } else {
        print!("{}", report.to_text());
        let secs = wall.as_secs_f64().max(1e-9);
        println!(
            "wall      {:.1} ms ({:.1} M events/s)",
            secs * 1e3,
            report.events_processed as f64 / secs / 1e6
        );
        if let Some(line) = determinism_line {
            println!("{line}");
        }
    }
    code
}

/// Time `f` by the wall clock. The only clock read in this crate: the
/// figure goes into `wall_ms`, which no deterministic output contains.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn timed<T, U>(f: impl FnOnce() -> (T, U)) -> (T, std::time::Duration, U) {
    let start = std::time::Instant::now();
    let (a, b) = f();
    (a, start.elapsed(), b)
}
