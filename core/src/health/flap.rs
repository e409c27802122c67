//! Flap damping: an instance bouncing between states is reported at its
//! worst until it calms down.
//!
//! # The rule
//!
//! An instance is **flapping** when its (undamped) status has changed more
//! than `max_changes` times within the last `window`. While it flaps its
//! *reported* status is the worst status it has had since flapping began: it
//! may get worse, never better. It stops flapping once its undamped status
//! has not changed for `quiet`; the reported status then follows the
//! undamped one again, and the change history starts afresh (so the changes
//! that caused the episode cannot immediately start another).
//!
//! Why: every reported transition is acted on (traffic moved away and back,
//! a restart asked for, an event published). An instance that bounces every
//! few seconds would drag its callers and the recovery machinery with it;
//! holding it at its worst keeps it out of rotation until it proves stable.
//!
//! # Cost and bound
//!
//! O(1) per change; at most `max_changes + 1` instants kept per instance.

use std::collections::VecDeque;

use super::HealthConfigError;
use super::status::HealthStatus;
use crate::time::{Duration, Instant};

/// The largest `max_changes` accepted.
pub const MAX_FLAP_CHANGES: u16 = 1024;

/// When an instance counts as flapping, and when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FlapConfig {
    /// More changes than this within `window` is flapping.
    pub max_changes: u16,
    /// The window changes are counted over.
    pub window: Duration,
    /// Time without a change after which flapping ends.
    pub quiet: Duration,
}

impl Default for FlapConfig {
    /// More than 4 changes within 60 s; calm after 30 s without a change.
    fn default() -> Self {
        FlapConfig { max_changes: 4, window: Duration::from_secs(60), quiet: Duration::from_secs(30) }
    }
}

impl FlapConfig {
    /// Check the settings make sense.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        if self.max_changes == 0 || self.max_changes > MAX_FLAP_CHANGES {
            return Err(HealthConfigError::ThresholdOutOfRange {
                which: "flap.max_changes",
                value: u32::from(self.max_changes),
                max: u32::from(MAX_FLAP_CHANGES),
            });
        }
        if self.window.is_zero() {
            return Err(HealthConfigError::ZeroTimeout { which: "flap.window" });
        }
        if self.quiet.is_zero() {
            return Err(HealthConfigError::ZeroTimeout { which: "flap.quiet" });
        }
        Ok(())
    }
}

/// What one undamped change did to the damped view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damped {
    /// The status to report now.
    pub reported: HealthStatus,
    /// Whether this change started a flapping episode.
    pub started_flapping: bool,
}

/// Flap state of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlapDamper {
    config: FlapConfig,
    /// Instants of the most recent undamped changes, oldest first; at most
    /// `max_changes + 1`.
    changes: VecDeque<Instant>,
    /// While flapping, the worst status seen since the episode began.
    held: Option<HealthStatus>,
    /// The undamped status after the latest change.
    last_raw: HealthStatus,
}

impl FlapDamper {
    /// A damper that has seen no change from `initial`. `config` must be
    /// valid.
    pub fn new(config: FlapConfig, initial: HealthStatus) -> Self {
        FlapDamper { config, changes: VecDeque::new(), held: None, last_raw: initial }
    }

    /// Whether the instance is flapping.
    pub fn is_flapping(&self) -> bool {
        self.held.is_some()
    }

    /// When flapping ends if nothing changes (`None` when not flapping).
    pub fn quiet_deadline(&self) -> Option<Instant> {
        self.held?;
        self.changes.back().map(|&last| last + self.config.quiet)
    }

    /// The undamped status changed to `raw` at `now`.
    pub fn change(&mut self, now: Instant, raw: HealthStatus) -> Damped {
        if self.changes.len() > usize::from(self.config.max_changes) {
            self.changes.pop_front();
        }
        self.changes.push_back(now);
        let before = core::mem::replace(&mut self.last_raw, raw);
        let mut started_flapping = false;
        if self.held.is_none()
            && self.changes.len() > usize::from(self.config.max_changes)
            && self.changes.front().is_some_and(|&first| now - first <= self.config.window)
        {
            // Hold the worse of the states it is bouncing between: the change
            // that reveals the flapping must not itself get through.
            started_flapping = true;
            self.held = Some(before.max(raw));
        }
        let reported = match &mut self.held {
            Some(held) => {
                *held = (*held).max(raw);
                *held
            }
            None => raw,
        };
        Damped { reported, started_flapping }
    }

    /// Time passed: if the instance was flapping and has been quiet long
    /// enough, stop flapping and return `true` (report the undamped status
    /// again). Safe to call early or twice.
    pub fn settle(&mut self, now: Instant) -> bool {
        match self.quiet_deadline() {
            Some(deadline) if deadline <= now => {
                self.held = None;
                self.changes.clear();
                true
            }
            _ => false,
        }
    }

    /// The status held while flapping (the worst since the episode began),
    /// or `None` when not flapping.
    pub fn held(&self) -> Option<HealthStatus> {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: HealthStatus = HealthStatus::Healthy;
    const F: HealthStatus = HealthStatus::Failed;

    fn damper() -> FlapDamper {
        let config =
            FlapConfig { max_changes: 3, window: Duration::from_secs(10), quiet: Duration::from_secs(5) };
        FlapDamper::new(config, HealthStatus::Unknown)
    }

    #[test]
    fn more_than_max_changes_in_window_is_flapping_and_held_at_worst() {
        let mut d = damper();
        let mut reported = Vec::new();
        for (i, raw) in [F, H, F, H, F, H].into_iter().enumerate() {
            let out = d.change(Instant::from_secs(i as u64), raw);
            reported.push((out.reported, out.started_flapping));
        }
        assert_eq!(reported, vec![(F, false), (H, false), (F, false), (F, true), (F, false), (F, false)]);
        assert!(d.is_flapping());
        assert_eq!(d.quiet_deadline(), Some(Instant::from_secs(10)));
        assert!(!d.settle(Instant::from_secs(9)));
        assert!(d.settle(Instant::from_secs(10)));
        assert!(!d.is_flapping());
        assert!(!d.settle(Instant::from_secs(10)), "twice is harmless");
        assert_eq!(d.change(Instant::from_secs(11), F).reported, F, "history starts afresh");
        assert!(!d.is_flapping());
    }

    #[test]
    fn slow_changes_are_not_flapping() {
        let mut d = damper();
        for i in 0..20u64 {
            let raw = if i % 2 == 0 { F } else { H };
            let out = d.change(Instant::from_secs(i * 4), raw);
            assert_eq!(out.reported, raw);
            assert!(!out.started_flapping);
        }
    }

    #[test]
    fn bad_settings_are_rejected() {
        let zero = FlapConfig { max_changes: 0, ..FlapConfig::default() };
        assert!(zero.validate().is_err());
        let no_quiet = FlapConfig { quiet: Duration::ZERO, ..FlapConfig::default() };
        assert!(no_quiet.validate().is_err());
        assert!(FlapConfig::default().validate().is_ok());
    }
}
