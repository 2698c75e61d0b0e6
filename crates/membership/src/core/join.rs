//! Joining, `ForwardJoin` random walks, `Neighbour` requests, keeping the active view full, and healing.
//!
//! HyParView's join (paper, section 4.2), as implemented here:
//!
//! 1. The new node dials a seed (its *contact*) and sends `Join`. Both sides make the link active at
//!    once (the contact evicts a random active peer if its view is full; never one of the links the
//!    `view` module protects from strangers).
//! 2. The contact sends `ForwardJoin { node, ttl: active_random_walk_length }` to each of its other
//!    active peers. Each hop decrements the TTL and passes the walk to a random active peer; at
//!    `ttl == passive_random_walk_length` the hop also keeps the new node as a passive address.
//! 3. Where a walk ends (TTL zero, or the hop has no one else to forward to), the hop dials the new
//!    node and asks to become its neighbour. So a join creates about `active_view_capacity` links spread
//!    over the overlay, and the seed holds only one of them.
//!
//! A `Neighbour` request is accepted when the receiver's active view has room, when it is of high
//! priority (the requester has fewer than `lonely_below` active peers: none, or one, which may be an
//! island of two), when the receiver had declared the requester
//! down (a peer that answers again after being declared down is most likely coming back from a
//! partition, and relinking it is what merges the two halves), or shortly after the receiver sent a
//! `Join` (the request is the end of one of its join walks). Otherwise it is refused, and the requester
//! tries another passive address later.
//!
//! Whenever the active view is not full the node *refills* it from the passive view (and, when it has
//! nobody at all, by joining again through a seed). The *heal* timer dials, even when all is well, a
//! peer declared down earlier, an original seed, or a random passive address: a neighbour request when
//! that makes sense, a direct peer exchange otherwise, so that two halves of a healed partition learn of
//! each other again.
//!
//! Partition healing rests on two kinds of evidence, so that a healthy network pays almost nothing:
//!
//! * a peer we declared down answers a dial again: we ask it to be our neighbour, and it accepts even
//!   with a full view because it had declared us down too (both sides of a cut link time out). This
//!   heals cuts shorter than the failure budget of an address (`max_dial_failures` with backoff, about
//!   3 minutes by default);
//! * an original seed that failed to answer our dials answers again: we join through it once more
//!   (`Join` makes the seed accept us and sends us on walks through its side). This heals cuts of any
//!   length, since seeds are never dropped; it costs one join per node of the seedless side, spread
//!   over `heal_interval * heal_seed_every`.

use std::time::Instant;

use dotray_codec::NodeId;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::{
    ActivePeer, Awaiting, CloseReason, Direction, Event, Fate, Membership, Message, PeerInfo, Purpose,
    RttEstimator, Timer, usable,
};
use crate::core::Action;

impl<R: Rng> Membership<R> {
    /// A dial came up: do what we dialed for. The connection is already recorded as transient.
    pub(super) fn apply_intent(&mut self, peer: PeerInfo, purpose: Purpose, now: Instant) {
        match purpose {
            Purpose::Join => {
                let direction = self.transient[&peer.id].direction;
                // The `Join` goes out before `NeighbourUp` (as a `NeighbourReply` does, see
                // `on_neighbour`): the contact treats us as a neighbour, and listens to the layers
                // above (the router's `Sync`), only once it has read it.
                self.send(peer.id, Message::Join);
                self.add_active(peer, direction, now);
                // The walks of this join end at nodes that will ask us to be their neighbour. A new
                // node has room for them; a node rejoining after a partition has a full view of its
                // own side, and accepting them anyway is what ties the two sides together.
                self.accept_neighbours_until = now + self.config.transient_timeout;
            }
            Purpose::Neighbour => self.request_neighbour(peer.id),
            Purpose::Heal => {
                let was_down = self.passive.get(&peer.id).is_some_and(|e| e.down);
                if !self.active.is_full() || was_down {
                    self.request_neighbour(peer.id);
                } else {
                    self.start_direct_exchange(peer.id, now);
                }
            }
            Purpose::ExchangeReply { peers, exchange_id } => {
                self.send(peer.id, Message::PeerExchangeResponse { peers, exchange_id });
            }
            // The queries waiting for this peer are sent by `handle_connected` (`flush_queries`).
            Purpose::Query => {}
        }
    }

    /// Fewer active peers than `Config::lonely_below` (and room for more): the node hangs by a
    /// thread, and asks and joins more insistently (see `request_neighbour` and `refill`).
    fn lonely(&self) -> bool {
        self.active.len() < self.config.lonely_below && !self.active.is_full()
    }

    /// Sends `Neighbour` over the (transient) connection to `peer` and waits for the reply.
    ///
    /// High priority (the receiver must accept, evicting one of its peers) only when we have fewer
    /// active peers than `lonely_below` and no other request is waiting for its answer: one forced
    /// eviction elsewhere is enough to tie us back into the overlay.
    fn request_neighbour(&mut self, peer: NodeId) {
        let waiting = self.transient.values().any(|t| t.awaiting == Awaiting::NeighbourReply);
        let high_priority = self.lonely() && !waiting;
        if let Some(t) = self.transient.get_mut(&peer) {
            t.awaiting = Awaiting::NeighbourReply;
        }
        self.send(peer, Message::Neighbour { high_priority });
    }

    /// Step 1 at the contact: admit the new node and send it on random walks.
    pub(super) fn on_join(&mut self, from: NodeId, now: Instant) {
        let Some(t) = self.transient.get(&from) else {
            return; // Already active: a repeated join changes nothing.
        };
        let (info, direction) = (t.info, t.direction);
        self.add_active(info, direction, now);
        let ttl = self.config.active_random_walk_length;
        for peer in self.active.ids() {
            if peer != from {
                self.send(peer, Message::ForwardJoin { node: info, ttl });
            }
        }
    }

    /// Step 2 and 3 at each hop of a join's random walk.
    pub(super) fn on_forward_join(&mut self, from: NodeId, node: PeerInfo, ttl: u32, now: Instant) {
        // Walks travel over active links only. From anyone else (a stale link we just replaced, or a
        // stranger trying to make us dial addresses of its choosing) the walk is dropped.
        if !self.active.contains(&from) {
            return;
        }
        if node.id == self.me.id || !usable(&node.addr) {
            return;
        }
        // Never trust a TTL from the wire: a huge one would make the walk circulate for long.
        let ttl = ttl.min(self.config.active_random_walk_length);
        // A walk that comes back to a node already linked to the joiner (common in small networks)
        // walks on, as in the paper: dropping it here would end most walks before the hop that records
        // the joiner in a passive view, and the network would know too little to heal a later split.
        let linked = self.active.contains(&node.id);
        if !linked && (ttl == 0 || self.active.len() <= 1) {
            self.connect_to_joiner(node, from, now);
            return;
        }
        if ttl == 0 {
            return;
        }
        if ttl == self.config.passive_random_walk_length && !linked {
            self.learn(node, from);
        } else if !linked {
            // Any other hop keeps the joiner too while its passive view has room (see
            // `learn_while_room`): a fresh node is a good backup.
            self.learn_while_room(&[node], from);
        }
        match self.active.random_except(&mut self.rng, &[from, node.id]) {
            Some(next) => self.send(next, Message::ForwardJoin { node, ttl: ttl - 1 }),
            None if !linked => self.connect_to_joiner(node, from, now),
            None => {}
        }
    }

    /// The end of a join walk: ask the joining node to become our neighbour.
    ///
    /// iroh-gossip sends this request with high priority; we send it with low priority, as the wire
    /// protocol reserves high priority for nodes without any neighbour. The joining node accepts such
    /// requests anyway for `transient_timeout` after its `Join` (see `accept_neighbours_until`), evicting
    /// a random peer of its own when its view is full.
    /// `from` is the active peer that passed us the walk.
    fn connect_to_joiner(&mut self, node: PeerInfo, from: NodeId, now: Instant) {
        if self.transient.contains_key(&node.id) {
            self.request_neighbour(node.id);
        } else {
            self.learn(node, from);
            if self.named_dials.take(now) {
                self.dial(node.addr, Some(node.id), Purpose::Neighbour, now);
            }
        }
    }

    /// A `Neighbour` request: accept (room, high priority, or a peer we had declared down) or refuse.
    pub(super) fn on_neighbour(&mut self, from: NodeId, high_priority: bool, now: Instant) {
        if self.active.contains(&from) {
            self.send(from, Message::NeighbourReply { accepted: true });
            return;
        }
        let Some(t) = self.transient.get(&from) else { return };
        let (info, direction) = (t.info, t.direction);
        let was_down = self.passive.get(&from).is_some_and(|e| e.down);
        let just_joined = now < self.accept_neighbours_until;
        if high_priority || !self.active.is_full() || was_down || just_joined {
            // The reply goes out before `NeighbourUp` is emitted: the layers above start talking to a
            // new neighbour at once (the router sends its `Sync`), and the requester only treats us
            // as a neighbour, and listens to them, once it has read this reply.
            self.send(from, Message::NeighbourReply { accepted: true });
            self.add_active(info, direction, now);
        } else {
            // Refused: the requester closes the connection; keep its address as a backup.
            self.learn_connected(info, direction, false);
            self.send(from, Message::NeighbourReply { accepted: false });
        }
    }

    /// The answer to our `Neighbour` request.
    pub(super) fn on_neighbour_reply(&mut self, from: NodeId, accepted: bool, now: Instant) {
        if self.active.contains(&from) {
            return; // A reply to a request that a join or their request overtook.
        }
        let Some(t) = self.transient.get(&from) else { return };
        if t.awaiting != Awaiting::NeighbourReply {
            // We asked nothing: the peer breaks the protocol.
            self.violation(from, now);
            return;
        }
        let (info, direction) = (t.info, t.direction);
        if accepted {
            self.add_active(info, direction, now);
        } else {
            self.close(from, CloseReason::Done, Fate::Keep, now);
        }
    }

    /// Makes `info` an active peer, evicting one (HyParView DISCONNECT) if the view is full: a random
    /// peer that is not protected (see `ActiveView::eviction_victim`).
    pub(super) fn add_active(&mut self, info: PeerInfo, direction: Direction, now: Instant) {
        if self.active.contains(&info.id) {
            return;
        }
        if self.active.is_full() {
            let protect = self.protection();
            if let Some(victim) = self.active.eviction_victim(&mut self.rng, protect, &info.id) {
                self.close(victim, CloseReason::Replaced, Fate::Keep, now);
            }
        }
        self.transient.remove(&info.id);
        self.passive.remove(&info.id);
        self.active.insert(ActivePeer {
            info,
            direction,
            rtt: RttEstimator::new(),
            since: now,
            last_seen: now,
            pings: Default::default(),
        });
        self.refill_refusals = 0;
        let first = self.active.len() == 1;
        self.push(Action::Event(Event::NeighbourUp(info)));
        if first {
            // Just joined (or rejoined): exchange views at once rather than at the next shuffle tick,
            // so a new node learns backup addresses beyond its seed within a round trip or two. Through
            // a timer due now, so that the exchange follows whatever this handler still sends (the
            // `Join` that must come first on a seed connection).
            self.set_timer(now, Timer::JoinExchange);
        }
    }

    /// A neighbour request to `peer` was refused (or its connection closed before an answer), or
    /// `peer` dropped us from its active view for another node.
    pub(super) fn note_refusal(&mut self, peer: NodeId, now: Instant) {
        let wait = self.jittered(self.config.neighbour_refusal_backoff);
        if let Some(e) = self.passive.get_mut(&peer) {
            e.retry_at = Some(now + wait);
        }
        self.refill_refusals = self.refill_refusals.saturating_add(1);
        let pause = self.backoff(self.refill_refusals).min(self.config.neighbour_refusal_backoff);
        self.refill_not_before = now + pause;
    }

    /// Neighbour requests in flight (dialing for one, or waiting for the reply).
    fn pending_neighbour_requests(&self) -> usize {
        let dialing = self.dials.values().filter(|i| matches!(i.purpose, Purpose::Neighbour | Purpose::Join));
        let waiting = self.transient.values().filter(|t| t.awaiting == Awaiting::NeighbourReply);
        dialing.count() + waiting.count()
    }

    /// Keeps the active view full: asks random passive peers to become neighbours, or joins again
    /// through a seed when the node has nobody. Called after every event; cheap when there is nothing
    /// to do.
    pub(super) fn refill(&mut self, now: Instant) {
        if self.left {
            return;
        }
        self.hurry_seeds_when_alone(now);
        self.reach_seeds(now);
        if self.active.is_full() {
            return;
        }
        // With nobody, up to a full view's worth of passive peers are asked at once. With less than
        // half a view, one peer at a time but without pause: the node hangs by one or two links. Otherwise
        // one at a time, paced by `refill_not_before`, which grows with refusals: most nodes have full
        // views, and asking them all in a burst would only collect refusals.
        let urgent = self.active.is_empty();
        let low = self.active.len() * 2 < self.config.active_view_capacity;
        if !urgent && !low && now < self.refill_not_before {
            self.schedule_refill(self.refill_not_before);
            return;
        }
        let pending = self.pending_neighbour_requests();
        let wanted = if urgent {
            self.config.active_view_capacity.saturating_sub(pending)
        } else {
            usize::from(pending == 0)
        };
        for _ in 0..wanted {
            let candidates: Vec<(PeerInfo, bool)> = self
                .passive
                .iter()
                .filter(|e| e.eligible(now) && !self.active.contains(&e.info.id))
                .filter(|e| !self.dials.contains_key(&e.info.addr))
                .filter(|e| self.transient.get(&e.info.id).is_none_or(|t| t.awaiting == Awaiting::Nothing))
                .map(|e| (e.info, e.verified()))
                .collect();
            // Addresses proven to work first (Bitcoin Core's "tried" before "new"): a view that
            // strangers filled with made-up addresses then costs no failed dials while it still
            // holds a real one.
            let verified: Vec<PeerInfo> = candidates.iter().filter(|(_, v)| *v).map(|(p, _)| *p).collect();
            let all: Vec<PeerInfo> = candidates.iter().map(|(p, _)| *p).collect();
            let pool = if verified.is_empty() { &all } else { &verified };
            let Some(&pick) = pool.choose(&mut self.rng) else { break };
            if self.transient.contains_key(&pick.id) {
                self.request_neighbour(pick.id);
            } else if !self.dial(pick.addr, Some(pick.id), Purpose::Neighbour, now) {
                break;
            }
            if !urgent && !low {
                self.refill_not_before = now + self.config.backoff_initial;
            }
        }
        // Nobody, or one neighbour (possibly as cut off as we are: two restarted nodes whose other
        // contacts are all down), and no request under way: join again through a seed.
        let lonely = self.lonely();
        if lonely && self.pending_neighbour_requests() == 0 {
            if let Some(seed) = self.dialable_seeds(false, now).choose(&mut self.rng).copied() {
                self.dial(seed, self.seed_ids.get(&seed).copied(), Purpose::Join, now);
            }
        }
        // Wake up when the first backoff ends, in case nothing else happens meanwhile.
        let mut next = self.passive.iter().filter_map(|e| e.retry_at).filter(|at| *at > now).min();
        if lonely || self.seeds_joined.len() < self.seeds.len() {
            let seed_next =
                self.seed_backoff.values().filter_map(|b| b.retry_at).filter(|at| *at > now).min();
            next = match (next, seed_next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(at) = next {
            self.schedule_refill(at.max(self.refill_not_before));
        }
    }

    /// A node with no neighbour dials its seeds again within `Config::alone_seed_backoff_max`,
    /// however far their back-off grew while it had neighbours.
    fn hurry_seeds_when_alone(&mut self, now: Instant) {
        if !self.active.is_empty() {
            return;
        }
        let max = self.config.alone_seed_backoff_max;
        let late: Vec<_> = self
            .seed_backoff
            .iter()
            .filter(|(_, b)| b.retry_at.is_some_and(|at| at > now + max))
            .map(|(addr, _)| *addr)
            .collect();
        for addr in late {
            let retry_at = Some(now + max.mul_f64(self.rng.random_range(0.5..1.0)));
            if let Some(backoff) = self.seed_backoff.get_mut(&addr) {
                backoff.retry_at = retry_at;
            }
        }
    }

    /// Joins through a seed that has not let us in yet, if any may be dialed now (see
    /// `seeds_joined`): one join at a time, whether or not the view is full.
    fn reach_seeds(&mut self, now: Instant) {
        if self.active.is_empty() || self.pending_neighbour_requests() > 0 {
            return; // `refill` joins through any seed; or a join is already under way.
        }
        if let Some(seed) = self.dialable_seeds(true, now).choose(&mut self.rng).copied() {
            self.dial(seed, self.seed_ids.get(&seed).copied(), Purpose::Join, now);
        }
    }

    /// Seeds that may be dialed at `now` (past their back-off, not connected, not being dialed); only
    /// those we have not joined through yet if `not_joined`.
    fn dialable_seeds(&self, not_joined: bool, now: Instant) -> Vec<std::net::SocketAddr> {
        self.seeds
            .iter()
            .filter(|s| !not_joined || !self.seeds_joined.contains(*s))
            .filter(|s| self.seed_backoff.get(s).is_none_or(|b| b.retry_at.is_none_or(|at| at <= now)))
            .filter(|s| !self.connected_to_addr(s) && !self.dials.contains_key(*s))
            .copied()
            .collect()
    }

    /// Sets a `Timer::Refill` at `at` unless one is already due sooner.
    fn schedule_refill(&mut self, at: Instant) {
        if self.refill_at.is_some_and(|t| t <= at) {
            return;
        }
        self.refill_generation += 1;
        self.refill_at = Some(at);
        self.set_timer(at, Timer::Refill { generation: self.refill_generation });
    }

    /// The heal timer: dial one node outside the active view (see the module docs).
    pub(super) fn on_heal_timer(&mut self, now: Instant) {
        let next = now + self.jittered(self.config.heal_interval);
        self.set_timer(next, Timer::Heal);
        // Passive addresses we may dial now: (address, declared down).
        let passive: Vec<_> = self
            .passive
            .iter()
            .filter(|e| e.eligible(now) && !self.is_connected(&e.info.id))
            .filter(|e| !self.dials.contains_key(&e.info.addr))
            .map(|e| (e.info, e.down))
            .collect();
        let seeds: Vec<_> = self
            .seeds
            .iter()
            .filter(|s| !self.connected_to_addr(s) && !self.dials.contains_key(*s))
            .filter(|s| self.seed_backoff.get(s).is_none_or(|b| b.retry_at.is_none_or(|at| at <= now)))
            .copied()
            .collect();
        self.heal_round = self.heal_round.wrapping_add(1);
        let seed_round = self.heal_round % self.config.heal_seed_every == 0;
        let down: Vec<_> = passive.iter().filter(|(_, down)| *down).map(|(info, _)| *info).collect();
        let target = if seed_round && !seeds.is_empty() {
            // 1. Every `heal_seed_every` rounds, an original seed: after a cut long enough that every
            //    address across it was dropped, the seeds are what is left to find the other side.
            seeds.choose(&mut self.rng).map(|&seed| (seed, self.seed_ids.get(&seed).copied()))
        } else if let Some(&info) = down.choose(&mut self.rng) {
            // 2. A peer we declared down: if it answers, the cut that separated us has healed.
            Some((info.addr, Some(info.id)))
        } else if let Some(&(info, _)) = passive.choose(&mut self.rng) {
            // 3. A random passive address: a direct exchange keeps both views fresh and mixed.
            Some((info.addr, Some(info.id)))
        } else {
            seeds.choose(&mut self.rng).map(|&seed| (seed, self.seed_ids.get(&seed).copied()))
        };
        if let Some((addr, node)) = target {
            self.dial(addr, node, Purpose::Heal, now);
        }
    }
}
