//! The local process platform: each instance is a child process.
//!
//! # Why
//!
//! The first real platform, and the one the end-to-end tests run: it needs
//! nothing but the machine it runs on, and a `kill -9` of a child is a
//! faithful crash. Container orchestrators come later behind the same
//! [`Platform`] trait.
//!
//! # How an instance runs
//!
//! Each service has a [`ProcessSpec`] (program, arguments, environment);
//! each instance is declared with its service
//! ([`add_instance`](ProcessPlatform::add_instance)), or as a standby slot
//! of it ([`add_standby`](ProcessPlatform::add_standby)), and runs as one
//! child process of that spec, with:
//!
//! - the platform's own environment, then the spec's `env`, then
//!   `VIGIL_INSTANCE=<instance id>` and `VIGIL_SERVICE=<service id>`, and
//!   for a standby slot `VIGIL_NODE=<node id>` (the only per-instance
//!   settings: a program derives anything else, such as ports, from them
//!   or from the spec);
//! - its working directory under the platform's root:
//!   `<root>/instance-<id>` for its first life and every restart,
//!   `<root>/instance-<id>.<n>` after its `n`-th replacement;
//! - standard input a pipe the platform holds open and never writes: a
//!   child reads end-of-file once the platform is gone, even when it was
//!   killed too abruptly to kill its children (`vigil-instance` exits
//!   then); standard output and error inherited.
//!
//! # Actions
//!
//! - `start`: spawn, unless a child is running.
//! - `restart`: SIGKILL the child (if any, and unless it already exited),
//!   wait for it (at most [`ProcessPlatform::kill_timeout`]), spawn again in
//!   the same working directory. An instance restarted in place keeps its
//!   files, as a restarted process on a host would.
//! - `replace`: the same, but spawned in a fresh, empty working directory,
//!   and the old one is removed. Locally, a "fresh host" is a fresh process
//!   in a fresh directory: nothing the old life wrote is seen by the new.
//! - `stop`: SIGKILL and wait. (A graceful stop, SIGTERM then SIGKILL, and
//!   pausing with SIGSTOP need signals beyond SIGKILL, so a `libc`
//!   dependency; not yet.)
//! - `scale_out`: start up to `by` of the service's standby slots, lowest
//!   id first, and name them ([`NewInstance`]); none left is
//!   [`PlatformError::NoCapacity`].
//!
//! # Standby slots
//!
//! vigil's instance ids are dense and handed out by whoever runs the
//! instances, not by the control plane's registry; so, as in the
//! simulator, capacity to scale into is declared up front: an instance id
//! and the node id its agent speaks as, per slot. A slot is standby until
//! its first start, by a scale-out or by hand; from then on it is an
//! instance like any other (restarted, replaced, stopped in place), and no
//! scale-out starts it again, even once stopped: a stopped instance is
//! recovery's business, not spare capacity. A slot whose spawn failed was
//! never started and stays standby. The platform starts; registering the
//! new instances with the control plane is the executor's part (see
//! [`spawn_recovery_executor`](super::spawn_recovery_executor)).
//!
//! Children are killed when the platform is dropped (`kill_on_drop`). The
//! platform does not watch its children exit: noticing a dead instance is
//! the failure detector's job, from heartbeats, as it would be for a host
//! that vanished. A program that forks and exits leaves its grandchildren
//! outside the platform's reach (no process groups yet).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::broadcast;
use vigil_core::{InstanceId, NodeId, ServiceId};

use super::{NewInstance, Platform, PlatformError};

/// How long a SIGKILLed child may take to exit before the action fails
/// ([`PlatformError::KillTimeout`]), by default.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Most instances one process platform runs.
pub const MAX_PROCESS_INSTANCES: usize = 65_536;

/// How many process events a subscriber may fall behind before it misses
/// some.
const EVENT_CAPACITY: usize = 1024;

/// How to run one service's instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The program: an absolute path, or a bare name looked up in `PATH`.
    /// (A relative path with a directory part is ambiguous, as the child
    /// runs in its own working directory.)
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables set on top of the platform's own.
    pub env: Vec<(OsString, OsString)>,
}

impl ProcessSpec {
    /// Run `program` with no arguments and no extra environment.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        ProcessSpec { program: program.into(), args: Vec::new(), env: Vec::new() }
    }

    /// Add an argument, builder style.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Set an environment variable, builder style.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// Something the platform did to a child, for operators and tests
/// ([`ProcessPlatform::subscribe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessEvent {
    /// A child was spawned.
    Started {
        /// The instance.
        instance: InstanceId,
        /// The child's process id.
        pid: u32,
        /// Its working directory.
        dir: PathBuf,
        /// When the spawn returned.
        at: tokio::time::Instant,
    },
    /// A child was killed and reaped (or found already exited).
    Stopped {
        /// The instance.
        instance: InstanceId,
        /// The child's process id.
        pid: u32,
        /// When it was reaped.
        at: tokio::time::Instant,
    },
}

/// Runs each instance as a local child process; see the
/// [module docs](self).
#[derive(Debug)]
pub struct ProcessPlatform {
    root: PathBuf,
    services: BTreeMap<ServiceId, ProcessSpec>,
    table: Mutex<Table>,
    kill_timeout: Duration,
    events: broadcast::Sender<ProcessEvent>,
}

/// Every declared instance, and which are standby: behind one lock, so
/// that declaring and claiming a slot are each one step.
#[derive(Debug, Default)]
struct Table {
    instances: BTreeMap<InstanceId, Arc<Slot>>,
    /// Per service, its standby slots never started yet. Each id is in
    /// `instances` too, with a node.
    standby: BTreeMap<ServiceId, BTreeSet<InstanceId>>,
}

/// One declared instance.
#[derive(Debug)]
struct Slot {
    service: ServiceId,
    /// The node its agent speaks as (`VIGIL_NODE`): set for standby slots,
    /// which the control plane learns of from a scale-out; `None` for an
    /// instance declared with [`ProcessPlatform::add_instance`], whose
    /// program derives its node itself.
    node: Option<NodeId>,
    /// Held across an action: actions on one instance run one at a time.
    life: tokio::sync::Mutex<Life>,
    /// What [`ProcessPlatform::pid`] and
    /// [`work_dir`](ProcessPlatform::work_dir) read without waiting for
    /// an action in progress; updated with `life`.
    view: Mutex<View>,
}

#[derive(Debug, Default)]
struct Life {
    child: Option<Running>,
    /// Replacements so far: names the working directory.
    replacements: u64,
    /// Children spawned so far: a standby slot has none.
    spawns: u64,
}

#[derive(Debug)]
struct Running {
    child: Child,
    pid: u32,
}

#[derive(Clone, Debug, Default)]
struct View {
    pid: Option<u32>,
    dir: Option<PathBuf>,
}

impl ProcessPlatform {
    /// A platform whose instances work under `root` (created as needed),
    /// with no services yet.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        ProcessPlatform {
            root: root.into(),
            services: BTreeMap::new(),
            table: Mutex::new(Table::default()),
            kill_timeout: KILL_TIMEOUT,
            events,
        }
    }

    /// Run `service`'s instances as `spec` says, builder style (replaces an
    /// earlier spec).
    #[must_use]
    pub fn with_service(mut self, service: ServiceId, spec: ProcessSpec) -> Self {
        self.services.insert(service, spec);
        self
    }

    /// How long a SIGKILLed child may take to exit, builder style
    /// ([`KILL_TIMEOUT`] by default).
    #[must_use]
    pub fn with_kill_timeout(mut self, timeout: Duration) -> Self {
        self.kill_timeout = timeout;
        self
    }

    /// How long a SIGKILLed child may take to exit.
    pub fn kill_timeout(&self) -> Duration {
        self.kill_timeout
    }

    /// Where instances' working directories are made.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Declare `instance` as one of `service`'s, not started. Declaring it
    /// again with the same service changes nothing.
    ///
    /// # Errors
    ///
    /// [`PlatformError::UnknownService`] if `service` has no spec;
    /// [`PlatformError::AlreadyDeclared`] if `instance` is declared with
    /// another service; [`PlatformError::TooManyInstances`] beyond
    /// [`MAX_PROCESS_INSTANCES`].
    pub fn add_instance(&self, instance: InstanceId, service: ServiceId) -> Result<(), PlatformError> {
        if !self.services.contains_key(&service) {
            return Err(PlatformError::UnknownService(service));
        }
        let mut table = self.table();
        if let Some(slot) = table.instances.get(&instance) {
            return match slot.service {
                declared if declared == service => Ok(()),
                declared => Err(PlatformError::AlreadyDeclared { instance, service: declared }),
            };
        }
        if table.instances.len() >= MAX_PROCESS_INSTANCES {
            return Err(PlatformError::TooManyInstances { max: MAX_PROCESS_INSTANCES });
        }
        table.instances.insert(instance, Arc::new(Slot::new(service, None)));
        Ok(())
    }

    /// Declare standby slots of `service`: instances not started, each
    /// with its id and the node id its agent will speak as, for
    /// [`scale_out`](Platform::scale_out) to start (lowest id first). See
    /// the [module docs](self#standby-slots). All or nothing: on error no
    /// slot is declared. Declaring a slot again with the same service and
    /// node changes nothing (it is not made standby again once started).
    ///
    /// # Errors
    ///
    /// [`PlatformError::UnknownService`] if `service` has no spec;
    /// [`PlatformError::AlreadyDeclared`] if an id is declared already
    /// otherwise (as an instance, or with another service or node);
    /// [`PlatformError::TooManyInstances`] beyond
    /// [`MAX_PROCESS_INSTANCES`].
    pub fn add_standby(
        &self,
        service: ServiceId,
        slots: impl IntoIterator<Item = (InstanceId, NodeId)>,
    ) -> Result<(), PlatformError> {
        if !self.services.contains_key(&service) {
            return Err(PlatformError::UnknownService(service));
        }
        let mut table = self.table();
        let mut fresh: BTreeMap<InstanceId, NodeId> = BTreeMap::new();
        let mut slots = slots.into_iter();
        // Bounded: more than the limit is refused below, whatever follows.
        for (instance, node) in slots.by_ref().take(MAX_PROCESS_INSTANCES) {
            let declared = match table.instances.get(&instance) {
                Some(slot) => Some((slot.service, slot.node)),
                None => fresh.get(&instance).map(|&n| (service, Some(n))),
            };
            match declared {
                None => {
                    fresh.insert(instance, node);
                }
                Some((s, Some(n))) if s == service && n == node => {} // the same slot again
                Some((s, _)) => return Err(PlatformError::AlreadyDeclared { instance, service: s }),
            }
        }
        if slots.next().is_some() || table.instances.len() + fresh.len() > MAX_PROCESS_INSTANCES {
            return Err(PlatformError::TooManyInstances { max: MAX_PROCESS_INSTANCES });
        }
        for (&instance, &node) in &fresh {
            table.instances.insert(instance, Arc::new(Slot::new(service, Some(node))));
        }
        table.standby.entry(service).or_default().extend(fresh.keys());
        Ok(())
    }

    /// `service`'s standby slots not started yet, in the order a scale-out
    /// takes them.
    pub fn standby(&self, service: ServiceId) -> Vec<InstanceId> {
        self.table().standby.get(&service).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// The node id a standby slot was declared with (its agent's
    /// `VIGIL_NODE`); `None` for other instances and unknown ones.
    pub fn node(&self, instance: InstanceId) -> Option<NodeId> {
        self.slot(instance).ok().and_then(|slot| slot.node)
    }

    /// The process id of `instance`'s child: the last one spawned, until
    /// stopped or killed by the platform. A child that died on its own
    /// keeps its pid here until the next action (the platform does not
    /// watch exits; see the [module docs](self)).
    pub fn pid(&self, instance: InstanceId) -> Option<u32> {
        self.slot(instance).ok().and_then(|slot| slot.view().pid)
    }

    /// The working directory of `instance`'s last child.
    pub fn work_dir(&self, instance: InstanceId) -> Option<PathBuf> {
        self.slot(instance).ok().and_then(|slot| slot.view().dir)
    }

    /// Receive every [`ProcessEvent`] from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProcessEvent> {
        self.events.subscribe()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, instance: InstanceId) -> Result<Arc<Slot>, PlatformError> {
        self.table().instances.get(&instance).cloned().ok_or(PlatformError::UnknownInstance(instance))
    }

    /// Take `service`'s lowest standby slot out of the standby set: no
    /// other scale-out can take it any more.
    fn claim_standby(&self, service: ServiceId) -> Option<(InstanceId, NodeId, Arc<Slot>)> {
        let mut table = self.table();
        let instance = table.standby.get_mut(&service)?.pop_first()?;
        let slot = table.instances.get(&instance).cloned()?;
        // Standby slots are declared with a node (`add_standby`).
        let node = slot.node?;
        Some((instance, node, slot))
    }

    /// Put back a claimed slot that did not start.
    fn unclaim_standby(&self, service: ServiceId, instance: InstanceId) {
        self.table().standby.entry(service).or_default().insert(instance);
    }

    fn dir_of(&self, instance: InstanceId, replacements: u64) -> PathBuf {
        match replacements {
            0 => self.root.join(format!("instance-{}", instance.0)),
            n => self.root.join(format!("instance-{}.{n}", instance.0)),
        }
    }

    /// Spawn `instance`'s child in its current working directory.
    fn spawn(&self, instance: InstanceId, slot: &Slot, life: &mut Life) -> Result<(), PlatformError> {
        debug_assert!(life.child.is_none(), "spawn over a running child");
        let spec = self.services.get(&slot.service).ok_or(PlatformError::UnknownService(slot.service))?;
        let dir = self.dir_of(instance, life.replacements);
        std::fs::create_dir_all(&dir).map_err(|source| PlatformError::WorkDir {
            instance,
            path: dir.clone(),
            source,
        })?;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env("VIGIL_INSTANCE", instance.0.to_string())
            .env("VIGIL_SERVICE", slot.service.0.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .kill_on_drop(true);
        if let Some(node) = slot.node {
            command.env("VIGIL_NODE", node.0.to_string());
        }
        let spawn_error = |source| PlatformError::Spawn { instance, program: spec.program.clone(), source };
        let child = command.spawn().map_err(spawn_error)?;
        // A child not yet polled to completion always has an id.
        let Some(pid) = child.id() else {
            return Err(spawn_error(std::io::Error::other("the child exited before it had a process id")));
        };
        tracing::info!(instance = instance.0, pid, dir = %dir.display(), "process started");
        *slot.view.lock().unwrap_or_else(PoisonError::into_inner) =
            View { pid: Some(pid), dir: Some(dir.clone()) };
        life.child = Some(Running { child, pid });
        life.spawns += 1;
        if life.spawns == 1 && slot.node.is_some() {
            // Started, by a scale-out or by hand: standby no more.
            if let Some(standby) = self.table().standby.get_mut(&slot.service) {
                standby.remove(&instance);
            }
        }
        let at = tokio::time::Instant::now();
        // No subscriber is not an error.
        let _ = self.events.send(ProcessEvent::Started { instance, pid, dir, at });
        Ok(())
    }

    /// SIGKILL `instance`'s child, if any, and wait for it, bounded. The
    /// child is forgotten whatever happens: on an error it is killed again
    /// when dropped, and reaped by tokio if it ever exits.
    async fn kill(&self, instance: InstanceId, slot: &Slot, life: &mut Life) -> Result<(), PlatformError> {
        let Some(Running { mut child, pid }) = life.child.take() else { return Ok(()) };
        slot.view.lock().unwrap_or_else(PoisonError::into_inner).pid = None;
        let kill_error = |source| PlatformError::Kill { instance, pid, source };
        // Killed from outside, or exited by itself: reap it, nothing to kill.
        if let Some(status) = child.try_wait().map_err(kill_error)? {
            tracing::info!(instance = instance.0, pid, %status, "process had already exited");
        } else {
            child.start_kill().map_err(kill_error)?;
            let status = match tokio::time::timeout(self.kill_timeout, child.wait()).await {
                Ok(status) => status.map_err(kill_error)?,
                Err(_) => {
                    let waited = self.kill_timeout;
                    return Err(PlatformError::KillTimeout { instance, pid, waited });
                }
            };
            tracing::info!(instance = instance.0, pid, %status, "process killed");
        }
        let at = tokio::time::Instant::now();
        let _ = self.events.send(ProcessEvent::Stopped { instance, pid, at });
        Ok(())
    }

    /// Whether `life`'s child is still running; reaps it if not.
    fn running(life: &mut Life) -> bool {
        match life.child.as_mut().map(|r| r.child.try_wait()) {
            Some(Ok(None)) => true,
            // Exited; or its state cannot be read, and a restart will say.
            Some(Ok(Some(_)) | Err(_)) | None => false,
        }
    }
}

impl Slot {
    fn new(service: ServiceId, node: Option<NodeId>) -> Self {
        Slot {
            service,
            node,
            life: tokio::sync::Mutex::new(Life::default()),
            view: Mutex::new(View::default()),
        }
    }

    fn view(&self) -> View {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Platform for ProcessPlatform {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn start(&self, instance: InstanceId) -> Result<(), PlatformError> {
        let slot = self.slot(instance)?;
        let mut life = slot.life.lock().await;
        if Self::running(&mut life) {
            return Ok(());
        }
        // Reap what is left of a dead child before a new one.
        self.kill(instance, &slot, &mut life).await?;
        self.spawn(instance, &slot, &mut life)
    }

    async fn stop(&self, instance: InstanceId) -> Result<(), PlatformError> {
        let slot = self.slot(instance)?;
        let mut life = slot.life.lock().await;
        self.kill(instance, &slot, &mut life).await
    }

    async fn restart(&self, instance: InstanceId) -> Result<(), PlatformError> {
        let slot = self.slot(instance)?;
        let mut life = slot.life.lock().await;
        self.kill(instance, &slot, &mut life).await?;
        self.spawn(instance, &slot, &mut life)
    }

    async fn replace(&self, instance: InstanceId) -> Result<(), PlatformError> {
        let slot = self.slot(instance)?;
        let mut life = slot.life.lock().await;
        self.kill(instance, &slot, &mut life).await?;
        let old = self.dir_of(instance, life.replacements);
        life.replacements += 1;
        // The old host is gone with what it held. Best effort: a directory
        // left behind costs disk, not correctness.
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&old) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err((old, error)),
            _ => Ok(()),
        })
        .await;
        if let Ok(Err((old, error))) = removed {
            tracing::warn!(instance = instance.0, dir = %old.display(), %error, "old working directory kept");
        }
        self.spawn(instance, &slot, &mut life)
    }

    async fn scale_out(&self, service: ServiceId, by: u32) -> Result<Vec<NewInstance>, PlatformError> {
        if !self.services.contains_key(&service) {
            return Err(PlatformError::UnknownService(service));
        }
        let wanted = usize::try_from(by).unwrap_or(usize::MAX);
        let mut started = Vec::new();
        let mut failed = None;
        // Bounded: each turn takes one slot out of the standby set for
        // good, or puts it back and ends.
        while started.len() < wanted {
            let Some((instance, node, slot)) = self.claim_standby(service) else { break };
            let mut life = slot.life.lock().await;
            if life.spawns > 0 {
                // Started by hand between the claim and the lock: it is
                // not spare capacity any more.
                continue;
            }
            match self.spawn(instance, &slot, &mut life) {
                Ok(()) => started.push(NewInstance { instance, node, service }),
                Err(error) => {
                    // Never started: still standby. The next slot would
                    // fail the same way (one spec per service): stop here.
                    self.unclaim_standby(service, instance);
                    failed = Some(error);
                    break;
                }
            }
        }
        match (started.is_empty(), failed) {
            (true, Some(error)) => Err(error),
            (true, None) if wanted > 0 => Err(PlatformError::NoCapacity { service }),
            (_, failed) => {
                if let Some(error) = failed {
                    tracing::warn!(service = service.0, started = started.len(), %error, "scale-out partly done");
                } else if started.len() < wanted {
                    tracing::warn!(
                        service = service.0,
                        started = started.len(),
                        by,
                        "standby capacity ran out"
                    );
                }
                Ok(started)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceId = ServiceId(0);
    const ONE: InstanceId = InstanceId(1);

    /// A fresh scratch directory for one test, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("vigil-process-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `sh -c script`: a child that lives until killed if the script ends
    /// with `exec sleep 60`. A further argument is the script's `$0`.
    fn shell(script: &str) -> ProcessSpec {
        ProcessSpec::new("sh").arg("-c").arg(script)
    }

    fn platform(scratch: &Scratch, spec: ProcessSpec) -> ProcessPlatform {
        let platform = ProcessPlatform::new(&scratch.0).with_service(SERVICE, spec);
        platform.add_instance(ONE, SERVICE).expect("service has a spec");
        platform
    }

    /// Wait (bounded) until `path` holds `expected`: the child writes it.
    async fn wait_for_file(path: &Path, expected: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let content = std::fs::read_to_string(path).unwrap_or_default();
            if content == expected {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path:?} holds {content:?}, not {expected:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_program_that_cannot_be_spawned_is_an_error_naming_it() {
        let scratch = Scratch::new("missing");
        let missing = scratch.0.join("no-such-program");
        let platform = platform(&scratch, ProcessSpec::new(&missing));
        let error = platform.start(ONE).await.expect_err("nothing to run");
        assert!(matches!(&error, PlatformError::Spawn { instance: ONE, program, .. } if *program == missing));
        let message = error.to_string();
        assert!(message.contains("no-such-program") && message.contains("instance#1"), "{message}");
        assert_eq!(platform.pid(ONE), None);
        // Restart and replace say the same, and leave nothing running.
        assert!(matches!(platform.restart(ONE).await, Err(PlatformError::Spawn { .. })));
        assert!(matches!(platform.replace(ONE).await, Err(PlatformError::Spawn { .. })));
        assert_eq!(platform.pid(ONE), None);
    }

    #[tokio::test]
    async fn undeclared_instances_and_services_are_errors() {
        let scratch = Scratch::new("undeclared");
        let platform = platform(&scratch, shell("exec sleep 60"));
        let stranger = InstanceId(9);
        for result in [
            platform.start(stranger).await,
            platform.stop(stranger).await,
            platform.restart(stranger).await,
            platform.replace(stranger).await,
        ] {
            assert!(matches!(result, Err(PlatformError::UnknownInstance(i)) if i == stranger), "{result:?}");
        }
        assert!(matches!(
            platform.add_instance(stranger, ServiceId(7)),
            Err(PlatformError::UnknownService(ServiceId(7)))
        ));
        // Declared again: the same service is fine, another is not.
        platform.add_instance(ONE, SERVICE).expect("same service");
        let platform = platform.with_service(ServiceId(2), shell("exec sleep 60"));
        let error = platform.add_instance(ONE, ServiceId(2)).expect_err("another service");
        assert!(matches!(error, PlatformError::AlreadyDeclared { instance: ONE, service: SERVICE }));
        assert_eq!(platform.pid(stranger), None);
        assert_eq!(platform.work_dir(stranger), None);
    }

    /// Standby slots 5 and 6 of [`SERVICE`], nodes 50 and 60.
    const STANDBY: [(InstanceId, NodeId); 2] = [(InstanceId(5), NodeId(50)), (InstanceId(6), NodeId(60))];

    fn started(platform_answer: Result<Vec<NewInstance>, PlatformError>) -> Vec<u32> {
        platform_answer.expect("scaled out").iter().map(|n| n.instance.0).collect()
    }

    #[tokio::test]
    async fn scale_out_without_standby_capacity_is_no_capacity() {
        let scratch = Scratch::new("no-capacity");
        let platform = platform(&scratch, shell("exec sleep 60"));
        // A declared, stopped instance is not spare capacity.
        let error = platform.scale_out(SERVICE, 2).await.expect_err("no standby slot");
        assert!(matches!(error, PlatformError::NoCapacity { service: SERVICE }), "{error:?}");
        assert_eq!(error.to_string(), "cannot scale service#0 out: no standby capacity left");
        assert_eq!(platform.pid(ONE), None, "scale-out never starts a declared instance");
        assert!(matches!(
            platform.scale_out(ServiceId(7), 1).await,
            Err(PlatformError::UnknownService(ServiceId(7)))
        ));

        // One slot, two asked: one started, a success; then none left.
        platform.add_standby(SERVICE, [STANDBY[0]]).expect("declared");
        assert_eq!(platform.standby(SERVICE), [InstanceId(5)]);
        let answer = platform.scale_out(SERVICE, 2).await;
        assert_eq!(
            answer.as_ref().expect("scaled out"),
            &[NewInstance { instance: InstanceId(5), node: NodeId(50), service: SERVICE }]
        );
        assert!(platform.pid(InstanceId(5)).is_some());
        assert_eq!(platform.standby(SERVICE), []);
        let error = platform.scale_out(SERVICE, 1).await.expect_err("spent");
        assert!(matches!(error, PlatformError::NoCapacity { service: SERVICE }), "{error:?}");
        platform.stop(InstanceId(5)).await.expect("stops");
    }

    #[tokio::test]
    async fn scaled_out_instances_get_their_instance_service_and_node() {
        let scratch = Scratch::new("scale-out-env");
        let spec = shell(
            r#"printf '%s %s %s %s' "$VIGIL_INSTANCE" "$VIGIL_SERVICE" "$VIGIL_NODE" "$GREETING" > env.txt; exec sleep 60"#,
        )
        .env("GREETING", "hello");
        let platform = platform(&scratch, spec);
        platform.add_standby(SERVICE, STANDBY).expect("declared");
        assert_eq!((platform.node(InstanceId(6)), platform.node(ONE)), (Some(NodeId(60)), None));
        assert_eq!(started(platform.scale_out(SERVICE, 2).await), [5, 6]);
        for (instance, node) in STANDBY {
            let dir = platform.work_dir(instance).expect("started");
            assert_eq!(dir, scratch.0.join(format!("instance-{}", instance.0)));
            wait_for_file(&dir.join("env.txt"), &format!("{} 0 {} hello", instance.0, node.0)).await;
        }
        // A declared instance has no node from the platform: its program
        // derives one.
        platform.start(ONE).await.expect("starts");
        wait_for_file(&platform.work_dir(ONE).expect("started").join("env.txt"), "1 0  hello").await;
        for instance in [ONE, InstanceId(5), InstanceId(6)] {
            platform.stop(instance).await.expect("stops");
        }
    }

    #[tokio::test]
    async fn a_standby_slot_is_never_started_twice() {
        let scratch = Scratch::new("standby-once");
        let platform = Arc::new(platform(&scratch, shell("exec sleep 60")));
        let extra = (InstanceId(7), NodeId(70));
        platform.add_standby(SERVICE, STANDBY.into_iter().chain([extra])).expect("declared");
        let mut events = platform.subscribe();

        // Two scale-outs at once, three slots, two asked each: three
        // starts in all, none twice.
        let (a, b) = tokio::join!(platform.scale_out(SERVICE, 2), platform.scale_out(SERVICE, 2));
        let mut all: Vec<u32> = started(a).into_iter().chain(started(b)).collect();
        all.sort_unstable();
        assert_eq!(all, [5, 6, 7]);
        assert!(matches!(platform.scale_out(SERVICE, 1).await, Err(PlatformError::NoCapacity { .. })));

        // A started slot stopped is recovery's business, not capacity.
        platform.stop(InstanceId(5)).await.expect("stops");
        assert_eq!(platform.standby(SERVICE), []);
        assert!(matches!(platform.scale_out(SERVICE, 1).await, Err(PlatformError::NoCapacity { .. })));
        // Declaring it again changes nothing; another node is refused.
        platform.add_standby(SERVICE, [STANDBY[0]]).expect("the same slot");
        assert_eq!(platform.standby(SERVICE), []);
        let error = platform.add_standby(SERVICE, [(InstanceId(5), NodeId(99))]).expect_err("another node");
        assert!(matches!(
            error,
            PlatformError::AlreadyDeclared { instance: InstanceId(5), service: SERVICE }
        ));

        // A slot started by hand is no longer standby either.
        platform.add_standby(SERVICE, [(InstanceId(8), NodeId(80))]).expect("declared");
        platform.start(InstanceId(8)).await.expect("starts");
        assert_eq!(platform.standby(SERVICE), []);
        assert!(matches!(platform.scale_out(SERVICE, 1).await, Err(PlatformError::NoCapacity { .. })));

        let mut starts: BTreeMap<InstanceId, u32> = BTreeMap::new();
        while let Ok(event) = events.try_recv() {
            if let ProcessEvent::Started { instance, .. } = event {
                *starts.entry(instance).or_default() += 1;
            }
        }
        let expected: BTreeMap<InstanceId, u32> = [5, 6, 7, 8].map(|i| (InstanceId(i), 1)).into();
        assert_eq!(starts, expected, "each slot started once");
        for i in [5, 6, 7, 8] {
            platform.stop(InstanceId(i)).await.expect("stops");
        }
    }

    #[tokio::test]
    async fn standby_slots_are_declared_all_or_nothing() {
        let scratch = Scratch::new("standby-declare");
        let platform = platform(&scratch, shell("exec sleep 60"));
        assert!(matches!(
            platform.add_standby(ServiceId(7), STANDBY),
            Err(PlatformError::UnknownService(ServiceId(7)))
        ));
        // The declared instance's id, after a good one: neither declared.
        let error = platform.add_standby(SERVICE, [STANDBY[0], (ONE, NodeId(10))]).expect_err("taken");
        assert!(matches!(error, PlatformError::AlreadyDeclared { instance: ONE, service: SERVICE }));
        // The same id twice with two nodes.
        let twice = [STANDBY[0], (STANDBY[0].0, NodeId(51))];
        assert!(matches!(platform.add_standby(SERVICE, twice), Err(PlatformError::AlreadyDeclared { .. })));
        assert_eq!(platform.standby(SERVICE), []);
        assert!(matches!(platform.start(InstanceId(5)).await, Err(PlatformError::UnknownInstance(_))));
        // A standby slot cannot be declared again as another service's.
        platform.add_standby(SERVICE, STANDBY).expect("declared");
        let platform = platform.with_service(ServiceId(2), shell("exec sleep 60"));
        assert!(matches!(
            platform.add_instance(InstanceId(6), ServiceId(2)),
            Err(PlatformError::AlreadyDeclared { service: SERVICE, .. })
        ));
        assert_eq!(platform.standby(SERVICE), [InstanceId(5), InstanceId(6)]);
    }

    #[tokio::test]
    async fn a_standby_slot_that_cannot_spawn_stays_standby() {
        let scratch = Scratch::new("standby-missing");
        let missing = scratch.0.join("no-such-program");
        let platform = ProcessPlatform::new(&scratch.0).with_service(SERVICE, ProcessSpec::new(&missing));
        platform.add_standby(SERVICE, STANDBY).expect("declared");
        let error = platform.scale_out(SERVICE, 2).await.expect_err("nothing to run");
        assert!(matches!(error, PlatformError::Spawn { instance: InstanceId(5), .. }), "{error:?}");
        assert_eq!(platform.standby(SERVICE), [InstanceId(5), InstanceId(6)], "never started");
        assert_eq!(platform.pid(InstanceId(5)), None);
    }

    #[tokio::test]
    async fn a_working_directory_that_cannot_be_made_is_an_error() {
        let scratch = Scratch::new("workdir");
        std::fs::create_dir_all(&scratch.0).expect("scratch directory");
        // The root is a file: nothing can be made under it.
        let root = scratch.0.join("a-file");
        std::fs::write(&root, "not a directory").expect("write the file");
        let platform = ProcessPlatform::new(&root).with_service(SERVICE, shell("exec sleep 60"));
        platform.add_instance(ONE, SERVICE).expect("service has a spec");
        let error = platform.start(ONE).await.expect_err("no working directory");
        assert!(
            matches!(&error, PlatformError::WorkDir { instance: ONE, path, .. } if path.starts_with(&root))
        );
        assert_eq!(platform.pid(ONE), None);
    }

    #[tokio::test]
    async fn the_child_gets_its_instance_and_service_and_the_spec() {
        let scratch = Scratch::new("env");
        let spec = shell(r#"printf '%s %s %s %s' "$VIGIL_INSTANCE" "$VIGIL_SERVICE" "$GREETING" "$0" > env.txt; exec sleep 60"#)
            .arg("first-arg")
            .env("GREETING", "hello");
        let platform = platform(&scratch, spec);
        platform.start(ONE).await.expect("sh starts");
        let dir = platform.work_dir(ONE).expect("started");
        assert_eq!(dir, scratch.0.join("instance-1"));
        wait_for_file(&dir.join("env.txt"), "1 0 hello first-arg").await;
        platform.stop(ONE).await.expect("stops");
    }

    #[tokio::test]
    async fn start_is_idempotent_and_restart_is_a_new_process_in_the_same_directory() {
        let scratch = Scratch::new("restart");
        let platform = platform(&scratch, shell("exec sleep 60"));
        let mut events = platform.subscribe();
        platform.start(ONE).await.expect("starts");
        let first = platform.pid(ONE).expect("running");
        let dir = platform.work_dir(ONE).expect("running");
        platform.start(ONE).await.expect("already running");
        assert_eq!(platform.pid(ONE), Some(first), "a running child is left alone");

        platform.restart(ONE).await.expect("restarts");
        let second = platform.pid(ONE).expect("running again");
        assert_ne!(second, first);
        assert_eq!(platform.work_dir(ONE), Some(dir.clone()), "in place");
        let seen: Vec<ProcessEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert!(
            matches!(
                &seen[..],
                [
                    ProcessEvent::Started { pid: a, dir: d1, .. },
                    ProcessEvent::Stopped { pid: b, .. },
                    ProcessEvent::Started { pid: c, dir: d2, .. },
                ] if (*a, *b, *c) == (first, first, second) && *d1 == dir && *d2 == dir
            ),
            "{seen:?}"
        );

        platform.stop(ONE).await.expect("stops");
        assert_eq!(platform.pid(ONE), None);
        platform.stop(ONE).await.expect("stopping a stopped instance is fine");
    }

    #[tokio::test]
    async fn a_child_that_died_on_its_own_is_reaped_and_started_again() {
        let scratch = Scratch::new("died");
        // Dies as soon as it has written its marker.
        let platform = platform(&scratch, shell("echo ran >> runs.txt; exit 3"));
        platform.start(ONE).await.expect("starts");
        let dir = platform.work_dir(ONE).expect("started");
        wait_for_file(&dir.join("runs.txt"), "ran\n").await;
        // Dead or about to be: `start` runs it again either way (reaping,
        // or killing, the first).
        let first = platform.pid(ONE).expect("the pid is kept until the next action");
        let mut events = platform.subscribe();
        platform.start(ONE).await.expect("starts again");
        assert!(matches!(events.try_recv(), Ok(ProcessEvent::Stopped { pid, .. }) if pid == first));
        wait_for_file(&dir.join("runs.txt"), "ran\nran\n").await;
        platform.stop(ONE).await.expect("reaped");
        assert_eq!(platform.pid(ONE), None);
    }

    #[tokio::test]
    async fn replace_starts_afresh_in_a_new_directory_and_removes_the_old() {
        let scratch = Scratch::new("replace");
        let platform = platform(&scratch, shell("exec sleep 60"));
        platform.start(ONE).await.expect("starts");
        let (first, old_dir) =
            (platform.pid(ONE).expect("running"), platform.work_dir(ONE).expect("running"));
        std::fs::write(old_dir.join("state"), "left by the first life").expect("write state");

        platform.replace(ONE).await.expect("replaces");
        let new_dir = platform.work_dir(ONE).expect("running");
        assert_ne!(platform.pid(ONE), Some(first));
        assert_eq!(new_dir, scratch.0.join("instance-1.1"));
        assert!(!new_dir.join("state").exists(), "a fresh host sees nothing of the old");
        assert!(!old_dir.exists(), "the old host is gone");

        platform.replace(ONE).await.expect("replaces again");
        assert_eq!(platform.work_dir(ONE), Some(scratch.0.join("instance-1.2")));
        platform.stop(ONE).await.expect("stops");
    }
}
