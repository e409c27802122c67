//! The control plane's behaviour through its public face: heartbeats,
//! registration, leases, subscriptions, recovery and the storm guard,
//! and the lossy-link judgment.

use super::*;
use crate::envelope::{Input, Output};
use crate::fleet::{InstanceNode, Node};
use crate::health::{AgentConfig, HealthConfigError, HealthEvent};
use crate::health::{Liveness, LivenessTimeouts};
use crate::id::{InstanceId, NodeId, ServiceId};
use crate::message::Message;
use crate::recovery::StormScope;
use crate::recovery::{Outcome, RecoveryConfig, RecoveryOutput};
use crate::registry::{HealthStatus as CatalogHealth, RegistryError};
use crate::registry::{RegisterOutcome, Registration, RegistryConfig};
use crate::rng::Seed;
use crate::time::{Duration, Instant};

#[test]
fn instance_heartbeats_reach_control_and_make_it_alive() {
    let timeouts =
        LivenessTimeouts { suspect_after: Duration::from_secs(2), dead_after: Duration::from_secs(3) };
    let config = ControlConfig {
        liveness_classes: vec![timeouts],
        instances: vec![WatchedInstance {
            instance: InstanceId(0),
            node: NodeId(1),
            service: ServiceId(0),
            class: 0,
            zone: None,
        }],
        ..ControlConfig::default()
    };
    let mut control = Node::Control(Box::new(ControlPlane::new(&config, Instant::ZERO).expect("valid")));
    let agent = AgentConfig {
        instance: InstanceId(0),
        control: NodeId(0),
        interval: Duration::from_secs(1),
        incarnation: 1,
    };
    let mut instance = Node::Instance(InstanceNode::new(agent, Instant::ZERO, Seed(1)).expect("valid"));

    let at = instance.poll_timeout().expect("agent always has a deadline");
    instance.handle_timeout(at);
    let Some(Output::Send { to, message }) = instance.poll_output() else { panic!("expected a send") };
    assert_eq!(to, NodeId(0));
    control.handle(at, Input::Message { from: NodeId(1), message });
    assert_eq!(
        control.poll_output(),
        Some(Output::Health(HealthEvent::LivenessChanged {
            instance: InstanceId(0),
            from: Liveness::Unknown,
            to: Liveness::Alive,
            last_heard: at,
        }))
    );
}

const CLIENT: NodeId = NodeId(9);

fn heartbeat(control: &mut ControlPlane, at: Instant, instance: u32, seq: u64) -> Vec<Output> {
    let hb = crate::message::Heartbeat { instance: InstanceId(instance), incarnation: 1, seq };
    control.handle(at, Input::Message { from: NodeId(instance + 1), message: Message::Heartbeat(hb) });
    std::iter::from_fn(|| control.poll_output()).collect()
}

fn updates(outputs: &[Output]) -> Vec<(u32, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message: Message::EndpointUpdate(u) } if *to == CLIENT => {
                Some((u.instance.0, u.routable))
            }
            _ => None,
        })
        .collect()
}

fn control_with(registry: RegistryConfig) -> ControlPlane {
    let config = ControlConfig { registry, ..ControlConfig::default() };
    let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
    control.handle(Instant::ZERO, Input::Message { from: CLIENT, message: Message::Subscribe });
    assert_eq!(control.poll_output(), None, "an empty catalog has nothing to tell");
    control
}

fn request(id: u32, service: &str) -> RegisterRequest {
    RegisterRequest {
        registration: Registration::new(InstanceId(id), service, "v1").zone("a"),
        node: NodeId(id + 1),
        class: 0,
    }
}

#[test]
fn a_refused_registration_changes_nothing() {
    let mut control = control_with(RegistryConfig::default());
    let err = control.register(Instant::ZERO, request(0, "")).expect_err("empty service name");
    assert!(matches!(err, ControlError::Registry(RegistryError::Empty { .. })), "{err}");
    let err = control.register(Instant::ZERO, RegisterRequest { class: 7, ..request(0, "web") });
    assert!(matches!(err, Err(ControlError::Health(HealthConfigError::UnknownClass { .. }))));
    assert!(control.registry().is_empty());
    assert!(control.detector().instance(InstanceId(0)).is_none());
    assert_eq!(control.poll_output(), None);
}

#[test]
fn heartbeats_make_a_registered_instance_passing_and_routable() {
    let mut control = control_with(RegistryConfig::default());
    assert_eq!(control.register(Instant::ZERO, request(0, "web")), Ok(RegisterOutcome::Created));
    assert_eq!(
        control.registry().instance(InstanceId(0)).map(|i| i.health()),
        Some(CatalogHealth::Critical),
        "new instances start critical until heard from"
    );
    let out = heartbeat(&mut control, Instant::from_millis(10), 0, 0);
    assert_eq!(updates(&out), vec![(0, true)]);
    assert!(control.is_routable(InstanceId(0)));
    assert_eq!(control.registry().instance(InstanceId(0)).map(|i| i.health()), Some(CatalogHealth::Passing));
    // Re-registering with new metadata keeps it routable.
    let again =
        RegisterRequest { registration: Registration::new(InstanceId(0), "web", "v2"), ..request(0, "web") };
    assert_eq!(control.register(Instant::from_millis(20), again), Ok(RegisterOutcome::Updated));
    assert!(control.is_routable(InstanceId(0)));
}

#[test]
fn an_instance_critical_too_long_leaves_the_catalog_and_rotation() {
    let registry = RegistryConfig {
        default_ttl: Duration::from_secs(2),
        deregister_critical_after: Some(Duration::from_secs(10)),
        ..RegistryConfig::default()
    };
    let mut control = control_with(registry);
    control.register(Instant::ZERO, request(0, "web")).expect("valid");
    control.register(Instant::ZERO, request(1, "web")).expect("valid");
    let _ = std::iter::from_fn(|| control.poll_output()).count();
    let mut out = Vec::new();
    // Instance 1 beats every second; instance 0 once, then falls silent.
    out.extend(heartbeat(&mut control, Instant::ZERO, 0, 0));
    let mut now = Instant::ZERO;
    for s in 0..20u64 {
        now = Instant::from_secs(s);
        out.extend(heartbeat(&mut control, now, 1, s));
        while let Some(t) = control.poll_timeout().filter(|&t| t <= now + Duration::from_secs(1)) {
            control.handle_timeout(t);
            out.extend(std::iter::from_fn(|| control.poll_output()));
        }
    }
    assert!(now >= Instant::from_secs(19));
    assert_eq!(
        updates(&out).iter().filter(|u| u.0 == 0).copied().collect::<Vec<_>>(),
        vec![(0, true), (0, false)]
    );
    assert!(control.registry().instance(InstanceId(0)).is_none(), "critical past 10 s: deregistered");
    assert!(control.detector().instance(InstanceId(0)).is_none(), "and no longer watched");
    assert!(control.registry().instance(InstanceId(1)).is_some(), "the healthy one stays");
    assert!(control.is_routable(InstanceId(1)));
}

#[test]
fn a_clean_deregistration_tells_clients() {
    let mut control = control_with(RegistryConfig::default());
    control.register(Instant::ZERO, request(3, "web")).expect("valid");
    let _ = heartbeat(&mut control, Instant::ZERO, 3, 0);
    assert!(control.deregister(Instant::from_secs(1), InstanceId(3)));
    let out: Vec<Output> = std::iter::from_fn(|| control.poll_output()).collect();
    assert_eq!(updates(&out), vec![(3, false)]);
    assert!(!control.deregister(Instant::from_secs(1), InstanceId(3)), "only once");
    // Its heartbeats are now ignored.
    assert!(updates(&heartbeat(&mut control, Instant::from_secs(2), 3, 1)).is_empty());
}

#[test]
fn endpoint_updates_name_the_instance_service_to_the_last() {
    let mut control = control_with(RegistryConfig::default());
    control.register(Instant::ZERO, request(0, "web")).expect("valid");
    control.register(Instant::ZERO, request(1, "search")).expect("valid");
    let web = control.registry().service_id("web").expect("registered");
    let search = control.registry().service_id("search").expect("registered");
    assert_ne!(web, search);
    let mut out = heartbeat(&mut control, Instant::ZERO, 0, 0);
    out.extend(heartbeat(&mut control, Instant::ZERO, 1, 0));
    assert!(control.deregister(Instant::from_secs(1), InstanceId(1)));
    out.extend(std::iter::from_fn(|| control.poll_output()));
    let told: Vec<(u32, ServiceId, bool)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message: Message::EndpointUpdate(u) } if *to == CLIENT => {
                Some((u.instance.0, u.service, u.routable))
            }
            _ => None,
        })
        .collect();
    // The leave update still names the service: its clients hear it go.
    assert_eq!(told, vec![(0, web, true), (1, search, true), (1, search, false)]);
    // A client subscribing now gets the table, each entry with its service.
    let late = NodeId(10);
    control.handle(Instant::from_secs(2), Input::Message { from: late, message: Message::Subscribe });
    let table: Vec<(u32, ServiceId)> = std::iter::from_fn(|| control.poll_output())
        .filter_map(|o| match o {
            Output::Send { to, message: Message::EndpointUpdate(u) } if to == late => {
                Some((u.instance.0, u.service))
            }
            _ => None,
        })
        .collect();
    assert_eq!(table, vec![(0, web)], "the instance that left is not in the table");
}

fn recovering_control() -> ControlPlane {
    let recovery = RecoveryConfig {
        services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
        ..RecoveryConfig::default()
    };
    let config = ControlConfig { recovery: Some(recovery), ..ControlConfig::default() };
    let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
    control.register(Instant::ZERO, request(0, "web")).expect("valid");
    let _ = std::iter::from_fn(|| control.poll_output()).count();
    control
}

fn recovery_outputs(outputs: &[Output]) -> Vec<RecoveryOutput> {
    outputs.iter().filter_map(|o| if let Output::Recovery(r) = o { Some(**r) } else { None }).collect()
}

/// Run the control node's timers up to `until`, collecting outputs.
fn run_until(control: &mut ControlPlane, until: Instant) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(t) = control.poll_timeout().filter(|&t| t <= until) {
        control.handle_timeout(t);
        out.extend(std::iter::from_fn(|| control.poll_output()));
    }
    out
}

#[test]
fn a_silent_instance_is_restarted_and_its_episode_ends_when_it_beats_again() {
    let mut control = recovering_control();
    let _ = heartbeat(&mut control, Instant::ZERO, 0, 0);
    // Silence: dead after 5 s, then recovery acts at once (no backoff on
    // a first attempt).
    let out = run_until(&mut control, Instant::from_secs(6));
    let actions: Vec<crate::recovery::Action> = recovery_outputs(&out)
        .into_iter()
        .filter_map(|r| if let RecoveryOutput::Action(a) = r { Some(a) } else { None })
        .collect();
    assert_eq!(actions.len(), 1, "one action: {out:?}");
    assert_eq!(actions[0].instance, Some(InstanceId(0)));
    assert_eq!(actions[0].kind, crate::recovery::ActionKind::Restart);
    let recovery = control.recovery().expect("configured");
    assert!(recovery.episode(InstanceId(0)).is_some(), "an episode is open");
    // The restarted instance beats again: healthy, the episode ends.
    let back = heartbeat(&mut control, Instant::from_secs(8), 0, 1);
    let resolved = recovery_outputs(&back).iter().any(
        |r| matches!(r, RecoveryOutput::Decision(d) if matches!(d.kind, crate::recovery::DecisionKind::Resolved { .. })),
    );
    assert!(resolved, "resolved on the alive verdict: {back:?}");
    assert!(control.recovery().expect("configured").episode(InstanceId(0)).is_none());
}

#[test]
fn a_failed_action_reported_by_the_driver_is_retried() {
    let mut control = recovering_control();
    let _ = heartbeat(&mut control, Instant::ZERO, 0, 0);
    let out = run_until(&mut control, Instant::from_secs(6));
    let first = recovery_outputs(&out)
        .into_iter()
        .find_map(|r| if let RecoveryOutput::Action(a) = r { Some(a) } else { None })
        .expect("an action");
    control.recovery_outcome(Instant::from_secs(6), first.id, Outcome::Failed);
    let _ = std::iter::from_fn(|| control.poll_output()).count();
    // The retry waits out its backoff (at most 10 s, the first step).
    let out = run_until(&mut control, Instant::from_secs(17));
    let retry = recovery_outputs(&out)
        .into_iter()
        .find_map(|r| if let RecoveryOutput::Action(a) = r { Some(a) } else { None })
        .expect("a second attempt");
    assert_eq!(retry.id.correlation, first.id.correlation, "the same episode");
    assert_eq!(retry.id.attempt, 2);
}

/// Recovery for service 0 over `count` heartbeat-only instances, all
/// beating once at time zero.
fn recovering_fleet(count: u32) -> ControlPlane {
    let recovery = RecoveryConfig {
        services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
        ..RecoveryConfig::default()
    };
    let config = ControlConfig { recovery: Some(recovery), ..ControlConfig::default() };
    let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
    for i in 0..count {
        control.register(Instant::ZERO, request(i, "web")).expect("valid");
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        heartbeat(&mut control, Instant::ZERO, i, 1);
    }
    control
}

fn decisions_of(outputs: &[Output]) -> Vec<(Option<InstanceId>, crate::recovery::DecisionKind)> {
    recovery_outputs(outputs)
        .into_iter()
        .filter_map(|r| if let RecoveryOutput::Decision(d) = r { Some((d.instance, d.kind)) } else { None })
        .collect()
}

#[test]
fn a_fleet_gone_silent_is_a_storm_before_anyone_is_declared_dead() {
    // The observer is cut off: no heartbeat arrives from anyone.
    let mut control = recovering_fleet(6);
    let suspected = run_until(&mut control, Instant::from_millis(4500));
    let storm = decisions_of(&suspected)
        .into_iter()
        .find(|(_, d)| matches!(d, crate::recovery::DecisionKind::StormSuspected { .. }));
    assert!(storm.is_some(), "suspicion alone enters the storm: {:?}", decisions_of(&suspected));
    assert!(control.recovery().expect("configured").in_storm(StormScope::Service(ServiceId(0))));
    // Then every instance is declared dead, and none is restarted.
    let dead = run_until(&mut control, Instant::from_secs(30));
    let reports = decisions_of(&dead)
        .iter()
        .filter(|(_, d)| matches!(d, crate::recovery::DecisionKind::Detected { .. }))
        .count();
    assert_eq!(reports, 6, "every instance is reported failing");
    let acted: Vec<RecoveryOutput> =
        recovery_outputs(&dead).into_iter().filter(|r| matches!(r, RecoveryOutput::Action(_))).collect();
    assert!(acted.is_empty(), "a silent fleet is not restarted: {acted:?}");
}

#[test]
fn one_silent_instance_of_six_is_no_storm_and_is_restarted() {
    let mut control = recovering_fleet(6);
    let mut out = Vec::new();
    for t in 1..=10u64 {
        for i in 1..6 {
            out.extend(heartbeat(&mut control, Instant::from_secs(t), i, t + 1));
        }
        out.extend(run_until(&mut control, Instant::from_secs(t)));
    }
    assert!(
        !decisions_of(&out)
            .iter()
            .any(|(_, d)| matches!(d, crate::recovery::DecisionKind::StormSuspected { .. }))
    );
    let restarted: Vec<Option<InstanceId>> = recovery_outputs(&out)
        .into_iter()
        .filter_map(|r| if let RecoveryOutput::Action(a) = r { Some(a.instance) } else { None })
        .collect();
    assert_eq!(restarted, [Some(InstanceId(0))]);
}

#[test]
fn a_rerouted_instance_leaves_rotation_until_its_episode_ends() {
    use crate::health::{CheckConfig, ErrorRateRule, InstanceHealthConfig, ProbeCheck, ProbeKind};
    let readiness = ProbeCheck { error_rate: Some(ErrorRateRule::default()), ..ProbeCheck::default() };
    let recovery = RecoveryConfig {
        services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
        ..RecoveryConfig::default()
    };
    let config = ControlConfig {
        recovery: Some(recovery),
        health_classes: vec![Some(InstanceHealthConfig {
            checks: vec![CheckConfig::probe_with(ProbeKind::Readiness, readiness)],
            flap: None,
        })],
        ..ControlConfig::default()
    };
    let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
    control.register(Instant::ZERO, request(0, "web")).expect("valid");
    let _ = std::iter::from_fn(|| control.poll_output()).count();
    // Answer each probe 1 ms later: ok, or an error for every `bad`-th.
    let mut answered = 0u64;
    let mut routable_at = Vec::new();
    let mut drive = |control: &mut ControlPlane, from: u64, to: u64, bad: Option<u64>| {
        let mut all = Vec::new();
        for ms in (from..to).step_by(500) {
            let now = Instant::from_millis(ms);
            all.extend(heartbeat(control, now, 0, ms + 1));
            let outs = run_until(control, now);
            for o in &outs {
                if let Output::Send { message: Message::Probe(p), .. } = o {
                    answered += 1;
                    let ok = bad.is_none_or(|b| answered % b != 0);
                    let reply = Message::ProbeReply(crate::message::ProbeReply { id: p.id, ok });
                    control.handle(
                        now + Duration::from_millis(1),
                        Input::Message { from: NodeId(1), message: reply },
                    );
                    all.extend(std::iter::from_fn(|| control.poll_output()));
                }
            }
            all.extend(outs);
            routable_at.push((ms, control.is_routable(InstanceId(0))));
        }
        all
    };
    let healthy = drive(&mut control, 0, 20_000, None);
    assert!(control.is_routable(InstanceId(0)), "healthy and ready");
    assert!(recovery_outputs(&healthy).is_empty());
    // A quarter of probes fail: degraded, still ready, but recovery
    // reroutes it: out of rotation.
    let degraded = drive(&mut control, 20_000, 60_000, Some(4));
    let reroute = recovery_outputs(&degraded).into_iter().find_map(|r| match r {
        RecoveryOutput::Action(a) if a.kind == crate::recovery::ActionKind::Reroute => Some(a),
        _ => None,
    });
    let reroute = reroute.expect("the default degraded ladder reroutes first");
    assert_eq!(reroute.instance, Some(InstanceId(0)));
    assert!(
        control.monitor().instance(InstanceId(0)).is_some_and(|v| v.ready),
        "the monitor alone would keep it"
    );
    assert!(!control.is_routable(InstanceId(0)), "rerouted: out of rotation");
    // Healthy again: the episode resolves and it rejoins.
    let _ = drive(&mut control, 60_000, 90_000, None);
    assert!(control.is_routable(InstanceId(0)), "back in rotation once healthy");
    assert!(control.recovery().expect("configured").episode(InstanceId(0)).is_none());
}

#[test]
fn a_silent_instance_behind_lossy_heartbeats_is_rerouted_then_restarted_once_they_turn_clean() {
    use crate::health::{CheckConfig, InstanceHealthConfig, ProbeKind};
    let recovery = RecoveryConfig {
        services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
        ..RecoveryConfig::default()
    };
    let config = ControlConfig {
        recovery: Some(recovery),
        health_classes: vec![Some(InstanceHealthConfig {
            checks: vec![CheckConfig::probe(ProbeKind::Liveness)],
            flap: None,
        })],
        ..ControlConfig::default()
    };
    let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
    control.register(Instant::ZERO, request(0, "web")).expect("valid");
    let _ = std::iter::from_fn(|| control.poll_output()).count();
    // Beat every second; `skip` drops every fifth beat (a lossy link);
    // probes are answered while `answer`, else left to time out.
    let mut seq = 0u64;
    let mut run = |control: &mut ControlPlane, from_s: u64, to_s: u64, skip: bool, answer: bool| {
        let mut out = Vec::new();
        for t in from_s..to_s {
            let now = Instant::from_secs(t);
            seq += 1;
            if !(skip && seq % 5 == 0) {
                out.extend(heartbeat(control, now, 0, seq));
            }
            let outs = run_until(control, now + Duration::from_millis(999));
            for o in &outs {
                if let (true, Output::Send { message: Message::Probe(p), .. }) = (answer, o) {
                    let reply = Message::ProbeReply(crate::message::ProbeReply { id: p.id, ok: true });
                    control.handle(
                        now + Duration::from_millis(5),
                        Input::Message { from: NodeId(1), message: reply },
                    );
                    out.extend(std::iter::from_fn(|| control.poll_output()));
                }
            }
            out.extend(outs);
        }
        out
    };
    let kinds = |out: &[Output]| -> Vec<crate::recovery::ActionKind> {
        recovery_outputs(out)
            .into_iter()
            .filter_map(|r| if let RecoveryOutput::Action(a) = r { Some(a.kind) } else { None })
            .collect()
    };
    // Healthy on a lossy link, then its probes stop getting through.
    let warm = run(&mut control, 1, 40, true, true);
    assert!(kinds(&warm).is_empty(), "{:?}", kinds(&warm));
    let lossy = run(&mut control, 40, 50, true, false);
    assert_eq!(kinds(&lossy), [crate::recovery::ActionKind::Reroute], "judged unreachable, not hung");
    assert!(!control.is_routable(InstanceId(0)));
    // The heartbeats turn clean, the probes still fail: it is hung.
    let clean = run(&mut control, 50, 120, false, false);
    assert!(
        kinds(&clean).contains(&crate::recovery::ActionKind::Restart),
        "restarted once the heartbeats show no loss: {:?}",
        kinds(&clean)
    );
}

#[test]
fn without_recovery_nothing_acts_on_verdicts() {
    let mut control = control_with(RegistryConfig::default());
    control.register(Instant::ZERO, request(0, "web")).expect("valid");
    let _ = heartbeat(&mut control, Instant::ZERO, 0, 0);
    let out = run_until(&mut control, Instant::from_secs(30));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Health(HealthEvent::LivenessChanged { to: Liveness::Dead, .. })))
    );
    assert!(recovery_outputs(&out).is_empty());
    assert!(control.recovery().is_none());
}

#[test]
fn events_have_stable_names_and_a_serde_form() {
    let event = Event::RoutabilityChanged {
        instance: InstanceId(4),
        routable: false,
        index: 7,
        at: Instant::from_millis(1500),
    };
    assert_eq!(event.name(), "routing.changed");
    assert_eq!(event.instance(), Some(InstanceId(4)));
    let json = serde_json::to_value(event).expect("serialisable");
    assert_eq!(json["event"], "routability_changed", "{json}");
    assert_eq!(json["data"]["index"], 7, "{json}");
    let back: Event = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, event);

    let health = Event::Health(HealthEvent::LivenessChanged {
        instance: InstanceId(1),
        from: Liveness::Alive,
        to: Liveness::Suspect,
        last_heard: Instant::ZERO,
    });
    assert_eq!(health.name(), "health.liveness_changed");
    let json = serde_json::to_string(&health).expect("serialisable");
    assert!(json.starts_with(r#"{"event":"health","data":{"LivenessChanged""#), "{json}");
    let back: Event = serde_json::from_str(&json).expect("round trip");
    assert_eq!(back, health);
}

// ------------------------------------------------- partitions and failures

/// A client's report about `instance` arriving at `at`: `ok` answers, the
/// latest `since_ok_ms` before; `timed_out` timeouts, the latest
/// `since_failure_ms` before.
fn call_report(
    control: &mut ControlPlane,
    at: Instant,
    instance: u32,
    (ok, since_ok_ms): (u32, u32),
    (timed_out, since_failure_ms): (u32, u32),
) -> Vec<Output> {
    let report = crate::message::CallReport {
        instance: InstanceId(instance),
        ok,
        errors: 0,
        refused: 0,
        timed_out,
        since_ok_ms,
        since_failure_ms,
    };
    control.handle(at, Input::Message { from: CLIENT, message: Message::CallReport(report) });
    std::iter::from_fn(|| control.poll_output()).collect()
}

/// Six heartbeat-only instances of one service over zones a, b, c
/// (instance `n` in zone `n % 3`), all beating at zero.
fn zoned_fleet() -> ControlPlane {
    let recovery = RecoveryConfig {
        services: vec![crate::recovery::ServiceSpec::new(ServiceId(0))],
        ..RecoveryConfig::default()
    };
    let config = ControlConfig { recovery: Some(recovery), ..ControlConfig::default() };
    let mut control = ControlPlane::new(&config, Instant::ZERO).expect("valid");
    for i in 0..6 {
        let zone = ["a", "b", "c"][i as usize % 3];
        let registration = Registration::new(InstanceId(i), "web", "v1").zone(zone);
        control
            .register(Instant::ZERO, RegisterRequest { registration, ..request(i, "web") })
            .expect("valid");
        let _ = std::iter::from_fn(|| control.poll_output()).count();
        heartbeat(&mut control, Instant::ZERO, i, 1);
    }
    control
}

/// Seconds `from..=to`: every instance in `beating` beats, timers run.
fn beat(control: &mut ControlPlane, beating: &[u32], from: u64, to: u64) -> Vec<Output> {
    let mut out = Vec::new();
    for t in from..=to {
        for &i in beating {
            out.extend(heartbeat(control, Instant::from_secs(t), i, t + 1));
        }
        out.extend(run_until(control, Instant::from_secs(t)));
    }
    out
}

fn actions_of(outputs: &[Output]) -> Vec<(InstanceId, crate::recovery::ActionKind)> {
    recovery_outputs(outputs)
        .into_iter()
        .filter_map(|r| match r {
            RecoveryOutput::Action(a) => a.instance.map(|i| (i, a.kind)),
            RecoveryOutput::Decision(_) => None,
        })
        .collect()
}

#[test]
fn a_zone_its_clients_still_reach_is_cut_off_not_failed_and_is_never_restarted() {
    use crate::recovery::ActionKind;
    let mut control = zoned_fleet();
    // Zone c (instances 2 and 5) falls silent to the control node at
    // zero; its clients still get answers from 2 (they never call 5).
    let mut out = beat(&mut control, &[0, 1, 3, 4], 1, 2);
    out.extend(call_report(&mut control, Instant::from_millis(2_500), 2, (40, 10), (0, CallReport::NEVER)));
    out.extend(beat(&mut control, &[0, 1, 3, 4], 3, 40));
    let acted = actions_of(&out);
    assert!(
        acted.iter().all(|&(_, kind)| kind == ActionKind::Reroute),
        "traffic taken away, nothing restarted: {acted:?}"
    );
    assert!(acted.contains(&(InstanceId(2), ActionKind::Reroute)));
    assert!(acted.contains(&(InstanceId(5), ActionKind::Reroute)), "its zone-mate is the same partition");
    let recovery = control.recovery().expect("configured");
    assert!(recovery.is_unreachable(Instant::from_secs(40), InstanceId(5)));
    assert!(!recovery.in_storm(StormScope::Service(ServiceId(0))), "one partition is one event");
    // The partition heals: both beat again, their episodes end, and
    // nothing was ever restarted.
    let healed = beat(&mut control, &[0, 1, 2, 3, 4, 5], 41, 60);
    assert!(actions_of(&healed).is_empty(), "{:?}", actions_of(&healed));
    let recovery = control.recovery().expect("configured");
    assert!(recovery.episode(InstanceId(2)).is_none() && recovery.episode(InstanceId(5)).is_none());
}

use crate::message::CallReport;

#[test]
fn a_silent_instance_its_clients_fail_to_reach_is_restarted_at_once() {
    use crate::recovery::ActionKind;
    let mut control = zoned_fleet();
    let mut out = beat(&mut control, &[0, 1, 3, 4, 5], 1, 2);
    // Its clients' calls time out too: it failed.
    out.extend(call_report(&mut control, Instant::from_millis(2_500), 2, (0, CallReport::NEVER), (12, 100)));
    out.extend(beat(&mut control, &[0, 1, 3, 4, 5], 3, 6));
    // Dead at 5 s (heartbeat only): restarted then, as without clients.
    assert_eq!(actions_of(&out), [(InstanceId(2), ActionKind::Restart)]);
}

#[test]
fn a_silent_instance_waits_for_its_clients_word_then_acts() {
    use crate::recovery::ActionKind;
    let mut control = zoned_fleet();
    // Clients report about instance 0 only: the service is watched, but
    // nobody says anything about 2.
    let mut out = beat(&mut control, &[0, 1, 3, 4, 5], 1, 2);
    out.extend(call_report(&mut control, Instant::from_millis(2_500), 0, (30, 5), (0, CallReport::NEVER)));
    out.extend(beat(&mut control, &[0, 1, 3, 4, 5], 3, 5));
    // Suspect at 3 s: waits until 6 s for its clients (confirm_within);
    // dead at 5 s: traffic away at once, the restart waits.
    assert_eq!(actions_of(&out), [(InstanceId(2), ActionKind::Reroute)]);
    let out = beat(&mut control, &[0, 1, 3, 4, 5], 6, 7);
    assert_eq!(actions_of(&out), [(InstanceId(2), ActionKind::Restart)], "no word came: treated as failed");
}
