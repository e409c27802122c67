//! The calling side: a client that discovers a service's instances and
//! calls them, routing around the sick ones.
//!
//! A [`ClientNode`] subscribes to the control node, which answers with an
//! [`EndpointUpdate`] per instance and sends another whenever one becomes
//! routable or stops being so. The subscription is a lease renewed every
//! `resubscribe_interval`, so a control node that restarted (and forgot its
//! subscribers) sends the whole table again.
//!
//! The control node tells every subscriber about every instance of every
//! service; each update names the instance's service, and a client of one
//! service ([`ClientConfig::service`]) keeps only that service's instances.
//! Without the filter a caller of `checkout` would spread its calls over
//! `payments` too, and a fault in a service it never calls would count
//! against its availability.
//!
//! Each call ([`Input::Call`]) goes to the endpoint the client's
//! [`Balancer`] picks: power of two choices over outstanding requests and
//! peak-EWMA latency by default, with outlier ejection and panic mode. So
//! the client routes around sick instances twice over: the control node's
//! verdicts (routable or not) and its own observations (an instance that
//! keeps failing calls is ejected before any probe notices).
//!
//! A call refused (nothing listening) or answered with an error is retried
//! once on another pick when the retry budget allows (a refused call never
//! reached the application, so retrying is safe; the simulated application
//! is idempotent). A call that times out is not retried: its deadline is the
//! caller's. Its outcome comes back as [`Output::CallDone`]: success, an
//! error answer, refused, a timeout, or no routable endpoint at all. Those
//! outcomes are what "availability as clients see it" is measured on.
//!
//! Every `report_interval` (1 s by default) the client tells the control
//! node how its attempts to each instance went since the last report
//! ([`CallReport`]): one message per instance it called, none when idle.
//! That is recovery's second vantage point: an instance the control node
//! cannot hear but its clients still reach is cut off, not failed.
//!
//! Each attempt goes out under its own wire id, so a late answer to a
//! first attempt cannot be mistaken for the answer to its retry.
//!
//! Cost: an attempt is O(log outstanding); timeouts share one duration, so
//! their deadlines leave a FIFO in order (the failure detector's trick).

use std::collections::{BTreeMap, VecDeque};

use crate::balance::{BalanceConfigError, Balancer, BalancerConfig, Endpoint, Pick};
pub use crate::envelope::{CallDone, CallOutcome};
use crate::envelope::{Input, Output};
use crate::id::{InstanceId, NodeId, ServiceId};
use crate::machine::Machine;
use crate::message::{CallReport, EndpointUpdate, Message, Request, ResponseStatus};
use crate::rng::Seed;
use crate::time::{Duration, Instant};

/// Settings of a client.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// The control node to subscribe to.
    pub control: NodeId,
    /// The service this client calls: endpoint updates about other
    /// services' instances are ignored. `None` calls every instance the
    /// control node announces, whatever its service (a fleet of one
    /// service, or a client that does not care).
    pub service: Option<ServiceId>,
    /// How long a call may wait for an answer.
    pub call_timeout: Duration,
    /// How often the subscription is renewed.
    pub resubscribe_interval: Duration,
    /// Most calls in flight at once; a call beyond it fails at once as
    /// `Timeout` (a full connection pool).
    pub max_outstanding: usize,
    /// Most attempts per call (1: never retry).
    pub max_attempts: u8,
    /// How the client picks an endpoint.
    pub balancer: BalancerConfig,
    /// How often the client reports its calls' outcomes per instance to
    /// the control node ([`CallReport`]); `None` never reports.
    pub report_interval: Option<Duration>,
}

impl Default for ClientConfig {
    /// Control node 0, every service, 1 s call timeout, resubscribe every 5 s, 100 000
    /// calls in flight, two attempts, a call report every second, the default balancer without slow
    /// start (a client learns the fleet one update at a time: slow start
    /// would throttle every instance but the first).
    fn default() -> Self {
        ClientConfig {
            control: NodeId(0),
            service: None,
            call_timeout: Duration::from_secs(1),
            resubscribe_interval: Duration::from_secs(5),
            max_outstanding: 100_000,
            max_attempts: 2,
            balancer: BalancerConfig { slow_start: None, ..BalancerConfig::default() },
            report_interval: Some(Duration::from_secs(1)),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Known {
    node: NodeId,
    routable: bool,
    index: u64,
}

/// One attempt of a call, on the wire.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    call: u64,
    pick: Pick,
    call_started: Instant,
    sent_at: Instant,
    attempt: u8,
}

/// Outcomes of attempts to one instance since the last report.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    ok: u32,
    errors: u32,
    refused: u32,
    timed_out: u32,
    last_ok: Option<Instant>,
    last_failure: Option<Instant>,
}

impl Tally {
    fn record(&mut self, now: Instant, outcome: CallOutcome) {
        let bump = |n: &mut u32| *n = n.saturating_add(1);
        match outcome {
            CallOutcome::Ok => {
                bump(&mut self.ok);
                self.last_ok = Some(now);
            }
            CallOutcome::Error => bump(&mut self.errors),
            CallOutcome::Refused => {
                bump(&mut self.refused);
                self.last_failure = Some(now);
            }
            CallOutcome::Timeout => {
                bump(&mut self.timed_out);
                self.last_failure = Some(now);
            }
            CallOutcome::NoEndpoint => {}
        }
    }

    fn report(&self, instance: InstanceId, now: Instant) -> CallReport {
        let age = |t: Option<Instant>| {
            t.map_or(CallReport::NEVER, |t| {
                u32::try_from((now - t).as_millis()).unwrap_or(CallReport::NEVER - 1)
            })
        };
        CallReport {
            instance,
            ok: self.ok,
            errors: self.errors,
            refused: self.refused,
            timed_out: self.timed_out,
            since_ok_ms: age(self.last_ok),
            since_failure_ms: age(self.last_failure),
        }
    }
}

/// A client of one service: discovers its instances and calls them.
#[derive(Debug, Clone)]
pub struct ClientNode {
    config: ClientConfig,
    known: BTreeMap<InstanceId, Known>,
    balancer: Balancer,
    /// Attempts in flight, by wire id.
    outstanding: BTreeMap<u64, Attempt>,
    /// `(deadline, wire id)`, in sending order.
    deadlines: VecDeque<(Instant, u64)>,
    next_wire_id: u64,
    next_subscribe: Instant,
    outputs: VecDeque<Output>,
    /// New instances were learned since the balancer's endpoint set was
    /// last rebuilt: rebuild once, before the next pick, rather than once
    /// per update (a fleet of n announces itself in n updates).
    endpoints_stale: bool,
    /// Per instance called since the last report: how it went.
    tallies: BTreeMap<InstanceId, Tally>,
    /// When the next report is due (`None`: never).
    next_report: Option<Instant>,
}

impl ClientNode {
    /// A client booting at `now`; it subscribes at once. `seed` drives the
    /// balancer's random choices.
    pub fn new(config: ClientConfig, now: Instant, seed: Seed) -> Result<Self, BalanceConfigError> {
        let balancer = Balancer::new(config.balancer.clone(), seed)?;
        let next_report = config.report_interval.map(|interval| now + interval);
        Ok(ClientNode {
            config,
            known: BTreeMap::new(),
            balancer,
            outstanding: BTreeMap::new(),
            deadlines: VecDeque::new(),
            next_wire_id: 0,
            next_subscribe: now,
            outputs: VecDeque::new(),
            endpoints_stale: false,
            tallies: BTreeMap::new(),
            next_report,
        })
    }

    /// The service this client calls (`None`: every service).
    pub fn service(&self) -> Option<ServiceId> {
        self.config.service
    }

    /// Instances the control node says may take calls, in id order.
    pub fn routable(&self) -> Vec<InstanceId> {
        self.known.iter().filter(|(_, k)| k.routable).map(|(&i, _)| i).collect()
    }

    /// Calls in flight.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The balancer, for queries.
    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }

    fn done(
        &mut self,
        id: u64,
        instance: Option<InstanceId>,
        outcome: CallOutcome,
        latency: Duration,
        attempts: u8,
    ) {
        self.outputs.push_back(Output::CallDone(CallDone { id, instance, outcome, latency, attempts }));
    }

    fn call(&mut self, now: Instant, id: u64) {
        self.balancer.retry_budget_mut().record_request(now);
        if self.outstanding.len() >= self.config.max_outstanding {
            self.done(id, None, CallOutcome::Timeout, Duration::ZERO, 0);
            return;
        }
        self.attempt(now, id, now, 1);
    }

    /// Send attempt number `attempt` of call `call`, begun at `started`.
    fn attempt(&mut self, now: Instant, call: u64, started: Instant, attempt: u8) {
        self.refresh_endpoints(now);
        let Some(pick) = self.balancer.pick(now, None) else {
            self.done(call, None, CallOutcome::NoEndpoint, now - started, attempt - 1);
            return;
        };
        let Some(node) = self.known.get(&pick.id()).map(|k| k.node) else {
            // The balancer only knows endpoints we gave it: unreachable.
            self.balancer.abandon(pick);
            self.done(call, None, CallOutcome::NoEndpoint, now - started, attempt - 1);
            return;
        };
        let wire = self.next_wire_id;
        self.next_wire_id += 1;
        self.outstanding.insert(wire, Attempt { call, pick, call_started: started, sent_at: now, attempt });
        self.deadlines.push_back((started + self.config.call_timeout, wire));
        self.outputs.push_back(Output::Send { to: node, message: Message::Request(Request { id: wire }) });
    }

    /// Attempt `wire` ended with `outcome` at `now`.
    fn finish(&mut self, now: Instant, wire: u64, outcome: CallOutcome) {
        // Unknown ids are late answers to attempts that already ended.
        let Some(a) = self.outstanding.remove(&wire) else { return };
        self.balancer.on_result(now, a.pick, now - a.sent_at, outcome.is_success());
        if self.next_report.is_some() {
            self.tallies.entry(a.pick.id()).or_default().record(now, outcome);
        }
        let retryable = matches!(outcome, CallOutcome::Refused | CallOutcome::Error);
        if retryable
            && a.attempt < self.config.max_attempts
            && self.balancer.retry_budget_mut().try_retry(now)
        {
            self.attempt(now, a.call, a.call_started, a.attempt + 1);
            return;
        }
        self.done(a.call, Some(a.pick.id()), outcome, now - a.call_started, a.attempt);
    }

    fn update(&mut self, now: Instant, u: EndpointUpdate) {
        if self.config.service.is_some_and(|s| s != u.service) {
            return; // another service's instance: not ours to call
        }
        let entry = self.known.get(&u.instance).copied();
        if entry.is_some_and(|k| u.index < k.index) {
            return; // older news than what we applied
        }
        self.known.insert(u.instance, Known { node: u.node, routable: u.routable, index: u.index });
        if entry.is_some() && !self.endpoints_stale {
            self.balancer.set_healthy(now, u.instance, u.routable);
        } else {
            // A new instance (or the set is stale anyway): the balancer gets
            // the whole set before its next pick.
            self.endpoints_stale = true;
        }
    }

    /// Hand the balancer the whole known set if it changed (the state of
    /// endpoints it already knew carries over).
    fn refresh_endpoints(&mut self, now: Instant) {
        if !self.endpoints_stale {
            return;
        }
        self.endpoints_stale = false;
        let endpoints: Vec<Endpoint<'_>> = self
            .known
            .iter()
            .map(|(&id, k)| Endpoint { id, weight: 1, version: "", healthy: k.routable })
            .collect();
        // Weights are 1 and ids unique: a set built from the table is valid.
        let _ = self.balancer.set_endpoints(now, &endpoints);
    }

    fn collect_balancer_events(&mut self) {
        while let Some(event) = self.balancer.poll_event() {
            self.outputs.push_back(Output::Balance(event));
        }
    }
}

impl Machine for ClientNode {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        match input {
            Input::Call { id } => self.call(now, id),
            Input::Message { message, .. } => match message {
                Message::Response(r) => {
                    let outcome = match r.status {
                        ResponseStatus::Ok => CallOutcome::Ok,
                        ResponseStatus::Error => CallOutcome::Error,
                    };
                    self.finish(now, r.id, outcome);
                }
                Message::Refused(r) if !r.probe => self.finish(now, r.id, CallOutcome::Refused),
                Message::EndpointUpdate(u) => self.update(now, u),
                _ => {}
            },
        }
        self.collect_balancer_events();
    }

    fn handle_timeout(&mut self, now: Instant) {
        debug_assert!(self.outputs.is_empty(), "poll_output was not drained");
        while let Some(&(deadline, wire)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            self.finish(now, wire, CallOutcome::Timeout);
        }
        self.balancer.handle_timeout(now);
        if now >= self.next_subscribe {
            self.outputs.push_back(Output::Send { to: self.config.control, message: Message::Subscribe });
            self.next_subscribe = now + self.config.resubscribe_interval;
        }
        if let (Some(due), Some(interval)) = (self.next_report, self.config.report_interval)
            && now >= due
        {
            for (&instance, tally) in &self.tallies {
                let message = Message::CallReport(tally.report(instance, now));
                self.outputs.push_back(Output::Send { to: self.config.control, message });
            }
            self.tallies.clear();
            self.next_report = Some(now + interval);
        }
        self.collect_balancer_events();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        // The front entry may be an attempt already answered: an early
        // wake-up, which is harmless.
        let call = self.deadlines.front().map(|&(t, _)| t);
        // A report is due only when there is something to report.
        let report = self.next_report.filter(|_| !self.tallies.is_empty());
        [call, self.balancer.poll_timeout(), Some(self.next_subscribe), report].into_iter().flatten().min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{BalanceEvent, OutlierConfig};
    use crate::message::{Refused, Response};

    fn client_with(config: ClientConfig) -> ClientNode {
        let mut c = ClientNode::new(config, Instant::ZERO, Seed(3)).expect("valid config");
        c.handle_timeout(Instant::ZERO);
        assert_eq!(
            c.poll_output(),
            Some(Output::Send { to: NodeId(0), message: Message::Subscribe }),
            "subscribes at boot"
        );
        c
    }

    fn client() -> ClientNode {
        client_with(ClientConfig::default())
    }

    fn update(c: &mut ClientNode, instance: u32, routable: bool, index: u64) {
        update_of(c, ServiceId(0), instance, routable, index);
    }

    fn update_of(c: &mut ClientNode, service: ServiceId, instance: u32, routable: bool, index: u64) {
        let u = EndpointUpdate {
            instance: InstanceId(instance),
            service,
            node: NodeId(instance + 1),
            routable,
            index,
        };
        c.handle(Instant::ZERO, Input::Message { from: NodeId(0), message: Message::EndpointUpdate(u) });
        let _ = drain(c);
    }

    fn drain(c: &mut ClientNode) -> Vec<Output> {
        std::iter::from_fn(|| c.poll_output()).collect()
    }

    fn done(outputs: &[Output]) -> Vec<CallDone> {
        outputs.iter().filter_map(|o| if let Output::CallDone(d) = o { Some(*d) } else { None }).collect()
    }

    fn sent(outputs: &[Output]) -> Vec<(u32, u64)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, message: Message::Request(r) } => Some((to.0, r.id)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn no_routable_endpoint_fails_fast() {
        let mut c = client();
        c.handle(Instant::ZERO, Input::Call { id: 1 });
        let d = done(&drain(&mut c));
        assert_eq!((d[0].outcome, d[0].attempts), (CallOutcome::NoEndpoint, 0));
    }

    #[test]
    fn calls_go_only_to_routable_endpoints_and_complete() {
        let mut c = client();
        update(&mut c, 0, true, 1);
        update(&mut c, 1, false, 1);
        update(&mut c, 2, true, 1);
        // Forty calls in flight at once: P2C spreads them by outstanding load.
        let mut in_flight = Vec::new();
        for id in 0..40 {
            c.handle(Instant::from_millis(id), Input::Call { id });
            in_flight.extend(sent(&drain(&mut c)));
        }
        let targets: Vec<u32> = in_flight.iter().map(|&(node, _)| node).collect();
        assert!(!targets.contains(&2), "instance 1 (node 2) is not routable: {targets:?}");
        let on_1 = targets.iter().filter(|&&n| n == 1).count();
        assert!((10..=30).contains(&on_1), "load spread over both routable instances: {targets:?}");
        for (i, &(node, wire)) in in_flight.iter().enumerate() {
            let reply = Message::Response(Response { id: wire, status: ResponseStatus::Ok });
            c.handle(Instant::from_millis(50), Input::Message { from: NodeId(node), message: reply });
            let d = done(&drain(&mut c));
            assert_eq!((d[0].id, d[0].outcome), (i as u64, CallOutcome::Ok));
        }
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn a_refused_call_is_retried_elsewhere_and_succeeds() {
        let mut c = client();
        update(&mut c, 0, true, 1);
        update(&mut c, 1, true, 1);
        c.handle(Instant::ZERO, Input::Call { id: 9 });
        let (node, wire) = sent(&drain(&mut c))[0];
        let refused = Message::Refused(Refused { id: wire, probe: false });
        c.handle(Instant::from_millis(1), Input::Message { from: NodeId(node), message: refused });
        let out = drain(&mut c);
        assert!(done(&out).is_empty(), "retried, not finished");
        let (node2, wire2) = sent(&out)[0];
        assert_ne!(wire2, wire, "each attempt has its own wire id");
        // A late answer to the first attempt is ignored.
        let late = Message::Response(Response { id: wire, status: ResponseStatus::Ok });
        c.handle(Instant::from_millis(2), Input::Message { from: NodeId(node), message: late });
        assert!(done(&drain(&mut c)).is_empty());
        let ok = Message::Response(Response { id: wire2, status: ResponseStatus::Ok });
        c.handle(Instant::from_millis(3), Input::Message { from: NodeId(node2), message: ok });
        let d = done(&drain(&mut c));
        assert_eq!((d[0].id, d[0].outcome, d[0].attempts), (9, CallOutcome::Ok, 2));
        assert_eq!(d[0].latency, Duration::from_millis(3), "latency counts from the call");
    }

    #[test]
    fn without_retries_an_error_is_the_outcome() {
        let mut c = client_with(ClientConfig { max_attempts: 1, ..ClientConfig::default() });
        update(&mut c, 0, true, 1);
        c.handle(Instant::ZERO, Input::Call { id: 1 });
        let (node, wire) = sent(&drain(&mut c))[0];
        let err = Message::Response(Response { id: wire, status: ResponseStatus::Error });
        c.handle(Instant::from_millis(5), Input::Message { from: NodeId(node), message: err });
        let d = done(&drain(&mut c));
        assert_eq!((d[0].outcome, d[0].attempts), (CallOutcome::Error, 1));
    }

    #[test]
    fn unanswered_calls_time_out_and_late_answers_are_ignored() {
        let mut c = client();
        update(&mut c, 0, true, 1);
        c.handle(Instant::ZERO, Input::Call { id: 7 });
        let (node, wire) = sent(&drain(&mut c))[0];
        assert!(c.poll_timeout().is_some_and(|t| t <= Instant::from_secs(1)));
        c.handle_timeout(Instant::from_secs(1));
        let d = done(&drain(&mut c));
        assert_eq!(d[0].outcome, CallOutcome::Timeout);
        let late = Message::Response(Response { id: wire, status: ResponseStatus::Ok });
        c.handle(Instant::from_secs(2), Input::Message { from: NodeId(node), message: late });
        assert!(done(&drain(&mut c)).is_empty(), "a late answer is not a second outcome");
    }

    #[test]
    fn an_instance_that_keeps_failing_is_ejected_by_the_client_itself() {
        // Three instances: at the default 10 % cap (Envoy's, rounding down)
        // none may be ejected; `always_eject_one_host` allows one.
        let defaults = ClientConfig::default();
        let outlier = defaults.balancer.outlier.map(|o| OutlierConfig { always_eject_one_host: true, ..o });
        let balancer = BalancerConfig { outlier, ..defaults.balancer.clone() };
        let mut c = client_with(ClientConfig { max_attempts: 1, balancer, ..defaults });
        update(&mut c, 0, true, 1);
        update(&mut c, 1, true, 1);
        update(&mut c, 2, true, 1);
        let mut ejected = false;
        let mut after = Vec::new();
        for id in 0..200u64 {
            let now = Instant::from_millis(id);
            c.handle(now, Input::Call { id });
            let out = drain(&mut c);
            let (node, wire) = sent(&out)[0];
            // Instance 1 (node 2) fails everything; the others succeed.
            let status = if node == 2 { ResponseStatus::Error } else { ResponseStatus::Ok };
            let reply = Message::Response(Response { id: wire, status });
            c.handle(now, Input::Message { from: NodeId(node), message: reply });
            let out = drain(&mut c);
            ejected |= out.iter().any(|o| matches!(o, Output::Balance(BalanceEvent::Ejected { .. })));
            if ejected {
                after.push(node);
            }
        }
        assert!(ejected, "consecutive errors eject the instance");
        assert!(!after[1..].contains(&2), "no call to the ejected instance: {after:?}");
    }

    #[test]
    fn stale_updates_are_ignored() {
        let mut c = client();
        update(&mut c, 0, true, 5);
        update(&mut c, 0, false, 4);
        assert_eq!(c.routable(), vec![InstanceId(0)]);
        update(&mut c, 0, false, 6);
        assert!(c.routable().is_empty());
    }

    #[test]
    fn a_client_of_one_service_calls_only_its_instances() {
        let checkout = ServiceId(0);
        let payments = ServiceId(1);
        let mut c = client_with(ClientConfig { service: Some(checkout), ..ClientConfig::default() });
        assert_eq!(c.service(), Some(checkout));
        update_of(&mut c, checkout, 0, true, 1);
        update_of(&mut c, payments, 1, true, 2);
        update_of(&mut c, checkout, 2, true, 3);
        update_of(&mut c, payments, 3, true, 4);
        assert_eq!(c.routable(), vec![InstanceId(0), InstanceId(2)], "payments' instances are not ours");
        let mut nodes = Vec::new();
        for id in 0..40 {
            c.handle(Instant::from_millis(id), Input::Call { id });
            nodes.extend(sent(&drain(&mut c)).into_iter().map(|(node, _)| node));
        }
        assert_eq!(nodes.len(), 40);
        assert!(nodes.iter().all(|&n| n == 1 || n == 3), "calls only checkout's nodes 1 and 3: {nodes:?}");
        // A payments instance leaving says nothing to a checkout client.
        update_of(&mut c, payments, 1, false, 5);
        assert_eq!(c.routable(), vec![InstanceId(0), InstanceId(2)]);
        // Its own instance leaving does.
        update_of(&mut c, checkout, 2, false, 6);
        assert_eq!(c.routable(), vec![InstanceId(0)]);
    }

    #[test]
    fn a_client_of_no_particular_service_calls_every_instance() {
        let mut c = client();
        assert_eq!(c.service(), None);
        update_of(&mut c, ServiceId(0), 0, true, 1);
        update_of(&mut c, ServiceId(1), 1, true, 2);
        assert_eq!(c.routable(), vec![InstanceId(0), InstanceId(1)]);
    }

    #[test]
    fn a_client_whose_service_has_no_instance_fails_fast() {
        let mut c = client_with(ClientConfig { service: Some(ServiceId(2)), ..ClientConfig::default() });
        update_of(&mut c, ServiceId(0), 0, true, 1);
        c.handle(Instant::ZERO, Input::Call { id: 1 });
        let out = drain(&mut c);
        assert!(sent(&out).is_empty(), "nothing sent to another service's instance");
        assert_eq!(done(&out)[0].outcome, CallOutcome::NoEndpoint);
    }

    fn reports(outputs: &[Output]) -> Vec<CallReport> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, message: Message::CallReport(r) } if *to == NodeId(0) => Some(*r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn call_outcomes_are_reported_per_instance_every_interval_and_never_when_idle() {
        let mut c = client_with(ClientConfig { max_attempts: 1, ..ClientConfig::default() });
        update(&mut c, 0, true, 1);
        update(&mut c, 1, true, 1);
        let mut wires = Vec::new();
        for id in 0..4 {
            c.handle(Instant::from_millis(100), Input::Call { id });
            wires.extend(sent(&drain(&mut c)));
        }
        // Answer the calls to node 1 (instance 0) at 300 ms; let the others
        // time out (1 s after 100 ms).
        for &(node, wire) in &wires {
            if node == 1 {
                let ok = Message::Response(Response { id: wire, status: ResponseStatus::Ok });
                c.handle(Instant::from_millis(300), Input::Message { from: NodeId(node), message: ok });
                let _ = drain(&mut c);
            }
        }
        let answered = wires.iter().filter(|w| w.0 == 1).count() as u32;
        assert!((1..4).contains(&answered), "both instances called: {wires:?}");
        c.handle_timeout(Instant::from_millis(900));
        assert!(reports(&drain(&mut c)).is_empty(), "not due before the interval (1 s after boot)");
        // At 1.1 s the unanswered calls time out, then the report goes.
        c.handle_timeout(Instant::from_millis(1100));
        let mut got = reports(&drain(&mut c));
        got.sort_by_key(|r| r.instance);
        assert_eq!(got.len(), 2, "one report per instance called: {got:?}");
        let (r0, r1) = (got[0], got[1]);
        assert_eq!((r0.instance, r0.ok, r0.timed_out), (InstanceId(0), answered, 0));
        assert_eq!(r0.since_failure_ms, CallReport::NEVER);
        assert_eq!(r0.since_ok_ms, 800, "the latest answer came 800 ms before the report");
        assert_eq!((r1.instance, r1.ok, r1.timed_out), (InstanceId(1), 0, 4 - answered));
        assert_eq!((r1.since_ok_ms, r1.since_failure_ms), (CallReport::NEVER, 0));
        // Idle: no report, and no wake-up for one.
        c.handle_timeout(Instant::from_secs(3));
        assert!(reports(&drain(&mut c)).is_empty());
        assert!(c.poll_timeout().is_some_and(|t| t >= Instant::from_secs(5)), "only the resubscription");
    }

    #[test]
    fn a_client_without_a_report_interval_never_reports() {
        let mut c = client_with(ClientConfig { report_interval: None, ..ClientConfig::default() });
        update(&mut c, 0, true, 1);
        c.handle(Instant::ZERO, Input::Call { id: 1 });
        let (node, wire) = sent(&drain(&mut c))[0];
        let ok = Message::Response(Response { id: wire, status: ResponseStatus::Ok });
        c.handle(Instant::from_millis(5), Input::Message { from: NodeId(node), message: ok });
        let _ = drain(&mut c);
        c.handle_timeout(Instant::from_secs(2));
        assert!(reports(&drain(&mut c)).is_empty());
    }
}
