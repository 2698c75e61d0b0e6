//! The event queue: a binary heap ordered by (time, sequence number).
//!
//! The sequence number breaks ties in insertion order, so two events due at the same instant run in
//! the order they were scheduled and a run never depends on how the heap happens to order equals.
//!
//! The heap holds small keys only; the items wait in a slab beside it. A pop or push moves a key
//! once per heap level, and at a thousand nodes and more the heap holds millions of events, so
//! moving a 24-byte key rather than a whole event (messages included) is most of the queue's cost.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

/// One scheduled item's place in the heap: when, in what order, and where it waits in the slab.
#[derive(Debug, Clone, Copy)]
struct Key {
    /// Simulated time, in nanoseconds since the start.
    at: u64,
    seq: u64,
    slot: u32,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A time-ordered queue of items, earliest first, ties in insertion order.
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Key>,
    /// The items, by slot; `None` for a free slot.
    slab: Vec<Option<T>>,
    /// Free slots, reused before the slab grows.
    free: Vec<u32>,
    next_seq: u64,
}

/// Nanoseconds of a simulated time (simulations run for far less than the 584 years a `u64` holds).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    /// Schedules `item` at simulated time `at`.
    pub(crate) fn push(&mut self, at: Duration, item: T) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slab.push(Some(item));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.heap.push(Key { at: nanos(at), seq: self.next_seq, slot });
        self.next_seq += 1;
    }

    /// The time of the earliest item.
    pub(crate) fn peek_time(&self) -> Option<Duration> {
        self.heap.peek().map(|k| Duration::from_nanos(k.at))
    }

    /// Removes and returns the earliest item.
    pub(crate) fn pop(&mut self) -> Option<(Duration, T)> {
        let key = self.heap.pop()?;
        let item = self.slab[key.slot as usize].take().expect("a queued key has its item");
        self.free.push(key.slot);
        Some((Duration::from_nanos(key.at), item))
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
