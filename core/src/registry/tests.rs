//! Tests of the registry: behaviour, then properties over random operations.

use proptest::prelude::*;

use super::*;
use crate::id::InstanceId;
use crate::id::ServiceId;
use crate::time::{Duration, Instant};

fn registry() -> Registry {
    Registry::new(RegistryConfig::default()).expect("default config is valid")
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn reg(id: u32, service: &str, version: &str) -> Registration {
    Registration::new(InstanceId(id), service, version)
        .endpoint("http", format!("10.0.0.{id}:8080"))
        .endpoint(HEALTH_ENDPOINT, format!("10.0.0.{id}:9090"))
        .initial_health(HealthStatus::Passing)
}

fn healthy_ids(r: &Registry, service: &str, query: &Query) -> Vec<u32> {
    let id = r.service_id(service).expect("service known");
    r.healthy(id, query).map(|i| i.id.0).collect()
}

#[test]
fn register_query_and_deregister() {
    let mut r = registry();
    assert_eq!(
        r.register(secs(0), reg(2, "checkout", "v1").zone("eu-1").tag("canary")),
        Ok(RegisterOutcome::Created)
    );
    assert_eq!(r.register(secs(0), reg(1, "checkout", "v2").zone("eu-2")), Ok(RegisterOutcome::Created));
    assert_eq!(r.register(secs(0), reg(3, "payments", "v1")), Ok(RegisterOutcome::Created));
    assert_eq!(r.index(), 3);
    assert_eq!(healthy_ids(&r, "checkout", &Query::all()), vec![1, 2], "id order");
    assert_eq!(healthy_ids(&r, "checkout", &Query::all().version("v1")), vec![2]);
    assert_eq!(healthy_ids(&r, "checkout", &Query::all().zone("eu-2")), vec![1]);
    assert_eq!(healthy_ids(&r, "checkout", &Query::all().tag("canary")), vec![2]);
    assert_eq!(healthy_ids(&r, "checkout", &Query::all().tag("canary").zone("eu-2")), Vec::<u32>::new());
    let two = r.instance(InstanceId(2)).expect("registered");
    assert_eq!(two.health_endpoint(), Some("10.0.0.2:9090"));
    assert_eq!(two.endpoint("http"), Some("10.0.0.2:8080"));
    assert_eq!(two.registered_at, secs(0));

    r.deregister(secs(1), InstanceId(2)).expect("registered");
    assert_eq!(healthy_ids(&r, "checkout", &Query::all()), vec![1]);
    assert_eq!(r.deregister(secs(1), InstanceId(2)), Err(RegistryError::UnknownInstance(InstanceId(2))));
    assert_eq!(r.index(), 4, "a refused request does not bump the index");
    r.check_invariants();
}

#[test]
fn initial_health_is_critical_by_default_and_set_health_changes_it() {
    let mut r = registry();
    r.register(secs(0), Registration::new(InstanceId(1), "api", "v1")).expect("valid");
    assert_eq!(healthy_ids(&r, "api", &Query::all()), Vec::<u32>::new(), "nothing vouched for it yet");
    r.set_health(secs(1), InstanceId(1), HealthStatus::Passing).expect("registered");
    assert_eq!(healthy_ids(&r, "api", &Query::all()), vec![1]);
    r.set_health(secs(2), InstanceId(1), HealthStatus::Warning).expect("registered");
    assert_eq!(healthy_ids(&r, "api", &Query::all()), Vec::<u32>::new(), "warning is not passing");
    let api = r.service_id("api").expect("known");
    assert_eq!(r.instances(api, &Query::all()).count(), 1, "but it is still listed");
    r.check_invariants();
}

#[test]
fn expired_lease_is_critical_until_renewed() {
    let mut r = registry();
    r.register(secs(0), reg(1, "api", "v1").ttl(Duration::from_secs(5))).expect("valid");
    assert_eq!(r.poll_timeout(), Some(secs(5)));
    r.handle_timeout(Instant::from_millis(4_999));
    assert_eq!(healthy_ids(&r, "api", &Query::all()), vec![1], "not due yet");
    r.renew(secs(4), InstanceId(1)).expect("registered");
    // The armed timer still says 5 s (renewals are lazy): waking then only
    // re-arms it at the renewed deadline. Early, never late.
    assert!(r.poll_timeout().is_some_and(|t| t <= secs(9)));
    r.handle_timeout(secs(5));
    assert_eq!(healthy_ids(&r, "api", &Query::all()), vec![1], "renewed: still passing at 5 s");
    assert_eq!(r.poll_timeout(), Some(secs(9)), "renewal moved the deadline");
    r.check_invariants();
    r.handle_timeout(secs(9));
    r.handle_timeout(secs(9)); // twice is harmless
    let one = r.instance(InstanceId(1)).expect("still registered");
    assert_eq!(one.health(), HealthStatus::Critical);
    assert!(one.lease_expired);
    assert_eq!(one.reported_health, HealthStatus::Passing);
    assert_eq!(one.critical_since, Some(secs(9)));
    r.renew(secs(10), InstanceId(1)).expect("registered");
    assert_eq!(healthy_ids(&r, "api", &Query::all()), vec![1], "a heartbeat revives it");
    let kinds: Vec<ChangeKind> = r.changes_since(1).expect("in log").map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::HealthChanged { from: HealthStatus::Passing, to: HealthStatus::Critical },
            ChangeKind::HealthChanged { from: HealthStatus::Critical, to: HealthStatus::Passing },
        ]
    );
    r.check_invariants();
}

#[test]
fn instance_critical_too_long_is_deregistered() {
    let config =
        RegistryConfig { deregister_critical_after: Some(Duration::from_secs(30)), ..Default::default() };
    let mut r = Registry::new(config).expect("valid");
    r.register(secs(0), reg(1, "api", "v1").ttl(Duration::from_secs(5))).expect("valid");
    r.handle_timeout(secs(5));
    assert_eq!(r.poll_timeout(), Some(secs(35)), "30 s after the lease ran out");
    r.handle_timeout(secs(34));
    assert!(r.instance(InstanceId(1)).is_some());
    r.handle_timeout(secs(35));
    assert!(r.instance(InstanceId(1)).is_none());
    assert_eq!(r.poll_timeout(), None);
    let last = r.changes_since(r.index() - 1).expect("in log").next().copied().expect("one change");
    assert_eq!(last.kind, ChangeKind::Deregistered { reason: DeregisterReason::CriticalTooLong });
    r.check_invariants();
}

#[test]
fn recovery_before_the_deadline_cancels_deregistration() {
    let mut r = registry();
    r.register(secs(0), reg(1, "api", "v1").ttl(Duration::from_secs(600))).expect("valid");
    r.set_health(secs(1), InstanceId(1), HealthStatus::Critical).expect("registered");
    assert_eq!(r.poll_timeout(), Some(secs(61)));
    r.set_health(secs(30), InstanceId(1), HealthStatus::Warning).expect("registered");
    assert_eq!(r.poll_timeout(), Some(secs(600)), "only the lease remains");
    r.handle_timeout(secs(61));
    assert!(r.instance(InstanceId(1)).is_some());
    r.check_invariants();
}

#[test]
fn reregistration_updates_metadata_and_keeps_history() {
    let mut r = registry();
    r.register(secs(0), reg(1, "api", "v1")).expect("valid");
    assert_eq!(r.register(secs(1), reg(1, "api", "v1")), Ok(RegisterOutcome::Renewed));
    assert_eq!(r.index(), 1, "a plain renewal is not a change");
    assert_eq!(r.register(secs(2), reg(1, "api", "v2").weight(5)), Ok(RegisterOutcome::Updated));
    let one = r.instance(InstanceId(1)).expect("registered");
    assert_eq!((one.version.as_str(), one.weight, one.registered_at), ("v2", 5, secs(0)));
    assert_eq!((one.create_index, one.modify_index), (1, 2));
    assert_eq!(one.lease_expires_at, secs(12));
    r.check_invariants();
}

#[test]
fn bad_registrations_get_clear_errors_and_change_nothing() {
    let mut r = registry();
    r.register(secs(0), reg(1, "api", "v1")).expect("valid");
    let before = (r.index(), r.len(), r.services().count());
    let long = "x".repeat(300);
    type Expect = fn(&RegistryError) -> bool;
    let cases: Vec<(Registration, Expect)> = vec![
        (reg(2, "", "v1"), |e| matches!(e, RegistryError::Empty { field: "service name" })),
        (reg(2, "-api", "v1"), |e| matches!(e, RegistryError::InvalidChar { at: 0, .. })),
        (reg(2, "ap i", "v1"), |e| matches!(e, RegistryError::InvalidChar { at: 2, .. })),
        (reg(2, "api/v2", "v1"), |e| matches!(e, RegistryError::InvalidChar { at: 3, .. })),
        (reg(2, "api", ""), |e| matches!(e, RegistryError::Empty { field: "version" })),
        (reg(2, "api", &long), |e| matches!(e, RegistryError::TooLong { field: "version", len: 300, .. })),
        (reg(2, "api", "v1").zone("eu 1"), |e| matches!(e, RegistryError::InvalidChar { field: "zone", .. })),
        (reg(2, "api", "v1").weight(0), |e| *e == RegistryError::ZeroWeight),
        (reg(2, "api", "v1").tag(""), |e| matches!(e, RegistryError::Empty { field: "tag" })),
        ((0..33).fold(reg(2, "api", "v1"), |r, i| r.tag(format!("t{i}"))), |e| {
            matches!(e, RegistryError::TooMany { field: "tags", count: 33, max: 32 })
        }),
        (reg(2, "api", "v1").endpoint("http", "x:1"), |e| matches!(e, RegistryError::DuplicateEndpoint(_))),
        (reg(2, "api", "v1").ttl(Duration::from_millis(1)), |e| {
            matches!(e, RegistryError::TtlOutOfRange { .. })
        }),
        (reg(1, "payments", "v1"), |e| matches!(e, RegistryError::DuplicateInstance { .. })),
    ];
    for (registration, expected) in cases {
        let err = r.register(secs(1), registration.clone()).expect_err("invalid");
        assert!(expected(&err), "{registration:?} gave {err:?}");
        assert!(!err.to_string().is_empty());
    }
    assert_eq!((r.index(), r.len(), r.services().count()), before, "nothing changed");
    assert_eq!(r.service_id("payments"), None, "a refused registration does not intern its service");
    r.check_invariants();
}

#[test]
fn duplicate_instance_error_names_the_owner() {
    let mut r = registry();
    r.register(secs(0), reg(7, "api", "v1")).expect("valid");
    let err = r.register(secs(0), reg(7, "web", "v1")).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "instance#7 is already registered for service \"api\" (service#0); deregister it first"
    );
}

#[test]
fn limits_are_enforced() {
    let config = RegistryConfig { max_instances: 2, max_services: 2, max_watches: 1, ..Default::default() };
    let mut r = Registry::new(config).expect("valid");
    r.register(secs(0), reg(1, "a", "v1")).expect("valid");
    r.register(secs(0), reg(2, "b", "v1")).expect("valid");
    assert_eq!(r.register(secs(0), reg(3, "a", "v1")), Err(RegistryError::CatalogFull { max: 2 }));
    r.deregister(secs(0), InstanceId(2)).expect("registered");
    // `b` has no instance and no watch: forgotten to make room for `c`,
    // which takes a fresh id.
    let b = r.service_id("b").expect("known until forgotten");
    r.register(secs(0), reg(3, "c", "v1")).expect("b's room");
    assert_eq!(r.service_id("b"), None);
    assert_ne!(r.service_id("c"), Some(b), "ids are never reused");
    assert_eq!(r.reclaimed_services(), 1);
    // Both known services are in use now: a third name is refused.
    assert_eq!(r.watch("d"), Err(RegistryError::TooManyServices { max: 2 }));
    r.watch("a").expect("first watch");
    assert_eq!(r.watch("a"), Err(RegistryError::TooManyWatches { max: 1 }));
    r.check_invariants();
}

#[test]
fn service_names_nobody_uses_are_forgotten_so_new_ones_always_fit() {
    // The case, scaled down: far more names come and go than the
    // table holds; every new one gets in, none with a reused id.
    let config = RegistryConfig { max_services: 3, ..Default::default() };
    let mut r = Registry::new(config).expect("valid");
    let mut last: Option<ServiceId> = None;
    for n in 0..100u32 {
        let name = format!("svc-{n}");
        r.register(secs(0), reg(n + 1, &name, "v1")).expect("room is made");
        let id = r.service_id(&name).expect("just registered");
        assert!(last.is_none_or(|l| id > l), "ids only grow: {id:?} after {last:?}");
        last = Some(id);
        r.deregister(secs(0), InstanceId(n + 1)).expect("registered");
        assert!(r.services().count() <= 3);
        r.check_invariants();
    }
    assert_eq!(r.reclaimed_services(), 97);
}

#[test]
fn a_watched_or_used_service_is_never_forgotten() {
    let config = RegistryConfig { max_services: 2, ..Default::default() };
    let mut r = Registry::new(config).expect("valid");
    r.watch("watched").expect("room");
    r.register(secs(0), reg(1, "used", "v1")).expect("room");
    assert_eq!(r.register(secs(0), reg(2, "new", "v1")), Err(RegistryError::TooManyServices { max: 2 }));
    assert!(r.service_id("watched").is_some() && r.service_id("used").is_some());
    assert_eq!(r.reclaimed_services(), 0);
    r.check_invariants();
}

#[test]
fn bad_configuration_is_rejected() {
    let bad = |c: RegistryConfig| Registry::new(c).expect_err("invalid");
    assert_eq!(
        bad(RegistryConfig { max_instances: 0, ..Default::default() }),
        RegistryConfigError::Zero { which: "max_instances" }
    );
    assert!(matches!(
        bad(RegistryConfig { default_ttl: Duration::from_secs(7200), ..Default::default() }),
        RegistryConfigError::DefaultTtlOutOfRange { .. }
    ));
    assert!(matches!(
        bad(RegistryConfig {
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(1),
            ..Default::default()
        }),
        RegistryConfigError::TtlRange { .. }
    ));
    assert!(matches!(
        bad(RegistryConfig { deregister_critical_after: Some(Duration::ZERO), ..Default::default() }),
        RegistryConfigError::Zero { .. }
    ));
}

#[test]
fn watch_reports_changes_after_an_index_and_blocks_when_none() {
    let mut r = registry();
    let w = r.watch("api").expect("valid name");
    r.register(secs(0), reg(9, "other", "v1")).expect("valid");
    assert_eq!(r.poll_event(), None, "changes to other services do not fire");
    let first = r.poll_watch(w, 0).expect("open").expect("index 0 gets a snapshot");
    assert_eq!(first, WatchResult::Snapshot { index: 1, instances: vec![] });
    assert_eq!(r.poll_watch(w, first.index()), Ok(None), "nothing new: park the client");

    r.register(secs(1), reg(1, "api", "v1")).expect("valid");
    r.register(secs(1), reg(2, "api", "v1")).expect("valid");
    assert_eq!(r.poll_event(), Some(RegistryEvent::WatchFired { watch: w, index: 2 }));
    assert_eq!(r.poll_event(), None, "coalesced until polled");
    let Some(WatchResult::Changes { index, changes }) = r.poll_watch(w, first.index()).expect("open") else {
        panic!("expected changes");
    };
    assert_eq!(index, 3);
    assert_eq!(changes.iter().map(|c| (c.index, c.instance.0)).collect::<Vec<_>>(), vec![(2, 1), (3, 2)]);
    assert_eq!(r.poll_watch(w, index), Ok(None));

    r.set_health(secs(2), InstanceId(1), HealthStatus::Critical).expect("registered");
    assert_eq!(
        r.poll_event(),
        Some(RegistryEvent::WatchFired { watch: w, index: 4 }),
        "re-armed by poll_watch"
    );
    assert!(r.unwatch(w));
    assert!(!r.unwatch(w));
    assert_eq!(r.poll_watch(w, 0), Err(RegistryError::UnknownWatch(w.0)));
    r.check_invariants();
}

#[test]
fn watcher_behind_the_log_gets_a_snapshot() {
    let config = RegistryConfig { change_log_capacity: 4, ..Default::default() };
    let mut r = Registry::new(config).expect("valid");
    let w = r.watch("api").expect("valid");
    for id in 0..6 {
        r.register(secs(0), reg(id, "api", "v1")).expect("valid");
    }
    assert!(r.changes_since(1).is_none(), "log holds indices 3..=6 only");
    assert_eq!(r.changes_since(2).map(|c| c.count()), Some(4));
    let Some(WatchResult::Snapshot { index, instances }) = r.poll_watch(w, 1).expect("open") else {
        panic!("expected a snapshot");
    };
    assert_eq!(index, 6);
    assert_eq!(instances.iter().map(|i| i.id.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
    assert!(matches!(r.poll_watch(w, 2), Ok(Some(WatchResult::Changes { .. }))));
    assert!(matches!(r.poll_watch(w, 99), Ok(Some(WatchResult::Snapshot { .. }))), "index from the future");
    r.check_invariants();
}

// ----- properties -----

#[derive(Clone, Debug)]
enum Op {
    Register { id: u32, service: u8, version: u8, zone: u8, weight: u32, bad_name: bool },
    Deregister(u32),
    Renew(u32),
    SetHealth(u32, HealthStatus),
    Advance(u64),
    Watch(u8),
    PollWatch(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let health =
        prop_oneof![Just(HealthStatus::Passing), Just(HealthStatus::Warning), Just(HealthStatus::Critical)];
    prop_oneof![
        4 => (0..12u32, 0..4u8, 0..3u8, 0..2u8, 0..3u32, prop::bool::weighted(0.1)).prop_map(
            |(id, service, version, zone, weight, bad_name)| Op::Register { id, service, version, zone, weight, bad_name }
        ),
        1 => (0..12u32).prop_map(Op::Deregister),
        3 => (0..12u32).prop_map(Op::Renew),
        3 => (0..12u32, health).prop_map(|(id, h)| Op::SetHealth(id, h)),
        3 => (0..40_000u64).prop_map(Op::Advance),
        1 => (0..4u8).prop_map(Op::Watch),
        2 => (1..8u64, 0..40u64).prop_map(|(w, since)| Op::PollWatch(w, since)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any sequence of valid and invalid operations the catalog's
    /// invariants hold, the index never decreases, refused operations change
    /// nothing, and healthy queries return only passing instances.
    #[test]
    fn invariants_hold_under_random_operations(ops in prop::collection::vec(op(), 1..120)) {
        let config = RegistryConfig {
            default_ttl: Duration::from_secs(5),
            deregister_critical_after: Some(Duration::from_secs(20)),
            change_log_capacity: 16,
            max_instances: 10,
            ..Default::default()
        };
        let mut r = Registry::new(config).expect("valid");
        let mut now = Instant::ZERO;
        let mut last_index = 0;
        for op in ops {
            let before = r.index();
            let result: Result<(), RegistryError> = match op {
                Op::Register { id, service, version, zone, weight, bad_name } => {
                    let name = if bad_name { format!("bad name {service}") } else { format!("svc{service}") };
                    let registration = Registration::new(InstanceId(id), name, format!("v{version}"))
                        .zone(format!("z{zone}"))
                        .weight(weight)
                        .initial_health(HealthStatus::Passing);
                    r.register(now, registration).map(|_| ())
                }
                Op::Deregister(id) => r.deregister(now, InstanceId(id)),
                Op::Renew(id) => r.renew(now, InstanceId(id)),
                Op::SetHealth(id, h) => r.set_health(now, InstanceId(id), h),
                Op::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    r.handle_timeout(now);
                    Ok(())
                }
                Op::Watch(s) => r.watch(&format!("svc{s}")).map(|_| ()),
                Op::PollWatch(w, since) => r.poll_watch(WatchId(w), since).map(|_| ()),
            };
            if result.is_err() {
                prop_assert_eq!(r.index(), before, "a refused operation changes nothing");
            }
            while r.poll_event().is_some() {}
            prop_assert!(r.index() >= last_index);
            last_index = r.index();
            prop_assert!(r.poll_timeout().is_none_or(|t| t > now), "nothing overdue after handle_timeout");
            r.check_invariants();
            for (service, _) in r.services() {
                for instance in r.healthy(service, &Query::all()) {
                    prop_assert_eq!(instance.health(), HealthStatus::Passing);
                    prop_assert!(!instance.lease_expired);
                    prop_assert!(instance.lease_expires_at > now);
                }
            }
        }
    }
}
