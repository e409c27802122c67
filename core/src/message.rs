//! Messages machines exchange over the network.
//!
//! One enum for the whole protocol, so a driver routes bytes without knowing
//! which capability they belong to. Messages are plain data (`Copy` where
//! possible): the simulator moves millions of them a second and must not
//! allocate for each. The tokio driver encodes them with `postcard`.

use crate::health::ProbeKind;
use crate::id::{InstanceId, NodeId, ServiceId};

/// A protocol message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// "I am alive": sent by an instance agent to the control node.
    Heartbeat(Heartbeat),
    /// A client's call to a service instance.
    Request(Request),
    /// An instance's answer to a [`Request`].
    Response(Response),
    /// The destination host is up but nothing listens (the process is
    /// dead): what a TCP RST or ICMP port-unreachable tells a caller. Sent
    /// by the destination's host in place of an answer to a request or a
    /// probe, never by a machine.
    Refused(Refused),
    /// A health probe of an instance (its health endpoint).
    Probe(Probe),
    /// An instance's answer to a [`Probe`].
    ProbeReply(ProbeReply),
    /// The control node tells a client how an endpoint stands, so the
    /// client's balancer routes around sick instances.
    EndpointUpdate(EndpointUpdate),
    /// A client asks the control node for endpoint updates. A lease:
    /// clients renew it periodically, and a control node that does not know
    /// the client (it restarted) answers with its whole table.
    Subscribe,
    /// A client tells the control node how its calls to one instance went
    /// lately: a second vantage point, so recovery can tell an instance
    /// that is cut off from the control node (its clients still reach it)
    /// from one that failed (its clients fail too).
    CallReport(CallReport),
}

/// A call from a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// Chosen by the caller, unique among its outstanding calls.
    pub id: u64,
}

/// How a call ended, as the instance answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ResponseStatus {
    /// Success (an HTTP 2xx).
    Ok,
    /// The instance answered with an error (an HTTP 5xx).
    Error,
}

/// An answer to a [`Request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// Outcome.
    pub status: ResponseStatus,
}

/// Nothing listens at the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    /// Id of the request or probe that was refused.
    pub id: u64,
    /// Whether it was a probe (else a request).
    pub probe: bool,
}

/// A health probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// Chosen by the prober, unique among its outstanding probes.
    pub id: u64,
    /// Which check asks: a driver probes `/livez` for liveness and
    /// `/readyz` for readiness and startup (Kubernetes conventions).
    pub kind: ProbeKind,
    /// How long the prober waits for the answer; a driver running the
    /// probe for real gives up after this too.
    pub timeout_ms: u32,
}

/// An answer to a [`Probe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProbeReply {
    /// The probe's id.
    pub id: u64,
    /// Whether the instance reports itself healthy (an HTTP 2xx).
    pub ok: bool,
}

/// How one endpoint stands, from the control node's point of view.
///
/// The control node tells every subscriber about every instance; the
/// update names the instance's service so that a client of one service
/// ignores the others' instances rather than calling them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct EndpointUpdate {
    /// The instance.
    pub instance: InstanceId,
    /// The instance's service.
    pub service: ServiceId,
    /// Where to reach it.
    pub node: NodeId,
    /// Whether clients should send it traffic.
    pub routable: bool,
    /// The catalog index this state is current as of; a client ignores an
    /// update older than one it has applied.
    pub index: u64,
}

/// How a client's calls to one instance went since its last report.
///
/// Times travel as ages (milliseconds before the report was sent), never
/// as instants: clocks differ between nodes, durations hardly do. The
/// receiver dates each event as its own receipt time minus the age, which
/// errs early by the network delay, the safe side for "reached after the
/// control node lost it".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CallReport {
    /// The instance called.
    pub instance: InstanceId,
    /// Attempts answered with success.
    pub ok: u32,
    /// Attempts answered with an error.
    pub errors: u32,
    /// Attempts refused (the host answered, nothing listened).
    pub refused: u32,
    /// Attempts that got no answer in time.
    pub timed_out: u32,
    /// Age of the latest success, in milliseconds; [`CallReport::NEVER`]
    /// if none since the last report.
    pub since_ok_ms: u32,
    /// Age of the latest failure to get an answer (a timeout or a
    /// refusal), in milliseconds; [`CallReport::NEVER`] if none.
    pub since_failure_ms: u32,
}

impl CallReport {
    /// The age that means "none in this report".
    pub const NEVER: u32 = u32::MAX;
}

/// A liveness beacon.
///
/// `(incarnation, seq)` orders beacons: a restarted agent has a higher
/// incarnation, and within an incarnation `seq` counts up, so a receiver can
/// drop a delayed or duplicated beacon that says nothing new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Heartbeat {
    /// Who is alive.
    pub instance: InstanceId,
    /// Which life of the instance this is; higher after every restart.
    pub incarnation: u64,
    /// Counts up from 0 within one incarnation.
    pub seq: u64,
}

/// A message to send: what a machine that only talks to the network (the
/// heartbeat agent) outputs. The node it runs in turns it into
/// [`Output::Send`](crate::envelope::Output::Send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The destination.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}
