//! From TOML text to a validated [`Scenario`], format v1.
//!
//! Two passes. First serde turns the text into the `Raw*` structs below,
//! which mirror the file: every table denies unknown keys, and the value
//! types that carry rules of their own (durations, numbers, target lists)
//! are newtypes whose `Deserialize` checks them, so toml attaches the span
//! of the offending value to their errors. Then [`validate`] checks the rules
//! that span several values (kinds and the fields they allow, names of
//! services in targets, orderings of timeouts) using the spans that
//! [`Spanned`] kept. Either way the error carries a line and a column.
//!
//! Nothing here panics on any input: every index into the source is
//! clamped, every count is bounded (instances, nodes named by faults, the
//! size of a duration), and humantime is shielded from inputs that overflow
//! it (`humantime::parse_duration` 2.4 panics on some sums near `u64::MAX`
//! seconds).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;
use vigil_core::recovery::{
    BackoffConfig, CircuitConfig, DependencyConfig, Intensity, Ladder, Limits, MAX_INSTANCES,
    MAX_INTENSITY_RESTARTS, MAX_POLICIES, MAX_RUNGS, MAX_SERVICES, PartitionConfig, Policy, RecoveryConfig,
    Rung, StormConfig, Strategy,
};
use vigil_core::{Duration, NodeId};

use vigil_core::health::{
    CheckConfig, DEFAULT_FAILURE_THRESHOLD, DEFAULT_PROBE_INTERVAL, DEFAULT_PROBE_TIMEOUT,
    DEFAULT_SUCCESS_THRESHOLD, ErrorRateRule, FlapConfig, InstanceHealthConfig, LatencyRule, ProbeCheck,
    ProbeKind,
};

use super::error::{Lines, ScenarioError};
use super::model::{
    ActionClass, DEFAULT_SERVICE_TIME, Expectations, Fault, FaultAction, ForgeMode, HeartbeatConfig,
    LatencyModel, Load, LoadShape, LoadTarget, NetworkConfig, Partition, Pick, Recovery, Scenario, Service,
};
use crate::world::host::{dry_boot, registry_config};
use vigil_core::registry::{validate_service_name, validate_zone};

/// Longest duration anywhere in a file: 30 days. It bounds the run, and keeps
/// every duration far from overflowing nanosecond arithmetic downstream.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Most instances one service may have.
pub(crate) const MAX_SERVICE_INSTANCES: u32 = 100_000;
/// Most instances across all services.
pub(crate) const MAX_TOTAL_INSTANCES: u32 = 1_000_000;
/// Largest clock drift, either way, in parts per million.
pub(crate) const MAX_DRIFT_PPM: i64 = 100_000;
/// Step budget when the file sets none.
pub(crate) const DEFAULT_MAX_EVENTS: u64 = 100_000_000;
/// Memory budget when the file sets none: events pending at once. A
/// fleet's steady state keeps a few per node (a timer, messages in
/// flight); four million (about 0.5 GB of queue) is far past any
/// legitimate scenario's need and far below a machine's memory.
pub(crate) const DEFAULT_MAX_PENDING_EVENTS: u64 = 4_000_000;
/// Largest memory budget a file may set.
pub(crate) const MAX_PENDING_EVENTS: u64 = 100_000_000;
/// Most node references all faults together may resolve to (after
/// expanding `*` and `service` targets): bounds the memory a small file can
/// ask for.
pub(crate) const MAX_FAULT_NODES: usize = 10_000_000;
/// Most occurrences of one repeated fault (`every`) within the run.
pub(crate) const MAX_FAULT_OCCURRENCES: u64 = 1_000_000;
/// Most CPU cores of an instance.
pub(crate) const MAX_CORES: i64 = 1024;
/// Largest CPU cost multiplier of a `cpu` fault.
pub(crate) const MAX_CPU_FACTOR: f64 = 1000.0;
/// Most frames a second one `forge` fault's attacker sends: ten thousand
/// a second is a flood for a fleet of this size, and a one-minute attack
/// stays well inside the default step budget.
pub(crate) const MAX_FORGE_RATE: f64 = 10_000.0;
/// Most attempts of one ladder rung.
pub(crate) const MAX_RUNG_ATTEMPTS: u32 = 100;
/// Most instances one scale-out rung adds.
pub(crate) const MAX_SCALE_OUT_BY: u32 = 1000;

/// Longest duration string handed to humantime, in characters.
const MAX_DURATION_CHARS: usize = 64;
/// Longest run of digits in a duration string. With at most 64 characters,
/// runs of at most 10 digits keep every sum humantime computes below
/// `u64::MAX` seconds, where it would panic.
const MAX_DURATION_DIGITS: usize = 10;

/// Read `path` and [`parse`] it, naming the path in errors.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let source = std::fs::read_to_string(path)
        .map_err(|source| ScenarioError::Io { path: path.to_path_buf(), source })?;
    parse(&source, &path.display().to_string())
}

/// Parse and validate scenario text. `origin` names the text in errors
/// (usually its file name).
pub fn parse(source: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    // A byte-order mark is not part of the first line's columns.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    // Built once: every fault records its line, and locating each by
    // counting from the start would make loading quadratic.
    let lines = Lines::new(source);
    let raw: RawScenario = toml::from_str(source).map_err(|error| {
        // toml gives a span for every error it raises while reading a
        // document; a missing top-level key has the empty span at 0.
        let span = error.span().unwrap_or(0..0);
        let mut message = error.message().trim().lines().collect::<Vec<_>>().join("; ");
        if message == "duplicate key"
            && let Some(key) = source.get(span.clone())
        {
            message = format!("duplicate key `{key}`");
        }
        ScenarioError::invalid(origin, &lines, span, message)
    })?;
    validate(source, &lines, raw)
        .map_err(|diag| ScenarioError::invalid(origin, &lines, diag.span, diag.message))
}

// ---------------------------------------------------------------------------
// The file's shape.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a scenario: a table with `name`, `duration` and `[[service]]`")]
struct RawScenario {
    name: Spanned<String>,
    description: Option<String>,
    duration: Spanned<Dur>,
    seed: Option<Spanned<i64>>,
    max_events: Option<Spanned<i64>>,
    max_pending_events: Option<Spanned<i64>>,
    network: Option<RawNetwork>,
    service: Option<Spanned<Vec<RawService>>>,
    fault: Option<Vec<RawFault>>,
    load: Option<Spanned<RawLoad>>,
    recovery: Option<Spanned<RawRecovery>>,
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[load]` table with `target` (or `targets`) and `rate`")]
struct RawLoad {
    target: Option<Spanned<String>>,
    targets: Option<Spanned<Vec<Spanned<RawLoadTarget>>>>,
    rate: Spanned<Number>,
    shape: Option<Spanned<String>>,
    timeout: Option<Spanned<Dur>>,
    start: Option<Spanned<Dur>>,
    panic_threshold: Option<Spanned<i64>>,
    always_eject_one_host: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a load target like { service = \"checkout\", share = 0.8 }")]
struct RawLoadTarget {
    service: Spanned<String>,
    share: Spanned<Number>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[network]` table")]
struct RawNetwork {
    latency: Option<RawLatency>,
    loss: Option<Spanned<Number>>,
    duplicate: Option<Spanned<Number>>,
    reorder: Option<Spanned<Number>>,
    reorder_delay: Option<Spanned<Dur>>,
    stability: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a latency table like { kind = \"uniform\", min = \"1ms\", max = \"5ms\" }"
)]
struct RawLatency {
    kind: Spanned<String>,
    value: Option<Spanned<Dur>>,
    min: Option<Spanned<Dur>>,
    max: Option<Spanned<Dur>>,
    mean: Option<Spanned<Dur>>,
    alpha: Option<Spanned<Number>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[[service]]` table with `name` and `instances`")]
struct RawService {
    name: Spanned<String>,
    instances: Spanned<i64>,
    heartbeat: Option<RawHeartbeat>,
    service_time: Option<RawLatency>,
    health: Option<Spanned<RawHealth>>,
    zones: Option<Spanned<Vec<Spanned<String>>>>,
    capacity: Option<Spanned<i64>>,
    max_instances: Option<Spanned<i64>>,
    cores: Option<Spanned<i64>>,
    policy: Option<Spanned<String>>,
    depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    calls: Option<Spanned<BTreeMap<Spanned<String>, Spanned<Number>>>>,
    call_timeout: Option<Spanned<Dur>>,
}

/// Most calls per request one `calls` entry may ask for.
const MAX_CALLS_PER_REQUEST: f64 = 100.0;

/// Most zones a service may list.
const MAX_ZONES: usize = 64;

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a health table like { interval = \"1s\", timeout = \"500ms\", failure_threshold = 3 }"
)]
struct RawHealth {
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    failure_threshold: Option<Spanned<i64>>,
    success_threshold: Option<Spanned<i64>>,
    latency_p99: Option<Spanned<Dur>>,
    latency_window: Option<Spanned<i64>>,
    error_rate: Option<Spanned<Number>>,
    flap: Option<bool>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a heartbeat table like { interval = \"1s\", suspect_after = \"3s\", dead_after = \"5s\" }"
)]
struct RawHeartbeat {
    interval: Option<Spanned<Dur>>,
    suspect_after: Option<Spanned<Dur>>,
    dead_after: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[[fault]]` table with `at` and `kind`")]
struct RawFault {
    at: Spanned<Dur>,
    duration: Option<Spanned<Dur>>,
    kind: Spanned<String>,
    target: Option<Spanned<Targets>>,
    mode: Option<Spanned<String>>,
    groups: Option<Spanned<Vec<Spanned<Targets>>>>,
    from: Option<Spanned<Targets>>,
    to: Option<Spanned<Targets>>,
    offset: Option<Spanned<SignedDur>>,
    drift_ppm: Option<Spanned<i64>>,
    latency: Option<Spanned<Dur>>,
    rate: Option<Spanned<Number>>,
    period: Option<Spanned<Dur>>,
    zone: Option<Spanned<String>>,
    exhausts_after: Option<Spanned<Dur>>,
    factor: Option<Spanned<Number>>,
    after: Option<Spanned<Dur>>,
    survives_replace: Option<Spanned<bool>>,
    loss: Option<Spanned<Number>>,
    duplicate: Option<Spanned<Number>>,
    count: Option<Spanned<i64>>,
    percent: Option<Spanned<Percent>>,
    every: Option<Spanned<Dur>>,
    within: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an `[expect]` table")]
struct RawExpect {
    detected_within: Option<Spanned<Dur>>,
    no_false_dead: Option<bool>,
    alive_at_end: Option<bool>,
    availability: Option<Spanned<Share>>,
    failure_types: Option<bool>,
    recovery_started_within: Option<Spanned<Dur>>,
    restored_within: Option<Spanned<Dur>>,
    max_concurrent_recoveries: Option<Spanned<i64>>,
    no_restart_of_healthy_instances: Option<bool>,
    no_lost_requests: Option<Spanned<CallCount>>,
    actions_taken: Option<Spanned<Vec<Spanned<String>>>>,
    forged_frames_dropped: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[recovery]` table")]
struct RawRecovery {
    max_concurrent: Option<Spanned<i64>>,
    max_service_share: Option<Spanned<Share>>,
    action_timeout: Option<Spanned<Dur>>,
    restart_delay: Option<Spanned<Dur>>,
    replace_delay: Option<Spanned<Dur>>,
    scale_out_delay: Option<Spanned<Dur>>,
    backoff: Option<Spanned<RawBackoff>>,
    instance_intensity: Option<Spanned<RawIntensity>>,
    service_intensity: Option<Spanned<RawIntensity>>,
    storm: Option<Spanned<RawStorm>>,
    dependency: Option<Spanned<RawDependency>>,
    circuit: Option<Spanned<RawCircuit>>,
    partition: Option<Spanned<RawPartition>>,
    default_policy: Option<Spanned<RawPolicy>>,
    policies: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawPolicy>>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a backoff table like { base = \"10s\", cap = \"5m\", reset_after = \"10m\" }"
)]
struct RawBackoff {
    base: Option<Spanned<Dur>>,
    cap: Option<Spanned<Dur>>,
    reset_after: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an intensity table like { max_restarts = 3, period = \"5m\" }")]
struct RawIntensity {
    max_restarts: Option<Spanned<i64>>,
    period: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a storm table like { enter = \"50%\", exit = \"25%\", min_instances = 5, settle = \"15s\" }"
)]
struct RawStorm {
    enter: Option<Spanned<Share>>,
    exit: Option<Spanned<Share>>,
    min_instances: Option<Spanned<i64>>,
    settle: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a dependency table like { impaired = \"50%\", grace = \"10s\", confirm = \"3s\" }"
)]
struct RawDependency {
    impaired: Option<Spanned<Share>>,
    grace: Option<Spanned<Dur>>,
    confirm: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a partition table like { confirm_within = \"3s\", hold = \"2m\" }")]
struct RawPartition {
    confirm_within: Option<Spanned<Dur>>,
    hold: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a circuit table like { open_for = \"30s\", open_for_max = \"5m\" }"
)]
struct RawCircuit {
    open_for: Option<Spanned<Dur>>,
    open_for_max: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a policy table like { crashed = [\"restart*3\", \"replace\"], hold_for_dependencies = true }"
)]
struct RawPolicy {
    crashed: Option<Spanned<RawLadder>>,
    unresponsive: Option<Spanned<RawLadder>>,
    degraded: Option<Spanned<RawLadder>>,
    crash_looping: Option<Spanned<RawLadder>>,
    hold_for_dependencies: Option<bool>,
    isolate_dependencies: Option<bool>,
}

/// A ladder: an array of rung strings, each with its span.
struct RawLadder(Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for RawLadder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLadder;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ladder: an array of rungs like [\"restart*3\", \"replace\"]")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawLadder, E> {
                Err(E::custom(format!("a ladder is an array of rungs: write [\"{text}\"]")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawLadder, A::Error> {
                let mut rungs = Vec::new();
                while let Some(rung) = seq.next_element::<Spanned<String>>()? {
                    rungs.push(rung);
                }
                Ok(RawLadder(rungs))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A whole percentage from 1 to 100: `30` or `"30%"`.
struct Percent(u32);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole percentage from 1 to 100, like 30 or \"30%\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
                let number = v.trim().strip_suffix('%').unwrap_or(v.trim()).trim();
                match number.parse::<i64>() {
                    Ok(p) => self.visit_i64(p),
                    Err(_) => {
                        Err(E::custom(format!("`{v}` is not a whole percentage from 1 to 100, like \"30%\"")))
                    }
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                match u32::try_from(v) {
                    Ok(p) if (1..=100).contains(&p) => Ok(Percent(p)),
                    _ => Err(E::custom(format!("`percent` must be from 1 to 100, got {v}"))),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A count of client calls, at least 0.
struct CallCount(u64);

impl<'de> Deserialize<'de> for CallCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CallCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the most client calls that may fail, like 0")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CallCount, E> {
                u64::try_from(v)
                    .map(CallCount)
                    .map_err(|_| E::custom(format!("a count of calls must not be negative, got {v}")))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<CallCount, E> {
                Err(E::custom(
                    "`no_lost_requests` takes the most client calls that may fail: write `no_lost_requests = 0`",
                ))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A share: `"99.9%"` or a number in `[0, 1]`.
struct Share(f64);

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Share;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage like \"99.9%\" or a number between 0 and 1")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Share, E> {
                let Some(number) = v.trim().strip_suffix('%') else {
                    return Err(E::custom(format!("`{v}` is not a percentage: write it like \"99.9%\"")));
                };
                match number.trim().parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => Ok(Share(p / 100.0)),
                    _ => Err(E::custom(format!("`{v}` is not a percentage between 0% and 100%"))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Share, E> {
                if (0.0..=1.0).contains(&v) {
                    Ok(Share(v))
                } else {
                    Err(E::custom(format!("{v} is not a share between 0 and 1 (or write \"99.9%\")")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Share, E> {
                self.visit_f64(v as f64)
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Values with rules of their own.

/// A duration string such as `"500ms"` or `"1h 30m"`, at most [`MAX_DURATION`].
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"30s\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Dur, E> {
                parse_duration(text).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(format!("a duration needs a unit and quotes, like \"{v}s\" or \"{v}ms\"")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!("a duration needs a unit and quotes, like \"{v}s\" or \"{v}ms\"")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A duration string with an optional sign, `"-2s"` or `"+2s"`, in
/// nanoseconds; at most [`MAX_DURATION`] either way.
struct SignedDur(i64);

impl<'de> Deserialize<'de> for SignedDur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SignedDur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with an optional sign, like \"2s\" or \"-500ms\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SignedDur, E> {
                let trimmed = text.trim_start();
                let (negative, magnitude) = match trimmed.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
                };
                let duration = parse_duration(magnitude).map_err(E::custom)?;
                // At most MAX_DURATION (about 2.6e15 ns), so it fits an i64.
                let nanos =
                    i64::try_from(duration.as_nanos()).map_err(|_| E::custom("duration is too large"))?;
                Ok(SignedDur(if negative { -nanos } else { nanos }))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignedDur, E> {
                Err(E::custom(format!("a duration needs a unit and quotes, like \"{v}s\" or \"{v}ms\"")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SignedDur, E> {
                Err(E::custom(format!("a duration needs a unit and quotes, like \"{v}s\" or \"{v}ms\"")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A float, or an integer taken as one. Range rules are checked later.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One target string, or an array of them, each with its own span.
enum Targets {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target like \"checkout/0\", or an array of them")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Targets, E> {
                Ok(Targets::One(text.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut all = Vec::new();
                while let Some(target) = seq.next_element::<Spanned<String>>()? {
                    all.push(target);
                }
                Ok(Targets::Many(all))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parse a humantime duration, guarding humantime against overflow and
/// applying [`MAX_DURATION`].
fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim().is_empty() {
        return Err("empty duration; write one with a unit, like \"30s\"".to_string());
    }
    if text.chars().count() > MAX_DURATION_CHARS {
        return Err(format!("duration string is longer than {MAX_DURATION_CHARS} characters"));
    }
    let mut digits = 0;
    for c in text.chars() {
        digits = if c.is_ascii_digit() { digits + 1 } else { 0 };
        if digits > MAX_DURATION_DIGITS {
            return Err(format!(
                "invalid duration {text:?}: a number is longer than {MAX_DURATION_DIGITS} digits"
            ));
        }
    }
    let duration = humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if duration > MAX_DURATION {
        return Err(format!("duration {text:?} is longer than the limit of 30 days"));
    }
    Ok(duration)
}

// ---------------------------------------------------------------------------
// Validation.

/// A problem at a byte range of the source.
struct Diag {
    span: Range<usize>,
    message: String,
}

impl Diag {
    fn new(span: Range<usize>, message: impl Into<String>) -> Diag {
        Diag { span, message: message.into() }
    }
}

type Checked<T> = Result<T, Diag>;

/// Human form of a duration: `1m 30s`, `500ms`, `0s`.
fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `a`, `a` and `b`, `a`, `b` and `c`: each name in backquotes.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The span of the key in `key = value`, found by scanning back from the
/// value; the value's span if the text does not look like that (a value in
/// an array, a dotted table header). Used so errors about a field that must
/// not be there point at its name, like toml's own unknown-key errors.
fn key_span(source: &str, value: &Range<usize>) -> Range<usize> {
    let bytes = source.as_bytes();
    let blank = |b: u8| b == b' ' || b == b'\t';
    let mut i = value.start.min(bytes.len());
    while i > 0 && blank(bytes[i - 1]) {
        i -= 1;
    }
    if i == 0 || bytes[i - 1] != b'=' {
        return value.clone();
    }
    i -= 1;
    while i > 0 && blank(bytes[i - 1]) {
        i -= 1;
    }
    let end = i;
    if end == 0 {
        return value.clone();
    }
    let quote = bytes[end - 1];
    if quote == b'"' || quote == b'\'' {
        // Every index looked at is at an ASCII byte, so slicing there is
        // always on a char boundary.
        let mut j = end - 1;
        while j > 0 {
            j -= 1;
            match bytes[j] {
                b'\n' => return value.clone(),
                b if b == quote => return j..end,
                _ => {}
            }
        }
        return value.clone();
    }
    let mut j = end;
    while j > 0 && (bytes[j - 1].is_ascii_alphanumeric() || bytes[j - 1] == b'_' || bytes[j - 1] == b'-') {
        j -= 1;
    }
    if j == end { value.clone() } else { j..end }
}

fn validate(source: &str, lines: &Lines<'_>, raw: RawScenario) -> Checked<Scenario> {
    let name = raw.name.get_ref();
    if name.trim().is_empty() {
        return Err(Diag::new(raw.name.span(), "`name` must not be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(Diag::new(raw.name.span(), "`name` must be a single line without control characters"));
    }

    let duration = raw.duration.get_ref().0;
    if duration.is_zero() {
        return Err(Diag::new(raw.duration.span(), "`duration` must be greater than zero"));
    }

    let seed = match &raw.seed {
        None => 0,
        Some(seed) => u64::try_from(*seed.get_ref()).map_err(|_| {
            Diag::new(seed.span(), format!("`seed` must not be negative, got {}", seed.get_ref()))
        })?,
    };

    let max_events = match &raw.max_events {
        None => DEFAULT_MAX_EVENTS,
        Some(max) => match u64::try_from(*max.get_ref()) {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Diag::new(
                    max.span(),
                    format!("`max_events` must be greater than zero, got {}", max.get_ref()),
                ));
            }
        },
    };

    let max_pending_events = match &raw.max_pending_events {
        None => DEFAULT_MAX_PENDING_EVENTS,
        Some(max) => match u64::try_from(*max.get_ref()) {
            Ok(n) if (1..=MAX_PENDING_EVENTS).contains(&n) => n,
            _ => {
                return Err(Diag::new(
                    max.span(),
                    format!(
                        "`max_pending_events` must be between 1 and {MAX_PENDING_EVENTS}, got {}",
                        max.get_ref()
                    ),
                ));
            }
        },
    };

    let network = match &raw.network {
        None => NetworkConfig::default(),
        Some(network) => validate_network(source, network)?,
    };

    // The names a service's `policy` may take: `None` without `[recovery]`.
    let policy_names: Option<BTreeSet<&str>> = raw.recovery.as_ref().map(|r| {
        r.get_ref().policies.iter().flat_map(|p| p.get_ref().keys()).map(|k| k.get_ref().as_str()).collect()
    });
    let (services, fleet) = match &raw.service {
        None => {
            return Err(Diag::new(0..0, "missing `[[service]]`: a scenario needs at least one service"));
        }
        Some(list) if list.get_ref().is_empty() => {
            return Err(Diag::new(list.span(), "a scenario needs at least one service"));
        }
        Some(list) => validate_services(source, lines, list.get_ref(), policy_names.as_ref())?,
    };

    let recovery = match &raw.recovery {
        None => None,
        Some(recovery) => Some(validate_recovery(source, recovery, &services)?),
    };

    let mut faults = Vec::new();
    let mut nodes_named = 0usize;
    for raw_fault in raw.fault.iter().flatten() {
        faults.push(validate_fault(source, lines, raw_fault, duration, &fleet, &mut nodes_named)?);
    }
    // Stable: faults at the same time keep file order.
    faults.sort_by_key(|f| f.at);

    let expect = match &raw.expect {
        None => Expectations::default(),
        Some(expect) => {
            let forges = faults.iter().any(|f| matches!(f.action, FaultAction::Forge { .. }));
            validate_expect(source, expect, raw.load.is_some(), recovery.is_some(), forges)?
        }
    };

    let load = match &raw.load {
        None => None,
        Some(load) => {
            let load = validate_load(source, load, &fleet)?;
            if load.start >= duration {
                let span =
                    raw.load.as_ref().and_then(|l| l.get_ref().start.as_ref()).map_or(0..0, Spanned::span);
                return Err(Diag::new(span, "load `start` must be before the end of the run"));
            }
            Some(load)
        }
    };

    let service_spans: Vec<Range<usize>> =
        raw.service.iter().flat_map(|l| l.get_ref().iter().map(|s| s.name.span())).collect();
    let scenario = Scenario {
        name: name.clone(),
        description: raw.description,
        duration,
        seed,
        max_events,
        max_pending_events,
        network,
        services,
        faults,
        load,
        recovery,
        expect,
    };
    // Build what boot builds, so that `check` accepting a file means `run`
    // can boot it: the limits live in the machines, not copied here.
    if let Err(e) = dry_boot(&scenario) {
        let span = e.service.and_then(|s| service_spans.get(s).cloned()).unwrap_or(0..0);
        return Err(Diag::new(span, e.message));
    }
    Ok(scenario)
}

/// A duration that must be more than zero, if given.
fn positive(key: &str, value: &Option<Spanned<Dur>>) -> Checked<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(d) if d.get_ref().0.is_zero() => {
            Err(Diag::new(d.span(), format!("`{key}` must be greater than zero")))
        }
        Some(d) => Ok(Some(d.get_ref().0)),
    }
}

fn validate_expect(
    source: &str,
    raw: &RawExpect,
    has_load: bool,
    has_recovery: bool,
    has_forge: bool,
) -> Checked<Expectations> {
    let detected_within = positive("detected_within", &raw.detected_within)?;
    let needs_load = |key: &str, span: Range<usize>| -> Checked<()> {
        if has_load {
            return Ok(());
        }
        Err(Diag::new(span, format!("`{key}` is measured on client calls: add a `[load]` table")))
    };
    if let Some(a) = &raw.availability {
        needs_load("availability", a.span())?;
    }
    if let Some(n) = &raw.no_lost_requests {
        needs_load("no_lost_requests", key_span(source, &n.span()))?;
    }
    // Expectations about recovery actions mean nothing without recovery;
    // `no_restart_of_healthy_instances` holds trivially, so it may stay.
    let needs_recovery = [
        ("recovery_started_within", raw.recovery_started_within.as_ref().map(Spanned::span)),
        ("restored_within", raw.restored_within.as_ref().map(Spanned::span)),
        ("max_concurrent_recoveries", raw.max_concurrent_recoveries.as_ref().map(Spanned::span)),
        ("actions_taken", raw.actions_taken.as_ref().map(Spanned::span)),
    ];
    if !has_recovery
        && let Some((key, span)) = needs_recovery
            .iter()
            .filter_map(|(key, span)| span.as_ref().map(|s| (*key, s)))
            .min_by_key(|(_, span)| span.start)
    {
        return Err(Diag::new(
            key_span(source, span),
            format!("`{key}` is about recovery actions: add a `[recovery]` table"),
        ));
    }
    if let Some(f) = &raw.forged_frames_dropped
        && !has_forge
    {
        return Err(Diag::new(
            key_span(source, &f.span()),
            "`forged_frames_dropped` is about an attacker's frames: add a `[[fault]]` of kind `forge`",
        ));
    }
    let max_concurrent_recoveries = match &raw.max_concurrent_recoveries {
        None => None,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(n) if (1..=MAX_TOTAL_INSTANCES).contains(&n) => Some(n),
            _ => {
                return Err(Diag::new(
                    m.span(),
                    format!(
                        "`max_concurrent_recoveries` must be between 1 and {MAX_TOTAL_INSTANCES}, got {}",
                        m.get_ref()
                    ),
                ));
            }
        },
    };
    let mut actions_taken = Vec::new();
    for action in raw.actions_taken.iter().flat_map(|a| a.get_ref()) {
        let name = action.get_ref().as_str();
        let Some(&(class, _)) = ActionClass::ALL.iter().find(|(_, n)| *n == name) else {
            let names: Vec<&str> = ActionClass::ALL.iter().map(|(_, n)| *n).collect();
            return Err(Diag::new(
                action.span(),
                format!("unknown recovery action `{name}`; expected one of {}", list(&names)),
            ));
        };
        if actions_taken.contains(&class) {
            return Err(Diag::new(action.span(), format!("`{name}` is listed twice in `actions_taken`")));
        }
        actions_taken.push(class);
    }
    Ok(Expectations {
        detected_within,
        no_false_dead: raw.no_false_dead.unwrap_or(false),
        alive_at_end: raw.alive_at_end.unwrap_or(false),
        availability: raw.availability.as_ref().map(|a| a.get_ref().0),
        failure_types: raw.failure_types.unwrap_or(false),
        recovery_started_within: positive("recovery_started_within", &raw.recovery_started_within)?,
        restored_within: positive("restored_within", &raw.restored_within)?,
        max_concurrent_recoveries,
        no_restart_of_healthy_instances: raw.no_restart_of_healthy_instances.unwrap_or(false),
        max_lost_requests: raw.no_lost_requests.as_ref().map(|n| n.get_ref().0),
        actions_taken,
        forged_frames_dropped: raw.forged_frames_dropped.as_ref().is_some_and(|f| *f.get_ref()),
    })
}

/// Most names shown when a message lists the names that are known.
const NAMES_SHOWN: usize = 8;

/// [`list`] of at most [`NAMES_SHOWN`] names, then how many more.
fn list_some(names: &[&str]) -> String {
    let mut text = list(&names[..names.len().min(NAMES_SHOWN)]);
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

/// A share in thousandths (the unit of the coordinator's settings),
/// rounded; at least one thousandth.
fn permille(key: &str, value: &Option<Spanned<Share>>, default: u32) -> Checked<u32> {
    let Some(value) = value else { return Ok(default) };
    let share = value.get_ref().0;
    // A share is in [0, 1] (checked when read), so this is in 0..=1000.
    let permille = (share * 1000.0).round() as u32;
    if permille == 0 {
        return Err(Diag::new(
            value.span(),
            format!("`{key}` must be at least 0.1% (it is counted in thousandths), got {}%", share * 100.0),
        ));
    }
    Ok(permille)
}

/// Rule `high ≥ low` between two durations of a table, either of which
/// may be a default: the message says which, and blames the key given
/// (`high` first). `fallback` is only used if neither is given, which
/// cannot break the rule when the defaults keep it.
fn not_below(
    table: &str,
    (low_key, low_raw, low): (&str, &Option<Spanned<Dur>>, Duration),
    (high_key, high_raw, high): (&str, &Option<Spanned<Dur>>, Duration),
    fallback: Range<usize>,
) -> Checked<()> {
    if high >= low {
        return Ok(());
    }
    let describe = |raw: &Option<Spanned<Dur>>, v: Duration| match raw {
        Some(_) => show(v),
        None => format!("{}, the default", show(v)),
    };
    let span = high_raw.as_ref().or(low_raw.as_ref()).map_or(fallback, Spanned::span);
    Err(Diag::new(
        span,
        format!(
            "{table} `{high_key}` ({}) must be at least `{low_key}` ({})",
            describe(high_raw, high),
            describe(low_raw, low)
        ),
    ))
}

/// Default time a restarted process takes to boot.
pub(crate) const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(2);
/// Default time a replacement takes to be provisioned and boot.
pub(crate) const DEFAULT_REPLACE_DELAY: Duration = Duration::from_secs(10);
/// Default time a scaled-out instance takes to be provisioned and boot.
pub(crate) const DEFAULT_SCALE_OUT_DELAY: Duration = Duration::from_secs(10);

/// The `[recovery]` table: the coordinator's settings (defaults from
/// [`RecoveryConfig::default`]) and the platform's delays. Each service
/// of the fleet becomes one [`ServiceSpec`], in file order.
fn validate_recovery(source: &str, raw: &Spanned<RawRecovery>, services: &[Service]) -> Checked<Recovery> {
    let r = raw.get_ref();
    let default = RecoveryConfig::default();
    if services.len() > MAX_SERVICES {
        return Err(Diag::new(
            raw.span(),
            format!("recovery handles at most {MAX_SERVICES} services, and the fleet has {}", services.len()),
        ));
    }
    let max_concurrent = match &r.max_concurrent {
        None => default.limits.max_concurrent,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(n) if (1..MAX_INSTANCES).contains(&n) => n,
            _ => {
                return Err(Diag::new(
                    m.span(),
                    format!(
                        "`max_concurrent` must be between 1 and {}, got {}",
                        MAX_INSTANCES - 1,
                        m.get_ref()
                    ),
                ));
            }
        },
    };
    let limits = Limits {
        max_concurrent,
        max_service_share_permille: permille(
            "max_service_share",
            &r.max_service_share,
            default.limits.max_service_share_permille,
        )?,
    };
    let action_timeout = positive("action_timeout", &r.action_timeout)?.unwrap_or(default.action_timeout);
    let restart_delay = positive("restart_delay", &r.restart_delay)?.unwrap_or(DEFAULT_RESTART_DELAY);
    let replace_delay = positive("replace_delay", &r.replace_delay)?.unwrap_or(DEFAULT_REPLACE_DELAY);
    let scale_out_delay = positive("scale_out_delay", &r.scale_out_delay)?.unwrap_or(DEFAULT_SCALE_OUT_DELAY);

    let backoff = match &r.backoff {
        None => default.backoff,
        Some(b) => {
            let d = default.backoff;
            let raw = b.get_ref();
            let base = positive("base", &raw.base)?.unwrap_or(d.base);
            let cap = raw.cap.as_ref().map_or(d.cap, |c| c.get_ref().0);
            let reset_after = positive("reset_after", &raw.reset_after)?.unwrap_or(d.reset_after);
            not_below("backoff", ("base", &raw.base, base), ("cap", &raw.cap, cap), b.span())?;
            BackoffConfig { base, cap, reset_after }
        }
    };
    let intensity = |raw: &Option<Spanned<RawIntensity>>, d: Intensity| -> Checked<Intensity> {
        let Some(raw) = raw else { return Ok(d) };
        let raw = raw.get_ref();
        let max_restarts = match &raw.max_restarts {
            None => d.max_restarts,
            Some(m) => match u32::try_from(*m.get_ref()) {
                Ok(n) if (1..=MAX_INTENSITY_RESTARTS).contains(&n) => n,
                _ => {
                    return Err(Diag::new(
                        m.span(),
                        format!(
                            "`max_restarts` must be between 1 and {MAX_INTENSITY_RESTARTS}, got {}",
                            m.get_ref()
                        ),
                    ));
                }
            },
        };
        let period = positive("period", &raw.period)?.unwrap_or(d.period);
        Ok(Intensity { max_restarts, period })
    };
    let instance_intensity = intensity(&r.instance_intensity, default.instance_intensity)?;
    let service_intensity = intensity(&r.service_intensity, default.service_intensity)?;
    let storm = match &r.storm {
        None => default.storm,
        Some(storm) => {
            let d = default.storm;
            let raw = storm.get_ref();
            let enter_permille = permille("enter", &raw.enter, d.enter_permille)?;
            let exit_permille = permille("exit", &raw.exit, d.exit_permille)?;
            if exit_permille >= enter_permille {
                // At least one is given: the defaults keep the rule.
                let span = raw.exit.as_ref().or(raw.enter.as_ref()).map_or(storm.span(), Spanned::span);
                let describe = |given: bool, p: u32| {
                    let share = format!("{}%", f64::from(p) / 10.0);
                    if given { share } else { format!("{share}, the default") }
                };
                return Err(Diag::new(
                    span,
                    format!(
                        "storm `exit` ({}) must be below `enter` ({}): a storm is left below a \
                         lower share than the one that enters it, so it does not toggle",
                        describe(raw.exit.is_some(), exit_permille),
                        describe(raw.enter.is_some(), enter_permille)
                    ),
                ));
            }
            let min_instances = match &raw.min_instances {
                None => d.min_instances,
                Some(m) => match u32::try_from(*m.get_ref()) {
                    Ok(n) if (1..=MAX_TOTAL_INSTANCES).contains(&n) => n,
                    _ => {
                        return Err(Diag::new(
                            m.span(),
                            format!(
                                "`min_instances` must be between 1 and {MAX_TOTAL_INSTANCES}, got {}",
                                m.get_ref()
                            ),
                        ));
                    }
                },
            };
            let settle = raw.settle.as_ref().map_or(d.settle, |s| s.get_ref().0);
            StormConfig { enter_permille, exit_permille, min_instances, settle }
        }
    };
    let dependency = match &r.dependency {
        None => default.dependency,
        Some(dependency) => {
            let d = default.dependency;
            let raw = dependency.get_ref();
            DependencyConfig {
                impaired_permille: permille("impaired", &raw.impaired, d.impaired_permille)?,
                grace: raw.grace.as_ref().map_or(d.grace, |g| g.get_ref().0),
                confirm: raw.confirm.as_ref().map_or(d.confirm, |c| c.get_ref().0),
            }
        }
    };
    let circuit = match &r.circuit {
        None => default.circuit,
        Some(circuit) => {
            let d = default.circuit;
            let raw = circuit.get_ref();
            let open_for = positive("open_for", &raw.open_for)?.unwrap_or(d.open_for);
            let open_for_max = raw.open_for_max.as_ref().map_or(d.open_for_max, |m| m.get_ref().0);
            not_below(
                "circuit",
                ("open_for", &raw.open_for, open_for),
                ("open_for_max", &raw.open_for_max, open_for_max),
                circuit.span(),
            )?;
            CircuitConfig { open_for, open_for_max }
        }
    };
    let partition = match &r.partition {
        None => default.partition,
        Some(partition) => {
            let d = default.partition;
            let raw = partition.get_ref();
            PartitionConfig {
                confirm_within: raw.confirm_within.as_ref().map_or(d.confirm_within, |c| c.get_ref().0),
                hold: raw.hold.as_ref().map_or(d.hold, |h| h.get_ref().0),
            }
        }
    };
    let default_policy = match &r.default_policy {
        None => default.default_policy,
        Some(policy) => validate_policy(policy.get_ref())?,
    };
    let mut policies = BTreeMap::new();
    if let Some(map) = &r.policies {
        if map.get_ref().len() > MAX_POLICIES {
            return Err(Diag::new(
                key_span(source, &map.span()),
                format!("at most {MAX_POLICIES} policies are allowed, got {}", map.get_ref().len()),
            ));
        }
        for (name, policy) in map.get_ref() {
            validate_policy_name(name)?;
            policies.insert(name.get_ref().clone(), validate_policy(policy.get_ref())?);
        }
    }
    let config = RecoveryConfig {
        services: super::model::recovery_services_of(services),
        default_policy,
        policies,
        limits,
        instance_intensity,
        service_intensity,
        backoff,
        storm,
        dependency,
        circuit,
        partition,
        action_timeout,
    };
    // Every rule it checks was checked above with a better position; this
    // is the backstop for rules added to the coordinator later.
    config.validate().map_err(|e| Diag::new(raw.span(), format!("`[recovery]`: {e}")))?;
    Ok(Recovery { config, restart_delay, replace_delay, scale_out_delay })
}

fn validate_policy_name(name: &Spanned<String>) -> Checked<()> {
    let text = name.get_ref().as_str();
    let mut chars = text.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !(valid_start && valid_rest && text.len() <= 64) {
        return Err(Diag::new(
            name.span(),
            format!(
                "invalid policy name `{text}`: use 1 to 64 lowercase letters, digits, `_` and `-`, \
                 starting with a letter or a digit"
            ),
        ));
    }
    if text == "default" {
        return Err(Diag::new(
            name.span(),
            "`default` is the policy of services that name none: set it with `default_policy`",
        ));
    }
    Ok(())
}

/// A policy table: each ladder given replaces the default policy's.
fn validate_policy(raw: &RawPolicy) -> Checked<Policy> {
    let d = Policy::default();
    let ladder = |raw: &Option<Spanned<RawLadder>>, default: Ladder| -> Checked<Ladder> {
        let Some(raw) = raw else { return Ok(default) };
        let rungs = &raw.get_ref().0;
        if rungs.len() > MAX_RUNGS {
            return Err(Diag::new(
                raw.span(),
                format!("a ladder has at most {MAX_RUNGS} rungs, got {}", rungs.len()),
            ));
        }
        let rungs = rungs
            .iter()
            .map(|r| parse_rung(r.get_ref()).map_err(|m| Diag::new(r.span(), m)))
            .collect::<Checked<Vec<Rung>>>()?;
        Ok(Ladder::new(rungs))
    };
    Ok(Policy {
        crashed: ladder(&raw.crashed, d.crashed)?,
        unresponsive: ladder(&raw.unresponsive, d.unresponsive)?,
        degraded: ladder(&raw.degraded, d.degraded)?,
        crash_looping: ladder(&raw.crash_looping, d.crash_looping)?,
        hold_for_dependencies: raw.hold_for_dependencies.unwrap_or(d.hold_for_dependencies),
        isolate_dependencies: raw.isolate_dependencies.unwrap_or(d.isolate_dependencies),
    })
}

/// What every rung error ends with.
const RUNG_SYNTAX: &str = "a rung is `restart`, `replace`, `reroute` or `scale_out`, then `*N` for N attempts \
     (default 1); `scale_out` may take `+N` for N instances (default 1): \"restart*3\", \"scale_out+2\"";

/// One rung: `NAME[+BY][*ATTEMPTS]`.
fn parse_rung(text: &str) -> Result<Rung, String> {
    let (head, attempts) = match text.split_once('*') {
        Some((head, attempts)) => (head, Some(attempts)),
        None => (text, None),
    };
    let (name, by) = match head.split_once('+') {
        Some((name, by)) => (name, Some(by)),
        None => (head, None),
    };
    let number = |digits: &str, what: &str, max: u32| -> Result<u32, String> {
        let parsed = if !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit())
        {
            digits.parse::<u64>().ok()
        } else {
            None
        };
        match parsed {
            Some(n) if (1..=u64::from(max)).contains(&n) => Ok(n as u32),
            _ => {
                Err(format!("invalid rung `{text}`: {what} must be a number from 1 to {max}, got `{digits}`"))
            }
        }
    };
    let attempts = match attempts {
        None => 1,
        Some(a) => number(a, "attempts (`*N`)", MAX_RUNG_ATTEMPTS)?,
    };
    let strategy = match name {
        "restart" => Strategy::Restart,
        "replace" => Strategy::Replace,
        "reroute" => Strategy::Reroute,
        "scale_out" => Strategy::ScaleOut {
            by: match by {
                None => 1,
                Some(by) => number(by, "instances to add (`+N`)", MAX_SCALE_OUT_BY)?,
            },
        },
        _ => return Err(format!("invalid rung `{text}`: {RUNG_SYNTAX}")),
    };
    if by.is_some() && !matches!(strategy, Strategy::ScaleOut { .. }) {
        return Err(format!("invalid rung `{text}`: only `scale_out` takes `+N` (instances to add)"));
    }
    Ok(Rung::new(strategy, attempts))
}

/// Most calls per second a `[load]` may ask for.
const MAX_LOAD_RATE: f64 = 1_000_000.0;

/// Shares of a `[load]`'s targets must sum to 1 within this.
const SHARE_SUM_TOLERANCE: f64 = 1e-9;

/// The service index `name` (at `span`) names, for a load target.
fn load_service(name: &Spanned<String>, fleet: &Fleet) -> Checked<usize> {
    let text = name.get_ref();
    fleet.by_name.get(text.as_str()).copied().ok_or_else(|| {
        let known: Vec<&str> = fleet.services.iter().map(|(n, _, _)| n.as_str()).collect();
        Diag::new(
            name.span(),
            format!("`[load]` target `{text}` is not a service; known services: {}", list(&known)),
        )
    })
}

/// The services a `[load]` calls: `target = "name"` (every call), or
/// `targets = [{ service, share }, …]` (each service once, shares in
/// `(0, 1]` summing to 1).
fn load_targets(source: &str, raw: &Spanned<RawLoad>, fleet: &Fleet) -> Checked<Vec<LoadTarget>> {
    let load = raw.get_ref();
    let list = match (&load.target, &load.targets) {
        (Some(target), None) => {
            return Ok(vec![LoadTarget { service: load_service(target, fleet)?, share: 1.0 }]);
        }
        (Some(_), Some(targets)) => {
            return Err(Diag::new(
                key_span(source, &targets.span()),
                "`[load]` takes `target` (one service) or `targets` (several, with shares), not both",
            ));
        }
        (None, None) => {
            return Err(Diag::new(
                raw.span(),
                "`[load]` needs `target = \"service\"` or `targets = [{ service = \"…\", share = … }, …]`",
            ));
        }
        (None, Some(targets)) => targets,
    };
    if list.get_ref().is_empty() {
        return Err(Diag::new(list.span(), "`targets` needs at least one `{ service, share }`"));
    }
    let mut out: Vec<LoadTarget> = Vec::new();
    let mut sum = 0.0;
    for entry in list.get_ref() {
        let entry = entry.get_ref();
        let service = load_service(&entry.service, fleet)?;
        if out.iter().any(|t| t.service == service) {
            return Err(Diag::new(
                entry.service.span(),
                format!("service `{}` is a load target twice", entry.service.get_ref()),
            ));
        }
        let share = entry.share.get_ref().0;
        // Also rejects NaN.
        if !(share > 0.0 && share <= 1.0) {
            return Err(Diag::new(
                entry.share.span(),
                format!("a target's `share` must be more than 0 and at most 1, got {share}"),
            ));
        }
        sum += share;
        out.push(LoadTarget { service, share });
    }
    if (sum - 1.0).abs() > SHARE_SUM_TOLERANCE {
        return Err(Diag::new(list.span(), format!("the targets' shares must sum to 1, got {sum}")));
    }
    Ok(out)
}

fn validate_load(source: &str, spanned: &Spanned<RawLoad>, fleet: &Fleet) -> Checked<Load> {
    let targets = load_targets(source, spanned, fleet)?;
    let raw = spanned.get_ref();
    let rate = raw.rate.get_ref().0;
    if !(rate > 0.0 && rate <= MAX_LOAD_RATE) {
        return Err(Diag::new(
            raw.rate.span(),
            format!("`rate` must be more than 0 and at most {MAX_LOAD_RATE} calls per second, got {rate}"),
        ));
    }
    let shape = match raw.shape.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("poisson") => LoadShape::Poisson,
        Some("constant") => LoadShape::Constant,
        Some(other) => {
            let span = raw.shape.as_ref().map_or(0..0, Spanned::span);
            return Err(Diag::new(
                span,
                format!("unknown load shape `{other}`; expected `poisson` or `constant`"),
            ));
        }
    };
    let timeout = match &raw.timeout {
        None => Duration::from_secs(1),
        Some(t) if t.get_ref().0.is_zero() => {
            return Err(Diag::new(t.span(), "load `timeout` must be greater than zero"));
        }
        Some(t) => t.get_ref().0,
    };
    let start = raw.start.as_ref().map_or(Duration::from_secs(5), |s| s.get_ref().0);
    let panic_threshold_percent = match &raw.panic_threshold {
        None => 50,
        Some(p) if (0..=100).contains(p.get_ref()) => *p.get_ref() as u32,
        Some(p) => {
            return Err(Diag::new(
                p.span(),
                format!("`panic_threshold` is a percentage from 0 to 100, got {}", p.get_ref()),
            ));
        }
    };
    Ok(Load {
        targets,
        rate_per_sec: rate,
        shape,
        timeout,
        start,
        panic_threshold_percent,
        always_eject_one_host: raw.always_eject_one_host.unwrap_or(false),
    })
}

fn probability(what: &str, value: &Option<Spanned<Number>>, default: f64) -> Checked<f64> {
    let Some(value) = value else { return Ok(default) };
    let p = value.get_ref().0;
    // Also rejects NaN, which TOML can spell.
    if !(0.0..=1.0).contains(&p) {
        return Err(Diag::new(
            value.span(),
            format!("`{what}` must be a probability between 0 and 1, got {p}"),
        ));
    }
    Ok(p)
}

fn validate_network(source: &str, raw: &RawNetwork) -> Checked<NetworkConfig> {
    let default = NetworkConfig::default();
    Ok(NetworkConfig {
        latency: match &raw.latency {
            None => default.latency,
            Some(latency) => validate_latency(source, latency)?,
        },
        loss: probability("loss", &raw.loss, default.loss)?,
        duplicate: probability("duplicate", &raw.duplicate, default.duplicate)?,
        reorder: probability("reorder", &raw.reorder, default.reorder)?,
        reorder_delay: raw.reorder_delay.as_ref().map_or(default.reorder_delay, |d| d.get_ref().0),
        stability: raw.stability.as_ref().map_or(default.stability, |d| d.get_ref().0),
    })
}

/// Default cap of a Pareto latency.
const PARETO_MAX_DEFAULT: Duration = Duration::from_secs(10);

fn validate_latency(source: &str, raw: &RawLatency) -> Checked<LatencyModel> {
    const KINDS: [&str; 4] = ["fixed", "uniform", "exponential", "pareto"];
    let kind = raw.kind.get_ref().as_str();
    let (required, optional): (&[&str], &[&str]) = match kind {
        "fixed" => (&["value"], &[]),
        "uniform" => (&["min", "max"], &[]),
        "exponential" => (&["min", "mean"], &[]),
        "pareto" => (&["min", "alpha"], &["max"]),
        _ => {
            return Err(Diag::new(
                raw.kind.span(),
                format!("unknown latency kind `{kind}`; expected {}", list(&KINDS)),
            ));
        }
    };
    let present = [
        ("value", raw.value.as_ref().map(Spanned::span)),
        ("min", raw.min.as_ref().map(Spanned::span)),
        ("max", raw.max.as_ref().map(Spanned::span)),
        ("mean", raw.mean.as_ref().map(Spanned::span)),
        ("alpha", raw.alpha.as_ref().map(Spanned::span)),
    ];
    let stray = present
        .iter()
        .filter_map(|(field, span)| span.as_ref().map(|s| (*field, s)))
        .filter(|(field, _)| !required.contains(field) && !optional.contains(field))
        .min_by_key(|(_, span)| span.start);
    if let Some((field, span)) = stray {
        let takes: Vec<&str> = required.iter().chain(optional).copied().collect();
        return Err(Diag::new(
            key_span(source, span),
            format!("`{field}` is not a field of latency kind `{kind}`; it takes {}", list(&takes)),
        ));
    }
    for field in required {
        let given = present.iter().any(|(f, span)| f == field && span.is_some());
        if !given {
            return Err(Diag::new(raw.kind.span(), format!("latency kind `{kind}` needs `{field}`")));
        }
    }
    // Every required field was just checked to be present.
    let get = |d: &Option<Spanned<Dur>>| d.as_ref().map_or(Duration::ZERO, |d| d.get_ref().0);
    let span_of = |d: &Option<Spanned<Dur>>| d.as_ref().map_or(raw.kind.span(), Spanned::span);
    Ok(match kind {
        "fixed" => LatencyModel::Fixed(get(&raw.value)),
        "uniform" => {
            let (min, max) = (get(&raw.min), get(&raw.max));
            if max < min {
                return Err(Diag::new(
                    span_of(&raw.max),
                    format!("`max` ({}) must be at least `min` ({})", show(max), show(min)),
                ));
            }
            LatencyModel::Uniform { min, max }
        }
        "exponential" => {
            let (min, mean) = (get(&raw.min), get(&raw.mean));
            if mean <= min {
                return Err(Diag::new(
                    span_of(&raw.mean),
                    format!("`mean` ({}) must be greater than `min` ({})", show(mean), show(min)),
                ));
            }
            LatencyModel::Exponential { min, mean }
        }
        _ => {
            let min = get(&raw.min);
            if min.is_zero() {
                return Err(Diag::new(
                    span_of(&raw.min),
                    "`min` of a pareto latency must be greater than zero",
                ));
            }
            let alpha = raw.alpha.as_ref().map_or(0.0, |a| a.get_ref().0);
            // Also rejects NaN and infinity.
            if !(alpha > 0.0 && alpha.is_finite()) {
                let span = raw.alpha.as_ref().map_or(raw.kind.span(), Spanned::span);
                return Err(Diag::new(
                    span,
                    format!("`alpha` must be a finite number greater than zero, got {alpha}"),
                ));
            }
            let max = match &raw.max {
                None if min > PARETO_MAX_DEFAULT => {
                    return Err(Diag::new(
                        span_of(&raw.min),
                        format!(
                            "`min` ({}) exceeds the default `max` ({}); set `max`",
                            show(min),
                            show(PARETO_MAX_DEFAULT)
                        ),
                    ));
                }
                None => PARETO_MAX_DEFAULT,
                Some(max) if max.get_ref().0 < min => {
                    return Err(Diag::new(
                        max.span(),
                        format!("`max` ({}) must be at least `min` ({})", show(max.get_ref().0), show(min)),
                    ));
                }
                Some(max) => max.get_ref().0,
            };
            LatencyModel::Pareto { min, alpha, max }
        }
    })
}

/// The fleet's names and node numbers, for resolving targets.
struct Fleet {
    /// `(name, first node, instance count)` in file order.
    services: Vec<(String, u32, u32)>,
    /// Service index by name.
    by_name: BTreeMap<String, usize>,
    /// Instances across all services.
    instances: u32,
    /// Zones of each service (same index as `services`); empty: no zone.
    zones: Vec<Vec<String>>,
}

/// What every target error ends with.
const TARGET_SYNTAX: &str = "a target is `control`, `*` (every instance), \
     `service` or `service/*` (all its instances), `service/N`, or `zone:NAME` (every instance in a zone)";

impl Fleet {
    /// Node ids `target` names, as a half-open range.
    // A list of node ranges, often of one: not a `Vec` meant to hold a range's values.
    #[allow(clippy::single_range_in_vec_init)]
    fn resolve(&self, target: &str) -> Result<Vec<Range<u32>>, String> {
        if target == "control" {
            return Ok(vec![0..1]);
        }
        if target == "*" {
            return Ok(vec![1..self.instances + 1]);
        }
        if let Some(zone) = target.strip_prefix("zone:") {
            return self.zone(zone).ok_or_else(|| {
                format!(
                    "no instance is in zone `{zone}` (target `{target}`); known zones: {}",
                    self.known_zones()
                )
            });
        }
        let (service, index) = match target.split_once('/') {
            Some((service, index)) => (service, Some(index)),
            None => (target, None),
        };
        if service.is_empty() {
            return Err(format!("target `{target}` names no service; {TARGET_SYNTAX}"));
        }
        if service == "control" {
            return Err("`control` is a single node with no instances; write just `control`".to_string());
        }
        let Some(&s) = self.by_name.get(service) else {
            return Err(format!(
                "unknown service `{service}` in target `{target}`; known services: {}",
                self.known_services()
            ));
        };
        let (name, first, count) = &self.services[s];
        match index {
            None | Some("*") => Ok(vec![*first..*first + *count]),
            Some(index) => {
                let parsed =
                    if !index.is_empty() && index.len() <= 10 && index.bytes().all(|b| b.is_ascii_digit()) {
                        index.parse::<u64>().ok()
                    } else {
                        None
                    };
                let Some(i) = parsed else {
                    return Err(format!(
                        "invalid instance `{index}` in target `{target}`: expected a number or `*`"
                    ));
                };
                if i >= u64::from(*count) {
                    let range = if *count == 1 {
                        format!("1 instance (`{name}/0`)")
                    } else {
                        format!("{count} instances (`{name}/0` to `{name}/{}`)", count - 1)
                    };
                    return Err(format!("`{target}` is out of range: service `{name}` has {range}"));
                }
                // i < count ≤ MAX_SERVICE_INSTANCES, so it fits a u32.
                let node = first + i as u32;
                Ok(vec![node..node + 1])
            }
        }
    }

    /// Nodes of the instances in `zone`, one range each; `None` if none is.
    fn zone(&self, zone: &str) -> Option<Vec<Range<u32>>> {
        let mut nodes = Vec::new();
        for (s, zones) in self.zones.iter().enumerate() {
            let (_, first, count) = &self.services[s];
            if zones.is_empty() {
                continue;
            }
            for i in 0..*count {
                if zones[i as usize % zones.len()] == zone {
                    nodes.push(first + i..first + i + 1);
                }
            }
        }
        (!nodes.is_empty()).then_some(nodes)
    }

    fn known_zones(&self) -> String {
        let mut known: Vec<&str> = self.zones.iter().flatten().map(String::as_str).collect();
        known.sort_unstable();
        known.dedup();
        if known.is_empty() { "none (give services `zones`)".to_string() } else { list(&known) }
    }

    fn known_services(&self) -> String {
        const SHOWN: usize = 8;
        let names: Vec<&str> = self.services.iter().take(SHOWN).map(|(n, _, _)| n.as_str()).collect();
        let mut text = list(&names);
        if self.services.len() > SHOWN {
            text.push_str(&format!(" and {} more", self.services.len() - SHOWN));
        }
        text
    }

    /// Display name of a node, for messages.
    fn node_name(&self, node: u32) -> String {
        if node == 0 {
            return "control".to_string();
        }
        for (name, first, count) in &self.services {
            if (*first..first + count).contains(&node) {
                return format!("{name}/{}", node - first);
            }
        }
        format!("node {node}")
    }
}

fn validate_services(
    source: &str,
    lines: &Lines<'_>,
    raw: &[RawService],
    policy_names: Option<&BTreeSet<&str>>,
) -> Checked<(Vec<Service>, Fleet)> {
    let mut services = Vec::with_capacity(raw.len());
    let mut fleet = Fleet { services: Vec::new(), by_name: BTreeMap::new(), instances: 0, zones: Vec::new() };
    let mut first_span: BTreeMap<&str, usize> = BTreeMap::new();
    for service in raw {
        let name = service.name.get_ref().as_str();
        let name_span = service.name.span();
        let mut chars = name.chars();
        let valid_start = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !(valid_start && valid_rest) {
            return Err(Diag::new(
                name_span,
                format!(
                    "invalid service name `{name}`: use lowercase letters, digits, `_` and `-`, \
                     starting with a letter or a digit"
                ),
            ));
        }
        // The registry's own rule, with the settings the run's catalog
        // uses: what it would refuse at boot is refused here.
        if let Err(e) = validate_service_name(name, &registry_config(1, 1)) {
            return Err(Diag::new(name_span, format!("invalid service name `{name}`: {e}")));
        }
        if name == "control" {
            return Err(Diag::new(
                name_span,
                "`control` is the name of the control node; choose another service name",
            ));
        }
        if let Some(&first) = first_span.get(name) {
            let line = lines.line(first);
            return Err(Diag::new(
                name_span,
                format!("duplicate service name `{name}` (first defined on line {line})"),
            ));
        }
        first_span.insert(name, name_span.start);

        let instances = *service.instances.get_ref();
        let running = match u32::try_from(instances) {
            Ok(n) if (1..=MAX_SERVICE_INSTANCES).contains(&n) => n,
            _ => {
                return Err(Diag::new(
                    service.instances.span(),
                    format!("`instances` must be between 1 and {MAX_SERVICE_INSTANCES}, got {instances}"),
                ));
            }
        };
        // Standby slots follow the running instances: they have node
        // numbers (targets may name them) but run only once scaled out.
        let count = match &service.max_instances {
            None => running,
            Some(max) => match u32::try_from(*max.get_ref()) {
                Ok(n) if (running..=MAX_SERVICE_INSTANCES).contains(&n) => n,
                _ => {
                    return Err(Diag::new(
                        max.span(),
                        format!(
                            "`max_instances` must be between `instances` ({running}) and \
                             {MAX_SERVICE_INSTANCES}, got {}",
                            max.get_ref()
                        ),
                    ));
                }
            },
        };
        // Both terms are at most MAX_TOTAL_INSTANCES here: no overflow.
        if fleet.instances + count > MAX_TOTAL_INSTANCES {
            let span = service.max_instances.as_ref().map_or(service.instances.span(), Spanned::span);
            return Err(Diag::new(
                span,
                format!(
                    "too many instances: this service brings the fleet to {}, \
                     more than the limit of {MAX_TOTAL_INSTANCES}",
                    fleet.instances + count
                ),
            ));
        }

        let heartbeat = match &service.heartbeat {
            None => HeartbeatConfig::default(),
            Some(heartbeat) => validate_heartbeat(heartbeat, &name_span)?,
        };

        fleet.by_name.insert(name.to_string(), fleet.services.len());
        fleet.services.push((name.to_string(), fleet.instances + 1, count));
        fleet.instances += count;
        let service_time = match &service.service_time {
            None => DEFAULT_SERVICE_TIME,
            Some(latency) => validate_latency(source, latency)?,
        };
        let zones = match &service.zones {
            None => Vec::new(),
            Some(zones) => {
                let list = zones.get_ref();
                if list.is_empty() || list.len() > MAX_ZONES {
                    return Err(Diag::new(
                        zones.span(),
                        format!("`zones` must list 1 to {MAX_ZONES} zones, got {}", list.len()),
                    ));
                }
                let mut seen = BTreeMap::new();
                for z in list {
                    let name = z.get_ref();
                    let ok = !name.is_empty()
                        && name.len() <= 64
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if !ok {
                        return Err(Diag::new(
                            z.span(),
                            format!("invalid zone name `{name}`: use 1 to 64 letters, digits, `-` and `_`"),
                        ));
                    }
                    if let Err(e) = validate_zone(name, &registry_config(1, 1)) {
                        return Err(Diag::new(z.span(), format!("invalid zone name `{name}`: {e}")));
                    }
                    if seen.insert(name.clone(), ()).is_some() {
                        return Err(Diag::new(z.span(), format!("zone `{name}` is listed twice")));
                    }
                }
                list.iter().map(|z| z.get_ref().clone()).collect()
            }
        };
        let health = match &service.health {
            None => None,
            Some(health) => Some(validate_health(health)?),
        };
        let capacity = match &service.capacity {
            None => None,
            Some(c) if (1..=1_000_000).contains(c.get_ref()) => Some(*c.get_ref() as u32),
            Some(c) => {
                return Err(Diag::new(
                    c.span(),
                    format!("`capacity` must be between 1 and 1000000 requests, got {}", c.get_ref()),
                ));
            }
        };
        let cores = match &service.cores {
            None => None,
            Some(c) if (1..=MAX_CORES).contains(c.get_ref()) => Some(*c.get_ref() as u32),
            Some(c) => {
                return Err(Diag::new(
                    c.span(),
                    format!("`cores` must be between 1 and {MAX_CORES}, got {}", c.get_ref()),
                ));
            }
        };
        let policy = match (&service.policy, policy_names) {
            (None, _) => None,
            (Some(p), None) => {
                return Err(Diag::new(
                    p.span(),
                    format!(
                        "`policy` names a recovery policy, but there is no `[recovery]` table: \
                         add one with `[recovery.policies.{}]`",
                        p.get_ref()
                    ),
                ));
            }
            (Some(p), Some(names)) if !names.contains(p.get_ref().as_str()) => {
                let known = if names.is_empty() {
                    "none (define one with `[recovery.policies.NAME]`)".to_string()
                } else {
                    list_some(&names.iter().copied().collect::<Vec<_>>())
                };
                return Err(Diag::new(
                    p.span(),
                    format!("unknown recovery policy `{}`; known policies: {known}", p.get_ref()),
                ));
            }
            (Some(p), Some(_)) => Some(p.get_ref().clone()),
        };
        fleet.zones.push(zones.clone());
        services.push(Service {
            name: name.to_string(),
            instances: count,
            heartbeat,
            service_time,
            health,
            zones,
            capacity,
            standby: count - running,
            cores,
            policy,
            depends_on: Vec::new(),
            calls_per_request: Vec::new(),
            call_timeout: positive("call_timeout", &service.call_timeout)?,
        });
    }
    // Dependencies may name services further down the file.
    for (s, service) in raw.iter().enumerate() {
        let Some(list) = &service.depends_on else { continue };
        let mut depends_on = Vec::new();
        let mut seen = BTreeSet::new();
        for dependency in list.get_ref() {
            let name = dependency.get_ref().as_str();
            let Some(&d) = fleet.by_name.get(name) else {
                return Err(Diag::new(
                    dependency.span(),
                    format!(
                        "unknown service `{name}` in `depends_on`; known services: {}",
                        fleet.known_services()
                    ),
                ));
            };
            if d == s {
                return Err(Diag::new(
                    dependency.span(),
                    format!("service `{name}` cannot depend on itself"),
                ));
            }
            if !seen.insert(d) {
                return Err(Diag::new(
                    dependency.span(),
                    format!("`{name}` is listed twice in `depends_on`"),
                ));
            }
            depends_on.push(d);
        }
        services[s].calls_per_request = vec![1.0; depends_on.len()];
        services[s].depends_on = depends_on;
    }
    // Fan-out ratios, per edge `depends_on` declares.
    for (s, service) in raw.iter().enumerate() {
        let Some(calls) = &service.calls else { continue };
        for (name, ratio) in calls.get_ref() {
            let key = name.get_ref().as_str();
            let edge =
                fleet.by_name.get(key).and_then(|d| services[s].depends_on.iter().position(|e| e == d));
            let Some(edge) = edge else {
                let listed: Vec<&str> =
                    services[s].depends_on.iter().map(|&d| services[d].name.as_str()).collect();
                let known = if listed.is_empty() {
                    "it has no `depends_on`".to_string()
                } else {
                    format!("it depends on {}", list_some(&listed))
                };
                return Err(Diag::new(
                    name.span(),
                    format!("`calls` names `{key}`, which is not in this service's `depends_on`; {known}"),
                ));
            };
            let r = ratio.get_ref().0;
            if !(r > 0.0 && r <= MAX_CALLS_PER_REQUEST) {
                return Err(Diag::new(
                    ratio.span(),
                    format!(
                        "`calls.{key}` is the mean number of calls per request and must be more than 0 \
                         and at most {MAX_CALLS_PER_REQUEST}, got {r}"
                    ),
                ));
            }
            services[s].calls_per_request[edge] = r;
        }
    }
    check_acyclic(raw, &services)?;
    Ok((services, fleet))
}

/// The dependency graph has no cycle: recovery repairs a root cause
/// first, and in a cycle there is none. A cycle is reported at the
/// `depends_on` entry that closes it, and named in full.
fn check_acyclic(raw: &[RawService], services: &[Service]) -> Checked<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        /// On the path being explored, at this depth.
        OnPath(usize),
        Done,
    }
    let mut mark = vec![Mark::New; services.len()];
    // The path from the root: (service, index of its next edge). Its
    // length is bounded by the number of services, and every service is
    // pushed at most once over the whole search.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in 0..services.len() {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::OnPath(0);
        path.push((root, 0));
        while let Some(top) = path.last_mut() {
            let (s, edge) = *top;
            let Some(&d) = services[s].depends_on.get(edge) else {
                mark[s] = Mark::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            match mark[d] {
                Mark::Done => {}
                Mark::New => {
                    mark[d] = Mark::OnPath(path.len());
                    path.push((d, 0));
                }
                Mark::OnPath(depth) => {
                    let mut names: Vec<&str> =
                        path[depth..].iter().map(|&(s, _)| services[s].name.as_str()).collect();
                    names.push(services[d].name.as_str());
                    let cycle: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                    // The entry exists: `edge` indexes the list it came from.
                    let span = raw[s]
                        .depends_on
                        .as_ref()
                        .and_then(|l| l.get_ref().get(edge))
                        .map_or(raw[s].name.span(), Spanned::span);
                    return Err(Diag::new(
                        span,
                        format!(
                            "`depends_on` makes a cycle: {}; recovery repairs dependencies first, \
                             and a cycle has no first",
                            cycle.join(" -> ")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Largest `failure_threshold` / `success_threshold` of a health table.
const MAX_HEALTH_THRESHOLD: i64 = 100;

/// A service's `health` table: one liveness probe and one readiness probe
/// of the same endpoint, at the same interval. Readiness carries the
/// latency and error-rate rules (a slow or erroring instance leaves
/// rotation); liveness only asks "does it answer at all" (a hung or
/// crashed instance needs recovery).
fn validate_health(raw: &Spanned<RawHealth>) -> Checked<InstanceHealthConfig> {
    let h = raw.get_ref();
    let interval = h.interval.as_ref().map_or(DEFAULT_PROBE_INTERVAL, |d| d.get_ref().0);
    if interval.is_zero() {
        let span = h.interval.as_ref().map_or(raw.span(), Spanned::span);
        return Err(Diag::new(span, "health `interval` must be greater than zero"));
    }
    let timeout = h.timeout.as_ref().map_or(interval.min(DEFAULT_PROBE_TIMEOUT), |d| d.get_ref().0);
    if timeout.is_zero() || timeout > interval {
        let span = h.timeout.as_ref().map_or(raw.span(), Spanned::span);
        return Err(Diag::new(
            span,
            format!(
                "health `timeout` ({}) must be more than zero and at most `interval` ({})",
                show(timeout),
                show(interval)
            ),
        ));
    }
    let threshold = |v: &Option<Spanned<i64>>, default: u32, key: &str| -> Checked<u32> {
        match v {
            None => Ok(default),
            Some(t) if (1..=MAX_HEALTH_THRESHOLD).contains(t.get_ref()) => Ok(*t.get_ref() as u32),
            Some(t) => Err(Diag::new(
                t.span(),
                format!("`{key}` must be between 1 and {MAX_HEALTH_THRESHOLD}, got {}", t.get_ref()),
            )),
        }
    };
    let failure_threshold = threshold(&h.failure_threshold, DEFAULT_FAILURE_THRESHOLD, "failure_threshold")?;
    let success_threshold = threshold(&h.success_threshold, DEFAULT_SUCCESS_THRESHOLD, "success_threshold")?;
    let latency = match &h.latency_p99 {
        None => None,
        Some(d) if d.get_ref().0.is_zero() => {
            return Err(Diag::new(d.span(), "`latency_p99` must be greater than zero"));
        }
        Some(d) => Some(LatencyRule::new(d.get_ref().0)),
    };
    let latency = match (&h.latency_window, latency) {
        (None, rule) => rule,
        (Some(w), None) => {
            return Err(Diag::new(
                w.span(),
                "`latency_window` needs `latency_p99`: it is that rule's window",
            ));
        }
        (Some(w), Some(rule)) => {
            let max = i64::from(vigil_core::health::MAX_WINDOW_SAMPLES);
            if !(1..=max).contains(w.get_ref()) {
                return Err(Diag::new(
                    w.span(),
                    format!("`latency_window` must be between 1 and {max} probes, got {}", w.get_ref()),
                ));
            }
            let samples = *w.get_ref() as u16;
            Some(LatencyRule { window_samples: samples, min_samples: rule.min_samples.min(samples), ..rule })
        }
    };
    let error_rate = match &h.error_rate {
        None => None,
        Some(_) => {
            let share = probability("error_rate", &h.error_rate, 0.0)?;
            Some(ErrorRateRule {
                degraded_permille: (share * 1000.0).round() as u16,
                ..ErrorRateRule::default()
            })
        }
    };
    let liveness = ProbeCheck { interval, timeout, ..ProbeCheck::default() };
    let readiness = ProbeCheck { latency, error_rate, ..liveness };
    Ok(InstanceHealthConfig {
        checks: vec![
            CheckConfig::probe_with(ProbeKind::Liveness, liveness)
                .with_thresholds(failure_threshold, success_threshold),
            CheckConfig::probe_with(ProbeKind::Readiness, readiness)
                .with_thresholds(failure_threshold, success_threshold),
        ],
        flap: h.flap.unwrap_or(true).then(FlapConfig::default),
    })
}

fn validate_heartbeat(raw: &RawHeartbeat, service_span: &Range<usize>) -> Checked<HeartbeatConfig> {
    let default = HeartbeatConfig::default();
    let value = |d: &Option<Spanned<Dur>>, fallback: Duration| d.as_ref().map_or(fallback, |d| d.get_ref().0);
    let interval = value(&raw.interval, default.interval);
    let suspect_after = value(&raw.suspect_after, default.suspect_after);
    let dead_after = value(&raw.dead_after, default.dead_after);
    let describe = |d: &Option<Spanned<Dur>>, v: Duration| match d {
        Some(_) => show(v),
        None => format!("{}, the default", show(v)),
    };
    // The key to blame: the first given of `keys`. A broken rule always
    // involves a given key (the defaults keep every rule), so the service
    // name is only a fallback that cannot happen.
    let blame = |keys: [&Option<Spanned<Dur>>; 2]| {
        keys.iter().find_map(|k| k.as_ref().map(Spanned::span)).unwrap_or_else(|| service_span.clone())
    };
    if interval.is_zero() {
        return Err(Diag::new(blame([&raw.interval, &raw.interval]), "`interval` must be greater than zero"));
    }
    if suspect_after <= interval {
        return Err(Diag::new(
            blame([&raw.suspect_after, &raw.interval]),
            format!(
                "`suspect_after` ({}) must be greater than `interval` ({})",
                describe(&raw.suspect_after, suspect_after),
                describe(&raw.interval, interval)
            ),
        ));
    }
    if dead_after < suspect_after {
        return Err(Diag::new(
            blame([&raw.dead_after, &raw.suspect_after]),
            format!(
                "`dead_after` ({}) must be at least `suspect_after` ({})",
                describe(&raw.dead_after, dead_after),
                describe(&raw.suspect_after, suspect_after)
            ),
        ));
    }
    Ok(HeartbeatConfig { interval, suspect_after, dead_after })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Crash,
    Restart,
    Pause,
    Resume,
    Partition,
    Heal,
    ClockSkew,
    Hang,
    Slow,
    Errors,
    Flap,
    HostCrash,
    ZoneCrash,
    MemoryLeak,
    Cpu,
    DiskFull,
    CrashLoop,
    Network,
    Latency,
    Loss,
    Duplicate,
    MonitorPartition,
    Forge,
}

impl Kind {
    const ALL: [(&'static str, Kind); 23] = [
        ("crash", Kind::Crash),
        ("restart", Kind::Restart),
        ("pause", Kind::Pause),
        ("resume", Kind::Resume),
        ("partition", Kind::Partition),
        ("heal", Kind::Heal),
        ("clock_skew", Kind::ClockSkew),
        ("hang", Kind::Hang),
        ("slow", Kind::Slow),
        ("errors", Kind::Errors),
        ("flap", Kind::Flap),
        ("host_crash", Kind::HostCrash),
        ("zone_crash", Kind::ZoneCrash),
        ("memory_leak", Kind::MemoryLeak),
        ("cpu", Kind::Cpu),
        ("disk_full", Kind::DiskFull),
        ("crash_loop", Kind::CrashLoop),
        ("network", Kind::Network),
        ("latency", Kind::Latency),
        ("loss", Kind::Loss),
        ("duplicate", Kind::Duplicate),
        ("monitor_partition", Kind::MonitorPartition),
        ("forge", Kind::Forge),
    ];

    /// Keys of its own the kind takes besides `at` and `kind` (see also
    /// [`Kind::picks`] and [`Kind::repeats`]).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Crash | Kind::Pause | Kind::Hang | Kind::HostCrash | Kind::DiskFull => {
                &["target", "duration"]
            }
            Kind::Restart | Kind::Resume => &["target"],
            Kind::Partition => &["mode", "groups", "from", "to", "target", "duration"],
            Kind::Heal => &[],
            Kind::ClockSkew => &["target", "offset", "drift_ppm", "duration"],
            Kind::Slow | Kind::Latency => &["target", "latency", "duration"],
            Kind::Errors | Kind::Loss | Kind::Duplicate => &["target", "rate", "duration"],
            Kind::Flap => &["target", "period", "duration"],
            Kind::ZoneCrash => &["zone", "duration"],
            Kind::MemoryLeak => &["target", "exhausts_after", "duration"],
            Kind::Cpu => &["target", "factor", "duration"],
            Kind::CrashLoop => &["target", "after", "survives_replace", "duration"],
            Kind::Network => &["target", "latency", "loss", "duplicate", "duration"],
            Kind::MonitorPartition => &["duration"],
            Kind::Forge => &["target", "rate", "mode", "duration"],
        }
    }

    /// Whether it takes `count` and `percent`: it has one target list to
    /// pick from (a partition only in mode `isolate`, checked there).
    fn picks(self) -> bool {
        !matches!(self, Kind::Heal | Kind::MonitorPartition)
    }

    /// Whether it takes `every` and `within`: it is not a point action
    /// that undoes another fault.
    fn repeats(self) -> bool {
        !matches!(self, Kind::Restart | Kind::Resume | Kind::Heal)
    }

    /// Whether it acts on service instances only (their application or
    /// host), so `control` is no target.
    fn instances_only(self) -> bool {
        matches!(
            self,
            Kind::Hang
                | Kind::Slow
                | Kind::Errors
                | Kind::Flap
                | Kind::HostCrash
                | Kind::MemoryLeak
                | Kind::Cpu
                | Kind::DiskFull
                | Kind::CrashLoop
                | Kind::Forge
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Symmetric,
    OneWay,
    Isolate,
}

/// Resolves fault targets, counting nodes against [`MAX_FAULT_NODES`].
struct Resolver<'a> {
    fleet: &'a Fleet,
    nodes_named: &'a mut usize,
}

impl Resolver<'_> {
    /// Each target string of `targets` with its span.
    fn strings(targets: &Spanned<Targets>) -> Vec<(&str, Range<usize>)> {
        match targets.get_ref() {
            Targets::One(text) => vec![(text.as_str(), targets.span())],
            Targets::Many(all) => all.iter().map(|t| (t.get_ref().as_str(), t.span())).collect(),
        }
    }

    /// Resolve one target string to its node range, counting its nodes.
    fn one(&mut self, text: &str, span: &Range<usize>) -> Checked<Vec<u32>> {
        let ranges = self.fleet.resolve(text).map_err(|m| Diag::new(span.clone(), m))?;
        self.count(ranges, span)
    }

    /// The nodes of `ranges`, counted against the budget; `span` is blamed
    /// when it runs out.
    fn count(&mut self, ranges: Vec<Range<u32>>, span: &Range<usize>) -> Checked<Vec<u32>> {
        *self.nodes_named += ranges.iter().map(ExactSizeIterator::len).sum::<usize>();
        if *self.nodes_named > MAX_FAULT_NODES {
            return Err(Diag::new(
                span.clone(),
                format!(
                    "faults name more than {MAX_FAULT_NODES} nodes in total \
                     (counting every node of `*` and `service` targets)"
                ),
            ));
        }
        Ok(ranges.into_iter().flatten().collect())
    }

    /// Resolve a target list to sorted, deduplicated nodes; `key` names it
    /// in messages.
    fn nodes(&mut self, key: &str, targets: &Spanned<Targets>) -> Checked<Vec<NodeId>> {
        let strings = Self::strings(targets);
        if strings.is_empty() {
            return Err(Diag::new(targets.span(), format!("`{key}` is empty; name at least one node")));
        }
        let mut nodes = Vec::new();
        for (text, span) in &strings {
            nodes.extend(self.one(text, span)?.into_iter().map(NodeId));
        }
        nodes.sort_unstable();
        nodes.dedup();
        Ok(nodes)
    }
}

fn validate_fault(
    source: &str,
    lines: &Lines<'_>,
    raw: &RawFault,
    run: Duration,
    fleet: &Fleet,
    nodes_named: &mut usize,
) -> Checked<Fault> {
    let kind_name = raw.kind.get_ref().as_str();
    let Some(&(_, kind)) = Kind::ALL.iter().find(|(name, _)| *name == kind_name) else {
        let names: Vec<&str> = Kind::ALL.iter().map(|(n, _)| *n).collect();
        return Err(Diag::new(
            raw.kind.span(),
            format!("unknown fault kind `{kind_name}`; expected one of {}", list(&names)),
        ));
    };

    let at = raw.at.get_ref().0;
    if at >= run {
        return Err(Diag::new(
            raw.at.span(),
            format!(
                "fault `at` ({}) must be before the end of the run (`duration` = {})",
                show(at),
                show(run)
            ),
        ));
    }

    let present = [
        ("duration", raw.duration.as_ref().map(Spanned::span)),
        ("target", raw.target.as_ref().map(Spanned::span)),
        ("mode", raw.mode.as_ref().map(Spanned::span)),
        ("groups", raw.groups.as_ref().map(Spanned::span)),
        ("from", raw.from.as_ref().map(Spanned::span)),
        ("to", raw.to.as_ref().map(Spanned::span)),
        ("offset", raw.offset.as_ref().map(Spanned::span)),
        ("drift_ppm", raw.drift_ppm.as_ref().map(Spanned::span)),
        ("latency", raw.latency.as_ref().map(Spanned::span)),
        ("rate", raw.rate.as_ref().map(Spanned::span)),
        ("period", raw.period.as_ref().map(Spanned::span)),
        ("zone", raw.zone.as_ref().map(Spanned::span)),
        ("exhausts_after", raw.exhausts_after.as_ref().map(Spanned::span)),
        ("factor", raw.factor.as_ref().map(Spanned::span)),
        ("after", raw.after.as_ref().map(Spanned::span)),
        ("survives_replace", raw.survives_replace.as_ref().map(Spanned::span)),
        ("loss", raw.loss.as_ref().map(Spanned::span)),
        ("duplicate", raw.duplicate.as_ref().map(Spanned::span)),
        ("count", raw.count.as_ref().map(Spanned::span)),
        ("percent", raw.percent.as_ref().map(Spanned::span)),
        ("every", raw.every.as_ref().map(Spanned::span)),
        ("within", raw.within.as_ref().map(Spanned::span)),
    ];
    let mut allowed: Vec<&str> = kind.fields().to_vec();
    if kind.picks() {
        allowed.extend(["count", "percent"]);
    }
    if kind.repeats() {
        allowed.extend(["every", "within"]);
    }
    let stray = present
        .iter()
        .filter_map(|(field, span)| span.as_ref().map(|s| (*field, s)))
        .filter(|(field, _)| !allowed.contains(field))
        .min_by_key(|(_, span)| span.start);
    if let Some((field, span)) = stray {
        let takes = if allowed.is_empty() {
            "it takes only `at` and `kind`".to_string()
        } else {
            let mut all = vec!["at", "kind"];
            all.extend_from_slice(&allowed);
            format!("it takes {}", list(&all))
        };
        return Err(Diag::new(
            key_span(source, span),
            format!("`{field}` is not allowed for fault kind `{kind_name}`; {takes}"),
        ));
    }

    let duration = match &raw.duration {
        None => None,
        Some(d) if d.get_ref().0.is_zero() => {
            return Err(Diag::new(d.span(), "fault `duration` must be greater than zero"));
        }
        Some(d) => Some(d.get_ref().0),
    };

    let mut resolver = Resolver { fleet, nodes_named };
    let needs = |key: &str| Diag::new(raw.kind.span(), format!("fault kind `{kind_name}` needs `{key}`"));
    let target = |resolver: &mut Resolver<'_>| -> Checked<Vec<NodeId>> {
        let targets = match &raw.target {
            None => return Err(needs("target")),
            Some(t) => resolver.nodes("target", t)?,
        };
        if kind.instances_only() && targets.first() == Some(&Scenario::CONTROL) {
            let span = raw.target.as_ref().map_or(raw.kind.span(), Spanned::span);
            let why = match kind {
                Kind::HostCrash | Kind::DiskFull => {
                    "acts on the hosts of service instances, which recovery can replace; \
                     `control` is not one (crash it with kind `crash`)"
                }
                Kind::Forge => "forges the heartbeats of service instances; `control` sends none",
                _ => "acts on service instances; `control` runs no application",
            };
            return Err(Diag::new(span, format!("fault kind `{kind_name}` {why}")));
        }
        Ok(targets)
    };
    // A duration that must be given and more than zero.
    let required = |key: &str, value: &Option<Spanned<Dur>>| -> Checked<Duration> {
        match value {
            None => Err(needs(key)),
            Some(d) if d.get_ref().0.is_zero() => {
                Err(Diag::new(d.span(), format!("`{key}` must be greater than zero")))
            }
            Some(d) => Ok(d.get_ref().0),
        }
    };

    let action = match kind {
        Kind::Crash => FaultAction::Crash(target(&mut resolver)?),
        Kind::Restart => FaultAction::Restart(target(&mut resolver)?),
        Kind::Pause => FaultAction::Pause(target(&mut resolver)?),
        Kind::Resume => FaultAction::Resume(target(&mut resolver)?),
        Kind::Heal => FaultAction::Heal,
        Kind::ClockSkew => {
            let targets = target(&mut resolver)?;
            if raw.offset.is_none() && raw.drift_ppm.is_none() {
                return Err(Diag::new(
                    raw.kind.span(),
                    "fault kind `clock_skew` needs `offset`, `drift_ppm` or both",
                ));
            }
            let offset_ns = raw.offset.as_ref().map_or(0, |o| o.get_ref().0);
            let drift_ppm = match &raw.drift_ppm {
                None => 0,
                Some(d) if d.get_ref().unsigned_abs() > MAX_DRIFT_PPM.unsigned_abs() => {
                    return Err(Diag::new(
                        d.span(),
                        format!(
                            "`drift_ppm` must be between -{MAX_DRIFT_PPM} and {MAX_DRIFT_PPM}, got {}",
                            d.get_ref()
                        ),
                    ));
                }
                Some(d) => *d.get_ref(),
            };
            FaultAction::ClockSkew { targets, offset_ns, drift_ppm }
        }
        Kind::Partition => FaultAction::Partition(validate_partition(source, raw, &mut resolver)?),
        Kind::Hang => FaultAction::Hang(target(&mut resolver)?),
        Kind::Slow => {
            let targets = target(&mut resolver)?;
            let Some(extra) = &raw.latency else { return Err(needs("latency")) };
            FaultAction::Slow { targets, extra: extra.get_ref().0 }
        }
        Kind::Errors => {
            let targets = target(&mut resolver)?;
            if raw.rate.is_none() {
                return Err(needs("rate"));
            }
            FaultAction::Errors { targets, rate: probability("rate", &raw.rate, 1.0)? }
        }
        Kind::Flap => {
            let targets = target(&mut resolver)?;
            let Some(period) = &raw.period else { return Err(needs("period")) };
            if period.get_ref().0.is_zero() {
                return Err(Diag::new(period.span(), "flap `period` must be greater than zero"));
            }
            FaultAction::Flap { targets, period: period.get_ref().0 }
        }
        Kind::HostCrash => FaultAction::HostCrash(target(&mut resolver)?),
        Kind::DiskFull => FaultAction::DiskFull(target(&mut resolver)?),
        Kind::ZoneCrash => {
            let Some(zone) = &raw.zone else { return Err(needs("zone")) };
            let Some(ranges) = fleet.zone(zone.get_ref()) else {
                return Err(Diag::new(
                    zone.span(),
                    format!(
                        "no instance is in zone `{}`; known zones: {}",
                        zone.get_ref(),
                        fleet.known_zones()
                    ),
                ));
            };
            let nodes = resolver.count(ranges, &zone.span())?;
            FaultAction::HostCrash(nodes.into_iter().map(NodeId).collect())
        }
        Kind::MemoryLeak => {
            let targets = target(&mut resolver)?;
            FaultAction::MemoryLeak {
                targets,
                exhausts_after: required("exhausts_after", &raw.exhausts_after)?,
            }
        }
        Kind::Cpu => {
            let targets = target(&mut resolver)?;
            let Some(factor) = &raw.factor else { return Err(needs("factor")) };
            let value = factor.get_ref().0;
            // Also rejects NaN.
            if !(1.0..=MAX_CPU_FACTOR).contains(&value) {
                return Err(Diag::new(
                    factor.span(),
                    format!("`factor` multiplies the CPU cost: from 1 to {MAX_CPU_FACTOR}, got {value}"),
                ));
            }
            FaultAction::Cpu { targets, factor: value }
        }
        Kind::CrashLoop => {
            let targets = target(&mut resolver)?;
            FaultAction::CrashLoop {
                targets,
                after: required("after", &raw.after)?,
                survives_replace: raw.survives_replace.as_ref().is_some_and(|s| *s.get_ref()),
            }
        }
        Kind::Network | Kind::Latency | Kind::Loss | Kind::Duplicate => {
            let targets = target(&mut resolver)?;
            let (latency, loss, duplicate) = match kind {
                Kind::Network => {
                    if raw.latency.is_none() && raw.loss.is_none() && raw.duplicate.is_none() {
                        return Err(Diag::new(
                            raw.kind.span(),
                            "fault kind `network` needs at least one of `latency`, `loss` and `duplicate`",
                        ));
                    }
                    let latency = raw.latency.as_ref().map_or(Duration::ZERO, |l| l.get_ref().0);
                    let loss = probability("loss", &raw.loss, 0.0)?;
                    let duplicate = probability("duplicate", &raw.duplicate, 0.0)?;
                    if latency.is_zero() && loss == 0.0 && duplicate == 0.0 {
                        return Err(Diag::new(
                            raw.kind.span(),
                            "this `network` fault does nothing: give a `latency` above zero, \
                             or a `loss` or `duplicate` above 0",
                        ));
                    }
                    (latency, loss, duplicate)
                }
                Kind::Latency => (required("latency", &raw.latency)?, 0.0, 0.0),
                _ => {
                    if raw.rate.is_none() {
                        return Err(needs("rate"));
                    }
                    let rate = probability("rate", &raw.rate, 0.0)?;
                    if rate == 0.0 {
                        let span = raw.rate.as_ref().map_or(raw.kind.span(), Spanned::span);
                        return Err(Diag::new(span, "`rate` must be greater than zero"));
                    }
                    if kind == Kind::Loss { (Duration::ZERO, rate, 0.0) } else { (Duration::ZERO, 0.0, rate) }
                }
            };
            FaultAction::Network { targets, latency, loss, duplicate }
        }
        Kind::Forge => {
            let targets = target(&mut resolver)?;
            let Some(rate) = &raw.rate else { return Err(needs("rate")) };
            let value = rate.get_ref().0;
            // Also rejects NaN.
            if !(value > 0.0 && value <= MAX_FORGE_RATE) {
                return Err(Diag::new(
                    rate.span(),
                    format!(
                        "`rate` is frames per second the attacker sends: above 0 and at most \
                         {MAX_FORGE_RATE}, got {value}"
                    ),
                ));
            }
            let mode = match &raw.mode {
                None => ForgeMode::default(),
                Some(mode) => {
                    let name = mode.get_ref().as_str();
                    let Some(&(m, _)) = ForgeMode::ALL.iter().find(|(_, n)| *n == name) else {
                        let names: Vec<&str> = ForgeMode::ALL.iter().map(|(_, n)| *n).collect();
                        return Err(Diag::new(
                            mode.span(),
                            format!("unknown forge mode `{name}`; expected {}", list(&names)),
                        ));
                    };
                    m
                }
            };
            // The attack is a window: it needs an end.
            required("duration", &raw.duration)?;
            FaultAction::Forge { targets, rate: value, mode }
        }
        Kind::MonitorPartition => {
            // The control node on one side, every instance (standby slots
            // included) on the other; the client is in neither group.
            let (control, instances) = (0..1, 1..fleet.instances + 1);
            let control = resolver.count(vec![control], &raw.kind.span())?;
            let instances = resolver.count(vec![instances], &raw.kind.span())?;
            FaultAction::Partition(Partition::Groups(vec![
                control.into_iter().map(NodeId).collect(),
                instances.into_iter().map(NodeId).collect(),
            ]))
        }
    };

    let pick = match (&raw.count, &raw.percent) {
        (Some(count), Some(percent)) => {
            let later = if count.span().start > percent.span().start { count.span() } else { percent.span() };
            return Err(Diag::new(
                key_span(source, &later),
                "`count` and `percent` both choose how many targets the fault hits; give one",
            ));
        }
        (Some(count), None) => match u32::try_from(*count.get_ref()) {
            Ok(n) if (1..=MAX_TOTAL_INSTANCES).contains(&n) => Pick::Count(n),
            _ => {
                return Err(Diag::new(
                    count.span(),
                    format!("`count` must be between 1 and {MAX_TOTAL_INSTANCES}, got {}", count.get_ref()),
                ));
            }
        },
        (None, Some(percent)) => Pick::Percent(percent.get_ref().0),
        (None, None) => Pick::All,
    };

    let within = match &raw.within {
        None => None,
        Some(w) if w.get_ref().0.is_zero() => {
            return Err(Diag::new(w.span(), "`within` must be greater than zero"));
        }
        Some(w) if at + w.get_ref().0 >= run => {
            return Err(Diag::new(
                w.span(),
                format!(
                    "`at` + `within` ({} + {}) must be before the end of the run (`duration` = {})",
                    show(at),
                    show(w.get_ref().0),
                    show(run)
                ),
            ));
        }
        Some(w) => Some(w.get_ref().0),
    };

    let every = match &raw.every {
        None => None,
        Some(e) => {
            let every = e.get_ref().0;
            if every.is_zero() {
                return Err(Diag::new(e.span(), "`every` must be greater than zero"));
            }
            // Occurrences must not overlap: each must end before the next
            // may begin, however late `within` starts it.
            // A crash without `duration` is a moment: the process (or
            // host) stays down until recovery brings it back, and the next
            // occurrence picks its targets afresh.
            let length = match duration {
                Some(length) => length,
                None if matches!(kind, Kind::Crash | Kind::HostCrash | Kind::ZoneCrash) => Duration::ZERO,
                None => {
                    return Err(Diag::new(
                        key_span(source, &e.span()),
                        "a fault repeated with `every` needs a `duration` shorter than `every`, \
                         so one occurrence ends before the next begins (only crashes may leave it out)",
                    ));
                }
            };
            let longest = length + within.unwrap_or(Duration::ZERO);
            if longest >= every {
                let what = match within {
                    None => format!("`duration` ({})", show(length)),
                    Some(w) => format!("`duration` + `within` ({} + {})", show(length), show(w)),
                };
                return Err(Diag::new(
                    e.span(),
                    format!(
                        "`every` ({}) must be longer than {what}, so one occurrence ends before the next begins",
                        show(every)
                    ),
                ));
            }
            // The occurrences that start before the run ends: `at`, `at +
            // every`, … Every duration is at most 30 days: no overflow.
            let occurrences = (run - at).as_nanos().div_ceil(every.as_nanos());
            if occurrences > u128::from(MAX_FAULT_OCCURRENCES) {
                return Err(Diag::new(
                    e.span(),
                    format!(
                        "`every` ({}) repeats the fault {occurrences} times before the run ends; \
                         at most {MAX_FAULT_OCCURRENCES} are allowed",
                        show(every)
                    ),
                ));
            }
            // The simulator gives each occurrence its own copy of the
            // targets: the repeats count against the node budget too.
            let nodes = action.node_lists().iter().map(|l| l.len() as u128).sum::<u128>();
            let total = (*resolver.nodes_named as u128).saturating_add(nodes * (occurrences - 1));
            if total > MAX_FAULT_NODES as u128 {
                return Err(Diag::new(
                    e.span(),
                    format!(
                        "faults name more than {MAX_FAULT_NODES} nodes in total: this one names {nodes} \
                         nodes {occurrences} times (each repeat counts)"
                    ),
                ));
            }
            // At most MAX_FAULT_NODES here.
            *resolver.nodes_named = total as usize;
            Some(every)
        }
    };

    Ok(Fault { at, duration, action, pick, every, within, line: lines.line(raw.kind.span().start) })
}

fn validate_partition(source: &str, raw: &RawFault, resolver: &mut Resolver<'_>) -> Checked<Partition> {
    const MODES: [(&str, Mode, &[&str]); 3] = [
        ("symmetric", Mode::Symmetric, &["groups"]),
        ("one_way", Mode::OneWay, &["from", "to"]),
        ("isolate", Mode::Isolate, &["target"]),
    ];
    let mode_name = match &raw.mode {
        Some(mode) => mode.get_ref().as_str(),
        None if raw.groups.is_some() => "symmetric",
        None => {
            return Err(Diag::new(
                raw.kind.span(),
                "fault kind `partition` needs `groups` (a symmetric partition), \
                 or `mode = \"one_way\"` with `from` and `to`, or `mode = \"isolate\"` with `target`",
            ));
        }
    };
    let Some(&(_, mode, fields)) = MODES.iter().find(|(name, _, _)| *name == mode_name) else {
        let span = raw.mode.as_ref().map_or(raw.kind.span(), Spanned::span);
        let names: Vec<&str> = MODES.iter().map(|(n, _, _)| *n).collect();
        return Err(Diag::new(
            span,
            format!("unknown partition mode `{mode_name}`; expected {}", list(&names)),
        ));
    };
    let present = [
        ("groups", raw.groups.as_ref().map(Spanned::span)),
        ("from", raw.from.as_ref().map(Spanned::span)),
        ("to", raw.to.as_ref().map(Spanned::span)),
        ("target", raw.target.as_ref().map(Spanned::span)),
    ];
    let stray = present
        .iter()
        .filter_map(|(field, span)| span.as_ref().map(|s| (*field, s)))
        .filter(|(field, _)| !fields.contains(field))
        .min_by_key(|(_, span)| span.start);
    if let Some((field, span)) = stray {
        return Err(Diag::new(
            key_span(source, span),
            format!("`{field}` is not allowed for partition mode `{mode_name}`; it takes {}", list(fields)),
        ));
    }
    if mode != Mode::Isolate {
        let picks = [
            ("count", raw.count.as_ref().map(Spanned::span)),
            ("percent", raw.percent.as_ref().map(Spanned::span)),
        ];
        if let Some((field, span)) = picks
            .iter()
            .filter_map(|(field, span)| span.as_ref().map(|s| (*field, s)))
            .min_by_key(|(_, span)| span.start)
        {
            return Err(Diag::new(
                key_span(source, span),
                format!(
                    "`{field}` picks targets from one list, and partition mode `{mode_name}` has several; \
                     it is allowed with mode `isolate`"
                ),
            ));
        }
    }
    let mode_span = raw.mode.as_ref().map_or(raw.kind.span(), Spanned::span);
    let needs =
        |key: &str| Diag::new(mode_span.clone(), format!("partition mode `{mode_name}` needs `{key}`"));
    Ok(match mode {
        Mode::Symmetric => {
            let groups = raw.groups.as_ref().ok_or_else(|| needs("groups"))?;
            Partition::Groups(validate_groups(groups, resolver)?)
        }
        Mode::OneWay => {
            let from = raw.from.as_ref().ok_or_else(|| needs("from"))?;
            let to = raw.to.as_ref().ok_or_else(|| needs("to"))?;
            Partition::OneWay { from: resolver.nodes("from", from)?, to: resolver.nodes("to", to)? }
        }
        Mode::Isolate => {
            let target = raw.target.as_ref().ok_or_else(|| needs("target"))?;
            Partition::Isolate(resolver.nodes("target", target)?)
        }
    })
}

fn validate_groups(
    groups: &Spanned<Vec<Spanned<Targets>>>,
    resolver: &mut Resolver<'_>,
) -> Checked<Vec<Vec<NodeId>>> {
    let list = groups.get_ref();
    if list.len() < 2 {
        return Err(Diag::new(
            groups.span(),
            format!("a symmetric partition needs at least two groups, found {}", list.len()),
        ));
    }
    // Owner group of each node seen so far, indexed by node id; dense
    // because the fleet is bounded by MAX_TOTAL_INSTANCES.
    let mut owner: Vec<Option<usize>> = vec![None; resolver.fleet.instances as usize + 1];
    let mut result = Vec::with_capacity(list.len());
    for (g, group) in list.iter().enumerate() {
        let strings = Resolver::strings(group);
        if strings.is_empty() {
            return Err(Diag::new(group.span(), format!("group {} is empty; name at least one node", g + 1)));
        }
        let mut nodes = Vec::new();
        for (text, span) in &strings {
            for node in resolver.one(text, span)? {
                let slot = &mut owner[node as usize];
                match *slot {
                    Some(other) if other != g => {
                        let name = resolver.fleet.node_name(node);
                        return Err(Diag::new(
                            span.clone(),
                            format!(
                                "`{name}` is in group {} and group {}; a node can be in only one group",
                                other + 1,
                                g + 1
                            ),
                        ));
                    }
                    _ => *slot = Some(g),
                }
                nodes.push(NodeId(node));
            }
        }
        nodes.sort_unstable();
        nodes.dedup();
        result.push(nodes);
    }
    Ok(result)
}
