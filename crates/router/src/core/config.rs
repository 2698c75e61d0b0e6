//! Tuning of the router core: every timeout and size bound is a named, documented field, each default
//! justified. [`Config::validate`] rejects combinations that cannot work.

use std::time::Duration;

pub use dotray_codec::InvalidConfig;

/// Maximum entries in a list field (IHave ranges, Graft wants, Ack/Sync marks) that the core accepts
/// or produces. The wire layer refuses longer lists before they reach the core.
pub const MAX_LIST_LEN: usize = 4_096;

// The codec refuses a frame with a longer list before decoding it (`dotray_codec::MAX_LIST_ENTRIES`):
// this core's lists must fit under that bound.
const _: () = assert!(MAX_LIST_LEN <= dotray_codec::MAX_LIST_ENTRIES);

/// Router configuration. Start from [`Config::default`] and change what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long digests (`IHave`) are collected before they are sent to lazy peers, as one batch of
    /// ranges per peer. Default 20 ms: long enough that a burst of messages becomes a handful of ranges
    /// (the wire cost of lazy links stays far below the payload cost), short enough that it adds little
    /// to repair latency. iroh-gossip uses 5 ms for its per-message digests; we batch ranges, so a
    /// longer interval costs nothing in size.
    pub ihave_interval: Duration,
    /// How long a node waits, after hearing of a message it lacks, for the tree to deliver it before it
    /// asks (`Graft`). Default 400 ms. A graft fired while the tree copy is merely slow (premature)
    /// fetches a duplicate, and without beacon rounds makes a cycle of eager links that lasts until
    /// the next round cuts it; so the timeout must exceed the spread between tree latency and digest latency, which
    /// grows with tree depth. In the simulator, iroh-gossip's 80 ms left most grafts premature and the
    /// eager graph never settled; 400 ms leaves almost none (figures in `docs/PERFORMANCE.md`). The
    /// paper, too, uses a timeout well above the link latency. Loss repair waits this long.
    pub graft_timeout: Duration,
    /// Upper bound of the adaptive graft timeout: the core waits twice the measured lag between a
    /// digest and the tree's copy, clamped to `graft_timeout..=max_graft_timeout`. Default 1 s: deep
    /// trees (a last delivery hop of 20 and more at 1,000 nodes) lag the digests by several hundred
    /// milliseconds, and a shorter bound makes premature grafts there.
    pub max_graft_timeout: Duration,
    /// How long to wait for a `Graft` to be answered before asking the next announcer. Default 40 ms,
    /// iroh-gossip's `graft_timeout_2`. Doubles with each further retry of a round, up to the graft
    /// delay.
    pub graft_retry_timeout: Duration,
    /// How long acknowledgements are batched. Default 50 ms: acks only matter when a link breaks
    /// (to know what to re-offer), so they can be lazy; one ack frame per link per 50 ms is negligible.
    pub ack_interval: Duration,
    /// Send the batched acks early once this many new messages were received since the last ack, so a
    /// burst does not leave a large unacknowledged window. Default 256.
    pub ack_every: u32,
    /// Housekeeping period: expire retention, evict idle streams. Default 1 s.
    pub sweep_interval: Duration,
    /// How long a stream that retains nothing (see `stream_table.rs`) must be quiet before it is
    /// parked: its state let go of, its watermark remembered. Default 2 s: long enough that a stream
    /// sending several messages a second keeps its state (and its neighbours' marks) between them,
    /// short enough that a node of a large network holds state only for the origins it heard from
    /// in the last few seconds or still retains payloads of.
    pub stream_park_after: Duration,
    /// How long a payload stays in the retention cache to serve grafts and sync after an outage.
    /// Default 30 s (iroh-gossip's `message_cache_retention`): covers a neighbour failure, its detection
    /// and the repair, and a short network outage.
    pub retention_time: Duration,
    /// Maximum number of payloads in the retention cache (all streams), shared like the bytes.
    /// Default 32,768.
    pub retention_max_messages: usize,
    /// Maximum payload bytes in the retention cache (all streams). When it is full, the streams
    /// retaining the most give up their oldest payloads first (a max-min fair share, see
    /// `fair_share.rs`), so a heavy origin cannot push a light one's recent messages out. Default
    /// 64 MiB: 30 s of a 2 MiB/s broadcast rate.
    pub retention_max_bytes: usize,
    /// Of the retention cache, the payload bytes kept once **every neighbour has acknowledged them**
    /// (*settled* payloads). Repair never needs a settled payload from us — no neighbour will graft
    /// it, none is left to re-offer it to — so beyond this budget the oldest settled payloads go first;
    /// what remains serves newcomers and healed partitions (`Sync`). Unsettled payloads are only bounded
    /// by the limits above. Default 256 KiB: at the demo's rate, hours of history; at a 1 KiB × 10,000/s
    /// stream, the last 25 ms — size it to the traffic a partition must be able to catch up. Without
    /// it a busy node holds `retention_time` of the whole network's traffic (30 s × the broadcast rate).
    /// It is memory every node keeps once it has seen that much traffic (figures in
    /// `docs/PERFORMANCE.md`).
    pub retention_settled_max_bytes: usize,
    /// The same bound as a number of payloads: settled payloads beyond it go too, oldest first. Each
    /// retained payload costs a node about a hundred bytes besides its own (its slot, its entry in the
    /// retention log, its share of a manifest), so without a count a budget of tiny payloads would
    /// hold far more memory than its bytes say. Default 2,048: the byte budget binds first for
    /// payloads over 128 bytes.
    pub retention_settled_max_messages: usize,
    /// How far ahead of the next expected sequence number a payload may be and still be held for
    /// in-order delivery (the per-stream reorder window). Payloads further ahead are dropped (and asked
    /// for again later), so a forged far-future sequence number creates no state. Default 4,096.
    pub reorder_window: u64,
    /// Maximum payloads held for reordering across all streams. Default 65,536.
    pub reorder_max_total: usize,
    /// Maximum payload bytes held for reordering across all streams. When it is full, a payload of
    /// a stream holding less than another takes the place of that stream's furthest-ahead one (a
    /// max-min fair share, see `fair_share.rs`); otherwise it is dropped (unrelayed, and asked for
    /// again once the hole before it fills). Payloads wait here as copies (a slice
    /// would keep the whole read buffer it came in alive). Default 16 MiB: honest streams wait here
    /// only around a repair (one of the largest messages, `max_message_len` in `dotray-node`, cut
    /// into pieces, fits whole behind a lost first piece), and the fair
    /// share keeps a flood of out-of-order payloads from taking their room. It is also what each
    /// node releases into the network at once when the holes of a hostile origin's streams are
    /// given up as gaps (see `relay_ahead_bytes`), so it bounds how long honest messages wait
    /// behind that release (the reorder-flood figures in `docs/PERFORMANCE.md`).
    pub reorder_max_bytes: usize,
    /// The same, per stream: one origin, however its payloads are ordered (a hostile one sends
    /// everything but the first of each window), holds at most this much of the node's reorder
    /// memory, and the other streams keep theirs. Default 16 MiB, the whole pool: the fair share
    /// already divides it between the streams that want it.
    pub reorder_max_stream_bytes: usize,
    /// Bytes of one stream's payloads waiting behind a hole that are relayed before the hole is
    /// filled. The payload right after the delivered ones is always relayed at once; the next ones
    /// too, within this budget, so a hole here costs the rest of the tree little; beyond it they
    /// wait in the reorder buffer and are relayed when the hole fills or is reported as a gap (then
    /// in order, from this node). This is what a stream whose first hole never fills — a hostile
    /// origin sending everything but one message — can make every node carry before any node can
    /// deliver it: without it, a few such streams saturate every link of the network with payloads
    /// nobody can use, and honest messages queue behind them. Default 256 KiB: a few hundred
    /// typical messages, several of the largest pieces.
    pub relay_ahead_bytes: usize,
    /// How long a hole at the head of a stream may wait for repair before it is reported as
    /// [`crate::core::Event::Gap`] and delivery continues. Default 10 s: several graft rounds through
    /// every announcer; after that the message has almost certainly left the retention caches. Only
    /// time with at least one neighbour counts: a node left without any neighbour reports no gap (no
    /// repair was possible), and when it gets a neighbour again each hole gets a whole `gap_timeout`
    /// from then (`dotray-sim`'s crash-50 scenario: a node whose three neighbours all crashed waited
    /// 12.6 s for membership to find it a new one, and reported as lost messages its origin still
    /// held).
    pub gap_timeout: Duration,
    /// How long a stream taken up from `backfill_new_stream` back waits, while it has delivered
    /// nothing, for the hole before the first payload it holds. Those messages were sent before
    /// this node joined, and the neighbour it heard the stream from may have joined late itself
    /// and never had them: each newcomer in a chain would otherwise wait a whole `gap_timeout`
    /// for its stream's live messages. After it the hole is reported as a gap, as any other.
    /// Streams owed whole (`stream_start_tolerance`) wait `gap_timeout`. Default 3 s: several
    /// graft rounds.
    pub backfill_timeout: Duration,
    /// Maximum number of streams tracked at once. Default 4,096. When full, the least recently active
    /// stream (never our own) is evicted to make room, and its watermark remembered
    /// (`max_forgotten_streams`): a new origin is never refused for lack of room, however many
    /// streams others keep alive. See `stream_table.rs`.
    pub max_streams: usize,
    /// Streams each neighbour may make this node start tracking per second, on average (by naming
    /// them in a manifest, a digest or a `Sync`); beyond its budget such a stream is ignored until
    /// the repair path brings it again. A stream coming back from parking or eviction is not new.
    /// Default 128: in a tree one neighbour (the parent) brings nearly every new origin of the
    /// network, so this must cover the network's rate of new origins (`dotray-sim`'s steady scenario
    /// at 10,000 nodes: up to ~200 a second while the origins are still new, over a burst of
    /// 1,024). Below the node's budget (`total_new_streams_per_sec`), so one neighbour cannot
    /// spend all of it.
    pub new_streams_per_sec: u32,
    /// New streams a neighbour may name at once (the bucket's size; a new link starts full). Default
    /// 1,024: a joining node hears of every live origin from its first few neighbours at once.
    pub new_stream_burst: u32,
    /// Streams this node starts tracking per second, on average, over all neighbours. Default 256.
    /// This is the bound that holds however many identities strangers bring (each new link comes
    /// with a full `new_stream_burst`): it bounds how fast the stream table can be churned, and so
    /// how fast watermarks of evicted streams are pushed out of `max_forgotten_streams`.
    pub total_new_streams_per_sec: u32,
    /// New streams this node starts tracking at once, over all neighbours. Default 4,096 (a whole
    /// table: a node joining a busy network learns every origin at once).
    pub total_new_stream_burst: u32,
    /// Watermarks of streams let go of (evicted, or parked while quiet) remembered, so that a stream
    /// that comes back resumes where it stood instead of delivering its still-retained messages
    /// again. Default 32,768 (about 1 MiB: a mark is some 30 bytes). A mark must outlive
    /// `retention_time` after its eviction to guard against every duplicate, so [`Config::validate`]
    /// requires room for every stream the node can start tracking within `retention_time`, twice
    /// over: marks go half the room at a time ([`Config::min_forgotten_streams`]: 23,552 at the
    /// defaults; raise this with `retention_time`). Marks also go after `stream_idle_timeout`
    /// (between half of it and all of it).
    pub max_forgotten_streams: usize,
    /// A stream with no activity for this long is forgotten (within twice this), and so is the mark
    /// of a stream let go of (after between half this and this). Default 10 min. Safe because no
    /// honest node retains its payloads longer than `retention_time`, so none of them can come back. With
    /// `history` they can, so the stream's watermark is remembered instead (see
    /// `max_forgotten_streams`), and kept for as long as there is room.
    pub stream_idle_timeout: Duration,
    /// A node that first hears of a stream at sequence number `s` delivers it from
    /// `s - backfill_new_stream` (from 1 while `s <= backfill_new_stream`): the messages sent while it
    /// was joining, or that overtook each other at the stream's start, which its neighbours still
    /// retain — and nothing older, so it never waits for history nobody holds. Default 64: at the
    /// chaos runs' 4 messages per second per stream, 16 s of joining. (At 1,024 counted from 1, a node
    /// joining a 150-message stream older than `retention_time` waited a whole `gap_timeout` for
    /// messages nobody held; starting at the first message seen instead, a node that took 4 s to
    /// join lost the messages sent meanwhile. `cargo xtask chaos` flagged both.)
    ///
    /// `u64::MAX` asks for every stream from its first message: where nodes keep histories on disk
    /// (`history`), a newcomer gets each stream's whole past from them. What nobody holds any more
    /// is reported as a gap once the origin's signed manifests prove the stream went on past it.
    pub backfill_new_stream: u64,
    /// A stream whose origin started it (see [`crate::core::StreamId::started_unix_secs`]) no more
    /// than this long before this node got its first neighbour is owed to the node whole: when the
    /// node first hears of it, it delivers it from message 1 (from at most `reorder_window` before
    /// the first message it hears of), not from `backfill_new_stream` back. Such a stream can only
    /// be new to a joined node because it began apart from it: in a partition, or at an origin that
    /// restarted where only a few nodes could reach it. Its neighbours retain its early messages
    /// for `retention_time`; a hole they cannot fill is reported as a gap. The
    /// tolerance covers clocks that disagree: an origin whose clock is behind by more looks older,
    /// and its stream is taken up from `backfill_new_stream` back. Default 30 s.
    pub stream_start_tolerance: Duration,
    /// Maximum payloads sent in answer to one `Graft`, and per stream in answer to one `Sync`. Default
    /// 1,024: a hostile request for a huge range costs at most this many sends.
    pub max_serve_per_request: u64,
    /// Payload bytes per second, on average, this node sends one neighbour in answer to its `Graft`s
    /// and `Sync`s (repairs); what is over budget is not sent, and the neighbour's graft retries ask
    /// for it again later. Default 16 MiB/s: several times what honest repair needs after a link
    /// failure, while a hostile neighbour asking for everything retained again and again (a 20-byte
    /// `Graft` names up to `max_serve_per_request` payloads) gets no more than this of the node's
    /// upload.
    pub serve_bytes_per_sec: u32,
    /// Repair bytes a neighbour may get at once (the bucket's size; a new link starts full).
    /// Default 4 MiB: half a connection's outbound queue (`max_queue_bytes` in `dotray-transport`,
    /// 8 MiB). An answer larger than the queue cannot be queued anyway: what the queue refuses
    /// marks the link congested, which re-offers everything unacknowledged, which is asked for
    /// again — a loop that, under a flood, spends the links on repairs. A neighbour back from a
    /// partition catches up at `serve_bytes_per_sec`, asking again for what was over budget.
    pub serve_burst_bytes: u32,
    /// Maximum ranges or watermarks the core puts in one message it sends (longer lists are split).
    /// Must not exceed [`MAX_LIST_LEN`]. Default 1,024.
    pub max_list_len: usize,
    /// Tree optimisation (see *The tree beacon* in the crate docs): a node moves its tree link to a
    /// neighbour whose beacon announcement offers a depth at least this many hops smaller than its
    /// own. 1 keeps the tree a shortest-path tree from the root (in hops); larger values move links
    /// less often and leave the tree deeper. Default 1.
    pub optimization_threshold: u32,
    /// When a node moves its tree link, it keeps the old one this long before pruning it: the new
    /// parent pushes only what reaches it after the graft, and anything pushed by neither would wait
    /// for a repair. Meanwhile both push (a few duplicates). Default 100 ms: a round trip and the
    /// difference in depth on a wide-area link.
    pub move_overlap: Duration,
    /// Maximum announcers remembered per stream for grafting. Default 8.
    pub max_announcers: usize,
    /// How often the tree root sends a beacon round (see *The tree beacon* in the crate docs): each
    /// round cuts every cycle of the tree links once and moves links towards the root, so a cycle
    /// that a graft made lasts at most about this long. Each round costs every link one small message
    /// and every node one signature check. Default 1 s.
    pub beacon_interval: Duration,
    /// A root not heard from for this long is given up: the first-ranked node among those that
    /// notice starts sending beacons, and the others follow the first-ranked root they hear. Until
    /// then nothing cuts the cycles that repairs make around the dead root, so short is better; a
    /// node that gives up a live root too soon (one round late) only sends a round of its own that
    /// everyone else ignores, and follows the root again at its next round. Must be longer than
    /// `beacon_interval`. Default 2 s: two rounds missed (measurements in `docs/PERFORMANCE.md`).
    pub root_timeout: Duration,
    /// A node that broadcast at least this many messages within the last two beacon intervals is a
    /// *publisher*, and publishers rank before other nodes as the tree root (the smallest id among
    /// them). The tree is a shortest-path tree from its root, so with one busy publisher its messages
    /// take the shortest paths and no detour through another node's branch. Default `u32::MAX`:
    /// off. Every change of root moves links all over the tree, and a publisher that starts
    /// publishing changes the root: with one publisher that is once, at the start of its burst; with
    /// many, roots change each time one more reaches the rate (figures in `docs/PERFORMANCE.md`). Worth
    /// it where one node publishes nearly everything, for long.
    pub root_publisher_rate: u32,
    /// How long a node keeps ranking as a publisher after it last reached `root_publisher_rate`.
    /// Default 30 s. Every change of root moves links all over the tree (each move costs its node
    /// `move_overlap` of duplicates), so a publisher that pauses, or whose rate hovers around the
    /// threshold, must not hand the root back and forth.
    pub root_publisher_hold: Duration,
    /// Most of this node's own messages one signed manifest covers (see *Only an origin can speak for
    /// its stream* in the crate docs); a full batch is signed at once. Larger batches spread one
    /// signature, and its verification at every node, over more messages; a manifest costs every
    /// link [`crate::proof::HASH_LEN`] bytes per message either way. At most
    /// [`crate::proof::MAX_MANIFEST_LEN`]. Default 256.
    pub max_batch_len: usize,
    /// A batch holding this many payload bytes is signed at once too. Nothing of a batch leaves
    /// before it is signed, so the batch is a burst: without a byte bound, large messages broadcast
    /// within one `seal_interval` would leave together, far beyond what the links' queues take
    /// (`DriverConfig::publish_high_water`), and be refused and repaired. A signature per MiB costs
    /// little beside the hashing and relaying of a MiB. Default 1 MiB.
    pub max_batch_bytes: usize,
    /// At most one signature per interval (unless batches fill up). A broadcast after a quiet spell
    /// is signed as soon as the driver has taken every broadcast waiting (`Router::seal_broadcasts`),
    /// so it waits for nothing; under load, the broadcasts of one interval share one signature, and
    /// each waits at most this long for it. Verifying costs every node tens of microseconds per
    /// manifest, several times a small message's whole relay cost, and every node verifies every
    /// origin's manifests: with many origins each at a moderate rate, the interval sets how far that
    /// cost is spread. Default 20 ms (the measurements behind it are in docs/PERFORMANCE.md).
    pub seal_interval: Duration,
    /// How long the payloads of a group cut by the end of a read may wait for the rest of it, which
    /// is then normally in the next read from the same neighbour (see `group.rs`). Past it, or as
    /// soon as anything else arrives first, they are proven one at a time. Bounds the delay holding
    /// adds to a hop. Default 2 ms.
    pub max_group_hold: Duration,
    /// Bytes of verified manifests held, over all streams, for messages not delivered yet (delivered
    /// messages keep theirs in retention). A manifest beyond the budget is dropped, and the messages
    /// it covers are fetched again with their manifest by the repair path. Default 16 MiB.
    pub max_proof_bytes: usize,
    /// The same, per stream: one origin cannot take the whole budget. Default 1 MiB (at least 4,096
    /// messages ahead of delivery with full manifests).
    pub max_stream_proof_bytes: usize,
    /// The driver keeps a history of delivered messages on disk: the core hands it every delivered
    /// payload ([`Action::Archive`](crate::core::Action::Archive)) and asks it for messages older than
    /// it retains in memory when a neighbour wants them
    /// ([`Action::Recall`](crate::core::Action::Recall)). Default false (a driver without a
    /// history would never answer).
    pub history: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ihave_interval: Duration::from_millis(20),
            graft_timeout: Duration::from_millis(400),
            max_graft_timeout: Duration::from_secs(1),
            graft_retry_timeout: Duration::from_millis(40),
            ack_interval: Duration::from_millis(50),
            ack_every: 256,
            sweep_interval: Duration::from_secs(1),
            stream_park_after: Duration::from_secs(2),
            retention_time: Duration::from_secs(30),
            retention_max_messages: 32_768,
            retention_max_bytes: 64 << 20,
            retention_settled_max_bytes: 256 * 1024,
            retention_settled_max_messages: 2_048,
            reorder_window: 4_096,
            reorder_max_total: 65_536,
            reorder_max_bytes: 16 << 20,
            reorder_max_stream_bytes: 16 << 20,
            relay_ahead_bytes: 256 << 10,
            gap_timeout: Duration::from_secs(10),
            backfill_timeout: Duration::from_secs(3),
            max_streams: 4_096,
            new_streams_per_sec: 128,
            new_stream_burst: 1_024,
            total_new_streams_per_sec: 256,
            total_new_stream_burst: 4_096,
            max_forgotten_streams: 32_768,
            stream_idle_timeout: Duration::from_secs(600),
            backfill_new_stream: 64,
            stream_start_tolerance: Duration::from_secs(30),
            max_serve_per_request: 1_024,
            serve_bytes_per_sec: 16 << 20,
            serve_burst_bytes: 4 << 20,
            max_list_len: 1_024,
            optimization_threshold: 1,
            move_overlap: Duration::from_millis(100),
            max_announcers: 8,
            beacon_interval: Duration::from_secs(1),
            root_timeout: Duration::from_secs(2),
            root_publisher_rate: u32::MAX,
            root_publisher_hold: Duration::from_secs(30),
            max_batch_len: 256,
            max_batch_bytes: 1 << 20,
            seal_interval: Duration::from_millis(20),
            max_group_hold: Duration::from_millis(2),
            max_proof_bytes: 16 << 20,
            max_stream_proof_bytes: 1 << 20,
            history: false,
        }
    }
}

impl Config {
    /// The least `max_forgotten_streams` that keeps every evicted stream's mark for
    /// `retention_time`: room for every stream the node can start tracking within that time
    /// (`total_new_stream_burst + total_new_streams_per_sec × retention_time`, rounded up), twice,
    /// since marks are let go half the room at a time.
    pub fn min_forgotten_streams(&self) -> usize {
        let per_sec = u64::from(self.total_new_streams_per_sec);
        let churn = u64::from(self.total_new_stream_burst)
            .saturating_add(per_sec.saturating_mul(self.retention_time.as_secs() + 1));
        usize::try_from(churn.saturating_mul(2)).unwrap_or(usize::MAX)
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::check_nonzero([
            ("ihave_interval", self.ihave_interval.is_zero()),
            ("graft_timeout", self.graft_timeout.is_zero()),
            ("graft_retry_timeout", self.graft_retry_timeout.is_zero()),
            ("ack_interval", self.ack_interval.is_zero()),
            ("sweep_interval", self.sweep_interval.is_zero()),
            ("retention_time", self.retention_time.is_zero()),
            ("gap_timeout", self.gap_timeout.is_zero()),
            ("backfill_timeout", self.backfill_timeout.is_zero()),
            ("stream_idle_timeout", self.stream_idle_timeout.is_zero()),
            ("beacon_interval", self.beacon_interval.is_zero()),
            ("ack_every", self.ack_every == 0),
            ("retention_max_messages", self.retention_max_messages == 0),
            ("retention_max_bytes", self.retention_max_bytes == 0),
            ("reorder_window", self.reorder_window == 0),
            ("reorder_max_total", self.reorder_max_total == 0),
            ("reorder_max_bytes", self.reorder_max_bytes == 0),
            ("reorder_max_stream_bytes", self.reorder_max_stream_bytes == 0),
            ("max_streams", self.max_streams == 0),
            ("new_stream_burst", self.new_stream_burst == 0),
            ("total_new_stream_burst", self.total_new_stream_burst == 0),
            ("max_serve_per_request", self.max_serve_per_request == 0),
            ("serve_burst_bytes", self.serve_burst_bytes == 0),
            ("max_list_len", self.max_list_len == 0),
            ("max_announcers", self.max_announcers == 0),
            ("max_batch_len", self.max_batch_len == 0),
            ("max_batch_bytes", self.max_batch_bytes == 0),
            ("max_proof_bytes", self.max_proof_bytes == 0),
            ("max_stream_proof_bytes", self.max_stream_proof_bytes == 0),
        ])?;
        InvalidConfig::check(
            self.max_batch_len <= crate::proof::MAX_MANIFEST_LEN,
            "max_batch_len exceeds MAX_MANIFEST_LEN",
        )?;
        InvalidConfig::check(self.max_list_len <= MAX_LIST_LEN, "max_list_len exceeds MAX_LIST_LEN")?;
        InvalidConfig::check(
            self.stream_idle_timeout >= self.retention_time.saturating_mul(2),
            "stream_idle_timeout must be at least twice retention_time (a mark may go after half of it, \
             and old payloads could be re-delivered)",
        )?;
        InvalidConfig::check(
            self.max_forgotten_streams >= self.min_forgotten_streams(),
            "max_forgotten_streams must hold every stream started within retention_time",
        )?;
        InvalidConfig::check(
            self.max_graft_timeout >= self.graft_timeout,
            "max_graft_timeout must be at least graft_timeout",
        )?;
        InvalidConfig::check(
            self.root_timeout > self.beacon_interval,
            "root_timeout must exceed beacon_interval",
        )?;
        InvalidConfig::check(
            self.gap_timeout > self.max_graft_timeout,
            "gap_timeout must exceed max_graft_timeout",
        )?;
        Ok(())
    }
}
