//! Liveness: ping/pong on every active link, smoothed round-trip time, and the deadline sweep.
//!
//! Every `ping_interval` the node pings each active peer with a fresh random nonce and remembers when.
//! A pong echoing one of the outstanding nonces gives a round-trip sample (measured with our own clock,
//! never with the peer's echo of `sent_at_micros`, which is only informative) and clears it and every
//! older ping. A peer with `max_missed_pongs` pings outstanding at a tick is declared down: its
//! connection is closed with `Timeout`, `NeighbourDown` is emitted, and a passive peer replaces it.
//! Because only our own nonces count, an old or forged pong cannot keep a dead peer alive.
//!
//! The sweep closes transient connections that outlived `transient_timeout` and forgets expired dial
//! intents, exchanges and queries, so that nothing a peer does (or fails to do) keeps state forever.

use std::time::Instant;

use dotray_codec::NodeId;
use rand::Rng;

use super::{Action, CloseReason, Event, Fate, Membership, Message, Timer};

impl<R: Rng> Membership<R> {
    /// The ping timer: declare down the silent peers, ping the others.
    pub(super) fn on_ping_timer(&mut self, now: Instant) {
        self.set_timer(now + self.config.ping_interval, Timer::Ping);
        let max = self.config.max_missed_pongs as usize;
        let silent: Vec<NodeId> =
            self.active.iter().filter(|p| p.pings.len() >= max).map(|p| p.info.id).collect();
        for peer in silent {
            self.close(peer, CloseReason::Timeout, Fate::Down, now);
        }
        let sent_at_micros = now.saturating_duration_since(self.origin).as_micros() as u64;
        let mut pings = Vec::with_capacity(self.active.len());
        for peer in self.active.iter_mut() {
            let nonce = self.rng.random();
            peer.pings.push_back((nonce, now));
            pings.push((peer.info.id, nonce));
        }
        for (to, nonce) in pings {
            self.send(to, Message::Ping { nonce, sent_at_micros });
        }
    }

    /// A pong: if it answers an outstanding ping, update the round-trip time.
    pub(super) fn on_pong(&mut self, from: NodeId, nonce: u64, now: Instant) {
        let Some(peer) = self.active.get_mut(&from) else { return };
        let Some(i) = peer.pings.iter().position(|(n, _)| *n == nonce) else { return };
        let sent = peer.pings[i].1;
        peer.pings.drain(..=i);
        let rtt = peer.rtt.update(now.saturating_duration_since(sent));
        self.push(Action::Event(Event::RttUpdated { peer: from, rtt }));
    }

    /// The sweep timer: expire what waited too long.
    pub(super) fn on_sweep_timer(&mut self, now: Instant) {
        self.set_timer(now + self.config.sweep_interval, Timer::Sweep);
        let expired: Vec<NodeId> =
            self.transient.iter().filter(|(_, t)| t.expires <= now).map(|(id, _)| *id).collect();
        for peer in expired {
            self.close(peer, CloseReason::Timeout, Fate::Keep, now);
        }
        // The driver reports every dial's outcome, so an expired intent means a lost report: drop it.
        let dials: Vec<_> = self.dials.iter().filter(|(_, i)| i.expires <= now).map(|(a, _)| *a).collect();
        for addr in dials {
            self.dials.remove(&addr);
            self.fail_queries_to_addr(addr);
        }
        self.exchanges.retain(|_, expires| *expires > now);
        let queries: Vec<u64> =
            self.queries.iter().filter(|(_, q)| q.expires <= now).map(|(id, _)| *id).collect();
        for id in queries {
            self.fail_query(id);
        }
    }
}
