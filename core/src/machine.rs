//! The machine contract.
//!
//! Every decision in vigil is made by a value that implements [`Machine`]:
//! a synchronous state machine that is fed inputs and time, and answers with
//! outputs and its next deadline. It never performs I/O itself. The same
//! machine runs under the simulator and under tokio; only the driver differs.
//!
//! # Driving a machine
//!
//! A driver loops:
//!
//! 1. Wait for the earliest of: an input (a message, a probe result, an
//!    operator command) and the deadline from [`Machine::poll_timeout`].
//! 2. Feed it: [`Machine::handle`] for an input, [`Machine::handle_timeout`]
//!    when the deadline has passed.
//! 3. **Drain [`Machine::poll_output`] until it returns `None`**, carrying out
//!    each output (send the message, publish the event, …).
//! 4. Ask [`Machine::poll_timeout`] again: any `handle*` call may move it.
//!
//! Every mutation must be followed by a complete drain of `poll_output`
//! before the next mutation. Machines `debug_assert!` this, and the
//! simulator runs every machine inside [`Checked`], which panics on any
//! breach of the contract, so a driver bug cannot hide.
//!
//! `now` must never go backwards between calls. `handle_timeout` is safe to
//! call early (nothing is due yet: nothing happens) or twice.

use crate::time::Instant;

/// A sans-IO state machine: inputs and time in, outputs and deadlines out.
///
/// Methods, in the order a driver uses them: [`handle`](Machine::handle) and
/// [`handle_timeout`](Machine::handle_timeout) mutate;
/// [`poll_output`](Machine::poll_output) drains effects (call until `None`
/// after every mutation); [`poll_timeout`](Machine::poll_timeout) says when
/// to call `handle_timeout` next (call after draining).
pub trait Machine {
    /// What a driver feeds in: messages, probe results, commands.
    type Input;
    /// What the machine asks its driver to do.
    type Output;

    /// Process one input that arrived at `now`.
    fn handle(&mut self, now: Instant, input: Self::Input);

    /// Time has passed: fire every deadline at or before `now`.
    ///
    /// Safe to call early or more than once for the same `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// The next instant at which [`handle_timeout`](Machine::handle_timeout)
    /// must be called, or `None` when nothing is scheduled.
    ///
    /// Call again after every mutation: the deadline may have moved.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next effect for the driver to carry out, or `None` when drained.
    ///
    /// Call until it returns `None` after every `handle*` call.
    #[must_use]
    fn poll_output(&mut self) -> Option<Self::Output>;
}

/// Wraps a machine and panics on any breach of the contract: a mutation
/// before the previous outputs were drained, `now` going backwards (driver
/// bugs), or a deadline still due right after `handle_timeout` fired it (a
/// machine bug: its driver would fire it again and again at one instant,
/// and time would never move). The simulator drives every machine through it; a panic here is
/// a driver bug, never a user error.
#[derive(Debug, Clone)]
pub struct Checked<M> {
    inner: M,
    last_now: Instant,
    undrained: bool,
    /// Set by `handle_timeout`, cleared by `handle`: the deadline after it
    /// must be later.
    fired_at: Option<Instant>,
}

impl<M> Checked<M> {
    /// Wrap `inner`.
    pub fn new(inner: M) -> Self {
        Checked { inner, last_now: Instant::ZERO, undrained: false, fired_at: None }
    }

    /// The wrapped machine.
    pub fn get(&self) -> &M {
        &self.inner
    }

    /// The wrapped machine, mutably. Mutations made through this reference
    /// bypass the contract checks (and, like an input, may make work due
    /// now).
    pub fn get_mut(&mut self) -> &mut M {
        self.fired_at = None;
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> M {
        self.inner
    }

    fn before_mutation(&mut self, now: Instant) {
        assert!(!self.undrained, "machine contract: handle* called before poll_output was drained to None");
        assert!(now >= self.last_now, "machine contract: now went backwards ({now} after {})", self.last_now);
        self.last_now = now;
        self.undrained = true;
    }
}

impl<M: Machine> Machine for Checked<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn handle(&mut self, now: Instant, input: M::Input) {
        self.before_mutation(now);
        self.fired_at = None;
        self.inner.handle(now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.before_mutation(now);
        self.fired_at = Some(now);
        self.inner.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.inner.poll_timeout();
        if let (Some(fired), Some(at)) = (self.fired_at, deadline) {
            assert!(
                at > fired,
                "machine contract: deadline {at} still due after handle_timeout({fired}) fired it (a busy loop)"
            );
        }
        deadline
    }

    fn poll_output(&mut self) -> Option<M::Output> {
        let out = self.inner.poll_output();
        if out.is_none() {
            self.undrained = false;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Echoes every input once.
    #[derive(Default)]
    struct Echo(VecDeque<u32>);

    impl Machine for Echo {
        type Input = u32;
        type Output = u32;
        fn handle(&mut self, _now: Instant, input: u32) {
            self.0.push_back(input);
        }
        fn handle_timeout(&mut self, _now: Instant) {}
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn poll_output(&mut self) -> Option<u32> {
            self.0.pop_front()
        }
    }

    #[test]
    fn drained_machine_accepts_next_input() {
        let mut m = Checked::new(Echo::default());
        m.handle(Instant::ZERO, 1);
        assert_eq!(m.poll_output(), Some(1));
        assert_eq!(m.poll_output(), None);
        m.handle(Instant::from_secs(1), 2);
        assert_eq!(m.poll_output(), Some(2));
    }

    /// Asks to be woken at a fixed instant, and never lets it pass.
    struct Stuck(Instant);

    impl Machine for Stuck {
        type Input = ();
        type Output = ();
        fn handle(&mut self, _now: Instant, _input: ()) {}
        fn handle_timeout(&mut self, _now: Instant) {}
        fn poll_timeout(&self) -> Option<Instant> {
            Some(self.0)
        }
        fn poll_output(&mut self) -> Option<()> {
            None
        }
    }

    #[test]
    #[should_panic(expected = "busy loop")]
    fn a_deadline_still_due_after_its_timeout_fired_panics() {
        let mut m = Checked::new(Stuck(Instant::from_secs(1)));
        assert_eq!(m.poll_timeout(), Some(Instant::from_secs(1)), "due later: fine");
        m.handle_timeout(Instant::from_secs(1));
        assert_eq!(m.poll_output(), None);
        let _ = m.poll_timeout();
    }

    #[test]
    fn a_deadline_due_now_after_an_input_is_fine() {
        let mut m = Checked::new(Stuck(Instant::from_secs(1)));
        m.handle(Instant::from_secs(1), ());
        assert_eq!(m.poll_output(), None);
        assert_eq!(m.poll_timeout(), Some(Instant::from_secs(1)), "an input may make work due now");
    }

    #[test]
    #[should_panic(expected = "drained")]
    fn undrained_machine_panics() {
        let mut m = Checked::new(Echo::default());
        m.handle(Instant::ZERO, 1);
        m.handle(Instant::ZERO, 2);
    }

    #[test]
    #[should_panic(expected = "backwards")]
    fn time_going_backwards_panics() {
        let mut m = Checked::new(Echo::default());
        m.handle_timeout(Instant::from_secs(2));
        assert_eq!(m.poll_output(), None);
        m.handle_timeout(Instant::from_secs(1));
    }
}
