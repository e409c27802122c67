//! The attack checker: a `forge` fault's attacker sent frames, receivers
//! checked them, and not one was accepted (`forged_frames_dropped`).
//!
//! It judges from the world's ground truth ([`AttackStats`]: what the
//! attacker sent, and what each receiving process's frame check did with
//! each of its frames), not from the receivers' counters alone, which
//! also hold the network's own duplicates. "Nothing changed" is for the
//! other expectations of the same file (`no_false_dead`, `detected_within`,
//! `no_restart_of_healthy_instances`): an attack that is dropped but
//! still moves a verdict fails those.
//!
//! [`AttackStats`]: crate::world::AttackStats

use super::ExpectationOutcome;
use crate::world::Simulation;

pub(super) fn forged_frames_dropped(sim: &Simulation<'_>) -> ExpectationOutcome {
    let a = sim.observations().attack;
    let r = &a.received;
    let sent = a.sent();
    let landed = r.accepted + a.dropped() + a.unheard;
    let observed = format!(
        "sent {sent} (forged {}, {} under an unknown key; replayed {}; misdirected {}): \
         accepted {}, dropped {} (forged {}, unknown key {}, replayed {}, old session {}, misdirected {}, \
         other {}), unheard {}, in flight at the end {}",
        a.forged,
        a.forged_unknown_key,
        a.replayed,
        a.misdirected,
        r.accepted,
        a.dropped(),
        r.unauthenticated,
        r.unknown_key,
        r.replayed,
        r.old_session,
        r.misdirected,
        r.malformed + r.too_many_senders,
        a.unheard,
        sent.saturating_sub(landed),
    );
    ExpectationOutcome {
        name: "forged_frames_dropped".into(),
        // The attack happened (frames reached a process and were checked),
        // and none got through.
        passed: sent > 0 && a.dropped() > 0 && r.accepted == 0,
        required: "the attacker's frames reach receivers, and every one is dropped".into(),
        observed,
    }
}
