//! Carries the control plane's recovery actions out on a platform.
//!
//! # Why
//!
//! The coordinator emits an [`Action`] and waits for its outcome, at most
//! `action_timeout`; the instance's return to health, which the control
//! plane sees by itself, is the success. What only the platform knows is
//! failure to act (no such program, a process that would not die): the
//! executor reports that as [`Outcome::Failed`] at once, so the
//! coordinator backs off and climbs its ladder instead of waiting out the
//! timeout.
//!
//! # Shape
//!
//! One task reads the actions a control driver hands out
//! ([`Driver::with_recovery`](crate::Driver::with_recovery)) and runs each
//! on a task of its own, at most [`MAX_ACTIONS_IN_FLIGHT`] at once, so that
//! a slow restart of one instance never delays another's. (The platform
//! serialises actions on one instance; the coordinator has at most one
//! action in flight per episode anyway.) Outcomes go back through the
//! driver ([`MachineRef::with_machine_mut`] and
//! [`ControlPlane::recovery_outcome`]), which drains the machine's outputs
//! afterwards, as after any input.
//!
//! # Which actions
//!
//! | Action | What the executor does |
//! |---|---|
//! | `Restart`, `Replace` | the platform's method; `Failed` on error |
//! | `ScaleOut` | the platform's method, then each new instance registered with the control plane (below); `Failed` on a platform error or a refused registration |
//! | `Reroute` | nothing: the control plane takes the instance out of rotation itself |
//! | `OpenCircuit`, `CloseCircuit` | logged: circuits are enforced by callers (clients), not by where instances run |
//! | `HalfOpen` | `Failed` at once: nothing here makes the trial call, and an unverified dependency must not get traffic back; the circuit stays open and tries again later |
//! | `AskHuman` | logged as an error: nothing more is automatic |
//!
//! # Scale-out: who registers the new instances
//!
//! The platform owns the capacity, so it alone knows which instance ids
//! and nodes a scale-out started ([`NewInstance`]); the control plane
//! watches only what is registered. The executor joins the two: for each
//! new instance, one [`ControlPlane::register`] through
//! [`MachineRef::with_machine_mut`] (one call each, as the driver drains
//! the machine's outputs after every mutation), with
//!
//! - the **service name** from the control plane's own catalog
//!   ([`Registry::service_name`](vigil_core::registry::Registry::service_name)
//!   of the action's service): the action's `ServiceId` *is* the catalog's
//!   id for it, so no second copy of the names can disagree;
//! - the **class** (timeouts and health checks) from
//!   [`ExecutorConfig::scale_out_class`] if it names the service, else the
//!   class of the instance whose episode asked for the scale-out (same
//!   service, hence as a rule the same watch, as the simulator assumes);
//! - the **version** of that instance's catalog record (the new one runs
//!   the same spec), else `unknown`, as for instances watched from boot.
//!
//! A refused registration (a bad class, an id the catalog gives another
//! service, the driver gone) is logged, counted
//! ([`ExecutorStats::registrations_failed`]), and the new instance is
//! stopped again, as nothing would ever watch it; the action is reported
//! [`Outcome::Failed`], so the ladder climbs. Success is, as for the other
//! actions, never reported: the asking instance's return to health ends
//! its episode.
//!
//! The task ends once the driver is gone (its sender is dropped) and the
//! actions in flight have finished; awaiting the [`ExecutorHandle`] then
//! gives its final [`ExecutorStats`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::Instrument as _;
use vigil_core::control::{ControlError, ControlPlane, RegisterRequest};
use vigil_core::recovery::{Action, ActionKind, Outcome};
use vigil_core::registry::{RegisterOutcome, Registration};
use vigil_core::{InstanceId, ServiceId};

use super::{NewInstance, Platform, PlatformError};
use crate::driver::MachineRef;

/// Most actions carried out at once; an action beyond it is reported
/// failed at once (the coordinator's own limits keep far fewer in flight).
pub const MAX_ACTIONS_IN_FLIGHT: usize = 256;

/// Settings of the executor: how it registers the instances a scale-out
/// started (see the [module docs](self#scale-out-who-registers-the-new-instances)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// The timeout and health class to register each service's new
    /// instances in. A service not named here: the class of the instance
    /// whose episode asked for the scale-out.
    pub scale_out_class: BTreeMap<ServiceId, usize>,
}

impl ExecutorConfig {
    /// Register `service`'s new instances in `class`, builder style.
    #[must_use]
    pub fn with_scale_out_class(mut self, service: ServiceId, class: usize) -> Self {
        self.scale_out_class.insert(service, class);
        self
    }
}

/// What the executor did, counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Actions received.
    pub actions: u64,
    /// Actions reported [`Outcome::Failed`]: the platform could not act,
    /// too many were in flight, a half-open probe, a refused registration.
    pub failed: u64,
    /// Instances scale-outs started.
    pub scaled_out: u64,
    /// Of those, registered with the control plane.
    pub registered: u64,
    /// Of those, refused by the control plane (or its driver was gone),
    /// and stopped again.
    pub registrations_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    actions: AtomicU64,
    failed: AtomicU64,
    scaled_out: AtomicU64,
    registered: AtomicU64,
    registrations_failed: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ExecutorStats {
        ExecutorStats {
            actions: self.actions.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            scaled_out: self.scaled_out.load(Ordering::Relaxed),
            registered: self.registered.load(Ordering::Relaxed),
            registrations_failed: self.registrations_failed.load(Ordering::Relaxed),
        }
    }
}

/// The running executor: its counters, and, awaited, its end (once the
/// control driver is gone and the actions in flight are done) with its
/// final counters. Dropping it leaves the task running.
#[derive(Debug)]
pub struct ExecutorHandle {
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl ExecutorHandle {
    /// The counters so far.
    pub fn stats(&self) -> ExecutorStats {
        self.counters.snapshot()
    }

    /// Whether the task has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Future for ExecutorHandle {
    /// The final counters; an error if the task panicked or was cancelled.
    type Output = Result<ExecutorStats, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.task).poll(cx).map(|joined| joined.map(|()| this.counters.snapshot()))
    }
}

/// Everything one action's task needs.
struct Shared<P> {
    control: MachineRef<ControlPlane>,
    platform: Arc<P>,
    config: ExecutorConfig,
    counters: Arc<Counters>,
}

/// Spawn the task that carries out the recovery actions arriving on
/// `actions` on `platform`, reporting failures to the control plane behind
/// `control`, with the default [`ExecutorConfig`]. See the
/// [module docs](self).
///
/// Wire it with
/// [`Driver::with_recovery`](crate::Driver::with_recovery):
///
/// ```no_run
/// # use std::sync::Arc;
/// # use vigil_core::control::ControlPlane;
/// # use vigil_tokio::{Driver, ProcessPlatform, spawn_recovery_executor};
/// # async fn example(driver: Driver<ControlPlane>, platform: ProcessPlatform) {
/// let (actions, rx) = tokio::sync::mpsc::channel(256);
/// let control = driver.with_recovery(actions).spawn();
/// let executor = spawn_recovery_executor(control.machine_ref(), Arc::new(platform), rx);
/// // ... once `control` is shut down, the executor finishes too.
/// # }
/// ```
///
/// # Panics
///
/// Outside a tokio runtime, as [`tokio::spawn`] does.
pub fn spawn_recovery_executor<P>(
    control: MachineRef<ControlPlane>,
    platform: Arc<P>,
    actions: mpsc::Receiver<Action>,
) -> ExecutorHandle
where
    P: Platform + 'static,
{
    spawn_recovery_executor_with(control, platform, actions, ExecutorConfig::default())
}

/// [`spawn_recovery_executor`] with `config`.
///
/// # Panics
///
/// Outside a tokio runtime, as [`tokio::spawn`] does.
pub fn spawn_recovery_executor_with<P>(
    control: MachineRef<ControlPlane>,
    platform: Arc<P>,
    actions: mpsc::Receiver<Action>,
    config: ExecutorConfig,
) -> ExecutorHandle
where
    P: Platform + 'static,
{
    let span = tracing::info_span!("vigil_recovery", platform = platform.name());
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared { control, platform, config, counters: Arc::clone(&counters) });
    let task = tokio::spawn(run(shared, actions).instrument(span));
    ExecutorHandle { task, counters }
}

async fn run<P: Platform + 'static>(shared: Arc<Shared<P>>, mut actions: mpsc::Receiver<Action>) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            action = actions.recv() => {
                let Some(action) = action else { break };
                Counters::bump(&shared.counters.actions);
                if in_flight.len() >= MAX_ACTIONS_IN_FLIGHT {
                    tracing::warn!(id = %action.id, in_flight = in_flight.len(), "too many actions in flight; failed");
                    report_failed(&shared, action).await;
                    continue;
                }
                in_flight.spawn(carry_out(Arc::clone(&shared), action).in_current_span());
            }
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => log_join(joined),
        }
    }
    // The driver is gone: finish what was started (bounded, by the
    // platform's contract), then stop.
    while let Some(joined) = in_flight.join_next().await {
        log_join(joined);
    }
    tracing::debug!("recovery executor stopped: the control driver is gone");
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        // A panic in a platform is a bug; the action times out.
        tracing::error!(%error, "recovery action task failed");
    }
}

/// Carry out one action; report it failed if the platform could not.
async fn carry_out<P: Platform>(shared: Arc<Shared<P>>, action: Action) {
    let (id, instance) = (action.id, action.instance);
    let platform = &shared.platform;
    let result: Result<(), PlatformError> = match (action.kind, instance) {
        (ActionKind::Restart, Some(instance)) => platform.restart(instance).await,
        (ActionKind::Replace, Some(instance)) => platform.replace(instance).await,
        (ActionKind::ScaleOut { by }, _) => return scale_out(&shared, action, by).await,
        (ActionKind::Restart | ActionKind::Replace, None) => {
            tracing::error!(%id, kind = ?action.kind, "instance action without an instance; failed");
            return report_failed(&shared, action).await;
        }
        (ActionKind::Reroute, _) => {
            tracing::debug!(%id, "reroute: carried out by the control plane's routing");
            return;
        }
        (ActionKind::OpenCircuit { to } | ActionKind::CloseCircuit { to }, _) => {
            tracing::info!(%id, kind = ?action.kind, from = action.service.0, to = to.0, "circuit change: for callers to enforce");
            return;
        }
        (ActionKind::HalfOpen { to }, _) => {
            tracing::info!(%id, from = action.service.0, to = to.0, "no trial call from a platform; circuit stays open");
            return report_failed(&shared, action).await;
        }
        (ActionKind::AskHuman { reason }, _) => {
            tracing::error!(%id, instance = instance.map(|i| i.0), service = action.service.0, ?reason, "recovery asks a human");
            return;
        }
        // A kind this executor does not know: no outcome, it times out.
        (kind, _) => {
            tracing::warn!(%id, ?kind, "recovery action not supported by the executor; left to time out");
            return;
        }
    };
    match result {
        Ok(()) => {
            tracing::info!(%id, kind = ?action.kind, instance = instance.map(|i| i.0), "carried out; health will tell");
        }
        Err(error) => {
            tracing::warn!(%id, kind = ?action.kind, instance = instance.map(|i| i.0), %error, "could not carry out");
            report_failed(&shared, action).await;
        }
    }
}

/// Scale out on the platform, then register each new instance with the
/// control plane; see the [module docs](self#scale-out-who-registers-the-new-instances).
async fn scale_out<P: Platform>(shared: &Shared<P>, action: Action, by: u32) {
    let (id, service) = (action.id, action.service);
    let started = match shared.platform.scale_out(service, by).await {
        Ok(started) => started,
        Err(error) => {
            tracing::warn!(%id, service = service.0, by, %error, "could not scale out");
            return report_failed(shared, action).await;
        }
    };
    let mut refused = 0_usize;
    for new in started {
        Counters::bump(&shared.counters.scaled_out);
        debug_assert_eq!(new.service, service, "a platform scales out the service asked");
        match register(shared, action.instance, new).await {
            Ok(outcome) => {
                Counters::bump(&shared.counters.registered);
                tracing::info!(%id, instance = new.instance.0, node = new.node.0, ?outcome, "scaled out; registered");
            }
            Err(error) => {
                Counters::bump(&shared.counters.registrations_failed);
                refused += 1;
                tracing::error!(%id, instance = new.instance.0, node = new.node.0, %error, "scaled out, but not registered; stopping it");
                // Unregistered, it would run unwatched: stop it.
                if let Err(error) = shared.platform.stop(new.instance).await {
                    tracing::warn!(%id, instance = new.instance.0, %error, "unregistered instance not stopped");
                }
            }
        }
    }
    if refused > 0 {
        report_failed(shared, action).await;
    } else {
        tracing::info!(%id, service = service.0, "carried out; health will tell");
    }
}

/// Why a new instance could not be registered.
#[derive(Debug, thiserror::Error)]
enum RegisterError {
    #[error("{0} is not in the control plane's catalog")]
    UnknownService(ServiceId),
    #[error(
        "no class to register {0}'s new instance in: none in ExecutorConfig::scale_out_class, and the asking instance is not watched"
    )]
    NoClass(ServiceId),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("the control driver is gone")]
    DriverGone,
}

/// Register `new` with the control plane, named and classed as the
/// [module docs](self#scale-out-who-registers-the-new-instances) say;
/// `asker` is the instance whose episode asked for the scale-out.
async fn register<P>(
    shared: &Shared<P>,
    asker: Option<InstanceId>,
    new: NewInstance,
) -> Result<RegisterOutcome, RegisterError> {
    let configured = shared.config.scale_out_class.get(&new.service).copied();
    let registered = shared
        .control
        .with_machine_mut(move |control: &mut ControlPlane, now| {
            let name = control
                .registry()
                .service_name(new.service)
                .ok_or(RegisterError::UnknownService(new.service))?;
            let version = asker
                .and_then(|i| control.registry().instance(i))
                .map_or("unknown", |record| record.version.as_str());
            let class = configured
                .or_else(|| asker.and_then(|i| control.detector().instance(i)).map(|l| l.class))
                .ok_or(RegisterError::NoClass(new.service))?;
            let registration = Registration::new(new.instance, name, version);
            Ok(control.register(now, RegisterRequest { registration, node: new.node, class })?)
        })
        .await;
    registered.map_err(|_| RegisterError::DriverGone)?
}

async fn report_failed<P>(shared: &Shared<P>, action: Action) {
    Counters::bump(&shared.counters.failed);
    let id = action.id;
    let reported = shared
        .control
        .with_machine_mut(move |control: &mut ControlPlane, now| {
            control.recovery_outcome(now, id, Outcome::Failed)
        })
        .await;
    if let Err(error) = reported {
        tracing::debug!(%id, %error, "outcome not reported: the control driver is gone");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vigil_core::control::ControlConfig;
    use vigil_core::recovery::{ActionId, CorrelationId, HumanReason, RecoveryConfig, ServiceSpec};
    use vigil_core::{InstanceId, Instant, NodeId, ServiceId};

    use super::*;
    use crate::{Clock, Driver};

    /// Records what it is asked, and can do none of it.
    #[derive(Default)]
    struct Refusing {
        calls: Mutex<Vec<String>>,
    }

    impl Refusing {
        fn refuse(&self, call: String) -> Result<(), PlatformError> {
            self.calls.lock().expect("not poisoned").push(call);
            Err(PlatformError::Unsupported { platform: "refusing", action: "anything" })
        }
    }

    impl Platform for Refusing {
        fn name(&self) -> &'static str {
            "refusing"
        }
        async fn start(&self, instance: InstanceId) -> Result<(), PlatformError> {
            self.refuse(format!("start {}", instance.0))
        }
        async fn stop(&self, instance: InstanceId) -> Result<(), PlatformError> {
            self.refuse(format!("stop {}", instance.0))
        }
        async fn restart(&self, instance: InstanceId) -> Result<(), PlatformError> {
            self.refuse(format!("restart {}", instance.0))
        }
        async fn replace(&self, instance: InstanceId) -> Result<(), PlatformError> {
            self.refuse(format!("replace {}", instance.0))
        }
        async fn scale_out(&self, service: ServiceId, by: u32) -> Result<Vec<NewInstance>, PlatformError> {
            self.refuse(format!("scale_out {} {by}", service.0)).map(|()| Vec::new())
        }
    }

    fn action(correlation: u64, instance: Option<u32>, kind: ActionKind) -> Action {
        Action {
            id: ActionId { correlation: CorrelationId(correlation), attempt: 1 },
            service: ServiceId(0),
            instance: instance.map(InstanceId),
            kind,
            at: Instant::ZERO,
        }
    }

    /// Each kind of action goes where the module docs' table says: the
    /// platform's three methods, a failure for what cannot be carried out
    /// and for a half-open probe, nothing for the rest.
    #[tokio::test]
    async fn each_action_kind_is_carried_out_or_reported_as_documented() {
        let clock = Clock::start();
        let recovery =
            RecoveryConfig { services: vec![ServiceSpec::new(ServiceId(0))], ..Default::default() };
        let config = ControlConfig { recovery: Some(recovery), ..ControlConfig::default() };
        let control = ControlPlane::new(&config, clock.now()).expect("valid config");
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let control = Driver::bind(NodeId(0), loopback, clock, control, crate::WireAuth::insecure_no_auth())
            .await
            .expect("bind")
            .spawn();
        let platform = Arc::new(Refusing::default());
        let (tx, rx) = mpsc::channel(16);
        let executor = spawn_recovery_executor(control.machine_ref(), Arc::clone(&platform), rx);
        let to = ServiceId(1);
        let reason = HumanReason::LadderExhausted { failure: vigil_core::recovery::FailureType::Crashed };
        let sent = [
            action(1, Some(3), ActionKind::Restart),
            action(2, Some(4), ActionKind::Replace),
            action(3, None, ActionKind::ScaleOut { by: 2 }),
            action(4, Some(5), ActionKind::Reroute),
            action(5, None, ActionKind::OpenCircuit { to }),
            action(6, None, ActionKind::CloseCircuit { to }),
            action(7, None, ActionKind::HalfOpen { to }),
            action(8, Some(6), ActionKind::AskHuman { reason }),
            action(9, None, ActionKind::Restart),
        ];
        for a in sent {
            tx.send(a).await.expect("executor running");
        }
        drop(tx);
        tokio::time::timeout(std::time::Duration::from_secs(10), executor)
            .await
            .expect("the executor finishes once its sender is gone")
            .expect("no panic");

        let mut calls = platform.calls.lock().expect("not poisoned").clone();
        calls.sort();
        assert_eq!(calls, ["replace 4", "restart 3", "scale_out 0 2"]);
        // The coordinator knows none of these actions, so every reported
        // outcome is counted stale: three refusals, the half-open probe and
        // the restart without an instance.
        let stale = control
            .with_machine(|c: &ControlPlane| c.recovery().expect("configured").stats().stale_outcomes)
            .await
            .expect("control running");
        assert_eq!(stale, 5);
        control.shutdown().await.expect("clean shutdown");
    }

    /// Scales out into the instances it is given, and records stops.
    struct Scripted {
        next: Mutex<Vec<Vec<NewInstance>>>,
        stopped: Mutex<Vec<u32>>,
    }

    impl Platform for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        async fn start(&self, _: InstanceId) -> Result<(), PlatformError> {
            Ok(())
        }
        async fn stop(&self, instance: InstanceId) -> Result<(), PlatformError> {
            self.stopped.lock().expect("not poisoned").push(instance.0);
            Ok(())
        }
        async fn restart(&self, _: InstanceId) -> Result<(), PlatformError> {
            Ok(())
        }
        async fn replace(&self, _: InstanceId) -> Result<(), PlatformError> {
            Ok(())
        }
        async fn scale_out(&self, service: ServiceId, _by: u32) -> Result<Vec<NewInstance>, PlatformError> {
            self.next.lock().expect("not poisoned").pop().ok_or(PlatformError::NoCapacity { service })
        }
    }

    /// The instances a scale-out started are registered in the control
    /// plane's catalog under the service's catalog name, with the asking
    /// instance's class and version unless the configuration names a
    /// class; a refused registration is counted, the instance stopped,
    /// and the action reported failed; no capacity is reported failed.
    #[tokio::test]
    async fn scaled_out_instances_are_registered_and_a_refused_one_fails_the_action() {
        let clock = Clock::start();
        let timeouts = vigil_core::health::LivenessTimeouts {
            suspect_after: vigil_core::Duration::from_secs(60),
            dead_after: vigil_core::Duration::from_secs(60),
        };
        let recovery =
            RecoveryConfig { services: vec![ServiceSpec::new(ServiceId(0))], ..Default::default() };
        let config = ControlConfig {
            liveness_classes: vec![timeouts, timeouts],
            recovery: Some(recovery),
            ..ControlConfig::default()
        };
        let control = ControlPlane::new(&config, clock.now()).expect("valid config");
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let control = Driver::bind(NodeId(0), loopback, clock, control, crate::WireAuth::insecure_no_auth())
            .await
            .expect("bind")
            .spawn();
        // The asking instance: service `web` (catalog id 0), class 1, v2.
        control
            .with_machine_mut(|c: &mut ControlPlane, now| {
                let registration = vigil_core::registry::Registration::new(InstanceId(0), "web", "v2");
                c.register(now, RegisterRequest { registration, node: NodeId(1), class: 1 })
            })
            .await
            .expect("control running")
            .expect("registered");
        let new =
            |i: u32| NewInstance { instance: InstanceId(i), node: NodeId(i * 10), service: ServiceId(0) };
        let platform = Arc::new(Scripted {
            // Popped from the back: 5 and 6 first, then 7.
            next: Mutex::new(vec![vec![new(7)], vec![new(5), new(6)]]),
            stopped: Mutex::new(Vec::new()),
        });
        let stale = || {
            control.with_machine(|c: &ControlPlane| c.recovery().expect("configured").stats().stale_outcomes)
        };

        // Default configuration: the asker's class and version.
        let (tx, rx) = mpsc::channel(16);
        let executor = spawn_recovery_executor(control.machine_ref(), Arc::clone(&platform), rx);
        tx.send(action(1, Some(0), ActionKind::ScaleOut { by: 2 })).await.expect("executor running");
        drop(tx);
        let stats = tokio::time::timeout(std::time::Duration::from_secs(10), executor)
            .await
            .expect("the executor finishes once its sender is gone")
            .expect("no panic");
        assert_eq!((stats.actions, stats.scaled_out, stats.registered), (1, 2, 2), "{stats:?}");
        assert_eq!((stats.failed, stats.registrations_failed), (0, 0), "{stats:?}");
        let seen = control
            .with_machine(|c: &ControlPlane| {
                [5, 6].map(|i| {
                    let record = c.registry().instance(InstanceId(i)).expect("registered");
                    let name = c.registry().service_name(record.service).expect("named").to_owned();
                    let class = c.detector().instance(InstanceId(i)).expect("watched").class;
                    (name, record.version.clone(), class, c.node_of(InstanceId(i)))
                })
            })
            .await
            .expect("control running");
        for (i, seen) in [5, 6].into_iter().zip(seen) {
            assert_eq!(seen, ("web".to_owned(), "v2".to_owned(), 1, Some(NodeId(i * 10))));
        }
        assert_eq!(stale().await.expect("control running"), 0, "nothing reported");

        // A class the control plane does not have: refused, stopped, failed.
        let (tx, rx) = mpsc::channel(16);
        let config = ExecutorConfig::default().with_scale_out_class(ServiceId(0), 7);
        let executor = spawn_recovery_executor_with(control.machine_ref(), Arc::clone(&platform), rx, config);
        tx.send(action(2, Some(0), ActionKind::ScaleOut { by: 1 })).await.expect("executor running");
        // And no capacity left: failed too.
        tx.send(action(3, Some(0), ActionKind::ScaleOut { by: 1 })).await.expect("executor running");
        drop(tx);
        let stats = tokio::time::timeout(std::time::Duration::from_secs(10), executor)
            .await
            .expect("the executor finishes once its sender is gone")
            .expect("no panic");
        assert_eq!((stats.actions, stats.scaled_out, stats.registered), (2, 1, 0), "{stats:?}");
        assert_eq!((stats.failed, stats.registrations_failed), (2, 1), "{stats:?}");
        assert_eq!(*platform.stopped.lock().expect("not poisoned"), [7]);
        let known = control
            .with_machine(|c: &ControlPlane| c.registry().instance(InstanceId(7)).is_some())
            .await
            .expect("control running");
        assert!(!known, "a refused registration leaves no trace");
        assert_eq!(stale().await.expect("control running"), 2, "both reported failed");
        control.shutdown().await.expect("clean shutdown");
    }
}
