//! Connection deadlines in a min-heap with lazy deletion: setting a timeout is
//! O(log n), checking is O(1) when nothing is due, and no pass ever walks every
//! connection (the original scanned all fds once a second).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Why a connection waits with a deadline: the values of v1.23's `enum pending_timeout`
/// (`libwebsocket_set_timeout` takes them; the application may pass others, which are
/// kept as given). capi checks its C mirror of the enum against these.
pub mod pending_timeout {
    /// No timeout pending (clears one).
    pub const NO_PENDING_TIMEOUT: u32 = 0;
    /// Client: waiting for the proxy's answer to CONNECT.
    pub const AWAITING_PROXY_RESPONSE: u32 = 1;
    /// Client: waiting for the name lookup and the TCP connect.
    pub const AWAITING_CONNECT_RESPONSE: u32 = 2;
    /// Server: waiting for the client's request head (v1.23 defined it, unused).
    pub const ESTABLISH_WITH_SERVER: u32 = 3;
    /// Client: waiting for the server's response to the upgrade request.
    pub const AWAITING_SERVER_RESPONSE: u32 = 4;
    /// Waiting for a pong (unused by the library itself).
    pub const AWAITING_PING: u32 = 5;
    /// Closing: waiting for the close handshake and the flush to finish.
    pub const CLOSE_ACK: u32 = 6;
    /// Client: a connection an extension claimed (CAN_PROXY_CLIENT_CONNECTION).
    pub const AWAITING_EXTENSION_CONNECT_RESPONSE: u32 = 7;
    /// Client: connected, sending the upgrade request (v1.23's; this library goes from
    /// AWAITING_CONNECT_RESPONSE to AWAITING_SERVER_RESPONSE).
    pub const SENT_CLIENT_HANDSHAKE: u32 = 8;
    /// Server: waiting for the TLS handshake.
    pub const SSL_ACCEPT: u32 = 9;
}

/// A deadline for connection `slot`; `stamp` tells stale entries from the live one.
/// Kept to 12 bytes (centisecond resolution, 497 days of range): a heap entry per
/// connection is part of the per-connection memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    pub at_cs: u32,
    pub slot: u32,
    pub stamp: u32,
}

impl Deadline {
    /// A deadline `at_ms` milliseconds after the clock's start (rounded up to 10 ms).
    pub fn at(at_ms: u64, slot: u32, stamp: u32) -> Deadline {
        Deadline {
            at_cs: at_ms.div_ceil(10).min(u64::from(u32::MAX)) as u32,
            slot,
            stamp,
        }
    }
}

/// Capacity (entries, 12 bytes each) the heap keeps however empty it gets: enough for
/// the stale handshake entries between two compactions of a busy server (see
/// `Context::set_timeout`), so steady handshaking allocates nothing here.
pub const HEAP_KEEP: usize = 4096;

#[derive(Default, Debug)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl TimerHeap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Deadline) {
        self.heap.push(Reverse(d));
    }

    /// Earliest pending deadline (possibly stale).
    pub fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|r| u64::from(r.0.at_cs) * 10)
    }

    /// Removes and returns one entry due at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Deadline> {
        if u64::from(self.heap.peek()?.0.at_cs) * 10 <= now_ms {
            self.heap.pop().map(|r| r.0)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops stale entries when the heap has grown far beyond the live count. In place:
    /// the storage is kept (a busy server compacts every thousand or so handshakes, and
    /// would otherwise free and regrow it each time).
    pub fn compact(&mut self, is_live: impl Fn(&Deadline) -> bool) {
        let mut v = std::mem::take(&mut self.heap).into_vec();
        v.retain(|r| is_live(&r.0));
        self.heap = BinaryHeap::from(v);
    }

    /// Gives memory back once most entries have expired, above [`HEAP_KEEP`] entries
    /// of capacity (below it, shrinking and regrowing would be churn for nothing).
    pub fn shrink_if_sparse(&mut self) {
        if self.heap.capacity() > HEAP_KEEP && self.heap.len() * 4 < self.heap.capacity() {
            self.heap.shrink_to((self.heap.len() * 2).max(HEAP_KEEP));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn due_in_order() {
        let mut t = TimerHeap::new();
        t.push(Deadline::at(30, 1, 0));
        t.push(Deadline::at(10, 2, 0));
        t.push(Deadline::at(20, 3, 0));
        assert_eq!(t.next_at(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25).map(|d| d.slot), Some(2));
        assert_eq!(t.pop_due(25).map(|d| d.slot), Some(3));
        assert_eq!(t.pop_due(25), None);
        t.compact(|d| d.slot != 1);
        assert!(t.is_empty());
    }

    #[test]
    fn compaction_keeps_storage_and_order() {
        let mut t = TimerHeap::new();
        for i in 0..3000u32 {
            t.push(Deadline::at(5000 + u64::from(i * 7 % 3000), i, 0));
        }
        let cap = t.heap.capacity();
        t.compact(|d| d.slot % 100 == 0);
        assert_eq!(t.len(), 30);
        assert_eq!(t.heap.capacity(), cap);
        t.shrink_if_sparse();
        assert_eq!(t.heap.capacity(), cap, "below HEAP_KEEP: kept");
        let mut last = 0;
        while let Some(d) = t.pop_due(u64::MAX / 20) {
            assert!(d.at_cs >= last && d.slot % 100 == 0);
            last = d.at_cs;
        }
        for i in 0..20000u32 {
            t.push(Deadline::at(u64::from(i), i, 0));
        }
        while t.pop_due(19000).is_some() {}
        t.shrink_if_sparse();
        assert!(t.heap.capacity() >= HEAP_KEEP && t.heap.capacity() < 20000);
    }
}
