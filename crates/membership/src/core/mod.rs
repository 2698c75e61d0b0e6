//! The sans-IO membership core: HyParView views, ping/pong liveness, peer exchange, partition healing
//! and node query, as a state machine.
//!
//! [`Membership`] imports no runtime and reads no clock: the driver (tokio in production, the
//! `dotray-sim` simulator in tests) pushes events in with the `handle_*` methods, passing the current
//! time, and pulls the resulting [`Action`]s out with [`Membership::poll_action`] until it returns
//! `None`. Randomness comes from the injected `R: rand::Rng`, so a seeded generator replays a run
//! exactly.
//!
//! The work is split by protocol step, each file an `impl` block of [`Membership`]:
//!
//! * `join.rs` — joining through a seed, `ForwardJoin` random walks, `Neighbour` requests, refilling the
//!   active view from the passive view, and the healing timer;
//! * `exchange.rs` — peer exchange (HyParView's shuffle) and merging samples into the passive view;
//! * `liveness.rs` — ping/pong, round-trip time, declaring peers down, and deadline sweeps;
//! * `query.rs` — node queries, local and remote.
//!
//! ## Connections
//!
//! The transport keeps at most one connection per pair of nodes. The core sorts each open connection
//! into one of two kinds: an *active* link (in the active view) or a *transient* connection,
//! opened for one job (a join, a neighbour request, a peer-exchange reply, a query) and closed by the
//! core when the job is done or after [`Config::transient_timeout`]. Dials are remembered as *intents*
//! keyed by the dialed address, because the node id of the other side is only learned when the
//! connection is up. Connections others opened and this node's own dials have budgets of their own
//! (`max_transient_connections`, `max_dials`), so silent strangers cannot keep the node from
//! dialing; at any time `active + transient + pending dials <= Config::max_connections()`.

mod action;
mod config;
mod exchange;
mod join;
mod liveness;
mod message;
mod query;
mod rtt;
mod seed;
mod timer;
mod view;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dotray_codec::{NodeId, TokenBucket};
use rand::Rng;

pub use action::{Action, CloseReason, Event, LinkEnd};
pub use config::{Config, InvalidConfig, MAX_LIST_LEN};
pub use dotray_codec::Direction;
pub use message::{Message, NodeInfo, NodeState, PeerInfo};
pub use query::QueryError;
pub use rtt::RttEstimator;
pub use seed::{ParseSeedError, Seed, split_seed, write_seed};
pub use timer::Timer;

use view::{ActivePeer, ActiveView, PassiveEntry, PassiveView, Protection, Trust};

/// The HyParView membership state machine of one node. See the [module docs](self).
#[derive(Debug)]
pub struct Membership<R: Rng> {
    me: PeerInfo,
    config: Config,
    rng: R,
    /// The addresses given at start. Never dropped: dialed to join and, periodically, to heal.
    seeds: Vec<SocketAddr>,
    /// The node ids expected at those seed addresses that have one (see [`Seed`]).
    seed_ids: BTreeMap<SocketAddr, NodeId>,
    /// Dial failures of seeds (seeds are known by address only).
    seed_backoff: BTreeMap<SocketAddr, Backoff>,
    /// The seeds that let us in: a join through them went through (it was not refused as busy).
    /// Until every seed has, the node keeps joining through those that have not (with back-off),
    /// even with a full view: nodes started in one instant join through whichever seed answers
    /// first, and a seed that is itself still joining leads them into an island that only the next
    /// heal round with another seed would merge, a minute later. Only a join counts: a seed that
    /// took one of our other dials (a heal, an exchange, a neighbour request) has not merged us
    /// with its side of the overlay.
    seeds_joined: BTreeSet<SocketAddr>,
    active: ActiveView,
    passive: PassiveView,
    transient: BTreeMap<NodeId, Transient>,
    dials: BTreeMap<SocketAddr, Intent>,
    /// Peer exchanges we started and await an answer for: id -> expiry.
    exchanges: BTreeMap<u64, Instant>,
    /// Node queries asked by the user and not answered yet.
    queries: BTreeMap<u64, query::PendingQuery>,
    actions: VecDeque<Action>,
    /// Origin of the `sent_at_micros` clock in our pings.
    origin: Instant,
    /// The generation of the newest `Timer::Refill`, and when it fires.
    refill_generation: u64,
    refill_at: Option<Instant>,
    /// No low-priority refill attempt before this (rate limit after refusals).
    refill_not_before: Instant,
    refill_refusals: u32,
    /// Until then, accept every `Neighbour` request: they end the walks of the join we just sent.
    accept_neighbours_until: Instant,
    /// Dials to addresses other nodes named: the origin of a peer-exchange walk that ends here, the
    /// joiner at the end of a `ForwardJoin` walk. Those dials answer one message each, so without a
    /// budget a peer could turn one cheap message into one connection attempt to any address of its
    /// choosing: a reflection (make many nodes connect to a victim) or a port scan in this node's
    /// name. Honest walks end at a node a few times a minute, and in bursts of a few when many nodes
    /// join at once; the bucket's burst covers those, and its rate bounds what a hostile neighbour
    /// can make this node do.
    named_dials: TokenBucket,
    /// Heal timer rounds so far (every `heal_seed_every`-th goes to a seed).
    heal_round: u32,
    left: bool,
}

/// Dial failures of one address.
#[derive(Debug, Clone, Copy, Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

/// An open connection outside the active view, and what we wait for on it.
#[derive(Debug, Clone)]
struct Transient {
    info: PeerInfo,
    direction: Direction,
    expires: Instant,
    awaiting: Awaiting,
}

/// What a transient connection is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// Nothing from our side: the other node opened it and will speak, or we answered and it will close.
    Nothing,
    /// The answer to our `Neighbour` request.
    NeighbourReply,
    /// The answer to a direct peer exchange (healing).
    ExchangeResponse(u64),
    /// The answer to a node query.
    QueryResponse(u64),
}

/// Why we dialed an address; applied when the connection comes up.
#[derive(Debug, Clone)]
struct Intent {
    purpose: Purpose,
    expires: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    /// Join the network through this contact (send `Join`).
    Join,
    /// Ask to become active neighbours (refill, or the end of a `ForwardJoin` walk).
    Neighbour,
    /// Healing: neighbour request if we have room or we had declared it down, else a direct exchange.
    Heal,
    /// Deliver a peer-exchange response to the origin of a walk.
    ExchangeReply { peers: Vec<PeerInfo>, exchange_id: u64 },
    /// Ask the node queries waiting for this node.
    Query,
}

/// What happens to a peer's passive entry when its connection is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Alive: keep (or put) it in the passive view.
    Keep,
    /// Declared down: keep it, marked down, not redialed before a backoff.
    Down,
    /// Left the network or misbehaved: remove it from the passive view.
    Forget,
}

impl<R: Rng> Membership<R> {
    /// A new core for the node `me`. With `seeds`, it starts joining through one of them at once; with
    /// none, it is the first node of a network and waits for others to join it.
    ///
    /// The first actions (a dial, the periodic timers) are ready for [`Membership::poll_action`].
    pub fn new(
        me: PeerInfo,
        seeds: impl IntoIterator<Item = Seed>,
        config: Config,
        rng: R,
        now: Instant,
    ) -> Result<Self, InvalidConfig> {
        config.validate()?;
        let seeds: Vec<Seed> = seeds.into_iter().filter(|s| s.addr != me.addr).collect();
        let seed_ids = seeds.iter().filter_map(|s| Some((s.addr, s.node?))).collect();
        let mut seeds: Vec<SocketAddr> = seeds.iter().map(|s| s.addr).collect();
        seeds.dedup();
        let named_dials = TokenBucket::new(config.named_dial_rate, config.named_dial_burst, now);
        let mut this = Self {
            me,
            named_dials,
            active: ActiveView::new(config.active_view_capacity),
            passive: PassiveView::new(config.passive_view_capacity),
            config,
            rng,
            seeds,
            seed_ids,
            seed_backoff: BTreeMap::new(),
            seeds_joined: BTreeSet::new(),
            transient: BTreeMap::new(),
            dials: BTreeMap::new(),
            exchanges: BTreeMap::new(),
            queries: BTreeMap::new(),
            actions: VecDeque::new(),
            origin: now,
            refill_generation: 0,
            refill_at: None,
            refill_not_before: now,
            refill_refusals: 0,
            heal_round: 0,
            accept_neighbours_until: now,
            left: false,
        };
        let ping = now + this.config.ping_interval;
        let shuffle = now + this.jittered(this.config.shuffle_interval);
        let heal = now + this.jittered(this.config.heal_interval);
        let sweep = now + this.config.sweep_interval;
        this.set_timer(ping, Timer::Ping);
        this.set_timer(shuffle, Timer::Shuffle);
        this.set_timer(heal, Timer::Heal);
        this.set_timer(sweep, Timer::Sweep);
        this.refill(now);
        Ok(this)
    }

    /// This node.
    pub fn me(&self) -> PeerInfo {
        self.me
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The peers of the active view, in id order.
    pub fn active_peers(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.active.iter().map(|p| p.info)
    }

    /// Number of peers in the active view.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Number of addresses in the passive view.
    pub fn passive_len(&self) -> usize {
        self.passive.len()
    }

    /// Open connections the core knows of (active and transient).
    pub fn connection_count(&self) -> usize {
        self.active.len() + self.transient.len()
    }

    /// True after [`Membership::leave`].
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The next action for the driver, or `None` when there is nothing more to do for now.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// A connection to `peer` completed its handshake. `peer.addr` is its advertised listen address;
    /// `dialed` is the address of the [`Action::Dial`] this connection answers, or `None` when the
    /// peer dialed this node.
    pub fn handle_connected(&mut self, peer: PeerInfo, dialed: Option<SocketAddr>, now: Instant) {
        if self.left {
            self.push(Action::Disconnect { peer: peer.id, reason: CloseReason::Shutdown });
            return;
        }
        if peer.id == self.me.id {
            self.push(Action::Disconnect { peer: peer.id, reason: CloseReason::Done });
            return;
        }
        // The transport reports a disconnect before any new connection to the same node; if that
        // ever fails to happen, forget the old state rather than keep two records.
        if self.active.contains(&peer.id) || self.transient.contains_key(&peer.id) {
            self.forget(peer.id, Fate::Keep, now);
        }
        // Which dial does this answer? For an inbound connection, a dial of ours to the same node may
        // have lost a race against its dial to us: the one connection serves our intent too.
        let intent = self.dials.remove(&dialed.unwrap_or(peer.addr));
        // A seed that failed to answer before and answers now: the network is probably coming back
        // together after a long partition (or the seed restarted). Remembered before the success
        // clears its failure count.
        let seed_returned =
            dialed.is_some_and(|dialed| self.seed_backoff.get(&dialed).is_some_and(|b| b.failures > 0));
        self.note_success(&peer, dialed, now);
        let link = if dialed.is_some() { Direction::Outbound } else { Direction::Inbound };
        let Some(intent) = intent else {
            // A connection nobody here asked for: the other node's dial, the application's (a direct
            // message to a node that is not a neighbour), or the late answer to a dial we gave up on.
            // Each is kept as a transient connection, closed after `transient_timeout` unless it
            // becomes a neighbour, within the connection budget.
            // Other nodes' connections have their budget; ours (the application's) only the total.
            let full = link == Direction::Inbound
                && self.inbound_transients() >= self.config.max_transient_connections;
            if full || self.connections_and_dials() >= self.config.max_connections() {
                self.push(Action::Disconnect { peer: peer.id, reason: CloseReason::TooManyConnections });
                self.learn_connected(peer, link, false);
                return;
            }
            self.add_transient(peer, link, Awaiting::Nothing, now);
            self.flush_queries(peer.id);
            return;
        };
        self.add_transient(peer, link, Awaiting::Nothing, now);
        let purpose = match intent.purpose {
            Purpose::Heal if seed_returned && !self.active.contains(&peer.id) => Purpose::Join,
            purpose => purpose,
        };
        if let Some(dialed) = dialed.filter(|d| self.seeds.contains(d) && matches!(purpose, Purpose::Join)) {
            self.seeds_joined.insert(dialed);
        }
        self.apply_intent(peer, purpose, now);
        self.flush_queries(peer.id);
        self.refill(now);
    }

    /// The connection to `peer` closed, for `reason`. Reported for every connection that closes,
    /// including those the core closed itself.
    pub fn handle_disconnected(&mut self, peer: NodeId, reason: LinkEnd, now: Instant) {
        if reason == LinkEnd::PeerBusy {
            self.seed_was_busy(peer, now);
        }
        let fate = match reason {
            LinkEnd::Local | LinkEnd::PeerReplaced | LinkEnd::PeerClosed | LinkEnd::PeerBusy => Fate::Keep,
            LinkEnd::PeerLeft => Fate::Forget,
            LinkEnd::Failed if self.active.contains(&peer) => Fate::Down,
            LinkEnd::Failed => Fate::Keep,
        };
        self.forget(peer, fate, now);
        if reason == LinkEnd::PeerReplaced {
            // It chose another node over us: asking it again at once would evict that one.
            self.note_refusal(peer, now);
        }
        if reason == LinkEnd::PeerBusy {
            // It had no room. Forgetting the link left its address in the passive view, eligible at
            // once: refill would dial it again as a neighbour candidate, and each such dial is a
            // handshake the busy node pays for before it refuses again (in a join storm, every
            // joiner against the same few seeds). It rests like a node that turned down our neighbour
            // request; a seed is joined again after its own short pause (`seed_was_busy`).
            let wait = self.jittered(self.config.neighbour_refusal_backoff);
            if let Some(e) = self.passive.get_mut(&peer) {
                e.retry_at = Some(now + wait);
            }
        }
        self.refill(now);
    }

    /// A dial of `addr` failed (refused, unreachable, timed out, or handshake failed).
    pub fn handle_dial_failed(&mut self, addr: SocketAddr, now: Instant) {
        self.dials.remove(&addr);
        if self.connected_to_addr(&addr) {
            // A race with the peer's own dial to us, which won: nothing failed.
            return;
        }
        self.note_failure(addr, now);
        self.fail_queries_to_addr(addr);
        self.refill(now);
    }

    /// A dial of `addr`, made for the node `expected` we knew there, reached another node: `proven`
    /// proved its own id in the handshake, so the connection was closed (a dial by id keeps only the
    /// node it names). The node we knew restarted with a fresh key pair, or the address passed to
    /// another node; either way the entry is stale.
    ///
    /// A seed pinned by id (`id@addr`) only counts a failure: the user asked for that node. Otherwise
    /// `proven` takes the stale entry's place in the passive view, verified (we dialed the address and
    /// it proved its id there) and still marked down if the entry was (a peer we lost at that address
    /// is back under a new id: healing asks it to be a neighbour), and the dial is made again at
    /// once for the same purpose. That is how the rest of a network finds a restarted node whose
    /// seeds were down when it came back: the only addresses anyone has of it are its old entries.
    ///
    /// The new entry keeps the stale one's failure count plus one, and is dropped like any address
    /// at `Config::max_dial_failures`: a node that answers every dial with a fresh id costs a bounded
    /// number of dials, as an address that never answers does.
    pub fn handle_dial_unexpected_peer(
        &mut self,
        addr: SocketAddr,
        expected: NodeId,
        proven: NodeId,
        now: Instant,
    ) {
        let intent = self.dials.remove(&addr);
        if self.connected_to_addr(&addr) {
            return;
        }
        let stale = self.passive.get(&expected).filter(|e| e.info.addr == addr).cloned();
        let pinned = self.seed_ids.get(&addr) == Some(&expected);
        let replaceable = proven != self.me.id && !self.is_connected(&proven) && !pinned;
        let Some(stale) = stale.filter(|_| replaceable) else {
            self.note_failure(addr, now);
            self.fail_queries_to_addr(addr);
            self.refill(now);
            return;
        };
        self.passive.remove(&expected);
        self.fail_queries_to_addr(addr);
        let failures = stale.failures + 1;
        if failures < self.config.max_dial_failures {
            let mut entry = PassiveEntry::new(PeerInfo::new(proven, addr), None, Trust::Verified);
            entry.failures = failures;
            entry.down = stale.down;
            entry.last_seen = stale.last_seen;
            self.learn_entry(entry);
            let again = match intent.map(|i| i.purpose) {
                Some(purpose @ (Purpose::Join | Purpose::Neighbour | Purpose::Heal)) => Some(purpose),
                Some(Purpose::ExchangeReply { .. } | Purpose::Query) | None => None,
            };
            if let Some(purpose) = again.filter(|_| self.passive.get(&proven).is_some()) {
                self.dial(addr, Some(proven), purpose, now);
            }
        }
        self.refill(now);
    }

    /// A dial of `addr` was refused by the node there for lack of room (its transport's connection
    /// limit). The node is alive: this is not a failure, so nothing counts towards dropping the
    /// address, and a seed that later lets us in is not taken for one coming back from a partition
    /// (which would make us join through it again). Whoever fills a seed's connection slots for a
    /// while must not turn every node that dialed it meanwhile into a rejoin and its evictions. The
    /// address rests for a short pause (a seed) or `neighbour_refusal_backoff` (any other).
    pub fn handle_dial_busy(&mut self, addr: SocketAddr, now: Instant) {
        self.dials.remove(&addr);
        if self.connected_to_addr(&addr) {
            return;
        }
        if self.seeds.contains(&addr) {
            let failures = self.seed_backoff.get(&addr).map_or(0, |b| b.failures);
            let retry_at = Some(now + self.backoff(1));
            self.seed_backoff.insert(addr, Backoff { failures, retry_at });
        }
        let wait = self.jittered(self.config.neighbour_refusal_backoff);
        if let Some(entry) = self.passive.by_addr_mut(&addr) {
            entry.retry_at = Some(now + wait);
        }
        self.fail_queries_to_addr(addr);
        self.refill(now);
    }

    /// A membership message arrived from the connected peer `from`.
    pub fn handle_message(&mut self, from: NodeId, message: Message, now: Instant) {
        if self.left {
            return;
        }
        if let Some(peer) = self.active.get_mut(&from) {
            peer.last_seen = now;
        } else if !self.transient.contains_key(&from) {
            // A message racing a disconnect we already processed: nothing to answer.
            return;
        }
        match message {
            Message::Join => self.on_join(from, now),
            Message::ForwardJoin { node, ttl } => self.on_forward_join(from, node, ttl, now),
            Message::Neighbour { high_priority } => self.on_neighbour(from, high_priority, now),
            Message::NeighbourReply { accepted } => self.on_neighbour_reply(from, accepted, now),
            Message::PeerExchangeRequest { origin, ttl, peers, exchange_id } => {
                self.on_exchange_request(from, origin, ttl, peers, exchange_id, now)
            }
            Message::PeerExchangeResponse { peers, exchange_id } => {
                self.on_exchange_response(from, peers, exchange_id, now)
            }
            Message::Ping { nonce, sent_at_micros } => {
                self.send(from, Message::Pong { nonce, sent_at_micros });
            }
            Message::Pong { nonce, .. } => self.on_pong(from, nonce, now),
            Message::NodeQueryRequest { request_id, max } => {
                self.on_query_request(from, request_id, max, now)
            }
            Message::NodeQueryResponse { request_id, nodes } => {
                self.on_query_response(from, request_id, nodes, now)
            }
        }
        self.refill(now);
    }

    /// A frame from `from` could not be turned into a [`Message`] (see [`crate::wire::WireError`]), or
    /// broke the protocol in another way the driver noticed. The peer is disconnected with
    /// `ProtocolViolation` and forgotten.
    pub fn handle_protocol_violation(&mut self, from: NodeId, now: Instant) {
        self.violation(from, now);
        self.refill(now);
    }

    /// A timer set with [`Action::SetTimer`] fired.
    pub fn handle_timer(&mut self, timer: Timer, now: Instant) {
        if self.left {
            return;
        }
        match timer {
            Timer::Ping => self.on_ping_timer(now),
            Timer::Shuffle => self.on_shuffle_timer(now),
            Timer::JoinExchange => self.start_exchange(now),
            Timer::Heal => self.on_heal_timer(now),
            Timer::Sweep => self.on_sweep_timer(now),
            Timer::Refill { generation } => {
                if generation != self.refill_generation {
                    return; // A newer refill timer replaced this one.
                }
                self.refill_at = None;
            }
        }
        self.refill(now);
    }

    /// Leaves the network gracefully: every connection is closed with a `Shutdown` goodbye, so peers
    /// replace this node at once instead of waiting for missed pongs. The core ignores everything
    /// afterwards.
    pub fn leave(&mut self, _now: Instant) {
        if self.left {
            return;
        }
        self.left = true;
        for id in self.active.ids() {
            self.push(Action::Disconnect { peer: id, reason: CloseReason::Shutdown });
            self.push(Action::Event(Event::NeighbourDown(id)));
        }
        let transient: Vec<NodeId> = self.transient.keys().copied().collect();
        for id in transient {
            self.push(Action::Disconnect { peer: id, reason: CloseReason::Shutdown });
        }
        for (request_id, query) in std::mem::take(&mut self.queries) {
            self.push(Action::Event(Event::QueryFailed { request_id, peer: query.peer }));
        }
        self.active = ActiveView::new(self.config.active_view_capacity);
        self.transient.clear();
        self.dials.clear();
        self.exchanges.clear();
    }

    // ----- bookkeeping shared by the protocol steps -----

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.push(Action::Send { to, message });
    }

    fn set_timer(&mut self, at: Instant, timer: Timer) {
        self.push(Action::SetTimer { at, timer });
    }

    /// `d` randomised by ±25 %, so that periodic work of many nodes does not synchronise.
    fn jittered(&mut self, d: Duration) -> Duration {
        d.mul_f64(self.rng.random_range(0.75..1.25))
    }

    /// Wait before the next dial of an address that failed `failures` times in a row: exponential,
    /// capped, with "equal jitter" (half fixed, half random) so that many nodes do not retry together.
    fn backoff(&mut self, failures: u32) -> Duration {
        self.backoff_up_to(failures, self.config.backoff_max)
    }

    /// [`Self::backoff`] with its own cap.
    fn backoff_up_to(&mut self, failures: u32, max: Duration) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let base = self.config.backoff_initial.saturating_mul(1 << exp).min(max);
        base.mul_f64(self.rng.random_range(0.5..1.0))
    }

    /// Wait before the next dial of a seed that failed `failures` times in a row: capped lower while
    /// the node has no neighbour (`Config::alone_seed_backoff_max`).
    fn seed_backoff_delay(&mut self, failures: u32) -> Duration {
        let max =
            if self.active.is_empty() { self.config.alone_seed_backoff_max } else { self.config.backoff_max };
        self.backoff_up_to(failures, max)
    }

    fn connections_and_dials(&self) -> usize {
        self.active.len() + self.transient.len() + self.dials.len()
    }

    /// May we open one more connection?
    fn dial_budget(&self) -> bool {
        self.outbound_pending() < self.config.max_dials
            && self.connections_and_dials() < self.config.max_connections()
    }

    /// Connections other nodes opened, outside the active view.
    fn inbound_transients(&self) -> usize {
        self.transient.values().filter(|t| t.direction == Direction::Inbound).count()
    }

    /// Dials under way and connections this node opened, outside the active view.
    fn outbound_pending(&self) -> usize {
        self.dials.len() + self.transient.values().filter(|t| t.direction == Direction::Outbound).count()
    }

    fn is_connected(&self, id: &NodeId) -> bool {
        self.active.contains(id) || self.transient.contains_key(id)
    }

    fn connected_to_addr(&self, addr: &SocketAddr) -> bool {
        self.active.iter().any(|p| p.info.addr == *addr)
            || self.transient.values().any(|t| t.info.addr == *addr)
    }

    /// Dials `addr` for `purpose`, unless it is already being dialed or there is no room. `node` is the
    /// node id learned with the address, if any: the connection is kept only if the peer proves it.
    fn dial(&mut self, addr: SocketAddr, node: Option<NodeId>, purpose: Purpose, now: Instant) -> bool {
        if self.dials.contains_key(&addr) || !self.dial_budget() || addr == self.me.addr {
            return false;
        }
        self.dials.insert(addr, Intent { purpose, expires: now + self.config.transient_timeout });
        self.push(Action::Dial { addr, node });
        true
    }

    fn add_transient(&mut self, info: PeerInfo, direction: Direction, awaiting: Awaiting, now: Instant) {
        let expires = now + self.config.transient_timeout;
        self.transient.insert(info.id, Transient { info, direction, expires, awaiting });
    }

    /// Puts a node that `source` told us of into the passive view (see [`PassiveView::insert`]), unless
    /// it is us, active, or has no usable address.
    fn learn(&mut self, info: PeerInfo, source: NodeId) {
        let trust = if self.active.contains(&source) { Trust::Neighbour } else { Trust::Stranger };
        self.learn_entry(PassiveEntry::new(info, Some(source), trust));
    }

    /// Puts a node we had a connection with into the passive view: verified if we dialed it (the
    /// handshake proved its id at that address), a neighbour's word if it was an active peer, a
    /// stranger's otherwise.
    fn learn_connected(&mut self, info: PeerInfo, direction: Direction, was_active: bool) {
        let trust = match direction {
            Direction::Outbound => Trust::Verified,
            Direction::Inbound if was_active => Trust::Neighbour,
            Direction::Inbound => Trust::Stranger,
        };
        self.learn_entry(PassiveEntry::new(info, None, trust));
    }

    fn learn_entry(&mut self, entry: PassiveEntry) {
        let info = entry.info;
        if info.id == self.me.id || info.addr == self.me.addr || self.active.contains(&info.id) {
            return;
        }
        if !usable(&info.addr) {
            return;
        }
        self.passive.insert(entry, &mut self.rng, self.config.max_passive_per_source);
    }

    /// How many active links of each kind a newcomer may not evict.
    fn protection(&self) -> Protection {
        Protection {
            outbound: self.config.protected_outbound,
            low_rtt: self.config.protected_low_rtt,
            long_lived: self.config.protected_long_lived,
        }
    }

    /// A connection came up: the address works.
    fn note_success(&mut self, peer: &PeerInfo, dialed: Option<SocketAddr>, now: Instant) {
        if let Some(entry) = self.passive.get_mut(&peer.id) {
            entry.failures = 0;
            entry.retry_at = None;
            entry.last_seen = Some(now);
            if dialed == Some(entry.info.addr) {
                entry.trust = Trust::Verified;
            }
        }
        self.seed_backoff.remove(&peer.addr);
        if let Some(dialed) = dialed {
            self.seed_backoff.remove(&dialed);
        }
    }

    /// A seed's address changed (its host name now resolves to `new`): later joins and heals dial
    /// `new`, with the seed's expected node id if it had one and no back-off (a new address deserves
    /// a try at once). Nothing happens if `old` is not a seed.
    pub fn replace_seed(&mut self, old: SocketAddr, new: SocketAddr) {
        if old == new || !self.seeds.contains(&old) {
            return;
        }
        if self.seeds.contains(&new) {
            self.seeds.retain(|s| *s != old);
        } else if let Some(slot) = self.seeds.iter_mut().find(|s| **s == old) {
            *slot = new;
        }
        self.seed_backoff.remove(&old);
        if self.seeds_joined.remove(&old) {
            self.seeds_joined.insert(new);
        }
        if let Some(id) = self.seed_ids.remove(&old) {
            self.seed_ids.insert(new, id);
        }
    }

    /// `peer` closed our connection for lack of room. If it is a seed we joined through (a join makes
    /// the contact active at once), it has not let us in after all: join through it again after a
    /// short pause. A seed that was busy when dialed for anything else (a heal, an exchange, a
    /// neighbour request) is alive and reachable, and nothing is owed to it: every node of a large
    /// network dials its seed now and then, and turning each refusal into a join would turn it into
    /// evictions over the overlay, churn that grows with the network.
    fn seed_was_busy(&mut self, peer: NodeId, now: Instant) {
        let addr = self.active.get(&peer).map(|p| p.info.addr);
        let Some(addr) = addr.filter(|a| self.seeds.contains(a)) else { return };
        if self.seeds_joined.remove(&addr) {
            // A short pause, not an escalating back-off: a busy seed is alive, and in a join storm
            // every node hears "busy" a few times before it gets in.
            let retry_at = Some(now + self.backoff(1));
            self.seed_backoff.insert(addr, Backoff { failures: 0, retry_at });
        }
    }

    /// A dial of `addr` failed: back off, and drop the address after too many failures (never a seed).
    fn note_failure(&mut self, addr: SocketAddr, now: Instant) {
        if self.seeds.contains(&addr) {
            let failures = self.seed_backoff.get(&addr).map_or(0, |b| b.failures) + 1;
            let retry_at = Some(now + self.seed_backoff_delay(failures));
            self.seed_backoff.insert(addr, Backoff { failures, retry_at });
        }
        let Some(failures) = self.passive.by_addr_mut(&addr).map(|e| e.failures + 1) else { return };
        let delay = self.backoff(failures);
        let max = self.config.max_dial_failures;
        if failures >= max && !self.seeds.contains(&addr) {
            self.passive.remove_addr(&addr);
        } else if let Some(entry) = self.passive.by_addr_mut(&addr) {
            entry.failures = failures;
            entry.retry_at = Some(now + delay);
        }
    }

    /// Removes every record of the connection to `peer` (which is closed or being closed), emits
    /// `NeighbourDown` if it was active, and updates its passive entry according to `fate`.
    fn forget(&mut self, peer: NodeId, fate: Fate, now: Instant) {
        let info = if let Some(active) = self.active.remove(&peer) {
            self.push(Action::Event(Event::NeighbourDown(peer)));
            Some((active.info, active.direction, true))
        } else if let Some(t) = self.transient.remove(&peer) {
            if t.awaiting == Awaiting::NeighbourReply {
                self.note_refusal(peer, now);
            }
            Some((t.info, t.direction, false))
        } else {
            None
        };
        self.fail_queries_to(peer);
        match fate {
            Fate::Forget => {
                self.passive.remove(&peer);
            }
            Fate::Keep => {
                if let Some((info, direction, was_active)) = info {
                    self.learn_connected(info, direction, was_active);
                    if let Some(e) = self.passive.get_mut(&peer) {
                        e.last_seen = Some(now);
                    }
                }
            }
            Fate::Down => {
                if let Some((info, direction, was_active)) = info {
                    self.learn_connected(info, direction, was_active);
                    let delay = self.backoff(1);
                    if let Some(e) = self.passive.get_mut(&peer) {
                        e.down = true;
                        e.retry_at = Some(now + delay);
                    }
                }
            }
        }
    }

    /// Closes the connection to `peer` with `reason` and forgets it.
    fn close(&mut self, peer: NodeId, reason: CloseReason, fate: Fate, now: Instant) {
        self.push(Action::Disconnect { peer, reason });
        self.forget(peer, fate, now);
    }

    /// The peer broke the protocol: disconnect it and forget it.
    fn violation(&mut self, peer: NodeId, now: Instant) {
        if self.is_connected(&peer) {
            self.close(peer, CloseReason::ProtocolViolation, Fate::Forget, now);
        } else {
            self.push(Action::Disconnect { peer, reason: CloseReason::ProtocolViolation });
            self.passive.remove(&peer);
        }
    }
}

/// An address other nodes can dial: a specified ip and a non-zero port.
fn usable(addr: &SocketAddr) -> bool {
    !addr.ip().is_unspecified() && addr.port() != 0
}
