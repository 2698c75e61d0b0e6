//! The [`Router`] state machine: its fields, its public API, and the small helpers every handler uses
//! (queueing actions, arming timers, finding or creating a stream). The protocol steps themselves live
//! in `data.rs` (payloads: forward, dedup, deliver) and `repair.rs` (digests, grafts, prunes, acks, sync,
//! neighbour changes).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::{NodeId, TokenBucket};
use rand::Rng;

use super::action::{Action, Timer};
use super::beacon::TreeRound;
use super::config::{Config, InvalidConfig};
use super::counters::{Counters, Topology};
use super::ids::{MAX_SEQ, MessageId, StreamId};
use super::map::{KeyedMap, KeyedState};
use super::message::Message;
use super::peer::Peer;
use super::retention::RetentionLog;
use super::stream::{Held, StreamState};
use super::stream_table::{Forgotten, Recency};
use crate::proof::{Manifest, Signer};

/// The sans-IO Plumtree router of one node. See the [module docs](crate::core) for the protocol.
#[derive(Debug)]
pub struct Router<R> {
    pub(crate) me: NodeId,
    pub(crate) own: StreamId,
    /// When the router was made: with the start time in `own`'s epoch, the wall clock.
    pub(crate) created: Instant,
    /// When the first neighbour came up, in seconds since the Unix epoch (see `adoption_start`).
    pub(crate) joined_unix_secs: Option<u64>,
    pub(crate) next_seq: u64,
    pub(crate) config: Config,
    pub(crate) rng: R,
    pub(crate) hasher: KeyedState,
    /// Neighbours, ordered so that iteration (and thus the action order) is deterministic.
    pub(crate) peers: BTreeMap<NodeId, Peer>,
    /// Every tracked stream, including our own. Boxed: a hash table keeps up to half its slots free,
    /// and a free slot costs as much as a full one, so slots hold a pointer, not the state.
    pub(crate) streams: KeyedMap<StreamId, Box<StreamState>>,
    /// The tracked streams by `StreamState::serial`, for the retention log's entries.
    pub(crate) serials: KeyedMap<u64, StreamId>,
    /// The serial the next stream tracked gets.
    pub(crate) next_serial: u64,
    /// The tracked streams but our own, least recently active first (see `stream_table.rs`).
    pub(crate) recency: Recency,
    /// Watermarks of streams evicted to make room.
    pub(crate) forgotten: Forgotten,
    /// The node's budget for new streams (`Config::total_new_streams_per_sec`).
    pub(crate) new_streams: TokenBucket,
    /// The last slot given to a neighbour (`Peer::slot`).
    pub(crate) peer_slots: u64,
    /// The last generation given to a graft or gap timer. Generations are unique over all streams
    /// and their lifetimes, so a timer armed for a stream that was forgotten since is never taken
    /// for one of the stream that replaced it.
    pub(crate) timer_generation: u64,
    pub(crate) retention: RetentionLog,
    /// Payload bytes in all streams' retention caches.
    pub(crate) retained_bytes: usize,
    /// Payloads in all streams' retention caches.
    pub(crate) retained_count: usize,
    /// Payloads in all reorder buffers.
    pub(crate) buffered_total: usize,
    /// Payload bytes in all reorder buffers.
    pub(crate) buffered_bytes: usize,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) counters: Counters,
    pub(crate) flush_armed: bool,
    /// A batch of received messages is being handed in (see [`Router::begin_batch`]).
    pub(crate) batching: bool,
    /// Payloads of one group waiting for the rest of it (see `group.rs`).
    pub(crate) held: Option<super::group::HeldGroup>,
    /// Where a group's payloads are laid end to end to be hashed; reused.
    pub(crate) group_scratch: Vec<u8>,
    /// A `Timer::GroupHold` is pending.
    pub(crate) group_timer_armed: bool,
    pub(crate) ack_armed: bool,
    /// A `Timer::Sweep` is pending. Armed only while there is something to sweep (retained payloads,
    /// streams besides our own), so an idle router sets no timer.
    pub(crate) sweep_armed: bool,
    /// Streams whose watermark moved since the last ack flush.
    pub(crate) ack_dirty: Vec<StreamId>,
    /// Streams whose retention cache emptied, until the sweep parks them or finds them retaining
    /// again (see `Router::park_quiet_streams`). At most the tracked streams, each once after a
    /// sweep.
    pub(crate) emptied: Vec<StreamId>,
    /// New payloads received since the last ack flush.
    pub(crate) ack_pending: u32,
    /// The tree root and the current beacon round (see `beacon.rs`).
    pub(crate) tree: Option<TreeRound>,
    /// The last round of this node's own beacon.
    pub(crate) own_round: u64,
    /// A `Timer::Beacon` is pending.
    pub(crate) beacon_armed: bool,
    /// The old tree link of the latest move, pruned at the next `Timer::Unlink`.
    pub(crate) unlink: Option<NodeId>,
    /// Broadcasts in the current and the previous beacon interval (`Config::root_publisher_rate`).
    pub(crate) recent_broadcasts: [u32; 2],
    /// Whether this node ranks as a publisher (see `Router::is_publisher`), and until when it does
    /// unless it reaches the rate again.
    pub(crate) publisher: bool,
    pub(crate) publisher_until: Option<Instant>,
    /// Smoothed time from "a neighbour announced a message we lack" to "the tree delivered it" (when
    /// no graft was needed). The graft timer waits twice this, within
    /// `graft_timeout..=max_graft_timeout`, so a tree that is merely slower than the lazy links (long
    /// paths, slow hops) is not grafted around on every message.
    pub(crate) tree_lag: Duration,
    /// Signs our manifests and checks everyone else's.
    pub(crate) signer: Arc<dyn Signer>,
    /// Our own messages waiting for their manifest: numbered, not yet sent or retained. The first
    /// is sequence number `next_seq - batch.len()`.
    pub(crate) batch: Vec<Bytes>,
    /// Payload bytes in `batch`.
    pub(crate) batch_bytes: usize,
    /// A `Timer::Seal` is pending.
    pub(crate) seal_armed: bool,
    /// When our last batch was signed (see `Config::seal_interval`).
    pub(crate) last_seal: Option<Instant>,
    /// Bytes of pending manifests over all streams (`StreamState::proof_bytes` summed).
    pub(crate) proof_bytes: usize,
}

impl<R: Rng> Router<R> {
    /// A router for the node that `signer` signs for, whose own stream is `(its id, epoch)`. Pick
    /// `epoch` at random per start of the node. Panics if `config` is invalid; use
    /// [`Router::try_new`] to get the error instead.
    pub fn new(signer: Arc<dyn Signer>, epoch: u64, config: Config, rng: R, now: Instant) -> Self {
        match Self::try_new(signer, epoch, config, rng, now) {
            Ok(router) => router,
            Err(err) => panic!("invalid router config: {err}"),
        }
    }

    /// Like [`Router::new`], returning the validation error of an invalid `config`.
    pub fn try_new(
        signer: Arc<dyn Signer>,
        epoch: u64,
        config: Config,
        mut rng: R,
        now: Instant,
    ) -> Result<Self, InvalidConfig> {
        config.validate()?;
        let hasher = KeyedState(rng.random());
        let forgotten_key: [u8; 32] = rng.random();
        let me = signer.node_id();
        let own = StreamId { origin: me, epoch };
        let mut streams = KeyedMap::with_hasher(hasher);
        let mut own_state = StreamState::new(0, now);
        own_state.provisional = false;
        // No neighbours yet: nobody to hold anything for (`settled_mark` of no neighbours).
        own_state.settled = u64::MAX;
        streams.insert(own, Box::new(own_state));
        let mut serials = KeyedMap::with_hasher(hasher);
        serials.insert(0, own);
        let new_streams =
            TokenBucket::new(config.total_new_streams_per_sec, config.total_new_stream_burst, now);
        let router = Self {
            me,
            own,
            created: now,
            joined_unix_secs: None,
            next_seq: 1,
            config,
            rng,
            hasher,
            peers: BTreeMap::new(),
            streams,
            serials,
            next_serial: 1,
            recency: Recency::default(),
            forgotten: Forgotten::new(hasher, forgotten_key, now),
            new_streams,
            peer_slots: 0,
            timer_generation: 0,
            retention: RetentionLog::new(now),
            retained_bytes: 0,
            retained_count: 0,
            buffered_total: 0,
            buffered_bytes: 0,
            actions: VecDeque::new(),
            counters: Counters::default(),
            flush_armed: false,
            batching: false,
            held: None,
            group_scratch: Vec::new(),
            group_timer_armed: false,
            ack_armed: false,
            sweep_armed: false,
            ack_dirty: Vec::new(),
            emptied: Vec::new(),
            ack_pending: 0,
            tree: None,
            own_round: 0,
            beacon_armed: false,
            unlink: None,
            recent_broadcasts: [0; 2],
            publisher: false,
            publisher_until: None,
            tree_lag: Duration::ZERO,
            signer,
            batch: Vec::new(),
            batch_bytes: 0,
            seal_armed: false,
            last_seal: None,
            proof_bytes: 0,
        };
        Ok(router)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// What signs this node's manifests and checks everyone else's.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// This node's own stream.
    pub fn own_stream(&self) -> StreamId {
        self.own
    }

    /// The sequence number the next [`Router::broadcast`] gives its message.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Broadcasts `payload` to every node. Returns its id. The origin does not deliver its own messages
    /// to itself.
    ///
    /// The message is numbered at once and sent when its batch is signed: at once when the batch is
    /// full (`Config::max_batch_len`, `Config::max_batch_bytes`); otherwise at [`Router::seal_broadcasts`] if no batch was
    /// signed within `Config::seal_interval`, or when that interval has passed (a `Timer::Seal`).
    pub fn broadcast(&mut self, payload: Bytes, now: Instant) -> MessageId {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.broadcasts += 1;
        self.recent_broadcasts[0] = self.recent_broadcasts[0].saturating_add(1);
        self.batch_bytes += payload.len();
        self.batch.push(payload);
        if self.batch.len() >= self.config.max_batch_len || self.batch_bytes >= self.config.max_batch_bytes {
            self.seal(now);
        } else {
            self.arm_seal(now);
        }
        MessageId { stream: self.own, seq }
    }

    /// Continues this node's stream of an earlier run: its epoch becomes `epoch` and the next
    /// broadcast is numbered `sealed_through + 1`, the position the earlier run stored at its last
    /// [`Action::Sealed`]. Neighbours that hold the stream then see its numbers go on without a gap.
    /// The earlier run's messages are not retained here: a neighbour missing some fetches them from
    /// others, as from any origin.
    ///
    /// # Panics
    ///
    /// If called after the router broadcast or met a neighbour (it belongs right after
    /// [`Router::new`]), or with `sealed_through` at or beyond [`MAX_SEQ`].
    pub fn continue_stream(&mut self, epoch: u64, sealed_through: u64) {
        assert!(
            self.next_seq == 1 && self.peers.is_empty(),
            "continue_stream belongs right after Router::new"
        );
        assert!(sealed_through < MAX_SEQ, "sealed_through {sealed_through} leaves no sequence number");
        let own = StreamId { origin: self.me, epoch };
        let Some(mut state) = self.streams.remove(&self.own) else { return };
        state.delivered = sealed_through;
        state.known_hi = sealed_through;
        self.serials.insert(state.serial, own);
        self.streams.insert(own, state);
        self.own = own;
        self.next_seq = sealed_through + 1;
    }

    /// Puts a batch of this node's own messages, signed in an earlier run and stored from its
    /// [`Action::Sealed`], back into the retention cache, so that neighbours that missed it (the
    /// earlier run may have died before sending it) fetch it from here as from any retention.
    /// Call it after [`Router::continue_stream`], oldest batch first. Refused (false) unless the
    /// manifest is of this node's stream, lies before the next broadcast, and lists exactly these
    /// payloads.
    pub fn restore_own_batch(&mut self, proof: Arc<Manifest>, payloads: Vec<Bytes>, now: Instant) -> bool {
        let own = self.own;
        let fits = proof.stream == own
            && proof.last() < self.next_seq
            && proof.count() == payloads.len() as u64
            && (proof.first..).zip(&payloads).all(|(seq, payload)| proof.proves(seq, payload));
        if !fits {
            return false;
        }
        for (seq, payload) in (proof.first..).zip(payloads) {
            let len = payload.len();
            let held = Held { payload, wire_hops: 0, proof: proof.clone() };
            let Some(state) = self.streams.get_mut(&own) else { return false };
            let freed = state.retain(seq, held);
            let serial = state.serial;
            self.log_retained((serial, seq, len), freed, now);
        }
        true
    }

    /// Resumes another origin's stream after `delivered` when it comes back: for a restarted node,
    /// the position its application acknowledged in an earlier run. The position is kept as an
    /// evicted stream's is (`Config::max_forgotten_streams`, for as long as an idle stream is kept):
    /// when a neighbour next tells of the stream, it is taken up right after `delivered` instead of by
    /// the newcomer's rule, so nothing at or before `delivered` is delivered again and everything
    /// after it that a neighbour still holds is, in order (what none holds becomes a gap, as on any
    /// stream). Ignored for this node's own stream and for a stream already tracked.
    pub fn resume_stream(&mut self, stream: StreamId, delivered: u64, now: Instant) {
        if stream.origin == self.me || self.streams.contains_key(&stream) || delivered >= MAX_SEQ {
            return;
        }
        let max = self.config.max_forgotten_streams;
        self.forgotten.remember(stream, delivered, now, max);
    }

    /// Signs and sends the broadcasts waiting for their manifest, unless a batch was signed less
    /// than `Config::seal_interval` ago (then the seal timer does it when the interval is over). A
    /// driver calls it once it has handed in every broadcast waiting: a burst shares one signature,
    /// and a broadcast after a quiet spell waits for no other.
    pub fn seal_broadcasts(&mut self, now: Instant) {
        if self.next_seal_at(now) <= now {
            self.seal(now);
        }
    }

    /// Broadcasts numbered but not signed yet (waiting for their batch's manifest).
    pub fn unsealed(&self) -> usize {
        self.batch.len()
    }

    /// Signs and sends the broadcasts waiting for their manifest now, whatever the seal interval:
    /// for the end of a run of payloads that belong together (a large message cut into pieces),
    /// which share the signature.
    pub fn seal_now(&mut self, now: Instant) {
        self.seal(now);
    }

    /// The earliest time the next batch may be signed.
    fn next_seal_at(&self, now: Instant) -> Instant {
        self.last_seal.map_or(now, |last| (last + self.config.seal_interval).max(now))
    }

    fn arm_seal(&mut self, now: Instant) {
        if !self.seal_armed && !self.batch.is_empty() {
            self.seal_armed = true;
            let at = self.next_seal_at(now);
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Seal });
        }
    }

    /// Signs the waiting batch and sends its messages.
    fn seal(&mut self, now: Instant) {
        if self.batch.is_empty() {
            return;
        }
        self.last_seal = Some(now);
        self.batch_bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        let own = self.own;
        let first = self.next_seq - batch.len() as u64;
        let proof = Arc::new(Manifest::sign_payloads(&*self.signer, own, first, &batch));
        self.counters.manifests_signed += 1;
        self.actions.push_back(Action::Sealed {
            stream: own,
            through: self.next_seq - 1,
            proof: proof.clone(),
            payloads: batch.clone(),
        });
        for (seq, payload) in (first..).zip(batch) {
            let held = Held { payload: payload.clone(), wire_hops: 0, proof: proof.clone() };
            if let Some(state) = self.streams.get_mut(&own) {
                state.delivered = seq;
                state.known_hi = seq;
                state.last_active = now;
                let freed = state.retain(seq, held);
                let serial = state.serial;
                self.log_retained((serial, seq, payload.len()), freed, now);
            }
            self.forward(own, seq, 0, &payload, &proof, None, now);
        }
    }

    /// Hands in one message received from neighbour `from` (already converted by [`crate::wire`]).
    pub fn handle_message(&mut self, from: NodeId, message: Message, now: Instant) {
        match message {
            Message::Data { stream, seq, hops, payload } => {
                self.on_data(from, stream, seq, hops, payload, now)
            }
            Message::IHave { ranges, hops: _ } => self.on_ihave(from, &ranges, now),
            Message::Graft { want, eager } => self.on_graft(from, &want, eager, now),
            Message::Prune => self.on_prune(from, now),
            Message::Ack { marks } => self.on_ack(from, &marks, now),
            Message::Sync { marks } => self.on_sync(from, &marks, now),
            Message::Manifest(manifest) => self.on_manifest(from, manifest, now),
            Message::Beacon(beacon) => self.on_beacon(from, beacon, now),
        }
    }

    /// True while `peer` is a neighbour (between `handle_neighbour_up` and `handle_neighbour_down`).
    pub fn is_neighbour(&self, peer: &NodeId) -> bool {
        self.peers.contains_key(peer)
    }

    /// A new round-trip time estimate for `peer` (from membership). Used to prefer fast links when
    /// choosing whom to graft from.
    pub fn handle_rtt(&mut self, peer: NodeId, rtt: Duration) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.rtt = Some(rtt);
        }
    }

    /// A timer set with [`Action::SetTimer`] fired.
    pub fn handle_timer(&mut self, timer: Timer, now: Instant) {
        self.release_held(now);
        match timer {
            Timer::Flush => {
                self.flush_armed = false;
                self.flush_ihaves();
            }
            Timer::Ack => {
                self.ack_armed = false;
                self.flush_acks();
            }
            Timer::Sweep => {
                self.sweep_armed = false;
                self.sweep(now);
                if !self.retention.is_empty() || self.streams.len() > 1 {
                    self.arm_sweep(now);
                }
            }
            Timer::Seal => {
                self.seal_armed = false;
                if self.next_seal_at(now) <= now {
                    self.seal(now);
                } else {
                    // A full batch was signed since the timer was set: wait out the interval again.
                    self.arm_seal(now);
                }
            }
            Timer::Graft { stream, generation } => self.on_graft_timer(stream, generation, now),
            Timer::Gap { stream, generation } => self.on_gap_timer(stream, generation, now),
            Timer::Beacon => self.on_beacon_timer(now),
            Timer::TreeGraft { round } => self.on_tree_graft_timer(round, now),
            Timer::Unlink => self.on_unlink_timer(now),
            // Whatever was held is released above.
            Timer::GroupHold => self.group_timer_armed = false,
        }
    }

    /// The next action for the driver, if any. Call until `None` after every `handle_*`/`broadcast`.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Current eager (tree) and lazy neighbours.
    pub fn topology(&self) -> Topology {
        let mut topology = Topology::default();
        for (id, peer) in &self.peers {
            if peer.eager {
                topology.eager.push(*id);
            } else {
                topology.lazy.push(*id);
            }
        }
        topology
    }

    /// The delivery watermark of `stream` (every message `<=` it was delivered or reported as a gap),
    /// or `None` if the stream is not tracked.
    pub fn watermark(&self, stream: &StreamId) -> Option<u64> {
        self.streams.get(stream).map(|s| s.delivered)
    }

    /// Number of streams tracked (including our own).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Number of evicted streams whose watermark is remembered (`Config::max_forgotten_streams`).
    pub fn forgotten_count(&self) -> usize {
        self.forgotten.len()
    }

    /// Payload bytes and payloads in the retention cache now (within `Config::retention_max_bytes`
    /// and `Config::retention_max_messages`).
    pub fn retained(&self) -> (usize, usize) {
        (self.retained_bytes, self.retained_count)
    }

    /// Payload bytes and payloads waiting in the reorder buffers now (within
    /// `Config::reorder_max_bytes` and `Config::reorder_max_total`).
    pub fn buffered(&self) -> (usize, usize) {
        (self.buffered_bytes, self.buffered_total)
    }

    // ----- helpers shared by the handlers -----

    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        self.actions.push_back(Action::Send { to: smallvec::smallvec![to], message });
    }

    pub(crate) fn violation(&mut self, peer: NodeId, reason: &'static str) {
        self.counters.violations += 1;
        tracing::debug!(%peer, reason, "router protocol violation");
        self.actions.push_back(Action::Violation { peer, reason });
    }

    pub(crate) fn arm_flush(&mut self, now: Instant) {
        if !self.flush_armed {
            self.flush_armed = true;
            let at = now + self.config.ihave_interval;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Flush });
        }
    }

    /// Arms the housekeeping timer unless it is pending already.
    pub(crate) fn arm_sweep(&mut self, now: Instant) {
        if !self.sweep_armed {
            self.sweep_armed = true;
            let at = now + self.config.sweep_interval;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Sweep });
        }
    }

    pub(crate) fn arm_ack(&mut self, now: Instant) {
        if !self.ack_armed {
            self.ack_armed = true;
            let at = now + self.config.ack_interval;
            self.actions.push_back(Action::SetTimer { at, timer: Timer::Ack });
        }
    }

    /// Records in the totals and the global log a payload just kept in the retention cache of the
    /// stream with `serial` ([`StreamState::retain`], which returned `freed`: what the cache dropped
    /// to make it fit), and
    /// enforces the cache's bounds (fairly: `fair_share.rs`). (Settled payloads are released when
    /// acks arrive, not here: acks are what settles them, and checking every neighbour's ack for
    /// every new payload would cost a scan per payload.)
    pub(crate) fn log_retained(
        &mut self,
        (serial, seq, len): (u64, u64, usize),
        freed: (usize, usize),
        now: Instant,
    ) {
        self.retained_bytes = self.retained_bytes + len - freed.0;
        self.retained_count = self.retained_count + 1 - freed.1;
        self.retention.push(serial, seq, now);
        self.expire_retention(None);
        self.arm_sweep(now);
    }

    /// Drops retained payloads older than `cutoff`, then trims the cache to its bounds.
    pub(crate) fn expire_retention(&mut self, cutoff: Option<Instant>) {
        // The log also holds stale entries (payloads trimmed already): at most as many again.
        let max_len = self.config.retention_max_messages.saturating_mul(2);
        while let Some(entry) = self.retention.pop_expired(cutoff, max_len) {
            if let Some(&stream) = self.serials.get(&entry.serial) {
                self.expire_through(stream, entry.seq);
            }
        }
        self.trim_retention();
    }

    /// Drops `stream`'s retained payloads up to and including `seq`.
    fn expire_through(&mut self, stream: StreamId, seq: u64) {
        if let Some(state) = self.streams.get_mut(&stream) {
            let (bytes, count) = state.expire_through(seq);
            self.retained_bytes -= bytes;
            self.retained_count -= count;
            if count > 0 && state.retained_count() == 0 && stream != self.own {
                self.emptied.push(stream);
            }
        }
    }

    /// Drops the oldest settled payloads (every neighbour holds them) beyond
    /// `retention_settled_max_bytes` or `retention_settled_max_messages`. Run when acks arrive and at
    /// every sweep.
    ///
    /// A neighbour holds a payload when it acknowledged it, or when it is the payload's origin: a node
    /// never acks its own stream (it receives nothing of it), and needs nothing of it either. Without
    /// that exception no message whose origin is a neighbour ever settled, and since the retention log
    /// is released oldest first, one such message held back every later one for `retention_time`:
    /// with 32 publishers (`cargo xtask bench`), every node kept every payload of the run, and the read
    /// buffers they are slices of.
    ///
    /// The log is in arrival order, so release stops at the first unsettled payload: what follows it
    /// is almost always unsettled too. One lookup per payload: whether a stream is settled is kept in
    /// its state (`StreamState::settled`) as acknowledgements arrive, instead of asking every
    /// neighbour per payload (that was 3% of the CPU of `cargo xtask bench` with 32 publishers).
    pub(crate) fn release_settled(&mut self) {
        let (budget, max_count) =
            (self.config.retention_settled_max_bytes, self.config.retention_settled_max_messages);
        while self.retained_bytes > budget || self.retained_count > max_count {
            let Some(entry) = self.retention.oldest().copied() else { break };
            let stream = self.serials.get(&entry.serial).copied();
            match stream.and_then(|stream| Some((stream, self.streams.get(&stream)?))) {
                // Still retained, and not yet held by every neighbour: keep it, and what follows.
                Some((_, state)) if state.retains(entry.seq) && state.settled < entry.seq => break,
                Some((stream, _)) => self.expire_through(stream, entry.seq),
                // A forgotten stream's payloads went with it.
                None => {}
            }
            self.retention.pop_oldest();
        }
    }

    /// Recomputes `StreamState::settled` of `stream` (after a change of what its neighbours hold).
    pub(crate) fn refresh_settled(&mut self, stream: &StreamId) {
        if let Some(state) = self.streams.get_mut(stream) {
            state.settled = settled_mark(&self.peers, stream.origin, state);
        }
    }

    /// Recomputes `StreamState::settled` of every stream (after a neighbour came or went).
    pub(crate) fn refresh_all_settled(&mut self) {
        let peers = &self.peers;
        for (stream, state) in self.streams.iter_mut() {
            state.settled = settled_mark(peers, stream.origin, state);
        }
    }

    /// The watermark `stream`, first heard of at `seq`, starts from: just before message 1 if the
    /// stream began after this node joined (`Config::stream_start_tolerance`), else
    /// `Config::backfill_new_stream` before `seq`. Never more than `Config::reorder_window` before
    /// `seq`, so that the payload at `seq` can be kept, unless `backfill_new_stream` is `u64::MAX`:
    /// then from message 1, whatever `seq` (what lies beyond the window comes a window at a time).
    pub(crate) fn adoption_start(&self, stream: StreamId, seq: u64) -> u64 {
        if self.config.backfill_new_stream == u64::MAX {
            return 0;
        }
        let owed_whole = self.owed_whole(stream);
        let back = if owed_whole { self.config.reorder_window - 1 } else { self.config.backfill_new_stream };
        seq.saturating_sub(1).saturating_sub(back)
    }

    /// Whether `stream` began after this node joined (within `Config::stream_start_tolerance`), so
    /// that every message of it is owed to this node.
    pub(crate) fn owed_whole(&self, stream: StreamId) -> bool {
        let tolerance = self.config.stream_start_tolerance.as_secs();
        self.joined_unix_secs
            .is_some_and(|joined| stream.started_unix_secs().saturating_add(tolerance) >= joined)
    }

    /// Notes the wall-clock time of the first neighbour: from then on, streams that begin are owed
    /// to this node whole (see `adoption_start`). The clock is the start time in our own epoch plus
    /// the time since.
    pub(crate) fn note_joined(&mut self, now: Instant) {
        if self.joined_unix_secs.is_none() {
            let since_start = now.saturating_duration_since(self.created).as_secs();
            self.joined_unix_secs = Some(self.own.started_unix_secs().saturating_add(since_start));
        }
    }

    /// The current graft timeout (see `tree_lag`).
    pub(crate) fn graft_delay(&self) -> Duration {
        (self.tree_lag * 2).clamp(self.config.graft_timeout, self.config.max_graft_timeout)
    }

    /// Feeds one sample of announce-to-tree-delivery lag: rises fast, decays slowly.
    pub(crate) fn note_tree_lag(&mut self, sample: Duration) {
        self.tree_lag = if sample > self.tree_lag {
            (self.tree_lag + sample) / 2
        } else {
            (self.tree_lag * 7 + sample) / 8
        };
    }

    /// Housekeeping: age out retention, forget idle streams.
    fn sweep(&mut self, now: Instant) {
        let cutoff = now.checked_sub(self.config.retention_time);
        self.expire_retention(cutoff);
        self.release_settled();
        self.park_quiet_streams(now);
        self.fold_quiet_marks(now);
        self.sweep_idle_streams(now);
        self.trim_stream_table();
        self.retention.trim();
    }

    /// Keeps this node attached to the tree: if no neighbour is eager any more (every link was pruned,
    /// from either side), graft the lowest-RTT lazy one without asking for messages. Without this a
    /// node whose last tree link was pruned by a beacon round would send its own broadcasts only
    /// as digests, and every neighbour would graft them at once (a burst of duplicates and prunes).
    pub(crate) fn ensure_attached(&mut self, now: Instant) {
        if self.peers.is_empty() || self.peers.values().any(|p| p.eager) {
            return;
        }
        let best = self.peers.iter().min_by_key(|(_, p)| p.rtt.unwrap_or(Duration::MAX)).map(|(id, _)| *id);
        if let Some(id) = best {
            self.graft_link(id, now);
        }
    }

    /// A random index below `n` (n > 0), for tie-breaking.
    pub(crate) fn random_index(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }
}

/// How far every neighbour holds `stream` (of state `state`): the smallest acknowledgement among
/// the neighbours other than the stream's origin (which needs nothing of its own stream and never
/// acks it), a missing one counting as what the folded marks say; `u64::MAX` when no such
/// neighbour is left.
pub(crate) fn settled_mark(peers: &BTreeMap<NodeId, Peer>, origin: NodeId, state: &StreamState) -> u64 {
    peers
        .iter()
        .filter(|(id, _)| **id != origin)
        .map(|(_, peer)| state.acked_by(peer.slot))
        .min()
        .unwrap_or(u64::MAX)
}
