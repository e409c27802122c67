//! The attacker of `forge` faults: a node on the network that is not a
//! fleet member and holds no key, sending forged and replayed frames.
//!
//! # Why
//!
//! Authenticated frames ([`vigil_core::auth`]) exist so that nobody
//! without the key can make the control node believe anything: a forged
//! heartbeat must not bring a dead instance back, a replayed one must not
//! keep it alive. This module puts that attacker in the simulator, so a
//! scenario can show, across a sweep of seeds, that the attack happened,
//! that every frame of it was dropped, and that nothing else changed.
//!
//! # What it sends
//!
//! During its window, `rate` frames a second (Poisson arrivals, from its
//! own stream `forge` and the occurrence's index):
//!
//! - **Forged heartbeats** in a target's name, to the control node, with
//!   the session and the next sequence numbers it saw that target use
//!   (it listens to the network), and a tag it cannot compute (random
//!   bytes); a quarter claim a key id no one holds.
//! - **Replays** of genuine frames it captured: half to their own
//!   destination, half to another node (misdirected).
//!
//! # What it captures
//!
//! A ring of the last [`CAPTURED_MAX`] frames a receiving process
//! accepted, from the start of the run. Capturing at acceptance, not at
//! sending, keeps a replay from racing its own original: a capture is
//! always one its destination has already seen, so a replay is a replay.
//! (A receiver that restarts forgets its windows and accepts, once, a
//! capture of its sender's current session: the documented limit of the
//! frame, which `forged_frames_dropped` would report.)
//!
//! # Changing nothing
//!
//! Its randomness is its own stream; its frames travel outside
//! [`super::Network::send`] (no link's stream is drawn, no counter of the
//! fleet's messages moves), with the network's latency model and only an
//! `isolate` partition of the destination in their way (the attacker is in
//! no partition group). A host whose process is dead does not answer it
//! with a refusal on the claimed sender's behalf: the refusal would go to
//! the attacker's own address. So a run with the attack and one without
//! see the same verdicts, routing and recovery; only the receivers'
//! rejection counters differ.

use std::collections::VecDeque;

use rand::RngExt as _;
use vigil_core::auth::{AuthStats, Frame, Header, KeyId, Rejection, TAG_LEN, Tag};
use vigil_core::message::{Heartbeat, Message};
use vigil_core::rng::{Rng, Seed};
use vigil_core::{Duration, InstanceId, NodeId};

use crate::kernel::Event;
use crate::scenario::{FaultAction, ForgeMode, Scenario};

use super::wire::KEY_ID;

/// Frames the attacker remembers to replay: the last few hundred the
/// network carried (a few seconds of a small fleet's traffic).
pub const CAPTURED_MAX: usize = 256;

/// Share of forged heartbeats that claim a key id no one holds.
const UNKNOWN_KEY_SHARE: f64 = 0.25;

/// Share of replays sent to another node than the captured frame's own
/// destination.
const MISDIRECTED_SHARE: f64 = 0.5;

/// What the attackers of a run sent, and what their receivers did with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttackStats {
    /// Forged heartbeats sent (wrong tag, or unknown key id).
    pub forged: u64,
    /// Of `forged`, those under a key id no one holds.
    pub forged_unknown_key: u64,
    /// Captured frames sent again to their own destination.
    pub replayed: u64,
    /// Captured frames sent to another node.
    pub misdirected: u64,
    /// What the receiving processes' frame checks made of them; every one
    /// lands in one counter, and `accepted` must stay 0.
    pub received: AuthStats,
    /// Reached no running process: its host was down, vacant or isolated,
    /// or held it while paused and then crashed.
    pub unheard: u64,
}

impl AttackStats {
    /// Frames sent, of every kind.
    pub fn sent(&self) -> u64 {
        self.forged + self.replayed + self.misdirected
    }

    /// Frames that reached a process and were dropped by its checks.
    pub fn dropped(&self) -> u64 {
        self.received.dropped()
    }

    /// Count one receiver's rejection.
    pub(super) fn count(&mut self, rejection: Rejection) {
        self.received.count(rejection);
    }
}

/// One attacker's state: what it captured and heard, its streams, its
/// counts.
pub(super) struct Attacker {
    /// Accepted frames, oldest first, at most [`CAPTURED_MAX`].
    captured: VecDeque<Frame>,
    /// Per node: the newest heartbeat it was heard to send the control
    /// node, with its frame's header.
    heartbeats: Vec<Option<(Header, Heartbeat)>>,
    /// Per node: the next sequence number to forge, so successive forgeries
    /// in one name do not repeat a number.
    next_forged: Vec<u64>,
    /// Each `forge` occurrence's stream, by occurrence index, created when
    /// it begins.
    streams: Vec<(u32, Rng)>,
    seed: Seed,
}

/// One frame the attacker sends: where, and after how long.
pub(super) struct Shot {
    pub(super) frame: Frame,
    pub(super) to: NodeId,
    pub(super) delay: Duration,
}

impl Attacker {
    /// An attacker for a run of `nodes` nodes, drawing from `seed`'s
    /// `forge` stream.
    pub(super) fn new(nodes: usize, seed: Seed) -> Attacker {
        Attacker {
            captured: VecDeque::with_capacity(CAPTURED_MAX),
            heartbeats: vec![None; nodes],
            next_forged: vec![0; nodes],
            streams: Vec::new(),
            seed: seed.child_named("forge"),
        }
    }

    /// A receiving process accepted `frame`: remember it.
    pub(super) fn capture(&mut self, frame: &Frame) {
        if self.captured.len() == CAPTURED_MAX {
            self.captured.pop_front();
        }
        self.captured.push_back(*frame);
        if let Message::Heartbeat(beat) = frame.message
            && frame.header.to == Scenario::CONTROL
            && let Some(slot) = self.heartbeats.get_mut(frame.header.from.index())
        {
            *slot = Some((frame.header, beat));
        }
    }

    /// The gap before occurrence `fault`'s next frame, at `rate` a second.
    pub(super) fn gap(&mut self, fault: u32, rate: f64) -> Duration {
        let k = self.stream(fault);
        let u: f64 = self.streams[k].1.random(); // [0, 1)
        let seconds = -libm::log(1.0 - u) / rate;
        // At least a nanosecond, so a flood cannot stall simulated time.
        Duration::from_nanos((seconds * 1e9).max(1.0) as u64)
    }

    /// Occurrence `fault`'s next frame, forging `targets`' heartbeats,
    /// counted in `stats`;
    /// `None` when it has nothing to send (a replay-only attacker that has
    /// captured nothing yet).
    pub(super) fn shoot(
        &mut self,
        fault: u32,
        targets: &[NodeId],
        mode: ForgeMode,
        scenario: &Scenario,
        stats: &mut AttackStats,
    ) -> Option<Shot> {
        let nodes = self.heartbeats.len();
        let captured = self.captured.len();
        let latency = scenario.network.latency;
        let k = self.stream(fault);
        let rng = &mut self.streams[k].1;
        let replay = match mode {
            ForgeMode::Forge => false,
            ForgeMode::Replay => true,
            ForgeMode::Both => rng.random_bool(0.5),
        };
        let (frame, to) = if replay {
            if captured == 0 {
                return None;
            }
            let pick = rng.random_range(0..captured);
            let elsewhere = nodes > 1 && rng.random_bool(MISDIRECTED_SHARE);
            let frame = self.captured[pick];
            let own = frame.header.to;
            let to = if elsewhere {
                // Any node but the frame's own destination.
                let k = rng.random_range(0..nodes as u32 - 1);
                NodeId(if k >= own.0 { k + 1 } else { k })
            } else {
                own
            };
            if elsewhere {
                stats.misdirected += 1;
            } else {
                stats.replayed += 1;
            }
            (frame, to)
        } else {
            let target = *targets.get(rng.random_range(0..targets.len().max(1)))?;
            let unknown_key = rng.random_bool(UNKNOWN_KEY_SHARE);
            let key_id = if unknown_key { KeyId(rng.random_range(KEY_ID.0 + 1..=u16::MAX)) } else { KEY_ID };
            let mut tag = [0u8; TAG_LEN];
            for chunk in tag.chunks_mut(8) {
                chunk.copy_from_slice(&rng.random::<u64>().to_le_bytes());
            }
            let instance = Scenario::instance_of(target).unwrap_or(InstanceId(0));
            // What it heard last in the target's name, or a first life's
            // first beat.
            let (heard, beat) = self.heartbeats[target.index()].unwrap_or((
                Header { from: target, to: Scenario::CONTROL, key_id: KEY_ID, session: 1, seq: 0 },
                Heartbeat { instance, incarnation: 1, seq: 0 },
            ));
            let next = &mut self.next_forged[target.index()];
            let seq = (*next).max(heard.seq.saturating_add(1));
            *next = seq.saturating_add(1);
            let ahead = seq - heard.seq;
            let header = Header { from: target, to: Scenario::CONTROL, key_id, session: heard.session, seq };
            let message = Message::Heartbeat(Heartbeat {
                instance,
                incarnation: beat.incarnation,
                seq: beat.seq.saturating_add(ahead),
            });
            stats.forged += 1;
            if unknown_key {
                stats.forged_unknown_key += 1;
            }
            (Frame { header, message, tag: Tag(tag) }, Scenario::CONTROL)
        };
        let delay = super::net::sample(&latency, rng);
        Some(Shot { frame, to, delay })
    }

    /// The index in `streams` of occurrence `fault`'s stream, created on
    /// first use.
    fn stream(&mut self, fault: u32) -> usize {
        match self.streams.iter().position(|(f, _)| *f == fault) {
            Some(k) => k,
            None => {
                self.streams.push((fault, self.seed.child(u64::from(fault)).rng()));
                self.streams.len() - 1
            }
        }
    }
}

impl super::Simulation<'_> {
    /// `forge` occurrence `index` begins: its first frame is due after a
    /// gap.
    pub(super) fn attack_begin(&mut self, index: usize) {
        let FaultAction::Forge { rate, .. } = self.plan[index].action else { return };
        let Some(attacker) = self.attacker.as_mut() else { return };
        let gap = attacker.gap(index as u32, rate);
        self.kernel.schedule(self.kernel.now() + gap, Event::AttackTick { fault: index as u32 });
    }

    /// `forge` occurrence `index` sends its next frame, and schedules the
    /// one after while its window lasts.
    pub(super) fn attack_tick(&mut self, index: usize) {
        if self.observed.faults[index].ended.is_some() {
            return; // the window closed
        }
        let FaultAction::Forge { targets, rate, mode } = &self.plan[index].action else { return };
        let (rate, mode) = (*rate, *mode);
        let Some(attacker) = self.attacker.as_mut() else { return };
        let now = self.kernel.now();
        if let Some(shot) =
            attacker.shoot(index as u32, targets, mode, self.scenario, &mut self.observed.attack)
        {
            self.kernel.schedule(now + shot.delay, Event::Attack { frame: shot.frame, to: shot.to });
        }
        let gap = attacker.gap(index as u32, rate);
        self.kernel.schedule(now + gap, Event::AttackTick { fault: index as u32 });
    }
}
