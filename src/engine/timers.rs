//! Connection deadlines in a min-heap with lazy deletion: setting a timeout is
//! O(log n), checking is O(1) when nothing is due, and no pass ever walks every
//! connection (the original scanned all fds once a second).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A deadline for connection `slot`; `stamp` tells stale entries from the live one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    pub at_ms: u64,
    pub slot: u32,
    pub stamp: u32,
}

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
        self.heap.peek().map(|r| r.0.at_ms)
    }

    /// Removes and returns one entry due at or before `now_ms`.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Deadline> {
        if self.heap.peek()?.0.at_ms <= now_ms {
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

    /// Drops stale entries when the heap has grown far beyond the live count.
    pub fn compact(&mut self, is_live: impl Fn(&Deadline) -> bool) {
        let v: Vec<_> = self.heap.drain().filter(|r| is_live(&r.0)).collect();
        self.heap = v.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn due_in_order() {
        let mut t = TimerHeap::new();
        t.push(Deadline {
            at_ms: 30,
            slot: 1,
            stamp: 0,
        });
        t.push(Deadline {
            at_ms: 10,
            slot: 2,
            stamp: 0,
        });
        t.push(Deadline {
            at_ms: 20,
            slot: 3,
            stamp: 0,
        });
        assert_eq!(t.next_at(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(25).map(|d| d.slot), Some(2));
        assert_eq!(t.pop_due(25).map(|d| d.slot), Some(3));
        assert_eq!(t.pop_due(25), None);
        t.compact(|d| d.slot != 1);
        assert!(t.is_empty());
    }
}
