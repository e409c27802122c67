//! The simulated world: machines, hosts, network, applications, faults,
//! the recovery platform and the load generator, driven by the kernel's
//! event loop.
//!
//! [`Simulation`] is one struct; its `impl` blocks are spread over one file
//! per concern, so each reads on its own:
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | the struct, its construction, the step's dispatch, deliveries, timers, and draining a node's outputs |
//! | `host.rs` | host state and clocks; booting, stopping, crashing, pausing and resuming a process |
//! | `net.rs` | the [`Network`]: latency, loss, duplication, reordering, partitions, impairments |
//! | `app.rs` | the application on each instance: answers to requests and probes, application faults, a process dying by itself |
//! | `calls.rs` | calls between services: each process's clients of its dependencies, requests waiting on their calls |
//! | `fault.rs` | fault occurrences ([`expand_faults`]) and what each does when it begins and ends |
//! | `platform.rs` | the simulated platform carrying out recovery actions (`carry_out`, jobs, boots) |
//! | `load.rs` | the load generator: calls, each to one target's client node |
//! | `observe.rs` | [`Observations`], what the checkers read, and the bookkeeping of outages |
//! | `wire.rs` | the fleet's key; sealing a message into a frame |
//! | `attack.rs` | the attacker of `forge` faults: what it captures, forges and replays |
//!
//! The world imports from the kernel, the scenario model and the text
//! helpers only, never from the checkers, the report or the replay:
//! observations flow one way. Each new capability adds its simulated side
//! here (its state, an `impl Simulation` block in a file of its own, and
//! what it records in `observe.rs`) and its checkers in `crate::check`.
//!
//! # How an event flows
//!
//! 1. [`Simulation::step`] takes the earliest event from the kernel
//!    (`crate::kernel`: the queue ordered by `(time, seq)`, the step budget),
//!    which folds it into the trace hash.
//! 2. It dispatches: a *delivery* goes to the receiving node's machine as
//!    [`Input::Message`]; a *timer* calls `handle_timeout`; a *fault* changes
//!    hosts or the network.
//! 3. The node's outputs are drained completely. `Send` goes through the
//!    [`Network`], which schedules zero, one or two deliveries; a health event
//!    is recorded for the checkers.
//! 4. The node's next deadline (`poll_timeout`, in its host's clock) is
//!    turned into simulated time and scheduled if it is earlier than the
//!    timer already queued for it.
//!
//! Work is per event: an idle node costs nothing until its timer fires.
//! Machines see time through their host's clock ([`HostClock`]) and run
//! inside [`Checked`], which panics if this driver ever breaks the machine
//! contract.

use std::collections::BTreeSet;
use std::io::Write;

use vigil_core::auth::{Frame, Opener, Sealer};
use vigil_core::control::ControlPlane;
use vigil_core::envelope::{Input, Output};
use vigil_core::fleet::Node;
use vigil_core::health::HealthEvent;
use vigil_core::machine::{Checked, Machine};
use vigil_core::message::{Message, Refused};
use vigil_core::recovery::{Action, ActionId, RecoveryOutput};
use vigil_core::rng::Rng;
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, Instant, NodeId};

use crate::kernel::trace::TraceHash;
use crate::kernel::{Event, Kernel};
use crate::scenario::{Fault, FaultAction, Scenario};
use host::HostClock;
use net::Network;

mod app;
mod attack;
mod calls;
mod fault;
pub mod host;
mod load;
pub mod net;
mod observe;
mod platform;
mod wire;

pub use crate::kernel::Halt;
pub use attack::{AttackStats, CAPTURED_MAX};
pub use fault::expand_faults;
pub use host::HostState;
pub use observe::{
    CallStats, EdgeCalls, FailReason, FaultSpan, MonitorChange, MonitorVerdict, Observations, Outage,
    OutageKind, PlatformEvent, PlatformStep, Verdict,
};

use app::App;
use host::NodeSlot;
use platform::Job;

/// One seeded run of a scenario.
pub struct Simulation<'a> {
    scenario: &'a Scenario,
    seed: Seed,
    /// Time, pending events, the trace hash and the step budget.
    kernel: Kernel,
    nodes: Vec<NodeSlot>,
    network: Network,
    observed: Observations,
    names: Vec<String>,
    timeline: Option<Box<dyn Write + 'a>>,
    timeline_error: Option<std::io::Error>,
    apps: Vec<App>,
    load_rng: Rng,
    next_call: u64,
    /// Every fault occurrence, in start order: the scenario's faults with
    /// their picks, repeats and windows drawn from the seed.
    plan: Vec<Fault>,
    /// Which scenario fault each occurrence comes from.
    plan_source: Vec<u32>,
    /// Per instance: running or provisioned (standby slots start vacant).
    provisioned: Vec<bool>,
    /// Recovery actions asked for and not yet carried out.
    asked: Vec<Action>,
    /// Actions being carried out, by slot (`None`: done).
    jobs: Vec<Option<Job>>,
    /// Per instance: the platform's last restart or replacement, until its
    /// episode ends: if the process dies again first, it failed.
    last_action: Vec<Option<ActionId>>,
    /// Circuits open from a service to a dependency: its calls to it are
    /// skipped and a fallback answers, so its answers no longer fail with
    /// the dependency.
    open_circuits: BTreeSet<(usize, usize)>,
    /// Per service: the index of its first edge in
    /// `Observations::service_calls`.
    edge_base: Vec<usize>,
    /// Per node: the kinds of its open outages, oldest first.
    open_kinds: Vec<Vec<OutageKind>>,
    /// Service names, by index.
    service_names: Vec<String>,
    /// The fleet's key ([`wire`]).
    wire: wire::Wire,
    /// The attacker, when a `forge` fault is planned ([`attack`]): it
    /// captures from the start of the run.
    attacker: Option<Box<attack::Attacker>>,
}

impl<'a> Simulation<'a> {
    /// Build the fleet of `scenario` at time zero, seeded with `seed`.
    pub fn new(scenario: &'a Scenario, seed: u64) -> Self {
        let seed = Seed(seed);
        let node_count = scenario.node_count() as usize;
        let mut sim = Simulation {
            scenario,
            seed,
            kernel: Kernel::new(
                node_count * 2 + scenario.faults.len() + 16,
                Instant::ZERO + scenario.duration,
                scenario.max_events,
                scenario.max_pending_events,
            ),
            nodes: Vec::with_capacity(node_count),
            network: Network::new(scenario.network.clone(), node_count, seed.child_named("network")),
            observed: Observations::new(
                scenario.instance_count() as usize,
                node_count,
                scenario.load.as_ref().map_or(0, |l| l.targets.len()),
            ),
            names: scenario.node_names(),
            timeline: None,
            timeline_error: None,
            apps: vec![App::default(); scenario.instance_count() as usize],
            load_rng: seed.child_named("load").rng(),
            next_call: 0,
            plan: Vec::new(),
            plan_source: Vec::new(),
            provisioned: (0..scenario.instance_count())
                .map(|i| !scenario.is_standby(InstanceId(i)))
                .collect(),
            asked: Vec::new(),
            jobs: Vec::new(),
            last_action: vec![None; scenario.instance_count() as usize],
            open_circuits: BTreeSet::new(),
            edge_base: Vec::new(),
            open_kinds: vec![Vec::new(); node_count],
            service_names: scenario.services.iter().map(|s| s.name.clone()).collect(),
            wire: wire::Wire::new(seed),
            attacker: None,
        };
        for (s, service) in scenario.services.iter().enumerate() {
            sim.edge_base.push(sim.observed.service_calls.len());
            for &dependency in &service.depends_on {
                sim.observed.service_calls.push(EdgeCalls {
                    caller: s,
                    dependency,
                    calls: CallStats::default(),
                });
            }
        }
        let (plan, plan_source) = expand_faults(scenario, seed);
        sim.observed.faults =
            plan_source.iter().map(|&source| FaultSpan { source, began: None, ended: None }).collect();
        if plan.iter().any(|f| matches!(f.action, FaultAction::Forge { .. })) {
            sim.attacker = Some(Box::new(attack::Attacker::new(node_count, seed)));
        }
        sim.plan = plan;
        sim.plan_source = plan_source;
        for n in 0..node_count {
            let node = NodeId(n as u32);
            let vacant = scenario.instance_on(node).is_some_and(|i| !sim.provisioned[i.index()]);
            sim.nodes.push(NodeSlot {
                machine: None,
                state: if vacant { HostState::Vacant } else { HostState::Up },
                clock: HostClock::default(),
                timer_at: None,
                held: Vec::new(),
                incarnation: 0,
                sealer: Sealer::new(node, wire::KEY_ID, &sim.wire.key, 0),
                opener: Opener::new(node, sim.wire.keyring.clone(), node_count),
                power_off: 0,
            });
            if !vacant {
                sim.boot(node);
            }
        }
        for (i, fault) in sim.plan.iter().enumerate() {
            sim.kernel.schedule(Instant::ZERO + fault.at, Event::FaultStart { fault: i as u32 });
        }
        if let Some(load) = &scenario.load {
            let first = sim.next_arrival_gap();
            sim.kernel.schedule(Instant::ZERO + load.start + first, Event::Arrival);
        }
        sim
    }

    /// Write one line per processed event to `out`.
    pub fn with_timeline(mut self, out: Box<dyn Write + 'a>) -> Self {
        self.timeline = Some(out);
        self
    }

    /// Record the trace hash after every event, to locate a divergence.
    pub fn with_history(mut self) -> Self {
        self.kernel.record_history();
        self
    }

    /// Run to the scenario's end or until the step budget is spent.
    pub fn run(&mut self) {
        while self.step() {}
        if let Some(out) = self.timeline.as_mut()
            && let Err(e) = out.flush()
            && self.timeline_error.is_none()
        {
            self.timeline_error = Some(e);
        }
    }

    /// Process one event. Returns `false` when the run is over.
    pub fn step(&mut self) -> bool {
        let Some(event) = self.kernel.next(self.next_call) else { return false };
        if self.timeline.is_some() {
            self.log_event(&event);
        }
        match event {
            Event::Deliver { frame } => self.deliver(frame),
            Event::Send { from, to, message } => self.transmit(from, to, message, Duration::ZERO),
            Event::Timer { node } => self.fire_timer(node),
            Event::FaultStart { fault } => self.fault_start(fault as usize),
            Event::FaultEnd { fault } => self.fault_end(fault as usize),
            Event::Heal { partition } => self.heal(partition),
            Event::Arrival => self.arrival(),
            Event::ProcessExit { node, incarnation } => self.process_exit(node, incarnation),
            Event::Platform { slot } => self.platform_due(slot as usize),
            Event::Attack { frame, to } => self.arrive(frame, to, true),
            Event::AttackTick { fault } => self.attack_tick(fault as usize),
        }
        true
    }

    /// Send `message` from `from` to `to` after `after` (local processing).
    /// A message that leaves later is sealed when it leaves
    /// ([`Event::Send`]): sealing now would number it before messages that
    /// leave sooner, and receivers would drop it as a replay.
    fn transmit(&mut self, from: NodeId, to: NodeId, message: Message, after: Duration) {
        if !after.is_zero() {
            self.kernel.schedule(self.kernel.now() + after, Event::Send { from, to, message });
            return;
        }
        let fate = self.network.send(from, to);
        if fate.copies.iter().all(Option::is_none) {
            return; // lost: nothing to seal
        }
        let frame = wire::seal(&mut self.nodes[from.index()].sealer, to, message);
        for delay in fate.copies.into_iter().flatten() {
            self.kernel.schedule(self.kernel.now() + delay, Event::Deliver { frame });
        }
    }

    fn deliver(&mut self, frame: Frame) {
        self.arrive(frame, frame.header.to, false);
    }

    /// `frame` arrives at `to`: from the fleet (its header's destination),
    /// or from the attacker (`attack`: anywhere, counted in
    /// [`AttackStats`], never in the fleet's network counters).
    fn arrive(&mut self, frame: Frame, to: NodeId, attack: bool) {
        let (from, message) = (frame.header.from, frame.message);
        // The attacker is in no partition group: only an isolated
        // destination is out of its reach.
        if attack && self.network.isolated(to) {
            self.observed.attack.unheard += 1;
            return;
        }
        if !attack && self.network.blocked(from, to) {
            self.network.stats_mut().partitioned += 1;
            return;
        }
        let for_app = matches!(message, Message::Request(_) | Message::Probe(_))
            && self.scenario.instance_on(to).is_some();
        let for_clients = !for_app && self.for_clients(to, &message);
        let slot = &mut self.nodes[to.index()];
        // The receiving process checks the frame: forged, replayed or
        // old-session frames go no further (counted by kind). A paused
        // process checks what it held when it resumes.
        if slot.state == HostState::Up {
            match slot.opener.open_frame(&frame) {
                Err(refused) => {
                    self.network.stats_mut().auth.count(refused.rejection());
                    if attack {
                        self.observed.attack.count(refused.rejection());
                    }
                    return;
                }
                // Accepted: what `forged_frames_dropped` exists to catch.
                // It goes on as any accepted frame would.
                Ok(()) if attack => self.observed.attack.received.accepted += 1,
                Ok(()) => {
                    if let Some(attacker) = self.attacker.as_mut() {
                        attacker.capture(&frame);
                    }
                }
            }
        }
        let slot = &mut self.nodes[to.index()];
        match slot.state {
            // The process never saw it: nothing to check, nothing to
            // answer (a refusal would go to the attacker's own address).
            HostState::Down | HostState::Vacant if attack => self.observed.attack.unheard += 1,
            HostState::Down if slot.power_off > 0 => self.network.stats_mut().host_down += 1,
            HostState::Down => {
                self.network.stats_mut().host_down += 1;
                // The process is dead but the host answers: connection refused.
                let refused = match message {
                    Message::Request(r) => Some(Refused { id: r.id, probe: false }),
                    Message::Probe(p) => Some(Refused { id: p.id, probe: true }),
                    _ => None,
                };
                if let Some(r) = refused {
                    self.transmit(to, from, Message::Refused(r), Duration::ZERO);
                }
            }
            // No host, or no power: not even a refusal comes back.
            HostState::Vacant => self.network.stats_mut().host_down += 1,
            HostState::Paused => {
                slot.held.push(if attack { Event::Attack { frame, to } } else { Event::Deliver { frame } });
                self.kernel.hold();
            }
            HostState::Up if for_app => {
                self.network.stats_mut().delivered += 1;
                self.app_answer(from, to, message);
                if self.has_clients(to) {
                    // Its calls moved the clients' deadlines.
                    self.drain(to);
                }
            }
            HostState::Up if for_clients => {
                self.network.stats_mut().delivered += 1;
                self.clients_hear(from, to, message);
            }
            HostState::Up => {
                self.network.stats_mut().delivered += 1;
                let local = slot.clock.local(self.kernel.now());
                if let Some(m) = slot.machine.as_mut() {
                    m.handle(local, Input::Message { from, message });
                }
                self.drain(to);
            }
        }
    }

    fn fire_timer(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.timer_at != Some(self.kernel.now()) {
            return; // superseded by an earlier timer, or the host went down
        }
        slot.timer_at = None;
        match slot.state {
            HostState::Up => {
                let local = slot.clock.local(self.kernel.now());
                // The node's one timer serves its machine and its
                // application's clients (`calls.rs`): with clients, the
                // machine is woken only when its own deadline came.
                let with_clients = self.has_clients(node);
                let slot = &mut self.nodes[node.index()];
                if let Some(m) = slot.machine.as_mut()
                    && (!with_clients || m.poll_timeout().is_some_and(|t| t <= local))
                {
                    m.handle_timeout(local);
                }
                if with_clients {
                    self.clients_timeout(node);
                }
                self.drain(node);
            }
            // Rescheduled on resume from the machine's own deadline.
            HostState::Paused | HostState::Down | HostState::Vacant => {}
        }
    }

    /// Carry out every output of `node`, then schedule its next timer;
    /// then carry out the recovery actions it asked for.
    fn drain(&mut self, node: NodeId) {
        self.drain_outputs(node);
        if !self.asked.is_empty() {
            self.carry_out();
        }
    }

    /// Carry out every output of `node`, then schedule its next timer.
    /// Recovery actions are queued in `asked`.
    fn drain_outputs(&mut self, node: NodeId) {
        let scenario = self.scenario;
        let Simulation {
            nodes,
            network,
            kernel,
            observed,
            timeline,
            names,
            asked,
            last_action,
            service_names: services,
            apps,
            ..
        } = self;
        let now = kernel.now();
        let slot = &mut nodes[node.index()];
        let Some(machine) = slot.machine.as_mut() else { return };
        while let Some(output) = machine.poll_output() {
            match output {
                Output::Send { to, message } => {
                    if to.index() >= names.len() {
                        continue; // no such node: the message goes nowhere
                    }
                    let fate = network.send(node, to);
                    if fate.copies.iter().any(Option::is_some) {
                        let frame = wire::seal(&mut slot.sealer, to, message);
                        for delay in fate.copies.into_iter().flatten() {
                            kernel.schedule(now + delay, Event::Deliver { frame });
                        }
                    }
                }
                Output::Health(HealthEvent::LivenessChanged { instance, from, to, .. }) => {
                    observed.verdicts.push(Verdict { at: now, instance, from, to });
                    if let Some(out) = timeline.as_mut() {
                        let _ = writeln!(
                            out,
                            "{now} {:<14} verdict {} {from} -> {to}",
                            names[node.index()],
                            names.get(Scenario::node_of(instance).index()).map_or("?", String::as_str),
                        );
                    }
                }
                Output::Health(event) => {
                    let (instance, change) = match event {
                        HealthEvent::StatusChanged { instance, from, to, .. } => {
                            (instance, MonitorChange::Status { from, to })
                        }
                        HealthEvent::ReadinessChanged { instance, ready, .. } => {
                            (instance, MonitorChange::Ready(ready))
                        }
                        HealthEvent::NeedsRecovery { instance, status, .. } => {
                            (instance, MonitorChange::NeedsRecovery(status))
                        }
                        _ => continue,
                    };
                    observed.monitor.push(MonitorVerdict { at: now, instance, change });
                    if let Some(out) = timeline.as_mut() {
                        let what = match change {
                            MonitorChange::Status { from, to } => format!("health {from} -> {to}"),
                            MonitorChange::Ready(true) => "ready".to_string(),
                            MonitorChange::Ready(false) => "not ready".to_string(),
                            MonitorChange::NeedsRecovery(s) => format!("needs recovery ({s})"),
                        };
                        let _ = writeln!(
                            out,
                            "{now} {:<14} monitor {} {what}",
                            names[node.index()],
                            names.get(Scenario::node_of(instance).index()).map_or("?", String::as_str),
                        );
                    }
                }
                Output::Balance(event) => {
                    observed.balance.push((now, event));
                    if let Some(out) = timeline.as_mut() {
                        let (about, words) = crate::text::balance_words(&event);
                        let about = about
                            .and_then(|i| names.get(Scenario::node_of(i).index()))
                            .map_or(String::new(), |n| format!("{n} "));
                        let _ = writeln!(out, "{now} {:<14} {about}{words}", names[node.index()]);
                    }
                }
                Output::CallDone(done) => {
                    observed.calls.record(&done);
                    if let Some(k) = scenario.client_target(node)
                        && let Some(by_target) = observed.calls_by_target.get_mut(k)
                    {
                        by_target.record(&done);
                    }
                }
                Output::Recovery(out) => {
                    let out = *out;
                    let out_copy = out;
                    observed.recovery.push((now, out));
                    match out {
                        RecoveryOutput::Action(action) => asked.push(action),
                        RecoveryOutput::Decision(d) => {
                            if let (
                                vigil_core::recovery::DecisionKind::Resolved { .. }
                                | vigil_core::recovery::DecisionKind::Abandoned,
                                Some(i),
                            ) = (d.kind, d.instance)
                                && let Some(last) = last_action.get_mut(i.index())
                            {
                                *last = None;
                            }
                        }
                        _ => {}
                    }
                    if let Some(out) = timeline.as_mut() {
                        let line = crate::text::recovery_line(&out_copy, names, services);
                        let _ = writeln!(out, "{now} {:<14} {line}", names[node.index()]);
                    }
                }
                _ => {}
            }
        }
        if let Node::Control(c) = machine.get()
            && let Some(r) = c.recovery()
        {
            observed.max_in_flight = observed.max_in_flight.max(r.in_flight());
        }
        let clients = scenario.instance_on(node).and_then(|i| apps[i.index()].calls.poll_timeout());
        let deadline = [machine.poll_timeout(), clients].into_iter().flatten().min();
        if let Some(local_deadline) = deadline {
            let at = slot.clock.true_time_of(local_deadline, now);
            if slot.timer_at.is_none_or(|queued| at < queued) {
                slot.timer_at = Some(at);
                kernel.schedule(at, Event::Timer { node });
            }
        }
    }

    fn log_event(&mut self, event: &Event) {
        let now = self.kernel.now();
        let name = |n: NodeId| self.names.get(n.index()).map_or("?", String::as_str);
        let line = match *event {
            Event::Deliver { frame: Frame { header, message, .. } } => {
                let (from, to) = (header.from, header.to);
                let instance = |i: InstanceId| name(Scenario::node_of(i)).to_string();
                let words = crate::text::message_words(&message, instance);
                format!("{now} {:<14} recv from {} {words}", name(to), name(from))
            }
            Event::Send { from, to, message } => {
                let instance = |i: InstanceId| name(Scenario::node_of(i)).to_string();
                let words = crate::text::message_words(&message, instance);
                format!("{now} {:<14} send to {} {words}", name(from), name(to))
            }
            Event::Timer { node } => format!("{now} {:<14} timer", name(node)),
            Event::FaultStart { fault } => {
                let f = &self.plan[fault as usize];
                format!("{now} {:<14} fault#{fault} begins: {}", "-", crate::text::describe(self.scenario, f))
            }
            Event::FaultEnd { fault } => format!("{now} {:<14} fault#{fault} ends", "-"),
            Event::Heal { partition } => format!("{now} {:<14} partition fault#{partition} heals", "-"),
            Event::Arrival => format!("{now} {:<14} call #{}", "client", self.next_call),
            Event::ProcessExit { node, .. } => format!("{now} {:<14} process may exit", name(node)),
            Event::Platform { slot } => format!("{now} {:<14} platform job #{slot} due", "platform"),
            Event::Attack { frame: Frame { header, message, .. }, to } => {
                let instance = |i: InstanceId| name(Scenario::node_of(i)).to_string();
                let words = crate::text::message_words(&message, instance);
                let what = if header.to != to { " (misdirected)" } else { "" };
                format!(
                    "{now} {:<14} recv from attacker as {} {words} (key {}, session {}, seq {}){what}",
                    name(to),
                    name(header.from),
                    header.key_id.0,
                    header.session,
                    header.seq
                )
            }
            Event::AttackTick { fault } => format!("{now} {:<14} fault#{fault} attacker sends", "-"),
        };
        if let Some(out) = self.timeline.as_mut()
            && let Err(e) = writeln!(out, "{line}")
        {
            self.timeline_error.get_or_insert(e);
            self.timeline = None;
        }
    }

    /// Simulated time now.
    pub fn now(&self) -> Instant {
        self.kernel.now()
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.kernel.events()
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> TraceHash {
        self.kernel.trace()
    }

    /// The hash after each event, if recording was asked for.
    pub fn history(&self) -> Option<&[(Instant, u64)]> {
        self.kernel.history()
    }

    /// Why the run stopped early, if it did.
    pub fn halted(&self) -> Option<Halt> {
        self.kernel.halted()
    }

    /// What the run observed.
    pub fn observations(&self) -> &Observations {
        &self.observed
    }

    /// The network and its counters.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// State of the host of `node`.
    pub fn host_state(&self, node: NodeId) -> HostState {
        self.nodes[node.index()].state
    }

    /// The control node's machine, if it is running.
    pub fn control(&self) -> Option<&ControlPlane> {
        match self.nodes[Scenario::CONTROL.index()].machine.as_ref().map(Checked::get) {
            Some(Node::Control(c)) => Some(c),
            Some(Node::Instance(_) | Node::Client(_)) | None => None,
        }
    }

    /// Why the timeline stopped being written, if it did.
    pub fn timeline_error(&self) -> Option<&std::io::Error> {
        self.timeline_error.as_ref()
    }

    /// Simulated length of the run.
    pub fn duration(&self) -> Duration {
        self.scenario.duration
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &'a Scenario {
        self.scenario
    }

    /// Every fault occurrence of the run (the scenario's faults with picks,
    /// repeats and windows drawn), in start order; [`Observations::faults`]
    /// and [`Outage::fault`] index it.
    pub fn plan(&self) -> &[Fault] {
        &self.plan
    }
}
