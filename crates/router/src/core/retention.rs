//! The global order of the retention cache. Payloads themselves live in each stream's
//! [`super::stream::StreamState`] (indexed by sequence number, O(1) lookup); this log remembers the
//! order they were retained in, so the oldest can be expired by age in O(1), whichever stream they
//! belong to. (The size bounds are enforced by fair shares, `fair_share.rs`.)

use std::collections::VecDeque;
use std::time::Instant;

use super::ids::StreamId;

/// One retained payload, in retention order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogEntry {
    pub(crate) stream: StreamId,
    pub(crate) seq: u64,
    pub(crate) at: Instant,
}

/// FIFO of retained payloads. An entry can be stale: its payload already left the cache (taken for
/// the fair share, or with its stream); it then just ages out.
#[derive(Debug, Default)]
pub(crate) struct RetentionLog {
    entries: VecDeque<LogEntry>,
}

impl RetentionLog {
    /// True when nothing is retained.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a newly retained payload.
    pub(crate) fn push(&mut self, entry: LogEntry) {
        self.entries.push_back(entry);
    }

    /// Removes and returns the oldest entry if it is older than `cutoff`, or if the log holds more
    /// than `max_len` entries.
    pub(crate) fn pop_expired(&mut self, cutoff: Option<Instant>, max_len: usize) -> Option<LogEntry> {
        let front = self.entries.front()?;
        let too_old = cutoff.is_some_and(|c| front.at < c);
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
