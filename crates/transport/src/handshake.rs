//! The connection handshake: each side sends `Hello`, then checks the other's.
//!
//! The dialer sends its `Hello` at once. The acceptor reads the dialer's `Hello` first and answers with
//! its own, except to a banned node id: that one gets only `Goodbye(Banned)`, so a banned dialer sees
//! a refused handshake (a typed error, and a failed dial to back off from) rather than a connection
//! that closes at once. Waiting costs the acceptor nothing: the dialer's `Hello` leaves as its TCP
//! connect completes, about when the acceptor's `accept` returns.
//!
//! Checks, in order: the first frame is a `Hello` (a `Goodbye` instead means we were refused); same
//! network id; a protocol version we speak; a 16-byte node id; a nonce that is not ours (else we dialed
//! ourselves); a parseable listen address; a node id that is not banned. A failed check is answered with
//! a goodbye that names the reason, so the other side gets a typed error too, and the connection is
//! closed.

use std::net::SocketAddr;

use bytes::Bytes;
use dotray_codec::proto::{Body, BodyKind, Goodbye, GoodbyeReason, Hello};
use dotray_codec::{FrameCodec, NodeId, PROTOCOL_VERSION, encode_frame};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;

use crate::HandshakeError;

/// What this node says in its `Hello`, prepared once.
#[derive(Debug)]
pub(crate) struct LocalHello {
    pub(crate) id: NodeId,
    pub(crate) nonce: u64,
    pub(crate) network_id: String,
    /// The encoded `Hello` frame.
    pub(crate) frame: Bytes,
}

impl LocalHello {
    pub(crate) fn new(id: NodeId, nonce: u64, network_id: String, listen_addr: Option<SocketAddr>) -> Self {
        let hello = Hello {
            network_id: network_id.clone(),
            protocol_version: PROTOCOL_VERSION,
            node_id: id.to_bytes(),
            listen_addr: listen_addr.map(|a| a.to_string()).unwrap_or_default(),
            nonce,
        };
        // A Hello is a few dozen bytes: far below any frame limit.
        let frame = encode_frame(&hello.into(), usize::MAX).unwrap_or_default();
        Self { id, nonce, network_id, frame }
    }
}

/// What we learned from the peer's `Hello`.
#[derive(Debug, Clone)]
pub(crate) struct PeerHello {
    pub(crate) id: NodeId,
    pub(crate) listen_addr: Option<SocketAddr>,
    pub(crate) nonce: u64,
}

/// Runs the handshake on a fresh connection. The caller bounds it with the handshake timeout.
///
/// `refuse` is asked about a peer whose `Hello` passed every other check; it returns the error that
/// refuses it (a ban), if any.
pub(crate) async fn handshake(
    reader: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    writer: &mut OwnedWriteHalf,
    local: &LocalHello,
    remote: SocketAddr,
    inbound: bool,
    refuse: impl FnOnce(&PeerHello) -> Option<HandshakeError>,
) -> Result<PeerHello, HandshakeError> {
    // A dialer sends its hello at once. A write error means the peer is gone; reading will tell us how.
    if !inbound {
        let _ = writer.write_all(&local.frame).await;
    }
    let result = read_hello(reader, local, remote).await.and_then(|peer| match refuse(&peer) {
        Some(error) => Err(error),
        None => Ok(peer),
    });
    // An acceptor answers every dialer with its hello (so a dialer on another network or version
    // learns why from it), except a banned one.
    if inbound && !matches!(result, Err(HandshakeError::Banned { .. })) {
        let _ = writer.write_all(&local.frame).await;
    }
    result
}

/// Reads the peer's first frame and checks that it is an acceptable `Hello`.
async fn read_hello(
    reader: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    local: &LocalHello,
    remote: SocketAddr,
) -> Result<PeerHello, HandshakeError> {
    let envelope = match reader.next().await {
        None => return Err(HandshakeError::Closed),
        Some(Err(e)) => return Err(HandshakeError::Codec(e)),
        Some(Ok(envelope)) => envelope,
    };
    match envelope.body {
        Some(Body::Hello(hello)) => check_hello(hello, local, remote),
        Some(Body::Goodbye(Goodbye { reason, detail })) => Err(HandshakeError::Refused {
            reason: GoodbyeReason::try_from(reason).unwrap_or(GoodbyeReason::Unspecified),
            detail,
        }),
        Some(other) => Err(HandshakeError::UnexpectedFrame(BodyKind::of(&other).name())),
        None => Err(HandshakeError::UnexpectedFrame("an empty envelope")),
    }
}

fn check_hello(hello: Hello, local: &LocalHello, remote: SocketAddr) -> Result<PeerHello, HandshakeError> {
    if hello.network_id != local.network_id {
        return Err(HandshakeError::NetworkMismatch {
            ours: local.network_id.clone(),
            theirs: hello.network_id.chars().take(64).collect(),
        });
    }
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(HandshakeError::VersionUnsupported {
            ours: PROTOCOL_VERSION,
            theirs: hello.protocol_version,
        });
    }
    let id =
        NodeId::from_slice(&hello.node_id).ok_or(HandshakeError::InvalidHello("node id is not 16 bytes"))?;
    if hello.nonce == local.nonce {
        return Err(HandshakeError::SelfConnection);
    }
    let listen_addr = if hello.listen_addr.is_empty() {
        None
    } else {
        let mut addr: SocketAddr = hello
            .listen_addr
            .parse()
            .map_err(|_| HandshakeError::InvalidHello("listen address is not ip:port"))?;
        if addr.ip().is_unspecified() {
            // "0.0.0.0:port": reachable at the ip it connected from.
            addr.set_ip(remote.ip());
        }
        if addr.port() == 0 {
            return Err(HandshakeError::InvalidHello("listen address has port 0"));
        }
        Some(addr)
    };
    Ok(PeerHello { id, listen_addr, nonce: hello.nonce })
}

/// The goodbye reason that answers a failed handshake, if one should be sent.
pub(crate) fn goodbye_for(error: &HandshakeError) -> Option<GoodbyeReason> {
    match error {
        HandshakeError::Timeout => Some(GoodbyeReason::Timeout),
        HandshakeError::NetworkMismatch { .. } => Some(GoodbyeReason::NetworkMismatch),
        HandshakeError::VersionUnsupported { .. } => Some(GoodbyeReason::VersionUnsupported),
        HandshakeError::SelfConnection => Some(GoodbyeReason::SelfConnection),
        HandshakeError::Banned { .. } => Some(GoodbyeReason::Banned),
        HandshakeError::InvalidHello(_) | HandshakeError::UnexpectedFrame(_) | HandshakeError::Codec(_) => {
            Some(GoodbyeReason::ProtocolViolation)
        }
        HandshakeError::Refused { .. } | HandshakeError::Closed => None,
    }
}

/// An encoded goodbye frame.
pub(crate) fn goodbye_frame(reason: GoodbyeReason, detail: &str) -> Bytes {
    let goodbye = Goodbye { reason: reason as i32, detail: detail.chars().take(200).collect() };
    encode_frame(&goodbye.into(), usize::MAX).unwrap_or_default()
}
