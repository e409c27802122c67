//! The control plane: capability controllers composed into the one machine
//! a control node runs.
//!
//! # Shape
//!
//! Modelled on Kubernetes' controllers over shared informers and on
//! str0m's `Rtc`, which polls its parts in a fixed, documented order:
//!
//! - **Shared state**, read by every controller: the [`Roster`] (who is in
//!   the fleet, on which node, with which checks; written only by this
//!   composition), the catalog ([`CatalogController::registry`]) and the
//!   health view ([`HealthController::detector`] and
//!   [`HealthController::monitor`]). Each controller changes only its own
//!   state.
//! - **Controllers**, one per capability: [`HealthController`] (heartbeat
//!   liveness, active checks, probes), [`CatalogController`] (the service
//!   catalog, leases, catalog health), [`RecoveryController`] (recovery
//!   inputs, the storm guard, actions) and [`RoutingController`] (which
//!   instances clients should call, and telling them).
//! - **Events**: controllers talk only through typed operational
//!   [`Event`]s, which the composition routes. No controller calls into
//!   another.
//!
//! # The round
//!
//! Every call that changes the machine (`handle`, `handle_timeout`,
//! `register`, `deregister`, `recovery_outcome`) first hands its input to
//! the controller it is for, then runs one **round**, in this order (the
//! order is part of the contract: it is what makes a run reproducible as
//! capabilities are added):
//!
//! 1. **Health** publishes the heartbeats that were news, then the
//!    detector's verdicts, then the monitor's (its probes go out as it
//!    asks for them).
//! 2. **Catalog**: the instances it let go since the last round leave the
//!    fleet (membership, below); then it hears the round's events (leases
//!    renewed, catalog health set).
//! 3. **Recovery** hears the round's events (heartbeats, then the storm
//!    guard over every verdict, then each verdict as an input), then
//!    publishes its actions and decisions.
//! 4. **Routing** hears the round's events (verdicts, then recovery's
//!    reroutes and episode ends), tells subscribers, and publishes the
//!    changes of routability.
//!
//! Events flow one way, down this list: a controller hears what the
//! controllers before it published in the same round, never what comes
//! after it, so a round always ends. **Membership** is the exception:
//! when an instance joins (its first registration) or leaves
//! (deregistered, or let go by the catalog), every controller hears it at
//! once, in the order above, before anything else is said about it.
//!
//! # Adding a capability
//!
//! A folder in `core/src/` for its machine; a controller module here that
//! owns it, with `joined`/`left` for membership, `hear` for the events it
//! reacts to and `publish` for the events it emits; its [`Event`]
//! variants (with stable names in [`Event::name`]); and one line in
//! `ControlPlane::round` at the place in the order whose events it
//! needs. `docs/ARCHITECTURE.md` has the full recipe.

mod catalog;
mod config;
mod event;
mod health;
mod hearing;
mod recovery;
mod roster;
mod routing;
mod vantage;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

pub use catalog::CatalogController;
pub use config::{ControlConfig, ControlError, RegisterRequest, WatchedInstance};
pub use event::Event;
pub use health::HealthController;
pub use recovery::{LOSSY_LINK_PERMILLE, RECONSIDER_CLEAN_BEATS, RecoveryController};
pub use roster::Roster;
pub use routing::{MAX_SUBSCRIBERS, RoutingController};

use crate::envelope::{Input, Output};
use crate::health::{FailureDetector, HealthMonitor};
use crate::id::{InstanceId, NodeId, ServiceId};
use crate::machine::Machine;
use crate::message::Message;
use crate::recovery::{ActionId, Outcome, RecoveryCoordinator};
use crate::registry::{RegisterOutcome, Registration, Registry};
use crate::time::Instant;

/// The shared state, read-only, as a controller sees it during its turn.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    /// Who is in the fleet.
    pub roster: &'a Roster,
    /// The service catalog.
    pub catalog: &'a Registry,
    /// What the detector and the monitor know.
    pub health: &'a HealthController,
}

/// The control node: watches the fleet's heartbeats and probes its
/// instances, publishes verdicts, tells subscribed clients which
/// instances are routable, and (if configured) recovers failing ones.
///
/// See the [module docs](self) for how its controllers are composed.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    roster: Roster,
    health: HealthController,
    catalog: CatalogController,
    /// Decides how to heal failing instances, if configured.
    recovery: Option<RecoveryController>,
    routing: RoutingController,
    /// The round's events, in publication order; reused across rounds.
    events: Vec<Event>,
    /// Routing's changes during its turn, appended to `events` after it.
    changes: Vec<Event>,
    outputs: VecDeque<Output>,
    /// Clients' call reports received (recovery, if configured, judges by
    /// them; without it they are counted and dropped).
    call_reports: u64,
}

impl ControlPlane {
    /// A control node booting at `now`, watching `config.instances`.
    pub fn new(config: &ControlConfig, now: Instant) -> Result<Self, ControlError> {
        let health = HealthController::new(&config.liveness_classes, &config.health_classes)?;
        let mut control = ControlPlane {
            roster: Roster::default(),
            health,
            catalog: CatalogController::new(config.registry.clone())?,
            recovery: match &config.recovery {
                Some(r) => Some(RecoveryController::new(r, config.seed.child_named("recovery"))?),
                None => None,
            },
            routing: RoutingController::default(),
            events: Vec::new(),
            changes: Vec::new(),
            outputs: VecDeque::new(),
            call_reports: 0,
        };
        for w in &config.instances {
            let name = config
                .service_names
                .get(w.service.index())
                .cloned()
                .unwrap_or_else(|| format!("service-{}", w.service.0));
            let mut registration = Registration::new(w.instance, name, "unknown");
            if let Some(zone) = &w.zone {
                registration = registration.zone(zone.clone());
            }
            control.admit(now, RegisterRequest { registration, node: w.node, class: w.class })?;
        }
        // Registration may already have asked for probes: keep them for the
        // driver's first drain.
        control.round(now);
        Ok(control)
    }

    // ---- getters ----

    /// The service catalog, for queries.
    pub fn registry(&self) -> &Registry {
        self.catalog.registry()
    }

    /// The recovery coordinator, if recovery is configured.
    pub fn recovery(&self) -> Option<&RecoveryCoordinator> {
        self.recovery.as_ref().map(RecoveryController::coordinator)
    }

    /// The health monitor, for queries.
    pub fn monitor(&self) -> &HealthMonitor {
        self.health.monitor()
    }

    /// The failure detector, for queries.
    pub fn detector(&self) -> &FailureDetector {
        self.health.detector()
    }

    /// Who is in the fleet, on which node.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Whether clients are told to send `instance` traffic.
    pub fn is_routable(&self, instance: InstanceId) -> bool {
        self.routing.is_routable(instance)
    }

    /// The node a registered instance runs on (where probes and calls go);
    /// `None` once it leaves.
    pub fn node_of(&self, instance: InstanceId) -> Option<NodeId> {
        self.roster.node(instance)
    }

    /// Clients' call reports received so far.
    pub fn call_reports(&self) -> u64 {
        self.call_reports
    }

    /// Clients subscribed to endpoint updates.
    pub fn subscribers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.routing.subscribers()
    }

    /// Subscriptions refused because the table was full.
    pub fn refused_subscriptions(&self) -> u64 {
        self.routing.refused_subscriptions()
    }

    // ---- mutators ----

    /// Register (or re-register) an instance at `now`: it joins the
    /// catalog, the failure detector watches its heartbeats, and the
    /// monitor probes it if its class has active checks. A re-registration
    /// updates its metadata and node and renews its lease. On error nothing
    /// changes. Drain [`poll_output`](Machine::poll_output) afterwards.
    pub fn register(
        &mut self,
        now: Instant,
        request: RegisterRequest,
    ) -> Result<RegisterOutcome, ControlError> {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        let outcome = self.admit(now, request)?;
        self.round(now);
        Ok(outcome)
    }

    /// Remove an instance at `now` (a clean shutdown): clients are told it
    /// is no longer routable. Returns whether it was registered. Drain
    /// [`poll_output`](Machine::poll_output) afterwards.
    pub fn deregister(&mut self, now: Instant, instance: InstanceId) -> bool {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        let known = self.catalog.deregister(now, instance);
        self.leave(now, instance);
        self.round(now);
        known
    }

    /// How a recovery action went, as the driver saw it (the action could
    /// not be carried out, or it was). An instance that turns healthy ends
    /// its episode by itself; this is for what verdicts cannot tell. Drain
    /// [`poll_output`](Machine::poll_output) afterwards.
    pub fn recovery_outcome(&mut self, now: Instant, id: ActionId, outcome: Outcome) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        if let Some(r) = self.recovery.as_mut() {
            r.outcome(now, id, outcome);
        }
        self.round(now);
    }

    // ---- membership ----

    /// Validate and record a registration; a new instance joins every
    /// controller. On error nothing changes.
    fn admit(&mut self, now: Instant, request: RegisterRequest) -> Result<RegisterOutcome, ControlError> {
        let RegisterRequest { registration, node, class } = request;
        let instance = registration.id;
        // Before the catalog changes: errors change nothing.
        let health = self.health.admit(instance, class)?;
        let service_name = registration.service.clone();
        let outcome = self.catalog.register(now, registration)?;
        let service = self.registry().service_id(&service_name).unwrap_or(ServiceId(0));
        let joins = self.roster.place(instance, node, service, health.is_some());
        debug_assert_eq!(
            joins,
            outcome == RegisterOutcome::Created,
            "the roster and the catalog agree on who is new"
        );
        if joins {
            self.health.joined(now, instance, service, class, health.as_ref());
            if let Some(r) = self.recovery.as_mut() {
                r.joined(now, instance, service);
            }
            self.routing.joined(instance);
            self.events.push(Event::InstanceJoined { instance, service, node, at: now });
        }
        Ok(outcome)
    }

    /// An instance leaves the fleet: every controller hears it, then the
    /// roster forgets it. Leaving twice is harmless.
    fn leave(&mut self, now: Instant, instance: InstanceId) {
        let service = self.roster.service(instance);
        self.health.left(instance);
        if let Some(r) = self.recovery.as_mut() {
            r.left(now, instance, service);
        }
        self.routing.left(now, &self.roster, instance, &mut self.events, &mut self.outputs);
        self.roster.remove(instance);
        self.events.push(Event::InstanceLeft { instance, at: now });
    }

    /// One round: every controller takes its turn, in the documented
    /// order. See the [module docs](self).
    fn round(&mut self, now: Instant) {
        // 1. Health publishes.
        self.health.publish(now, &self.roster, &mut self.events, &mut self.outputs);
        // 2. Catalog: its departures leave, then it hears.
        for instance in self.catalog.departures(&self.roster) {
            if self.roster.node(instance).is_some() {
                self.leave(now, instance);
            }
        }
        self.catalog.hear(now, &self.roster, &self.health, &self.events);
        let view = View { roster: &self.roster, catalog: self.catalog.registry(), health: &self.health };
        // 3. Recovery hears, then publishes.
        if let Some(r) = self.recovery.as_mut() {
            r.hear(now, &view, &self.events);
            r.publish(now, &mut self.events, &mut self.outputs);
        }
        // 4. Routing hears (and publishes what changed).
        self.routing.hear(now, &view, &self.events, &mut self.changes, &mut self.outputs);
        self.events.append(&mut self.changes);
        // The round's events are said; the buffers are kept for the next.
        self.events.clear();
    }
}

impl Machine for ControlPlane {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        match input {
            Input::Message { from, message: Message::Subscribe } => {
                self.routing.subscribe(&self.roster, from, &mut self.outputs);
            }
            Input::Message { message: Message::Heartbeat(hb), .. } => {
                self.health.heartbeat(now, &hb, &self.roster);
            }
            Input::Message { message: Message::ProbeReply(r), .. } => {
                self.health.probe_reply(now, r.id, r.ok)
            }
            Input::Message { message: Message::Refused(r), .. } if r.probe => {
                self.health.probe_refused(now, r.id);
            }
            Input::Message { message: Message::CallReport(report), .. } => {
                self.call_reports += 1;
                if let Some(r) = self.recovery.as_mut() {
                    let view =
                        View { roster: &self.roster, catalog: self.catalog.registry(), health: &self.health };
                    r.call_report(now, &view, &report);
                }
            }
            Input::Message { .. } | Input::Call { .. } => {}
        }
        self.round(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        self.health.handle_timeout(now);
        self.catalog.handle_timeout(now);
        if let Some(r) = self.recovery.as_mut() {
            r.handle_timeout(now);
        }
        self.health.expire_probes(now);
        self.round(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let checks = crate::time::earliest(self.health.poll_timeout(), self.catalog.poll_timeout());
        crate::time::earliest(checks, self.recovery.as_ref().and_then(RecoveryController::poll_timeout))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}
