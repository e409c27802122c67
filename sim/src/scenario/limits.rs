//! Every limit of the loader, walked: a file at the limit loads, one just
//! past it is refused with a message naming the limit, and for the limits
//! that reach the world (names, zones, small counts) the file at the limit
//! also boots and runs. `check` accepting a file must mean `run` builds
//! it: the 64-character service name that passed `check` and panicked
//! `run` is the case this guards.

use super::load::{
    MAX_CORES, MAX_CPU_FACTOR, MAX_DRIFT_PPM, MAX_FAULT_NODES, MAX_FAULT_OCCURRENCES, MAX_FORGE_RATE,
    MAX_PENDING_EVENTS, MAX_RUNG_ATTEMPTS, MAX_SCALE_OUT_BY, MAX_SERVICE_INSTANCES, MAX_TOTAL_INSTANCES,
};
use super::*;
use vigil_core::Duration;

/// A one-service file: `name`, its service's extra keys, then `tail`.
fn file(duration: &str, service: &str, extra: &str, tail: &str) -> String {
    format!(
        "name = \"limits\"\nduration = \"{duration}\"\n\n[[service]]\nname = \"{service}\"\ninstances = 2\n\
         {extra}\n{tail}\n"
    )
}

fn short(extra: &str, tail: &str) -> String {
    file("2s", "svc", extra, tail)
}

/// One limit: the file at it, the file past it, words the refusal must
/// contain, and whether the file at the limit is cheap enough to run.
struct Limit {
    name: &'static str,
    at: String,
    past: String,
    words: Vec<String>,
    runs: bool,
}

fn limits() -> Vec<Limit> {
    let mut out = Vec::new();
    let mut add = |name, at: String, past: String, words: &[&str], runs| {
        out.push(Limit { name, at, past, words: words.iter().map(|w| (*w).to_string()).collect(), runs });
    };
    let max_name = vigil_core::registry::RegistryConfig::default().max_name_len;
    add(
        "service name length",
        file("2s", &"s".repeat(max_name), "", ""),
        file("2s", &"s".repeat(max_name + 1), "", ""),
        &["service name", &max_name.to_string()],
        true,
    );
    add(
        "zone name length",
        short(&format!("zones = [\"{}\", \"b\"]", "z".repeat(64)), ""),
        short(&format!("zones = [\"{}\", \"b\"]", "z".repeat(65)), ""),
        &["zone", "64"],
        true,
    );
    let zones = |n: usize| (0..n).map(|i| format!("\"z{i}\"")).collect::<Vec<_>>().join(", ");
    add(
        "zones per service",
        short(&format!("zones = [{}]", zones(64)), ""),
        short(&format!("zones = [{}]", zones(65)), ""),
        &["zones", "64"],
        true,
    );
    let instances = |n: u32| file("2s", "svc", "", "").replace("instances = 2", &format!("instances = {n}"));
    add(
        "instances of one service",
        instances(MAX_SERVICE_INSTANCES),
        instances(MAX_SERVICE_INSTANCES + 1),
        &["instances", &MAX_SERVICE_INSTANCES.to_string()],
        false,
    );
    let fleet = |extra: u32| {
        let mut f = "name = \"limits\"\nduration = \"2s\"\n".to_string();
        for s in 0..MAX_TOTAL_INSTANCES / MAX_SERVICE_INSTANCES {
            f += &format!("[[service]]\nname = \"s{s}\"\ninstances = {MAX_SERVICE_INSTANCES}\n");
        }
        if extra > 0 {
            f += &format!("[[service]]\nname = \"extra\"\ninstances = {extra}\n");
        }
        f
    };
    add("instances of the fleet", fleet(0), fleet(1), &["too many instances", "1000000"], false);
    add("duration", file("30days", "svc", "", ""), file("30days 1s", "svc", "", ""), &["30 days"], false);
    add(
        "duration string length",
        short(
            "heartbeat = { interval = \"1s\", dead_after = \"100s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s\" }",
            "",
        ),
        short(
            "heartbeat = { interval = \"1s\", dead_after = \"1000s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s 0s\" }",
            "",
        ),
        &["64 characters"],
        true,
    );
    add(
        "duration digits",
        short("heartbeat = { interval = \"0000000001s\" }", ""),
        short("heartbeat = { interval = \"00000000001s\" }", ""),
        &["10 digits"],
        true,
    );
    let skew = |ppm: i64| {
        short(
            "",
            &format!(
                "[[fault]]\nat = \"1s\"\nduration = \"500ms\"\nkind = \"clock_skew\"\ntarget = \"svc/0\"\n\
                 drift_ppm = {ppm}"
            ),
        )
    };
    add("clock drift", skew(MAX_DRIFT_PPM), skew(MAX_DRIFT_PPM + 1), &["drift_ppm", "100000"], true);
    add(
        "cores",
        short(&format!("cores = {MAX_CORES}"), ""),
        short(&format!("cores = {}", MAX_CORES + 1), ""),
        &["cores", "1024"],
        true,
    );
    add(
        "capacity",
        short("capacity = 1000000", ""),
        short("capacity = 1000001", ""),
        &["capacity", "1000000"],
        true,
    );
    let cpu = |factor: f64| {
        short(
            "",
            &format!(
                "[[fault]]\nat = \"1s\"\nduration = \"500ms\"\nkind = \"cpu\"\ntarget = \"svc/0\"\nfactor = {factor:?}"
            ),
        )
    };
    add("cpu factor", cpu(MAX_CPU_FACTOR), cpu(MAX_CPU_FACTOR + 0.5), &["factor", "1000"], true);
    let forge = |rate: f64| {
        short(
            "",
            &format!(
                "[[fault]]\nat = \"1s\"\nduration = \"100ms\"\nkind = \"forge\"\ntarget = \"svc\"\nrate = {rate:?}"
            ),
        )
    };
    add("forge rate", forge(MAX_FORGE_RATE), forge(MAX_FORGE_RATE + 1.0), &["rate", "10000"], true);
    let rung = |rung: &str| {
        short(
            "policy = \"p\"\nmax_instances = 1002",
            &format!("[recovery]\n[recovery.policies.p]\nunresponsive = [\"{rung}\"]"),
        )
    };
    add(
        "rung attempts",
        rung(&format!("restart*{MAX_RUNG_ATTEMPTS}")),
        rung(&format!("restart*{}", MAX_RUNG_ATTEMPTS + 1)),
        &["attempts", "100"],
        true,
    );
    add(
        "scale-out step",
        rung(&format!("scale_out+{MAX_SCALE_OUT_BY}")),
        rung(&format!("scale_out+{}", MAX_SCALE_OUT_BY + 1)),
        &["instances to add", "1000"],
        true,
    );
    let calls = |r: f64| {
        format!(
            "name = \"limits\"\nduration = \"2s\"\n[[service]]\nname = \"a\"\ninstances = 1\n\
             depends_on = [\"b\"]\ncalls = {{ b = {r:?} }}\n[[service]]\nname = \"b\"\ninstances = 1\n"
        )
    };
    add("calls per request", calls(100.0), calls(100.5), &["100"], true);
    let rate = |r: f64| short("", &format!("[load]\ntarget = \"svc\"\nstart = \"0s\"\nrate = {r:?}"));
    add("load rate", rate(1_000_000.0), rate(1_000_000.5), &["rate", "1000000"], false);
    let threshold = |t: u32| short(&format!("health = {{ interval = \"1s\", failure_threshold = {t} }}"), "");
    add("health threshold", threshold(100), threshold(101), &["failure_threshold", "100"], true);
    // `every = "1s"` from 0 repeats once per second of the run.
    let repeated = |run_s: u64| {
        file(
            &format!("{run_s}s"),
            "svc",
            "",
            "[[fault]]\nat = \"0s\"\nduration = \"500ms\"\nkind = \"hang\"\ntarget = \"svc/0\"\nevery = \"1s\"",
        )
    };
    add(
        "fault occurrences",
        repeated(MAX_FAULT_OCCURRENCES),
        repeated(MAX_FAULT_OCCURRENCES + 1),
        &["every", "1000000"],
        false,
    );
    // One fault naming a whole service of 100 000, repeated: each
    // repetition counts its nodes.
    let nodes = |times: usize| {
        let per = MAX_SERVICE_INSTANCES as usize;
        file(
            &format!("{times}s"),
            "svc",
            "",
            "[[fault]]\nat = \"0s\"\nduration = \"500ms\"\nkind = \"hang\"\ntarget = \"svc\"\nevery = \"1s\"",
        )
        .replace("instances = 2", &format!("instances = {per}"))
    };
    let times = MAX_FAULT_NODES / MAX_SERVICE_INSTANCES as usize;
    add("nodes named by faults", nodes(times), nodes(times + 1), &["10000000"], false);
    add(
        "step budget",
        format!("max_events = 1\n{}", short("", "")),
        format!("max_events = 0\n{}", short("", "")),
        &["max_events", "greater than zero"],
        true,
    );
    add(
        "memory budget",
        format!("max_pending_events = {MAX_PENDING_EVENTS}\n{}", short("", "")),
        format!("max_pending_events = {}\n{}", MAX_PENDING_EVENTS + 1, short("", "")),
        &["max_pending_events", &MAX_PENDING_EVENTS.to_string()],
        true,
    );
    add(
        "memory budget, at least one",
        format!("max_pending_events = 1\n{}", short("", "")),
        format!("max_pending_events = 0\n{}", short("", "")),
        &["max_pending_events", "between 1"],
        false,
    );
    out
}

#[test]
fn every_limit_loads_at_it_and_refuses_past_it() {
    for limit in limits() {
        let scenario = match parse(&limit.at, "at.toml") {
            Ok(s) => s,
            Err(e) => panic!("{}: the file at the limit is refused: {e}\n{}", limit.name, limit.at),
        };
        match parse(&limit.past, "past.toml") {
            Ok(_) => panic!("{}: the file past the limit loads\n{}", limit.name, limit.past),
            Err(ScenarioError::Invalid { message, line, .. }) => {
                assert!(line >= 1, "{}: no line", limit.name);
                for word in &limit.words {
                    assert!(
                        message.contains(word.as_str()),
                        "{}: `{message}` does not name `{word}`",
                        limit.name
                    );
                }
            }
            Err(other) => panic!("{}: {other:?}", limit.name),
        }
        if limit.runs {
            // Boots (the 64-character name used to panic here) and runs.
            let mut short = scenario.clone();
            short.duration = short.duration.min(Duration::from_secs(2));
            let report = crate::run(&short, 1);
            assert!(report.events_processed > 0, "{}: nothing ran", limit.name);
        }
    }
}

/// The service name the issue reported: 64 characters passed `check` and
/// panicked `run`. Now the loader refuses it where it is written.
#[test]
fn a_64_character_service_name_is_refused_at_its_span() {
    let source = file("1m", &"a".repeat(64), "", "");
    match parse(&source, "long.toml") {
        Err(ScenarioError::Invalid { line, column, message, .. }) => {
            assert_eq!((line, column), (5, 8), "{message}");
            assert!(message.contains("64") && message.contains("63"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
