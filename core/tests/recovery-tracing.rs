//! Every recovery output is also a `tracing` event carrying its correlation
//! id, so an operator can follow one episode from detection to outcome in
//! the logs.
//!
//! This test has a process of its own: `tracing` caches each callsite's
//! interest process-wide, and tests running beside it on other threads
//! (without this subscriber) can make it skip events. Alone, it cannot.

use std::sync::{Arc, Mutex};

use vigil_core::machine::Machine;
use vigil_core::recovery::{
    Action, FailureReport, FailureType, Intensity, Limits, Outcome, RecoveryConfig, RecoveryCoordinator,
    RecoveryOutput, ServiceSpec,
};
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, Instant, ServiceId};

/// Records the `correlation` field of every `tracing` event.
struct Correlations(Mutex<Vec<(String, Option<u64>)>>);

impl tracing::Subscriber for Correlations {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Visit(Option<u64>);
        impl tracing::field::Visit for Visit {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "correlation" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut visit = Visit(None);
        event.record(&mut visit);
        let target = event.metadata().target().to_owned();
        self.0.lock().expect("not poisoned").push((target, visit.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn drain(c: &mut RecoveryCoordinator, log: &mut Vec<RecoveryOutput>) -> Vec<RecoveryOutput> {
    let out: Vec<RecoveryOutput> = std::iter::from_fn(|| c.poll_output()).collect();
    log.extend(out.iter().copied());
    out
}

fn the_action(out: &[RecoveryOutput]) -> Action {
    let actions: Vec<Action> =
        out.iter().filter_map(|o| if let RecoveryOutput::Action(a) = o { Some(*a) } else { None }).collect();
    assert_eq!(actions.len(), 1, "exactly one action in {out:?}");
    actions[0]
}

#[test]
fn every_output_is_a_tracing_event_with_its_correlation_id() {
    let config = RecoveryConfig {
        services: vec![ServiceSpec::new(ServiceId(0))],
        instance_intensity: Intensity { max_restarts: 64, period: Duration::from_secs(1) },
        service_intensity: Intensity { max_restarts: 64, period: Duration::from_secs(1) },
        limits: Limits { max_concurrent: 64, max_service_share_permille: 1000 },
        ..RecoveryConfig::default()
    };
    let subscriber = Arc::new(Correlations(Mutex::new(Vec::new())));
    let mut log = Vec::new();
    tracing::subscriber::with_default(subscriber.clone(), || {
        let mut c = RecoveryCoordinator::new(config, Seed(1)).expect("valid");
        let now = Instant::ZERO;
        c.register(now, InstanceId(0), ServiceId(0)).expect("registers");
        let _ = drain(&mut c, &mut log);
        let report =
            FailureReport { instance: InstanceId(0), service: ServiceId(0), failure: FailureType::Crashed };
        c.report_failure(now, report).expect("reports");
        let first = the_action(&drain(&mut c, &mut log));
        c.report_outcome(now, first.id, Outcome::Failed);
        let _ = drain(&mut c, &mut log);
        // The retry waits out its backoff.
        let retry_at = c.poll_timeout().expect("a retry is scheduled");
        c.handle_timeout(retry_at);
        let second = the_action(&drain(&mut c, &mut log));
        c.report_outcome(retry_at, second.id, Outcome::Succeeded);
        let _ = drain(&mut c, &mut log);
    });
    let outputs: Vec<Option<u64>> = log
        .iter()
        .map(|o| match o {
            RecoveryOutput::Action(a) => Some(a.id.correlation.0),
            RecoveryOutput::Decision(d) => d.correlation.map(|c| c.0),
            _ => None, // non-exhaustive: a kind of output this test does not know
        })
        .collect();
    let events = subscriber.0.lock().expect("not poisoned").clone();
    let traced: Vec<Option<u64>> =
        events.iter().filter(|(target, _)| target == "vigil::recovery").map(|(_, c)| *c).collect();
    assert!(outputs.len() >= 4, "detection, action, failure, retry, outcome: {log:?}");
    assert_eq!(traced, outputs, "one tracing event per output, same correlation id");
    assert!(outputs.iter().all(|&c| c == Some(1)), "one episode, one correlation id: {outputs:?}");
}
