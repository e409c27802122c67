//! # vigil-sim
//!
//! A seeded discrete-event simulator for vigil's state machines.
//!
//! A run is a pure function of `(scenario, seed)`: the same inputs give the
//! same sequence of events and the same [trace hash](trace::TraceHash), on
//! any machine. The simulator owns time (an event queue ordered by
//! `(time, seq)`), the network (latency, loss, duplication, reordering,
//! partitions) and the hosts (crash, restart, pause, clock skew and drift);
//! the machines it drives are the very ones `vigil-tokio` runs for real.
//!
//! # Layout
//!
//! Observations flow one way, each layer importing only those below it:
//!
//! - [`scenario`]: the scenario model, its loader and writer; and [`text`],
//!   formatting helpers (durations, faults, recovery outputs in words);
//! - [`kernel`]: the event queue, the event enum, the trace hash and the
//!   step budget;
//! - [`world`]: [`Simulation`], one file per simulated concern (hosts,
//!   network, applications, faults, platform, load) and the
//!   [`Observations`](world::Observations) they record;
//! - [`check`]: the checkers, one module per capability, judging the
//!   observations against the scenario's expectations;
//! - [`report`]: the report and the [`replay`] timeline;
//! - [`run`](mod@run), [`sweep`], [`shrink`]: whole runs, many seeds, minimal
//!   failing scenarios, over all of the above.
//!
//! Each new capability adds its simulated side in `world/` and its checkers
//! in `check/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod scenario;

pub mod check;
pub mod kernel;
pub mod report;
pub mod run;
pub mod shrink;
pub mod sweep;
pub mod text;
pub mod world;

pub use kernel::{queue, trace};
pub use report::Report;
pub use report::replay;
pub use run::{Divergence, check_determinism, run};
pub use scenario::{Scenario, ScenarioError, load_file, parse};
pub use world::{Simulation, host, net};
