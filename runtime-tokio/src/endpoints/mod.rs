//! Health endpoints for a user's tokio service: `/livez`, `/readyz` and
//! `/healthz`, following the Kubernetes probe conventions and
//! kube-apiserver's output format.
//!
//! # Why
//!
//! vigil's monitor (and Kubernetes, and any load balancer) asks a service
//! whether it is well over HTTP. The service knows what "well" means for it:
//! the checks are the user's; this module gives them the conventions every
//! prober already understands, so the same service answers vigil and an
//! orchestrator alike.
//!
//! # Use
//!
//! ```no_run
//! use std::time::Duration;
//! use vigil_tokio::endpoints::{CheckKind, HealthChecks, serve};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let checks = HealthChecks::new();
//! checks.add("event-loop", CheckKind::Liveness, || async { Ok::<(), String>(()) })?;
//! checks.add_with_timeout("db", CheckKind::Readiness, Duration::from_millis(300), || async {
//!     // ping the database here
//!     Ok::<(), std::io::Error>(())
//! })?;
//! let (addr, server) = serve("0.0.0.0:8081".parse()?, checks.clone()).await?;
//! println!("probes on {addr}");
//! // ... initialise the service ...
//! checks.mark_started();
//! // ... on SIGTERM: drain, give the balancers time to notice, then stop.
//! checks.set_ready(false);
//! tokio::time::sleep(Duration::from_secs(5)).await;
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! | state | `/livez` | `/readyz` | `/healthz` |
//! | --- | --- | --- | --- |
//! | before [`mark_started`](HealthChecks::mark_started) | 503 `starting` | 503 `starting` | 503 `starting` |
//! | started, all checks pass | 200 `ok` | 200 `ok` | 200 `ok` |
//! | a liveness check fails | 503 | 200 unless it is also a readiness check | 503 |
//! | a readiness check fails | 200 unless it is also a liveness check | 503 | 503 |
//! | drained ([`set_ready(false)`](HealthChecks::set_ready)) | 200 | 503 (`[-]drain failed: draining`) | 503 |
//!
//! - **Checks** are named async closures answering `Ok(())` or
//!   `Err(reason)`, each counting for liveness, readiness or both
//!   ([`CheckKind`]). Every request runs the selected checks concurrently,
//!   each on its own task with its own timeout (default
//!   [`DEFAULT_CHECK_TIMEOUT`], 1 s): a check that has not answered by then
//!   fails with `timeout after 1s` (its timeout), and one that panics fails
//!   with `panicked`. A request therefore takes at most its slowest check's
//!   timeout. Nothing is cached: each probe is a fresh verdict.
//! - **Startup gate.** Until `mark_started()`, every endpoint answers
//!   503 `starting` without running any check: the startup-probe semantics
//!   of Kubernetes, where liveness and readiness do not count before startup
//!   is over. Point the orchestrator's startup probe at `/livez` with a
//!   `failureThreshold × periodSeconds` that covers the slowest startup, so
//!   the liveness probe (same path) only begins once it has passed. A service
//!   with no startup phase calls `mark_started()` right away.
//! - **Drain switch.** `set_ready(false)` fails the built-in readiness check
//!   [`DRAIN_CHECK`] (`drain`), so `/readyz` answers 503 while `/livez`
//!   stays 200: traffic goes away and nobody restarts the process. Like any
//!   check it can be named in `?exclude=` (as kube-apiserver's `shutdown`
//!   check can).
//! - **Bodies** are plain text, as kube-apiserver writes them: `ok` on
//!   success; with `?verbose`, or on any failure, one line per check
//!   (`[+]name ok`, `[+]name excluded: ok`, `[-]name failed: reason`), then
//!   `livez check passed` or `livez check failed`. Unlike kube-apiserver,
//!   which withholds reasons from the response, the reason is printed:
//!   vigil's monitor and operators read it. Reasons are put on one line and
//!   cut to [`MAX_REASON_LEN`] bytes.
//! - **Queries**: `?verbose` (present with any value), `?exclude=name`
//!   (repeatable, up to [`MAX_EXCLUDES`]); an excluded check does not run
//!   and counts as passing; a name that matches nothing adds a
//!   `warn: some health checks cannot be excluded: no matches for "name"`
//!   line and changes nothing else.
//! - Other paths get 404 and other methods 405 (axum); `HEAD` is answered
//!   like `GET` without a body. No request can panic the server: bad query
//!   strings decode lossily, a check's panic is caught on its task.
//!
//! # Limits
//!
//! The server is vigil's shared one ([`crate::server`]), with
//! [`HttpLimits`](crate::server::HttpLimits) ([`serve_with`]; [`serve`]
//! takes the defaults): a head must arrive within 5 s (also the idle
//! keep-alive timeout), a request finish within 30 s (a check round
//! included), at most 512 connections and 128 requests at once. Its own
//! refusals are plain text, like the reports:
//!
//! | status | when |
//! | --- | --- |
//! | 404 / 405 | another path / another method (axum) |
//! | 408 | the request (its check round included) took over `request_timeout` |
//! | 414 | a request target over `max_uri_bytes` (4 KiB) |
//! | 503 | a probe answer (a check failed, not started, draining), or `max_concurrent_requests` in progress |
//! | 400 / 431, no body | what hyper's parser refuses itself (see [`crate::server`]) |

mod checks;
mod report;
mod router;
mod server;

pub use checks::{
    AddCheckError, CheckKind, DEFAULT_CHECK_TIMEOUT, DRAIN_CHECK, HealthChecks, MAX_CHECK_TIMEOUT,
    MAX_CHECKS, MAX_NAME_LEN,
};
pub use report::{CheckOutcome, CheckResult, Endpoint, MAX_REASON_LEN, Report};
pub use router::MAX_EXCLUDES;
pub(crate) use server::serve_router;
pub use server::{HealthServer, serve, serve_with};
