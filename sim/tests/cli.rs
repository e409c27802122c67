//! The `vigil` binary as a user drives it: exit codes (0 all holds, 1 an
//! expectation fails, 2 bad input or usage), the text and JSON reports, the
//! timeline file and the determinism check.

mod common;
use common::*;

use serde_json::Value;

/// Run `vigil run FILE --json ARGS…`, expecting `expected_code`, and parse
/// the whole of stdout as one JSON value.
fn run_json(file: &str, args: &[&str], expected_code: i32) -> Value {
    let mut all = vec!["run", file, "--json"];
    all.extend_from_slice(args);
    let out = vigil(&all);
    assert_eq!(code(&out), expected_code, "vigil {all:?}\nstderr: {}", stderr(&out));
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", stdout(&out)))
}

/// Two services; `checkout/0` crashes at 10 s and never comes back;
/// heartbeats declare an instance dead after 5 s of silence.
const CRASH_FOREVER: &str = r#"
name = "crash-forever"
duration = "30s"
seed = 5

[[service]]
name = "checkout"
instances = 2
heartbeat = { interval = "1s", suspect_after = "3s", dead_after = "5s" }

[[fault]]
at = "10s"
kind = "crash"
target = "checkout/0"
"#;

#[test]
fn check_accepts_every_shipped_scenario() {
    let files = shipped_scenarios();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = vigil(&args);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let text = stdout(&out);
    for file in &files {
        assert!(
            text.lines().any(|l| l.starts_with("ok ") && l.contains(file.as_str())),
            "no `ok` line for {file}:\n{text}"
        );
    }
    assert!(stderr(&out).is_empty(), "unexpected stderr: {}", stderr(&out));
}

#[test]
fn check_of_each_malformed_file_exits_2_and_names_file_line_and_column() {
    let cases = [
        // (file name, contents, line:column of the offending text)
        ("syntax.toml", "name = \"bad\"\nduration = \"10s\n", "2:16"),
        ("unknown-key.toml", "name = \"bad\"\nduration = \"10s\"\ncolour = \"red\"\n", "3:1"),
        (
            "unknown-service.toml",
            "name = \"bad\"\nduration = \"10s\"\n\n[[service]]\nname = \"web\"\ninstances = 2\n\n\
             [[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"wbe/0\"\n",
            "11:10",
        ),
        (
            "bad-duration.toml",
            "name = \"bad\"\nduration = \"ten seconds\"\n\n[[service]]\nname = \"web\"\ninstances = 1\n",
            "2:12",
        ),
    ];
    for (name, contents, at) in cases {
        let file = TempFile::new(name, contents);
        let out = vigil(&["check", &file.path()]);
        assert_eq!(code(&out), 2, "{name}: stdout {}", stdout(&out));
        let err = stderr(&out);
        let location = format!("{}:{at}:", file.path());
        assert!(err.contains(&location), "{name}: stderr does not name `{location}`:\n{err}");
    }
}

#[test]
fn check_of_good_and_bad_files_reports_both_and_exits_2() {
    let bad = TempFile::new("mixed-bad.toml", "name = \"bad\"\n");
    let good = scenario("instance-crash.toml");
    let out = vigil(&["check", &bad.path(), &good]);
    assert_eq!(code(&out), 2);
    assert!(stdout(&out).contains(&good), "the good file is still checked: {}", stdout(&out));
    assert!(stderr(&out).contains(&bad.path()), "stderr: {}", stderr(&out));
}

#[test]
fn run_of_a_passing_scenario_exits_0_and_says_passed() {
    let out = vigil(&["run", &scenario("instance-crash.toml")]);
    assert_eq!(code(&out), 0, "stdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("result    PASSED"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn run_json_prints_one_object_with_the_report_fields() {
    let report = run_json(&scenario("instance-crash.toml"), &[], 0);
    let object = report.as_object().expect("the report is a JSON object");
    assert_eq!(object["scenario"], "instance-crash");
    assert_eq!(object["seed"], 42, "the scenario's default seed");
    let hash = object["trace_hash"].as_str().expect("trace_hash is a string");
    assert_eq!(hash.len(), 16, "trace_hash {hash:?}");
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "trace_hash {hash:?}");
    assert!(object["events_processed"].as_u64().expect("events_processed is a number") > 0);
    assert_eq!(object["simulated_ms"].as_u64(), Some(120_000), "the scenario runs 2m");
    assert!(object["wall_ms"].is_u64(), "wall_ms is a number: {}", object["wall_ms"]);
    assert_eq!(object["passed"], Value::Bool(true));
    let expectations = object["expectations"].as_array().expect("expectations is an array");
    let names: Vec<&str> = expectations.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["completes", "detected_within", "no_false_dead", "alive_at_end"]);
    for e in expectations {
        assert!(e["passed"].is_boolean(), "{e}");
        assert!(e["required"].is_string(), "{e}");
        assert!(e["observed"].is_string(), "{e}");
    }
}

#[test]
fn json_and_text_reports_agree_on_the_trace_hash() {
    let file = scenario("one-way-partition.toml");
    let report = run_json(&file, &[], 0);
    let text = stdout(&vigil(&["run", &file]));
    let hash = report["trace_hash"].as_str().expect("trace_hash is a string");
    assert!(text.lines().any(|l| l == format!("trace     {hash}")), "{hash} not in:\n{text}");
}

#[test]
fn a_failed_expectation_exits_1_and_the_report_says_fail() {
    // Death is declared after 5 s of silence; asking for 1 s must fail.
    let source = format!("{CRASH_FOREVER}\n[expect]\ndetected_within = \"1s\"\n");
    let file = TempFile::new("too-strict.toml", &source);
    let out = vigil(&["run", &file.path()]);
    assert_eq!(code(&out), 1, "stdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("result    FAILED"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("FAIL detected_within")), "{text}");

    let report = run_json(&file.path(), &[], 1);
    assert_eq!(report["passed"], Value::Bool(false));
    let failed: Vec<&str> = report["expectations"]
        .as_array()
        .expect("expectations is an array")
        .iter()
        .filter(|e| e["passed"] == Value::Bool(false))
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(failed, ["detected_within"]);
}

#[test]
fn the_same_scenario_with_a_loose_bound_exits_0() {
    // The control case of the test above: only the bound differs.
    let source = format!("{CRASH_FOREVER}\n[expect]\ndetected_within = \"6s\"\n");
    let file = TempFile::new("loose.toml", &source);
    let out = vigil(&["run", &file.path()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn max_events_override_spends_the_step_budget_and_exits_1() {
    let report = run_json(&scenario("instance-crash.toml"), &["--max-events", "100"], 1);
    assert_eq!(report["events_processed"].as_u64(), Some(100));
    assert!(report["simulated_ms"].as_u64().expect("a number") < 120_000);
    let completes = &report["expectations"][0];
    assert_eq!(completes["name"], "completes");
    assert_eq!(completes["passed"], Value::Bool(false));
}

#[test]
fn check_determinism_exits_0_and_says_ok() {
    let out = vigil(&["run", &scenario("symmetric-partition.toml"), "--check-determinism"]);
    assert_eq!(code(&out), 0, "stdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("determinism ok"), "{}", stdout(&out));
}

/// Whether `line` starts with a simulated time such as `12.345678s `.
fn starts_with_simulated_time(line: &str) -> bool {
    let Some((time, _)) = line.split_once(' ') else { return false };
    let Some(time) = time.strip_suffix('s') else { return false };
    let Some((secs, micros)) = time.split_once('.') else { return false };
    !secs.is_empty()
        && secs.chars().all(|c| c.is_ascii_digit())
        && micros.len() == 6
        && micros.chars().all(|c| c.is_ascii_digit())
}

fn simulated_micros(line: &str) -> u64 {
    let time = line.split(' ').next().and_then(|t| t.strip_suffix('s')).expect("a time");
    let (secs, micros) = time.split_once('.').expect("a decimal point");
    secs.parse::<u64>().expect("seconds") * 1_000_000 + micros.parse::<u64>().expect("micros")
}

#[test]
fn timeline_writes_one_line_per_event_each_starting_with_its_simulated_time() {
    let timeline = TempFile::path_only("timeline.txt");
    let report = run_json(&scenario("instance-crash.toml"), &["--timeline", &timeline.path()], 0);
    let text = std::fs::read_to_string(&timeline.0).expect("the timeline file was written");
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(starts_with_simulated_time(line), "line without a leading simulated time: {line:?}");
    }
    let times: Vec<u64> = lines.iter().map(|l| simulated_micros(l)).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "timeline goes back in time");
    // Verdict changes get a line of their own besides the event that caused
    // them; every other line is one processed event.
    let events = lines.iter().filter(|l| !l.contains(" verdict ")).count() as u64;
    assert_eq!(Some(events), report["events_processed"].as_u64());
    assert!(lines.iter().any(|l| l.contains("fault#0 begins: crash checkout/0")), "no fault line");
}

#[test]
fn timeline_lines_name_instances_as_a_user_does_not_as_rust_debug_text() {
    let timeline = TempFile::path_only("timeline-words.txt");
    run_json(&scenario("erroring-instance.toml"), &["--timeline", &timeline.path()], 0);
    let text = std::fs::read_to_string(&timeline.0).expect("the timeline file was written");
    for debug in ["InstanceId(", "NodeId(", "Heartbeat {", "EndpointUpdate {", "Ejected {"] {
        assert!(!text.contains(debug), "debug text `{debug}` in the timeline");
    }
    assert!(
        text.lines().any(|l| l.contains("recv from control endpoint update: ")),
        "no endpoint update line"
    );
    assert!(text.lines().any(|l| l.contains(" heartbeat ") && l.contains(" seq ")), "no heartbeat line");
    assert!(text.lines().any(|l| l.contains("balancer: ejected (")), "no balancer line in words");
}

#[test]
fn seed_flag_changes_the_trace_hash_and_a_seed_replays_across_processes() {
    let file = scenario("instance-crash.toml");
    let default = run_json(&file, &[], 0);
    let seed_1 = run_json(&file, &["--seed", "1"], 0);
    let seed_2 = run_json(&file, &["--seed", "2"], 0);
    let seed_1_again = run_json(&file, &["--seed", "1"], 0);
    assert_eq!(seed_1["seed"], 1);
    assert_eq!(seed_2["seed"], 2);
    assert_ne!(seed_1["trace_hash"], default["trace_hash"]);
    assert_ne!(seed_1["trace_hash"], seed_2["trace_hash"]);
    assert_eq!(seed_1["trace_hash"], seed_1_again["trace_hash"], "one seed, two processes, two traces");
    let explicit_default = run_json(&file, &["--seed", "42"], 0);
    assert_eq!(explicit_default["trace_hash"], default["trace_hash"], "the default seed is the file's");
}

#[test]
fn a_nonexistent_file_exits_2_for_run_and_check() {
    let missing = TempFile::path_only("does-not-exist.toml");
    for command in ["run", "check"] {
        let out = vigil(&[command, &missing.path()]);
        assert_eq!(code(&out), 2, "vigil {command}");
        assert!(stderr(&out).contains(&missing.path()), "vigil {command}: stderr {}", stderr(&out));
    }
}

#[test]
fn usage_errors_exit_2() {
    let file = scenario("instance-crash.toml");
    for args in [
        vec!["run", file.as_str(), "--no-such-flag"],
        vec!["run", file.as_str(), "--seed", "minus-one"],
        vec!["frobnicate"],
        vec![],
    ] {
        let out = vigil(&args);
        assert_eq!(code(&out), 2, "vigil {args:?}: stdout {}", stdout(&out));
        assert!(!stderr(&out).is_empty(), "vigil {args:?} says nothing on stderr");
    }
}

#[test]
fn a_timeline_that_cannot_be_written_exits_2() {
    let dir = TempFile::path_only("no-such-dir");
    let path = format!("{}/timeline.txt", dir.path());
    let out = vigil(&["run", &scenario("instance-crash.toml"), "--timeline", &path]);
    assert_eq!(code(&out), 2, "stdout: {}", stdout(&out));
    assert!(stderr(&out).contains("timeline"), "stderr: {}", stderr(&out));
}

#[test]
fn json_with_timeline_on_stdout_is_refused_so_stdout_stays_one_json_object() {
    let out = vigil(&["run", &scenario("instance-crash.toml"), "--json", "--timeline", "-"]);
    assert_eq!(code(&out), 2, "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("--timeline"), "stderr names the conflict: {}", stderr(&out));
    assert!(stdout(&out).is_empty(), "nothing half-written to stdout");
}

#[test]
fn a_reader_that_stops_early_does_not_make_vigil_panic() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        // The timeline (~180 kB) outgrows the pipe's buffer, so vigil is
        // still writing when the reader hangs up.
        .args(["run", &scenario("instance-crash.toml"), "--timeline", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil starts");
    // Read one byte, then hang up, as `vigil run … | head -c 1` would.
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("vigil writes a report");
    drop(stdout);
    let out = child.wait_with_output().expect("vigil ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "no panic on a closed pipe: {stderr}");
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 1), "an ordinary exit: {:?}", out.status);
}

#[test]
fn check_accepts_a_directory_of_scenarios_like_sweep() {
    let dir = scenarios_dir();
    let out = vigil(&["check", dir.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let ok = stdout(&out).lines().filter(|l| l.starts_with("ok ")).count();
    let files = std::fs::read_dir(&dir)
        .expect("scenarios dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")))
        .count();
    assert_eq!(ok, files, "one ok line per scenario file: {}", stdout(&out));
}

#[test]
fn help_states_the_exit_codes_and_replay_help_lists_every_filter_kind() {
    let out = vigil(&["--help"]);
    let text = stdout(&out);
    assert!(text.contains("Exit codes:"), "{text}");
    for code in ["0  success", "1  a run failed", "2  bad input or usage"] {
        assert!(text.contains(code), "`{code}` missing: {text}");
    }
    let replay = stdout(&vigil(&["replay", "--help"]));
    for kind in vigil_sim::replay::Kind::ALL {
        assert!(replay.contains(kind.name()), "replay --help omits `{}`: {replay}", kind.name());
    }
    assert!(replay.contains("Exit codes:"), "{replay}");
}

#[test]
fn a_failing_sweep_prints_replay_commands_for_the_installed_binary() {
    let text = std::fs::read_to_string(scenario("crash-and-restart.toml"))
        .expect("scenario")
        .replace("availability = \"99.9%\"", "availability = \"100%\"");
    let file = TempFile::new("tight-sweep.toml", &text);
    let path = file.path();
    let out = vigil(&["sweep", &path, "--seeds", "0..2"]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    assert!(stdout(&out).contains(&format!("replay: vigil replay {path} --seed ")), "{}", stdout(&out));
}
