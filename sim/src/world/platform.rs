//! The simulated platform: carries out the recovery actions the control
//! plane asks for (restart, replace, scale out, circuits) as jobs whose
//! boots fall due after the scenario's delays, records each step it takes,
//! and reports failures back to the coordinator.

use std::io::Write;

use vigil_core::control::RegisterRequest;
use vigil_core::fleet::Node;
use vigil_core::machine::Checked;
use vigil_core::recovery::{Action, ActionId, ActionKind, Outcome};
use vigil_core::registry::Registration;
use vigil_core::{InstanceId, Instant, NodeId};

use crate::kernel::Event;
use crate::scenario::Scenario;

use super::Simulation;
use super::host::HostState;
use super::observe::{FailReason, OutageKind, PlatformEvent, PlatformStep};

/// A recovery action the platform is carrying out.
#[derive(Clone, Debug)]
pub(super) struct Job {
    pub(super) action: Action,
    /// Instances it boots when due (the instance itself, or scaled-out
    /// slots).
    pub(super) boots: Vec<InstanceId>,
}

impl Simulation<'_> {
    /// Carry out the recovery actions the control plane asked for: the
    /// simulated platform. A restart stops the process and boots it after
    /// `restart_delay`; a replacement boots a fresh process on a fresh host
    /// (clearing what the old host carried: no power, a full disk, a crash
    /// loop that does not survive replacement) after `replace_delay`; a
    /// scale-out provisions standby slots after `scale_out_delay` and
    /// registers them; a circuit changes whether the calling service's
    /// answers fail with its dependency. Success is the instance's return
    /// to health, which the control plane sees by itself; the platform
    /// reports only failures: nothing can start on a host without power,
    /// no standby slot is left, or the process dies again first.
    pub(super) fn carry_out(&mut self) {
        let Some(recovery) = self.scenario.recovery.as_ref() else {
            self.asked.clear();
            return;
        };
        while !self.asked.is_empty() {
            let action = self.asked.remove(0);
            let now = self.kernel.now();
            match action.kind {
                ActionKind::Restart | ActionKind::Replace => {
                    let Some(i) = action.instance.filter(|i| i.index() < self.provisioned.len()) else {
                        continue;
                    };
                    let node = Scenario::node_of(i);
                    let replace = action.kind == ActionKind::Replace;
                    let slot = &self.nodes[node.index()];
                    if !replace && (slot.power_off > 0 || slot.state == HostState::Paused) {
                        self.action_failed(action.id, Some(i), FailReason::HostDown);
                        continue;
                    }
                    if slot.state == HostState::Vacant {
                        self.action_failed(action.id, Some(i), FailReason::NoCapacity);
                        continue;
                    }
                    self.last_action[i.index()] = None;
                    if self.stop(node) == HostState::Paused {
                        self.close_outages(node, |k| k == OutageKind::Pause);
                    }
                    self.platform_event(action.id, Some(i), PlatformStep::Stopped);
                    let delay = if replace { recovery.replace_delay } else { recovery.restart_delay };
                    self.job(action, vec![i], now + delay);
                }
                ActionKind::ScaleOut { by } => {
                    let slots: Vec<InstanceId> = self
                        .scenario
                        .instances_of(action.service.index())
                        .map(InstanceId)
                        .filter(|i| !self.provisioned[i.index()])
                        .take(by as usize)
                        .collect();
                    if slots.is_empty() {
                        self.action_failed(action.id, None, FailReason::NoCapacity);
                        continue;
                    }
                    for i in &slots {
                        self.provisioned[i.index()] = true; // reserved
                    }
                    self.job(action, slots, now + recovery.scale_out_delay);
                }
                ActionKind::OpenCircuit { to } => {
                    self.open_circuits.insert((action.service.index(), to.index()));
                }
                ActionKind::CloseCircuit { to } => {
                    self.open_circuits.remove(&(action.service.index(), to.index()));
                }
                ActionKind::HalfOpen { to } => {
                    // The trial call: does the dependency answer now?
                    let outcome = if self.serving(to.index()) { Outcome::Succeeded } else { Outcome::Failed };
                    self.report(action.id, outcome);
                }
                // Reroute is carried out by the control plane itself (it
                // decides routing); asking a human is for the record.
                _ => {}
            }
        }
    }

    /// Start carrying out `action`: its boots are due at `at`.
    pub(super) fn job(&mut self, action: Action, boots: Vec<InstanceId>, at: Instant) {
        let slot = self.jobs.len() as u32;
        self.jobs.push(Some(Job { action, boots }));
        self.kernel.schedule(at, Event::Platform { slot });
    }

    /// A job's boots are due.
    pub(super) fn platform_due(&mut self, slot: usize) {
        let Some(Job { action, boots }) = self.jobs.get_mut(slot).and_then(Option::take) else { return };
        for i in boots {
            let node = Scenario::node_of(i);
            match action.kind {
                ActionKind::Restart => {
                    if self.start_process(node) {
                        self.last_action[i.index()] = Some(action.id);
                        self.platform_event(action.id, Some(i), PlatformStep::Restarted);
                    } else if self.nodes[node.index()].state == HostState::Down {
                        self.action_failed(action.id, Some(i), FailReason::HostDown);
                    }
                }
                ActionKind::Replace => {
                    // A fresh host: powered, empty disk, true clock; the
                    // instance keeps its id and node (see ARCHITECTURE).
                    if self.stop(node) == HostState::Paused {
                        self.close_outages(node, |k| k == OutageKind::Pause);
                    }
                    self.nodes[node.index()].power_off = 0;
                    let app = &mut self.apps[i.index()];
                    app.disk_full = 0;
                    for l in &mut app.loops {
                        l.2 |= !l.1; // a loop that does not survive replacement ends
                    }
                    let looping = app.looping().is_some();
                    self.close_outages(node, |k| {
                        k.ends_on_replace() || (k == OutageKind::CrashLoop && !looping)
                    });
                    self.boot(node);
                    self.last_action[i.index()] = Some(action.id);
                    self.platform_event(action.id, Some(i), PlatformStep::Replaced);
                }
                ActionKind::ScaleOut { .. } => {
                    self.nodes[node.index()].state = HostState::Down;
                    self.boot(node);
                    let (service, _) = self.scenario.locate(i).expect("a slot of the scenario");
                    let request = RegisterRequest {
                        registration: Registration::new(
                            i,
                            self.scenario.services[service].name.clone(),
                            "unknown",
                        )
                        .zone(self.scenario.zone_of(i).unwrap_or("default")),
                        node,
                        class: service,
                    };
                    let control = &mut self.nodes[Scenario::CONTROL.index()];
                    if control.state == HostState::Up {
                        let local = control.clock.local(self.kernel.now());
                        if let Some(Node::Control(c)) = control.machine.as_mut().map(Checked::get_mut) {
                            // Ids and classes come from the scenario: valid.
                            let _ = c.register(local, request);
                        }
                        self.drain(Scenario::CONTROL);
                    }
                    self.platform_event(action.id, Some(i), PlatformStep::Provisioned);
                }
                _ => {}
            }
        }
    }

    pub(super) fn platform_event(
        &mut self,
        action: ActionId,
        instance: Option<InstanceId>,
        step: PlatformStep,
    ) {
        let event = PlatformEvent {
            at: self.kernel.now(),
            action,
            instance,
            step,
            after: self.observed.recovery.len(),
        };
        if let Some(out) = self.timeline.as_mut() {
            let who = instance
                .map_or_else(|| "-".to_string(), |i| self.names[Scenario::node_of(i).index()].clone());
            let _ = writeln!(out, "{} {:<14} platform {action}: {step}", self.kernel.now(), who);
        }
        self.observed.platform.push(event);
    }

    /// The platform could not carry out `id`: tell the coordinator.
    pub(super) fn action_failed(&mut self, id: ActionId, instance: Option<InstanceId>, reason: FailReason) {
        self.platform_event(id, instance, PlatformStep::Failed(reason));
        self.report(id, Outcome::Failed);
    }

    /// Report an action's outcome to the control plane, if it runs.
    pub(super) fn report(&mut self, id: ActionId, outcome: Outcome) {
        let control = &mut self.nodes[Scenario::CONTROL.index()];
        if control.state != HostState::Up {
            return; // the coordinator's timeout will count it
        }
        let local = control.clock.local(self.kernel.now());
        if let Some(Node::Control(c)) = control.machine.as_mut().map(Checked::get_mut) {
            c.recovery_outcome(local, id, outcome);
        }
        self.drain(Scenario::CONTROL);
    }

    /// The process on `node` died: a restart or replacement the platform
    /// carried out for it has failed.
    pub(super) fn died(&mut self, node: NodeId) {
        if let Some(instance) = self.scenario.instance_on(node)
            && let Some(id) = self.last_action[instance.index()].take()
        {
            self.action_failed(id, Some(instance), FailReason::DiedAgain);
        }
    }
}
