//! A client that discovers a service's instances and calls them over HTTP,
//! picking one through the balancer for each call.
//!
//! # How
//!
//! [`DiscoveryClient`] runs a [`ClientNode`] on a driver. The machine does
//! the deciding, exactly as in the simulator: it subscribes to the control
//! node (UDP), keeps the routable set from its endpoint updates, picks an
//! instance for each call through its balancer (outlier ejection, retries
//! within a budget) and times calls out. The driver's service transport
//! ([`crate::transport`]) carries each `Request` out as an HTTP GET of the
//! picked instance's service URL and feeds the answer back.
//!
//! [`call`](DiscoveryClient::call) sends `Input::Call` with a fresh id to the
//! driver task and resolves with the matching `CallDone`: which instance
//! served it (after retries), how it ended, and its latency. The machine
//! answers every call, at the latest at its call timeout, so `call` always
//! resolves.
//!
//! # Which service
//!
//! The control node tells every subscriber about every instance of every
//! service. The client discovers the one its machine was built for,
//! [`ClientConfig::service`](vigil_core::client::ClientConfig::service):
//! updates about other services' instances are ignored, so it never
//! calls them ([`service`](DiscoveryClient::service) says which). With
//! `service: None` it calls every instance it hears of, which is right
//! only for a fleet of one service.
//!
//! # What it needs
//!
//! The protocol names instances by node id, not address: the client needs
//! each instance node's service URL ([`DiscoveryConfig::services`], or
//! [`set_service`](DiscoveryClient::set_service) as instances come). A
//! node without one is called over UDP, where nothing answers: its calls
//! time out.

use std::io;
use std::net::SocketAddr;

use vigil_core::client::{CallDone, ClientNode};
use vigil_core::{InstanceId, NodeId, ServiceId};

use crate::clock::Clock;
use crate::driver::{Driver, DriverHandle};
use crate::error::Error;
use crate::probe::HttpTarget;
use crate::transport::{HttpPeer, TransportConfig};
use crate::wire::WireAuth;

/// Where a [`DiscoveryClient`] lives and whom it talks to.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// The client's node id (the control node sends it endpoint updates).
    pub node: NodeId,
    /// Where its UDP socket binds (port 0: the system picks).
    pub udp_addr: SocketAddr,
    /// The control node: the same id as the machine's `ClientConfig::control`.
    pub control: NodeId,
    /// The control node's UDP address.
    pub control_addr: SocketAddr,
    /// The service URL of each instance node.
    pub services: Vec<(NodeId, HttpTarget)>,
    /// Request timeout and in-flight bound. Keep `request_timeout` at most
    /// the machine's call timeout: a later answer is ignored anyway.
    pub transport: TransportConfig,
    /// How the client's datagrams are authenticated ([`crate::wire`]);
    /// `None` (the default): [`DiscoveryClient::start`] refuses to start.
    pub auth: Option<WireAuth>,
}

impl DiscoveryConfig {
    /// Node `node` on loopback (system-chosen port), control node `control`
    /// at `control_addr`, no services yet, default transport.
    pub fn new(node: NodeId, control: NodeId, control_addr: SocketAddr) -> Self {
        DiscoveryConfig {
            node,
            udp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            control,
            control_addr,
            services: Vec::new(),
            transport: TransportConfig::default(),
            auth: None,
        }
    }

    /// Authenticate the client's datagrams as `auth` says, builder style.
    #[must_use]
    pub fn with_auth(mut self, auth: WireAuth) -> Self {
        self.auth = Some(auth);
        self
    }
}

/// A running client; see the [module docs](self). Dropping it stops the
/// driver.
#[derive(Debug)]
pub struct DiscoveryClient {
    driver: DriverHandle<ClientNode>,
    service: Option<ServiceId>,
}

impl DiscoveryClient {
    /// Run `client` (built with `now = clock.now()`, like any machine given
    /// to a [`Driver`]) on a driver of its own. It discovers the service
    /// its `ClientConfig::service` names.
    pub async fn start(clock: Clock, client: ClientNode, config: DiscoveryConfig) -> io::Result<Self> {
        let service = client.service();
        let services = config.services.into_iter().map(|(node, target)| (node, service_peer(target)));
        let auth = config.auth.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "no key configured for node-to-node datagrams (set DiscoveryConfig::auth; \
                 WireAuth::insecure_no_auth for local development only)",
            )
        })?;
        let driver = Driver::bind(config.node, config.udp_addr, clock, client, auth)
            .await?
            .with_peers([(config.control, config.control_addr)])
            .with_http_peers(services)
            .with_transport(config.transport)
            .spawn();
        Ok(DiscoveryClient { driver, service })
    }

    /// Make one call: the machine picks an instance (and maybe retries on
    /// another), the driver GETs its service URL. Resolves with the outcome;
    /// `Err` only if the driver is gone or
    /// [`MAX_PENDING_CALLS`](crate::MAX_PENDING_CALLS) calls are waiting.
    pub async fn call(&self) -> Result<CallDone, Error> {
        self.driver.call().await
    }

    /// Call instance node `node` at `target` from now on.
    pub async fn set_service(&self, node: NodeId, target: HttpTarget) -> Result<(), Error> {
        self.driver.set_http_peer(node, service_peer(target)).await
    }

    /// The service this client discovers and calls (`None`: every one).
    pub fn service(&self) -> Option<ServiceId> {
        self.service
    }

    /// The instances the client may call now, as its machine sees them.
    pub async fn routable(&self) -> Result<Vec<InstanceId>, Error> {
        self.driver.with_machine(|c: &ClientNode| c.routable().to_vec()).await
    }

    /// The driver, to inspect the machine or read its counters.
    pub fn driver(&self) -> &DriverHandle<ClientNode> {
        &self.driver
    }

    /// Stop the driver and return the machine.
    pub async fn shutdown(self) -> Result<ClientNode, Error> {
        self.driver.shutdown().await
    }
}

fn service_peer(target: HttpTarget) -> HttpPeer {
    HttpPeer { health: None, liveness: None, service: Some(target) }
}
