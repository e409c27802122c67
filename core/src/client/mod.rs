//! The calling side: a client that discovers a service's instances and
//! calls them, routing around the sick ones.
//!
//! A [`ClientNode`] subscribes to the control node, which answers with an
//! [`EndpointUpdate`] per instance and sends another whenever one becomes
//! routable or stops being so. The subscription is a lease renewed every
//! `resubscribe_interval`, so a control node that restarted (and forgot its
//! subscribers) sends the whole table again.
//!
//! Each call ([`Input::Call`]) goes to one routable endpoint; its outcome
//! comes back as [`Output::CallDone`]: success, an error answer, refused
//! (nothing listening), a timeout, or no routable endpoint at all. Those
//! outcomes are what "availability as clients see it" is measured on.
//!
//! Cost: a call is O(log outstanding); timeouts share one duration, so
//! their deadlines leave a FIFO in order (the same trick as the failure
//! detector's queues).

use std::collections::{BTreeMap, VecDeque};

use crate::id::{InstanceId, NodeId};
use crate::machine::Machine;
use crate::message::{EndpointUpdate, Message, Request, ResponseStatus};
use crate::node::{Input, Output};
use crate::time::{Duration, Instant};

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The instance answered with success.
    Ok,
    /// The instance answered with an error.
    Error,
    /// Nothing listened at the instance.
    Refused,
    /// No answer within the call timeout.
    Timeout,
    /// No endpoint was routable: the call was never sent.
    NoEndpoint,
}

impl CallOutcome {
    /// Whether the caller got what it asked for.
    pub fn is_success(self) -> bool {
        self == CallOutcome::Ok
    }
}

/// A finished call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CallDone {
    /// The call's id, as given in [`Input::Call`].
    pub id: u64,
    /// The instance that served (or failed) it, if one was picked.
    pub instance: Option<InstanceId>,
    /// How it ended.
    pub outcome: CallOutcome,
    /// From the call to its outcome.
    pub latency: Duration,
}

/// Settings of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The control node to subscribe to.
    pub control: NodeId,
    /// How long a call may wait for an answer.
    pub call_timeout: Duration,
    /// How often the subscription is renewed.
    pub resubscribe_interval: Duration,
    /// Most calls in flight at once; a call beyond it fails at once as
    /// `Timeout` (a full connection pool).
    pub max_outstanding: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            control: NodeId(0),
            call_timeout: Duration::from_secs(1),
            resubscribe_interval: Duration::from_secs(5),
            max_outstanding: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Endpoint {
    node: NodeId,
    routable: bool,
    index: u64,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    sent_at: Instant,
    instance: InstanceId,
}

/// A client of one service: discovers its instances and calls them.
#[derive(Debug, Clone)]
pub struct ClientNode {
    config: ClientConfig,
    endpoints: BTreeMap<InstanceId, Endpoint>,
    routable: Vec<InstanceId>,
    cursor: usize,
    outstanding: BTreeMap<u64, Outstanding>,
    deadlines: VecDeque<(Instant, u64)>,
    next_subscribe: Instant,
    outputs: VecDeque<Output>,
}

impl ClientNode {
    /// A client booting at `now`; it subscribes at once.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        ClientNode {
            config,
            endpoints: BTreeMap::new(),
            routable: Vec::new(),
            cursor: 0,
            outstanding: BTreeMap::new(),
            deadlines: VecDeque::new(),
            next_subscribe: now,
            outputs: VecDeque::new(),
        }
    }

    /// Instances calls may go to now, in id order.
    pub fn routable(&self) -> &[InstanceId] {
        &self.routable
    }

    /// Calls in flight.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn call(&mut self, now: Instant, id: u64) {
        let done =
            |instance, outcome| Output::CallDone(CallDone { id, instance, outcome, latency: Duration::ZERO });
        if self.outstanding.contains_key(&id) || self.outstanding.len() >= self.config.max_outstanding {
            self.outputs.push_back(done(None, CallOutcome::Timeout));
            return;
        }
        if self.routable.is_empty() {
            self.outputs.push_back(done(None, CallOutcome::NoEndpoint));
            return;
        }
        self.cursor = (self.cursor + 1) % self.routable.len();
        let instance = self.routable[self.cursor];
        let node = self.endpoints[&instance].node;
        self.outstanding.insert(id, Outstanding { sent_at: now, instance });
        self.deadlines.push_back((now + self.config.call_timeout, id));
        self.outputs.push_back(Output::Send { to: node, message: Message::Request(Request { id }) });
    }

    fn finish(&mut self, now: Instant, id: u64, outcome: CallOutcome) {
        // Unknown ids are late answers to calls that already timed out.
        if let Some(o) = self.outstanding.remove(&id) {
            self.outputs.push_back(Output::CallDone(CallDone {
                id,
                instance: Some(o.instance),
                outcome,
                latency: now - o.sent_at,
            }));
        }
    }

    fn update(&mut self, u: EndpointUpdate) {
        let entry =
            self.endpoints.entry(u.instance).or_insert(Endpoint { node: u.node, routable: false, index: 0 });
        if u.index < entry.index {
            return; // older news than what we applied
        }
        *entry = Endpoint { node: u.node, routable: u.routable, index: u.index };
        self.routable = self.endpoints.iter().filter(|(_, e)| e.routable).map(|(&i, _)| i).collect();
    }
}

impl Machine for ClientNode {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Instant, input: Input) {
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
                Message::EndpointUpdate(u) => self.update(u),
                _ => {}
            },
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            self.finish(now, id, CallOutcome::Timeout);
        }
        if now >= self.next_subscribe {
            self.outputs.push_back(Output::Send { to: self.config.control, message: Message::Subscribe });
            self.next_subscribe = now + self.config.resubscribe_interval;
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let call = self.deadlines.iter().find(|(_, id)| self.outstanding.contains_key(id)).map(|&(t, _)| t);
        Some(call.map_or(self.next_subscribe, |c| c.min(self.next_subscribe)))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Refused, Response};

    fn client() -> ClientNode {
        let mut c = ClientNode::new(ClientConfig::default(), Instant::ZERO);
        c.handle_timeout(Instant::ZERO);
        assert_eq!(
            c.poll_output(),
            Some(Output::Send { to: NodeId(0), message: Message::Subscribe }),
            "subscribes at boot"
        );
        c
    }

    fn update(c: &mut ClientNode, instance: u32, routable: bool, index: u64) {
        let u =
            EndpointUpdate { instance: InstanceId(instance), node: NodeId(instance + 1), routable, index };
        c.handle(Instant::ZERO, Input::Message { from: NodeId(0), message: Message::EndpointUpdate(u) });
    }

    fn done(c: &mut ClientNode) -> Vec<CallDone> {
        std::iter::from_fn(|| c.poll_output())
            .filter_map(|o| if let Output::CallDone(d) = o { Some(d) } else { None })
            .collect()
    }

    #[test]
    fn no_routable_endpoint_fails_fast() {
        let mut c = client();
        c.handle(Instant::ZERO, Input::Call { id: 1 });
        assert_eq!(done(&mut c)[0].outcome, CallOutcome::NoEndpoint);
    }

    #[test]
    fn calls_go_only_to_routable_endpoints_and_complete() {
        let mut c = client();
        update(&mut c, 0, true, 1);
        update(&mut c, 1, false, 1);
        update(&mut c, 2, true, 1);
        let mut targets = Vec::new();
        for id in 0..6 {
            c.handle(Instant::from_millis(id), Input::Call { id });
            match c.poll_output() {
                Some(Output::Send { to, message: Message::Request(r) }) => {
                    assert_eq!(r.id, id);
                    targets.push(to.0);
                }
                other => panic!("expected a request, got {other:?}"),
            }
        }
        assert!(!targets.contains(&2), "instance 1 (node 2) is not routable: {targets:?}");
        assert!(targets.contains(&1) && targets.contains(&3));
        let reply = Message::Response(Response { id: 3, status: ResponseStatus::Error });
        c.handle(Instant::from_millis(10), Input::Message { from: NodeId(1), message: reply });
        let d = done(&mut c);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].outcome, d[0].latency), (CallOutcome::Error, Duration::from_millis(7)));
        let refused = Message::Refused(Refused { id: 4, probe: false });
        c.handle(Instant::from_millis(10), Input::Message { from: NodeId(1), message: refused });
        assert_eq!(done(&mut c)[0].outcome, CallOutcome::Refused);
    }

    #[test]
    fn unanswered_calls_time_out_and_late_answers_are_ignored() {
        let mut c = client();
        update(&mut c, 0, true, 1);
        c.handle(Instant::ZERO, Input::Call { id: 7 });
        let _ = done(&mut c);
        assert_eq!(c.poll_timeout(), Some(Instant::from_secs(1)));
        c.handle_timeout(Instant::from_secs(1));
        let d = done(&mut c);
        assert_eq!(d[0].outcome, CallOutcome::Timeout);
        let late = Message::Response(Response { id: 7, status: ResponseStatus::Ok });
        c.handle(Instant::from_secs(2), Input::Message { from: NodeId(1), message: late });
        assert!(done(&mut c).is_empty(), "a late answer is not a second outcome");
    }

    #[test]
    fn stale_updates_are_ignored() {
        let mut c = client();
        update(&mut c, 0, true, 5);
        update(&mut c, 0, false, 4);
        assert_eq!(c.routable(), &[InstanceId(0)]);
        update(&mut c, 0, false, 6);
        assert!(c.routable().is_empty());
    }
}
