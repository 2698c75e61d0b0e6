//! The tree beacon: the tree root's signed, periodic flood, which is what prunes the spanning tree,
//! keeps it shallow and keeps both ends of every link agreeing on what it is. The design, and why the
//! tree is not pruned by payloads, is told once in the crate docs (*The tree beacon*).
//!
//! Per round, at each node: the first copy pushed over a tree link is the node's tree copy (its
//! parent link, its depth) and goes on to every other neighbour at once; a second pushed copy reveals
//! a cycle and prunes its link; announcements (copies over lazy links) are offers: the best one
//! replaces a tree link that is deeper by `Config::optimization_threshold` hops or more, and is
//! grafted when no tree copy comes within a graft delay (the tree is cut above this node).

use std::cmp::Ordering;
use std::time::Instant;

use dotray_codec::NodeId;
use rand::Rng;

use super::action::Timer;
use super::ids::StreamId;
use super::message::{Beacon, Message};
use super::router::Router;
use crate::proof::{Signature, beacon_message};

/// What this node knows of the tree root and of the current round.
#[derive(Debug, Clone)]
pub(crate) struct TreeRound {
    /// The root: its id and epoch.
    pub(crate) root: StreamId,
    /// The latest round heard (or sent, when this node is the root).
    pub(crate) round: u64,
    /// When that round was first heard or sent: the root is given up `Config::root_timeout` later.
    pub(crate) heard: Instant,
    /// Whether the root said it is a publisher in that round.
    pub(crate) publisher: bool,
    /// The root's signature of the round, passed on as is.
    pub(crate) signature: Signature,
    /// The neighbour whose pushed copy came first: this round's parent link.
    pub(crate) parent: Option<NodeId>,
    /// This node's depth in the tree this round (0 at the root), once it has its tree copy.
    pub(crate) depth: Option<u32>,
    /// The shallowest announcement of this round: who sent it and the depth it offers.
    pub(crate) offer: Option<(NodeId, u32)>,
    /// Whether the tree link already moved this round (at most once per round).
    pub(crate) moved: bool,
    /// Whether a tree-graft timer is armed for this round.
    pub(crate) graft_armed: bool,
}

impl TreeRound {
    fn new(b: &Beacon, heard: Instant, depth: Option<u32>) -> Self {
        Self {
            root: b.root,
            round: b.round,
            heard,
            publisher: b.publisher,
            signature: b.signature,
            parent: None,
            depth,
            offer: None,
            moved: false,
            graft_armed: false,
        }
    }

    /// The root's rank: publishers first, then the smaller id (smaller ranks first).
    fn rank(&self) -> (bool, NodeId) {
        (!self.publisher, self.root.origin)
    }
}

/// How a received beacon relates to the round we know.
enum Standing {
    /// A later round of our root, or a better root: check its signature, then take it.
    Newer,
    /// A copy of the current round.
    Current,
    /// An earlier round, or a root that is not better than ours: ignored.
    Stale,
}

impl<R: Rng> Router<R> {
    /// The tree root this node knows of, if any (itself when it sends the beacons).
    pub fn tree_root(&self) -> Option<NodeId> {
        self.tree.as_ref().map(|t| t.root.origin)
    }

    /// This node's depth in the tree in the latest round: 0 at the root, `None` before its first
    /// round.
    pub fn tree_depth(&self) -> Option<u32> {
        self.tree.as_ref().and_then(|t| t.depth)
    }

    /// Whether beacon rounds are arriving (one within the last two intervals, or this node is the
    /// root). While they are, they alone shape the tree: a data graft only fetches what is missing,
    /// and a node cut off from the tree re-attaches at the next round (`on_tree_graft_timer`).
    /// Without them (no root yet, or a root that died), a data graft also makes its link a tree
    /// link, as in Plumtree.
    pub(crate) fn beacons_flow(&self, now: Instant) -> bool {
        self.tree.as_ref().is_some_and(|t| {
            t.root.origin == self.me
                || now.saturating_duration_since(t.heard) <= self.config.beacon_interval * 2
        })
    }

    /// Whether this node is a publisher: at one of its beacon ticks within the last
    /// `Config::root_publisher_hold`, it had broadcast at least `Config::root_publisher_rate`
    /// messages in the two intervals before. Decided at the ticks, so it changes at most once per
    /// interval.
    fn is_publisher(&self) -> bool {
        self.publisher
    }

    /// This node's rank as a root (see [`TreeRound::rank`]).
    fn own_rank(&self) -> (bool, NodeId) {
        (!self.is_publisher(), self.me)
    }

    /// Whether this node sends the beacons now: no root is known, or the known one went silent for
    /// `Config::root_timeout`, or ranks after this node (a non-publisher, or a larger id).
    fn is_root(&self, now: Instant) -> bool {
        match &self.tree {
            None => true,
            Some(t) if t.root.origin == self.me => true,
            Some(t) => {
                self.own_rank() < t.rank()
                    || now.saturating_duration_since(t.heard) > self.config.root_timeout
            }
        }
    }

    /// Arms the beacon timer (with the first neighbour): a node's first beacon waits a whole
    /// interval and a random part of another, so that a newcomer hears the root's beacon before it
    /// would send its own.
    pub(crate) fn arm_beacon(&mut self, now: Instant) {
        if self.beacon_armed {
            return;
        }
        self.beacon_armed = true;
        let interval = self.config.beacon_interval;
        let jitter = interval.mul_f64(self.rng.random::<f64>());
        self.actions.push_back(super::Action::SetTimer { at: now + interval + jitter, timer: Timer::Beacon });
    }

    /// The beacon timer fired: the root sends its next round; every node checks again whether it is
    /// the root. Runs every `Config::beacon_interval` while there are neighbours.
    pub(crate) fn on_beacon_timer(&mut self, now: Instant) {
        self.beacon_armed = false;
        if self.peers.is_empty() {
            return;
        }
        let sent = self.recent_broadcasts[0].saturating_add(self.recent_broadcasts[1]);
        if sent >= self.config.root_publisher_rate {
            self.publisher_until = Some(now + self.config.root_publisher_hold);
        }
        self.publisher = self.publisher_until.is_some_and(|until| now < until);
        if self.is_root(now) {
            self.own_round += 1;
            let (root, round, publisher) = (self.own, self.own_round, self.is_publisher());
            let signature = self.signer.sign(&beacon_message(root, round, publisher));
            let b = Beacon { root, round, hops: 1, tree: true, publisher, signature };
            self.tree = Some(TreeRound::new(&b, now, Some(0)));
            self.pass_beacon(None);
        }
        self.recent_broadcasts = [0, self.recent_broadcasts[0]];
        self.beacon_armed = true;
        let at = now + self.config.beacon_interval;
        self.actions.push_back(super::Action::SetTimer { at, timer: Timer::Beacon });
    }

    /// Sends the current round to every neighbour but `except`: pushed on tree links, announced on
    /// the others, with the depth a receiver would have below this node.
    fn pass_beacon(&mut self, except: Option<NodeId>) {
        let Some(t) = &self.tree else { return };
        let Some(depth) = t.depth else { return };
        let (root, round, publisher, signature) = (t.root, t.round, t.publisher, t.signature);
        let hops = depth.saturating_add(1);
        for tree in [true, false] {
            let to: super::Recipients = self
                .peers
                .iter()
                .filter(|(id, p)| p.eager == tree && Some(**id) != except)
                .map(|(id, _)| *id)
                .collect();
            if to.is_empty() {
                continue;
            }
            self.counters.beacons_sent += to.len() as u64;
            let message = Message::Beacon(Beacon { root, round, hops, tree, publisher, signature });
            self.actions.push_back(super::Action::Send { to, message });
        }
    }

    fn standing(&self, b: &Beacon, now: Instant) -> Standing {
        let rank = (!b.publisher, b.root.origin);
        let Some(t) = &self.tree else {
            return if rank < self.own_rank() { Standing::Newer } else { Standing::Stale };
        };
        if b.root.origin == t.root.origin {
            return match (b.root.epoch, b.round).cmp(&(t.root.epoch, t.round)) {
                Ordering::Greater if b.root.origin != self.me => Standing::Newer,
                Ordering::Equal => Standing::Current,
                _ => Standing::Stale,
            };
        }
        // Another root: better if it ranks before the current root (and us), or if the current root
        // went silent and it ranks before us.
        let ours_lapsed = now.saturating_duration_since(t.heard) > self.config.root_timeout;
        let better = rank < self.own_rank() && (rank < t.rank() || ours_lapsed);
        if better { Standing::Newer } else { Standing::Stale }
    }

    /// A copy of a beacon round from `from`.
    pub(crate) fn on_beacon(&mut self, from: NodeId, b: Beacon, now: Instant) {
        self.counters.beacons_received += 1;
        let Some(peer) = self.peers.get(&from) else { return };
        let link_eager = peer.eager;
        let recently_changed = peer
            .last_graft
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.max_graft_timeout);
        // Both ends must agree on what the link is; the sender's flag says what it thinks.
        if b.tree && !link_eager {
            // It pushes over a link we made lazy: tell it again (not while a prune is on its way).
            self.prune(from, now);
        } else if !b.tree && link_eager && !recently_changed {
            // It only announces over a link we push on: it pruned it, and the prune was lost or
            // crossed our graft. Take its view.
            if let Some(p) = self.peers.get_mut(&from) {
                p.eager = false;
            }
        }
        match self.standing(&b, now) {
            Standing::Stale => return,
            Standing::Current => {
                // A copy of a round we checked: every honest copy carries the very signature.
                if self.tree.as_ref().is_some_and(|t| t.signature != b.signature) {
                    return self.violation(from, "beacon its root did not sign");
                }
            }
            Standing::Newer => {
                let fresh_enough = self.tree.as_ref().is_none_or(|t| {
                    t.root.origin != b.root.origin
                        || now.saturating_duration_since(t.heard) >= self.config.beacon_interval / 4
                });
                if !fresh_enough {
                    // The same root, rounds far faster than any honest root sends them: not worth
                    // a signature check.
                    return;
                }
                let signed = beacon_message(b.root, b.round, b.publisher);
                if !self.signer.verify(&b.root.origin, &signed, &b.signature) {
                    return self.violation(from, "beacon its root did not sign");
                }
                self.counters.beacon_rounds += 1;
                self.tree = Some(TreeRound::new(&b, now, None));
            }
        }
        let tree_copy = b.tree && link_eager;
        let Some(t) = self.tree.as_mut() else { return };
        if tree_copy {
            match t.depth {
                None => {
                    t.parent = Some(from);
                    t.depth = Some(b.hops);
                    self.pass_beacon(Some(from));
                }
                // A second pushed copy of one round: the tree has a cycle through this link.
                Some(_) if t.parent != Some(from) => {
                    self.prune(from, now);
                    return self.ensure_attached(now);
                }
                Some(_) => return,
            }
        } else {
            if t.offer.is_none_or(|(_, hops)| b.hops < hops) {
                t.offer = Some((from, b.hops));
            }
            if t.depth.is_none() && !t.graft_armed {
                // No tree copy yet: if none comes within a graft delay, the tree is cut above us.
                t.graft_armed = true;
                let round = t.round;
                let at = now + self.graft_delay();
                self.actions.push_back(super::Action::SetTimer { at, timer: Timer::TreeGraft { round } });
            }
        }
        self.maybe_move(now);
    }

    /// Moves the tree link to this round's shallowest announcer if it offers a depth at least
    /// `Config::optimization_threshold` hops smaller than ours (once per round). The announcer cannot
    /// be below us: everything below us has this round from us, one hop deeper or more, and an
    /// announcement that came before our own copy came by a path without us. So the tree stays a tree.
    fn maybe_move(&mut self, now: Instant) {
        let threshold = self.config.optimization_threshold;
        let Some(t) = self.tree.as_mut() else { return };
        let (Some(depth), Some((to, hops))) = (t.depth, t.offer) else { return };
        if t.moved || Some(to) == t.parent || hops.saturating_add(threshold) > depth {
            return;
        }
        t.moved = true;
        let old = t.parent.replace(to);
        self.counters.optimisations += 1;
        self.graft_link(to, now);
        // Make before break: the new parent pushes only what reaches it after our graft, and the
        // old one stops at our prune; pruning both at once would lose what falls between to a
        // repair (a graft delay). The old link goes `Config::move_overlap` later.
        if let Some(old) = old {
            if let Some(earlier) = self.unlink.replace(old).filter(|earlier| *earlier != old) {
                self.prune(earlier, now);
            }
            let at = now + self.config.move_overlap;
            self.actions.push_back(super::Action::SetTimer { at, timer: Timer::Unlink });
        }
    }

    /// The old tree link of a move has overlapped the new one for `Config::move_overlap`: prune it,
    /// unless a later round made it the tree link again.
    pub(crate) fn on_unlink_timer(&mut self, now: Instant) {
        let Some(old) = self.unlink.take() else { return };
        if self.tree.as_ref().is_some_and(|t| t.parent != Some(old)) {
            self.prune(old, now);
            self.ensure_attached(now);
        }
    }

    /// The tree-graft timer of `round` fired: no pushed copy came, only announcements. Graft the
    /// shallowest announcer and pass the round on below us as its tree copy.
    pub(crate) fn on_tree_graft_timer(&mut self, round: u64, now: Instant) {
        let Some(t) = self.tree.as_mut() else { return };
        if t.round != round || t.depth.is_some() {
            return;
        }
        let Some((from, hops)) = t.offer else { return };
        if !self.peers.contains_key(&from) {
            return;
        }
        t.parent = Some(from);
        t.depth = Some(hops);
        t.moved = true;
        self.counters.tree_grafts += 1;
        self.graft_link(from, now);
        self.pass_beacon(Some(from));
    }

    /// Makes the link to `to` a tree link on both ends (a `Graft` that asks for nothing).
    pub(crate) fn graft_link(&mut self, to: NodeId, now: Instant) {
        let Some(p) = self.peers.get_mut(&to) else { return };
        p.last_graft = Some(now);
        if !p.eager {
            p.eager = true;
            self.counters.grafts_sent += 1;
            self.send(to, Message::Graft { want: Vec::new(), eager: true });
        }
    }
}
