//! A [`Scenario`] back to scenario TOML (format v1).
//!
//! [`to_toml`] writes text that [`super::parse`] reads back to an equal
//! scenario, except for each fault's `line` (the line of its `kind` in the
//! written text). Durations are written with units (`"30s"`, `"1500ms"`),
//! targets as node names (`control`, `checkout/0`, or `checkout/*` for a
//! whole service), and settings equal to their defaults are left out, so
//! a written file reads like a hand-written one.
//!
//! Not every scenario built in code has a file form: a health configuration
//! other than the liveness and readiness probe pair the file format builds,
//! a fault naming the client node, or a seed above 2^63 − 1 are
//! [`WriteError`]s.

use std::fmt::Write as _;

use vigil_core::health::{
    CheckConfig, CheckType, DEFAULT_FAILURE_THRESHOLD, DEFAULT_PROBE_TIMEOUT, DEFAULT_SUCCESS_THRESHOLD,
    ErrorRateRule, FlapConfig, InstanceHealthConfig, LatencyRule, ProbeCheck, ProbeKind,
};
use vigil_core::recovery::{
    BackoffConfig, CircuitConfig, DependencyConfig, Intensity, Ladder, Limits, PartitionConfig, Policy,
    RecoveryConfig, StormConfig, Strategy,
};
use vigil_core::{Duration, NodeId};

use super::load::{
    DEFAULT_MAX_EVENTS, DEFAULT_MAX_PENDING_EVENTS, DEFAULT_REPLACE_DELAY, DEFAULT_RESTART_DELAY,
    DEFAULT_SCALE_OUT_DELAY,
};
use super::model::{
    DEFAULT_SERVICE_TIME, Expectations, Fault, FaultAction, ForgeMode, HeartbeatConfig, LatencyModel, Load,
    LoadShape, NetworkConfig, Partition, Pick, Recovery, Scenario, Service,
};

/// Why a scenario has no file form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A service's health configuration is not one the file format builds.
    #[error("service `{service}`: its health checks have no file form ({why})")]
    Health {
        /// The service.
        service: String,
        /// What does not fit.
        why: String,
    },
    /// A fault names a node no target string can name (the client node, or
    /// one past the fleet).
    #[error("fault {index}: node {node} cannot be named in a target")]
    Target {
        /// Index of the fault.
        index: usize,
        /// The node.
        node: NodeId,
    },
    /// A fault has a target list no file can hold (empty, or a partition
    /// with fewer than two groups).
    #[error("fault {index}: {why}")]
    Fault {
        /// Index of the fault.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// The seed does not fit a TOML integer.
    #[error("seed {0} is above 2^63 - 1, the largest TOML integer")]
    Seed(u64),
    /// The load targets a service that does not exist.
    #[error("`[load]` targets service index {0}, which does not exist")]
    Load(usize),
    /// A service's slots or dependencies have no file form (no running
    /// instance, a dependency index past the fleet).
    #[error("service `{service}`: {why}")]
    Service {
        /// The service.
        service: String,
        /// What does not fit.
        why: String,
    },
    /// The recovery configuration's service list is not the one the
    /// fleet's `policy` and `depends_on` keys build.
    #[error("`[recovery]`: {0}")]
    Recovery(String),
}

/// The scenario as TOML that the loader reads back to an equal scenario
/// (faults' `line` aside).
pub fn to_toml(scenario: &Scenario) -> Result<String, WriteError> {
    // Destructured in full: a new field is a compile error here, not a
    // silently dropped setting.
    let Scenario {
        name,
        description,
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
    } = scenario;
    let mut s = String::new();
    let _ = writeln!(s, "name = {}", quote(name));
    if let Some(d) = description {
        let _ = writeln!(s, "description = {}", quote(d));
    }
    let _ = writeln!(s, "duration = {}", dur(*duration));
    let seed = i64::try_from(*seed).map_err(|_| WriteError::Seed(*seed))?;
    let _ = writeln!(s, "seed = {seed}");
    if *max_events != DEFAULT_MAX_EVENTS {
        let _ = writeln!(s, "max_events = {max_events}");
    }
    if *max_pending_events != DEFAULT_MAX_PENDING_EVENTS {
        let _ = writeln!(s, "max_pending_events = {max_pending_events}");
    }
    write_network(&mut s, network);
    for service in services {
        write_service(&mut s, services, service)?;
    }
    if let Some(load) = load {
        write_load(&mut s, scenario, load)?;
    }
    if let Some(recovery) = recovery {
        write_recovery(&mut s, services, recovery)?;
    }
    for (index, fault) in faults.iter().enumerate() {
        write_fault(&mut s, scenario, index, fault)?;
    }
    write_expect(&mut s, expect);
    Ok(s)
}

/// A duration with a unit: the largest of `h`, `m`, `s`, `ms`, `us`, `ns`
/// that divides it, or its parts (`1s250us`) when that would need more
/// digits than the loader takes in a row.
pub fn fmt_duration(d: Duration) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return "0s".to_string();
    }
    for (size, unit) in UNITS {
        if nanos % size == 0 && nanos / size < 10_000_000_000 {
            return format!("{}{unit}", nanos / size);
        }
    }
    let mut rest = nanos;
    let mut out = String::new();
    for (size, unit) in UNITS {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

fn dur(d: Duration) -> String {
    format!("\"{}\"", fmt_duration(d))
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04X}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A float TOML reads back to the same `f64` (Rust's shortest round-trip
/// form; `1.0`, `0.001`, `1e-7`).
fn float(v: f64) -> String {
    format!("{v:?}")
}

/// A share as the loader reads it back exactly: a percentage string
/// (`"99.9%"`) when one with at most 10 decimals does, else a number.
fn share(v: f64) -> String {
    for decimals in 0..=10 {
        let text = format!("{:.*}", decimals, v * 100.0);
        if text.parse::<f64>().is_ok_and(|p| p / 100.0 == v) {
            return format!("\"{text}%\"");
        }
    }
    float(v)
}

fn latency(model: &LatencyModel) -> String {
    match *model {
        LatencyModel::Fixed(value) => format!("{{ kind = \"fixed\", value = {} }}", dur(value)),
        LatencyModel::Uniform { min, max } => {
            format!("{{ kind = \"uniform\", min = {}, max = {} }}", dur(min), dur(max))
        }
        LatencyModel::Exponential { min, mean } => {
            format!("{{ kind = \"exponential\", min = {}, mean = {} }}", dur(min), dur(mean))
        }
        LatencyModel::Pareto { min, alpha, max } => format!(
            "{{ kind = \"pareto\", min = {}, alpha = {}, max = {} }}",
            dur(min),
            float(alpha),
            dur(max)
        ),
    }
}

fn write_network(s: &mut String, network: &NetworkConfig) {
    let NetworkConfig { latency: lat, loss, duplicate, reorder, reorder_delay, stability } = network;
    let default = NetworkConfig::default();
    if *network == default {
        return;
    }
    let _ = writeln!(s, "\n[network]");
    if *lat != default.latency {
        let _ = writeln!(s, "latency = {}", latency(lat));
    }
    for (key, value, default) in [
        ("loss", *loss, default.loss),
        ("duplicate", *duplicate, default.duplicate),
        ("reorder", *reorder, default.reorder),
    ] {
        if value != default {
            let _ = writeln!(s, "{key} = {}", float(value));
        }
    }
    if *reorder_delay != default.reorder_delay {
        let _ = writeln!(s, "reorder_delay = {}", dur(*reorder_delay));
    }
    if *stability != default.stability {
        let _ = writeln!(s, "stability = {}", dur(*stability));
    }
}

fn write_service(s: &mut String, services: &[Service], service: &Service) -> Result<(), WriteError> {
    let Service {
        name,
        instances,
        heartbeat,
        service_time,
        health,
        zones,
        capacity,
        standby,
        cores,
        policy,
        depends_on,
        calls_per_request,
        call_timeout,
    } = service;
    let fail = |why: &str| WriteError::Service { service: name.clone(), why: why.to_string() };
    // The file counts the running instances, and the slots in all.
    if standby >= instances {
        return Err(fail("every slot is a standby slot: the file needs at least one running instance"));
    }
    let _ = writeln!(s, "\n[[service]]");
    let _ = writeln!(s, "name = {}", quote(name));
    let _ = writeln!(s, "instances = {}", instances - standby);
    if *standby > 0 {
        let _ = writeln!(s, "max_instances = {instances}");
    }
    if *heartbeat != HeartbeatConfig::default() {
        let HeartbeatConfig { interval, suspect_after, dead_after } = *heartbeat;
        let _ = writeln!(
            s,
            "heartbeat = {{ interval = {}, suspect_after = {}, dead_after = {} }}",
            dur(interval),
            dur(suspect_after),
            dur(dead_after)
        );
    }
    if *service_time != DEFAULT_SERVICE_TIME {
        let _ = writeln!(s, "service_time = {}", latency(service_time));
    }
    if let Some(health) = health {
        let table = health_table(health)
            .map_err(|why| WriteError::Health { service: name.clone(), why: why.to_string() })?;
        let _ = writeln!(s, "health = {table}");
    }
    if !zones.is_empty() {
        let zones: Vec<String> = zones.iter().map(|z| quote(z)).collect();
        let _ = writeln!(s, "zones = [{}]", zones.join(", "));
    }
    if let Some(capacity) = capacity {
        let _ = writeln!(s, "capacity = {capacity}");
    }
    if let Some(cores) = cores {
        let _ = writeln!(s, "cores = {cores}");
    }
    if let Some(policy) = policy {
        let _ = writeln!(s, "policy = {}", quote(policy));
    }
    if !depends_on.is_empty() {
        let names = depends_on
            .iter()
            .map(|&d| services.get(d).map(|dep| quote(&dep.name)))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| fail("`depends_on` names a service index past the fleet"))?;
        let _ = writeln!(s, "depends_on = [{}]", names.join(", "));
        if calls_per_request.len() != depends_on.len() {
            return Err(fail("`calls` has not one ratio per `depends_on` entry"));
        }
        let fan_out: Vec<String> = depends_on
            .iter()
            .zip(calls_per_request)
            .filter(|&(_, &r)| r != 1.0)
            .map(|(&d, &r)| format!("{} = {}", bare_or_quoted(&services[d].name), float(r)))
            .collect();
        if !fan_out.is_empty() {
            let _ = writeln!(s, "calls = {{ {} }}", fan_out.join(", "));
        }
    } else if !calls_per_request.is_empty() {
        return Err(fail("`calls` without `depends_on`"));
    }
    if let Some(timeout) = call_timeout {
        let _ = writeln!(s, "call_timeout = {}", dur(*timeout));
    }
    Ok(())
}

/// A TOML key: bare when it may be (service names always may, except
/// those the loader rejects anyway), else quoted.
fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_string()
    } else {
        quote(key)
    }
}

/// A share in thousandths as a percentage string (`250` → `"25%"`), which
/// the loader reads back to the same thousandths.
fn permille(p: u32) -> String {
    format!("\"{}%\"", f64::from(p) / 10.0)
}

/// A policy name as a TOML key: bare when it can be.
fn key(name: &str) -> String {
    let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { name.to_string() } else { quote(name) }
}

/// A ladder as rung strings: `["restart*3", "replace", "scale_out+2"]`.
fn ladder(ladder: &Ladder) -> Result<String, WriteError> {
    let rungs = ladder
        .rungs
        .iter()
        .map(|rung| {
            let mut text = match rung.strategy {
                Strategy::Restart => "restart".to_string(),
                Strategy::Replace => "replace".to_string(),
                Strategy::Reroute => "reroute".to_string(),
                Strategy::ScaleOut { by: 1 } => "scale_out".to_string(),
                Strategy::ScaleOut { by } => format!("scale_out+{by}"),
                // The enum is non-exhaustive: a strategy added to the
                // coordinator has no rung syntax until the loader learns it.
                other => return Err(WriteError::Recovery(format!("strategy `{other}` has no rung syntax"))),
            };
            if rung.attempts != 1 {
                let _ = write!(text, "*{}", rung.attempts);
            }
            Ok(quote(&text))
        })
        .collect::<Result<Vec<String>, WriteError>>()?;
    Ok(format!("[{}]", rungs.join(", ")))
}

/// The keys of a policy table that differ from the default policy.
fn write_policy(s: &mut String, policy: &Policy) -> Result<(), WriteError> {
    let Policy {
        crashed,
        unresponsive,
        degraded,
        crash_looping,
        hold_for_dependencies,
        isolate_dependencies,
    } = policy;
    let default = Policy::default();
    for (name, value, default) in [
        ("crashed", crashed, &default.crashed),
        ("unresponsive", unresponsive, &default.unresponsive),
        ("degraded", degraded, &default.degraded),
        ("crash_looping", crash_looping, &default.crash_looping),
    ] {
        if value != default {
            let _ = writeln!(s, "{name} = {}", ladder(value)?);
        }
    }
    if *hold_for_dependencies != default.hold_for_dependencies {
        let _ = writeln!(s, "hold_for_dependencies = {hold_for_dependencies}");
    }
    if *isolate_dependencies != default.isolate_dependencies {
        let _ = writeln!(s, "isolate_dependencies = {isolate_dependencies}");
    }
    Ok(())
}

fn write_recovery(s: &mut String, services: &[Service], recovery: &Recovery) -> Result<(), WriteError> {
    let Recovery { config, restart_delay, replace_delay, scale_out_delay } = recovery;
    let RecoveryConfig {
        services: specs,
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
    } = config;
    // The file has no list of services: the loader builds it from the
    // fleet, so it must be the one the fleet builds.
    let derived = super::model::recovery_services_of(services);
    if *specs != derived {
        return Err(WriteError::Recovery(
            "its services are not the fleet's, in file order, with their `policy` and `depends_on`".into(),
        ));
    }
    let default = RecoveryConfig::default();
    let _ = writeln!(s, "\n[recovery]");
    let Limits { max_concurrent, max_service_share_permille } = *limits;
    if max_concurrent != default.limits.max_concurrent {
        let _ = writeln!(s, "max_concurrent = {max_concurrent}");
    }
    if max_service_share_permille != default.limits.max_service_share_permille {
        let _ = writeln!(s, "max_service_share = {}", permille(max_service_share_permille));
    }
    for (key, value, default) in [
        ("action_timeout", *action_timeout, default.action_timeout),
        ("restart_delay", *restart_delay, DEFAULT_RESTART_DELAY),
        ("replace_delay", *replace_delay, DEFAULT_REPLACE_DELAY),
        ("scale_out_delay", *scale_out_delay, DEFAULT_SCALE_OUT_DELAY),
    ] {
        if value != default {
            let _ = writeln!(s, "{key} = {}", dur(value));
        }
    }
    if *backoff != default.backoff {
        let BackoffConfig { base, cap, reset_after } = *backoff;
        let _ = writeln!(
            s,
            "backoff = {{ base = {}, cap = {}, reset_after = {} }}",
            dur(base),
            dur(cap),
            dur(reset_after)
        );
    }
    for (key, value, default) in [
        ("instance_intensity", instance_intensity, default.instance_intensity),
        ("service_intensity", service_intensity, default.service_intensity),
    ] {
        if *value != default {
            let Intensity { max_restarts, period } = *value;
            let _ = writeln!(s, "{key} = {{ max_restarts = {max_restarts}, period = {} }}", dur(period));
        }
    }
    if *storm != default.storm {
        let StormConfig { enter_permille, exit_permille, min_instances, settle } = *storm;
        let _ = writeln!(
            s,
            "storm = {{ enter = {}, exit = {}, min_instances = {min_instances}, settle = {} }}",
            permille(enter_permille),
            permille(exit_permille),
            dur(settle)
        );
    }
    if *dependency != default.dependency {
        let DependencyConfig { impaired_permille, grace, confirm } = *dependency;
        let _ = writeln!(
            s,
            "dependency = {{ impaired = {}, grace = {}, confirm = {} }}",
            permille(impaired_permille),
            dur(grace),
            dur(confirm)
        );
    }
    if *partition != default.partition {
        let PartitionConfig { confirm_within, hold } = *partition;
        let _ =
            writeln!(s, "partition = {{ confirm_within = {}, hold = {} }}", dur(confirm_within), dur(hold));
    }
    if *circuit != default.circuit {
        let CircuitConfig { open_for, open_for_max } = *circuit;
        let _ =
            writeln!(s, "circuit = {{ open_for = {}, open_for_max = {} }}", dur(open_for), dur(open_for_max));
    }
    if *default_policy != default.default_policy {
        let _ = writeln!(s, "\n[recovery.default_policy]");
        write_policy(s, default_policy)?;
    }
    for (name, policy) in policies {
        let _ = writeln!(s, "\n[recovery.policies.{}]", key(name));
        write_policy(s, policy)?;
    }
    Ok(())
}

/// The `health` inline table that builds `health`, if the file format can.
fn health_table(health: &InstanceHealthConfig) -> Result<String, &'static str> {
    let [live, ready] = health.checks.as_slice() else {
        return Err("not exactly a liveness and a readiness probe");
    };
    let probe = |c: &CheckConfig, kind: ProbeKind| match c.check {
        CheckType::Probe(p) if c.kind == kind => Some(p),
        _ => None,
    };
    let (Some(lp), Some(rp)) = (probe(live, ProbeKind::Liveness), probe(ready, ProbeKind::Readiness)) else {
        return Err("not a liveness probe then a readiness probe");
    };
    if (live.failure_threshold, live.success_threshold) != (ready.failure_threshold, ready.success_threshold)
    {
        return Err("the probes have different thresholds");
    }
    let base = ProbeCheck { interval: lp.interval, timeout: lp.timeout, ..ProbeCheck::default() };
    if lp != base {
        return Err("the liveness probe has rules or an initial delay");
    }
    if (ProbeCheck { latency: None, error_rate: None, ..rp }) != base {
        return Err("the probes differ in interval, timeout or initial delay");
    }
    let mut parts = vec![format!("interval = {}", dur(lp.interval))];
    if lp.timeout != lp.interval.min(DEFAULT_PROBE_TIMEOUT) {
        parts.push(format!("timeout = {}", dur(lp.timeout)));
    }
    if live.failure_threshold != DEFAULT_FAILURE_THRESHOLD {
        parts.push(format!("failure_threshold = {}", live.failure_threshold));
    }
    if live.success_threshold != DEFAULT_SUCCESS_THRESHOLD {
        parts.push(format!("success_threshold = {}", live.success_threshold));
    }
    if let Some(rule) = rp.latency {
        let default = LatencyRule::new(rule.p99_max);
        let windowed = LatencyRule {
            window_samples: rule.window_samples,
            min_samples: default.min_samples.min(rule.window_samples),
            ..default
        };
        if rule != windowed {
            return Err("the latency rule has a non-default minimum sample count");
        }
        parts.push(format!("latency_p99 = {}", dur(rule.p99_max)));
        if rule.window_samples != default.window_samples {
            parts.push(format!("latency_window = {}", rule.window_samples));
        }
    }
    if let Some(rule) = rp.error_rate {
        if rule != (ErrorRateRule { degraded_permille: rule.degraded_permille, ..ErrorRateRule::default() }) {
            return Err("the error-rate rule has a non-default window or a failure limit");
        }
        parts.push(format!("error_rate = {}", float(f64::from(rule.degraded_permille) / 1000.0)));
    }
    match health.flap {
        None => parts.push("flap = false".to_string()),
        Some(f) if f == FlapConfig::default() => {}
        Some(_) => return Err("flap damping with non-default settings"),
    }
    Ok(format!("{{ {} }}", parts.join(", ")))
}

fn write_load(s: &mut String, scenario: &Scenario, load: &Load) -> Result<(), WriteError> {
    let Load {
        ref targets,
        rate_per_sec,
        shape,
        timeout,
        start,
        panic_threshold_percent,
        always_eject_one_host,
    } = *load;
    let name = |service: usize| -> Result<&str, WriteError> {
        scenario.services.get(service).map(|s| s.name.as_str()).ok_or(WriteError::Load(service))
    };
    let _ = writeln!(s, "\n[load]");
    match targets.as_slice() {
        [only] if only.share == 1.0 => {
            let _ = writeln!(s, "target = {}", quote(name(only.service)?));
        }
        _ => {
            let mut parts = Vec::new();
            for t in targets {
                parts.push(format!(
                    "{{ service = {}, share = {} }}",
                    quote(name(t.service)?),
                    float(t.share)
                ));
            }
            let _ = writeln!(s, "targets = [{}]", parts.join(", "));
        }
    }
    let _ = writeln!(s, "rate = {}", float(rate_per_sec));
    if shape == LoadShape::Constant {
        let _ = writeln!(s, "shape = \"constant\"");
    }
    if timeout != Duration::from_secs(1) {
        let _ = writeln!(s, "timeout = {}", dur(timeout));
    }
    if start != Duration::from_secs(5) {
        let _ = writeln!(s, "start = {}", dur(start));
    }
    if panic_threshold_percent != 50 {
        let _ = writeln!(s, "panic_threshold = {panic_threshold_percent}");
    }
    if always_eject_one_host {
        let _ = writeln!(s, "always_eject_one_host = true");
    }
    Ok(())
}

/// Target strings naming exactly `nodes`: `control`, `svc/*` for a whole
/// service of more than one instance, `svc/i` otherwise.
pub fn target_names(scenario: &Scenario, nodes: &[NodeId]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest: Vec<NodeId> = nodes.to_vec();
    rest.sort_unstable();
    rest.dedup();
    if rest.first() == Some(&Scenario::CONTROL) {
        out.push("control".to_string());
        rest.remove(0);
    }
    let mut first = 1u32;
    let mut named = 0;
    for service in &scenario.services {
        let range = first..first + service.instances;
        let members: Vec<u32> = rest.iter().map(|n| n.0).filter(|n| range.contains(n)).collect();
        named += members.len();
        if service.instances > 1 && members.len() == service.instances as usize {
            out.push(format!("{}/*", service.name));
        } else {
            out.extend(members.iter().map(|n| format!("{}/{}", service.name, n - first)));
        }
        first = range.end;
    }
    (named == rest.len()).then_some(out)
}

fn targets(scenario: &Scenario, index: usize, nodes: &[NodeId]) -> Result<String, WriteError> {
    if nodes.is_empty() {
        return Err(WriteError::Fault { index, why: "empty target list".into() });
    }
    let names = target_names(scenario, nodes).ok_or_else(|| {
        let node = nodes
            .iter()
            .copied()
            .find(|&n| n != Scenario::CONTROL && scenario.instance_on(n).is_none())
            .unwrap_or(NodeId(u32::MAX));
        WriteError::Target { index, node }
    })?;
    Ok(match names.as_slice() {
        [one] => quote(one),
        many => format!("[{}]", many.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", ")),
    })
}

fn write_fault(s: &mut String, scenario: &Scenario, index: usize, fault: &Fault) -> Result<(), WriteError> {
    let Fault { at, duration, action, pick, every, within, line: _ } = fault;
    let _ = writeln!(s, "\n[[fault]]");
    let _ = writeln!(s, "at = {}", dur(*at));
    if let Some(d) = duration {
        let _ = writeln!(s, "duration = {}", dur(*d));
    }
    let t = |nodes: &[NodeId]| targets(scenario, index, nodes);
    match action {
        FaultAction::Crash(n) => {
            let _ = writeln!(s, "kind = \"crash\"\ntarget = {}", t(n)?);
        }
        FaultAction::Restart(n) => {
            let _ = writeln!(s, "kind = \"restart\"\ntarget = {}", t(n)?);
        }
        FaultAction::Pause(n) => {
            let _ = writeln!(s, "kind = \"pause\"\ntarget = {}", t(n)?);
        }
        FaultAction::Resume(n) => {
            let _ = writeln!(s, "kind = \"resume\"\ntarget = {}", t(n)?);
        }
        FaultAction::Heal => {
            let _ = writeln!(s, "kind = \"heal\"");
        }
        FaultAction::Hang(n) => {
            let _ = writeln!(s, "kind = \"hang\"\ntarget = {}", t(n)?);
        }
        FaultAction::Slow { targets, extra } => {
            let _ = writeln!(s, "kind = \"slow\"\ntarget = {}\nlatency = {}", t(targets)?, dur(*extra));
        }
        FaultAction::Errors { targets, rate } => {
            let _ = writeln!(s, "kind = \"errors\"\ntarget = {}\nrate = {}", t(targets)?, float(*rate));
        }
        FaultAction::Flap { targets, period } => {
            let _ = writeln!(s, "kind = \"flap\"\ntarget = {}\nperiod = {}", t(targets)?, dur(*period));
        }
        FaultAction::HostCrash(n) => {
            let _ = writeln!(s, "kind = \"host_crash\"\ntarget = {}", t(n)?);
        }
        FaultAction::MemoryLeak { targets, exhausts_after } => {
            let _ = writeln!(
                s,
                "kind = \"memory_leak\"\ntarget = {}\nexhausts_after = {}",
                t(targets)?,
                dur(*exhausts_after)
            );
        }
        FaultAction::Cpu { targets, factor } => {
            let _ = writeln!(s, "kind = \"cpu\"\ntarget = {}\nfactor = {}", t(targets)?, float(*factor));
        }
        FaultAction::DiskFull(n) => {
            let _ = writeln!(s, "kind = \"disk_full\"\ntarget = {}", t(n)?);
        }
        FaultAction::CrashLoop { targets, after, survives_replace } => {
            let _ = writeln!(s, "kind = \"crash_loop\"\ntarget = {}\nafter = {}", t(targets)?, dur(*after));
            if *survives_replace {
                let _ = writeln!(s, "survives_replace = true");
            }
        }
        FaultAction::Network { targets, latency, loss, duplicate } => {
            let _ = writeln!(s, "kind = \"network\"\ntarget = {}", t(targets)?);
            if !latency.is_zero() {
                let _ = writeln!(s, "latency = {}", dur(*latency));
            }
            if *loss > 0.0 {
                let _ = writeln!(s, "loss = {}", float(*loss));
            }
            if *duplicate > 0.0 {
                let _ = writeln!(s, "duplicate = {}", float(*duplicate));
            }
        }
        FaultAction::Forge { targets, rate, mode } => {
            let _ = writeln!(s, "kind = \"forge\"\ntarget = {}\nrate = {}", t(targets)?, float(*rate));
            if *mode != ForgeMode::default() {
                let _ = writeln!(s, "mode = {}", quote(mode.name()));
            }
        }
        FaultAction::ClockSkew { targets, offset_ns, drift_ppm } => {
            let _ = writeln!(s, "kind = \"clock_skew\"\ntarget = {}", t(targets)?);
            if *offset_ns != 0 || *drift_ppm == 0 {
                let sign = if *offset_ns < 0 { "-" } else { "" };
                let magnitude = fmt_duration(Duration::from_nanos(offset_ns.unsigned_abs()));
                let _ = writeln!(s, "offset = \"{sign}{magnitude}\"");
            }
            if *drift_ppm != 0 {
                let _ = writeln!(s, "drift_ppm = {drift_ppm}");
            }
        }
        FaultAction::Partition(Partition::Groups(groups)) if is_monitor_partition(scenario, groups) => {
            let _ = writeln!(s, "kind = \"monitor_partition\"");
        }
        FaultAction::Partition(Partition::Groups(groups)) => {
            if groups.len() < 2 {
                return Err(WriteError::Fault { index, why: "a partition needs two groups".into() });
            }
            let groups: Vec<String> = groups.iter().map(|g| t(g)).collect::<Result<_, _>>()?;
            let _ =
                writeln!(s, "kind = \"partition\"\nmode = \"symmetric\"\ngroups = [{}]", groups.join(", "));
        }
        FaultAction::Partition(Partition::OneWay { from, to }) => {
            let _ =
                writeln!(s, "kind = \"partition\"\nmode = \"one_way\"\nfrom = {}\nto = {}", t(from)?, t(to)?);
        }
        FaultAction::Partition(Partition::Isolate(n)) => {
            let _ = writeln!(s, "kind = \"partition\"\nmode = \"isolate\"\ntarget = {}", t(n)?);
        }
    }
    let no_form = |why: &str| WriteError::Fault { index, why: why.to_string() };
    let single_list = action.clone().targets_mut().is_some();
    match pick {
        Pick::All => {}
        _ if !single_list => return Err(no_form("it picks targets but has no single target list")),
        Pick::Count(n) => {
            let _ = writeln!(s, "count = {n}");
        }
        Pick::Percent(p) => {
            let _ = writeln!(s, "percent = {p}");
        }
    }
    let point = matches!(action, FaultAction::Restart(_) | FaultAction::Resume(_) | FaultAction::Heal);
    if point && (every.is_some() || within.is_some()) {
        return Err(no_form("`restart`, `resume` and `heal` cannot repeat or start within a window"));
    }
    if let Some(every) = every {
        let _ = writeln!(s, "every = {}", dur(*every));
    }
    if let Some(within) = within {
        let _ = writeln!(s, "within = {}", dur(*within));
    }
    Ok(())
}

/// Whether `groups` is what `monitor_partition` builds: the control node
/// alone against every instance.
fn is_monitor_partition(scenario: &Scenario, groups: &[Vec<NodeId>]) -> bool {
    let [control, instances] = groups else { return false };
    let count = scenario.instance_count();
    control.as_slice() == [Scenario::CONTROL]
        && count > 0
        && instances.len() == count as usize
        && instances.iter().zip(1..).all(|(node, n)| node.0 == n)
}

fn write_expect(s: &mut String, expect: &Expectations) {
    let Expectations {
        detected_within,
        no_false_dead,
        alive_at_end,
        availability,
        failure_types,
        recovery_started_within,
        restored_within,
        max_concurrent_recoveries,
        no_restart_of_healthy_instances,
        max_lost_requests,
        actions_taken,
        forged_frames_dropped,
    } = expect.clone();
    if *expect == Expectations::default() {
        return;
    }
    let _ = writeln!(s, "\n[expect]");
    if let Some(d) = detected_within {
        let _ = writeln!(s, "detected_within = {}", dur(d));
    }
    if no_false_dead {
        let _ = writeln!(s, "no_false_dead = true");
    }
    if alive_at_end {
        let _ = writeln!(s, "alive_at_end = true");
    }
    if let Some(a) = availability {
        let _ = writeln!(s, "availability = {}", share(a));
    }
    if failure_types {
        let _ = writeln!(s, "failure_types = true");
    }
    if let Some(d) = recovery_started_within {
        let _ = writeln!(s, "recovery_started_within = {}", dur(d));
    }
    if let Some(d) = restored_within {
        let _ = writeln!(s, "restored_within = {}", dur(d));
    }
    if let Some(n) = max_concurrent_recoveries {
        let _ = writeln!(s, "max_concurrent_recoveries = {n}");
    }
    if no_restart_of_healthy_instances {
        let _ = writeln!(s, "no_restart_of_healthy_instances = true");
    }
    if let Some(n) = max_lost_requests {
        let _ = writeln!(s, "no_lost_requests = {n}");
    }
    if !actions_taken.is_empty() {
        let names: Vec<String> = actions_taken.iter().map(|a| quote(a.name())).collect();
        let _ = writeln!(s, "actions_taken = [{}]", names.join(", "));
    }
    if forged_frames_dropped {
        let _ = writeln!(s, "forged_frames_dropped = true");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    /// The scenario with every fault's line zeroed: the one thing writing
    /// does not keep.
    fn lineless(mut s: Scenario) -> Scenario {
        for f in &mut s.faults {
            f.line = 0;
        }
        s
    }

    fn round_trip(source: &str) {
        let original = parse(source, "original").expect("the original loads");
        let text = to_toml(&original).expect("it has a file form");
        let again = parse(&text, "written").unwrap_or_else(|e| panic!("written text loads: {e}\n{text}"));
        assert_eq!(lineless(again.clone()), lineless(original), "round trip changed it:\n{text}");
        assert_eq!(to_toml(&again).expect("again"), text, "writing is stable");
    }

    #[test]
    fn durations_keep_their_units_and_exact_values() {
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_secs(90)), "90s");
        assert_eq!(fmt_duration(Duration::from_secs(600)), "10m");
        assert_eq!(fmt_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_duration(Duration::from_nanos(7)), "7ns");
        let odd = Duration::from_secs(30 * 24 * 3600) + Duration::from_nanos(1);
        assert_eq!(fmt_duration(odd), "720h1ns");
        for d in [odd, Duration::from_micros(1_234_567), Duration::from_nanos(999_999_999_999)] {
            let text = fmt_duration(d);
            assert_eq!(humantime::parse_duration(&text).expect("parses"), d, "{text}");
        }
    }

    #[test]
    fn shares_are_percentages_when_exact() {
        for (text, written) in
            [("\"99.9%\"", "\"99.9%\""), ("\"99.999%\"", "\"99.999%\""), ("1", "\"100%\""), ("0", "\"0%\"")]
        {
            let source = format!(
                "name = \"s\"\nduration = \"1m\"\n[[service]]\nname = \"a\"\ninstances = 1\n\
                 [load]\ntarget = \"a\"\nrate = 1\n[expect]\navailability = {text}\n"
            );
            let s = parse(&source, "s").expect("loads");
            assert!(to_toml(&s).expect("writes").contains(&format!("availability = {written}")));
            round_trip(&source);
        }
        assert_eq!(share(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn strings_are_escaped() {
        round_trip(
            "name = \"a \\\"quoted\\\" name\"\ndescription = \"two\\nlines\\tand \\\\ \\u0001\"\n\
             duration = \"1m\"\n[[service]]\nname = \"a\"\ninstances = 1\n",
        );
    }

    #[test]
    fn forge_faults_and_their_expectation_round_trip() {
        for mode in ["", "mode = \"forge\"\n", "mode = \"replay\"\n", "mode = \"both\"\n"] {
            round_trip(&format!(
                "name = \"f\"\nduration = \"2m\"\n[[service]]\nname = \"a\"\ninstances = 3\n\
                 [[fault]]\nat = \"20s\"\nduration = \"1m\"\nkind = \"forge\"\ntarget = [\"a/0\", \"a/2\"]\n\
                 rate = 12.5\n{mode}count = 1\n[expect]\nforged_frames_dropped = true\n"
            ));
        }
    }

    #[test]
    fn every_setting_round_trips() {
        round_trip(
            r#"
name = "everything"
duration = "10m"
seed = 9223372036854775807
max_events = 1_000
max_pending_events = 5_000
[network]
latency = { kind = "pareto", min = "1ms", alpha = 2.5, max = "200ms" }
loss = 0.001
duplicate = 1
reorder = 0.25
reorder_delay = "20ms"
stability = "3s"
[[service]]
name = "checkout"
instances = 6
heartbeat = { interval = "500ms", suspect_after = "2s", dead_after = "4s" }
service_time = { kind = "exponential", min = "1ms", mean = "3ms" }
health = { interval = "2s", timeout = "1500ms", failure_threshold = 2, success_threshold = 3, latency_p99 = "200ms", error_rate = 0.2, flap = false }
zones = ["a", "b", "c"]
capacity = 7
[[service]]
name = "payments"
instances = 2
service_time = { kind = "fixed", value = "4ms" }
health = {}
[[service]]
name = "db"
instances = 1
[load]
target = "checkout"
rate = 12.5
shape = "constant"
timeout = "300ms"
start = "8s"
panic_threshold = 0
always_eject_one_host = true
[[fault]]
at = "1m"
duration = "30s"
kind = "crash"
target = ["checkout/0", "payments"]
[[fault]]
at = "1m"
kind = "restart"
target = ["control", "*"]
[[fault]]
at = "2s"
kind = "pause"
target = "zone:b"
duration = "1s"
[[fault]]
at = "3s"
kind = "resume"
target = "db"
[[fault]]
at = "4s"
kind = "partition"
groups = [["control", "zone:a"], "payments/1", ["db/*"]]
[[fault]]
at = "5s"
kind = "partition"
mode = "one_way"
from = "checkout/*"
to = "control"
[[fault]]
at = "6s"
kind = "partition"
mode = "isolate"
target = "payments/0"
[[fault]]
at = "7s"
kind = "heal"
[[fault]]
at = "8s"
duration = "9s"
kind = "clock_skew"
target = "payments/0"
offset = "-2s"
drift_ppm = 50000
[[fault]]
at = "8s"
kind = "clock_skew"
target = "control"
drift_ppm = -3
[[fault]]
at = "8s"
kind = "clock_skew"
target = "db/0"
offset = "0s"
[[fault]]
at = "9s"
kind = "hang"
target = "checkout/5"
[[fault]]
at = "9s"
kind = "slow"
target = "checkout/4"
latency = "150ms"
[[fault]]
at = "9s"
kind = "errors"
target = "checkout/3"
rate = 0.3
[[fault]]
at = "9s"
kind = "flap"
target = "checkout/2"
period = "1.5s"
[expect]
detected_within = "6s"
no_false_dead = true
alive_at_end = true
availability = "99.9%"
failure_types = true
"#,
        );
    }

    #[test]
    fn unrepresentable_scenarios_are_errors() {
        let mut s = parse("name = \"x\"\nduration = \"1m\"\n[[service]]\nname = \"a\"\ninstances = 1\n", "x")
            .expect("loads");
        s.seed = u64::MAX;
        assert_eq!(to_toml(&s), Err(WriteError::Seed(u64::MAX)));
        s.seed = 1;
        s.services[0].health = Some(InstanceHealthConfig::standard());
        s.services[0].health.as_mut().expect("set").checks.pop();
        assert!(matches!(to_toml(&s), Err(WriteError::Health { .. })));
        s.services[0].health = None;
        s.faults.push(Fault {
            at: Duration::ZERO,
            duration: None,
            action: FaultAction::Crash(vec![NodeId(5)]),
            pick: Pick::All,
            every: None,
            within: None,
            line: 0,
        });
        assert!(matches!(to_toml(&s), Err(WriteError::Target { index: 0, .. })));
    }
}
