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
//!   (`Config::total_new_streams_per_sec`, `Config::total_new_stream_burst`); a stream coming back
//!   from parking or eviction (below) is not new and takes none. Over budget the
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
//! **A quiet stream is parked**: once nothing of it is retained (its payloads aged out or settled),
//! buffered or under repair, and nothing was heard of it for `Config::stream_park_after`, the sweep
//! lets its state go and remembers its watermark, as for an eviction. Most origins of a large
//! network are quiet most of the time (in a blockchain network every wallet is an origin of a few
//! transactions): a parked stream costs a mark of some 30 bytes instead of a full state with its
//! per-neighbour marks, and comes back through the same door as a new stream (`ensure_stream`) at
//! its remembered watermark, but on no budget: in a large network most messages come from origins
//! parked since they last spoke. Late news naming only messages it had delivered (a neighbour's
//! digest or acknowledgement, a payload's second copy) leaves it parked; a new neighbour's `Sync`
//! naming it is answered with an acknowledgement instead, since our watermark will not move to tell
//! that neighbour we hold what it retains. So that streams do empty, every neighbour's
//! acknowledgement counts, also one that overtook its message or came as a `Sync` position: one
//! lost acknowledgement keeps a payload, and every later one, for `retention_time`.
//!
//! Streams idle for `Config::stream_idle_timeout` are forgotten outright by the sweep, from the same
//! queue (so after between one and two timeouts of idleness), and marks go after between half a
//! timeout and a whole one: no honest node retains their messages any more, so nothing of them can
//! come back. With `Config::history` they can (histories keep them for hours): then an idle stream
//! is evicted like any other, its watermark remembered, and marks are dropped only for room, never
//! for age.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
        streams: &KeyedMap<StreamId, Box<StreamState>>,
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

    /// Drops stale entries once they number a quarter of the live ones, so the queue stays within
    /// 1.25 times the table. Amortised O(1): it runs after at least a quarter as many forgets as it
    /// then scans.
    fn compact(&mut self, streams: &KeyedMap<StreamId, Box<StreamState>>) {
        if self.queue.len() > streams.len() + streams.len() / 4 + 16 {
            self.queue.retain(|(id, at)| streams.get(id).is_some_and(|s| s.queued_at == *at));
        }
    }

    /// Frees the queue's spare room (see `spare.rs`).
    fn trim(&mut self) {
        super::spare::trim_deque(&mut self.queue);
    }
}

/// What [`Forgotten`] remembers of a stream, seen from news of its messages up to some number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remembered {
    /// Nothing: the stream is new to this node.
    Nothing,
    /// Its watermark is at the news or beyond: the news brings nothing, and the mark stays.
    Covers,
    /// Its watermark, taken out: the stream comes back from it.
    Below(u64),
}

/// Watermarks of streams let go of (evicted to make room, or parked while quiet), so that they resume
/// where they stood if they come back.
///
/// Two generations: a mark goes into the current one; once that holds half of `max` marks, or has
/// been current for half the age limit, it becomes the previous one and the previous one is dropped
/// whole. So at most `max` marks are held, and each stays for at least `max / 2` later marks and half
/// the age limit ([`Config::min_forgotten_streams`] counts with that). No per-mark order or time is
/// kept, and a mark is keyed by a 128-bit keyed BLAKE3 hash of its stream id rather than the 40-byte
/// id: a mark costs some 30 bytes, so a node can remember every origin of a large network. The key
/// is secret, so nobody can make two streams share a mark.
///
/// [`Config::min_forgotten_streams`]: super::config::Config::min_forgotten_streams
#[derive(Debug)]
pub(crate) struct Forgotten {
    key: [u8; 32],
    hasher: KeyedState,
    current: KeyedMap<u128, u64>,
    previous: KeyedMap<u128, u64>,
    /// When `current` became current.
    since: Instant,
}

impl Forgotten {
    pub(crate) fn new(hasher: KeyedState, key: [u8; 32], now: Instant) -> Self {
        let (current, previous) = (KeyedMap::with_hasher(hasher), KeyedMap::with_hasher(hasher));
        Self { key, hasher, current, previous, since: now }
    }

    /// The key `stream`'s mark is filed under.
    fn digest(&self, stream: &StreamId) -> u128 {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(stream.origin.as_bytes());
        hasher.update(&stream.epoch.to_le_bytes());
        let mut out = [0; 16];
        hasher.finalize_xof().fill(&mut out);
        u128::from_le_bytes(out)
    }

    /// Remembers `stream`'s watermark, keeping at most `max` marks.
    pub(crate) fn remember(&mut self, stream: StreamId, delivered: u64, now: Instant, max: usize) {
        let key = self.digest(&stream);
        self.previous.remove(&key);
        if self.current.len() >= (max / 2).max(1) {
            self.rotate(now);
        }
        self.current.insert(key, delivered);
    }

    /// Takes the remembered watermark of `stream`, if any, unless it is at `hi` or beyond: news of
    /// messages up to `hi` is then news of nothing the stream lacks, and it stays let go of.
    fn take_below(&mut self, stream: &StreamId, hi: u64) -> Remembered {
        if self.current.is_empty() && self.previous.is_empty() {
            return Remembered::Nothing;
        }
        let key = self.digest(stream);
        let (map, mark) = match (self.current.get(&key), self.previous.get(&key)) {
            (Some(&mark), _) => (&mut self.current, mark),
            (None, Some(&mark)) => (&mut self.previous, mark),
            (None, None) => return Remembered::Nothing,
        };
        if mark >= hi {
            return Remembered::Covers;
        }
        map.remove(&key);
        Remembered::Below(mark)
    }

    /// The remembered watermark of `stream`, if it was let go of.
    pub(crate) fn watermark(&self, stream: &StreamId) -> Option<u64> {
        if self.current.is_empty() && self.previous.is_empty() {
            return None;
        }
        let key = self.digest(stream);
        self.current.get(&key).or_else(|| self.previous.get(&key)).copied()
    }

    /// Lets the older generation go if the current one has been current for half of `max_age`: no
    /// mark is older than `max_age`.
    fn expire(&mut self, now: Instant, max_age: Duration) {
        if now.saturating_duration_since(self.since) >= max_age / 2 {
            self.rotate(now);
        }
    }

    fn rotate(&mut self, now: Instant) {
        self.previous = std::mem::replace(&mut self.current, KeyedMap::with_hasher(self.hasher));
        self.since = now;
    }

    /// How many marks are held.
    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl<R: rand::Rng> Router<R> {
    /// Finds the state of `stream`, creating it if it is new and neighbour `from` has budget for a new
    /// stream (see the module docs). A stream the node parked or evicted earlier comes back at its
    /// remembered watermark, on no budget: it was admitted once, and taking it back takes its mark
    /// out of [`Forgotten`] (an eviction to make room puts at most one in), so it cannot push anyone's
    /// mark out. A new stream starts at `start`, provisionally. The news is of messages up to `hi`:
    /// a stream let go of with those delivered already stays let go of (a late digest or
    /// acknowledgement of a parked stream must not bring its whole state back). Returns false when
    /// the stream is not tracked: new and refused, or let go of and the news old.
    pub(crate) fn ensure_stream(
        &mut self,
        from: NodeId,
        stream: StreamId,
        (start, hi): (u64, u64),
        now: Instant,
    ) -> bool {
        if self.streams.contains_key(&stream) {
            return true;
        }
        let remembered = match self.forgotten.take_below(&stream, hi) {
            Remembered::Covers => {
                self.counters.parked_news += 1;
                return false;
            }
            Remembered::Below(mark) => Some(mark),
            Remembered::Nothing => None,
        };
        if remembered.is_none()
            && (!self.peers.get_mut(&from).is_some_and(|p| p.new_streams.take(now))
                || !self.new_streams.take(now))
        {
            self.counters.streams_refused += 1;
            return false;
        }
        if self.streams.len() >= self.config.max_streams && !self.evict_one(now) {
            if let Some(mark) = remembered {
                self.forgotten.remember(stream, mark, now, self.config.max_forgotten_streams);
            }
            self.counters.streams_refused += 1;
            return false;
        }
        let mut state = match remembered {
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
        state.settled = settled_mark(&self.peers, stream.origin, &state);
        state.serial = self.next_serial;
        self.next_serial += 1;
        self.serials.insert(state.serial, stream);
        self.streams.insert(stream, Box::new(state));
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
            self.counters.streams_evicted += 1;
            self.evict_stream(id, now);
            return true;
        }
        false
    }

    /// Parks the streams whose retention cache emptied and that are quiet: nothing retained,
    /// buffered, proven ahead or under repair, no acknowledgement waiting to go out, something
    /// delivered (so there is a watermark to remember), and no payload or announcement of it for
    /// `Config::retention_time` (a busy stream's cache also empties when its settled payloads are
    /// released, between two of its messages). A stream still empty but heard of lately is looked
    /// at again at the next sweep; one that retains something again is dropped from the list (it is
    /// listed again when its cache next empties). See the module docs.
    pub(crate) fn park_quiet_streams(&mut self, now: Instant) {
        let mut emptied = std::mem::take(&mut self.emptied);
        emptied.sort_unstable();
        emptied.dedup();
        let quiet_for = self.config.stream_park_after;
        emptied.retain(|id| {
            let Some(s) = self.streams.get(id) else { return false };
            if s.retained_count() > 0 {
                return false;
            }
            let quiet = !s.has_repair() && s.proofs.is_empty() && !s.provisional && !s.ack_dirty;
            if !quiet || now.saturating_duration_since(s.last_active) < quiet_for {
                return true;
            }
            self.counters.streams_parked += 1;
            self.evict_stream(*id, now);
            false
        });
        self.emptied = emptied;
    }

    /// Folds the per-neighbour marks of the streams quiet for a sweep interval whose neighbours all
    /// hold what was delivered here (`StreamState::fold_marks`). Such a stream is settled, and
    /// waits only for its retained payloads to go before it is parked: until then it costs one
    /// folded mark instead of one per neighbour.
    pub(crate) fn fold_quiet_marks(&mut self, now: Instant) {
        let quiet_for = self.config.sweep_interval;
        let next_slot = self.peer_slots + 1;
        let peers = &self.peers;
        for (id, state) in self.streams.iter_mut() {
            if state.sent.is_empty() || now.saturating_duration_since(state.last_active) < quiet_for {
                continue;
            }
            let others = peers.iter().filter(|(p, _)| **p != id.origin).map(|(_, p)| p.slot);
            state.fold_marks(others, next_slot);
        }
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
            self.serials.remove(&state.serial);
            self.buffered_total -= state.repair().buffer.len();
            self.buffered_bytes -= state.repair().buffer_bytes;
            self.proof_bytes -= state.proof_bytes;
            self.retained_bytes -= state.retained_bytes;
            self.retained_count -= state.retained_count();
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
            self.forgotten.expire(now, self.config.stream_idle_timeout);
        }
        while let Some((id, at)) = self.recency.pop_live(&self.streams, Some(cutoff)) {
            let Some(state) = self.streams.get_mut(&id) else { continue };
            if state.last_active > at || !state.repair().buffer.is_empty() {
                state.queued_at = now;
                self.recency.push(id, now);
            } else if history {
                self.counters.streams_evicted += 1;
                self.evict_stream(id, now);
            } else {
                self.counters.streams_evicted += 1;
                self.forget_stream(id);
            }
        }
    }

    /// Gives back the room of a table and a queue that shrank (see `spare.rs`): parking lets most
    /// streams go again within seconds of a burst of new origins.
    pub(crate) fn trim_stream_table(&mut self) {
        super::spare::trim_map(&mut self.streams);
        super::spare::trim_map(&mut self.serials);
        self.recency.compact(&self.streams);
        self.recency.trim();
    }
}
