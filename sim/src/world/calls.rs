//! Calls between services: each instance of a service with `depends_on`
//! calls its dependencies with real messages over the simulated network,
//! so partitions, loss, latency and dead hosts between services apply to
//! them, and a failing dependency fails its callers because their calls
//! fail, not by decree.
//!
//! # The model
//!
//! The application process of such an instance holds one
//! [`ClientNode`] per dependency edge (`ClientConfig::service` is the
//! dependency; the load clients' balancer settings; `call_timeout`; the
//! client's retry budget), each inside [`Checked`]. They are part of the
//! process: they subscribe to the control node over the network, hear its
//! [`EndpointUpdate`]s (each routed to the client of the update's service;
//! updates about services this instance does not call are dropped), send
//! [`Request`](vigil_core::message::Request)s and hear the answers
//! (routed by the answering node's service: each client calls one
//! service). A crash, stop or restart loses the clients, their calls in
//! flight and the upstream requests waiting on them: nothing answers
//! those. A booted process makes fresh clients.
//!
//! The clients' deadlines are folded into the node's one timer: the node's
//! timer is the earliest of its machine's and its clients' deadlines, and
//! when it fires each of them whose deadline has come is woken.
//!
//! A request waits (`Waiting`) until its own work is done *and* every
//! downstream call has completed; it then answers, with an error if its
//! own draw said so or any downstream call did not succeed.
//!
//! # What it simplifies
//!
//! - Calls on all edges go out at once, in parallel, when the request
//!   arrives (no sequential call chains, no connection setup cost).
//! - An edge isolated by an open circuit is skipped: the fallback answers
//!   at once and always succeeds.
//! - The control node keeps a subscriber by node and never lets one go, so
//!   the fresh clients of a restarted process would get no endpoint table
//!   (their `Subscribe` reads as a renewal). The host therefore keeps the
//!   last update it heard about each instance, as a sidecar proxy would
//!   keep its table across an application restart, and primes fresh
//!   clients with it; updates sent while the host was down are lost to it,
//!   as to any subscriber.
//! - The recovery platform's half-open circuit trial is still judged from
//!   the state of the dependency's instances (`Simulation::serving`), not
//!   by a trial call.

use std::collections::BTreeMap;
use std::io::Write as _;

use vigil_core::balance::{BalancerConfig, OutlierConfig};
use vigil_core::client::{CallDone, ClientConfig, ClientNode};
use vigil_core::envelope::{Input, Output};
use vigil_core::machine::{Checked, Machine};
use vigil_core::message::{EndpointUpdate, Message, ProbeReply, Response, ResponseStatus};
use vigil_core::{Duration, InstanceId, Instant, NodeId, ServiceId};

use crate::scenario::{DEFAULT_CALL_TIMEOUT, Scenario};

use super::Simulation;

/// What an upstream request or probe answers, once it may.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply {
    /// A request: a `Response` with this id.
    Request(u64),
    /// A probe: a `ProbeReply` with this id.
    Probe(u64),
}

/// A request or probe waiting on downstream calls.
#[derive(Clone, Copy, Debug)]
pub(super) struct Waiting {
    /// Who asked.
    from: NodeId,
    /// What to answer.
    reply: Reply,
    /// When the instance's own work is done.
    own_done: Instant,
    /// Downstream calls not completed yet.
    left: u32,
    /// Whether the answer is an error: the own draw, or a failed call.
    failed: bool,
}

/// The calling side of one application process: its clients of its
/// dependencies and the requests waiting on them.
#[derive(Clone, Debug, Default)]
pub(super) struct Calls {
    /// One client per `depends_on` edge, in that order; empty while no
    /// process runs, or for a service without dependencies.
    pub(super) clients: Vec<Checked<ClientNode>>,
    /// Upstream requests and probes waiting, by their own id.
    waiting: BTreeMap<u64, Waiting>,
    /// Downstream call id → the waiting entry it belongs to.
    call_of: BTreeMap<u64, u64>,
    /// Next id, for waiting entries and calls alike.
    next_id: u64,
    /// The last endpoint update the host heard about each instance (kept
    /// across restarts: see the module docs).
    endpoints: BTreeMap<InstanceId, EndpointUpdate>,
}

impl Calls {
    /// The process died: its clients, their calls and what waited on them
    /// are gone.
    pub(super) fn lose(&mut self) {
        self.clients.clear();
        self.waiting.clear();
        self.call_of.clear();
    }

    /// The earliest deadline of the clients.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.clients.iter().filter_map(Checked::poll_timeout).min()
    }
}

/// The balancer settings of every client in the run: the load's panic
/// threshold and `always_eject_one_host` when there is load, else the
/// defaults.
pub(super) fn balancer_of(scenario: &Scenario) -> BalancerConfig {
    let defaults = ClientConfig::default();
    let (panic, eject_one) =
        scenario.load.as_ref().map_or((defaults.balancer.panic_threshold_percent, false), |l| {
            (l.panic_threshold_percent, l.always_eject_one_host)
        });
    BalancerConfig {
        panic_threshold_percent: panic,
        outlier: defaults.balancer.outlier.map(|o| OutlierConfig { always_eject_one_host: eject_one, ..o }),
        ..defaults.balancer
    }
}

/// The settings of the client a process of `service` calls `dep` with.
pub(super) fn dependency_client_config(scenario: &Scenario, service: usize, dep: usize) -> ClientConfig {
    let spec = &scenario.services[service];
    ClientConfig {
        control: Scenario::CONTROL,
        // Service ids are file indexes (see the load clients).
        service: Some(ServiceId(dep as u32)),
        call_timeout: spec
            .call_timeout
            .or(scenario.load.as_ref().map(|l| l.timeout))
            .unwrap_or(DEFAULT_CALL_TIMEOUT),
        balancer: balancer_of(scenario),
        ..ClientConfig::default()
    }
}

impl Simulation<'_> {
    /// A fresh process on instance node `node` (local time `local`) makes
    /// its clients, primed with what its host heard.
    pub(super) fn make_clients(&mut self, node: NodeId, local: Instant, incarnation: u64) {
        let scenario = self.scenario;
        let Some(instance) = scenario.instance_on(node) else { return };
        let Some((service, _)) = scenario.locate(instance) else { return };
        let spec = &scenario.services[service];
        let calls = &mut self.apps[instance.index()].calls;
        calls.lose();
        if spec.depends_on.is_empty() {
            return;
        }
        for (k, &dep) in spec.depends_on.iter().enumerate() {
            let config = dependency_client_config(scenario, service, dep);
            let seed = self
                .seed
                .child_named("calls")
                .child(u64::from(instance.0))
                .child(k as u64)
                .child(incarnation);
            let client = ClientNode::new(config, local, seed)
                .expect("the scenario loader built this client (dry_boot)");
            let mut client = Checked::new(client);
            for u in calls.endpoints.values().filter(|u| u.service.index() == dep) {
                client.handle(
                    local,
                    Input::Message { from: Scenario::CONTROL, message: Message::EndpointUpdate(*u) },
                );
                // Nothing to carry out: an update makes no call.
                while client.poll_output().is_some() {}
            }
            calls.clients.push(client);
        }
    }

    /// Whether the process on `node` has clients of dependencies.
    pub(super) fn has_clients(&self, node: NodeId) -> bool {
        self.scenario.instance_on(node).is_some_and(|i| !self.apps[i.index()].calls.clients.is_empty())
    }

    /// Whether a message for node `to` is for its application's clients.
    pub(super) fn for_clients(&self, to: NodeId, message: &Message) -> bool {
        let hears = match message {
            Message::Response(_) | Message::EndpointUpdate(_) => true,
            Message::Refused(r) => !r.probe,
            _ => false,
        };
        hears && self.has_clients(to)
    }

    /// The clients of the process on `node` hear `message` from `from`.
    pub(super) fn clients_hear(&mut self, from: NodeId, node: NodeId, message: Message) {
        let scenario = self.scenario;
        let Some(instance) = scenario.instance_on(node) else { return };
        let Some((service, _)) = scenario.locate(instance) else { return };
        let deps = &scenario.services[service].depends_on;
        let about = match message {
            Message::EndpointUpdate(u) => {
                let cache = &mut self.apps[instance.index()].calls.endpoints;
                if cache.get(&u.instance).is_none_or(|old| old.index <= u.index) {
                    cache.insert(u.instance, u);
                }
                u.service.index()
            }
            // An answer comes from an instance of the service called.
            _ => match scenario.instance_on(from).and_then(|i| scenario.locate(i)) {
                Some((s, _)) => s,
                None => return,
            },
        };
        let Some(k) = deps.iter().position(|&d| d == about) else { return };
        self.client_input(node, k, Some(Input::Message { from, message }));
        self.drain(node);
    }

    /// Client `k` of the process on `node` takes `input` (or its timeout,
    /// with `None`); its outputs are carried out at once.
    pub(super) fn client_input(&mut self, node: NodeId, k: usize, input: Option<Input>) {
        let Some(instance) = self.scenario.instance_on(node) else { return };
        let local = self.nodes[node.index()].clock.local(self.kernel.now());
        let Some(client) = self.apps[instance.index()].calls.clients.get_mut(k) else { return };
        match input {
            Some(input) => client.handle(local, input),
            None => client.handle_timeout(local),
        }
        let mut outputs = Vec::new();
        while let Some(o) = client.poll_output() {
            outputs.push(o);
        }
        for output in outputs {
            match output {
                Output::Send { to, message } if to.index() < self.names.len() => {
                    self.transmit(node, to, message, Duration::ZERO);
                }
                Output::CallDone(done) => self.call_done(node, instance, k, &done),
                Output::Balance(event) => {
                    // The load's balancer events are its own; these only
                    // reach the timeline.
                    if let Some(out) = self.timeline.as_mut() {
                        let (about, words) = crate::text::balance_words(&event);
                        let about = about
                            .and_then(|i| self.names.get(Scenario::node_of(i).index()))
                            .map_or(String::new(), |n| format!("{n} "));
                        let now = self.kernel.now();
                        let _ = writeln!(out, "{now} {:<14} calls: {about}{words}", self.names[node.index()]);
                    }
                }
                _ => {}
            }
        }
    }

    /// Wake every client of the process on `node` whose deadline came.
    pub(super) fn clients_timeout(&mut self, node: NodeId) {
        let Some(instance) = self.scenario.instance_on(node) else { return };
        let local = self.nodes[node.index()].clock.local(self.kernel.now());
        let due: Vec<usize> = self.apps[instance.index()]
            .calls
            .clients
            .iter()
            .enumerate()
            .filter(|(_, c)| c.poll_timeout().is_some_and(|t| t <= local))
            .map(|(k, _)| k)
            .collect();
        for k in due {
            self.client_input(node, k, None);
        }
    }

    /// Start the downstream calls of a request or probe that arrived on
    /// `node` from `from`: `counts[k]` calls on edge `k`. With none at all
    /// it answers after `delay`, as a service without dependencies does.
    pub(super) fn call_downstream(
        &mut self,
        node: NodeId,
        from: NodeId,
        reply: Reply,
        delay: Duration,
        failed: bool,
        counts: &[u32],
    ) {
        let Some(instance) = self.scenario.instance_on(node) else { return };
        let total: u32 = counts.iter().sum();
        let calls = &mut self.apps[instance.index()].calls;
        if total == 0 || calls.clients.is_empty() {
            self.answer(node, from, reply, failed, delay);
            return;
        }
        let wid = calls.next_id;
        calls.next_id += 1;
        // Every call is counted before the first goes: one that fails at
        // once (no endpoint) must not answer the request early.
        let own_done = self.kernel.now() + delay;
        calls.waiting.insert(wid, Waiting { from, reply, own_done, left: total, failed });
        for (k, &n) in counts.iter().enumerate() {
            for _ in 0..n {
                let calls = &mut self.apps[instance.index()].calls;
                let id = calls.next_id;
                calls.next_id += 1;
                calls.call_of.insert(id, wid);
                self.client_input(node, k, Some(Input::Call { id }));
            }
        }
    }

    /// A downstream call on edge `k` of `instance` (on `node`) ended.
    fn call_done(&mut self, node: NodeId, instance: InstanceId, k: usize, done: &CallDone) {
        if let Some(edge) = self.edge_of(instance, k)
            && let Some(stats) = self.observed.service_calls.get_mut(edge)
        {
            stats.calls.record(done);
        }
        let calls = &mut self.apps[instance.index()].calls;
        let Some(wid) = calls.call_of.remove(&done.id) else { return };
        let Some(w) = calls.waiting.get_mut(&wid) else { return };
        w.left -= 1;
        w.failed |= !done.outcome.is_success();
        if w.left > 0 {
            return;
        }
        let w = calls.waiting.remove(&wid).expect("just read");
        let now = self.kernel.now();
        self.answer(node, w.from, w.reply, w.failed, w.own_done - now);
    }

    /// The index in `Observations::service_calls` of edge `k` of the
    /// service of `instance`.
    fn edge_of(&self, instance: InstanceId, k: usize) -> Option<usize> {
        let (service, _) = self.scenario.locate(instance)?;
        Some(self.edge_base.get(service)? + k)
    }

    /// Answer `from` from `node`, after `delay`.
    pub(super) fn answer(&mut self, node: NodeId, from: NodeId, reply: Reply, failed: bool, delay: Duration) {
        let message = match reply {
            Reply::Request(id) => Message::Response(Response {
                id,
                status: if failed { ResponseStatus::Error } else { ResponseStatus::Ok },
            }),
            Reply::Probe(id) => Message::ProbeReply(ProbeReply { id, ok: !failed }),
        };
        self.transmit(node, from, message, delay);
    }
}
