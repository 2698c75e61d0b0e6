//! Typed errors of the transport: starting, dialing, handshaking, sending, and why connections close.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use dotray_codec::proto::GoodbyeReason;
use dotray_codec::{CodecError, NodeId};

/// Starting the transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] crate::InvalidConfig),
    /// `snow` could not make this transport's static key: its resolver has no X25519 or no random
    /// generator for the protocol dotray names. Happens at start, never per connection.
    #[error("cannot set up the Noise handshake: {0}")]
    Noise(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the operating system refused.
        source: io::Error,
    },
}

/// Why a handshake failed. Reported on both sides: to the dialer as [`DialError::Handshake`], to the
/// acceptor as [`crate::TransportEvent::HandshakeFailed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The handshake did not finish within [`crate::Config::handshake_timeout`].
    #[error("no handshake within the timeout")]
    Timeout,
    /// A Noise handshake message or the first sealed chunk could not be read: the peer has another
    /// network key (or none where we have one), does not speak dotray 2, or the bytes were altered on
    /// the way. Nothing is said to such a peer.
    #[error("noise handshake failed: {0}")]
    Noise(String),
    /// The peer completed Noise but did not prove a node id: its identity proof is malformed, or its
    /// signature is not by the node id it names over the key it used.
    #[error("the peer did not prove its node id: {0}")]
    InvalidProof(&'static str),
    /// A dial that expected a certain node id reached another one (proven). The address now belongs
    /// to a different node, or someone tried to pass for the one we meant.
    #[error("expected node {expected:?}, reached node {proven:?}")]
    UnexpectedPeer {
        /// The node id the dial asked for.
        expected: NodeId,
        /// The node id the peer proved.
        proven: NodeId,
    },
    /// The peer belongs to another network.
    #[error("peer is on network {theirs:?}, we are on {ours:?}")]
    NetworkMismatch {
        /// Our network id.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// The peer speaks a protocol version we do not (a version-1 node opens with a plaintext `Hello`).
    #[error("peer speaks protocol version {theirs}, we speak {ours}")]
    VersionUnsupported {
        /// Our version.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The connection leads back to this very node (same nonce).
    #[error("connected to ourselves")]
    SelfConnection,
    /// The peer's `Hello` has an invalid field (its listen address), or does not fit in a handshake.
    #[error("invalid hello: {0}")]
    InvalidHello(&'static str),
    /// A frame other than the one the handshake expects (a Noise message, then a `Hello`).
    #[error("unexpected {0} during the handshake")]
    UnexpectedFrame(&'static str),
    /// The peer refused us with a goodbye (network mismatch, too many connections, ...).
    #[error("refused by peer: {reason:?} {detail:?}")]
    Refused {
        /// The peer's reason.
        reason: GoodbyeReason,
        /// The peer's detail text.
        detail: String,
    },
    /// The peer's node id is banned here for an earlier protocol violation (see
    /// [`crate::Transport::bans`]); it was refused with `Goodbye(Banned)`. The banned side sees
    /// [`HandshakeError::Refused`] with [`GoodbyeReason::Banned`].
    #[error("peer {peer:?} is banned for another {remaining:?} (offence {offences}: {reason})")]
    Banned {
        /// The banned node.
        peer: NodeId,
        /// Time left until it is admitted again.
        remaining: Duration,
        /// Its offences so far.
        offences: u32,
        /// How it broke the protocol, the last time.
        reason: String,
    },
    /// The peer closed the connection during the handshake.
    #[error("connection closed during the handshake")]
    Closed,
    /// The peer sent bytes that are not a valid frame.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Dialing a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// TCP connect did not finish within [`crate::Config::connect_timeout`].
    #[error("connect timed out")]
    ConnectTimeout,
    /// The connection was made but the handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// [`crate::Config::max_outbound`] dials or connections are already under way.
    #[error("too many outbound connections")]
    TooManyOutbound,
    /// A connection to that node already exists and was kept instead.
    #[error("already connected to {0:?}")]
    AlreadyConnected(NodeId),
    /// The transport is shutting down.
    #[error("the transport is shut down")]
    Shutdown,
}

/// Queuing a frame for a peer failed. The frame was not queued; the caller decides what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The peer's outbound queue is full ([`crate::Config::max_queue_bytes`]): the peer reads slower
    /// than we write. Try again later, send elsewhere, or drop the peer.
    #[error("the peer's outbound queue is full")]
    QueueFull,
    /// The connection is closed or closing.
    #[error("the connection is closed")]
    Closed,
    /// The frame is larger than the frame limit or than the queue can ever hold.
    #[error("frame larger than the frame limit or the outbound queue")]
    TooLarge,
    /// There is no connection to that node.
    #[error("not connected to that node")]
    NotConnected,
    /// Encoding the envelope failed (it is larger than the maximum frame length).
    #[error("envelope too large to encode")]
    Encode,
}

/// Why a connection closed, as reported by [`crate::TransportEvent::Disconnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// This node closed it (a disconnect command), telling the peer `reason`.
    Local(GoodbyeReason),
    /// The peer said goodbye first.
    Goodbye {
        /// The peer's reason.
        reason: GoodbyeReason,
        /// The peer's detail text.
        detail: String,
    },
    /// The peer closed the socket without a goodbye (crash, kill, network loss).
    Closed,
    /// No frame arrived within [`crate::Config::idle_timeout`].
    IdleTimeout,
    /// A write made no progress within [`crate::Config::write_timeout`].
    WriteTimeout,
    /// The peer broke the protocol; the text says how (also logged). Detected by the transport or
    /// reported by a layer above ([`crate::PeerSender::close_for_violation`]); the peer is banned.
    ProtocolViolation(String),
    /// A sealed chunk failed authentication: altered, replayed, reordered or cut on the way, or a
    /// broken peer. The stream cannot be trusted, so it is closed, without a goodbye and without a
    /// ban: anyone on the path between two honest nodes can cause this.
    Unauthentic,
    /// A socket error.
    Io(io::ErrorKind),
    /// Another connection to the same node replaced this one.
    Replaced,
    /// The transport is shutting down.
    Shutdown,
}

impl DisconnectReason {
    /// True when the peer left on purpose and will not be back soon (it said goodbye with
    /// `Shutdown`). The membership layer forgets such peers instead of retrying them.
    pub fn peer_left(&self) -> bool {
        matches!(self, Self::Goodbye { reason: GoodbyeReason::Shutdown, .. })
    }
}
