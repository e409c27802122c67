//! Platforms: where instances actually run, behind one trait.
//!
//! # Why
//!
//! The recovery coordinator in `vigil-core` decides *that* an instance is
//! restarted or replaced; it cannot do it, as it touches nothing. A
//! [`Platform`] is what can: local processes today ([`ProcessPlatform`]),
//! container orchestrators later. One trait, so that the executor that
//! carries the coordinator's actions out ([`spawn_recovery_executor`]), and
//! the tests of it, do not change with the platform, as the simulator's
//! platform model does not change the coordinator.
//!
//! # The contract
//!
//! - **A method returns once the platform has done its part**: a restarted
//!   process is spawned, not yet healthy. Whether the action *worked* is
//!   for the control plane to see (heartbeats, probes), never for the
//!   platform to claim: a platform reports no success.
//! - **An error means the action could not be carried out** (the program
//!   does not exist, the process would not die, no capacity is left).
//!   The executor reports it as
//!   [`Outcome::Failed`](vigil_core::recovery::Outcome::Failed) at once, so
//!   the coordinator climbs its ladder without waiting for `action_timeout`.
//! - **Bounded**: every method returns within a bounded time (the process
//!   platform waits at most [`ProcessPlatform::kill_timeout`] for a killed
//!   process to exit).
//! - **Concurrent across instances, serial per instance**: actions on
//!   different instances never wait for each other; two on the same one
//!   run one after the other.
//! - **No panics on bad input**: an unknown instance, a program that cannot
//!   be spawned, an unsupported action are errors saying so.
//! - **Scale-out starts, the caller registers**: the platform owns the
//!   capacity (which ids and nodes may run); the control plane's catalog
//!   learns of the new instances from the executor, which registers each
//!   one [`NewInstance`] names.

pub mod executor;
pub mod process;

use std::future::Future;
use std::io;
use std::path::PathBuf;

use vigil_core::{InstanceId, NodeId, ServiceId};

pub use executor::{
    ExecutorConfig, ExecutorHandle, ExecutorStats, MAX_ACTIONS_IN_FLIGHT, spawn_recovery_executor,
    spawn_recovery_executor_with,
};
pub use process::{KILL_TIMEOUT, MAX_PROCESS_INSTANCES, ProcessEvent, ProcessPlatform, ProcessSpec};

/// Where instances run: starts, stops, restarts and replaces them.
///
/// See the [module docs](self) for the contract every implementation
/// keeps. Methods return futures that are `Send`, so the executor can run
/// each action on a task of its own.
pub trait Platform: Send + Sync {
    /// A short name for logs and errors (`"process"`).
    fn name(&self) -> &'static str;

    /// Start `instance` if it is not running.
    fn start(&self, instance: InstanceId) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Stop `instance` if it is running.
    fn stop(&self, instance: InstanceId) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Restart `instance` in place: stop it (if running) and start it again
    /// where it was.
    fn restart(&self, instance: InstanceId) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Replace `instance` with a fresh one on a fresh host: whatever state
    /// the old one left behind is not reused.
    fn replace(&self, instance: InstanceId) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Start up to `by` new instances of `service`, and say which it
    /// started (at least one on success): the caller registers them with
    /// the control plane, as only the platform knows their ids and nodes.
    /// Fewer than `by` is a success: some capacity is better than none.
    ///
    /// A platform with no capacity left answers
    /// [`PlatformError::NoCapacity`]; one that cannot scale at all,
    /// [`PlatformError::Unsupported`]. Either way the coordinator climbs
    /// its ladder.
    fn scale_out(
        &self,
        service: ServiceId,
        by: u32,
    ) -> impl Future<Output = Result<Vec<NewInstance>, PlatformError>> + Send;
}

/// An instance a [`Platform::scale_out`] started: running, not yet
/// registered with the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NewInstance {
    /// Its id, unique in the fleet (the control plane's registry ids are
    /// assigned by whoever runs instances, not by the registry).
    pub instance: InstanceId,
    /// The node its agent speaks as.
    pub node: NodeId,
    /// Its service.
    pub service: ServiceId,
}

/// Why a platform could not carry an action out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// This platform cannot do this (yet): the coordinator should climb
    /// to another strategy, or ask a human.
    #[error("the {platform} platform cannot {action}")]
    Unsupported {
        /// The platform's [`name`](Platform::name).
        platform: &'static str,
        /// What was asked (`"scale out"`).
        action: &'static str,
    },
    /// No capacity is left to add instances of the service: every standby
    /// slot ([`ProcessPlatform::add_standby`]) is in use, or none was
    /// declared.
    #[error("cannot scale {service} out: no standby capacity left")]
    NoCapacity {
        /// The service.
        service: ServiceId,
    },
    /// The instance was never declared to this platform
    /// ([`ProcessPlatform::add_instance`]).
    #[error("{0} is not declared to this platform")]
    UnknownInstance(InstanceId),
    /// The instance is declared already, with another service (or, for a
    /// standby slot, at all).
    #[error("{instance} is declared already, as one of {service}'s")]
    AlreadyDeclared {
        /// The instance.
        instance: InstanceId,
        /// The service it was declared with.
        service: ServiceId,
    },
    /// The service has no process spec ([`ProcessPlatform::with_service`]).
    #[error("{0} has no process spec")]
    UnknownService(ServiceId),
    /// [`MAX_PROCESS_INSTANCES`] instances are declared already.
    #[error("too many instances declared (at most {max})")]
    TooManyInstances {
        /// The limit.
        max: usize,
    },
    /// The program could not be spawned (missing, not executable, …).
    #[error("cannot spawn {program:?} for {instance}: {source}")]
    Spawn {
        /// The instance.
        instance: InstanceId,
        /// The program of its service's spec.
        program: PathBuf,
        /// Why, as the operating system said.
        source: io::Error,
    },
    /// The instance's working directory could not be created.
    #[error("cannot prepare working directory {path:?} for {instance}: {source}")]
    WorkDir {
        /// The instance.
        instance: InstanceId,
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The running process could not be killed or waited for.
    #[error("cannot kill {instance} (pid {pid}): {source}")]
    Kill {
        /// The instance.
        instance: InstanceId,
        /// Its process.
        pid: u32,
        /// Why.
        source: io::Error,
    },
    /// The process did not exit within the kill timeout after SIGKILL
    /// (stuck in the kernel, say). The platform forgets it (it is killed
    /// again and reaped if it ever exits); the instance is not restarted.
    #[error("{instance} (pid {pid}) did not exit within {waited:?} of SIGKILL")]
    KillTimeout {
        /// The instance.
        instance: InstanceId,
        /// Its process.
        pid: u32,
        /// How long the platform waited.
        waited: std::time::Duration,
    },
}
