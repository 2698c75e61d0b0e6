//! [`TransportEvent`]: what the transport tells the layer above, in order.
//!
//! Ordering guarantee: for each peer, `Connected` and `Disconnected` strictly alternate, and every
//! `Frames` event from a peer arrives between its `Connected` and `Disconnected`. When a new connection to a
//! node replaces an old one, the old one's `Disconnected` is emitted before the new one's `Connected`.
//! One exception, at [`crate::Transport::shutdown`]: a `Disconnected` that finds the channel full is
//! dropped (counted in [`crate::TransportStats::events_dropped_at_shutdown`]) rather than holding
//! shutdown; nothing follows it for that peer, since the transport is stopping.

use std::net::SocketAddr;

use dotray_codec::proto::Envelope;
use dotray_codec::{Direction, NodeId};

use crate::{DialError, DisconnectReason, HandshakeError, PeerSender};

/// A connection that completed its handshake.
#[derive(Debug, Clone)]
pub struct ConnectedPeer {
    /// The peer's node id.
    pub id: NodeId,
    /// The address the peer accepts connections on, from its `Hello` (an unspecified ip replaced by the
    /// ip it connected from). `None` when the peer does not listen.
    pub listen_addr: Option<SocketAddr>,
    /// The socket's remote address.
    pub remote_addr: SocketAddr,
    /// The socket's local address.
    pub local_addr: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// The address this node dialed, for an outbound connection (it may differ from the peer's
    /// advertised listen address); `None` for an inbound one.
    pub dialed: Option<SocketAddr>,
    /// Queue frames to the peer through this; cheap to clone, no locks.
    pub sender: PeerSender,
}

/// An event from the transport to the layer above.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A connection completed its handshake and is the one kept for this peer.
    Connected(ConnectedPeer),
    /// The connection to `peer` closed.
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: DisconnectReason,
    },
    /// Frames arrived from `peer`, in the order it sent them: all that one socket read completed, so
    /// the cost of an event is shared by a batch under load. Never empty; never a `Hello`, `Goodbye` or
    /// `Handshake`: the transport handles those.
    Frames {
        /// The sender.
        peer: NodeId,
        /// The decoded frames, oldest first.
        frames: Vec<Envelope>,
    },
    /// A [`crate::Transport::dial`] failed.
    DialFailed {
        /// The address dialed.
        addr: SocketAddr,
        /// Why.
        error: DialError,
    },
    /// A peer that dialed us failed the handshake (wrong network, version, garbage, silence, ...).
    /// Informational, and reported only if the event channel has room at that moment: a flood of bad
    /// connections must not hold sockets waiting for the layer above. What is not reported is counted in
    /// [`crate::TransportStats::handshake_events_dropped`].
    HandshakeFailed {
        /// The remote socket address.
        remote: SocketAddr,
        /// Why.
        error: HandshakeError,
    },
}
