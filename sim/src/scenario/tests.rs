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
    assert_error(&source, 2, 12, &["too large"]);
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
        let mut source = FULL.to_string();
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
        check_error_shape(&source);
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
