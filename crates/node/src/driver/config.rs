//! [`DriverConfig`]: the settings of the tokio driver (the protocol's are in [`crate::core::Config`]).

use std::time::Duration;

use dotray_codec::InvalidConfig;
use dotray_store::HistoryLimits;

/// Settings of the tokio driver: queues towards the application and hop-by-hop back-pressure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// Deliveries waiting for the application. When it is full the node stops taking frames from the
    /// network until the application reads (back-pressure; nothing is dropped). Default 8,192: at
    /// 1 KiB per message, 8 MiB, enough for an application that pauses briefly not to slow its node.
    pub delivery_queue_len: usize,
    /// Events waiting for the application (neighbours, gaps, direct messages); an event that finds it
    /// full is dropped and counted in [`DriverCounters::events_dropped`](crate::DriverCounters).
    /// Default 1,024.
    pub event_queue_len: usize,
    /// Broadcasts waiting for the driver; a publisher awaits beyond it. Default 2: a publisher never
    /// waits for a round trip to the driver (the next broadcast is queued while the driver sends the
    /// previous one), and once the tree is saturated whatever waits here only adds latency.
    pub broadcast_queue_len: usize,
    /// Queries and other commands waiting for the driver. Default 64.
    pub command_queue_len: usize,
    /// A neighbour with more bytes than this queued holds this node back — no new broadcasts and no
    /// frames taken from the network (hop-by-hop back-pressure) — until it drains or is found slow.
    /// The connection's writer wakes the node as soon as a write brings the queue back to this mark,
    /// so it only needs to cover the writer's next write. Default 64 KiB: what waits here is latency
    /// (and, at every hop, payloads held for repair until the next hop has them), so the mark is as
    /// low as keeps the writer busy.
    pub publish_high_water: usize,
    /// How long a neighbour may stay above `publish_high_water` before it is demoted to lazy and
    /// stops holding the node back. Default 1 s: a node starved of CPU for a moment is not a slow
    /// node, and each demotion costs its subtree a graft delay and the tree some churn.
    pub congestion_grace: Duration,
    /// Once demoted, a neighbour cannot hold the node back again for a while: `congestion_grace`
    /// after its first demotion, twice as long after each further one, at most this long. Default
    /// 60 s. A neighbour that reads just enough to be promoted again and then stops (a hostile one,
    /// or a link that is slow for good) would otherwise freeze the node for `congestion_grace` in
    /// every such cycle; now it loses only its own share (its sends are refused and repaired when
    /// its queue is full). Its count of demotions starts over after this long without one.
    pub congestion_backoff_max: Duration,
    /// How often a held-back driver re-checks its neighbours' queues even if none drains, so that
    /// one that stays full is demoted after `congestion_grace`. Default 10 ms. (Going on once a queue
    /// drains needs no polling: the connection's writer wakes the driver.)
    pub held_back_recheck: Duration,
    /// How often stream bookkeeping (origin addresses, wire references of streams the core no longer
    /// tracks) is cleaned. Default 10 s.
    pub cleanup_interval: Duration,
    /// With a data directory: bytes of the newest signed batches of the node's own messages kept on
    /// disk with their position. A restarted node serves them to neighbours that missed them, such
    /// as a batch its earlier run stored and died before sending. Default 16 MiB (the newest batch
    /// is kept whatever its size).
    pub stored_own_bytes: u64,
    /// With a data directory: acknowledgements (`NodeHandle::ack`) are gathered for up to this long
    /// into one durable commit, on a thread of their own. An acknowledgement returns within about
    /// this much plus one commit; a node commits at most once per interval however fast its
    /// application acknowledges. Default 100 ms: each commit writes and flushes the file, so a node
    /// whose application acknowledges continuously makes at most 10 a second (acknowledging is
    /// asynchronous: an application need not wait for one before processing the next messages).
    pub ack_commit_interval: Duration,
    /// With a data directory: keep a history of every message the node delivers (and its own), on
    /// disk beside the directory's database, within these limits (the oldest go first). The node
    /// serves catch-up from it to neighbours asking for more than its memory retains, and
    /// `NodeHandle::replay` reads it. Default `None`: no history.
    pub history: Option<HistoryLimits>,
    /// With a history: messages are gathered for up to this long into one commit, on a thread of
    /// their own. Default 100 ms (at most 10 commits a second, each one write and flush).
    pub history_commit_interval: Duration,
    /// With a history: payload bytes waiting for the history's writer at most. A message delivered
    /// while the writer is this far behind (a disk slower than the network) is not stored, and is
    /// counted in `DriverCounters::history_dropped`: the history has a hole there, and delivery
    /// goes on at the network's pace. Default 64 MiB.
    pub history_queue_bytes: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            delivery_queue_len: 8_192,
            event_queue_len: 1_024,
            broadcast_queue_len: 2,
            command_queue_len: 64,
            publish_high_water: 64 * 1024,
            congestion_grace: Duration::from_millis(1000),
            congestion_backoff_max: Duration::from_secs(60),
            held_back_recheck: Duration::from_millis(10),
            cleanup_interval: Duration::from_secs(10),
            stored_own_bytes: 16 << 20,
            ack_commit_interval: Duration::from_millis(100),
            history: None,
            history_commit_interval: Duration::from_millis(100),
            history_queue_bytes: 64 << 20,
        }
    }
}

impl DriverConfig {
    /// Checks that every queue can hold something and every period is positive.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::check_nonzero([
            ("delivery_queue_len", self.delivery_queue_len == 0),
            ("event_queue_len", self.event_queue_len == 0),
            ("broadcast_queue_len", self.broadcast_queue_len == 0),
            ("command_queue_len", self.command_queue_len == 0),
            ("publish_high_water", self.publish_high_water == 0),
            ("congestion_grace", self.congestion_grace.is_zero()),
            ("congestion_backoff_max", self.congestion_backoff_max.is_zero()),
            ("held_back_recheck", self.held_back_recheck.is_zero()),
            ("cleanup_interval", self.cleanup_interval.is_zero()),
            ("stored_own_bytes", self.stored_own_bytes == 0),
            ("history_queue_bytes", self.history_queue_bytes == 0),
            ("history.max_bytes", self.history.is_some_and(|h| h.max_bytes == 0)),
            ("history.max_age", self.history.is_some_and(|h| h.max_age.is_zero())),
        ])
    }
}
