//! The simulation: machines, hosts and network under one event loop.
//!
//! # How an event flows
//!
//! 1. [`Simulation::step`] pops the earliest event from the queue (ordered by
//!    `(time, seq)`) and folds it into the trace hash.
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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use hdrhistogram::Histogram;
use rand::RngExt as _;
use vigil_core::balance::{BalanceEvent, BalancerConfig};
use vigil_core::client::{CallOutcome, ClientConfig, ClientNode};
use vigil_core::health::{AgentConfig, HealthEvent, HealthStatus, Liveness, LivenessTimeouts};
use vigil_core::machine::{Checked, Machine};
use vigil_core::message::{Message, ProbeReply, Refused, Response, ResponseStatus};
use vigil_core::node::{ControlConfig, ControlPlane, Input, InstanceNode, Node, Output, WatchedInstance};
use vigil_core::registry::RegistryConfig;
use vigil_core::rng::Rng;
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, Instant, NodeId, ServiceId};

use crate::host::HostClock;
use crate::net::{Network, sample};
use crate::queue::EventQueue;
use crate::scenario::{FaultAction, LoadShape, Scenario};
use crate::trace::{StableHasher, TraceHash};

/// Something scheduled on the event queue.
#[derive(Clone, Copy, Debug)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        message: Message,
    },
    Timer {
        node: NodeId,
    },
    FaultStart {
        fault: u32,
    },
    FaultEnd {
        fault: u32,
    },
    Heal {
        partition: u32,
    },
    /// The load generator makes its next call.
    Arrival,
}

impl Event {
    fn kind(&self) -> u8 {
        match self {
            Event::Deliver { .. } => 1,
            Event::Timer { .. } => 2,
            Event::FaultStart { .. } => 3,
            Event::FaultEnd { .. } => 4,
            Event::Heal { .. } => 5,
            Event::Arrival => 6,
        }
    }
}

/// A host's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// Running.
    Up,
    /// Crashed: no machine, messages dropped.
    Down,
    /// Paused: time passes, nothing runs, messages wait.
    Paused,
}

struct NodeSlot {
    machine: Option<Checked<Node>>,
    state: HostState,
    clock: HostClock,
    /// Simulated time of the earliest timer event queued for this node.
    timer_at: Option<Instant>,
    /// Messages that arrived while paused, in arrival order.
    held: Vec<(NodeId, Message)>,
    incarnation: u64,
}

/// The simulated application on one instance: how it answers requests and
/// probes. Its heartbeat agent is separate (a sidecar): a hung application
/// keeps heartbeating.
#[derive(Clone, Debug, Default)]
struct App {
    /// Hang faults in force (they nest).
    hung: u32,
    /// Slow faults in force: the largest delay is added to every service
    /// time. Overlapping faults nest: each one's end removes only its own
    /// entry, and the worst still in force rules.
    slow: Vec<Duration>,
    /// Errors faults in force: the largest share of answers are errors.
    errors: Vec<f64>,
    /// Flap faults in force, oldest first, as `(period, since)`: failing in
    /// every odd half-cycle since `since` (the newest one rules).
    flaps: Vec<(Duration, Instant)>,
    /// Service times and error draws; created on first use.
    rng: Option<Rng>,
    /// When each request in service will be answered (a min-heap), to
    /// enforce the service's capacity.
    busy_until: BinaryHeap<Reverse<Instant>>,
}

impl App {
    /// An application fault begins at `now`; returns its outage kind.
    fn begin(&mut self, action: &FaultAction, now: Instant) -> OutageKind {
        match action {
            FaultAction::Hang(_) => {
                self.hung += 1;
                OutageKind::Hang
            }
            FaultAction::Slow { extra, .. } => {
                self.slow.push(*extra);
                OutageKind::Slow
            }
            FaultAction::Errors { rate, .. } => {
                self.errors.push(*rate);
                OutageKind::Errors
            }
            FaultAction::Flap { period, .. } => {
                self.flaps.push((*period, now));
                OutageKind::Flap
            }
            _ => unreachable!("only application faults reach the application: a caller bug"),
        }
    }

    /// An application fault ends: only its own entry goes (they nest).
    fn end(&mut self, action: &FaultAction) -> OutageKind {
        fn remove_first<T>(list: &mut Vec<T>, same: impl Fn(&T) -> bool) {
            if let Some(k) = list.iter().position(same) {
                list.remove(k);
            }
        }
        match action {
            FaultAction::Hang(_) => {
                self.hung = self.hung.saturating_sub(1);
                OutageKind::Hang
            }
            FaultAction::Slow { extra, .. } => {
                remove_first(&mut self.slow, |d| d == extra);
                OutageKind::Slow
            }
            FaultAction::Errors { rate, .. } => {
                remove_first(&mut self.errors, |r| r == rate);
                OutageKind::Errors
            }
            FaultAction::Flap { period, .. } => {
                remove_first(&mut self.flaps, |(p, _)| p == period);
                OutageKind::Flap
            }
            _ => unreachable!("only application faults reach the application: a caller bug"),
        }
    }
}

/// Client calls as the load generator saw them end.
#[derive(Clone, Debug)]
pub struct CallStats {
    /// Calls that ended (in flight at the end of the run: not counted).
    pub total: u64,
    /// Answered with success.
    pub ok: u64,
    /// Answered with an error.
    pub error: u64,
    /// Refused: nothing listened.
    pub refused: u64,
    /// No answer in time.
    pub timeout: u64,
    /// No routable endpoint.
    pub no_endpoint: u64,
    /// Latency of every ended call, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            total: 0,
            ok: 0,
            error: 0,
            refused: 0,
            timeout: 0,
            no_endpoint: 0,
            // Three significant figures, auto-resizing: any latency fits.
            latency_us: Histogram::new(3).expect("3 significant figures is a valid precision"),
        }
    }
}

impl CallStats {
    /// Share of ended calls that succeeded, if any ended.
    pub fn availability(&self) -> Option<f64> {
        (self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

/// A health verdict as the control node published it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Simulated time of publication.
    pub at: Instant,
    /// The instance.
    pub instance: InstanceId,
    /// Old verdict.
    pub from: Liveness,
    /// New verdict.
    pub to: Liveness,
}

/// A period during which an instance could not answer, or answered badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// What happened: crash, pause, or an application fault.
    pub kind: OutageKind,
    /// When it began.
    pub began: Instant,
    /// When the host came back (restart or resume), if within the run.
    pub ended: Option<Instant>,
}

/// What kind of outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageKind {
    /// The host crashed.
    Crash,
    /// The host was paused.
    Pause,
    /// The application hung.
    Hang,
    /// The application slowed down.
    Slow,
    /// The application answered with errors.
    Errors,
    /// The application flapped.
    Flap,
}

impl OutageKind {
    /// Lower-case name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            OutageKind::Crash => "crash",
            OutageKind::Pause => "pause",
            OutageKind::Hang => "hang",
            OutageKind::Slow => "slow",
            OutageKind::Errors => "errors",
            OutageKind::Flap => "flap",
        }
    }
}

/// A health-monitor verdict, as the control node published it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorVerdict {
    /// Simulated time of publication.
    pub at: Instant,
    /// The instance.
    pub instance: InstanceId,
    /// What changed.
    pub change: MonitorChange,
}

/// What a health-monitor verdict changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorChange {
    /// The reported status.
    Status {
        /// Before.
        from: HealthStatus,
        /// After.
        to: HealthStatus,
    },
    /// Whether it is in rotation.
    Ready(bool),
    /// It needs recovery, for this failure type.
    NeedsRecovery(HealthStatus),
}

/// When a scheduled fault actually began and ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultSpan {
    /// When it began.
    pub began: Option<Instant>,
    /// When it ended (reverted), if it did within the run.
    pub ended: Option<Instant>,
}

/// What a run observed, for the checkers and the report.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Every verdict change, in order.
    pub verdicts: Vec<Verdict>,
    /// Every health-monitor verdict, in order.
    pub monitor: Vec<MonitorVerdict>,
    /// Per scheduled fault (same index as `Scenario::faults`).
    pub faults: Vec<FaultSpan>,
    /// Per instance: each outage: its host went down (crash) or froze
    /// (pause), or its application hung, slowed, erred or flapped.
    pub outages: Vec<Vec<Outage>>,
    /// Client calls, when the scenario has load.
    pub calls: CallStats,
    /// What the client's balancer reported, in order.
    pub balance: Vec<(Instant, BalanceEvent)>,
    /// Per node: windows `[start, end]` during which some fault touched it
    /// (crashed, paused, partitioned or its clock skewed); `end` is `None`
    /// while it lasts to the end of the run.
    pub disturbed: Vec<Vec<(Instant, Option<Instant>)>>,
    depth: Vec<u32>,
}

impl Observations {
    fn disturb(&mut self, node: NodeId, at: Instant) {
        let depth = &mut self.depth[node.index()];
        *depth += 1;
        if *depth == 1 {
            self.disturbed[node.index()].push((at, None));
        }
    }

    fn restore(&mut self, node: NodeId, at: Instant) {
        let depth = &mut self.depth[node.index()];
        if *depth == 0 {
            return;
        }
        *depth -= 1;
        if *depth == 0
            && let Some(window) = self.disturbed[node.index()].last_mut()
        {
            window.1 = Some(at);
        }
    }
}

/// Why a run stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// More events than the step budget allowed.
    StepBudget {
        /// Events processed.
        events: u64,
        /// Simulated time reached.
        at: Instant,
    },
}

/// One seeded run of a scenario.
pub struct Simulation<'a> {
    scenario: &'a Scenario,
    seed: Seed,
    queue: EventQueue<Event>,
    nodes: Vec<NodeSlot>,
    network: Network,
    now: Instant,
    end: Instant,
    trace: TraceHash,
    events: u64,
    observed: Observations,
    names: Vec<String>,
    timeline: Option<Box<dyn Write + 'a>>,
    timeline_error: Option<std::io::Error>,
    history: Option<Vec<(Instant, u64)>>,
    halted: Option<Halt>,
    apps: Vec<App>,
    load_rng: Rng,
    next_call: u64,
}

impl<'a> Simulation<'a> {
    /// Build the fleet of `scenario` at time zero, seeded with `seed`.
    pub fn new(scenario: &'a Scenario, seed: u64) -> Self {
        let seed = Seed(seed);
        let node_count = scenario.node_count() as usize;
        let mut sim = Simulation {
            scenario,
            seed,
            queue: EventQueue::with_capacity(node_count * 2 + scenario.faults.len() + 16),
            nodes: Vec::with_capacity(node_count),
            network: Network::new(scenario.network.clone(), node_count, seed.child_named("network")),
            now: Instant::ZERO,
            end: Instant::ZERO + scenario.duration,
            trace: TraceHash::default(),
            events: 0,
            observed: Observations {
                verdicts: Vec::new(),
                faults: vec![FaultSpan { began: None, ended: None }; scenario.faults.len()],
                outages: vec![Vec::new(); scenario.instance_count() as usize],
                monitor: Vec::new(),
                calls: CallStats::default(),
                balance: Vec::new(),
                disturbed: vec![Vec::new(); node_count],
                depth: vec![0; node_count],
            },
            names: scenario.node_names(),
            timeline: None,
            timeline_error: None,
            history: None,
            halted: None,
            apps: vec![App::default(); scenario.instance_count() as usize],
            load_rng: seed.child_named("load").rng(),
            next_call: 0,
        };
        for n in 0..node_count {
            sim.nodes.push(NodeSlot {
                machine: None,
                state: HostState::Up,
                clock: HostClock::default(),
                timer_at: None,
                held: Vec::new(),
                incarnation: 0,
            });
            sim.boot(NodeId(n as u32));
        }
        for (i, fault) in scenario.faults.iter().enumerate() {
            sim.queue.push(Instant::ZERO + fault.at, Event::FaultStart { fault: i as u32 });
        }
        if let Some(load) = scenario.load {
            let first = sim.next_arrival_gap();
            sim.queue.push(Instant::ZERO + load.start + first, Event::Arrival);
        }
        sim
    }

    /// Time to the next call of the load generator.
    fn next_arrival_gap(&mut self) -> Duration {
        let Some(load) = self.scenario.load else { return Duration::MAX };
        let mean_s = 1.0 / load.rate_per_sec;
        let gap_s = match load.shape {
            LoadShape::Constant => mean_s,
            LoadShape::Poisson => {
                let u: f64 = self.load_rng.random();
                -libm::log(1.0 - u) * mean_s
            }
        };
        // At least a nanosecond, so arrivals always move time forward.
        Duration::from_nanos(((gap_s * 1e9) as u64).max(1))
    }

    /// Write one line per processed event to `out`.
    pub fn with_timeline(mut self, out: Box<dyn Write + 'a>) -> Self {
        self.timeline = Some(out);
        self
    }

    /// Record the trace hash after every event, to locate a divergence.
    pub fn with_history(mut self) -> Self {
        self.history = Some(Vec::new());
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
        if self.halted.is_some() {
            return false;
        }
        let Some(next) = self.queue.peek_time() else { return false };
        if next > self.end {
            self.now = self.end;
            return false;
        }
        if self.events >= self.scenario.max_events {
            self.halted = Some(Halt::StepBudget { events: self.events, at: self.now });
            return false;
        }
        let Some((time, event)) = self.queue.pop() else { return false };
        debug_assert!(time >= self.now, "event queue went back in time");
        self.now = time;
        self.events += 1;
        let (node, digest) = match event {
            Event::Deliver { from, to, message } => (to.0, StableHasher::digest(&(from.0, message))),
            Event::Timer { node } => (node.0, 0),
            Event::FaultStart { fault } | Event::FaultEnd { fault } => (u32::MAX, u64::from(fault)),
            Event::Heal { partition } => (u32::MAX, u64::from(partition)),
            Event::Arrival => (u32::MAX - 1, self.next_call),
        };
        self.trace.fold(time, node, event.kind(), digest);
        if let Some(h) = self.history.as_mut() {
            h.push((time, self.trace.value()));
        }
        if self.timeline.is_some() {
            self.log_event(&event);
        }
        match event {
            Event::Deliver { from, to, message } => self.deliver(from, to, message),
            Event::Timer { node } => self.fire_timer(node),
            Event::FaultStart { fault } => self.fault_start(fault as usize),
            Event::FaultEnd { fault } => self.fault_end(fault as usize),
            Event::Heal { partition } => self.heal(partition),
            Event::Arrival => self.arrival(),
        }
        true
    }

    fn arrival(&mut self) {
        let Some(client) = self.scenario.client_node() else { return };
        let id = self.next_call;
        self.next_call += 1;
        let slot = &mut self.nodes[client.index()];
        if slot.state == HostState::Up {
            let local = slot.clock.local(self.now);
            if let Some(m) = slot.machine.as_mut() {
                m.handle(local, Input::Call { id });
            }
            self.drain(client);
        }
        let gap = self.next_arrival_gap();
        self.queue.push(self.now + gap, Event::Arrival);
    }

    /// The application on instance node `node` answers a request or probe.
    fn app_answer(&mut self, from: NodeId, node: NodeId, message: Message) {
        let Some(instance) = self.scenario.instance_on(node) else { return };
        let (service, _) = self.scenario.locate(instance).expect("instance_on checked the range");
        let service_time = self.scenario.services[service].service_time;
        let capacity = self.scenario.services[service].capacity;
        let seed = self.seed;
        let now = self.now;
        let app = &mut self.apps[instance.index()];
        if app.hung > 0 {
            return; // accepts nothing, answers nothing
        }
        let rng = app.rng.get_or_insert_with(|| seed.child_named("app").child(u64::from(instance.0)).rng());
        let extra = app.slow.iter().copied().max().unwrap_or_default();
        let mut delay = sample(&service_time, rng) + extra;
        let mut overloaded = false;
        if let (Some(cap), Message::Request(_)) = (capacity, message) {
            while app.busy_until.peek().is_some_and(|Reverse(t)| *t <= now) {
                app.busy_until.pop();
            }
            if app.busy_until.len() >= cap as usize {
                overloaded = true; // turned away at once: 503
                delay = Duration::ZERO;
            } else {
                app.busy_until.push(Reverse(now + delay));
            }
        }
        let flapping_bad = app.flaps.last().is_some_and(|&(period, since)| {
            let period_ns = period.as_nanos().max(1);
            ((now - since).as_nanos() / period_ns) % 2 == 1
        });
        let error = overloaded || flapping_bad || {
            let p = app.errors.iter().copied().fold(0.0, f64::max);
            p > 0.0 && rng.random_bool(p.min(1.0))
        };
        let reply = match message {
            Message::Request(r) => Message::Response(Response {
                id: r.id,
                status: if error { ResponseStatus::Error } else { ResponseStatus::Ok },
            }),
            Message::Probe(p) => Message::ProbeReply(ProbeReply { id: p.id, ok: !error }),
            _ => return,
        };
        self.transmit(node, from, reply, delay);
    }

    /// Send `message` from `from` to `to` after `after` (local processing).
    fn transmit(&mut self, from: NodeId, to: NodeId, message: Message, after: Duration) {
        let fate = self.network.send(from, to);
        for delay in fate.copies.into_iter().flatten() {
            self.queue.push(self.now + after + delay, Event::Deliver { from, to, message });
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, message: Message) {
        if self.network.blocked(from, to) {
            self.network.stats_mut().partitioned += 1;
            return;
        }
        let for_app = matches!(message, Message::Request(_) | Message::Probe(_))
            && self.scenario.instance_on(to).is_some();
        let slot = &mut self.nodes[to.index()];
        match slot.state {
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
            HostState::Paused => slot.held.push((from, message)),
            HostState::Up if for_app => {
                self.network.stats_mut().delivered += 1;
                self.app_answer(from, to, message);
            }
            HostState::Up => {
                self.network.stats_mut().delivered += 1;
                let local = slot.clock.local(self.now);
                if let Some(m) = slot.machine.as_mut() {
                    m.handle(local, Input::Message { from, message });
                }
                self.drain(to);
            }
        }
    }

    fn fire_timer(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.timer_at != Some(self.now) {
            return; // superseded by an earlier timer, or the host went down
        }
        slot.timer_at = None;
        match slot.state {
            HostState::Up => {
                let local = slot.clock.local(self.now);
                if let Some(m) = slot.machine.as_mut() {
                    m.handle_timeout(local);
                }
                self.drain(node);
            }
            // Rescheduled on resume from the machine's own deadline.
            HostState::Paused | HostState::Down => {}
        }
    }

    /// Carry out every output of `node`, then schedule its next timer.
    fn drain(&mut self, node: NodeId) {
        let Simulation { nodes, network, queue, observed, now, timeline, names, .. } = self;
        let now = *now;
        let slot = &mut nodes[node.index()];
        let Some(machine) = slot.machine.as_mut() else { return };
        while let Some(output) = machine.poll_output() {
            match output {
                Output::Send { to, message } => {
                    if to.index() >= names.len() {
                        continue; // no such node: the message goes nowhere
                    }
                    let fate = network.send(node, to);
                    for delay in fate.copies.into_iter().flatten() {
                        queue.push(now + delay, Event::Deliver { from: node, to, message });
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
                        let _ = writeln!(out, "{now} {:<14} balancer {event:?}", names[node.index()]);
                    }
                }
                Output::CallDone(done) => {
                    let calls = &mut observed.calls;
                    calls.total += 1;
                    match done.outcome {
                        CallOutcome::Ok => calls.ok += 1,
                        CallOutcome::Error => calls.error += 1,
                        CallOutcome::Refused => calls.refused += 1,
                        CallOutcome::Timeout => calls.timeout += 1,
                        CallOutcome::NoEndpoint => calls.no_endpoint += 1,
                    }
                    let us = u64::try_from(done.latency.as_micros()).unwrap_or(u64::MAX);
                    // Auto-resizing histogram: recording cannot fail for a u64.
                    let _ = calls.latency_us.record(us);
                }
                _ => {}
            }
        }
        let deadline = machine.poll_timeout();
        if let Some(local_deadline) = deadline {
            let at = slot.clock.true_time_of(local_deadline, now);
            if slot.timer_at.is_none_or(|queued| at < queued) {
                slot.timer_at = Some(at);
                queue.push(at, Event::Timer { node });
            }
        }
    }

    fn boot(&mut self, node: NodeId) {
        let scenario = self.scenario;
        let slot = &mut self.nodes[node.index()];
        slot.incarnation += 1;
        let local = slot.clock.local(self.now);
        let machine = match scenario.instance_on(node) {
            None if Some(node) == scenario.client_node() => {
                let load = scenario.load.expect("a client node exists only with load");
                let defaults = ClientConfig::default();
                let config = ClientConfig {
                    control: Scenario::CONTROL,
                    call_timeout: load.timeout,
                    balancer: BalancerConfig {
                        panic_threshold_percent: load.panic_threshold_percent,
                        ..defaults.balancer.clone()
                    },
                    ..defaults
                };
                let seed = self.seed.child_named("client").child(slot.incarnation);
                Node::Client(Box::new(
                    ClientNode::new(config, local, seed).expect("the default balancer settings are valid"),
                ))
            }
            None => {
                let config = ControlConfig {
                    recovery: None,
                    seed: self.seed.child_named("control").child(slot.incarnation),
                    health_classes: scenario.services.iter().map(|s| s.health.clone()).collect(),
                    // A simulated instance re-registers only by booting with
                    // the fleet, so the catalog never lets one go; and it is
                    // sized to the fleet, which may pass the default limit.
                    registry: RegistryConfig {
                        deregister_critical_after: None,
                        max_instances: (scenario.instance_count() as usize).max(1),
                        max_services: scenario.services.len().max(1),
                        ..RegistryConfig::default()
                    },
                    service_names: scenario.services.iter().map(|s| s.name.clone()).collect(),
                    liveness_classes: scenario
                        .services
                        .iter()
                        .map(|s| LivenessTimeouts {
                            suspect_after: s.heartbeat.suspect_after,
                            dead_after: s.heartbeat.dead_after,
                        })
                        .collect(),
                    instances: (0..scenario.instance_count())
                        .map(|i| {
                            let class = scenario.locate(InstanceId(i)).map_or(0, |(s, _)| s);
                            WatchedInstance {
                                instance: InstanceId(i),
                                node: Scenario::node_of(InstanceId(i)),
                                service: ServiceId(class as u32),
                                class,
                            }
                        })
                        .collect(),
                };
                Node::Control(Box::new(
                    ControlPlane::new(&config, local).expect("the scenario loader validated these timeouts"),
                ))
            }
            Some(instance) => {
                let (service, _) = scenario.locate(instance).expect("node ids come from the scenario");
                let config = AgentConfig {
                    instance,
                    control: Scenario::CONTROL,
                    interval: scenario.services[service].heartbeat.interval,
                    incarnation: slot.incarnation,
                };
                let seed = self.seed.child_named(&self.names[node.index()]).child(slot.incarnation);
                Node::Instance(
                    InstanceNode::new(config, local, seed)
                        .expect("the scenario loader validated the interval"),
                )
            }
        };
        slot.machine = Some(Checked::new(machine));
        slot.state = HostState::Up;
        slot.timer_at = None;
        self.drain(node);
    }

    fn crash(&mut self, node: NodeId) {
        match self.nodes[node.index()].state {
            HostState::Down => return,
            HostState::Paused => {
                // The pause ends in a crash: one outage becomes the other.
                self.outage_ends(node);
                self.observed.restore(node, self.now);
            }
            HostState::Up => {}
        }
        let slot = &mut self.nodes[node.index()];
        slot.state = HostState::Down;
        slot.machine = None;
        slot.timer_at = None;
        slot.held.clear();
        self.observed.disturb(node, self.now);
        self.outage_begins(node, OutageKind::Crash);
    }

    fn outage_begins(&mut self, node: NodeId, kind: OutageKind) {
        if let Some(instance) = self.scenario.instance_on(node) {
            self.observed.outages[instance.index()].push(Outage { kind, began: self.now, ended: None });
        }
    }

    fn outage_ends(&mut self, node: NodeId) {
        if let Some(instance) = self.scenario.instance_on(node)
            && let Some(last) = self.observed.outages[instance.index()]
                .iter_mut()
                .rev()
                .find(|o| matches!(o.kind, OutageKind::Crash | OutageKind::Pause) && o.ended.is_none())
        {
            last.ended = Some(self.now);
        }
    }

    fn restart(&mut self, node: NodeId) {
        if self.nodes[node.index()].state != HostState::Down {
            return;
        }
        self.outage_ends(node);
        self.observed.restore(node, self.now);
        self.boot(node);
    }

    fn pause(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.state == HostState::Up {
            slot.state = HostState::Paused;
            self.observed.disturb(node, self.now);
            self.outage_begins(node, OutageKind::Pause);
        }
    }

    fn resume(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.state != HostState::Paused {
            return;
        }
        slot.state = HostState::Up;
        slot.timer_at = None;
        let held = std::mem::take(&mut slot.held);
        self.outage_ends(node);
        self.observed.restore(node, self.now);
        for (from, message) in held {
            self.queue.push(self.now, Event::Deliver { from, to: node, message });
        }
        self.drain(node); // reschedules the timer from the machine's deadline
    }

    fn fault_start(&mut self, index: usize) {
        let fault = &self.scenario.faults[index];
        self.observed.faults[index].began = Some(self.now);
        match &fault.action {
            FaultAction::Crash(targets) => targets.iter().for_each(|&n| self.crash(n)),
            FaultAction::Restart(targets) => targets.iter().for_each(|&n| self.restart(n)),
            FaultAction::Pause(targets) => targets.iter().for_each(|&n| self.pause(n)),
            FaultAction::Resume(targets) => targets.iter().for_each(|&n| self.resume(n)),
            FaultAction::Partition(spec) => {
                for n in fault.action.nodes() {
                    self.observed.disturb(n, self.now);
                }
                self.network.partition(index as u32, spec, self.now);
            }
            FaultAction::Heal => {
                let active: Vec<u32> = self.network.active_partitions().collect();
                for id in active {
                    self.request_heal(id);
                }
                self.observed.faults[index].ended = Some(self.now);
            }
            FaultAction::ClockSkew { targets, offset_ns, drift_ppm } => {
                for &n in targets {
                    self.nodes[n.index()].clock.skew(self.now, *offset_ns, *drift_ppm);
                    self.observed.disturb(n, self.now);
                    self.reschedule(n);
                }
            }
            FaultAction::Hang(_)
            | FaultAction::Slow { .. }
            | FaultAction::Errors { .. }
            | FaultAction::Flap { .. } => self.app_fault(index, true),
            _ => {}
        }
        if let Some(duration) = fault.duration {
            self.queue.push(self.now + duration, Event::FaultEnd { fault: index as u32 });
        } else if !matches!(
            fault.action,
            FaultAction::Partition(_)
                | FaultAction::ClockSkew { .. }
                | FaultAction::Hang(_)
                | FaultAction::Slow { .. }
                | FaultAction::Errors { .. }
                | FaultAction::Flap { .. }
        ) {
            // Point-in-time actions end as they begin.
            self.observed.faults[index].ended = Some(self.now);
        }
    }

    fn fault_end(&mut self, index: usize) {
        let fault = &self.scenario.faults[index];
        match &fault.action {
            FaultAction::Crash(targets) => targets.iter().for_each(|&n| self.restart(n)),
            FaultAction::Pause(targets) => targets.iter().for_each(|&n| self.resume(n)),
            FaultAction::Partition(_) => {
                self.request_heal(index as u32);
                return; // `ended` is set when the heal takes effect
            }
            FaultAction::ClockSkew { targets, .. } => {
                for &n in targets {
                    // Back to true time and rate; a backward step stands still.
                    let clock = &mut self.nodes[n.index()].clock;
                    let ahead = clock.offset_ns(self.now);
                    let step = i64::try_from(-ahead).unwrap_or(i64::MIN);
                    clock.skew(self.now, step, 0);
                    // A clock stepped back stands still until true time
                    // catches up: the disturbance lasts until then.
                    let still = Duration::from_nanos(u64::try_from(ahead.max(0)).unwrap_or(u64::MAX));
                    self.observed.restore(n, self.now + still);
                    self.reschedule(n);
                }
            }
            FaultAction::Hang(_)
            | FaultAction::Slow { .. }
            | FaultAction::Errors { .. }
            | FaultAction::Flap { .. } => self.app_fault(index, false),
            FaultAction::Restart(_) | FaultAction::Resume(_) | FaultAction::Heal => {}
            _ => {}
        }
        self.observed.faults[index].ended = Some(self.now);
    }

    /// An application fault begins (`begin`) or ends on each of its
    /// target instances: the application changes, the instance is
    /// disturbed or restored, and its outage opens or closes.
    fn app_fault(&mut self, index: usize, begin: bool) {
        let fault = &self.scenario.faults[index];
        let (FaultAction::Hang(targets)
        | FaultAction::Slow { targets, .. }
        | FaultAction::Errors { targets, .. }
        | FaultAction::Flap { targets, .. }) = &fault.action
        else {
            return;
        };
        let now = self.now;
        for &n in targets {
            let Some(i) = self.scenario.instance_on(n) else { continue };
            let app = &mut self.apps[i.index()];
            if begin {
                let kind = app.begin(&fault.action, now);
                self.observed.disturb(n, now);
                self.observed.outages[i.index()].push(Outage { kind, began: now, ended: None });
            } else {
                let kind = app.end(&fault.action);
                self.observed.restore(n, now);
                // The newest open outage of this kind ends.
                if let Some(o) = self.observed.outages[i.index()]
                    .iter_mut()
                    .rev()
                    .find(|o| o.kind == kind && o.ended.is_none())
                {
                    o.ended = Some(now);
                }
            }
        }
    }

    /// Heal partition `id` now, or when its stability time allows.
    fn request_heal(&mut self, id: u32) {
        match self.network.heal_allowed_at(id) {
            Some(at) if at > self.now => self.queue.push(at, Event::Heal { partition: id }),
            Some(_) => self.heal(id),
            None => {}
        }
    }

    fn heal(&mut self, id: u32) {
        if self.network.heal(id) {
            self.observed.faults[id as usize].ended = Some(self.now);
            let action = &self.scenario.faults[id as usize].action;
            if matches!(action, FaultAction::Partition(_)) {
                for n in action.nodes() {
                    self.observed.restore(n, self.now);
                }
            }
        }
    }

    /// The host's clock moved: the machine's deadline moves in true time.
    fn reschedule(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.state != HostState::Up {
            return;
        }
        slot.timer_at = None;
        self.drain(node);
    }

    fn log_event(&mut self, event: &Event) {
        let now = self.now;
        let name = |n: NodeId| self.names.get(n.index()).map_or("?", String::as_str);
        let line = match *event {
            Event::Deliver { from, to, message } => {
                format!("{now} {:<14} recv from {} {message:?}", name(to), name(from))
            }
            Event::Timer { node } => format!("{now} {:<14} timer", name(node)),
            Event::FaultStart { fault } => {
                let f = &self.scenario.faults[fault as usize];
                format!(
                    "{now} {:<14} fault#{fault} begins: {}",
                    "-",
                    crate::report::describe(self.scenario, f)
                )
            }
            Event::FaultEnd { fault } => format!("{now} {:<14} fault#{fault} ends", "-"),
            Event::Heal { partition } => format!("{now} {:<14} partition fault#{partition} heals", "-"),
            Event::Arrival => format!("{now} {:<14} call #{}", "client", self.next_call),
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
        self.now
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> TraceHash {
        self.trace
    }

    /// The hash after each event, if recording was asked for.
    pub fn history(&self) -> Option<&[(Instant, u64)]> {
        self.history.as_deref()
    }

    /// Why the run stopped early, if it did.
    pub fn halted(&self) -> Option<Halt> {
        self.halted
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
}
