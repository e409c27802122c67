//! The storm guard: suspect the observer before the fleet.
//!
//! When a large share of instances goes unhealthy at once *from the
//! monitor's point of view*, the likeliest explanation is that the monitor
//! cannot see them (it is partitioned, overloaded, its network is lossy),
//! not that they all broke together. Mass-restarting a healthy fleet would
//! turn an observer's fault into an outage. So while a scope is in a storm,
//! no recovery action starts in it: the coordinator emits
//! [`Decision::StormSuspected`](super::DecisionKind::StormSuspected),
//! holds, and lets a human look.
//!
//! A scope is the whole fleet or one service. Its unhealthy share is the
//! larger of what the coordinator counts itself (instances with an open
//! recovery episode that look down, so not merely degraded, over registered
//! instances: an overload slows a whole service at once, and calls for
//! scaling out, not for suspecting the observer) and what the driver last
//! reported through [`observe_unhealthy_share`](super::RecoveryCoordinator::observe_unhealthy_share)
//! (e.g. the monitor's service summaries). Entry and exit thresholds differ
//! (hysteresis) so a share hovering near the threshold does not toggle the
//! guard; scopes with fewer than `min_instances` instances are never in a
//! storm (two of three instances failing is plausible, and holding a tiny
//! service for ever is worse).

use std::collections::{BTreeMap, BTreeSet};

use crate::id::ServiceId;
use crate::time::Duration;

use super::RecoveryConfigError;

/// What share of which scope is unhealthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StormScope {
    /// Every registered instance.
    Global,
    /// The instances of one service.
    Service(ServiceId),
}

/// Storm guard settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StormConfig {
    /// Enter a storm when at least this share (permille) is unhealthy.
    pub enter_permille: u32,
    /// Leave it when less than this share (permille) is unhealthy; below
    /// `enter_permille`.
    pub exit_permille: u32,
    /// Scopes with fewer instances are never in a storm.
    pub min_instances: u32,
    /// After a storm clears, how long its held instances wait before
    /// acting, so the healthy reports of a reconnected observer arrive
    /// first. May be zero.
    pub settle: Duration,
}

impl Default for StormConfig {
    /// Half a scope of at least 5 instances unhealthy enters a storm; under
    /// a quarter leaves it; held instances then wait 15 s.
    fn default() -> Self {
        StormConfig {
            enter_permille: 500,
            exit_permille: 250,
            min_instances: 5,
            settle: Duration::from_secs(15),
        }
    }
}

impl StormConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<(), RecoveryConfigError> {
        for (which, value) in
            [("storm.enter_permille", self.enter_permille), ("storm.exit_permille", self.exit_permille)]
        {
            if value == 0 || value > 1000 {
                return Err(RecoveryConfigError::Share { which, value });
            }
        }
        if self.exit_permille >= self.enter_permille {
            return Err(RecoveryConfigError::StormHysteresis {
                enter: self.enter_permille,
                exit: self.exit_permille,
            });
        }
        if self.min_instances == 0 {
            return Err(RecoveryConfigError::Zero { which: "storm.min_instances" });
        }
        Ok(())
    }

    fn at_least(&self, (unhealthy, total): (u32, u32), permille: u32) -> bool {
        total >= self.min_instances && u64::from(unhealthy) * 1000 >= u64::from(permille) * u64::from(total)
    }
}

/// A change of a scope's storm state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StormChange {
    Entered,
    Cleared,
}

/// Per-scope storm state. At most one observation and one flag per scope:
/// bounded by the number of declared services plus one.
#[derive(Clone, Debug)]
pub(crate) struct StormGuard {
    config: StormConfig,
    observed: BTreeMap<StormScope, (u32, u32)>,
    active: BTreeSet<StormScope>,
}

impl StormGuard {
    pub(crate) fn new(config: StormConfig) -> Self {
        StormGuard { config, observed: BTreeMap::new(), active: BTreeSet::new() }
    }

    /// Record the driver's view of `scope`.
    pub(crate) fn observe(&mut self, scope: StormScope, unhealthy: u32, total: u32) {
        self.observed.insert(scope, (unhealthy.min(total), total));
    }

    /// Whether `scope` is in a storm.
    pub(crate) fn is_active(&self, scope: StormScope) -> bool {
        self.active.contains(&scope)
    }

    /// Re-evaluate `scope` given the coordinator's own count.
    pub(crate) fn evaluate(&mut self, scope: StormScope, counted: (u32, u32)) -> Option<StormChange> {
        let observed = self.observed.get(&scope).copied().unwrap_or((0, 0));
        if self.active.contains(&scope) {
            let stays = [counted, observed].into_iter().any(|s| !self.below_exit(s));
            if stays {
                None
            } else {
                self.active.remove(&scope);
                Some(StormChange::Cleared)
            }
        } else if [counted, observed].into_iter().any(|s| self.config.at_least(s, self.config.enter_permille))
        {
            self.active.insert(scope);
            Some(StormChange::Entered)
        } else {
            None
        }
    }

    fn below_exit(&self, share: (u32, u32)) -> bool {
        share.1 < self.config.min_instances || !self.config.at_least(share, self.config.exit_permille)
    }

    /// The share that decides `scope` now: the larger of the two views.
    pub(crate) fn share(&self, scope: StormScope, counted: (u32, u32)) -> (u32, u32) {
        let observed = self.observed.get(&scope).copied().unwrap_or((0, 0));
        // Compare unhealthy/total fractions by cross-multiplication.
        if u64::from(observed.0) * u64::from(counted.1.max(1))
            > u64::from(counted.0) * u64::from(observed.1.max(1))
        {
            observed
        } else {
            counted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enters_and_clears_with_hysteresis() {
        let mut g = StormGuard::new(StormConfig::default());
        assert_eq!(g.evaluate(StormScope::Global, (4, 10)), None);
        assert_eq!(g.evaluate(StormScope::Global, (5, 10)), Some(StormChange::Entered));
        assert_eq!(g.evaluate(StormScope::Global, (3, 10)), None);
        assert_eq!(g.evaluate(StormScope::Global, (2, 10)), Some(StormChange::Cleared));
    }

    #[test]
    fn small_scopes_never_storm() {
        let mut g = StormGuard::new(StormConfig::default());
        assert_eq!(g.evaluate(StormScope::Service(ServiceId(0)), (4, 4)), None);
    }

    #[test]
    fn observations_count_too() {
        let mut g = StormGuard::new(StormConfig::default());
        g.observe(StormScope::Global, 90, 100);
        assert_eq!(g.evaluate(StormScope::Global, (0, 100)), Some(StormChange::Entered));
        assert_eq!(g.share(StormScope::Global, (0, 100)), (90, 100));
        g.observe(StormScope::Global, 0, 100);
        assert_eq!(g.evaluate(StormScope::Global, (0, 100)), Some(StormChange::Cleared));
    }
}
