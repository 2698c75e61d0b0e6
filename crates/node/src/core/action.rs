//! What goes into the node core ([`PeerMessage`], [`Timer`]) and what comes out ([`Action`], with the
//! application's [`Event`]s and [`QueryAnswer`]s).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_membership::core::{CloseReason, NodeInfo};
use dotray_router::core::{Delivery, Recipients, StreamId};

/// A message between two connected nodes, by the core it is for. The driver decodes frames into
/// these (validating them) and encodes these into frames; the simulator passes them as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMessage {
    /// For the membership core: joins, neighbour requests, pings, peer exchange, node queries.
    Membership(dotray_membership::core::Message),
    /// For the router core: payloads, digests, grafts, prunes, acks, syncs.
    Broadcast(dotray_router::core::Message),
    /// An application message for this node only (`Node::send_to`).
    Direct(Bytes),
}

impl PeerMessage {
    /// A short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Membership(m) => m.name(),
            Self::Broadcast(m) => m.name(),
            Self::Direct(_) => "direct",
        }
    }
}

/// A timer of either core. Handed back through [`crate::core::NodeCore::handle_timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A membership timer (pings, exchanges, healing, sweeps).
    Membership(dotray_membership::core::Timer),
    /// A router timer (digest batches, acks, grafts, gaps, sweeps).
    Router(dotray_router::core::Timer),
}

/// One effect for the driver, pulled with [`crate::core::NodeCore::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `addr`; answer with `handle_connected` or `handle_dial_failed`. With a
    /// `node`, the connection counts only if the peer proves that node id (else the dial failed).
    Dial {
        /// Where.
        addr: SocketAddr,
        /// The node id learned with the address, if any.
        node: Option<NodeId>,
    },
    /// Send `message` to each connected peer in `to` (never empty). Dropped for a peer whose
    /// connection is gone.
    Send {
        /// The peers.
        to: Recipients,
        /// The message, the same for each of them.
        message: PeerMessage,
    },
    /// Close the connection to `peer` after what is queued for it, telling it `reason`. The driver
    /// still reports `handle_disconnected` when it is closed.
    Disconnect {
        /// The peer.
        peer: NodeId,
        /// Why, as told to the peer.
        reason: CloseReason,
    },
    /// `peer` broke the broadcast protocol: close its connection at once, and refuse it for a while.
    Violation {
        /// The offending peer.
        peer: NodeId,
        /// What it did.
        reason: &'static str,
    },
    /// Call `handle_timer(timer)` at `at` (or as soon as possible after).
    SetTimer {
        /// When.
        at: Instant,
        /// What to hand back.
        timer: Timer,
    },
    /// A broadcast message for the application: exactly once, in per-origin order.
    Deliver(Delivery),
    /// Something else for the application.
    Event(Event),
    /// This node's own messages up to `through` were just signed, and their sends follow this action.
    /// A driver that keeps the node's stream across restarts (a data directory) stores the position
    /// durably before it carries out anything after it, so a restart continues after `through`
    /// ([`crate::core::NodeCore::continue_stream`]) and never sends a number twice.
    Sealed {
        /// The node's own stream.
        stream: StreamId,
        /// The last sequence number signed.
        through: u64,
        /// The batch's manifest; a driver that stores it with the payloads can hand both back after
        /// a restart ([`crate::core::NodeCore::restore_own_batch`]).
        proof: std::sync::Arc<dotray_router::proof::Manifest>,
        /// The batch's payloads (pieces, for a large message), in order.
        payloads: Vec<Bytes>,
    },
    /// Another origin's payload (a piece, for a large message) was just delivered: a driver that
    /// keeps a history on disk stores it with its manifest (router `Config::history`).
    Archive {
        /// The stream.
        stream: StreamId,
        /// Its sequence number.
        seq: u64,
        /// The payload (piece).
        payload: Bytes,
        /// The manifest that proves it.
        proof: std::sync::Arc<dotray_router::proof::Manifest>,
    },
    /// Read `first..=last` of `stream` from the history on disk for neighbour `to` (at most about
    /// `max_bytes`), and answer with [`crate::core::NodeCore::handle_recalled`], also when nothing
    /// is found (router `Config::history`).
    Recall {
        /// The neighbour that asked.
        to: NodeId,
        /// The stream.
        stream: StreamId,
        /// First sequence number asked for.
        first: u64,
        /// Last sequence number asked for.
        last: u64,
        /// Bytes worth reading at most (the neighbour's repair budget left).
        max_bytes: u32,
    },
    /// The answer to the node query `request_id` (see `NodeCore::query_node`).
    QueryAnswered {
        /// The id `query_node` returned.
        request_id: u64,
        /// What the peer knows, or that it did not answer.
        answer: QueryAnswer,
    },
}

/// What the application may want to know besides deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new neighbour: an active link of the overlay, over which broadcasts travel.
    NeighbourUp {
        /// Its node id.
        peer: NodeId,
        /// Its listen address.
        addr: SocketAddr,
    },
    /// A neighbour is gone (failed, left, or replaced by another).
    NeighbourDown {
        /// Its node id.
        peer: NodeId,
    },
    /// Messages `first..=last` of `stream` can no longer be obtained and will never be delivered;
    /// delivery goes on after them.
    Gap {
        /// The stream.
        stream: StreamId,
        /// First missing sequence number.
        first: u64,
        /// Last missing sequence number.
        last: u64,
    },
    /// A node this one dialed refused it for a reason that retrying will not cure: the two are not
    /// on the same network, or the other banned this one. Membership backs off from the address
    /// as from any failed dial.
    Refused {
        /// The address dialed.
        addr: SocketAddr,
        /// Why.
        reason: Refusal,
    },
    /// The node's data directory could not be written (a full disk, a failing device): the node
    /// stopped before sending anything whose position it could not record.
    DataDirFailed {
        /// What the store reported.
        error: String,
    },
    /// The node's history (in its data directory) could not be written: the node goes on, and
    /// stores no more messages in it until it restarts.
    HistoryFailed {
        /// What the store reported.
        error: String,
    },
    /// A direct (not broadcast) message from a connected node.
    Direct {
        /// The sender.
        from: NodeId,
        /// The application bytes.
        payload: Bytes,
    },
}

/// Why a node refused this one's connection (see [`Event::Refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The other node is on another network (its network id differs).
    Network,
    /// The other node speaks another protocol version.
    Version,
    /// The other node's handshake reply did not decrypt: it has another network key, or has one
    /// where this node has none, or the reverse. (A node of a private network drops a stranger's
    /// first handshake message without a word, so most such dials end as closed connections, not
    /// as this refusal: a private network does not reveal itself.)
    NetworkKey,
    /// The other node has banned this one for a while, after protocol violations it saw.
    Banned,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Network => "another network id",
            Self::Version => "another protocol version",
            Self::NetworkKey => "another network key",
            Self::Banned => "banned this node",
        })
    }
}

/// How a node query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// What the peer knows (already cut to the configured bound).
    Nodes(Vec<NodeInfo>),
    /// The peer was unreachable, closed the connection, or did not answer in time.
    NoAnswer,
}
