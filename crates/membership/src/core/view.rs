//! The two views of HyParView.
//!
//! * The **active view** ([`ActiveView`]) holds the few peers this node keeps an open, pinged connection
//!   with. Links are symmetric: a peer is in our active view exactly when we are in its own, and the
//!   router broadcasts over these links only.
//! * The **passive view** ([`PassiveView`]) holds addresses of other nodes, not connected, kept as
//!   backups: when an active peer fails, one of these replaces it. It also remembers, per address, how
//!   often dialing it failed (for backoff and eviction) and whether we declared it down as an active
//!   peer (a *down* entry: if it answers again, a partition has probably healed).
//!
//! Both are bounded by the [`crate::core::Config`]; nothing received from the wire can make them grow
//! beyond it.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

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

    /// Up to `n` random active peers other than `except`.
    pub(crate) fn sample<R: Rng>(&self, rng: &mut R, n: usize, except: &NodeId) -> Vec<PeerInfo> {
        let candidates: Vec<PeerInfo> =
            self.peers.values().filter(|p| p.info.id != *except).map(|p| p.info).collect();
        candidates.choose_multiple(rng, n).copied().collect()
    }
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
}

impl PassiveEntry {
    pub(crate) fn new(info: PeerInfo) -> Self {
        Self { info, failures: 0, retry_at: None, down: false, last_seen: None }
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

    /// Adds an entry (or refreshes the address of a known id). When the view is full, one entry is
    /// evicted to make room, chosen in this order:
    /// 1. one of `prefer_evict` (the paper: the entries we just sent to the other side of a shuffle);
    /// 2. a random entry that is not *down* (down entries are our evidence for healing partitions);
    /// 3. a random entry.
    ///
    /// Returns the evicted entry's id, if any.
    pub(crate) fn insert<R: Rng>(
        &mut self,
        entry: PassiveEntry,
        rng: &mut R,
        prefer_evict: &[NodeId],
    ) -> Option<NodeId> {
        // A known id: keep its history, take the (possibly new) address.
        if let Some(known) = self.get_mut(&entry.info.id) {
            known.info.addr = entry.info.addr;
            known.down |= entry.down;
            return None;
        }
        // A known address under a new id: the node restarted with a fresh id; the old id is gone.
        self.remove_addr(&entry.info.addr);
        let mut evicted = None;
        if self.entries.len() >= self.capacity {
            let preferred: Vec<usize> = (0..self.entries.len())
                .filter(|&i| prefer_evict.contains(&self.entries[i].info.id))
                .collect();
            let not_down: Vec<usize> = (0..self.entries.len()).filter(|&i| !self.entries[i].down).collect();
            let victim = preferred
                .choose(rng)
                .or_else(|| not_down.choose(rng))
                .copied()
                .unwrap_or_else(|| rng.random_range(0..self.entries.len()));
            evicted = Some(self.entries.swap_remove(victim).info.id);
        }
        self.entries.push(entry);
        evicted
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

    #[test]
    fn passive_view_is_bounded_and_keeps_down_entries() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut view = PassiveView::new(3);
        let mut down = PassiveEntry::new(peer(1));
        down.down = true;
        view.insert(down, &mut rng, &[]);
        for i in 2..50 {
            view.insert(PassiveEntry::new(peer(i)), &mut rng, &[]);
            assert!(view.len() <= 3);
        }
        assert!(view.get(&peer(1).id).is_some(), "a down entry is evicted last");
    }

    #[test]
    fn passive_view_prefers_evicting_what_was_sent() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut view = PassiveView::new(2);
        view.insert(PassiveEntry::new(peer(1)), &mut rng, &[]);
        view.insert(PassiveEntry::new(peer(2)), &mut rng, &[]);
        let evicted = view.insert(PassiveEntry::new(peer(3)), &mut rng, &[peer(2).id]);
        assert_eq!(evicted, Some(peer(2).id));
    }

    #[test]
    fn a_known_address_under_a_new_id_replaces_the_old_entry() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut view = PassiveView::new(5);
        view.insert(PassiveEntry::new(peer(1)), &mut rng, &[]);
        let restarted = PeerInfo::new(NodeId::from_bytes([99; 32]), peer(1).addr);
        view.insert(PassiveEntry::new(restarted), &mut rng, &[]);
        assert_eq!(view.len(), 1);
        assert!(view.get(&restarted.id).is_some());
    }
}
