//! Balancer settings, their defaults (Envoy's, Finagle's and Linkerd's where
//! they have one), and what can be wrong with them.

use std::collections::BTreeMap;

use crate::id::InstanceId;
use crate::time::Duration;

/// Most endpoints one balancer takes.
pub const MAX_ENDPOINTS: usize = 65_536;
/// Most entries on the consistent-hash ring; `vnodes_per_endpoint` is
/// reduced for large sets so the ring stays within it (8 MiB of entries).
pub const MAX_RING_ENTRIES: usize = 1 << 20;
/// Longest version string accepted in an [`Endpoint`](super::Endpoint).
pub const MAX_VERSION_LEN: usize = 256;
/// Most undrained [`BalanceEvent`](super::BalanceEvent)s kept; older ones
/// are dropped and counted in [`BalancerStats::events_dropped`](super::BalancerStats::events_dropped).
pub const MAX_PENDING_EVENTS: usize = 1024;

/// How a balancer chooses among eligible endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each eligible endpoint in turn, from a seeded starting point.
    /// Ignores weights.
    RoundRobin,
    /// Weighted random: each pick lands on an endpoint with probability
    /// proportional to its effective weight (weight × slow-start factor,
    /// shaped by `version_weights`).
    Weighted,
    /// Power of two choices: draw two endpoints by effective weight, take
    /// the one with the lower cost `peak_ewma_latency × (outstanding + 1)`
    /// (Finagle's and Linkerd's `p2c` + peak EWMA).
    #[default]
    LeastLoaded,
    /// Consistent hashing of the pick's key for affinity: a ring with
    /// virtual nodes. Ignores weights.
    ConsistentHash,
}

/// The slow start of endpoints that join an existing set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SlowStartConfig {
    /// How long the ramp lasts.
    pub window: Duration,
    /// Weight at the start of the ramp, in percent of the full weight
    /// (1..=100); it rises linearly to 100 % over `window`.
    pub min_weight_percent: u32,
}

impl Default for SlowStartConfig {
    fn default() -> Self {
        SlowStartConfig { window: Duration::from_secs(30), min_weight_percent: 10 }
    }
}

/// Ejection of endpoints whose success rate is an outlier among their
/// peers (Envoy's `success_rate_*` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SuccessRateConfig {
    /// `k` in `mean − k·stdev`, in thousandths (Envoy's convention): 1900
    /// is k = 1.9.
    pub stdev_factor_thousandths: u32,
    /// Fewer endpoints with enough requests than this: no evaluation.
    pub minimum_hosts: u32,
    /// Requests an endpoint needs within an interval to be evaluated.
    pub request_volume: u32,
}

impl Default for SuccessRateConfig {
    fn default() -> Self {
        SuccessRateConfig { stdev_factor_thousandths: 1900, minimum_hosts: 5, request_volume: 100 }
    }
}

/// Outlier ejection (Envoy's outlier detection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct OutlierConfig {
    /// Eject after this many consecutive failures; `None`: never. The count
    /// restarts at each success, at each ejection it triggers, and when the
    /// endpoint returns from an ejection (as Envoy resets its consecutive
    /// 5xx and gateway-failure counters on un-ejection, so that failures
    /// seen while ejected do not re-eject it after very few new ones).
    pub consecutive_errors: Option<u32>,
    /// Success-rate evaluation; `None`: never.
    pub success_rate: Option<SuccessRateConfig>,
    /// How often success rates are evaluated and ejection multipliers decay.
    pub interval: Duration,
    /// Ejection time = `base_ejection_time` × the endpoint's ejection
    /// multiplier, capped at `max_ejection_time`. The multiplier goes up by
    /// one at each ejection while `multiplier × base < max + base` (Envoy's
    /// rule: it stops at `max / base + 1`, rounded up, rather than growing
    /// without bound while the time is capped), and down by one at the end
    /// of each interval during which the endpoint stayed in rotation.
    pub base_ejection_time: Duration,
    /// The longest ejection (Envoy's `max_ejection_time`, default 300 s);
    /// at least `base_ejection_time`.
    pub max_ejection_time: Duration,
    /// At most this share of the endpoints ejected at once, in percent
    /// (0..=100): an ejection is allowed while `100 × (ejected + 1) ≤
    /// max_ejection_percent × endpoints`, so the cap is
    /// `⌊endpoints × max_ejection_percent / 100⌋` and rounds down, to zero
    /// for small sets (Envoy's rule: 3 endpoints at 10 % eject none, 10 at
    /// 10 % eject one). The cap is checked when ejecting: endpoints already
    /// ejected stay so when the set shrinks under them.
    pub max_ejection_percent: u32,
    /// Allow one ejection whatever `max_ejection_percent` says (Envoy's
    /// `always_eject_one_host`, default `false`): when no endpoint is
    /// ejected, one may be, even when the percentage rounds to zero
    /// endpoints or is 0; further ejections obey the percentage. With it, 3
    /// endpoints at 10 % eject one.
    #[serde(default)]
    pub always_eject_one_host: bool,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_errors: Some(5),
            success_rate: Some(SuccessRateConfig::default()),
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            always_eject_one_host: false,
        }
    }
}

/// The peak-EWMA latency estimator of [`Strategy::LeastLoaded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PeakEwmaConfig {
    /// Time constant τ: a sample `t` old weighs `e^(−t/τ)`.
    pub decay: Duration,
    /// The estimate of an endpoint with no sample yet.
    pub default_rtt: Duration,
}

impl Default for PeakEwmaConfig {
    fn default() -> Self {
        // Linkerd's defaults.
        PeakEwmaConfig { decay: Duration::from_secs(10), default_rtt: Duration::from_millis(30) }
    }
}

/// The retry budget (Finagle's `RetryBudget`, Linkerd's retry budgets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RetryBudgetConfig {
    /// The sliding window over which requests and retries are counted.
    pub window: Duration,
    /// Retries allowed, in percent of requests in the window.
    pub budget_percent: u32,
    /// Retries allowed per second of window whatever the request count, so
    /// that a quiet client may still retry.
    pub min_retries_per_second: u32,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig { window: Duration::from_secs(10), budget_percent: 20, min_retries_per_second: 10 }
    }
}

/// Settings of a [`Balancer`](super::Balancer).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BalancerConfig {
    /// How to choose.
    pub strategy: Strategy,
    /// Traffic share per version, e.g. `{v1: 90, v2: 10}` for a canary.
    /// Empty: no shaping. Otherwise a version not listed gets no traffic,
    /// shares renormalise over the versions that have an eligible endpoint,
    /// and if none of those has a share, shaping is suspended rather than
    /// the service made unavailable. Applies to `Weighted` and
    /// `LeastLoaded`.
    pub version_weights: BTreeMap<String, u32>,
    /// Below this share of healthy, non-ejected endpoints (percent,
    /// 0..=100), balance over all endpoints instead (Envoy's panic mode). 0
    /// disables panic mode.
    pub panic_threshold_percent: u32,
    /// Slow start of joining endpoints; `None`: full weight at once.
    pub slow_start: Option<SlowStartConfig>,
    /// Outlier ejection; `None`: never eject.
    pub outlier: Option<OutlierConfig>,
    /// The latency estimator of `LeastLoaded`.
    pub peak_ewma: PeakEwmaConfig,
    /// Virtual nodes per endpoint on the consistent-hash ring.
    pub vnodes_per_endpoint: u32,
    /// The retry budget.
    pub retry_budget: RetryBudgetConfig,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            strategy: Strategy::default(),
            version_weights: BTreeMap::new(),
            panic_threshold_percent: 50,
            slow_start: Some(SlowStartConfig::default()),
            outlier: Some(OutlierConfig::default()),
            peak_ewma: PeakEwmaConfig::default(),
            vnodes_per_endpoint: 100,
            retry_budget: RetryBudgetConfig::default(),
        }
    }
}

impl BalancerConfig {
    /// The default settings with `strategy`.
    pub fn with_strategy(strategy: Strategy) -> Self {
        BalancerConfig { strategy, ..Default::default() }
    }

    /// Check the settings make sense on their own.
    pub fn validate(&self) -> Result<(), BalanceConfigError> {
        percent("panic_threshold_percent", self.panic_threshold_percent)?;
        if let Some(slow) = &self.slow_start {
            nonzero("slow_start.window", slow.window)?;
            percent("slow_start.min_weight_percent", slow.min_weight_percent)?;
            if slow.min_weight_percent == 0 {
                return Err(BalanceConfigError::Zero { which: "slow_start.min_weight_percent" });
            }
        }
        if let Some(outlier) = &self.outlier {
            nonzero("outlier.interval", outlier.interval)?;
            nonzero("outlier.base_ejection_time", outlier.base_ejection_time)?;
            if outlier.max_ejection_time < outlier.base_ejection_time {
                return Err(BalanceConfigError::MaxBelowBase {
                    base: outlier.base_ejection_time,
                    max: outlier.max_ejection_time,
                });
            }
            percent("outlier.max_ejection_percent", outlier.max_ejection_percent)?;
            if outlier.consecutive_errors == Some(0) {
                return Err(BalanceConfigError::Zero { which: "outlier.consecutive_errors" });
            }
            if let Some(sr) = &outlier.success_rate {
                if sr.minimum_hosts == 0 {
                    return Err(BalanceConfigError::Zero { which: "outlier.success_rate.minimum_hosts" });
                }
                if sr.request_volume == 0 {
                    return Err(BalanceConfigError::Zero { which: "outlier.success_rate.request_volume" });
                }
            }
        }
        nonzero("peak_ewma.decay", self.peak_ewma.decay)?;
        if self.vnodes_per_endpoint == 0 {
            return Err(BalanceConfigError::Zero { which: "vnodes_per_endpoint" });
        }
        self.retry_budget.validate()
    }
}

impl RetryBudgetConfig {
    /// Check the settings make sense on their own.
    pub fn validate(&self) -> Result<(), BalanceConfigError> {
        if self.window < Duration::from_millis(super::retry::BUCKETS as u64) {
            return Err(BalanceConfigError::TooShort {
                which: "retry_budget.window",
                min: Duration::from_millis(super::retry::BUCKETS as u64),
            });
        }
        // Beyond 1000 % the budget is no longer a budget; it is also where
        // `requests × percent` could overflow a u64 in principle.
        if self.budget_percent > 1000 {
            return Err(BalanceConfigError::PercentOutOfRange {
                which: "retry_budget.budget_percent",
                value: self.budget_percent,
                max: 1000,
            });
        }
        Ok(())
    }
}

fn percent(which: &'static str, value: u32) -> Result<(), BalanceConfigError> {
    if value > 100 {
        return Err(BalanceConfigError::PercentOutOfRange { which, value, max: 100 });
    }
    Ok(())
}

fn nonzero(which: &'static str, value: Duration) -> Result<(), BalanceConfigError> {
    if value.is_zero() {
        return Err(BalanceConfigError::Zero { which });
    }
    Ok(())
}

/// A balancer configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceConfigError {
    /// A setting that must be positive is zero.
    #[error("`{which}` must be greater than zero")]
    Zero {
        /// The offending setting.
        which: &'static str,
    },
    /// A percentage beyond its range.
    #[error("`{which}` is {value} %; it must be at most {max} %")]
    PercentOutOfRange {
        /// The offending setting.
        which: &'static str,
        /// Its value.
        value: u32,
        /// The largest accepted.
        max: u32,
    },
    /// A duration too short to be divided into the buckets it needs.
    #[error("`{which}` must be at least {min:?}")]
    TooShort {
        /// The offending setting.
        which: &'static str,
        /// The shortest accepted.
        min: Duration,
    },
    /// `max_ejection_time` below `base_ejection_time`.
    #[error("`outlier.max_ejection_time` ({max:?}) must be at least `outlier.base_ejection_time` ({base:?})")]
    MaxBelowBase {
        /// The base ejection time.
        base: Duration,
        /// The cap.
        max: Duration,
    },
}

/// An endpoint set [`Balancer::set_endpoints`](super::Balancer::set_endpoints)
/// refused. The balancer is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// A weight of zero: take an endpoint out with `healthy: false` instead.
    #[error("{0} has weight 0; mark it unhealthy or leave it out instead")]
    ZeroWeight(InstanceId),
    /// The same id twice.
    #[error("{0} is listed twice")]
    Duplicate(InstanceId),
    /// More than [`MAX_ENDPOINTS`].
    #[error("{count} endpoints given; the limit is {max}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A version string longer than [`MAX_VERSION_LEN`].
    #[error("{id} has a version of {len} bytes; the limit is {max}")]
    VersionTooLong {
        /// The endpoint.
        id: InstanceId,
        /// The version's length.
        len: usize,
        /// The limit.
        max: usize,
    },
}
