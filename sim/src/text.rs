//! Text for people: durations, instants, faults, node lists and recovery
//! outputs in words.
//!
//! It sits below everything that writes text (the world's event timeline,
//! the checkers' verdicts, the report and the replay) and depends only on
//! the scenario model and `vigil_core`, so that observations can flow one
//! way (world, then checkers, then report) with no module reaching back up
//! for a formatter.

use std::fmt::Write as _;

use vigil_core::recovery::{
    ActionKind, DecisionKind, HoldReason, HumanReason, RecoveryOutput, StormScope, Unreachability,
};
use vigil_core::{Duration, InstanceId, Instant, NodeId, ServiceId};

use crate::scenario::{Fault, FaultAction, ForgeMode, Partition, Scenario};

/// Simulated time as `12.345s` (milliseconds).
pub fn fmt_instant(t: Instant) -> String {
    fmt_duration(t.since_epoch())
}

/// A duration as `4.120s`, or `250ms` below a second.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 { format!("{ms}ms") } else { format!("{}.{:03}s", ms / 1000, ms % 1000) }
}

/// A fault in words, e.g. `crash checkout/0` or
/// `partition [control] | [checkout/*] for 30.000s`.
pub fn describe(scenario: &Scenario, fault: &Fault) -> String {
    let mut s = match &fault.action {
        FaultAction::Crash(t) => format!("crash {}", names(scenario, t)),
        FaultAction::Restart(t) => format!("restart {}", names(scenario, t)),
        FaultAction::Pause(t) => format!("pause {}", names(scenario, t)),
        FaultAction::Resume(t) => format!("resume {}", names(scenario, t)),
        FaultAction::Heal => "heal all partitions".to_string(),
        FaultAction::Partition(Partition::Groups(groups)) => {
            let groups: Vec<String> = groups.iter().map(|g| format!("[{}]", names(scenario, g))).collect();
            format!("partition {}", groups.join(" | "))
        }
        FaultAction::Partition(Partition::OneWay { from, to }) => {
            format!("one-way partition [{}] -> [{}]", names(scenario, from), names(scenario, to))
        }
        FaultAction::Partition(Partition::Isolate(t)) => format!("isolate {}", names(scenario, t)),
        FaultAction::Hang(t) => format!("hang {}", names(scenario, t)),
        FaultAction::Slow { targets, extra } => {
            format!("slow {} by +{}", names(scenario, targets), fmt_duration(*extra))
        }
        FaultAction::Errors { targets, rate } => {
            format!("errors {} at {:.1}%", names(scenario, targets), rate * 100.0)
        }
        FaultAction::Flap { targets, period } => {
            format!("flap {} every {}", names(scenario, targets), fmt_duration(*period))
        }
        FaultAction::HostCrash(t) => format!("host crash {}", names(scenario, t)),
        FaultAction::MemoryLeak { targets, exhausts_after } => {
            format!(
                "memory leak {} exhausting in {}",
                names(scenario, targets),
                fmt_duration(*exhausts_after)
            )
        }
        FaultAction::Cpu { targets, factor } => format!("cpu x{factor} {}", names(scenario, targets)),
        FaultAction::DiskFull(t) => format!("disk full {}", names(scenario, t)),
        FaultAction::CrashLoop { targets, after, survives_replace } => format!(
            "crash loop {} after {}{}",
            names(scenario, targets),
            fmt_duration(*after),
            if *survives_replace { ", surviving replacement" } else { "" }
        ),
        FaultAction::Network { targets, latency, loss, duplicate } => {
            let mut parts = Vec::new();
            if !latency.is_zero() {
                parts.push(format!("+{}", fmt_duration(*latency)));
            }
            if *loss > 0.0 {
                parts.push(format!("loss {:.1}%", loss * 100.0));
            }
            if *duplicate > 0.0 {
                parts.push(format!("duplicate {:.1}%", duplicate * 100.0));
            }
            format!("network {} {}", names(scenario, targets), parts.join(" "))
        }
        FaultAction::ClockSkew { targets, offset_ns, drift_ppm } => {
            let sign = if *offset_ns < 0 { "-" } else { "+" };
            let offset = fmt_duration(Duration::from_nanos(offset_ns.unsigned_abs()));
            format!("clock skew {} {sign}{offset} drift {drift_ppm}ppm", names(scenario, targets))
        }
        FaultAction::Forge { targets, rate, mode } => {
            let what = match mode {
                ForgeMode::Forge => "forged heartbeats",
                ForgeMode::Replay => "replayed frames",
                ForgeMode::Both => "forged heartbeats and replayed frames",
            };
            format!("attacker sends {what} at {rate}/s, forging {}", names(scenario, targets))
        }
    };
    if let Some(d) = fault.duration {
        let _ = write!(s, " for {}", fmt_duration(d));
    }
    s
}

/// Node names, with a whole service shortened to `svc/*` and long lists cut.
pub fn names(scenario: &Scenario, nodes: &[NodeId]) -> String {
    let mut parts = Vec::new();
    let mut first = 1u32;
    let mut rest: Vec<NodeId> = nodes.to_vec();
    if rest.contains(&Scenario::CONTROL) {
        parts.push("control".to_string());
        rest.retain(|&n| n != Scenario::CONTROL);
    }
    for service in &scenario.services {
        let range = first..first + service.instances;
        let members: Vec<NodeId> = rest.iter().copied().filter(|n| range.contains(&n.0)).collect();
        if members.len() == service.instances as usize && service.instances > 1 {
            parts.push(format!("{}/*", service.name));
        } else {
            parts.extend(members.iter().map(|&n| scenario.node_name(n)));
        }
        first = range.end;
    }
    const SHOWN: usize = 8;
    if parts.len() > SHOWN {
        let more = parts.len() - SHOWN;
        parts.truncate(SHOWN);
        parts.push(format!("… (+{more})"));
    }
    parts.join(", ")
}

/// A share as a percentage with as many decimals as a "nines" target needs.
pub fn fmt_share(share: f64) -> String {
    format!("{:.3}%", share * 100.0)
}

/// A recovery action in words: `restart`, `scale out by 2`, `open circuit
/// to db`.
pub fn action_words(kind: ActionKind, services: &[String]) -> String {
    let svc = |s: ServiceId| services.get(s.index()).cloned().unwrap_or_else(|| format!("service-{}", s.0));
    match kind {
        ActionKind::Restart => "restart".to_string(),
        ActionKind::Replace => "replace".to_string(),
        ActionKind::Reroute => "reroute (out of rotation until healthy)".to_string(),
        ActionKind::ScaleOut { by } => format!("scale out by {by}"),
        ActionKind::OpenCircuit { to } => format!("open circuit to {}", svc(to)),
        ActionKind::HalfOpen { to } => format!("half-open circuit to {} (trial call)", svc(to)),
        ActionKind::CloseCircuit { to } => format!("close circuit to {}", svc(to)),
        ActionKind::AskHuman { reason: HumanReason::LadderExhausted { failure } } => {
            format!("ASK A HUMAN: every rung for {failure} was tried")
        }
        other => format!("{other:?}"),
    }
}

/// A recovery decision in words.
pub fn decision_words(kind: DecisionKind, services: &[String]) -> String {
    let svc = |s: ServiceId| services.get(s.index()).cloned().unwrap_or_else(|| format!("service-{}", s.0));
    let scope = |s: StormScope| match s {
        StormScope::Global => "the fleet".to_string(),
        StormScope::Service(id) => svc(id),
    };
    match kind {
        DecisionKind::Detected { failure } => format!("episode opens: {failure}"),
        DecisionKind::Reclassified { from, to } => format!("reclassified {from} -> {to}"),
        DecisionKind::IntensityExceeded { scope } => format!("restart intensity exceeded ({scope:?})"),
        DecisionKind::Acting { kind, attempt, rung } => {
            format!("acting: {} (attempt {attempt}, rung {rung})", action_words(kind, services))
        }
        DecisionKind::Withheld { reason } => format!("withheld: {}", hold_words(reason, services)),
        DecisionKind::AttemptFailed { attempt, timed_out } => {
            format!("attempt {attempt} failed{}", if timed_out { " (timed out)" } else { "" })
        }
        DecisionKind::Escalated { from_rung, to_rung } => format!("escalated: rung {from_rung} -> {to_rung}"),
        DecisionKind::AskedHuman => "holding: a human is asked".to_string(),
        DecisionKind::Resolved { by_action } => {
            format!("resolved ({})", if by_action { "by its action" } else { "healed by itself" })
        }
        DecisionKind::Abandoned => "abandoned: deregistered".to_string(),
        DecisionKind::StormSuspected { scope: s, unhealthy, total } => {
            format!("STORM suspected in {}: {unhealthy} of {total} look down; holding", scope(s))
        }
        DecisionKind::StormCleared { scope: s } => format!("storm over in {}", scope(s)),
        DecisionKind::CircuitProbeFailed => "circuit trial call failed: open again".to_string(),
        DecisionKind::Isolating { circuit, to } => format!("isolating {} ({circuit})", svc(to)),
        other => format!("{other:?}"),
    }
}

fn hold_words(reason: HoldReason, services: &[String]) -> String {
    match reason {
        HoldReason::GlobalLimit { max } => format!("global limit ({max} in flight)"),
        HoldReason::ServiceLimit { max } => format!("service limit ({max} in flight)"),
        HoldReason::Backoff { until } => format!("backing off until {}", fmt_time(until)),
        HoldReason::Storm { .. } => "storm suspected".to_string(),
        HoldReason::Dependency { root } => format!(
            "dependency {} is impaired: root cause first",
            services.get(root.index()).map_or("?", String::as_str)
        ),
        HoldReason::Settling { until } => format!("settling until {}", fmt_time(until)),
        HoldReason::ScaleOutInFlight => "a scale-out is in flight".to_string(),
        HoldReason::Partitioned { until, why: Unreachability::CutOff } => format!(
            "cut off, not failed: silent to the control node, reached by its clients; restarts held until {}",
            fmt_time(until)
        ),
        HoldReason::Partitioned { until, why: Unreachability::AwaitingClients } => {
            format!("silent to the control node: waiting for its clients' word until {}", fmt_time(until))
        }
        HoldReason::Partitioned { until, why: Unreachability::DeafObserver } => format!(
            "the control node misses heartbeats of many instances at once: its own hearing, not this \
             instance; restarts held until {}",
            fmt_time(until)
        ),
        other => format!("{other:?}"),
    }
}

/// One recovery output as a line of text (for the event timeline, whose
/// node column is the control node's: the instance is named).
pub fn recovery_line(out: &RecoveryOutput, names: &[String], services: &[String]) -> String {
    let who = |i: Option<InstanceId>| {
        i.and_then(|i| names.get(Scenario::node_of(i).index())).map_or("-", String::as_str).to_string()
    };
    let instance = match *out {
        RecoveryOutput::Action(a) => a.instance,
        RecoveryOutput::Decision(d) => d.instance,
        _ => None,
    };
    format!("recovery {} ({})", recovery_words(out, services), who(instance))
}

/// One recovery output in words, without the instance it concerns (the
/// replay names it in its own column): `rec#1.2 action: replace`.
pub fn recovery_words(out: &RecoveryOutput, services: &[String]) -> String {
    match *out {
        RecoveryOutput::Action(a) => format!("{} action: {}", a.id, action_words(a.kind, services)),
        RecoveryOutput::Decision(d) => {
            let id = d.correlation.map_or_else(|| "-".to_string(), |c| c.to_string());
            format!("{id}: {}", decision_words(d.kind, services))
        }
        _ => format!("{out:?}"),
    }
}

/// Simulated time as `12.345s`, always in seconds with milliseconds, so a
/// column of them lines up.
pub fn fmt_time(t: Instant) -> String {
    let ms = t.as_millis();
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// A balancer event in words, and the instance it is about (none for
/// panic mode, which is the client's). One wording for the replay and the
/// timeline.
pub fn balance_words(event: &vigil_core::balance::BalanceEvent) -> (Option<vigil_core::InstanceId>, String) {
    use vigil_core::balance::{BalanceEvent, EjectionReason};
    match *event {
        BalanceEvent::Ejected { id, reason, until } => {
            let reason = match reason {
                EjectionReason::ConsecutiveErrors => "consecutive errors",
                EjectionReason::SuccessRate => "low success rate",
            };
            (Some(id), format!("balancer: ejected ({reason}) until {}", fmt_time(until)))
        }
        BalanceEvent::Returned { id } => (Some(id), "balancer: back from ejection".to_string()),
        BalanceEvent::PanicEntered { healthy, total } => {
            (None, format!("balancer: PANIC mode, {healthy} of {total} healthy"))
        }
        BalanceEvent::PanicExited { healthy, total } => {
            (None, format!("balancer: panic over, {healthy} of {total} healthy"))
        }
        ref other => (None, format!("balancer: {other:?}")),
    }
}

/// A network message in words, instances by name (`payments/0`, through
/// `instance`), for the timeline.
pub fn message_words(
    message: &vigil_core::message::Message,
    instance: impl Fn(vigil_core::InstanceId) -> String,
) -> String {
    use vigil_core::message::{Message, ResponseStatus};
    match *message {
        Message::Heartbeat(hb) => {
            format!("heartbeat {} incarnation {} seq {}", instance(hb.instance), hb.incarnation, hb.seq)
        }
        Message::Request(r) => format!("request #{}", r.id),
        Message::Response(r) => {
            let status = match r.status {
                ResponseStatus::Ok => "ok",
                ResponseStatus::Error => "error",
            };
            format!("response #{} {status}", r.id)
        }
        Message::Refused(r) => format!("refused #{}{}", r.id, if r.probe { " (probe)" } else { "" }),
        Message::Probe(p) => format!("probe #{} {} timeout {}ms", p.id, p.kind, p.timeout_ms),
        Message::ProbeReply(r) => format!("probe reply #{} {}", r.id, if r.ok { "ok" } else { "failing" }),
        Message::EndpointUpdate(u) => format!(
            "endpoint update: {} {} (index {})",
            instance(u.instance),
            if u.routable { "routable" } else { "not routable" },
            u.index
        ),
        Message::Subscribe => "subscribe".to_string(),
        Message::CallReport(r) => format!(
            "call report: {} ok {} error {} refused {} timed out {}",
            instance(r.instance),
            r.ok,
            r.errors,
            r.refused,
            r.timed_out
        ),
        ref other => format!("{other:?}"),
    }
}
