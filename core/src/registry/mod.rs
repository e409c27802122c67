//! Registry: where every instance is, what it runs, and whether it is well.
//!
//! The [`Registry`] is the service catalog of the control plane, after
//! Consul's: instances register with metadata (service, version, zone, tags,
//! weight, named endpoints including a health endpoint), and callers query
//! the healthy instances of a service, filtered by version, tags and zone.
//!
//! # Leases and health
//!
//! A registration is a *lease*: it holds for `ttl` and is renewed by
//! [`Registry::renew`] (the instance's heartbeats). An instance's health is
//! the worse of two checks, as in Consul:
//!
//! - the lease: expired ⇒ [`HealthStatus::Critical`];
//! - the status reported from outside with [`Registry::set_health`] (by the
//!   health monitor), which starts at the registration's `initial_health`
//!   (critical by default: an instance takes traffic once something vouches
//!   for it, as with a Kubernetes readiness probe).
//!
//! An instance that stays critical for `deregister_critical_after` is removed
//! (Consul's `deregister_critical_service_after`): a crashed instance that
//! never deregistered does not linger in the catalog forever.
//!
//! # Index and watches
//!
//! Every change to the catalog bumps a monotonically increasing
//! [`index`](Registry::index) and is appended to a bounded change log
//! ([`Change`]). Clients learn of changes without polling everything, with
//! Consul's blocking-query semantics made sans-IO: a client
//! [`watch`](Registry::watch)es a service, then asks
//! [`poll_watch(watch, since)`](Registry::poll_watch). `None` means "nothing
//! new yet": the driver parks the client's request until the registry emits
//! [`RegistryEvent::WatchFired`] for that watch, then asks again. A client
//! the log no longer reaches back for (or one with index 0, or an index from
//! a previous life of the registry) gets a full [`WatchResult::Snapshot`]
//! instead of a list of changes.
//!
//! # Invariants
//!
//! - The index never decreases; every logged change has a distinct index,
//!   and the log holds consecutive indices.
//! - Every instance's service exists; a service lists exactly the instances
//!   that name it.
//! - Healthy queries return only [`HealthStatus::Passing`] instances, in id
//!   order.
//! - A rejected operation ([`RegistryError`]) changes nothing, not even the
//!   index.
//!
//! # Limits
//!
//! Every collection is bounded by [`RegistryConfig`]: instances, services
//! (`max_services` known at once: when a new name finds the table full, the
//! least recently changed service with no instance and no watch is
//! forgotten to make room, [`Registry::reclaimed_services`] counts them;
//! ids are never reused, so a client holding a forgotten id learns nothing
//! of another service), watches, tags and endpoints per instance, string lengths,
//! and the change log (`change_log_capacity`, oldest dropped first). Pending
//! [`RegistryEvent`]s are coalesced to at most one per watch.
//!
//! # Cost
//!
//! Registration, renewal, health updates and each expiry are O(log n): lease
//! and deregistration deadlines live in one ordered set keyed by
//! `(deadline, instance)`, so [`Registry::handle_timeout`] touches only what
//! is due and [`Registry::poll_timeout`] is the set's first entry. A query
//! walks only the instances of the service asked for.

mod catalog;
mod dense;
mod error;
mod record;
#[cfg(test)]
mod tests;
mod watch;

pub use catalog::{RegisterOutcome, Registry};
pub use error::{RegistryConfigError, RegistryError};
pub use record::{
    HEALTH_ENDPOINT, Instance, Query, Registration, ServiceEndpoint, validate_service_name, validate_zone,
};
pub use watch::{Change, ChangeKind, WatchId, WatchResult};

use crate::time::Duration;
use core::fmt;

/// An instance's health, as the registry sees it. Worse is greater.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Well: takes traffic.
    Passing,
    /// Degraded but serving: kept out of healthy queries, not deregistered.
    Warning,
    /// Failed, or its lease expired: no traffic; deregistered if it stays so.
    Critical,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthStatus::Passing => "passing",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
        })
    }
}

/// Why an instance left the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeregisterReason {
    /// [`Registry::deregister`] was called (a clean shutdown).
    Explicit,
    /// Critical for longer than `deregister_critical_after`.
    CriticalTooLong,
}

impl fmt::Display for DeregisterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeregisterReason::Explicit => "explicit",
            DeregisterReason::CriticalTooLong => "critical too long",
        })
    }
}

/// What the registry asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RegistryEvent {
    /// The watched service changed: answer the watch's parked query by
    /// calling [`Registry::poll_watch`]. At most one is pending per watch
    /// until `poll_watch` is called for it.
    WatchFired {
        /// The watch.
        watch: WatchId,
        /// The registry's index when it fired.
        index: u64,
    },
}

/// Settings and limits of a [`Registry`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryConfig {
    /// Lease of a registration that does not name its own `ttl`.
    pub default_ttl: Duration,
    /// The shortest lease accepted.
    pub min_ttl: Duration,
    /// The longest lease accepted.
    pub max_ttl: Duration,
    /// Remove an instance critical for this long; `None`: never.
    pub deregister_critical_after: Option<Duration>,
    /// Most instances in the catalog.
    pub max_instances: usize,
    /// Most services known at once. A full table forgets a service with no
    /// instance and no watch to make room for a new name; only when every
    /// known service is in use is a new one refused (`TooManyServices`).
    pub max_services: usize,
    /// Most watches at once.
    pub max_watches: usize,
    /// Most tags on one instance.
    pub max_tags: usize,
    /// Most endpoints on one instance.
    pub max_endpoints: usize,
    /// Longest service or endpoint name, in bytes.
    pub max_name_len: usize,
    /// Longest version, zone, tag or address, in bytes.
    pub max_value_len: usize,
    /// Changes kept for watchers; one further behind gets a snapshot.
    pub change_log_capacity: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            default_ttl: Duration::from_secs(10),
            min_ttl: Duration::from_millis(100),
            max_ttl: Duration::from_secs(3600),
            deregister_critical_after: Some(Duration::from_secs(60)),
            max_instances: 100_000,
            max_services: 10_000,
            max_watches: 10_000,
            max_tags: 32,
            max_endpoints: 16,
            max_name_len: 63,
            max_value_len: 256,
            change_log_capacity: 4096,
        }
    }
}

impl RegistryConfig {
    /// Check the settings make sense on their own.
    pub fn validate(&self) -> Result<(), RegistryConfigError> {
        if self.min_ttl.is_zero() {
            return Err(RegistryConfigError::Zero { which: "min_ttl" });
        }
        if self.deregister_critical_after.is_some_and(|d| d.is_zero()) {
            return Err(RegistryConfigError::Zero { which: "deregister_critical_after" });
        }
        for (which, value) in [
            ("max_instances", self.max_instances),
            ("max_services", self.max_services),
            ("max_name_len", self.max_name_len),
            ("max_value_len", self.max_value_len),
            ("change_log_capacity", self.change_log_capacity),
        ] {
            if value == 0 {
                return Err(RegistryConfigError::Zero { which });
            }
        }
        if u32::try_from(self.max_services).is_err() {
            return Err(RegistryConfigError::TooLarge { which: "max_services", max: u32::MAX as usize });
        }
        if self.max_ttl < self.min_ttl {
            return Err(RegistryConfigError::TtlRange { min_ttl: self.min_ttl, max_ttl: self.max_ttl });
        }
        if self.default_ttl < self.min_ttl || self.default_ttl > self.max_ttl {
            return Err(RegistryConfigError::DefaultTtlOutOfRange {
                default_ttl: self.default_ttl,
                min_ttl: self.min_ttl,
                max_ttl: self.max_ttl,
            });
        }
        Ok(())
    }
}
