//! The catalog itself: instances, services, leases, deadlines, watches.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::dense::{Dense, MAX_INSTANCE_ID};
use super::record::validate_service_name;
use super::watch::ChangeLog;
use super::{
    Change, ChangeKind, DeregisterReason, HealthStatus, Instance, Query, Registration, RegistryConfig,
    RegistryConfigError, RegistryError, RegistryEvent, WatchId, WatchResult,
};
use crate::id::{InstanceId, ServiceId};
use crate::time::Instant;

/// What [`Registry::register`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutcome {
    /// A new instance joined the catalog.
    Created,
    /// A known instance re-registered with different metadata.
    Updated,
    /// A known instance re-registered with the same metadata: only its lease
    /// was renewed.
    Renewed,
}

/// A deadline kept in the timer set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The lease runs out.
    Lease,
    /// Critical for `deregister_critical_after`: remove.
    Deregister,
}

#[derive(Clone, Debug)]
struct Service {
    name: String,
    instances: BTreeSet<InstanceId>,
    /// Index of the last change to one of its instances (0: never).
    modify_index: u64,
    watchers: BTreeSet<WatchId>,
}

#[derive(Clone, Copy, Debug)]
struct Watch {
    service: ServiceId,
    /// A [`RegistryEvent::WatchFired`] is queued and not yet answered.
    fired: bool,
}

/// The service catalog. See the [module docs](super) for the model.
///
/// Methods, grouped as in quinn-proto: queries ([`index`](Self::index),
/// [`instance`](Self::instance), [`healthy`](Self::healthy), …);
/// mutators ([`register`](Self::register), [`renew`](Self::renew),
/// [`set_health`](Self::set_health), [`deregister`](Self::deregister),
/// [`watch`](Self::watch)), which return an error and change nothing when
/// the request is bad; [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout); and [`poll_event`](Self::poll_event),
/// to drain after every mutation.
#[derive(Clone, Debug)]
pub struct Registry {
    config: RegistryConfig,
    index: u64,
    /// Records, indexed by id (see [`Dense`]).
    instances: Dense<Instance>,
    /// Services known, by id. Ids are never reused: a service forgotten to
    /// make room ([`Self::reclaim`]) takes its id with it, so a client that
    /// still holds the old id learns nothing of another service.
    services: BTreeMap<ServiceId, Service>,
    service_ids: BTreeMap<String, ServiceId>,
    /// The id the next new service takes.
    next_service: u32,
    /// Services forgotten to make room for new names.
    reclaimed: u64,
    timers: BTreeSet<(Instant, InstanceId, Timer)>,
    log: ChangeLog,
    watches: BTreeMap<WatchId, Watch>,
    next_watch: u64,
    events: VecDeque<RegistryEvent>,
}

impl Registry {
    /// An empty catalog.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryConfigError> {
        config.validate()?;
        Ok(Registry {
            log: ChangeLog::new(config.change_log_capacity),
            config,
            index: 0,
            instances: Dense::default(),
            services: BTreeMap::new(),
            service_ids: BTreeMap::new(),
            next_service: 0,
            reclaimed: 0,
            timers: BTreeSet::new(),
            watches: BTreeMap::new(),
            next_watch: 1,
            events: VecDeque::new(),
        })
    }

    // ----- queries -----

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The index of the last change; 0 before any.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Services forgotten so far to make room for new names (see
    /// [`RegistryConfig::max_services`](super::RegistryConfig::max_services)).
    pub fn reclaimed_services(&self) -> u64 {
        self.reclaimed
    }

    /// The id of the service named `name`, if it is known (it has an
    /// instance or a watch, or has not been forgotten to make room).
    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.service_ids.get(name).copied()
    }

    /// The name of service `id`.
    pub fn service_name(&self, id: ServiceId) -> Option<&str> {
        self.services.get(&id).map(|s| s.name.as_str())
    }

    /// Every service known, with its id, in id order.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &str)> {
        self.services.iter().map(|(&id, s)| (id, s.name.as_str()))
    }

    /// The record of instance `id`.
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(&id)
    }

    /// Number of instances in the catalog.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether the catalog holds no instance.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Every instance of `service` matching `query`, whatever its health,
    /// in id order. Empty for an unknown service.
    pub fn instances<'a>(
        &'a self,
        service: ServiceId,
        query: &'a Query,
    ) -> impl Iterator<Item = &'a Instance> + 'a {
        self.services
            .get(&service)
            .into_iter()
            .flat_map(|s| s.instances.iter())
            .filter_map(|id| self.instances.get(id))
            .filter(move |i| i.matches(query))
    }

    /// The passing instances of `service` matching `query`, in id order.
    pub fn healthy<'a>(
        &'a self,
        service: ServiceId,
        query: &'a Query,
    ) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances(service, query).filter(|i| i.health() == HealthStatus::Passing)
    }

    /// Every change after index `since`, oldest first, or `None` when the
    /// change log no longer reaches back that far (or `since` is beyond the
    /// current index): read the whole catalog instead.
    pub fn changes_since(&self, since: u64) -> Option<impl Iterator<Item = &Change>> {
        self.log.since(since, self.index)
    }

    // ----- mutators -----

    /// Register `registration` at `now`, or re-register it.
    ///
    /// A new instance starts with its `initial_health` and a lease of `ttl`.
    /// Re-registering a known id in the same service replaces its metadata,
    /// keeps its registration time and reported health, and renews its
    /// lease. Errors change nothing.
    pub fn register(
        &mut self,
        now: Instant,
        registration: Registration,
    ) -> Result<RegisterOutcome, RegistryError> {
        let (ttl, tags) = registration.validate(&self.config)?;
        if registration.id.0 > MAX_INSTANCE_ID {
            return Err(RegistryError::IdTooLarge { id: registration.id, max: MAX_INSTANCE_ID });
        }
        let existing_service = self.service_id(&registration.service);
        if let Some(existing) = self.instances.get(&registration.id) {
            if Some(existing.service) != existing_service {
                return Err(RegistryError::DuplicateInstance {
                    id: registration.id,
                    existing: existing.service,
                    existing_name: self.service_name(existing.service).unwrap_or_default().to_owned(),
                });
            }
        } else if self.instances.len() >= self.config.max_instances {
            return Err(RegistryError::CatalogFull { max: self.config.max_instances });
        }
        if existing_service.is_none() && !self.room_for_a_service() {
            return Err(RegistryError::TooManyServices { max: self.config.max_services });
        }
        // Validated: from here on nothing fails.
        let service = self.intern(&registration.service);
        let id = registration.id;
        let Registration { version, zone, weight, endpoints, initial_health, .. } = registration;
        let lease_expires_at = now + ttl;

        if let Some(existing) = self.instances.get_mut(&id) {
            let same = existing.version == version
                && existing.zone == zone
                && existing.tags == tags
                && existing.weight == weight
                && existing.endpoints == endpoints
                && existing.ttl == ttl;
            existing.version = version;
            existing.zone = zone;
            existing.tags = tags;
            existing.weight = weight;
            existing.endpoints = endpoints;
            existing.ttl = ttl;
            let before = existing.health();
            if !same {
                self.record(service, id, ChangeKind::Updated);
            }
            let renewed = self.renew_lease(now, id);
            debug_assert!(renewed, "the instance exists");
            // A renewed lease may end a lease-expiry critical spell.
            self.after_health_input(now, id, before);
            return Ok(if same { RegisterOutcome::Renewed } else { RegisterOutcome::Updated });
        }

        let index = self.index + 1;
        let critical_since = (initial_health == HealthStatus::Critical).then_some(now);
        self.instances.insert(
            id,
            Instance {
                id,
                service,
                version,
                zone,
                tags,
                weight,
                endpoints,
                registered_at: now,
                ttl,
                lease_expires_at,
                lease_timer: Some(lease_expires_at),
                lease_expired: false,
                reported_health: initial_health,
                critical_since,
                create_index: index,
                modify_index: index,
            },
        );
        self.service_mut(service).instances.insert(id);
        self.timers.insert((lease_expires_at, id, Timer::Lease));
        if let Some(since) = critical_since {
            self.arm_deregister(since, id);
        }
        self.record(service, id, ChangeKind::Registered { health: initial_health });
        debug_assert_eq!(self.index, index);
        Ok(RegisterOutcome::Created)
    }

    /// Renew the lease of `id` at `now` (a heartbeat). An instance whose
    /// lease had expired is no longer critical on that account.
    pub fn renew(&mut self, now: Instant, id: InstanceId) -> Result<(), RegistryError> {
        let instance = self.instances.get(&id).ok_or(RegistryError::UnknownInstance(id))?;
        let before = instance.health();
        // Only an expired lease changes health when renewed: the common
        // case (every heartbeat) costs one lookup.
        let was_expired = instance.lease_expired;
        self.renew_lease(now, id);
        if was_expired {
            self.after_health_input(now, id, before);
        }
        Ok(())
    }

    /// Report the health of `id` at `now` (from the health monitor).
    pub fn set_health(
        &mut self,
        now: Instant,
        id: InstanceId,
        status: HealthStatus,
    ) -> Result<(), RegistryError> {
        let instance = self.instances.get_mut(&id).ok_or(RegistryError::UnknownInstance(id))?;
        let before = instance.health();
        instance.reported_health = status;
        self.after_health_input(now, id, before);
        Ok(())
    }

    /// Remove `id` from the catalog (a clean shutdown).
    pub fn deregister(&mut self, _now: Instant, id: InstanceId) -> Result<(), RegistryError> {
        if !self.instances.contains_key(&id) {
            return Err(RegistryError::UnknownInstance(id));
        }
        self.remove(id, DeregisterReason::Explicit);
        Ok(())
    }

    /// Open a watch on the service named `service` (which need not have
    /// instances yet). Ask it with [`poll_watch`](Self::poll_watch).
    pub fn watch(&mut self, service: &str) -> Result<WatchId, RegistryError> {
        validate_service_name(service, &self.config)?;
        if self.watches.len() >= self.config.max_watches {
            return Err(RegistryError::TooManyWatches { max: self.config.max_watches });
        }
        if self.service_id(service).is_none() && !self.room_for_a_service() {
            return Err(RegistryError::TooManyServices { max: self.config.max_services });
        }
        let service = self.intern(service);
        let watch = WatchId(self.next_watch);
        self.next_watch += 1;
        self.watches.insert(watch, Watch { service, fired: false });
        self.service_mut(service).watchers.insert(watch);
        Ok(watch)
    }

    /// Close a watch. Returns whether it was open.
    pub fn unwatch(&mut self, watch: WatchId) -> bool {
        let Some(w) = self.watches.remove(&watch) else {
            return false;
        };
        self.service_mut(w.service).watchers.remove(&watch);
        true
    }

    /// What changed in the watched service after index `since`.
    ///
    /// `None`: nothing yet; park the client until
    /// [`RegistryEvent::WatchFired`] for this watch, then ask again.
    /// Otherwise the changes after `since`, or a snapshot when `since` is 0,
    /// beyond the current index, or older than the change log reaches.
    /// Re-arms the watch's event.
    pub fn poll_watch(&mut self, watch: WatchId, since: u64) -> Result<Option<WatchResult>, RegistryError> {
        let w = self.watches.get_mut(&watch).ok_or(RegistryError::UnknownWatch(watch.0))?;
        w.fired = false;
        let service = w.service;
        let snapshot = || WatchResult::Snapshot {
            index: self.index,
            instances: self.instances(service, &Query::all()).cloned().collect(),
        };
        if since == 0 {
            return Ok(Some(snapshot()));
        }
        let Some(changes) = self.log.since(since, self.index) else {
            return Ok(Some(snapshot()));
        };
        if self.services.get(&service).is_none_or(|s| s.modify_index <= since) {
            return Ok(None);
        }
        let changes: Vec<Change> = changes.filter(|c| c.service == service).copied().collect();
        debug_assert!(!changes.is_empty(), "modify_index > since implies a logged change");
        Ok(Some(WatchResult::Changes { index: self.index, changes }))
    }

    // ----- time -----

    /// Expire leases and deregister long-critical instances due at or
    /// before `now`. Safe to call early or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Each iteration removes one timer; timers are bounded by two per
        // instance, so this loop is bounded too.
        while let Some(&(deadline, id, timer)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Lease => {
                    let Some(instance) = self.instances.get_mut(&id) else {
                        debug_assert!(false, "timers of removed instances are removed with them");
                        continue;
                    };
                    instance.lease_timer = None;
                    if instance.lease_expires_at > deadline {
                        // Renewed since it was armed: arm it again.
                        let at = instance.lease_expires_at;
                        instance.lease_timer = Some(at);
                        self.timers.insert((at, id, Timer::Lease));
                        continue;
                    }
                    let before = instance.health();
                    instance.lease_expired = true;
                    tracing::debug!(instance = id.0, %now, "registry lease expired");
                    // Deregistration counts from the lease deadline, not from
                    // whenever the driver got round to calling us.
                    self.after_health_input(deadline, id, before);
                }
                Timer::Deregister => {
                    tracing::debug!(instance = id.0, %now, "registry removing long-critical instance");
                    self.remove(id, DeregisterReason::CriticalTooLong);
                }
            }
        }
    }

    /// The next lease expiry or deregistration deadline, if any. May be
    /// early (a lease renewed since its timer was armed): calling
    /// `handle_timeout` then only re-arms it.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(deadline, _, _)| deadline)
    }

    /// The next effect for the driver; call until `None` after every
    /// mutation.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RegistryEvent> {
        self.events.pop_front()
    }

    // ----- internals -----

    fn intern(&mut self, name: &str) -> ServiceId {
        if let Some(id) = self.service_id(name) {
            return id;
        }
        // Callers made room ([`Self::room_for_a_service`]), so the id space
        // is not spent.
        let id = ServiceId(self.next_service);
        self.next_service = self.next_service.saturating_add(1);
        self.services.insert(
            id,
            Service {
                name: name.to_owned(),
                instances: BTreeSet::new(),
                modify_index: 0,
                watchers: BTreeSet::new(),
            },
        );
        self.service_ids.insert(name.to_owned(), id);
        id
    }

    fn service_mut(&mut self, id: ServiceId) -> &mut Service {
        self.services.get_mut(&id).expect("a known service: interned, or held by an instance or a watch")
    }

    /// Whether a new service name can be taken: under `max_services`, or
    /// after forgetting a service nobody uses ([`Self::reclaim`]); and ids
    /// left (4 294 967 295 names over the catalog's life).
    fn room_for_a_service(&mut self) -> bool {
        if self.next_service == u32::MAX {
            return false;
        }
        self.services.len() < self.config.max_services || self.reclaim()
    }

    /// Forget the least recently changed service that has no instance and
    /// no watch, to make room for a new name. Its id is not reused, and its
    /// old changes in the log keep their id, which names nothing now.
    /// Linear in the number of services, and only when the catalog is full.
    fn reclaim(&mut self) -> bool {
        let unused = self
            .services
            .iter()
            .filter(|(_, s)| s.instances.is_empty() && s.watchers.is_empty())
            .min_by_key(|&(&id, s)| (s.modify_index, id))
            .map(|(&id, _)| id);
        let Some(id) = unused else { return false };
        if let Some(service) = self.services.remove(&id) {
            self.service_ids.remove(&service.name);
            self.reclaimed += 1;
            tracing::debug!(service = %service.name, id = id.0, "service forgotten to make room for a new name");
        }
        true
    }

    /// Move the lease deadline of `id` to `now + ttl` and clear expiry.
    /// Returns whether `id` exists.
    fn renew_lease(&mut self, now: Instant, id: InstanceId) -> bool {
        let Some(instance) = self.instances.get_mut(&id) else {
            return false;
        };
        let new = now + instance.ttl;
        instance.lease_expires_at = new;
        instance.lease_expired = false;
        match instance.lease_timer {
            // Armed no later than the new expiry: it re-arms when it fires.
            Some(armed) if armed <= new => {}
            // Armed later (a re-registration shortened the lease): move it.
            Some(armed) => {
                self.timers.remove(&(armed, id, Timer::Lease));
                self.timers.insert((new, id, Timer::Lease));
                instance.lease_timer = Some(new);
            }
            None => {
                self.timers.insert((new, id, Timer::Lease));
                instance.lease_timer = Some(new);
            }
        }
        true
    }

    /// After anything that may change the health of `id` (which exists):
    /// log the change and arm or disarm deregistration.
    fn after_health_input(&mut self, now: Instant, id: InstanceId, before: HealthStatus) {
        let Some(instance) = self.instances.get_mut(&id) else {
            debug_assert!(false, "callers check the instance exists");
            return;
        };
        let after = instance.health();
        if before == after {
            return;
        }
        let service = instance.service;
        if after == HealthStatus::Critical {
            instance.critical_since = Some(now);
            self.arm_deregister(now, id);
        } else if before == HealthStatus::Critical {
            if let Some(since) = instance.critical_since.take() {
                self.disarm_deregister(since, id);
            }
        }
        tracing::debug!(instance = id.0, %before, %after, %now, "registry health changed");
        self.record(service, id, ChangeKind::HealthChanged { from: before, to: after });
    }

    fn arm_deregister(&mut self, critical_since: Instant, id: InstanceId) {
        if let Some(after) = self.config.deregister_critical_after {
            self.timers.insert((critical_since + after, id, Timer::Deregister));
        }
    }

    fn disarm_deregister(&mut self, critical_since: Instant, id: InstanceId) {
        if let Some(after) = self.config.deregister_critical_after {
            self.timers.remove(&(critical_since + after, id, Timer::Deregister));
        }
    }

    fn remove(&mut self, id: InstanceId, reason: DeregisterReason) {
        let Some(instance) = self.instances.remove(&id) else {
            return;
        };
        if let Some(armed) = instance.lease_timer {
            self.timers.remove(&(armed, id, Timer::Lease));
        }
        if let Some(since) = instance.critical_since {
            self.disarm_deregister(since, id);
        }
        self.service_mut(instance.service).instances.remove(&id);
        self.record(instance.service, id, ChangeKind::Deregistered { reason });
    }

    /// Bump the index, log the change, stamp the instance and service, and
    /// fire the service's watches.
    fn record(&mut self, service: ServiceId, instance: InstanceId, kind: ChangeKind) {
        self.index += 1;
        let index = self.index;
        self.log.push(Change { index, service, instance, kind });
        if let Some(record) = self.instances.get_mut(&instance) {
            record.modify_index = index;
        }
        let entry = self.services.get_mut(&service).expect("a recorded change's service is known");
        entry.modify_index = index;
        for watch in &entry.watchers {
            let w = self.watches.get_mut(watch).expect("a service's watchers are open watches");
            if !w.fired {
                w.fired = true;
                self.events.push_back(RegistryEvent::WatchFired { watch: *watch, index });
            }
        }
    }
}

#[cfg(test)]
impl Registry {
    /// Panic if an invariant of the catalog does not hold. For tests.
    pub(super) fn check_invariants(&self) {
        for (id, instance) in self.instances.iter() {
            let id = &id;
            assert_eq!(*id, instance.id);
            let service = self.services.get(&instance.service).expect("instance's service exists");
            assert!(service.instances.contains(id), "service lists its instance");
            assert!(instance.modify_index <= self.index && instance.create_index <= instance.modify_index);
            let armed = instance.lease_timer.filter(|&t| self.timers.contains(&(t, *id, Timer::Lease)));
            assert_eq!(armed, instance.lease_timer, "the recorded lease timer is armed");
            assert!(
                armed.is_some_and(|t| t <= instance.lease_expires_at) != instance.lease_expired,
                "a live lease has exactly one timer, due no later than its expiry; an expired one none"
            );
            assert_eq!(instance.critical_since.is_some(), instance.health() == HealthStatus::Critical);
            if let (Some(since), Some(after)) =
                (instance.critical_since, self.config.deregister_critical_after)
            {
                assert!(self.timers.contains(&(since + after, *id, Timer::Deregister)));
            }
        }
        let timers_per_instance = self.timers.iter().filter(|t| !self.instances.contains_key(&t.1)).count();
        assert_eq!(timers_per_instance, 0, "no timer outlives its instance");
        for (&sid, service) in &self.services {
            assert_eq!(self.service_ids.get(&service.name), Some(&sid));
            assert!(sid.0 < self.next_service, "ids come from the counter");
            assert!(service.modify_index <= self.index);
            for id in &service.instances {
                assert_eq!(self.instances.get(id).map(|r| r.service), Some(sid));
            }
            for w in &service.watchers {
                assert_eq!(self.watches.get(w).map(|w| w.service), Some(sid));
            }
        }
        assert_eq!(self.service_ids.len(), self.services.len());
        assert!(self.instances.len() <= self.config.max_instances);
        assert!(self.services.len() <= self.config.max_services);
        assert!(self.log.len() <= self.config.change_log_capacity);
        if let Some(changes) = self.log.since(self.index.saturating_sub(self.log.len() as u64), self.index) {
            let first = self.index + 1 - self.log.len() as u64;
            for (expect, change) in (first..).zip(changes) {
                assert_eq!(change.index, expect, "log indices are consecutive");
            }
        }
        assert!(self.events.len() <= self.watches.len(), "events coalesce to one per watch");
    }
}
