//! Receive-side state of one stream: the delivery watermark (which is also the dedup window), the
//! bounded reorder buffer, the retention cache of delivered payloads, the verified manifests of what
//! is not delivered yet, and what repair is under way.
//!
//! Dedup is O(1) for the common case: a message is *held* when `seq <= delivered` (one comparison) or
//! when it sits in the small reorder buffer. No per-message id set is kept.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;

use super::ids::{SeqRange, StreamId};
use crate::proof::Manifest;

/// A payload held by a stream, with the hop count to put on the wire when sending it on and the
/// manifest that proves it (sent ahead of it to any peer that has not had it).
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) payload: Bytes,
    /// Hops for an outgoing `Data`: 0 for our own messages, received hops + 1 otherwise.
    pub(crate) wire_hops: u32,
    pub(crate) proof: Arc<Manifest>,
}

/// What was pushed to one neighbour on a stream, and what it acknowledged: to re-offer what it did
/// not acknowledge when the link fails or a send is dropped, to know when every neighbour holds a
/// payload (`StreamState::settled`), and to send a manifest only once ahead of the payloads it
/// covers. Kept with the stream rather than with the neighbour: a stream has a few marks (one per
/// neighbour it was pushed to or acknowledged by), and they go with it when it is forgotten.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SentMark {
    /// The neighbour's [`super::peer::Peer::slot`].
    pub(crate) peer: u64,
    /// Highest sequence number pushed to it.
    pub(crate) sent_hi: u64,
    /// Its latest cumulative acknowledgement.
    pub(crate) acked: u64,
    /// The run of sequence numbers covered by the last manifest sent to it (`0..=0`, which covers no
    /// message: none yet). A `Data` outside it needs its manifest sent first.
    pub(crate) proof_first: u64,
    pub(crate) proof_last: u64,
}

impl SentMark {
    /// Whether the last manifest sent covers `seq`.
    fn proves(&self, seq: u64) -> bool {
        self.proof_first <= seq && seq <= self.proof_last
    }
}

/// The marks of a stream's neighbours folded into one (see [`StreamState::fold_marks`]): every
/// neighbour with a slot below `below_slot` and no mark of its own holds the stream up to `seq`,
/// and was pushed nothing beyond it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FoldedMarks {
    below_slot: u64,
    seq: u64,
}

impl FoldedMarks {
    /// How far the neighbour with slot `peer`, if it has no mark, holds the stream.
    pub(crate) fn held_by(&self, peer: u64) -> u64 {
        if peer < self.below_slot { self.seq } else { 0 }
    }
}

/// What became of a verified manifest offered to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Kept: the payloads it covers can now be checked.
    Kept,
    /// It contradicts a manifest already held (the origin signed two versions): the first stands.
    Contradicts,
    /// Over the stream's proof budget.
    OverBudget,
}

/// What a received sequence number means for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Already delivered (or reported lost): a duplicate.
    Old,
    /// Already in the reorder buffer: a duplicate.
    Buffered,
    /// Further ahead than the reorder window: not held.
    TooFar,
    /// New and within the window.
    New,
}

/// The part of a stream's state that only matters while something is out of order or missing: the
/// reorder buffer and the graft and gap rounds. Most streams of a large network are quiet most of the
/// time, so a stream holds this boxed, only while it is in use ([`StreamState::settle_repair`]
/// gives it back); a stream without one reads as [`Repair::IDLE`].
#[derive(Debug, Default)]
pub(crate) struct Repair {
    /// A sequence number beyond the reorder window that a verified manifest of the origin proves
    /// exists (so every number before it does too). When nobody serves the window after the
    /// watermark for a whole gap timeout and nothing is buffered, those messages are lost as far
    /// as this node can reach: the stream reports a gap up to a window before this number and goes
    /// on (`Router::skip_unservable`), rather than wait for ever. Only the origin can make one, so
    /// no neighbour's claim can make the node skip.
    pub(crate) proven_ahead: Option<u64>,
    /// Out-of-order payloads waiting for the hole before them.
    pub(crate) buffer: BTreeMap<u64, Held>,
    /// Payload bytes in `buffer` (`Config::reorder_max_stream_bytes`).
    pub(crate) buffer_bytes: usize,
    /// The payloads in `buffer` not relayed yet (they arrived beyond the stream's relay budget,
    /// `Config::relay_ahead_bytes`), each with the neighbour it came from, which it is not sent back
    /// to when it is relayed.
    pub(crate) deferred: BTreeMap<u64, NodeId>,
    /// Payload bytes of `deferred`.
    pub(crate) deferred_bytes: usize,
    /// Payloads of this stream were dropped or taken from its buffer for want of room since the
    /// buffer was last empty. Grafts then ask only for the hole at the head: what follows it did
    /// not fit, and fetched again it would not fit either (a stream that never fills its first hole
    /// would otherwise be fetched over and over).
    pub(crate) shed: bool,
    /// Generation of the graft timer; a fired timer with another value is stale (0: none armed).
    pub(crate) graft_gen: u64,
    /// Since when the current graft round has been running (`None`: no graft timer armed).
    pub(crate) graft_since: Option<Instant>,
    /// Grafts sent in the current round (rotates through the announcers).
    pub(crate) graft_tries: usize,
    /// The watermark when the graft timer was (re)armed: if it moved by the time the timer fires, the
    /// tree is delivering this stream, only late.
    pub(crate) graft_mark: u64,
    /// Generation of the gap timer (0: none armed).
    pub(crate) gap_gen: u64,
    /// Whether a gap timer is armed.
    pub(crate) gap_armed: bool,
    /// The neighbour the current graft round made a tree link, if any. A round makes at most one
    /// link eager: retries (the first announcer did not answer) only repair while that neighbour is
    /// still there, so a message nobody can serve does not turn every link eager one retry at a time.
    pub(crate) grafted_to: Option<NodeId>,
}

impl Repair {
    /// Nothing buffered, no round under way.
    pub(crate) const IDLE: Repair = Repair {
        proven_ahead: None,
        buffer: BTreeMap::new(),
        buffer_bytes: 0,
        deferred: BTreeMap::new(),
        deferred_bytes: 0,
        shed: false,
        graft_gen: 0,
        graft_since: None,
        graft_tries: 0,
        graft_mark: 0,
        gap_gen: 0,
        gap_armed: false,
        grafted_to: None,
    };

    /// Accounts for `held` (number `seq`) having left the buffer; returns it with its sender if it
    /// was not relayed yet.
    fn unbuffered(&mut self, seq: u64, held: Held) -> (Held, Option<NodeId>) {
        self.buffer_bytes -= held.payload.len();
        let deferred_from = self.deferred.remove(&seq);
        if deferred_from.is_some() {
            self.deferred_bytes -= held.payload.len();
        }
        (held, deferred_from)
    }

    /// Whether nothing in it matters any more: nothing buffered or proven ahead, no graft round
    /// under way, no gap timer armed. What is left (the last round's figures) the next
    /// round sets afresh, and a timer still in flight is stale either way: its generation can only
    /// match a round under way.
    fn is_idle(&self) -> bool {
        self.buffer.is_empty() && self.proven_ahead.is_none() && self.graft_since.is_none() && !self.gap_armed
    }
}

/// Below this many retained payloads, the retention cache grows one slot at a time.
const SMALL_RETAINED: usize = 4;

/// What a stream without a repair state reads as.
static IDLE_REPAIR: Repair = Repair::IDLE;

/// One stream's state.
#[derive(Debug)]
pub(crate) struct StreamState {
    /// Every message `<= delivered` was delivered or reported as a gap.
    pub(crate) delivered: u64,
    /// Highest sequence number a neighbour claims exists (capped to the reorder window).
    pub(crate) known_hi: u64,
    /// Highest sequence number a neighbour claimed exists, beyond the reorder window too: once the
    /// window's messages are in, the next window is asked for, so a node far behind (back after a
    /// long absence, served from a history) catches up a window at a time. Lowered with `known_hi`
    /// when a graft round gives up, so a claim nobody can serve is not chased again.
    pub(crate) announced_hi: u64,
    /// A number no other stream this router tracked or will track had: how the retention log
    /// names it (see `retention.rs`). A stream forgotten and tracked again gets a new one, so an
    /// entry of its earlier life never touches its new state.
    pub(crate) serial: u64,
    /// Retained delivered payloads: `retained[i]` is sequence number `retained_base + i`.
    retained: VecDeque<Option<Held>>,
    retained_base: u64,
    /// Payload bytes in `retained`.
    pub(crate) retained_bytes: usize,
    /// Last time anything happened on this stream (idle eviction).
    pub(crate) last_active: Instant,
    /// When the stream's entry in the recency queue was queued (see `stream_table.rs`).
    pub(crate) queued_at: Instant,
    /// Whether `delivered` moved since the last ack flush.
    pub(crate) ack_dirty: bool,
    /// The latest message of this stream we obtained by grafting, and from whom (its
    /// [`super::peer::Peer::slot`]).
    pub(crate) repaired: Option<(u64, u64)>,
    /// Every neighbour holds this stream's messages up to here: the smallest acknowledgement among
    /// the neighbours other than the stream's origin (`u64::MAX` without such neighbours). Kept up to
    /// date by `Router::refresh_settled` whenever an acknowledgement or the neighbour set changes, so
    /// that releasing settled payloads costs one lookup per payload rather than one per neighbour.
    pub(crate) settled: u64,
    /// Verified manifests covering messages not delivered yet, by first sequence number (disjoint).
    pub(crate) proofs: BTreeMap<u64, Arc<Manifest>>,
    /// Bytes of `proofs` ([`Manifest::size`]).
    pub(crate) proof_bytes: usize,
    /// Neighbours (by [`super::peer::Peer::slot`]) that announced messages we lack, most recent
    /// last: whom a graft asks first. Kept across rounds (a neighbour that announced before is
    /// likely ahead again). A neighbour gone, or back on a new link, matches no slot here.
    pub(crate) announcers: Vec<u64>,
    /// Per neighbour (by slot), what was pushed to it and what it acknowledged. Neighbours without a
    /// mark were pushed nothing beyond what `folded` says they hold.
    pub(crate) sent: Vec<SentMark>,
    /// What the neighbours without a mark hold (nothing, unless the marks were folded).
    pub(crate) folded: FoldedMarks,
    /// Out-of-order payloads and the repair under way, if any (`None` when idle: see [`Repair`]).
    repair: Option<Box<Repair>>,
    /// Nothing of this stream was delivered yet, and its watermark came from a claim nobody proved
    /// (a digest, a `Sync`, a manifest's position): the first proven payload may move it. See
    /// `Router::reanchor`.
    pub(crate) provisional: bool,
}

impl StreamState {
    /// A stream whose messages up to `delivered` are considered held.
    pub(crate) fn new(delivered: u64, now: Instant) -> Self {
        Self {
            delivered,
            known_hi: delivered,
            announced_hi: delivered,
            serial: 0,
            retained: VecDeque::new(),
            retained_base: delivered + 1,
            retained_bytes: 0,
            last_active: now,
            queued_at: now,
            ack_dirty: false,
            repaired: None,
            settled: 0,
            proofs: BTreeMap::new(),
            proof_bytes: 0,
            announcers: Vec::new(),
            sent: Vec::new(),
            folded: FoldedMarks::default(),
            repair: None,
            provisional: true,
        }
    }

    /// The repair state (reads as [`Repair::IDLE`] when there is none).
    pub(crate) fn repair(&self) -> &Repair {
        self.repair.as_deref().unwrap_or(&IDLE_REPAIR)
    }

    /// The repair state, made if there is none.
    pub(crate) fn repair_mut(&mut self) -> &mut Repair {
        self.repair.get_or_insert_with(Box::default)
    }

    /// The repair state if there is one (to reset what a quiet stream need not have).
    pub(crate) fn repair_if_any(&mut self) -> Option<&mut Repair> {
        self.repair.as_deref_mut()
    }

    /// Whether it holds a repair state (something is or was recently out of order or missing).
    pub(crate) fn has_repair(&self) -> bool {
        self.repair.is_some()
    }

    /// Gives the repair state back once nothing in it matters any more.
    pub(crate) fn settle_repair(&mut self) {
        if self.repair.as_ref().is_some_and(|r| r.is_idle()) {
            self.repair = None;
        }
    }

    /// The mark of the neighbour with slot `peer`, if it has one.
    pub(crate) fn mark(&self, peer: u64) -> Option<&SentMark> {
        self.sent.iter().find(|m| m.peer == peer)
    }

    /// The mark of the neighbour with slot `peer`, made if it has none (from what the folded marks
    /// say it holds).
    pub(crate) fn mark_mut(&mut self, peer: u64) -> &mut SentMark {
        match self.sent.iter().position(|m| m.peer == peer) {
            Some(i) => &mut self.sent[i],
            None => {
                let held = self.folded.held_by(peer);
                // One slot per neighbour: a stream has a mark for each of a handful of neighbours.
                self.sent.reserve_exact(1);
                self.sent.push(SentMark { peer, sent_hi: held, acked: held, ..SentMark::default() });
                self.sent.last_mut().expect("just pushed")
            }
        }
    }

    /// How far the neighbour with slot `peer` acknowledged this stream.
    pub(crate) fn acked_by(&self, peer: u64) -> u64 {
        self.mark(peer).map_or_else(|| self.folded.held_by(peer), |m| m.acked)
    }

    /// Folds the per-neighbour marks into one when they say the same: every neighbour in `peers`
    /// (slots; the stream's origin left out) acknowledged every message delivered here, and none
    /// was pushed anything beyond it. A settled stream then costs no mark per neighbour while it
    /// waits to be parked. What is lost is which manifest each neighbour was sent last: its next
    /// payload goes with its manifest again, which is why only quiet streams are folded.
    /// `next_slot` is above every slot given so far. Returns whether the marks were folded.
    pub(crate) fn fold_marks(&mut self, peers: impl Iterator<Item = u64>, next_slot: u64) -> bool {
        let delivered = self.delivered;
        let in_step = |m: &SentMark| m.acked == delivered && m.sent_hi <= delivered;
        if self.sent.is_empty() || !self.sent.iter().all(in_step) {
            return false;
        }
        let mut peers = peers;
        if !peers.all(|p| self.acked_by(p) == delivered) {
            return false;
        }
        self.sent = Vec::new();
        self.folded = FoldedMarks { below_slot: next_slot, seq: delivered };
        true
    }

    /// Takes out the mark of the neighbour with slot `peer` (for a neighbour that went away).
    pub(crate) fn take_mark(&mut self, peer: u64) -> Option<SentMark> {
        let i = self.sent.iter().position(|m| m.peer == peer)?;
        Some(self.sent.swap_remove(i))
    }

    /// Records that `seq`, covered by the manifest `first..=last`, is being pushed to the neighbour
    /// with slot `peer`. Returns true when that manifest must go first: it is not the last one sent
    /// to that neighbour.
    pub(crate) fn note_sent(&mut self, peer: u64, seq: u64, (first, last): (u64, u64)) -> bool {
        let mark = self.mark_mut(peer);
        mark.sent_hi = mark.sent_hi.max(seq);
        if mark.proves(seq) {
            return false;
        }
        (mark.proof_first, mark.proof_last) = (first, last);
        true
    }

    /// Forgets which manifest was last sent to the neighbour with slot `peer`: its next payload goes
    /// with its manifest again (it asked for payloads, so it may lack what proves them).
    pub(crate) fn resend_proofs(&mut self, peer: u64) {
        if let Some(i) = self.sent.iter().position(|m| m.peer == peer) {
            (self.sent[i].proof_first, self.sent[i].proof_last) = (0, 0);
        }
    }

    /// The verified manifest covering `seq`, if held (pending manifests only: delivered messages
    /// carry theirs in [`Held`]).
    pub(crate) fn proof_for(&self, seq: u64) -> Option<&Arc<Manifest>> {
        self.proofs.range(..=seq).next_back().map(|(_, m)| m).filter(|m| m.covers(seq))
    }

    /// Whether an identical manifest is held already (then its signature need not be checked again).
    pub(crate) fn holds_proof(&self, manifest: &Manifest) -> bool {
        self.proofs.get(&manifest.first).is_some_and(|held| **held == *manifest)
    }

    /// Keeps a verified manifest, unless it overlaps one held or the stream's proofs would exceed
    /// `budget` bytes.
    pub(crate) fn store_proof(&mut self, manifest: Arc<Manifest>, budget: usize) -> Stored {
        // Held manifests are disjoint, so only the one starting last at or before our end can overlap.
        let overlaps = self
            .proofs
            .range(..=manifest.last())
            .next_back()
            .is_some_and(|(_, m)| m.last() >= manifest.first);
        if overlaps {
            return Stored::Contradicts;
        }
        let size = manifest.size();
        if self.proof_bytes + size > budget {
            return Stored::OverBudget;
        }
        self.proof_bytes += size;
        self.proofs.insert(manifest.first, manifest);
        Stored::Kept
    }

    /// Drops the pending manifests whose every message is `<= seq` (delivered, or given up as lost).
    /// Returns the bytes freed.
    pub(crate) fn release_proofs_through(&mut self, seq: u64) -> usize {
        let mut freed = 0;
        while let Some(entry) = self.proofs.first_entry() {
            if entry.get().last() > seq {
                break;
            }
            freed += entry.remove().size();
        }
        self.proof_bytes -= freed;
        if self.proofs.is_empty() {
            // An emptied `BTreeMap` keeps its node allocated; most streams are quiet most of the time.
            self.proofs = BTreeMap::new();
        }
        freed
    }

    /// Classifies an arriving sequence number against the watermark, the buffer and the window.
    pub(crate) fn classify(&self, seq: u64, window: u64) -> Arrival {
        if seq <= self.delivered {
            Arrival::Old
        } else if seq - self.delivered > window {
            Arrival::TooFar
        } else if self.repair().buffer.contains_key(&seq) {
            Arrival::Buffered
        } else {
            Arrival::New
        }
    }

    /// Buffers an out-of-order payload; `deferred_from` is its sender if it was not relayed.
    pub(crate) fn buffer_insert(&mut self, seq: u64, held: Held, deferred_from: Option<NodeId>) {
        let len = held.payload.len();
        let repair = self.repair_mut();
        repair.buffer_bytes += len;
        if let Some(from) = deferred_from {
            repair.deferred.insert(seq, from);
            repair.deferred_bytes += len;
        }
        repair.buffer.insert(seq, held);
    }

    /// Takes `seq` out of the buffer, with its sender if it was not relayed yet.
    pub(crate) fn buffer_remove(&mut self, seq: u64) -> Option<(Held, Option<NodeId>)> {
        let repair = self.repair.as_deref_mut()?;
        let held = repair.buffer.remove(&seq)?;
        Some(repair.unbuffered(seq, held))
    }

    /// Takes the furthest-ahead payload out of the buffer.
    pub(crate) fn buffer_pop_last(&mut self) -> Option<Held> {
        let repair = self.repair.as_deref_mut()?;
        let (seq, held) = repair.buffer.pop_last()?;
        Some(repair.unbuffered(seq, held).0)
    }

    /// Bytes of the buffered payloads that were relayed already (`Config::relay_ahead_bytes`).
    pub(crate) fn relayed_ahead(&self) -> usize {
        let repair = self.repair();
        repair.buffer_bytes - repair.deferred_bytes
    }

    /// Marks the deferred payload `seq` (of `len` bytes) as relayed.
    pub(crate) fn relayed(&mut self, seq: u64, len: usize) {
        if let Some(repair) = self.repair.as_deref_mut()
            && repair.deferred.remove(&seq).is_some()
        {
            repair.deferred_bytes -= len;
        }
    }

    /// Whether the stream holds `seq` (delivered and retained, or buffered).
    pub(crate) fn get(&self, seq: u64) -> Option<&Held> {
        if let Some(held) = self.repair().buffer.get(&seq) {
            return Some(held);
        }
        let index = seq.checked_sub(self.retained_base)?;
        self.retained.get(usize::try_from(index).ok()?)?.as_ref()
    }

    /// Appends a just-delivered payload to the retention cache. If it does not follow the retained
    /// run (after a gap or an adoption jump), the run restarts with it. Returns the bytes and payloads
    /// that dropped out of the cache.
    pub(crate) fn retain(&mut self, seq: u64, held: Held) -> (usize, usize) {
        let next = self.retained_base + self.retained.len() as u64;
        let mut freed = (0, 0);
        if seq != next {
            // A jump (gap or adoption): start a new run; the old one is rarely useful and is dropped.
            freed = (std::mem::take(&mut self.retained_bytes), self.retained.len());
            self.retained.clear();
            self.retained_base = seq;
        }
        self.retained_bytes += held.payload.len();
        if self.retained.len() == self.retained.capacity() && self.retained.len() < SMALL_RETAINED {
            // One slot at a time while the stream retains little (growth would start at four): most
            // streams of a large network carry a message or two at a time.
            self.retained.reserve_exact(1);
        }
        self.retained.push_back(Some(held));
        freed
    }

    /// Drops retained payloads up to and including `seq` (they aged out of the global log). Returns
    /// the bytes and payloads dropped.
    pub(crate) fn expire_through(&mut self, seq: u64) -> (usize, usize) {
        let mut freed = (0, 0);
        while self.retained_base <= seq
            && let Some(len) = self.evict_oldest_retained()
        {
            freed = (freed.0 + len, freed.1 + 1);
        }
        freed
    }

    /// Drops the oldest retained payload; returns its length.
    pub(crate) fn evict_oldest_retained(&mut self) -> Option<usize> {
        let held = self.retained.pop_front()?;
        self.retained_base += 1;
        if self.retained.is_empty() {
            self.retained = VecDeque::new();
        }
        let len = held.map_or(0, |h| h.payload.len());
        self.retained_bytes -= len;
        Some(len)
    }

    /// Payloads in the retention cache.
    pub(crate) fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Whether `seq` is in the retention cache's span.
    pub(crate) fn retains(&self, seq: u64) -> bool {
        self.retained_span().is_some_and(|(first, last)| (first..=last).contains(&seq))
    }

    /// The inclusive sequence-number span of the retention cache, if any.
    pub(crate) fn retained_span(&self) -> Option<(u64, u64)> {
        if self.retained.is_empty() {
            None
        } else {
            Some((self.retained_base, self.retained_base + self.retained.len() as u64 - 1))
        }
    }

    /// Whether messages between the watermark and `known_hi` are missing.
    pub(crate) fn has_missing(&self) -> bool {
        let span = self.known_hi.saturating_sub(self.delivered);
        span > self.repair().buffer.len() as u64
    }

    /// The missing ranges between the watermark and `known_hi`, at most `max` of them. Iterates the
    /// buffer (bounded), never the sequence numbers themselves.
    pub(crate) fn missing_ranges(&self, stream: StreamId, max: usize) -> Vec<SeqRange> {
        let mut out = Vec::new();
        let mut next = self.delivered + 1;
        for &seq in self.repair().buffer.keys() {
            if seq > self.known_hi || out.len() >= max {
                break;
            }
            if seq > next {
                out.push(SeqRange { stream, first: next, last: seq - 1 });
            }
            next = seq + 1;
        }
        if next <= self.known_hi && out.len() < max {
            out.push(SeqRange { stream, first: next, last: self.known_hi });
        }
        out
    }

    /// Remembers `peer` as having announced missing messages (bounded, most recent last).
    pub(crate) fn add_announcer(&mut self, peer: u64, max: usize) {
        let announcers = &mut self.announcers;
        if let Some(pos) = announcers.iter().position(|p| *p == peer) {
            announcers.remove(pos);
        } else if announcers.len() >= max {
            announcers.remove(0);
        }
        announcers.push(peer);
    }
}
