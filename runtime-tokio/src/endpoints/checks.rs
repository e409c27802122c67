//! The registry of user-supplied checks, the startup and drain switches, and
//! one evaluation round.
//!
//! A round spawns every selected check on its own task, all at once, and
//! gives each its own deadline from the round's start: the round lasts as
//! long as the slowest check or its timeout, not their sum. A task is
//! aborted when its deadline passes or when the round is dropped (the
//! client went away), so a hung check never outlives the request that ran
//! it. Running each check on a task also turns a panicking check into a
//! failed check ("panicked") instead of a failed request.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use super::report::{CheckOutcome, CheckResult, Endpoint, Report};

/// The timeout of a check added with [`HealthChecks::add`]: a check that has
/// not answered after this long fails with the reason `timeout after …`.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest timeout a check may have. Probes are periodic and cheap;
/// anything longer is a mistake (and would outlast every prober's own
/// timeout anyway).
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// How many checks one [`HealthChecks`] holds at most: every request runs
/// all of them, so the list must stay short.
pub const MAX_CHECKS: usize = 64;

/// The longest check name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The name of the built-in readiness check that reflects
/// [`HealthChecks::set_ready`]. Reserved: no user check may take it.
pub const DRAIN_CHECK: &str = "drain";

/// Which probes a check counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `/livez` (and `/healthz`): failing means the process is broken and
    /// should be restarted (a deadlocked event loop, a poisoned state).
    Liveness,
    /// `/readyz` (and `/healthz`): failing means the process is fine but
    /// should get no traffic for now (a dependency down, a cache warming).
    Readiness,
    /// Both.
    Both,
}

impl CheckKind {
    /// Whether the check counts for `endpoint`.
    pub fn counts_for(self, endpoint: Endpoint) -> bool {
        match endpoint {
            Endpoint::Livez => matches!(self, CheckKind::Liveness | CheckKind::Both),
            Endpoint::Readyz => matches!(self, CheckKind::Readiness | CheckKind::Both),
            Endpoint::Healthz => true,
        }
    }
}

/// Why [`HealthChecks::add`] refused a check. The registry is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddCheckError {
    /// Names must be 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits,
    /// `-`, `_`, `.` or `/`, so they print on one line and need no escaping
    /// in `?exclude=`.
    #[error("invalid check name {0:?}: use 1 to {MAX_NAME_LEN} ASCII letters, digits, '-', '_', '.' or '/'")]
    InvalidName(String),
    /// A check of that name exists; remove it first to replace it.
    #[error("a check named {0:?} already exists; remove it first to replace it")]
    Duplicate(String),
    /// The name is [`DRAIN_CHECK`], which the registry uses itself.
    #[error("the check name {0:?} is reserved for the drain switch (set_ready); pick another")]
    Reserved(String),
    /// The timeout is zero or above [`MAX_CHECK_TIMEOUT`].
    #[error("check timeout {0:?} is out of range: use more than zero and at most {MAX_CHECK_TIMEOUT:?}")]
    TimeoutOutOfRange(Duration),
    /// The registry already holds [`MAX_CHECKS`] checks.
    #[error("too many checks: at most {MAX_CHECKS}")]
    TooMany,
}

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

struct Check {
    name: String,
    kind: CheckKind,
    timeout: Duration,
    run: CheckFn,
}

struct Shared {
    /// Registration order, which is also the order of the report lines.
    checks: Mutex<Vec<Arc<Check>>>,
    started: AtomicBool,
    ready: AtomicBool,
}

/// User-supplied health checks and the switches behind `/livez`, `/readyz`
/// and `/healthz`.
///
/// Cloning is cheap and every clone shares the same checks and switches:
/// keep one to call [`mark_started`](HealthChecks::mark_started) and
/// [`set_ready`](HealthChecks::set_ready) while the router holds another.
///
/// A new registry is **not started** (every probe answers 503 `starting`)
/// and **ready** (the drain switch is off). See the [module
/// docs](crate::endpoints) for the semantics of each endpoint.
#[derive(Clone)]
pub struct HealthChecks {
    shared: Arc<Shared>,
}

impl fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecks")
            .field("checks", &self.names())
            .field("started", &self.is_started())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Default for HealthChecks {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthChecks {
    /// No checks; not started; ready.
    pub fn new() -> Self {
        HealthChecks {
            shared: Arc::new(Shared {
                checks: Mutex::new(Vec::new()),
                started: AtomicBool::new(false),
                ready: AtomicBool::new(true),
            }),
        }
    }

    /// Add a check named `name` for the probes of `kind`, with the
    /// [`DEFAULT_CHECK_TIMEOUT`].
    ///
    /// `check` is called once per request that selects it; the future it
    /// returns answers `Ok(())` for healthy or `Err(reason)`. It runs on a
    /// task of its own, so it must not block the thread (use
    /// `spawn_blocking` inside it for blocking work); a check that panics
    /// fails with the reason `panicked`.
    pub fn add<F, Fut, E>(
        &self,
        name: impl Into<String>,
        kind: CheckKind,
        check: F,
    ) -> Result<(), AddCheckError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        self.add_with_timeout(name, kind, DEFAULT_CHECK_TIMEOUT, check)
    }

    /// [`add`](HealthChecks::add) with a timeout of its own, more than zero
    /// and at most [`MAX_CHECK_TIMEOUT`].
    pub fn add_with_timeout<F, Fut, E>(
        &self,
        name: impl Into<String>,
        kind: CheckKind,
        timeout: Duration,
        check: F,
    ) -> Result<(), AddCheckError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        let name = name.into();
        if !valid_name(&name) {
            return Err(AddCheckError::InvalidName(name));
        }
        if name == DRAIN_CHECK {
            return Err(AddCheckError::Reserved(name));
        }
        if timeout.is_zero() || timeout > MAX_CHECK_TIMEOUT {
            return Err(AddCheckError::TimeoutOutOfRange(timeout));
        }
        let run: CheckFn = Arc::new(move || {
            let future = check();
            Box::pin(async move { future.await.map_err(|e| e.to_string()) })
        });
        let mut checks = self.lock();
        if checks.iter().any(|c| c.name == name) {
            return Err(AddCheckError::Duplicate(name));
        }
        if checks.len() >= MAX_CHECKS {
            return Err(AddCheckError::TooMany);
        }
        checks.push(Arc::new(Check { name, kind, timeout, run }));
        Ok(())
    }

    /// Remove the check named `name`; whether there was one. A round already
    /// running keeps it until it ends.
    pub fn remove(&self, name: &str) -> bool {
        let mut checks = self.lock();
        let before = checks.len();
        checks.retain(|c| c.name != name);
        checks.len() != before
    }

    /// The names of the checks, in registration order (the order of the
    /// report lines).
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|c| c.name.clone()).collect()
    }

    /// End the startup phase: from now on the probes run the checks instead
    /// of answering 503 `starting`. Call it once initialisation is done
    /// (config loaded, listeners bound, caches warm). It cannot be undone:
    /// startup happens once per process.
    pub fn mark_started(&self) {
        self.shared.started.store(true, Ordering::Release);
    }

    /// Whether [`mark_started`](HealthChecks::mark_started) was called.
    pub fn is_started(&self) -> bool {
        self.shared.started.load(Ordering::Acquire)
    }

    /// The drain switch. `set_ready(false)` makes `/readyz` (and
    /// `/healthz`) fail on the built-in [`DRAIN_CHECK`] while `/livez` stays
    /// 200: load balancers stop sending traffic and the orchestrator does
    /// not restart the process. Call it at the start of a graceful shutdown,
    /// wait for the balancers to notice (a few probe periods), then stop.
    /// `set_ready(true)` undoes it.
    pub fn set_ready(&self, ready: bool) {
        self.shared.ready.store(ready, Ordering::Release);
    }

    /// The drain switch: `false` after `set_ready(false)`.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Run the checks of `endpoint`, except those named in `exclude`, and
    /// report. This is what the HTTP handlers do; call it directly to use
    /// the same verdict in-process (say, before renewing a lease).
    ///
    /// Before [`mark_started`](HealthChecks::mark_started) nothing runs and
    /// the report is [`Report::is_starting`]. Names in `exclude` that match
    /// no check are listed in the report as a warning, like Kubernetes does.
    pub async fn evaluate<S: AsRef<str>>(&self, endpoint: Endpoint, exclude: &[S]) -> Report {
        if !self.is_started() {
            return Report::starting(endpoint);
        }
        let excluded: BTreeSet<&str> = exclude.iter().map(AsRef::as_ref).collect();
        // Clone the list out so no lock is held across an await, and checks
        // added or removed meanwhile do not disturb this round.
        let checks: Vec<Arc<Check>> =
            self.lock().iter().filter(|c| c.kind.counts_for(endpoint)).cloned().collect();
        let has_drain = endpoint != Endpoint::Livez;

        let known = |name: &str| checks.iter().any(|c| c.name == name) || (has_drain && name == DRAIN_CHECK);
        let mut unknown: Vec<String> =
            excluded.iter().filter(|name| !known(name)).map(|name| (*name).to_owned()).collect();
        unknown.sort();

        let to_run: Vec<Arc<Check>> =
            checks.iter().filter(|c| !excluded.contains(c.name.as_str())).cloned().collect();
        let mut outcomes = run_round(&to_run).await.into_iter();

        let mut results = Vec::with_capacity(checks.len() + 1);
        for check in &checks {
            let outcome = if excluded.contains(check.name.as_str()) {
                CheckOutcome::Excluded
            } else {
                // `run_round` returns one outcome per check of `to_run`, in
                // order, and `to_run` is `checks` less the excluded ones.
                outcomes.next().expect("one outcome per check run")
            };
            if let CheckOutcome::Failed(reason) = &outcome {
                tracing::debug!(check = %check.name, %reason, endpoint = endpoint.label(), "health check failed");
            }
            results.push(CheckResult::new(check.name.clone(), outcome));
        }
        assert!(outcomes.next().is_none(), "every outcome was consumed");

        if has_drain {
            let outcome = if excluded.contains(DRAIN_CHECK) {
                CheckOutcome::Excluded
            } else if self.is_ready() {
                CheckOutcome::Ok
            } else {
                CheckOutcome::Failed("draining".to_owned())
            };
            results.push(CheckResult::new(DRAIN_CHECK.to_owned(), outcome));
        }
        Report::new(endpoint, results, unknown)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Check>>> {
        // Nothing panics while the lock is held (pushes and retains of
        // `Arc`s), but a poisoned list is still a valid list: go on with it.
        self.shared.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Aborts the task when dropped: the round's checks die with the round.
struct AbortOnDrop(JoinHandle<Result<(), String>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run `checks` concurrently; one outcome per check, in order.
async fn run_round(checks: &[Arc<Check>]) -> Vec<CheckOutcome> {
    let start = Instant::now();
    let mut tasks: Vec<AbortOnDrop> = checks
        .iter()
        .map(|check| {
            let run = Arc::clone(&check.run);
            // Call `run` on the task too: a check whose closure panics before
            // returning its future fails like one whose future panics.
            AbortOnDrop(tokio::spawn(async move { run().await }))
        })
        .collect();

    let mut outcomes = Vec::with_capacity(checks.len());
    for (check, task) in checks.iter().zip(tasks.iter_mut()) {
        // `add` bounds the timeout to MAX_CHECK_TIMEOUT, so this never
        // overflows.
        let deadline = start + check.timeout;
        let outcome = match timeout_at(deadline, &mut task.0).await {
            Ok(Ok(Ok(()))) => CheckOutcome::Ok,
            Ok(Ok(Err(reason))) => CheckOutcome::Failed(reason),
            Ok(Err(join)) if join.is_panic() => CheckOutcome::Failed("panicked".to_owned()),
            Ok(Err(_)) => CheckOutcome::Failed("cancelled".to_owned()),
            Err(_elapsed) => {
                task.0.abort();
                CheckOutcome::Failed(format!("timeout after {:?}", check.timeout))
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn names_are_validated() {
        let checks = HealthChecks::new();
        for bad in ["", "a b", "é", "x\n", &"a".repeat(MAX_NAME_LEN + 1)] {
            assert_eq!(
                checks.add(bad, CheckKind::Both, ok),
                Err(AddCheckError::InvalidName(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(checks.add("drain", CheckKind::Both, ok), Err(AddCheckError::Reserved("drain".into())));
        assert!(checks.add("etcd/v3_ok-1.x", CheckKind::Both, ok).is_ok());
        assert_eq!(
            checks.add("etcd/v3_ok-1.x", CheckKind::Liveness, ok),
            Err(AddCheckError::Duplicate("etcd/v3_ok-1.x".into()))
        );
        assert_eq!(checks.names(), ["etcd/v3_ok-1.x"]);
    }

    #[test]
    fn timeouts_are_bounded() {
        let checks = HealthChecks::new();
        for bad in [Duration::ZERO, MAX_CHECK_TIMEOUT + Duration::from_nanos(1), Duration::MAX] {
            assert_eq!(
                checks.add_with_timeout("a", CheckKind::Both, bad, ok),
                Err(AddCheckError::TimeoutOutOfRange(bad))
            );
        }
        assert!(checks.add_with_timeout("a", CheckKind::Both, MAX_CHECK_TIMEOUT, ok).is_ok());
    }

    #[test]
    fn the_list_is_bounded_and_remove_frees_a_slot() {
        let checks = HealthChecks::new();
        for i in 0..MAX_CHECKS {
            assert!(checks.add(format!("c{i}"), CheckKind::Both, ok).is_ok());
        }
        assert_eq!(checks.add("one-more", CheckKind::Both, ok), Err(AddCheckError::TooMany));
        assert!(checks.remove("c0"));
        assert!(!checks.remove("c0"));
        assert!(checks.add("one-more", CheckKind::Both, ok).is_ok());
    }

    #[test]
    fn kinds_select_endpoints() {
        use CheckKind::*;
        use Endpoint::*;
        assert!(Liveness.counts_for(Livez) && !Liveness.counts_for(Readyz) && Liveness.counts_for(Healthz));
        assert!(
            !Readiness.counts_for(Livez) && Readiness.counts_for(Readyz) && Readiness.counts_for(Healthz)
        );
        assert!(Both.counts_for(Livez) && Both.counts_for(Readyz) && Both.counts_for(Healthz));
    }
}
