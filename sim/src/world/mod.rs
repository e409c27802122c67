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
use std::collections::{BTreeSet, BinaryHeap};
use std::io::Write;

use hdrhistogram::Histogram;
use rand::RngExt as _;
use vigil_core::balance::{BalanceEvent, BalancerConfig};
use vigil_core::client::{CallOutcome, ClientConfig, ClientNode};
use vigil_core::health::{AgentConfig, HealthEvent, HealthStatus, Liveness, LivenessTimeouts};
use vigil_core::machine::{Checked, Machine};
use vigil_core::message::{Message, ProbeReply, Refused, Response, ResponseStatus};
use vigil_core::node::{
    ControlConfig, ControlPlane, Input, InstanceNode, Node, Output, RegisterRequest, WatchedInstance,
};
use vigil_core::recovery::{Action, ActionId, ActionKind, Outcome, RecoveryOutput};
use vigil_core::registry::Registration;
use vigil_core::registry::RegistryConfig;
use vigil_core::rng::Rng;
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, Instant, NodeId, ServiceId};

use crate::kernel::trace::TraceHash;
use crate::kernel::{Event, Kernel};
use crate::scenario::{Fault, FaultAction, LoadShape, Pick, Scenario};
use host::HostClock;
use net::{Network, sample};

pub mod host;
pub mod net;

pub use crate::kernel::Halt;

/// A host's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// Running.
    Up,
    /// Crashed: no machine, messages dropped.
    Down,
    /// Paused: time passes, nothing runs, messages wait.
    Paused,
    /// A standby slot not provisioned yet: no host at all.
    Vacant,
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
    /// Host-crash faults in force (they nest): the host has no power, so
    /// nothing answers, not even a refusal, and nothing boots on it.
    power_off: u32,
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
    /// Disk-full faults in force (host-level: a restart keeps them).
    disk_full: u32,
    /// CPU cost multipliers in force; the largest rules.
    cpu: Vec<f64>,
    /// Memory leaks in force, as their time to exhaustion; the fastest
    /// rules.
    leaks: Vec<Duration>,
    /// Crash loops in force, as `(after, survives_replace)`; `cleared`
    /// counts those a replacement ended (they stay listed until their
    /// fault ends, to nest correctly).
    loops: Vec<(Duration, bool, bool)>,
    /// When the running process started (for the leak's slowdown).
    started: Instant,
}

impl App {
    /// Crash loops in force that still bite.
    fn looping(&self) -> Option<Duration> {
        self.loops.iter().filter(|l| !l.2).map(|l| l.0).min()
    }

    /// The fastest leak in force.
    fn leak(&self) -> Option<Duration> {
        self.leaks.iter().copied().min()
    }
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
            FaultAction::DiskFull(_) => {
                self.disk_full += 1;
                OutageKind::DiskFull
            }
            FaultAction::Cpu { factor, .. } => {
                self.cpu.push(*factor);
                OutageKind::Cpu
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
            FaultAction::DiskFull(_) => {
                self.disk_full = self.disk_full.saturating_sub(1);
                OutageKind::DiskFull
            }
            FaultAction::Cpu { factor, .. } => {
                remove_first(&mut self.cpu, |f| f == factor);
                OutageKind::Cpu
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
    /// The fault occurrence behind it (an index of
    /// [`Simulation::plan`]), if one.
    pub fault: Option<u32>,
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
    /// The host lost power.
    HostCrash,
    /// The process ran out of memory and was killed.
    OutOfMemory,
    /// The instance's CPU cost rose.
    Cpu,
    /// The host's disk filled up.
    DiskFull,
    /// The process crashes shortly after every start.
    CrashLoop,
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
            OutageKind::HostCrash => "host_crash",
            OutageKind::OutOfMemory => "out_of_memory",
            OutageKind::Cpu => "cpu",
            OutageKind::DiskFull => "disk_full",
            OutageKind::CrashLoop => "crash_loop",
        }
    }

    /// Whether a restart of the process ends it.
    fn ends_on_restart(self) -> bool {
        matches!(self, OutageKind::Crash | OutageKind::Hang | OutageKind::OutOfMemory)
    }

    /// Whether a replacement on a fresh host ends it (besides what a
    /// restart ends; a crash loop only if it does not survive
    /// replacement, decided by the caller).
    fn ends_on_replace(self) -> bool {
        self.ends_on_restart() || matches!(self, OutageKind::HostCrash | OutageKind::DiskFull)
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

/// When a fault occurrence actually began and ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultSpan {
    /// The scenario fault it is an occurrence of (index of
    /// `Scenario::faults`).
    pub source: u32,
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
    /// Per fault occurrence (same index as [`Simulation::plan`]).
    pub faults: Vec<FaultSpan>,
    /// What the recovery coordinator decided and asked for, in order.
    pub recovery: Vec<(Instant, RecoveryOutput)>,
    /// What the simulated platform did about each action, in order.
    pub platform: Vec<PlatformEvent>,
    /// Most recovery actions in flight at once.
    pub max_in_flight: u32,
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

/// A step the simulated platform took to carry out a recovery action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformEvent {
    /// When.
    pub at: Instant,
    /// The action.
    pub action: ActionId,
    /// The instance concerned.
    pub instance: Option<InstanceId>,
    /// What happened.
    pub step: PlatformStep,
    /// How many recovery outputs were observed before it, to interleave
    /// the two in the order they happened (a platform failure comes
    /// before the decisions it causes).
    pub after: usize,
}

/// What the platform did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformStep {
    /// Stopped the process, to restart or replace it.
    Stopped,
    /// The restarted process booted.
    Restarted,
    /// The replacement booted on a fresh host.
    Replaced,
    /// A standby slot was provisioned, booted and registered.
    Provisioned,
    /// The action could not be carried out, or the instance died again
    /// before it was healthy: reported as failed.
    Failed(FailReason),
}

/// Why the platform reported an action failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The host has no power: nothing can start on it.
    HostDown,
    /// No standby slot is left to scale out into.
    NoCapacity,
    /// The process died again after the action.
    DiedAgain,
}

impl std::fmt::Display for PlatformStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlatformStep::Stopped => f.write_str("stopped"),
            PlatformStep::Restarted => f.write_str("restarted"),
            PlatformStep::Replaced => f.write_str("replaced on a fresh host"),
            PlatformStep::Provisioned => f.write_str("provisioned"),
            PlatformStep::Failed(FailReason::HostDown) => f.write_str("failed: host down"),
            PlatformStep::Failed(FailReason::NoCapacity) => f.write_str("failed: no standby slot left"),
            PlatformStep::Failed(FailReason::DiedAgain) => f.write_str("failed: died again"),
        }
    }
}

/// A recovery action the platform is carrying out.
#[derive(Clone, Debug)]
struct Job {
    action: Action,
    /// Instances it boots when due (the instance itself, or scaled-out
    /// slots).
    boots: Vec<InstanceId>,
}

/// The scenario's faults as concrete occurrences, in start order (stable:
/// file order among equal times): each repeat of an `every` fault, each
/// start drawn in its `within` window, each target set picked by `pick`.
/// Every draw comes from the run's seed (stream `chaos`), so a run stays a
/// function of (scenario, seed). Returns the occurrences and, for each,
/// the index of its scenario fault.
pub fn expand_faults(scenario: &Scenario, seed: Seed) -> (Vec<Fault>, Vec<u32>) {
    let mut rng = seed.child_named("chaos").rng();
    let mut out: Vec<(Fault, u32)> = Vec::new();
    let end = scenario.duration;
    for (index, fault) in scenario.faults.iter().enumerate() {
        let mut base = fault.at;
        loop {
            let mut at = base;
            if let Some(window) = fault.within {
                let span = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
                at += Duration::from_nanos(rng.random_range(0..=span));
            }
            if at >= end {
                break;
            }
            let mut action = fault.action.clone();
            if fault.pick != Pick::All
                && let Some(targets) = action.targets_mut()
            {
                let keep = fault.pick.count_of(targets.len());
                // A partial Fisher-Yates shuffle: the first `keep` are a
                // uniform sample.
                for k in 0..keep {
                    let j = rng.random_range(k..targets.len());
                    targets.swap(k, j);
                }
                targets.truncate(keep);
                targets.sort_unstable();
            }
            out.push((
                Fault {
                    at,
                    duration: fault.duration,
                    action,
                    pick: Pick::All,
                    every: None,
                    within: None,
                    line: fault.line,
                },
                index as u32,
            ));
            match fault.every {
                Some(period) if !period.is_zero() => base += period,
                _ => break,
            }
            if base >= end {
                break;
            }
        }
    }
    out.sort_by_key(|(f, _)| f.at); // stable
    out.into_iter().unzip()
}

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
    /// Circuits open from a service to a dependency: its calls fail fast,
    /// so its answers no longer fail with the dependency.
    open_circuits: BTreeSet<(usize, usize)>,
    /// Per node: the kinds of its open outages, oldest first.
    open_kinds: Vec<Vec<OutageKind>>,
    /// Service names, by index.
    service_names: Vec<String>,
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
            ),
            nodes: Vec::with_capacity(node_count),
            network: Network::new(scenario.network.clone(), node_count, seed.child_named("network")),
            observed: Observations {
                verdicts: Vec::new(),
                faults: Vec::new(),
                recovery: Vec::new(),
                platform: Vec::new(),
                max_in_flight: 0,
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
            open_kinds: vec![Vec::new(); node_count],
            service_names: scenario.services.iter().map(|s| s.name.clone()).collect(),
        };
        let (plan, plan_source) = expand_faults(scenario, seed);
        sim.observed.faults =
            plan_source.iter().map(|&source| FaultSpan { source, began: None, ended: None }).collect();
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
                power_off: 0,
            });
            if !vacant {
                sim.boot(node);
            }
        }
        for (i, fault) in sim.plan.iter().enumerate() {
            sim.kernel.schedule(Instant::ZERO + fault.at, Event::FaultStart { fault: i as u32 });
        }
        if let Some(load) = scenario.load {
            let first = sim.next_arrival_gap();
            sim.kernel.schedule(Instant::ZERO + load.start + first, Event::Arrival);
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
            Event::Deliver { from, to, message } => self.deliver(from, to, message),
            Event::Timer { node } => self.fire_timer(node),
            Event::FaultStart { fault } => self.fault_start(fault as usize),
            Event::FaultEnd { fault } => self.fault_end(fault as usize),
            Event::Heal { partition } => self.heal(partition),
            Event::Arrival => self.arrival(),
            Event::ProcessExit { node, incarnation } => self.process_exit(node, incarnation),
            Event::Platform { slot } => self.platform_due(slot as usize),
        }
        true
    }

    fn arrival(&mut self) {
        let Some(client) = self.scenario.client_node() else { return };
        let id = self.next_call;
        self.next_call += 1;
        let slot = &mut self.nodes[client.index()];
        if slot.state == HostState::Up {
            let local = slot.clock.local(self.kernel.now());
            if let Some(m) = slot.machine.as_mut() {
                m.handle(local, Input::Call { id });
            }
            self.drain(client);
        }
        let gap = self.next_arrival_gap();
        self.kernel.schedule(self.kernel.now() + gap, Event::Arrival);
    }

    /// The application on instance node `node` answers a request or probe.
    fn app_answer(&mut self, from: NodeId, node: NodeId, message: Message) {
        let Some(instance) = self.scenario.instance_on(node) else { return };
        let (service, _) = self.scenario.locate(instance).expect("instance_on checked the range");
        let spec = &self.scenario.services[service];
        let (service_time, capacity, cores) = (spec.service_time, spec.capacity, spec.cores);
        // A dependency that cannot answer fails this service's answers too,
        // unless a circuit isolates it (calls to it fail fast, a fallback
        // answers).
        let dependency_down =
            spec.depends_on.iter().any(|&d| !self.open_circuits.contains(&(service, d)) && !self.serving(d));
        let seed = self.seed;
        let now = self.kernel.now();
        let app = &mut self.apps[instance.index()];
        if app.hung > 0 {
            return; // accepts nothing, answers nothing
        }
        let (leak, started) = (app.leak(), app.started);
        let rng = app.rng.get_or_insert_with(|| seed.child_named("app").child(u64::from(instance.0)).rng());
        let extra = app.slow.iter().copied().max().unwrap_or_default();
        let mut cost = sample(&service_time, rng).as_nanos() as f64;
        // CPU: a costlier mix; and processor sharing when more requests
        // are in service than there are cores.
        cost *= app.cpu.iter().copied().fold(1.0, f64::max);
        while app.busy_until.peek().is_some_and(|Reverse(t)| *t <= now) {
            app.busy_until.pop();
        }
        if let Some(cores) = cores {
            let in_service = app.busy_until.len() as f64 + 1.0;
            cost *= (in_service / f64::from(cores)).max(1.0);
        }
        // Memory: in the second half of the way to exhaustion, garbage
        // collection slows everything, up to 4x.
        if let Some(leak) = leak {
            let used = (now - started).as_nanos() as f64 / leak.as_nanos().max(1) as f64;
            cost *= 1.0 + 6.0 * (used - 0.5).clamp(0.0, 0.5);
        }
        let mut delay = Duration::from_nanos(cost as u64) + extra;
        let mut overloaded = false;
        if let Message::Request(_) = message
            && (capacity.is_some() || cores.is_some())
        {
            if capacity.is_some_and(|cap| app.busy_until.len() >= cap as usize) {
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
        let error = overloaded || flapping_bad || dependency_down || app.disk_full > 0 || {
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
            self.kernel.schedule(self.kernel.now() + after + delay, Event::Deliver { from, to, message });
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
            HostState::Paused => slot.held.push((from, message)),
            HostState::Up if for_app => {
                self.network.stats_mut().delivered += 1;
                self.app_answer(from, to, message);
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
                if let Some(m) = slot.machine.as_mut() {
                    m.handle_timeout(local);
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
                    for delay in fate.copies.into_iter().flatten() {
                        kernel.schedule(now + delay, Event::Deliver { from: node, to, message });
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
        let deadline = machine.poll_timeout();
        if let Some(local_deadline) = deadline {
            let at = slot.clock.true_time_of(local_deadline, now);
            if slot.timer_at.is_none_or(|queued| at < queued) {
                slot.timer_at = Some(at);
                kernel.schedule(at, Event::Timer { node });
            }
        }
    }

    fn boot(&mut self, node: NodeId) {
        let scenario = self.scenario;
        let slot = &mut self.nodes[node.index()];
        slot.incarnation += 1;
        let local = slot.clock.local(self.kernel.now());
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
                    recovery: scenario.recovery.as_ref().map(|r| r.config.clone()),
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
                        .filter(|&i| self.provisioned[i as usize])
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
        if let Some(i) = scenario.instance_on(node) {
            // A fresh process: not hung, no memory used yet.
            let app = &mut self.apps[i.index()];
            app.hung = 0;
            app.started = self.kernel.now();
            self.schedule_exit(node);
        }
        self.drain(node);
    }

    /// Stop the process on `node`: its machine and volatile state are
    /// lost. Returns the state the host was in.
    fn stop(&mut self, node: NodeId) -> HostState {
        let slot = &mut self.nodes[node.index()];
        let was = slot.state;
        if matches!(was, HostState::Up | HostState::Paused) {
            slot.state = HostState::Down;
            slot.machine = None;
            slot.timer_at = None;
            slot.held.clear();
            if let Some(i) = self.scenario.instance_on(node) {
                // Requests in service die with the process.
                self.apps[i.index()].busy_until.clear();
            }
        }
        was
    }

    /// The process on `node` crashes: an outage of `kind` begins.
    fn crash(&mut self, node: NodeId, kind: OutageKind, fault: Option<u32>) {
        match self.stop(node) {
            HostState::Down | HostState::Vacant => return,
            // The pause ends in a crash: one outage becomes the other.
            HostState::Paused => self.close_outages(node, |k| k == OutageKind::Pause),
            HostState::Up => {}
        }
        self.open_outage(node, kind, fault);
        self.died(node);
    }

    /// An outage of `kind` begins on `node`: it is disturbed until the
    /// outage ends.
    fn open_outage(&mut self, node: NodeId, kind: OutageKind, fault: Option<u32>) {
        self.observed.disturb(node, self.kernel.now());
        self.open_kinds[node.index()].push(kind);
        if let Some(instance) = self.scenario.instance_on(node) {
            self.observed.outages[instance.index()].push(Outage {
                kind,
                began: self.kernel.now(),
                ended: None,
                fault,
            });
        }
    }

    /// Every open outage on `node` whose kind matches ends now.
    fn close_outages(&mut self, node: NodeId, matches: impl Fn(OutageKind) -> bool) {
        let open = &mut self.open_kinds[node.index()];
        let mut closed = Vec::new();
        open.retain(|&k| {
            let close = matches(k);
            if close {
                closed.push(k);
            }
            !close
        });
        for kind in closed {
            self.end_outage(node, kind);
        }
    }

    /// One outage of `kind` on `node` ends now: its disturbance is
    /// restored and its record (the newest open one of that kind) closed.
    fn end_outage(&mut self, node: NodeId, kind: OutageKind) {
        let now = self.kernel.now();
        self.observed.restore(node, now);
        if let Some(instance) = self.scenario.instance_on(node)
            && let Some(o) = self.observed.outages[instance.index()]
                .iter_mut()
                .rev()
                .find(|o| o.kind == kind && o.ended.is_none())
        {
            o.ended = Some(now);
        }
    }

    fn has_open(&self, node: NodeId, kind: OutageKind) -> bool {
        self.open_kinds[node.index()].contains(&kind)
    }

    /// Boot the process on `node` if it is down and its host has power.
    /// Outages a fresh process ends (a crash, a hang, running out of
    /// memory) end. Returns whether it booted.
    fn start_process(&mut self, node: NodeId) -> bool {
        let slot = &self.nodes[node.index()];
        if slot.state != HostState::Down || slot.power_off > 0 {
            return false;
        }
        self.close_outages(node, OutageKind::ends_on_restart);
        self.boot(node);
        true
    }

    /// The process on `node` died: a restart or replacement the platform
    /// carried out for it has failed.
    fn died(&mut self, node: NodeId) {
        if let Some(instance) = self.scenario.instance_on(node)
            && let Some(id) = self.last_action[instance.index()].take()
        {
            self.action_failed(id, Some(instance), FailReason::DiedAgain);
        }
    }

    fn pause(&mut self, node: NodeId, fault: Option<u32>) {
        if self.nodes[node.index()].state == HostState::Up {
            self.nodes[node.index()].state = HostState::Paused;
            self.open_outage(node, OutageKind::Pause, fault);
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
        self.close_outages(node, |k| k == OutageKind::Pause);
        for (from, message) in held {
            self.kernel.schedule(self.kernel.now(), Event::Deliver { from, to: node, message });
        }
        self.drain(node); // reschedules the timer from the machine's deadline
    }

    fn fault_start(&mut self, index: usize) {
        let fault = self.plan[index].clone();
        let id = Some(index as u32);
        let now = self.kernel.now();
        self.observed.faults[index].began = Some(now);
        match &fault.action {
            FaultAction::Crash(targets) => targets.iter().for_each(|&n| self.crash(n, OutageKind::Crash, id)),
            FaultAction::Restart(targets) => targets.iter().for_each(|&n| {
                self.start_process(n);
            }),
            FaultAction::Pause(targets) => targets.iter().for_each(|&n| self.pause(n, id)),
            FaultAction::Resume(targets) => targets.iter().for_each(|&n| self.resume(n)),
            FaultAction::Partition(spec) => {
                for n in fault.action.nodes() {
                    self.observed.disturb(n, now);
                }
                self.network.partition(index as u32, spec, now);
            }
            FaultAction::Heal => {
                let active: Vec<u32> = self.network.active_partitions().collect();
                for id in active {
                    self.request_heal(id);
                }
            }
            FaultAction::ClockSkew { targets, offset_ns, drift_ppm } => {
                for &n in targets {
                    self.nodes[n.index()].clock.skew(now, *offset_ns, *drift_ppm);
                    self.observed.disturb(n, now);
                    self.reschedule(n);
                }
            }
            FaultAction::Hang(_)
            | FaultAction::Slow { .. }
            | FaultAction::Errors { .. }
            | FaultAction::Flap { .. }
            | FaultAction::DiskFull(_)
            | FaultAction::Cpu { .. } => self.app_fault(index, &fault.action, true),
            FaultAction::HostCrash(targets) => {
                for &n in targets {
                    let slot = &mut self.nodes[n.index()];
                    if slot.state == HostState::Vacant {
                        continue;
                    }
                    slot.power_off += 1;
                    if slot.power_off > 1 {
                        continue;
                    }
                    if self.stop(n) == HostState::Paused {
                        self.close_outages(n, |k| k == OutageKind::Pause);
                    }
                    self.open_outage(n, OutageKind::HostCrash, id);
                    self.died(n);
                }
            }
            FaultAction::MemoryLeak { targets, exhausts_after } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.disturb(n, now);
                    let app = &mut self.apps[i.index()];
                    app.leaks.push(*exhausts_after);
                    // The running process starts leaking now.
                    app.started = now;
                    self.schedule_exit(n);
                }
            }
            FaultAction::CrashLoop { targets, after, survives_replace } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.disturb(n, now);
                    let app = &mut self.apps[i.index()];
                    app.loops.push((*after, *survives_replace, false));
                    app.started = now;
                    self.schedule_exit(n);
                }
            }
            FaultAction::Network { targets, latency, loss, duplicate } => {
                for &n in targets {
                    self.observed.disturb(n, now);
                }
                self.network.impair(index as u32, targets, *latency, *loss, *duplicate);
            }
        }
        if let Some(duration) = fault.duration {
            self.kernel.schedule(now + duration, Event::FaultEnd { fault: index as u32 });
        } else if matches!(
            fault.action,
            FaultAction::Crash(_)
                | FaultAction::Restart(_)
                | FaultAction::Pause(_)
                | FaultAction::Resume(_)
                | FaultAction::Heal
        ) {
            // Point-in-time actions end as they begin.
            self.observed.faults[index].ended = Some(now);
        }
    }

    fn fault_end(&mut self, index: usize) {
        let fault = self.plan[index].clone();
        let now = self.kernel.now();
        match &fault.action {
            FaultAction::Crash(targets) => targets.iter().for_each(|&n| {
                self.start_process(n);
            }),
            FaultAction::Pause(targets) => targets.iter().for_each(|&n| self.resume(n)),
            FaultAction::Partition(_) => {
                self.request_heal(index as u32);
                return; // `ended` is set when the heal takes effect
            }
            FaultAction::ClockSkew { targets, .. } => {
                for &n in targets {
                    // Back to true time and rate; a backward step stands still.
                    let clock = &mut self.nodes[n.index()].clock;
                    let ahead = clock.offset_ns(now);
                    let step = i64::try_from(-ahead).unwrap_or(i64::MIN);
                    clock.skew(now, step, 0);
                    // A clock stepped back stands still until true time
                    // catches up: the disturbance lasts until then.
                    let still = Duration::from_nanos(u64::try_from(ahead.max(0)).unwrap_or(u64::MAX));
                    self.observed.restore(n, now + still);
                    self.reschedule(n);
                }
            }
            FaultAction::Hang(_)
            | FaultAction::Slow { .. }
            | FaultAction::Errors { .. }
            | FaultAction::Flap { .. }
            | FaultAction::DiskFull(_)
            | FaultAction::Cpu { .. } => self.app_fault(index, &fault.action, false),
            FaultAction::HostCrash(targets) => {
                for &n in targets {
                    let slot = &mut self.nodes[n.index()];
                    if slot.power_off == 0 {
                        continue; // replaced meanwhile, or never powered off
                    }
                    slot.power_off -= 1;
                    if slot.power_off == 0 {
                        // Power is back: the host boots its process.
                        self.close_outages(n, |k| k == OutageKind::HostCrash);
                        self.start_process(n);
                    }
                }
            }
            FaultAction::MemoryLeak { targets, exhausts_after } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.restore(n, now);
                    let leaks = &mut self.apps[i.index()].leaks;
                    if let Some(k) = leaks.iter().position(|d| d == exhausts_after) {
                        leaks.remove(k);
                    }
                    // The fixed code runs again where the leak killed it.
                    if self.has_open(n, OutageKind::OutOfMemory) {
                        self.start_process(n);
                    }
                }
            }
            FaultAction::CrashLoop { targets, after, survives_replace } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.restore(n, now);
                    let app = &mut self.apps[i.index()];
                    if let Some(k) = app.loops.iter().position(|l| l.0 == *after && l.1 == *survives_replace)
                    {
                        app.loops.remove(k);
                    }
                    if app.looping().is_none() {
                        self.close_outages(n, |k| k == OutageKind::CrashLoop);
                        self.start_process(n);
                    }
                }
            }
            FaultAction::Network { targets, .. } => {
                self.network.unimpair(index as u32);
                for &n in targets {
                    self.observed.restore(n, now);
                }
            }
            FaultAction::Restart(_) | FaultAction::Resume(_) | FaultAction::Heal => {}
        }
        self.observed.faults[index].ended = Some(now);
    }

    /// An application fault begins (`begin`) or ends on each of its
    /// target instances: the application changes and its outage opens or
    /// closes.
    fn app_fault(&mut self, index: usize, action: &FaultAction, begin: bool) {
        let Some(targets) = action.node_lists().first().map(|l| l.to_vec()) else { return };
        let now = self.kernel.now();
        for n in targets {
            let Some(i) = self.scenario.instance_on(n) else { continue };
            let app = &mut self.apps[i.index()];
            if begin {
                let kind = app.begin(action, now);
                // A standby slot takes the fault when provisioned, but no
                // outage: nothing runs there yet.
                if self.nodes[n.index()].state != HostState::Vacant {
                    self.open_outage(n, kind, Some(index as u32));
                }
            } else {
                let kind = app.end(action);
                // A restart may have ended a hang already.
                if self.has_open(n, kind) {
                    self.close_outages_once(n, kind);
                }
            }
        }
    }

    /// The newest open outage of `kind` on `node` ends (nested faults of
    /// one kind end one at a time).
    fn close_outages_once(&mut self, node: NodeId, kind: OutageKind) {
        let open = &mut self.open_kinds[node.index()];
        if let Some(k) = open.iter().rposition(|&k| k == kind) {
            open.remove(k);
            self.end_outage(node, kind);
        }
    }

    /// Queue the death of the running process on `node` by its leak or
    /// crash loop, whichever comes first.
    fn schedule_exit(&mut self, node: NodeId) {
        let Some(i) = self.scenario.instance_on(node) else { return };
        let slot = &self.nodes[node.index()];
        if slot.state != HostState::Up && slot.state != HostState::Paused {
            return;
        }
        let app = &self.apps[i.index()];
        let after = [app.looping(), app.leak()].into_iter().flatten().min();
        if let Some(after) = after {
            self.kernel
                .schedule(app.started + after, Event::ProcessExit { node, incarnation: slot.incarnation });
        }
    }

    /// A process may die by itself now.
    fn process_exit(&mut self, node: NodeId, incarnation: u64) {
        let slot = &self.nodes[node.index()];
        if slot.incarnation != incarnation || slot.state != HostState::Up {
            return; // a newer process runs, or this one is already gone
        }
        let Some(i) = self.scenario.instance_on(node) else { return };
        let app = &self.apps[i.index()];
        let age = self.kernel.now() - app.started;
        if app.looping().is_some_and(|after| age >= after) {
            if self.has_open(node, OutageKind::CrashLoop) {
                // Still the same loop: the process dies, the outage goes on.
                self.stop(node);
                self.died(node);
            } else {
                let fault = self.fault_in_force(node, |a| matches!(a, FaultAction::CrashLoop { .. }));
                self.crash(node, OutageKind::CrashLoop, fault);
            }
        } else if app.leak().is_some_and(|leak| age >= leak) {
            let fault = self.fault_in_force(node, |a| matches!(a, FaultAction::MemoryLeak { .. }));
            self.crash(node, OutageKind::OutOfMemory, fault);
        }
    }

    /// The newest fault occurrence in force on `node` whose action matches.
    fn fault_in_force(&self, node: NodeId, matches: impl Fn(&FaultAction) -> bool) -> Option<u32> {
        (0..self.plan.len()).rev().find_map(|k| {
            let span = &self.observed.faults[k];
            let fault = &self.plan[k];
            (span.began.is_some()
                && span.ended.is_none()
                && matches(&fault.action)
                && fault.action.nodes().contains(&node))
            .then_some(k as u32)
        })
    }

    /// Carry out the recovery actions the control plane asked for: the
    /// simulated platform. A restart stops the process and boots it after
    /// `restart_delay`; a replacement boots a fresh process on a fresh host
    /// (clearing what the old host carried: no power, a full disk, a crash
    /// loop that does not survive replacement) after `replace_delay`; a
    /// scale-out provisions standby slots after `scale_out_delay` and
    /// registers them; a circuit changes whether the calling service's
    /// answers fail with its dependency. Success is the instance's return
    /// to health, which the control plane sees by itself; the platform
    /// reports only failures: nothing can start on a host without power,
    /// no standby slot is left, or the process dies again first.
    fn carry_out(&mut self) {
        let Some(recovery) = self.scenario.recovery.as_ref() else {
            self.asked.clear();
            return;
        };
        while !self.asked.is_empty() {
            let action = self.asked.remove(0);
            let now = self.kernel.now();
            match action.kind {
                ActionKind::Restart | ActionKind::Replace => {
                    let Some(i) = action.instance.filter(|i| i.index() < self.provisioned.len()) else {
                        continue;
                    };
                    let node = Scenario::node_of(i);
                    let replace = action.kind == ActionKind::Replace;
                    let slot = &self.nodes[node.index()];
                    if !replace && (slot.power_off > 0 || slot.state == HostState::Paused) {
                        self.action_failed(action.id, Some(i), FailReason::HostDown);
                        continue;
                    }
                    if slot.state == HostState::Vacant {
                        self.action_failed(action.id, Some(i), FailReason::NoCapacity);
                        continue;
                    }
                    self.last_action[i.index()] = None;
                    if self.stop(node) == HostState::Paused {
                        self.close_outages(node, |k| k == OutageKind::Pause);
                    }
                    self.platform_event(action.id, Some(i), PlatformStep::Stopped);
                    let delay = if replace { recovery.replace_delay } else { recovery.restart_delay };
                    self.job(action, vec![i], now + delay);
                }
                ActionKind::ScaleOut { by } => {
                    let slots: Vec<InstanceId> = self
                        .scenario
                        .instances_of(action.service.index())
                        .map(InstanceId)
                        .filter(|i| !self.provisioned[i.index()])
                        .take(by as usize)
                        .collect();
                    if slots.is_empty() {
                        self.action_failed(action.id, None, FailReason::NoCapacity);
                        continue;
                    }
                    for i in &slots {
                        self.provisioned[i.index()] = true; // reserved
                    }
                    self.job(action, slots, now + recovery.scale_out_delay);
                }
                ActionKind::OpenCircuit { to } => {
                    self.open_circuits.insert((action.service.index(), to.index()));
                }
                ActionKind::CloseCircuit { to } => {
                    self.open_circuits.remove(&(action.service.index(), to.index()));
                }
                ActionKind::HalfOpen { to } => {
                    // The trial call: does the dependency answer now?
                    let outcome = if self.serving(to.index()) { Outcome::Succeeded } else { Outcome::Failed };
                    self.report(action.id, outcome);
                }
                // Reroute is carried out by the control plane itself (it
                // decides routing); asking a human is for the record.
                _ => {}
            }
        }
    }

    /// Start carrying out `action`: its boots are due at `at`.
    fn job(&mut self, action: Action, boots: Vec<InstanceId>, at: Instant) {
        let slot = self.jobs.len() as u32;
        self.jobs.push(Some(Job { action, boots }));
        self.kernel.schedule(at, Event::Platform { slot });
    }

    /// A job's boots are due.
    fn platform_due(&mut self, slot: usize) {
        let Some(Job { action, boots }) = self.jobs.get_mut(slot).and_then(Option::take) else { return };
        for i in boots {
            let node = Scenario::node_of(i);
            match action.kind {
                ActionKind::Restart => {
                    if self.start_process(node) {
                        self.last_action[i.index()] = Some(action.id);
                        self.platform_event(action.id, Some(i), PlatformStep::Restarted);
                    } else if self.nodes[node.index()].state == HostState::Down {
                        self.action_failed(action.id, Some(i), FailReason::HostDown);
                    }
                }
                ActionKind::Replace => {
                    // A fresh host: powered, empty disk, true clock; the
                    // instance keeps its id and node (see ARCHITECTURE).
                    if self.stop(node) == HostState::Paused {
                        self.close_outages(node, |k| k == OutageKind::Pause);
                    }
                    self.nodes[node.index()].power_off = 0;
                    let app = &mut self.apps[i.index()];
                    app.disk_full = 0;
                    for l in &mut app.loops {
                        l.2 |= !l.1; // a loop that does not survive replacement ends
                    }
                    let looping = app.looping().is_some();
                    self.close_outages(node, |k| {
                        k.ends_on_replace() || (k == OutageKind::CrashLoop && !looping)
                    });
                    self.boot(node);
                    self.last_action[i.index()] = Some(action.id);
                    self.platform_event(action.id, Some(i), PlatformStep::Replaced);
                }
                ActionKind::ScaleOut { .. } => {
                    self.nodes[node.index()].state = HostState::Down;
                    self.boot(node);
                    let (service, _) = self.scenario.locate(i).expect("a slot of the scenario");
                    let request = RegisterRequest {
                        registration: Registration::new(
                            i,
                            self.scenario.services[service].name.clone(),
                            "unknown",
                        ),
                        node,
                        class: service,
                    };
                    let control = &mut self.nodes[Scenario::CONTROL.index()];
                    if control.state == HostState::Up {
                        let local = control.clock.local(self.kernel.now());
                        if let Some(Node::Control(c)) = control.machine.as_mut().map(Checked::get_mut) {
                            // Ids and classes come from the scenario: valid.
                            let _ = c.register(local, request);
                        }
                        self.drain(Scenario::CONTROL);
                    }
                    self.platform_event(action.id, Some(i), PlatformStep::Provisioned);
                }
                _ => {}
            }
        }
    }

    /// Whether service `service` can answer its callers: some instance is
    /// running, not hung, its disk not full, and each of its own
    /// dependencies serves in turn (or is isolated by an open circuit).
    /// The loader rejects dependency cycles, so the recursion ends.
    fn serving(&self, service: usize) -> bool {
        let Some(s) = self.scenario.services.get(service) else { return false };
        let some_up = self.scenario.instances_of(service).any(|i| {
            let app = &self.apps[i as usize];
            self.nodes[Scenario::node_of(InstanceId(i)).index()].state == HostState::Up
                && app.hung == 0
                && app.disk_full == 0
        });
        some_up && s.depends_on.iter().all(|&d| self.open_circuits.contains(&(service, d)) || self.serving(d))
    }

    fn platform_event(&mut self, action: ActionId, instance: Option<InstanceId>, step: PlatformStep) {
        let event = PlatformEvent {
            at: self.kernel.now(),
            action,
            instance,
            step,
            after: self.observed.recovery.len(),
        };
        if let Some(out) = self.timeline.as_mut() {
            let who = instance
                .map_or_else(|| "-".to_string(), |i| self.names[Scenario::node_of(i).index()].clone());
            let _ = writeln!(out, "{} {:<14} platform {action}: {step}", self.kernel.now(), who);
        }
        self.observed.platform.push(event);
    }

    /// The platform could not carry out `id`: tell the coordinator.
    fn action_failed(&mut self, id: ActionId, instance: Option<InstanceId>, reason: FailReason) {
        self.platform_event(id, instance, PlatformStep::Failed(reason));
        self.report(id, Outcome::Failed);
    }

    /// Report an action's outcome to the control plane, if it runs.
    fn report(&mut self, id: ActionId, outcome: Outcome) {
        let control = &mut self.nodes[Scenario::CONTROL.index()];
        if control.state != HostState::Up {
            return; // the coordinator's timeout will count it
        }
        let local = control.clock.local(self.kernel.now());
        if let Some(Node::Control(c)) = control.machine.as_mut().map(Checked::get_mut) {
            c.recovery_outcome(local, id, outcome);
        }
        self.drain(Scenario::CONTROL);
    }

    /// Heal partition `id` now, or when its stability time allows.
    fn request_heal(&mut self, id: u32) {
        match self.network.heal_allowed_at(id) {
            Some(at) if at > self.kernel.now() => self.kernel.schedule(at, Event::Heal { partition: id }),
            Some(_) => self.heal(id),
            None => {}
        }
    }

    fn heal(&mut self, id: u32) {
        if self.network.heal(id) {
            self.observed.faults[id as usize].ended = Some(self.kernel.now());
            let action = &self.plan[id as usize].action;
            if matches!(action, FaultAction::Partition(_)) {
                for n in action.nodes() {
                    self.observed.restore(n, self.kernel.now());
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
        let now = self.kernel.now();
        let name = |n: NodeId| self.names.get(n.index()).map_or("?", String::as_str);
        let line = match *event {
            Event::Deliver { from, to, message } => {
                format!("{now} {:<14} recv from {} {message:?}", name(to), name(from))
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
