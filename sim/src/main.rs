//! `vigil`: run seeded failure scenarios through the simulator.
//!
//! Exit codes: 0 when everything holds, 1 when an expectation fails or a
//! run is not deterministic, 2 on bad input or usage. `vigil --help` and
//! each command's `--help` say the same ([`EXIT_CODES`] and the commands'
//! `after_help`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigil_sim::scenario::{self, Scenario};
use vigil_sim::{Report, Simulation};

/// Write to stdout; if the reader has gone (`vigil run … | head`), stop
/// quietly with success instead of panicking like `println!` would.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: cannot write to stdout: {e}");
            std::process::exit(2);
        }
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

/// The exit codes, as every `--help` states them. Clap's own usage errors
/// exit 2 too.
const EXIT_CODES: &str = "\
Exit codes:
  0  success: every expectation held (or every file is valid, for `check`)
  1  a run failed: an expectation failed, a seed of a sweep failed, or a run was not deterministic
  2  bad input or usage: an invalid scenario file, a bad argument, an unwritable output";

/// Self-healing operations, proven in simulation.
#[derive(Parser)]
#[command(name = "vigil", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scenario files; print the first error of each bad one.
    #[command(after_help = "Exit codes: 0 every file is valid, 2 a file is invalid or unreadable.")]
    Check {
        /// Scenario files, or directories of them (every `*.toml` inside).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run one scenario with one seed and print its report.
    #[command(after_help = "Exit codes: 0 every expectation held, 1 an expectation failed or \
                            --check-determinism found a divergence, 2 bad input or usage.")]
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
    /// Run scenarios across a range of seeds, in parallel, and summarise.
    #[command(after_help = "Exit codes: 0 every seed of every scenario passed, 1 a seed failed, \
                            2 bad input or usage.\n\
                            Each failing seed is printed with the `vigil replay` command that shows it.")]
    Sweep {
        /// Scenario files, or directories of them (every `*.toml` inside).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Seeds to run: `A..B` (B excluded) or `A..=B`.
        #[arg(long, value_name = "A..B", value_parser = parse_seeds)]
        seeds: Range<u64>,
        /// Worker threads; defaults to the number of cores.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Print the summaries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one scenario with one seed and print what mattered, in time
    /// order: faults, outages and their detection, verdicts, health
    /// changes, balancer events, recovery, then the expectations.
    #[command(after_help = "Exit codes: 0 every expectation held, 1 an expectation failed, \
                            2 bad input or usage.")]
    Replay {
        /// Scenario file (TOML).
        file: PathBuf,
        /// Seed; defaults to the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Show entries at or after this simulated time (`30s`, `1m30s`).
        #[arg(long, value_name = "T", value_parser = parse_time)]
        from: Option<vigil_core::Duration>,
        /// Show entries at or before this simulated time.
        #[arg(long, value_name = "T", value_parser = parse_time)]
        until: Option<vigil_core::Duration>,
        /// Show only these kinds of entry (comma-separated).
        #[arg(long, value_name = "KIND,...", value_delimiter = ',', value_parser = KindParser)]
        filter: Vec<vigil_sim::replay::Kind>,
        /// Show only entries about this node (`checkout/0`, `control`,
        /// `client`) or any instance of this service (`checkout`).
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
    },
    /// Shrink a failing run to the smallest scenario that still fails the
    /// same expectation; write it as a scenario file.
    #[command(after_help = "Exit codes: 0 a shrunk scenario was written, 1 the run does not fail \
                            (or not the expectation asked for): nothing to shrink, 2 bad input or usage.")]
    Shrink {
        /// Scenario file (TOML).
        file: PathBuf,
        /// Seed of the failing run; defaults to the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Write the shrunk scenario to OUT instead of standard output.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Most simulation runs to spend.
        #[arg(long, value_name = "N", default_value_t = 500)]
        max_runs: u32,
        /// The expectation to keep failing; defaults to the first that fails.
        #[arg(long, value_name = "NAME")]
        expect: Option<String>,
    },
}

/// `--filter`'s parser: one kind per comma-separated piece. Its possible
/// values come from [`vigil_sim::replay::Kind::ALL`], so `replay --help`
/// lists every kind there is.
#[derive(Clone)]
struct KindParser;

impl clap::builder::TypedValueParser for KindParser {
    type Value = vigil_sim::replay::Kind;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let text = clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)?;
        vigil_sim::replay::Filter::parse_kinds(&text)
            .and_then(|kinds| {
                kinds
                    .into_iter()
                    .next()
                    .ok_or_else(|| "`--filter` is empty; name at least one kind".to_string())
            })
            .map_err(|e| {
                clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("--filter: {e}\n"))
                    .with_cmd(cmd)
            })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            vigil_sim::replay::Kind::ALL.into_iter().map(|k| clap::builder::PossibleValue::new(k.name())),
        ))
    }
}

fn parse_time(text: &str) -> Result<vigil_core::Duration, String> {
    if text.trim() == "0" {
        return Ok(vigil_core::Duration::ZERO);
    }
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like \"30s\" or \"1m30s\": {e}"))
}

/// Most seeds one sweep may run.
const MAX_SWEEP_SEEDS: u64 = 10_000_000;

fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        return Err(format!("`{text}` is not a seed range: write `A..B` (B excluded) or `A..=B`"));
    };
    let number =
        |t: &str| t.trim().parse::<u64>().map_err(|_| format!("`{t}` is not a seed (a whole number)"));
    let (a, b) = (number(a)?, number(b)?);
    let end = if inclusive { b.checked_add(1).ok_or("the range ends past the largest seed")? } else { b };
    if end <= a {
        return Err(format!("`{text}` is empty: the end must be after the start"));
    }
    if end - a > MAX_SWEEP_SEEDS {
        return Err(format!("`{text}` has {} seeds; a sweep runs at most {MAX_SWEEP_SEEDS}", end - a));
    }
    Ok(a..end)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths } => check(&paths),
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
        Command::Sweep { paths, seeds, jobs, json } => sweep(&paths, seeds, jobs, json),
        Command::Replay { file, seed, from, until, filter, node } => {
            let kinds = (!filter.is_empty()).then_some(filter);
            let filter = vigil_sim::replay::Filter { from, until, kinds, node };
            replay(&file, seed, &filter)
        }
        Command::Shrink { file, seed, output, max_runs, expect } => {
            shrink(&file, seed, output.as_deref(), max_runs, expect)
        }
    }
}

fn replay(file: &Path, seed: Option<u64>, filter: &vigil_sim::replay::Filter) -> ExitCode {
    let scenario = match scenario::load_file(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let (Some(from), Some(until)) = (filter.from, filter.until)
        && until < from
    {
        eprintln!("error: --until ({until:?}) is before --from ({from:?})");
        return ExitCode::from(2);
    }
    if let Some(node) = &filter.node {
        let names = scenario.node_names();
        let service = node.strip_suffix("/*").unwrap_or(node);
        let known = names.iter().any(|n| n == node) || scenario.services.iter().any(|s| s.name == service);
        if !known {
            eprintln!(
                "error: no node or service `{node}` in {}; nodes: {}",
                file.display(),
                names.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let seed = seed.unwrap_or(scenario.seed);
    let mut sim = Simulation::new(&scenario, seed);
    sim.run();
    let (text, outcomes) = vigil_sim::replay::render(&sim, seed, filter);
    out!("{text}");
    if outcomes.iter().all(|o| o.passed) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn shrink(
    file: &Path,
    seed: Option<u64>,
    output: Option<&Path>,
    max_runs: u32,
    expect: Option<String>,
) -> ExitCode {
    use vigil_sim::shrink::{Options, ShrinkError};
    let scenario = match scenario::load_file(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options { seed: seed.unwrap_or(scenario.seed), max_runs, expectation: expect };
    let result = vigil_sim::shrink::shrink(&scenario, &options, &mut |line| eprintln!("{line}"));
    let shrunk = match result {
        Ok(s) => s,
        Err(e @ (ShrinkError::Passes { .. } | ShrinkError::NotFailing { .. })) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let text = shrunk.file(&file.display().to_string());
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
            outln!("{}", shrunk.summary());
            outln!("wrote {} (fails `{}`)", path.display(), shrunk.expectation);
        }
        None => {
            out!("{text}");
            eprintln!("{}", shrunk.summary());
        }
    }
    ExitCode::SUCCESS
}

/// Scenario files named by `paths`: files as given, directories expanded
/// to their `*.toml` files in name order.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(format!("{} holds no *.toml scenario", path.display()));
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn sweep(paths: &[PathBuf], seeds: Range<u64>, jobs: Option<usize>, json: bool) -> ExitCode {
    let files = match scenario_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut scenarios = Vec::new();
    for file in &files {
        match scenario::load_file(file) {
            Ok(s) => scenarios.push((file.clone(), s)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let per_scenario = seeds.end - seeds.start;
    let bar = indicatif::ProgressBar::new(per_scenario.saturating_mul(scenarios.len() as u64));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (summaries, wall) = {
        let (s, wall, ()) = timed(|| {
            let s: Vec<_> = scenarios
                .iter()
                .map(|(_, scenario)| {
                    bar.set_message(scenario.name.clone());
                    vigil_sim::sweep::sweep(scenario, seeds.clone(), jobs, &|| bar.inc(1))
                })
                .collect();
            (s, ())
        });
        (s, wall)
    };
    bar.finish_and_clear();
    let failed = summaries.iter().any(|s| !s.failures.is_empty());
    if json {
        match serde_json::to_string_pretty(&summaries) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                eprintln!("error: cannot encode the summaries: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        let ms = |v: Option<u64>| {
            v.map_or_else(
                || "-".to_string(),
                |ms| vigil_sim::text::fmt_duration(vigil_core::Duration::from_millis(ms)),
            )
        };
        outln!(
            "{:<28} {:>6} {:>6} {:>6} {:>12} {:>10} {:>10} {:>10} {:>11}",
            "scenario",
            "seeds",
            "passed",
            "failed",
            "worst avail",
            "detection",
            "recovery",
            "restore",
            "events"
        );
        for s in &summaries {
            outln!(
                "{:<28} {:>6} {:>6} {:>6} {:>12} {:>10} {:>10} {:>10} {:>11}",
                s.scenario,
                s.seeds,
                s.passed,
                s.failures.len(),
                s.worst_availability.map_or_else(|| "-".to_string(), vigil_sim::text::fmt_share),
                ms(s.worst_detection_ms),
                ms(s.worst_recovery_start_ms),
                ms(s.worst_restore_ms),
                s.events
            );
        }
        outln!(
            "(worst over the seeds: detection after an outage began, recovery's first action after detection, restore after the outage began)"
        );
        for ((file, _), s) in scenarios.iter().zip(&summaries) {
            for f in &s.failures {
                outln!("\nFAILED {} seed {}: {}", s.scenario, f.seed, f.failed.join("; "));
                outln!("  replay: vigil replay {} --seed {}", file.display(), f.seed);
            }
        }
        let events: u64 = summaries.iter().map(|s| s.events).sum();
        let secs = wall.as_secs_f64().max(1e-9);
        outln!(
            "\n{} run(s) on {jobs} thread(s) in {:.1} s ({:.1} M events/s)",
            per_scenario.saturating_mul(summaries.len() as u64),
            secs,
            events as f64 / secs / 1e6
        );
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn check(paths: &[PathBuf]) -> ExitCode {
    let files = match scenario_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bad = 0;
    for file in &files {
        match scenario::load_file(file) {
            Ok(s) => outln!(
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
        (Report::new(&sim, seed, 0), sim.timeline_error().map(|e| (e.kind(), e.to_string())))
    });
    report.wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
    if let Some((kind, e)) = timeline_error {
        if kind == io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS; // the reader has seen enough
        }
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
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        }
        if let Some(line) = determinism_line {
            eprintln!("{line}");
        }
    } else {
        out!("{}", report.to_text());
        let secs = wall.as_secs_f64().max(1e-9);
        outln!(
            "wall      {:.1} ms ({:.1} M events/s)",
            secs * 1e3,
            report.events_processed as f64 / secs / 1e6
        );
        if let Some(line) = determinism_line {
            outln!("{line}");
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
