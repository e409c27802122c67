//! `vigil replay`: the run as a timeline, filtered by time window, kind and
//! node, always in time order; exit codes like `vigil run`.

mod common;
use common::*;

/// A crash of `a/1` (10 s to 25 s, detected by heartbeats), a hang of
/// `b/0` seen by probes, and a skew of the control node's clock.
const SCENARIO: &str = r#"
name = "replayed"
duration = "40s"
seed = 3

[[service]]
name = "a"
instances = 2

[[service]]
name = "b"
instances = 2
health = { interval = "1s", timeout = "500ms", failure_threshold = 2 }

[[fault]]
at = "10s"
duration = "15s"
kind = "crash"
target = "a/1"

[[fault]]
at = "20s"
duration = "10s"
kind = "hang"
target = "b/0"

[[fault]]
at = "30s"
duration = "2s"
kind = "clock_skew"
target = "control"
offset = "100ms"

[expect]
detected_within = "8s"
"#;

/// A timeline line: (time in ms, kind, who, what).
fn entries(stdout: &str) -> Vec<(u64, String, String, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let time = words.next()?.strip_suffix('s')?;
            let (secs, ms) = time.split_once('.')?;
            let at = secs.parse::<u64>().ok()? * 1000 + ms.parse::<u64>().ok()?;
            let kind = words.next()?.to_string();
            let who = words.next()?.to_string();
            Some((at, kind, who, words.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

fn replay(file: &TempFile, args: &[&str]) -> (i32, String) {
    let mut all = vec!["replay", file.0.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    let out = vigil(&all);
    (code(&out), text(&out.stdout))
}

fn in_time_order(lines: &[(u64, String, String, String)]) -> bool {
    lines.windows(2).all(|w| w[0].0 <= w[1].0)
}

#[test]
fn the_whole_replay_tells_the_story_in_time_order() {
    let file = TempFile::new("all.toml", SCENARIO);
    let (code, out) = replay(&file, &[]);
    assert_eq!(code, 0, "{out}");
    let lines = entries(&out);
    assert!(in_time_order(&lines), "{out}");
    let has = |kind: &str, who: &str, what: &str| {
        lines.iter().any(|(_, k, w, t)| k == kind && w == who && t.contains(what))
    };
    assert!(has("fault", "a/1", "begins: crash a/1"), "{out}");
    assert!(has("outage", "a/1", "crash outage detected as"), "{out}");
    assert!(has("verdict", "a/1", "-> dead"), "{out}");
    assert!(has("fault", "a/1", "ends: crash a/1"), "{out}");
    assert!(has("health", "b/0", "-> unresponsive"), "{out}");
    assert!(has("fault", "control", "begins: clock skew control"), "{out}");
    assert!(out.contains("result    PASSED") && out.contains("ok   detected_within"), "{out}");
    // The detection comes after the verdict that made it.
    let verdict =
        lines.iter().position(|(_, k, w, t)| k == "verdict" && w == "a/1" && t.ends_with("-> dead"));
    let detected =
        lines.iter().position(|(_, k, w, t)| k == "outage" && w == "a/1" && t.contains("detected"));
    assert!(verdict < detected, "{out}");
}

#[test]
fn a_time_window_shows_only_entries_inside_it() {
    let file = TempFile::new("window.toml", SCENARIO);
    let (code, out) = replay(&file, &["--from", "12s", "--until", "21s"]);
    assert_eq!(code, 0, "{out}");
    let lines = entries(&out);
    assert!(!lines.is_empty(), "{out}");
    assert!(lines.iter().all(|(at, ..)| (12_000..=21_000).contains(at)), "{out}");
    assert!(in_time_order(&lines), "{out}");
    assert!(lines.iter().any(|(_, k, w, _)| k == "fault" && w == "b/0"), "the hang at 20 s: {out}");
    assert!(!lines.iter().any(|(_, _, _, t)| t.contains("begins: crash")), "the crash began at 10 s: {out}");
}

#[test]
fn a_node_filter_shows_only_that_node_or_service() {
    let file = TempFile::new("node.toml", SCENARIO);
    let (_, out) = replay(&file, &["--node", "a/1"]);
    let lines = entries(&out);
    assert!(lines.len() >= 5, "{out}");
    assert!(lines.iter().all(|(_, _, w, _)| w == "a/1"), "{out}");
    let (_, out) = replay(&file, &["--node", "b"]);
    let lines = entries(&out);
    assert!(
        lines.iter().any(|(_, _, w, _)| w == "b/0") && lines.iter().any(|(_, _, w, _)| w == "b/1"),
        "{out}"
    );
    assert!(lines.iter().all(|(_, _, w, _)| w.starts_with("b/")), "{out}");
    assert!(in_time_order(&lines), "{out}");
}

#[test]
fn a_kind_filter_shows_only_those_kinds() {
    let file = TempFile::new("kind.toml", SCENARIO);
    let (_, out) = replay(&file, &["--filter", "fault,verdict"]);
    let lines = entries(&out);
    assert!(
        lines.iter().any(|(_, k, ..)| k == "fault") && lines.iter().any(|(_, k, ..)| k == "verdict"),
        "{out}"
    );
    assert!(lines.iter().all(|(_, k, ..)| k == "fault" || k == "verdict"), "{out}");
    // Filters combine.
    let (_, out) = replay(&file, &["--filter", "fault", "--node", "a/1", "--until", "15s"]);
    let lines = entries(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!((lines[0].0, lines[0].1.as_str()), (10_000, "fault"));
}

#[test]
fn a_failing_run_exits_1_and_says_why() {
    let failing = SCENARIO.replace("detected_within = \"8s\"", "detected_within = \"1s\"");
    let file = TempFile::new("failing.toml", &failing);
    let (code, out) = replay(&file, &["--filter", "outage"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("result    FAILED") && out.contains("FAIL detected_within"), "{out}");
}

#[test]
fn bad_input_exits_2() {
    let bad = TempFile::new("bad.toml", "name = \"x\"\nduration = 30\n");
    let out = vigil(&["replay", &bad.path(), "--seed", "1"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("bad.toml:2:"), "{}", text(&out.stderr));
    let good = TempFile::new("good.toml", SCENARIO);
    for args in [
        vec!["--filter", "bogus"],
        vec!["--from", "soon"],
        vec!["--node", "nosuch/0"],
        vec!["--from", "20s", "--until", "10s"],
    ] {
        let mut all = vec!["replay", good.0.to_str().expect("UTF-8")];
        all.extend(args.iter().copied());
        let out = vigil(&all);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).is_empty());
    }
}
