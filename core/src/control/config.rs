//! The control plane's settings, its registration requests and its errors.

use crate::health::{HealthConfigError, InstanceHealthConfig, LivenessTimeouts};
use crate::id::{InstanceId, NodeId, ServiceId};
use crate::recovery::{RecoveryConfig, RecoveryConfigError};
use crate::registry::{Registration, RegistryConfig, RegistryConfigError, RegistryError};
use crate::rng::Seed;
use crate::time::Duration;

/// Settings of the control node.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlConfig {
    /// Timeout classes; each watched instance names one by index.
    pub liveness_classes: Vec<LivenessTimeouts>,
    /// Active health checks of each class (same index as
    /// `liveness_classes`; missing or `None`: heartbeat liveness only).
    pub health_classes: Vec<Option<InstanceHealthConfig>>,
    /// The service catalog's settings (leases, critical deregistration,
    /// limits).
    pub registry: RegistryConfig,
    /// Catalog name of each service of `instances`, by `ServiceId` index
    /// (missing: `service-N`).
    pub service_names: Vec<String>,
    /// The instances to watch from the start.
    pub instances: Vec<WatchedInstance>,
    /// Automated recovery; `None`: verdicts are published, nothing acts on
    /// them.
    pub recovery: Option<RecoveryConfig>,
    /// Seed of the control node's random choices (recovery's jitter).
    pub seed: Seed,
}

impl Default for ControlConfig {
    /// One liveness class (suspect after 3 s, dead after 5 s), no active
    /// checks, the default catalog, no instances yet.
    fn default() -> Self {
        ControlConfig {
            liveness_classes: vec![LivenessTimeouts {
                suspect_after: Duration::from_secs(3),
                dead_after: Duration::from_secs(5),
            }],
            health_classes: Vec::new(),
            registry: RegistryConfig::default(),
            service_names: Vec::new(),
            instances: Vec::new(),
            recovery: None,
            seed: Seed(0),
        }
    }
}

/// Why the control node refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The catalog refused the registration (bad names, limits, an id
    /// already used by another service…). Nothing changed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The health settings of the instance's class are invalid.
    #[error(transparent)]
    Health(#[from] HealthConfigError),
    /// The catalog settings are invalid.
    #[error(transparent)]
    RegistryConfig(#[from] RegistryConfigError),
    /// The recovery settings are invalid.
    #[error(transparent)]
    RecoveryConfig(#[from] RecoveryConfigError),
}

/// A runtime registration: who the instance is, where it runs, and which
/// timeout and health class watches it.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterRequest {
    /// Catalog record: id, service, version, zone, tags, weight,
    /// endpoints, lease.
    pub registration: Registration,
    /// Where the instance's agent runs.
    pub node: NodeId,
    /// Index of its timeout and health class.
    pub class: usize,
}

/// An instance the control node watches from boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedInstance {
    /// The instance.
    pub instance: InstanceId,
    /// Where it runs: where clients send it calls.
    pub node: NodeId,
    /// Its service.
    pub service: ServiceId,
    /// Index of its timeout and health class.
    pub class: usize,
    /// Its zone (the catalog's `default` if `None`). Instances of one
    /// zone share a network path: recovery judges their going silent
    /// together as one event.
    pub zone: Option<String>,
}
