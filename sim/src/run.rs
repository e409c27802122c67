//! Running a scenario: one seed, or twice to prove determinism.

use crate::report::Report;
use crate::scenario::Scenario;
use crate::world::Simulation;
use vigil_core::Instant;

/// Run `scenario` with `seed` to its end and report. `wall_ms` is filled by
/// callers that time the run (the CLI); this crate reads no clock.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let mut sim = Simulation::new(scenario, seed);
    sim.run();
    Report::new(&sim, seed, 0)
}

/// Where two runs of one `(scenario, seed)` first differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// 0-based index of the first event whose trace hash differs.
    pub event_index: u64,
    /// Simulated time of that event in the first run (`None` if the first
    /// run had no such event).
    pub first_at: Option<Instant>,
    /// Simulated time of that event in the second run.
    pub second_at: Option<Instant>,
}

/// Run twice and compare event by event. `Ok` with the report when both runs
/// agree on every event's hash; `Err` names the first divergent event.
pub fn check_determinism(scenario: &Scenario, seed: u64) -> Result<Report, Divergence> {
    let mut first = Simulation::new(scenario, seed).with_history();
    first.run();
    let mut second = Simulation::new(scenario, seed).with_history();
    second.run();
    let (a, b) = (first.history().unwrap_or_default(), second.history().unwrap_or_default());
    match first_divergence(a, b) {
        None => Ok(Report::new(&first, seed, 0)),
        Some(i) => Err(Divergence {
            event_index: i as u64,
            first_at: a.get(i).map(|e| e.0),
            second_at: b.get(i).map(|e| e.0),
        }),
    }
}

/// Index of the first differing entry, or of the end of the shorter history.
pub fn first_divergence<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::first_divergence;

    #[test]
    fn first_divergence_finds_the_first_difference_or_length_mismatch() {
        assert_eq!(first_divergence(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(first_divergence(&[1, 2, 3], &[1, 9, 3]), Some(1));
        assert_eq!(first_divergence(&[1, 2], &[1, 2, 3]), Some(2));
    }
}
