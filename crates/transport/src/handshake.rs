//! The connection handshake: both sides send `Hello` at once, then each checks the other's.
//!
//! Checks, in order: the first frame is a `Hello` (a `Goodbye` instead means we were refused); same
//! network id; a protocol version we speak; a 16-byte node id; a nonce that is not ours (else we dialed
//! ourselves); a parseable listen address. A failed check is answered with a goodbye that names the
//! reason, so the other side gets a typed error too, and the connection is closed.

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
pub(crate) async fn handshake(
    reader: &mut FramedRead<OwnedReadHalf, FrameCodec>,
    writer: &mut OwnedWriteHalf,
    local: &LocalHello,
    remote: SocketAddr,
) -> Result<PeerHello, HandshakeError> {
    // Send ours first: both sides do, so neither waits for the other. A write error means the peer is
    // gone; reading will tell us how.
    let _ = writer.write_all(&local.frame).await;
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
