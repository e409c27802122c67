//! The discrete-event kernel: simulated time, the event queue, the trace
//! hash and the step budget, apart from what the events mean.
//!
//! `Kernel::next` is the top of every step: it pops the earliest event
//! (ordered by `(time, seq)`, [`queue`]), moves time to it, counts it
//! against the scenario's step budget and folds it into the
//! [trace hash](trace::TraceHash). The world (`crate::world`) owns the
//! hosts, the network and the applications, dispatches each event it gets
//! from here and schedules the events that follow. Keeping the two apart
//! keeps the determinism argument in one small place: whatever the world
//! grows into, a run is the sequence of events this kernel hands out.
//!
//! The kernel imports nothing from the world, the checkers or the report.

use vigil_core::Instant;

mod event;
pub mod queue;
pub mod trace;

pub(crate) use event::Event;

use queue::EventQueue;
use trace::TraceHash;

/// Why a run stopped before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// More events than the step budget allowed.
    StepBudget {
        /// Events processed.
        events: u64,
        /// Simulated time reached.
        at: Instant,
    },
}

/// Simulated time, pending events, the trace hash and the step budget of
/// one run.
pub(crate) struct Kernel {
    queue: EventQueue<Event>,
    /// Simulated time: that of the event being processed.
    now: Instant,
    /// The run's end: events after it are never processed.
    end: Instant,
    /// The step budget: events processed at most.
    max_events: u64,
    events: u64,
    trace: TraceHash,
    history: Option<Vec<(Instant, u64)>>,
    halted: Option<Halt>,
}

impl Kernel {
    /// A kernel at time zero, its queue sized for `capacity` pending
    /// events, running until `end` or `max_events` events.
    pub(crate) fn new(capacity: usize, end: Instant, max_events: u64) -> Self {
        Kernel {
            queue: EventQueue::with_capacity(capacity),
            now: Instant::ZERO,
            end,
            max_events,
            events: 0,
            trace: TraceHash::default(),
            history: None,
            halted: None,
        }
    }

    /// Record the trace hash after every event from now on.
    pub(crate) fn record_history(&mut self) {
        self.history = Some(Vec::new());
    }

    /// Schedule `event` at `at`.
    pub(crate) fn schedule(&mut self, at: Instant, event: Event) {
        self.queue.push(at, event);
    }

    /// The next event, with time moved to it, counted and folded into the
    /// trace hash; `None` when the run is over: nothing is pending, the
    /// next event is past the end (time stops at the end), or the step
    /// budget is spent (the run halts). `next_call` is the id the load
    /// generator's next call will take (an arrival's payload).
    pub(crate) fn next(&mut self, next_call: u64) -> Option<Event> {
        if self.halted.is_some() {
            return None;
        }
        let next = self.queue.peek_time()?;
        if next > self.end {
            self.now = self.end;
            return None;
        }
        if self.events >= self.max_events {
            self.halted = Some(Halt::StepBudget { events: self.events, at: self.now });
            return None;
        }
        let (time, event) = self.queue.pop()?;
        debug_assert!(time >= self.now, "event queue went back in time");
        self.now = time;
        self.events += 1;
        let (node, digest) = event.trace_key(next_call);
        self.trace.fold(time, node, event.kind(), digest);
        if let Some(h) = self.history.as_mut() {
            h.push((time, self.trace.value()));
        }
        Some(event)
    }

    /// Simulated time now.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Events processed so far.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// The trace hash so far.
    pub(crate) fn trace(&self) -> TraceHash {
        self.trace
    }

    /// The hash after each event, if recording was asked for.
    pub(crate) fn history(&self) -> Option<&[(Instant, u64)]> {
        self.history.as_deref()
    }

    /// Why the run stopped early, if it did.
    pub(crate) fn halted(&self) -> Option<Halt> {
        self.halted
    }
}
