//! Faults: the scenario's faults drawn into concrete occurrences
//! ([`expand_faults`]), and what each does when it begins and when it ends,
//! to hosts, the network, clocks and (through `app`) applications.

use rand::RngExt as _;
use vigil_core::rng::Seed;
use vigil_core::{Duration, NodeId};

use crate::kernel::Event;
use crate::scenario::{Fault, FaultAction, Pick, Scenario};

use super::Simulation;
use super::host::HostState;
use super::observe::OutageKind;

/// The scenario's faults as concrete occurrences, in start order (stable:
/// file order among equal times): each repeat of an `every` fault, each
/// start drawn in its `within` window, each target set picked by `pick`.
/// Every draw comes from the run's seed (stream `chaos`), so a run stays a
/// function of (scenario, seed). Returns the occurrences and, for each,
/// the index of its scenario fault.
pub fn expand_faults(scenario: &Scenario, seed: Seed) -> (Vec<Fault>, Vec<u32>) {
    let mut rng = seed.child_named("chaos").rng();
    let mut out: Vec<(Fault, u32)> = Vec::new();
    let end = scenario.duration;
    for (index, fault) in scenario.faults.iter().enumerate() {
        let mut base = fault.at;
        loop {
            let mut at = base;
            if let Some(window) = fault.within {
                let span = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
                at += Duration::from_nanos(rng.random_range(0..=span));
            }
            if at >= end {
                break;
            }
            let mut action = fault.action.clone();
            if fault.pick != Pick::All
                && let Some(targets) = action.targets_mut()
            {
                let keep = fault.pick.count_of(targets.len());
                // A partial Fisher-Yates shuffle: the first `keep` are a
                // uniform sample.
                for k in 0..keep {
                    let j = rng.random_range(k..targets.len());
                    targets.swap(k, j);
                }
                targets.truncate(keep);
                targets.sort_unstable();
            }
            out.push((
                Fault {
                    at,
                    duration: fault.duration,
                    action,
                    pick: Pick::All,
                    every: None,
                    within: None,
                    line: fault.line,
                },
                index as u32,
            ));
            match fault.every {
                Some(period) if !period.is_zero() => base += period,
                _ => break,
            }
            if base >= end {
                break;
            }
        }
    }
    out.sort_by_key(|(f, _)| f.at); // stable
    out.into_iter().unzip()
}

impl Simulation<'_> {
    pub(super) fn fault_start(&mut self, index: usize) {
        let fault = self.plan[index].clone();
        let id = Some(index as u32);
        let now = self.kernel.now();
        self.observed.faults[index].began = Some(now);
        match &fault.action {
            FaultAction::Crash(targets) => targets.iter().for_each(|&n| self.crash(n, OutageKind::Crash, id)),
            FaultAction::Restart(targets) => targets.iter().for_each(|&n| {
                self.start_process(n);
            }),
            FaultAction::Pause(targets) => targets.iter().for_each(|&n| self.pause(n, id)),
            FaultAction::Resume(targets) => targets.iter().for_each(|&n| self.resume(n)),
            FaultAction::Partition(spec) => {
                for n in fault.action.nodes() {
                    self.observed.disturb(n, now);
                }
                self.network.partition(index as u32, spec, now);
            }
            FaultAction::Heal => {
                let active: Vec<u32> = self.network.active_partitions().collect();
                for id in active {
                    self.request_heal(id);
                }
            }
            FaultAction::ClockSkew { targets, offset_ns, drift_ppm } => {
                for &n in targets {
                    self.nodes[n.index()].clock.skew(now, *offset_ns, *drift_ppm);
                    self.observed.disturb(n, now);
                    self.reschedule(n);
                }
            }
            FaultAction::Hang(_)
            | FaultAction::Slow { .. }
            | FaultAction::Errors { .. }
            | FaultAction::Flap { .. }
            | FaultAction::DiskFull(_)
            | FaultAction::Cpu { .. } => self.app_fault(index, &fault.action, true),
            FaultAction::HostCrash(targets) => {
                for &n in targets {
                    let slot = &mut self.nodes[n.index()];
                    if slot.state == HostState::Vacant {
                        continue;
                    }
                    slot.power_off += 1;
                    if slot.power_off > 1 {
                        continue;
                    }
                    if self.stop(n) == HostState::Paused {
                        self.close_outages(n, |k| k == OutageKind::Pause);
                    }
                    self.open_outage(n, OutageKind::HostCrash, id);
                    self.died(n);
                }
            }
            FaultAction::MemoryLeak { targets, exhausts_after } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.disturb(n, now);
                    let app = &mut self.apps[i.index()];
                    app.leaks.push(*exhausts_after);
                    // The running process starts leaking now.
                    app.started = now;
                    self.schedule_exit(n);
                }
            }
            FaultAction::CrashLoop { targets, after, survives_replace } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.disturb(n, now);
                    let app = &mut self.apps[i.index()];
                    app.loops.push((*after, *survives_replace, false));
                    app.started = now;
                    self.schedule_exit(n);
                }
            }
            FaultAction::Network { targets, latency, loss, duplicate } => {
                for &n in targets {
                    self.observed.disturb(n, now);
                }
                self.network.impair(index as u32, targets, *latency, *loss, *duplicate);
            }
            // No disturbance: the attack must change nothing, so nothing
            // it might cause is excused.
            FaultAction::Forge { .. } => self.attack_begin(index),
        }
        if let Some(duration) = fault.duration {
            self.kernel.schedule(now + duration, Event::FaultEnd { fault: index as u32 });
        } else if matches!(
            fault.action,
            FaultAction::Crash(_)
                | FaultAction::Restart(_)
                | FaultAction::Pause(_)
                | FaultAction::Resume(_)
                | FaultAction::Heal
        ) {
            // Point-in-time actions end as they begin.
            self.observed.faults[index].ended = Some(now);
        }
    }

    pub(super) fn fault_end(&mut self, index: usize) {
        let fault = self.plan[index].clone();
        let now = self.kernel.now();
        match &fault.action {
            FaultAction::Crash(targets) => targets.iter().for_each(|&n| {
                self.start_process(n);
            }),
            FaultAction::Pause(targets) => targets.iter().for_each(|&n| self.resume(n)),
            FaultAction::Partition(_) => {
                self.request_heal(index as u32);
                return; // `ended` is set when the heal takes effect
            }
            FaultAction::ClockSkew { targets, .. } => {
                for &n in targets {
                    // Back to true time and rate; a backward step stands still.
                    let clock = &mut self.nodes[n.index()].clock;
                    let ahead = clock.offset_ns(now);
                    let step = i64::try_from(-ahead).unwrap_or(i64::MIN);
                    clock.skew(now, step, 0);
                    // A clock stepped back stands still until true time
                    // catches up: the disturbance lasts until then.
                    let still = Duration::from_nanos(u64::try_from(ahead.max(0)).unwrap_or(u64::MAX));
                    self.observed.restore(n, now + still);
                    self.reschedule(n);
                }
            }
            FaultAction::Hang(_)
            | FaultAction::Slow { .. }
            | FaultAction::Errors { .. }
            | FaultAction::Flap { .. }
            | FaultAction::DiskFull(_)
            | FaultAction::Cpu { .. } => self.app_fault(index, &fault.action, false),
            FaultAction::HostCrash(targets) => {
                for &n in targets {
                    let slot = &mut self.nodes[n.index()];
                    if slot.power_off == 0 {
                        continue; // replaced meanwhile, or never powered off
                    }
                    slot.power_off -= 1;
                    if slot.power_off == 0 {
                        // Power is back: the host boots its process.
                        self.close_outages(n, |k| k == OutageKind::HostCrash);
                        self.start_process(n);
                    }
                }
            }
            FaultAction::MemoryLeak { targets, exhausts_after } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.restore(n, now);
                    let leaks = &mut self.apps[i.index()].leaks;
                    if let Some(k) = leaks.iter().position(|d| d == exhausts_after) {
                        leaks.remove(k);
                    }
                    // The fixed code runs again where the leak killed it.
                    if self.has_open(n, OutageKind::OutOfMemory) {
                        self.start_process(n);
                    }
                }
            }
            FaultAction::CrashLoop { targets, after, survives_replace } => {
                for &n in targets {
                    let Some(i) = self.scenario.instance_on(n) else { continue };
                    self.observed.restore(n, now);
                    let app = &mut self.apps[i.index()];
                    if let Some(k) = app.loops.iter().position(|l| l.0 == *after && l.1 == *survives_replace)
                    {
                        app.loops.remove(k);
                    }
                    if app.looping().is_none() {
                        self.close_outages(n, |k| k == OutageKind::CrashLoop);
                        self.start_process(n);
                    }
                }
            }
            FaultAction::Network { targets, .. } => {
                self.network.unimpair(index as u32);
                for &n in targets {
                    self.observed.restore(n, now);
                }
            }
            // Its next tick sees `ended` and stops.
            FaultAction::Forge { .. } => {}
            FaultAction::Restart(_) | FaultAction::Resume(_) | FaultAction::Heal => {}
        }
        self.observed.faults[index].ended = Some(now);
    }

    /// The newest fault occurrence in force on `node` whose action matches.
    pub(super) fn fault_in_force(&self, node: NodeId, matches: impl Fn(&FaultAction) -> bool) -> Option<u32> {
        (0..self.plan.len()).rev().find_map(|k| {
            let span = &self.observed.faults[k];
            let fault = &self.plan[k];
            (span.began.is_some()
                && span.ended.is_none()
                && matches(&fault.action)
                && fault.action.nodes().contains(&node))
            .then_some(k as u32)
        })
    }

    /// Heal partition `id` now, or when its stability time allows.
    pub(super) fn request_heal(&mut self, id: u32) {
        match self.network.heal_allowed_at(id) {
            Some(at) if at > self.kernel.now() => self.kernel.schedule(at, Event::Heal { partition: id }),
            Some(_) => self.heal(id),
            None => {}
        }
    }

    pub(super) fn heal(&mut self, id: u32) {
        if self.network.heal(id) {
            self.observed.faults[id as usize].ended = Some(self.kernel.now());
            let action = &self.plan[id as usize].action;
            if matches!(action, FaultAction::Partition(_)) {
                for n in action.nodes() {
                    self.observed.restore(n, self.kernel.now());
                }
            }
        }
    }
}
