//! Policies: which ladder for which failure type, per kind of service.
//!
//! A [`Policy`] gives one [`Ladder`] per [`FailureType`] and says how the
//! service's instances relate to their dependencies. A
//! [`RecoveryConfig`](super::RecoveryConfig) holds the default policy and
//! named ones; each service names the policy of its type ("stateless web",
//! "database", …), or takes the default.

use super::{FailureType, Ladder, RecoveryConfigError, Rung, Strategy};

/// How to recover the instances of one kind of service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// For a crashed instance (refuses connections, answers errors, failed
    /// to start).
    pub crashed: Ladder,
    /// For an instance that does not answer in time.
    pub unresponsive: Ladder,
    /// For an instance that serves, but slowly or with errors.
    pub degraded: Ladder,
    /// For an instance past its restart intensity (or reported
    /// crash-looping): restarting it again is pointless.
    pub crash_looping: Ladder,
    /// Hold this service's failing instances while a service it depends on
    /// is impaired (root cause first). On by default.
    pub hold_for_dependencies: bool,
    /// While holding for an impaired dependency, also isolate it: open a
    /// circuit breaker from this service to the dependency, probe it
    /// half-open, close it when it answers. Off by default.
    pub isolate_dependencies: bool,
}

impl Default for Policy {
    /// Restart a crashed instance up to 3 times, then replace it; restart
    /// an unresponsive one twice, then replace it; take a degraded one out
    /// of rotation, then add capacity; replace a crash-looping one twice.
    /// After that, ask a human.
    fn default() -> Self {
        Policy {
            crashed: Ladder::new([Rung::new(Strategy::Restart, 3), Rung::new(Strategy::Replace, 1)]),
            unresponsive: Ladder::new([Rung::new(Strategy::Restart, 2), Rung::new(Strategy::Replace, 1)]),
            degraded: Ladder::new([
                Rung::new(Strategy::Reroute, 1),
                Rung::new(Strategy::ScaleOut { by: 1 }, 1),
            ]),
            crash_looping: Ladder::new([Rung::new(Strategy::Replace, 2)]),
            hold_for_dependencies: true,
            isolate_dependencies: false,
        }
    }
}

impl Policy {
    /// The ladder for `failure`.
    pub fn ladder(&self, failure: FailureType) -> &Ladder {
        match failure {
            FailureType::Crashed => &self.crashed,
            FailureType::Unresponsive => &self.unresponsive,
            FailureType::Degraded => &self.degraded,
            FailureType::CrashLooping => &self.crash_looping,
        }
    }

    /// Check every ladder; `name` is used in errors.
    pub fn validate(&self, name: &str) -> Result<(), RecoveryConfigError> {
        for failure in FailureType::ALL {
            self.ladder(failure).validate(name, failure)?;
            for rung in &self.ladder(failure).rungs {
                if let Strategy::ScaleOut { by: 0 } = rung.strategy {
                    return Err(RecoveryConfigError::Zero { which: "strategy scale_out.by" });
                }
            }
        }
        Ok(())
    }
}
