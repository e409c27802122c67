//! Transports: protocol messages a driver carries out as real HTTP instead
//! of sending them as datagrams.
//!
//! # Why
//!
//! In the protocol, the control node probes an instance with
//! [`Message::Probe`] and a client calls one with [`Message::Request`]; the
//! simulator delivers both as messages and answers them with a simulated
//! application. A real instance answers neither over UDP: it serves HTTP
//! (its `/readyz`, its own routes). So the driver does what the simulator's
//! network and application do together: it turns the message into an HTTP
//! GET and the result into the answer message the machine expects, fed
//! back as if the peer had sent it. The machine cannot tell the difference,
//! which is the point: what was proven in simulation runs here.
//!
//! # Mapping
//!
//! A message goes over HTTP when its destination has an [`HttpPeer`] entry
//! with the matching target; everything else (heartbeats, subscriptions,
//! endpoint updates, and probes or requests to a peer without a target)
//! stays on UDP.
//!
//! | sent | HTTP result | fed back, from the destination |
//! | --- | --- | --- |
//! | `Probe { id }` to a peer with a `health` target | 2xx or 3xx | `ProbeReply { id, ok: true }` |
//! | | other status, or an I/O error (reset, malformed answer) | `ProbeReply { id, ok: false }` |
//! | | connection refused | `Refused { id, probe: true }` |
//! | | no answer within [`TransportConfig::probe_timeout`] | nothing: the monitor's own deadline counts the round unresponsive |
//! | `Request { id }` to a peer with a `service` target | 2xx or 3xx | `Response { id, status: Ok }` |
//! | | other status, or an I/O error | `Response { id, status: Error }` |
//! | | connection refused | `Refused { id, probe: false }` |
//! | | no answer within [`TransportConfig::request_timeout`] | nothing: the client's own call timeout ends the call |
//!
//! Each exchange is one GET on a new connection, bounded by its timeout
//! (the [`probe`](crate::probe) module's semantics: the timeout covers
//! connect, request and response head; the body is not read).
//!
//! # Bounds
//!
//! Each exchange runs on a task of its own, owned by the driver task (a
//! [`JoinSet`](tokio::task::JoinSet)): results come back to the one task
//! that owns the machine, and aborting or shutting down the driver aborts
//! every exchange still running. At most
//! [`TransportConfig::max_in_flight`] (default [`DEFAULT_MAX_IN_FLIGHT`])
//! run at once; beyond that a message is dropped and counted
//! ([`DriverStats::http_dropped`](crate::DriverStats::http_dropped)), as a
//! full send queue drops a datagram: the machine's protocol already copes
//! with a lost probe or request (its deadlines).
//!
//! # Timeouts
//!
//! A probe message carries the monitor's own timeout (`timeout_ms`), and
//! the exchange gives up after the smaller of it and
//! [`TransportConfig::probe_timeout`]. A result that arrives after the
//! monitor's deadline would be ignored by the monitor anyway. A probe's
//! `kind` picks the target: liveness probes go to [`HttpPeer::liveness`]
//! when set (an instance's `/livez`), the others to [`HttpPeer::health`].

use std::time::Duration;

use vigil_core::NodeId;
use vigil_core::health::ProbeKind;
use vigil_core::message::{Message, ProbeReply, Refused, Response, ResponseStatus};

use crate::probe::{HttpTarget, ProbeOutcome};

/// Default [`TransportConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Default [`TransportConfig::probe_timeout`]: the seed's limit, "health
/// checks complete within 1 s".
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default [`TransportConfig::request_timeout`]: the client's default call
/// timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a peer answers over HTTP. A message whose kind has no target here
/// goes over UDP as usual.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpPeer {
    /// Probes ([`Message::Probe`]) to this peer become a GET of this URL
    /// (typically the instance's `/readyz`).
    pub health: Option<HttpTarget>,
    /// Liveness probes go here instead when set (typically `/livez`), so a
    /// drained instance (not ready) is not taken for a dead one.
    pub liveness: Option<HttpTarget>,
    /// Requests ([`Message::Request`]) to this peer become a GET of this
    /// URL (the instance's service route).
    pub service: Option<HttpTarget>,
}

/// Settings of a driver's HTTP transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Bound of one probe; see the [module docs](self) on timeouts.
    pub probe_timeout: Duration,
    /// Bound of one service request; at most the client's call timeout.
    pub request_timeout: Duration,
    /// Most HTTP exchanges running at once; more are dropped and counted.
    pub max_in_flight: usize,
}

impl Default for TransportConfig {
    /// 1 s probes, 1 s requests, 1024 exchanges in flight.
    fn default() -> Self {
        TransportConfig {
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Which message an exchange carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// A `Probe { id }`.
    Probe(u64),
    /// A `Request { id }`.
    Request(u64),
}

/// An HTTP exchange to start: where, and for which message.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) to: NodeId,
    pub(crate) exchange: Exchange,
    pub(crate) target: HttpTarget,
    pub(crate) timeout: Duration,
}

/// A finished exchange, handed back to the driver task.
#[derive(Clone, Debug)]
pub(crate) struct Completed {
    pub(crate) to: NodeId,
    pub(crate) exchange: Exchange,
    pub(crate) outcome: ProbeOutcome,
}

impl Completed {
    /// The answer to feed the machine, as if `to` had sent it; `None` on a
    /// timeout.
    pub(crate) fn answer(&self) -> Option<Message> {
        match self.exchange {
            Exchange::Probe(id) => match self.outcome {
                ProbeOutcome::Success { .. } => Some(Message::ProbeReply(ProbeReply { id, ok: true })),
                ProbeOutcome::HttpStatus(_) | ProbeOutcome::Io(_) => {
                    Some(Message::ProbeReply(ProbeReply { id, ok: false }))
                }
                ProbeOutcome::Refused => Some(Message::Refused(Refused { id, probe: true })),
                ProbeOutcome::Timeout => None,
            },
            Exchange::Request(id) => {
                let status = match self.outcome {
                    ProbeOutcome::Success { .. } => ResponseStatus::Ok,
                    ProbeOutcome::HttpStatus(_) | ProbeOutcome::Io(_) => ResponseStatus::Error,
                    ProbeOutcome::Refused => return Some(Message::Refused(Refused { id, probe: false })),
                    ProbeOutcome::Timeout => return None,
                };
                Some(Message::Response(Response { id, status }))
            }
        }
    }
}

impl HttpPeer {
    /// The exchange that carries `message` to this peer, if it goes over
    /// HTTP.
    pub(crate) fn job(&self, to: NodeId, message: Message, config: &TransportConfig) -> Option<Job> {
        let (exchange, target, timeout) = match message {
            Message::Probe(p) => {
                let target = match p.kind {
                    ProbeKind::Liveness => self.liveness.as_ref().or(self.health.as_ref())?,
                    ProbeKind::Readiness | ProbeKind::Startup => self.health.as_ref()?,
                };
                // The monitor's own deadline bounds the exchange too.
                let timeout = config.probe_timeout.min(Duration::from_millis(u64::from(p.timeout_ms)));
                (Exchange::Probe(p.id), target, timeout)
            }
            Message::Request(r) => (Exchange::Request(r.id), self.service.as_ref()?, config.request_timeout),
            _ => return None,
        };
        Some(Job { to, exchange, target: target.clone(), timeout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::message::{Heartbeat, Probe, Request};
    use vigil_core::{InstanceId, NodeId};

    fn done(exchange: Exchange, outcome: ProbeOutcome) -> Option<Message> {
        Completed { to: NodeId(1), exchange, outcome }.answer()
    }

    #[test]
    fn probe_outcomes_map_to_replies() {
        let ok = ProbeOutcome::Success { latency: Duration::from_millis(1) };
        assert_eq!(done(Exchange::Probe(7), ok), Some(Message::ProbeReply(ProbeReply { id: 7, ok: true })));
        for failed in [ProbeOutcome::HttpStatus(503), ProbeOutcome::Io("reset".into())] {
            assert_eq!(
                done(Exchange::Probe(7), failed),
                Some(Message::ProbeReply(ProbeReply { id: 7, ok: false }))
            );
        }
        assert_eq!(
            done(Exchange::Probe(7), ProbeOutcome::Refused),
            Some(Message::Refused(Refused { id: 7, probe: true }))
        );
        assert_eq!(done(Exchange::Probe(7), ProbeOutcome::Timeout), None);
    }

    #[test]
    fn request_outcomes_map_to_responses() {
        let ok = ProbeOutcome::Success { latency: Duration::from_millis(1) };
        let response = |status| Some(Message::Response(Response { id: 3, status }));
        assert_eq!(done(Exchange::Request(3), ok), response(ResponseStatus::Ok));
        assert_eq!(
            done(Exchange::Request(3), ProbeOutcome::HttpStatus(500)),
            response(ResponseStatus::Error)
        );
        assert_eq!(
            done(Exchange::Request(3), ProbeOutcome::Io("eof".into())),
            response(ResponseStatus::Error)
        );
        assert_eq!(
            done(Exchange::Request(3), ProbeOutcome::Refused),
            Some(Message::Refused(Refused { id: 3, probe: false }))
        );
        assert_eq!(done(Exchange::Request(3), ProbeOutcome::Timeout), None);
    }

    #[test]
    fn only_probes_and_requests_with_a_target_go_over_http() {
        let target = HttpTarget::parse("127.0.0.1:1/readyz").unwrap();
        let config = TransportConfig::default();
        let health_only = HttpPeer { health: Some(target.clone()), liveness: None, service: None };
        let probe = Message::Probe(Probe { id: 1, kind: ProbeKind::Readiness, timeout_ms: 1000 });
        let request = Message::Request(Request { id: 2 });
        let job = health_only.job(NodeId(4), probe, &config).expect("a probe with a health target");
        assert_eq!(
            (job.to, job.exchange, job.timeout),
            (NodeId(4), Exchange::Probe(1), config.probe_timeout)
        );
        assert!(health_only.job(NodeId(4), request, &config).is_none(), "no service target: UDP");
        let service_only = HttpPeer { health: None, liveness: None, service: Some(target) };
        assert!(service_only.job(NodeId(4), probe, &config).is_none(), "no health target: UDP");
        assert_eq!(service_only.job(NodeId(4), request, &config).unwrap().exchange, Exchange::Request(2));
        let beat = Message::Heartbeat(Heartbeat { instance: InstanceId(0), incarnation: 1, seq: 0 });
        assert!(service_only.job(NodeId(4), beat, &config).is_none());
        assert!(service_only.job(NodeId(4), Message::Subscribe, &config).is_none());
    }
}
