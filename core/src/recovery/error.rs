//! What can be wrong with a recovery configuration, and with a call.

use crate::id::{InstanceId, ServiceId};

/// A recovery configuration that cannot work. Nothing is built from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryConfigError {
    /// A limit that would forbid every recovery, or a count of zero.
    #[error("`{which}` must be greater than zero")]
    Zero {
        /// The offending setting.
        which: &'static str,
    },
    /// An interval of zero: a timer that would fire continuously, or a
    /// window that holds nothing.
    #[error("`{which}` must be a positive duration")]
    ZeroInterval {
        /// The offending setting.
        which: &'static str,
    },
    /// A setting above its documented bound.
    #[error("`{which}` is {value}, but at most {max} is accepted")]
    TooLarge {
        /// The offending setting.
        which: &'static str,
        /// The value given.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// A share in permille outside `1..=1000`.
    #[error("`{which}` is {value}‰, but must be between 1 and 1000 permille")]
    Share {
        /// The offending setting.
        which: &'static str,
        /// The value given.
        value: u32,
    },
    /// The backoff cap is below its base: every delay would be the cap.
    #[error("backoff `cap` ({cap:?}) must be at least `base` ({base:?})")]
    CapBelowBase {
        /// The base delay.
        base: crate::time::Duration,
        /// The cap.
        cap: crate::time::Duration,
    },
    /// The storm guard would leave the storm before entering it.
    #[error("storm `exit_permille` ({exit}) must be below `enter_permille` ({enter})")]
    StormHysteresis {
        /// The entry share.
        enter: u32,
        /// The exit share.
        exit: u32,
    },
    /// A ladder rung that would never be tried.
    #[error("policy `{policy}`: a rung of the {failure} ladder has zero attempts")]
    EmptyRung {
        /// The policy's name (`default` for the default policy).
        policy: String,
        /// The failure type whose ladder it is.
        failure: super::FailureType,
    },
    /// A ladder with more rungs than [`MAX_RUNGS`](super::MAX_RUNGS).
    #[error("policy `{policy}`: the {failure} ladder has {rungs} rungs, at most {max} are accepted")]
    TooManyRungs {
        /// The policy's name.
        policy: String,
        /// The failure type whose ladder it is.
        failure: super::FailureType,
        /// Rungs given.
        rungs: usize,
        /// The most accepted.
        max: usize,
    },
    /// A service names a policy that does not exist.
    #[error("{service} uses policy `{policy}`, which is not defined")]
    UnknownPolicy {
        /// The service.
        service: ServiceId,
        /// The policy it names.
        policy: String,
    },
    /// The same service is declared twice.
    #[error("{0} is declared twice")]
    DuplicateService(ServiceId),
    /// A service depends on a service that is not declared.
    #[error("{service} depends on {dependency}, which is not declared")]
    UnknownDependency {
        /// The dependent.
        service: ServiceId,
        /// The missing dependency.
        dependency: ServiceId,
    },
    /// The dependency graph has a cycle: no service in it could be
    /// recovered "first". The cycle is named in order, each service
    /// depending on the next and the last on the first.
    #[error("the service dependency graph has a cycle: {}", cycle_text(.cycle))]
    Cycle {
        /// The services of one cycle, in dependency order.
        cycle: Vec<ServiceId>,
    },
}

/// `a -> b -> c -> a`: the cycle, back to its first service.
fn cycle_text(cycle: &[ServiceId]) -> String {
    let names: Vec<String> = cycle.iter().chain(cycle.first()).map(ToString::to_string).collect();
    names.join(" -> ")
}

/// A call the coordinator refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The instance's service was not declared in the configuration.
    #[error(
        "{service} is not declared in the recovery configuration; declare it in `RecoveryConfig::services`"
    )]
    UnknownService {
        /// The service.
        service: ServiceId,
    },
    /// The instance id is beyond the dense table.
    #[error("{instance} exceeds the supported maximum instance id {max}")]
    InstanceIdTooLarge {
        /// The instance.
        instance: InstanceId,
        /// The largest id accepted.
        max: u32,
    },
    /// The instance was never registered (or was deregistered).
    #[error("{instance} is not registered; register it with its service first")]
    NotRegistered {
        /// The instance.
        instance: InstanceId,
    },
    /// The instance is already registered, under another service.
    #[error("{instance} is already registered under {registered}; deregister it first")]
    ServiceMismatch {
        /// The instance.
        instance: InstanceId,
        /// The service it is registered under.
        registered: ServiceId,
    },
}
