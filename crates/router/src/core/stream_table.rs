//! Which streams the router tracks, and which it lets go.
//!
//! Anyone can make key pairs, and an origin can start as many streams (epochs) as it likes, each
//! with validly signed messages that every honest node relays. The stream table must therefore
//! stay open to new honest origins however many streams strangers start, without forgetting where
//! an honest stream's delivery stands. Three rules do it:
//!
//! * **New-stream budgets.** A stream this node starts tracking because of a neighbour's message (a
//!   manifest, a digest, a `Sync`) takes a token from that neighbour's bucket
//!   (`Config::new_streams_per_sec`, `Config::new_stream_burst`) and one from the node's
//!   (`Config::total_new_streams_per_sec`, `Config::total_new_stream_burst`). Over budget the
//!   message is ignored as if unheard: an honest stream comes again by the repair path (other
//!   neighbours' digests, the origin's next message, from where `Router::adoption_start` says), while
//!   a flood of new streams spreads no faster than the budgets allow. The neighbour's bucket keeps
//!   one link from spending the node's; the node's holds however many identities strangers bring.
//! * **A full table evicts the least recently active stream**, whatever its age, so a new stream is
//!   never refused for lack of room, and streams kept alive at a trickle cannot lock out a new
//!   origin. Recency is a second-chance queue ([`Recency`]): each stream is queued once with the time
//!   it was queued; the front entry is evicted unless its stream was active since, in which case it
//!   goes to the back. Amortised O(1) per eviction, however large the table.
//! * **An evicted stream's watermark is remembered** ([`Forgotten`], `Config::max_forgotten_streams`),
//!   so if it comes back it resumes where it stood: its old messages, still retained by neighbours,
//!   are not delivered twice, and what it missed meanwhile is repaired or reported as a gap, never
//!   skipped in silence. The node's budget bounds how fast the table can be churned, and the marks
//!   are sized for it (`Config::validate`): none is pushed out within `Config::retention_time`.
//!
//! Streams idle for `Config::stream_idle_timeout` are forgotten outright by the sweep, from the same
//! queue (so after between one and two timeouts of idleness): no honest node retains their
//! messages any more, so nothing of them can come back. With `Config::history` they can (histories
//! keep them for hours): then an idle stream is evicted like any other, its watermark remembered,
//! and marks are dropped only for room, never for age.

use std::collections::VecDeque;
use std::time::Instant;

use dotray_codec::NodeId;

use super::ids::StreamId;
use super::map::{KeyedMap, KeyedState};
use super::router::{Router, settled_mark};
use super::stream::StreamState;

/// Streams in the order they were last checked for activity (a second-chance queue). Every tracked
/// stream but our own has exactly one live entry: the one whose time equals its
/// `StreamState::queued_at`; entries of streams forgotten or re-queued since are stale and skipped.
#[derive(Debug, Default)]
pub(crate) struct Recency {
    queue: VecDeque<(StreamId, Instant)>,
}

impl Recency {
    /// Queues `stream` at the back, checked at `now`.
    fn push(&mut self, stream: StreamId, now: Instant) {
        self.queue.push_back((stream, now));
    }

    /// The front live entry, removed, if it was queued before `cutoff` (any time, without one).
    /// Stale entries in front of it are dropped.
    fn pop_live(
        &mut self,
        streams: &KeyedMap<StreamId, StreamState>,
        cutoff: Option<Instant>,
    ) -> Option<(StreamId, Instant)> {
        while let Some(&(id, at)) = self.queue.front() {
            let live = streams.get(&id).is_some_and(|s| s.queued_at == at);
            if !live {
                self.queue.pop_front();
            } else if cutoff.is_none_or(|cutoff| at < cutoff) {
                return self.queue.pop_front();
            } else {
                return None;
            }
        }
        None
    }

    /// Drops stale entries once they outnumber the live ones, so the queue stays within twice the
    /// table. Amortised O(1): it runs after at least as many forgets as it then scans.
    fn compact(&mut self, streams: &KeyedMap<StreamId, StreamState>) {
        if self.queue.len() > 2 * streams.len() + 16 {
            self.queue.retain(|(id, at)| streams.get(id).is_some_and(|s| s.queued_at == *at));
        }
    }
}

/// Watermarks of streams evicted to make room, so that they resume where they stood if they come
/// back. Bounded in count (oldest first out) and in age.
#[derive(Debug)]
pub(crate) struct Forgotten {
    /// Per stream: its watermark, and when it was evicted (which of `order`'s entries is live).
    marks: KeyedMap<StreamId, (u64, Instant)>,
    order: VecDeque<(StreamId, Instant)>,
}

impl Forgotten {
    pub(crate) fn new(hasher: KeyedState) -> Self {
        Self { marks: KeyedMap::with_hasher(hasher), order: VecDeque::new() }
    }

    /// Remembers `stream`'s watermark, keeping at most `max` marks.
    pub(crate) fn remember(&mut self, stream: StreamId, delivered: u64, now: Instant, max: usize) {
        self.marks.insert(stream, (delivered, now));
        self.order.push_back((stream, now));
        while self.marks.len() > max {
            self.pop_oldest();
        }
        if self.order.len() > 2 * self.marks.len() + 16 {
            let marks = &self.marks;
            self.order.retain(|(id, at)| marks.get(id).is_some_and(|(_, t)| t == at));
        }
    }

    /// Takes the remembered watermark of `stream`, if any.
    fn take(&mut self, stream: &StreamId) -> Option<u64> {
        self.marks.remove(stream).map(|(mark, _)| mark)
    }

    /// Drops the marks remembered before `cutoff`.
    fn expire(&mut self, cutoff: Instant) {
        while self.order.front().is_some_and(|(_, at)| *at < cutoff) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((id, at)) = self.order.pop_front()
            && self.marks.get(&id).is_some_and(|(_, t)| *t == at)
        {
            self.marks.remove(&id);
        }
    }

    /// How many marks are held.
    pub(crate) fn len(&self) -> usize {
        self.marks.len()
    }
}

impl<R: rand::Rng> Router<R> {
    /// Finds the state of `stream`, creating it if it is new and neighbour `from` has budget for a new
    /// stream (see the module docs). A new stream starts at its remembered watermark if it was
    /// evicted before, else at `start`, provisionally. Returns false when the stream is new and
    /// refused.
    pub(crate) fn ensure_stream(&mut self, from: NodeId, stream: StreamId, start: u64, now: Instant) -> bool {
        if self.streams.contains_key(&stream) {
            return true;
        }
        if !self.peers.get_mut(&from).is_some_and(|p| p.new_streams.take(now)) || !self.new_streams.take(now)
        {
            self.counters.streams_refused += 1;
            return false;
        }
        if self.streams.len() >= self.config.max_streams && !self.evict_one(now) {
            self.counters.streams_refused += 1;
            return false;
        }
        let mut state = match self.forgotten.take(&stream) {
            Some(mark) => {
                self.counters.streams_restored += 1;
                let mut state = StreamState::new(mark, now);
                state.provisional = false;
                state
            }
            None => {
                let mut state = StreamState::new(start, now);
                // Asked from its first message, the start is no neighbour's claim: nothing to
                // re-anchor (see `Router::reanchor`).
                state.provisional = self.config.backfill_new_stream != u64::MAX;
                state
            }
        };
        state.settled = settled_mark(&self.peers, stream.origin, &[]);
        self.streams.insert(stream, state);
        self.recency.push(stream, now);
        self.arm_sweep(now);
        true
    }

    /// Evicts the least recently active stream (second chance: one active since it was queued goes
    /// to the back instead), remembering its watermark. Our own stream is never queued, so never
    /// evicted. False when there is nothing to evict (the table holds our own stream alone).
    fn evict_one(&mut self, now: Instant) -> bool {
        while let Some((id, at)) = self.recency.pop_live(&self.streams, None) {
            let Some(state) = self.streams.get_mut(&id) else { continue };
            if state.last_active > at {
                state.queued_at = now;
                self.recency.push(id, now);
                continue;
            }
            self.evict_stream(id, now);
            return true;
        }
        false
    }

    /// Forgets `id`, remembering its watermark if anything of it was delivered.
    pub(crate) fn evict_stream(&mut self, id: StreamId, now: Instant) {
        if let Some(state) = self.streams.get(&id)
            && !state.provisional
        {
            let max = self.config.max_forgotten_streams;
            self.forgotten.remember(id, state.delivered, now, max);
        }
        self.forget_stream(id);
    }

    /// Drops every piece of state of `stream` (its buffered payloads, proofs, per-neighbour marks).
    pub(crate) fn forget_stream(&mut self, id: StreamId) {
        if let Some(state) = self.streams.remove(&id) {
            self.buffered_total -= state.repair().buffer.len();
            self.buffered_bytes -= state.repair().buffer_bytes;
            self.proof_bytes -= state.proof_bytes;
            self.retained_bytes -= state.retained_bytes;
            self.retained_count -= state.retained_count();
            self.counters.streams_evicted += 1;
            self.recency.compact(&self.streams);
        }
    }

    /// Forgets the streams idle for `stream_idle_timeout` (those still holding buffered payloads wait
    /// for their gap timer), and the remembered watermarks as old. Walks only the front of the
    /// recency queue that is older than the timeout.
    pub(crate) fn sweep_idle_streams(&mut self, now: Instant) {
        let Some(cutoff) = now.checked_sub(self.config.stream_idle_timeout) else { return };
        let history = self.config.history;
        if !history {
            self.forgotten.expire(cutoff);
        }
        while let Some((id, at)) = self.recency.pop_live(&self.streams, Some(cutoff)) {
            let Some(state) = self.streams.get_mut(&id) else { continue };
            if state.last_active > at || !state.repair().buffer.is_empty() {
                state.queued_at = now;
                self.recency.push(id, now);
            } else if history {
                self.evict_stream(id, now);
            } else {
                self.forget_stream(id);
            }
        }
    }
}
