//! # vigil-tokio
//!
//! Runs vigil's sans-IO machines with tokio: real time, real UDP sockets.
//! Also the pieces a real deployment needs around them: health endpoints
//! for a user's service ([`endpoints`]), the monitor's real prober
//! ([`probe`]), probes and calls carried out as HTTP ([`transport`]), what
//! a service embeds ([`instance`]), a client that discovers and calls
//! instances ([`discovery`]), and the platform recovery acts on, local
//! processes for now ([`platform`]).
//!
//! The machines in `vigil-core` decide; they never read a clock or touch a
//! socket. This crate is their production driver, the counterpart of the
//! simulator in `vigil-sim`: the same machine values, fed by the real world.
//!
//! # The loop
//!
//! A [`Driver`] runs one machine on one tokio task, bound to one UDP socket.
//! The task loops:
//!
//! 1. Wait, with `tokio::select!`, for the first of
//!    - a command from the [`DriverHandle`] (shut down, inspect or change the machine,
//!      change the peer table, make a call),
//!    - the machine's deadline:
//!      [`Machine::poll_timeout`](vigil_core::Machine::poll_timeout), mapped
//!      to a tokio instant by the [`Clock`] and awaited with
//!      [`tokio::time::sleep_until`],
//!    - a finished HTTP exchange ([`transport`]),
//!    - a datagram on the socket, opened as an [`Envelope`]: authenticated
//!      and checked against replay ([`wire`]).
//! 2. Feed the machine: `handle_timeout(now)` for the deadline,
//!    `handle(now, Input::Message { from, message })` for a datagram or an
//!    HTTP answer, `handle(now, Input::Call { id })` for a call.
//! 3. Drain [`Machine::poll_output`](vigil_core::Machine::poll_output)
//!    until it returns `None`: each `Output::Send` is encoded and sent to
//!    the destination's address in the peer table, unless it is a probe or
//!    a request to a peer reached over HTTP ([`HttpPeer`]), which starts an
//!    HTTP exchange instead; each `Output::Health` is published to
//!    subscribers ([`DriverHandle::subscribe`]) and logged with `tracing`;
//!    each `Output::CallDone` goes to the caller waiting for it; each
//!    `Output::Recovery` is logged, published
//!    ([`DriverHandle::subscribe_recovery`]) and, for an action, handed to
//!    the recovery executor ([`Driver::with_recovery`]).
//! 4. Ask `poll_timeout` again, since any input may move the deadline.
//!
//! # Why this shape
//!
//! - **One task per machine.** A machine is `&mut self` state with no locks:
//!   giving it a task of its own serialises its inputs without a mutex, and
//!   a crash of one node is simulated by aborting one task
//!   ([`DriverHandle::abort`]). Queries run *on* that task
//!   ([`DriverHandle::with_machine`]) between two inputs, so they never see
//!   a half-handled input.
//! - **`poll_timeout` → `sleep_until`.** The machine owns its timers and
//!   reports only the earliest deadline; the driver sleeps until exactly
//!   that instant and then calls `handle_timeout`, which is safe to call
//!   early. No tick, no polling: an idle machine costs nothing. The timer
//!   is re-armed after every input because the deadline may have moved.
//! - **Drain completely after every `handle*`.** That is the machine
//!   contract ([`vigil_core::machine`]): outputs are effects queued by the
//!   mutation that caused them, and must be carried out before the next one.
//!   The driver runs the machine inside [`vigil_core::machine::Checked`], so
//!   a breach panics the task instead of hiding, as it would in the
//!   simulator.
//!
//! Nothing a peer sends can panic the driver: a datagram that does not
//! decode is counted ([`DriverStats::malformed_datagrams`]), logged and
//! dropped; one that is forged, under an unknown key, replayed or of an
//! old session likewise, each kind in a counter of its own
//! ([`DriverStats::unauthenticated_datagrams`] and the next ones); a
//! message for a node missing from the peer table likewise. Every datagram
//! is sealed under the key the driver was built with ([`WireAuth`]);
//! peer addresses are learned only from authentic datagrams.
//!
//! # Example
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use vigil_core::health::AgentConfig;
//! use vigil_core::fleet::InstanceNode;
//! use vigil_core::rng::Seed;
//! use vigil_core::{Duration, InstanceId, NodeId};
//! use vigil_core::auth::{Key, KeyId};
//! use vigil_tokio::{Clock, Driver, WireAuth, incarnation_now};
//!
//! # async fn example(control_addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! let clock = Clock::start();
//! let config = AgentConfig {
//!     instance: InstanceId(0),
//!     control: NodeId(0),
//!     interval: Duration::from_millis(100),
//!     incarnation: incarnation_now(),
//! };
//! let agent = InstanceNode::new(config, clock.now(), Seed(1))?;
//! // The fleet's key, as the operator provisioned it (64 hex digits).
//! let auth = WireAuth::fleet(KeyId(1), Key::from_hex(&std::env::var("VIGIL_WIRE_KEY")?)?);
//! let handle = Driver::bind(NodeId(1), "127.0.0.1:0".parse()?, clock, agent, auth)
//!     .await?
//!     .with_peers([(NodeId(0), control_addr)])
//!     .spawn();
//! // ... later
//! let agent = handle.shutdown().await?;
//! println!("sent {} heartbeats", agent.heartbeat().sent());
//! # Ok(())
//! # }
//! ```
//!
//! # Health endpoints and probes
//!
//! [`endpoints`] serves `/livez`, `/readyz` and `/healthz` from
//! user-supplied checks, with Kubernetes' conventions (startup gate, drain
//! switch, `?verbose`, `?exclude=`). [`probe`] is the other side: an HTTP
//! GET or a TCP connect with a deadline, whose [`ProbeOutcome`] tells a
//! refusal (crashed) from a timeout (hung) from an error status.
//!
//! # Over HTTP, for real
//!
//! The protocol's probes and calls are messages; real instances answer
//! HTTP. [`transport`] bridges the two inside the driver: a `Probe` to a
//! peer with a health URL becomes a GET of it, a `Request` to a peer with a
//! service URL a GET of that, and the result comes back to the machine as
//! the `ProbeReply`, `Response` or `Refused` it would get in simulation.
//! Built on it:
//!
//! - [`Instance`]: a user's axum routes and the health endpoints on one
//!   listener, and the heartbeat agent beside them.
//! - [`DiscoveryClient`]: a [`ClientNode`](vigil_core::client::ClientNode)
//!   on a driver; [`call`](DiscoveryClient::call) picks a routable instance
//!   through the client's balancer and GETs it.
//!
//! - [`api`]: the control plane's JSON API ([`serve_api`]): the catalog
//!   for reading, registration and deregistration behind a bearer token;
//!   an [`Instance`] given a [`SelfRegistration`] registers itself through
//!   it at start and deregisters at shutdown.
//!
//! `tests/discovery-e2e.rs` runs the whole loop on loopback: a control node,
//! three instances, a client; a drained instance and a stopped one leave
//! rotation, a restored one returns.
//!
//! # Recovery over real processes
//!
//! A control plane configured with recovery emits actions (restart,
//! replace, scale out, …) that only a platform can carry out. [`platform`]
//! holds the [`Platform`] trait, the [`ProcessPlatform`] (each instance a
//! local child process) and the executor that joins them to a control
//! driver:
//!
//! 1. [`Driver::with_recovery`] hands every recovery action to a channel
//!    (never blocking the machine's task: a full channel drops the action,
//!    which then times out); [`DriverHandle::subscribe_recovery`] publishes
//!    every decision and action for the record.
//! 2. [`spawn_recovery_executor`] carries each action out on the platform,
//!    one task per action, and reports
//!    [`Outcome::Failed`](vigil_core::recovery::Outcome::Failed) back
//!    through the driver when the platform cannot act. Success is never
//!    reported: the instance's return to health, seen by the control
//!    plane itself, ends the episode. A scale-out starts standby slots
//!    declared to the platform; the executor registers each new instance
//!    with the control plane.
//!
//! The `vigil-instance` binary is the smallest real instance, a heartbeat
//! agent in a process of its own. `tests/recovery-process.rs` runs it
//! under a `ProcessPlatform` on loopback, kills one with `kill -9`, and
//! checks it restarted within 3 s of the dead verdict and alive again,
//! its sibling untouched; `tests/scale-out-process.rs` degrades one and
//! checks its service scaled out into a standby slot, the new child
//! registered and alive from its own heartbeats.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod clock;
pub mod discovery;
mod driver;
pub mod endpoints;
mod error;
pub mod instance;
pub mod platform;
pub mod probe;
pub mod server;
mod stats;
pub mod transport;
pub mod wire;

pub use api::{ApiClient, ApiConfig, ApiServer, serve_api};
pub use clock::{Clock, incarnation_now};
pub use discovery::{DiscoveryClient, DiscoveryConfig};
pub use driver::{
    Driver, DriverEvent, DriverHandle, EVENT_CAPACITY, MAX_LEARNED_PEERS, MAX_PENDING_CALLS, MachineRef,
};
pub use endpoints::{CheckKind, HealthChecks, HealthServer};
pub use error::Error;
pub use instance::{Instance, InstanceConfig, SelfRegistration};
pub use platform::{
    ExecutorConfig, ExecutorHandle, ExecutorStats, NewInstance, Platform, PlatformError, ProcessPlatform,
    ProcessSpec, spawn_recovery_executor, spawn_recovery_executor_with,
};
pub use probe::{HttpTarget, ProbeOutcome, probe_http, probe_tcp};
pub use server::{HttpLimits, HttpServer, HttpServerStats};
pub use stats::DriverStats;
pub use transport::{HttpPeer, TransportConfig};
pub use wire::{Envelope, MAX_DATAGRAM, MAX_SENDERS, WIRE_VERSION, WireAuth, WireError, seal_datagram};
