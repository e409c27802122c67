//! A finished run as a readable timeline: what `vigil replay` prints.
//!
//! Built from the structured [`Observations`](crate::world::Observations)
//! (fault spans, outages and their detection, failure-detector verdicts,
//! health-monitor changes, the client balancer's events), never by parsing
//! the event-by-event timeline text. Entries are in time order; entries at
//! the same instant are ordered by kind (fault, outage, verdict, health,
//! balance; a detection last, after the verdict that made it), then by the
//! order they were observed.

use std::fmt::Write as _;

use vigil_core::recovery::RecoveryOutput;
use vigil_core::{Duration, InstanceId, Instant};

use crate::check::{self, ExpectationOutcome};
use crate::scenario::Scenario;
use crate::text;
use crate::world::{MonitorChange, Simulation};

pub use crate::text::{action_words, decision_words, fmt_time, recovery_line, recovery_words};

/// What an entry is about; `--filter` takes these names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A scheduled fault began or ended.
    Fault,
    /// An outage of an instance began, was detected, or ended.
    Outage,
    /// The failure detector changed its verdict on an instance.
    Verdict,
    /// The health monitor changed an instance's status, rotation or
    /// recovery need.
    Health,
    /// The client's balancer ejected or returned an instance, or entered or
    /// left panic mode.
    Balance,
    /// Recovery decided or acted, or the platform carried an action out.
    Recovery,
}

impl Kind {
    /// Every kind, in the order entries at one instant are printed.
    pub const ALL: [Kind; 6] =
        [Kind::Fault, Kind::Outage, Kind::Verdict, Kind::Health, Kind::Balance, Kind::Recovery];

    /// The name `--filter` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fault => "fault",
            Kind::Outage => "outage",
            Kind::Verdict => "verdict",
            Kind::Health => "health",
            Kind::Balance => "balance",
            Kind::Recovery => "recovery",
        }
    }

    /// The kind named `name` (also accepting a plural `s`).
    pub fn parse(name: &str) -> Option<Kind> {
        let name = name.trim();
        let name = name.strip_suffix('s').filter(|n| *n != "statu").unwrap_or(name);
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Simulated time.
    pub at: Instant,
    /// What it is about.
    pub kind: Kind,
    /// Names of the nodes it concerns (`control`, `checkout/0`, `client`);
    /// empty when it concerns no node in particular (a `heal`).
    pub nodes: Vec<String>,
    /// The nodes as printed: one name, or a short list.
    pub who: String,
    /// What happened.
    pub text: String,
    /// Order among entries at the same instant: a fault before the outage
    /// it causes, a verdict before the detection it makes.
    rank: u8,
}

/// Which entries to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries at or after this time.
    pub from: Option<Duration>,
    /// Only entries at or before this time.
    pub until: Option<Duration>,
    /// Only entries of these kinds (`None`: all).
    pub kinds: Option<Vec<Kind>>,
    /// Only entries concerning this node (`checkout/0`, `control`,
    /// `client`) or any instance of this service (`checkout`,
    /// `checkout/*`).
    pub node: Option<String>,
}

impl Filter {
    /// Parse a `--filter` list: `fault,verdict`.
    pub fn parse_kinds(list: &str) -> Result<Vec<Kind>, String> {
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind = Kind::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown kind `{name}`; known kinds: {}", known.join(", "))
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err("`--filter` is empty; name at least one kind".to_string());
        }
        Ok(kinds)
    }

    /// Whether `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        let t = entry.at.since_epoch();
        self.from.is_none_or(|f| t >= f)
            && self.until.is_none_or(|u| t <= u)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&entry.kind))
            && self.node.as_deref().is_none_or(|n| entry.nodes.iter().any(|e| node_matches(n, e)))
    }
}

/// Whether a node filter `pattern` names node `name`.
fn node_matches(pattern: &str, name: &str) -> bool {
    let service = pattern.strip_suffix("/*").unwrap_or(pattern);
    name == pattern || name.split_once('/').is_some_and(|(s, _)| s == service)
}

/// Rank of a detection (or its absence): after the verdicts, statuses and
/// balancer events of its instant, before recovery's reaction.
const DETECTED: u8 = Kind::Balance as u8 + 1;

/// Rank of recovery entries: after the detection they react to.
const RECOVERY: u8 = DETECTED + 1;

/// The timeline of a finished run, in time order.
pub fn entries(sim: &Simulation<'_>) -> Vec<Entry> {
    let scenario = sim.scenario();
    let obs = sim.observations();
    let name = |i: InstanceId| scenario.node_name(Scenario::node_of(i));
    let one = |at: Instant, kind: Kind, node: String, text: String| Entry {
        at,
        kind,
        nodes: vec![node.clone()],
        who: node,
        rank: kind as u8,
        text,
    };
    let mut out = Vec::new();
    for (index, (fault, span)) in sim.plan().iter().zip(&obs.faults).enumerate() {
        let nodes = fault.action.nodes();
        let who = if nodes.is_empty() { "-".to_string() } else { text::names(scenario, &nodes) };
        let names: Vec<String> = nodes.iter().map(|&n| scenario.node_name(n)).collect();
        let what = text::describe(scenario, fault);
        let mut push = |at: Instant, text: String| {
            out.push(Entry { at, kind: Kind::Fault, nodes: names.clone(), who: who.clone(), text, rank: 0 });
        };
        if let Some(at) = span.began {
            push(at, format!("begins: {what} (fault #{index}, line {})", fault.line));
        }
        if let Some(at) = span.ended {
            push(at, format!("ends: {what} (fault #{index})"));
        }
    }
    for d in check::detections(sim) {
        let began = Instant::from_millis(d.began_ms);
        let kind = d.kind.name();
        out.push(one(began, Kind::Outage, d.instance.clone(), format!("{kind} outage begins")));
        match (d.detected_ms, &d.detected_as) {
            (Some(ms), Some(what)) => {
                let after = text::fmt_duration(Duration::from_millis(ms - d.began_ms));
                out.push(Entry {
                    rank: DETECTED,
                    ..one(
                        Instant::from_millis(ms),
                        Kind::Outage,
                        d.instance.clone(),
                        format!("{kind} outage detected as {what} after {after}"),
                    )
                });
            }
            _ => {
                let at = d.ended_ms.map_or_else(|| sim.now(), Instant::from_millis);
                let text = format!("{kind} outage NOT detected");
                out.push(Entry { rank: DETECTED, ..one(at, Kind::Outage, d.instance.clone(), text) });
            }
        }
        if let Some(ms) = d.ended_ms {
            out.push(one(Instant::from_millis(ms), Kind::Outage, d.instance, format!("{kind} outage ends")));
        }
    }
    for v in &obs.verdicts {
        out.push(one(v.at, Kind::Verdict, name(v.instance), format!("detector: {} -> {}", v.from, v.to)));
    }
    for m in &obs.monitor {
        let text = match m.change {
            MonitorChange::Status { from, to } => format!("monitor: {from} -> {to}"),
            MonitorChange::Ready(true) => "monitor: ready, in rotation".to_string(),
            MonitorChange::Ready(false) => "monitor: not ready, out of rotation".to_string(),
            MonitorChange::NeedsRecovery(status) => format!("monitor: needs recovery ({status})"),
        };
        out.push(one(m.at, Kind::Health, name(m.instance), text));
    }
    for (at, event) in &obs.balance {
        let (about, text) = text::balance_words(event);
        let node = about.map_or_else(|| "client".to_string(), name);
        out.push(one(*at, Kind::Balance, node, text));
    }
    let services: Vec<String> = scenario.services.iter().map(|s| s.name.clone()).collect();
    // Decisions, actions and platform steps, interleaved in the order they
    // happened.
    let platform_entry = |p: &crate::world::PlatformEvent| {
        let who = p.instance.map_or_else(|| "platform".to_string(), name);
        let text = format!("platform {}: {}", p.action, p.step);
        Entry { rank: RECOVERY, ..one(p.at, Kind::Recovery, who, text) }
    };
    let mut steps = obs.platform.iter().peekable();
    for (k, (at, output)) in obs.recovery.iter().enumerate() {
        while let Some(p) = steps.next_if(|p| p.after <= k) {
            out.push(platform_entry(p));
        }
        let instance = match output {
            RecoveryOutput::Action(a) => a.instance,
            RecoveryOutput::Decision(d) => d.instance,
            _ => None,
        };
        let who = instance.map_or_else(|| "control".to_string(), name);
        let text = recovery_words(output, &services);
        out.push(Entry { rank: RECOVERY, ..one(*at, Kind::Recovery, who, text) });
    }
    out.extend(steps.map(platform_entry));
    // Stable: among equal (time, rank), the order observed.
    out.sort_by_key(|e| (e.at, e.rank));
    out
}

/// The replay as text: a header, the entries `filter` passes, and the
/// expectations' outcomes.
pub fn render(sim: &Simulation<'_>, seed: u64, filter: &Filter) -> (String, Vec<ExpectationOutcome>) {
    let scenario = sim.scenario();
    let all = entries(sim);
    let shown: Vec<&Entry> = all.iter().filter(|e| filter.matches(e)).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "replay    {} seed {}: {} simulated, {} events",
        scenario.name,
        seed,
        text::fmt_duration(sim.now().since_epoch()),
        sim.events_processed()
    );
    let _ = writeln!(s, "showing   {} of {} entries\n", shown.len(), all.len());
    let width = shown.iter().map(|e| e.who.chars().count()).max().unwrap_or(4).clamp(4, 28);
    for e in &shown {
        let _ = writeln!(s, "{:>10}  {:<8}  {:<width$}  {}", fmt_time(e.at), e.kind.name(), e.who, e.text);
    }
    let outcomes = check::evaluate(sim);
    let passed = outcomes.iter().all(|o| o.passed);
    let _ = writeln!(s, "\nresult    {}", if passed { "PASSED" } else { "FAILED" });
    for o in &outcomes {
        let _ = writeln!(s, "  {} {:<16} {}", if o.passed { "ok  " } else { "FAIL" }, o.name, o.observed);
    }
    (s, outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_with_plurals_and_reject_unknown_names() {
        assert_eq!(
            Filter::parse_kinds("fault, verdicts,health"),
            Ok(vec![Kind::Fault, Kind::Verdict, Kind::Health])
        );
        assert!(Filter::parse_kinds("faults,bogus").unwrap_err().contains("known kinds: fault, outage"));
        assert!(Filter::parse_kinds(" , ").is_err());
    }

    #[test]
    fn node_patterns_name_instances_and_services() {
        assert!(node_matches("checkout/0", "checkout/0"));
        assert!(!node_matches("checkout/0", "checkout/1"));
        assert!(node_matches("checkout", "checkout/1"));
        assert!(node_matches("checkout/*", "checkout/1"));
        assert!(!node_matches("checkout", "checkouts/1"));
        assert!(node_matches("control", "control"));
        assert!(!node_matches("control", "client"));
    }

    #[test]
    fn a_crash_shows_its_fault_outage_and_verdicts_in_time_order() {
        let scenario = crate::scenario::parse(
            "name = \"c\"\nduration = \"40s\"\n[[service]]\nname = \"a\"\ninstances = 2\n\
             [[fault]]\nat = \"10s\"\nduration = \"15s\"\nkind = \"crash\"\ntarget = \"a/1\"\n",
            "c",
        )
        .expect("loads");
        let mut sim = Simulation::new(&scenario, 3);
        sim.run();
        let all = entries(&sim);
        assert!(all.windows(2).all(|w| (w[0].at, w[0].rank) <= (w[1].at, w[1].rank)));
        let texts: Vec<String> = all
            .iter()
            .filter(|e| e.nodes == ["a/1"])
            .map(|e| format!("{} {}", fmt_time(e.at), e.text))
            .collect();
        assert!(texts.iter().any(|t| t.starts_with("10.000s begins: crash a/1")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("crash outage detected as dead")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("detector: suspect -> dead")), "{texts:?}");
        assert!(texts.iter().any(|t| t.starts_with("25.000s ends: crash a/1")), "{texts:?}");
    }
}
