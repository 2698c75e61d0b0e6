//! Checking payloads a group at a time: while a batch of received messages is handed in, the
//! payloads of one manifest group that arrive in order from one neighbour are held until the group
//! is whole, then proven with one [`Manifest::proves_group`] (one BLAKE3 pass over all of them,
//! which hashes many chunks at once) instead of one [`Manifest::proves`] each.
//!
//! Holding is an optimisation only, and waits for nothing but the rest of a group already on its
//! way. A group begins to be held only within a batch ([`Router::begin_batch`] …
//! [`Router::end_batch`], which a driver brackets around what it read from a connection at once).
//! Origins send each batch's payloads back to back and relays forward a group at once, so a group
//! cut by the end of a read has its rest in the next read from the same neighbour: it stays held
//! for at most `Config::max_group_hold`. Anything that does not extend it (another neighbour,
//! stream or sequence number, a timer, the sender going away, the hold running out) hands what is
//! held to the one-payload-at-a-time path, which proves each payload on its own, exactly as if it
//! had never been held. So is a whole group whose digest fails: the per-payload check then names
//! the payload that is not the origin's, and the neighbour that sent it is blamed as always.
//!
//! Only payloads shorter than [`BLAKE3_FROM_LEN`] are held: longer ones are hashed with BLAKE3 on
//! their own, as fast per byte as a group, and holding them would only cost copies. That also
//! bounds what a group holds, and the scratch buffer its digest is computed in, to
//! [`crate::proof::GROUP_LEN`] such payloads.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;

use super::action::{Action, Timer};
use super::ids::StreamId;
use super::router::Router;
use crate::proof::{BLAKE3_FROM_LEN, Manifest};

/// A `Data` as received, on its way through the receive path.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) from: NodeId,
    pub(crate) stream: StreamId,
    pub(crate) seq: u64,
    pub(crate) hops: u32,
    pub(crate) payload: Bytes,
}

/// The payloads of one group held while the rest of it arrives.
#[derive(Debug)]
pub(crate) struct HeldGroup {
    from: NodeId,
    stream: StreamId,
    /// The group's last sequence number (its first is the first payload held).
    end: u64,
    /// When its first payload was held.
    since: Instant,
    proof: Arc<Manifest>,
    /// `(seq, hops, payload)`, consecutive from the group's first.
    payloads: Vec<(u64, u32, Bytes)>,
}

impl HeldGroup {
    /// Whether `seq` of `stream` from `from` is the next payload of this group.
    fn takes(&self, from: NodeId, stream: StreamId, seq: u64) -> bool {
        self.from == from && self.stream == stream && self.next() == Some(seq)
    }

    fn next(&self) -> Option<u64> {
        let last = self.payloads.last()?.0;
        (last < self.end).then_some(last + 1)
    }

    fn is_whole(&self) -> bool {
        self.next().is_none()
    }
}

/// How a payload handed to the receive path is to be proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// On its own, or held to be proven with its group if it begins one.
    MayHold,
    /// On its own.
    Alone,
    /// Already proven, with its whole group, by this manifest (checked again on its own if the
    /// stream's proof for it is another manifest by then).
    Proven,
}

impl<R: rand::Rng> Router<R> {
    /// Starts a batch of messages received together (what a driver read from one connection at
    /// once): until [`Router::end_batch`], payloads may be held to be proven a group at a time.
    pub fn begin_batch(&mut self, now: Instant) {
        self.release_expired(now);
        self.batching = true;
    }

    /// Ends the batch begun by [`Router::begin_batch`]. A group still held (cut by the end of the
    /// read) waits for its rest until `Config::max_group_hold` after its first payload came.
    pub fn end_batch(&mut self, now: Instant) {
        self.batching = false;
        self.release_expired(now);
        if let Some(group) = &self.held
            && !self.group_timer_armed
        {
            self.group_timer_armed = true;
            let at = group.since + self.config.max_group_hold;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::GroupHold });
        }
    }

    /// Releases the held group if it has waited `Config::max_group_hold`.
    fn release_expired(&mut self, now: Instant) {
        if self.held.as_ref().is_some_and(|g| g.since + self.config.max_group_hold <= now) {
            self.release_held(now);
        }
    }

    /// Takes `data` into the held group if it is the group's next payload; otherwise releases the
    /// group (see [`Router::release_held`]) and returns `data`.
    pub(crate) fn extend_held(&mut self, data: Incoming, now: Instant) -> Option<Incoming> {
        let Some(group) = self.held.as_mut() else { return Some(data) };
        if !group.takes(data.from, data.stream, data.seq) || data.payload.len() >= BLAKE3_FROM_LEN {
            self.release_held(now);
            return Some(data);
        }
        group.payloads.push((data.seq, data.hops, data.payload));
        if group.is_whole() {
            self.release_held(now);
        }
        None
    }

    /// Holds `data`, the first payload of its group under `proof`, if a batch is under way and the
    /// group has more. Returns it when it is not held.
    pub(crate) fn hold_group(
        &mut self,
        data: Incoming,
        proof: &Arc<Manifest>,
        now: Instant,
    ) -> Option<Incoming> {
        let seq = data.seq;
        let group = proof.group_of(seq).filter(|(start, end)| *start == seq && end > start);
        let small = data.payload.len() < BLAKE3_FROM_LEN;
        let Some((_, end)) = group.filter(|_| small && self.batching && self.held.is_none()) else {
            return Some(data);
        };
        let Incoming { from, stream, seq, hops, payload } = data;
        self.held = Some(HeldGroup {
            from,
            stream,
            end,
            since: now,
            proof: proof.clone(),
            payloads: vec![(seq, hops, payload)],
        });
        None
    }

    /// Hands what is held to the receive path: proven at once if the group is whole and its digest
    /// holds, each payload on its own otherwise.
    pub(crate) fn release_held(&mut self, now: Instant) {
        let Some(group) = self.held.take() else { return };
        let proven = group.is_whole() && {
            let mut scratch = std::mem::take(&mut self.group_scratch);
            let start = group.payloads[0].0;
            let ok =
                group.proof.proves_group(start, group.payloads.iter().map(|(_, _, p)| &p[..]), &mut scratch);
            self.group_scratch = scratch;
            ok
        };
        if proven {
            self.counters.groups_proven += 1;
        }
        let check = if proven { Check::Proven } else { Check::Alone };
        for (seq, hops, payload) in group.payloads {
            let data = Incoming { from: group.from, stream: group.stream, seq, hops, payload };
            self.receive_data(data, check, Some(&group.proof), now);
        }
    }
}
