//! How an instance is checked: the monitor's per-instance configuration.
//!
//! An instance has one to [`MAX_CHECKS_PER_INSTANCE`] checks. Each has a
//! [`ProbeKind`] (startup, readiness, liveness: *what the result means*), a
//! [`CheckType`] (heartbeat/TTL or active probe: *how it is observed*), and
//! failure and success thresholds (hysteresis). Active probes may add a
//! latency rule and an error-rate rule, both over a bounded window of the
//! most recent probes.
//!
//! Everything is validated at registration, so the monitor never meets a
//! configuration that cannot work (a zero interval that would fire
//! continuously, a timeout longer than the interval that would let rounds
//! overlap, a window beyond its bound).

use super::HealthConfigError;
use super::flap::FlapConfig;
use super::phi::PhiConfig;
use super::status::ProbeKind;
use super::window::MAX_WINDOW_SAMPLES;
use crate::time::Duration;

/// Default time an active probe may take: the seed's limit, "health checks
/// complete within 1 s".
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default time between two rounds of an active probe.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Default consecutive failures before a check goes bad (Kubernetes: 3).
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;

/// Default consecutive successes before a check goes good (Kubernetes: 1).
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;

/// The largest failure or success threshold accepted.
pub const MAX_THRESHOLD: u32 = 1000;

/// The most checks one instance may have: bounds per-instance work.
pub const MAX_CHECKS_PER_INSTANCE: usize = 16;

/// p99 latency over the last `window_samples` successful probes above
/// `p99_max` makes the check [`Degraded`](super::HealthStatus::Degraded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LatencyRule {
    /// Successful probes kept (at most [`MAX_WINDOW_SAMPLES`]).
    pub window_samples: u16,
    /// No verdict on fewer samples than this (at least 1): one slow probe
    /// after a restart is not a trend. Below 100 samples p99 is the maximum.
    pub min_samples: u16,
    /// The p99 latency allowed.
    pub p99_max: Duration,
}

impl LatencyRule {
    /// A rule allowing `p99_max`, over the last 100 probes, judged from 10.
    pub fn new(p99_max: Duration) -> Self {
        LatencyRule { window_samples: 100, min_samples: 10, p99_max }
    }
}

/// The share of failed probes (failures and timeouts) over the last
/// `window_samples` probes.
///
/// Strictly above `degraded_permille` the check is
/// [`Degraded`](super::HealthStatus::Degraded): an instance failing one
/// request in five still serves four, and should stay in rotation while
/// balancers weigh it down. Strictly above `failed_permille`, if set, it is
/// [`Failed`](super::HealthStatus::Failed) even without the consecutive
/// failures the failure threshold needs: an instance failing most probes,
/// but never enough of them in a row, is broken, not degraded. Once failed
/// by rate, it stays failed until the share is back at or below
/// `degraded_permille`: a band, so a rate hovering at the failure limit
/// does not bounce between degraded and failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ErrorRateRule {
    /// Probes kept (at most [`MAX_WINDOW_SAMPLES`]).
    pub window_samples: u16,
    /// No verdict on fewer probes than this (at least 1).
    pub min_samples: u16,
    /// Failure share (thousandths) above which the check is degraded.
    pub degraded_permille: u16,
    /// Failure share (thousandths) above which the check has failed; `None`:
    /// the error rate alone never fails a check.
    pub failed_permille: Option<u16>,
}

impl Default for ErrorRateRule {
    /// Degraded above 10 % of the last 20 probes, judged from 10; never
    /// failed by rate alone.
    fn default() -> Self {
        ErrorRateRule { window_samples: 20, min_samples: 10, degraded_permille: 100, failed_permille: None }
    }
}

/// An active probe: the monitor asks the driver to run it every `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProbeCheck {
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// Time a round may take; no result by then counts as unresponsive. At
    /// most `interval`, so at most one round is in flight per check.
    pub timeout: Duration,
    /// Delay before the first round, from registration (startup checks) or
    /// from the end of startup (the others).
    pub initial_delay: Duration,
    /// Optional latency rule.
    pub latency: Option<LatencyRule>,
    /// Optional error-rate rule.
    pub error_rate: Option<ErrorRateRule>,
}

impl Default for ProbeCheck {
    /// Every 1 s, 1 s timeout, no delay, no latency or error-rate rule.
    fn default() -> Self {
        ProbeCheck {
            interval: DEFAULT_PROBE_INTERVAL,
            timeout: DEFAULT_PROBE_TIMEOUT,
            initial_delay: Duration::ZERO,
            latency: None,
            error_rate: None,
        }
    }
}

/// A heartbeat (TTL) check: it passes while heartbeats keep renewing it.
///
/// Each heartbeat is one success. Each `ttl` of silence is one failure
/// (counted against the failure threshold, so with threshold 3 an instance
/// is unresponsive after 3·`ttl` of silence). With `phi`, the first failure
/// of a silence comes as soon as the phi-accrual level crosses its
/// threshold, if that is before `ttl`: the TTL stays the upper bound, so
/// phi can only make detection faster, never slower than configured.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeartbeatCheck {
    /// Silence that counts as one failure.
    pub ttl: Duration,
    /// Optional phi-accrual detector over the heartbeat inter-arrival times.
    pub phi: Option<PhiConfig>,
}

/// How a check observes the instance.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum CheckType {
    /// Passes while heartbeats renew a TTL.
    Heartbeat(HeartbeatCheck),
    /// The monitor asks the driver to probe.
    Probe(ProbeCheck),
}

/// One check of an instance.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckConfig {
    /// What a result means.
    pub kind: ProbeKind,
    /// How results are obtained.
    pub check: CheckType,
    /// Consecutive failures before the check goes bad.
    pub failure_threshold: u32,
    /// Consecutive successes before the check goes good.
    pub success_threshold: u32,
}

impl CheckConfig {
    /// An active probe with default settings and thresholds.
    pub fn probe(kind: ProbeKind) -> Self {
        Self::probe_with(kind, ProbeCheck::default())
    }

    /// An active probe with the given settings and default thresholds.
    pub fn probe_with(kind: ProbeKind, probe: ProbeCheck) -> Self {
        CheckConfig {
            kind,
            check: CheckType::Probe(probe),
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
        }
    }

    /// A heartbeat check renewed every `ttl`, without phi, default thresholds.
    pub fn heartbeat(kind: ProbeKind, ttl: Duration) -> Self {
        CheckConfig {
            kind,
            check: CheckType::Heartbeat(HeartbeatCheck { ttl, phi: None }),
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            success_threshold: DEFAULT_SUCCESS_THRESHOLD,
        }
    }

    /// The same check with other thresholds.
    #[must_use]
    pub fn with_thresholds(mut self, failure_threshold: u32, success_threshold: u32) -> Self {
        self.failure_threshold = failure_threshold;
        self.success_threshold = success_threshold;
        self
    }

    /// Check the settings make sense.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        threshold("failure_threshold", self.failure_threshold)?;
        threshold("success_threshold", self.success_threshold)?;
        match &self.check {
            CheckType::Heartbeat(hb) => {
                if hb.ttl.is_zero() {
                    return Err(HealthConfigError::ZeroTimeout { which: "ttl" });
                }
                if let Some(phi) = &hb.phi {
                    phi.validate()?;
                }
            }
            CheckType::Probe(p) => {
                if p.interval.is_zero() {
                    return Err(HealthConfigError::ZeroTimeout { which: "interval" });
                }
                if p.timeout.is_zero() {
                    return Err(HealthConfigError::ZeroTimeout { which: "timeout" });
                }
                if p.timeout > p.interval {
                    return Err(HealthConfigError::TimeoutLongerThanInterval {
                        timeout: p.timeout,
                        interval: p.interval,
                    });
                }
                if let Some(rule) = &p.latency {
                    window("latency.window_samples", rule.window_samples, rule.min_samples)?;
                }
                if let Some(rule) = &p.error_rate {
                    window("error_rate.window_samples", rule.window_samples, rule.min_samples)?;
                    permille("error_rate.degraded_permille", rule.degraded_permille)?;
                    if let Some(failed) = rule.failed_permille {
                        permille("error_rate.failed_permille", failed)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Everything the monitor needs to watch one instance.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceHealthConfig {
    /// The checks, 1 to [`MAX_CHECKS_PER_INSTANCE`]; a check is named by its
    /// index here.
    pub checks: Vec<CheckConfig>,
    /// Flap damping; `None` disables it.
    pub flap: Option<FlapConfig>,
}

impl InstanceHealthConfig {
    /// One liveness probe and one readiness probe with default settings,
    /// default flap damping, no startup check.
    pub fn standard() -> Self {
        InstanceHealthConfig {
            checks: vec![CheckConfig::probe(ProbeKind::Liveness), CheckConfig::probe(ProbeKind::Readiness)],
            flap: Some(FlapConfig::default()),
        }
    }

    /// Check the settings make sense.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        if self.checks.is_empty() || self.checks.len() > MAX_CHECKS_PER_INSTANCE {
            return Err(HealthConfigError::CheckCount {
                count: self.checks.len(),
                max: MAX_CHECKS_PER_INSTANCE,
            });
        }
        for check in &self.checks {
            check.validate()?;
        }
        if let Some(flap) = &self.flap {
            flap.validate()?;
        }
        Ok(())
    }
}

fn threshold(which: &'static str, value: u32) -> Result<(), HealthConfigError> {
    if value == 0 || value > MAX_THRESHOLD {
        return Err(HealthConfigError::ThresholdOutOfRange { which, value, max: MAX_THRESHOLD });
    }
    Ok(())
}

fn window(which: &'static str, samples: u16, min_samples: u16) -> Result<(), HealthConfigError> {
    if samples == 0 || samples > MAX_WINDOW_SAMPLES || min_samples == 0 || min_samples > samples {
        return Err(HealthConfigError::WindowOutOfRange {
            which,
            samples,
            min_samples,
            max: MAX_WINDOW_SAMPLES,
        });
    }
    Ok(())
}

fn permille(which: &'static str, value: u16) -> Result<(), HealthConfigError> {
    if value > 1000 {
        return Err(HealthConfigError::ThresholdOutOfRange { which, value: u32::from(value), max: 1000 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_seed_limits() {
        assert!(InstanceHealthConfig::standard().validate().is_ok());
        let p = ProbeCheck::default();
        assert!(p.timeout <= Duration::from_secs(1));
        assert!(p.timeout <= p.interval);
    }

    #[test]
    fn bad_checks_are_rejected_with_a_clear_error() {
        let long_timeout = CheckConfig::probe_with(
            ProbeKind::Liveness,
            ProbeCheck { timeout: Duration::from_secs(2), ..ProbeCheck::default() },
        );
        assert!(matches!(long_timeout.validate(), Err(HealthConfigError::TimeoutLongerThanInterval { .. })));
        let zero = CheckConfig::probe(ProbeKind::Liveness).with_thresholds(0, 1);
        assert!(matches!(zero.validate(), Err(HealthConfigError::ThresholdOutOfRange { .. })));
        let ttl = CheckConfig::heartbeat(ProbeKind::Liveness, Duration::ZERO);
        assert_eq!(ttl.validate(), Err(HealthConfigError::ZeroTimeout { which: "ttl" }));
        let rule = ErrorRateRule { degraded_permille: 1001, ..ErrorRateRule::default() };
        let rate = CheckConfig::probe_with(
            ProbeKind::Liveness,
            ProbeCheck { error_rate: Some(rule), ..ProbeCheck::default() },
        );
        assert!(rate.validate().is_err());
        let window = LatencyRule { min_samples: 200, ..LatencyRule::new(Duration::from_millis(10)) };
        let lat = CheckConfig::probe_with(
            ProbeKind::Liveness,
            ProbeCheck { latency: Some(window), ..ProbeCheck::default() },
        );
        assert!(matches!(lat.validate(), Err(HealthConfigError::WindowOutOfRange { .. })));
        let none = InstanceHealthConfig { checks: vec![], flap: None };
        assert!(matches!(none.validate(), Err(HealthConfigError::CheckCount { .. })));
    }
}
