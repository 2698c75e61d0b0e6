//! The typed messages the membership core sends and receives, and the records they carry.
//!
//! These mirror the membership bodies of `proto/dotray/v1/membership.proto` one to one, but with
//! validated Rust types (a [`NodeId`], a [`SocketAddr`]) instead of raw bytes and strings. The
//! [`crate::wire`] module converts between the two and rejects what does not validate.

use std::net::SocketAddr;
use std::time::Duration;

use dotray_codec::{Direction, NodeId};

/// A node as other nodes know it: its id and the address it accepts connections on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerInfo {
    /// The node's id.
    pub id: NodeId,
    /// The node's advertised listen address.
    pub addr: SocketAddr,
}

impl PeerInfo {
    /// A peer record.
    pub fn new(id: NodeId, addr: SocketAddr) -> Self {
        Self { id, addr }
    }
}

/// One membership message, as exchanged between two connected nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A new node asks its contact to be admitted (HyParView JOIN).
    Join,
    /// A random walk carrying a joining node through the overlay (HyParView FORWARDJOIN).
    ForwardJoin {
        /// The joining node.
        node: PeerInfo,
        /// Hops left.
        ttl: u32,
    },
    /// Request to become active neighbours over this connection (HyParView NEIGHBOR).
    Neighbour {
        /// The sender has no active neighbour at all: the receiver must accept.
        high_priority: bool,
    },
    /// Answer to [`Message::Neighbour`].
    NeighbourReply {
        /// True when the link is now active on both sides.
        accepted: bool,
    },
    /// Peer exchange request: a random walk carrying a sample of the origin's views (HyParView SHUFFLE).
    PeerExchangeRequest {
        /// The node that started the exchange.
        origin: PeerInfo,
        /// Hops left.
        ttl: u32,
        /// Sample of the origin's views.
        peers: Vec<PeerInfo>,
        /// Chosen by the origin; echoed in the response.
        exchange_id: u64,
    },
    /// Answer to a peer exchange, sent to its origin (HyParView SHUFFLEREPLY).
    PeerExchangeResponse {
        /// Sample of the responder's passive view.
        peers: Vec<PeerInfo>,
        /// The request's id.
        exchange_id: u64,
    },
    /// Liveness probe; answered with [`Message::Pong`] echoing both fields.
    Ping {
        /// Random number the pong echoes.
        nonce: u64,
        /// Sender's clock in microseconds since an origin of its choosing.
        sent_at_micros: u64,
    },
    /// Answer to [`Message::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// The ping's `sent_at_micros`.
        sent_at_micros: u64,
    },
    /// Ask a node which nodes it knows.
    NodeQueryRequest {
        /// Chosen by the asker; echoed in the response.
        request_id: u64,
        /// Most entries wanted.
        max: u32,
    },
    /// Answer to [`Message::NodeQueryRequest`].
    NodeQueryResponse {
        /// The request's id.
        request_id: u64,
        /// What the responder knows, active neighbours first.
        nodes: Vec<NodeInfo>,
    },
}

impl Message {
    /// A short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::ForwardJoin { .. } => "forward_join",
            Self::Neighbour { .. } => "neighbour",
            Self::NeighbourReply { .. } => "neighbour_reply",
            Self::PeerExchangeRequest { .. } => "peer_exchange_request",
            Self::PeerExchangeResponse { .. } => "peer_exchange_response",
            Self::Ping { .. } => "ping",
            Self::Pong { .. } => "pong",
            Self::NodeQueryRequest { .. } => "node_query_request",
            Self::NodeQueryResponse { .. } => "node_query_response",
        }
    }
}

/// Standing of a node in a membership view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Connected, in the active view, answering pings.
    Active,
    /// Known address kept as a backup (passive view).
    Passive,
    /// In the active view but missing pongs: may be dead or hung.
    Suspect,
    /// Declared dead (missed pongs or broken connection); kept in the passive view to retry with backoff.
    Down,
}

/// What one node knows about another: the answer to [`crate::core::Membership::nodes`] and the entries
/// of [`Message::NodeQueryResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node described.
    pub peer: PeerInfo,
    /// Its standing in the describer's views.
    pub state: NodeState,
    /// Smoothed round-trip time, when measured.
    pub rtt: Option<Duration>,
    /// Time since the describer last heard from it, when ever.
    pub last_seen_ago: Option<Duration>,
    /// Who opened the connection, for connected nodes.
    pub direction: Option<Direction>,
}
