//! The event queue: a binary heap ordered by (time, sequence number).
//!
//! The sequence number breaks ties in insertion order, so two events due at the same instant run in
//! the order they were scheduled and a run never depends on how the heap happens to order equals.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

/// One scheduled item.
#[derive(Debug)]
struct Entry<T> {
    at: Duration,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A time-ordered queue of items, earliest first, ties in insertion order.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self { heap: BinaryHeap::new(), next_seq: 0 }
    }

    /// Schedules `item` at simulated time `at`.
    pub(crate) fn push(&mut self, at: Duration, item: T) {
        self.heap.push(Entry { at, seq: self.next_seq, item });
        self.next_seq += 1;
    }

    /// The time of the earliest item.
    pub(crate) fn peek_time(&self) -> Option<Duration> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns the earliest item.
    pub(crate) fn pop(&mut self) -> Option<(Duration, T)> {
        self.heap.pop().map(|e| (e.at, e.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut q = EventQueue::new();
        q.push(Duration::from_millis(5), "late");
        q.push(Duration::from_millis(1), "first");
        q.push(Duration::from_millis(1), "second");
        assert_eq!(q.peek_time(), Some(Duration::from_millis(1)));
        assert_eq!(q.pop(), Some((Duration::from_millis(1), "first")));
        assert_eq!(q.pop(), Some((Duration::from_millis(1), "second")));
        assert_eq!(q.pop(), Some((Duration::from_millis(5), "late")));
        assert_eq!(q.pop(), None);
    }
}
