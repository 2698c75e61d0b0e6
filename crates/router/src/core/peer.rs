//! Per-neighbour state: whether the link is a tree (eager) link, its round-trip time, the digest batch
//! waiting for the next flush, and its budgets. What was pushed to it and what it acknowledged lives
//! with each stream ([`super::stream::SentMark`]), under the neighbour's [`Peer::slot`].

use std::time::{Duration, Instant};

use dotray_codec::TokenBucket;

use super::history::PendingRecall;
use super::ids::{SeqRange, StreamId};
use super::map::KeyedMap;

/// One neighbour.
#[derive(Debug)]
pub(crate) struct Peer {
    /// A number no other neighbour of this router had or will have: the key of its marks in every
    /// stream's `sent` (a reconnected neighbour is a new `Peer` with a new slot).
    pub(crate) slot: u64,
    /// Tree link: payloads are pushed to it. Otherwise only digests.
    pub(crate) eager: bool,
    /// Smoothed round-trip time from membership, if known.
    pub(crate) rtt: Option<Duration>,
    /// Digest ranges waiting for the next flush.
    pub(crate) ihave: Vec<SeqRange>,
    /// Per stream, where in `ihave` its latest range is: a message that follows it extends it, so a
    /// batch holds one range per stream however many streams interleave.
    ihave_index: KeyedMap<StreamId, usize>,
    /// Smallest hop count in the pending digest.
    pub(crate) ihave_hops: u32,
    /// What we last asked this peer for (our latest `Graft`'s ranges). Its answers may arrive after the
    /// tree already delivered the same payloads: such duplicates are not a sign of a redundant link.
    pub(crate) asked: Vec<SeqRange>,
    /// When we last sent it a `Prune`.
    pub(crate) last_prune: Option<Instant>,
    /// When the link last became a tree link by a `Graft`, sent or received: for a while after it,
    /// the other end may still announce what it will push once the graft arrives.
    pub(crate) last_graft: Option<Instant>,
    /// Its budget for streams this node starts tracking because of its messages (see
    /// `stream_table.rs`).
    pub(crate) new_streams: TokenBucket,
    /// Its budget of repair bytes (`Config::serve_bytes_per_sec`).
    pub(crate) serve_bytes: TokenBucket,
    /// Its read of the history on disk under way, if any (see `history.rs`).
    pub(crate) recalling: Option<PendingRecall>,
}

impl Peer {
    /// A new neighbour. Plumtree starts every link eager; duplicates prune the tree into shape. The
    /// digest index comes empty, with the router's keyed hasher.
    pub(crate) fn new(
        slot: u64,
        ihave_index: KeyedMap<StreamId, usize>,
        new_streams: TokenBucket,
        serve_bytes: TokenBucket,
    ) -> Self {
        Self {
            slot,
            eager: true,
            rtt: None,
            ihave: Vec::new(),
            ihave_index,
            ihave_hops: u32::MAX,
            asked: Vec::new(),
            last_prune: None,
            last_graft: None,
            new_streams,
            serve_bytes,
            recalling: None,
        }
    }

    /// Adds one message to the digest batch, extending its stream's latest range when it is the next
    /// number (the common case: a run of messages of one stream becomes one range, however many
    /// other streams interleave with it). O(1).
    pub(crate) fn push_ihave(&mut self, stream: StreamId, seq: u64, hops: u32) {
        self.ihave_hops = self.ihave_hops.min(hops);
        // The latest range is the one a busy stream extends, message after message: no lookup.
        if let Some(range) = self.ihave.last_mut()
            && range.stream == stream
            && range.last.checked_add(1) == Some(seq)
        {
            range.last = seq;
            return;
        }
        if let Some(&at) = self.ihave_index.get(&stream)
            && let Some(range) = self.ihave.get_mut(at)
            && range.last.checked_add(1) == Some(seq)
        {
            range.last = seq;
            return;
        }
        self.ihave_index.insert(stream, self.ihave.len());
        self.ihave.push(SeqRange::single(stream, seq));
    }

    /// Adds a whole range to the digest batch.
    pub(crate) fn push_ihave_range(&mut self, range: SeqRange, hops: u32) {
        self.ihave_hops = self.ihave_hops.min(hops);
        self.ihave_index.insert(range.stream, self.ihave.len());
        self.ihave.push(range);
    }

    /// Takes the digest batch for sending: its ranges and smallest hop count.
    pub(crate) fn take_ihave(&mut self) -> (Vec<SeqRange>, u32) {
        self.ihave_index.clear();
        let hops = std::mem::replace(&mut self.ihave_hops, u32::MAX);
        (std::mem::take(&mut self.ihave), hops)
    }

    /// Whether `seq` of `stream` is something we asked this peer for.
    pub(crate) fn was_asked(&self, stream: StreamId, seq: u64) -> bool {
        self.asked.iter().any(|r| r.stream == stream && r.first <= seq && seq <= r.last)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use dotray_codec::{NodeId, TokenBucket};

    use super::*;
    use crate::core::map::{KeyedMap, KeyedState};

    fn stream(n: u8) -> StreamId {
        StreamId { origin: NodeId::from_bytes([n; 32]), epoch: 1 }
    }

    #[test]
    fn a_digest_batch_holds_one_range_per_run_of_each_stream() {
        let now = Instant::now();
        let bucket = || TokenBucket::new(1, 1, now);
        let mut peer = Peer::new(1, KeyedMap::with_hasher(KeyedState(7)), bucket(), bucket());
        let (a, b) = (stream(1), stream(2));
        // Runs of `a` interleaved with `b`, a gap in `a`, and the smallest hop count kept.
        for (s, seq, hops) in [(a, 1, 3), (a, 2, 2), (b, 7, 5), (a, 3, 4), (b, 8, 1), (a, 5, 2), (a, 6, 2)] {
            peer.push_ihave(s, seq, hops);
        }
        let (ranges, hops) = peer.take_ihave();
        let got: Vec<_> = ranges.iter().map(|r| (r.stream, r.first, r.last)).collect();
        assert_eq!(got, [(a, 1, 3), (b, 7, 8), (a, 5, 6)]);
        assert_eq!(hops, 1);
        // Taking the batch empties it, index included: the next message starts a new range.
        peer.push_ihave(a, 7, 9);
        let (ranges, hops) = peer.take_ihave();
        assert_eq!(ranges.iter().map(|r| (r.first, r.last)).collect::<Vec<_>>(), [(7, 7)]);
        assert_eq!(hops, 9);
    }
}
