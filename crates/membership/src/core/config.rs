//! [`Config`]: every limit and timeout of the membership core, with its default and why.
//!
//! The view sizes and random-walk lengths are those of the HyParView paper (Leitão, Pereira, Rodrigues,
//! DSN 2007, section 5) and of iroh-gossip's `proto/hyparview.rs`, which uses the same numbers. The
//! timing values are ours: the paper runs in rounds, so each is justified next to its field.

use std::time::Duration;

pub use dotray_codec::InvalidConfig;

/// Longest list accepted in any membership message. Longer lists are a protocol violation, not
/// truncated: no honest peer sends one (the configured bounds are far below). The wire layer refuses
/// them before they reach the core.
pub const MAX_LIST_LEN: usize = 256;

// The codec refuses a frame with a longer list before decoding it (`dotray_codec::MAX_LIST_ENTRIES`):
// this core's lists must fit under that bound.
const _: () = assert!(MAX_LIST_LEN <= dotray_codec::MAX_LIST_ENTRIES);

/// Configuration of a [`crate::core::Membership`] core. Build it with `Config { field: value,
/// ..Config::default() }`; [`Config::validate`] runs when the core is created.
///
/// Not `#[non_exhaustive]`, so that struct-update syntax works outside this crate; adding a field is
/// then a breaking change, which is acceptable before 1.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most peers in the active view (open, pinged connections the router broadcasts over).
    ///
    /// Default 5: the paper sizes it `log10(n) + c` with `c = 1`, which is 5 for 10,000 nodes; iroh-gossip
    /// uses 5. Larger views cost more pings and more redundant broadcast traffic.
    pub active_view_capacity: usize,
    /// Most addresses in the passive view (known backups, not connected).
    ///
    /// Default 30: the paper's `k * (log10(n) + c)` with `k = 6`, 30 for 10,000 nodes; iroh-gossip uses 30.
    pub passive_view_capacity: usize,
    /// Hops of a `ForwardJoin` random walk (the paper's ARWL). Also the largest TTL accepted from the wire.
    ///
    /// Default 6: the paper's value; iroh-gossip uses 6.
    pub active_random_walk_length: u32,
    /// The TTL at which a `ForwardJoin` hop keeps the joining node in its passive view (the paper's PRWL).
    ///
    /// Default 3: the paper's value; iroh-gossip uses 3.
    pub passive_random_walk_length: u32,
    /// Hops of a peer-exchange random walk. Also the largest TTL accepted from the wire.
    ///
    /// Default 6: iroh-gossip's `shuffle_random_walk_length`; long enough to leave the neighbourhood.
    pub shuffle_random_walk_length: u32,
    /// Active peers put in a peer-exchange sample (the paper's `ka`).
    ///
    /// Default 3: the paper's value; iroh-gossip uses 3.
    pub shuffle_active_count: usize,
    /// Passive peers put in a peer-exchange sample (the paper's `kp`).
    ///
    /// Default 4: the paper's value; iroh-gossip uses 4.
    pub shuffle_passive_count: usize,
    /// Active links this node dialed itself that a newcomer (a `Join`, a high-priority `Neighbour`)
    /// can never evict, oldest first. See the "Who may take a slot" section of the `view` module.
    ///
    /// Default 2: a stranger cannot make this node dial it, so links the node chose are the ones an
    /// eclipse attack cannot take; two of five keep it tied to the honest overlay while leaving room
    /// for joins.
    pub protected_outbound: usize,
    /// Active links with the lowest round-trip time a newcomer can never evict, among the rest.
    ///
    /// Default 1: Bitcoin Core protects its fastest peers likewise; an attacker must be closer than
    /// the node's best honest peer to take that slot.
    pub protected_low_rtt: usize,
    /// Oldest active links a newcomer can never evict, among the rest.
    ///
    /// Default 1: a long-lived link is costly to fake; an attacker must outlive it. However the three
    /// protections are set, one slot stays open to newcomers.
    pub protected_long_lived: usize,
    /// Most passive entries one source (the peer that told us of them; a node telling of itself counts
    /// as one shared source) may hold while unverified. Beyond it, its new entries replace its own.
    ///
    /// Default 8: a peer-exchange sample is 8 records, so one honest exchange fits whole, while one
    /// stranger can own at most a quarter of the default 30 backups.
    pub max_passive_per_source: usize,
    /// Dials per second, on average, to addresses other nodes named: the origin of a peer-exchange
    /// walk that ends here (to answer it) and the joiner at the end of a `ForwardJoin` walk. Beyond
    /// the budget such walks end without a dial. (A [`dotray_codec::TokenBucket`].)
    ///
    /// Default 2: an honest node ends a walk a few times a minute; a hostile neighbour gets this node
    /// to connect to addresses of its choosing at most this often.
    pub named_dial_rate: u32,
    /// Dials to named addresses allowed in a burst (the bucket's size).
    ///
    /// Default 8: a join ends `active_view_capacity` walks, and several nodes joining at once end a
    /// few of them here together.
    pub named_dial_burst: u32,
    /// Most peer records taken from one peer-exchange message; the rest are ignored.
    ///
    /// Default 16: a sample holds `1 + ka + kp = 8` records; twice that leaves room for peers configured
    /// differently while keeping what one message can do to the passive view small.
    pub max_exchange_peers: usize,
    /// Time between two peer exchanges started by this node (randomised by ±25 %).
    ///
    /// Default 20 s: iroh-gossip uses 60 s; we exchange more often because the passive view is also what
    /// heals partitions and replaces crashed peers, and one exchange costs two small messages.
    pub shuffle_interval: Duration,
    /// Time between two pings on each active connection.
    ///
    /// Default 2 s: with [`Config::max_missed_pongs`] = 3 a dead or hung peer is noticed in 6–8 s. The Go
    /// original pinged every 15 s and took ~96 s; TCP keepalive defaults are hours.
    pub ping_interval: Duration,
    /// Pings left unanswered (one per [`Config::ping_interval`]) before a peer is declared down.
    ///
    /// Default 3: over TCP a pong is never lost, only late, so 3 intervals (6 s) of silence means the peer
    /// or the path is hung, not merely slow; 1 would misfire on a single long pause.
    pub max_missed_pongs: u32,
    /// Time between two healing attempts (randomised by ±25 %): dial a peer declared down earlier, an
    /// original seed, or a random passive address, to merge a partitioned network again.
    ///
    /// Default 15 s: each attempt costs one short connection, so a healthy node spends almost nothing.
    /// Healing itself rarely waits for this timer: nodes that lost links to a cut keep redialing the
    /// peers they declared down (with backoff, at most `backoff_max` apart) and relink at the first
    /// success. After a cut longer than the failure budget, the seedless side finds the seed again
    /// within `heal_interval * heal_seed_every * 1.25` (75 s) per node, and much sooner for the first
    /// of many nodes: `cargo xtask sim membership` measures the halves of 1,000 nodes merged within
    /// 0.5 s after both a 60 s and a 600 s cut.
    pub heal_interval: Duration,
    /// Every this many heal rounds, the heal timer dials an original seed (when not connected to it)
    /// instead of a passive address.
    ///
    /// Default 4 (about once a minute): every node of the network does this, so a seed receives
    /// `n / (heal_interval * heal_seed_every)` such connections per second — 17/s for 1,000 nodes. More
    /// often would make seeds hot spots; partitions shorter than the address failure budget heal
    /// through the peers declared down anyway (`cargo xtask sim membership` checks both).
    pub heal_seed_every: u32,
    /// How long a connection outside the active view (a join, a neighbour request, a peer-exchange reply,
    /// a node query) may stay open, and how long a dial intent is remembered.
    ///
    /// Default 10 s: several round trips on any real network; after it the connection is closed so that
    /// connection counts stay bounded.
    pub transient_timeout: Duration,
    /// Most connections other nodes opened that this node keeps outside the active view at once (a
    /// join on its way, a query, an exchange reply); more are refused (`TooManyConnections`).
    ///
    /// Default 10: room for a few concurrent joins, exchanges and queries.
    pub max_transient_connections: usize,
    /// Most dials under way plus connections this node opened outside the active view (refill,
    /// joins, heals, exchange replies, queries). A budget of its own, so that strangers who open
    /// connections to this node never leave it unable to dial a replacement for a lost neighbour.
    ///
    /// Default 5: refill asks one peer at a time, joins and heals a few at once.
    pub max_dials: usize,
    /// First wait before redialing an address that failed; doubled at each further failure.
    ///
    /// Default 1 s: a restarting peer is usually back within seconds (the Go original retried every 3 s).
    pub backoff_initial: Duration,
    /// Longest wait between two dials of a failing address.
    ///
    /// Default 60 s: bounds the extra healing delay a long outage causes.
    pub backoff_max: Duration,
    /// Longest wait between two dials of a failing seed while the node has no neighbour at all.
    ///
    /// Default 2 s (the Go original retried every 3 s). A node alone has nothing to spare its time
    /// for: whatever it broadcasts waits until it finds the network, and a node restarted while its
    /// seeds were down knows no other address. Each such dial costs the seed's host at most a refused
    /// connection. With a neighbour, seeds back off up to `backoff_max` as any address does.
    pub alone_seed_backoff_max: Duration,
    /// Consecutive failed dials after which an address is dropped from the passive view. Original seeds
    /// are never dropped.
    ///
    /// Default 8: with the backoff above that is about 3 minutes of failures, longer than a typical
    /// network partition, so both halves still know each other when it ends.
    pub max_dial_failures: u32,
    /// How long a peer is left alone once it refuses to become our neighbour (its view is full),
    /// drops us from its active view to make room for another node, or closes our connection for
    /// lack of room.
    ///
    /// Default 10 s: its view will not change much sooner; meanwhile we try other passive peers. (Two
    /// nodes with nobody else, asking one full node in turn, would otherwise each evict the other
    /// from it again and again, a round trip apart.)
    pub neighbour_refusal_backoff: Duration,
    /// A node with fewer active neighbours than this asks for new ones with high priority: the
    /// receiver must accept, evicting one of its unprotected peers. HyParView asks so only from an
    /// empty view; then two nodes left with nobody but each other stay an island that every full
    /// node refuses. A node evicted this way loses one of a full view's links, so it never becomes
    /// lonely itself: no cascade. A lonely node also joins again through its seeds, whether they
    /// answered before or not (past their back-off, one join at a time): two restarted nodes whose
    /// other contacts are all down find the network again as soon as a seed is back. A full view
    /// is never lonely. Default 2.
    pub lonely_below: usize,
    /// Most entries in a node-query answer, whatever the asker wants.
    ///
    /// Default 64: the whole view (5 + 30) fits with room to spare; bounded so a query cannot make us send
    /// a large frame.
    pub max_query_nodes: usize,
    /// How often the core checks its deadlines (transient connections, dial intents, queries).
    ///
    /// Default 1 s: deadlines are seconds long; finer checks buy nothing.
    pub sweep_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            active_view_capacity: 5,
            passive_view_capacity: 30,
            active_random_walk_length: 6,
            passive_random_walk_length: 3,
            shuffle_random_walk_length: 6,
            shuffle_active_count: 3,
            shuffle_passive_count: 4,
            max_exchange_peers: 16,
            protected_outbound: 2,
            protected_low_rtt: 1,
            protected_long_lived: 1,
            max_passive_per_source: 8,
            named_dial_rate: 2,
            named_dial_burst: 8,
            shuffle_interval: Duration::from_secs(20),
            ping_interval: Duration::from_secs(2),
            max_missed_pongs: 3,
            heal_interval: Duration::from_secs(15),
            heal_seed_every: 4,
            transient_timeout: Duration::from_secs(10),
            max_transient_connections: 10,
            max_dials: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            alone_seed_backoff_max: Duration::from_secs(2),
            max_dial_failures: 8,
            neighbour_refusal_backoff: Duration::from_secs(10),
            lonely_below: 2,
            max_query_nodes: 64,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// Most connections this node keeps open (or dials) at once: the active view, the connections
    /// others opened, and its own dials.
    pub fn max_connections(&self) -> usize {
        self.active_view_capacity + self.max_transient_connections + self.max_dials
    }

    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::check_nonzero([
            ("active_view_capacity", self.active_view_capacity == 0),
            ("passive_view_capacity", self.passive_view_capacity == 0),
            ("max_exchange_peers", self.max_exchange_peers == 0),
            ("max_passive_per_source", self.max_passive_per_source == 0),
            ("named_dial_burst", self.named_dial_burst == 0),
            ("max_missed_pongs", self.max_missed_pongs == 0),
            ("max_dial_failures", self.max_dial_failures == 0),
            ("max_transient_connections", self.max_transient_connections == 0),
            ("max_dials", self.max_dials == 0),
            ("heal_seed_every", self.heal_seed_every == 0),
            ("shuffle_interval", self.shuffle_interval.is_zero()),
            ("ping_interval", self.ping_interval.is_zero()),
            ("heal_interval", self.heal_interval.is_zero()),
            ("transient_timeout", self.transient_timeout.is_zero()),
            ("backoff_initial", self.backoff_initial.is_zero()),
            ("alone_seed_backoff_max", self.alone_seed_backoff_max.is_zero()),
            ("sweep_interval", self.sweep_interval.is_zero()),
        ])?;
        InvalidConfig::check(
            self.passive_random_walk_length <= self.active_random_walk_length,
            "passive_random_walk_length must not exceed active_random_walk_length",
        )?;
        InvalidConfig::check(
            self.backoff_max >= self.backoff_initial,
            "backoff_max must be at least backoff_initial",
        )?;
        InvalidConfig::check(
            1 + self.shuffle_active_count + self.shuffle_passive_count <= self.max_exchange_peers,
            "a peer-exchange sample (1 + shuffle_active_count + shuffle_passive_count) must fit in max_exchange_peers",
        )?;
        InvalidConfig::check(
            self.max_exchange_peers <= MAX_LIST_LEN && self.max_query_nodes <= MAX_LIST_LEN,
            "list bounds must not exceed MAX_LIST_LEN",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(Config::default().max_connections(), 20);
    }

    #[test]
    fn rejects_zero_and_inconsistent_values() {
        let c = Config { active_view_capacity: 0, ..Config::default() };
        assert_eq!(c.validate(), Err(InvalidConfig::Zero("active_view_capacity")));
        let c = Config { ping_interval: Duration::ZERO, ..Config::default() };
        assert_eq!(c.validate(), Err(InvalidConfig::Zero("ping_interval")));
        let c = Config { passive_random_walk_length: 7, ..Config::default() };
        assert!(matches!(c.validate(), Err(InvalidConfig::Inconsistent(_))));
        let c = Config { max_exchange_peers: 4, ..Config::default() };
        assert!(matches!(c.validate(), Err(InvalidConfig::Inconsistent(_))));
    }
}
