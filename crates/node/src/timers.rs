//! [`TimerQueue`]: the timers of a sans-IO core, kept by its tokio driver.
//!
//! A core asks for a timer by returning `SetTimer { at, timer }`; the driver pushes it here, sleeps until
//! the earliest deadline, and hands due timers back to the core. Timers are plain values and are never
//! cancelled: a core recognises stale ones itself (generation numbers), which keeps this a heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A min-heap of `(deadline, timer)`; ties fire in the order they were set.
#[derive(Debug)]
pub struct TimerQueue<T> {
    heap: BinaryHeap<Reverse<(Instant, u64, Slot<T>)>>,
    next_seq: u64,
}

/// Wraps a timer so the heap orders by deadline and sequence number only.
#[derive(Debug)]
struct Slot<T>(T);

impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), next_seq: 0 }
    }
}

impl<T> TimerQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a timer due at `at`.
    pub fn push(&mut self, at: Instant, timer: T) {
        self.heap.push(Reverse((at, self.next_seq, Slot(timer))));
        self.next_seq += 1;
    }

    /// The earliest deadline, if any timer is set.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns one timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((_, _, Slot(timer)))| timer)
    }

    /// Number of timers set.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no timer is set.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_due_timers_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new();
        q.push(t0 + Duration::from_secs(2), "c");
        q.push(t0 + Duration::from_secs(1), "a");
        q.push(t0 + Duration::from_secs(1), "b");
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        let now = t0 + Duration::from_secs(1);
        assert_eq!((q.pop_due(now), q.pop_due(now), q.pop_due(now)), (Some("a"), Some("b"), None));
        assert_eq!(q.pop_due(t0 + Duration::from_secs(5)), Some("c"));
        assert!(q.is_empty());
    }
}
