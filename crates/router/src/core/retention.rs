//! The global order of the retention cache. Payloads themselves live in each stream's
//! [`super::stream::StreamState`] (indexed by sequence number, O(1) lookup); this log remembers the
//! order they were retained in, so the oldest can be expired by age in O(1), whichever stream they
//! belong to. (The size bounds are enforced by fair shares, `fair_share.rs`.)
//!
//! A node keeps an entry per retained payload, so an entry is kept small: the stream by its serial
//! number (`StreamState::serial`, 8 bytes instead of a 40-byte `StreamId`) and the time as
//! nanoseconds since the log began (8 bytes instead of an `Instant`'s 16): 24 bytes in all.

use std::collections::VecDeque;
use std::time::Instant;

/// One retained payload, in retention order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogEntry {
    /// Its stream's `StreamState::serial`.
    pub(crate) serial: u64,
    pub(crate) seq: u64,
    /// When it was retained: nanoseconds since `RetentionLog::base`.
    at: u64,
}

/// FIFO of retained payloads. An entry can be stale: its payload already left the cache (taken for
/// the fair share, or with its stream); it then just ages out.
#[derive(Debug)]
pub(crate) struct RetentionLog {
    entries: VecDeque<LogEntry>,
    /// What the entries' times count from.
    base: Instant,
}

impl RetentionLog {
    /// An empty log whose times count from `base` (no entry may be older).
    pub(crate) fn new(base: Instant) -> Self {
        Self { entries: VecDeque::new(), base }
    }

    /// `at` as an entry's time. 64 bits of nanoseconds last 584 years.
    fn since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// True when nothing is retained.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a payload of the stream with `serial` retained at `now`.
    pub(crate) fn push(&mut self, serial: u64, seq: u64, now: Instant) {
        let at = self.since_base(now);
        self.entries.push_back(LogEntry { serial, seq, at });
    }

    /// Removes and returns the oldest entry if it is older than `cutoff`, or if the log holds more
    /// than `max_len` entries.
    pub(crate) fn pop_expired(&mut self, cutoff: Option<Instant>, max_len: usize) -> Option<LogEntry> {
        let front = self.entries.front()?;
        let too_old = cutoff.is_some_and(|c| front.at < self.since_base(c));
        if too_old || self.entries.len() > max_len { self.entries.pop_front() } else { None }
    }

    /// The oldest entry.
    pub(crate) fn oldest(&self) -> Option<&LogEntry> {
        self.entries.front()
    }

    /// Removes the oldest entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<LogEntry> {
        self.entries.pop_front()
    }

    /// Frees the log's spare room (see `spare.rs`).
    pub(crate) fn trim(&mut self) {
        super::spare::trim_deque(&mut self.entries);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_expire_oldest_first_by_age_or_count() {
        let base = Instant::now();
        let mut log = RetentionLog::new(base);
        for (i, serial) in [7, 3, 7].into_iter().enumerate() {
            log.push(serial, i as u64 + 1, base + Duration::from_millis(10 * i as u64));
        }
        assert_eq!(std::mem::size_of::<LogEntry>(), 24);
        // Nothing is older than the cutoff, and the log is within its length.
        assert!(log.pop_expired(Some(base), 3).is_none());
        // The entry of 0 ms is older than a cutoff at 5 ms; the one of 10 ms is not.
        let cutoff = Some(base + Duration::from_millis(5));
        let first = log.pop_expired(cutoff, 3).expect("the oldest");
        assert_eq!((first.serial, first.seq), (7, 1));
        assert!(log.pop_expired(cutoff, 3).is_none());
        // Over its length, the oldest goes whatever its age.
        let second = log.pop_expired(None, 1).expect("over length");
        assert_eq!((second.serial, second.seq), (3, 2));
        assert!(log.pop_expired(None, 1).is_none());
        assert_eq!(log.oldest().map(|e| (e.serial, e.seq)), Some((7, 3)));
    }
}
