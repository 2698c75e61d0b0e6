//! The global order of the retention cache. Payloads themselves live in each stream's
//! [`super::stream::StreamState`] (indexed by sequence number, O(1) lookup); this log remembers the
//! order they were retained in, so the oldest can be expired by age, count and bytes in O(1) each,
//! whichever stream they belong to.

use std::collections::VecDeque;
use std::time::Instant;

use super::ids::StreamId;

/// One retained payload, in retention order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogEntry {
    pub(crate) stream: StreamId,
    pub(crate) seq: u64,
    pub(crate) at: Instant,
    pub(crate) len: usize,
}

/// FIFO of retained payloads with running totals. The totals are an upper bound of what the streams
/// really hold (a stream that was evicted or reset keeps its entries here until they age out), which is
/// the safe direction for a memory bound.
#[derive(Debug, Default)]
pub(crate) struct RetentionLog {
    entries: VecDeque<LogEntry>,
    bytes: usize,
}

impl RetentionLog {
    /// True when nothing is retained.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a newly retained payload.
    pub(crate) fn push(&mut self, entry: LogEntry) {
        self.bytes += entry.len;
        self.entries.push_back(entry);
    }

    /// Removes and returns the oldest entry if it is older than `cutoff`, or if the cache is over
    /// `max_messages` / `max_bytes`.
    pub(crate) fn pop_expired(
        &mut self,
        cutoff: Option<Instant>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Option<LogEntry> {
        let front = self.entries.front()?;
        let too_old = cutoff.is_some_and(|c| front.at < c);
        if too_old || self.entries.len() > max_messages || self.bytes > max_bytes {
            let entry = self.entries.pop_front()?;
            self.bytes -= entry.len;
            Some(entry)
        } else {
            None
        }
    }

    /// The oldest entry, if the cache holds more than `budget` bytes. (Whether it may go is the
    /// caller's to decide: it is released with [`RetentionLog::pop_oldest`] if it is settled.)
    pub(crate) fn oldest_beyond(&self, budget: usize) -> Option<&LogEntry> {
        if self.bytes > budget { self.entries.front() } else { None }
    }

    /// Removes the oldest entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<LogEntry> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.len;
        Some(entry)
    }
}
