//! One machine, one tokio task, one UDP socket.
//!
//! [`Driver`] owns a machine, its socket and its peer table until
//! [`spawn`](Driver::spawn) moves them onto a task; the returned
//! [`DriverHandle`] is the only way to reach them afterwards. See the crate
//! docs for the loop itself.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;
use vigil_core::client::CallDone;
use vigil_core::envelope::{Input, Output};
use vigil_core::health::HealthEvent;
use vigil_core::machine::Checked;
use vigil_core::message::Message;
use vigil_core::recovery::{Action, RecoveryOutput};
use vigil_core::{Instant, Machine, NodeId};

use crate::clock::Clock;
use crate::error::Error;
use crate::stats::{Counters, DriverStats};
use crate::transport::{Completed, HttpPeer, Job, TransportConfig};
use vigil_core::auth::{Opener, Rejection, Sealer};

use crate::wire::{Envelope, MAX_DATAGRAM, WireAuth, WireError, seal_datagram};

/// How many events a subscriber may fall behind before it misses some
/// ([`broadcast::error::RecvError::Lagged`]).
pub const EVENT_CAPACITY: usize = 1024;

/// How many commands may wait for the task before senders wait too.
const COMMAND_CAPACITY: usize = 64;

/// Most calls ([`DiscoveryClient::call`](crate::DiscoveryClient::call))
/// waiting for their outcome at once; a call beyond it fails at once with
/// [`Error::TooManyCalls`].
pub const MAX_PENDING_CALLS: usize = 65_536;

/// Most peer addresses a driver learns from datagrams
/// ([`Driver::with_learned_peers`]); beyond it, senders are not learned
/// (their datagrams are still handled). Configured peers do not count.
pub const MAX_LEARNED_PEERS: usize = 65_536;

/// A health verdict a driver published, with where and when it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverEvent {
    /// The node whose machine emitted it.
    pub node: NodeId,
    /// The `now` of the `handle*` call that produced it, on the driver's
    /// [`Clock`].
    pub at: Instant,
    /// The verdict.
    pub event: HealthEvent,
}

/// A machine bound to a UDP socket, ready to [`spawn`](Driver::spawn).
///
/// `M` is any machine that speaks the node protocol
/// ([`vigil_core::envelope::Input`] in, [`vigil_core::envelope::Output`] out):
/// [`ControlPlane`](vigil_core::control::ControlPlane),
/// [`InstanceNode`](vigil_core::fleet::InstanceNode) or
/// [`Node`](vigil_core::fleet::Node).
pub struct Driver<M> {
    node: NodeId,
    socket: UdpSocket,
    local_addr: SocketAddr,
    clock: Clock,
    /// The highest `now` handed to the machine: `now` never goes backwards.
    last_now: Instant,
    /// Runs the machine under the contract checks: a driver bug panics the
    /// task instead of corrupting the machine quietly.
    machine: Checked<M>,
    peers: BTreeMap<NodeId, SocketAddr>,
    /// Whether a datagram from a node missing from `peers` adds it, at the
    /// datagram's source address.
    learn_peers: bool,
    /// Addresses learned so far.
    learned: usize,
    /// Peers that answer probes or requests over HTTP (see
    /// [`crate::transport`]).
    http_peers: BTreeMap<NodeId, HttpPeer>,
    transport: TransportConfig,
    /// The HTTP exchanges in flight; aborted with the driver.
    io: JoinSet<Completed>,
    /// Callers waiting for a `CallDone`, by call id.
    calls: BTreeMap<u64, CallReply>,
    next_call: u64,
    events: broadcast::Sender<DriverEvent>,
    /// Where recovery actions go to be carried out
    /// ([`with_recovery`](Driver::with_recovery)); `None`: dropped.
    recovery_actions: Option<mpsc::Sender<Action>>,
    /// Every recovery output, decisions and actions, for whoever listens.
    recovery_events: broadcast::Sender<RecoveryOutput>,
    counters: Arc<Counters>,
    /// Seals every datagram sent (see [`crate::wire`]).
    sealer: Sealer,
    /// Opens every datagram received: keys and replay windows.
    opener: Opener,
}

impl<M> fmt::Debug for Driver<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("node", &self.node)
            .field("local_addr", &self.local_addr)
            .field("peers", &self.peers)
            .field("http_peers", &self.http_peers)
            .finish_non_exhaustive()
    }
}

impl<M> Driver<M>
where
    M: Machine<Input = Input, Output = Output> + Send + 'static,
{
    /// Bind a UDP socket at `addr` for node `node`, which runs `machine`
    /// on `clock`, sealing and opening datagrams as `auth` says (see
    /// [`crate::wire`]: there is no driver without a key, except one built
    /// with [`WireAuth::insecure_no_auth`], which warns).
    ///
    /// The driver's session (the frame header's) is taken here, from
    /// [`incarnation_now`](crate::incarnation_now): greater than that of
    /// any earlier driver for the same node, in this process or an earlier
    /// one, as long as the wall clock is not stepped back between them.
    ///
    /// Build the machine with `now = clock.now()` (or any earlier instant on
    /// that clock): the machine's timeline is the clock's. Bind port 0 to let
    /// the system choose, then read [`local_addr`](Driver::local_addr).
    pub async fn bind(
        node: NodeId,
        addr: SocketAddr,
        clock: Clock,
        machine: M,
        auth: WireAuth,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        let local_addr = socket.local_addr()?;
        if auth.is_insecure() {
            tracing::warn!(
                node = node.0,
                %local_addr,
                "INSECURE: node-to-node datagrams are NOT authenticated (WireAuth::insecure_no_auth); \
                 anyone who reaches this socket can forge heartbeats and messages from any node. \
                 For local development only: configure a key."
            );
        }
        let (sealer, opener) = auth.into_parts(node, crate::clock::incarnation_now());
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (recovery_events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(Driver {
            node,
            socket,
            local_addr,
            clock,
            last_now: Instant::ZERO,
            machine: Checked::new(machine),
            peers: BTreeMap::new(),
            learn_peers: false,
            learned: 0,
            http_peers: BTreeMap::new(),
            transport: TransportConfig::default(),
            io: JoinSet::new(),
            calls: BTreeMap::new(),
            next_call: 0,
            events,
            recovery_actions: None,
            recovery_events,
            counters: Arc::new(Counters::default()),
            sealer,
            opener,
        })
    }

    /// The node this driver speaks for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The address the socket is bound to (with the actual port if port 0
    /// was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Route messages for `node` to `addr`; returns the address it replaces.
    pub fn set_peer(&mut self, node: NodeId, addr: SocketAddr) -> Option<SocketAddr> {
        self.peers.insert(node, addr)
    }

    /// [`set_peer`](Driver::set_peer) for each pair, builder style.
    #[must_use]
    pub fn with_peers(mut self, peers: impl IntoIterator<Item = (NodeId, SocketAddr)>) -> Self {
        self.peers.extend(peers);
        self
    }

    /// Learn the address of a node that is missing from the peer table from
    /// the first datagram it sends (its source address), builder style. Off
    /// by default.
    ///
    /// For a control node, whose clients are not known in advance: a client
    /// subscribes, and the endpoint updates go back where the subscription
    /// came from. An address in the table, set or learned, is never
    /// replaced by a datagram (a restarted client on a new port needs
    /// [`DriverHandle::set_peer`], or
    /// [`remove_peer`](DriverHandle::remove_peer) to be learned again), so
    /// a forged sender id can only claim a node the table does not know.
    /// At most [`MAX_LEARNED_PEERS`] are learned; use it on a trusted
    /// network.
    #[must_use]
    pub fn with_learned_peers(mut self, learn: bool) -> Self {
        self.learn_peers = learn;
        self
    }

    /// Carry probes and requests to `node` over HTTP, as `peer` says (see
    /// [`crate::transport`]); returns the entry it replaces. Other messages
    /// to `node` still need a UDP address ([`set_peer`](Driver::set_peer)).
    pub fn set_http_peer(&mut self, node: NodeId, peer: HttpPeer) -> Option<HttpPeer> {
        self.http_peers.insert(node, peer)
    }

    /// [`set_http_peer`](Driver::set_http_peer) for each pair, builder style.
    #[must_use]
    pub fn with_http_peers(mut self, peers: impl IntoIterator<Item = (NodeId, HttpPeer)>) -> Self {
        self.http_peers.extend(peers);
        self
    }

    /// Timeouts and bound of the HTTP transports, builder style.
    #[must_use]
    pub fn with_transport(mut self, config: TransportConfig) -> Self {
        self.transport = config;
        self
    }

    /// The machine, before it is spawned.
    pub fn machine(&self) -> &M {
        self.machine.get()
    }

    /// Receive every health event published from now on. Subscribe before
    /// [`spawn`](Driver::spawn) to be sure to see the first ones.
    pub fn subscribe(&self) -> broadcast::Receiver<DriverEvent> {
        self.events.subscribe()
    }

    /// Hand every recovery action the machine emits to `actions`, builder
    /// style: the control plane's coordinator decides, whoever holds the
    /// receiver carries the action out
    /// ([`spawn_recovery_executor`](crate::spawn_recovery_executor) on a
    /// [`Platform`](crate::Platform)) and reports failures with
    /// [`ControlPlane::recovery_outcome`](vigil_core::control::ControlPlane::recovery_outcome).
    ///
    /// The driver never waits for the receiver: an action that finds the
    /// channel full or closed is dropped, logged and counted
    /// ([`DriverStats::recovery_actions_dropped`]), and the coordinator
    /// counts it failed when its `action_timeout` passes, as it would an
    /// action lost anywhere else. Without a channel, actions are dropped
    /// and counted as [`DriverStats::unhandled_outputs`]. Decisions are
    /// logged and counted either way, and published to
    /// [`subscribe_recovery`](Driver::subscribe_recovery).
    #[must_use]
    pub fn with_recovery(mut self, actions: mpsc::Sender<Action>) -> Self {
        self.recovery_actions = Some(actions);
        self
    }

    /// Receive every recovery output (decisions and actions) published from
    /// now on: the episode's record, as the simulator's timeline has it.
    /// Subscribe before [`spawn`](Driver::spawn) to see the first ones.
    pub fn subscribe_recovery(&self) -> broadcast::Receiver<RecoveryOutput> {
        self.recovery_events.subscribe()
    }

    /// Start the driver task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`] does.
    pub fn spawn(self) -> DriverHandle<M> {
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (node, local_addr) = (self.node, self.local_addr);
        let (events, counters) = (self.events.clone(), Arc::clone(&self.counters));
        let recovery_events = self.recovery_events.clone();
        let span = tracing::info_span!("vigil_driver", node = node.0, addr = %local_addr);
        let task = tokio::spawn(self.run(command_rx).instrument(span));
        DriverHandle { node, local_addr, events, recovery_events, counters, commands, task }
    }

    /// The loop: wait for a command, the machine's deadline or a datagram;
    /// feed the machine; drain its outputs. Returns the machine on shutdown.
    async fn run(mut self, mut commands: mpsc::Receiver<Command<M>>) -> Checked<M> {
        tracing::debug!("driver started");
        // One byte more than the largest datagram accepted, so that an
        // oversized datagram (which the OS truncates silently) is detected.
        let mut recv_buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut send_buf = vec![0u8; MAX_DATAGRAM];
        // A machine may queue outputs when it is built; deliver them first.
        let now = self.now();
        self.drain(now, &mut send_buf).await;
        loop {
            let deadline = self.machine.poll_timeout().and_then(|at| self.clock.to_tokio(at));
            tokio::select! {
                // Order matters: a shutdown is honoured at once, and a flood
                // of datagrams cannot starve the timer.
                biased;
                command = commands.recv() => match command {
                    // All handles dropped: nobody can reach this machine again.
                    None | Some(Command::Shutdown) => break,
                    Some(Command::Inspect(inspect)) => {
                        let now = self.now();
                        inspect(self.machine.get(), now);
                    }
                    Some(Command::Mutate(mutate)) => {
                        let now = self.now();
                        let answer = mutate(self.machine.get_mut(), now, &mut self.http_peers);
                        // As after any input: carry out what it caused, and
                        // only then answer, so the caller sees it done.
                        self.drain(now, &mut send_buf).await;
                        answer();
                    }
                    Some(Command::SetPeer(node, addr)) => {
                        self.peers.insert(node, addr);
                    }
                    Some(Command::RemovePeer(node)) => {
                        self.peers.remove(&node);
                    }
                    Some(Command::SetHttpPeer(node, peer)) => {
                        let peer = *peer;
                        self.http_peers.insert(node, peer);
                    }
                    Some(Command::RemoveHttpPeer(node)) => {
                        self.http_peers.remove(&node);
                    }
                    Some(Command::Call(reply)) => self.call(reply, &mut send_buf).await,
                },
                () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() =>
                {
                    let now = self.now();
                    self.machine.handle_timeout(now);
                    self.drain(now, &mut send_buf).await;
                }
                // Before the socket, for the same reason as the timer.
                Some(joined) = self.io.join_next(), if !self.io.is_empty() => match joined {
                    Ok(completed) => self.on_completed(completed, &mut send_buf).await,
                    // Cancelled only when the set is dropped; a panic is a
                    // bug in the prober, and is as good as a lost answer.
                    Err(error) => tracing::error!(%error, "http exchange task failed"),
                },
                received = self.socket.recv_from(&mut recv_buf) => match received {
                    Ok((len, from_addr)) => {
                        self.on_datagram(&recv_buf[..len], from_addr, &mut send_buf).await;
                    }
                    Err(error) => {
                        Counters::bump(&self.counters.recv_errors);
                        tracing::warn!(%error, "socket receive failed");
                    }
                },
            }
        }
        tracing::debug!("driver shut down");
        self.io.abort_all();
        self.machine
    }

    /// The clock's time, never less than what the machine was last given.
    fn now(&mut self) -> Instant {
        self.last_now = self.last_now.max(self.clock.now());
        self.last_now
    }

    async fn on_datagram(&mut self, datagram: &[u8], from_addr: SocketAddr, send_buf: &mut [u8]) {
        Counters::bump(&self.counters.datagrams_received);
        let envelope = match Envelope::open(&mut self.opener, datagram) {
            Ok(envelope) => envelope,
            Err(error) => {
                let counter = match &error {
                    WireError::Frame(refused) => match refused.rejection() {
                        Rejection::UnknownKey => &self.counters.unknown_key_datagrams,
                        Rejection::Unauthenticated => &self.counters.unauthenticated_datagrams,
                        Rejection::Replayed => &self.counters.replayed_datagrams,
                        Rejection::OldSession => &self.counters.old_session_datagrams,
                        Rejection::TooManySenders => &self.counters.too_many_senders_datagrams,
                        Rejection::Misdirected => &self.counters.misdirected_datagrams,
                        _ => &self.counters.malformed_datagrams,
                    },
                    _ => &self.counters.malformed_datagrams,
                };
                Counters::bump(counter);
                tracing::warn!(%from_addr, len = datagram.len(), %error, "datagram dropped");
                return;
            }
        };
        tracing::trace!(from = envelope.from.0, %from_addr, message = ?envelope.message, "received");
        if self.learn_peers && self.learned < MAX_LEARNED_PEERS && !self.peers.contains_key(&envelope.from) {
            self.learned += 1;
            self.peers.insert(envelope.from, from_addr);
            Counters::bump(&self.counters.peers_learned);
            tracing::debug!(node = envelope.from.0, %from_addr, "peer address learned");
        }
        let now = self.now();
        self.machine.handle(now, Input::Message { from: envelope.from, message: envelope.message });
        self.drain(now, send_buf).await;
    }

    /// An HTTP exchange finished: feed its answer, as from the peer.
    async fn on_completed(&mut self, completed: Completed, send_buf: &mut [u8]) {
        let Some(message) = completed.answer() else {
            Counters::bump(&self.counters.http_timeouts);
            tracing::debug!(to = completed.to.0, exchange = ?completed.exchange, "http exchange timed out");
            return;
        };
        tracing::trace!(from = completed.to.0, outcome = %completed.outcome, ?message, "http answer");
        let now = self.now();
        self.machine.handle(now, Input::Message { from: completed.to, message });
        self.drain(now, send_buf).await;
    }

    /// Start a call for a waiting caller: a fresh id, `Input::Call`, and
    /// the caller's reply kept until the matching `CallDone`.
    async fn call(&mut self, reply: CallReply, send_buf: &mut [u8]) {
        if self.calls.len() >= MAX_PENDING_CALLS {
            tracing::warn!(pending = self.calls.len(), "too many calls waiting; call refused");
            let _ = reply.send(Err(Error::TooManyCalls));
            return;
        }
        let id = self.next_call;
        self.next_call += 1;
        self.calls.insert(id, reply);
        let now = self.now();
        self.machine.handle(now, Input::Call { id });
        self.drain(now, send_buf).await;
    }

    /// Carry out every output the machine has queued, until it has none:
    /// the machine contract requires a complete drain after every `handle*`.
    async fn drain(&mut self, now: Instant, send_buf: &mut [u8]) {
        while let Some(output) = self.machine.poll_output() {
            match output {
                Output::Send { to, message } => self.send(to, message, send_buf).await,
                Output::Health(event) => self.publish(now, event),
                Output::Balance(event) => {
                    // A client's own view (ejections, panic mode): logged and
                    // counted; the machine keeps acting on it.
                    Counters::bump(&self.counters.balance_events);
                    tracing::info!(?event, %now, "balancer event");
                }
                Output::CallDone(done) => match self.calls.remove(&done.id) {
                    Some(reply) => {
                        Counters::bump(&self.counters.calls_done);
                        // The caller may have given up waiting: nothing to do.
                        let _ = reply.send(Ok(done));
                    }
                    None => {
                        Counters::bump(&self.counters.unhandled_outputs);
                        tracing::debug!(?done, "call done with nobody waiting; dropped");
                    }
                },
                Output::Recovery(output) => self.recovery(*output),
                other => {
                    Counters::bump(&self.counters.unhandled_outputs);
                    tracing::warn!(output = ?other, "output not supported by this driver; dropped");
                }
            }
        }
    }

    /// A recovery output: count it, hand an action to whoever carries
    /// actions out, publish both kinds. (The coordinator itself traces
    /// every decision and action at `info`, target `vigil::recovery`; the
    /// driver adds its node at `debug`.)
    fn recovery(&mut self, output: RecoveryOutput) {
        match output {
            RecoveryOutput::Action(action) => {
                Counters::bump(&self.counters.recovery_actions);
                tracing::debug!(
                    id = %action.id,
                    kind = ?action.kind,
                    instance = action.instance.map(|i| i.0),
                    service = action.service.0,
                    at = %action.at,
                    "recovery action"
                );
                match &self.recovery_actions {
                    // Never wait here: the machine's task must not stall
                    // behind a slow platform. A lost action times out.
                    Some(actions) => match actions.try_send(action) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            Counters::bump(&self.counters.recovery_actions_dropped);
                            tracing::warn!(id = %action.id, "recovery action queue full; dropped (it will time out)");
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            Counters::bump(&self.counters.recovery_actions_dropped);
                            tracing::warn!(id = %action.id, "recovery executor gone; action dropped (it will time out)");
                        }
                    },
                    None => {
                        Counters::bump(&self.counters.unhandled_outputs);
                        tracing::warn!(id = %action.id, "no recovery executor (Driver::with_recovery); action dropped");
                    }
                }
            }
            RecoveryOutput::Decision(decision) => {
                Counters::bump(&self.counters.recovery_decisions);
                tracing::debug!(
                    correlation = decision.correlation.map(|c| c.0),
                    instance = decision.instance.map(|i| i.0),
                    service = decision.service.map(|s| s.0),
                    kind = ?decision.kind,
                    at = %decision.at,
                    "recovery decision"
                );
            }
            // A kind this driver does not know yet: recorded, not carried out.
            ref other => {
                Counters::bump(&self.counters.unhandled_outputs);
                tracing::warn!(output = ?other, "recovery output not supported by this driver; dropped");
            }
        }
        // No subscriber is not an error.
        let _ = self.recovery_events.send(output);
    }

    async fn send(&mut self, to: NodeId, message: Message, send_buf: &mut [u8]) {
        if let Some(job) = self.http_peers.get(&to).and_then(|p| p.job(to, message, &self.transport)) {
            self.start(job);
            return;
        }
        let Some(&addr) = self.peers.get(&to) else {
            Counters::bump(&self.counters.unknown_destinations);
            tracing::warn!(to = to.0, ?message, "no address for destination; message dropped");
            return;
        };
        let len = match seal_datagram(&mut self.sealer, to, &message, send_buf) {
            Ok(len) => len,
            Err(error) => {
                Counters::bump(&self.counters.send_errors);
                tracing::warn!(to = to.0, %error, "cannot encode message; dropped");
                return;
            }
        };
        // Best effort, like the network itself: a failed send is counted and
        // forgotten, and the machine's protocol copes with the loss.
        match self.socket.send_to(&send_buf[..len], addr).await {
            Ok(_) => {
                Counters::bump(&self.counters.messages_sent);
                tracing::trace!(to = to.0, %addr, ?message, "sent");
            }
            Err(error) => {
                Counters::bump(&self.counters.send_errors);
                tracing::warn!(to = to.0, %addr, %error, "send failed; message dropped");
            }
        }
    }

    /// Run an HTTP exchange on a task of its own, unless
    /// `max_in_flight` already run.
    fn start(&mut self, job: Job) {
        if self.io.len() >= self.transport.max_in_flight {
            Counters::bump(&self.counters.http_dropped);
            let in_flight = self.io.len();
            tracing::warn!(to = job.to.0, exchange = ?job.exchange, in_flight, "in-flight bound; dropped");
            return;
        }
        let (counter, user_agent) = match job.exchange {
            crate::transport::Exchange::Probe(_) => (&self.counters.http_probes, crate::probe::USER_AGENT),
            crate::transport::Exchange::Request(_) => {
                (&self.counters.http_requests, crate::probe::CLIENT_USER_AGENT)
            }
        };
        Counters::bump(counter);
        tracing::trace!(to = job.to.0, exchange = ?job.exchange, target = %job.target, "http exchange");
        self.io.spawn(async move {
            let outcome = crate::probe::get_with(&job.target, job.timeout, user_agent).await;
            Completed { to: job.to, exchange: job.exchange, outcome }
        });
    }

    fn publish(&mut self, at: Instant, event: HealthEvent) {
        Counters::bump(&self.counters.health_events);
        match event {
            HealthEvent::LivenessChanged { instance, from, to, last_heard } => {
                tracing::info!(instance = instance.0, %from, %to, %last_heard, %at, "liveness changed");
            }
            other => tracing::info!(event = ?other, %at, "health event"),
        }
        // No subscriber is not an error: events are for whoever listens.
        let _ = self.events.send(DriverEvent { node: self.node, at, event });
    }
}

/// Runs against the machine on the driver task, at the driver's `now`.
type Inspect<M> = Box<dyn FnOnce(&M, Instant) + Send>;

/// Changes the machine (and, if it wants, the HTTP peer table) on the
/// driver task, at the given `now`; returns what answers the caller, run
/// once the outputs are drained.
type Mutate<M> =
    Box<dyn FnOnce(&mut M, Instant, &mut BTreeMap<NodeId, HttpPeer>) -> Box<dyn FnOnce() + Send> + Send>;

enum Command<M> {
    Shutdown,
    Inspect(Inspect<M>),
    Mutate(Mutate<M>),
    SetPeer(NodeId, SocketAddr),
    RemovePeer(NodeId),
    SetHttpPeer(NodeId, Box<HttpPeer>),
    RemoveHttpPeer(NodeId),
    Call(CallReply),
}

/// Where the outcome of a call goes.
type CallReply = oneshot::Sender<Result<CallDone, Error>>;

/// The running driver: talk to its task, watch its events, stop it.
///
/// Dropping the handle shuts the driver down (its command channel closes),
/// so that a forgotten task cannot keep a socket and a machine alive.
#[must_use = "dropping the handle shuts the driver down"]
pub struct DriverHandle<M> {
    node: NodeId,
    local_addr: SocketAddr,
    events: broadcast::Sender<DriverEvent>,
    recovery_events: broadcast::Sender<RecoveryOutput>,
    counters: Arc<Counters>,
    commands: mpsc::Sender<Command<M>>,
    task: JoinHandle<Checked<M>>,
}

impl<M> fmt::Debug for DriverHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverHandle")
            .field("node", &self.node)
            .field("local_addr", &self.local_addr)
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl<M: Send + 'static> DriverHandle<M> {
    /// The node the driver speaks for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The address of the driver's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Receive every health event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DriverEvent> {
        self.events.subscribe()
    }

    /// Receive every recovery output (decisions and actions) published from
    /// now on; see [`Driver::subscribe_recovery`].
    pub fn subscribe_recovery(&self) -> broadcast::Receiver<RecoveryOutput> {
        self.recovery_events.subscribe()
    }

    /// The driver's counters. Readable even after the task has stopped.
    pub fn stats(&self) -> DriverStats {
        self.counters.snapshot()
    }

    /// Whether the task has stopped (shut down, aborted or panicked).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Run `inspect` on the machine, on the driver task, between two inputs,
    /// and return what it returns: the way to query a running machine.
    pub async fn with_machine<R, F>(&self, inspect: F) -> Result<R, Error>
    where
        F: FnOnce(&M) -> R + Send + 'static,
        R: Send + 'static,
    {
        inspect_on(&self.commands, move |machine, _| inspect(machine)).await
    }

    /// [`with_machine`](Self::with_machine), also given the driver's
    /// current `now` (on its [`Clock`]): to tell how long ago an instant the
    /// machine keeps was, or how far off.
    pub async fn with_machine_at<R, F>(&self, inspect: F) -> Result<R, Error>
    where
        F: FnOnce(&M, Instant) -> R + Send + 'static,
        R: Send + 'static,
    {
        inspect_on(&self.commands, inspect).await
    }

    /// Run `mutate` on the machine, on the driver task, between two inputs,
    /// with the driver's current `now`; then carry out every output it
    /// queued, as after any input; return what it returned (once the
    /// outputs are carried out).
    ///
    /// For a machine's own mutators beyond `handle`, such as registering an
    /// instance with a running control node. `mutate` must keep the
    /// machine's contract as `handle` does (it is given a `now` that never
    /// goes backwards); the driver drains the outputs afterwards.
    pub async fn with_machine_mut<R, F>(&self, mutate: F) -> Result<R, Error>
    where
        F: FnOnce(&mut M, Instant) -> R + Send + 'static,
        R: Send + 'static,
    {
        mutate_on(&self.commands, move |machine, now, _| mutate(machine, now)).await
    }

    /// A cheap, clonable reference to the machine for other tasks (an API
    /// server): [`MachineRef::with_machine`] and
    /// [`MachineRef::with_machine_mut`] as on this handle. It does not keep
    /// the driver running: once the handle is dropped or shut down, its
    /// calls fail with [`Error::DriverGone`].
    pub fn machine_ref(&self) -> MachineRef<M> {
        MachineRef { commands: self.commands.downgrade() }
    }

    /// Route messages for `node` to `addr` from now on.
    pub async fn set_peer(&self, node: NodeId, addr: SocketAddr) -> Result<(), Error> {
        self.commands.send(Command::SetPeer(node, addr)).await.map_err(|_| Error::DriverGone)
    }

    /// Forget the address of `node`: messages for it are dropped and counted.
    pub async fn remove_peer(&self, node: NodeId) -> Result<(), Error> {
        self.commands.send(Command::RemovePeer(node)).await.map_err(|_| Error::DriverGone)
    }

    /// Carry probes and requests to `node` over HTTP from now on, as `peer`
    /// says (see [`crate::transport`]).
    pub async fn set_http_peer(&self, node: NodeId, peer: HttpPeer) -> Result<(), Error> {
        self.commands.send(Command::SetHttpPeer(node, Box::new(peer))).await.map_err(|_| Error::DriverGone)
    }

    /// Send probes and requests to `node` over UDP again.
    pub async fn remove_http_peer(&self, node: NodeId) -> Result<(), Error> {
        self.commands.send(Command::RemoveHttpPeer(node)).await.map_err(|_| Error::DriverGone)
    }

    /// The HTTP peer probes and requests to `node` go to now, if any (set
    /// here, at build time, or by the control API for a registered
    /// instance).
    pub async fn http_peer(&self, node: NodeId) -> Result<Option<HttpPeer>, Error> {
        // A mutation that changes nothing: the peer table is the driver's,
        // and the machine's queue is empty between inputs.
        mutate_on(&self.commands, move |_, _, peers| peers.get(&node).cloned()).await
    }

    /// Make a call: the driver feeds the machine `Input::Call` with a fresh
    /// id and resolves with the matching `CallDone`.
    ///
    /// Only for machines that answer every call (a
    /// [`ClientNode`](vigil_core::client::ClientNode) does, by its own call
    /// timeout at the latest); others would leave the caller waiting, hence
    /// crate-private: users call through
    /// [`DiscoveryClient`](crate::DiscoveryClient).
    pub(crate) async fn call(&self) -> Result<CallDone, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Call(reply)).await.map_err(|_| Error::DriverGone)?;
        // Dropped unanswered: the task stopped.
        answer.await.map_err(|_| Error::DriverGone)?
    }

    /// Stop the task cleanly, after the input it is handling, and return the
    /// machine in its final state.
    pub async fn shutdown(self) -> Result<M, Error> {
        // If the task is already gone, the join below says why.
        let _ = self.commands.send(Command::Shutdown).await;
        match self.task.await {
            Ok(machine) => Ok(machine.into_inner()),
            Err(error) if error.is_panic() => Err(Error::Panicked(panic_message(error.into_panic()))),
            Err(_) => Err(Error::DriverGone),
        }
    }

    /// Kill the task abruptly, as a crash would: the machine's state is
    /// lost, nothing more is sent, and the socket is closed. Returns once the
    /// task is gone.
    pub async fn abort(self) {
        self.task.abort();
        // Cancelled, or it finished (or panicked) just before: gone either way.
        let _ = self.task.await;
    }
}

async fn inspect_on<M, R, F>(commands: &mpsc::Sender<Command<M>>, inspect: F) -> Result<R, Error>
where
    F: FnOnce(&M, Instant) -> R + Send + 'static,
    R: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let command = Command::Inspect(Box::new(move |machine: &M, now| {
        // The caller may have stopped waiting; then nobody needs the answer.
        let _ = reply.send(inspect(machine, now));
    }));
    commands.send(command).await.map_err(|_| Error::DriverGone)?;
    answer.await.map_err(|_| Error::DriverGone)
}

async fn mutate_on<M, R, F>(commands: &mpsc::Sender<Command<M>>, mutate: F) -> Result<R, Error>
where
    F: FnOnce(&mut M, Instant, &mut BTreeMap<NodeId, HttpPeer>) -> R + Send + 'static,
    R: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let command =
        Command::Mutate(Box::new(move |machine: &mut M, now, peers: &mut BTreeMap<NodeId, HttpPeer>| {
            let result = mutate(machine, now, peers);
            Box::new(move || {
                // The caller may have stopped waiting; then nobody needs it.
                let _ = reply.send(result);
            })
        }));
    commands.send(command).await.map_err(|_| Error::DriverGone)?;
    answer.await.map_err(|_| Error::DriverGone)
}

/// A clonable reference to a running driver's machine that does not keep
/// the driver alive; see [`DriverHandle::machine_ref`].
pub struct MachineRef<M> {
    commands: mpsc::WeakSender<Command<M>>,
}

impl<M> Clone for MachineRef<M> {
    fn clone(&self) -> Self {
        MachineRef { commands: self.commands.clone() }
    }
}

impl<M> fmt::Debug for MachineRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineRef").field("alive", &(self.commands.strong_count() > 0)).finish()
    }
}

impl<M: Send + 'static> MachineRef<M> {
    fn commands(&self) -> Result<mpsc::Sender<Command<M>>, Error> {
        self.commands.upgrade().ok_or(Error::DriverGone)
    }

    /// [`DriverHandle::with_machine`].
    pub async fn with_machine<R, F>(&self, inspect: F) -> Result<R, Error>
    where
        F: FnOnce(&M) -> R + Send + 'static,
        R: Send + 'static,
    {
        inspect_on(&self.commands()?, move |machine, _| inspect(machine)).await
    }

    /// [`DriverHandle::with_machine_at`].
    pub async fn with_machine_at<R, F>(&self, inspect: F) -> Result<R, Error>
    where
        F: FnOnce(&M, Instant) -> R + Send + 'static,
        R: Send + 'static,
    {
        inspect_on(&self.commands()?, inspect).await
    }

    /// [`DriverHandle::with_machine_mut`].
    pub async fn with_machine_mut<R, F>(&self, mutate: F) -> Result<R, Error>
    where
        F: FnOnce(&mut M, Instant) -> R + Send + 'static,
        R: Send + 'static,
    {
        mutate_on(&self.commands()?, move |machine, now, _| mutate(machine, now)).await
    }

    /// [`with_machine_mut`](Self::with_machine_mut), also given the
    /// driver's HTTP peer table: the machine and where its probes go change
    /// in one step, before the outputs of the change are carried out (so a
    /// probe the change asks for already goes to the new peer).
    pub(crate) async fn with_machine_and_http_peers_mut<R, F>(&self, mutate: F) -> Result<R, Error>
    where
        F: FnOnce(&mut M, Instant, &mut BTreeMap<NodeId, HttpPeer>) -> R + Send + 'static,
        R: Send + 'static,
    {
        mutate_on(&self.commands()?, mutate).await
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic with a non-string payload".to_owned(),
        },
    }
}
