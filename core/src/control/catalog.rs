//! The catalog controller: the service catalog (the one record of what
//! runs where), its leases and its health column.
//!
//! It hears heartbeats (each renews the instance's lease) and verdicts
//! (each sets the instance's catalog health), and it finds the instances
//! the catalog let go by itself (critical too long, lease expired), which
//! the composition then removes from the fleet.

use super::event::Event;
use super::health::{HealthController, catalog_health};
use super::roster::Roster;
use crate::id::InstanceId;
use crate::registry::{
    ChangeKind, RegisterOutcome, Registration, Registry, RegistryConfig, RegistryConfigError, RegistryError,
};
use crate::time::Instant;

/// The catalog and what it last acted on.
#[derive(Debug, Clone)]
pub struct CatalogController {
    registry: Registry,
    /// Registry index up to which changes have been acted on.
    seen: u64,
    /// Whether the catalog may have let instances go since the last turn:
    /// only its own timeouts do (a clean deregistration leaves at once),
    /// so other rounds skip the change log.
    may_have_departures: bool,
}

impl CatalogController {
    pub(super) fn new(config: RegistryConfig) -> Result<Self, RegistryConfigError> {
        Ok(CatalogController { registry: Registry::new(config)?, seen: 0, may_have_departures: false })
    }

    /// The service catalog, for queries.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(super) fn register(
        &mut self,
        now: Instant,
        registration: Registration,
    ) -> Result<RegisterOutcome, RegistryError> {
        self.registry.register(now, registration)
    }

    /// Remove an instance (a clean shutdown); whether it was registered.
    pub(super) fn deregister(&mut self, now: Instant, instance: InstanceId) -> bool {
        self.registry.deregister(now, instance).is_ok()
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.registry.handle_timeout(now);
        self.may_have_departures = true;
        // Watches are answered by queries; nothing to carry out.
        while self.registry.poll_event().is_some() {}
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.registry.poll_timeout()
    }

    /// Instances the catalog let go since the last turn (critical too
    /// long, lease expired) that the fleet still holds: they leave.
    pub(super) fn departures(&mut self, roster: &Roster) -> Vec<InstanceId> {
        if !std::mem::take(&mut self.may_have_departures) {
            return Vec::new();
        }
        match self.registry.changes_since(self.seen) {
            Some(changes) => changes
                .filter(|c| matches!(c.kind, ChangeKind::Deregistered { .. }))
                .map(|c| c.instance)
                .filter(|&i| roster.node(i).is_some())
                .collect(),
            // The log no longer reaches back: compare with the catalog.
            None => (0..roster.slots())
                .map(|i| InstanceId(i as u32))
                .filter(|&i| roster.node(i).is_some() && self.registry.instance(i).is_none())
                .collect(),
        }
    }

    /// The turn: heartbeats renew leases, verdicts set the catalog's
    /// health column.
    pub(super) fn hear(
        &mut self,
        now: Instant,
        roster: &Roster,
        health: &HealthController,
        events: &[Event],
    ) {
        for event in events {
            match *event {
                Event::HeartbeatAccepted { instance, at, .. } => {
                    // Unknown ids were dropped by the detector.
                    let _ = self.registry.renew(at, instance);
                }
                _ => {
                    if let Some(instance) = event.routing_relevant()
                        && let Some(h) = catalog_health(health, roster, instance)
                    {
                        // Known to the detector, so in the catalog; a miss is harmless.
                        let _ = self.registry.set_health(now, instance, h);
                    }
                }
            }
        }
        self.seen = self.registry.index();
    }
}
