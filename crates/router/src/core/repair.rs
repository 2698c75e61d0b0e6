//! Everything that keeps the streams complete when payloads do not simply arrive: digests (`IHave`)
//! and the graft timer, serving `Graft`s from retention, `Prune`, cumulative `Ack`s, `Sync` between
//! new neighbours, neighbour loss, congestion, and gap reporting. The tree's shape is `beacon.rs`'s.

use std::time::Instant;

use dotray_codec::{NodeId, TokenBucket};

use super::action::{Action, Event, Timer};
use super::config::MAX_LIST_LEN;
use super::ids::{MAX_SEQ, SeqRange, StreamId, Watermark};
use super::map::KeyedMap;
use super::message::Message;
use super::peer::Peer;
use super::router::{Router, settled_mark};

impl<R: rand::Rng> Router<R> {
    /// `peer` became a neighbour (membership's `NeighbourUp`). Plumtree makes the link eager; we also
    /// send it our position in every stream (`Sync`) so it can push what we lack, and it ours. A node
    /// that has neither sent nor delivered anything has no position worth telling: no `Sync` (the
    /// neighbour learns of our stream with its first message, from 1).
    pub fn handle_neighbour_up(&mut self, peer: NodeId, now: Instant) {
        if peer == self.me {
            return;
        }
        let was_alone = self.peers.is_empty();
        self.peer_slots += 1;
        let (slot, index) = (self.peer_slots, KeyedMap::with_hasher(self.hasher));
        let (rate, burst) = (self.config.new_streams_per_sec, self.config.new_stream_burst);
        let new_streams = TokenBucket::new(rate, burst, now);
        let (rate, burst) = (self.config.serve_bytes_per_sec, self.config.serve_burst_bytes);
        let serve_bytes = TokenBucket::new(rate, burst, now);
        // Plumtree starts every link eager, and duplicates prune. While beacon rounds shape the tree,
        // a node already in it starts a new link lazy instead: eager, it would close a cycle until the
        // next round. A node with no tree link takes it eager (so does the other end, if it has
        // none); the rounds sort out the rest.
        let eager = !(self.beacons_flow(now) && self.peers.values().any(|p| p.eager));
        self.peers.entry(peer).or_insert_with(|| Peer::new(slot, index, new_streams, serve_bytes)).eager =
            eager;
        if was_alone {
            self.restart_gap_clocks(now);
        }
        self.note_joined(now);
        // It holds nothing yet.
        self.refresh_all_settled();
        self.arm_beacon(now);
        let own = self.own;
        let mut marks: Vec<Watermark> = self
            .streams
            .iter()
            .filter(|(id, s)| **id == own || s.delivered > 0)
            .map(|(id, s)| Watermark { stream: *id, seq: s.delivered })
            .collect();
        marks.sort_unstable_by_key(|m| m.stream);
        if marks.iter().all(|m| m.seq == 0) {
            return;
        }
        for chunk in marks.chunks(self.config.max_list_len) {
            self.send(peer, Message::Sync { marks: chunk.to_vec() });
        }
    }

    /// `peer` is no longer a neighbour. Payloads pushed to it that it had not acknowledged may not have
    /// reached its subtree: re-offer them by digest on every remaining link, so whoever lacks them
    /// grafts them from us.
    pub fn handle_neighbour_down(&mut self, peer: NodeId, now: Instant) {
        self.release_held(now);
        let Some(gone) = self.peers.remove(&peer) else { return };
        let mut unacked = Vec::new();
        for (stream, state) in self.streams.iter_mut() {
            if let Some(mark) = state.take_mark(gone.slot)
                && mark.sent_hi > mark.acked
            {
                unacked.push((*stream, mark.acked + 1, mark.sent_hi));
            }
        }
        // What only `gone` lacked is now held by every neighbour.
        self.refresh_all_settled();
        let mut reoffer: Vec<SeqRange> = unacked
            .into_iter()
            .filter_map(|(stream, first, last)| self.retained_part(stream, first, last))
            .collect();
        if reoffer.is_empty() || self.peers.is_empty() {
            return;
        }
        reoffer.sort_unstable_by_key(|r| (r.stream, r.first));
        self.counters.reoffers += reoffer.len() as u64;
        for p in self.peers.values_mut() {
            for range in &reoffer {
                p.push_ihave_range(*range, 0);
            }
        }
        self.arm_flush(now);
    }

    /// The driver dropped a send to `peer` because its queue was full. Demote it to a lazy link (it
    /// gets digests, which are tiny, instead of payloads) and re-offer everything it has not
    /// acknowledged, so it pulls what it missed at its own pace.
    pub fn handle_congested(&mut self, peer: NodeId, now: Instant) {
        let Some(slot) = self.peers.get(&peer).map(|p| p.slot) else { return };
        let pending: Vec<(StreamId, u64, u64)> = self
            .streams
            .iter()
            .filter_map(|(s, state)| state.mark(slot).map(|m| (*s, m)))
            .filter(|(_, m)| m.sent_hi > m.acked)
            .map(|(s, m)| (s, m.acked + 1, m.sent_hi))
            .collect();
        let ranges: Vec<SeqRange> = pending
            .into_iter()
            .filter_map(|(stream, first, last)| self.retained_part(stream, first, last))
            .collect();
        let Some(p) = self.peers.get_mut(&peer) else { return };
        p.eager = false;
        self.counters.reoffers += ranges.len() as u64;
        for range in ranges {
            p.push_ihave_range(range, 0);
        }
        self.arm_flush(now);
    }

    /// The part of `first..=last` of `stream` that we still retain, as one range.
    fn retained_part(&self, stream: StreamId, first: u64, last: u64) -> Option<SeqRange> {
        let (lo, hi) = self.streams.get(&stream)?.retained_span()?;
        let (first, last) = (first.max(lo), last.min(hi));
        (first <= last).then_some(SeqRange { stream, first, last })
    }

    /// Sends every pending digest batch (`Timer::Flush`), split into lists of `max_list_len`.
    pub(crate) fn flush_ihaves(&mut self) {
        let max = self.config.max_list_len;
        let mut out = Vec::new();
        for (id, peer) in self.peers.iter_mut() {
            if peer.ihave.is_empty() {
                continue;
            }
            let (ranges, hops) = peer.take_ihave();
            if ranges.len() <= max {
                out.push((*id, Message::IHave { ranges, hops }));
            } else {
                for chunk in ranges.chunks(max) {
                    out.push((*id, Message::IHave { ranges: chunk.to_vec(), hops }));
                }
            }
        }
        self.counters.ihaves_sent += out.len() as u64;
        for (to, message) in out {
            self.send(to, message);
        }
    }

    /// Sends the batched cumulative acks to every neighbour (`Timer::Ack` or `Config::ack_every`).
    pub(crate) fn flush_acks(&mut self) {
        self.ack_pending = 0;
        if self.ack_dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.ack_dirty);
        let mut marks = Vec::with_capacity(dirty.len());
        for stream in dirty {
            if let Some(state) = self.streams.get_mut(&stream) {
                state.ack_dirty = false;
                marks.push(Watermark { stream, seq: state.delivered });
            }
        }
        if marks.is_empty() {
            return;
        }
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for chunk in marks.chunks(self.config.max_list_len) {
            for to in &peers {
                self.send(*to, Message::Ack { marks: chunk.to_vec() });
            }
        }
    }

    /// Notes that `from` holds `first..=last` of `stream` (digest, ack or out-of-window payload): if we
    /// lack some of it, remember `from` as a source and arm the graft timer. Creates the stream if new
    /// (`adopt`), starting from the first announced message.
    pub(crate) fn note_announced(&mut self, from: NodeId, range: SeqRange, adopt: bool, now: Instant) {
        let stream = range.stream;
        if stream.origin == self.me && stream.epoch == self.own.epoch {
            return;
        }
        // Nothing exists beyond `MAX_SEQ`: cut the range there (and keep watermarks below it).
        let range = SeqRange { last: range.last.min(MAX_SEQ), ..range };
        if range.first > range.last {
            return;
        }
        let window = self.config.reorder_window;
        let max_announcers = self.config.max_announcers;
        let start = self.adoption_start(stream, range.first);
        if adopt && !self.ensure_stream(from, stream, (start, range.last), now) {
            return;
        }
        let Some(state) = self.streams.get_mut(&stream) else { return };
        if range.last <= state.delivered || range.first > state.delivered + window {
            return;
        }
        state.announced_hi = state.announced_hi.max(range.last);
        let hi = range.last.min(state.delivered + window);
        if hi > state.known_hi {
            state.known_hi = hi;
        }
        if state.has_missing() {
            if let Some(peer) = self.peers.get(&from) {
                state.add_announcer(peer.slot, max_announcers);
            }
            state.last_active = now;
            self.arm_graft(stream, now);
        }
    }

    /// An `IHave` digest from `from`.
    pub(crate) fn on_ihave(&mut self, from: NodeId, ranges: &[SeqRange], now: Instant) {
        if ranges.len() > self.config.max_list_len.max(MAX_LIST_LEN) {
            return self.violation(from, "ihave with too many ranges");
        }
        if ranges.iter().any(|r| !r.is_valid()) {
            return self.violation(from, "ihave with an invalid range");
        }
        for range in ranges {
            self.note_announced(from, *range, true, now);
        }
    }

    /// The graft timer of `stream` fired: if messages are still missing, ask an announcer for them
    /// (the fastest by RTT first, then the others in turn) and make that link a tree link.
    ///
    /// Before the first graft of a round, a stream whose watermark moved since the timer was armed is
    /// given another graft delay instead: the tree is delivering it, only late (a queue on the way,
    /// a busy relay). Under load digests outrun payloads, and grafting then would add a second path
    /// to a working tree — a cycle, duplicates and prunes. A stalled tree (a dead relay, a hole)
    /// moves no watermark, so it is grafted around one delay later.
    ///
    /// A round gives up after `gap_timeout` without progress. Progress (the watermark moved) means
    /// the holes the round was asking for were filled, and whatever is missing now is newer: the
    /// round starts over, with a full `gap_timeout` (and short retries) for it. Under a steady stream
    /// with a hole now and then, a round can run for long; measured from its first hole, it would give
    /// up on a fresh hole at once.
    pub(crate) fn on_graft_timer(&mut self, stream: StreamId, generation: u64, now: Instant) {
        let gap_timeout = self.config.gap_timeout;
        let max_list = self.config.max_list_len;
        let delay = self.graft_delay();
        let Some(state) = self.streams.get_mut(&stream) else { return };
        if state.repair().graft_gen != generation || state.repair().graft_since.is_none() {
            return;
        }
        let delivered = state.delivered;
        if state.repair().graft_tries > 0 && delivered > state.repair().graft_mark {
            let repair = state.repair_mut();
            repair.graft_mark = delivered;
            repair.graft_since = Some(now);
            repair.graft_tries = 0;
        }
        let Some(since) = state.repair().graft_since else { return };
        let expired = now.saturating_duration_since(since) >= gap_timeout;
        if expired && state.repair().buffer.is_empty() && state.repair().proven_ahead.is_some() {
            return self.skip_unservable(stream, now);
        }
        if !state.has_missing() || expired {
            // Filled, or nobody could serve it for a whole gap timeout: stop asking. A real loss
            // becomes a `Gap` through the gap timer (if later payloads are held); an unfounded claim
            // (a forged digest) is forgotten.
            state.repair_mut().graft_since = None;
            let last_buffered = state.repair().buffer.keys().next_back().copied();
            state.known_hi = last_buffered.unwrap_or(delivered);
            state.announced_hi = state.known_hi;
            state.settle_repair();
            return;
        }
        if state.repair().graft_tries == 0 && delivered > state.repair().graft_mark {
            let repair = state.repair_mut();
            repair.graft_mark = delivered;
            repair.graft_since = Some(now);
            self.counters.grafts_deferred += 1;
            let at = now + delay;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Graft { stream, generation } });
            return;
        }
        let want = state.missing_ranges(stream, if state.repair().shed { 1 } else { max_list });
        let tries = state.repair().graft_tries;
        state.repair_mut().graft_tries += 1;
        // Candidates: announcers that are still neighbours; if none, any neighbour.
        let announcers = &state.announcers;
        let mut candidates: Vec<NodeId> =
            self.peers.iter().filter(|(_, p)| announcers.contains(&p.slot)).map(|(id, _)| *id).collect();
        if candidates.is_empty() {
            candidates = self.peers.keys().copied().collect();
        }
        // Retries back off (doubling, at most the graft delay): an answer that is merely late — queued
        // behind a busy link's backlog — is not multiplied by a retry every few milliseconds.
        let backoff = self.config.graft_retry_timeout.saturating_mul(1 << tries.min(16)).min(delay);
        let at = now + backoff;
        self.actions.push_back(Action::SetTimer { at, timer: Timer::Graft { stream, generation } });
        if candidates.is_empty() {
            return;
        }
        // Fastest first (unknown RTT counts as slow), then rotate through the rest.
        candidates.sort_by_key(|p| self.peers.get(p).and_then(|x| x.rtt).unwrap_or(std::time::Duration::MAX));
        let to = if tries == 0 { candidates[0] } else { candidates[self.random_index(candidates.len())] };
        // Plumtree: a graft makes the link a tree link on both sides (the tree was broken or slow
        // between the origin and us; this link is known to reach it). One per round: see
        // `StreamState::grafted_to`.
        let beacons_flow = self.beacons_flow(now);
        let eager = match self.streams.get_mut(&stream) {
            Some(state)
                if !beacons_flow
                    && !state.repair().grafted_to.is_some_and(|p| self.peers.contains_key(&p)) =>
            {
                state.repair_mut().grafted_to = Some(to);
                true
            }
            _ => false,
        };
        if let Some(p) = self.peers.get_mut(&to) {
            if eager {
                p.eager = true;
                p.last_graft = Some(now);
            }
            p.asked.clone_from(&want);
        }
        self.counters.grafts_sent += 1;
        self.send(to, Message::Graft { want, eager });
    }

    /// A `Graft` from `from`: make the link eager if asked, and send what it wants from retention
    /// (and the reorder buffer), at most `max_serve_per_request` payloads whatever the ranges say.
    pub(crate) fn on_graft(&mut self, from: NodeId, want: &[SeqRange], eager: bool, now: Instant) {
        self.counters.grafts_received += 1;
        if want.len() > MAX_LIST_LEN {
            return self.violation(from, "graft with too many ranges");
        }
        if want.iter().any(|r| !r.is_valid()) {
            return self.violation(from, "graft with an invalid range");
        }
        if !self.peers.contains_key(&from) {
            return;
        }
        if let Some(p) = self.peers.get_mut(&from) {
            if eager {
                p.eager = true;
                p.last_graft = Some(now);
            }
            // It lacks these payloads, so perhaps their manifests too: send each again first.
            let slot = p.slot;
            for range in want {
                if let Some(state) = self.streams.get_mut(&range.stream) {
                    state.resend_proofs(slot);
                }
            }
        }
        let mut budget = self.config.max_serve_per_request;
        for range in want {
            if budget == 0 {
                break;
            }
            budget = self.serve(from, range.stream, (range.first, range.last), budget, now);
        }
    }

    /// Sends `first..=last` of `stream` to `to` from what we hold, spending at most `budget` sends.
    /// Only sequence numbers inside the retained span or the buffer are visited, so a huge range costs
    /// nothing extra. Each payload is charged to `to`'s repair budget (`Config::serve_bytes_per_sec`);
    /// past it the rest is not sent. Returns the budget of sends left.
    fn serve(
        &mut self,
        to: NodeId,
        stream: StreamId,
        (first, last): (u64, u64),
        mut budget: u64,
        now: Instant,
    ) -> u64 {
        if self.config.history {
            // What lies before the retained span (everything, for a stream no longer tracked) may
            // be in the history. Asked for, it comes first; what is retained is sent when the
            // neighbour asks again, since it could not keep it beyond the older part anyway.
            let before = match self.streams.get(&stream) {
                None => Some(last),
                Some(state) => {
                    let held = last.min(state.delivered);
                    Some(state.retained_span().map_or(held, |(lo, _)| held.min(lo.saturating_sub(1))))
                }
            };
            if let Some(top) = before.filter(|top| *top >= first) {
                let left = self.recall(to, stream, (first, top), budget, now);
                if left < budget || self.peers.get(&to).is_some_and(|p| p.recalling.is_some()) {
                    return left;
                }
            }
        }
        let Some(state) = self.streams.get(&stream) else { return budget };
        let mut batch = Vec::new();
        if let Some((lo, hi)) = state.retained_span() {
            let (a, b) = (first.max(lo), last.min(hi));
            let mut seq = a;
            while seq <= b && budget > 0 {
                if let Some(held) = state.get(seq) {
                    batch.push((seq, held.wire_hops, held.payload.clone(), held.proof.clone()));
                }
                budget -= 1;
                seq += 1;
            }
        }
        for (&seq, held) in state.repair().buffer.range(first..=last) {
            if budget == 0 {
                break;
            }
            batch.push((seq, held.wire_hops, held.payload.clone(), held.proof.clone()));
            budget -= 1;
        }
        let total = batch.len();
        for (i, (seq, hops, payload, proof)) in batch.into_iter().enumerate() {
            let Some(p) = self.peers.get_mut(&to) else { break };
            // Payloads are at most a frame long, far within `u32`.
            if !p.serve_bytes.take_n(payload.len().try_into().unwrap_or(u32::MAX), now) {
                self.counters.repairs_over_budget += (total - i) as u64;
                break;
            }
            self.counters.resends += 1;
            self.counters.payloads_sent += 1;
            self.counters.payload_bytes_sent += payload.len() as u64;
            let slot = p.slot;
            let run = (proof.first, proof.last());
            if self.streams.get_mut(&stream).is_none_or(|s| s.note_sent(slot, seq, run)) {
                self.counters.manifests_sent += 1;
                self.send(to, Message::Manifest(proof));
            }
            self.send(to, Message::Data { stream, seq, hops, payload });
        }
        budget
    }

    /// A `Prune` from `from`: stop pushing payloads to it; it gets digests.
    pub(crate) fn on_prune(&mut self, from: NodeId, now: Instant) {
        self.counters.prunes_received += 1;
        if let Some(p) = self.peers.get_mut(&from) {
            p.eager = false;
        }
        self.ensure_attached(now);
    }

    /// An `Ack` from `from`: record its watermarks (what need not be re-offered if the link breaks,
    /// and what it holds, so retained payloads settle), and treat a watermark ahead of ours, or of a
    /// stream we have not heard of, as an announcement of what we lack.
    pub(crate) fn on_ack(&mut self, from: NodeId, marks: &[Watermark], now: Instant) {
        if marks.len() > MAX_LIST_LEN {
            return self.violation(from, "ack with too many marks");
        }
        if marks.iter().any(|m| m.seq > MAX_SEQ) {
            return self.violation(from, "ack with a sequence number beyond MAX_SEQ");
        }
        for mark in marks {
            if mark.seq > 0 && !self.streams.contains_key(&mark.stream) {
                // It delivered a message of a stream we have not heard of yet (its acknowledgement
                // overtook the message): news of that message, on the new-stream budget like a
                // digest. Taking the stream up now keeps this acknowledgement, the only one it sends
                // for the message; without it the payload would never settle here.
                self.note_announced(from, SeqRange::single(mark.stream, mark.seq), true, now);
            }
            let Some(state) = self.streams.get_mut(&mark.stream) else { continue };
            let Some(slot) = self.peers.get(&from).map(|p| p.slot) else { break };
            let sent = state.mark_mut(slot);
            let before = sent.acked;
            sent.acked = before.max(mark.seq);
            let moved = sent.acked > before;
            // The smallest acknowledgement can only move if it was this one.
            if moved && before <= state.settled && from != mark.stream.origin {
                state.settled = settled_mark(&self.peers, mark.stream.origin, state);
            }
        }
        // What every neighbour now holds need not be retained beyond the settled budget.
        self.release_settled();
        for mark in marks {
            if mark.seq > 0 {
                let range = SeqRange { stream: mark.stream, first: 1, last: mark.seq };
                self.note_announced(from, range, false, now);
            }
        }
    }

    /// A `Sync` from a new neighbour: push it, from retention, what it lacks of every stream we know;
    /// adopt its position for streams we have never heard of (so we do not wait for older history).
    pub(crate) fn on_sync(&mut self, from: NodeId, marks: &[Watermark], now: Instant) {
        if marks.len() > MAX_LIST_LEN {
            return self.violation(from, "sync with too many marks");
        }
        if marks.iter().any(|m| m.seq > MAX_SEQ) {
            return self.violation(from, "sync with a sequence number beyond MAX_SEQ");
        }
        if !self.peers.contains_key(&from) {
            return;
        }
        let per_stream = self.config.max_serve_per_request;
        // Streams it names that we parked with its position delivered: we acknowledge that
        // position, which it cannot learn otherwise (a parked stream's watermark does not move),
        // so that what it retains of them can settle.
        let mut parked_acks = Vec::new();
        for mark in marks {
            let slot = self.peers.get(&from).map(|p| p.slot);
            if let (Some(slot), Some(state)) = (slot, self.streams.get_mut(&mark.stream)) {
                state.resend_proofs(slot);
                // Its position is what it holds: an acknowledgement (it sends no other for messages
                // it delivered before the link came up).
                let sent = state.mark_mut(slot);
                if mark.seq > sent.acked {
                    sent.acked = mark.seq;
                    self.refresh_settled(&mark.stream);
                }
            }
            match self.streams.get(&mark.stream) {
                Some(state) => {
                    let ours = state.delivered;
                    if ours > mark.seq {
                        let before = self.counters.resends;
                        self.serve(from, mark.stream, (mark.seq + 1, ours), per_stream, now);
                        self.counters.sync_resends += self.counters.resends - before;
                    } else if mark.seq > ours {
                        let range = SeqRange { stream: mark.stream, first: ours + 1, last: mark.seq };
                        self.note_announced(from, range, false, now);
                    }
                }
                None if self.forgotten.watermark(&mark.stream).is_some_and(|w| w >= mark.seq) => {
                    self.counters.parked_news += 1;
                    if mark.seq > 0 {
                        parked_acks.push(*mark);
                    }
                }
                None if mark.stream != self.own && mark.seq > 0 => {
                    // Never heard of it: take what is owed to us of what the peer has (see
                    // `adoption_start`), and nothing older; or, for a stream this node delivered
                    // before (evicted, or resumed after a restart), everything after its mark.
                    let start = self.adoption_start(mark.stream, mark.seq.saturating_add(1));
                    if self.ensure_stream(from, mark.stream, (start, mark.seq), now) {
                        let have = self.streams.get(&mark.stream).map_or(start, |s| s.delivered);
                        if have < mark.seq {
                            let range = SeqRange { stream: mark.stream, first: have + 1, last: mark.seq };
                            self.note_announced(from, range, false, now);
                        }
                    }
                }
                None => {}
            }
        }
        for chunk in parked_acks.chunks(self.config.max_list_len) {
            self.send(from, Message::Ack { marks: chunk.to_vec() });
        }
        self.release_settled();
    }

    /// Gives every hole waiting for repair a whole `gap_timeout` from `now`: called when a node that
    /// had no neighbour gets one, so the time spent alone (when no repair was possible) does not count.
    fn restart_gap_clocks(&mut self, now: Instant) {
        let waiting: Vec<StreamId> =
            self.streams.iter().filter(|(_, s)| s.repair().gap_armed).map(|(id, _)| *id).collect();
        for stream in waiting {
            if let Some(repair) = self.streams.get_mut(&stream).and_then(|s| s.repair_if_any()) {
                repair.gap_armed = false;
            }
            self.arm_gap(stream, now);
        }
    }

    /// Nobody served the window after `stream`'s watermark for a whole gap timeout, nothing is
    /// buffered, and the origin proved the stream goes on beyond the window
    /// (`StreamState::proven_ahead`): report the messages up to a window before that proof as a
    /// `Gap`, and ask at once for the window that reaches it (the newest messages are the ones
    /// neighbours are likeliest to hold). A node that resumed a stream behind everything its
    /// neighbours hold goes on this way, a window per gap timeout, instead of waiting for ever.
    fn skip_unservable(&mut self, stream: StreamId, now: Instant) {
        let window = self.config.reorder_window;
        let Some(state) = self.streams.get_mut(&stream) else { return };
        let Some(repair) = state.repair_if_any() else { return };
        let Some(ahead) = repair.proven_ahead.take() else { return };
        repair.graft_since = None;
        let first = state.delivered + 1;
        let last = ahead.saturating_sub(window).max(state.delivered);
        if last >= first {
            state.delivered = last;
            state.known_hi = ahead.min(last + window);
            state.announced_hi = state.announced_hi.max(ahead);
            self.proof_bytes -= state.release_proofs_through(last);
            self.report_gap(stream, first, last);
        }
        self.arm_graft_at(stream, now, now);
    }

    /// Reports `first..=last` of `stream` lost (its watermark already past them): a `Gap` event,
    /// counted, and the new watermark acknowledged to the neighbours.
    fn report_gap(&mut self, stream: StreamId, first: u64, last: u64) {
        if let Some(state) = self.streams.get_mut(&stream)
            && !state.ack_dirty
        {
            state.ack_dirty = true;
            self.ack_dirty.push(stream);
        }
        self.counters.gaps += 1;
        self.counters.gap_messages += last - first + 1;
        self.actions.push_back(Action::Event(Event::Gap { stream, first, last }));
    }

    /// The gap timer of `stream` fired: the hole in front of the buffered payloads could not be filled
    /// in `gap_timeout`. Report it as a `Gap` and deliver what follows.
    pub(crate) fn on_gap_timer(&mut self, stream: StreamId, generation: u64, now: Instant) {
        let Some(state) = self.streams.get_mut(&stream) else { return };
        let Some(repair) = state.repair_if_any() else { return };
        if !repair.gap_armed || repair.gap_gen != generation {
            return;
        }
        repair.gap_armed = false;
        if self.peers.is_empty() {
            // Alone, nobody could have repaired the hole: it is not lost yet. Wait on; the clock
            // restarts when the first neighbour comes (`restart_gap_clocks`).
            return self.arm_gap(stream, now);
        }
        let Some(first_held) = repair.buffer.keys().next().copied() else {
            state.settle_repair();
            return;
        };
        let first = state.delivered + 1;
        let last = first_held - 1;
        state.delivered = last;
        self.report_gap(stream, first, last);
        self.drain(stream, now);
    }
}
