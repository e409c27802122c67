//! `vigil-instance`: the smallest real instance, a heartbeat agent in a
//! process of its own.
//!
//! It is what [`ProcessPlatform`](vigil_tokio::ProcessPlatform) runs in
//! the end-to-end tests (`tests/recovery-process.rs`), and a stand-in for a
//! user's service when trying the control plane by hand: kill it, and the
//! control node sees it die and restarts it.
//!
//! # Settings (environment)
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `VIGIL_INSTANCE` | the instance id (set by the process platform) | required |
//! | `VIGIL_CONTROL` | the control node's UDP address, `ip:port` | required |
//! | `VIGIL_CONTROL_NODE` | the control node's node id | `0` |
//! | `VIGIL_NODE` | this agent's node id | instance id + 1 |
//! | `VIGIL_HEARTBEAT_MS` | milliseconds between heartbeats | `1000` |
//! | `VIGIL_HTTP` | also serve `/livez`, `/readyz`, `/healthz` at this `ip:port` | not served |
//! | `VIGIL_WIRE_KEY` | the fleet key for node-to-node datagrams: 64 hexadecimal digits (`openssl rand -hex 32`) | required, unless `VIGIL_INSECURE_NO_AUTH=1` |
//! | `VIGIL_WIRE_KEY_ID` | its key id (see the rotation procedure in `docs/ARCHITECTURE.md`) | `1` |
//! | `VIGIL_INSECURE_NO_AUTH` | `1`: no key, datagrams unauthenticated (local development only; warns) | unset |
//!
//! Each start is a new incarnation ([`incarnation_now`]), so the failure
//! detector takes a restarted process for a new life, not for a replay.
//!
//! # Lifetime
//!
//! It runs until killed, or until its standard input reaches end of file:
//! the process platform holds a child's stdin open, so an instance does not
//! outlive its platform even when the platform was killed too abruptly to
//! kill it. By hand, keep stdin open (a terminal does; `sleep infinity |
//! vigil-instance` does in a script).
//!
//! Bad settings exit with status 2 and a message naming the variable.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::str::FromStr;

use axum::Router;
use vigil_core::fleet::InstanceNode;
use vigil_core::health::AgentConfig;
use vigil_core::rng::Seed;
use vigil_core::{Duration, InstanceId, NodeId};
use vigil_tokio::instance::{Instance, InstanceConfig};
use vigil_tokio::{Clock, Driver, HealthChecks, WireAuth, incarnation_now};

/// What the environment asks for.
struct Settings {
    agent: AgentConfig,
    node: NodeId,
    control_addr: SocketAddr,
    http: Option<SocketAddr>,
    auth: WireAuth,
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("vigil-instance: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vigil-instance: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    exit_when_stdin_closes();
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vigil-instance: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Start the agent (and the health endpoints if asked), then wait for
/// ever: the process ends by a signal or by [`exit_when_stdin_closes`].
async fn run(settings: Settings) -> Result<(), String> {
    let instance = settings.agent.instance.0;
    let _running = match settings.http {
        Some(http_addr) => {
            let checks = HealthChecks::new();
            let mut config = InstanceConfig::new(
                settings.node,
                settings.agent,
                settings.control_addr,
                checks,
                Router::new(),
            );
            config.http_addr = http_addr;
            config.auth = Some(settings.auth);
            let running = Instance::start(config)
                .await
                .map_err(|e| format!("instance {instance} did not start: {e}"))?;
            running.checks().mark_started();
            Running::Instance(Box::new(running))
        }
        None => {
            let clock = Clock::start();
            let seed = Seed(u64::from(instance)).child(settings.agent.incarnation);
            let agent = InstanceNode::new(settings.agent, clock.now(), seed)
                .map_err(|e| format!("invalid agent settings: {e}"))?;
            let loopback_or_any = match settings.control_addr {
                SocketAddr::V4(a) if a.ip().is_loopback() => SocketAddr::from(([127, 0, 0, 1], 0)),
                SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
                SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            };
            let driver = Driver::bind(settings.node, loopback_or_any, clock, agent, settings.auth)
                .await
                .map_err(|e| format!("cannot bind the agent's UDP socket: {e}"))?;
            Running::Agent(driver.with_peers([(settings.agent.control, settings.control_addr)]).spawn())
        }
    };
    std::future::pending::<()>().await;
    Ok(())
}

/// Kept alive for as long as the process runs: dropping it stops the agent.
#[allow(dead_code)] // held, never read
enum Running {
    Instance(Box<Instance>),
    Agent(vigil_tokio::DriverHandle<InstanceNode>),
}

/// Exit once stdin reaches end of file (or fails): the platform that
/// started this process is gone. On a thread of its own, as reading stdin
/// blocks.
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        eprintln!("vigil-instance: standard input closed; exiting");
        std::process::exit(0);
    });
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let instance: u32 = required("VIGIL_INSTANCE", "an instance id (a number)")?;
        let control_addr: SocketAddr = required("VIGIL_CONTROL", "the control node's UDP address (ip:port)")?;
        let control = NodeId(optional("VIGIL_CONTROL_NODE", "a node id (a number)")?.unwrap_or(0));
        let node = match optional("VIGIL_NODE", "a node id (a number)")? {
            Some(node) => NodeId(node),
            None => NodeId(instance.checked_add(1).ok_or("VIGIL_INSTANCE: too large to derive VIGIL_NODE")?),
        };
        let interval_ms: u64 =
            optional("VIGIL_HEARTBEAT_MS", "milliseconds (a positive number)")?.unwrap_or(1000);
        if interval_ms == 0 {
            return Err("VIGIL_HEARTBEAT_MS: expected a positive number of milliseconds, got 0".to_owned());
        }
        let http = optional("VIGIL_HTTP", "an address to serve health endpoints at (ip:port)")?;
        let agent = AgentConfig {
            instance: InstanceId(instance),
            control,
            interval: Duration::from_millis(interval_ms),
            incarnation: incarnation_now(),
        };
        let insecure = match optional::<String>("VIGIL_INSECURE_NO_AUTH", "1 or unset")?.as_deref() {
            None | Some("" | "0") => false,
            Some("1") => true,
            Some(other) => return Err(format!("VIGIL_INSECURE_NO_AUTH: expected 1 or unset, got {other:?}")),
        };
        let key: Option<String> = optional("VIGIL_WIRE_KEY", "64 hexadecimal digits")?;
        let key_id: u16 = optional("VIGIL_WIRE_KEY_ID", "a key id (0 to 65535)")?.unwrap_or(1);
        let auth = match (key, insecure) {
            (Some(key), _) => {
                WireAuth::fleet_hex(key_id, &key).map_err(|e| format!("VIGIL_WIRE_KEY: {e}"))?
            }
            (None, true) => WireAuth::insecure_no_auth(),
            (None, false) => {
                return Err("VIGIL_WIRE_KEY is not set: expected the fleet key, 64 hexadecimal digits \
                            (or VIGIL_INSECURE_NO_AUTH=1 for local development)"
                    .to_owned());
            }
        };
        Ok(Settings { agent, node, control_addr, http, auth })
    }
}

fn required<T: FromStr>(name: &str, expected: &str) -> Result<T, String> {
    optional(name, expected)?.ok_or_else(|| format!("{name} is not set: expected {expected}"))
}

fn optional<T: FromStr>(name: &str, expected: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Ok(value) => {
            value.trim().parse().map(Some).map_err(|_| format!("{name}: expected {expected}, got {value:?}"))
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("{name}: expected {expected}, got non-UTF-8 {value:?}"))
        }
    }
}
