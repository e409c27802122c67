//! The per-sender replay window: the highest sequence number seen in the
//! sender's newest session, and a bitmap of the 64 numbers below it (the
//! sliding window of IPsec, RFC 4303 §3.4.3, and WireGuard).

/// How far behind the highest sequence number a frame may arrive and still
/// be accepted (once).
pub const WINDOW: u64 = 64;

/// One sender's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    session: u64,
    highest: u64,
    /// Bit `i`: `highest - i` was accepted.
    seen: u64,
}

/// Why a window refuses a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Accepted before, or older than the window (indistinguishable).
    Replayed,
    /// A session older than the sender's newest.
    OldSession {
        /// The session the window follows.
        current: u64,
    },
}

impl Window {
    /// The window after a sender's first accepted frame.
    pub(crate) fn new(session: u64, seq: u64) -> Window {
        Window { session, highest: seq, seen: 1 }
    }

    /// Whether `(session, seq)` may be accepted; changes nothing.
    pub(crate) fn check(&self, session: u64, seq: u64) -> Result<(), Refusal> {
        if session < self.session {
            return Err(Refusal::OldSession { current: self.session });
        }
        if session > self.session || seq > self.highest {
            return Ok(());
        }
        let behind = self.highest - seq;
        if behind >= WINDOW || self.seen & (1 << behind) != 0 {
            return Err(Refusal::Replayed);
        }
        Ok(())
    }

    /// Record `(session, seq)` as accepted; call only after
    /// [`check`](Window::check) passed (and the MAC did).
    pub(crate) fn accept(&mut self, session: u64, seq: u64) {
        if session > self.session {
            *self = Window::new(session, seq);
        } else if seq > self.highest {
            let ahead = seq - self.highest;
            self.seen = if ahead >= WINDOW { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.highest = seq;
        } else {
            self.seen |= 1 << (self.highest - seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_out_of_order_and_too_old() {
        let mut w = Window::new(1, 10);
        assert_eq!(w.check(1, 10), Err(Refusal::Replayed));
        assert_eq!(w.check(1, 11), Ok(()));
        w.accept(1, 12);
        assert_eq!(w.check(1, 11), Ok(()), "a gap is filled later, once");
        w.accept(1, 11);
        assert_eq!(w.check(1, 11), Err(Refusal::Replayed));
        w.accept(1, 12 + WINDOW);
        assert_eq!(w.check(1, 12), Err(Refusal::Replayed), "fell out of the window");
        assert_eq!(w.check(1, 13), Ok(()), "still inside, never seen");
        assert_eq!(w.check(0, 1000), Err(Refusal::OldSession { current: 1 }));
        assert_eq!(w.check(2, 0), Ok(()));
        w.accept(2, 0);
        assert_eq!(w.check(1, 1000), Err(Refusal::OldSession { current: 2 }));
        assert_eq!(w.check(2, 0), Err(Refusal::Replayed));
    }
}
