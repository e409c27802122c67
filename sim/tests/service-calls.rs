//! Calls between services are real messages over the simulated network:
//! a partition between two services drops them and its callers fail
//! because their calls do (and recover after the heal), and a `calls`
//! ratio multiplies the requests a dependency receives.

use vigil_core::Instant;
use vigil_sim::{Simulation, load_file, parse};

/// `(ended, ok)` of a call counter.
fn counts(total: u64, ok: u64) -> (u64, u64) {
    (total, ok)
}

/// What changed between two `(ended, ok)` readings: `(ended, failed)`.
fn delta(before: (u64, u64), after: (u64, u64)) -> (u64, u64) {
    let ended = after.0 - before.0;
    (ended, ended - (after.1 - before.1))
}

#[test]
fn a_partition_between_api_and_db_drops_their_calls_and_web_recovers_after_the_heal() {
    let scenario = load_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/service-partition.toml"
    )))
    .expect("the scenario loads");
    let mut sim = Simulation::new(&scenario, 9);
    // The partition is api | db from 40 s to 70 s. Readings: the load's
    // calls and the api -> db edge's calls, at each boundary.
    let marks = [5, 40, 70, 75, 120].map(Instant::from_secs);
    let mut load = Vec::new();
    let mut edge = Vec::new();
    let mut partitioned = Vec::new();
    for &mark in &marks {
        while sim.now() < mark && sim.step() {}
        let obs = sim.observations();
        load.push(counts(obs.calls.total, obs.calls.ok));
        let api_db = obs
            .service_calls
            .iter()
            .find(|e| {
                scenario.services[e.caller].name == "api" && scenario.services[e.dependency].name == "db"
            })
            .expect("api -> db is an edge");
        edge.push(counts(api_db.calls.total, api_db.calls.ok));
        partitioned.push(sim.network().stats().partitioned);
    }
    assert_eq!(partitioned[1], 0, "nothing is dropped before the partition");
    assert!(
        partitioned[2] > 1000,
        "the partition drops api's calls to db: {} messages dropped",
        partitioned[2]
    );

    let (before, during, after) = (delta(edge[0], edge[1]), delta(edge[1], edge[2]), delta(edge[3], edge[4]));
    assert!(before.0 > 3000 && before.1 == 0, "api's calls to db succeed before: {before:?}");
    assert!(during.0 > 2000 && during.1 * 10 > during.0 * 9, "over 90% fail inside the window: {during:?}");
    assert!(after.0 > 4000 && after.1 == 0, "and succeed again after the heal: {after:?}");

    let share = |(ended, failed): (u64, u64)| 1.0 - failed as f64 / ended as f64;
    let (before, during, after) = (delta(load[0], load[1]), delta(load[1], load[2]), delta(load[3], load[4]));
    assert!(share(before) > 0.999, "web's calls succeed before: {before:?}");
    assert!(share(during) < 0.1, "web's availability falls inside the window: {during:?}");
    assert!(share(after) > 0.999, "and comes back after it: {after:?}");

    let obs = sim.observations();
    assert!(obs.platform.is_empty(), "no instance is restarted or replaced: {:?}", obs.platform);
    assert!(obs.outages.iter().all(Vec::is_empty), "every process stayed up");
}

/// api (2 instances, no checks) calls db with `ratio` mean calls per
/// request; load on api only.
fn fan_out(ratio: &str) -> String {
    format!(
        r#"
name = "fan-out"
duration = "30s"
seed = 3

[[service]]
name = "db"
instances = 2

[[service]]
name = "api"
instances = 2
depends_on = ["db"]
calls = {{ db = {ratio} }}

[load]
target = "api"
rate = 200
"#
    )
}

/// Requests delivered to each service's instances, by the sending
/// node's service (the load's client is `client`), from the timeline's
/// `recv from … request #N` lines.
fn requests(scenario: &str) -> (usize, usize, u64) {
    let scenario = parse(scenario, "fan-out.toml").expect("valid");
    let mut timeline = Vec::new();
    let edge_total;
    {
        let mut sim = Simulation::new(&scenario, 3).with_timeline(Box::new(&mut timeline));
        sim.run();
        let obs = sim.observations();
        assert_eq!(obs.calls.ok, obs.calls.total, "nothing fails in this fleet");
        edge_total = obs.service_calls[0].calls.total;
        assert_eq!(obs.service_calls[0].calls.ok, edge_total, "every call to db succeeds");
    }
    let timeline = String::from_utf8(timeline).expect("utf-8");
    let (mut to_api, mut to_db) = (0, 0);
    for line in timeline.lines().filter(|l| l.contains(" request #")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (to, from) = (words[1], words[4]);
        if to.starts_with("api/") && from.starts_with("client") {
            to_api += 1;
        } else if to.starts_with("db/") && from.starts_with("api/") {
            to_db += 1;
        } else {
            panic!("an unexpected request: {line}");
        }
    }
    (to_api, to_db, edge_total)
}

#[test]
fn a_calls_ratio_multiplies_the_requests_the_dependency_receives() {
    for (ratio, mean) in [("3", 3.0), ("0.5", 0.5), ("2.5", 2.5)] {
        let (to_api, to_db, edge_total) = requests(&fan_out(ratio));
        assert!(to_api > 4000, "the load ran: {to_api} requests to api");
        let seen = to_db as f64 / to_api as f64;
        assert!(
            (seen - mean).abs() < mean * 0.05,
            "calls = {{ db = {ratio} }}: db received {to_db} requests for api's {to_api} ({seen:.3} each)"
        );
        // Nothing failed, so nothing was retried: each request db received
        // is one call api's clients saw end (but those in flight at the end).
        assert!(edge_total <= to_db as u64 && to_db as u64 - edge_total < 20, "{edge_total} of {to_db}");
    }
    // A whole ratio is exact: every request makes exactly that many calls.
    let (to_api, to_db, _) = requests(&fan_out("3"));
    assert!(to_db.abs_diff(3 * to_api) < 10, "{to_db} vs 3 x {to_api}");
}
