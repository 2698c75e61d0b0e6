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
//! * **Passive view** ([`PassiveView::insert`]): every entry records who vouches for it ([`Trust`]: a
//!   stranger's word, a neighbour's word, or a dial that proved it) and never gives way to a newcomer
//!   vouched for less; one source (the peer that told us; nodes telling of themselves count as one)
//!   holds at most `max_passive_per_source` entries, beyond which its newcomers replace its newest;
//!   and a full view evicts the newest entry of the sources holding the most. A flood of strangers,
//!   however many identities it uses, only ever displaces strangers' entries, newest first, and never
//!   an address a neighbour vouched for or this node proved.

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

/// What vouches for a passive entry, weakest first. An unverified newcomer only ever displaces an
/// entry that is vouched for no better than itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Trust {
    /// A stranger's word: a peer that was not our neighbour told us of it, or the node told of itself
    /// on a transient connection. Anyone can make any number of these.
    Stranger,
    /// A neighbour's word: an active peer told us of it, or it was our active peer itself (its
    /// liveness proven by pings, its address its own word).
    Neighbour,
    /// We dialed this address and the node proved this id in the handshake: the address works.
    Verified,
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
    /// How much the entry is worth keeping: what told us of it.
    pub(crate) trust: Trust,
    /// When the entry joined the view, as the view's insertion counter (set by `PassiveView::insert`).
    learned: u64,
}

impl PassiveEntry {
    /// An entry for `info`, told by `source` (`None`: by the node itself), vouched for by `trust`.
    pub(crate) fn new(info: PeerInfo, source: Option<NodeId>, trust: Trust) -> Self {
        Self { info, failures: 0, retry_at: None, down: false, last_seen: None, source, trust, learned: 0 }
    }

    /// We dialed it and it proved its id.
    pub(crate) fn verified(&self) -> bool {
        self.trust == Trust::Verified
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
    /// Insertion counter: `learned` of the next new entry.
    next_serial: u64,
}

impl PassiveView {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: Vec::with_capacity(capacity), capacity, next_serial: 0 }
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
    /// [module docs](self): a newcomer never displaces an entry vouched for better than itself (see
    /// [`Trust`]), a source that already holds `per_source` entries replaces its newest, and a full
    /// view evicts the newest entry of the sources holding the most (entries nodes told of
    /// themselves count as one source; down entries, our evidence for healing partitions, go last).
    ///
    /// Returns the evicted entry's id, if any.
    pub(crate) fn insert<R: Rng>(
        &mut self,
        entry: PassiveEntry,
        rng: &mut R,
        per_source: usize,
    ) -> Option<NodeId> {
        let trust = entry.trust;
        // A known id: keep its history, take the (possibly new) address unless weaker word says so.
        if let Some(known) = self.get_mut(&entry.info.id) {
            if trust >= known.trust {
                known.info.addr = entry.info.addr;
                known.trust = trust;
            }
            known.down |= entry.down;
            return None;
        }
        // A known address under a new id: the node restarted with a fresh id and the old id is gone,
        // unless weaker word claims the address of a better-vouched entry.
        if let Some(known) = self.entries.iter().find(|e| e.info.addr == entry.info.addr) {
            if trust < known.trust {
                return None;
            }
            self.remove_addr(&entry.info.addr);
        }
        let crowded = trust < Trust::Verified
            && self.entries.iter().filter(|e| e.source == entry.source).count() >= per_source;
        let victim = if crowded {
            // The source's share is full: the newcomer replaces the newest of its own entries it may
            // displace, so what a source told before a flood stays.
            let own =
                self.displaceable(trust).into_iter().filter(|&i| self.entries[i].source == entry.source);
            Some(own.max_by_key(|&i| self.entries[i].learned)?)
        } else if self.entries.len() >= self.capacity {
            Some(self.eviction_victim(rng, trust)?)
        } else {
            None
        };
        let evicted = victim.map(|i| self.entries.swap_remove(i).info.id);
        let mut entry = entry;
        entry.learned = self.next_serial;
        self.next_serial += 1;
        self.entries.push(entry);
        evicted
    }

    /// Indexes of the unverified entries that are not down and are vouched for no better than `trust`.
    fn displaceable(&self, trust: Trust) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| {
                let e = &self.entries[i];
                !e.verified() && !e.down && e.trust <= trust
            })
            .collect()
    }

    /// The entry a full view gives up for a newcomer vouched for by `trust`: among the entries it may
    /// displace, the newest of the sources holding the most; for a verified newcomer, failing that, a
    /// random entry that is not down, then any. `None`: the newcomer may displace nothing.
    fn eviction_victim<R: Rng>(&self, rng: &mut R, trust: Trust) -> Option<usize> {
        let candidates = self.displaceable(trust);
        let mut counts: BTreeMap<Option<NodeId>, usize> = BTreeMap::new();
        for &i in &candidates {
            *counts.entry(self.entries[i].source).or_default() += 1;
        }
        if let Some(&most) = counts.values().max() {
            // Among sources holding as many, the one that spoke last: a flood, however many sources
            // it uses, trims itself before what the view held before it.
            return candidates
                .into_iter()
                .filter(|&i| counts.get(&self.entries[i].source) == Some(&most))
                .max_by_key(|&i| self.entries[i].learned);
        }
        if trust < Trust::Verified {
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
        PassiveEntry::new(peer(i), Some(peer(from).id), Trust::Stranger)
    }

    fn verified(i: u8) -> PassiveEntry {
        PassiveEntry::new(peer(i), None, Trust::Verified)
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
        for i in 100..107 {
            assert!(view.get(&peer(i).id).is_some(), "what it told first stays: {i}");
        }
        for i in 1..=20 {
            view.insert(heard(i, i + 30), &mut rng, 8);
        }
        assert_eq!(view.len(), 28, "other sources still have room");
    }

    #[test]
    fn a_swarm_of_identities_does_not_displace_the_nodes_that_came_before() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut view = PassiveView::new(30);
        // Two honest nodes that connected to us and left (each told us of itself: unverified).
        view.insert(PassiveEntry::new(peer(1), None, Trust::Stranger), &mut rng, 8);
        view.insert(PassiveEntry::new(peer(2), None, Trust::Stranger), &mut rng, 8);
        for sybil in 10..250u8 {
            view.insert(PassiveEntry::new(peer(sybil), None, Trust::Stranger), &mut rng, 8);
        }
        assert!(view.get(&peer(1).id).is_some() && view.get(&peer(2).id).is_some());
        assert_eq!(view.len(), 8, "one shared share for nodes that told of themselves");
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
        view.insert(PassiveEntry::new(moved, Some(peer(99).id), Trust::Stranger), &mut rng, 8);
        let taken = PeerInfo::new(NodeId::from_bytes([77; 32]), peer(2).addr);
        view.insert(PassiveEntry::new(taken, Some(peer(99).id), Trust::Stranger), &mut rng, 8);
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
        view.insert(PassiveEntry::new(restarted, None, Trust::Stranger), &mut rng, 8);
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
