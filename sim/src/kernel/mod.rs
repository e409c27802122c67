//! The discrete-event kernel: simulated time, the event queue, the trace
//! hash and the step and memory budgets, apart from what the events mean.
//!
//! `Kernel::next` is the top of every step: it pops the earliest event
//! (ordered by `(time, seq)`, [`queue`]), moves time to it, counts it
//! against the scenario's step budget and folds it into the
//! [trace hash](trace::TraceHash), and halts the run when more events are
//! pending than the memory budget allows (`max_pending_events`): the step
//! budget bounds the events processed, not those waiting, and a valid file
//! whose heartbeats outpace the network latency fills memory long before
//! it spends its steps. Messages a paused host holds count as pending: they
//! are events postponed. The world (`crate::world`) owns the
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
    /// More events pending than the memory budget allowed.
    MemoryBudget {
        /// Events pending (queued, or held by paused hosts).
        pending: u64,
        /// Their approximate size in memory, in bytes.
        bytes: u64,
        /// Simulated time reached.
        at: Instant,
    },
}

/// Approximate memory of `pending` pending events, in bytes: one queue
/// entry each (time, sequence number, event).
fn pending_bytes(pending: u64) -> u64 {
    let entry = std::mem::size_of::<Event>() + std::mem::size_of::<(Instant, u64)>();
    pending.saturating_mul(entry as u64)
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
    /// The memory budget: events pending (queued or held) at most.
    max_pending: u64,
    /// Messages held outside the queue by paused hosts.
    held: u64,
    events: u64,
    trace: TraceHash,
    history: Option<Vec<(Instant, u64)>>,
    halted: Option<Halt>,
}

impl Kernel {
    /// A kernel at time zero, its queue sized for `capacity` pending
    /// events, running until `end` or `max_events` events, halting when
    /// more than `max_pending` are pending.
    pub(crate) fn new(capacity: usize, end: Instant, max_events: u64, max_pending: u64) -> Self {
        Kernel {
            queue: EventQueue::with_capacity(capacity),
            now: Instant::ZERO,
            end,
            max_events,
            max_pending,
            held: 0,
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

    /// A paused host holds one more message (it counts as pending).
    pub(crate) fn hold(&mut self) {
        self.held += 1;
    }

    /// A host let go of `n` held messages (delivered or lost).
    pub(crate) fn release(&mut self, n: usize) {
        self.held = self.held.saturating_sub(n as u64);
    }

    /// The next event, with time moved to it, counted and folded into the
    /// trace hash; `None` when the run is over: nothing is pending, the
    /// next event is past the end (time stops at the end), or the step
    /// budget or the memory budget is spent (the run halts). `next_call` is the id the load
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
        let pending = self.queue.len() as u64 + self.held;
        if pending > self.max_pending {
            self.halted = Some(Halt::MemoryBudget { pending, bytes: pending_bytes(pending), at: self.now });
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

#[cfg(test)]
mod tests {
    use vigil_core::{Duration, NodeId};

    use super::*;

    fn kernel(max_pending: u64) -> Kernel {
        Kernel::new(4, Instant::ZERO + Duration::from_secs(10), u64::MAX, max_pending)
    }

    #[test]
    fn more_pending_than_the_budget_halts_the_run() {
        let mut k = kernel(2);
        for _ in 0..2 {
            k.schedule(Instant::ZERO, Event::Timer { node: NodeId(1) });
        }
        // At the budget: runs.
        assert!(k.next(0).is_some());
        k.schedule(Instant::ZERO, Event::Timer { node: NodeId(1) });
        k.schedule(Instant::ZERO, Event::Timer { node: NodeId(1) });
        assert!(k.next(0).is_none());
        match k.halted() {
            Some(Halt::MemoryBudget { pending: 3, bytes, .. }) => assert!(bytes >= 3 * 16),
            other => panic!("expected the memory budget, got {other:?}"),
        }
    }

    #[test]
    fn messages_held_by_paused_hosts_count_until_released() {
        let mut k = kernel(2);
        k.schedule(Instant::ZERO, Event::Timer { node: NodeId(1) });
        k.hold();
        k.hold();
        k.release(2);
        assert!(k.next(0).is_some(), "released messages no longer count");
        k.schedule(Instant::ZERO, Event::Timer { node: NodeId(1) });
        k.hold();
        k.hold();
        assert!(k.next(0).is_none());
        assert!(matches!(k.halted(), Some(Halt::MemoryBudget { pending: 3, .. })));
    }
}
