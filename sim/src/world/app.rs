//! The simulated application on each instance: how it answers requests
//! and probes (service time, capacity, cores, and calls to its
//! dependencies, which `calls.rs` carries), the
//! application faults it suffers (hang, slow, errors, flap, disk full,
//! CPU), and its process dying by itself (a memory leak, a crash loop).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::RngExt as _;
use vigil_core::health::ProbeKind;
use vigil_core::message::Message;
use vigil_core::rng::Rng;
use vigil_core::{Duration, InstanceId, Instant, NodeId};

use crate::kernel::Event;
use crate::scenario::{FaultAction, Scenario};

use super::Simulation;
use super::calls::{Calls, Reply};
use super::host::HostState;
use super::net::sample;
use super::observe::OutageKind;

/// The simulated application on one instance: how it answers requests and
/// probes. Its heartbeat agent is separate (a sidecar): a hung application
/// keeps heartbeating.
#[derive(Clone, Debug, Default)]
pub(super) struct App {
    /// Hang faults in force (they nest).
    pub(super) hung: u32,
    /// Slow faults in force: the largest delay is added to every service
    /// time. Overlapping faults nest: each one's end removes only its own
    /// entry, and the worst still in force rules.
    pub(super) slow: Vec<Duration>,
    /// Errors faults in force: the largest share of answers are errors.
    pub(super) errors: Vec<f64>,
    /// Flap faults in force, oldest first, as `(period, since)`: failing in
    /// every odd half-cycle since `since` (the newest one rules).
    pub(super) flaps: Vec<(Duration, Instant)>,
    /// Service times and error draws; created on first use.
    pub(super) rng: Option<Rng>,
    /// When each request in service will be answered (a min-heap), to
    /// enforce the service's capacity.
    pub(super) busy_until: BinaryHeap<Reverse<Instant>>,
    /// Disk-full faults in force (host-level: a restart keeps them).
    pub(super) disk_full: u32,
    /// CPU cost multipliers in force; the largest rules.
    pub(super) cpu: Vec<f64>,
    /// Memory leaks in force, as their time to exhaustion; the fastest
    /// rules.
    pub(super) leaks: Vec<Duration>,
    /// Crash loops in force, as `(after, survives_replace)`; `cleared`
    /// counts those a replacement ended (they stay listed until their
    /// fault ends, to nest correctly).
    pub(super) loops: Vec<(Duration, bool, bool)>,
    /// When the running process started (for the leak's slowdown).
    pub(super) started: Instant,
    /// Its clients of its dependencies and the requests waiting on them
    /// (`calls.rs`).
    pub(super) calls: Calls,
}

impl App {
    /// Crash loops in force that still bite.
    pub(super) fn looping(&self) -> Option<Duration> {
        self.loops.iter().filter(|l| !l.2).map(|l| l.0).min()
    }

    /// The fastest leak in force.
    pub(super) fn leak(&self) -> Option<Duration> {
        self.leaks.iter().copied().min()
    }
}

impl App {
    /// An application fault begins at `now`; returns its outage kind.
    pub(super) fn begin(&mut self, action: &FaultAction, now: Instant) -> OutageKind {
        match action {
            FaultAction::Hang(_) => {
                self.hung += 1;
                OutageKind::Hang
            }
            FaultAction::Slow { extra, .. } => {
                self.slow.push(*extra);
                OutageKind::Slow
            }
            FaultAction::Errors { rate, .. } => {
                self.errors.push(*rate);
                OutageKind::Errors
            }
            FaultAction::Flap { period, .. } => {
                self.flaps.push((*period, now));
                OutageKind::Flap
            }
            FaultAction::DiskFull(_) => {
                self.disk_full += 1;
                OutageKind::DiskFull
            }
            FaultAction::Cpu { factor, .. } => {
                self.cpu.push(*factor);
                OutageKind::Cpu
            }
            _ => unreachable!("only application faults reach the application: a caller bug"),
        }
    }

    /// An application fault ends: only its own entry goes (they nest).
    pub(super) fn end(&mut self, action: &FaultAction) -> OutageKind {
        fn remove_first<T>(list: &mut Vec<T>, same: impl Fn(&T) -> bool) {
            if let Some(k) = list.iter().position(same) {
                list.remove(k);
            }
        }
        match action {
            FaultAction::Hang(_) => {
                self.hung = self.hung.saturating_sub(1);
                OutageKind::Hang
            }
            FaultAction::Slow { extra, .. } => {
                remove_first(&mut self.slow, |d| d == extra);
                OutageKind::Slow
            }
            FaultAction::Errors { rate, .. } => {
                remove_first(&mut self.errors, |r| r == rate);
                OutageKind::Errors
            }
            FaultAction::Flap { period, .. } => {
                remove_first(&mut self.flaps, |(p, _)| p == period);
                OutageKind::Flap
            }
            FaultAction::DiskFull(_) => {
                self.disk_full = self.disk_full.saturating_sub(1);
                OutageKind::DiskFull
            }
            FaultAction::Cpu { factor, .. } => {
                remove_first(&mut self.cpu, |f| f == factor);
                OutageKind::Cpu
            }
            _ => unreachable!("only application faults reach the application: a caller bug"),
        }
    }
}

impl Simulation<'_> {
    /// The application on instance node `node` answers a request or probe.
    ///
    /// It does its own work (service time, capacity, cores, slow, CPU,
    /// leak, errors; a hung application accepts nothing and calls
    /// nothing) and, for a service with dependencies, at once calls each
    /// edge not isolated by an open circuit through that edge's client: a
    /// request the drawn number of times (`calls`), a readiness or startup
    /// probe once (a deep readiness check), a liveness probe never (a
    /// dependency's failure must not get a healthy process restarted:
    /// Kubernetes' rule for liveness). A request turned away over capacity
    /// calls nothing. The answer goes when the own work is done and every
    /// call has completed; it is an error if the own draw says so or a
    /// call did not succeed.
    pub(super) fn app_answer(&mut self, from: NodeId, node: NodeId, message: Message) {
        let Some(instance) = self.scenario.instance_on(node) else { return };
        let (service, _) = self.scenario.locate(instance).expect("instance_on checked the range");
        let spec = &self.scenario.services[service];
        let (service_time, capacity, cores) = (spec.service_time, spec.capacity, spec.cores);
        let seed = self.seed;
        let now = self.kernel.now();
        let app = &mut self.apps[instance.index()];
        if app.hung > 0 {
            return; // accepts nothing, answers nothing
        }
        let (leak, started) = (app.leak(), app.started);
        let rng = app.rng.get_or_insert_with(|| seed.child_named("app").child(u64::from(instance.0)).rng());
        let extra = app.slow.iter().copied().max().unwrap_or_default();
        let mut cost = sample(&service_time, rng).as_nanos() as f64;
        // CPU: a costlier mix; and processor sharing when more requests
        // are in service than there are cores.
        cost *= app.cpu.iter().copied().fold(1.0, f64::max);
        while app.busy_until.peek().is_some_and(|Reverse(t)| *t <= now) {
            app.busy_until.pop();
        }
        if let Some(cores) = cores {
            let in_service = app.busy_until.len() as f64 + 1.0;
            cost *= (in_service / f64::from(cores)).max(1.0);
        }
        // Memory: in the second half of the way to exhaustion, garbage
        // collection slows everything, up to 4x.
        if let Some(leak) = leak {
            let used = (now - started).as_nanos() as f64 / leak.as_nanos().max(1) as f64;
            cost *= 1.0 + 6.0 * (used - 0.5).clamp(0.0, 0.5);
        }
        let mut delay = Duration::from_nanos(cost as u64) + extra;
        let mut overloaded = false;
        if let Message::Request(_) = message
            && (capacity.is_some() || cores.is_some())
        {
            if capacity.is_some_and(|cap| app.busy_until.len() >= cap as usize) {
                overloaded = true; // turned away at once: 503
                delay = Duration::ZERO;
            } else {
                app.busy_until.push(Reverse(now + delay));
            }
        }
        let flapping_bad = app.flaps.last().is_some_and(|&(period, since)| {
            let period_ns = period.as_nanos().max(1);
            ((now - since).as_nanos() / period_ns) % 2 == 1
        });
        let error = overloaded || flapping_bad || app.disk_full > 0 || {
            let p = app.errors.iter().copied().fold(0.0, f64::max);
            p > 0.0 && rng.random_bool(p.min(1.0))
        };
        let reply = match message {
            Message::Request(r) => Reply::Request(r.id),
            Message::Probe(p) => Reply::Probe(p.id),
            _ => return,
        };
        if spec.depends_on.is_empty() {
            self.answer(node, from, reply, error, delay);
            return;
        }
        // Downstream calls per edge.
        let counts: Vec<u32> = spec
            .depends_on
            .iter()
            .zip(&spec.calls_per_request)
            .map(|(&d, &ratio)| {
                if overloaded || self.open_circuits.contains(&(service, d)) {
                    return 0;
                }
                match message {
                    Message::Probe(p) if p.kind == ProbeKind::Liveness => 0,
                    Message::Probe(_) => 1,
                    _ => {
                        let whole = ratio.floor();
                        let frac = ratio - whole;
                        let rng = self.apps[instance.index()].rng.as_mut().expect("created above");
                        whole as u32 + u32::from(frac > 0.0 && rng.random_bool(frac))
                    }
                }
            })
            .collect();
        self.call_downstream(node, from, reply, delay, error, &counts);
    }

    /// Whether service `service` can answer its callers: some instance is
    /// running, not hung, its disk not full, and each of its own
    /// dependencies serves in turn (or is isolated by an open circuit).
    /// Only the recovery platform's half-open circuit trial asks this
    /// (requests find out by calling). The loader rejects dependency
    /// cycles, so the recursion ends.
    pub(super) fn serving(&self, service: usize) -> bool {
        let Some(s) = self.scenario.services.get(service) else { return false };
        let some_up = self.scenario.instances_of(service).any(|i| {
            let app = &self.apps[i as usize];
            self.nodes[Scenario::node_of(InstanceId(i)).index()].state == HostState::Up
                && app.hung == 0
                && app.disk_full == 0
        });
        some_up && s.depends_on.iter().all(|&d| self.open_circuits.contains(&(service, d)) || self.serving(d))
    }

    /// An application fault begins (`begin`) or ends on each of its
    /// target instances: the application changes and its outage opens or
    /// closes.
    pub(super) fn app_fault(&mut self, index: usize, action: &FaultAction, begin: bool) {
        let Some(targets) = action.node_lists().first().map(|l| l.to_vec()) else { return };
        let now = self.kernel.now();
        for n in targets {
            let Some(i) = self.scenario.instance_on(n) else { continue };
            let app = &mut self.apps[i.index()];
            if begin {
                let kind = app.begin(action, now);
                // A standby slot takes the fault when provisioned, but no
                // outage: nothing runs there yet.
                if self.nodes[n.index()].state != HostState::Vacant {
                    self.open_outage(n, kind, Some(index as u32));
                }
            } else {
                let kind = app.end(action);
                // A restart may have ended a hang already.
                if self.has_open(n, kind) {
                    self.close_outages_once(n, kind);
                }
            }
        }
    }

    /// Queue the death of the running process on `node` by its leak or
    /// crash loop, whichever comes first.
    pub(super) fn schedule_exit(&mut self, node: NodeId) {
        let Some(i) = self.scenario.instance_on(node) else { return };
        let slot = &self.nodes[node.index()];
        if slot.state != HostState::Up && slot.state != HostState::Paused {
            return;
        }
        let app = &self.apps[i.index()];
        let after = [app.looping(), app.leak()].into_iter().flatten().min();
        if let Some(after) = after {
            self.kernel
                .schedule(app.started + after, Event::ProcessExit { node, incarnation: slot.incarnation });
        }
    }

    /// A process may die by itself now.
    pub(super) fn process_exit(&mut self, node: NodeId, incarnation: u64) {
        let slot = &self.nodes[node.index()];
        if slot.incarnation != incarnation || slot.state != HostState::Up {
            return; // a newer process runs, or this one is already gone
        }
        let Some(i) = self.scenario.instance_on(node) else { return };
        let app = &self.apps[i.index()];
        let age = self.kernel.now() - app.started;
        if app.looping().is_some_and(|after| age >= after) {
            if self.has_open(node, OutageKind::CrashLoop) {
                // Still the same loop: the process dies, the outage goes on.
                self.stop(node);
                self.died(node);
            } else {
                let fault = self.fault_in_force(node, |a| matches!(a, FaultAction::CrashLoop { .. }));
                self.crash(node, OutageKind::CrashLoop, fault);
            }
        } else if app.leak().is_some_and(|leak| age >= leak) {
            let fault = self.fault_in_force(node, |a| matches!(a, FaultAction::MemoryLeak { .. }));
            self.crash(node, OutageKind::OutOfMemory, fault);
        }
    }
}
