//! The escalation ladder: which strategy to try, how many times, and what
//! comes next.
//!
//! A [`Ladder`] is a short list of [`Rung`]s. An episode starts on the first
//! rung; every failed attempt counts against the rung, and when a rung's
//! attempts are spent the episode climbs to the next. Past the last rung
//! there is only a human: the episode holds and an
//! [`ActionKind::AskHuman`](super::ActionKind::AskHuman) goes out. An empty
//! ladder therefore means "never act on this failure type, ask".

use super::{MAX_RUNGS, RecoveryConfigError, Strategy};

/// One step of a ladder: a strategy and how many failed attempts of it to
/// accept before climbing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rung {
    /// What to do.
    pub strategy: Strategy,
    /// Attempts before escalating (at least 1).
    pub attempts: u32,
}

impl Rung {
    /// `attempts` tries of `strategy`.
    pub const fn new(strategy: Strategy, attempts: u32) -> Self {
        Rung { strategy, attempts }
    }
}

/// An escalation ladder, at most [`MAX_RUNGS`] rungs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ladder {
    /// The rungs, first tried first.
    pub rungs: Vec<Rung>,
}

impl Ladder {
    /// A ladder of `rungs`.
    pub fn new(rungs: impl Into<Vec<Rung>>) -> Self {
        Ladder { rungs: rungs.into() }
    }

    pub(crate) fn validate(
        &self,
        policy: &str,
        failure: super::FailureType,
    ) -> Result<(), RecoveryConfigError> {
        if self.rungs.len() > MAX_RUNGS {
            return Err(RecoveryConfigError::TooManyRungs {
                policy: policy.to_owned(),
                failure,
                rungs: self.rungs.len(),
                max: MAX_RUNGS,
            });
        }
        if self.rungs.iter().any(|r| r.attempts == 0) {
            return Err(RecoveryConfigError::EmptyRung { policy: policy.to_owned(), failure });
        }
        Ok(())
    }

    /// The rung at `position`, or `None` past the top.
    pub(crate) fn rung(&self, position: Position) -> Option<Rung> {
        self.rungs.get(usize::from(position.rung)).copied()
    }
}

/// Where an episode stands on its ladder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Index of the current rung; equal to the ladder's length past the top.
    pub rung: u8,
    /// Failed attempts made on the current rung.
    pub failed: u32,
}

impl Position {
    /// After a failed attempt: count it, and climb if the rung is spent.
    /// Returns the new position and whether it climbed.
    pub(crate) fn after_failure(self, ladder: &Ladder) -> (Position, bool) {
        let Some(rung) = ladder.rung(self) else {
            return (self, false);
        };
        let failed = self.failed.saturating_add(1);
        if failed >= rung.attempts {
            (self.climb(), true)
        } else {
            (Position { rung: self.rung, failed }, false)
        }
    }

    /// The next rung, attempts reset.
    pub(crate) fn climb(self) -> Position {
        debug_assert!(usize::from(self.rung) <= MAX_RUNGS);
        Position { rung: self.rung.saturating_add(1), failed: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbs_after_each_rungs_attempts() {
        let ladder = Ladder::new([Rung::new(Strategy::Restart, 2), Rung::new(Strategy::Replace, 1)]);
        let p = Position::default();
        assert_eq!(ladder.rung(p).map(|r| r.strategy), Some(Strategy::Restart));
        let (p, climbed) = p.after_failure(&ladder);
        assert!(!climbed);
        let (p, climbed) = p.after_failure(&ladder);
        assert!(climbed);
        assert_eq!(ladder.rung(p).map(|r| r.strategy), Some(Strategy::Replace));
        let (p, climbed) = p.after_failure(&ladder);
        assert!(climbed);
        assert_eq!(ladder.rung(p), None);
        assert_eq!(p.after_failure(&ladder), (p, false));
    }
}
