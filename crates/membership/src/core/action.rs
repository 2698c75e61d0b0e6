//! What the core asks its driver to do ([`Action`]), what it tells the layers above ([`Event`]), and
//! why a connection closed, as the driver reports it ([`LinkEnd`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dotray_codec::NodeId;

use super::message::{Message, NodeInfo, PeerInfo};
use super::timer::Timer;

/// One effect the driver must carry out, pulled with [`crate::core::Membership::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to this address. The driver answers with `handle_connected` (the node id is
    /// learned there) or `handle_dial_failed`.
    Dial {
        /// Where.
        addr: SocketAddr,
        /// The node id learned with the address (peer exchange, a join, a node query), if any. The
        /// connection must prove it: otherwise the dial fails (the address has changed hands, or
        /// someone advertised it falsely).
        node: Option<NodeId>,
    },
    /// Send a message over the open connection to `to`. Dropped silently if it closed meanwhile.
    Send {
        /// The receiving peer.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Close the connection to `peer`, after the messages already queued for it, telling it why.
    /// The driver still reports `handle_disconnected(peer, Local)` when it is closed.
    Disconnect {
        /// The peer.
        peer: NodeId,
        /// The reason told to the peer in its goodbye.
        reason: CloseReason,
    },
    /// Call `handle_timer(timer)` at `at` (or as soon as possible after).
    SetTimer {
        /// When.
        at: Instant,
        /// What to hand back.
        timer: Timer,
    },
    /// Tell the layers above.
    Event(Event),
}

/// What the membership layer tells the router and the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `peer` joined the active view: broadcast over its connection from now on.
    NeighbourUp(PeerInfo),
    /// `peer` left the active view (failed, left, or replaced). Its connection is closed or closing.
    NeighbourDown(NodeId),
    /// A new smoothed round-trip time to an active peer.
    RttUpdated {
        /// The peer.
        peer: NodeId,
        /// Its smoothed round-trip time.
        rtt: Duration,
    },
    /// Answer to [`crate::core::Membership::query_node`].
    QueryResponse {
        /// The id `query_node` returned.
        request_id: u64,
        /// The node that answered.
        peer: NodeId,
        /// What it knows (already bounded by [`crate::core::Config::max_query_nodes`]).
        nodes: Vec<NodeInfo>,
    },
    /// A [`crate::core::Membership::query_node`] got no answer (the peer was unreachable, closed the
    /// connection, or did not answer in time).
    QueryFailed {
        /// The id `query_node` returned.
        request_id: u64,
        /// The node asked.
        peer: NodeId,
    },
}

/// Why the core closes a connection; becomes the goodbye reason on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// HyParView DISCONNECT: dropped from the active view, but this node stays alive.
    Replaced,
    /// This node is leaving the network.
    Shutdown,
    /// The peer broke the protocol.
    ProtocolViolation,
    /// The peer stopped answering pings, or a transient connection outlived its use.
    Timeout,
    /// This node is at its connection limit.
    TooManyConnections,
    /// A transient connection (join, exchange, query) did its job.
    Done,
}

impl CloseReason {
    /// Why the peer sees the connection close, once it reads this node's goodbye.
    pub fn seen_by_peer(self) -> LinkEnd {
        match self {
            Self::Shutdown => LinkEnd::PeerLeft,
            Self::Replaced => LinkEnd::PeerReplaced,
            Self::TooManyConnections => LinkEnd::PeerBusy,
            _ => LinkEnd::PeerClosed,
        }
    }
}

/// Why a connection closed, as the driver reports it in `handle_disconnected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkEnd {
    /// This node closed it ([`Action::Disconnect`]) or is shutting down.
    Local,
    /// The peer said goodbye with `Shutdown`: it leaves the network. Forget it.
    PeerLeft,
    /// The peer said goodbye with `Replaced`: it dropped us from its active view but is alive. Keep it
    /// as a backup.
    PeerReplaced,
    /// The peer said goodbye for a reason not listed here (a transient connection it no longer
    /// needs, ...). It is alive.
    PeerClosed,
    /// The peer said goodbye with `TooManyConnections`: it is alive but had no room for us. A seed
    /// that says so has not let us in yet: it is dialed again after a back-off.
    PeerBusy,
    /// The connection broke without a goodbye (reset, timeout, I/O error): the peer may be dead.
    Failed,
}
