//! What goes over the wire: request and response bodies, as JSON.
//!
//! Every type is `Serialize` and `Deserialize`, so that tools (and
//! [`ApiClient`](super::ApiClient)) read what the server writes. Requests
//! deny unknown fields: a misspelt `ttl_msec` is an error, not a silently
//! ignored default.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_core::control::RegisterRequest;
use vigil_core::health::{HealthStatus as MonitorStatus, Liveness};
use vigil_core::registry::{HealthStatus, Registration, ServiceEndpoint};
use vigil_core::{Duration, InstanceId, NodeId};

/// Named addresses, in the order given: a JSON object `{"name": "address"}`.
///
/// Kept as a list, not a map, so that the order survives and a name given
/// twice reaches the registry, which refuses it with a clear error instead
/// of one of the two winning silently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints(pub Vec<(String, String)>);

impl Endpoints {
    /// Add `name` → `address`, builder style.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, address: impl Into<String>) -> Self {
        self.0.push((name.into(), address.into()));
        self
    }

    /// The address of the first endpoint named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, a)| a.as_str())
    }
}

impl Serialize for Endpoints {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, address) in &self.0 {
            map.serialize_entry(name, address)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Endpoints;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of endpoint names to addresses")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Endpoints, A::Error> {
                // The body limit bounds how many entries can arrive; the
                // registry bounds how many it accepts.
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    entries.push(entry);
                }
                Ok(Endpoints(entries))
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

impl From<&[ServiceEndpoint]> for Endpoints {
    fn from(endpoints: &[ServiceEndpoint]) -> Self {
        Endpoints(endpoints.iter().map(|e| (e.name.clone(), e.address.clone())).collect())
    }
}

/// The body of `POST /v1/instances`: register (or re-register) an instance.
///
/// Only `id`, `service`, `version` and `node` are required; the registry's
/// defaults fill the rest (zone `default`, no tags, weight 1, no endpoints,
/// the registry's default lease, liveness class 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInstance {
    /// The instance id, unique across the catalog.
    pub id: u32,
    /// Its service's name.
    pub service: String,
    /// The version it runs.
    pub version: String,
    /// Where it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Relative share of traffic, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Named addresses; by convention `health` is the URL the control
    /// node probes.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub endpoints: Endpoints,
    /// The lease in milliseconds; heartbeats renew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The node id of the instance's heartbeat agent.
    pub node: u32,
    /// Index of its liveness (and health) class on the control node.
    #[serde(default)]
    pub class: usize,
}

fn is_empty(endpoints: &Endpoints) -> bool {
    endpoints.0.is_empty()
}

impl RegisterInstance {
    /// Instance `id` of `service` running `version`, whose agent is node
    /// `node`; everything else default.
    pub fn new(id: u32, service: impl Into<String>, version: impl Into<String>, node: u32) -> Self {
        RegisterInstance {
            id,
            service: service.into(),
            version: version.into(),
            zone: None,
            tags: Vec::new(),
            weight: None,
            endpoints: Endpoints::default(),
            ttl_ms: None,
            node,
            class: 0,
        }
    }

    /// The control plane's request. Nothing is checked here: the registry
    /// and the control plane check every field.
    pub fn to_request(&self) -> RegisterRequest {
        let mut registration = Registration::new(InstanceId(self.id), &*self.service, &*self.version);
        if let Some(zone) = &self.zone {
            registration = registration.zone(zone.as_str());
        }
        registration.tags.clone_from(&self.tags);
        if let Some(weight) = self.weight {
            registration = registration.weight(weight);
        }
        registration.endpoints = self
            .endpoints
            .0
            .iter()
            .map(|(name, address)| ServiceEndpoint { name: name.clone(), address: address.clone() })
            .collect();
        if let Some(ms) = self.ttl_ms {
            registration = registration.ttl(Duration::from_millis(ms));
        }
        RegisterRequest { registration, node: NodeId(self.node), class: self.class }
    }
}

/// What a registration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new instance joined the catalog (`201 Created`).
    Created,
    /// A known instance changed its metadata (`200 OK`).
    Updated,
    /// A known instance re-registered unchanged: its lease was renewed
    /// (`200 OK`).
    Renewed,
}

/// The answer to `POST /v1/instances`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// What the registration did.
    pub outcome: Outcome,
    /// The catalog record as it now stands.
    pub instance: InstanceRecord,
}

/// The lease of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Its length.
    pub ttl_ms: u64,
    /// Whether it has run out (the instance then counts as critical).
    pub expired: bool,
    /// Time left, 0 once expired.
    pub expires_in_ms: u64,
}

/// The health monitor's view of an instance with active checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRecord {
    /// Its status (damped while flapping).
    pub status: MonitorStatus,
    /// Whether it is in rotation, as far as the monitor is concerned.
    pub ready: bool,
    /// Whether every startup check has passed.
    pub started: bool,
    /// Whether it is flapping.
    pub flapping: bool,
    /// Whether a recovery episode is open.
    pub needs_recovery: bool,
}

/// One instance: its catalog record, with what the control plane makes of
/// it. Times are relative to the control node's clock when answering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The instance id.
    pub id: u32,
    /// Its service's name.
    pub service: String,
    /// The version it runs.
    pub version: String,
    /// Where it runs.
    pub zone: String,
    /// Its labels, sorted.
    pub tags: Vec<String>,
    /// Its relative share of traffic.
    pub weight: u32,
    /// The node it runs on: where its heartbeats come from, and its probes
    /// and calls go (always set for a registered instance).
    #[serde(default)]
    pub node: Option<u32>,
    /// Its named addresses, in registration order.
    pub endpoints: Endpoints,
    /// The catalog's health: the worse of the lease and the reported status.
    pub health: HealthStatus,
    /// Whether clients are told to send it traffic.
    pub routable: bool,
    /// The failure detector's verdict from its heartbeats.
    pub liveness: Option<Liveness>,
    /// Its liveness and health class.
    pub class: Option<usize>,
    /// The monitor's view, if its class has active checks.
    pub monitor: Option<MonitorRecord>,
    /// Its lease.
    pub lease: Lease,
    /// How long it has been critical, if it is.
    pub critical_for_ms: Option<u64>,
    /// How long since it first registered.
    pub registered_ms_ago: u64,
    /// The catalog index at which it registered.
    pub create_index: u64,
    /// The catalog index of its last change.
    pub modify_index: u64,
}

/// The answer to `GET /v1/instances`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceList {
    /// The catalog's index when answering.
    pub index: u64,
    /// One page of the matching instances, by id: at most the query's
    /// `limit` ([`DEFAULT_PAGE`](super::DEFAULT_PAGE) unless given).
    pub instances: Vec<InstanceRecord>,
    /// The last id of this page if more match: ask again with `after=` it
    /// for the next page. `None`: this is the last page.
    #[serde(default)]
    pub next: Option<u32>,
}

/// The health monitor's counts for one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorCounts {
    /// Instances with active checks.
    pub instances: u32,
    /// By status.
    pub healthy: u32,
    /// By status.
    pub degraded: u32,
    /// By status.
    pub unknown: u32,
    /// By status.
    pub unresponsive: u32,
    /// By status.
    pub failed: u32,
    /// In rotation, as far as the monitor is concerned.
    pub ready: u32,
    /// Flapping.
    pub flapping: u32,
}

/// One service, summed up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its name.
    pub name: String,
    /// Registered instances.
    pub instances: u32,
    /// Instances whose catalog health is passing.
    pub passing: u32,
    /// Instances whose catalog health is warning.
    pub warning: u32,
    /// Instances whose catalog health is critical.
    pub critical: u32,
    /// Instances clients are told to send traffic.
    pub routable: u32,
    /// The monitor's counts, if some of its instances have active checks.
    pub monitor: Option<MonitorCounts>,
}

/// The answer to `GET /v1/services`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// The catalog's index when answering.
    pub index: u64,
    /// One page of the services with at least one instance, by name: at
    /// most the query's `limit` ([`DEFAULT_PAGE`](super::DEFAULT_PAGE)
    /// unless given).
    pub services: Vec<ServiceRecord>,
    /// The last name of this page if there are more: ask again with
    /// `after=` it for the next page. `None`: this is the last page.
    #[serde(default)]
    pub next: Option<String>,
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program: `unauthorized`, `forbidden`,
    /// `invalid_json`, `invalid_registration`, `conflict`, `catalog_full`,
    /// `too_large`, `invalid_query`, `bad_request`, `not_found`,
    /// `method_not_allowed`, `unsupported_media_type`, `uri_too_long`,
    /// `timeout`, `overloaded`, `unavailable` (see the [module
    /// docs](super)).
    pub kind: String,
}
