//! A scenario after validation: every name resolved, every duration parsed,
//! every rule checked. The simulator consumes only this; the TOML shape lives
//! in [`super::load`].
//!
//! Nodes are numbered densely: node 0 is the control node, then every
//! instance of every service in file order (`checkout/0`, `checkout/1`, …,
//! `payments/0`, …). Instance `i` of the fleet (0-based, across services) is
//! node `i + 1` and has `InstanceId(i)`.

use vigil_core::health::InstanceHealthConfig;
use vigil_core::recovery::{RecoveryConfig, ServiceSpec};
use vigil_core::{Duration, InstanceId, NodeId, ServiceId};

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `name` from the file.
    pub name: String,
    /// Optional free text.
    pub description: Option<String>,
    /// How much simulated time to run.
    pub duration: Duration,
    /// Default seed; `--seed` overrides.
    pub seed: u64,
    /// Step budget: a run processing more events than this fails.
    pub max_events: u64,
    /// Memory budget: a run with more events pending at once (queued, or
    /// held by paused hosts) than this halts and fails.
    pub max_pending_events: u64,
    /// Network model.
    pub network: NetworkConfig,
    /// The fleet, in file order.
    pub services: Vec<Service>,
    /// Faults, sorted by `at` (stable: file order among equal times).
    pub faults: Vec<Fault>,
    /// Client traffic, if any: calls made through a client node.
    pub load: Option<Load>,
    /// Automated recovery, if any: the control node runs the recovery
    /// coordinator and the simulator carries out its actions.
    pub recovery: Option<Recovery>,
    /// What must hold.
    pub expect: Expectations,
}

/// Automated recovery: the coordinator's settings and how long the
/// simulated platform takes to carry out each action.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    /// The coordinator's configuration. Its `services` list is derived from
    /// the fleet (each [`Service`]'s `policy` and `depends_on`), one entry
    /// per service in file order.
    pub config: RecoveryConfig,
    /// How long a restarted process takes to boot (default 2 s).
    pub restart_delay: Duration,
    /// How long a replacement takes to be provisioned on a fresh host and
    /// boot (default 10 s).
    pub replace_delay: Duration,
    /// How long a scaled-out instance takes to be provisioned and boot
    /// (default 10 s).
    pub scale_out_delay: Duration,
}

/// One service of the fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Unique name: `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// Instance slots, at least 1: the instances running at the start and
    /// the `standby` slots after them (the file's `max_instances`).
    pub instances: u32,
    /// Liveness settings of its instances.
    pub heartbeat: HeartbeatConfig,
    /// How long an instance takes to serve one request or probe when well.
    pub service_time: LatencyModel,
    /// Active health checks run by the control node's monitor; `None`:
    /// heartbeat liveness only.
    pub health: Option<InstanceHealthConfig>,
    /// Zones its instances are spread over, round robin (instance `i` is in
    /// `zones[i % len]`); empty: no zones.
    pub zones: Vec<String>,
    /// Most requests one instance serves at once; more are answered at once
    /// with an error (overloaded). `None`: unlimited.
    pub capacity: Option<u32>,
    /// Of `instances`, how many of the last are standby slots: not running
    /// at the start, provisioned only by a recovery scale-out. In the file,
    /// `max_instances - instances`.
    pub standby: u32,
    /// CPU cores of each instance: with more requests in service than
    /// cores, each is slowed in proportion (processor sharing). `None`:
    /// never CPU-bound.
    pub cores: Option<u32>,
    /// The recovery policy's name (a key of `[recovery.policies]`); `None`:
    /// the default policy.
    pub policy: Option<String>,
    /// Indexes of the services this one calls. Each request to one of its
    /// instances calls every dependency (through that instance's own
    /// client of it) over the simulated network, and fails if a call fails:
    /// the cascade recovery must see through.
    pub depends_on: Vec<usize>,
    /// Mean calls per request on each `depends_on` edge, in the same order
    /// (the file's `calls`; 1 where it says nothing): `floor(r)` calls
    /// always, one more with probability `frac(r)`. Each in `(0, 100]`.
    pub calls_per_request: Vec<f64>,
    /// How long one call to a dependency may wait for its answer (the
    /// file's `call_timeout`); `None`: the `[load]` timeout if there is
    /// load, else 1 s.
    pub call_timeout: Option<Duration>,
}

/// Default timeout of a call between services without `[load]` or
/// `call_timeout`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(1);

impl Service {
    /// The mean number of calls per request on the edge to service
    /// `dependency` (1 unless `calls` says otherwise; 0 if it is not one
    /// of `depends_on`).
    pub fn call_ratio(&self, dependency: usize) -> f64 {
        match self.depends_on.iter().position(|&d| d == dependency) {
            Some(k) => self.calls_per_request.get(k).copied().unwrap_or(1.0),
            None => 0.0,
        }
    }
}

/// Default service time: uniform between 2 and 10 ms.
pub const DEFAULT_SERVICE_TIME: LatencyModel =
    LatencyModel::Uniform { min: Duration::from_millis(2), max: Duration::from_millis(10) };

/// Traffic from clients, measured as clients see it.
///
/// One client node per target service, each calling only its service's
/// instances; every arrival goes to one of them, drawn by share.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// The services called, in file order: at least one, each service at
    /// most once, shares summing to 1.
    pub targets: Vec<LoadTarget>,
    /// Mean calls per second, over every target together.
    pub rate_per_sec: f64,
    /// How calls are spaced.
    pub shape: LoadShape,
    /// How long a call waits for an answer before it counts as failed.
    pub timeout: Duration,
    /// When the first call is made: the fleet's warm-up (default 5 s), so
    /// a cold start is not counted against availability.
    pub start: Duration,
    /// The client balancer's panic threshold in percent (default 50; 0
    /// disables panic mode).
    pub panic_threshold_percent: u32,
    /// The client balancer's `always_eject_one_host` (default false, as
    /// Envoy's): let outlier ejection take one instance out even when its
    /// 10 % cap rounds down to none, as it does for fewer than 10.
    pub always_eject_one_host: bool,
}

/// One service the load calls, and its share of the calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadTarget {
    /// Index of the service called.
    pub service: usize,
    /// Share of the calls, in `(0, 1]`.
    pub share: f64,
}

impl Load {
    /// Whether service `service` is one of the targets.
    pub fn calls(&self, service: usize) -> bool {
        self.targets.iter().any(|t| t.service == service)
    }

    /// The target an arrival goes to, given a draw `u` in `[0, 1)`: the
    /// first whose cumulative share exceeds `u` (the last, for rounding).
    pub fn pick(&self, u: f64) -> usize {
        let mut cumulative = 0.0;
        for (k, t) in self.targets.iter().enumerate() {
            cumulative += t.share;
            if u < cumulative {
                return k;
            }
        }
        self.targets.len().saturating_sub(1)
    }
}

/// Arrival process of calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadShape {
    /// Evenly spaced.
    Constant,
    /// Poisson arrivals: exponential gaps with the given mean rate.
    Poisson,
}

/// Heartbeat and detector timing for a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between beats (default 1 s).
    pub interval: Duration,
    /// Silence before `Suspect` (default 3 s); greater than `interval`.
    pub suspect_after: Duration,
    /// Silence before `Dead` (default 5 s); at least `suspect_after`.
    pub dead_after: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: Duration::from_secs(1),
            suspect_after: Duration::from_secs(3),
            dead_after: Duration::from_secs(5),
        }
    }
}

/// The network between every pair of nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// One-way delay of each message.
    pub latency: LatencyModel,
    /// Probability a message is lost, in `[0, 1]`.
    pub loss: f64,
    /// Probability a message is delivered twice, in `[0, 1]`.
    pub duplicate: f64,
    /// Probability a message is held back by up to `reorder_delay` extra, so
    /// later messages overtake it, in `[0, 1]`.
    pub reorder: f64,
    /// Largest extra delay of a reordered message.
    pub reorder_delay: Duration,
    /// Least time a partition lasts once begun: a heal that comes sooner is
    /// deferred until then (TigerBeetle's fault stability).
    pub stability: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency: LatencyModel::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(5) },
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            stability: Duration::ZERO,
        }
    }
}

/// A one-way delay distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LatencyModel {
    /// Always `value`.
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Least delay.
        min: Duration,
        /// Greatest delay.
        max: Duration,
    },
    /// `min` plus an exponential tail; the overall mean is `mean` (> `min`).
    Exponential {
        /// Least delay.
        min: Duration,
        /// Mean delay.
        mean: Duration,
    },
    /// Heavy tail: Pareto with scale `min` and shape `alpha`, capped at `max`.
    Pareto {
        /// Least delay (the Pareto scale).
        min: Duration,
        /// Shape: smaller is heavier; must be > 0.
        alpha: f64,
        /// Cap on any single delay.
        max: Duration,
    },
}

impl LatencyModel {
    /// The least delay the model can produce.
    pub fn min(&self) -> Duration {
        match *self {
            LatencyModel::Fixed(v) => v,
            LatencyModel::Uniform { min, .. }
            | LatencyModel::Exponential { min, .. }
            | LatencyModel::Pareto { min, .. } => min,
        }
    }
}

/// A scheduled fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// When it begins, from the start of the run.
    pub at: Duration,
    /// How long it lasts; when set, the simulator reverts it at `at +
    /// duration` (restart after crash, resume after pause, heal after
    /// partition, clock back after skew).
    pub duration: Option<Duration>,
    /// What happens.
    pub action: FaultAction,
    /// Which of the action's targets it hits (Chaos Mesh's modes), drawn
    /// from the run's seed: every target, a fixed count or a share. Only
    /// for actions with one target list.
    pub pick: Pick,
    /// Repeat every `every`, from `at` until the run ends; each occurrence
    /// draws its own targets and lasts `duration`.
    pub every: Option<Duration>,
    /// Begin at a time drawn from the seed in `[at, at + within]` (for each
    /// occurrence, when repeated).
    pub within: Option<Duration>,
    /// 1-based line of the fault in its file, for reports (0 if built in code).
    pub line: usize,
}

/// Which of a fault's targets it hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pick {
    /// Every target (the default).
    #[default]
    All,
    /// This many, chosen by the seed (all, when fewer).
    Count(u32),
    /// This share in percent (1..=100), rounded down but at least one,
    /// chosen by the seed.
    Percent(u32),
}

impl Pick {
    /// How many of `n` targets it hits.
    pub fn count_of(self, n: usize) -> usize {
        match self {
            Pick::All => n,
            Pick::Count(k) => (k as usize).min(n),
            Pick::Percent(p) => (n * p as usize / 100).max(1).min(n),
        }
    }
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Hosts die; volatile state is lost; messages to them are dropped.
    Crash(Vec<NodeId>),
    /// Crashed hosts boot again with a fresh machine from their config.
    Restart(Vec<NodeId>),
    /// Hosts freeze: no timers fire, arriving messages wait.
    Pause(Vec<NodeId>),
    /// Paused hosts continue; waiting messages are delivered.
    Resume(Vec<NodeId>),
    /// The network splits.
    Partition(Partition),
    /// Every partition ends (after its stability time).
    Heal,
    /// The application stops answering requests and probes (the host and
    /// its heartbeat agent keep running: a deadlock, not a crash).
    Hang(Vec<NodeId>),
    /// The application answers `extra` later than usual.
    Slow {
        /// Affected instances.
        targets: Vec<NodeId>,
        /// Added to every service time.
        extra: Duration,
    },
    /// The application answers a share `rate` of requests and probes with
    /// an error.
    Errors {
        /// Affected instances.
        targets: Vec<NodeId>,
        /// Probability of an error answer, in `[0, 1]`.
        rate: f64,
    },
    /// The application alternates: `period` healthy, `period` failing every
    /// request and probe, and so on.
    Flap {
        /// Affected instances.
        targets: Vec<NodeId>,
        /// Length of each half-cycle.
        period: Duration,
    },
    /// Whole hosts lose power (a zone outage, say): the process dies and
    /// nothing answers, not even a refusal. A restart cannot help while the
    /// host is down; a replacement moves the instance to a fresh host. At
    /// the fault's end the hosts come back and boot.
    HostCrash(Vec<NodeId>),
    /// The process leaks memory: `exhausts_after` after each start it runs
    /// out and is killed (as by the OOM killer), slowing down on the way
    /// (garbage-collection pressure). A restart or replacement starts it
    /// afresh, leaking again while the fault lasts.
    MemoryLeak {
        /// Affected instances.
        targets: Vec<NodeId>,
        /// From start to exhaustion.
        exhausts_after: Duration,
    },
    /// Every request and probe costs `factor` times the CPU (a costlier
    /// traffic mix, a noisy neighbour): with [`Service::cores`] the
    /// instances saturate under load, and more instances relieve them.
    Cpu {
        /// Affected instances (target a service to include its standby
        /// slots: the cost is the traffic's, not the host's).
        targets: Vec<NodeId>,
        /// CPU cost multiplier, at least 1.
        factor: f64,
    },
    /// The host's disk fills up: every request and probe fails. It survives
    /// a restart (the disk is still full); a replacement on a fresh host
    /// clears it.
    DiskFull(Vec<NodeId>),
    /// The process crashes `after` each start (a bad config, a poison
    /// message). A restart does not help; a replacement does unless
    /// `survives_replace` (then only a human can).
    CrashLoop {
        /// Affected instances.
        targets: Vec<NodeId>,
        /// From each start to the crash.
        after: Duration,
        /// Whether a fresh instance crash-loops too.
        survives_replace: bool,
    },
    /// Messages from or to the targets are delayed by `latency` more, lost
    /// with probability `loss`, duplicated with probability `duplicate`.
    Network {
        /// Affected nodes.
        targets: Vec<NodeId>,
        /// Added one-way delay.
        latency: Duration,
        /// Extra loss probability, in `[0, 1]`.
        loss: f64,
        /// Extra duplication probability, in `[0, 1]`.
        duplicate: f64,
    },
    /// Hosts' clocks jump by `offset_ns` (negative: the monotonic clock
    /// stands still until real time catches up) and run `drift_ppm` parts
    /// per million fast (negative: slow).
    ClockSkew {
        /// Affected hosts.
        targets: Vec<NodeId>,
        /// Step of the clock, in nanoseconds.
        offset_ns: i64,
        /// Rate error, in parts per million.
        drift_ppm: i64,
    },
    /// An attacker on the network, outside the fleet and without its key,
    /// sends `rate` frames a second while the fault lasts: heartbeats
    /// forged in the targets' names (next sequence numbers, a tag it
    /// cannot compute, some under a key id no one holds), and replays of
    /// genuine frames it captured, to their destination and to others.
    /// Every one must be dropped by its receiver; nothing else changes.
    Forge {
        /// The instances whose heartbeats it forges.
        targets: Vec<NodeId>,
        /// Frames sent per second (mean of Poisson arrivals).
        rate: f64,
        /// What it sends.
        mode: ForgeMode,
    },
}

/// What a `forge` fault's attacker sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForgeMode {
    /// Forged heartbeats only.
    Forge,
    /// Replays of captured frames only.
    Replay,
    /// Both, half each (the default).
    #[default]
    Both,
}

impl ForgeMode {
    /// Every mode, with its name in files and reports.
    pub const ALL: [(ForgeMode, &'static str); 3] =
        [(ForgeMode::Forge, "forge"), (ForgeMode::Replay, "replay"), (ForgeMode::Both, "both")];

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        ForgeMode::ALL.iter().find(|(m, _)| *m == self).map_or("?", |(_, n)| n)
    }
}

impl FaultAction {
    /// Each list of nodes the fault names, in declaration order (a
    /// partition's groups, or its `from` and `to`, are separate lists).
    pub fn node_lists(&self) -> Vec<&Vec<NodeId>> {
        match self {
            FaultAction::Crash(n)
            | FaultAction::Restart(n)
            | FaultAction::Pause(n)
            | FaultAction::Resume(n)
            | FaultAction::Hang(n)
            | FaultAction::Slow { targets: n, .. }
            | FaultAction::Errors { targets: n, .. }
            | FaultAction::Flap { targets: n, .. }
            | FaultAction::ClockSkew { targets: n, .. }
            | FaultAction::HostCrash(n)
            | FaultAction::MemoryLeak { targets: n, .. }
            | FaultAction::Cpu { targets: n, .. }
            | FaultAction::DiskFull(n)
            | FaultAction::CrashLoop { targets: n, .. }
            | FaultAction::Network { targets: n, .. }
            | FaultAction::Forge { targets: n, .. }
            | FaultAction::Partition(Partition::Isolate(n)) => vec![n],
            FaultAction::Partition(Partition::Groups(groups)) => groups.iter().collect(),
            FaultAction::Partition(Partition::OneWay { from, to }) => vec![from, to],
            FaultAction::Heal => Vec::new(),
        }
    }

    /// The one target list of the action, mutable, to pick from; `None` for
    /// partitions with several lists and for `heal`.
    pub fn targets_mut(&mut self) -> Option<&mut Vec<NodeId>> {
        match self {
            FaultAction::Crash(n)
            | FaultAction::Restart(n)
            | FaultAction::Pause(n)
            | FaultAction::Resume(n)
            | FaultAction::Hang(n)
            | FaultAction::Slow { targets: n, .. }
            | FaultAction::Errors { targets: n, .. }
            | FaultAction::Flap { targets: n, .. }
            | FaultAction::ClockSkew { targets: n, .. }
            | FaultAction::HostCrash(n)
            | FaultAction::MemoryLeak { targets: n, .. }
            | FaultAction::Cpu { targets: n, .. }
            | FaultAction::DiskFull(n)
            | FaultAction::CrashLoop { targets: n, .. }
            | FaultAction::Network { targets: n, .. }
            | FaultAction::Forge { targets: n, .. }
            | FaultAction::Partition(Partition::Isolate(n)) => Some(n),
            FaultAction::Partition(_) | FaultAction::Heal => None,
        }
    }

    /// Every node the fault names, sorted, each once.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.node_lists().into_iter().flatten().copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }
}

/// Which messages a partition blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Nodes in different groups cannot reach each other, either way. Nodes
    /// in no group are unaffected.
    Groups(Vec<Vec<NodeId>>),
    /// Messages from `from` to `to` are dropped; the reverse direction works.
    OneWay {
        /// Senders whose messages are dropped.
        from: Vec<NodeId>,
        /// Receivers that do not get them.
        to: Vec<NodeId>,
    },
    /// The nodes can reach no one and no one can reach them.
    Isolate(Vec<NodeId>),
}

/// What must hold for a run to pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expectations {
    /// Every instance whose host crashes or is paused, and stays so at least
    /// this long, is declared dead within this bound of the outage's start.
    pub detected_within: Option<Duration>,
    /// No instance is declared dead while no fault touches it (a fault's
    /// window runs from its start to its end plus the instance's
    /// `dead_after`).
    pub no_false_dead: bool,
    /// At the end of the run every running instance is `Alive` in the
    /// detector's view (the system converged after the faults).
    pub alive_at_end: bool,
    /// Least share of client calls that succeed, in `[0, 1]` (needs
    /// `[load]`), for each targeted service (so over them all too). Calls
    /// still in flight when the run ends are not counted.
    pub availability: Option<f64>,
    /// Every detected outage is classified as a failure type its kind can
    /// show (a hang as unresponsive, errors as failed or degraded, …).
    pub failure_types: bool,
    /// Every detected outage that lasts sees a recovery action on its
    /// instance (or a scale-out of its service) within this bound of its
    /// detection.
    pub recovery_started_within: Option<Duration>,
    /// Every outage of an instance under recovery is over (the instance
    /// healthy again) within this bound of its start.
    pub restored_within: Option<Duration>,
    /// Never more recovery actions in flight at once.
    pub max_concurrent_recoveries: Option<u32>,
    /// Restarts and replacements only hit instances with an outage of their
    /// own: none for an observer's partition, none for dependents of a
    /// broken dependency.
    pub no_restart_of_healthy_instances: bool,
    /// At most this many client calls fail (error, refusal, timeout or no
    /// endpoint); needs `[load]`.
    pub max_lost_requests: Option<u64>,
    /// Each of these actions is taken at least once (a ladder's escalation,
    /// say).
    pub actions_taken: Vec<ActionClass>,
    /// The `forge` faults' attackers sent frames, receivers checked some,
    /// and none was accepted (needs a `forge` fault).
    pub forged_frames_dropped: bool,
}

/// A kind of recovery action, as expectations and reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionClass {
    /// Restart in place.
    Restart,
    /// Replace with a fresh instance.
    Replace,
    /// Out of rotation until healthy.
    Reroute,
    /// Add instances.
    ScaleOut,
    /// Open a circuit breaker.
    OpenCircuit,
    /// Ask a human.
    AskHuman,
}

impl ActionClass {
    /// Every class, with its name in files and reports.
    pub const ALL: [(ActionClass, &'static str); 6] = [
        (ActionClass::Restart, "restart"),
        (ActionClass::Replace, "replace"),
        (ActionClass::Reroute, "reroute"),
        (ActionClass::ScaleOut, "scale_out"),
        (ActionClass::OpenCircuit, "open_circuit"),
        (ActionClass::AskHuman, "ask_human"),
    ];

    /// Its name in files and reports.
    pub fn name(self) -> &'static str {
        ActionClass::ALL.iter().find(|(c, _)| *c == self).map_or("?", |(_, n)| n)
    }
}

/// The services as recovery sees them: one per service in order, with its
/// policy and dependencies. The file has no such list; the loader, the
/// writer and the shrinker all derive it here.
pub fn recovery_services_of(services: &[Service]) -> Vec<ServiceSpec> {
    services
        .iter()
        .enumerate()
        .map(|(i, s)| ServiceSpec {
            // At most MAX_SERVICES services under recovery.
            id: ServiceId(i as u32),
            policy: s.policy.clone(),
            depends_on: s.depends_on.iter().map(|&d| ServiceId(d as u32)).collect(),
        })
        .collect()
}

impl Scenario {
    /// The kernel benchmark's workload: `instances` instances of one
    /// service heartbeating every second to the control node for
    /// `duration`, default network, no faults, no load, no expectations,
    /// no step budget.
    pub fn heartbeat_fleet(instances: u32, duration: Duration) -> Scenario {
        Scenario {
            name: format!("heartbeat-fleet-{instances}"),
            description: None,
            duration,
            seed: 1,
            max_events: u64::MAX,
            max_pending_events: u64::MAX,
            network: NetworkConfig::default(),
            services: vec![Service {
                name: "svc".into(),
                instances,
                heartbeat: HeartbeatConfig::default(),
                service_time: DEFAULT_SERVICE_TIME,
                health: None,
                zones: Vec::new(),
                capacity: None,
                standby: 0,
                cores: None,
                policy: None,
                depends_on: Vec::new(),
                calls_per_request: Vec::new(),
                call_timeout: None,
            }],
            faults: Vec::new(),
            load: None,
            recovery: None,
            expect: Expectations::default(),
        }
    }

    /// The services as recovery sees them, derived from the fleet: one
    /// per service in file order, with its policy and dependencies.
    pub fn recovery_services(&self) -> Vec<ServiceSpec> {
        recovery_services_of(&self.services)
    }

    /// Make `recovery.config.services` agree with the fleet again (after
    /// services were dropped or renumbered).
    pub fn sync_recovery_services(&mut self) {
        let services = self.recovery_services();
        if let Some(r) = self.recovery.as_mut() {
            r.config.services = services;
        }
    }

    /// Whether fleet instance `instance` is a standby slot: not running
    /// until a scale-out provisions it.
    pub fn is_standby(&self, instance: InstanceId) -> bool {
        self.locate(instance).is_some_and(|(s, i)| {
            let service = &self.services[s];
            i >= service.instances - service.standby.min(service.instances)
        })
    }

    /// Fleet instance ids of service `service`'s slots (empty for an
    /// unknown service).
    pub fn instances_of(&self, service: usize) -> std::ops::Range<u32> {
        let Some(s) = self.services.get(service) else { return 0..0 };
        let first: u32 = self.services[..service].iter().map(|s| s.instances).sum();
        first..first + s.instances
    }

    /// Total instance count, standby slots included.
    pub fn instance_count(&self) -> u32 {
        self.services.iter().map(|s| s.instances).sum()
    }

    /// Node count: the control node, every instance, and one client node
    /// per load target.
    pub fn node_count(&self) -> u32 {
        1 + self.instance_count() + self.load.as_ref().map_or(0, |l| l.targets.len() as u32)
    }

    /// The client nodes, one per load target in target order, after every
    /// instance (empty without load).
    pub fn client_nodes(&self) -> std::ops::Range<u32> {
        let first = 1 + self.instance_count();
        first..first + self.load.as_ref().map_or(0, |l| l.targets.len() as u32)
    }

    /// Which load target the client on `node` calls, if it is a client node.
    pub fn client_target(&self, node: NodeId) -> Option<usize> {
        let clients = self.client_nodes();
        clients.contains(&node.0).then(|| (node.0 - clients.start) as usize)
    }

    /// The node of the control plane.
    pub const CONTROL: NodeId = NodeId(0);

    /// Node of fleet instance `instance`.
    pub fn node_of(instance: InstanceId) -> NodeId {
        NodeId(instance.0 + 1)
    }

    /// Fleet instance on `node`, or `None` for the control node. Meaningful
    /// only for nodes below `1 + instance_count()`; see
    /// [`Scenario::instance_on`] for a checked version.
    pub fn instance_of(node: NodeId) -> Option<InstanceId> {
        node.0.checked_sub(1).map(InstanceId)
    }

    /// Fleet instance on `node`, or `None` for the control and client nodes.
    pub fn instance_on(&self, node: NodeId) -> Option<InstanceId> {
        Self::instance_of(node).filter(|i| i.0 < self.instance_count())
    }

    /// The service index of fleet instance `instance`, and its index within
    /// the service.
    pub fn locate(&self, instance: InstanceId) -> Option<(usize, u32)> {
        let mut first = 0u32;
        for (s, service) in self.services.iter().enumerate() {
            if instance.0 < first + service.instances {
                return Some((s, instance.0 - first));
            }
            first += service.instances;
        }
        None
    }

    /// Zone of fleet instance `instance`, if its service has zones.
    pub fn zone_of(&self, instance: InstanceId) -> Option<&str> {
        let (s, i) = self.locate(instance)?;
        let zones = &self.services[s].zones;
        (!zones.is_empty()).then(|| zones[i as usize % zones.len()].as_str())
    }

    /// Display name of a node: `control` or `service/index`.
    pub fn node_name(&self, node: NodeId) -> String {
        match self.instance_on(node).and_then(|i| self.locate(i)) {
            Some((s, i)) => format!("{}/{}", self.services[s].name, i),
            None if node == Self::CONTROL => "control".to_string(),
            None => match (self.client_target(node), &self.load) {
                // One target: its client is just `client`, as before targets.
                (Some(_), Some(l)) if l.targets.len() == 1 => "client".to_string(),
                (Some(k), Some(l)) => {
                    let service = l.targets.get(k).and_then(|t| self.services.get(t.service));
                    format!("client:{}", service.map_or("?", |s| s.name.as_str()))
                }
                _ => format!("{node}"),
            },
        }
    }

    /// Every node's display name, indexed by node id.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.node_count()).map(|n| self.node_name(NodeId(n))).collect()
    }
}
