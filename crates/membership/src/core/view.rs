//! The two views of HyParView.
//!
//! * The **active view** ([`ActiveView`]) holds the few peers this node keeps an open, pinged connection
//!   with. Links are symmetric: a peer is in our active view exactly when we are in its own, and the
//!   router broadcasts over these links only.
//! * The **passive view** ([`PassiveView`]) holds addresses of other nodes, not connected, kept as
//!   backups: when an active peer fails, one of these replaces it. It also remembers, per address, how
//!   often dialing it failed (for backoff and eviction), whether we declared it down as an active
//!   peer (a *down* entry: if it answers again, a partition has probably healed), whether we ever had
//!   a connection with it (a *verified* entry), and which peer told us of it (its *source*).
//!
//! Both are bounded by the [`crate::core::Config`]; nothing received from the wire can make them grow
//! beyond it.
//!
//! ## Who may take a slot
//!
//! HyParView trusts every peer: a `Join` evicts a random active peer, and a peer exchange evicts first
//! the entries just sent away. In an open network anyone can make key pairs, so both are eclipse
//! tools: a handful of fresh identities would own the whole active view, and two exchange requests
//! would replace the whole passive view with addresses of the attacker's choosing. The views defend
//! themselves as Bitcoin Core's inbound eviction and address manager do:
//!
//! * **Active view** ([`ActiveView::eviction_victim`]): some links are *protected* and never evicted
//!   to make room for a newcomer: the oldest links this node dialed itself (it chose those peers; a
//!   stranger cannot make it dial them), then the lowest round-trip time among the rest, then the
//!   longest-lived. The victim is a random unprotected peer, so strangers can hold at most the
//!   unprotected slots, however many identities they make.
//! * **Passive view** ([`PassiveView::insert`]): an entry heard from a peer (a *source*) is capped at
//!   `max_passive_per_source` entries per source, beyond which it replaces that source's own entries;
//!   a verified entry (one we had a connection with) is never evicted, nor its address or id replaced,
//!   by an unverified one; and when the view is full the victim is an unverified entry of the source
//!   that holds the most. One stranger can thus own a small, fixed share of the backups and never the
//!   addresses this node has proved work.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dotray_codec::NodeId;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::message::PeerInfo;
use super::rtt::RttEstimator;
use dotray_codec::Direction;

/// One peer of the active view and the liveness state of its connection.
#[derive(Debug, Clone)]
pub(crate) struct ActivePeer {
    pub(crate) info: PeerInfo,
    pub(crate) direction: Direction,
    pub(crate) rtt: RttEstimator,
    /// When the peer became active.
    pub(crate) since: Instant,
    pub(crate) last_seen: Instant,
    /// Pings sent and not yet answered, oldest first: (nonce, when sent).
    pub(crate) pings: VecDeque<(u64, Instant)>,
}

impl ActivePeer {
    /// Unanswered pings that are at least one ping interval old (all but the newest are).
    pub(crate) fn missed(&self) -> usize {
        self.pings.len().saturating_sub(1)
    }
}

/// The active view: a map kept in id order so that iteration is deterministic.
#[derive(Debug, Clone)]
pub(crate) struct ActiveView {
    peers: BTreeMap<NodeId, ActivePeer>,
    capacity: usize,
}

impl ActiveView {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { peers: BTreeMap::new(), capacity }
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.peers.len() >= self.capacity
    }

    pub(crate) fn contains(&self, id: &NodeId) -> bool {
        self.peers.contains_key(id)
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&ActivePeer> {
        self.peers.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &NodeId) -> Option<&mut ActivePeer> {
        self.peers.get_mut(id)
    }

    /// Inserts a peer; the caller has made room first.
    pub(crate) fn insert(&mut self, peer: ActivePeer) {
        debug_assert!(!self.is_full() || self.peers.contains_key(&peer.info.id));
        self.peers.insert(peer.info.id, peer);
    }

    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<ActivePeer> {
        self.peers.remove(id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &ActivePeer> {
        self.peers.values()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ActivePeer> {
        self.peers.values_mut()
    }

    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.peers.keys().copied().collect()
    }

    /// A random active peer other than those in `except`.
    pub(crate) fn random_except<R: Rng>(&self, rng: &mut R, except: &[NodeId]) -> Option<NodeId> {
        let candidates: Vec<NodeId> = self.peers.keys().filter(|id| !except.contains(id)).copied().collect();
        candidates.choose(rng).copied()
    }

    /// The peer to evict to make room for a newcomer (see the [module docs](self)): the `outbound`
    /// oldest links this node dialed, then the `low_rtt` links of lowest round-trip time and the
    /// `long_lived` oldest links among the rest are kept, at most all but one slot in all; the victim
    /// is a random other peer. `None` only when the view holds nobody but `except`.
    pub(crate) fn eviction_victim<R: Rng>(
        &self,
        rng: &mut R,
        protect: Protection,
        except: &NodeId,
    ) -> Option<NodeId> {
        let mut rest: Vec<&ActivePeer> = self.peers.values().filter(|p| p.info.id != *except).collect();
        // However the protections are set, one slot stays open to newcomers: a view that refused every
        // join would keep the network from growing.
        let mut budget = self.capacity.saturating_sub(1).min(rest.len().saturating_sub(1));
        // Oldest first (ties in id order: the map's order, kept by a stable sort).
        rest.sort_by_key(|p| p.since);
        let mut outbound = protect.outbound.min(budget);
        budget -= outbound;
        rest.retain(|p| {
            let protected = outbound > 0 && p.direction == Direction::Outbound;
            outbound -= usize::from(protected);
            !protected
        });
        budget += outbound; // Unused outbound protections.
        // Lowest round-trip time: only measured links compete (a newcomer has no estimate yet).
        let mut by_rtt: Vec<(Duration, NodeId)> =
            rest.iter().filter_map(|p| Some((p.rtt.smoothed()?, p.info.id))).collect();
        by_rtt.sort();
        let fast: Vec<NodeId> = by_rtt.iter().take(protect.low_rtt.min(budget)).map(|(_, id)| *id).collect();
        budget -= fast.len();
        rest.retain(|p| !fast.contains(&p.info.id));
        let rest = &rest[protect.long_lived.min(budget).min(rest.len())..];
        rest.choose(rng).map(|p| p.info.id)
    }

    /// Up to `n` random active peers other than `except`.
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R, n: usize, except: &NodeId) -> Vec<PeerInfo> {
        let candidates: Vec<PeerInfo> =
            self.peers.values().filter(|p| p.info.id != *except).map(|p| p.info).collect();
        candidates.choose_multiple(rng, n).copied().collect()
    }
}

/// How many active links of each kind [`ActiveView::eviction_victim`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Protection {
    pub(crate) outbound: usize,
    pub(crate) low_rtt: usize,
    pub(crate) long_lived: usize,
}

/// One address of the passive view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PassiveEntry {
    pub(crate) info: PeerInfo,
    /// Consecutive failed dials (reset by any successful connection).
    pub(crate) failures: u32,
    /// Not to be dialed before this instant (backoff after failures or a refusal).
    pub(crate) retry_at: Option<Instant>,
    /// We declared it down as an active peer (missed pongs or broken connection).
    pub(crate) down: bool,
    /// When we last had a connection with it.
    pub(crate) last_seen: Option<Instant>,
    /// The peer that told us of it (a peer exchange, a join walk), or `None` when the node told us
    /// itself (it connected to us, advertising this address).
    pub(crate) source: Option<NodeId>,
    /// We dialed this address and the node proved this id: the address works.
    pub(crate) verified: bool,
}

impl PassiveEntry {
    /// An unverified entry for `info`, told by `source` (`None`: by the node itself).
    pub(crate) fn new(info: PeerInfo, source: Option<NodeId>) -> Self {
        Self { info, failures: 0, retry_at: None, down: false, last_seen: None, source, verified: false }
    }

    /// May be dialed at `now`.
    pub(crate) fn eligible(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| at <= now)
    }
}

/// The passive view: a small vector (30 entries by default), so linear scans are the fastest structure.
#[derive(Debug, Clone)]
pub(crate) struct PassiveView {
    entries: Vec<PassiveEntry>,
    capacity: usize,
}

impl PassiveView {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: Vec::with_capacity(capacity), capacity }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the view holds `capacity` entries (a further insert evicts one).
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&PassiveEntry> {
        self.entries.iter().find(|e| e.info.id == *id)
    }

    pub(crate) fn get_mut(&mut self, id: &NodeId) -> Option<&mut PassiveEntry> {
        self.entries.iter_mut().find(|e| e.info.id == *id)
    }

    pub(crate) fn by_addr_mut(&mut self, addr: &SocketAddr) -> Option<&mut PassiveEntry> {
        self.entries.iter_mut().find(|e| e.info.addr == *addr)
    }

    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<PassiveEntry> {
        let i = self.entries.iter().position(|e| e.info.id == *id)?;
        Some(self.entries.swap_remove(i))
    }

    pub(crate) fn remove_addr(&mut self, addr: &SocketAddr) -> Option<PassiveEntry> {
        let i = self.entries.iter().position(|e| e.info.addr == *addr)?;
        Some(self.entries.swap_remove(i))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &PassiveEntry> {
        self.entries.iter()
    }

    /// Adds an entry (or refreshes the address of a known id), within the rules of the
    /// [module docs](self): an unverified entry never displaces a verified one, a source that already
    /// holds `per_source` entries replaces one of its own, and a full view evicts an unverified entry
    /// of the source holding the most (entries a node told of itself count as one source; down
    /// entries, our evidence for healing partitions, go last).
    ///
    /// Returns the evicted entry's id, if any.
    pub(crate) fn insert<R: Rng>(
        &mut self,
        entry: PassiveEntry,
        rng: &mut R,
        per_source: usize,
    ) -> Option<NodeId> {
        let trusted = entry.verified;
        // A known id: keep its history, take the (possibly new) address unless only hearsay says so.
        if let Some(known) = self.get_mut(&entry.info.id) {
            if trusted || !known.verified {
                known.info.addr = entry.info.addr;
                known.verified |= trusted;
            }
            known.down |= entry.down;
            return None;
        }
        // A known address under a new id: the node restarted with a fresh id and the old id is gone,
        // unless hearsay claims an address we verified.
        if let Some(known) = self.entries.iter().find(|e| e.info.addr == entry.info.addr) {
            if !trusted && known.verified {
                return None;
            }
            self.remove_addr(&entry.info.addr);
        }
        let crowded =
            !trusted && self.entries.iter().filter(|e| e.source == entry.source).count() >= per_source;
        let victim = if crowded {
            // The source's share is full: the newcomer replaces one of its own unverified entries.
            Some(*self.unverified(Some(entry.source)).choose(rng)?)
        } else if self.entries.len() >= self.capacity {
            Some(self.eviction_victim(rng, trusted)?)
        } else {
            None
        };
        let evicted = victim.map(|i| self.entries.swap_remove(i).info.id);
        self.entries.push(entry);
        evicted
    }

    /// Indexes of the unverified entries that are not down, of one source (`Some`) or all (`None`).
    fn unverified(&self, source: Option<Option<NodeId>>) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| {
                let e = &self.entries[i];
                !e.verified && !e.down && source.is_none_or(|s| e.source == s)
            })
            .collect()
    }

    /// The entry a full view gives up for a newcomer (`trusted`: verified): an unverified entry of the
    /// source holding the most unverified ones; for a verified newcomer, failing that, a random entry
    /// that is not down, then any. `None`: an unverified newcomer finds nothing it may displace.
    fn eviction_victim<R: Rng>(&self, rng: &mut R, trusted: bool) -> Option<usize> {
        let mut counts: BTreeMap<Option<NodeId>, usize> = BTreeMap::new();
        for i in self.unverified(None) {
            *counts.entry(self.entries[i].source).or_default() += 1;
        }
        if let Some(&most) = counts.values().max() {
            let top: Vec<Option<NodeId>> =
                counts.iter().filter(|(_, n)| **n == most).map(|(s, _)| *s).collect();
            let source = *top.choose(rng)?;
            return self.unverified(Some(source)).choose(rng).copied();
        }
        if !trusted {
            return None;
        }
        let not_down: Vec<usize> = (0..self.entries.len()).filter(|&i| !self.entries[i].down).collect();
        match not_down.choose(rng) {
            Some(&i) => Some(i),
            None if self.entries.is_empty() => None,
            None => Some(rng.random_range(0..self.entries.len())),
        }
    }

    /// Up to `n` random entries.
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<PeerInfo> {
        self.entries.choose_multiple(rng, n).map(|e| e.info).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn peer(i: u8) -> PeerInfo {
        PeerInfo::new(NodeId::from_bytes([i; 32]), SocketAddr::from(([10, 0, 0, i], 2000)))
    }

    fn heard(i: u8, from: u8) -> PassiveEntry {
        PassiveEntry::new(peer(i), Some(peer(from).id))
    }

    fn verified(i: u8) -> PassiveEntry {
        PassiveEntry { verified: true, ..PassiveEntry::new(peer(i), None) }
    }

    fn ids(view: &PassiveView) -> Vec<NodeId> {
        view.iter().map(|e| e.info.id).collect()
    }

    #[test]
    fn passive_view_is_bounded_and_keeps_down_entries() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut view = PassiveView::new(3);
        let mut down = verified(1);
        down.down = true;
        view.insert(down, &mut rng, 8);
        for i in 2..50 {
            view.insert(verified(i), &mut rng, 8);
            assert!(view.len() <= 3);
        }
        assert!(view.get(&peer(1).id).is_some(), "a down entry is evicted last");
    }

    #[test]
    fn one_source_holds_at_most_its_share() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut view = PassiveView::new(30);
        for i in 100..200 {
            view.insert(heard(i, 7), &mut rng, 8);
        }
        assert_eq!(view.len(), 8, "a source's new entries replace its own");
        for i in 1..=20 {
            view.insert(heard(i, i + 30), &mut rng, 8);
        }
        assert_eq!(view.len(), 28, "other sources still have room");
    }

    #[test]
    fn hearsay_never_displaces_verified_entries() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut view = PassiveView::new(10);
        for i in 1..=10 {
            view.insert(verified(i), &mut rng, 8);
        }
        let before = ids(&view);
        // Many strangers, each with a full exchange of made-up addresses.
        for stranger in 0..20u8 {
            for i in 0..16u8 {
                view.insert(heard(100 + i + stranger * 7, 200 + stranger), &mut rng, 8);
            }
        }
        assert_eq!(ids(&view), before);
        // Nor can hearsay move a verified id to another address, or claim its address for another id.
        let moved = PeerInfo::new(peer(1).id, SocketAddr::from(([192, 0, 2, 1], 9)));
        view.insert(PassiveEntry::new(moved, Some(peer(99).id)), &mut rng, 8);
        let taken = PeerInfo::new(NodeId::from_bytes([77; 32]), peer(2).addr);
        view.insert(PassiveEntry::new(taken, Some(peer(99).id)), &mut rng, 8);
        assert_eq!(view.get(&peer(1).id).map(|e| e.info.addr), Some(peer(1).addr));
        assert_eq!(ids(&view), before);
    }

    #[test]
    fn a_full_view_evicts_from_the_source_holding_the_most() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut view = PassiveView::new(12);
        for i in 1..=4 {
            view.insert(verified(i), &mut rng, 8);
            view.insert(heard(10 + i, 50), &mut rng, 8);
        }
        for i in 1..=4 {
            view.insert(heard(20 + i, 60 + i), &mut rng, 8);
        }
        // Full: 4 verified, 4 from source 50, one each from sources 61..64. A newcomer from a fresh
        // source evicts one of source 50's.
        let evicted = view.insert(heard(40, 70), &mut rng, 8);
        assert!(evicted.is_some_and(|id| (11..=14).any(|i| peer(i).id == id)), "{evicted:?}");
        // A verified newcomer evicts hearsay too, never a verified entry.
        let evicted = view.insert(verified(41), &mut rng, 8);
        assert!(evicted.is_some_and(|id| !(1..=4).any(|i| peer(i).id == id)));
    }

    #[test]
    fn a_known_address_under_a_new_id_replaces_the_old_entry() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut view = PassiveView::new(5);
        view.insert(heard(1, 9), &mut rng, 8);
        let restarted = PeerInfo::new(NodeId::from_bytes([99; 32]), peer(1).addr);
        view.insert(PassiveEntry::new(restarted, None), &mut rng, 8);
        assert_eq!(view.len(), 1);
        assert!(view.get(&restarted.id).is_some());
    }

    fn active(i: u8, direction: Direction, since_ms: u64, rtt_ms: Option<u64>) -> ActivePeer {
        let start = Instant::now();
        let mut rtt = RttEstimator::new();
        if let Some(ms) = rtt_ms {
            rtt.update(Duration::from_millis(ms));
        }
        ActivePeer {
            info: peer(i),
            direction,
            rtt,
            since: start + Duration::from_millis(since_ms),
            last_seen: start,
            pings: VecDeque::new(),
        }
    }

    #[test]
    fn eviction_spares_chosen_fast_and_old_links() {
        let protect = Protection { outbound: 2, low_rtt: 1, long_lived: 1 };
        let mut view = ActiveView::new(5);
        view.insert(active(1, Direction::Outbound, 30, Some(50))); // outbound, protected
        view.insert(active(2, Direction::Inbound, 10, Some(40))); // oldest inbound
        view.insert(active(3, Direction::Outbound, 40, Some(60))); // outbound, protected
        view.insert(active(4, Direction::Inbound, 20, Some(1))); // fastest
        view.insert(active(5, Direction::Inbound, 50, None)); // the only one left
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..50 {
            assert_eq!(view.eviction_victim(&mut rng, protect, &peer(9).id), Some(peer(5).id));
        }
        // However many protections are asked for, one slot stays open.
        let all = Protection { outbound: 5, low_rtt: 5, long_lived: 5 };
        assert!(view.eviction_victim(&mut rng, all, &peer(9).id).is_some());
        let none = Protection { outbound: 0, low_rtt: 0, long_lived: 0 };
        let victims: std::collections::BTreeSet<_> =
            (0..200).filter_map(|_| view.eviction_victim(&mut rng, none, &peer(9).id)).collect();
        assert_eq!(victims.len(), 5, "without protection any peer may go");
    }
}
