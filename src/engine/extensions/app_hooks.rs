//! Decisions behind the v1.23 extension callbacks that application extensions (a
//! `struct libwebsocket_extension` with its own callback) receive, kept free of I/O and
//! of C so they can be tested here; `io::extensions` makes the calls.
//!
//! * [`check_tokens`]: what an extension handed back through `struct lws_tokens`
//!   (PACKET_RX_PREPARSE, PACKET_TX_PRESEND, FLUSH_PENDING_TX, PAYLOAD_RX/TX), checked
//!   before a byte of it is read.
//! * [`SpillGuard`]: bounds the "call again, I have more" loops (a callback returning
//!   more than 0) so a misbehaving extension cannot hang the service loop.
//! * [`writeable_gate`]: IS_WRITEABLE's answer.
//! * [`do_send_result`]: PACKET_TX_DO_SEND's answer.
//! * [`TxUnits`]: boundaries of what was queued for the socket, so PACKET_TX_DO_SEND
//!   sees the same units v1.23 handed it (one frame, one handshake reply, one spill)
//!   although the library coalesces writes into one buffer.

use std::collections::VecDeque;

/// Rounds of "more to come" a spill loop runs in one go before it yields.
pub const MAX_SPILL_ROUNDS: u32 = 1024;
/// Consecutive rounds in which an extension asks to be called again without producing
/// anything, before it is considered stuck.
pub const MAX_EMPTY_ROUNDS: u32 = 16;

/// What an extension left in `struct lws_tokens` after its callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokens {
    /// Same pointer and length: the bytes (possibly edited in place) stay where they were.
    Unchanged,
    /// Nothing to pass on (length 0, any pointer, or NULL with length 0).
    Empty,
    /// Same pointer, shorter: the first `n` bytes of the original buffer.
    Shortened(usize),
    /// Another buffer (the extension's own) of `n` bytes.
    Elsewhere(usize),
}

/// Tokens that cannot be used; the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadTokens {
    /// `token` is NULL but `token_len` is not 0.
    NullWithLength(i32),
    /// `token_len` is negative.
    NegativeLength(i32),
    /// `token_len` is beyond any plausible size.
    TooLong { len: usize, cap: usize },
    /// Same pointer, but longer than the buffer the library handed out.
    GrewInPlace { len: usize, room: usize },
}

impl std::fmt::Display for BadTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BadTokens::NullWithLength(n) => write!(f, "NULL token with token_len {n}"),
            BadTokens::NegativeLength(n) => write!(f, "negative token_len {n}"),
            BadTokens::TooLong { len, cap } => {
                write!(f, "token_len {len} exceeds the limit of {cap} bytes")
            }
            BadTokens::GrewInPlace { len, room } => write!(
                f,
                "token_len {len} runs past the {room}-byte buffer the library passed"
            ),
        }
    }
}

/// Classifies the tokens an extension returned. `before` is (address, length) as the
/// library filled them in, `after` as the extension left them; `room` is how many bytes
/// are valid at the original address, `cap` the largest length believed from a buffer
/// elsewhere. Addresses are compared, never dereferenced.
pub fn check_tokens(
    before: (usize, i32),
    after: (usize, i32),
    room: usize,
    cap: usize,
) -> Result<Tokens, BadTokens> {
    let (ptr, len) = after;
    if len < 0 {
        return Err(BadTokens::NegativeLength(len));
    }
    if ptr == 0 {
        return if len == 0 {
            Ok(Tokens::Empty)
        } else {
            Err(BadTokens::NullWithLength(len))
        };
    }
    let n = len as usize;
    if n == 0 {
        return Ok(Tokens::Empty);
    }
    if ptr == before.0 && before.0 != 0 {
        if n > room {
            return Err(BadTokens::GrewInPlace { len: n, room });
        }
        return Ok(if len == before.1 {
            Tokens::Unchanged
        } else {
            Tokens::Shortened(n)
        });
    }
    if before.0 != 0 && ptr > before.0 && ptr - before.0 < room {
        // Further into the buffer the library passed: it must still end inside it.
        let left = room - (ptr - before.0);
        if n > left {
            return Err(BadTokens::GrewInPlace { len: n, room: left });
        }
        return Ok(Tokens::Elsewhere(n));
    }
    if n > cap {
        return Err(BadTokens::TooLong { len: n, cap });
    }
    Ok(Tokens::Elsewhere(n))
}

/// Where a spill loop stands after one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spill {
    /// Some extension has more: call again.
    Again,
    /// Nobody has more.
    Done,
    /// Asked again and again without producing a byte: the extension is stuck.
    Stalled,
    /// The round budget is used up: continue at the next opportunity.
    Budget,
}

/// Counts the rounds of one spill loop.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpillGuard {
    rounds: u32,
    empty: u32,
}

impl SpillGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Call after each round: `more` when a callback returned > 0, `produced` when the
    /// round yielded bytes.
    pub fn after_round(&mut self, more: bool, produced: bool) -> Spill {
        if !more {
            return Spill::Done;
        }
        self.rounds += 1;
        if produced {
            self.empty = 0;
        } else {
            self.empty += 1;
            if self.empty >= MAX_EMPTY_ROUNDS {
                return Spill::Stalled;
            }
        }
        if self.rounds >= MAX_SPILL_ROUNDS {
            return Spill::Budget;
        }
        Spill::Again
    }
}

/// What IS_WRITEABLE's answers (the largest over the active
/// extensions, negatives counting as 0, as v1.23 took them) ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteableGate {
    /// 0 (or anything but 1 and 2): spill what the extensions hold first, then call
    /// WRITEABLE once that is out.
    SpillFirst,
    /// 2: call WRITEABLE without spilling.
    Deliver,
    /// 1: call WRITEABLE without spilling, and keep the request armed so it comes
    /// again (v1.23 left POLLOUT set).
    DeliverAndRearm,
}

pub fn writeable_gate(max_answer: i32) -> WriteableGate {
    match max_answer {
        1 => WriteableGate::DeliverAndRearm,
        2 => WriteableGate::Deliver,
        _ => WriteableGate::SpillFirst,
    }
}

/// PACKET_TX_DO_SEND's answer for a unit of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoSend {
    /// < 0: fatal error.
    Fatal,
    /// 0: the library sends the bytes itself.
    Declined,
    /// Above 0: the extension sent (or took charge of) this many bytes; more than the
    /// unit is clamped to it.
    Took(usize),
}

pub fn do_send_result(answer: i32, len: usize) -> DoSend {
    match answer {
        n if n < 0 => DoSend::Fatal,
        0 => DoSend::Declined,
        n => DoSend::Took((n as usize).min(len)),
    }
}

/// One run of bytes queued for the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub len: usize,
    /// Offered to PACKET_TX_DO_SEND (false for bytes queued before the extensions
    /// became active, which v1.23 had already sent raw).
    pub offer: bool,
}

/// The units making up a connection's output queue, oldest first. Their lengths add up
/// to the queued bytes.
#[derive(Clone, Debug, Default)]
pub struct TxUnits {
    q: VecDeque<Unit>,
}

impl TxUnits {
    pub fn push(&mut self, len: usize, offer: bool) {
        if len > 0 {
            self.q.push_back(Unit { len, offer });
        }
    }

    pub fn front(&self) -> Option<Unit> {
        self.q.front().copied()
    }

    /// `n` bytes of the oldest unit left the queue.
    pub fn consume_front(&mut self, n: usize) {
        if let Some(u) = self.q.front_mut() {
            u.len -= n.min(u.len);
            if u.len == 0 {
                self.q.pop_front();
            }
        }
    }

    pub fn total(&self) -> usize {
        self.q.iter().map(|u| u.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Makes the units cover exactly `queued` bytes: bytes the units do not know of
    /// (queued before tracking began) become an unoffered unit in front; units beyond
    /// the queue (it was emptied elsewhere) are dropped from the front.
    pub fn reconcile(&mut self, queued: usize) {
        let total = self.total();
        if total < queued {
            self.q.push_front(Unit {
                len: queued - total,
                offer: false,
            });
        } else {
            let mut extra = total - queued;
            while extra > 0 {
                let Some(u) = self.q.front_mut() else { break };
                let k = extra.min(u.len);
                u.len -= k;
                extra -= k;
                if u.len == 0 {
                    self.q.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUF: usize = 0x1000;

    #[test]
    fn tokens_unchanged_shortened_empty() {
        assert_eq!(
            check_tokens((BUF, 10), (BUF, 10), 10, 100),
            Ok(Tokens::Unchanged)
        );
        assert_eq!(
            check_tokens((BUF, 10), (BUF, 4), 10, 100),
            Ok(Tokens::Shortened(4))
        );
        assert_eq!(
            check_tokens((BUF, 10), (BUF, 0), 10, 100),
            Ok(Tokens::Empty)
        );
        assert_eq!(check_tokens((BUF, 10), (0, 0), 10, 100), Ok(Tokens::Empty));
        assert_eq!(check_tokens((0, 0), (0, 0), 0, 100), Ok(Tokens::Empty));
        assert_eq!(
            check_tokens((BUF, 10), (0x9000, 0), 10, 100),
            Ok(Tokens::Empty)
        );
    }

    #[test]
    fn tokens_elsewhere_within_cap() {
        assert_eq!(
            check_tokens((BUF, 10), (0x9000, 100), 10, 100),
            Ok(Tokens::Elsewhere(100))
        );
        // A NULL start (spill rounds) filled in by the extension.
        assert_eq!(
            check_tokens((0, 0), (0x9000, 7), 0, 100),
            Ok(Tokens::Elsewhere(7))
        );
        // Growing in place is refused, even within the cap.
        assert_eq!(
            check_tokens((BUF, 10), (BUF, 11), 10, 100),
            Err(BadTokens::GrewInPlace { len: 11, room: 10 })
        );
        // Further into the same buffer: must end inside it.
        assert_eq!(
            check_tokens((BUF, 10), (BUF + 4, 6), 10, 100),
            Ok(Tokens::Elsewhere(6))
        );
        assert_eq!(
            check_tokens((BUF, 10), (BUF + 4, 7), 10, 100),
            Err(BadTokens::GrewInPlace { len: 7, room: 6 })
        );
        // Same length, room to spare: fine.
        assert_eq!(
            check_tokens((BUF, 10), (BUF, 12), 16, 100),
            Ok(Tokens::Shortened(12))
        );
    }

    #[test]
    fn bad_tokens() {
        assert_eq!(
            check_tokens((BUF, 10), (0, 5), 10, 100),
            Err(BadTokens::NullWithLength(5))
        );
        assert_eq!(
            check_tokens((BUF, 10), (BUF, -1), 10, 100),
            Err(BadTokens::NegativeLength(-1))
        );
        assert_eq!(
            check_tokens((BUF, 10), (0x9000, i32::MAX), 10, 100),
            Err(BadTokens::TooLong {
                len: i32::MAX as usize,
                cap: 100
            })
        );
        assert!(BadTokens::NullWithLength(5).to_string().contains("NULL"));
    }

    #[test]
    fn spill_guard_done_and_again() {
        let mut g = SpillGuard::new();
        assert_eq!(g.after_round(true, true), Spill::Again);
        assert_eq!(g.after_round(false, true), Spill::Done);
        assert_eq!(g.after_round(false, false), Spill::Done);
    }

    #[test]
    fn spill_guard_stalls_on_empty_rounds() {
        let mut g = SpillGuard::new();
        for _ in 1..MAX_EMPTY_ROUNDS {
            assert_eq!(g.after_round(true, false), Spill::Again);
        }
        assert_eq!(g.after_round(true, false), Spill::Stalled);
        // Output in between resets the count.
        let mut g = SpillGuard::new();
        for i in 0..100 {
            assert_eq!(g.after_round(true, i % 5 == 0), Spill::Again);
        }
    }

    #[test]
    fn spill_guard_budget() {
        let mut g = SpillGuard::new();
        for _ in 1..MAX_SPILL_ROUNDS {
            assert_eq!(g.after_round(true, true), Spill::Again);
        }
        assert_eq!(g.after_round(true, true), Spill::Budget);
    }

    #[test]
    fn writeable_answers() {
        assert_eq!(writeable_gate(0), WriteableGate::SpillFirst);
        assert_eq!(writeable_gate(-1), WriteableGate::SpillFirst);
        assert_eq!(writeable_gate(3), WriteableGate::SpillFirst);
        assert_eq!(writeable_gate(1), WriteableGate::DeliverAndRearm);
        assert_eq!(writeable_gate(2), WriteableGate::Deliver);
    }

    #[test]
    fn do_send_answers() {
        assert_eq!(do_send_result(-1, 10), DoSend::Fatal);
        assert_eq!(do_send_result(0, 10), DoSend::Declined);
        assert_eq!(do_send_result(4, 10), DoSend::Took(4));
        assert_eq!(do_send_result(1000, 10), DoSend::Took(10));
    }

    #[test]
    fn units_track_the_queue() {
        let mut u = TxUnits::default();
        u.push(0, true);
        assert!(u.is_empty());
        u.push(5, true);
        u.push(3, true);
        assert_eq!(u.total(), 8);
        u.consume_front(2);
        assert_eq!(
            u.front(),
            Some(Unit {
                len: 3,
                offer: true
            })
        );
        u.consume_front(3);
        assert_eq!(
            u.front(),
            Some(Unit {
                len: 3,
                offer: true
            })
        );
        u.consume_front(99);
        assert!(u.is_empty());
        u.consume_front(1); // nothing left: no panic
    }

    #[test]
    fn units_reconcile() {
        let mut u = TxUnits::default();
        u.push(4, true);
        u.reconcile(10);
        assert_eq!(
            u.front(),
            Some(Unit {
                len: 6,
                offer: false
            })
        );
        assert_eq!(u.total(), 10);
        u.reconcile(3);
        assert_eq!(u.total(), 3);
        assert_eq!(
            u.front(),
            Some(Unit {
                len: 3,
                offer: true
            })
        );
        u.reconcile(0);
        assert!(u.is_empty());
    }
}
