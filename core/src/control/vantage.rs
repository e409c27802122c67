//! A second vantage point: what the clients say about the instances they
//! call.
//!
//! The control node sees an instance through its heartbeats and probes.
//! When both stop, the instance either failed or the control node cannot
//! reach it any more (a partition, a lossy path, a firewall change). From
//! the control node alone the two look the same; to the instance's clients
//! they do not: a failed instance fails their calls too, a cut-off one
//! still answers them. Clients report their calls' outcomes per instance
//! ([`CallReport`]), and [`Vantage`] keeps, per instance, when a client last
//! got an answer and when one last got none.
//!
//! Reports carry ages, not instants (clocks differ between nodes); an age
//! is dated from the report's arrival, which makes every event look a
//! little earlier than it was: the safe side for "reached after the
//! control node lost it".

use crate::id::{InstanceId, ServiceId};
use crate::message::CallReport;
use crate::time::{Duration, Instant};

/// How recent a report about a service must be for its clients to count
/// as a vantage point at all: a service nobody called for this long has
/// no one to ask, and a silent instance of it is judged on the control
/// node's view alone.
pub const VANTAGE_FRESH: Duration = Duration::from_secs(5);

/// What the clients said about one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Point {
    /// The latest answer a client got, dated in this node's time.
    reached_at: Option<Instant>,
    /// The latest call that got no answer (timed out or refused).
    failed_at: Option<Instant>,
}

/// What the clients' reports say about an instance since some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Evidence {
    /// A client got an answer since: the instance is alive and reachable
    /// from somewhere.
    Reached,
    /// Clients' calls went unanswered since, and none was answered.
    Failing,
    /// No client called it since.
    Silent,
}

/// The clients' view, per instance and per service. Memory: one entry per
/// instance id and per service id ever reported.
#[derive(Clone, Debug, Default)]
pub(super) struct Vantage {
    points: Vec<Point>,
    /// When a report about each service last arrived.
    service_reported_at: Vec<Option<Instant>>,
    /// Reports taken, and reports about instances nobody registered.
    pub(super) reports: u64,
    pub(super) unknown: u64,
}

impl Vantage {
    /// Take a report that arrived at `now` about an instance of `service`
    /// (`None`: not a registered instance; the report is counted and
    /// dropped).
    pub(super) fn record(&mut self, now: Instant, service: Option<ServiceId>, report: &CallReport) {
        let Some(service) = service else {
            self.unknown += 1;
            return;
        };
        self.reports += 1;
        let i = report.instance.index();
        if self.points.len() <= i {
            self.points.resize(i + 1, Point::default());
        }
        let dated = |age_ms: u32| {
            (age_ms != CallReport::NEVER)
                .then(|| now.saturating_sub(Duration::from_millis(u64::from(age_ms))))
        };
        let point = &mut self.points[i];
        if let Some(t) = dated(report.since_ok_ms) {
            point.reached_at = point.reached_at.max(Some(t));
        }
        if let Some(t) = dated(report.since_failure_ms) {
            point.failed_at = point.failed_at.max(Some(t));
        }
        let s = service.index();
        if self.service_reported_at.len() <= s {
            self.service_reported_at.resize(s + 1, None);
        }
        self.service_reported_at[s] = Some(now);
    }

    /// What the clients say about `instance`: an answer after
    /// `reached_since` proves it alive; failing that, a call unanswered
    /// after `failed_since` proves it failed. (The two differ: an answer
    /// given just before a death may still be in flight, so it must be
    /// later to count; a failure counts as soon as it follows the last
    /// sign of life.)
    pub(super) fn evidence(
        &self,
        instance: InstanceId,
        reached_since: Instant,
        failed_since: Instant,
    ) -> Evidence {
        let point = self.points.get(instance.index()).copied().unwrap_or_default();
        if point.reached_at.is_some_and(|t| t > reached_since) {
            Evidence::Reached
        } else if point.failed_at.is_some_and(|t| t > failed_since) {
            Evidence::Failing
        } else {
            Evidence::Silent
        }
    }

    /// Whether clients of `service` reported lately (within
    /// [`VANTAGE_FRESH`] of `now`): whether there is anyone to ask.
    pub(super) fn watched(&self, now: Instant, service: ServiceId) -> bool {
        self.service_reported_at
            .get(service.index())
            .copied()
            .flatten()
            .is_some_and(|t| now.saturating_duration_since(t) <= VANTAGE_FRESH)
    }

    /// Forget what was said about `instance` (it left; a new instance may
    /// take its id).
    pub(super) fn forget(&mut self, instance: InstanceId) {
        if let Some(point) = self.points.get_mut(instance.index()) {
            *point = Point::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(instance: u32, since_ok_ms: u32, since_failure_ms: u32) -> CallReport {
        CallReport {
            instance: InstanceId(instance),
            ok: u32::from(since_ok_ms != CallReport::NEVER),
            errors: 0,
            refused: 0,
            timed_out: u32::from(since_failure_ms != CallReport::NEVER),
            since_ok_ms,
            since_failure_ms,
        }
    }

    #[test]
    fn ages_are_dated_from_arrival_and_the_latest_answer_wins() {
        let mut v = Vantage::default();
        let s = Some(ServiceId(0));
        // At 10 s: answered 300 ms ago (9.7 s), a timeout 100 ms ago.
        v.record(Instant::from_secs(10), s, &report(1, 300, 100));
        assert_eq!(
            v.evidence(InstanceId(1), Instant::from_millis(9_600), Instant::from_millis(9_600)),
            Evidence::Reached
        );
        // After the answer, only the timeout is news.
        assert_eq!(
            v.evidence(InstanceId(1), Instant::from_millis(9_800), Instant::from_millis(9_800)),
            Evidence::Failing
        );
        assert_eq!(
            v.evidence(InstanceId(1), Instant::from_secs(10), Instant::from_secs(10)),
            Evidence::Silent
        );
        // An older report does not move the dates back.
        v.record(Instant::from_secs(10), s, &report(1, 5_000, CallReport::NEVER));
        assert_eq!(
            v.evidence(InstanceId(1), Instant::from_millis(9_600), Instant::from_millis(9_600)),
            Evidence::Reached
        );
        assert_eq!(
            v.evidence(InstanceId(7), Instant::ZERO, Instant::ZERO),
            Evidence::Silent,
            "never reported"
        );
        // A failure right after the last sign of life counts; an answer
        // must come later than the margin.
        assert_eq!(
            v.evidence(InstanceId(1), Instant::from_millis(9_800), Instant::from_millis(9_850)),
            Evidence::Failing
        );
    }

    #[test]
    fn a_service_is_watched_only_while_its_clients_report() {
        let mut v = Vantage::default();
        assert!(!v.watched(Instant::ZERO, ServiceId(2)));
        v.record(Instant::from_secs(1), Some(ServiceId(2)), &report(0, 0, CallReport::NEVER));
        assert!(v.watched(Instant::from_secs(6), ServiceId(2)));
        assert!(!v.watched(Instant::from_secs(7), ServiceId(2)), "stale after VANTAGE_FRESH");
        assert!(!v.watched(Instant::from_secs(1), ServiceId(0)), "another service");
        v.record(Instant::from_secs(1), None, &report(9, 0, CallReport::NEVER));
        assert_eq!((v.reports, v.unknown), (1, 1));
    }

    #[test]
    fn forgetting_an_instance_clears_its_evidence() {
        let mut v = Vantage::default();
        v.record(Instant::from_secs(3), Some(ServiceId(0)), &report(4, 0, CallReport::NEVER));
        v.forget(InstanceId(4));
        assert_eq!(v.evidence(InstanceId(4), Instant::ZERO, Instant::ZERO), Evidence::Silent);
    }
}
