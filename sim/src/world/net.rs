//! The simulated network.
//!
//! Every message a node sends passes through [`Network::send`], which decides
//! its fate from the link's own random stream: lost, delayed (by the latency
//! model, plus an extra hold for reordering), possibly duplicated. Active
//! partitions are checked when a message is sent *and* when it would be
//! delivered ([`Network::blocked`]), so nothing crosses a partition, not even
//! a message that was in flight when it began.
//!
//! Each ordered pair of nodes is a link with a child random stream derived
//! from the run seed and the pair, created when first used: adding a node
//! never reshuffles the fate of other links' messages.

use rand::RngExt as _;
use vigil_core::rng::{Rng, Seed};
use vigil_core::{Duration, Instant, NodeId};

use crate::scenario::{LatencyModel, NetworkConfig, Partition};

/// Counters of what the network did, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered to a running machine.
    pub delivered: u64,
    /// Lost to the loss probability.
    pub lost: u64,
    /// Dropped because a partition blocked them (at send or at delivery).
    pub partitioned: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Held back for reordering.
    pub reordered: u64,
    /// Arrived at a host that was down.
    pub host_down: u64,
    /// What the receiving processes' frame checks did
    /// ([`vigil_core::auth`]): `accepted` are not counted here (they are
    /// `delivered`); every rejection is, by kind. Duplicates the network
    /// made are `replayed`.
    pub auth: vigil_core::auth::AuthStats,
}

/// The fate of one sent message: up to two copies, each with its delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fate {
    /// Delay of each copy to be delivered; `None` for no copy.
    pub copies: [Option<Duration>; 2],
}

/// A partition in force, with dense per-node tables for O(1) checks.
#[derive(Clone, Debug)]
struct ActivePartition {
    id: u32,
    began: Instant,
    rule: Rule,
}

#[derive(Clone, Debug)]
enum Rule {
    /// `group[node]`: 0 for none, else 1 + group index.
    Groups(Vec<u16>),
    /// `side[node]`: bit 0 set for senders, bit 1 for receivers.
    OneWay(Vec<u8>),
    /// `isolated[node]`.
    Isolate(Vec<bool>),
}

impl Rule {
    fn new(spec: &Partition, nodes: usize) -> Rule {
        match spec {
            Partition::Groups(groups) => {
                let mut table = vec![0u16; nodes];
                for (g, members) in groups.iter().enumerate() {
                    for n in members {
                        table[n.index()] = u16::try_from(g + 1).unwrap_or(u16::MAX);
                    }
                }
                Rule::Groups(table)
            }
            Partition::OneWay { from, to } => {
                let mut table = vec![0u8; nodes];
                for n in from {
                    table[n.index()] |= 1;
                }
                for n in to {
                    table[n.index()] |= 2;
                }
                Rule::OneWay(table)
            }
            Partition::Isolate(members) => {
                let mut table = vec![false; nodes];
                for n in members {
                    table[n.index()] = true;
                }
                Rule::Isolate(table)
            }
        }
    }

    fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        let (f, t) = (from.index(), to.index());
        match self {
            Rule::Groups(g) => g[f] != 0 && g[t] != 0 && g[f] != g[t],
            Rule::OneWay(side) => side[f] & 1 != 0 && side[t] & 2 != 0,
            Rule::Isolate(iso) => from != to && (iso[f] || iso[t]),
        }
    }
}

/// Links, partitions and the counters of a run.
pub struct Network {
    config: NetworkConfig,
    seed: Seed,
    nodes: usize,
    /// `links[from]`: the random stream of each link out of `from`, sorted
    /// by destination. Dense by sender, so the common case (a node talking
    /// to one or a few peers) is a short scan, not a tree walk.
    links: Vec<Vec<(u32, Rng)>>,
    partitions: Vec<ActivePartition>,
    /// Network faults in force: extra delay, loss and duplication on
    /// messages from or to their nodes.
    impairments: Vec<Impairment>,
    stats: NetworkStats,
}

/// A network fault in force.
struct Impairment {
    id: u32,
    /// Sorted.
    nodes: Vec<NodeId>,
    latency: Duration,
    loss: f64,
    duplicate: f64,
}

impl Network {
    /// A network of `nodes` nodes, drawing randomness from `seed`.
    pub fn new(config: NetworkConfig, nodes: usize, seed: Seed) -> Self {
        Network {
            config,
            seed,
            nodes,
            links: (0..nodes).map(|_| Vec::new()).collect(),
            partitions: Vec::new(),
            impairments: Vec::new(),
            stats: NetworkStats::default(),
        }
    }

    /// Put network fault `id` in force: messages from or to `nodes` are
    /// delayed by `latency` more, lost with probability `loss` and
    /// duplicated with probability `duplicate` (the worst in force rules
    /// for loss and duplication; delays add up).
    pub fn impair(&mut self, id: u32, nodes: &[NodeId], latency: Duration, loss: f64, duplicate: f64) {
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        self.impairments.push(Impairment { id, nodes, latency, loss, duplicate });
    }

    /// End network fault `id`.
    pub fn unimpair(&mut self, id: u32) {
        self.impairments.retain(|i| i.id != id);
    }

    /// Counters so far.
    pub fn stats(&self) -> &NetworkStats {
        &self.stats
    }

    /// Mutable counters, for the simulator's delivery-side accounting.
    pub fn stats_mut(&mut self) -> &mut NetworkStats {
        &mut self.stats
    }

    /// Whether an active partition blocks messages from `from` to `to`.
    #[inline]
    pub fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.partitions.iter().any(|p| p.rule.blocks(from, to))
    }

    /// Whether an active `isolate` partition cuts `node` off: the only
    /// kind that blocks a sender in no partition group (the attacker).
    pub fn isolated(&self, node: NodeId) -> bool {
        self.partitions.iter().any(|p| matches!(&p.rule, Rule::Isolate(iso) if iso[node.index()]))
    }

    /// Decide the fate of a message sent from `from` to `to` now.
    pub fn send(&mut self, from: NodeId, to: NodeId) -> Fate {
        self.stats.sent += 1;
        const NONE: Fate = Fate { copies: [None, None] };
        if self.blocked(from, to) {
            self.stats.partitioned += 1;
            return NONE;
        }
        let rng = link_rng(&mut self.links[from.index()], self.seed, from, to);
        let config = &self.config;
        let (mut loss, mut duplicate_p, mut extra) = (config.loss, config.duplicate, Duration::ZERO);
        for i in &self.impairments {
            if i.nodes.binary_search(&from).is_ok() || i.nodes.binary_search(&to).is_ok() {
                loss = loss.max(i.loss);
                duplicate_p = duplicate_p.max(i.duplicate);
                extra += i.latency;
            }
        }
        if loss > 0.0 && rng.random_bool(loss.min(1.0)) {
            self.stats.lost += 1;
            return NONE;
        }
        let mut delay = sample(&config.latency, rng) + extra;
        if config.reorder > 0.0 && rng.random_bool(config.reorder) {
            let extra_ns = u64::try_from(config.reorder_delay.as_nanos()).unwrap_or(u64::MAX);
            delay += Duration::from_nanos(rng.random_range(0..=extra_ns));
            self.stats.reordered += 1;
        }
        let duplicate = if duplicate_p > 0.0 && rng.random_bool(duplicate_p.min(1.0)) {
            self.stats.duplicated += 1;
            Some(sample(&config.latency, rng) + extra)
        } else {
            None
        };
        Fate { copies: [Some(delay), duplicate] }
    }

    /// Put partition `id` (built from `spec`) in force at `now`.
    pub fn partition(&mut self, id: u32, spec: &Partition, now: Instant) {
        self.partitions.push(ActivePartition { id, began: now, rule: Rule::new(spec, self.nodes) });
    }

    /// Ids of the partitions in force, oldest first.
    pub fn active_partitions(&self) -> impl Iterator<Item = u32> + '_ {
        self.partitions.iter().map(|p| p.id)
    }

    /// When partition `id` may heal: its start plus the stability time.
    /// `None` when it is not in force.
    pub fn heal_allowed_at(&self, id: u32) -> Option<Instant> {
        self.partitions.iter().find(|p| p.id == id).map(|p| p.began + self.config.stability)
    }

    /// End partition `id`. Returns whether it was in force.
    pub fn heal(&mut self, id: u32) -> bool {
        let before = self.partitions.len();
        self.partitions.retain(|p| p.id != id);
        self.partitions.len() != before
    }
}

/// The stream of link `from -> to`, created on first use.
#[inline]
fn link_rng(out_links: &mut Vec<(u32, Rng)>, seed: Seed, from: NodeId, to: NodeId) -> &mut Rng {
    let i = match out_links.binary_search_by_key(&to.0, |&(t, _)| t) {
        Ok(i) => i,
        Err(i) => {
            let rng = seed.child((u64::from(from.0) << 32) | u64::from(to.0)).rng();
            out_links.insert(i, (to.0, rng));
            i
        }
    };
    &mut out_links[i].1
}

/// Draw one delay from `model`.
///
/// Uses `libm` rather than `f64::ln`/`powf`, whose results may differ in the
/// last bit between platforms' maths libraries: a seed must replay bit for
/// bit on any machine.
pub fn sample(model: &LatencyModel, rng: &mut Rng) -> Duration {
    match *model {
        LatencyModel::Fixed(v) => v,
        LatencyModel::Uniform { min, max } => {
            let lo = nanos(min);
            let hi = nanos(max).max(lo);
            Duration::from_nanos(rng.random_range(lo..=hi))
        }
        LatencyModel::Exponential { min, mean } => {
            let scale = nanos(mean).saturating_sub(nanos(min)) as f64;
            let u: f64 = rng.random(); // [0, 1)
            let tail = -libm::log(1.0 - u) * scale;
            min + Duration::from_nanos(to_nanos(tail))
        }
        LatencyModel::Pareto { min, alpha, max } => {
            let u: f64 = rng.random();
            let x = nanos(min) as f64 / libm::pow(1.0 - u, 1.0 / alpha);
            Duration::from_nanos(to_nanos(x)).clamp(min, max.max(min))
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn to_nanos(x: f64) -> u64 {
    // `as` saturates for out-of-range floats and maps NaN to 0.
    x as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(latency: LatencyModel) -> NetworkConfig {
        NetworkConfig { latency, ..NetworkConfig::default() }
    }

    fn latency_model() -> impl Strategy<Value = LatencyModel> {
        let ms = |r: std::ops::Range<u64>| r.prop_map(Duration::from_millis);
        prop_oneof![
            ms(0..50).prop_map(LatencyModel::Fixed),
            (ms(0..50), ms(0..50)).prop_map(|(a, b)| LatencyModel::Uniform { min: a.min(b), max: a.max(b) }),
            (ms(0..50), ms(1..50))
                .prop_map(|(min, extra)| LatencyModel::Exponential { min, mean: min + extra }),
            (ms(1..50), 0.5f64..3.0).prop_map(|(min, alpha)| LatencyModel::Pareto {
                min,
                alpha,
                max: Duration::from_secs(10)
            }),
        ]
    }

    fn partition_spec(nodes: u32) -> impl Strategy<Value = Partition> {
        let node = move || (0..nodes).prop_map(NodeId);
        let set = move || proptest::collection::btree_set(node(), 1..4).prop_map(|s| s.into_iter().collect());
        prop_oneof![
            (set(), set()).prop_map(|(a, b): (Vec<NodeId>, Vec<NodeId>)| {
                let b: Vec<NodeId> = b.into_iter().filter(|n| !a.contains(n)).collect();
                Partition::Groups(vec![a, b])
            }),
            (set(), set()).prop_map(|(from, to)| Partition::OneWay { from, to }),
            set().prop_map(Partition::Isolate),
        ]
    }

    proptest! {
        #[test]
        fn delivery_never_faster_than_the_link_minimum(model in latency_model(), seed: u64) {
            let mut net = Network::new(config(model), 4, Seed(seed));
            for i in 0..50u32 {
                let fate = net.send(NodeId(i % 4), NodeId((i + 1) % 4));
                for delay in fate.copies.into_iter().flatten() {
                    prop_assert!(delay >= model.min(), "{delay:?} < {:?}", model.min());
                }
            }
        }

        #[test]
        fn nothing_crosses_an_active_partition_in_its_blocked_direction(
            spec in partition_spec(6), seed: u64,
        ) {
            let mut net = Network::new(NetworkConfig::default(), 6, Seed(seed));
            net.partition(1, &spec, Instant::ZERO);
            for from in 0..6u32 {
                for to in 0..6u32 {
                    let (f, t) = (NodeId(from), NodeId(to));
                    let should_block = match &spec {
                        Partition::Groups(groups) => {
                            let g = |n| groups.iter().position(|m| m.contains(&n));
                            matches!((g(f), g(t)), (Some(a), Some(b)) if a != b)
                        }
                        Partition::OneWay { from, to } => from.contains(&f) && to.contains(&t),
                        Partition::Isolate(m) => f != t && (m.contains(&f) || m.contains(&t)),
                    };
                    prop_assert_eq!(net.blocked(f, t), should_block, "{:?}->{:?} under {:?}", f, t, spec);
                    let fate = net.send(f, t);
                    if should_block {
                        prop_assert_eq!(fate.copies, [None, None]);
                    } else {
                        prop_assert!(fate.copies[0].is_some(), "no loss configured");
                    }
                }
            }
            // One-way partitions leave the reverse direction open.
            if let Partition::OneWay { from, to } = &spec {
                for &f in from {
                    for &t in to {
                        if !(from.contains(&t) && to.contains(&f)) {
                            prop_assert!(!net.blocked(t, f));
                        }
                    }
                }
            }
            // Heal restores delivery everywhere.
            prop_assert!(net.heal(1));
            for from in 0..6u32 {
                for to in 0..6u32 {
                    prop_assert!(!net.blocked(NodeId(from), NodeId(to)));
                    prop_assert!(net.send(NodeId(from), NodeId(to)).copies[0].is_some());
                }
            }
        }

        #[test]
        fn loss_rate_is_roughly_the_configured_probability(seed: u64) {
            let cfg = NetworkConfig { loss: 0.2, ..NetworkConfig::default() };
            let mut net = Network::new(cfg, 2, Seed(seed));
            for _ in 0..10_000 {
                let _ = net.send(NodeId(0), NodeId(1));
            }
            let lost = net.stats().lost as f64 / 10_000.0;
            prop_assert!((0.17..0.23).contains(&lost), "lost share {lost}");
        }
    }

    #[test]
    fn same_seed_same_fates_and_links_are_independent() {
        let cfg = NetworkConfig { loss: 0.1, duplicate: 0.1, reorder: 0.1, ..NetworkConfig::default() };
        let fates = |extra_link: bool| {
            let mut net = Network::new(cfg.clone(), 3, Seed(7));
            (0..100)
                .map(|_| {
                    if extra_link {
                        let _ = net.send(NodeId(2), NodeId(0));
                    }
                    net.send(NodeId(1), NodeId(0))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(fates(false), fates(false));
        assert_eq!(fates(false), fates(true), "traffic on another link must not change this one");
    }
}
