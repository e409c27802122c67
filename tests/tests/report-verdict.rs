//! The report's resilience verdict never contradicts the run's result: a
//! run whose expectations all held, with an outage nobody checks, says so
//! in plain words; an outage the run ended on before its restore bound is
//! not called unrestored.

/// A full disk on `db/1` that a restart-only policy cannot fix, from
/// `at` to the end of the run; the expectations say nothing about
/// restoration unless `expect` adds it.
fn disk_full(at: &str, expect: &str) -> String {
    format!(
        r#"name = "report-verdict"
duration = "3m"
seed = 7

[[service]]
name = "db"
instances = 2
policy = "restart_only"
health = {{ interval = "1s", timeout = "500ms", failure_threshold = 3, success_threshold = 2 }}

[load]
target = "db"
rate = 20
timeout = "1s"

[recovery]
action_timeout = "20s"
instance_intensity = {{ max_restarts = 64, period = "10s" }}
service_intensity = {{ max_restarts = 64, period = "10s" }}

[recovery.policies.restart_only]
crashed = ["restart*50"]

[[fault]]
at = "{at}"
duration = "10m"
kind = "disk_full"
target = "db/1"

[expect]
{expect}
"#
    )
}

fn report(text: &str) -> String {
    let scenario = vigil_sim::parse(text, "report-verdict.toml").expect("loads");
    vigil_sim::run(&scenario, scenario.seed).to_text()
}

#[test]
fn a_passed_run_with_an_unrestored_outage_says_which_expectation_is_missing() {
    let text = report(&disk_full("20s", "max_concurrent_recoveries = 5"));
    assert!(text.contains("PASSED"), "{text}");
    assert!(!text.contains("see the failed expectations"), "nothing failed: {text}");
    assert!(
        text.contains("NOT RESILIENT: every expectation held, but 1 detected outage(s) were never restored"),
        "{text}"
    );
    assert!(text.contains("add `restored_within`"), "{text}");
}

#[test]
fn a_failed_run_keeps_the_plain_verdict() {
    let text = report(&disk_full("20s", "restored_within = \"60s\""));
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("NOT RESILIENT: see the failed expectations"), "{text}");
}

#[test]
fn an_outage_the_run_ends_on_before_its_bound_is_still_recovering_not_unrestored() {
    // Begins 20 s before the end: within the 60 s bound, as restored_within judges it.
    let text = report(&disk_full("2m40s", "restored_within = \"60s\""));
    assert!(text.contains("PASSED"), "{text}");
    assert!(text.contains("still recovering when the run ended (1 outage(s))"), "{text}");
    assert!(!text.contains("NOT RESILIENT"), "{text}");
    assert!(text.contains("RESILIENT SO FAR"), "not 'every detected outage restored': {text}");
}
