//! The instance side of liveness: send a heartbeat every interval.

use rand::RngExt as _;

use super::HealthConfigError;
use crate::id::{InstanceId, NodeId};
use crate::machine::Machine;
use crate::message::{Heartbeat, Message, Transmit};
use crate::rng::Seed;
use crate::time::{Duration, Instant};

/// Settings of one heartbeat agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The instance this agent speaks for.
    pub instance: InstanceId,
    /// Where heartbeats go: the control node.
    pub control: NodeId,
    /// Time between two heartbeats.
    pub interval: Duration,
    /// Which life of the instance this is: must grow with every restart so
    /// the detector can tell a new life's `seq = 0` from a stale beat.
    pub incarnation: u64,
}

/// Sends a [`Heartbeat`] to the control node every `interval`.
///
/// The first beat goes out at a random point within the first interval
/// (drawn from the agent's seed), so a fleet that boots at once does not
/// beat in lockstep. After that beats are strictly periodic: the schedule
/// is `first + k·interval`, not `previous send + interval`, so a late timer
/// never makes the agent drift.
#[derive(Debug, Clone)]
pub struct HeartbeatAgent {
    config: AgentConfig,
    seq: u64,
    next_beat: Instant,
    /// At most one output per call, kept inline: no allocation per agent.
    pending: Option<Transmit>,
}

impl HeartbeatAgent {
    /// A new agent booting at `now`.
    pub fn new(config: AgentConfig, now: Instant, seed: Seed) -> Result<Self, HealthConfigError> {
        if config.interval.is_zero() {
            return Err(HealthConfigError::ZeroTimeout { which: "interval" });
        }
        let interval_ns = u64::try_from(config.interval.as_nanos()).unwrap_or(u64::MAX);
        let splay_ns = seed.rng().random_range(0..interval_ns);
        Ok(HeartbeatAgent { config, seq: 0, next_beat: now + Duration::from_nanos(splay_ns), pending: None })
    }

    /// The agent's settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Heartbeats sent so far in this incarnation.
    pub fn sent(&self) -> u64 {
        self.seq
    }
}

impl Machine for HeartbeatAgent {
    type Input = Message;
    type Output = Transmit;

    /// The agent expects no input; anything delivered is ignored.
    fn handle(&mut self, _now: Instant, _input: Message) {
        debug_assert!(self.pending.is_none(), "poll_output was not drained");
    }

    fn handle_timeout(&mut self, now: Instant) {
        debug_assert!(self.pending.is_none(), "poll_output was not drained");
        if now < self.next_beat {
            return;
        }
        self.pending = Some(Transmit {
            to: self.config.control,
            message: Message::Heartbeat(Heartbeat {
                instance: self.config.instance,
                incarnation: self.config.incarnation,
                seq: self.seq,
            }),
        });
        self.seq += 1;
        // Skip beats missed while the host was paused rather than bursting
        // them out: one beat now says everything they would have said.
        while self.next_beat <= now {
            self.next_beat += self.config.interval;
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_beat)
    }

    fn poll_output(&mut self) -> Option<Transmit> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(interval_ms: u64) -> HeartbeatAgent {
        let config = AgentConfig {
            instance: InstanceId(3),
            control: NodeId(0),
            interval: Duration::from_millis(interval_ms),
            incarnation: 1,
        };
        HeartbeatAgent::new(config, Instant::ZERO, Seed(5)).expect("valid config")
    }

    #[test]
    fn first_beat_within_first_interval_then_periodic() {
        let mut a = agent(1000);
        let first = a.poll_timeout().expect("always scheduled");
        assert!(first < Instant::from_secs(1));
        a.handle_timeout(first);
        let Some(Transmit { to, message: Message::Heartbeat(hb) }) = a.poll_output() else {
            panic!("expected a heartbeat");
        };
        assert_eq!(to, NodeId(0));
        assert_eq!((hb.instance, hb.incarnation, hb.seq), (InstanceId(3), 1, 0));
        assert_eq!(a.poll_output(), None);
        assert_eq!(a.poll_timeout(), Some(first + Duration::from_secs(1)));
    }

    #[test]
    fn early_timeout_sends_nothing() {
        let mut a = agent(1000);
        let first = a.poll_timeout().expect("always scheduled");
        assert!(first > Instant::ZERO, "seed 5 splays the first beat past zero");
        a.handle_timeout(Instant::from_nanos(first.as_nanos() - 1));
        assert_eq!(a.poll_output(), None);
        assert_eq!(a.poll_timeout(), Some(first));
    }

    #[test]
    fn missed_beats_are_not_burst() {
        let mut a = agent(1000);
        a.handle_timeout(Instant::from_secs(10));
        assert!(a.poll_output().is_some());
        assert_eq!(a.poll_output(), None);
        assert!(a.poll_timeout().expect("scheduled") > Instant::from_secs(10));
    }

    #[test]
    fn zero_interval_is_rejected() {
        let config = AgentConfig {
            instance: InstanceId(0),
            control: NodeId(0),
            interval: Duration::ZERO,
            incarnation: 0,
        };
        assert_eq!(
            HeartbeatAgent::new(config, Instant::ZERO, Seed(0)).err(),
            Some(HealthConfigError::ZeroTimeout { which: "interval" })
        );
    }
}
