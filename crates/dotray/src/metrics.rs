//! A node's figures through the [`metrics`] facade, so that the application picks the
//! exporter (Prometheus, StatsD, OpenTelemetry, …) by installing its recorder.
//!
//! Every node publishes what [`Node::counters`](crate::Node::counters),
//! [`Node::transport_stats`](crate::Node::transport_stats), [`Node::nodes`](crate::Node::nodes) and
//! [`Node::topology`](crate::Node::topology) return, every [`MetricsConfig::interval`] (1 s by
//! default), from a small task that stops with the node. Counters are set to the node's running
//! totals, gauges to their current values. With no recorder installed the facade's calls do nothing,
//! and each interval costs one read of those figures.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Serve every node of this process at http://127.0.0.1:9000/metrics (Prometheus text format).
//! metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .with_http_listener(([127, 0, 0, 1], 9000))
//!     .install()?;
//! let node = dotray::Node::builder().start().await?;
//! # Ok(()) }
//! ```
//!
//! ## Labels
//!
//! Every metric carries the label `node`: the first 8 hex digits of the node's id, so that several
//! nodes in one process (tests, simulations, a host running two networks) publish separate series.
//! Its values are bounded by the number of nodes the process starts. A node that does not keep its
//! key ([`NodeBuilder::key_file`](crate::NodeBuilder::key_file)) has a new id, and so new series, at
//! each start: aggregate with `sum without (node)`.
//! `dotray_known_nodes` adds `state`, one of four values. No metric is labelled by peer: the
//! round-trip times over all neighbours are summarised as their minimum, median and maximum.
//!
//! ## Metrics
//!
//! Names follow Prometheus conventions: counters end in `_total`, and a unit, when there is one, is
//! the last word before it (`_bytes`, `_seconds`). The facade is told the same unit (bytes, seconds,
//! or a plain count).
//!
//! | name | kind | unit | meaning |
//! |---|---|---|---|
//! | `dotray_broadcasts_total` | counter | messages | Messages this node originated with broadcast. |
//! | `dotray_payloads_sent_total` | counter | messages | Data messages sent: every copy to every peer, eager pushes and repairs. |
//! | `dotray_payload_sent_bytes_total` | counter | bytes | Payload bytes of the data messages sent. |
//! | `dotray_payloads_received_total` | counter | messages | Data messages received. |
//! | `dotray_payload_received_bytes_total` | counter | bytes | Payload bytes of the data messages received. |
//! | `dotray_payloads_delivered_total` | counter | messages | Payloads delivered in order (a large message's pieces count one each). |
//! | `dotray_duplicates_total` | counter | messages | Data received for a message already held or delivered. |
//! | `dotray_duplicates_graft_answer_total` | counter | messages | Of the duplicates: answers to this node's grafts that the tree copy beat. |
//! | `dotray_duplicates_after_graft_total` | counter | messages | Of the duplicates: tree copies of messages already obtained by grafting. |
//! | `dotray_duplicates_eager_total` | counter | messages | Of the duplicates: pushed over a link that is eager in this node's view. |
//! | `dotray_duplicates_lazy_total` | counter | messages | Of the duplicates: pushed over a link that is lazy in this node's view. |
//! | `dotray_payloads_dropped_ahead_total` | counter | messages | Data dropped beyond the reorder window or with the reorder buffer full. |
//! | `dotray_relays_deferred_total` | counter | messages | Payloads buffered behind a hole beyond their stream's relay budget, relayed later. |
//! | `dotray_reorder_evicted_total` | counter | messages | Payloads taken from the largest reorder buffer to make room for another stream's. |
//! | `dotray_retention_evicted_total` | counter | messages | Payloads taken from the largest retention cache to keep the cache within its bounds. |
//! | `dotray_ihaves_sent_total` | counter | messages | IHave digests sent. |
//! | `dotray_grafts_sent_total` | counter | messages | Grafts sent. |
//! | `dotray_grafts_deferred_total` | counter | timers | Graft timers that found their stream moving and waited another graft delay. |
//! | `dotray_grafts_received_total` | counter | messages | Grafts received. |
//! | `dotray_prunes_sent_total` | counter | messages | Prunes sent. |
//! | `dotray_prunes_received_total` | counter | messages | Prunes received. |
//! | `dotray_resends_total` | counter | messages | Payloads sent in answer to a graft or sync (repairs). |
//! | `dotray_sync_resends_total` | counter | messages | Of the resends: those answering a sync. |
//! | `dotray_repairs_over_budget_total` | counter | messages | Payloads asked for and not sent: the neighbour was over its repair budget. |
//! | `dotray_history_reads_total` | counter | reads | Reads of the history on disk for neighbours catching up. |
//! | `dotray_history_resends_total` | counter | messages | Payloads sent from the history on disk. |
//! | `dotray_history_damaged_total` | counter | runs | Runs or payloads read back from the history that failed their check and were not sent. |
//! | `dotray_reoffers_total` | counter | ranges | Ranges re-offered by digest after a neighbour went down or a send was refused. |
//! | `dotray_tree_optimisations_total` | counter | links | Tree links moved to a shallower neighbour by a beacon announcement. |
//! | `dotray_beacons_sent_total` | counter | messages | Tree beacon copies sent. |
//! | `dotray_beacons_received_total` | counter | messages | Tree beacon copies received. |
//! | `dotray_beacon_rounds_total` | counter | rounds | New tree beacon rounds taken (each one's signature checked). |
//! | `dotray_tree_grafts_total` | counter | links | Beacon rounds that came only as announcements, so that the node grafted the shallowest announcer. |
//! | `dotray_gaps_total` | counter | gaps | Gap events: runs of messages given up as lost. |
//! | `dotray_gap_messages_total` | counter | messages | Messages covered by those gaps. |
//! | `dotray_streams_refused_total` | counter | streams | New streams refused: over the naming neighbour's new-stream budget. |
//! | `dotray_streams_evicted_total` | counter | streams | Streams forgotten for idleness or to make room. |
//! | `dotray_streams_parked_total` | counter | streams | Quiet streams let go of, their watermark remembered. |
//! | `dotray_streams_restored_total` | counter | streams | Evicted or parked streams that came back and resumed at their remembered watermark. |
//! | `dotray_parked_news_total` | counter | messages | Late news of parked streams, naming only messages they had delivered: ignored. |
//! | `dotray_protocol_violations_total` | counter | violations | Protocol violations the broadcast layer found. |
//! | `dotray_manifests_signed_total` | counter | manifests | Manifests this node signed for its own messages. |
//! | `dotray_manifests_sent_total` | counter | messages | Manifests sent: every copy to every peer. |
//! | `dotray_manifests_received_total` | counter | messages | Manifests received. |
//! | `dotray_manifests_verified_total` | counter | manifests | Manifest signatures checked. |
//! | `dotray_groups_proven_total` | counter | groups | Groups of payloads proven at once by their group digest. |
//! | `dotray_unproven_payloads_total` | counter | messages | New payloads dropped for want of a verified manifest (fetched again by repair). |
//! | `dotray_proofs_dropped_total` | counter | manifests | Verified manifests dropped over the proof memory limits. |
//! | `dotray_equivocations_total` | counter | manifests | Validly signed manifests contradicting one already held. |
//! | `dotray_messages_delivered_total` | counter | messages | Messages handed to the application (a large message counts once). |
//! | `dotray_deliveries_dropped_total` | counter | messages | Deliveries dropped because the application had closed its receiver. |
//! | `dotray_events_dropped_total` | counter | events | Events dropped because the application did not read them. |
//! | `dotray_directs_dropped_total` | counter | messages | Direct messages dropped: over their sender's byte budget, or the event queue three quarters full. |
//! | `dotray_sends_refused_total` | counter | messages | Sends refused by a full connection queue. |
//! | `dotray_violation_disconnects_total` | counter | connections | Connections closed for protocol violations. |
//! | `dotray_history_dropped_total` | counter | messages | Delivered messages not stored in the history: its writer was too far behind. |
//! | `dotray_connections` | gauge | connections | Connections that completed the handshake and are open. |
//! | `dotray_inbound_sockets` | gauge | sockets | Inbound sockets open, handshakes in progress included. |
//! | `dotray_outbound_sockets` | gauge | sockets | Outbound sockets open, dials in progress included. |
//! | `dotray_inbound_accepted_total` | counter | sockets | Inbound sockets accepted. |
//! | `dotray_inbound_refused_total` | counter | sockets | Inbound sockets refused at the limit. |
//! | `dotray_written_bytes_total` | counter | bytes | Bytes of frames written to peers, before encryption (handshakes and goodbyes not counted). |
//! | `dotray_written_frames_total` | counter | frames | Frames written to peers. |
//! | `dotray_bans` | gauge | nodes | Node ids banned now for breaking the protocol. |
//! | `dotray_bans_issued_total` | counter | bans | Bans issued, repeat offences included. |
//! | `dotray_ban_refusals_total` | counter | connections | Connections refused because the peer's node id was banned. |
//! | `dotray_shutdown_events_dropped_total` | counter | events | Disconnections not reported because the transport's event queue was full at shutdown. |
//! | `dotray_handshake_events_dropped_total` | counter | events | Failed handshakes not reported because the transport's event queue was full. |
//! | `dotray_known_nodes` | gauge | nodes | Nodes this node knows, by `state`: active and suspect (neighbours), passive and down (backups). |
//! | `dotray_neighbour_rtt_min_seconds` | gauge | seconds | Smallest smoothed round-trip time over the neighbours measured; NaN when none is. |
//! | `dotray_neighbour_rtt_median_seconds` | gauge | seconds | Median smoothed round-trip time over the neighbours measured; NaN when none is. |
//! | `dotray_neighbour_rtt_max_seconds` | gauge | seconds | Largest smoothed round-trip time over the neighbours measured; NaN when none is. |
//! | `dotray_eager_links` | gauge | links | Neighbours this node pushes payloads to: its links in the broadcast tree. |
//! | `dotray_lazy_links` | gauge | links | Neighbours this node sends only digests to. |
//! | `dotray_delivery_queue_depth` | gauge | messages | Messages waiting for the application to receive them (0 while it waits for one). |
//! | `dotray_event_queue_depth` | gauge | events | Events waiting for the application to read them (0 while it waits for one). |
//!
//! The counters from `dotray_broadcasts_total` to `dotray_equivocations_total` are the fields of
//! [`Counters`], the next five those of [`DriverCounters`], and those from `dotray_connections` to
//! `dotray_handshake_events_dropped_total` those of [`TransportStats`], in order
//! ([`router_figures`], [`driver_figures`] and [`transport_figures`] pair each field with its metric).
//! The round-trip times are gauges rather than a histogram: each interval would observe the same
//! smoothed times again, so a histogram would count neighbours once per interval.

use std::time::Duration;

use ::metrics::{Label, Unit, counter, gauge};
use dotray_membership::core::{NodeInfo, NodeState};
use dotray_node::DriverCounters;
use dotray_router::core::{Counters, Topology};
use dotray_transport::TransportStats;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::handle::WeakNode;
use crate::{Node, NodeError};

/// How a node publishes its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// How often the node reads its figures and hands them to the installed recorder; the first time
    /// at start. [`Duration::ZERO`] publishes nothing and starts no task. Default 1 s.
    pub interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(1) }
    }
}

/// How a metric behaves: a counter only grows, a gauge goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A running total since the node started.
    Counter,
    /// A current value.
    Gauge,
}

/// One field of [`Counters`], [`DriverCounters`] or [`TransportStats`], with the metric it is
/// published as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figure {
    /// The field's name in its struct.
    pub field: &'static str,
    /// The metric's name (see the [module](self) table).
    pub metric: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// What it measures: the metric's description, given to the recorder.
    pub help: &'static str,
    /// The field's value.
    pub value: u64,
}

/// A field's value as the `u64` of a [`Figure`].
trait FigureValue {
    fn figure_value(self) -> u64;
}

impl FigureValue for u64 {
    fn figure_value(self) -> u64 {
        self
    }
}

impl FigureValue for usize {
    fn figure_value(self) -> u64 {
        u64::try_from(self).unwrap_or(u64::MAX)
    }
}

/// Defines a function listing the fields of one struct as [`Figure`]s, in declaration order.
macro_rules! figures {
    (
        $(#[$attr:meta])*
        fn $name:ident($arg:ident: &$ty:ty) {
            $($field:ident: $kind:ident $metric:literal $help:literal,)*
        }
    ) => {
        $(#[$attr])*
        pub fn $name($arg: &$ty) -> Vec<Figure> {
            vec![$(Figure {
                field: stringify!($field),
                metric: $metric,
                kind: Kind::$kind,
                help: $help,
                value: $arg.$field.figure_value(),
            },)*]
        }
    };
}

figures! {
    /// Every field of the broadcast layer's [`Counters`], in declaration order, with its metric.
    fn router_figures(c: &Counters) {
        broadcasts: Counter "dotray_broadcasts_total" "Messages this node originated with broadcast.",
        payloads_sent: Counter "dotray_payloads_sent_total"
            "Data messages sent: every copy to every peer, eager pushes and repairs.",
        payload_bytes_sent: Counter "dotray_payload_sent_bytes_total"
            "Payload bytes of the data messages sent.",
        payloads_received: Counter "dotray_payloads_received_total" "Data messages received.",
        payload_bytes_received: Counter "dotray_payload_received_bytes_total"
            "Payload bytes of the data messages received.",
        delivered: Counter "dotray_payloads_delivered_total"
            "Payloads delivered in order (a large message's pieces count one each).",
        duplicates: Counter "dotray_duplicates_total"
            "Data received for a message already held or delivered.",
        duplicates_graft_answer: Counter "dotray_duplicates_graft_answer_total"
            "Of the duplicates: answers to this node's grafts that the tree copy beat.",
        duplicates_after_graft: Counter "dotray_duplicates_after_graft_total"
            "Of the duplicates: tree copies of messages already obtained by grafting.",
        duplicates_eager: Counter "dotray_duplicates_eager_total"
            "Of the duplicates: pushed over a link that is eager in this node's view.",
        duplicates_lazy: Counter "dotray_duplicates_lazy_total"
            "Of the duplicates: pushed over a link that is lazy in this node's view.",
        dropped_ahead: Counter "dotray_payloads_dropped_ahead_total"
            "Data dropped beyond the reorder window or with the reorder buffer full.",
        relays_deferred: Counter "dotray_relays_deferred_total"
            "Payloads buffered behind a hole beyond their stream's relay budget, relayed later.",
        reorder_evicted: Counter "dotray_reorder_evicted_total"
            "Payloads taken from the largest reorder buffer to make room for another stream's.",
        retention_evicted: Counter "dotray_retention_evicted_total"
            "Payloads taken from the largest retention cache to keep the cache within its bounds.",
        ihaves_sent: Counter "dotray_ihaves_sent_total" "IHave digests sent.",
        grafts_sent: Counter "dotray_grafts_sent_total" "Grafts sent.",
        grafts_deferred: Counter "dotray_grafts_deferred_total"
            "Graft timers that found their stream moving and waited another graft delay.",
        grafts_received: Counter "dotray_grafts_received_total" "Grafts received.",
        prunes_sent: Counter "dotray_prunes_sent_total" "Prunes sent.",
        prunes_received: Counter "dotray_prunes_received_total" "Prunes received.",
        resends: Counter "dotray_resends_total" "Payloads sent in answer to a graft or sync (repairs).",
        sync_resends: Counter "dotray_sync_resends_total" "Of the resends: those answering a sync.",
        repairs_over_budget: Counter "dotray_repairs_over_budget_total"
            "Payloads asked for and not sent: the neighbour was over its repair budget.",
        recalls: Counter "dotray_history_reads_total"
            "Reads of the history on disk for neighbours catching up.",
        recalled: Counter "dotray_history_resends_total" "Payloads sent from the history on disk.",
        history_damaged: Counter "dotray_history_damaged_total"
            "Runs or payloads read back from the history that failed their check and were not sent.",
        reoffers: Counter "dotray_reoffers_total"
            "Ranges re-offered by digest after a neighbour went down or a send was refused.",
        optimisations: Counter "dotray_tree_optimisations_total"
            "Tree links moved to a shallower neighbour by a beacon announcement.",
        beacons_sent: Counter "dotray_beacons_sent_total" "Tree beacon copies sent.",
        beacons_received: Counter "dotray_beacons_received_total" "Tree beacon copies received.",
        beacon_rounds: Counter "dotray_beacon_rounds_total"
            "New tree beacon rounds taken (each one's signature checked).",
        tree_grafts: Counter "dotray_tree_grafts_total"
            "Beacon rounds that came only as announcements, so that the node grafted the shallowest announcer.",
        gaps: Counter "dotray_gaps_total" "Gap events: runs of messages given up as lost.",
        gap_messages: Counter "dotray_gap_messages_total" "Messages covered by those gaps.",
        streams_refused: Counter "dotray_streams_refused_total"
            "New streams refused: over the naming neighbour's new-stream budget.",
        streams_evicted: Counter "dotray_streams_evicted_total"
            "Streams forgotten for idleness or to make room.",
        streams_parked: Counter "dotray_streams_parked_total"
            "Quiet streams let go of, their watermark remembered.",
        streams_restored: Counter "dotray_streams_restored_total"
            "Evicted or parked streams that came back and resumed at their remembered watermark.",
        parked_news: Counter "dotray_parked_news_total"
            "Late news of parked streams, naming only messages they had delivered: ignored.",
        violations: Counter "dotray_protocol_violations_total"
            "Protocol violations the broadcast layer found.",
        manifests_signed: Counter "dotray_manifests_signed_total"
            "Manifests this node signed for its own messages.",
        manifests_sent: Counter "dotray_manifests_sent_total" "Manifests sent: every copy to every peer.",
        manifests_received: Counter "dotray_manifests_received_total" "Manifests received.",
        manifests_verified: Counter "dotray_manifests_verified_total" "Manifest signatures checked.",
        groups_proven: Counter "dotray_groups_proven_total"
            "Groups of payloads proven at once by their group digest.",
        unproven_payloads: Counter "dotray_unproven_payloads_total"
            "New payloads dropped for want of a verified manifest (fetched again by repair).",
        proofs_dropped: Counter "dotray_proofs_dropped_total"
            "Verified manifests dropped over the proof memory limits.",
        equivocations: Counter "dotray_equivocations_total"
            "Validly signed manifests contradicting one already held.",
    }
}

figures! {
    /// Every field of the node driver's [`DriverCounters`], in declaration order, with its metric.
    fn driver_figures(c: &DriverCounters) {
        messages_delivered: Counter "dotray_messages_delivered_total"
            "Messages handed to the application (a large message counts once).",
        deliveries_dropped: Counter "dotray_deliveries_dropped_total"
            "Deliveries dropped because the application had closed its receiver.",
        events_dropped: Counter "dotray_events_dropped_total"
            "Events dropped because the application did not read them.",
        directs_dropped: Counter "dotray_directs_dropped_total"
            "Direct messages dropped: over their sender's byte budget, or the event queue three quarters full.",
        sends_refused: Counter "dotray_sends_refused_total" "Sends refused by a full connection queue.",
        violations: Counter "dotray_violation_disconnects_total"
            "Connections closed for protocol violations.",
        history_dropped: Counter "dotray_history_dropped_total"
            "Delivered messages not stored in the history: its writer was too far behind.",
    }
}

figures! {
    /// Every field of the transport's [`TransportStats`], in declaration order, with its metric.
    fn transport_figures(s: &TransportStats) {
        connections: Gauge "dotray_connections" "Connections that completed the handshake and are open.",
        inbound_open: Gauge "dotray_inbound_sockets" "Inbound sockets open, handshakes in progress included.",
        outbound_open: Gauge "dotray_outbound_sockets" "Outbound sockets open, dials in progress included.",
        inbound_accepted: Counter "dotray_inbound_accepted_total" "Inbound sockets accepted.",
        inbound_refused: Counter "dotray_inbound_refused_total" "Inbound sockets refused at the limit.",
        bytes_written: Counter "dotray_written_bytes_total"
            "Bytes of frames written to peers, before encryption (handshakes and goodbyes not counted).",
        frames_written: Counter "dotray_written_frames_total" "Frames written to peers.",
        bans: Gauge "dotray_bans" "Node ids banned now for breaking the protocol.",
        bans_issued: Counter "dotray_bans_issued_total" "Bans issued, repeat offences included.",
        ban_refusals: Counter "dotray_ban_refusals_total"
            "Connections refused because the peer's node id was banned.",
        events_dropped_at_shutdown: Counter "dotray_shutdown_events_dropped_total"
            "Disconnections not reported because the transport's event queue was full at shutdown.",
        handshake_events_dropped: Counter "dotray_handshake_events_dropped_total"
            "Failed handshakes not reported because the transport's event queue was full.",
    }
}

/// A metric that is not a struct field: its name and description.
struct Gauge {
    metric: &'static str,
    help: &'static str,
}

const KNOWN_NODES: Gauge = Gauge {
    metric: "dotray_known_nodes",
    help: "Nodes this node knows, by `state`: active and suspect (neighbours), passive and down (backups).",
};
const RTT_MIN: Gauge = Gauge {
    metric: "dotray_neighbour_rtt_min_seconds",
    help: "Smallest smoothed round-trip time over the neighbours measured; NaN when none is.",
};
const RTT_MEDIAN: Gauge = Gauge {
    metric: "dotray_neighbour_rtt_median_seconds",
    help: "Median smoothed round-trip time over the neighbours measured; NaN when none is.",
};
const RTT_MAX: Gauge = Gauge {
    metric: "dotray_neighbour_rtt_max_seconds",
    help: "Largest smoothed round-trip time over the neighbours measured; NaN when none is.",
};
const EAGER_LINKS: Gauge = Gauge {
    metric: "dotray_eager_links",
    help: "Neighbours this node pushes payloads to: its links in the broadcast tree.",
};
const LAZY_LINKS: Gauge =
    Gauge { metric: "dotray_lazy_links", help: "Neighbours this node sends only digests to." };
const DELIVERY_QUEUE: Gauge = Gauge {
    metric: "dotray_delivery_queue_depth",
    help: "Messages waiting for the application to receive them (0 while it waits for one).",
};
const EVENT_QUEUE: Gauge = Gauge {
    metric: "dotray_event_queue_depth",
    help: "Events waiting for the application to read them (0 while it waits for one).",
};

/// The metrics published besides the struct fields, in the table's order.
#[cfg(test)]
const OTHER_GAUGES: [&Gauge; 8] =
    [&KNOWN_NODES, &RTT_MIN, &RTT_MEDIAN, &RTT_MAX, &EAGER_LINKS, &LAZY_LINKS, &DELIVERY_QUEUE, &EVENT_QUEUE];

/// The unit a metric's name ends in.
fn unit_of(metric: &str) -> Unit {
    let base = metric.strip_suffix("_total").unwrap_or(metric);
    if base.ends_with("_bytes") {
        Unit::Bytes
    } else if base.ends_with("_seconds") {
        Unit::Seconds
    } else {
        Unit::Count
    }
}

/// The label every metric of `node` carries: the first 8 hex digits of its id.
fn node_label(node: &Node) -> Label {
    let mut id = node.id().to_string();
    id.truncate(8);
    Label::new("node", id)
}

/// Everything one interval publishes, read from a node.
#[derive(Debug)]
struct Sample {
    router: Counters,
    driver: DriverCounters,
    transport: TransportStats,
    nodes: Vec<NodeInfo>,
    topology: Topology,
    delivery_queue: usize,
    event_queue: usize,
}

impl Sample {
    async fn read(node: &Node) -> Result<Sample, NodeError> {
        let (router, driver) = node.counters().await?;
        let nodes = node.nodes().await?;
        let topology = node.topology().await?;
        let (delivery_queue, event_queue) = node.queue_depths();
        Ok(Sample {
            router,
            driver,
            transport: node.transport_stats(),
            nodes,
            topology,
            delivery_queue,
            event_queue,
        })
    }

    /// Hands every figure to the installed recorder (nothing happens without one).
    fn publish(&self, labels: &[Label]) {
        let figures = router_figures(&self.router)
            .into_iter()
            .chain(driver_figures(&self.driver))
            .chain(transport_figures(&self.transport));
        for figure in figures {
            let unit = unit_of(figure.metric);
            match figure.kind {
                Kind::Counter => counter!(description: figure.help, unit: unit, figure.metric, labels.iter())
                    .absolute(figure.value),
                Kind::Gauge => {
                    set(&Gauge { metric: figure.metric, help: figure.help }, labels, figure.value as f64)
                }
            }
        }

        let mut states = [("active", 0usize), ("suspect", 0), ("passive", 0), ("down", 0)];
        let mut rtts = Vec::new();
        for info in &self.nodes {
            let (index, neighbour) = match info.state {
                NodeState::Active => (0, true),
                NodeState::Suspect => (1, true),
                NodeState::Passive => (2, false),
                NodeState::Down => (3, false),
            };
            states[index].1 += 1;
            if let Some(rtt) = info.rtt.filter(|_| neighbour) {
                rtts.push(rtt.as_secs_f64());
            }
        }
        for (state, count) in states {
            let labels = labels.iter().cloned().chain([Label::new("state", state)]).collect::<Vec<_>>();
            set(&KNOWN_NODES, &labels, count as f64);
        }
        rtts.sort_by(f64::total_cmp);
        let median = match rtts.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => rtts[n / 2],
            n => (rtts[n / 2 - 1] + rtts[n / 2]) / 2.0,
        };
        set(&RTT_MIN, labels, rtts.first().copied().unwrap_or(f64::NAN));
        set(&RTT_MEDIAN, labels, median);
        set(&RTT_MAX, labels, rtts.last().copied().unwrap_or(f64::NAN));
        set(&EAGER_LINKS, labels, self.topology.eager.len() as f64);
        set(&LAZY_LINKS, labels, self.topology.lazy.len() as f64);
        set(&DELIVERY_QUEUE, labels, self.delivery_queue as f64);
        set(&EVENT_QUEUE, labels, self.event_queue as f64);
    }
}

/// Sets a gauge, describing it (the recorder may have been installed after the node started).
fn set(gauge: &Gauge, labels: &[Label], value: f64) {
    let unit = unit_of(gauge.metric);
    gauge!(description: gauge.help, unit: unit, gauge.metric, labels.iter()).set(value);
}

/// The task that publishes `node`'s figures every `config.interval` until `cancel` fires or the node
/// is gone. It holds the node only while it reads the figures, so it never keeps a dropped node alive.
pub(crate) async fn publish_every(node: WeakNode, config: MetricsConfig, cancel: CancellationToken) {
    let Some(labels) = node.upgrade().map(|node| vec![node_label(&node)]) else { return };
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Some(node) = node.upgrade() else { return };
        let sample = tokio::select! {
            _ = cancel.cancelled() => return,
            sample = Sample::read(&node) => sample,
        };
        drop(node);
        match sample {
            Ok(sample) => sample.publish(&labels),
            // The driver has stopped: so has the node.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use dotray_codec::{NodeId, SecretKey};
    use dotray_membership::core::PeerInfo;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    /// The field names of a struct, from its derived `Debug` output.
    fn debug_fields(value: &impl std::fmt::Debug) -> Vec<String> {
        let text = format!("{value:?}");
        let inner =
            &text[text.find('{').expect("braced struct") + 1..text.rfind('}').expect("braced struct")];
        inner.split(',').map(|field| field.split(':').next().unwrap_or_default().trim().to_owned()).collect()
    }

    fn stats() -> TransportStats {
        // Every field named: a field added to the struct fails to compile here until it is listed.
        TransportStats {
            connections: 1,
            inbound_open: 2,
            outbound_open: 3,
            inbound_accepted: 4,
            inbound_refused: 5,
            bytes_written: 6,
            frames_written: 7,
            bans: 8,
            bans_issued: 9,
            ban_refusals: 10,
            events_dropped_at_shutdown: 11,
            handshake_events_dropped: 12,
        }
    }

    fn all_figures() -> Vec<Figure> {
        let mut figures = router_figures(&Counters::default());
        figures.extend(driver_figures(&DriverCounters::default()));
        figures.extend(transport_figures(&stats()));
        figures
    }

    #[test]
    fn every_field_of_the_three_structs_is_a_figure_in_order() {
        let names = |figures: Vec<Figure>| figures.iter().map(|f| f.field.to_owned()).collect::<Vec<_>>();
        assert_eq!(names(router_figures(&Counters::default())), debug_fields(&Counters::default()));
        assert_eq!(
            names(driver_figures(&DriverCounters::default())),
            debug_fields(&DriverCounters::default())
        );
        assert_eq!(names(transport_figures(&stats())), debug_fields(&stats()));
        let values: Vec<u64> = transport_figures(&stats()).iter().map(|f| f.value).collect();
        assert_eq!(values, (1..=12).collect::<Vec<u64>>(), "each figure reads its own field");
    }

    #[test]
    fn the_module_doc_table_lists_every_metric_in_order_with_kind_unit_and_meaning() {
        let source = include_str!("metrics.rs");
        let rows: Vec<Vec<&str>> = source
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `"))
            .map(|row| row.trim_end_matches(" |").split(" | ").collect())
            .collect();
        let mut published: Vec<(&str, Kind, &str)> =
            all_figures().iter().map(|f| (f.metric, f.kind, f.help)).collect();
        published.extend(OTHER_GAUGES.iter().map(|g| (g.metric, Kind::Gauge, g.help)));
        assert_eq!(rows.len(), published.len(), "one row per metric");
        for (row, (metric, kind, help)) in rows.iter().zip(&published) {
            assert_eq!(row[0], format!("{metric}`"), "table order");
            assert_eq!(row[1], if *kind == Kind::Counter { "counter" } else { "gauge" }, "{metric}");
            match unit_of(metric) {
                Unit::Bytes => assert_eq!(row[2], "bytes", "{metric}"),
                Unit::Seconds => assert_eq!(row[2], "seconds", "{metric}"),
                _ => assert!(!["bytes", "seconds"].contains(&row[2]), "{metric}: the name ends in its unit"),
            }
            assert_eq!(row[3], *help, "{metric}: the table says what the recorder is told");
        }
        let names: HashSet<&str> = published.iter().map(|p| p.0).collect();
        assert_eq!(names.len(), published.len(), "names are unique");
        for (metric, kind, _) in &published {
            assert!(metric.starts_with("dotray_"), "{metric}");
            assert_eq!(
                metric.ends_with("_total"),
                *kind == Kind::Counter,
                "{metric}: `_total` is for counters"
            );
        }
    }

    fn peer(seed: u8) -> PeerInfo {
        let id: NodeId = SecretKey::from_bytes([seed; 32]).node_id();
        PeerInfo::new(id, "127.0.0.1:1".parse().expect("address"))
    }

    fn info(seed: u8, state: NodeState, rtt_ms: Option<u64>) -> NodeInfo {
        NodeInfo {
            peer: peer(seed),
            state,
            rtt: rtt_ms.map(Duration::from_millis),
            last_seen_ago: None,
            direction: None,
        }
    }

    /// The lines of `text` for `metric` (with any labels), as (labels, value).
    fn values<'a>(text: &'a str, metric: &str) -> Vec<(&'a str, &'a str)> {
        text.lines()
            .filter(|line| line.starts_with(metric) && line[metric.len()..].starts_with('{'))
            .filter_map(|line| line[metric.len()..].split_once(' '))
            .collect()
    }

    #[test]
    fn a_sample_publishes_counters_gauges_and_summaries_under_the_node_label() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let mut router = Counters::default();
        router.delivered = 12;
        router.payload_bytes_received = 3_000;
        let sample = Sample {
            router,
            driver: DriverCounters { messages_delivered: 11, sends_refused: 2, ..Default::default() },
            transport: stats(),
            nodes: vec![
                info(1, NodeState::Active, Some(30)),
                info(2, NodeState::Active, Some(10)),
                info(3, NodeState::Suspect, Some(50)),
                info(4, NodeState::Suspect, Some(20)),
                info(5, NodeState::Active, None),
                info(6, NodeState::Passive, Some(1)),
                info(7, NodeState::Down, None),
            ],
            topology: Topology { eager: vec![peer(1).id, peer(2).id], lazy: vec![peer(3).id] },
            delivery_queue: 7,
            event_queue: 0,
        };
        let labels = [Label::new("node", "0123abcd")];
        ::metrics::with_local_recorder(&recorder, || sample.publish(&labels));
        let text = handle.render();

        let node = r#"{node="0123abcd"}"#;
        assert_eq!(values(&text, "dotray_messages_delivered_total"), [(node, "11")]);
        assert_eq!(values(&text, "dotray_payloads_delivered_total"), [(node, "12")]);
        assert_eq!(values(&text, "dotray_payload_received_bytes_total"), [(node, "3000")]);
        assert_eq!(values(&text, "dotray_sends_refused_total"), [(node, "2")]);
        assert_eq!(values(&text, "dotray_connections"), [(node, "1")]);
        assert_eq!(values(&text, "dotray_handshake_events_dropped_total"), [(node, "12")]);
        assert!(text.contains("# TYPE dotray_messages_delivered_total counter"), "{text}");
        assert!(text.contains("# TYPE dotray_connections gauge"), "{text}");
        assert!(
            text.contains(
                "# HELP dotray_messages_delivered_total Messages handed to the application (a large message counts once)."
            ),
            "{text}"
        );
        let mut known = values(&text, "dotray_known_nodes");
        known.sort();
        assert_eq!(
            known,
            [
                (r#"{node="0123abcd",state="active"}"#, "3"),
                (r#"{node="0123abcd",state="down"}"#, "1"),
                (r#"{node="0123abcd",state="passive"}"#, "1"),
                (r#"{node="0123abcd",state="suspect"}"#, "2"),
            ]
        );
        // Neighbours' times only (not the passive node's 1 ms); the median of four is the mean of the
        // middle two.
        assert_eq!(values(&text, "dotray_neighbour_rtt_min_seconds"), [(node, "0.01")]);
        assert_eq!(values(&text, "dotray_neighbour_rtt_median_seconds"), [(node, "0.025")]);
        assert_eq!(values(&text, "dotray_neighbour_rtt_max_seconds"), [(node, "0.05")]);
        assert_eq!(values(&text, "dotray_eager_links"), [(node, "2")]);
        assert_eq!(values(&text, "dotray_lazy_links"), [(node, "1")]);
        assert_eq!(values(&text, "dotray_delivery_queue_depth"), [(node, "7")]);
        assert_eq!(values(&text, "dotray_event_queue_depth"), [(node, "0")]);
    }

    #[test]
    fn round_trip_times_are_nan_without_a_measured_neighbour() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let sample = Sample {
            router: Counters::default(),
            driver: DriverCounters::default(),
            transport: stats(),
            nodes: vec![info(1, NodeState::Passive, Some(5))],
            topology: Topology::default(),
            delivery_queue: 0,
            event_queue: 0,
        };
        ::metrics::with_local_recorder(&recorder, || sample.publish(&[Label::new("node", "n")]));
        let text = recorder.handle().render();
        for metric in ["dotray_neighbour_rtt_min_seconds", "dotray_neighbour_rtt_median_seconds"] {
            assert_eq!(values(&text, metric), [(r#"{node="n"}"#, "NaN")], "{text}");
        }
    }
}
