//! The payload path: eager push along tree links and digests on lazy links ([`Router::forward`]),
//! receiving a payload (dedup, proof, prune on duplicates, reorder, in-order delivery), and arming
//! the per-stream repair timers when a hole appears.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;

use super::action::{Action, Delivery, Recipients, Timer};
use super::group::{Check, Incoming};
use super::ids::{MAX_SEQ, MessageId, StreamId};
use super::message::Message;
use super::router::Router;
use super::stream::{Arrival, Held};
use crate::proof::Manifest;

impl<R: rand::Rng> Router<R> {
    /// Plumtree's dissemination step for a payload this node just obtained: push it to every eager
    /// neighbour except the one it came from, and queue a digest entry for every lazy one.
    ///
    /// The eager neighbours get the payload in one [`Action::Send`], so the driver encodes it once;
    /// those that have not had its manifest `proof` get that first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &mut self,
        stream: StreamId,
        seq: u64,
        wire_hops: u32,
        payload: &Bytes,
        proof: &Arc<Manifest>,
        except: Option<NodeId>,
        now: Instant,
    ) {
        let mut any_lazy = false;
        let mut eager = Recipients::new();
        let mut need_proof = Recipients::new();
        let run = (proof.first, proof.last());
        let mut state = self.streams.get_mut(&stream);
        for (id, peer) in self.peers.iter_mut() {
            if Some(*id) == except {
                continue;
            }
            if peer.eager {
                // A stream we do not track keeps no marks: its manifest goes with every payload.
                if state.as_mut().is_none_or(|s| s.note_sent(peer.slot, seq, run)) {
                    need_proof.push(*id);
                }
                self.counters.payloads_sent += 1;
                self.counters.payload_bytes_sent += payload.len() as u64;
                eager.push(*id);
            } else {
                peer.push_ihave(stream, seq, wire_hops);
                any_lazy = true;
            }
        }
        if !need_proof.is_empty() {
            self.counters.manifests_sent += need_proof.len() as u64;
            self.actions
                .push_back(Action::Send { to: need_proof, message: Message::Manifest(proof.clone()) });
        }
        if !eager.is_empty() {
            let message = Message::Data { stream, seq, hops: wire_hops, payload: payload.clone() };
            self.actions.push_back(Action::Send { to: eager, message });
        }
        if any_lazy {
            self.arm_flush(now);
        }
    }

    /// A `Data` from `from`.
    pub(crate) fn on_data(
        &mut self,
        from: NodeId,
        stream: StreamId,
        seq: u64,
        hops: u32,
        payload: Bytes,
        now: Instant,
    ) {
        self.counters.payloads_received += 1;
        self.counters.payload_bytes_received += payload.len() as u64;
        let data = Incoming { from, stream, seq, hops, payload };
        let Some(data) = self.extend_held(data, now) else { return };
        self.receive_data(data, Check::MayHold, None, now);
    }

    /// The receive path of one payload, after [`group`](super::group) holding: `check` says how it is
    /// proven, and `group_proof` is the manifest a [`Check::Proven`] payload was proven by.
    pub(crate) fn receive_data(
        &mut self,
        data: Incoming,
        check: Check,
        group_proof: Option<&Arc<Manifest>>,
        now: Instant,
    ) {
        let Incoming { from, stream, seq, hops, payload } = data;
        if seq == 0 {
            return self.violation(from, "data with sequence number 0");
        }
        if seq > MAX_SEQ {
            return self.violation(from, "data with a sequence number beyond MAX_SEQ");
        }
        if stream == self.own {
            // Our own messages come back as duplicates; one we never sent (not numbered yet, or
            // waiting for its batch to be signed) is forged.
            if seq >= self.next_seq - self.batch.len() as u64 {
                return self.violation(from, "data of our own stream that we never sent");
            }
            return self.on_duplicate(from, stream, seq, now);
        }
        let window = self.config.reorder_window;
        // A stream is created by its first manifest (`on_manifest`), never by a payload: a payload
        // nothing proves must not decide where a stream starts.
        let Some(state) = self.streams.get_mut(&stream) else {
            if self.forgotten.watermark(&stream).is_some_and(|w| w >= seq) {
                // A late copy of a message of a stream parked since.
                self.counters.parked_news += 1;
                return self.on_duplicate(from, stream, seq, now);
            }
            return self.on_unproven(from, stream, seq, now);
        };
        if state.provisional
            && let Some(proof) = state.proof_for(seq)
            && proof.proves(seq, &payload)
        {
            self.reanchor(stream, seq);
        }
        let Some(state) = self.streams.get_mut(&stream) else { return };
        match state.classify(seq, window) {
            Arrival::Old | Arrival::Buffered => return self.on_duplicate(from, stream, seq, now),
            Arrival::TooFar => {
                // Not held (a forged far-future number must not create state), but remember that
                // the sender is ahead: ask it for the window after our watermark.
                self.counters.dropped_ahead += 1;
                state.known_hi = state.delivered + window;
                if let Some(peer) = self.peers.get(&from) {
                    state.add_announcer(peer.slot, self.config.max_announcers);
                }
                return self.arm_graft(stream, now);
            }
            Arrival::New => {}
        }
        // Only the origin can say what a message is: its manifest, verified, must list this payload.
        let Some(proof) = state.proof_for(seq).cloned() else {
            return self.on_unproven(from, stream, seq, now);
        };
        let in_order = seq == state.delivered + 1;
        let payload = match check {
            Check::MayHold if in_order => {
                let data = Incoming { from, stream, seq, hops, payload };
                let Some(data) = self.hold_group(data, &proof, now) else { return };
                data.payload
            }
            _ => payload,
        };
        let proven = check == Check::Proven && group_proof.is_some_and(|g| Arc::ptr_eq(g, &proof));
        if !proven && !proof.proves(seq, &payload) {
            return self.violation(from, "data that does not match its origin's manifest");
        }
        let Some(state) = self.streams.get_mut(&stream) else { return };
        state.last_active = now;
        let asked = self.peers.get(&from).filter(|p| p.was_asked(stream, seq)).map(|p| p.slot);
        if let Some(slot) = asked {
            state.repaired = Some((seq, slot));
        }
        self.refuse_push(from, asked.is_some(), now);
        let wire_hops = hops.saturating_add(1);

        // The paper also makes the sender of a new payload an eager peer. We do not: with many
        // concurrent origins, payloads still in flight on a just-pruned link revive it and the cycles
        // never go away. Links become eager only at start and through grafts.
        //
        // The next payload in order is relayed first, then delivered. One behind a hole is relayed
        // at once only within the stream's relay budget, so a hole here delays the rest of the tree
        // by one repair at most, while a stream whose holes never fill (a hostile origin's) cannot
        // make every node carry more than the budget of it before anyone can deliver it.
        let Some(state) = self.streams.get(&stream) else { return };
        let len = payload.len();
        if seq == state.delivered + 1 {
            self.forward(stream, seq, wire_hops, &payload, &proof, Some(from), now);
            self.deliver(stream, seq, Held { payload, wire_hops, proof }, None, now);
            self.drain(stream, now);
            return;
        }
        let fits = state.repair().buffer_bytes + len <= self.config.reorder_max_stream_bytes
            && self.make_reorder_room(stream, len);
        let Some(state) = self.streams.get_mut(&stream) else { return };
        if fits {
            let relay_now = state.relayed_ahead() + len <= self.config.relay_ahead_bytes;
            if relay_now {
                self.forward(stream, seq, wire_hops, &payload, &proof, Some(from), now);
            } else {
                self.counters.relays_deferred += 1;
            }
            let Some(state) = self.streams.get_mut(&stream) else { return };
            // Copied: it may wait up to `gap_timeout` here, and a slice of the connection's read
            // buffer would keep all of that buffer (several payloads' worth) alive as long. Honest
            // payloads wait here only around a repair, so the copy stays off the common path.
            let payload = Bytes::copy_from_slice(&payload);
            self.buffered_bytes += len;
            state.buffer_insert(seq, Held { payload, wire_hops, proof }, (!relay_now).then_some(from));
            state.known_hi = state.known_hi.max(seq);
            if let Some(peer) = self.peers.get(&from) {
                state.add_announcer(peer.slot, self.config.max_announcers);
            }
            self.buffered_total += 1;
            self.arm_graft(stream, now);
            self.arm_gap(stream, now);
        } else {
            // The stream's reorder buffer is full, or the pool is and no stream holds more than
            // this one: drop it, unrelayed; a graft will fetch it again once the hole before it
            // fills, and it goes on from here then.
            self.counters.dropped_ahead += 1;
            state.repair_mut().shed = true;
            state.known_hi = state.known_hi.max(seq);
            if let Some(peer) = self.peers.get(&from) {
                state.add_announcer(peer.slot, self.config.max_announcers);
            }
            self.arm_graft(stream, now);
        }
    }

    /// A payload we already hold arrived from `from`: counted by cause, and nothing more. Duplicates
    /// do not prune: the tree is cut by the root's beacon alone (see *The tree beacon* in the crate
    /// docs), since payloads of many origins in flight at once would cut each cycle in several
    /// places and break the tree apart.
    fn on_duplicate(&mut self, from: NodeId, stream: StreamId, seq: u64, now: Instant) {
        self.counters.duplicates += 1;
        self.classify_duplicate(from, stream, seq);
        let asked = self.peers.get(&from).is_some_and(|p| p.was_asked(stream, seq));
        self.refuse_push(from, asked, now);
    }

    /// A payload `from` pushed without being asked, over a link we see as lazy: the other end still
    /// sees a tree link (our prune was lost, or crossed its graft). Tell it again, unless a prune is
    /// already on its way.
    fn refuse_push(&mut self, from: NodeId, asked: bool, now: Instant) {
        if !asked && self.peers.get(&from).is_some_and(|p| !p.eager) {
            self.prune(from, now);
        }
    }

    /// Makes the link to `to` lazy and tells it to stop pushing (`Prune`). When the link was already
    /// lazy and a prune went out less than `graft_timeout` ago, that prune is still on its way (the
    /// peer keeps pushing until it reads it): no further one. Under load every payload in flight
    /// behind the first prune arrives as a duplicate, and a prune for each would add up to thousands.
    pub(crate) fn prune(&mut self, to: NodeId, now: Instant) {
        let repeat_after = self.config.graft_timeout;
        let Some(peer) = self.peers.get_mut(&to) else { return };
        let was_eager = std::mem::replace(&mut peer.eager, false);
        let recent = peer.last_prune.is_some_and(|at| now.saturating_duration_since(at) < repeat_after);
        if !was_eager && recent {
            return;
        }
        peer.last_prune = Some(now);
        self.counters.prunes_sent += 1;
        self.send(to, Message::Prune);
    }

    /// Counts a duplicate reception by cause (see the `duplicates_*` counters): an answer to our own
    /// graft, the tree copy of a message we grafted, a push over a link eager in our view (a cycle),
    /// or over one lazy in our view.
    fn classify_duplicate(&mut self, from: NodeId, stream: StreamId, seq: u64) {
        let Some(peer) = self.peers.get(&from) else { return };
        let repaired = self.streams.get(&stream).and_then(|s| s.repaired);
        let c = &mut self.counters;
        if peer.was_asked(stream, seq) {
            c.duplicates_graft_answer += 1;
        } else if repaired.is_some_and(|(rseq, by)| rseq == seq && by != peer.slot) {
            c.duplicates_after_graft += 1;
        } else if peer.eager {
            c.duplicates_eager += 1;
        } else {
            c.duplicates_lazy += 1;
        }
    }

    /// Delivers `seq` (which must be `delivered + 1`), retains it and advances the watermark; relays
    /// it first if it waited unrelayed (`deferred_from`, its sender).
    fn deliver(
        &mut self,
        stream: StreamId,
        seq: u64,
        held: Held,
        deferred_from: Option<NodeId>,
        now: Instant,
    ) {
        if let Some(from) = deferred_from {
            self.forward(stream, seq, held.wire_hops, &held.payload, &held.proof, Some(from), now);
        }
        let delivery = Delivery {
            id: MessageId { stream, seq },
            // Links travelled: the received hop count plus the link it arrived on (1 from the origin).
            hops: held.wire_hops,
            payload: held.payload.clone(),
            through: seq,
        };
        let len = held.payload.len();
        let archive = self.config.history.then(|| Action::Archive {
            stream,
            seq,
            payload: held.payload.clone(),
            proof: held.proof.clone(),
        });
        let Some(state) = self.streams.get_mut(&stream) else { return };
        state.delivered = seq;
        state.provisional = false;
        if let Some(repair) = state.repair_if_any()
            && repair.proven_ahead.is_some_and(|ahead| ahead <= seq)
        {
            repair.proven_ahead = None;
        }
        state.known_hi = state.known_hi.max(seq);
        let freed = state.retain(seq, held);
        let serial = state.serial;
        if state.proofs.first_key_value().is_some_and(|(_, m)| m.last() <= seq) {
            self.proof_bytes -= state.release_proofs_through(seq);
        }
        if !state.ack_dirty {
            state.ack_dirty = true;
            self.ack_dirty.push(stream);
        }
        self.counters.delivered += 1;
        self.actions.push_back(Action::Deliver(delivery));
        self.actions.extend(archive);
        self.log_retained((serial, seq, len), freed, now);
        self.ack_pending += 1;
        if self.ack_pending >= self.config.ack_every {
            self.flush_acks();
        } else {
            self.arm_ack(now);
        }
    }

    /// Delivers every buffered payload that is now contiguous with the watermark (relaying those
    /// not relayed yet), relays what the freed budget allows of the rest, then re-evaluates the
    /// repair timers of the stream.
    pub(crate) fn drain(&mut self, stream: StreamId, now: Instant) {
        let mut drained = false;
        loop {
            let Some(state) = self.streams.get_mut(&stream) else { return };
            let next = state.delivered + 1;
            let Some((held, deferred_from)) = state.buffer_remove(next) else { break };
            self.buffered_total -= 1;
            self.buffered_bytes -= held.payload.len();
            self.deliver(stream, next, held, deferred_from, now);
            drained = true;
        }
        if drained {
            self.relay_within_budget(stream, now);
        }
        let window = self.config.reorder_window;
        let Some(state) = self.streams.get_mut(&stream) else { return };
        let mut lag = None;
        let mut next_window = false;
        if !state.has_missing() && state.announced_hi > state.known_hi {
            // Catching up from far behind: the window is in, and more was announced.
            state.known_hi = state.announced_hi.min(state.delivered + window);
            next_window = true;
        }
        let missing = state.has_missing();
        let buffered = !state.repair().buffer.is_empty();
        if let Some(repair) = state.repair_if_any() {
            if !missing {
                // Nothing missing: any armed graft timer is now stale. If the tree filled the hole
                // on its own (no graft sent), that is one sample of how far the tree lags the
                // digests.
                if let Some(since) = repair.graft_since
                    && repair.graft_tries == 0
                {
                    lag = Some(now.saturating_duration_since(since));
                }
                repair.graft_since = None;
                repair.graft_gen = 0;
                repair.graft_tries = 0;
            }
            repair.gap_armed = false;
            if !buffered {
                repair.shed = false;
                repair.gap_gen = 0;
            }
        }
        state.settle_repair();
        if buffered {
            // A new hole in front of buffered payloads: restart the gap clock for it.
            self.arm_gap(stream, now);
        }
        if let Some(sample) = lag {
            self.note_tree_lag(sample);
        }
        if next_window {
            // The messages are known to exist: ask at once rather than wait for the tree.
            self.arm_graft_at(stream, now, now);
        }
    }

    /// Relays the buffered payloads of `stream` not relayed yet, in order, while its relay budget
    /// has room (after deliveries freed some).
    fn relay_within_budget(&mut self, stream: StreamId, now: Instant) {
        let budget = self.config.relay_ahead_bytes;
        let mut relay = Vec::new();
        let Some(state) = self.streams.get_mut(&stream) else { return };
        let mut room = budget.saturating_sub(state.relayed_ahead());
        for (&seq, &from) in &state.repair().deferred {
            let Some(held) = state.repair().buffer.get(&seq) else { continue };
            let len = held.payload.len();
            if len > room {
                break;
            }
            room -= len;
            relay.push((seq, from, held.clone()));
        }
        for (seq, _, held) in &relay {
            state.relayed(*seq, held.payload.len());
        }
        for (seq, from, held) in relay {
            self.forward(stream, seq, held.wire_hops, &held.payload, &held.proof, Some(from), now);
        }
    }

    /// Arms the stream's graft timer if it is not armed (one timer per stream, not per message).
    pub(crate) fn arm_graft(&mut self, stream: StreamId, now: Instant) {
        self.arm_graft_at(stream, now + self.graft_delay(), now);
    }

    /// Arms the stream's graft timer for `at` if it is not armed.
    pub(crate) fn arm_graft_at(&mut self, stream: StreamId, at: Instant, now: Instant) {
        let generation = self.timer_generation + 1;
        let Some(state) = self.streams.get_mut(&stream) else { return };
        if state.repair().graft_since.is_none() && state.has_missing() {
            let delivered = state.delivered;
            let repair = state.repair_mut();
            repair.graft_since = Some(now);
            repair.graft_tries = 0;
            repair.graft_mark = delivered;
            repair.grafted_to = None;
            repair.graft_gen = generation;
            self.timer_generation = generation;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Graft { stream, generation } });
        }
    }

    /// Arms the stream's gap timer if payloads wait behind a hole and it is not armed.
    pub(crate) fn arm_gap(&mut self, stream: StreamId, now: Instant) {
        // A stream that has delivered nothing yet, taken up by the joiner's rule, waits only
        // `backfill_timeout` for the messages before the first it heard of.
        let backfill = self.streams.get(&stream).is_some_and(|s| s.provisional) && !self.owed_whole(stream);
        let timeout = if backfill {
            self.config.gap_timeout.min(self.config.backfill_timeout)
        } else {
            self.config.gap_timeout
        };
        let at = now + timeout;
        let generation = self.timer_generation + 1;
        let Some(state) = self.streams.get_mut(&stream) else { return };
        if !state.repair().gap_armed && !state.repair().buffer.is_empty() {
            let repair = state.repair_mut();
            repair.gap_armed = true;
            repair.gap_gen = generation;
            self.timer_generation = generation;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Gap { stream, generation } });
        }
    }
}
