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
//! | `Restart`, `Replace`, `ScaleOut` | the platform's method; `Failed` on error |
//! | `Reroute` | nothing: the control plane takes the instance out of rotation itself |
//! | `OpenCircuit`, `CloseCircuit` | logged: circuits are enforced by callers (clients), not by where instances run |
//! | `HalfOpen` | `Failed` at once: nothing here makes the trial call, and an unverified dependency must not get traffic back; the circuit stays open and tries again later |
//! | `AskHuman` | logged as an error: nothing more is automatic |
//!
//! The task ends once the driver is gone (its sender is dropped) and the
//! actions in flight have finished.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;
use vigil_core::node::ControlPlane;
use vigil_core::recovery::{Action, ActionKind, Outcome};

use super::{Platform, PlatformError};
use crate::driver::MachineRef;

/// Most actions carried out at once; an action beyond it is reported
/// failed at once (the coordinator's own limits keep far fewer in flight).
pub const MAX_ACTIONS_IN_FLIGHT: usize = 256;

/// Spawn the task that carries out the recovery actions arriving on
/// `actions` on `platform`, reporting failures to the control plane behind
/// `control`. See the [module docs](self).
///
/// Wire it with
/// [`Driver::with_recovery`](crate::Driver::with_recovery):
///
/// ```no_run
/// # use std::sync::Arc;
/// # use vigil_core::node::ControlPlane;
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
) -> JoinHandle<()>
where
    P: Platform + 'static,
{
    let span = tracing::info_span!("vigil_recovery", platform = platform.name());
    tokio::spawn(run(control, platform, actions).instrument(span))
}

async fn run<P: Platform + 'static>(
    control: MachineRef<ControlPlane>,
    platform: Arc<P>,
    mut actions: mpsc::Receiver<Action>,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            action = actions.recv() => {
                let Some(action) = action else { break };
                if in_flight.len() >= MAX_ACTIONS_IN_FLIGHT {
                    tracing::warn!(id = %action.id, in_flight = in_flight.len(), "too many actions in flight; failed");
                    report_failed(&control, action).await;
                    continue;
                }
                let (control, platform) = (control.clone(), Arc::clone(&platform));
                in_flight.spawn(carry_out(control, platform, action).in_current_span());
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
async fn carry_out<P: Platform>(control: MachineRef<ControlPlane>, platform: Arc<P>, action: Action) {
    let (id, instance) = (action.id, action.instance);
    let result: Result<(), PlatformError> = match (action.kind, instance) {
        (ActionKind::Restart, Some(instance)) => platform.restart(instance).await,
        (ActionKind::Replace, Some(instance)) => platform.replace(instance).await,
        (ActionKind::ScaleOut { by }, _) => platform.scale_out(action.service, by).await,
        (ActionKind::Restart | ActionKind::Replace, None) => {
            tracing::error!(%id, kind = ?action.kind, "instance action without an instance; failed");
            return report_failed(&control, action).await;
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
            return report_failed(&control, action).await;
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
            report_failed(&control, action).await;
        }
    }
}

async fn report_failed(control: &MachineRef<ControlPlane>, action: Action) {
    let id = action.id;
    let reported = control
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

    use vigil_core::node::ControlConfig;
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
        async fn scale_out(&self, service: ServiceId, by: u32) -> Result<(), PlatformError> {
            self.refuse(format!("scale_out {} {by}", service.0))
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
        let control = Driver::bind(NodeId(0), loopback, clock, control).await.expect("bind").spawn();
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
}
