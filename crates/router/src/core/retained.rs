//! A run of consecutive retained payloads of one stream: what a tracked stream keeps to serve
//! grafts and `Sync` (`StreamState::retained`), and what a parked stream keeps of it in the archive
//! (`archive.rs`).

use std::collections::VecDeque;

use super::stream::Held;

/// Below this many payloads, a run grows one slot at a time.
const SMALL_RUN: usize = 4;

/// Payloads `base`, `base + 1`, …: `payloads[i]` is sequence number `base + i` (`None` where one was
/// given up).
#[derive(Debug)]
pub(crate) struct RetainedRun {
    base: u64,
    payloads: VecDeque<Option<Held>>,
    /// Payload bytes in the run.
    pub(crate) bytes: usize,
}

impl RetainedRun {
    /// An empty run whose next payload is expected to be `base`.
    pub(crate) fn new(base: u64) -> Self {
        Self { base, payloads: VecDeque::new(), bytes: 0 }
    }

    /// The payload `seq`, if held.
    pub(crate) fn get(&self, seq: u64) -> Option<&Held> {
        let index = seq.checked_sub(self.base)?;
        self.payloads.get(usize::try_from(index).ok()?)?.as_ref()
    }

    /// Appends `seq`. If it does not follow the run (after a gap or an adoption jump), the run
    /// restarts with it: the old one is rarely useful and is dropped. Returns the bytes and payloads
    /// that dropped out.
    pub(crate) fn push(&mut self, seq: u64, held: Held) -> (usize, usize) {
        let next = self.base + self.payloads.len() as u64;
        let mut freed = (0, 0);
        if seq != next {
            freed = (std::mem::take(&mut self.bytes), self.payloads.len());
            self.payloads.clear();
            self.base = seq;
        }
        self.bytes += held.payload.len();
        if self.payloads.len() == self.payloads.capacity() && self.payloads.len() < SMALL_RUN {
            // One slot at a time while the run is short (growth would start at four): most streams
            // of a large network carry a message or two at a time.
            self.payloads.reserve_exact(1);
        }
        self.payloads.push_back(Some(held));
        freed
    }

    /// Drops the payloads up to and including `seq`. Returns the bytes and payloads dropped.
    pub(crate) fn expire_through(&mut self, seq: u64) -> (usize, usize) {
        let mut freed = (0, 0);
        while self.base <= seq
            && let Some(len) = self.pop_oldest()
        {
            freed = (freed.0 + len, freed.1 + 1);
        }
        freed
    }

    /// Drops the oldest payload; returns its length.
    pub(crate) fn pop_oldest(&mut self) -> Option<usize> {
        let held = self.payloads.pop_front()?;
        self.base += 1;
        if self.payloads.is_empty() {
            self.payloads = VecDeque::new();
        }
        let len = held.map_or(0, |h| h.payload.len());
        self.bytes -= len;
        Some(len)
    }

    /// Payloads in the run.
    pub(crate) fn len(&self) -> usize {
        self.payloads.len()
    }

    /// The inclusive sequence-number span of the run, if any.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        if self.payloads.is_empty() {
            None
        } else {
            Some((self.base, self.base + self.payloads.len() as u64 - 1))
        }
    }

    /// Frees the run's spare room: an archived run never grows again.
    pub(crate) fn shrink(&mut self) {
        self.payloads.shrink_to_fit();
    }
}
