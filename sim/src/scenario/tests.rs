//! Loader tests: a full file, defaults, one test per class of error (each
//! checking line, column and message), and properties that no input panics.

use proptest::prelude::*;
use vigil_core::{Duration, NodeId};

use super::*;

const FULL: &str = r#"
name = "checkout-instance-crash"
description = "one checkout instance dies"
duration = "10m"
seed = 42
max_events = 50_000_000

[network]
latency = { kind = "exponential", min = "1ms", mean = "3ms" }
loss = 0.001
duplicate = 0
reorder = 1
reorder_delay = "20ms"
stability = "2s"

[[service]]
name = "checkout"
instances = 3
heartbeat = { interval = "500ms", suspect_after = "2s", dead_after = "4s" }

[[service]]
name = "payments"
instances = 2

[[fault]]
at = "120s"
duration = "30s"
kind = "partition"
groups = [["checkout/*", "control"], "payments"]

[[fault]]
at = "60s"
kind = "crash"
target = "checkout/0"

[[fault]]
at = "60s"
kind = "restart"
target = ["checkout/0", "checkout/0", "control"]

[[fault]]
at = "3m"
kind = "partition"
mode = "one_way"
from = "payments/1"
to = ["*"]

[[fault]]
at = "4m"
kind = "partition"
mode = "isolate"
target = "payments"

[[fault]]
at = "5m"
kind = "heal"

[[fault]]
at = "6m"
duration = "1m"
kind = "clock_skew"
target = "checkout/2"
offset = "-2s"
drift_ppm = -500

[[fault]]
at = "7m"
kind = "pause"
target = "*"

[[fault]]
at = "8m"
kind = "resume"
target = "payments/*"

[expect]
detected_within = "5s"
no_false_dead = true
alive_at_end = true
"#;

fn n(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// Parse text that must be invalid; return (line, column, message).
#[track_caller]
fn error(source: &str) -> (usize, usize, String) {
    match parse(source, "test.toml") {
        Ok(scenario) => panic!("expected an error, parsed {scenario:?}"),
        Err(ScenarioError::Invalid { origin, line, column, message, line_text }) => {
            assert_eq!(origin, "test.toml");
            // The reported line is really the one at that number.
            assert_eq!(source.lines().nth(line - 1).unwrap_or(""), line_text);
            (line, column, message)
        }
        Err(other) => panic!("expected Invalid, got {other:?}"),
    }
}

/// Assert an error at `line:column` whose message contains each of `words`.
#[track_caller]
fn assert_error(source: &str, line: usize, column: usize, words: &[&str]) {
    let (l, c, message) = error(source);
    assert_eq!((l, c), (line, column), "wrong position for: {message}");
    for word in words {
        assert!(message.contains(word), "message {message:?} lacks {word:?}");
    }
}

/// A minimal valid file followed by `extra`.
fn with(extra: &str) -> String {
    format!("name = \"t\"\nduration = \"10m\"\n\n[[service]]\nname = \"checkout\"\ninstances = 3\n{extra}")
}

#[test]
fn scenario_full_file_parses_into_the_model() {
    let s = parse(FULL, "full.toml").unwrap();
    assert_eq!(s.name, "checkout-instance-crash");
    assert_eq!(s.description.as_deref(), Some("one checkout instance dies"));
    assert_eq!(s.duration, Duration::from_secs(600));
    assert_eq!(s.seed, 42);
    assert_eq!(s.max_events, 50_000_000);
    assert_eq!(
        s.network,
        NetworkConfig {
            latency: LatencyModel::Exponential {
                min: Duration::from_millis(1),
                mean: Duration::from_millis(3)
            },
            loss: 0.001,
            duplicate: 0.0,
            reorder: 1.0,
            reorder_delay: Duration::from_millis(20),
            stability: Duration::from_secs(2),
        }
    );
    assert_eq!(
        s.services,
        vec![
            Service {
                name: "checkout".into(),
                instances: 3,
                heartbeat: HeartbeatConfig {
                    interval: Duration::from_millis(500),
                    suspect_after: Duration::from_secs(2),
                    dead_after: Duration::from_secs(4),
                },
                service_time: DEFAULT_SERVICE_TIME,
                health: None,
                zones: Vec::new(),
                capacity: None,
                standby: 0,
                cores: None,
                policy: None,
                depends_on: Vec::new(),
                calls_per_request: Vec::new(),
                call_timeout: None,
            },
            Service {
                name: "payments".into(),
                instances: 2,
                heartbeat: HeartbeatConfig::default(),
                service_time: DEFAULT_SERVICE_TIME,
                health: None,
                zones: Vec::new(),
                capacity: None,
                standby: 0,
                cores: None,
                policy: None,
                depends_on: Vec::new(),
                calls_per_request: Vec::new(),
                call_timeout: None,
            },
        ]
    );
    // Nodes: control 0, checkout/0..2 = 1..3, payments/0..1 = 4..5.
    let expected = vec![
        Fault {
            at: Duration::from_secs(60),
            duration: None,
            action: FaultAction::Crash(n(&[1])),
            pick: Pick::All,
            every: None,
            within: None,
            line: 33,
        },
        Fault {
            at: Duration::from_secs(60),
            duration: None,
            action: FaultAction::Restart(n(&[0, 1])),
            pick: Pick::All,
            every: None,
            within: None,
            line: 38,
        },
        Fault {
            at: Duration::from_secs(120),
            duration: Some(Duration::from_secs(30)),
            action: FaultAction::Partition(Partition::Groups(vec![n(&[0, 1, 2, 3]), n(&[4, 5])])),
            pick: Pick::All,
            every: None,
            within: None,
            line: 28,
        },
        Fault {
            at: Duration::from_secs(180),
            duration: None,
            action: FaultAction::Partition(Partition::OneWay { from: n(&[5]), to: n(&[1, 2, 3, 4, 5]) }),
            pick: Pick::All,
            every: None,
            within: None,
            line: 43,
        },
        Fault {
            at: Duration::from_secs(240),
            duration: None,
            action: FaultAction::Partition(Partition::Isolate(n(&[4, 5]))),
            pick: Pick::All,
            every: None,
            within: None,
            line: 50,
        },
        Fault {
            at: Duration::from_secs(300),
            duration: None,
            action: FaultAction::Heal,
            pick: Pick::All,
            every: None,
            within: None,
            line: 56,
        },
        Fault {
            at: Duration::from_secs(360),
            duration: Some(Duration::from_secs(60)),
            action: FaultAction::ClockSkew { targets: n(&[3]), offset_ns: -2_000_000_000, drift_ppm: -500 },
            pick: Pick::All,
            every: None,
            within: None,
            line: 61,
        },
        Fault {
            at: Duration::from_secs(420),
            duration: None,
            action: FaultAction::Pause(n(&[1, 2, 3, 4, 5])),
            pick: Pick::All,
            every: None,
            within: None,
            line: 68,
        },
        Fault {
            at: Duration::from_secs(480),
            duration: None,
            action: FaultAction::Resume(n(&[4, 5])),
            pick: Pick::All,
            every: None,
            within: None,
            line: 73,
        },
    ];
    assert_eq!(s.faults, expected);
    assert_eq!(
        s.expect,
        Expectations {
            detected_within: Some(Duration::from_secs(5)),
            no_false_dead: true,
            alive_at_end: true,
            availability: None,
            failure_types: false,
            ..Expectations::default()
        }
    );
    assert_eq!(
        s.node_names(),
        ["control", "checkout/0", "checkout/1", "checkout/2", "payments/0", "payments/1"]
    );
}

#[test]
fn scenario_defaults() {
    let s = parse("name = \"x\"\nduration = \"1s\"\n[[service]]\nname = \"a\"\ninstances = 1\n", "d.toml")
        .unwrap();
    assert_eq!(s.description, None);
    assert_eq!(s.seed, 0);
    assert_eq!(s.max_events, 100_000_000);
    assert_eq!(s.network, NetworkConfig::default());
    assert_eq!(s.services[0].heartbeat, HeartbeatConfig::default());
    assert!(s.faults.is_empty());
    assert_eq!(s.expect, Expectations::default());
}

#[test]
fn scenario_partial_tables_take_defaults() {
    let s = parse(
        &with(
            "heartbeat = { dead_after = \"10s\" }\n[network]\nloss = 1\n\
             latency = { kind = \"pareto\", min = \"1ms\", alpha = 2 }\n[expect]\nno_false_dead = true\n",
        ),
        "p.toml",
    )
    .unwrap();
    let hb = s.services[0].heartbeat;
    assert_eq!(hb.interval, Duration::from_secs(1));
    assert_eq!(hb.suspect_after, Duration::from_secs(3));
    assert_eq!(hb.dead_after, Duration::from_secs(10));
    assert_eq!(s.network.loss, 1.0);
    assert_eq!(s.network.reorder_delay, NetworkConfig::default().reorder_delay);
    assert_eq!(
        s.network.latency,
        LatencyModel::Pareto { min: Duration::from_millis(1), alpha: 2.0, max: Duration::from_secs(10) }
    );
    assert_eq!(
        s.expect,
        Expectations {
            detected_within: None,
            no_false_dead: true,
            alive_at_end: false,
            availability: None,
            failure_types: false,
            ..Expectations::default()
        }
    );
}

#[test]
fn scenario_latency_kinds() {
    let latency = |spec: &str| {
        parse(&with(&format!("[network]\nlatency = {spec}\n")), "l.toml").map(|s| s.network.latency)
    };
    assert_eq!(
        latency("{ kind = \"fixed\", value = \"2ms\" }").unwrap(),
        LatencyModel::Fixed(Duration::from_millis(2))
    );
    assert_eq!(
        latency("{ kind = \"uniform\", min = \"2ms\", max = \"2ms\" }").unwrap(),
        LatencyModel::Uniform { min: Duration::from_millis(2), max: Duration::from_millis(2) }
    );
    assert_eq!(
        latency("{ kind = \"pareto\", min = \"1ms\", alpha = 1.5, max = \"1s\" }").unwrap(),
        LatencyModel::Pareto { min: Duration::from_millis(1), alpha: 1.5, max: Duration::from_secs(1) }
    );
}

#[test]
fn scenario_durations_accept_humantime_syntax() {
    let run = |d: &str| {
        parse(&format!("name = \"t\"\nduration = \"{d}\"\n[[service]]\nname = \"a\"\ninstances = 1\n"), "x")
            .map(|s| s.duration)
    };
    assert_eq!(run("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(run("1h 30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(run("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(run("30d").unwrap(), Duration::from_secs(30 * 86400));
    assert!(run("31d").is_err());
    assert!(run("0s").is_err());
}

#[test]
fn scenario_faults_keep_file_order_at_equal_times() {
    let s = parse(
        &with(
            "[[fault]]\nat = \"2s\"\nkind = \"heal\"\n\
             [[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"checkout/2\"\n\
             [[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"checkout/1\"\n",
        ),
        "o.toml",
    )
    .unwrap();
    let actions: Vec<_> = s.faults.iter().map(|f| f.action.clone()).collect();
    assert_eq!(actions, [FaultAction::Crash(n(&[3])), FaultAction::Crash(n(&[2])), FaultAction::Heal]);
}

#[test]
fn scenario_clock_skew_positive_and_drift_only() {
    let s = parse(
        &with(
            "[[fault]]\nat = \"1s\"\nkind = \"clock_skew\"\ntarget = \"control\"\noffset = \"+2s\"\n\
             [[fault]]\nat = \"2s\"\nkind = \"clock_skew\"\ntarget = \"checkout\"\ndrift_ppm = 100000\n",
        ),
        "c.toml",
    )
    .unwrap();
    assert_eq!(
        s.faults[0].action,
        FaultAction::ClockSkew { targets: n(&[0]), offset_ns: 2_000_000_000, drift_ppm: 0 }
    );
    assert_eq!(
        s.faults[1].action,
        FaultAction::ClockSkew { targets: n(&[1, 2, 3]), offset_ns: 0, drift_ppm: 100_000 }
    );
}

#[test]
fn scenario_error_display_is_like_rustc() {
    let source = with("[[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"checkot/0\"\n");
    let err = parse(&source, "crash.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "crash.toml:10:10: unknown service `checkot` in target `checkot/0`; known services: `checkout`\n  \
         10 | target = \"checkot/0\"\n     |          ^"
    );
}

#[test]
fn scenario_error_display_keeps_tabs_aligned() {
    let err = parse("name = \"t\"\n\tbogus = 1\n", "tab.toml").unwrap_err();
    assert_eq!(err.to_string().lines().nth(2), Some("    | \t^"));
}

#[test]
fn scenario_io_error_names_the_path() {
    let path = std::path::Path::new("/nonexistent/vigil/scenario.toml");
    let err = load_file(path).unwrap_err();
    assert!(matches!(&err, ScenarioError::Io { path: p, .. } if p == path));
    assert!(err.to_string().starts_with("cannot read /nonexistent/vigil/scenario.toml: "));
}

#[test]
fn scenario_error_toml_syntax() {
    assert_error("name = \"t\nduration = \"1s\"\n", 1, 10, &[]);
}

#[test]
fn scenario_error_unknown_top_level_key() {
    assert_error(&with("").replace("duration", "durration"), 2, 1, &["durration", "duration", "service"]);
}

#[test]
fn scenario_error_unknown_key_in_service() {
    assert_error(&with("replicas = 2\n"), 7, 1, &["unknown field `replicas`", "instances", "heartbeat"]);
}

#[test]
fn scenario_error_unknown_key_in_heartbeat_and_expect() {
    assert_error(&with("heartbeat = { intervall = \"1s\" }\n"), 7, 15, &["intervall", "suspect_after"]);
    assert_error(&with("[expect]\nlatency_p99 = \"10ms\"\n"), 8, 1, &["latency_p99", "detected_within"]);
}

#[test]
fn scenario_error_bad_duration_unit() {
    assert_error(
        &with("").replace("\"10m\"", "\"10q\""),
        2,
        12,
        &["invalid duration \"10q\"", "unknown time unit"],
    );
    assert_error(&with("").replace("\"10m\"", "10"), 2, 12, &["unit", "\"10s\""]);
    assert_error(&with("").replace("\"10m\"", "\"40d\""), 2, 12, &["30 days"]);
}

#[test]
fn scenario_error_duration_overflow_does_not_panic() {
    let source = with("").replace("\"10m\"", "\"18446744073709551615s 500ms 500ms\"");
    assert_error(&source, 2, 12, &["longer than 10 digits"]);
    let source = with("").replace("\"10m\"", "\"9999999999y 9999999999y 9999999999y 500ms 500ms\"");
    assert_error(&source, 2, 12, &["30 days"]);
}

#[test]
fn scenario_error_dead_after_before_suspect_after() {
    let source = with("heartbeat = { suspect_after = \"6s\", dead_after = \"4s\" }\n");
    assert_error(&source, 7, 50, &["`dead_after` (4s) must be at least `suspect_after` (6s)"]);
    // The default dead_after (5s) is below a given suspect_after: blame it.
    let source = with("heartbeat = { suspect_after = \"6s\" }\n");
    assert_error(&source, 7, 31, &["`dead_after` (5s, the default)"]);
}

#[test]
fn scenario_error_interval_not_below_suspect_after() {
    assert_error(&with("heartbeat = { interval = \"3s\" }\n"), 7, 26, &["`suspect_after` (3s, the default)"]);
    assert_error(
        &with("heartbeat = { interval = \"0s\" }\n"),
        7,
        26,
        &["`interval` must be greater than zero"],
    );
}

#[test]
fn scenario_error_unknown_service_in_target() {
    let source = with(
        "\n[[service]]\nname = \"payments\"\ninstances = 1\n\
         [[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = [\"checkout/1\", \"paymnts\"]\n",
    );
    assert_error(&source, 14, 25, &["unknown service `paymnts`", "`checkout` and `payments`"]);
}

#[test]
fn scenario_error_out_of_range_instance() {
    let source = with("[[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"checkout/3\"\n");
    assert_error(&source, 10, 10, &["`checkout/3` is out of range", "has 3 instances", "`checkout/2`"]);
}

#[test]
fn scenario_error_bad_targets() {
    let fault =
        |target: &str| with(&format!("[[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = {target}\n"));
    assert_error(&fault("\"checkout/x\""), 10, 10, &["invalid instance `x`"]);
    assert_error(&fault("\"checkout/+1\""), 10, 10, &["invalid instance `+1`"]);
    assert_error(&fault("\"control/0\""), 10, 10, &["`control` is a single node"]);
    assert_error(&fault("\"\""), 10, 10, &["names no service"]);
    assert_error(&fault("[]"), 10, 10, &["`target` is empty"]);
    assert_error(&fault("3"), 10, 10, &["invalid type", "target"]);
}

#[test]
fn scenario_error_field_not_allowed_for_kind() {
    let source = with(
        "[[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"checkout\"\ngroups = [[\"a\"], [\"b\"]]\n",
    );
    assert_error(&source, 11, 1, &["`groups` is not allowed for fault kind `crash`", "`target`"]);
    let source =
        with("[[fault]]\nat = \"1s\"\nduration = \"5s\"\nkind = \"restart\"\ntarget = \"checkout\"\n");
    assert_error(&source, 9, 1, &["`duration` is not allowed for fault kind `restart`"]);
    let source = with("[[fault]]\nat = \"1s\"\nkind = \"heal\"\ntarget = \"checkout\"\n");
    assert_error(&source, 10, 1, &["`target` is not allowed for fault kind `heal`", "only `at` and `kind`"]);
    let source = with(
        "[[fault]]\nat = \"1s\"\nkind = \"partition\"\nmode = \"isolate\"\n\
         target = \"control\"\nfrom = \"checkout\"\n",
    );
    assert_error(&source, 12, 1, &["`from` is not allowed for partition mode `isolate`"]);
}

#[test]
fn scenario_error_latency_field_not_of_kind() {
    let source = with("[network]\nlatency = { kind = \"uniform\", min = \"1ms\", mean = \"2ms\" }\n");
    assert_error(&source, 8, 44, &["`mean` is not a field of latency kind `uniform`", "`min` and `max`"]);
    let source = with("[network]\nlatency = { kind = \"uniform\", min = \"1ms\" }\n");
    assert_error(&source, 8, 20, &["latency kind `uniform` needs `max`"]);
    let source = with("[network]\nlatency = { kind = \"uniform\", min = \"2ms\", max = \"1ms\" }\n");
    assert_error(&source, 8, 50, &["`max` (1ms) must be at least `min` (2ms)"]);
    let source = with("[network]\nlatency = { kind = \"gamma\" }\n");
    assert_error(&source, 8, 20, &["unknown latency kind `gamma`"]);
    let source = with("[network]\nlatency = { kind = \"pareto\", min = \"1ms\", alpha = 0 }\n");
    assert_error(&source, 8, 51, &["`alpha`"]);
}

#[test]
fn scenario_error_missing_required_field() {
    assert_error(
        "name = \"t\"\n[[service]]\nname = \"a\"\ninstances = 1\n",
        1,
        1,
        &["missing field `duration`"],
    );
    assert_error(&with("[[fault]]\nat = \"1s\"\n"), 7, 1, &["missing field `kind`"]);
    assert_error(
        &with("[[fault]]\nat = \"1s\"\nkind = \"crash\"\n"),
        9,
        8,
        &["fault kind `crash` needs `target`"],
    );
    assert_error(&with("[[fault]]\nat = \"1s\"\nkind = \"partition\"\n"), 9, 8, &["needs `groups`"]);
    let source =
        with("[[fault]]\nat = \"1s\"\nkind = \"partition\"\nmode = \"one_way\"\nfrom = \"control\"\n");
    assert_error(&source, 10, 8, &["partition mode `one_way` needs `to`"]);
    let source = with("[[fault]]\nat = \"1s\"\nkind = \"clock_skew\"\ntarget = \"control\"\n");
    assert_error(&source, 9, 8, &["needs `offset`, `drift_ppm` or both"]);
    assert_error("name = \"t\"\nduration = \"1s\"\n", 1, 1, &["at least one service"]);
}

#[test]
fn scenario_error_probability_out_of_range() {
    assert_error(
        &with("[network]\nloss = 1.5\n"),
        8,
        8,
        &["`loss` must be a probability between 0 and 1, got 1.5"],
    );
    assert_error(&with("[network]\nreorder = -1\n"), 8, 11, &["`reorder`", "got -1"]);
    assert_error(&with("[network]\nduplicate = nan\n"), 8, 13, &["`duplicate`"]);
    assert_error(&with("[network]\nloss = \"1%\"\n"), 8, 8, &["invalid type", "a number"]);
}

#[test]
fn scenario_error_duplicate_service_name() {
    let source = with("[[service]]\nname = \"checkout\"\ninstances = 1\n");
    assert_error(&source, 8, 8, &["duplicate service name `checkout`", "line 5"]);
}

#[test]
fn scenario_error_bad_service_name_and_instances() {
    assert_error(
        &with("").replace("\"checkout\"", "\"Checkout\""),
        5,
        8,
        &["invalid service name `Checkout`"],
    );
    assert_error(&with("").replace("\"checkout\"", "\"control\""), 5, 8, &["`control`"]);
    assert_error(&with("").replace("= 3", "= 0"), 6, 13, &["between 1 and 100000, got 0"]);
    assert_error(&with("").replace("= 3", "= 100001"), 6, 13, &["between 1 and 100000"]);
    let mut many = with("").replace("= 3", "= 100000");
    for i in 0..10 {
        many.push_str(&format!("[[service]]\nname = \"s{i}\"\ninstances = 100000\n"));
    }
    let (line, column, message) = error(&many);
    assert_eq!((line, column), (36, 13));
    assert!(message.contains("more than the limit of 1000000"), "{message}");
}

#[test]
fn scenario_error_fault_at_not_before_end() {
    let source = with("[[fault]]\nat = \"10m\"\nkind = \"heal\"\n");
    assert_error(&source, 8, 6, &["`at` (10m) must be before the end of the run", "`duration` = 10m"]);
}

#[test]
fn scenario_error_partition_groups() {
    let fault =
        |groups: &str| with(&format!("[[fault]]\nat = \"1s\"\nkind = \"partition\"\ngroups = {groups}\n"));
    assert_error(&fault("[[\"checkout\"]]"), 10, 10, &["at least two groups, found 1"]);
    assert_error(&fault("[[\"checkout/0\"], []]"), 10, 27, &["group 2 is empty"]);
    assert_error(
        &fault("[[\"checkout/0\", \"control\"], [\"checkout/1\", \"*\"]]"),
        10,
        53,
        &["`checkout/0` is in group 1 and group 2"],
    );
}

#[test]
fn scenario_error_other_rules() {
    assert_error(&with("").replace("\"t\"", "\"\""), 1, 8, &["`name` must not be empty"]);
    assert_error(&with("").replace("\"10m\"", "\"0s\""), 2, 12, &["greater than zero"]);
    assert_error(&format!("seed = -1\n{}", with("")), 1, 8, &["`seed` must not be negative"]);
    assert_error(
        &format!("max_events = 0\n{}", with("")),
        1,
        14,
        &["`max_events` must be greater than zero"],
    );
    assert_error(&with("[expect]\ndetected_within = \"0s\"\n"), 8, 19, &["greater than zero"]);
    assert_error(
        &with("[[fault]]\nat = \"1s\"\nkind = \"explode\"\n"),
        9,
        8,
        &["unknown fault kind `explode`"],
    );
    assert_error(
        &with("[[fault]]\nat = \"1s\"\nkind = \"partition\"\nmode = \"ring\"\n"),
        10,
        8,
        &["unknown partition mode `ring`"],
    );
    assert_error(
        &with("[[fault]]\nat = \"1s\"\nduration = \"0s\"\nkind = \"crash\"\ntarget = \"*\"\n"),
        9,
        12,
        &["fault `duration` must be greater than zero"],
    );
    assert_error(
        &with("[[fault]]\nat = \"1s\"\nkind = \"clock_skew\"\ntarget = \"*\"\ndrift_ppm = -100001\n"),
        11,
        13,
        &["`drift_ppm` must be between"],
    );
}

#[test]
fn scenario_error_duplicate_key_names_it() {
    assert_error(&format!("duration = \"1s\"\n{}", with("")), 3, 1, &["duplicate key `duration`"]);
}

#[test]
fn scenario_byte_order_mark_is_not_a_column() {
    let err = parse("\u{feff}bogus = 1\n", "bom.toml").unwrap_err();
    assert!(err.to_string().starts_with("bom.toml:1:1: unknown field `bogus`"), "{err}");
}

#[test]
fn scenario_error_columns_count_characters() {
    // "é" is two bytes but one column.
    assert_error("description = \"é\" bogus\n", 1, 19, &["expected newline"]);
}

#[test]
fn scenario_error_fault_node_budget() {
    let mut source = format!(
        "name = \"t\"\nduration = \"10m\"\n[[service]]\nname = \"a\"\ninstances = 100000\n{}",
        (0..9).map(|i| format!("[[service]]\nname = \"s{i}\"\ninstances = 100000\n")).collect::<String>()
    );
    for _ in 0..11 {
        source.push_str("[[fault]]\nat = \"1s\"\nkind = \"pause\"\ntarget = \"*\"\n");
    }
    let (_, _, message) = error(&source);
    assert!(message.contains("faults name more than 10000000 nodes"), "{message}");
}

/// Every `toml` block of `scenarios/README.md` is valid: a whole file as it
/// is, a fragment inside a small file with `checkout` (3) and `payments` (2).
#[test]
fn scenario_readme_examples_are_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let mut blocks = 0;
    for block in readme.split("```toml\n").skip(1) {
        let block = block.split("```").next().unwrap_or("");
        // Fences indented inside a list item.
        let block: String = block.lines().map(|l| l.trim_start()).collect::<Vec<_>>().join("\n");
        let source = if block.starts_with("name =") {
            block
        } else {
            let mut source = format!("name = \"readme\"\nduration = \"10m\"\n{block}\n");
            if !block.contains("name = \"checkout\"") {
                source.push_str("[[service]]\nname = \"checkout\"\ninstances = 3\n");
            }
            source.push_str("[[service]]\nname = \"payments\"\ninstances = 2\n");
            source
        };
        if let Err(e) = parse(&source, "README.md") {
            panic!("README example does not load:\n{source}\n{e}");
        }
        blocks += 1;
    }
    assert!(blocks >= 10, "found only {blocks} examples");
}

/// Every scenario shipped in `scenarios/` loads.
#[test]
fn scenario_shipped_files_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load_file(&path) {
                panic!("{e}");
            }
            files += 1;
        }
    }
    assert!(files > 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn scenario_parse_never_panics_on_arbitrary_text(source in "\\PC{0,300}") {
        check_error_shape(&source);
    }

    #[test]
    fn scenario_parse_never_panics_on_tomlish_text(source in "[a-z_\\[\\]{}=\"',./*0-9 \n-]{0,300}") {
        check_error_shape(&source);
    }

    #[test]
    fn scenario_parse_never_panics_on_mutated_files(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[\\PC\n]{0,4}"), 1..6)
    ) {
        check_error_shape(&mutate(FULL, edits));
    }

    #[test]
    fn scenario_parse_never_panics_on_mutated_recovery_files(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[\\PC\n]{0,4}"), 1..6)
    ) {
        check_error_shape(&mutate(RECOVERY, edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Limits have one source: a mutated file the loader accepts boots and
    /// runs without a panic (bounded: at most 20 000 events of it).
    #[test]
    fn an_accepted_mutated_file_runs_without_panicking(
        recovery in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[0-9a-z\"._ -]{0,3}"), 1..4),
        seed in any::<u64>(),
    ) {
        let source = mutate(if recovery { RECOVERY } else { FULL }, edits);
        if let Ok(mut scenario) = parse(&source, "p.toml") {
            scenario.max_events = scenario.max_events.min(20_000);
            scenario.max_pending_events = scenario.max_pending_events.min(100_000);
            let report = crate::run(&scenario, seed);
            prop_assert!(report.events_processed <= 20_000);
        }
    }
}

/// `base` with each edit applied: insert `text` (op 0), delete one
/// character (1) or replace it with `text` (2), at a character boundary.
fn mutate(base: &str, edits: Vec<(prop::sample::Index, u8, String)>) -> String {
    let mut source = base.to_string();
    for (index, op, text) in edits {
        let boundaries: Vec<usize> =
            source.char_indices().map(|(i, _)| i).chain(std::iter::once(source.len())).collect();
        let at = boundaries[index.index(boundaries.len())];
        let next = boundaries.iter().copied().find(|&b| b > at).unwrap_or(at);
        match op {
            0 => source.insert_str(at, &text),
            1 => source.replace_range(at..next, ""),
            _ => source.replace_range(at..next, &text),
        }
    }
    source
}

/// A rung string: strategy, instances added, attempts.
fn rung_text((strategy, by, attempts): (u8, u32, u32)) -> String {
    let mut text = ["restart", "replace", "reroute", "scale_out"][usize::from(strategy % 4)].to_string();
    if strategy % 4 == 3 && by > 1 {
        text.push_str(&format!("+{by}"));
    }
    if attempts > 1 {
        text.push_str(&format!("*{attempts}"));
    }
    format!("\"{text}\"")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Files using the new keys with random values load, are written, and
    /// load back to the same scenario: shares in thousandths, ladders,
    /// slots, picks and schedules survive the trip.
    #[test]
    fn scenario_recovery_settings_round_trip(
        (instances, standby, cores) in (1u32..20, 0u32..5, prop::option::of(1u32..=1024)),
        share in 501u32..=1_000_000,
        (enter, exit) in (2u32..=1000).prop_flat_map(|e| (Just(e), 1..e)),
        ladders in prop::collection::vec(
            prop::option::of(prop::collection::vec((0u8..4, 1u32..=1000, 1u32..=100), 0..=8)), 4),
        kind in 0usize..6,
        pick in prop_oneof![Just(String::new()), (1u32..50).prop_map(|c| format!("count = {c}\n")),
                            (1u32..=100).prop_map(|p| format!("percent = \"{p}%\"\n"))],
        (length_ms, within_ms, gap_ms) in (1u64..10_000, prop::option::of(1u64..10_000), 1u64..10_000),
        repeat in any::<bool>(),
    ) {
        let slots = instances + standby;
        let mut text = format!(
            "name = \"p\"\nduration = \"1h\"\n[[service]]\nname = \"a\"\ninstances = {instances}\n\
             max_instances = {slots}\npolicy = \"p\"\n"
        );
        if let Some(cores) = cores {
            text.push_str(&format!("cores = {cores}\n"));
        }
        // A share as a number with up to six decimals.
        text.push_str(&format!(
            "[recovery]\nmax_service_share = {}\nstorm = {{ enter = \"{}%\", exit = {} }}\n\
             [recovery.policies.p]\n",
            f64::from(share) / 1e6,
            f64::from(enter) / 10.0,
            f64::from(exit) / 1000.0,
        ));
        for (name, ladder) in ["crashed", "unresponsive", "degraded", "crash_looping"].iter().zip(&ladders) {
            if let Some(rungs) = ladder {
                let rungs: Vec<String> = rungs.iter().copied().map(rung_text).collect();
                text.push_str(&format!("{name} = [{}]\n", rungs.join(", ")));
            }
        }
        let (kind, extra) = [
            ("host_crash", ""),
            ("memory_leak", "exhausts_after = \"1m\"\n"),
            ("cpu", "factor = 2.5\n"),
            ("disk_full", ""),
            ("crash_loop", "after = \"3s\"\nsurvives_replace = true\n"),
            ("network", "latency = \"5ms\"\nduplicate = 0.125\n"),
        ][kind];
        text.push_str(&format!(
            "[[fault]]\nat = \"1m\"\nduration = \"{length_ms}ms\"\nkind = \"{kind}\"\ntarget = \"a\"\n{extra}{pick}"
        ));
        if let Some(w) = within_ms {
            text.push_str(&format!("within = \"{w}ms\"\n"));
        }
        if repeat {
            let every = length_ms + within_ms.unwrap_or(0) + gap_ms;
            text.push_str(&format!("every = \"{every}ms\"\n"));
        }
        let original = parse(&text, "generated").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let written = to_toml(&original).unwrap();
        let again = parse(&written, "written").unwrap_or_else(|e| panic!("{e}\n{written}"));
        prop_assert_eq!(lineless(again), lineless(original));
    }
}

/// `parse` returns; an error points inside the text at a line it quotes.
fn check_error_shape(source: &str) {
    match parse(source, "p.toml") {
        Ok(_) => {}
        Err(ScenarioError::Invalid { line, column, line_text, .. }) => {
            assert!(line >= 1 && column >= 1);
            let lines: Vec<&str> = source.split('\n').collect();
            assert!(line <= lines.len(), "line {line} of {}", lines.len());
            let actual = lines[line - 1];
            assert_eq!(actual.strip_suffix('\r').unwrap_or(actual), line_text);
            assert!(column <= line_text.chars().count() + 2);
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Recovery and chaos: the [recovery] table, service keys, new fault kinds,
// selectors, schedules and expectations.

/// Every new key at least once. Nodes: control 0, web/0..5 = 1..6 (web/4
/// and web/5 standby), db/0..1 = 7..8, cache/0 = 9; the client is 10.
/// Zone `a`: web/0, web/2, web/4, db/0, db/1.
pub(super) const RECOVERY: &str = r#"
name = "recovery-everything"
duration = "10m"

[[service]]
name = "web"
instances = 4
max_instances = 6
cores = 2
policy = "stateless"
depends_on = ["db"]
zones = ["a", "b"]

[[service]]
name = "db"
instances = 2
policy = "database"
zones = ["a"]

[[service]]
name = "cache"
instances = 1
depends_on = ["db", "web"]

[load]
target = "web"
rate = 100

[recovery]
max_concurrent = 4
max_service_share = "50%"
action_timeout = "30s"
restart_delay = "3s"
replace_delay = "20s"
scale_out_delay = "15s"
backoff = { base = "1s", cap = "30s", reset_after = "5m" }
instance_intensity = { max_restarts = 5, period = "10m" }
service_intensity = { max_restarts = 20 }
storm = { enter = "60%", exit = "30%", min_instances = 3, settle = "20s" }
dependency = { impaired = 0.4, grace = "5s" }
circuit = { open_for = "10s", open_for_max = "2m" }
partition = { confirm_within = "2s", hold = "90s" }
default_policy = { crashed = ["restart*2", "replace"], isolate_dependencies = true }

[recovery.policies.stateless]
crashed = ["replace"]
degraded = ["reroute", "scale_out+2*3"]
hold_for_dependencies = false

[recovery.policies.database]
unresponsive = []
crash_looping = ["replace*2"]

[[fault]]
at = "10s"
duration = "30s"
kind = "host_crash"
target = "web/0"

[[fault]]
at = "20s"
duration = "1m"
kind = "zone_crash"
zone = "a"

[[fault]]
at = "30s"
kind = "memory_leak"
target = "web/1"
exhausts_after = "2m"

[[fault]]
at = "40s"
kind = "cpu"
target = "web"
factor = 3

[[fault]]
at = "50s"
duration = "1m"
kind = "disk_full"
target = "db/1"

[[fault]]
at = "60s"
kind = "crash_loop"
target = "cache/0"
after = "10s"
survives_replace = true

[[fault]]
at = "70s"
duration = "30s"
kind = "network"
target = "control"
latency = "50ms"
loss = 0.1
duplicate = 0.01

[[fault]]
at = "80s"
kind = "latency"
target = "web/2"
latency = "100ms"

[[fault]]
at = "90s"
kind = "loss"
target = "web/3"
rate = 0.2

[[fault]]
at = "100s"
kind = "duplicate"
target = "db"
rate = 0.5

[[fault]]
at = "5m"
duration = "20s"
kind = "monitor_partition"

[[fault]]
at = "6m"
duration = "30s"
kind = "crash"
target = "*"
count = 2
every = "1m"
within = "10s"

[[fault]]
at = "7m"
kind = "hang"
target = "web"
percent = "30%"

[[fault]]
at = "8m"
kind = "partition"
mode = "isolate"
target = "db"
percent = 50
within = "1m"

[expect]
recovery_started_within = "10s"
restored_within = "1m"
max_concurrent_recoveries = 3
no_restart_of_healthy_instances = true
no_lost_requests = 100
actions_taken = ["restart", "scale_out", "ask_human"]
"#;

#[test]
fn scenario_recovery_file_parses_into_the_model() {
    use vigil_core::ServiceId;
    use vigil_core::recovery::{
        BackoffConfig, CircuitConfig, DependencyConfig, Intensity, Ladder, Limits, PartitionConfig, Policy,
        RecoveryConfig, Rung, ServiceSpec, StormConfig, Strategy,
    };

    let s = parse(RECOVERY, "recovery.toml").unwrap();
    let secs = Duration::from_secs;

    let slots: Vec<_> = s.services.iter().map(|s| (s.instances, s.standby, s.cores)).collect();
    assert_eq!(slots, [(6, 2, Some(2)), (2, 0, None), (1, 0, None)]);
    let policies: Vec<_> = s.services.iter().map(|s| s.policy.as_deref()).collect();
    assert_eq!(policies, [Some("stateless"), Some("database"), None]);
    let depends: Vec<_> = s.services.iter().map(|s| s.depends_on.clone()).collect();
    assert_eq!(depends, [vec![1], vec![], vec![1, 0]]);
    assert!(s.is_standby(vigil_core::InstanceId(4)) && !s.is_standby(vigil_core::InstanceId(3)));
    assert_eq!(s.client_nodes(), 10..11);
    assert_eq!(s.client_target(NodeId(10)), Some(0));

    let recovery = s.recovery.as_ref().unwrap();
    assert_eq!(recovery.restart_delay, secs(3));
    assert_eq!(recovery.replace_delay, secs(20));
    assert_eq!(recovery.scale_out_delay, secs(15));
    let mut policies = std::collections::BTreeMap::new();
    policies.insert(
        "stateless".to_string(),
        Policy {
            crashed: Ladder::new([Rung::new(Strategy::Replace, 1)]),
            degraded: Ladder::new([
                Rung::new(Strategy::Reroute, 1),
                Rung::new(Strategy::ScaleOut { by: 2 }, 3),
            ]),
            hold_for_dependencies: false,
            ..Policy::default()
        },
    );
    policies.insert(
        "database".to_string(),
        Policy {
            unresponsive: Ladder::default(),
            crash_looping: Ladder::new([Rung::new(Strategy::Replace, 2)]),
            ..Policy::default()
        },
    );
    let expected = RecoveryConfig {
        services: vec![
            ServiceSpec {
                id: ServiceId(0),
                policy: Some("stateless".into()),
                depends_on: vec![ServiceId(1)],
            },
            ServiceSpec { id: ServiceId(1), policy: Some("database".into()), depends_on: vec![] },
            ServiceSpec { id: ServiceId(2), policy: None, depends_on: vec![ServiceId(1), ServiceId(0)] },
        ],
        default_policy: Policy {
            crashed: Ladder::new([Rung::new(Strategy::Restart, 2), Rung::new(Strategy::Replace, 1)]),
            isolate_dependencies: true,
            ..Policy::default()
        },
        policies,
        limits: Limits { max_concurrent: 4, max_service_share_permille: 500 },
        instance_intensity: Intensity { max_restarts: 5, period: secs(600) },
        service_intensity: Intensity { max_restarts: 20, period: secs(300) },
        backoff: BackoffConfig { base: secs(1), cap: secs(30), reset_after: secs(300) },
        storm: StormConfig { enter_permille: 600, exit_permille: 300, min_instances: 3, settle: secs(20) },
        dependency: DependencyConfig { impaired_permille: 400, grace: secs(5), confirm: secs(3) },
        circuit: CircuitConfig { open_for: secs(10), open_for_max: secs(120) },
        partition: PartitionConfig { confirm_within: secs(2), hold: secs(90) },
        action_timeout: secs(30),
    };
    assert_eq!(recovery.config, expected);

    let web = n(&[1, 2, 3, 4, 5, 6]);
    let actions: Vec<FaultAction> = s.faults.iter().map(|f| f.action.clone()).collect();
    assert_eq!(
        actions,
        [
            FaultAction::HostCrash(n(&[1])),
            FaultAction::HostCrash(n(&[1, 3, 5, 7, 8])),
            FaultAction::MemoryLeak { targets: n(&[2]), exhausts_after: secs(120) },
            FaultAction::Cpu { targets: web.clone(), factor: 3.0 },
            FaultAction::DiskFull(n(&[8])),
            FaultAction::CrashLoop { targets: n(&[9]), after: secs(10), survives_replace: true },
            FaultAction::Network {
                targets: n(&[0]),
                latency: Duration::from_millis(50),
                loss: 0.1,
                duplicate: 0.01
            },
            FaultAction::Network {
                targets: n(&[3]),
                latency: Duration::from_millis(100),
                loss: 0.0,
                duplicate: 0.0
            },
            FaultAction::Network { targets: n(&[4]), latency: Duration::ZERO, loss: 0.2, duplicate: 0.0 },
            FaultAction::Network { targets: n(&[7, 8]), latency: Duration::ZERO, loss: 0.0, duplicate: 0.5 },
            FaultAction::Partition(Partition::Groups(vec![n(&[0]), n(&[1, 2, 3, 4, 5, 6, 7, 8, 9])])),
            FaultAction::Crash(n(&[1, 2, 3, 4, 5, 6, 7, 8, 9])),
            FaultAction::Hang(web),
            FaultAction::Partition(Partition::Isolate(n(&[7, 8]))),
        ]
    );
    let schedule: Vec<_> = s.faults.iter().map(|f| (f.pick, f.every, f.within)).collect();
    let mut expected = vec![(Pick::All, None, None); 11];
    expected.push((Pick::Count(2), Some(secs(60)), Some(secs(10))));
    expected.push((Pick::Percent(30), None, None));
    expected.push((Pick::Percent(50), None, Some(secs(60))));
    assert_eq!(schedule, expected);
    // `survives_replace` defaults to false.
    let s2 = parse(
        &with("[[fault]]\nat = \"1s\"\nkind = \"crash_loop\"\ntarget = \"checkout/0\"\nafter = \"1s\"\n"),
        "c.toml",
    )
    .unwrap();
    assert!(matches!(s2.faults[0].action, FaultAction::CrashLoop { survives_replace: false, .. }));

    assert_eq!(
        s.expect,
        Expectations {
            recovery_started_within: Some(secs(10)),
            restored_within: Some(secs(60)),
            max_concurrent_recoveries: Some(3),
            no_restart_of_healthy_instances: true,
            max_lost_requests: Some(100),
            actions_taken: vec![ActionClass::Restart, ActionClass::ScaleOut, ActionClass::AskHuman],
            ..Expectations::default()
        }
    );
}

#[test]
fn scenario_recovery_defaults() {
    use vigil_core::recovery::{RecoveryConfig, ServiceSpec};
    let s = parse(&with("[recovery]\n"), "r.toml").unwrap();
    let recovery = s.recovery.unwrap();
    assert_eq!(
        recovery.config,
        RecoveryConfig {
            services: vec![ServiceSpec::new(vigil_core::ServiceId(0))],
            ..RecoveryConfig::default()
        }
    );
    assert_eq!(
        (recovery.restart_delay, recovery.replace_delay, recovery.scale_out_delay),
        (Duration::from_secs(2), Duration::from_secs(10), Duration::from_secs(10))
    );
    // A policy table alone makes a [recovery] table; unset ladders keep
    // the default policy's.
    let s = parse(&with("policy = \"web\"\n[recovery.policies.web]\n"), "r.toml").unwrap();
    let config = &s.recovery.unwrap().config;
    assert_eq!(config.policies["web"], vigil_core::recovery::Policy::default());
    assert_eq!(s.services[0].policy.as_deref(), Some("web"));
    // Without [recovery], nothing; `depends_on` needs none.
    let s = parse(
        &with("depends_on = [\"db\"]\n[[service]]\nname = \"db\"\ninstances = 1\n[expect]\nno_restart_of_healthy_instances = true\n"),
        "r.toml",
    )
    .unwrap();
    assert_eq!(s.recovery, None);
    assert_eq!(s.services[0].depends_on, [1]);
    assert!(s.expect.no_restart_of_healthy_instances);
}

#[test]
fn scenario_max_instances_slots_are_targets() {
    let s = parse(
        &with("max_instances = 5\n[[fault]]\nat = \"1s\"\nkind = \"cpu\"\ntarget = \"checkout/4\"\nfactor = 1.5\n"),
        "m.toml",
    )
    .unwrap();
    assert_eq!((s.services[0].instances, s.services[0].standby), (5, 2));
    assert_eq!(s.faults[0].action, FaultAction::Cpu { targets: n(&[5]), factor: 1.5 });
    // Equal to `instances`: no standby.
    let s = parse(&with("max_instances = 3\n"), "m.toml").unwrap();
    assert_eq!((s.services[0].instances, s.services[0].standby), (3, 0));
}

#[test]
fn scenario_rungs() {
    use vigil_core::recovery::{Rung, Strategy};
    let rung = |text: &str| {
        parse(&with(&format!("[recovery.default_policy]\ncrashed = [\"{text}\"]\n")), "r.toml")
            .map(|s| s.recovery.unwrap().config.default_policy.crashed.rungs[0])
    };
    assert_eq!(rung("restart").unwrap(), Rung::new(Strategy::Restart, 1));
    assert_eq!(rung("restart*3").unwrap(), Rung::new(Strategy::Restart, 3));
    assert_eq!(rung("replace*100").unwrap(), Rung::new(Strategy::Replace, 100));
    assert_eq!(rung("reroute").unwrap(), Rung::new(Strategy::Reroute, 1));
    assert_eq!(rung("scale_out").unwrap(), Rung::new(Strategy::ScaleOut { by: 1 }, 1));
    assert_eq!(rung("scale_out+2").unwrap(), Rung::new(Strategy::ScaleOut { by: 2 }, 1));
    assert_eq!(rung("scale_out+1000*2").unwrap(), Rung::new(Strategy::ScaleOut { by: 1000 }, 2));
    let err = |text: &str| rung(text).unwrap_err().to_string();
    assert!(err("reboot").contains("invalid rung `reboot`: a rung is `restart`"));
    assert!(err("restart+2").contains("only `scale_out` takes `+N`"));
    assert!(err("restart*0").contains("attempts (`*N`) must be a number from 1 to 100, got `0`"));
    assert!(err("restart*101").contains("from 1 to 100"));
    assert!(err("restart*").contains("got ``"));
    assert!(err("scale_out+0").contains("instances to add (`+N`) must be a number from 1 to 1000"));
    assert!(err("scale_out*2+1").contains("attempts"));
    assert!(err("restart*99999999999999999999").contains("from 1 to 100"));
    assert!(err("Restart").contains("invalid rung"));
}

#[test]
fn scenario_shares_and_percents() {
    let share = |text: &str| {
        parse(&with(&format!("[recovery]\nmax_service_share = {text}\n")), "r.toml")
            .map(|s| s.recovery.unwrap().config.limits.max_service_share_permille)
    };
    assert_eq!(share("\"25%\"").unwrap(), 250);
    assert_eq!(share("0.25").unwrap(), 250);
    assert_eq!(share("1").unwrap(), 1000);
    assert_eq!(share("\"0.1%\"").unwrap(), 1);
    assert_eq!(share("\"33.36%\"").unwrap(), 334);
    let pick = |text: &str| {
        parse(&with(&format!("[[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"*\"\n{text}\n")), "p.toml")
            .map(|s| s.faults[0].pick)
    };
    assert_eq!(pick("percent = 100").unwrap(), Pick::Percent(100));
    assert_eq!(pick("percent = \" 5 %\"").unwrap(), Pick::Percent(5));
    assert_eq!(pick("count = 1000000").unwrap(), Pick::Count(1_000_000));
}

#[test]
fn scenario_network_fault_kinds() {
    let action = |extra: &str| {
        parse(&with(&format!("[[fault]]\nat = \"1s\"\ntarget = \"checkout/0\"\n{extra}\n")), "n.toml")
            .map(|s| s.faults[0].action.clone())
    };
    let net = |latency_ms, loss, duplicate| FaultAction::Network {
        targets: n(&[1]),
        latency: Duration::from_millis(latency_ms),
        loss,
        duplicate,
    };
    assert_eq!(action("kind = \"network\"\nloss = 1").unwrap(), net(0, 1.0, 0.0));
    assert_eq!(action("kind = \"network\"\nduplicate = 0.5").unwrap(), net(0, 0.0, 0.5));
    assert_eq!(action("kind = \"network\"\nlatency = \"1ms\"\nloss = 0").unwrap(), net(1, 0.0, 0.0));
    assert_eq!(action("kind = \"latency\"\nlatency = \"7ms\"").unwrap(), net(7, 0.0, 0.0));
    assert_eq!(action("kind = \"loss\"\nrate = 0.25").unwrap(), net(0, 0.25, 0.0));
    assert_eq!(action("kind = \"duplicate\"\nrate = 1").unwrap(), net(0, 0.0, 1.0));
}

#[test]
fn scenario_repeats_and_windows() {
    let fault = |extra: &str| {
        parse(
            &with(&format!("[[fault]]\nat = \"1m\"\nduration = \"10s\"\nkind = \"hang\"\ntarget = \"checkout\"\n{extra}\n")),
            "r.toml",
        )
        .map(|s| (s.faults[0].every, s.faults[0].within))
    };
    let secs = |s| Some(Duration::from_secs(s));
    assert_eq!(fault("every = \"11s\"").unwrap(), (secs(11), None));
    assert_eq!(fault("every = \"16s\"\nwithin = \"5s\"").unwrap(), (secs(16), secs(5)));
    // The last start may lie just before the end of the run.
    assert_eq!(fault("within = \"8m59s\"").unwrap(), (None, secs(539)));
    // Partitions with groups repeat too; restarts may pick.
    let s = parse(
        &with(
            "[[fault]]\nat = \"1m\"\nduration = \"10s\"\nkind = \"partition\"\ngroups = [\"control\", \"checkout\"]\n\
             every = \"1m\"\nwithin = \"5s\"\n\
             [[fault]]\nat = \"2m\"\nkind = \"restart\"\ntarget = \"*\"\ncount = 1\n",
        ),
        "r.toml",
    )
    .unwrap();
    assert_eq!(s.faults[0].every, secs(60));
    assert_eq!(s.faults[1].pick, Pick::Count(1));
}

#[test]
fn scenario_error_service_recovery_keys() {
    assert_error(
        &with("max_instances = 2\n"),
        7,
        17,
        &["`max_instances` must be between `instances` (3) and 100000, got 2"],
    );
    assert_error(&with("max_instances = 100001\n"), 7, 17, &["between `instances` (3) and 100000"]);
    let mut many = with("max_instances = 100000\n");
    for i in 0..10 {
        many.push_str(&format!("[[service]]\nname = \"s{i}\"\ninstances = 1\nmax_instances = 100000\n"));
    }
    assert_error(&many, 47, 17, &["more than the limit of 1000000"]);
    assert_error(&with("cores = 0\n"), 7, 9, &["`cores` must be between 1 and 1024, got 0"]);
    assert_error(&with("cores = 1025\n"), 7, 9, &["got 1025"]);
    assert_error(&with("policy = \"web\"\n"), 7, 10, &["no `[recovery]` table", "`[recovery.policies.web]`"]);
    assert_error(
        &with("policy = \"wbe\"\n[recovery.policies.web]\n[recovery.policies.db]\n"),
        7,
        10,
        &["unknown recovery policy `wbe`; known policies: `db` and `web`"],
    );
    assert_error(&with("policy = \"web\"\n[recovery]\n"), 7, 10, &["known policies: none"]);
}

#[test]
fn scenario_error_depends_on() {
    let fleet = |a: &str, b: &str, c: &str| {
        format!(
            "name = \"t\"\nduration = \"10m\"\n\
             [[service]]\nname = \"a\"\ninstances = 1\ndepends_on = {a}\n\
             [[service]]\nname = \"b\"\ninstances = 1\ndepends_on = {b}\n\
             [[service]]\nname = \"c\"\ninstances = 1\ndepends_on = {c}\n"
        )
    };
    assert_error(
        &fleet("[\"d\"]", "[]", "[]"),
        6,
        15,
        &["unknown service `d` in `depends_on`", "`a`, `b` and `c`"],
    );
    assert_error(&fleet("[]", "[\"c\", \"b\"]", "[]"), 10, 20, &["service `b` cannot depend on itself"]);
    assert_error(
        &fleet("[\"b\", \"c\", \"b\"]", "[]", "[]"),
        6,
        25,
        &["`b` is listed twice in `depends_on`"],
    );
    assert_error(
        &fleet("[\"b\"]", "[\"c\"]", "[\"a\"]"),
        14,
        15,
        &["`depends_on` makes a cycle: `a` -> `b` -> `c` -> `a`"],
    );
    // A cycle not through the first service, found from it.
    assert_error(&fleet("[\"b\"]", "[\"c\"]", "[\"b\"]"), 14, 15, &["cycle: `b` -> `c` -> `b`"]);
    assert_error(&fleet("\"b\"", "[]", "[]"), 6, 14, &["invalid type", "sequence"]);
}

#[test]
fn scenario_error_recovery_table() {
    assert_error(
        &with("[recovery]\nmax_concurent = 3\n"),
        8,
        1,
        &["unknown field `max_concurent`", "`max_concurrent`"],
    );
    assert_error(
        &with("[recovery]\nmax_concurrent = 0\n"),
        8,
        18,
        &["`max_concurrent` must be between 1 and 1048575, got 0"],
    );
    assert_error(
        &with("[recovery]\nmax_service_share = \"0%\"\n"),
        8,
        21,
        &["`max_service_share` must be at least 0.1%", "got 0%"],
    );
    assert_error(&with("[recovery]\nmax_service_share = 1.5\n"), 8, 21, &["share between 0 and 1"]);
    assert_error(
        &with("[recovery]\naction_timeout = \"0s\"\n"),
        8,
        18,
        &["`action_timeout` must be greater than zero"],
    );
    assert_error(
        &with("[recovery]\nrestart_delay = \"0s\"\n"),
        8,
        17,
        &["`restart_delay` must be greater than zero"],
    );
    assert_error(
        &with("[recovery]\nbackoff = { base = \"10s\", cap = \"5s\" }\n"),
        8,
        33,
        &["backoff `cap` (5s) must be at least `base` (10s)"],
    );
    assert_error(
        &with("[recovery]\nbackoff = { base = \"10m\" }\n"),
        8,
        20,
        &["backoff `cap` (5m, the default) must be at least `base` (10m)"],
    );
    assert_error(
        &with("[recovery]\nbackoff = { reset_after = \"0s\" }\n"),
        8,
        27,
        &["`reset_after` must be greater than zero"],
    );
    assert_error(
        &with("[recovery]\nbackoff = { bas = \"1s\" }\n"),
        8,
        13,
        &["unknown field `bas`", "`base`"],
    );
    assert_error(
        &with("[recovery]\ninstance_intensity = { max_restarts = 65 }\n"),
        8,
        39,
        &["`max_restarts` must be between 1 and 64, got 65"],
    );
    assert_error(
        &with("[recovery]\nservice_intensity = { period = \"0s\" }\n"),
        8,
        32,
        &["`period` must be greater than zero"],
    );
    assert_error(
        &with("[recovery]\nstorm = { exit = \"50%\" }\n"),
        8,
        18,
        &["storm `exit` (50%) must be below `enter` (50%, the default)"],
    );
    assert_error(
        &with("[recovery]\nstorm = { min_instances = 0 }\n"),
        8,
        27,
        &["`min_instances` must be between 1 and"],
    );
    assert_error(
        &with("[recovery]\ndependency = { impaired = \"0%\" }\n"),
        8,
        27,
        &["`impaired` must be at least 0.1%"],
    );
    assert_error(
        &with("[recovery]\ncircuit = { open_for = \"10m\" }\n"),
        8,
        24,
        &["circuit `open_for_max` (5m, the default) must be at least `open_for` (10m)"],
    );
    assert_error(
        &with("[recovery]\ncircuit = { open_for = \"0s\" }\n"),
        8,
        24,
        &["`open_for` must be greater than zero"],
    );
}

#[test]
fn scenario_error_policies() {
    assert_error(
        &with("[recovery.policies.web]\ncrashed = [\"restart\", \"reboot\"]\n"),
        8,
        23,
        &["invalid rung `reboot`", "`restart`, `replace`, `reroute` or `scale_out`"],
    );
    assert_error(
        &with("[recovery.policies.web]\ncrashed = \"restart\"\n"),
        8,
        11,
        &["a ladder is an array of rungs: write [\"restart\"]"],
    );
    let nine = ["\"restart\""; 9].join(", ");
    assert_error(
        &with(&format!("[recovery.default_policy]\ndegraded = [{nine}]\n")),
        8,
        12,
        &["at most 8 rungs, got 9"],
    );
    assert_error(&with("[recovery.policies.Web]\n"), 7, 20, &["invalid policy name `Web`"]);
    assert_error(&with("[recovery.policies.default]\n"), 7, 20, &["set it with `default_policy`"]);
    assert_error(
        &with("[recovery.policies.web]\ncrashd = []\n"),
        8,
        1,
        &["unknown field `crashd`", "`crashed`", "`hold_for_dependencies`"],
    );
    assert_error(
        &with("[recovery]\ndefault_policy = { crash_looping = [\"scale_out+0\"] }\n"),
        8,
        37,
        &["instances to add"],
    );
    let mut many = with("[recovery.policies]\n");
    for i in 0..257 {
        many.push_str(&format!("p{i} = {{}}\n"));
    }
    assert_error(&many, 7, 1, &["at most 256 policies are allowed, got 257"]);
}

#[test]
fn scenario_error_new_fault_kinds() {
    let fault = |body: &str| with(&format!("[[fault]]\nat = \"1s\"\n{body}\n"));
    assert_error(
        &fault("kind = \"host_crash\"\ntarget = [\"control\", \"checkout/0\"]"),
        10,
        10,
        &["fault kind `host_crash` acts on the hosts of service instances", "kind `crash`"],
    );
    assert_error(
        &fault("kind = \"memory_leak\"\ntarget = \"control\"\nexhausts_after = \"1m\""),
        10,
        10,
        &["`control` runs no application"],
    );
    assert_error(&fault("kind = \"zone_crash\""), 9, 8, &["fault kind `zone_crash` needs `zone`"]);
    assert_error(
        &with("zones = [\"a\", \"b\"]\n[[fault]]\nat = \"1s\"\nkind = \"zone_crash\"\nzone = \"c\"\n"),
        11,
        8,
        &["no instance is in zone `c`; known zones: `a` and `b`"],
    );
    assert_error(&fault("kind = \"zone_crash\"\nzone = \"a\""), 10, 8, &["known zones: none"]);
    assert_error(
        &fault("kind = \"zone_crash\"\nzone = \"a\"\ntarget = \"*\""),
        11,
        1,
        &["`target` is not allowed for fault kind `zone_crash`"],
    );
    assert_error(&fault("kind = \"memory_leak\"\ntarget = \"checkout\""), 9, 8, &["needs `exhausts_after`"]);
    assert_error(
        &fault("kind = \"memory_leak\"\ntarget = \"checkout\"\nexhausts_after = \"0s\""),
        11,
        18,
        &["`exhausts_after` must be greater than zero"],
    );
    assert_error(&fault("kind = \"cpu\"\ntarget = \"checkout\""), 9, 8, &["needs `factor`"]);
    assert_error(
        &fault("kind = \"cpu\"\ntarget = \"checkout\"\nfactor = 0.5"),
        11,
        10,
        &["from 1 to 1000, got 0.5"],
    );
    assert_error(&fault("kind = \"cpu\"\ntarget = \"checkout\"\nfactor = 1001"), 11, 10, &["got 1001"]);
    assert_error(&fault("kind = \"cpu\"\ntarget = \"checkout\"\nfactor = nan"), 11, 10, &["got NaN"]);
    assert_error(&fault("kind = \"crash_loop\"\ntarget = \"checkout\""), 9, 8, &["needs `after`"]);
    assert_error(
        &fault("kind = \"crash_loop\"\ntarget = \"checkout\"\nafter = \"0s\""),
        11,
        9,
        &["`after` must be greater than zero"],
    );
    assert_error(
        &fault("kind = \"crash_loop\"\ntarget = \"checkout\"\nafter = \"1s\"\nsurvives_replace = 1"),
        12,
        20,
        &["invalid type", "bool"],
    );
    assert_error(
        &fault("kind = \"disk_full\"\ntarget = \"checkout\"\nrate = 1"),
        11,
        1,
        &["`rate` is not allowed for fault kind `disk_full`"],
    );
    assert_error(
        &fault("kind = \"network\"\ntarget = \"checkout\""),
        9,
        8,
        &["needs at least one of `latency`, `loss` and `duplicate`"],
    );
    assert_error(
        &fault("kind = \"network\"\ntarget = \"checkout\"\nloss = 0\nlatency = \"0s\""),
        9,
        8,
        &["does nothing"],
    );
    assert_error(
        &fault("kind = \"network\"\ntarget = \"checkout\"\nduplicate = 2"),
        11,
        13,
        &["`duplicate` must be a probability"],
    );
    assert_error(
        &fault("kind = \"network\"\ntarget = \"checkout\"\nrate = 0.1"),
        11,
        1,
        &["`rate` is not allowed for fault kind `network`"],
    );
    assert_error(
        &fault("kind = \"latency\"\ntarget = \"checkout\""),
        9,
        8,
        &["fault kind `latency` needs `latency`"],
    );
    assert_error(
        &fault("kind = \"latency\"\ntarget = \"checkout\"\nlatency = \"0s\""),
        11,
        11,
        &["`latency` must be greater than zero"],
    );
    assert_error(&fault("kind = \"loss\"\ntarget = \"checkout\""), 9, 8, &["fault kind `loss` needs `rate`"]);
    assert_error(
        &fault("kind = \"duplicate\"\ntarget = \"checkout\"\nrate = 0"),
        11,
        8,
        &["`rate` must be greater than zero"],
    );
    assert_error(
        &fault("kind = \"loss\"\ntarget = \"checkout\"\nloss = 0.1"),
        11,
        1,
        &["`loss` is not allowed for fault kind `loss`", "`rate`"],
    );
    assert_error(
        &fault("kind = \"monitor_partition\"\ntarget = \"control\""),
        10,
        1,
        &["`target` is not allowed for fault kind `monitor_partition`"],
    );
    assert_error(&fault("kind = \"monitor_partition\"\ncount = 1"), 10, 1, &["`count` is not allowed"]);
}

#[test]
fn scenario_error_selectors_and_schedules() {
    let fault = |body: &str| with(&format!("[[fault]]\nat = \"1m\"\n{body}\n"));
    let crash =
        |extra: &str| fault(&format!("duration = \"10s\"\nkind = \"crash\"\ntarget = \"*\"\n{extra}"));
    assert_error(
        &crash("count = 1\npercent = 50"),
        13,
        1,
        &["`count` and `percent` both choose", "give one"],
    );
    assert_error(&crash("percent = 50\ncount = 1"), 13, 1, &["`count` and `percent`"]);
    assert_error(&crash("count = 0"), 12, 9, &["`count` must be between 1 and 1000000, got 0"]);
    assert_error(&crash("percent = 0"), 12, 11, &["`percent` must be from 1 to 100, got 0"]);
    assert_error(&crash("percent = \"101%\""), 12, 11, &["from 1 to 100, got 101"]);
    assert_error(&crash("percent = \"30.5%\""), 12, 11, &["not a whole percentage"]);
    assert_error(&crash("percent = 0.5"), 12, 11, &["invalid type", "whole percentage"]);
    assert_error(
        &fault("kind = \"heal\"\ncount = 1"),
        10,
        1,
        &["`count` is not allowed for fault kind `heal`", "only `at` and `kind`"],
    );
    assert_error(
        &fault("kind = \"partition\"\ngroups = [\"control\", \"checkout\"]\npercent = 50"),
        11,
        1,
        &["`percent` picks targets from one list, and partition mode `symmetric` has several"],
    );
    assert_error(
        &fault("kind = \"restart\"\ntarget = \"*\"\nevery = \"1m\""),
        11,
        1,
        &["`every` is not allowed for fault kind `restart`", "`target`, `count` and `percent`"],
    );
    assert_error(
        &fault("kind = \"heal\"\nwithin = \"1s\""),
        10,
        1,
        &["`within` is not allowed for fault kind `heal`"],
    );
    assert_error(
        &fault("kind = \"hang\"\ntarget = \"*\"\nevery = \"1m\""),
        11,
        1,
        &["a fault repeated with `every` needs a `duration` shorter than `every`"],
    );
    // A crash is a moment: recovery, not the fault, brings it back.
    let repeated = parse(&fault("kind = \"crash\"\ntarget = \"*\"\nevery = \"1m\"\ncount = 1"), "f")
        .expect("a repeated crash needs no duration");
    assert_eq!(repeated.faults[0].every, Some(Duration::from_secs(60)));
    assert_error(&crash("every = \"10s\""), 12, 9, &["`every` (10s) must be longer than `duration` (10s)"]);
    assert_error(
        &crash("every = \"15s\"\nwithin = \"5s\""),
        12,
        9,
        &["longer than `duration` + `within` (10s + 5s)"],
    );
    assert_error(&crash("every = \"0s\""), 12, 9, &["`every` must be greater than zero"]);
    assert_error(&crash("within = \"0s\""), 12, 10, &["`within` must be greater than zero"]);
    assert_error(
        &crash("within = \"9m\""),
        12,
        10,
        &["`at` + `within` (1m + 9m) must be before the end of the run (`duration` = 10m)"],
    );
    let long = "name = \"t\"\nduration = \"30d\"\n[[service]]\nname = \"a\"\ninstances = 1\n\
                [[fault]]\nat = \"0s\"\nduration = \"1ms\"\nkind = \"crash\"\ntarget = \"a\"\nevery = \"2ms\"\n";
    assert_error(long, 11, 9, &["repeats the fault 1296000000 times", "at most 1000000"]);
    // Each repeat counts against the node budget.
    let wide = "name = \"t\"\nduration = \"1d\"\n[[service]]\nname = \"a\"\ninstances = 100000\n\
                [[fault]]\nat = \"0s\"\nduration = \"1s\"\nkind = \"crash\"\ntarget = \"a\"\nevery = \"2s\"\n";
    assert_error(wide, 11, 9, &["faults name more than 10000000 nodes", "100000 nodes 43200 times"]);
}

#[test]
fn scenario_error_recovery_expectations() {
    assert_error(
        &with("[expect]\nalive_at_end = true\nrestored_within = \"1m\"\nactions_taken = []\n"),
        9,
        1,
        &["`restored_within` is about recovery actions: add a `[recovery]` table"],
    );
    assert_error(
        &with("[expect]\nmax_concurrent_recoveries = 2\n"),
        8,
        1,
        &["`max_concurrent_recoveries`", "`[recovery]`"],
    );
    assert_error(
        &with("[expect]\nactions_taken = [\"restart\"]\n"),
        8,
        1,
        &["`actions_taken`", "`[recovery]`"],
    );
    assert_error(&with("[expect]\nrecovery_started_within = \"1s\"\n"), 8, 1, &["`recovery_started_within`"]);
    let expect = |body: &str| with(&format!("[recovery]\n[expect]\n{body}\n"));
    assert_error(
        &expect("actions_taken = [\"restart\", \"reboot\"]"),
        9,
        29,
        &[
            "unknown recovery action `reboot`; expected one of `restart`, `replace`, `reroute`, `scale_out`, `open_circuit` and `ask_human`",
        ],
    );
    assert_error(
        &expect("actions_taken = [\"replace\", \"replace\"]"),
        9,
        29,
        &["`replace` is listed twice"],
    );
    assert_error(&expect("max_concurrent_recoveries = 0"), 9, 29, &["between 1 and 1000000, got 0"]);
    assert_error(
        &expect("recovery_started_within = \"0s\""),
        9,
        27,
        &["`recovery_started_within` must be greater than zero"],
    );
    assert_error(
        &expect("restored_within = \"0s\""),
        9,
        19,
        &["`restored_within` must be greater than zero"],
    );
    assert_error(
        &expect("no_lost_requests = 0"),
        9,
        1,
        &["`no_lost_requests` is measured on client calls: add a `[load]` table"],
    );
    let loaded = |body: &str| with(&format!("[load]\ntarget = \"checkout\"\nrate = 1\n[expect]\n{body}\n"));
    assert_error(&loaded("no_lost_requests = -1"), 11, 20, &["must not be negative, got -1"]);
    assert_error(&loaded("no_lost_requests = true"), 11, 20, &["write `no_lost_requests = 0`"]);
    assert_error(&loaded("no_restart_of_healthy_instances = 1"), 11, 35, &["invalid type"]);
    let s = parse(&loaded("no_lost_requests = 0"), "l.toml").unwrap();
    assert_eq!(s.expect.max_lost_requests, Some(0));
}

/// The scenario with every fault's line zeroed: the one thing writing
/// does not keep.
fn lineless(mut s: Scenario) -> Scenario {
    for f in &mut s.faults {
        f.line = 0;
    }
    s
}

#[track_caller]
fn round_trip(source: &str) -> String {
    let original = parse(source, "original").unwrap();
    let text = to_toml(&original).unwrap();
    let again = parse(&text, "written").unwrap_or_else(|e| panic!("written text loads: {e}\n{text}"));
    assert_eq!(lineless(again.clone()), lineless(original), "round trip changed it:\n{text}");
    assert_eq!(to_toml(&again).unwrap(), text, "writing is stable");
    text
}

#[test]
fn scenario_recovery_file_round_trips() {
    let text = round_trip(RECOVERY);
    // Standby slots are written as the file has them; a monitor partition
    // by name.
    assert!(text.contains("instances = 4\nmax_instances = 6\n"), "{text}");
    assert!(text.contains("kind = \"monitor_partition\""), "{text}");
    assert!(text.contains("degraded = [\"reroute\", \"scale_out+2*3\"]"), "{text}");
    // Defaults are left out, and a [recovery] table with nothing set stays.
    let text = round_trip(&with("[recovery]\n"));
    assert!(text.ends_with("[recovery]\n"), "{text}");
    round_trip(&with(
        "policy = \"p\"\n[recovery.policies.p]\n[recovery.default_policy]\nhold_for_dependencies = false\n",
    ));
    round_trip(&with(
        "[recovery]\nmax_service_share = \"0.1%\"\nstorm = { enter = \"100%\", exit = \"99.9%\" }\n\
         dependency = { impaired = 1 }\n",
    ));
}

#[test]
fn scenario_writer_rejects_what_no_file_holds() {
    let base = parse(&with("[[fault]]\nat = \"1s\"\nkind = \"heal\"\n"), "w.toml").unwrap();
    let mut s = base.clone();
    s.services[0].standby = 3;
    assert!(matches!(to_toml(&s), Err(WriteError::Service { .. })));
    let mut s = base.clone();
    s.services[0].depends_on = vec![7];
    assert!(matches!(to_toml(&s), Err(WriteError::Service { .. })));
    let mut s = base.clone();
    s.faults[0].every = Some(Duration::from_secs(1));
    assert!(matches!(to_toml(&s), Err(WriteError::Fault { index: 0, .. })));
    let mut s = base.clone();
    s.faults[0].pick = Pick::Count(1);
    assert!(matches!(to_toml(&s), Err(WriteError::Fault { index: 0, .. })));
    let mut s = parse(&with("[recovery]\n"), "w.toml").unwrap();
    s.recovery.as_mut().unwrap().config.services.clear();
    assert!(matches!(to_toml(&s), Err(WriteError::Recovery(_))));
}

/// `[load] always_eject_one_host` reaches the model, defaults to false
/// (Envoy's default), and a value of the wrong type is an error at its
/// position.
#[test]
fn scenario_load_always_eject_one_host() {
    let load = "\n[load]\ntarget = \"checkout\"\nrate = 10\n";
    let s = parse(&with(load), "t.toml").expect("valid");
    assert_eq!(s.load.as_ref().map(|l| l.always_eject_one_host), Some(false), "Envoy's default");
    let s = parse(&with(&format!("{load}always_eject_one_host = true\n")), "t.toml").expect("valid");
    assert_eq!(s.load.as_ref().map(|l| l.always_eject_one_host), Some(true));
    assert_error(&with(&format!("{load}always_eject_one_host = 1\n")), 11, 25, &["bool"]);
}

// ---------------------------------------------------------------------------
// Load targets: one service, or several with shares.

/// Two services (`checkout`, `search`) and a `[load]` table at line 10
/// whose first key is `targets_line` (line 11), then `rate = 100`.
fn two_services_load(targets_line: &str) -> String {
    with(&format!("[[service]]\nname = \"search\"\ninstances = 2\n[load]\n{targets_line}\nrate = 100\n"))
}

#[test]
fn scenario_load_targets_one_service_or_several_with_shares() {
    let s = parse(&two_services_load("target = \"search\""), "t.toml").unwrap();
    let load = s.load.as_ref().unwrap();
    assert_eq!(load.targets, vec![LoadTarget { service: 1, share: 1.0 }]);
    assert!(load.calls(1) && !load.calls(0));
    let s = parse(
        &two_services_load(
            "targets = [{ service = \"checkout\", share = 0.8 }, { service = \"search\", share = 0.2 }]",
        ),
        "t.toml",
    )
    .unwrap();
    let load = s.load.as_ref().unwrap();
    assert_eq!(
        load.targets,
        vec![LoadTarget { service: 0, share: 0.8 }, LoadTarget { service: 1, share: 0.2 }]
    );
    // Arrivals split by cumulative share.
    assert_eq!((load.pick(0.0), load.pick(0.79), load.pick(0.8), load.pick(0.999_999)), (0, 0, 1, 1));
    // One client node per target, after the instances, named by service.
    assert_eq!(s.client_nodes(), 6..8);
    assert_eq!((s.client_target(NodeId(6)), s.client_target(NodeId(8))), (Some(0), None));
    assert_eq!(s.node_name(NodeId(6)), "client:checkout");
    assert_eq!(s.node_name(NodeId(7)), "client:search");
    let one = parse(&two_services_load("targets = [{ service = \"search\", share = 1 }]"), "t.toml").unwrap();
    assert_eq!(one.node_name(NodeId(6)), "client", "a lone client keeps its name");
}

#[test]
fn scenario_load_target_errors_name_their_place() {
    let t = two_services_load;
    assert_error(&t("target = \"nope\""), 11, 10, &["`[load]` target `nope` is not a service", "`search`"]);
    assert_error(
        &t("targets = [{ service = \"nope\", share = 1 }]"),
        11,
        24,
        &["target `nope` is not a service"],
    );
    assert_error(
        &t("target = \"search\"\ntargets = [{ service = \"search\", share = 1 }]"),
        12,
        1,
        &["`target` (one service) or `targets`", "not both"],
    );
    assert_error(&t("shape = \"constant\""), 10, 1, &["`[load]` needs `target"]);
    assert_error(&t("targets = []"), 11, 11, &["at least one"]);
    assert_error(
        &t("targets = [{ service = \"search\", share = 0.5 }, { service = \"search\", share = 0.5 }]"),
        11,
        61,
        &["service `search` is a load target twice"],
    );
    for bad in ["0", "-0.5", "1.5", "nan"] {
        assert_error(
            &t(&format!("targets = [{{ service = \"search\", share = {bad} }}]")),
            11,
            42,
            &["`share` must be more than 0 and at most 1"],
        );
    }
    assert_error(
        &t("targets = [{ service = \"checkout\", share = 0.5 }, { service = \"search\", share = 0.4 }]"),
        11,
        11,
        &["shares must sum to 1, got 0.9"],
    );
    assert_error(
        &t("targets = [{ service = \"search\", share = 1, weight = 2 }]"),
        11,
        45,
        &["unknown field `weight`", "`service`", "`share`"],
    );
    assert_error(&t("targets = [{ service = \"search\" }]"), 11, 12, &["missing field `share`"]);
    assert_error(&t("targets = [\"search\"]"), 11, 12, &["a load target like"]);
}

#[test]
fn scenario_load_targets_round_trip() {
    let text = round_trip(&two_services_load(
        "targets = [{ service = \"search\", share = 0.125 }, { service = \"checkout\", share = 0.875 }]",
    ));
    assert!(
        text.contains(
            "targets = [{ service = \"search\", share = 0.125 }, { service = \"checkout\", share = 0.875 }]"
        ),
        "{text}"
    );
    let text = round_trip(&two_services_load("targets = [{ service = \"search\", share = 1 }]"));
    assert!(text.contains("target = \"search\"\n"), "one target is written the short way: {text}");
    let text = round_trip(&two_services_load("target = \"search\""));
    assert!(text.contains("target = \"search\"\n"), "{text}");
}

/// web -> api -> db, with `extra` appended to api's table.
fn call_graph(extra: &str) -> String {
    format!(
        "name = \"t\"\nduration = \"1m\"\n\
         [[service]]\nname = \"db\"\ninstances = 1\n\
         [[service]]\nname = \"api\"\ninstances = 1\ndepends_on = [\"db\"]\n{extra}\n\
         [[service]]\nname = \"web\"\ninstances = 1\n"
    )
}

#[test]
fn scenario_calls_and_call_timeout_parse() {
    let s = parse(&call_graph("calls = { db = 2.5 }\ncall_timeout = \"300ms\""), "t.toml").unwrap();
    assert_eq!(s.services[1].depends_on, [0]);
    assert_eq!(s.services[1].calls_per_request, [2.5]);
    assert_eq!(s.services[1].call_ratio(0), 2.5);
    assert_eq!(s.services[1].call_timeout, Some(Duration::from_millis(300)));
    // Without `calls`, one call per request per edge; no timeout of its own.
    let s = parse(&call_graph(""), "t.toml").unwrap();
    assert_eq!(s.services[1].calls_per_request, [1.0]);
    assert_eq!(s.services[1].call_timeout, None);
    assert_eq!(s.services[2].call_ratio(0), 0.0, "web does not call db");
}

#[test]
fn scenario_error_calls() {
    // Line 10 is api's `calls`.
    assert_error(
        &call_graph("calls = { web = 2 }"),
        10,
        11,
        &["`calls` names `web`, which is not in this service's `depends_on`", "it depends on `db`"],
    );
    assert_error(
        &call_graph("calls = { db = 0 }"),
        10,
        16,
        &["`calls.db`", "more than 0", "at most 100", "got 0"],
    );
    assert_error(&call_graph("calls = { db = 100.5 }"), 10, 16, &["at most 100", "got 100.5"]);
    assert_error(&call_graph("calls = { db = -1 }"), 10, 16, &["more than 0"]);
    assert_error(&call_graph("calls = { db = \"x\" }"), 10, 16, &["a number"]);
    assert_error(&call_graph("call_timeout = \"0s\""), 10, 16, &["`call_timeout` must be greater than zero"]);
    // A service without dependencies has no edge to weigh.
    let source =
        "name = \"t\"\nduration = \"1m\"\n[[service]]\nname = \"db\"\ninstances = 1\ncalls = { db = 2 }\n";
    assert_error(source, 6, 11, &["not in this service's `depends_on`", "it has no `depends_on`"]);
}

#[test]
fn scenario_calls_round_trip() {
    let text = round_trip(&call_graph("calls = { db = 0.25 }\ncall_timeout = \"1500ms\""));
    assert!(text.contains("calls = { db = 0.25 }\n"), "{text}");
    assert!(
        text.contains("call_timeout = \"1.500s\"\n") || text.contains("call_timeout = \"1500ms\"\n"),
        "{text}"
    );
    // A ratio of 1 is the default: not written.
    let text = round_trip(&call_graph("calls = { db = 1 }"));
    assert!(!text.contains("calls ="), "{text}");
}

#[test]
fn scenario_forge_faults_parse_with_their_rate_and_mode() {
    let fault = |extra: &str| {
        with(&format!(
            "[[fault]]\nat = \"1m\"\nduration = \"30s\"\nkind = \"forge\"\ntarget = \"checkout/1\"\nrate = 50\n{extra}"
        ))
    };
    let s = parse(&fault("mode = \"replay\"\n"), "t").unwrap();
    assert_eq!(
        s.faults[0].action,
        FaultAction::Forge { targets: n(&[2]), rate: 50.0, mode: ForgeMode::Replay }
    );
    let s = parse(&fault(""), "t").unwrap();
    assert_eq!(
        s.faults[0].action,
        FaultAction::Forge { targets: n(&[2]), rate: 50.0, mode: ForgeMode::Both }
    );
    let s = parse(&fault("[expect]\nforged_frames_dropped = true\n"), "t").unwrap();
    assert!(s.expect.forged_frames_dropped);
}

#[test]
fn scenario_forge_faults_refuse_what_they_cannot_do() {
    let forge = |body: &str| with(&format!("[[fault]]\nat = \"1m\"\nkind = \"forge\"\n{body}"));
    // Lines: 7 `[[fault]]`, 8 `at`, 9 `kind`, 10 on.
    assert_error(&forge("target = \"*\"\nduration = \"1m\"\n"), 9, 8, &["`forge` needs `rate`"]);
    assert_error(&forge("target = \"*\"\nrate = 5\n"), 9, 8, &["`forge` needs `duration`"]);
    assert_error(
        &forge("target = \"*\"\nrate = 0\nduration = \"1m\"\n"),
        11,
        8,
        &["`rate`", "above 0", "10000"],
    );
    assert_error(&forge("target = \"*\"\nrate = 10001\nduration = \"1m\"\n"), 11, 8, &["at most 10000"]);
    assert_error(&forge("target = \"*\"\nrate = nan\nduration = \"1m\"\n"), 11, 8, &["`rate`", "NaN"]);
    assert_error(
        &forge("target = \"*\"\nrate = 5\nduration = \"1m\"\nmode = \"sniff\"\n"),
        13,
        8,
        &["unknown forge mode `sniff`", "`forge`", "`replay`", "`both`"],
    );
    assert_error(
        &forge("target = \"control\"\nrate = 5\nduration = \"1m\"\n"),
        10,
        10,
        &["`forge`", "`control` sends none"],
    );
    assert_error(
        &forge("target = \"*\"\nrate = 5\nduration = \"1m\"\nlatency = \"1s\"\n"),
        13,
        1,
        &["`latency` is not allowed for fault kind `forge`", "`rate`", "`mode`"],
    );
    assert_error(
        &with("[expect]\nforged_frames_dropped = true\n"),
        8,
        1,
        &["`forged_frames_dropped`", "`forge`"],
    );
}
