//! `[load]` with several targets: each target's client calls only its
//! service, arrivals split by share, availability is judged per targeted
//! service, and a service nobody targets gets no call at all.

use vigil_core::ServiceId;
use vigil_sim::{Simulation, parse};

/// checkout takes 95% of the calls, search 5%; search hangs whole from
/// 20 s to 25 s and has no active checks (so it stays in rotation): it
/// loses about 8% of its calls, which is 0.4% of all calls. payments is
/// never called.
const SCENARIO: &str = r#"
name = "two-targets"
duration = "70s"
seed = 5

[[service]]
name = "checkout"
instances = 3

[[service]]
name = "search"
instances = 2

[[service]]
name = "payments"
instances = 2

[load]
targets = [{ service = "checkout", share = 0.95 }, { service = "search", share = 0.05 }]
rate = 200

[[fault]]
at = "20s"
duration = "5s"
kind = "hang"
target = "search"

[expect]
availability = "99%"
"#;

/// Requests delivered, as (sending client, receiving node) from the
/// timeline's `recv from client:… request #N` lines.
fn requests(timeline: &str) -> Vec<(String, String)> {
    timeline
        .lines()
        .filter(|l| l.contains(" request #"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let _at = words.next()?;
            let to = words.next()?.to_string();
            let (recv, from_word) = (words.next()?, words.next()?);
            (recv == "recv" && from_word == "from").then_some(())?;
            Some((words.next()?.to_string(), to))
        })
        .collect()
}

#[test]
fn each_client_calls_only_its_service_and_nobody_calls_the_untargeted_one() {
    let scenario = parse(SCENARIO, "two-targets.toml").expect("valid");
    let mut timeline = Vec::new();
    {
        let mut sim = Simulation::new(&scenario, 5).with_timeline(Box::new(&mut timeline));
        sim.run();
    }
    let timeline = String::from_utf8(timeline).expect("utf-8");
    let sent = requests(&timeline);
    assert!(sent.len() > 10_000, "the load ran: {} requests", sent.len());
    for (from, to) in &sent {
        let service = to.split('/').next().unwrap_or("");
        assert_eq!(from, &format!("client:{service}"), "a request from {from} reached {to}");
    }
    assert!(sent.iter().any(|(from, _)| from == "client:search"), "search's client called it");
    assert!(!sent.iter().any(|(_, to)| to.starts_with("payments/")), "nobody targets payments");
}

#[test]
fn arrivals_split_by_share_and_availability_is_judged_per_service() {
    let scenario = parse(SCENARIO, "two-targets.toml").expect("valid");
    let mut sim = Simulation::new(&scenario, 5);
    sim.run();
    let catalog = sim.control().expect("control running").registry();
    let ids = (catalog.service_id("checkout"), catalog.service_id("search"), catalog.service_id("payments"));
    let expected = (Some(ServiceId(0)), Some(ServiceId(1)), Some(ServiceId(2)));
    assert_eq!(ids, expected, "the catalog's service ids are the file's indexes, as the clients assume");
    let obs = sim.observations();
    let [checkout, search] = &obs.calls_by_target[..] else { panic!("two targets") };
    assert_eq!(checkout.total + search.total, obs.calls.total, "every call went to a target");
    assert_eq!(checkout.ok + search.ok, obs.calls.ok);
    let share = checkout.total as f64 / obs.calls.total as f64;
    assert!((0.94..=0.96).contains(&share), "checkout's share of the calls: {share}");
    // The hang in search is search's loss alone.
    assert_eq!(checkout.availability(), Some(1.0), "checkout is untouched: {checkout:?}");
    assert!(search.timeout > 0, "search's hung instances time calls out: {search:?}");

    let report = vigil_sim::run(&scenario, 5);
    let availability = report.expectations.iter().find(|e| e.name == "availability").expect("expected");
    let search_share = search.availability().expect("search calls ended");
    let overall = obs.calls.availability().expect("calls ended");
    // Over all calls the hang hides behind checkout's volume; per service
    // it does not.
    assert!(overall >= 0.99 && search_share < 0.99, "overall {overall}, search {search_share}");
    assert!(!availability.passed, "judged on each targeted service: {availability:?}");
    assert!(availability.observed.contains("checkout 100.000%"), "{}", availability.observed);
    assert!(availability.observed.contains("search 9"), "{}", availability.observed);
    let calls = report.calls.as_ref().expect("load");
    let names: Vec<&str> = calls.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["checkout", "search"]);
    assert_eq!(calls.services[1].timeout, search.timeout);
    let text = report.to_text();
    assert!(text.contains("(to 2 services)"), "{text}");
    assert!(text.contains("  search    "), "{text}");
}
