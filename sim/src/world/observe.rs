//! What a run observed: the record the checkers (`crate::check`), the
//! report and the replay read, and the world's bookkeeping of outages.
//!
//! The world writes it as things happen (a verdict published, a health
//! change, an outage beginning or ending, a platform step, a call ending);
//! nothing here is the machines' own opinion of how they did. Data flows
//! one way: the world records, the checkers judge, the report prints.

use hdrhistogram::Histogram;
use vigil_core::balance::BalanceEvent;
use vigil_core::client::{CallDone, CallOutcome};
use vigil_core::health::{HealthStatus, Liveness};
use vigil_core::recovery::{ActionId, RecoveryOutput};
use vigil_core::{InstanceId, Instant, NodeId};

use super::Simulation;

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
    /// Count one ended call.
    pub(super) fn record(&mut self, done: &CallDone) {
        self.total += 1;
        match done.outcome {
            CallOutcome::Ok => self.ok += 1,
            CallOutcome::Error => self.error += 1,
            CallOutcome::Refused => self.refused += 1,
            CallOutcome::Timeout => self.timeout += 1,
            CallOutcome::NoEndpoint => self.no_endpoint += 1,
        }
        let us = u64::try_from(done.latency.as_micros()).unwrap_or(u64::MAX);
        // Auto-resizing histogram: recording cannot fail for a u64.
        let _ = self.latency_us.record(us);
    }

    /// Calls that ended other than in success.
    pub fn lost(&self) -> u64 {
        self.total - self.ok
    }

    /// Share of ended calls that succeeded, if any ended.
    pub fn availability(&self) -> Option<f64> {
        (self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

/// Calls on one edge of the call graph (a service to one of its
/// dependencies), as the caller's clients saw them end. Not part of the
/// load's availability, which is the load's clients' alone.
#[derive(Clone, Debug)]
pub struct EdgeCalls {
    /// The calling service's index.
    pub caller: usize,
    /// The called service's index.
    pub dependency: usize,
    /// How the calls ended.
    pub calls: CallStats,
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
    pub(super) fn ends_on_restart(self) -> bool {
        matches!(self, OutageKind::Crash | OutageKind::Hang | OutageKind::OutOfMemory)
    }

    /// Whether a replacement on a fresh host ends it (besides what a
    /// restart ends; a crash loop only if it does not survive
    /// replacement, decided by the caller).
    pub(super) fn ends_on_replace(self) -> bool {
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
    /// Client calls, when the scenario has load: every targeted service's
    /// together (clients call nothing else).
    pub calls: CallStats,
    /// Client calls per load target, in the targets' order (a service's
    /// calls are its client's).
    pub calls_by_target: Vec<CallStats>,
    /// What the load clients' balancers reported, in order.
    pub balance: Vec<(Instant, BalanceEvent)>,
    /// Calls between services, one entry per `depends_on` edge in file
    /// order (each service's edges in its `depends_on` order).
    pub service_calls: Vec<EdgeCalls>,
    /// Per node: windows `[start, end]` during which some fault touched it
    /// (crashed, paused, partitioned or its clock skewed); `end` is `None`
    /// while it lasts to the end of the run.
    pub disturbed: Vec<Vec<(Instant, Option<Instant>)>>,
    /// What `forge` faults' attackers sent and what became of it (all
    /// zero without one). Deliberately no disturbance: an attack touches
    /// no node, so `no_false_dead` excuses nothing because of it.
    pub attack: super::AttackStats,
    depth: Vec<u32>,
}

impl Observations {
    /// Nothing observed yet, for `instances` instances on `nodes` nodes
    /// and `targets` load targets.
    pub(super) fn new(instances: usize, nodes: usize, targets: usize) -> Self {
        Observations {
            verdicts: Vec::new(),
            faults: Vec::new(),
            recovery: Vec::new(),
            platform: Vec::new(),
            max_in_flight: 0,
            outages: vec![Vec::new(); instances],
            monitor: Vec::new(),
            calls: CallStats::default(),
            calls_by_target: vec![CallStats::default(); targets],
            balance: Vec::new(),
            service_calls: Vec::new(),
            disturbed: vec![Vec::new(); nodes],
            attack: super::AttackStats::default(),
            depth: vec![0; nodes],
        }
    }

    pub(super) fn disturb(&mut self, node: NodeId, at: Instant) {
        let depth = &mut self.depth[node.index()];
        *depth += 1;
        if *depth == 1 {
            self.disturbed[node.index()].push((at, None));
        }
    }

    pub(super) fn restore(&mut self, node: NodeId, at: Instant) {
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

impl Simulation<'_> {
    /// An outage of `kind` begins on `node`: it is disturbed until the
    /// outage ends.
    pub(super) fn open_outage(&mut self, node: NodeId, kind: OutageKind, fault: Option<u32>) {
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
    pub(super) fn close_outages(&mut self, node: NodeId, matches: impl Fn(OutageKind) -> bool) {
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
    pub(super) fn end_outage(&mut self, node: NodeId, kind: OutageKind) {
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

    pub(super) fn has_open(&self, node: NodeId, kind: OutageKind) -> bool {
        self.open_kinds[node.index()].contains(&kind)
    }

    /// The newest open outage of `kind` on `node` ends (nested faults of
    /// one kind end one at a time).
    pub(super) fn close_outages_once(&mut self, node: NodeId, kind: OutageKind) {
        let open = &mut self.open_kinds[node.index()];
        if let Some(k) = open.iter().rposition(|&k| k == kind) {
            open.remove(k);
            self.end_outage(node, kind);
        }
    }
}
