//! The ban list: node ids that broke the protocol after their handshake, refused for a while.
//!
//! A peer that breaks the protocol once it is connected (an invalid frame, a second `Hello`, or a
//! violation that the membership or router layer reports through [`crate::PeerSender::close_for_violation`])
//! is disconnected and its node id is banned: until the ban ends, every connection with that id, inbound
//! or outbound, is refused right after the peer's `Hello` with `Goodbye(Banned)`. That stops a broken or
//! hostile node from reconnecting at once, again and again, into a neighbour slot.
//!
//! * **Escalation.** The first offence bans for [`crate::Config::ban_duration`]; each further offence
//!   doubles the period, up to [`crate::Config::max_ban_duration`]. A node's offences are remembered
//!   until it has stayed clean for `max_ban_duration` after its last ban ended; then it starts over.
//! * **One offence per connection.** Several layers may report the same connection (the transport's
//!   reader and the membership driver, say); only the first report counts.
//! * **Bounded.** At most [`crate::Config::max_bans`] ids are remembered. A new offender at the limit
//!   evicts the entry that expires first (an expired one, if any), so memory stays bounded under a flood
//!   of fresh ids. `max_bans = 0` turns banning off.
//!
//! **By node id, never by IP address.** Garbage sent before the handshake cannot be attributed to a node
//! id, so it only closes the connection (see the `handshake` module). Banning the address instead would
//! ban every node behind it: all nodes on `127.0.0.1` in tests and on one host, every node behind a
//! shared NAT. Node ids are chosen by the nodes themselves, so a determined attacker can take a fresh id
//! for each connection: the ban list stops broken nodes and reconnect loops, not an adversary with
//! unlimited ids (the connection limits and timeouts bound what those cost).
//!
//! Time is [`tokio::time::Instant`], passed in as `now`: the same clock as every other timer of the
//! transport (handshake, idle and write timeouts), so a test on tokio's paused clock sees bans expire
//! in step with them, and the list itself can be tested without waiting.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dotray_codec::NodeId;
use tokio::time::Instant;
use tracing::warn;

use crate::Config;

/// Longest reason kept with a ban, in characters (the same cap as a goodbye's detail).
const MAX_REASON_CHARS: usize = 200;

/// A ban in force, as listed by [`crate::Transport::bans`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The banned node.
    pub peer: NodeId,
    /// How it broke the protocol, the last time.
    pub reason: String,
    /// Offences remembered for this node, this one included (1 for a first ban).
    pub offences: u32,
    /// Time left until the node is admitted again.
    pub remaining: Duration,
}

/// What the list remembers about one node.
#[derive(Debug, Clone)]
struct Record {
    /// Connections are refused until then.
    until: Instant,
    reason: String,
    offences: u32,
}

/// The ban list of one transport. Shared by every connection; a short lock per lookup.
#[derive(Debug)]
pub(crate) struct BanList {
    max_bans: usize,
    base: Duration,
    max: Duration,
    records: Mutex<HashMap<NodeId, Record>>,
    issued: AtomicU64,
    refusals: AtomicU64,
}

impl BanList {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            max_bans: config.max_bans,
            base: config.ban_duration,
            max: config.max_ban_duration,
            records: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ban period for a node's `offences`-th offence: `base` doubled per earlier offence, at most
    /// `max`.
    fn period(&self, offences: u32) -> Duration {
        let doublings = offences.saturating_sub(1).min(31);
        self.base.checked_mul(1 << doublings).map_or(self.max, |d| d.min(self.max))
    }

    /// True once a record no longer matters: its ban ended and the node stayed clean for `max` since.
    fn forgotten(&self, record: &Record, now: Instant) -> bool {
        now >= record.until + self.max
    }

    /// Records an offence by `peer` (connected from `remote`) and bans it; logs the ban as a warning.
    /// Returns the ban, or `None` when banning is off (`max_bans = 0`).
    pub(crate) fn record_violation(
        &self,
        peer: NodeId,
        remote: SocketAddr,
        reason: &str,
        now: Instant,
    ) -> Option<Ban> {
        if self.max_bans == 0 {
            warn!(?peer, %remote, reason, "peer broke the protocol; disconnected (bans are off)");
            return None;
        }
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let mut records = self.lock();
        if !records.contains_key(&peer) && records.len() >= self.max_bans {
            self.make_room(&mut records, now);
        }
        let record = match records.entry(peer) {
            MapEntry::Occupied(mut slot) => {
                let record = slot.get_mut();
                record.offences =
                    if self.forgotten(record, now) { 1 } else { record.offences.saturating_add(1) };
                // Periods never shrink with more offences, so this extends a ban still in force.
                record.until = now + self.period(record.offences);
                record.reason = reason;
                record.clone()
            }
            MapEntry::Vacant(slot) => {
                slot.insert(Record { until: now + self.period(1), reason, offences: 1 }).clone()
            }
        };
        drop(records);
        self.issued.fetch_add(1, Ordering::Relaxed);
        let ban = Ban {
            peer,
            reason: record.reason,
            offences: record.offences,
            remaining: record.until.saturating_duration_since(now),
        };
        warn!(
            ?peer,
            %remote,
            reason = %ban.reason,
            offences = ban.offences,
            banned_for = ?ban.remaining,
            "peer broke the protocol; disconnected and banned"
        );
        Some(ban)
    }

    /// Frees one slot: drops forgotten records, or else the record whose ban ends first.
    fn make_room(&self, records: &mut HashMap<NodeId, Record>, now: Instant) {
        records.retain(|_, r| !self.forgotten(r, now));
        if records.len() < self.max_bans {
            return;
        }
        if let Some(first) = records.iter().min_by_key(|(_, r)| r.until).map(|(id, _)| *id) {
            records.remove(&first);
        }
    }

    /// The ban in force on `peer` at `now`, if any; counts it as a refusal. Expired bans admit the peer
    /// (its offences are still remembered for the escalation).
    pub(crate) fn refusal(&self, peer: NodeId, now: Instant) -> Option<Ban> {
        let mut records = self.lock();
        let record = records.get(&peer)?;
        if record.until <= now {
            if self.forgotten(record, now) {
                records.remove(&peer);
            }
            return None;
        }
        let ban = Ban {
            peer,
            reason: record.reason.clone(),
            offences: record.offences,
            remaining: record.until - now,
        };
        drop(records);
        self.refusals.fetch_add(1, Ordering::Relaxed);
        Some(ban)
    }

    /// Every ban in force at `now`, the one ending first first.
    pub(crate) fn in_force(&self, now: Instant) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self
            .lock()
            .iter()
            .filter(|(_, r)| r.until > now)
            .map(|(peer, r)| Ban {
                peer: *peer,
                reason: r.reason.clone(),
                offences: r.offences,
                remaining: r.until - now,
            })
            .collect();
        bans.sort_by_key(|b| b.remaining);
        bans
    }

    /// Bans in force at `now`.
    pub(crate) fn count_in_force(&self, now: Instant) -> usize {
        self.lock().values().filter(|r| r.until > now).count()
    }

    /// Records held, in force or remembered for escalation (at most `max_bans`).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Bans issued since start (repeat offences included).
    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Connections refused because their node was banned, since start.
    pub(crate) fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOTE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

    fn list(max_bans: usize) -> BanList {
        BanList::new(&Config {
            max_bans,
            ban_duration: Duration::from_secs(60),
            max_ban_duration: Duration::from_secs(3600),
            ..Config::default()
        })
    }

    fn id(n: u8) -> NodeId {
        NodeId::from_bytes([n; 32])
    }

    #[test]
    fn a_ban_refuses_until_it_ends() {
        let bans = list(8);
        let t0 = Instant::now();
        let ban = bans.record_violation(id(1), REMOTE, "bad frame", t0).expect("banned");
        assert_eq!((ban.offences, ban.remaining), (1, Duration::from_secs(60)));
        let refused = bans.refusal(id(1), t0 + Duration::from_secs(59)).expect("still banned");
        assert_eq!((refused.reason.as_str(), refused.remaining), ("bad frame", Duration::from_secs(1)));
        assert!(bans.refusal(id(2), t0).is_none(), "others are not banned");
        assert!(bans.refusal(id(1), t0 + Duration::from_secs(60)).is_none(), "admitted at the end");
        assert_eq!((bans.issued(), bans.refusals()), (1, 1));
    }

    #[test]
    fn repeat_offences_double_the_period_up_to_the_maximum() {
        let bans = list(8);
        let mut now = Instant::now();
        let mut periods = Vec::new();
        for _ in 0..9 {
            let ban = bans.record_violation(id(1), REMOTE, "again", now).expect("banned");
            periods.push(ban.remaining.as_secs());
            now += ban.remaining; // Offends again as soon as it is admitted.
        }
        assert_eq!(periods, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }

    #[test]
    fn a_node_that_stays_clean_for_the_maximum_starts_over() {
        let bans = list(8);
        let t0 = Instant::now();
        bans.record_violation(id(1), REMOTE, "first", t0);
        let second = t0 + Duration::from_secs(60) + Duration::from_secs(3599);
        assert_eq!(bans.record_violation(id(1), REMOTE, "second", second).unwrap().offences, 2);
        let clean = second + Duration::from_secs(120) + Duration::from_secs(3600);
        let ban = bans.record_violation(id(1), REMOTE, "much later", clean).unwrap();
        assert_eq!((ban.offences, ban.remaining), (1, Duration::from_secs(60)));
    }

    #[test]
    fn the_list_is_bounded_and_evicts_the_ban_that_ends_first() {
        let bans = list(4);
        let t0 = Instant::now();
        // Node 1 is a repeat offender (a longer ban); nodes 2..=4 are banned a second apart.
        bans.record_violation(id(1), REMOTE, "x", t0);
        bans.record_violation(id(1), REMOTE, "x", t0);
        for n in 2..=4 {
            bans.record_violation(id(n), REMOTE, "x", t0 + Duration::from_secs(u64::from(n)));
        }
        assert_eq!(bans.len(), 4);
        let now = t0 + Duration::from_secs(10);
        bans.record_violation(id(5), REMOTE, "x", now);
        assert_eq!(bans.len(), 4);
        assert!(bans.refusal(id(2), now).is_none(), "the ban ending first was evicted");
        for n in [1, 3, 4, 5] {
            assert!(bans.refusal(id(n), now).is_some(), "node {n} still banned");
        }
        for n in 6..=100 {
            bans.record_violation(id(n), REMOTE, "x", now);
        }
        assert_eq!(bans.len(), 4);
        assert_eq!(bans.count_in_force(now), 4);
        assert!(bans.refusal(id(1), now).is_some(), "the longest ban survives a flood of fresh ids");
    }

    #[test]
    fn forgotten_records_are_dropped_before_bans_in_force() {
        let bans = list(2);
        let t0 = Instant::now();
        bans.record_violation(id(1), REMOTE, "old", t0);
        let later = t0 + Duration::from_secs(60 + 3600);
        bans.record_violation(id(2), REMOTE, "x", later);
        bans.record_violation(id(3), REMOTE, "x", later);
        assert!(bans.refusal(id(2), later).is_some() && bans.refusal(id(3), later).is_some());
        assert_eq!(bans.in_force(later).len(), 2);
    }

    #[test]
    fn zero_max_bans_turns_banning_off() {
        let bans = list(0);
        let t0 = Instant::now();
        assert!(bans.record_violation(id(1), REMOTE, "x", t0).is_none());
        assert!(bans.refusal(id(1), t0).is_none());
        assert_eq!(bans.issued(), 0);
    }

    #[test]
    fn long_reasons_are_cut() {
        let bans = list(1);
        let ban = bans.record_violation(id(1), REMOTE, &"y".repeat(1000), Instant::now()).unwrap();
        assert_eq!(ban.reason.len(), MAX_REASON_CHARS);
    }
}
