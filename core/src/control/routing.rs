//! The routing controller: which instances clients should send traffic,
//! and the subscribed clients it tells.
//!
//! An instance is *routable* when the failure detector holds it `Alive`,
//! it is in the catalog, recovery has not taken it out of rotation (a
//! reroute, until its episode ends) and, if it has active checks, the
//! health monitor holds it ready (started, readiness passing, liveness
//! not failing, not flapping). Every change goes to every subscriber as an
//! [`EndpointUpdate`] stamped with a growing index and naming the
//! instance's service (clients of other services ignore it), and is published as
//! [`Event::RoutabilityChanged`].
//!
//! Routing is last in the round: it hears health's verdicts and
//! recovery's decisions, and nobody hears it but the outside.

use std::collections::{BTreeSet, VecDeque};

use super::View;
use super::event::Event;
use super::roster::Roster;
use crate::envelope::Output;
use crate::health::Liveness;
use crate::id::{InstanceId, NodeId};
use crate::message::{EndpointUpdate, Message};
use crate::recovery::{Action, ActionKind, Decision, DecisionKind, RecoveryOutput};
use crate::time::Instant;

/// Most clients a control node keeps subscribed; further subscriptions are
/// ignored (and counted) until the table has room.
pub const MAX_SUBSCRIBERS: usize = 4096;

/// The routing table and its subscribers.
#[derive(Debug, Clone, Default)]
pub struct RoutingController {
    /// What clients were last told, per instance.
    routable: Vec<bool>,
    /// Instances recovery took out of rotation until healthy (a reroute).
    rerouted: Vec<bool>,
    subscribers: BTreeSet<NodeId>,
    /// Bumped on every routability change; stamps every update.
    index: u64,
    refused_subscriptions: u64,
}

impl RoutingController {
    /// Whether clients are told to send `instance` traffic.
    pub fn is_routable(&self, instance: InstanceId) -> bool {
        self.routable.get(instance.index()).copied().unwrap_or(false)
    }

    /// Clients subscribed to endpoint updates.
    pub fn subscribers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.subscribers.iter().copied()
    }

    /// Subscriptions refused because the table was full.
    pub fn refused_subscriptions(&self) -> u64 {
        self.refused_subscriptions
    }

    /// Membership: a new instance, not routable until its verdicts say so.
    pub(super) fn joined(&mut self, instance: InstanceId) {
        let i = instance.index();
        if self.routable.len() <= i {
            self.routable.resize(i + 1, false);
            self.rerouted.resize(i + 1, false);
        }
    }

    /// Membership: an instance left. Announced while the roster still
    /// names its node: the update names the node clients knew.
    pub(super) fn left(
        &mut self,
        now: Instant,
        roster: &Roster,
        instance: InstanceId,
        events: &mut Vec<Event>,
        outputs: &mut VecDeque<Output>,
    ) {
        self.set_routable(now, roster, instance, false, events, outputs);
        if roster.service(instance).is_some()
            && let Some(flag) = self.rerouted.get_mut(instance.index())
        {
            *flag = false;
        }
    }

    /// A client subscribes (or renews): a new one gets the whole table.
    pub(super) fn subscribe(&mut self, roster: &Roster, client: NodeId, outputs: &mut VecDeque<Output>) {
        if self.subscribers.contains(&client) {
            return; // a renewal
        }
        if self.subscribers.len() >= MAX_SUBSCRIBERS {
            self.refused_subscriptions += 1;
            return;
        }
        self.subscribers.insert(client);
        for (i, &routable) in self.routable.iter().enumerate() {
            let instance = InstanceId(i as u32);
            if let (Some(node), Some(service)) = (roster.node(instance), roster.service(instance)) {
                let update = EndpointUpdate { instance, service, node, routable, index: self.index };
                outputs.push_back(Output::Send { to: client, message: Message::EndpointUpdate(update) });
            }
        }
    }

    /// The turn: verdicts first (in the order health published them),
    /// then recovery's reroutes and episode ends. Changes are published
    /// after the round's other events.
    pub(super) fn hear(
        &mut self,
        now: Instant,
        view: &View<'_>,
        events: &[Event],
        published: &mut Vec<Event>,
        outputs: &mut VecDeque<Output>,
    ) {
        // Health's verdicts precede recovery's outputs in `events`, so one
        // pass in order hears them in that order.
        for event in events {
            if let Some(instance) = event.routing_relevant() {
                let is = self.should_route(view, instance);
                self.set_routable(now, view.roster, instance, is, published, outputs);
                continue;
            }
            let (instance, out) = match *event {
                Event::Recovery(RecoveryOutput::Action(Action {
                    kind: ActionKind::Reroute,
                    instance: Some(i),
                    ..
                })) => (i, true),
                Event::Recovery(RecoveryOutput::Decision(Decision {
                    kind: DecisionKind::Resolved { .. } | DecisionKind::Abandoned,
                    instance: Some(i),
                    ..
                })) => (i, false),
                _ => continue,
            };
            // A reroute is carried out here, where routing is decided: the
            // instance leaves rotation until its episode ends.
            if let Some(flag) = self.rerouted.get_mut(instance.index()) {
                *flag = out;
                let is = self.should_route(view, instance);
                self.set_routable(now, view.roster, instance, is, published, outputs);
            }
        }
    }

    fn should_route(&self, view: &View<'_>, instance: InstanceId) -> bool {
        if view.catalog.instance(instance).is_none() {
            return false;
        }
        let alive = view.health.detector().instance(instance).is_some_and(|s| s.status == Liveness::Alive);
        let rerouted = self.rerouted.get(instance.index()).copied().unwrap_or(false);
        alive
            && !rerouted
            && (!view.roster.monitored(instance)
                || view.health.monitor().instance(instance).is_some_and(|v| v.ready))
    }

    fn set_routable(
        &mut self,
        now: Instant,
        roster: &Roster,
        instance: InstanceId,
        is: bool,
        published: &mut Vec<Event>,
        outputs: &mut VecDeque<Output>,
    ) {
        let Some(was) = self.routable.get_mut(instance.index()) else { return };
        if *was == is {
            return;
        }
        *was = is;
        self.index += 1;
        published.push(Event::RoutabilityChanged { instance, routable: is, index: self.index, at: now });
        // A leaving instance is announced while the roster still names its
        // node and service: clients of that service hear it leave.
        if let (Some(node), Some(service)) = (roster.node(instance), roster.service(instance)) {
            let update = EndpointUpdate { instance, service, node, routable: is, index: self.index };
            let message = Message::EndpointUpdate(update);
            for &to in &self.subscribers {
                outputs.push_back(Output::Send { to, message });
            }
        }
    }
}
