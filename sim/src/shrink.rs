//! Shrinking a failing run: the smallest scenario that still fails the same
//! expectation with the same seed (what `vigil shrink` does).
//!
//! Every candidate is written as TOML with [`to_toml`] and loaded back with
//! [`parse`] before it runs, so whatever is kept is a valid scenario file
//! (a candidate that does not load is skipped, and costs no run). A
//! candidate is kept when its run fails the target expectation (by name)
//! *in a way the original did*: each part of the failure message, names and
//! figures masked ([`shapes`]), is one the original's message had — so a
//! crash detected too late does not shrink into one never detected because
//! the run now ends first. Anything else rejects it. The passes, repeated until a round changes nothing or the run budget
//! is spent:
//!
//! 1. **faults**: delta debugging (Zeller's ddmin) over the fault list,
//!    after first trying no fault at all;
//! 2. **extras**: drop `[load]` (unless the expectation is `availability`),
//!    then the services' `zones` (targets are written as names);
//! 3. **services**: drop services no fault names and no load calls, all at
//!    once, then one by one;
//! 4. **instances**: per service, binary search for the fewest instances,
//!    never fewer than the instances faults name one by one; those are
//!    renumbered first (`checkout/5` becomes `checkout/0`), whole-service
//!    targets keep naming the whole (smaller) service;
//! 5. **time shift**: move every fault earlier by the same whole number of
//!    seconds (binary search), so the run can end sooner, but not into the
//!    first 5 s (the fleet's warm-up) or before `[load]` starts;
//! 6. **fault durations**: per fault, binary search for the shortest
//!    `duration` (whole seconds, or milliseconds below one second);
//! 7. **run duration**: binary search down to no less than the last fault's
//!    start plus the detection bound (`detected_within`, else 1 s).
//!
//! The search is deterministic: the same scenario, seed and budget give the
//! same result, run for run. Binary searches assume "fails" is monotone,
//! which it need not be; they still only ever keep failing candidates.

use std::collections::BTreeMap;

use vigil_core::{Duration, NodeId};

use crate::check::{self, ExpectationOutcome};
use crate::scenario::write::fmt_duration;
use crate::scenario::{FaultAction, Partition, Scenario, WriteError, parse, to_toml};
use crate::world::Simulation;

/// The first seconds of a run, when the fleet registers: the time shift
/// moves no fault into them.
const WARMUP: Duration = Duration::from_secs(5);

/// Most rounds of passes.
const MAX_ROUNDS: u32 = 100;

/// How to shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Seed of the failing run.
    pub seed: u64,
    /// Most simulation runs to spend, the first (the original) included.
    pub max_runs: u32,
    /// The expectation that must keep failing; `None`: the first that fails.
    pub expectation: Option<String>,
}

/// Why nothing was shrunk.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The run passes: there is no failure to keep.
    #[error("the run passes with seed {seed}: nothing to shrink")]
    Passes {
        /// The seed.
        seed: u64,
    },
    /// The expectation asked for does not fail.
    #[error("`{name}` does not fail with seed {seed}; failing: {}", failing.join(", "))]
    NotFailing {
        /// The expectation asked for.
        name: String,
        /// The seed.
        seed: u64,
        /// The expectations that do fail.
        failing: Vec<String>,
    },
    /// The expectation asked for is not one the scenario states.
    #[error("the scenario states no expectation `{name}`; it states: {}", known.join(", "))]
    UnknownExpectation {
        /// The expectation asked for.
        name: String,
        /// The ones it states (`completes` always).
        known: Vec<String>,
    },
    /// The scenario has no file form.
    #[error("the scenario cannot be written back as TOML: {0}")]
    Unwritable(#[from] WriteError),
    /// The scenario, written back, does not load (a writer bug).
    #[error("the scenario, written back, does not load: {0}")]
    Unloadable(String),
}

/// How big a scenario is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Faults.
    pub faults: usize,
    /// Services.
    pub services: usize,
    /// Instances, all services together.
    pub instances: u32,
    /// Run duration.
    pub duration: Duration,
}

impl Size {
    /// The size of `scenario`.
    pub fn of(scenario: &Scenario) -> Size {
        Size {
            faults: scenario.faults.len(),
            services: scenario.services.len(),
            instances: scenario.instance_count(),
            duration: scenario.duration,
        }
    }
}

/// The result of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found (its `seed` is the run's).
    pub scenario: Scenario,
    /// It as TOML, without a header.
    pub toml: String,
    /// The expectation it fails.
    pub expectation: String,
    /// How it fails, in the smallest scenario's run.
    pub observed: String,
    /// Size before.
    pub before: Size,
    /// Size after.
    pub after: Size,
    /// Simulation runs spent, the original's included.
    pub runs: u32,
    /// Whether the budget ran out before the passes settled.
    pub budget_spent: bool,
}

impl Shrunk {
    /// `faults 12 -> 1, services 3 -> 1, instances 9 -> 3, duration 10m -> 45s, runs 87`.
    pub fn summary(&self) -> String {
        let (b, a) = (self.before, self.after);
        format!(
            "faults {} -> {}, services {} -> {}, instances {} -> {}, duration {} -> {}, runs {}{}",
            b.faults,
            a.faults,
            b.services,
            a.services,
            b.instances,
            a.instances,
            fmt_duration(b.duration),
            fmt_duration(a.duration),
            self.runs,
            if self.budget_spent { " (run budget spent)" } else { "" }
        )
    }

    /// The scenario file: a comment header, then the TOML. `origin` names
    /// the original file.
    pub fn file(&self, origin: &str) -> String {
        let size = |s: Size| {
            format!(
                "{} fault(s), {} service(s), {} instance(s), duration {}",
                s.faults,
                s.services,
                s.instances,
                fmt_duration(s.duration)
            )
        };
        let one_line = |t: &str| t.replace(['\n', '\r'], " ");
        format!(
            "# Shrunk by `vigil shrink` from {} with seed {}, in {} run(s){}.\n\
             # It still fails `{}`: {}\n\
             # Before: {}\n\
             # After:  {}\n\
             # Replay: vigil run FILE (the seed is the file's `seed`)\n\n{}",
            one_line(origin),
            self.scenario.seed,
            self.runs,
            if self.budget_spent { " (the run budget ran out first)" } else { "" },
            self.expectation,
            one_line(&self.observed),
            size(self.before),
            size(self.after),
            self.toml
        )
    }
}

/// The passes of one round, in order.
#[derive(Clone, Copy, Debug)]
enum Pass {
    Faults,
    Extras,
    Services,
    Instances,
    Shift,
    FaultDurations,
    RunDuration,
}

impl Pass {
    const ALL: [Pass; 7] = [
        Pass::Faults,
        Pass::Extras,
        Pass::Services,
        Pass::Instances,
        Pass::Shift,
        Pass::FaultDurations,
        Pass::RunDuration,
    ];

    fn name(self) -> &'static str {
        match self {
            Pass::Faults => "faults",
            Pass::Extras => "load and zones",
            Pass::Services => "services",
            Pass::Instances => "instances",
            Pass::Shift => "time shift",
            Pass::FaultDurations => "fault durations",
            Pass::RunDuration => "run duration",
        }
    }
}

/// Search state: the best failing candidate so far and the run budget.
struct Search<'p> {
    seed: u64,
    expectation: String,
    max_runs: u32,
    runs: u32,
    budget_spent: bool,
    /// Every candidate run or refused, by its TOML: how it failed, or
    /// `None` when it did not (or did not load).
    seen: BTreeMap<String, Option<String>>,
    /// Shapes of the original failure's parts: a candidate's must be among them.
    shapes: Vec<String>,
    best: Scenario,
    best_toml: String,
    observed: String,
    progress: &'p mut dyn FnMut(&str),
}

/// Run `scenario` with `seed` and return its expectations' outcomes.
fn outcomes(scenario: &Scenario, seed: u64) -> Vec<ExpectationOutcome> {
    let mut sim = Simulation::new(scenario, seed);
    sim.run();
    check::evaluate(&sim)
}

impl Search<'_> {
    /// Whether `candidate` loads and still fails; if so it becomes the best.
    fn try_candidate(&mut self, candidate: &Scenario) -> bool {
        let Ok(text) = to_toml(candidate) else { return false };
        if let Some(seen) = self.seen.get(&text) {
            // A failing candidate seen before becomes the best again: the
            // caller goes on from it.
            let Some(observed) = seen.clone() else { return false };
            let Ok(loaded) = parse(&text, "candidate") else { return false };
            self.best = loaded;
            self.best_toml = text;
            self.observed = observed;
            return true;
        }
        if self.runs >= self.max_runs {
            self.budget_spent = true;
            return false;
        }
        let Ok(loaded) = parse(&text, "candidate") else {
            self.seen.insert(text, None);
            return false;
        };
        self.runs += 1;
        let failed = outcomes(&loaded, self.seed).into_iter().find(|o| {
            o.name == self.expectation
                && !o.passed
                && shapes(&o.observed).iter().all(|s| self.shapes.contains(s))
        });
        self.seen.insert(text.clone(), failed.as_ref().map(|o| o.observed.clone()));
        let Some(o) = failed else { return false };
        self.best = loaded;
        self.best_toml = text;
        self.observed = o.observed;
        true
    }

    /// Whether the budget is spent; asked only when there is more to try,
    /// so a true answer marks the result as cut short.
    fn out_of_runs(&mut self) -> bool {
        if self.runs >= self.max_runs {
            self.budget_spent = true;
        }
        self.budget_spent
    }

    fn note(&mut self, pass: &str, before: &str) {
        if self.best_toml != before {
            let after = Size::of(&self.best);
            let msg = format!(
                "shrink: {pass}: faults {}, services {}, instances {}, duration {} (run {}/{})",
                after.faults,
                after.services,
                after.instances,
                fmt_duration(after.duration),
                self.runs,
                self.max_runs
            );
            (self.progress)(&msg);
        }
    }

    /// ddmin over the faults of the best scenario.
    fn faults(&mut self) {
        let with = |s: &Scenario, keep: &[usize]| {
            let mut c = s.clone();
            c.faults = keep.iter().map(|&i| s.faults[i].clone()).collect();
            c
        };
        let base = self.best.clone();
        let all: Vec<usize> = (0..base.faults.len()).collect();
        if all.is_empty() || self.try_candidate(&with(&base, &[])) {
            return;
        }
        let mut current = all;
        let mut n = 2usize;
        while current.len() >= 2 && !self.out_of_runs() {
            let chunks = split(&current, n);
            let mut reduced = false;
            for chunk in &chunks {
                if self.try_candidate(&with(&base, chunk)) {
                    current = chunk.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
            }
            if !reduced && n > 2 {
                for i in 0..chunks.len() {
                    let rest: Vec<usize> = chunks
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .flat_map(|(_, c)| c.clone())
                        .collect();
                    if self.try_candidate(&with(&base, &rest)) {
                        current = rest;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
            }
            if !reduced {
                if n >= current.len() {
                    break;
                }
                n = (n * 2).min(current.len());
            }
        }
    }

    /// Drop `[load]` (unless availability is the point) and the services'
    /// zones (targets are written as names, so nothing else needs them).
    fn extras(&mut self) {
        if self.best.load.is_some() && self.expectation != "availability" {
            let mut c = self.best.clone();
            c.load = None;
            self.try_candidate(&c);
        }
        if self.best.services.iter().any(|s| !s.zones.is_empty()) && !self.out_of_runs() {
            let mut c = self.best.clone();
            for s in &mut c.services {
                s.zones.clear();
            }
            self.try_candidate(&c);
        }
    }

    fn services(&mut self) {
        let droppable: Vec<usize> = (0..self.best.services.len())
            .filter(|&s| {
                self.best.load.as_ref().is_none_or(|l| !l.calls(s))
                    && !named_by_faults(&self.best).contains(&s)
            })
            .collect();
        if droppable.is_empty() {
            return;
        }
        if droppable.len() > 1 && droppable.len() < self.best.services.len() {
            let counts = counts_without(&self.best, &droppable);
            if let Some(c) = resize(&self.best, &counts) {
                if self.try_candidate(&c) {
                    return;
                }
            }
        }
        // One by one, from the last, so indices of the others stay valid
        // (`resize` refuses to drop the last service).
        for &s in droppable.iter().rev() {
            if self.out_of_runs() {
                return;
            }
            if let Some(c) = resize(&self.best, &counts_without(&self.best, &[s])) {
                self.try_candidate(&c);
            }
        }
    }

    fn instances(&mut self) {
        for s in 0..self.best.services.len() {
            if self.out_of_runs() {
                return;
            }
            let have = self.best.services[s].instances;
            let least = named_one_by_one(&self.best, s).len().max(1) as u32;
            self.search_down(least, have, |sc, k| {
                let mut counts: Vec<Option<u32>> = sc.services.iter().map(|v| Some(v.instances)).collect();
                counts[s] = Some(k);
                resize(sc, &counts)
            });
        }
    }

    fn shift(&mut self) {
        let Some(first) = self.best.faults.iter().map(|f| f.at).min() else { return };
        let most = u32::try_from(first.as_secs()).unwrap_or(u32::MAX);
        // Not into the fleet's warm-up: instances register and start to
        // heartbeat in the first seconds, and a fault then is another story.
        let warmup = self.best.load.as_ref().map_or(WARMUP, |l| l.start.max(WARMUP));
        let least = u32::try_from(warmup.as_secs()).unwrap_or(u32::MAX).min(most);
        // `k`: whole seconds left before the first fault once every fault
        // moved earlier by `most - k` seconds; `most` leaves them be.
        self.search_down(least, most, |sc, k| {
            let by = Duration::from_secs(u64::from(most - k));
            let mut c = sc.clone();
            for f in &mut c.faults {
                f.at = f.at.saturating_sub(by);
            }
            Some(c)
        });
    }

    fn fault_durations(&mut self) {
        for i in 0..self.best.faults.len() {
            if self.out_of_runs() {
                return;
            }
            let Some(d) = self.best.faults[i].duration else { continue };
            let unit =
                if d >= Duration::from_secs(2) { Duration::from_secs(1) } else { Duration::from_millis(1) };
            let steps = u32::try_from(d.as_nanos() / unit.as_nanos()).unwrap_or(u32::MAX);
            if steps <= 1 {
                continue;
            }
            self.search_down(1, steps, |sc, k| {
                let mut c = sc.clone();
                c.faults[i].duration = Some(unit * k);
                Some(c)
            });
        }
    }

    fn run_duration(&mut self) {
        let s = &self.best;
        let last = s.faults.iter().map(|f| f.at).max().unwrap_or_default();
        let bound = s.expect.detected_within.unwrap_or(Duration::from_secs(1));
        let mut floor = last + bound;
        if let Some(l) = &s.load {
            floor = floor.max(l.start + Duration::from_secs(1));
        }
        let floor = floor.as_secs() + u64::from(floor.subsec_nanos() > 0);
        let have = s.duration.as_secs();
        if floor >= have {
            return;
        }
        let (floor, have) =
            (u32::try_from(floor).unwrap_or(u32::MAX), u32::try_from(have).unwrap_or(u32::MAX));
        self.search_down(floor, have, |sc, k| {
            let mut c = sc.clone();
            c.duration = Duration::from_secs(u64::from(k));
            Some(c)
        });
    }

    /// Binary search for the smallest `k` in `[lo, hi)` whose candidate
    /// `make(best, k)` fails, `hi` standing for the best as it is. Returns
    /// whether one was kept.
    fn search_down(&mut self, lo: u32, hi: u32, make: impl Fn(&Scenario, u32) -> Option<Scenario>) -> bool {
        let base = self.best.clone();
        let (mut lo, mut hi) = (lo, hi);
        let mut kept = false;
        // Try the least first: often it simply works.
        if lo < hi && !self.out_of_runs() {
            if let Some(c) = make(&base, lo) {
                if self.try_candidate(&c) {
                    return true;
                }
            }
            lo += 1;
        }
        while lo < hi && !self.out_of_runs() {
            let mid = lo + (hi - lo) / 2;
            match make(&base, mid) {
                Some(c) if self.try_candidate(&c) => {
                    hi = mid;
                    kept = true;
                }
                _ => lo = mid + 1,
            }
        }
        kept
    }
}

/// The shapes of a failure message's parts (split at `; ` and `, `, so a
/// list of two items has the shapes of a list of five): each part with
/// node names (`checkout/2`) masked as `N` and figures (`4.200s`, `99.1%`,
/// `12`) as `#`. `checkout/2 at 50.000s took 4.200s` and `payments/0 at
/// 1.000s took 900ms` have one shape; `checkout/0 at 0ms never detected`
/// another. A shrunk run must fail in a way the original did: a crash
/// detected late must not turn into one never detected because the run now
/// ends too soon.
pub fn shapes(observed: &str) -> Vec<String> {
    let mut out: Vec<String> = observed
        .split("; ")
        .flat_map(|part| part.split(", "))
        .map(|part| {
            part.split_whitespace()
                .map(|token| {
                    let rest = token.trim_start_matches('(');
                    let core = rest.trim_end_matches([',', ';', ')', ':']);
                    let (head, tail) = (&token[..token.len() - rest.len()], &rest[core.len()..]);
                    let masked = if core.contains('/') {
                        "N"
                    } else if core.starts_with(|c: char| c.is_ascii_digit()) {
                        "#"
                    } else {
                        core
                    };
                    format!("{head}{masked}{tail}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `items` cut into `n` nearly equal consecutive chunks.
fn split(items: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, items.len().max(1));
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = items.len() / n + usize::from(i < items.len() % n);
        out.push(items[start..start + len].to_vec());
        start += len;
    }
    out
}

/// First node of each service.
fn firsts(scenario: &Scenario) -> Vec<u32> {
    let mut first = 1;
    scenario
        .services
        .iter()
        .map(|s| {
            let f = first;
            first += s.instances;
            f
        })
        .collect()
}

/// Services any fault names a node of.
fn named_by_faults(scenario: &Scenario) -> Vec<usize> {
    let mut out: Vec<usize> = scenario
        .faults
        .iter()
        .flat_map(|f| f.action.node_lists())
        .flatten()
        .filter_map(|&n| scenario.instance_on(n).and_then(|i| scenario.locate(i)).map(|(s, _)| s))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Instances of service `s` (indices within it) some fault names one by
/// one, not as part of the whole service.
fn named_one_by_one(scenario: &Scenario, s: usize) -> Vec<u32> {
    let first = firsts(scenario)[s];
    let count = scenario.services[s].instances;
    let mut out = Vec::new();
    for fault in &scenario.faults {
        for list in fault.action.node_lists() {
            let members: Vec<u32> = list
                .iter()
                .map(|n| n.0)
                .filter(|&n| n >= first && n < first + count)
                .map(|n| n - first)
                .collect();
            if members.len() < count as usize {
                out.extend(members);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Instance counts with the services `drop` removed.
fn counts_without(scenario: &Scenario, drop: &[usize]) -> Vec<Option<u32>> {
    scenario.services.iter().enumerate().map(|(i, s)| (!drop.contains(&i)).then_some(s.instances)).collect()
}

/// `scenario` with service `i` resized to `counts[i]` instances, or removed
/// when `None`. Within a service, the instances faults name one by one are
/// kept first, then the lowest others, renumbered in their old order.
/// Fault targets follow: a list that named a whole service names the whole
/// resized service; a node removed leaves its lists; a fault left with an
/// empty list (or a partition with fewer than two groups) is dropped.
/// `None` when a service the load calls would go, or a count would drop below
/// the instances faults name one by one.
pub fn resize(scenario: &Scenario, counts: &[Option<u32>]) -> Option<Scenario> {
    if counts.len() != scenario.services.len() || counts.iter().all(Option::is_none) {
        return None;
    }
    let old_first = firsts(scenario);
    // Old node -> new node.
    let mut map: Vec<Option<NodeId>> = vec![None; 1 + scenario.instance_count() as usize];
    map[0] = Some(Scenario::CONTROL);
    let mut services = Vec::new();
    let mut service_map = Vec::new();
    let mut new_first = Vec::new();
    let mut next = 1u32;
    for (s, (service, count)) in scenario.services.iter().zip(counts).enumerate() {
        let Some(k) = *count else {
            service_map.push(None);
            new_first.push(None);
            continue;
        };
        if k == 0 {
            return None;
        }
        let needed = named_one_by_one(scenario, s);
        if (k as usize) < needed.len() {
            return None;
        }
        let mut keep: Vec<u32> = needed.clone();
        keep.extend((0..service.instances).filter(|i| !needed.contains(i)).take(k as usize - needed.len()));
        keep.sort_unstable();
        keep.truncate(k as usize);
        for (new, &old) in keep.iter().enumerate() {
            map[(old_first[s] + old) as usize] = Some(NodeId(next + new as u32));
        }
        service_map.push(Some(services.len()));
        new_first.push(Some(next));
        next += keep.len() as u32;
        let mut resized = service.clone();
        resized.instances = keep.len() as u32;
        // Standby slots are the last ones; at least one must run.
        let first_standby = service.instances - service.standby.min(service.instances);
        resized.standby = keep.iter().filter(|&&i| i >= first_standby).count() as u32;
        if resized.standby >= resized.instances {
            return None;
        }
        services.push(resized);
    }
    // Dependencies on dropped services go; the rest are renumbered.
    // The fan-out ratios go with their edges.
    for service in &mut services {
        let (depends_on, calls_per_request) = service
            .depends_on
            .iter()
            .zip(&service.calls_per_request)
            .filter_map(|(&d, &r)| Some((service_map[d]?, r)))
            .unzip();
        service.depends_on = depends_on;
        service.calls_per_request = calls_per_request;
    }
    let load = match &scenario.load {
        None => None,
        Some(l) => {
            let mut l = l.clone();
            for t in &mut l.targets {
                t.service = service_map[t.service]?;
            }
            Some(l)
        }
    };
    let remap = |list: &Vec<NodeId>| -> Vec<NodeId> {
        let mut out = Vec::new();
        for (s, service) in scenario.services.iter().enumerate() {
            let range = old_first[s]..old_first[s] + service.instances;
            let members = list.iter().filter(|n| range.contains(&n.0)).count();
            if members == service.instances as usize {
                if let (Some(f), Some(ns)) = (new_first[s], service_map[s]) {
                    out.extend((f..f + services[ns].instances).map(NodeId));
                }
            } else {
                out.extend(list.iter().filter(|n| range.contains(&n.0)).filter_map(|n| map[n.index()]));
            }
        }
        if list.contains(&Scenario::CONTROL) {
            out.push(Scenario::CONTROL);
        }
        out.sort_unstable();
        out.dedup();
        out
    };
    let mut faults = Vec::new();
    for fault in &scenario.faults {
        let mut action = fault.action.clone();
        match &mut action {
            FaultAction::Partition(Partition::Groups(groups)) => {
                let kept: Vec<Vec<NodeId>> = groups.iter().map(&remap).filter(|g| !g.is_empty()).collect();
                if kept.len() < 2 {
                    continue;
                }
                *groups = kept;
            }
            FaultAction::Partition(Partition::OneWay { from, to }) => {
                *from = remap(from);
                *to = remap(to);
            }
            other => {
                if let Some(targets) = other.targets_mut() {
                    *targets = remap(targets);
                }
            }
        }
        if action.node_lists().iter().any(|l| l.is_empty()) {
            continue;
        }
        faults.push(crate::scenario::Fault { action, ..fault.clone() });
    }
    let mut resized = Scenario { services, faults, load, ..scenario.clone() };
    resized.sync_recovery_services();
    Some(resized)
}

/// Shrink a failing run of `scenario` with `options.seed`. `progress` gets
/// a line after each pass that made the scenario smaller.
pub fn shrink(
    scenario: &Scenario,
    options: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Shrunk, ShrinkError> {
    let mut original = scenario.clone();
    original.seed = options.seed;
    let text = to_toml(&original)?;
    let loaded = parse(&text, "written").map_err(|e| ShrinkError::Unloadable(e.to_string()))?;
    let first = outcomes(&loaded, options.seed);
    if let Some(name) = &options.expectation
        && !first.iter().any(|o| &o.name == name)
    {
        return Err(ShrinkError::UnknownExpectation {
            name: name.clone(),
            known: first.iter().map(|o| o.name.clone()).collect(),
        });
    }
    let failing: Vec<&ExpectationOutcome> = first.iter().filter(|o| !o.passed).collect();
    let Some(target) = (match &options.expectation {
        Some(name) => failing.iter().find(|o| &o.name == name),
        None => failing.first(),
    }) else {
        return Err(match &options.expectation {
            Some(name) if !failing.is_empty() => ShrinkError::NotFailing {
                name: name.clone(),
                seed: options.seed,
                failing: failing.iter().map(|o| o.name.clone()).collect(),
            },
            _ => ShrinkError::Passes { seed: options.seed },
        });
    };
    let before = Size::of(&loaded);
    let mut search = Search {
        seed: options.seed,
        expectation: target.name.clone(),
        max_runs: options.max_runs.max(1),
        runs: 1,
        budget_spent: false,
        seen: BTreeMap::from([(text.clone(), Some(target.observed.clone()))]),
        shapes: shapes(&target.observed),
        best: loaded,
        best_toml: text,
        observed: target.observed.clone(),
        progress,
    };
    (search.progress)(&format!(
        "shrink: keeping `{}` failing: {}; {} fault(s), {} service(s), {} instance(s), duration {}",
        search.expectation,
        search.observed,
        before.faults,
        before.services,
        before.instances,
        fmt_duration(before.duration)
    ));
    // Every pass only removes or shortens, so rounds settle; the bound is
    // a guard against a round that only replays cached candidates.
    for _round in 0..MAX_ROUNDS {
        let round = search.best_toml.clone();
        for pass in Pass::ALL {
            if search.out_of_runs() {
                break;
            }
            let before = search.best_toml.clone();
            match pass {
                Pass::Faults => search.faults(),
                Pass::Extras => search.extras(),
                Pass::Services => search.services(),
                Pass::Instances => search.instances(),
                Pass::Shift => search.shift(),
                Pass::FaultDurations => search.fault_durations(),
                Pass::RunDuration => search.run_duration(),
            }
            search.note(pass.name(), &before);
        }
        if search.best_toml == round || search.out_of_runs() {
            break;
        }
    }
    let after = Size::of(&search.best);
    Ok(Shrunk {
        toml: search.best_toml,
        expectation: search.expectation,
        observed: search.observed,
        before,
        after,
        runs: search.runs,
        budget_spent: search.budget_spent,
        scenario: search.best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_mask_names_and_figures() {
        assert_eq!(
            shapes(
                "checkout/2 at 50.000s took 4.200s; payments/0 at 70.000s never detected; a/1 at 1.000s took 900ms"
            ),
            vec!["N at # never detected".to_string(), "N at # took #".to_string()]
        );
        assert_eq!(
            shapes("99.000% (990 of 1000 calls; 10 error, 0 refused, 0 timeout, 0 no endpoint)"),
            ["# (# of # calls", "# error", "# no endpoint)", "# refused", "# timeout"]
                .map(String::from)
                .to_vec()
        );
        assert_eq!(
            shapes("healthy instance(s) declared dead: a/0 at 3.000s"),
            vec!["healthy instance(s) declared dead: N at #".to_string()]
        );
    }

    #[test]
    fn resize_keeps_each_calls_ratio_with_its_edge() {
        let source = "name = \"t\"\nduration = \"1m\"\n\
            [[service]]\nname = \"cache\"\ninstances = 1\n\
            [[service]]\nname = \"db\"\ninstances = 1\n\
            [[service]]\nname = \"api\"\ninstances = 2\ndepends_on = [\"cache\", \"db\"]\n\
            calls = { cache = 4, db = 0.5 }\n";
        let scenario = crate::parse(source, "t.toml").expect("valid");
        // Drop cache: api keeps its edge to db, renumbered, with db's ratio.
        let shrunk = resize(&scenario, &[None, Some(1), Some(2)]).expect("a fleet is left");
        let api = &shrunk.services[1];
        assert_eq!((api.depends_on.as_slice(), api.calls_per_request.as_slice()), (&[0][..], &[0.5][..]));
        let text = crate::scenario::to_toml(&shrunk).expect("writes");
        assert!(text.contains("calls = { db = 0.5 }"), "{text}");
    }

    #[test]
    fn split_cuts_into_near_equal_chunks() {
        assert_eq!(split(&[0, 1, 2, 3, 4], 2), vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(split(&[0, 1, 2], 3), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(split(&[0, 1], 5), vec![vec![0], vec![1]]);
    }

    #[test]
    fn resize_renumbers_named_instances_and_keeps_whole_service_targets() {
        let s = parse(
            "name = \"r\"\nduration = \"1m\"\n\
             [[service]]\nname = \"a\"\ninstances = 6\n\
             [[service]]\nname = \"b\"\ninstances = 3\n\
             [[service]]\nname = \"c\"\ninstances = 1\n\
             [[fault]]\nat = \"1s\"\nkind = \"crash\"\ntarget = \"a/4\"\n\
             [[fault]]\nat = \"2s\"\nkind = \"pause\"\ntarget = \"b/*\"\n\
             [[fault]]\nat = \"3s\"\nkind = \"partition\"\ngroups = [[\"control\"], [\"c/0\"]]\n",
            "r",
        )
        .expect("loads");
        let r = resize(&s, &[Some(1), Some(2), None]).expect("resizable");
        let text = to_toml(&r).expect("writable");
        assert!(text.contains("target = \"a/0\""), "{text}");
        assert!(text.contains("target = \"b/*\""), "{text}");
        assert!(!text.contains("partition"), "a partition left with one group goes: {text}");
        assert_eq!(r.instance_count(), 3);
        assert!(parse(&text, "resized").is_ok());
        assert!(resize(&s, &[Some(0), Some(1), Some(1)]).is_none());
        assert!(resize(&s, &[None, None, None]).is_none());
    }
}
