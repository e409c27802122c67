//! Recovery: what to do about a failing instance, and when not to.
//!
//! The health monitor says an instance needs recovery
//! ([`HealthEvent::NeedsRecovery`]);
//! the [`RecoveryCoordinator`] decides what to do about it, and, as much,
//! what *not* to do: recovery that restarts a healthy fleet because its
//! observer is partitioned, or restarts every dependent of a broken
//! database, makes an incident worse.
//!
//! # Episodes
//!
//! A failure report opens an **episode** for the instance, identified by a
//! [`CorrelationId`] that every later decision, action and outcome carries:
//! detection → decision → action → outcome can be read back from the
//! outputs or from the `tracing` events (target `vigil::recovery`, field
//! `correlation`). The episode ends when the instance is healthy again (an
//! action's [`Outcome::Succeeded`], or a [`RecoveryInput::Healthy`] report)
//! or is deregistered. While it lasts, further failure reports of the
//! instance join it.
//!
//! An episode is in one phase at a time, an enum whose transitions consume
//! the old phase (`coordinator.rs`): **pending** (wants to act; maybe
//! withheld, with a [`HoldReason`]), **acting** (one action in flight,
//! answered by an outcome or its timeout), or **asked a human** (the ladder
//! is spent; nothing more is tried).
//!
//! # Strategies and ladders
//!
//! A [`Policy`] per kind of service gives a [`Ladder`] per [`FailureType`]:
//! rungs of [`Strategy`] (restart in place, replace, reroute out of
//! rotation, scale out) with a number of attempts each. A failed attempt
//! counts against its rung; a spent rung escalates to the next; past the
//! last, the coordinator asks a human ([`ActionKind::AskHuman`]). The
//! default: crashed → restart ×3 → replace; unresponsive → restart ×2 →
//! replace; degraded → reroute → scale out; crash-looping → replace ×2.
//! Isolating a failing dependency (circuit breakers) is a policy switch, see
//! below.
//!
//! # Coordination
//!
//! Before an action starts, in this order:
//!
//! 0. **Partition hold**: an instance the observer judged cut off rather
//!    than failed ([`RecoveryInput::Unreachable`]; the control plane judges
//!    by its clients' call reports) is taken out of rotation at once and
//!    held ([`HoldReason::Partitioned`]) until the judgment lapses or is
//!    withdrawn. It does not count for the storm guard, and an action in
//!    flight on it stops counting against the limits.
//! 1. **Storm guard** (`storm.rs`): if a large share of the fleet, or of the
//!    instance's service, is unhealthy at once, suspect the observer and
//!    hold. When the storm clears, held episodes wait `storm.settle` more,
//!    so the healthy reports of a reconnected monitor arrive first.
//! 2. **Dependencies** (`graph.rs`): if a service this one depends on
//!    (transitively) is impaired, the instance is held for the root cause,
//!    the deepest impaired dependency, which is recovered first; once it is
//!    no longer impaired, the dependents wait `dependency.grace` before
//!    acting, as most will heal by themselves. With
//!    [`Policy::isolate_dependencies`], a circuit breaker is opened from the
//!    service to the root cause (`circuit.rs`).
//! 3. **Backoff** (`backoff.rs`): exponential with full jitter between
//!    attempts on an instance; the first attempt after a quiet period is
//!    immediate.
//! 4. **Restart intensity** (`intensity.rs`): at most N restarts in a period
//!    per instance and per service (Erlang/OTP). A restart beyond it
//!    reclassifies the episode as [`FailureType::CrashLooping`] and follows
//!    that ladder, skipping restarts while the intensity is exceeded.
//! 5. **Limits**: at most [`Limits::max_concurrent`] actions in flight in
//!    total, and at most `max(1, ⌊instances × max_service_share_permille /
//!    1000⌋)` per service. A singleton service may always recover its one
//!    instance. Circuit-breaker actions do not count: they take nothing
//!    down.
//!
//! A withheld episode says why ([`DecisionKind::Withheld`]) once per change
//! of reason, and is reconsidered whenever a slot frees, a storm or
//! dependency clears, or its timer fires, oldest episode first.
//!
//! # Limits
//!
//! Instance ids below [`MAX_INSTANCES`], at most [`MAX_SERVICES`] services
//! and [`MAX_POLICIES`] policies, ladders of at most [`MAX_RUNGS`] rungs,
//! intensity windows of at most
//! [`MAX_INTENSITY_RESTARTS`] instants, at most one episode per instance
//! and one circuit per (service, dependency) pair. Undrained outputs are
//! capped at [`MAX_PENDING_OUTPUTS`]: beyond it decisions are dropped and
//! counted ([`RecoveryStats::decisions_dropped`]); actions never are (there
//! is at most one per episode or circuit per call).

/// Coverage marks: a rare branch records its name in test builds, and a
/// test asserts the branch was reached (TigerBeetle's `marks.zig`).
#[cfg(test)]
pub(crate) mod marks {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static HITS: RefCell<BTreeMap<&'static str, u64>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Record that the branch `name` ran.
    pub(crate) fn hit(name: &'static str) {
        HITS.with(|h| *h.borrow_mut().entry(name).or_insert(0) += 1);
    }

    /// How often `name` ran on this thread since the last take; resets it.
    pub(crate) fn take(name: &'static str) -> u64 {
        HITS.with(|h| h.borrow_mut().remove(name).unwrap_or(0))
    }
}

/// Record a coverage mark in test builds; nothing otherwise.
macro_rules! mark {
    ($name:literal) => {
        #[cfg(test)]
        $crate::recovery::marks::hit($name);
    };
}

mod backoff;
mod circuit;
mod coordinator;
mod error;
mod graph;
mod intensity;
mod ladder;
mod policy;
mod storm;
#[cfg(test)]
mod tests;

use core::fmt;
use std::collections::BTreeMap;

pub use backoff::BackoffConfig;
pub use circuit::CircuitConfig;
pub use coordinator::{EpisodePhase, EpisodeView, INTERIM_REROUTE, RecoveryCoordinator, RecoveryStats};
pub use error::{RecoveryConfigError, RecoveryError};
pub use intensity::{Intensity, MAX_INTENSITY_RESTARTS};
pub use ladder::{Ladder, Position, Rung};
pub use policy::Policy;
pub use storm::{StormConfig, StormScope};

use crate::health::{HealthEvent, HealthStatus};
use crate::id::{InstanceId, ServiceId};
use crate::time::{Duration, Instant};

/// Instance ids must be below this (the coordinator's dense table).
pub const MAX_INSTANCES: u32 = 1 << 20;
/// Most services a configuration declares.
pub const MAX_SERVICES: usize = 4096;
/// Most named policies.
pub const MAX_POLICIES: usize = 256;
/// Most rungs in a ladder.
pub const MAX_RUNGS: usize = 8;
/// Most undrained outputs kept before decisions are dropped.
pub const MAX_PENDING_OUTPUTS: usize = 1 << 16;

/// Ties together everything about one recovery episode (or one circuit
/// breaker): its detection, decisions, actions and their outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct CorrelationId(pub u64);

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rec#{}", self.0)
    }
}

/// One action of an episode: its correlation id and attempt number (from
/// 1). Outcomes name it, so a late outcome of an earlier attempt is told
/// apart from the current one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ActionId {
    /// The episode or circuit.
    pub correlation: CorrelationId,
    /// The attempt, from 1.
    pub attempt: u32,
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.correlation, self.attempt)
    }
}

/// Why an instance needs recovery. Policies choose a ladder per type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureType {
    /// Crashed: refuses connections, answers errors, or failed to start
    /// (the monitor's [`HealthStatus::Failed`]).
    Crashed,
    /// Does not answer in time: hung, overloaded, or cut off
    /// ([`HealthStatus::Unresponsive`]).
    Unresponsive,
    /// Serves, but slowly or with errors ([`HealthStatus::Degraded`]).
    Degraded,
    /// Restarted more often than its restart intensity allows.
    CrashLooping,
}

impl FailureType {
    /// Every type, in declaration order.
    pub const ALL: [FailureType; 4] =
        [FailureType::Crashed, FailureType::Unresponsive, FailureType::Degraded, FailureType::CrashLooping];

    /// The failure type a monitor status means, if any (`Healthy` and
    /// `Unknown` are not failures).
    pub const fn from_status(status: HealthStatus) -> Option<FailureType> {
        match status {
            HealthStatus::Failed => Some(FailureType::Crashed),
            HealthStatus::Unresponsive => Some(FailureType::Unresponsive),
            HealthStatus::Degraded => Some(FailureType::Degraded),
            HealthStatus::Healthy | HealthStatus::Unknown => None,
        }
    }
}

impl fmt::Display for FailureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureType::Crashed => "crashed",
            FailureType::Unresponsive => "unresponsive",
            FailureType::Degraded => "degraded",
            FailureType::CrashLooping => "crash-looping",
        })
    }
}

/// A failing instance, as detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FailureReport {
    /// The instance.
    pub instance: InstanceId,
    /// Its service (must match its registration).
    pub service: ServiceId,
    /// How it fails.
    pub failure: FailureType,
}

impl FailureReport {
    /// The report a health event asks for: a
    /// [`NeedsRecovery`](HealthEvent::NeedsRecovery), or a status change to
    /// [`Degraded`](HealthStatus::Degraded) (still serving: recovery may
    /// reroute or scale out). Other events are not failures.
    pub fn from_health_event(event: &HealthEvent) -> Option<FailureReport> {
        match *event {
            HealthEvent::NeedsRecovery { instance, service, status, .. } => {
                FailureType::from_status(status).map(|failure| FailureReport { instance, service, failure })
            }
            HealthEvent::StatusChanged { instance, service, to: HealthStatus::Degraded, .. } => {
                Some(FailureReport { instance, service, failure: FailureType::Degraded })
            }
            _ => None,
        }
    }
}

/// A recovery strategy: one rung's action on the failing instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// Restart the instance in place. Counts against restart intensity.
    Restart,
    /// Start a fresh instance, then drain and deregister the old one.
    /// Report the outcome before deregistering the old instance, or the
    /// episode is recorded as abandoned rather than resolved.
    Replace,
    /// Take the instance out of rotation until it is healthy again. The
    /// action stays in flight (and holds its slot) until the instance is
    /// healthy, its outcome comes, or `action_timeout` passes, after which
    /// the ladder climbs (by default, to a scale-out).
    Reroute,
    /// The service is overloaded rather than broken: add `by` instances.
    /// At most one scale-out per service is in flight.
    ScaleOut {
        /// Instances to add (at least 1).
        by: u32,
    },
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Restart => f.write_str("restart"),
            Strategy::Replace => f.write_str("replace"),
            Strategy::Reroute => f.write_str("reroute"),
            Strategy::ScaleOut { by } => write!(f, "scale-out+{by}"),
        }
    }
}

/// What a driver is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// Restart the instance in place.
    Restart,
    /// Start a fresh instance of the service; drain and deregister the old.
    Replace,
    /// Take the instance out of rotation until it is healthy.
    Reroute,
    /// Add `by` instances to the service.
    ScaleOut {
        /// How many.
        by: u32,
    },
    /// Make the action's service fail fast on calls to `to`.
    OpenCircuit {
        /// The dependency isolated.
        to: ServiceId,
    },
    /// Let one trial call from the action's service through to `to`;
    /// report its result as the action's outcome.
    HalfOpen {
        /// The dependency probed.
        to: ServiceId,
    },
    /// Calls from the action's service to `to` flow again.
    CloseCircuit {
        /// The dependency.
        to: ServiceId,
    },
    /// Nothing more will be tried automatically: a human should look.
    AskHuman {
        /// Why.
        reason: HumanReason,
    },
}

impl From<Strategy> for ActionKind {
    fn from(strategy: Strategy) -> Self {
        match strategy {
            Strategy::Restart => ActionKind::Restart,
            Strategy::Replace => ActionKind::Replace,
            Strategy::Reroute => ActionKind::Reroute,
            Strategy::ScaleOut { by } => ActionKind::ScaleOut { by },
        }
    }
}

/// Why a human is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HumanReason {
    /// Every rung of the ladder for this failure type was tried.
    LadderExhausted {
        /// The failure type whose ladder is spent.
        failure: FailureType,
    },
}

/// An effect for the driver. Every action but `AskHuman` expects an
/// outcome ([`RecoveryInput::Outcome`]) by `action_timeout`, else it counts
/// as failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Action {
    /// Which episode and attempt; name it in the outcome.
    pub id: ActionId,
    /// The service acted on (for circuits: the calling side).
    pub service: ServiceId,
    /// The instance acted on; `None` for circuit actions.
    pub instance: Option<InstanceId>,
    /// What to do.
    pub kind: ActionKind,
    /// When it was decided.
    pub at: Instant,
}

/// How an action went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The instance is healthy again (or the probe call succeeded).
    Succeeded,
    /// The action failed, or the instance is still unhealthy after it.
    Failed,
}

/// Why an episode does not act now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HoldReason {
    /// The global limit of concurrent recoveries is reached.
    GlobalLimit {
        /// The limit.
        max: u32,
    },
    /// The service's share of concurrent recoveries is reached.
    ServiceLimit {
        /// The service's limit now.
        max: u32,
    },
    /// Backing off after a failed attempt or a quick recurrence.
    Backoff {
        /// When the next attempt may start.
        until: Instant,
    },
    /// A storm is suspected in this scope: the observer may be at fault.
    Storm {
        /// The scope in a storm.
        scope: StormScope,
    },
    /// A service this one depends on is impaired: it is recovered first.
    Dependency {
        /// The root cause.
        root: ServiceId,
    },
    /// A storm or an impaired dependency just cleared: give the instance
    /// time to heal by itself.
    Settling {
        /// When it may act.
        until: Instant,
    },
    /// A scale-out of the service is already in flight.
    ScaleOutInFlight,
    /// The observer cannot reach the instance, but the fault looks like
    /// the observer's rather than the instance's ([`Unreachability`] says
    /// why). Taken out of rotation at once; restarts wait until `until`,
    /// or until the judgment is withdrawn.
    Partitioned {
        /// When recovery acts anyway.
        until: Instant,
        /// Why the observer judges it unreachable rather than failed.
        why: Unreachability,
    },
}

/// Why an observer judges an instance unreachable rather than failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Unreachability {
    /// It went silent, and its clients, who would know, have not said yet.
    AwaitingClients,
    /// Silent to the observer, but its clients still reach it: cut off.
    CutOff,
    /// The observer misses heartbeats of many instances at once: the
    /// observer is deaf, not this instance failed.
    DeafObserver,
}

/// Whose restart intensity was exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntensityScope {
    /// The instance's own.
    Instance,
    /// Its service's.
    Service,
}

/// What the coordinator decided, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionKind {
    /// A failure report opened an episode.
    Detected {
        /// How the instance fails.
        failure: FailureType,
    },
    /// The episode's failure type changed (a worse report, or intensity
    /// exceeded); it starts at the bottom of the new type's ladder.
    Reclassified {
        /// The type before.
        from: FailureType,
        /// The type now.
        to: FailureType,
    },
    /// Restart intensity exceeded: no more restarts for now.
    IntensityExceeded {
        /// Whose.
        scope: IntensityScope,
    },
    /// An action starts (the [`Action`] follows).
    Acting {
        /// The action.
        kind: ActionKind,
        /// Its attempt number in the episode.
        attempt: u32,
        /// The ladder rung (from 0).
        rung: u8,
    },
    /// The episode does not act now.
    Withheld {
        /// Why.
        reason: HoldReason,
    },
    /// An attempt failed (its outcome said so, or none came in time).
    AttemptFailed {
        /// The attempt.
        attempt: u32,
        /// No outcome came within `action_timeout`.
        timed_out: bool,
    },
    /// The rung was spent (or skipped); the episode climbs.
    Escalated {
        /// The rung left.
        from_rung: u8,
        /// The rung now (the ladder's length: past the top).
        to_rung: u8,
    },
    /// The ladder is spent; the episode holds and a human is asked.
    AskedHuman,
    /// The instance is healthy again: the episode ends.
    Resolved {
        /// Healed by the episode's action in flight (else by itself, or
        /// while held).
        by_action: bool,
    },
    /// The instance was deregistered: the episode ends unresolved.
    Abandoned,
    /// Too much of a scope is unhealthy at once: the observer is suspected
    /// and recovery holds in it.
    StormSuspected {
        /// The scope.
        scope: StormScope,
        /// Unhealthy instances.
        unhealthy: u32,
        /// Instances.
        total: u32,
    },
    /// The storm in a scope is over.
    StormCleared {
        /// The scope.
        scope: StormScope,
    },
    /// A circuit's half-open probe failed (or timed out): open again.
    CircuitProbeFailed,
    /// The episode is held for an impaired dependency, which is isolated:
    /// a circuit (with its own correlation id) opens from the instance's
    /// service to it.
    Isolating {
        /// The circuit's correlation id, carried by its actions.
        circuit: CorrelationId,
        /// The dependency isolated.
        to: ServiceId,
    },
}

/// One decision, with what it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// The episode or circuit; `None` for storm decisions, which concern a
    /// scope.
    pub correlation: Option<CorrelationId>,
    /// The service concerned, if one.
    pub service: Option<ServiceId>,
    /// The instance concerned, if one.
    pub instance: Option<InstanceId>,
    /// When.
    pub at: Instant,
    /// What.
    pub kind: DecisionKind,
}

/// What the coordinator hands its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecoveryOutput {
    /// Carry this out; report its outcome.
    Action(Action),
    /// For the record (events, timelines, reports).
    Decision(Decision),
}

/// What a driver feeds the coordinator through [`Machine::handle`](crate::Machine::handle).
/// Each has a method of the same meaning on [`RecoveryCoordinator`], which
/// returns errors instead of counting them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecoveryInput {
    /// An instance joined its service.
    Register {
        /// The instance.
        instance: InstanceId,
        /// Its service (declared in the configuration).
        service: ServiceId,
    },
    /// An instance left; its episode, if any, is abandoned.
    Deregister {
        /// The instance.
        instance: InstanceId,
    },
    /// An instance fails.
    Failure(FailureReport),
    /// An instance is healthy again.
    Healthy {
        /// The instance.
        instance: InstanceId,
    },
    /// How an action went.
    Outcome {
        /// The action.
        id: ActionId,
        /// Its result.
        outcome: Outcome,
    },
    /// The observer cannot reach `instance`, but judges it cut off rather
    /// than failed (see [`RecoveryCoordinator::report_unreachable`]).
    Unreachable {
        /// The instance.
        instance: InstanceId,
        /// Hold its restarts until then.
        until: Instant,
        /// Why: cut off (its clients reach it), awaiting their word, or a
        /// deaf observer.
        why: Unreachability,
    },
    /// The judgment of [`Unreachable`](RecoveryInput::Unreachable) no
    /// longer holds: the observer hears the instance again, or its clients
    /// fail too. Recovery treats it as any other instance again.
    Reachable {
        /// The instance.
        instance: InstanceId,
    },
    /// The driver's view of a scope's health, for the storm guard.
    ObserveUnhealthy {
        /// The scope.
        scope: StormScope,
        /// Unhealthy instances in it.
        unhealthy: u32,
        /// Instances in it.
        total: u32,
    },
}

impl RecoveryInput {
    /// The input a health event means for recovery: a failure report (see
    /// [`FailureReport::from_health_event`]), or [`Healthy`](RecoveryInput::Healthy)
    /// when the monitor's status returns to [`HealthStatus::Healthy`].
    /// Other events mean nothing here.
    pub fn from_health_event(event: &HealthEvent) -> Option<RecoveryInput> {
        match *event {
            HealthEvent::StatusChanged { instance, to: HealthStatus::Healthy, .. } => {
                Some(RecoveryInput::Healthy { instance })
            }
            _ => FailureReport::from_health_event(event).map(RecoveryInput::Failure),
        }
    }
}

/// How much recovery may do at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Most actions in flight over the whole fleet (1..[`MAX_INSTANCES`]).
    pub max_concurrent: u32,
    /// Most of a service in recovery at once, in permille of its
    /// registered instances (at least one instance is always allowed).
    pub max_service_share_permille: u32,
}

impl Default for Limits {
    /// 8 at once; a quarter of a service.
    fn default() -> Self {
        Limits { max_concurrent: 8, max_service_share_permille: 250 }
    }
}

/// Root-cause-first settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DependencyConfig {
    /// A service is impaired when at least this share (permille) of its
    /// instances has an open episode.
    pub impaired_permille: u32,
    /// After its dependency recovers, how long a held dependent waits
    /// before acting (it likely heals by itself). May be zero.
    pub grace: Duration,
    /// How long a failing instance of a service with dependencies waits
    /// before its first action, so a failing dependency (the likelier root
    /// cause) is reported first. May be zero.
    #[serde(default = "DependencyConfig::default_confirm")]
    pub confirm: Duration,
}

impl DependencyConfig {
    fn default_confirm() -> Duration {
        Duration::from_secs(3)
    }
}

impl Default for DependencyConfig {
    /// Half the instances; 10 s of grace; 3 s to confirm.
    fn default() -> Self {
        DependencyConfig {
            impaired_permille: 500,
            grace: Duration::from_secs(10),
            confirm: DependencyConfig::default_confirm(),
        }
    }
}

/// Telling a partition from failures: how long recovery waits for, and
/// trusts, a second vantage point (the clients' [`CallReport`]s, judged by
/// the control plane) about an instance the observer cannot hear.
///
/// [`CallReport`]: crate::message::CallReport
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PartitionConfig {
    /// How long a silent instance waits for its clients' word before it is
    /// treated as failed, when its clients report at all (without clients
    /// there is no one to ask, and it acts at once). May be zero (never
    /// wait).
    pub confirm_within: Duration,
    /// How long an instance its clients still reach, while the observer
    /// cannot, has its restarts held: a partition heals or is repaired by
    /// people; past this, recovery acts anyway. May be zero (never hold).
    pub hold: Duration,
}

impl Default for PartitionConfig {
    /// Wait 3 s for the clients' word; hold a confirmed partition 2 min.
    fn default() -> Self {
        PartitionConfig { confirm_within: Duration::from_secs(3), hold: Duration::from_secs(120) }
    }
}

/// A service as recovery sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ServiceSpec {
    /// The service.
    pub id: ServiceId,
    /// The name of its policy in [`RecoveryConfig::policies`]; `None`: the
    /// default policy.
    pub policy: Option<String>,
    /// The services it calls.
    pub depends_on: Vec<ServiceId>,
}

impl ServiceSpec {
    /// A service with the default policy and no dependencies.
    pub fn new(id: ServiceId) -> Self {
        ServiceSpec { id, policy: None, depends_on: Vec::new() }
    }
}

/// Everything the coordinator is configured with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecoveryConfig {
    /// The services and their dependencies (an acyclic graph).
    pub services: Vec<ServiceSpec>,
    /// The policy of services that name none.
    pub default_policy: Policy,
    /// Named policies, per kind of service.
    pub policies: BTreeMap<String, Policy>,
    /// Concurrency limits.
    pub limits: Limits,
    /// Restart intensity per instance.
    pub instance_intensity: Intensity,
    /// Restart intensity per service.
    pub service_intensity: Intensity,
    /// Backoff between attempts.
    pub backoff: BackoffConfig,
    /// The storm guard.
    pub storm: StormConfig,
    /// Root cause first.
    pub dependency: DependencyConfig,
    /// Circuit breakers.
    pub circuit: CircuitConfig,
    /// Telling a partition from failures.
    #[serde(default)]
    pub partition: PartitionConfig,
    /// How long an action may take before its silence counts as failure.
    pub action_timeout: Duration,
}

impl Default for RecoveryConfig {
    /// No services; default policy; 3 restarts in 5 minutes per instance,
    /// 10 in 5 minutes per service (Erlang's default is 1 in 5 s, for
    /// in-process restarts far cheaper than a process's); 60 s for an
    /// action.
    fn default() -> Self {
        RecoveryConfig {
            services: Vec::new(),
            default_policy: Policy::default(),
            policies: BTreeMap::new(),
            limits: Limits::default(),
            instance_intensity: Intensity { max_restarts: 3, period: Duration::from_secs(300) },
            service_intensity: Intensity { max_restarts: 10, period: Duration::from_secs(300) },
            backoff: BackoffConfig::default(),
            storm: StormConfig::default(),
            dependency: DependencyConfig::default(),
            circuit: CircuitConfig::default(),
            partition: PartitionConfig::default(),
            action_timeout: Duration::from_secs(60),
        }
    }
}

impl RecoveryConfig {
    /// Check everything but the dependency graph (checked when the
    /// coordinator is built).
    pub fn validate(&self) -> Result<(), RecoveryConfigError> {
        let limits = &self.limits;
        if limits.max_concurrent == 0 {
            return Err(RecoveryConfigError::Zero { which: "limits.max_concurrent" });
        }
        if limits.max_concurrent >= MAX_INSTANCES {
            return Err(RecoveryConfigError::TooLarge {
                which: "limits.max_concurrent",
                value: u64::from(limits.max_concurrent),
                max: u64::from(MAX_INSTANCES - 1),
            });
        }
        for (which, value) in [
            ("limits.max_service_share_permille", limits.max_service_share_permille),
            ("dependency.impaired_permille", self.dependency.impaired_permille),
        ] {
            if value == 0 || value > 1000 {
                return Err(RecoveryConfigError::Share { which, value });
            }
        }
        self.instance_intensity.validate("instance_intensity")?;
        self.service_intensity.validate("service_intensity")?;
        self.backoff.validate()?;
        self.storm.validate()?;
        self.circuit.validate()?;
        if self.action_timeout.is_zero() {
            return Err(RecoveryConfigError::ZeroInterval { which: "action_timeout" });
        }
        if self.policies.len() > MAX_POLICIES {
            return Err(RecoveryConfigError::TooLarge {
                which: "policies",
                value: self.policies.len() as u64,
                max: MAX_POLICIES as u64,
            });
        }
        if self.services.len() > MAX_SERVICES {
            return Err(RecoveryConfigError::TooLarge {
                which: "services",
                value: self.services.len() as u64,
                max: MAX_SERVICES as u64,
            });
        }
        self.default_policy.validate("default")?;
        for (name, policy) in &self.policies {
            policy.validate(name)?;
        }
        for spec in &self.services {
            match &spec.policy {
                Some(name) if !self.policies.contains_key(name) => {
                    return Err(RecoveryConfigError::UnknownPolicy {
                        service: spec.id,
                        policy: name.clone(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}
