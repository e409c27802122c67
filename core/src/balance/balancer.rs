//! The balancer: an endpoint table, the eligible set and its weights, and
//! the strategies that pick from it.
//!
//! # Cost
//!
//! Everything a pick needs is precomputed when it changes, so a pick does no
//! allocation and no scan:
//!
//! - the *eligible* slots (healthy and not ejected, or all in panic mode)
//!   and their cumulative effective weights are rebuilt in O(n) on
//!   [`Balancer::set_endpoints`], a health change, an ejection or a return,
//!   an outlier interval, and every `window / 20` while an endpoint is in
//!   slow start (5 % steps of its ramp): rare next to picks;
//! - round robin is O(1); weighted and the two draws of least-loaded are
//!   O(1) when effective weights are equal and a binary search (O(log n))
//!   otherwise; consistent hashing is a binary search over the ring plus a
//!   short walk past ineligible endpoints (see `ring.rs`);
//! - a result ([`Balancer::on_result`]) finds its endpoint in O(1) through
//!   the [`Pick`], or by binary search if the set changed since.
//!
//! Deadlines (the next outlier interval, the earliest return from ejection,
//! the next slow-start step) are folded into one cached instant, checked by
//! a single comparison at the top of each pick and result: a driver that
//! forgets [`Balancer::handle_timeout`] gets late returns, never wrong
//! picks.

use std::collections::{BTreeMap, VecDeque};

use rand::RngExt;

use super::config::{BalancerConfig, EndpointError, MAX_ENDPOINTS, MAX_PENDING_EVENTS, MAX_RING_ENTRIES};
use super::ewma::PeakEwma;
use super::outlier::{self, EjectionReason, OutlierState};
use super::retry::RetryBudget;
use super::ring::Ring;
use super::{BalanceConfigError, BalanceEvent, BalancerStats, Endpoint, EndpointState, Pick, Strategy};
use crate::id::InstanceId;
use crate::rng::{Rng, Seed};
use crate::time::{Duration, Instant};

/// Effective weights are scaled so that they sum to about this.
const WEIGHT_SCALE: f64 = (1u64 << 40) as f64;

/// Bounded redraws when both least-loaded candidates land on one endpoint.
const MAX_REDRAWS: u32 = 3;

#[derive(Clone, Debug)]
struct Slot {
    id: InstanceId,
    weight: u32,
    version: u32,
    healthy: bool,
    /// In the eligible set (recomputed on every rebuild).
    eligible: bool,
    /// Slow start began then; `None` once the ramp is over (or never).
    ramp_from: Option<Instant>,
    outstanding: u32,
    ewma: PeakEwma,
    outlier: OutlierState,
}

/// Client-side load balancer over a set of endpoints. See the
/// [module docs](super).
///
/// Methods: [`set_endpoints`](Self::set_endpoints) and
/// [`set_healthy`](Self::set_healthy) to tell it what exists;
/// [`pick`](Self::pick) per request, then [`on_result`](Self::on_result)
/// (or [`abandon`](Self::abandon)) when it finishes;
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout); drain
/// [`poll_event`](Self::poll_event) after each mutation; and the
/// [`retry_budget_mut`](Self::retry_budget_mut) before each retry.
#[derive(Clone, Debug)]
pub struct Balancer {
    config: BalancerConfig,
    rng: Rng,
    slots: Vec<Slot>,
    /// Version strings of the current set, indexed by `Slot::version`.
    versions: Vec<String>,
    /// Configured share per version index; empty when not shaping.
    version_share: Vec<u32>,
    /// Scratch: per-version sums of base weight.
    version_sum: Vec<f64>,
    /// Slot indices that may be picked, in slot (id) order.
    eligible: Vec<u32>,
    /// Scratch: effective weights of `eligible`.
    effective: Vec<f64>,
    /// Cumulative scaled weights aligned with `eligible`.
    cumulative: Vec<u64>,
    /// All eligible effective weights equal: draw uniformly.
    uniform: bool,
    ring: Ring,
    cursor: usize,
    panic: bool,
    ejected: usize,
    generation: u32,
    initialised: bool,
    next_interval: Option<Instant>,
    next_refresh: Option<Instant>,
    next_return: Option<Instant>,
    /// Earliest of the three above, `Instant::MAX` when none.
    deadline: Instant,
    decay_ns: f64,
    default_rtt_ns: f64,
    /// Peak-EWMA of every sample from every endpoint: what an endpoint
    /// with no sample of its own is assumed to cost (capped at
    /// `default_rtt`), so a newcomer looks as good as the fleet and gets
    /// tried, instead of losing every comparison until its default decays.
    fleet_ewma: PeakEwma,
    /// Scratch for success-rate evaluation.
    rates: Vec<(f64, u32)>,
    retry: RetryBudget,
    events: VecDeque<BalanceEvent>,
    stats: BalancerStats,
}

impl Balancer {
    /// A balancer with no endpoints yet; its random choices come from
    /// `seed` alone.
    pub fn new(config: BalancerConfig, seed: Seed) -> Result<Self, BalanceConfigError> {
        config.validate()?;
        let mut rng = seed.rng();
        let cursor = rng.random::<u32>() as usize;
        Ok(Balancer {
            decay_ns: config.peak_ewma.decay.as_nanos() as f64,
            default_rtt_ns: config.peak_ewma.default_rtt.as_nanos() as f64,
            fleet_ewma: PeakEwma::new(),
            retry: RetryBudget::new(config.retry_budget),
            config,
            rng,
            slots: Vec::new(),
            versions: Vec::new(),
            version_share: Vec::new(),
            version_sum: Vec::new(),
            eligible: Vec::new(),
            effective: Vec::new(),
            cumulative: Vec::new(),
            uniform: true,
            ring: Ring::default(),
            cursor,
            panic: false,
            ejected: 0,
            generation: 0,
            initialised: false,
            next_interval: None,
            next_refresh: None,
            next_return: None,
            deadline: Instant::MAX,
            rates: Vec::new(),
            events: VecDeque::new(),
            stats: BalancerStats::default(),
        })
    }

    // ----- queries -----

    /// The settings.
    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> BalancerStats {
        self.stats
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of endpoints picks may currently land on.
    pub fn eligible_len(&self) -> usize {
        self.eligible.len()
    }

    /// Number of endpoints currently ejected.
    pub fn ejected_len(&self) -> usize {
        self.ejected
    }

    /// Whether panic mode is on: too few endpoints are healthy, so picks
    /// ignore health and ejection.
    pub fn is_panicking(&self) -> bool {
        self.panic
    }

    /// What the balancer knows of endpoint `id` at `now`.
    pub fn endpoint(&self, now: Instant, id: InstanceId) -> Option<EndpointState<'_>> {
        let i = self.find(id)?;
        let s = &self.slots[i];
        Some(EndpointState {
            id,
            weight: s.weight,
            version: &self.versions[s.version as usize],
            healthy: s.healthy,
            eligible: s.eligible,
            ejected_until: s.outlier.ejected_until,
            ejections: s.outlier.ejections,
            outstanding: s.outstanding,
            latency_estimate: Duration::from_nanos(
                s.ewma.read(now, self.untried_ns(now), self.decay_ns) as u64
            ),
            slow_start_percent: (self.slow_start_factor(now, s.ramp_from) * 100.0) as u32,
        })
    }

    /// The retry budget.
    pub fn retry_budget(&self) -> &RetryBudget {
        &self.retry
    }

    /// The retry budget, to [`record_request`](RetryBudget::record_request)
    /// and [`try_retry`](RetryBudget::try_retry).
    pub fn retry_budget_mut(&mut self) -> &mut RetryBudget {
        &mut self.retry
    }

    // ----- mutators -----

    /// Replace the endpoint set at `now`.
    ///
    /// Endpoints already known keep their outstanding count, latency
    /// estimate and outlier state; endpoints new to a balancer that already
    /// had a set start slow (the first set starts together, at full
    /// weight). An invalid set is refused whole.
    pub fn set_endpoints(&mut self, now: Instant, endpoints: &[Endpoint<'_>]) -> Result<(), EndpointError> {
        if endpoints.len() > MAX_ENDPOINTS {
            return Err(EndpointError::TooMany { count: endpoints.len(), max: MAX_ENDPOINTS });
        }
        let mut order: Vec<&Endpoint<'_>> = endpoints.iter().collect();
        order.sort_unstable_by_key(|e| e.id);
        for (i, e) in order.iter().enumerate() {
            if e.weight == 0 {
                return Err(EndpointError::ZeroWeight(e.id));
            }
            if e.version.len() > super::config::MAX_VERSION_LEN {
                return Err(EndpointError::VersionTooLong {
                    id: e.id,
                    len: e.version.len(),
                    max: super::config::MAX_VERSION_LEN,
                });
            }
            if i > 0 && order[i - 1].id == e.id {
                return Err(EndpointError::Duplicate(e.id));
            }
        }
        // Valid: from here on nothing fails.
        let mut version_index: BTreeMap<&str, u32> = BTreeMap::new();
        let ramp_new = self.initialised && self.config.slow_start.is_some();
        let mut slots = Vec::with_capacity(order.len());
        for e in &order {
            let next = version_index.len() as u32;
            let version = *version_index.entry(e.version).or_insert(next);
            let old = self.find(e.id).map(|i| &self.slots[i]);
            slots.push(Slot {
                id: e.id,
                weight: e.weight,
                version,
                healthy: e.healthy,
                eligible: false,
                ramp_from: match old {
                    Some(old) => old.ramp_from,
                    None => ramp_new.then_some(now),
                },
                outstanding: old.map_or(0, |o| o.outstanding),
                ewma: old.map_or(PeakEwma::new(), |o| o.ewma),
                outlier: old.map_or(OutlierState::default(), |o| o.outlier),
            });
        }
        let mut versions = vec![String::new(); version_index.len()];
        for (name, i) in version_index {
            versions[i as usize] = name.to_owned();
        }
        self.version_share = if self.config.version_weights.is_empty() {
            Vec::new()
        } else {
            versions.iter().map(|v| self.config.version_weights.get(v).copied().unwrap_or(0)).collect()
        };
        self.versions = versions;
        self.slots = slots;
        self.ejected = self.slots.iter().filter(|s| s.outlier.is_ejected()).count();
        self.generation = self.generation.wrapping_add(1);
        if self.config.strategy == Strategy::ConsistentHash {
            let n = self.slots.len().max(1);
            let vnodes = (self.config.vnodes_per_endpoint as usize).min(MAX_RING_ENTRIES / n).max(1);
            self.ring.rebuild(self.slots.iter().map(|s| s.id.0), vnodes as u32);
        }
        if !self.initialised {
            self.initialised = true;
            self.next_interval = self.config.outlier.map(|o| now + o.interval);
        }
        self.rebuild(now);
        Ok(())
    }

    /// Mark endpoint `id` healthy or not at `now`. Returns whether it is
    /// known.
    pub fn set_healthy(&mut self, now: Instant, id: InstanceId, healthy: bool) -> bool {
        let Some(i) = self.find(id) else {
            return false;
        };
        if self.slots[i].healthy != healthy {
            self.slots[i].healthy = healthy;
            self.rebuild(now);
        }
        true
    }

    /// Choose an endpoint for a request at `now`, or `None` when there is
    /// none to choose. `key` is the affinity key of
    /// [`Strategy::ConsistentHash`] (a random one is drawn when absent);
    /// other strategies ignore it.
    ///
    /// Counts the request as outstanding on the endpoint until
    /// [`on_result`](Self::on_result) or [`abandon`](Self::abandon).
    /// Never returns an unhealthy or ejected endpoint unless
    /// [`Pick::panic`] says panic mode was on.
    pub fn pick(&mut self, now: Instant, key: Option<u64>) -> Option<Pick> {
        if now >= self.deadline {
            self.handle_timeout(now);
        }
        let n = self.eligible.len();
        if n == 0 {
            self.stats.no_endpoint += 1;
            return None;
        }
        let slot = match self.config.strategy {
            Strategy::RoundRobin => {
                let i = self.cursor % n;
                self.cursor = i + 1;
                self.eligible[i]
            }
            Strategy::Weighted => {
                let i = self.draw();
                self.eligible[i]
            }
            Strategy::LeastLoaded => self.least_loaded(now),
            Strategy::ConsistentHash => {
                let key = key.unwrap_or_else(|| self.rng.random());
                let slots = &self.slots;
                self.ring.lookup(key, |s| slots[s as usize].eligible)?
            }
        };
        let s = &mut self.slots[slot as usize];
        debug_assert!(s.eligible);
        debug_assert!(self.panic || (s.healthy && !s.outlier.is_ejected()));
        s.outstanding = s.outstanding.saturating_add(1);
        self.stats.picks += 1;
        if self.panic {
            self.stats.panic_picks += 1;
        }
        Some(Pick { id: s.id, panic: self.panic, slot, generation: self.generation })
    }

    /// The request of `pick` finished at `now` after `latency`, with
    /// `success` or not: feeds the latency estimate and outlier detection.
    pub fn on_result(&mut self, now: Instant, pick: Pick, latency: Duration, success: bool) {
        if now >= self.deadline {
            self.handle_timeout(now);
        }
        let Some(i) = self.resolve(pick) else {
            self.stats.unknown_results += 1;
            return;
        };
        let decay_ns = self.decay_ns;
        self.fleet_ewma.observe(now, latency, decay_ns);
        let s = &mut self.slots[i];
        s.outstanding = s.outstanding.saturating_sub(1);
        s.ewma.observe(now, latency, decay_ns);
        let Some(outlier) = self.config.outlier else {
            return;
        };
        if s.outlier.record(success, outlier.consecutive_errors)
            && !s.outlier.is_ejected()
            && self.eject(now, i, EjectionReason::ConsecutiveErrors)
        {
            self.rebuild(now);
        }
    }

    /// The request of `pick` was never sent, or its outcome says nothing of
    /// the endpoint (cancelled by the caller): only release it.
    pub fn abandon(&mut self, pick: Pick) {
        if let Some(i) = self.resolve(pick) {
            let s = &mut self.slots[i];
            s.outstanding = s.outstanding.saturating_sub(1);
        }
    }

    // ----- time -----

    /// Return ejected endpoints whose time is up, evaluate success rates at
    /// the end of an outlier interval, and step slow starts. Safe to call
    /// early or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut changed = false;
        if self.next_return.is_some_and(|t| t <= now) {
            for i in 0..self.slots.len() {
                let s = &mut self.slots[i];
                if s.outlier.ejected_until.is_some_and(|t| t <= now) {
                    s.outlier.end_ejection();
                    self.ejected -= 1;
                    let id = s.id;
                    tracing::debug!(instance = id.0, %now, "endpoint returned from ejection");
                    self.emit(BalanceEvent::Returned { id });
                }
            }
            changed = true;
        }
        if let (Some(next), Some(outlier)) = (self.next_interval, self.config.outlier) {
            if next <= now {
                self.evaluate_interval(now);
                let following = next + outlier.interval;
                self.next_interval = Some(if following > now { following } else { now + outlier.interval });
                changed = true;
            }
        }
        if self.next_refresh.is_some_and(|t| t <= now) {
            changed = true;
        }
        if changed {
            self.rebuild(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.deadline != Instant::MAX).then_some(self.deadline)
    }

    /// The next event (ejections, returns, panic mode), oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<BalanceEvent> {
        self.events.pop_front()
    }

    // ----- internals -----

    fn find(&self, id: InstanceId) -> Option<usize> {
        self.slots.binary_search_by_key(&id, |s| s.id).ok()
    }

    fn resolve(&self, pick: Pick) -> Option<usize> {
        if pick.generation == self.generation {
            let i = pick.slot as usize;
            if self.slots.get(i).is_some_and(|s| s.id == pick.id) {
                return Some(i);
            }
        }
        self.find(pick.id)
    }

    fn slow_start_factor(&self, now: Instant, ramp_from: Option<Instant>) -> f64 {
        let (Some(from), Some(slow)) = (ramp_from, self.config.slow_start) else {
            return 1.0;
        };
        let floor = f64::from(slow.min_weight_percent) / 100.0;
        let progress =
            (now.saturating_duration_since(from).as_secs_f64() / slow.window.as_secs_f64()).min(1.0);
        floor + (1.0 - floor) * progress
    }

    /// An index into `eligible`, drawn by effective weight.
    #[inline]
    fn draw(&mut self) -> usize {
        let n = self.eligible.len();
        if self.uniform {
            return self.rng.random_range(0..n);
        }
        let total = *self.cumulative.last().expect("non-uniform implies eligible endpoints");
        let r = self.rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= r).min(n - 1)
    }

    /// Power of two choices over `cost = latency × (outstanding + 1)`.
    #[inline]
    fn least_loaded(&mut self, now: Instant) -> u32 {
        let n = self.eligible.len();
        if n == 1 {
            return self.eligible[0];
        }
        let (a, b) = if self.uniform {
            // Two distinct indices, uniformly (Floyd's sampling of two).
            let a = self.rng.random_range(0..n);
            let b = self.rng.random_range(0..n - 1);
            (a, if b >= a { b + 1 } else { b })
        } else {
            let a = self.draw();
            let mut b = self.draw();
            let mut redraws = 0;
            while b == a && redraws < MAX_REDRAWS {
                b = self.draw();
                redraws += 1;
            }
            (a, b)
        };
        let (a, b) = (self.eligible[a], self.eligible[b]);
        if self.cost(now, b) < self.cost(now, a) { b } else { a }
    }

    #[inline]
    fn cost(&self, now: Instant, slot: u32) -> f64 {
        let s = &self.slots[slot as usize];
        s.ewma.read_or(now, || self.untried_ns(now), self.decay_ns)
            * f64::from(s.outstanding.saturating_add(1))
    }

    /// The latency an endpoint with no sample yet is assumed to have: the
    /// fleet's estimate, at most `default_rtt` (which applies alone until
    /// anything has been measured).
    #[inline]
    fn untried_ns(&self, now: Instant) -> f64 {
        self.fleet_ewma.read(now, self.default_rtt_ns, self.decay_ns).min(self.default_rtt_ns)
    }

    /// Eject slot `i` for `reason` if the cap allows; returns whether it did.
    fn eject(&mut self, now: Instant, i: usize, reason: EjectionReason) -> bool {
        let Some(config) = self.config.outlier else {
            return false;
        };
        let cap =
            outlier::max_ejected(self.slots.len(), config.max_ejection_percent, config.always_eject_one_host);
        if self.ejected >= cap {
            self.stats.ejections_skipped += 1;
            return false;
        }
        let s = &mut self.slots[i];
        let time = s.outlier.start_ejection(config.base_ejection_time, config.max_ejection_time);
        let until = now + time;
        s.outlier.ejected_until = Some(until);
        s.outlier.ejected_this_interval = true;
        let id = s.id;
        self.ejected += 1;
        self.stats.ejections += 1;
        tracing::debug!(instance = id.0, ?reason, %until, "endpoint ejected");
        self.emit(BalanceEvent::Ejected { id, reason, until });
        true
    }

    /// End of an outlier interval: success-rate ejections, multiplier
    /// decay, fresh counters.
    fn evaluate_interval(&mut self, now: Instant) {
        let Some(config) = self.config.outlier else {
            return;
        };
        if let Some(sr) = config.success_rate {
            self.rates.clear();
            for (i, s) in self.slots.iter().enumerate() {
                if !s.outlier.is_ejected() && s.outlier.requests >= sr.request_volume {
                    self.rates.push((s.outlier.success_rate(), i as u32));
                }
            }
            let k = f64::from(sr.stdev_factor_thousandths) / 1000.0;
            if let Some(threshold) =
                outlier::success_rate_threshold(self.rates.iter().map(|r| r.0), sr.minimum_hosts, k)
            {
                // Worst first, so the cap keeps the worst out; ties by slot
                // (id order) for determinism.
                self.rates.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let below = self.rates.partition_point(|r| r.0 < threshold);
                for j in 0..below {
                    let i = self.rates[j].1 as usize;
                    self.eject(now, i, EjectionReason::SuccessRate);
                }
            }
        }
        for s in &mut self.slots {
            let o = &mut s.outlier;
            if !o.is_ejected() && !o.ejected_this_interval {
                o.ejections = o.ejections.saturating_sub(1);
            }
            o.ejected_this_interval = o.is_ejected();
            o.requests = 0;
            o.successes = 0;
        }
    }

    /// Recompute panic mode, the eligible set, effective weights and the
    /// next deadline. O(n), allocation-free once the tables have grown.
    fn rebuild(&mut self, now: Instant) {
        let total = self.slots.len();
        let healthy = self.slots.iter().filter(|s| s.healthy && !s.outlier.is_ejected()).count();
        let threshold = self.config.panic_threshold_percent as usize;
        let panic = total > 0 && healthy * 100 < threshold * total;
        if panic != self.panic {
            self.panic = panic;
            let (healthy, total) = (healthy as u32, total as u32);
            tracing::debug!(healthy, total, panic, "balancer panic mode changed");
            self.emit(if panic {
                BalanceEvent::PanicEntered { healthy, total }
            } else {
                BalanceEvent::PanicExited { healthy, total }
            });
        }

        // Slow start: end finished ramps, note whether any remain.
        let mut ramping = false;
        if let Some(slow) = self.config.slow_start {
            for s in &mut self.slots {
                if s.ramp_from.is_some_and(|from| now.saturating_duration_since(from) >= slow.window) {
                    s.ramp_from = None;
                }
                ramping |= s.ramp_from.is_some();
            }
        }

        self.eligible.clear();
        for (i, s) in self.slots.iter_mut().enumerate() {
            s.eligible = panic || (s.healthy && !s.outlier.is_ejected());
            if s.eligible {
                self.eligible.push(i as u32);
            }
        }

        self.effective.clear();
        self.cumulative.clear();
        self.uniform = true;
        if matches!(self.config.strategy, Strategy::Weighted | Strategy::LeastLoaded)
            && !self.eligible.is_empty()
        {
            self.compute_weights(now);
        }

        self.next_refresh = match self.config.slow_start {
            Some(slow) if ramping => Some(now + (slow.window / 20).max(Duration::from_millis(1))),
            _ => None,
        };
        self.next_return = self.slots.iter().filter_map(|s| s.outlier.ejected_until).min();
        self.deadline = [self.next_interval, self.next_refresh, self.next_return]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Instant::MAX);
    }

    /// Effective weights of the eligible set: weight × slow start, shaped
    /// by version shares; then their scaled running sums.
    fn compute_weights(&mut self, now: Instant) {
        for &i in &self.eligible {
            let s = &self.slots[i as usize];
            self.effective.push(f64::from(s.weight) * self.slow_start_factor(now, s.ramp_from));
        }
        if !self.version_share.is_empty() {
            self.version_sum.clear();
            self.version_sum.resize(self.versions.len(), 0.0);
            for (j, &i) in self.eligible.iter().enumerate() {
                self.version_sum[self.slots[i as usize].version as usize] += self.effective[j];
            }
            let shares: u64 = self
                .version_share
                .iter()
                .zip(&self.version_sum)
                .filter(|(_, sum)| **sum > 0.0)
                .map(|(&share, _)| u64::from(share))
                .sum();
            // No eligible version has a share: suspend shaping rather than
            // make the service unavailable.
            if shares > 0 {
                for (j, &i) in self.eligible.iter().enumerate() {
                    let v = self.slots[i as usize].version as usize;
                    let share = f64::from(self.version_share[v]) / shares as f64;
                    self.effective[j] = share * self.effective[j] / self.version_sum[v];
                }
            }
        }
        let sum: f64 = self.effective.iter().sum();
        let first = self.effective[0];
        self.uniform = self.effective.iter().all(|&w| w == first);
        let mut running = 0u64;
        for &w in &self.effective {
            running += (w / sum * WEIGHT_SCALE).round() as u64;
            self.cumulative.push(running);
        }
        if running == 0 {
            // Cannot happen (weights are positive and the scale large);
            // keep picks well-defined regardless.
            self.uniform = true;
        }
    }

    fn emit(&mut self, event: BalanceEvent) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}
