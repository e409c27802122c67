//! Balance: which instance serves the next request, as seen by the caller.
//!
//! The [`Balancer`] runs inside each client (client-side load balancing, as
//! in Finagle, Linkerd and Envoy): it knows a set of [`Endpoint`]s (from the
//! [`registry`](crate::registry), with their weights, versions and health)
//! and for each request [`pick`](Balancer::pick)s one, then learns how the
//! request went ([`on_result`](Balancer::on_result)). Everything is
//! deterministic: time is passed in, randomness comes from a [`Seed`](crate::rng::Seed).
//!
//! # Strategies
//!
//! One [`Strategy`] per balancer:
//!
//! - [`RoundRobin`](Strategy::RoundRobin): each eligible endpoint in turn.
//! - [`Weighted`](Strategy::Weighted): weighted random draws. Per-version
//!   shares (`version_weights`, e.g. `{v1: 90, v2: 10}`) shape the traffic
//!   of a canary. Weighted random was preferred to nginx's smooth weighted
//!   round robin, whose pick is O(n): over 1,000 endpoints a draw is a
//!   binary search instead, and over many picks the shares are the same.
//! - [`LeastLoaded`](Strategy::LeastLoaded) (default): power of two choices
//!   over `peak_ewma_latency × (outstanding + 1)` (Finagle, Linkerd). Two
//!   random candidates, drawn by effective weight so canary shares and slow
//!   start hold here too; the cheaper one wins. Least-loaded avoids both
//!   herding (everyone picking the one best endpoint) and the O(n) scan of
//!   a global minimum.
//! - [`ConsistentHash`](Strategy::ConsistentHash): a ring with virtual
//!   nodes, for affinity; why a ring rather than Maglev or jump hash is in
//!   `ring.rs`.
//!
//! # What is eligible
//!
//! An endpoint is eligible when it is healthy and not ejected. When the
//! healthy, non-ejected share falls below `panic_threshold_percent` (Envoy's
//! panic threshold, 50 % by default), every endpoint is eligible instead:
//! crushing the few survivors under the whole load is worse than sending
//! some requests to endpoints that may fail. [`Pick::panic`] tells the caller.
//! Panic mode ignores ejection as well as health: it is the last resort.
//!
//! Endpoints that join an existing set ramp up: their weight starts at
//! `min_weight_percent` and rises linearly to full over `window` (slow
//! start, for caches and JITs to warm). It applies to weighted draws, so to
//! `Weighted` and `LeastLoaded`.
//!
//! Outlier ejection (consecutive errors; success rate below `mean − k·stdev`)
//! takes failing endpoints out for growing times: see [`OutlierConfig`].
//!
//! # Retries
//!
//! The [`RetryBudget`] bounds retries to a share of requests plus a small
//! floor, so retries cannot multiply the load on a struggling service.
//!
//! # Limits
//!
//! At most [`MAX_ENDPOINTS`] endpoints and [`MAX_RING_ENTRIES`] ring
//! entries; pending events are capped at [`MAX_PENDING_EVENTS`]; the retry
//! budget keeps a fixed array of buckets. Tables are rebuilt in place, so
//! memory follows the largest endpoint set seen.

mod balancer;
mod config;
mod ewma;
mod outlier;
mod retry;
mod ring;
#[cfg(test)]
mod tests;

pub use balancer::Balancer;
pub use config::{
    BalanceConfigError, BalancerConfig, EndpointError, MAX_ENDPOINTS, MAX_PENDING_EVENTS, MAX_RING_ENTRIES,
    MAX_VERSION_LEN, OutlierConfig, PeakEwmaConfig, RetryBudgetConfig, SlowStartConfig, Strategy,
    SuccessRateConfig,
};
pub use outlier::EjectionReason;
pub use retry::{BUCKETS as RETRY_BUDGET_BUCKETS, RetryBudget};

use crate::id::InstanceId;
use crate::registry::{HealthStatus, Instance};
use crate::time::{Duration, Instant};

/// One endpoint a balancer may pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint<'a> {
    /// The instance.
    pub id: InstanceId,
    /// Relative share of traffic for weighted strategies; at least 1.
    pub weight: u32,
    /// The version it runs, for `version_weights`.
    pub version: &'a str,
    /// Whether it may take traffic outside panic mode.
    pub healthy: bool,
}

impl<'a> From<&'a Instance> for Endpoint<'a> {
    /// A registry record as an endpoint: healthy when passing.
    fn from(instance: &'a Instance) -> Self {
        Endpoint {
            id: instance.id,
            weight: instance.weight,
            version: &instance.version,
            healthy: instance.health() == HealthStatus::Passing,
        }
    }
}

/// The endpoint chosen for one request.
///
/// Hand it back with [`Balancer::on_result`] or [`Balancer::abandon`]: the
/// endpoint counts the request as outstanding until then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "finish the request with on_result or abandon, or its endpoint stays loaded"]
pub struct Pick {
    id: InstanceId,
    panic: bool,
    slot: u32,
    generation: u32,
}

impl Pick {
    /// The instance to send the request to.
    pub fn id(&self) -> InstanceId {
        self.id
    }

    /// Whether panic mode was on: the endpoint may be unhealthy or ejected.
    pub fn panic(&self) -> bool {
        self.panic
    }
}

/// What a balancer knows of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointState<'a> {
    /// The instance.
    pub id: InstanceId,
    /// Its configured weight.
    pub weight: u32,
    /// Its version.
    pub version: &'a str,
    /// Whether it was last reported healthy.
    pub healthy: bool,
    /// Whether picks may land on it now.
    pub eligible: bool,
    /// Ejected until then, if ejected.
    pub ejected_until: Option<Instant>,
    /// Its ejection multiplier.
    pub ejections: u32,
    /// Requests picked and not yet finished.
    pub outstanding: u32,
    /// Its peak-EWMA latency estimate now.
    pub latency_estimate: Duration,
    /// Its slow-start weight now, in percent of full weight.
    pub slow_start_percent: u32,
}

/// What a balancer reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum BalanceEvent {
    /// An endpoint was ejected.
    Ejected {
        /// The endpoint.
        id: InstanceId,
        /// Why.
        reason: EjectionReason,
        /// Until when.
        until: Instant,
    },
    /// An ejected endpoint's time was up; it is back.
    Returned {
        /// The endpoint.
        id: InstanceId,
    },
    /// Too few endpoints are healthy: balancing over all of them.
    PanicEntered {
        /// Healthy, non-ejected endpoints.
        healthy: u32,
        /// All endpoints.
        total: u32,
    },
    /// Enough endpoints are healthy again.
    PanicExited {
        /// Healthy, non-ejected endpoints.
        healthy: u32,
        /// All endpoints.
        total: u32,
    },
}

/// Counters for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalancerStats {
    /// Picks that returned an endpoint.
    pub picks: u64,
    /// Of those, picks made in panic mode.
    pub panic_picks: u64,
    /// Picks that found no endpoint.
    pub no_endpoint: u64,
    /// Ejections.
    pub ejections: u64,
    /// Ejections skipped because the cap (`max_ejection_percent`, or one
    /// with `always_eject_one_host`) was already reached.
    pub ejections_skipped: u64,
    /// Results for endpoints no longer in the set.
    pub unknown_results: u64,
    /// Events dropped because more than [`MAX_PENDING_EVENTS`] were
    /// undrained.
    pub events_dropped: u64,
}
