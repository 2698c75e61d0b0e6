//! Peer exchange: HyParView's SHUFFLE (paper, section 4.4), which keeps passive views fresh and mixed.
//!
//! Every `shuffle_interval` (±25 %) a node builds a sample: itself, `shuffle_active_count` active peers
//! and `shuffle_passive_count` passive ones. It sends the sample on a random walk of
//! `shuffle_random_walk_length` hops through active links (`PeerExchangeRequest`). The node where the
//! walk ends answers the origin directly with a sample of its own passive view of the same size, and
//! at least a full sample's worth (topped up with active peers when the passive view is thinner)
//! (`PeerExchangeResponse`), dialing it if they are not connected; both merge what they received into
//! their passive views. The paper evicts first the entries just sent away; here what a merge may
//! displace is bounded per source instead (see the `view` module): a stranger ending a walk at us
//! would otherwise replace our backups with its own addresses. Nodes a walk passes through keep its
//! sample too while their passive view has room, evicting nothing: a young node otherwise knows little
//! beyond its seed until its own first shuffle, and loses everything if its few neighbours crash
//! (`dotray-sim`'s crash-50 scenario: a node 20 s old knew only its seed and two neighbours).
//!
//! The healing timer uses the same messages with a TTL of zero over a connection it opened itself: a
//! *direct* exchange with one chosen node.
//!
//! Every list from the wire is cut to `max_exchange_peers` before use, and merging never grows the
//! passive view beyond its capacity.

use std::time::Instant;

use dotray_codec::NodeId;
use rand::Rng;

use super::{Awaiting, CloseReason, Fate, Membership, Message, PeerInfo, Purpose, Timer};

impl<R: Rng> Membership<R> {
    /// The shuffle timer: start a peer exchange through a random active peer.
    pub(super) fn on_shuffle_timer(&mut self, now: Instant) {
        let next = now + self.jittered(self.config.shuffle_interval);
        self.set_timer(next, Timer::Shuffle);
        self.start_exchange(now);
    }

    /// Starts a peer exchange: a random walk through a random active peer (none: nothing to do).
    pub(super) fn start_exchange(&mut self, now: Instant) {
        let Some(first_hop) = self.active.random_except(&mut self.rng, &[]) else { return };
        let (exchange_id, peers) = self.new_exchange(first_hop, now);
        let ttl = self.config.shuffle_random_walk_length;
        self.send(first_hop, Message::PeerExchangeRequest { origin: self.me, ttl, peers, exchange_id });
    }

    /// The heal step's direct exchange with `peer`, over a transient connection we opened.
    pub(super) fn start_direct_exchange(&mut self, peer: NodeId, now: Instant) {
        let (exchange_id, peers) = self.new_exchange(peer, now);
        if let Some(t) = self.transient.get_mut(&peer) {
            t.awaiting = Awaiting::ExchangeResponse(exchange_id);
        }
        self.send(peer, Message::PeerExchangeRequest { origin: self.me, ttl: 0, peers, exchange_id });
    }

    /// Builds our sample for a new exchange sent towards `towards`, and remembers the exchange.
    fn new_exchange(&mut self, towards: NodeId, now: Instant) -> (u64, Vec<PeerInfo>) {
        let exchange_id = self.rng.random();
        let mut peers = vec![self.me];
        peers.extend(self.active.sample(&mut self.rng, self.config.shuffle_active_count, &towards));
        peers.extend(self.passive.sample(&mut self.rng, self.config.shuffle_passive_count));
        // Bounded: exchanges expire with `transient_timeout`, and at most one starts per timer tick.
        self.exchanges.insert(exchange_id, now + self.config.transient_timeout);
        (exchange_id, peers)
    }

    /// A peer-exchange request: forward the walk, or end it here and answer the origin.
    pub(super) fn on_exchange_request(
        &mut self,
        from: NodeId,
        origin: PeerInfo,
        ttl: u32,
        mut peers: Vec<PeerInfo>,
        exchange_id: u64,
        now: Instant,
    ) {
        peers.truncate(self.config.max_exchange_peers);
        if origin.id == self.me.id {
            return; // The walk came back to its origin: nothing to learn.
        }
        // A walk travels over active links, or is a direct exchange whose origin is the peer that
        // opened the connection. Anything else comes from a stranger naming someone else as the
        // origin: answering would mean dialing an address of its choosing, and merging would let a
        // passer-by write into our passive view.
        if !self.active.contains(&from) && origin.id != from {
            return;
        }
        let ttl = ttl.min(self.config.shuffle_random_walk_length);
        if ttl > 0 && self.active.len() > 1 && self.active.contains(&from) {
            if let Some(next) = self.active.random_except(&mut self.rng, &[from, origin.id]) {
                // A walk passing through: its sample costs nothing to keep while our passive view has
                // room (a young node's view is nearly empty until its own first shuffle), and it never
                // displaces what we hold.
                self.learn_while_room(&peers, from);
                let message = Message::PeerExchangeRequest { origin, ttl: ttl - 1, peers, exchange_id };
                self.send(next, message);
                return;
            }
        }
        // The walk ends here: answer with as many of our passive peers as we received, and at least a
        // full sample's worth — a newcomer's first exchange carries only itself, and one address back
        // would leave it with a single backup.
        let want = peers.len().max(self.sample_len()).min(self.config.max_exchange_peers);
        let mut reply = self.passive.sample(&mut self.rng, want);
        if reply.len() < want {
            // A young network's passive views are thin: top up with active peers.
            for peer in self.active.sample(&mut self.rng, want - reply.len(), &origin.id) {
                if !reply.contains(&peer) {
                    reply.push(peer);
                }
            }
        }
        if self.is_connected(&origin.id) {
            self.send(origin.id, Message::PeerExchangeResponse { peers: reply, exchange_id });
        } else if self.named_dials.take(now) {
            self.dial(
                origin.addr,
                Some(origin.id),
                Purpose::ExchangeReply { peers: reply, exchange_id },
                now,
            );
        }
        self.merge(&peers, from);
    }

    /// The answer to an exchange we started.
    pub(super) fn on_exchange_response(
        &mut self,
        from: NodeId,
        mut peers: Vec<PeerInfo>,
        exchange_id: u64,
        now: Instant,
    ) {
        peers.truncate(self.config.max_exchange_peers);
        // An unknown id is a late answer (we gave up on it): ignore it, it is not harmful.
        if self.exchanges.remove(&exchange_id).is_none() {
            return;
        }
        self.merge(&peers, from);
        // The answer came over a transient connection (ours for a direct exchange, or the one the
        // walk's last node opened to answer us): its job is done, so close it now rather than at the
        // timeout. A connection that also waits for something else stays open.
        let done = self.transient.get(&from).is_some_and(|t| {
            matches!(t.awaiting, Awaiting::Nothing) || t.awaiting == Awaiting::ExchangeResponse(exchange_id)
        });
        if done {
            self.close(from, CloseReason::Done, Fate::Keep, now);
        }
    }

    /// The size of the sample a node sends when it starts an exchange: itself plus
    /// `shuffle_active_count` active and `shuffle_passive_count` passive peers.
    fn sample_len(&self) -> usize {
        1 + self.config.shuffle_active_count + self.config.shuffle_passive_count
    }

    /// Adds records `source` sent to the passive view while it has room, evicting nothing.
    pub(super) fn learn_while_room(&mut self, peers: &[PeerInfo], source: NodeId) {
        for &peer in peers {
            if self.passive.is_full() {
                return;
            }
            self.learn(peer, source);
        }
    }

    /// Merges the records `source` sent into the passive view (see `PassiveView::insert` for what they
    /// may displace).
    fn merge(&mut self, peers: &[PeerInfo], source: NodeId) {
        for &peer in peers {
            self.learn(peer, source);
        }
    }
}
