//! The router plumbing of [`Sim`]: a `dotray_router` core on every node, wired to membership the way
//! the tokio drivers wire them.
//!
//! * membership's `NeighbourUp`/`NeighbourDown`/`RttUpdated` events become the router's
//!   `handle_neighbour_up`/`handle_neighbour_down`/`handle_rtt` calls;
//! * router `Send`s travel as [`SimMessage::Router`] over the same simulated connection as membership
//!   (same latency, loss, ordering and partition rules); a send to a peer with no open connection is
//!   dropped, as the driver drops it;
//! * router timers go through the simulation's event queue;
//! * `Deliver` actions and `Gap` events are recorded per node in [`Sim::deliveries`].

use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_membership::core::Event as MembershipEvent;
use dotray_router::core::{Action, Config, Event, Message, MessageId, Router, Timer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{NodeIdx, Sim, SimEvent, SimMessage};

/// The per-kind counter name of a router message.
pub(super) fn kind_name(message: &Message) -> &'static str {
    match message {
        Message::Data { .. } => "router.data",
        Message::IHave { .. } => "router.ihave",
        Message::Graft { .. } => "router.graft",
        Message::Prune => "router.prune",
        Message::Ack { .. } => "router.ack",
        Message::Sync { .. } => "router.sync",
    }
}

impl Sim {
    /// Runs a router core with `config` on every node created from now on. Call before adding nodes.
    /// Without it the simulation runs membership only (and draws exactly the same random numbers as
    /// before routers existed, so membership runs replay unchanged).
    pub fn enable_router(&mut self, config: Config) {
        config.validate().expect("valid router config");
        self.router = Some(config);
    }

    /// A router for a new node, if routers are enabled. Its epoch and generator derive from the seed.
    pub(super) fn new_router(&mut self, id: NodeId, now: Instant) -> Option<Router<ChaCha8Rng>> {
        let config = self.router.clone()?;
        let epoch = self.rng.random();
        let rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        Some(Router::new(id, epoch, config, rng, now))
    }

    /// Node `node` broadcasts `payload`. Returns the message id (None if the node is dead or runs no
    /// router). The broadcast is recorded, to check later who delivered it.
    pub fn broadcast(&mut self, node: NodeIdx, payload: Bytes) -> Option<MessageId> {
        if !self.nodes[node].alive {
            return None;
        }
        let now = self.instant();
        let id = self.nodes[node].router.as_mut()?.broadcast(payload, now);
        self.deliveries.broadcast(node, id, self.now);
        self.drain_router(node);
        Some(id)
    }

    /// Hands a membership event of `node` to its router (the driver's job in production).
    pub(super) fn feed_router(&mut self, node: NodeIdx, event: &MembershipEvent) {
        let now = self.instant();
        let Some(router) = self.nodes[node].router.as_mut() else { return };
        match event {
            MembershipEvent::NeighbourUp(info) => router.handle_neighbour_up(info.id, now),
            MembershipEvent::NeighbourDown(id) => router.handle_neighbour_down(*id, now),
            MembershipEvent::RttUpdated { peer, rtt } => router.handle_rtt(*peer, *rtt),
            _ => return,
        }
        if !matches!(event, MembershipEvent::RttUpdated { .. }) {
            self.stats.neighbour_changes += 1;
        }
        self.drain_router(node);
    }

    /// A router timer of `node` fired.
    pub(super) fn router_timer(&mut self, node: NodeIdx, timer: Timer) {
        if !self.nodes[node].alive {
            return;
        }
        let now = self.instant();
        if let Some(router) = self.nodes[node].router.as_mut() {
            router.handle_timer(timer, now);
            self.drain_router(node);
        }
    }

    /// Carries out the actions `node`'s router produced.
    pub(super) fn drain_router(&mut self, node: NodeIdx) {
        loop {
            let Some(action) = self.nodes[node].router.as_mut().and_then(|r| r.poll_action()) else {
                return;
            };
            match action {
                Action::Send { to, message } => self.send(node, to, SimMessage::Router(message)),
                Action::SetTimer { at, timer } => {
                    let at = at.saturating_duration_since(self.base).max(self.now);
                    self.queue.push(at, SimEvent::RouterTimer { node, timer });
                }
                Action::Deliver(delivery) => self.deliveries.deliver(node, &delivery),
                Action::Event(Event::Gap { stream, first, last }) => {
                    self.deliveries.gap(node, stream, first, last);
                }
                Action::Event(_) => {}
                Action::Violation { peer, reason } => {
                    // Between honest simulated nodes this is a bug; counted and checked by scenarios.
                    self.deliveries.violations += 1;
                    if std::env::var_os("SIM_DEBUG").is_some() {
                        eprintln!("t={:?} node {node}: violation by {peer:?}: {reason}", self.now);
                    }
                }
            }
        }
    }

    /// Sum over all nodes of (payloads received, payloads delivered) by their routers.
    pub fn router_totals(&self) -> (u64, u64) {
        self.nodes.iter().filter_map(|n| n.router.as_ref()).fold((0, 0), |(r, d), router| {
            let c = router.counters();
            (r + c.payloads_received, d + c.delivered)
        })
    }
}
