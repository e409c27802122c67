//! What a user's service embeds: its own routes and the health endpoints
//! on one HTTP listener, and the heartbeat agent beside them.
//!
//! # Why
//!
//! The control node watches an instance two ways: heartbeats over UDP (the
//! failure detector: is the process there?) and HTTP probes of its health
//! endpoint (the health monitor: is it well, may it take traffic?). Clients
//! then call the same listener the probes reach, so a probe sees what a
//! caller would: a server that stopped accepting is refused to both.
//! [`Instance`] sets the three up in one call.
//!
//! # Use
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use vigil_core::health::AgentConfig;
//! use vigil_core::{Duration, InstanceId, NodeId};
//! use vigil_tokio::HealthChecks;
//! use vigil_tokio::incarnation_now;
//! use vigil_tokio::instance::{Instance, InstanceConfig};
//!
//! # async fn example(control_addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! let checks = HealthChecks::new();
//! let app = Router::new().route("/work", get(|| async { "done" }));
//! let agent = AgentConfig {
//!     instance: InstanceId(0),
//!     control: NodeId(0),
//!     interval: Duration::from_millis(500),
//!     incarnation: incarnation_now(),
//! };
//! let config = InstanceConfig::new(NodeId(1), agent, control_addr, checks.clone(), app);
//! let instance = Instance::start(config).await?;
//! // Tell the control node: probes to node 1 go to /readyz, calls to /work.
//! let peer = instance.http_peer("/work")?;
//! // ... initialise, then open for traffic:
//! checks.mark_started();
//! // ... on SIGTERM: drain, let the control node and clients notice, stop.
//! checks.set_ready(false);
//! tokio::time::sleep(std::time::Duration::from_secs(2)).await;
//! instance.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # What the control node needs
//!
//! The instance is reached by node id. The control node's driver needs, for
//! that node, an [`HttpPeer`] whose `health` target is
//! [`HEALTH_PATH`] on [`Instance::http_addr`] (what
//! [`Instance::http_peer`] builds); a client's driver needs one whose
//! `service` target is the route it calls. A self-registered instance's
//! control-node peer is set by the API from its `health` and `liveness`
//! endpoints.
//!
//! # Registration
//!
//! Either static (the control node's `WatchedInstance` list), or by the
//! instance itself: give [`InstanceConfig::registration`] a
//! [`SelfRegistration`] and [`Instance::start`] registers with the control
//! node's [API](crate::api) once it serves HTTP, retrying a few times while
//! the API is unreachable or unavailable, and fails if the registration is
//! refused. Its heartbeats then renew the lease. [`Instance::shutdown`]
//! deregisters it first (best effort: a lease left behind expires on its
//! own). The instance adds to the registration the endpoints it serves
//! that the body does not already name: `health` (its `/readyz` URL, the
//! [`HEALTH_ENDPOINT`](vigil_core::registry::HEALTH_ENDPOINT) convention),
//! `liveness` (`/livez`) and `http` (its listener), so that a listener on a
//! system-chosen port is still announced where it is.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use vigil_core::NodeId;
use vigil_core::fleet::InstanceNode;
use vigil_core::health::{AgentConfig, HealthConfigError};
use vigil_core::rng::Seed;

use crate::api::{ApiClient, ApiClientError, RegisterInstance, Registered};
use crate::clock::Clock;
use crate::driver::{Driver, DriverHandle};
use crate::endpoints::{HealthChecks, HealthServer, serve_router};
use crate::probe::{HttpTarget, TargetError};
use crate::server::HttpLimits;
use crate::transport::HttpPeer;
use crate::wire::WireAuth;

/// The path the control node probes: `/readyz`, so that a failing readiness
/// check or the drain switch ([`HealthChecks::set_ready`]) takes the
/// instance out of rotation.
///
/// Readiness and startup probes go here; liveness probes go to `/livez`
/// (see [`Instance::http_peer`]), so a drained instance is out of rotation
/// without being taken for a dead one.
pub const HEALTH_PATH: &str = "/readyz";

/// Settings of an [`Instance`].
#[derive(Debug)]
pub struct InstanceConfig {
    /// The agent's node id: the `node` of the control node's
    /// `WatchedInstance` for this instance.
    pub node: NodeId,
    /// The heartbeat agent: instance id, control node, interval,
    /// incarnation ([`incarnation_now`](crate::incarnation_now) for a real
    /// process).
    pub agent: AgentConfig,
    /// Where the control node's driver listens (UDP).
    pub control_addr: SocketAddr,
    /// Where to serve HTTP (port 0: the system picks).
    pub http_addr: SocketAddr,
    /// Where the agent's UDP socket binds (port 0: the system picks).
    pub udp_addr: SocketAddr,
    /// The health checks served at `/livez`, `/readyz`, `/healthz`.
    pub checks: HealthChecks,
    /// The service's own routes; must not use the three probe paths (axum
    /// panics on overlapping routes).
    pub router: Router,
    /// Seeds the agent's jitter.
    pub seed: Seed,
    /// Register with the control node's API at start, deregister at
    /// shutdown; `None`: registered statically by the control node.
    pub registration: Option<SelfRegistration>,
    /// The limits of its HTTP listener (timeouts, connection and request
    /// bounds): [`HttpLimits::default`] unless set.
    pub http_limits: HttpLimits,
    /// How the agent's datagrams are authenticated ([`crate::wire`]);
    /// `None` (the default): [`Instance::start`] refuses to start
    /// ([`StartError::NoWireAuth`]). Set a key, or
    /// [`WireAuth::insecure_no_auth`] for local development.
    pub auth: Option<WireAuth>,
}

/// How an [`Instance`] registers itself with the control node's
/// [API](crate::api).
#[derive(Clone, Debug)]
pub struct SelfRegistration {
    /// The API's base URL (`http://host:port`).
    pub api: HttpTarget,
    /// The bearer token mutations need, if the API has one.
    pub token: Option<String>,
    /// What to register. Its `id` and `node` are replaced by the instance's
    /// own (the agent's instance id, [`InstanceConfig::node`]); endpoints
    /// the instance serves are added unless named (see the
    /// [module docs](self)).
    pub body: RegisterInstance,
    /// Tries while the API is unreachable or answers 5xx; at least one.
    pub attempts: u32,
    /// Wait between two tries.
    pub retry_delay: Duration,
    /// Bound of each try.
    pub timeout: Duration,
}

impl SelfRegistration {
    /// Register `body` at the API at `api`: 5 tries, 100 ms apart, 1 s each.
    pub fn new(api: SocketAddr, token: Option<String>, body: RegisterInstance) -> Self {
        SelfRegistration {
            api: HttpTarget::new(api, "/").expect("\"/\" is a valid path"),
            token,
            body,
            attempts: 5,
            retry_delay: Duration::from_millis(100),
            timeout: crate::api::DEFAULT_CLIENT_TIMEOUT,
        }
    }

    fn client(&self) -> ApiClient {
        let mut client = ApiClient::new(self.api.clone()).with_token(self.token.clone());
        client.timeout = self.timeout;
        client
    }
}

impl InstanceConfig {
    /// HTTP and UDP on loopback, system-chosen ports, seed derived from the
    /// incarnation.
    pub fn new(
        node: NodeId,
        agent: AgentConfig,
        control_addr: SocketAddr,
        checks: HealthChecks,
        router: Router,
    ) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        InstanceConfig {
            node,
            seed: Seed(u64::from(agent.instance.0)).child(agent.incarnation),
            agent,
            control_addr,
            http_addr: loopback,
            udp_addr: loopback,
            checks,
            router,
            registration: None,
            http_limits: HttpLimits::default(),
            auth: None,
        }
    }

    /// Authenticate the agent's datagrams as `auth` says, builder style.
    #[must_use]
    pub fn with_auth(mut self, auth: WireAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Register with the control node's API at start, builder style.
    #[must_use]
    pub fn with_registration(mut self, registration: SelfRegistration) -> Self {
        self.registration = Some(registration);
        self
    }
}

/// Why an [`Instance`] did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The agent's settings are invalid.
    #[error("invalid agent settings: {0}")]
    Config(#[from] HealthConfigError),
    /// A socket could not be bound.
    #[error("cannot bind: {0}")]
    Bind(#[from] io::Error),
    /// The control node's API refused the registration, or could not be
    /// reached after every try.
    #[error("registration failed after {attempts} tries: {error}")]
    Registration {
        /// Tries made.
        attempts: u32,
        /// The last failure.
        error: ApiClientError,
    },
    /// No key for the agent's datagrams ([`InstanceConfig::auth`]), and no
    /// explicit [`WireAuth::insecure_no_auth`].
    #[error(
        "no key configured for node-to-node datagrams (set InstanceConfig::auth; WireAuth::insecure_no_auth for local development only)"
    )]
    NoWireAuth,
}

/// A running instance: HTTP (service and probe routes) and the heartbeat
/// agent. Dropping it stops both.
#[derive(Debug)]
pub struct Instance {
    node: NodeId,
    http_addr: SocketAddr,
    checks: HealthChecks,
    server: HealthServer,
    http_aborted: AtomicBool,
    agent: DriverHandle<InstanceNode>,
    /// The API it registered with, and what it answered.
    registered: Option<(ApiClient, Registered)>,
}

impl Instance {
    /// Serve `config.router` merged with the checks' probe routes, and start
    /// the heartbeat agent.
    ///
    /// # Panics
    ///
    /// If the router has a route at `/livez`, `/readyz` or `/healthz`
    /// (axum's merge), or outside a tokio runtime.
    pub async fn start(config: InstanceConfig) -> Result<Instance, StartError> {
        let auth = config.auth.ok_or(StartError::NoWireAuth)?;
        let clock = Clock::start();
        let agent = InstanceNode::new(config.agent, clock.now(), config.seed)?;
        let app = config.router.merge(config.checks.router());
        let (http_addr, server) = serve_router(config.http_addr, app, config.http_limits).await?;
        let agent = Driver::bind(config.node, config.udp_addr, clock, agent, auth)
            .await?
            .with_peers([(config.agent.control, config.control_addr)]);
        // Serving already (probes may come at once); beating right after.
        // On failure both stop as they are dropped.
        let registered = match config.registration {
            Some(registration) => {
                Some(register(registration, config.node, config.agent.instance.0, http_addr).await?)
            }
            None => None,
        };
        let agent = agent.spawn();
        let (node, instance, udp) = (config.node.0, config.agent.instance.0, agent.local_addr());
        tracing::info!(node, instance, %http_addr, %udp, "instance started");
        Ok(Instance {
            node: config.node,
            http_addr,
            checks: config.checks,
            server,
            http_aborted: AtomicBool::new(false),
            agent,
            registered,
        })
    }

    /// What the control node's API answered to the registration at start,
    /// if the instance registered itself.
    pub fn registration(&self) -> Option<&Registered> {
        self.registered.as_ref().map(|(_, r)| r)
    }

    /// Deregister from the control node's API (one try): whether it was
    /// still registered. `Ok(false)` without self-registration.
    pub async fn deregister(&self) -> Result<bool, ApiClientError> {
        match &self.registered {
            Some((client, registered)) => client.deregister(registered.instance.id).await,
            None => Ok(false),
        }
    }

    /// The agent's node id.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Where HTTP is served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The health checks (the same handle the config gave).
    pub fn checks(&self) -> &HealthChecks {
        &self.checks
    }

    /// The heartbeat agent's driver.
    pub fn agent(&self) -> &DriverHandle<InstanceNode> {
        &self.agent
    }

    /// The URL the control node probes: [`HEALTH_PATH`] on
    /// [`http_addr`](Self::http_addr).
    pub fn health_target(&self) -> HttpTarget {
        HttpTarget::new(self.http_addr, HEALTH_PATH).expect("HEALTH_PATH is a valid path")
    }

    /// How drivers reach this instance over HTTP: readiness and startup
    /// probes at [`health_target`](Self::health_target), liveness probes at
    /// `/livez`, calls at `service_path`.
    pub fn http_peer(&self, service_path: &str) -> Result<HttpPeer, TargetError> {
        Ok(HttpPeer {
            health: Some(self.health_target()),
            liveness: Some(HttpTarget::new(self.http_addr, "/livez")?),
            service: Some(HttpTarget::new(self.http_addr, service_path)?),
        })
    }

    /// Stop serving HTTP at once, as if the server crashed: connections in
    /// flight are cut and new ones refused. The agent keeps beating (the
    /// process is up, nothing listens): the case the health monitor tells
    /// apart from a dead process.
    pub fn abort_http(&self) {
        self.http_aborted.store(true, Ordering::Relaxed);
        self.server.abort();
    }

    /// Deregister (if self-registered; best effort, bounded by the
    /// registration's timeout), then stop HTTP gracefully (requests in
    /// flight finish), then the agent. Drain first
    /// ([`HealthChecks::set_ready`]) to let clients move away.
    pub async fn shutdown(self) -> io::Result<()> {
        if self.registered.is_some() {
            match self.deregister().await {
                Ok(true) => tracing::info!(node = self.node.0, "deregistered"),
                Ok(false) => tracing::info!(node = self.node.0, "already deregistered"),
                Err(error) => {
                    tracing::warn!(node = self.node.0, %error, "deregistration failed; the lease will expire");
                }
            }
        }
        let http = self.server.shutdown().await;
        self.agent.shutdown().await.map_err(io::Error::other)?;
        match http {
            // Cut short by `abort_http` earlier: that was the point.
            Err(_) if self.http_aborted.load(Ordering::Relaxed) => Ok(()),
            other => other,
        }
    }
}

/// Register `registration` as instance `id` on `node`, serving at
/// `http_addr`: retry transient failures, give up on a refusal.
async fn register(
    registration: SelfRegistration,
    node: NodeId,
    id: u32,
    http_addr: SocketAddr,
) -> Result<(ApiClient, Registered), StartError> {
    let client = registration.client();
    let mut body = registration.body;
    body.id = id;
    body.node = node.0;
    let served = [
        (vigil_core::registry::HEALTH_ENDPOINT, format!("http://{http_addr}{HEALTH_PATH}")),
        (crate::api::LIVENESS_ENDPOINT, format!("http://{http_addr}/livez")),
        ("http", format!("http://{http_addr}")),
    ];
    for (name, address) in served {
        if body.endpoints.get(name).is_none() {
            body.endpoints.0.push((name.to_owned(), address));
        }
    }
    let attempts = registration.attempts.max(1);
    let mut tried = 0;
    loop {
        tried += 1;
        match client.register(&body).await {
            Ok(registered) => {
                tracing::info!(instance = id, node = node.0, outcome = ?registered.outcome, "registered");
                return Ok((client, registered));
            }
            Err(error) if error.is_transient() && tried < attempts => {
                tracing::debug!(instance = id, tried, %error, "registration failed; trying again");
                tokio::time::sleep(registration.retry_delay).await;
            }
            Err(error) => return Err(StartError::Registration { attempts: tried, error }),
        }
    }
}
