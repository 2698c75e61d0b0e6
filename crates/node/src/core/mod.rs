//! [`NodeCore`]: one node's protocol as one sans-IO state machine, a membership core and a router
//! core composed.
//!
//! The node core owns a [`Membership`] core (who this node's neighbours are) and a [`Router`] core
//! (what travels over them), and is the only place where the two meet:
//!
//! * connection facts (connected, disconnected, dial failed) go to membership;
//! * each [`PeerMessage`] goes to the core it belongs to; a direct message goes to the application;
//! * membership's `NeighbourUp` / `NeighbourDown` / `RttUpdated` become the router's
//!   `handle_neighbour_up` / `handle_neighbour_down` / `handle_rtt`, in the order membership emits
//!   them, and neighbour changes are also reported to the application;
//! * an application message becomes one router payload, or several for a large one, and router
//!   deliveries become whole messages again ([`crate::fragment`]);
//! * both cores' timers travel as one [`Timer`] enum, and both cores' effects come out of one
//!   [`NodeCore::poll_action`], membership's before the router's.
//!
//! Neither core knows the other: the router sees neighbours come and go through its own events, so
//! each stays testable and replaceable alone. Like them, the node core reads no clock, does no I/O and
//! draws randomness only from the generator it is given; the tokio driver
//! ([`crate::driver`]) and the `dotray-sim` simulator drive this same type.

mod action;
mod config;

#[cfg(test)]
mod tests;

pub use action::{Action, Event, PeerMessage, QueryAnswer, Refusal, Timer};
pub use config::{Config, InvalidNodeConfig};

/// The most ranges remembered per sender of payloads pushed before it became a neighbour (one per
/// run of consecutive messages of a stream): a joiner's first broadcasts, or a relay's first pushes,
/// take one or a few.
const EARLY_RANGES: usize = 16;

/// A broadcast longer than [`Config::max_message_len`]: refused before it is numbered, so nothing
/// waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a message of {len} bytes is longer than the limit of {max} bytes")]
pub struct MessageTooLong {
    /// The message's length.
    pub len: usize,
    /// [`Config::max_message_len`].
    pub max: usize,
}

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dotray_codec::{NodeId, TokenBucket};
use dotray_membership::core::{
    Action as MembershipAction, Event as MembershipEvent, LinkEnd, Membership, NodeInfo, PeerInfo,
    QueryError, Seed,
};
use dotray_router::core::{
    Action as RouterAction, Counters, Delivery, Event as RouterEvent, Message as RouterMessage, MessageId,
    RecalledRun, Recipients, Router, SeqRange, StreamId, Topology,
};
use dotray_router::proof::{Manifest, Signer};
use rand::{Rng, SeedableRng};

use crate::fragment::{self, Loss, Reassembled, Reassembly};

/// The protocol state of one node: membership and broadcast. See the [module docs](self).
#[derive(Debug)]
pub struct NodeCore<R: Rng> {
    membership: Membership<R>,
    router: Router<R>,
    /// Large messages of other origins being put back together.
    reassembly: Reassembly,
    /// [`Config::max_message_len`].
    max_message_len: usize,
    /// [`Config::fragment_len`].
    fragment_len: usize,
    /// [`Config::max_direct_len`].
    max_direct_len: usize,
    /// [`Config::direct_bytes_per_sec`] and [`Config::direct_burst_bytes`].
    direct_budget: (u32, u32),
    /// Per connected sender, what is left of its direct-message budget; forgotten when the
    /// connection closes.
    direct_budgets: BTreeMap<NodeId, TokenBucket>,
    /// Direct messages dropped over their sender's budget.
    directs_dropped: u64,
    /// Actions ahead of the cores' own queues (direct messages for the application).
    actions: VecDeque<Action>,
    /// Payloads pushed to us by connected nodes that were not (yet) our neighbours, and the
    /// positions their `Sync`s told, by sender: the two ends of a new link see it come up at
    /// different moments, and what the first sends before the second takes broadcast messages from
    /// it is dropped. When the sender becomes a neighbour, the router hears of them as a digest
    /// from it and fetches what it lacks. At most [`EARLY_RANGES`] ranges per sender; forgotten
    /// when the connection closes.
    early: BTreeMap<NodeId, Vec<SeqRange>>,
    /// The time of the latest `handle_*` call: membership's neighbour events reach the router with it.
    now: Instant,
}

impl<R: Rng + SeedableRng> NodeCore<R> {
    /// A new node `me` joining through `seeds` (none: the first node of a network), signing its
    /// broadcasts with `signer` (which must sign for `me.id`). Each core gets a generator seeded from
    /// `rng`, and the node's stream an epoch dated `wall_clock` (the wall-clock time at `now`; see
    /// [`dotray_router::core::StreamId::epoch_started_at`]) and made unique from it, so one seed and
    /// one clock replay a whole node.
    ///
    /// The first actions (dial a seed, arm the timers) are ready for [`NodeCore::poll_action`].
    pub fn new(
        me: PeerInfo,
        seeds: impl IntoIterator<Item = Seed>,
        config: Config,
        signer: Arc<dyn Signer>,
        mut rng: R,
        now: Instant,
        wall_clock: SystemTime,
    ) -> Result<Self, InvalidNodeConfig> {
        config.validate()?;
        if signer.node_id() != me.id {
            return Err(InvalidNodeConfig::WrongKey { signer: signer.node_id(), node: me.id });
        }
        let membership_rng = R::from_rng(&mut rng);
        let unix_secs = wall_clock.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let epoch = StreamId::epoch_started_at(unix_secs, rng.random());
        let router_rng = R::from_rng(&mut rng);
        let membership = Membership::new(me, seeds, config.membership, membership_rng, now)
            .map_err(InvalidNodeConfig::Membership)?;
        let router = Router::try_new(signer, epoch, config.router, router_rng, now)
            .map_err(InvalidNodeConfig::Router)?;
        Ok(Self {
            membership,
            router,
            reassembly: Reassembly::new(config.max_message_len, config.max_reassembly_bytes),
            max_message_len: config.max_message_len,
            fragment_len: config.fragment_len,
            max_direct_len: config.max_direct_len,
            direct_budget: (config.direct_bytes_per_sec, config.direct_burst_bytes),
            direct_budgets: BTreeMap::new(),
            directs_dropped: 0,
            actions: VecDeque::new(),
            early: BTreeMap::new(),
            now,
        })
    }
}

impl<R: Rng> NodeCore<R> {
    /// This node's id and listen address.
    pub fn me(&self) -> PeerInfo {
        self.membership.me()
    }

    /// This node's own broadcast stream.
    pub fn own_stream(&self) -> StreamId {
        self.router.own_stream()
    }

    /// Continues this node's stream of an earlier run (epoch `epoch`, last signed number
    /// `sealed_through`, as the earlier run's last [`Action::Sealed`] said): see
    /// `dotray_router::core::Router::continue_stream`. Call it right after [`NodeCore::new`].
    pub fn continue_stream(&mut self, epoch: u64, sealed_through: u64) {
        self.router.continue_stream(epoch, sealed_through);
    }

    /// Puts a batch of this node's own messages, stored from an earlier run's [`Action::Sealed`],
    /// back into retention: see `dotray_router::core::Router::restore_own_batch`.
    pub fn restore_own_batch(&mut self, proof: Arc<Manifest>, payloads: Vec<Bytes>, now: Instant) -> bool {
        self.router.restore_own_batch(proof, payloads, now)
    }

    /// Resumes another origin's stream after `delivered` (what the application acknowledged in an
    /// earlier run): see `dotray_router::core::Router::resume_stream`.
    pub fn resume_stream(&mut self, stream: StreamId, delivered: u64, now: Instant) {
        self.router.resume_stream(stream, delivered, now);
    }

    /// The answer to an [`Action::Recall`] for `to`: what the history holds of the range (see
    /// `dotray_router::core::Router::handle_recalled`).
    pub fn handle_recalled(&mut self, to: NodeId, runs: Vec<RecalledRun>, now: Instant) {
        self.router.handle_recalled(to, runs, now);
    }

    /// The sequence number the next [`NodeCore::broadcast`] gets.
    pub fn next_seq(&self) -> u64 {
        self.router.next_seq()
    }

    /// [`Config::max_message_len`].
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// [`Config::fragment_len`].
    pub fn fragment_len(&self) -> usize {
        self.fragment_len
    }

    /// Bytes held for partly received large messages (see [`Config::max_reassembly_bytes`]).
    pub fn reassembly_bytes(&self) -> usize {
        self.reassembly.held_bytes()
    }

    /// The membership core (views, connection counts), read-only.
    pub fn membership(&self) -> &Membership<R> {
        &self.membership
    }

    /// The router core (streams, watermarks), read-only.
    pub fn router(&self) -> &Router<R> {
        &self.router
    }

    /// The broadcast layer's counters.
    pub fn counters(&self) -> &Counters {
        self.router.counters()
    }

    /// Direct messages dropped because their sender was over its budget
    /// ([`Config::direct_bytes_per_sec`]).
    pub fn directs_dropped(&self) -> u64 {
        self.directs_dropped
    }

    /// This node's tree (eager) and lazy links.
    pub fn topology(&self) -> Topology {
        self.router.topology()
    }

    /// What this node knows: active neighbours first, then backup addresses.
    pub fn nodes(&self, now: Instant) -> Vec<NodeInfo> {
        self.membership.nodes(now)
    }

    /// True once [`NodeCore::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.membership.has_left()
    }

    /// The transport connected `peer`; `dialed` is the address of the [`Action::Dial`] it answers, or
    /// `None` when the peer dialed this node.
    pub fn handle_connected(&mut self, peer: PeerInfo, dialed: Option<SocketAddr>, now: Instant) {
        self.now = now;
        self.membership.handle_connected(peer, dialed, now);
    }

    /// The connection to `peer` closed, for `reason`.
    pub fn handle_disconnected(&mut self, peer: NodeId, reason: LinkEnd, now: Instant) {
        self.now = now;
        self.early.remove(&peer);
        self.direct_budgets.remove(&peer);
        self.membership.handle_disconnected(peer, reason, now);
    }

    /// A dial of `addr` failed.
    pub fn handle_dial_failed(&mut self, addr: SocketAddr, now: Instant) {
        self.now = now;
        self.membership.handle_dial_failed(addr, now);
    }

    /// A dial of `addr` by id reached a node that proved another id (see
    /// `dotray_membership::core::Membership::handle_dial_unexpected_peer`).
    pub fn handle_dial_unexpected_peer(
        &mut self,
        addr: SocketAddr,
        expected: NodeId,
        proven: NodeId,
        now: Instant,
    ) {
        self.now = now;
        self.membership.handle_dial_unexpected_peer(addr, expected, proven, now);
    }

    /// Starts a batch of messages read together from one connection: until [`NodeCore::end_batch`],
    /// the router may hold the payloads of a group to prove them at once (see
    /// `dotray_router::core::Router::begin_batch`).
    pub fn begin_batch(&mut self, now: Instant) {
        self.now = now;
        self.router.begin_batch(now);
    }

    /// Ends the batch begun by [`NodeCore::begin_batch`].
    pub fn end_batch(&mut self, now: Instant) {
        self.now = now;
        self.router.end_batch(now);
    }

    /// A message from the connected peer `from`. A broadcast message from a node that is not a
    /// neighbour carries no tree state and is ignored.
    pub fn handle_message(&mut self, from: NodeId, message: PeerMessage, now: Instant) {
        self.now = now;
        match message {
            PeerMessage::Membership(message) => self.membership.handle_message(from, message, now),
            PeerMessage::Broadcast(message) => {
                if self.router.is_neighbour(&from) {
                    self.router.handle_message(from, message, now);
                } else {
                    tracing::debug!(%from, kind = message.name(), "broadcast message from a node that is not a neighbour ignored");
                    match message {
                        RouterMessage::Data { stream, seq, .. } => self.remember_early(from, stream, seq),
                        // The `Sync` it sent when it saw the link come up: where its streams stand,
                        // its own first (nobody else holds what it broadcast before it had a
                        // neighbour).
                        RouterMessage::Sync { marks } => {
                            let (own, others): (Vec<_>, Vec<_>) =
                                marks.into_iter().partition(|m| m.stream.origin == from);
                            for mark in own.into_iter().chain(others) {
                                self.remember_early(from, mark.stream, mark.seq);
                            }
                        }
                        _ => {}
                    }
                }
            }
            PeerMessage::Direct(payload) if payload.len() > self.max_direct_len => {
                self.actions.push_back(Action::Violation {
                    peer: from,
                    reason: "a direct message longer than max_direct_len",
                });
            }
            PeerMessage::Direct(payload) => {
                let (rate, burst) = self.direct_budget;
                let budget =
                    self.direct_budgets.entry(from).or_insert_with(|| TokenBucket::new(rate, burst, now));
                // Within `max_direct_len`, so within `u32`.
                if budget.take_n(payload.len() as u32, now) {
                    self.actions.push_back(Action::Event(Event::Direct { from, payload }));
                } else {
                    self.directs_dropped += 1;
                }
            }
        }
    }

    /// A dial of `addr` was refused by the node there for lack of room: it is alive (see
    /// `dotray_membership::core::Membership::handle_dial_busy`).
    pub fn handle_dial_busy(&mut self, addr: SocketAddr, now: Instant) {
        self.now = now;
        self.membership.handle_dial_busy(addr, now);
    }

    /// A dial of `addr` was refused by the node there, for `reason`: like a failed dial, and the
    /// application hears of it ([`Event::Refused`]).
    pub fn handle_dial_refused(&mut self, addr: SocketAddr, reason: Refusal, now: Instant) {
        self.handle_dial_failed(addr, now);
        self.actions.push_back(Action::Event(Event::Refused { addr, reason }));
    }

    /// A seed named by host name now resolves to `new` instead of `old` (see
    /// `dotray_membership::core::Membership::replace_seed`).
    pub fn replace_seed(&mut self, old: SocketAddr, new: SocketAddr, now: Instant) {
        self.now = now;
        self.membership.replace_seed(old, new);
    }

    /// A frame from `from` did not decode into a valid message: the peer broke the protocol. The
    /// driver has closed its connection; membership forgets it.
    pub fn handle_protocol_violation(&mut self, from: NodeId, now: Instant) {
        self.now = now;
        self.membership.handle_protocol_violation(from, now);
    }

    /// The connection to neighbour `peer` cannot keep up (its queue is full): the router stops pushing
    /// payloads to it, and it pulls what it misses at its own pace.
    pub fn handle_congested(&mut self, peer: NodeId, now: Instant) {
        self.now = now;
        self.router.handle_congested(peer, now);
    }

    /// A timer set with [`Action::SetTimer`] fired.
    pub fn handle_timer(&mut self, timer: Timer, now: Instant) {
        self.now = now;
        match timer {
            Timer::Membership(timer) => self.membership.handle_timer(timer, now),
            Timer::Router(timer) => self.router.handle_timer(timer, now),
        }
    }

    /// Broadcasts `payload` to every node; returns its id. A message longer than
    /// [`Config::fragment_len`] is cut into pieces, all handed to the router at once and signed at
    /// once; a short one leaves when its batch is signed (see [`NodeCore::seal_broadcasts`]). A driver
    /// that paces a large message's pieces uses [`fragment::split`] and
    /// [`NodeCore::broadcast_piece`] instead.
    pub fn broadcast(&mut self, payload: Bytes, now: Instant) -> Result<MessageId, MessageTooLong> {
        self.check_len(payload.len())?;
        let pieces = fragment::split(&payload, self.fragment_len);
        let large = pieces.len() > 1;
        let mut pieces = pieces.into_iter();
        let id = self.broadcast_piece(pieces.next().expect("at least one piece"), now);
        pieces.for_each(|piece| {
            self.broadcast_piece(piece, now);
        });
        if large {
            self.seal_message(now);
        }
        Ok(id)
    }

    /// Refuses a message longer than [`Config::max_message_len`].
    pub fn check_len(&self, len: usize) -> Result<(), MessageTooLong> {
        if len > self.max_message_len {
            Err(MessageTooLong { len, max: self.max_message_len })
        } else {
            Ok(())
        }
    }

    /// Hands the router one payload made by [`fragment::split`], numbered next; returns its id. The
    /// pieces of one message must follow each other with nothing between them.
    pub fn broadcast_piece(&mut self, piece: Bytes, now: Instant) -> MessageId {
        self.now = now;
        self.router.broadcast(piece, now)
    }

    /// Signs and sends what waits for a manifest now, whatever the seal interval: the end of a large
    /// message, whose pieces share the signature.
    pub fn seal_message(&mut self, now: Instant) {
        self.now = now;
        self.router.seal_now(now);
    }

    /// Signs and sends the broadcasts waiting for their manifest (unless a batch was signed within
    /// the router's `seal_interval`: then its timer does): call it after handing in every broadcast
    /// that is waiting, so a burst shares one signature and a lone broadcast waits for none.
    pub fn seal_broadcasts(&mut self, now: Instant) {
        self.now = now;
        self.router.seal_broadcasts(now);
    }

    /// Asks the connected or known node `peer` what it knows; the answer comes as
    /// [`Action::QueryAnswered`] with the returned request id.
    pub fn query_node(&mut self, peer: NodeId, now: Instant) -> Result<u64, QueryError> {
        self.now = now;
        self.membership.query_node(peer, now)
    }

    /// Leaves the network gracefully: every peer is told goodbye and replaces this node at once.
    pub fn leave(&mut self, now: Instant) {
        self.now = now;
        self.membership.leave(now);
    }

    /// The next effect to carry out, oldest first; `None` when there is nothing to do. Call it until
    /// it returns `None` after every `handle_*` call.
    pub fn poll_action(&mut self) -> Option<Action> {
        loop {
            if let Some(action) = self.actions.pop_front() {
                return Some(action);
            }
            // Membership first: a neighbour it reports up reaches the router before anything the
            // router sends that neighbour.
            let translated = if let Some(action) = self.membership.poll_action() {
                self.route_membership(action)
            } else {
                let action = self.router.poll_action()?;
                self.route_router(action)
            };
            if translated.is_some() {
                return translated;
            }
        }
    }

    /// Translates one membership action; neighbour events also go to the router here.
    fn route_membership(&mut self, action: MembershipAction) -> Option<Action> {
        Some(match action {
            MembershipAction::Dial { addr, node } => Action::Dial { addr, node },
            MembershipAction::Send { to, message } => {
                Action::Send { to: Recipients::from_slice(&[to]), message: PeerMessage::Membership(message) }
            }
            MembershipAction::Disconnect { peer, reason } => Action::Disconnect { peer, reason },
            MembershipAction::SetTimer { at, timer } => {
                Action::SetTimer { at, timer: Timer::Membership(timer) }
            }
            MembershipAction::Event(event) => return self.on_membership_event(event),
        })
    }

    fn on_membership_event(&mut self, event: MembershipEvent) -> Option<Action> {
        Some(match event {
            MembershipEvent::NeighbourUp(peer) => {
                self.router.handle_neighbour_up(peer.id, self.now);
                if let Some(ranges) = self.early.remove(&peer.id) {
                    // What it pushed before we saw the link: announced, so that we fetch what we lack.
                    let digest = RouterMessage::IHave { ranges, hops: u32::MAX };
                    self.router.handle_message(peer.id, digest, self.now);
                }
                Action::Event(Event::NeighbourUp { peer: peer.id, addr: peer.addr })
            }
            MembershipEvent::NeighbourDown(peer) => {
                self.router.handle_neighbour_down(peer, self.now);
                Action::Event(Event::NeighbourDown { peer })
            }
            MembershipEvent::RttUpdated { peer, rtt } => {
                self.router.handle_rtt(peer, rtt);
                return None;
            }
            MembershipEvent::QueryResponse { request_id, nodes, .. } => {
                Action::QueryAnswered { request_id, answer: QueryAnswer::Nodes(nodes) }
            }
            MembershipEvent::QueryFailed { request_id, .. } => {
                Action::QueryAnswered { request_id, answer: QueryAnswer::NoAnswer }
            }
        })
    }

    fn route_router(&mut self, action: RouterAction) -> Option<Action> {
        Some(match action {
            RouterAction::Send { to, message } => {
                Action::Send { to, message: PeerMessage::Broadcast(message) }
            }
            RouterAction::SetTimer { at, timer } => Action::SetTimer { at, timer: Timer::Router(timer) },
            RouterAction::Deliver(delivery) => return self.reassemble(delivery),
            RouterAction::Event(RouterEvent::Gap { stream, first, last }) => {
                let (first, last) = self.reassembly.gap(stream, first, last);
                Action::Event(Event::Gap { stream, first, last })
            }
            RouterAction::Violation { peer, reason } => Action::Violation { peer, reason },
            RouterAction::Sealed { stream, through, proof, payloads } => {
                Action::Sealed { stream, through, proof, payloads }
            }
            RouterAction::Archive { stream, seq, payload, proof } => {
                Action::Archive { stream, seq, payload, proof }
            }
            RouterAction::Recall { to, stream, first, last, max_bytes, .. } => {
                Action::Recall { to, stream, first, last, max_bytes }
            }
            // Router events this node does not know of yet are not the application's business.
            RouterAction::Event(_) => return None,
        })
    }

    /// Remembers that `from`, not a neighbour yet, pushed `seq` of `stream` (see `early`).
    fn remember_early(&mut self, from: NodeId, stream: StreamId, seq: u64) {
        if seq == 0 || seq > dotray_router::core::MAX_SEQ {
            return;
        }
        let ranges = self.early.entry(from).or_default();
        if let Some(range) = ranges.iter_mut().find(|r| r.stream == stream && r.last + 1 == seq) {
            range.last = seq;
        } else if ranges.len() < EARLY_RANGES {
            ranges.push(SeqRange { stream, first: seq, last: seq });
        }
    }

    /// A payload the router delivered, as a whole message (now or once its last piece arrives);
    /// messages lost on the way come out as gaps, first.
    fn reassemble(&mut self, delivery: Delivery) -> Option<Action> {
        let Delivery { id: MessageId { stream, seq }, hops, payload, .. } = delivery;
        let result = self.reassembly.accept(stream, seq, &payload);
        while let Some((stream, first, last)) = self.reassembly.take_lost() {
            self.actions.push_back(Action::Event(Event::Gap { stream, first, last }));
        }
        let action = match result {
            Reassembled::Message { seq: first, payload } => Action::Deliver(Delivery {
                id: MessageId { stream, seq: first },
                hops,
                payload,
                through: seq,
            }),
            Reassembled::Held | Reassembled::Skipped => return None,
            Reassembled::Lost { first, last, why } => {
                match why {
                    Loss::TooLong => tracing::warn!(
                        origin = %stream.origin, seq = first, max = self.max_message_len,
                        "a message longer than max_message_len is not delivered"
                    ),
                    Loss::Malformed => {
                        tracing::warn!(origin = %stream.origin, seq, "a message whose pieces do not add up is not delivered")
                    }
                }
                Action::Event(Event::Gap { stream, first, last })
            }
        };
        self.actions.push_back(action);
        None
    }
}
