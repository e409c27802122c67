//! Tests of the balancer: each behaviour, then properties.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::Strategy as PropStrategy;

use super::Strategy;
use super::*;
use crate::id::InstanceId;
use crate::rng::Seed;
use crate::time::{Duration, Instant};

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn secs(n: u64) -> Instant {
    Instant::from_secs(n)
}

fn ep(id: u32, weight: u32, version: &str, healthy: bool) -> Endpoint<'_> {
    Endpoint { id: InstanceId(id), weight, version, healthy }
}

fn healthy(n: u32) -> Vec<Endpoint<'static>> {
    (0..n).map(|i| ep(i, 1, "v1", true)).collect()
}

/// A balancer with only the named behaviour on.
fn plain(strategy: Strategy) -> BalancerConfig {
    BalancerConfig { strategy, slow_start: None, outlier: None, ..Default::default() }
}

fn balancer(config: BalancerConfig, endpoints: &[Endpoint<'_>]) -> Balancer {
    let mut b = Balancer::new(config, Seed(7)).expect("valid config");
    b.set_endpoints(Instant::ZERO, endpoints).expect("valid endpoints");
    b
}

/// Pick `n` times at `now`, finishing each at once with `latency`; count
/// picks per id.
fn counts(b: &mut Balancer, now: Instant, n: usize) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let p = b.pick(now, None).expect("an endpoint");
        *counts.entry(p.id().0).or_insert(0) += 1;
        b.on_result(now, p, Duration::from_millis(10), true);
    }
    counts
}

fn drain(b: &mut Balancer) -> Vec<BalanceEvent> {
    std::iter::from_fn(|| b.poll_event()).collect()
}

#[test]
fn round_robin_takes_each_eligible_endpoint_in_turn() {
    let mut b = balancer(plain(Strategy::RoundRobin), &healthy(4));
    let first: Vec<u32> = (0..8).map(|_| b.pick(ms(0), None).expect("some").id().0).collect();
    // Seeded start, then id order, wrapping.
    for w in first.windows(2) {
        assert_eq!(w[1], (w[0] + 1) % 4);
    }
    b.set_healthy(ms(1), InstanceId(2), false);
    let after: Vec<u32> = (0..6).map(|_| b.pick(ms(1), None).expect("some").id().0).collect();
    assert!(!after.contains(&2), "{after:?}");
    assert_eq!(counts(&mut b, ms(1), 300).values().copied().collect::<Vec<_>>(), vec![100, 100, 100]);
}

#[test]
fn no_endpoint_no_pick() {
    let mut b = Balancer::new(BalancerConfig::default(), Seed(1)).expect("valid");
    assert_eq!(b.pick(ms(0), None), None);
    b.set_endpoints(ms(0), &[ep(1, 1, "v1", false)]).expect("valid");
    let config = BalancerConfig { panic_threshold_percent: 0, ..plain(Strategy::Weighted) };
    let mut b0 = balancer(config, &[ep(1, 1, "v1", false)]);
    assert_eq!(b0.pick(ms(0), None), None, "no panic mode, nothing healthy");
    assert_eq!(b0.stats().no_endpoint, 1);
}

#[test]
fn panic_mode_balances_over_all_when_too_few_are_healthy() {
    let mut b = balancer(plain(Strategy::RoundRobin), &healthy(4));
    assert!(!b.is_panicking());
    b.set_healthy(ms(1), InstanceId(0), false);
    b.set_healthy(ms(1), InstanceId(1), false);
    assert!(!b.is_panicking(), "2 of 4 healthy is exactly 50 %: not below the threshold");
    assert!(drain(&mut b).is_empty());
    b.set_healthy(ms(2), InstanceId(2), false);
    assert!(b.is_panicking(), "1 of 4 is below 50 %");
    assert_eq!(drain(&mut b), vec![BalanceEvent::PanicEntered { healthy: 1, total: 4 }]);
    let c = counts(&mut b, ms(2), 400);
    assert_eq!(c.len(), 4, "unhealthy endpoints take traffic in panic mode");
    assert!(b.pick(ms(2), None).expect("some").panic());
    assert_eq!(b.stats().panic_picks, 401);
    b.set_healthy(ms(3), InstanceId(0), true);
    assert!(!b.is_panicking());
    assert_eq!(drain(&mut b), vec![BalanceEvent::PanicExited { healthy: 2, total: 4 }]);
    assert!(counts(&mut b, ms(3), 100).keys().all(|&id| id == 0 || id == 3));
}

#[test]
fn weighted_picks_follow_weights() {
    // Tolerance: ±1 % absolute over 100,000 picks (the standard deviation of
    // a share p is sqrt(p(1−p)/n) ≤ 0.16 %, so this is over 6 sigma).
    let eps = [ep(0, 1, "v1", true), ep(1, 3, "v1", true), ep(2, 6, "v1", true)];
    let mut b = balancer(plain(Strategy::Weighted), &eps);
    let c = counts(&mut b, ms(0), 100_000);
    for (id, expected) in [(0, 0.1), (1, 0.3), (2, 0.6)] {
        let share = c[&id] as f64 / 100_000.0;
        assert!((share - expected).abs() < 0.01, "endpoint {id}: {share} vs {expected}");
    }
}

#[test]
fn version_weights_shift_canary_traffic() {
    let config = BalancerConfig {
        version_weights: BTreeMap::from([("v1".to_owned(), 90), ("v2".to_owned(), 10)]),
        ..plain(Strategy::Weighted)
    };
    // Nine v1 endpoints and one v2: the v2 endpoint takes 10 %, not 1/10 of
    // the weight by count (which here happens to coincide), so make the
    // counts lopsided: 3 × v1 and 2 × v2, one v2 with double weight.
    let eps = [
        ep(0, 1, "v1", true),
        ep(1, 1, "v1", true),
        ep(2, 1, "v1", true),
        ep(3, 1, "v2", true),
        ep(4, 2, "v2", true),
        ep(5, 1, "v3", true),
    ];
    let mut b = balancer(config, &eps);
    let c = counts(&mut b, ms(0), 100_000);
    let share =
        |ids: &[u32]| ids.iter().map(|id| c.get(id).copied().unwrap_or(0)).sum::<usize>() as f64 / 1e5;
    assert!((share(&[0, 1, 2]) - 0.9).abs() < 0.01);
    assert!((share(&[3]) - 0.1 / 3.0).abs() < 0.01, "v2's 10 % split by weight 1:2");
    assert!((share(&[4]) - 0.2 / 3.0).abs() < 0.01);
    assert_eq!(share(&[5]), 0.0, "an unlisted version gets no traffic");

    // The canary fails: v1 takes everything.
    b.set_healthy(ms(1), InstanceId(3), false);
    b.set_healthy(ms(1), InstanceId(4), false);
    let c = counts(&mut b, ms(1), 1000);
    assert!(c.keys().all(|&id| id <= 2), "{c:?}");
    // Only the unlisted version is left: shaping is suspended, not the service.
    for id in 0..3 {
        b.set_healthy(ms(2), InstanceId(id), false);
    }
    let config = BalancerConfig { panic_threshold_percent: 0, ..b.config().clone() };
    let mut b = balancer(config, &[ep(0, 1, "v1", false), ep(5, 1, "v3", true)]);
    assert_eq!(b.pick(ms(2), None).map(|p| p.id().0), Some(5));
}

#[test]
fn slow_start_ramps_new_endpoints_linearly_from_the_floor() {
    let config = BalancerConfig {
        slow_start: Some(SlowStartConfig { window: Duration::from_secs(10), min_weight_percent: 10 }),
        ..plain(Strategy::Weighted)
    };
    let mut b = balancer(config, &healthy(1));
    assert_eq!(
        b.endpoint(ms(0), InstanceId(0)).map(|e| e.slow_start_percent),
        Some(100),
        "first set: no ramp"
    );
    b.set_endpoints(secs(100), &healthy(2)).expect("valid");
    let at = |b: &Balancer, t: Instant| b.endpoint(t, InstanceId(1)).map(|e| e.slow_start_percent);
    assert_eq!(at(&b, secs(100)), Some(10));
    assert_eq!(at(&b, secs(105)), Some(55));
    assert_eq!(at(&b, secs(110)), Some(100));
    // Shares follow the ramp: at 5 s the newcomer weighs 0.55 against 1.
    let c = counts(&mut b, secs(105), 100_000);
    let share = c[&1] as f64 / 1e5;
    assert!((share - 0.55 / 1.55).abs() < 0.01, "{share}");
    assert!(b.poll_timeout().is_some_and(|t| t <= secs(106)), "slow start steps are scheduled");
    b.handle_timeout(secs(111));
    let c = counts(&mut b, secs(111), 100_000);
    assert!((c[&1] as f64 / 1e5 - 0.5).abs() < 0.01);
    assert_eq!(b.poll_timeout(), None, "ramp over, nothing scheduled");
}

#[test]
fn least_loaded_prefers_fewer_outstanding_requests() {
    let config = BalancerConfig { panic_threshold_percent: 0, ..plain(Strategy::LeastLoaded) };
    let mut b = balancer(config, &healthy(2));
    // Load endpoint 0 with 10 outstanding requests while 1 is out.
    b.set_healthy(ms(0), InstanceId(1), false);
    let held: Vec<Pick> = (0..10).map(|_| b.pick(ms(0), None).expect("endpoint 0")).collect();
    b.set_healthy(ms(0), InstanceId(1), true);
    assert_eq!(b.endpoint(ms(0), InstanceId(0)).map(|e| e.outstanding), Some(10));
    let c = counts(&mut b, ms(0), 100);
    assert_eq!(c.get(&0), None, "with two endpoints both are always candidates: the idle one wins");
    for p in held {
        b.abandon(p);
    }
    assert_eq!(b.endpoint(ms(0), InstanceId(0)).map(|e| e.outstanding), Some(0));
}

#[test]
fn least_loaded_prefers_the_faster_endpoint_and_retries_a_recovered_one() {
    let mut b = balancer(plain(Strategy::LeastLoaded), &healthy(10));
    let mut now = ms(0);
    let mut slow_picks = 0;
    for _ in 0..10_000 {
        now += Duration::from_millis(1);
        let p = b.pick(now, None).expect("some");
        let latency = if p.id().0 == 0 { 200 } else { 10 };
        slow_picks += usize::from(p.id().0 == 0);
        b.on_result(now, p, Duration::from_millis(latency), true);
    }
    // Uniform share would be 1,000; the slow endpoint only wins when drawn
    // against nobody cheaper, i.e. once its estimate has decayed below the
    // others' (it is probed now and then).
    assert!(slow_picks < 200, "slow endpoint got {slow_picks} of 10,000");
    assert!(slow_picks > 0, "decay makes a shunned endpoint worth another try");
    let est = b.endpoint(now, InstanceId(0)).expect("known").latency_estimate;
    assert!(est >= Duration::from_millis(20), "{est:?}");
}

#[test]
fn consecutive_errors_eject_for_growing_capped_times() {
    let config = BalancerConfig {
        outlier: Some(OutlierConfig { success_rate: None, max_ejection_percent: 50, ..Default::default() }),
        ..plain(Strategy::RoundRobin)
    };
    let mut b = balancer(config, &healthy(4));
    let fail = |b: &mut Balancer, now: Instant, times: usize| {
        let mut n = 0;
        while n < times {
            let p = b.pick(now, None).expect("some");
            let bad = p.id().0 == 0;
            b.on_result(now, p, Duration::from_millis(1), !bad);
            n += usize::from(bad);
        }
    };
    fail(&mut b, secs(1), 4);
    assert_eq!(b.ejected_len(), 0, "4 consecutive errors are not enough");
    fail(&mut b, secs(1), 1);
    assert_eq!(b.ejected_len(), 1);
    assert_eq!(
        drain(&mut b),
        vec![BalanceEvent::Ejected {
            id: InstanceId(0),
            reason: EjectionReason::ConsecutiveErrors,
            until: secs(31)
        }]
    );
    assert!(counts(&mut b, secs(2), 100).keys().all(|&id| id != 0), "ejected: not picked");
    b.handle_timeout(secs(31));
    assert_eq!(b.ejected_len(), 0);
    assert!(drain(&mut b).contains(&BalanceEvent::Returned { id: InstanceId(0) }));
    // Second ejection within the same interval: 2 × base.
    fail(&mut b, secs(32), 5);
    assert_eq!(b.endpoint(secs(32), InstanceId(0)).and_then(|e| e.ejected_until), Some(secs(92)));
    // Many more: capped at 300 s.
    let mut now = secs(92);
    for _ in 0..20 {
        b.handle_timeout(now);
        if b.endpoint(now, InstanceId(0)).is_some_and(|e| e.ejected_until.is_none()) {
            fail(&mut b, now, 5);
        }
        now = b.endpoint(now, InstanceId(0)).and_then(|e| e.ejected_until).unwrap_or(now);
    }
    let e = b.endpoint(now, InstanceId(0)).expect("known");
    assert!(e.ejections >= 10);
    assert_eq!(e.ejected_until.map(|u| u - now), Some(Duration::ZERO));
    let before = now;
    b.handle_timeout(now);
    fail(&mut b, now, 5);
    let until = b.endpoint(now, InstanceId(0)).and_then(|e| e.ejected_until).expect("ejected");
    assert_eq!(until - before, Duration::from_secs(300), "capped at max_ejection_time");
}

#[test]
fn ejection_multiplier_decays_while_healthy() {
    let config = BalancerConfig {
        outlier: Some(OutlierConfig { success_rate: None, max_ejection_percent: 50, ..Default::default() }),
        ..plain(Strategy::RoundRobin)
    };
    let mut b = balancer(config, &healthy(2));
    for _ in 0..5 {
        let p = b.pick(ms(0), None).expect("some");
        let q = b.pick(ms(0), None).expect("some");
        let (bad, good) = if p.id().0 == 0 { (p, q) } else { (q, p) };
        b.on_result(ms(0), bad, Duration::from_millis(1), false);
        b.on_result(ms(0), good, Duration::from_millis(1), true);
    }
    assert_eq!(b.endpoint(ms(0), InstanceId(0)).map(|e| e.ejections), Some(1));
    // Intervals end at 10, 20, 30, 40 s; the ejection lasts until 30 s.
    for t in [10, 20, 30] {
        b.handle_timeout(secs(t));
        assert_eq!(
            b.endpoint(secs(t), InstanceId(0)).map(|e| e.ejections),
            Some(1),
            "ejected during ({t} − 10, {t}]"
        );
    }
    assert_eq!(b.ejected_len(), 0, "back at 30 s");
    b.handle_timeout(secs(40));
    assert_eq!(
        b.endpoint(secs(40), InstanceId(0)).map(|e| e.ejections),
        Some(0),
        "a clean interval decays it"
    );
}

/// Round robin over `n` endpoints with only consecutive-error ejection (5
/// in a row), a cap of 50 % unless `outlier` says otherwise.
fn consecutive_only(n: u32, outlier: OutlierConfig) -> Balancer {
    let config = BalancerConfig { outlier: Some(outlier), ..plain(Strategy::RoundRobin) };
    balancer(config, &healthy(n))
}

fn consecutive_outlier() -> OutlierConfig {
    OutlierConfig { success_rate: None, max_ejection_percent: 50, ..Default::default() }
}

/// Fail `times` requests to endpoint 0 at `now` (the others succeed).
fn fail_endpoint_0(b: &mut Balancer, now: Instant, times: usize) {
    let mut n = 0;
    while n < times {
        let p = b.pick(now, None).expect("some");
        let bad = p.id().0 == 0;
        b.on_result(now, p, Duration::from_millis(1), !bad);
        n += usize::from(bad);
    }
}

/// Envoy's `checkHostForUneject` resets the consecutive 5xx and gateway
/// failure counters of a host it returns to service, so that failures
/// counted while it was out (requests still in flight at the ejection,
/// panic-mode picks) do not re-eject it after very few new ones.
#[test]
fn envoy_resets_consecutive_errors_when_a_host_returns_from_ejection() {
    let mut b = consecutive_only(4, consecutive_outlier());
    // Nine requests go to endpoint 0 before any comes back.
    let mut to_0 = Vec::new();
    while to_0.len() < 9 {
        let p = b.pick(secs(1), None).expect("some");
        if p.id().0 == 0 {
            to_0.push(p);
        } else {
            b.on_result(secs(1), p, Duration::from_millis(1), true);
        }
    }
    // Five fail: ejected until 31 s. The other four fail while it is out.
    for p in to_0 {
        b.on_result(secs(1), p, Duration::from_millis(1), false);
    }
    assert_eq!(b.ejected_len(), 1);
    b.handle_timeout(secs(31));
    assert_eq!(b.ejected_len(), 0, "back at 31 s");
    // Back: four new failures are not enough (without the reset, the four
    // counted while out plus one would eject it again at once).
    fail_endpoint_0(&mut b, secs(32), 4);
    assert_eq!(b.ejected_len(), 0, "the count restarted at the return");
    fail_endpoint_0(&mut b, secs(32), 1);
    assert_eq!(b.ejected_len(), 1, "the fifth new one ejects");
}

/// Envoy's `ejectHost` raises the ejection multiplier only while
/// `backoff × base < max + base`, i.e. up to `max / base + 1` (11 with 30 s
/// and 300 s), so an endpoint ejected many times is back to the base time
/// after 11 clean intervals, not after as many intervals as it was ejected.
#[test]
fn envoy_caps_the_ejection_multiplier_so_an_often_ejected_host_recovers() {
    let mut b = consecutive_only(4, consecutive_outlier());
    let mut now = secs(1);
    let mut last = Duration::ZERO;
    for _ in 0..20 {
        fail_endpoint_0(&mut b, now, 5);
        let until = b.endpoint(now, InstanceId(0)).and_then(|e| e.ejected_until).expect("ejected");
        last = until - now;
        assert!(last <= Duration::from_secs(300), "never longer than max_ejection_time: {last:?}");
        now = until;
        b.handle_timeout(now);
        assert_eq!(b.ejected_len(), 0);
    }
    assert_eq!(last, Duration::from_secs(300));
    assert_eq!(b.endpoint(now, InstanceId(0)).map(|e| e.ejections), Some(11), "capped at 300 / 30 + 1");
    // It came back at an interval end (the intervals follow the calls of
    // `handle_timeout`), which did not decay it: in Envoy a host comes back
    // at an interval tick, and that tick does not decrement its multiplier.
    // Then each of 11 clean intervals takes one off.
    assert_eq!(b.poll_timeout(), Some(now + Duration::from_secs(10)), "an interval ended at the return");
    let mut tick = now;
    let mut clean = 0;
    while b.endpoint(tick, InstanceId(0)).map(|e| e.ejections) != Some(0) {
        tick = b.poll_timeout().expect("the outlier interval");
        b.handle_timeout(tick);
        clean += 1;
        assert!(clean <= 11, "decays within 11 clean intervals");
    }
    assert_eq!(clean, 11, "one per clean interval, from the cap");
    fail_endpoint_0(&mut b, tick, 5);
    let until = b.endpoint(tick, InstanceId(0)).and_then(|e| e.ejected_until).expect("ejected");
    assert_eq!(until - tick, Duration::from_secs(30), "back to the base time");
}

/// Envoy's `max_ejection_percent` rounds down: 3 hosts at the default 10 %
/// eject none unless `always_eject_one_host` (default false), which allows
/// one, and only one.
#[test]
fn envoy_ejects_no_host_of_a_small_set_unless_always_eject_one_host() {
    let outlier = OutlierConfig { success_rate: None, ..Default::default() };
    assert!(!outlier.always_eject_one_host, "Envoy's default");
    let mut b = consecutive_only(3, outlier);
    fail_endpoint_0(&mut b, secs(1), 5);
    assert_eq!(b.ejected_len(), 0, "10 % of 3 is no endpoint");
    assert_eq!(b.stats().ejections_skipped, 1);

    let mut b = consecutive_only(3, OutlierConfig { always_eject_one_host: true, ..outlier });
    fail_endpoint_0(&mut b, secs(1), 5);
    assert_eq!(b.ejected_len(), 1, "always_eject_one_host: one may go");
    // A second failing endpoint stays: the one is used up.
    for _ in 0..10 {
        let p = b.pick(secs(2), None).expect("some");
        b.on_result(secs(2), p, Duration::from_millis(1), p.id().0 != 1);
    }
    assert_eq!(b.ejected_len(), 1);
    assert_eq!(b.stats().ejections_skipped, 1);
}

#[test]
fn success_rate_outliers_are_ejected_worst_first_within_the_cap() {
    let outlier = OutlierConfig { max_ejection_percent: 5, ..Default::default() };
    let config = BalancerConfig { outlier: Some(outlier), ..plain(Strategy::RoundRobin) };
    let mut b = balancer(config, &healthy(20));
    // 200 requests each over the interval; endpoint 3 fails 30 %, endpoint 7
    // 25 %, the others 1 %: threshold ≈ 0.81, both are outliers.
    // Consecutive errors never reach 5 here.
    let mut failures: BTreeMap<u32, u32> = BTreeMap::new();
    for round in 0..200u32 {
        for _ in 0..20 {
            let p = b.pick(secs(1), None).expect("some");
            let id = p.id().0;
            let fail = match id {
                3 => round % 10 < 3,
                7 => round % 4 == 0,
                _ => round % 100 == id,
            };
            *failures.entry(id).or_default() += u32::from(fail);
            b.on_result(secs(1), p, Duration::from_millis(1), !fail);
        }
    }
    assert_eq!(b.ejected_len(), 0, "{failures:?}");
    b.handle_timeout(secs(10));
    // Both are outliers, but 5 % of 20 endpoints is one: the worst goes.
    assert_eq!(
        drain(&mut b),
        vec![BalanceEvent::Ejected {
            id: InstanceId(3),
            reason: EjectionReason::SuccessRate,
            until: secs(40)
        }]
    );
    assert_eq!(b.stats().ejections_skipped, 1);
}

#[test]
fn success_rate_needs_volume_and_hosts_and_ignores_service_wide_failure() {
    let config = BalancerConfig { outlier: Some(OutlierConfig::default()), ..plain(Strategy::RoundRobin) };
    // Four endpoints: fewer than minimum_hosts (5).
    let mut b = balancer(config.clone(), &healthy(4));
    for i in 0..800u32 {
        let p = b.pick(secs(1), None).expect("some");
        let fail = p.id().0 == 0 && i % 2 == 0;
        b.on_result(secs(1), p, Duration::from_millis(1), !fail);
    }
    b.handle_timeout(secs(10));
    assert_eq!(b.ejected_len(), 0, "too few hosts to judge");
    // Everyone fails half the time: the mean moves, nobody is an outlier.
    let mut b = balancer(config, &healthy(10));
    for i in 0..2000u32 {
        let p = b.pick(secs(1), None).expect("some");
        b.on_result(secs(1), p, Duration::from_millis(1), (i / 10) % 2 == 0);
    }
    b.handle_timeout(secs(10));
    assert_eq!(b.ejected_len(), 0);
}

#[test]
fn consistent_hash_is_sticky_and_skips_ineligible_endpoints() {
    let mut b = balancer(plain(Strategy::ConsistentHash), &healthy(10));
    let owner = |b: &mut Balancer, key: u64| {
        let p = b.pick(ms(0), Some(key)).expect("some");
        b.abandon(p);
        p.id().0
    };
    let before: Vec<u32> = (0..1000).map(|k| owner(&mut b, k)).collect();
    assert_eq!(before, (0..1000).map(|k| owner(&mut b, k)).collect::<Vec<_>>(), "same key, same endpoint");
    b.set_healthy(ms(0), InstanceId(4), false);
    let during: Vec<u32> = (0..1000).map(|k| owner(&mut b, k)).collect();
    for (k, (was, is)) in before.iter().zip(&during).enumerate() {
        assert_ne!(*is, 4);
        if *was != 4 {
            assert_eq!(was, is, "key {k} moved although its endpoint is fine");
        }
    }
    b.set_healthy(ms(0), InstanceId(4), true);
    assert_eq!(before, (0..1000).map(|k| owner(&mut b, k)).collect::<Vec<_>>(), "keys come back");
}

#[test]
fn endpoint_state_survives_a_new_set_and_bad_sets_are_refused() {
    let mut b = balancer(plain(Strategy::RoundRobin), &healthy(3));
    let p = b.pick(ms(0), None).expect("some");
    let id = p.id();
    b.set_endpoints(ms(1), &healthy(4)).expect("valid");
    assert_eq!(b.endpoint(ms(1), id).map(|e| e.outstanding), Some(1), "kept across sets");
    b.on_result(ms(2), p, Duration::from_millis(5), true);
    assert_eq!(b.endpoint(ms(2), id).map(|e| e.outstanding), Some(0), "stale pick resolved by id");
    let q = b.pick(ms(2), None).expect("some");
    b.set_endpoints(ms(3), &[]).expect("an empty set is valid");
    b.on_result(ms(3), q, Duration::from_millis(5), true);
    assert_eq!(b.stats().unknown_results, 1);

    let before = b.len();
    assert_eq!(
        b.set_endpoints(ms(4), &[ep(1, 0, "v1", true)]),
        Err(EndpointError::ZeroWeight(InstanceId(1)))
    );
    assert_eq!(
        b.set_endpoints(ms(4), &[ep(1, 1, "v1", true), ep(1, 2, "v1", true)]),
        Err(EndpointError::Duplicate(InstanceId(1)))
    );
    let long = "v".repeat(MAX_VERSION_LEN + 1);
    assert!(matches!(
        b.set_endpoints(ms(4), &[ep(1, 1, &long, true)]),
        Err(EndpointError::VersionTooLong { .. })
    ));
    assert_eq!(b.len(), before, "refused sets change nothing");
}

#[test]
fn bad_configuration_is_rejected() {
    let bad = |c: BalancerConfig| Balancer::new(c, Seed(0)).expect_err("invalid");
    assert!(matches!(
        bad(BalancerConfig { panic_threshold_percent: 101, ..Default::default() }),
        BalanceConfigError::PercentOutOfRange { .. }
    ));
    let outlier = OutlierConfig { max_ejection_time: Duration::from_secs(1), ..Default::default() };
    assert!(matches!(
        bad(BalancerConfig { outlier: Some(outlier), ..Default::default() }),
        BalanceConfigError::MaxBelowBase { .. }
    ));
    let outlier = OutlierConfig { consecutive_errors: Some(0), ..Default::default() };
    assert!(matches!(
        bad(BalancerConfig { outlier: Some(outlier), ..Default::default() }),
        BalanceConfigError::Zero { .. }
    ));
    assert!(matches!(
        bad(BalancerConfig { vnodes_per_endpoint: 0, ..Default::default() }),
        BalanceConfigError::Zero { .. }
    ));
    let slow = SlowStartConfig { min_weight_percent: 0, ..Default::default() };
    assert!(matches!(
        bad(BalancerConfig { slow_start: Some(slow), ..Default::default() }),
        BalanceConfigError::Zero { .. }
    ));
    let retry = RetryBudgetConfig { window: Duration::ZERO, ..Default::default() };
    assert!(matches!(
        bad(BalancerConfig { retry_budget: retry, ..Default::default() }),
        BalanceConfigError::TooShort { .. }
    ));
}

#[test]
fn same_seed_same_picks() {
    let run = |seed| {
        let mut b = Balancer::new(BalancerConfig::default(), Seed(seed)).expect("valid");
        b.set_endpoints(ms(0), &healthy(50)).expect("valid");
        (0..200u64)
            .map(|i| {
                let p = b.pick(ms(i), None).expect("some");
                b.on_result(ms(i), p, Duration::from_millis(i % 7), i % 11 != 0);
                p.id().0
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn retry_budget_allows_a_share_plus_a_floor() {
    let config =
        RetryBudgetConfig { window: Duration::from_secs(10), budget_percent: 20, min_retries_per_second: 1 };
    let mut r = RetryBudget::new(config);
    assert_eq!(r.floor(), 10);
    let granted = (0..100).filter(|_| r.try_retry(secs(0))).count();
    assert_eq!(granted, 10, "no requests: the floor only");
    for _ in 0..100 {
        r.record_request(secs(1));
    }
    assert_eq!(r.available(secs(1)), 20, "20 % of 100");
    assert_eq!((0..100).filter(|_| r.try_retry(secs(1))).count(), 20);
    // At 10 s the bucket of second 0 leaves the window, taking its 10 retries.
    assert_eq!(r.available(secs(10)), 10);
    // At 11 s everything has left.
    assert_eq!(r.window_totals(secs(11)), (0, 0));
    assert_eq!(r.available(secs(11)), 10);
}

// ----- properties -----

#[derive(Clone, Debug)]
enum Op {
    Pick(Option<u64>),
    Finish { nth: usize, latency_ms: u64, success: bool },
    SetHealthy(u32, bool),
    Advance(u64),
    Reset(Vec<(u32, bool)>),
}

fn ops() -> impl PropStrategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => prop::option::of(any::<u64>()).prop_map(Op::Pick),
        5 => (any::<usize>(), 0..500u64, prop::bool::weighted(0.7))
            .prop_map(|(nth, latency_ms, success)| Op::Finish { nth, latency_ms, success }),
        2 => (0..12u32, any::<bool>()).prop_map(|(id, h)| Op::SetHealthy(id, h)),
        2 => (0..20_000u64).prop_map(Op::Advance),
        1 => prop::collection::vec((0..12u32, prop::bool::weighted(0.8)), 0..12).prop_map(Op::Reset),
    ];
    prop::collection::vec(op, 1..300)
}

fn any_strategy() -> impl PropStrategy<Value = Strategy> {
    prop_oneof![
        Just(Strategy::RoundRobin),
        Just(Strategy::Weighted),
        Just(Strategy::LeastLoaded),
        Just(Strategy::ConsistentHash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever happens, a pick lands on a healthy, non-ejected endpoint
    /// unless it says panic mode was on; and panic mode is on exactly when
    /// the healthy share is below the threshold.
    #[test]
    fn never_picks_unhealthy_or_ejected_outside_panic_mode(
        strategy in any_strategy(),
        threshold in prop_oneof![Just(0u32), Just(50u32), 0..=100u32],
        always_eject_one_host in any::<bool>(),
        seed in any::<u64>(),
        ops in ops(),
    ) {
        let outlier = OutlierConfig {
            consecutive_errors: Some(2),
            success_rate: Some(SuccessRateConfig { minimum_hosts: 2, request_volume: 3, ..Default::default() }),
            interval: Duration::from_secs(5),
            max_ejection_percent: 50,
            always_eject_one_host,
            ..Default::default()
        };
        let config = BalancerConfig {
            strategy,
            panic_threshold_percent: threshold,
            outlier: Some(outlier),
            version_weights: BTreeMap::from([("v0".to_owned(), 3), ("v1".to_owned(), 1)]),
            ..Default::default()
        };
        let mut b = Balancer::new(config, Seed(seed)).expect("valid");
        b.set_endpoints(Instant::ZERO, &healthy(6)).expect("valid");
        let mut now = Instant::ZERO;
        let mut open: Vec<Pick> = Vec::new();
        for op in ops {
            let ejected_before = b.ejected_len();
            match op {
                Op::Pick(key) => {
                    if let Some(p) = b.pick(now, key) {
                        let e = b.endpoint(now, p.id()).expect("picked endpoints exist");
                        prop_assert!(p.panic() == b.is_panicking());
                        if !p.panic() {
                            prop_assert!(e.healthy, "unhealthy {:?} outside panic", p.id());
                            prop_assert!(e.ejected_until.is_none(), "ejected {:?} outside panic", p.id());
                        }
                        open.push(p);
                    } else {
                        prop_assert_eq!(b.eligible_len(), 0);
                    }
                }
                Op::Finish { nth, latency_ms, success } => {
                    if !open.is_empty() {
                        let p = open.swap_remove(nth % open.len());
                        b.on_result(now, p, Duration::from_millis(latency_ms), success);
                    }
                }
                Op::SetHealthy(id, h) => { b.set_healthy(now, InstanceId(id), h); }
                Op::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    if ms % 2 == 0 { b.handle_timeout(now); }
                }
                Op::Reset(list) => {
                    let mut seen = std::collections::BTreeSet::new();
                    let versions = ["v0", "v1", "v2"];
                    let eps: Vec<Endpoint<'_>> = list.iter()
                        .filter(|(id, _)| seen.insert(*id))
                        .map(|&(id, h)| ep(id, 1 + id % 3, versions[(id % 3) as usize], h))
                        .collect();
                    b.set_endpoints(now, &eps).expect("valid");
                }
            }
            while b.poll_event().is_some() {}
            // The cap binds when ejecting; a set that shrinks afterwards
            // keeps its ejections (see `OutlierConfig::max_ejection_percent`).
            if b.ejected_len() > ejected_before {
                let cap = if always_eject_one_host { (b.len() / 2).max(1) } else { b.len() / 2 };
                prop_assert!(b.ejected_len() <= cap, "{} ejected of {}", b.ejected_len(), b.len());
            }
            let healthy_now = (0..12u32)
                .filter_map(|id| b.endpoint(now, InstanceId(id)))
                .filter(|e| e.healthy && e.ejected_until.is_none())
                .count();
            prop_assert_eq!(b.is_panicking(), !b.is_empty() && healthy_now * 100 < threshold as usize * b.len());
        }
    }

}

proptest! {
    // Each case makes 100,000 picks: few cases keep the debug build quick.
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Over 100,000 weighted picks, each endpoint's share is within ±2 %
    /// (absolute) of its weight's share.
    #[test]
    fn weighted_shares_match_weights(weights in prop::collection::vec(1..100u32, 2..8), seed in any::<u64>()) {
        let eps: Vec<Endpoint<'_>> =
            weights.iter().enumerate().map(|(i, &w)| ep(i as u32, w, "v1", true)).collect();
        let mut b = Balancer::new(plain(Strategy::Weighted), Seed(seed)).expect("valid");
        b.set_endpoints(Instant::ZERO, &eps).expect("valid");
        let mut c = vec![0u32; weights.len()];
        for _ in 0..100_000 {
            let p = b.pick(Instant::ZERO, None).expect("some");
            c[p.id().index()] += 1;
            b.abandon(p);
        }
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let expected = f64::from(w) / f64::from(total);
            let got = f64::from(c[i]) / 100_000.0;
            prop_assert!((got - expected).abs() <= 0.02, "endpoint {}: {} vs {}", i, got, expected);
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Removing one endpoint from the ring moves only the keys it owned,
    /// and those are about 1/n of all keys (at most 2/n + 1 %).
    #[test]
    fn consistent_hash_removal_moves_only_the_removed_endpoints_keys(
        n in 3..60u32,
        removed in any::<u32>(),
        seed in any::<u64>(),
    ) {
        let removed = removed % n;
        let all: Vec<Endpoint<'_>> = (0..n).map(|i| ep(i * 7 + 1, 1, "v1", true)).collect();
        let rest: Vec<Endpoint<'_>> = all.iter().copied().filter(|e| e.id.0 != removed * 7 + 1).collect();
        let mut b = Balancer::new(plain(Strategy::ConsistentHash), Seed(seed)).expect("valid");
        let owners = |b: &mut Balancer| -> Vec<u32> {
            (0..10_000u64).map(|k| { let p = b.pick(Instant::ZERO, Some(k)).expect("some"); b.abandon(p); p.id().0 }).collect()
        };
        b.set_endpoints(Instant::ZERO, &all).expect("valid");
        let before = owners(&mut b);
        b.set_endpoints(Instant::ZERO, &rest).expect("valid");
        let after = owners(&mut b);
        let mut moved = 0;
        for (x, y) in before.iter().zip(&after) {
            if x != y {
                prop_assert_eq!(*x, removed * 7 + 1, "a key moved from an endpoint still present");
                moved += 1;
            }
        }
        prop_assert_eq!(moved, before.iter().filter(|&&o| o == removed * 7 + 1).count());
        prop_assert!(moved as f64 / 10_000.0 <= 2.0 / f64::from(n) + 0.01, "moved {} of 10,000 with n = {}", moved, n);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Retries in any window never exceed `budget_percent` of the requests in
    /// that window and the one before, plus the floor; and in the window a
    /// retry is granted in, its bound holds exactly.
    #[test]
    fn retry_budget_never_exceeds_share_plus_floor(
        steps in prop::collection::vec((0..3_000u64, 0..20u32, 0..20u32), 1..200),
        percent in 0..=100u32,
        floor_per_second in 0..5u32,
    ) {
        let config = RetryBudgetConfig { window: Duration::from_secs(10), budget_percent: percent, min_retries_per_second: floor_per_second };
        let mut r = RetryBudget::new(config);
        let mut now = Instant::ZERO;
        let mut requests: Vec<u64> = Vec::new(); // bucket number per request
        let mut retries: Vec<u64> = Vec::new();
        let bucket = |t: Instant| t.as_nanos() / 1_000_000_000;
        for (advance_ms, new_requests, attempts) in steps {
            now += Duration::from_millis(advance_ms);
            for _ in 0..new_requests { r.record_request(now); requests.push(bucket(now)); }
            for _ in 0..attempts {
                if r.try_retry(now) {
                    retries.push(bucket(now));
                    let (q, t) = r.window_totals(now);
                    prop_assert!(t <= q * u64::from(percent) / 100 + r.floor());
                }
            }
        }
        let last = bucket(now);
        for end in 0..=last {
            let in_range = |b: &u64, from: u64| *b + from > end && *b <= end;
            let w_retries = retries.iter().filter(|b| in_range(b, 10)).count() as u64;
            let w_requests = requests.iter().filter(|b| in_range(b, 20)).count() as u64;
            prop_assert!(w_retries <= w_requests * u64::from(percent) / 100 + r.floor(),
                "window ending {}: {} retries, {} requests", end, w_retries, w_requests);
        }
    }
}

#[test]
fn an_untried_endpoint_is_tried_when_calls_come_one_at_a_time() {
    // Calls one at a time, answered in 0.4 ms: a newcomer estimated at the
    // 30 ms default would lose every comparison for some 40 s of decay.
    // Estimated at the fleet's latency instead, it is tried at once.
    let mut b = balancer(BalancerConfig::default(), &healthy(3));
    let mut seen = [0u32; 3];
    for k in 0..300u64 {
        let now = Instant::from_nanos(k * 500_000);
        let pick = b.pick(now, None).expect("healthy endpoints");
        seen[pick.id().index()] += 1;
        b.on_result(now + Duration::from_micros(400), pick, Duration::from_micros(400), true);
    }
    assert!(seen.iter().all(|&n| n >= 30), "every endpoint takes a share: {seen:?}");
}
