//! What an instance registers, what the catalog keeps, and how to filter it.

use std::collections::BTreeSet;

use super::{HealthStatus, RegistryConfig, RegistryError};
use crate::id::{InstanceId, ServiceId};
use crate::time::{Duration, Instant};

/// The conventional name of the endpoint the health monitor probes.
pub const HEALTH_ENDPOINT: &str = "health";

/// A named network address of an instance, e.g. `http` → `127.0.0.1:8080`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ServiceEndpoint {
    /// What the address serves (`http`, `grpc`, [`HEALTH_ENDPOINT`]).
    pub name: String,
    /// Where: `host:port`, a URL, or any printable token the driver
    /// understands.
    pub address: String,
}

/// A request to register (or re-register) an instance.
///
/// Built with [`Registration::new`] and the builder methods; every field is
/// checked by [`Registry::register`](super::Registry::register).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// The instance; unique across the whole catalog.
    pub id: InstanceId,
    /// The service name: ASCII letters, digits, `-`, `_`, `.`, starting with
    /// a letter or digit.
    pub service: String,
    /// The version it runs (printable ASCII, no spaces).
    pub version: String,
    /// Where it runs (printable ASCII, no spaces). Default `default`.
    pub zone: String,
    /// Free-form labels (printable ASCII, no spaces); duplicates collapse.
    pub tags: Vec<String>,
    /// Relative share of traffic; at least 1. Default 1.
    pub weight: u32,
    /// Named addresses, names unique; by convention one is
    /// [`HEALTH_ENDPOINT`].
    pub endpoints: Vec<ServiceEndpoint>,
    /// Lease; `None`: the registry's `default_ttl`.
    pub ttl: Option<Duration>,
    /// Reported health until the monitor says otherwise. Default critical.
    pub initial_health: HealthStatus,
}

impl Registration {
    /// A registration of `id` in `service` running `version`, with the
    /// defaults: zone `default`, no tags, weight 1, no endpoints, the
    /// registry's default lease, and critical until reported otherwise.
    pub fn new(id: InstanceId, service: impl Into<String>, version: impl Into<String>) -> Self {
        Registration {
            id,
            service: service.into(),
            version: version.into(),
            zone: "default".to_owned(),
            tags: Vec::new(),
            weight: 1,
            endpoints: Vec::new(),
            ttl: None,
            initial_health: HealthStatus::Critical,
        }
    }

    /// Set the zone.
    #[must_use]
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// Add a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Set the weight.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Add a named endpoint.
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<String>, address: impl Into<String>) -> Self {
        self.endpoints.push(ServiceEndpoint { name: name.into(), address: address.into() });
        self
    }

    /// Set the lease.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Set the health reported until the monitor says otherwise.
    #[must_use]
    pub fn initial_health(mut self, status: HealthStatus) -> Self {
        self.initial_health = status;
        self
    }

    /// Check every field against `config`; return the lease to use and the
    /// tags as a set.
    pub(super) fn validate(
        &self,
        config: &RegistryConfig,
    ) -> Result<(Duration, BTreeSet<String>), RegistryError> {
        validate_service_name(&self.service, config)?;
        validate_token("version", &self.version, config.max_value_len)?;
        validate_zone(&self.zone, config)?;
        if self.weight == 0 {
            return Err(RegistryError::ZeroWeight);
        }
        if self.tags.len() > config.max_tags {
            return Err(RegistryError::TooMany {
                field: "tags",
                count: self.tags.len(),
                max: config.max_tags,
            });
        }
        for tag in &self.tags {
            validate_token("tag", tag, config.max_value_len)?;
        }
        if self.endpoints.len() > config.max_endpoints {
            return Err(RegistryError::TooMany {
                field: "endpoints",
                count: self.endpoints.len(),
                max: config.max_endpoints,
            });
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            validate_token("endpoint name", &endpoint.name, config.max_name_len)?;
            validate_token("endpoint address", &endpoint.address, config.max_value_len)?;
            // Quadratic, but bounded by `max_endpoints` (16 by default).
            if self.endpoints[..i].iter().any(|e| e.name == endpoint.name) {
                return Err(RegistryError::DuplicateEndpoint(endpoint.name.clone()));
            }
        }
        let ttl = self.ttl.unwrap_or(config.default_ttl);
        if ttl < config.min_ttl || ttl > config.max_ttl {
            return Err(RegistryError::TtlOutOfRange {
                ttl,
                min_ttl: config.min_ttl,
                max_ttl: config.max_ttl,
            });
        }
        Ok((ttl, self.tags.iter().cloned().collect()))
    }
}

/// Check a service name: non-empty, at most `max_name_len` bytes, ASCII
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit.
///
/// Public so that whoever accepts names ahead of registration (a scenario
/// loader, a config file) refuses exactly what the registry would.
pub fn validate_service_name(name: &str, config: &RegistryConfig) -> Result<(), RegistryError> {
    const RULE: &str =
        "service names use ASCII letters, digits, '-', '_' and '.', starting with a letter or digit";
    check_len("service name", name, config.max_name_len)?;
    let bad = name.bytes().enumerate().find(|&(i, b)| {
        let allowed = b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'-' | b'_' | b'.'));
        !allowed
    });
    match bad {
        Some((at, _)) => Err(invalid("service name", name, at, RULE, config.max_name_len)),
        None => Ok(()),
    }
}

/// Check a zone name as [`Registration::zone`] would be: non-empty, at most
/// `max_value_len` bytes, printable ASCII without spaces.
pub fn validate_zone(zone: &str, config: &RegistryConfig) -> Result<(), RegistryError> {
    validate_token("zone", zone, config.max_value_len)
}

/// Check a free-form token: non-empty, at most `max` bytes, printable ASCII
/// without spaces.
fn validate_token(field: &'static str, value: &str, max: usize) -> Result<(), RegistryError> {
    const RULE: &str = "printable ASCII without spaces";
    check_len(field, value, max)?;
    match value.bytes().position(|b| !b.is_ascii_graphic()) {
        Some(at) => Err(invalid(field, value, at, RULE, max)),
        None => Ok(()),
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), RegistryError> {
    if value.is_empty() {
        return Err(RegistryError::Empty { field });
    }
    if value.len() > max {
        return Err(RegistryError::TooLong { field, len: value.len(), max });
    }
    Ok(())
}

fn invalid(field: &'static str, value: &str, at: usize, rule: &'static str, max: usize) -> RegistryError {
    // Keep the error small even for hostile input: at most `max` bytes, cut
    // on a character boundary.
    let mut end = value.len().min(max);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    RegistryError::InvalidChar { field, value: value[..end].to_owned(), at, rule }
}

/// An instance in the catalog.
///
/// Read-only: the registry builds and updates it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Instance {
    /// The instance.
    pub id: InstanceId,
    /// Its service.
    pub service: ServiceId,
    /// The version it runs.
    pub version: String,
    /// Where it runs.
    pub zone: String,
    /// Its labels, sorted.
    pub tags: BTreeSet<String>,
    /// Relative share of traffic, at least 1.
    pub weight: u32,
    /// Named addresses, in registration order.
    pub endpoints: Vec<ServiceEndpoint>,
    /// When it first registered (re-registration keeps it).
    pub registered_at: Instant,
    /// Its lease.
    pub ttl: Duration,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: Instant,
    /// The deadline of the lease timer armed for it, if one is: at or
    /// before `lease_expires_at`. A renewal moves only `lease_expires_at`;
    /// the timer re-arms when it fires (one timer operation per lease
    /// period, not per heartbeat).
    #[serde(skip)]
    pub(crate) lease_timer: Option<Instant>,
    /// Whether the lease has run out (it then counts as critical).
    pub lease_expired: bool,
    /// The status last reported by [`Registry::set_health`](super::Registry::set_health).
    pub reported_health: HealthStatus,
    /// Since when it has been critical, if it is.
    pub critical_since: Option<Instant>,
    /// The registry index at which it was registered.
    pub create_index: u64,
    /// The registry index of its last change.
    pub modify_index: u64,
}

impl Instance {
    /// Its health: critical when the lease has expired, else as reported.
    pub fn health(&self) -> HealthStatus {
        if self.lease_expired { HealthStatus::Critical } else { self.reported_health }
    }

    /// The address of the endpoint named `name`.
    pub fn endpoint(&self, name: &str) -> Option<&str> {
        self.endpoints.iter().find(|e| e.name == name).map(|e| e.address.as_str())
    }

    /// The address of its [`HEALTH_ENDPOINT`], if it registered one.
    pub fn health_endpoint(&self) -> Option<&str> {
        self.endpoint(HEALTH_ENDPOINT)
    }

    /// Whether it matches every filter of `query` (health aside).
    pub fn matches(&self, query: &Query) -> bool {
        query.version.as_ref().is_none_or(|v| *v == self.version)
            && query.zone.as_ref().is_none_or(|z| *z == self.zone)
            && query.tags.iter().all(|t| self.tags.contains(t))
    }
}

/// Filters for a catalog query; the default matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Query {
    /// Only this version.
    pub version: Option<String>,
    /// Only this zone.
    pub zone: Option<String>,
    /// Only instances carrying every one of these tags.
    pub tags: Vec<String>,
}

impl Query {
    /// Match everything.
    pub fn all() -> Self {
        Query::default()
    }

    /// Only `version`.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Only `zone`.
    #[must_use]
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Also require `tag`.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
}
