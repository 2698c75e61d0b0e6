//! Per-neighbour state: whether the link is a tree (eager) link, its round-trip time, the digest batch
//! waiting for the next flush, and per stream what was pushed to it and what it acknowledged (to
//! re-offer unacknowledged payloads when the link fails or a send is dropped).

use std::time::{Duration, Instant};

use super::ids::{SeqRange, StreamId};
use super::map::KeyedMap;

/// What was pushed to a neighbour on one stream, and what it acknowledged.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SentMark {
    /// Highest sequence number pushed to it.
    pub(crate) sent_hi: u64,
    /// Its latest cumulative acknowledgement.
    pub(crate) acked: u64,
}

/// One neighbour.
#[derive(Debug)]
pub(crate) struct Peer {
    /// Tree link: payloads are pushed to it. Otherwise only digests.
    pub(crate) eager: bool,
    /// Smoothed round-trip time from membership, if known.
    pub(crate) rtt: Option<Duration>,
    /// Digest ranges waiting for the next flush.
    pub(crate) ihave: Vec<SeqRange>,
    /// Smallest hop count in the pending digest.
    pub(crate) ihave_hops: u32,
    /// Per stream: pushed vs acknowledged.
    pub(crate) sent: KeyedMap<StreamId, SentMark>,
    /// What we last asked this peer for (our latest `Graft`'s ranges). Its answers may arrive after the
    /// tree already delivered the same payloads: such duplicates are not a sign of a redundant link.
    pub(crate) asked: Vec<SeqRange>,
    /// When we last sent it a `Prune`.
    pub(crate) last_prune: Option<Instant>,
}

impl Peer {
    /// A new neighbour. Plumtree starts every link eager; duplicates prune the tree into shape.
    pub(crate) fn new(sent: KeyedMap<StreamId, SentMark>) -> Self {
        Self {
            eager: true,
            rtt: None,
            ihave: Vec::new(),
            ihave_hops: u32::MAX,
            sent,
            asked: Vec::new(),
            last_prune: None,
        }
    }

    /// Adds one message to the digest batch, extending a range of the same stream when it is the next
    /// number (the common case: a run of messages becomes one range). Only the last few ranges are
    /// looked at, so this is O(1).
    pub(crate) fn push_ihave(&mut self, stream: StreamId, seq: u64, hops: u32) {
        self.ihave_hops = self.ihave_hops.min(hops);
        for range in self.ihave.iter_mut().rev().take(4) {
            if range.stream == stream && range.last.checked_add(1) == Some(seq) {
                range.last = seq;
                return;
            }
        }
        self.ihave.push(SeqRange::single(stream, seq));
    }

    /// Adds a whole range to the digest batch.
    pub(crate) fn push_ihave_range(&mut self, range: SeqRange, hops: u32) {
        self.ihave_hops = self.ihave_hops.min(hops);
        self.ihave.push(range);
    }

    /// Whether `seq` of `stream` is something we asked this peer for.
    pub(crate) fn was_asked(&self, stream: StreamId, seq: u64) -> bool {
        self.asked.iter().any(|r| r.stream == stream && r.first <= seq && seq <= r.last)
    }

    /// Records that `seq` of `stream` was pushed.
    pub(crate) fn note_sent(&mut self, stream: StreamId, seq: u64) {
        let mark = self.sent.entry(stream).or_default();
        mark.sent_hi = mark.sent_hi.max(seq);
    }
}
