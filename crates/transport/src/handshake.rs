//! The connection handshake: three Noise messages, then each side's `Hello` inside the new channel.
//!
//! ```text
//!   dialer                                           acceptor
//!     ── Handshake(message 1: ephemeral key) ──────────►   plaintext frames, at most 1 KiB each
//!     ◄── Handshake(message 2: acceptor's proof) ─────
//!     ── Handshake(message 3: dialer's proof), Hello ─►   Hello is the first sealed chunk
//!     ◄── Hello, or Goodbye(reason) ──────────────────    sealed
//! ```
//!
//! The proofs (see the `noise` module) bind each side's node id to the channel. A dial that expects a
//! certain node id gives up as soon as message 2 proves another. The acceptor reads the dialer's
//! `Hello` before answering, so it can refuse a banned node id with only a goodbye; every other dialer
//! gets the acceptor's `Hello` (one on another network or version learns why from it). Checks on a
//! `Hello`, in order: same network id; our protocol version; a nonce that is not ours (else we dialed
//! ourselves); a parseable listen address; a node id that is not banned.
//!
//! A failure is answered with a goodbye that names the reason (sealed once the channel is up), so the
//! other side gets a typed error too, except a failure of the Noise messages themselves: a party that
//! cannot complete them (wrong network key, not dotray, tampering) is told nothing. A version-1 peer,
//! whose first frame is a plaintext `Hello`, gets a plaintext Goodbye(VersionUnsupported). The whole
//! handshake must finish within `Config::handshake_timeout`; a peer that dribbles bytes does not
//! extend it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dotray_codec::proto::{Body, BodyKind, Envelope, Goodbye, GoodbyeReason, Handshake, Hello};
use dotray_codec::{FrameCodec, NodeId, PROTOCOL_VERSION, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::Decoder;

use crate::noise::{LocalIdentity, MAX_HANDSHAKE_FRAME_LEN, verify_proof};
use crate::sealed::{self, CHUNK_HEADER_LEN, Opener, SealedBytes, Sealer, TAG_LEN};
use crate::{Direction, HandshakeError};

/// Largest Noise handshake message (the longest, message 2, is about 150 bytes).
const MAX_NOISE_MESSAGE_LEN: usize = MAX_HANDSHAKE_FRAME_LEN;
/// Bytes asked of the socket per read during the handshake.
const HANDSHAKE_READ_LEN: usize = 2 * 1024;

/// What this node says in its `Hello`, prepared once.
#[derive(Debug)]
pub(crate) struct LocalHello {
    pub(crate) nonce: u64,
    pub(crate) network_id: String,
    /// The encoded `Hello` frame (sealed before it is sent).
    pub(crate) frame: Bytes,
}

impl LocalHello {
    pub(crate) fn new(nonce: u64, network_id: String, listen_addr: Option<SocketAddr>) -> Self {
        let hello = Hello {
            network_id: network_id.clone(),
            protocol_version: PROTOCOL_VERSION,
            listen_addr: listen_addr.map(|a| a.to_string()).unwrap_or_default(),
            nonce,
        };
        // A Hello is under a hundred bytes: far below any frame limit.
        let frame = encode_frame(&hello.into(), usize::MAX).unwrap_or_default();
        Self { nonce, network_id, frame }
    }
}

/// What we learned of the peer: its proven node id, and its `Hello`.
#[derive(Debug, Clone)]
pub(crate) struct PeerHello {
    pub(crate) id: NodeId,
    pub(crate) listen_addr: Option<SocketAddr>,
    pub(crate) nonce: u64,
}

/// A connection whose handshake succeeded: the peer, both halves of the channel, and what was read
/// past the peer's `Hello` (sealed chunks not yet opened; plaintext not yet decoded).
pub(crate) struct Established {
    pub(crate) peer: PeerHello,
    pub(crate) sealer: Sealer,
    pub(crate) opener: Opener,
    pub(crate) sealed: BytesMut,
    pub(crate) plain: BytesMut,
}

/// Who this node is in a handshake, and what it expects.
pub(crate) struct Local<'a> {
    pub(crate) hello: &'a LocalHello,
    pub(crate) identity: &'a LocalIdentity,
    pub(crate) direction: Direction,
    /// The node id a dial expects to reach, if it knows one.
    pub(crate) expected: Option<NodeId>,
    pub(crate) timeout: Duration,
}

/// Runs the handshake on a fresh connection, within `local.timeout`; says goodbye when it fails.
///
/// `refuse` is asked about a peer whose `Hello` passed every other check; it returns the error that
/// refuses it (a ban), if any.
pub(crate) async fn handshake(
    socket: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    local: Local<'_>,
    remote: SocketAddr,
    refuse: impl FnOnce(&PeerHello) -> Option<HandshakeError>,
) -> Result<Established, HandshakeError> {
    let mut io = HandshakeIo {
        socket,
        writer,
        buffer: BytesMut::with_capacity(HANDSHAKE_READ_LEN),
        plain: BytesMut::new(),
        codec: FrameCodec::with_max_frame_len(MAX_HANDSHAKE_FRAME_LEN),
        sealer: None,
    };
    let steps = async {
        match local.direction {
            Direction::Outbound => io.dial(&local, remote, refuse).await,
            Direction::Inbound => io.accept(&local, remote, refuse).await,
        }
    };
    let result = tokio::time::timeout(local.timeout, steps).await.unwrap_or(Err(HandshakeError::Timeout));
    match result {
        Ok((peer, opener)) => {
            let sealer = io.sealer.take().ok_or(HandshakeError::Noise("no channel".into()))?;
            Ok(Established { peer, sealer, opener, sealed: io.buffer, plain: io.plain })
        }
        Err(error) => {
            if let Some(reason) = goodbye_for(&error) {
                io.goodbye(reason, &error.to_string()).await;
            }
            Err(error)
        }
    }
}

/// The socket halves and buffers of a handshake in progress.
struct HandshakeIo<'a> {
    socket: &'a mut OwnedReadHalf,
    writer: &'a mut OwnedWriteHalf,
    /// Bytes read and not yet used: plaintext frames before the channel is up, sealed chunks after.
    buffer: BytesMut,
    /// Opened plaintext not yet decoded.
    plain: BytesMut,
    codec: FrameCodec,
    /// Set once the channel is up: later goodbyes are sealed.
    sealer: Option<Sealer>,
}

impl HandshakeIo<'_> {
    async fn dial(
        &mut self,
        local: &Local<'_>,
        remote: SocketAddr,
        refuse: impl FnOnce(&PeerHello) -> Option<HandshakeError>,
    ) -> Result<(PeerHello, Opener), HandshakeError> {
        let mut noise = local.identity.start(true).map_err(noise_error)?;
        let mut message = [0u8; MAX_NOISE_MESSAGE_LEN];
        let len = noise.write_message(&[], &mut message).map_err(noise_error)?;
        self.write(&handshake_frame(&message[..len])).await?;

        let reply = self.read_noise_message().await?;
        let mut payload = [0u8; MAX_NOISE_MESSAGE_LEN];
        let len = noise.read_message(&reply, &mut payload).map_err(noise_error)?;
        let id = verify_proof(&payload[..len], noise.get_remote_static())?;
        if let Some(expected) = local.expected.filter(|expected| *expected != id) {
            return Err(HandshakeError::UnexpectedPeer { expected, proven: id });
        }
        let len = noise.write_message(local.identity.proof(), &mut message).map_err(noise_error)?;
        let channel = noise.into_stateless_transport_mode().map_err(noise_error)?;
        let (mut sealer, opener) = sealed::split(channel);
        // Message 3 and our Hello go out in one write.
        let mut out = SealedBytes::default();
        out.put(&handshake_frame(&message[..len]));
        sealer.seal(&[&local.hello.frame], &mut out).map_err(noise_error)?;
        self.sealer = Some(sealer);
        self.write(out.as_slice()).await?;

        let mut opener = opener;
        let hello = self.read_sealed_hello(&mut opener).await?;
        let peer = check_hello(hello, id, local.hello, remote)?;
        refuse(&peer).map_or(Ok((peer, opener)), Err)
    }

    async fn accept(
        &mut self,
        local: &Local<'_>,
        remote: SocketAddr,
        refuse: impl FnOnce(&PeerHello) -> Option<HandshakeError>,
    ) -> Result<(PeerHello, Opener), HandshakeError> {
        let mut noise = local.identity.start(false).map_err(noise_error)?;
        let first = self.read_noise_message().await?;
        let mut payload = [0u8; MAX_NOISE_MESSAGE_LEN];
        noise.read_message(&first, &mut payload).map_err(noise_error)?;
        let mut message = [0u8; MAX_NOISE_MESSAGE_LEN];
        let len = noise.write_message(local.identity.proof(), &mut message).map_err(noise_error)?;
        self.write(&handshake_frame(&message[..len])).await?;

        let last = self.read_noise_message().await?;
        let len = noise.read_message(&last, &mut payload).map_err(noise_error)?;
        let proven = verify_proof(&payload[..len], noise.get_remote_static());
        // Noise is complete either way: a dialer whose proof failed gets its goodbye sealed, where it
        // now reads.
        let channel = noise.into_stateless_transport_mode().map_err(noise_error)?;
        let (sealer, mut opener) = sealed::split(channel);
        self.sealer = Some(sealer);
        let id = proven?;

        let hello = self.read_sealed_hello(&mut opener).await?;
        let peer = match check_hello(hello, id, local.hello, remote) {
            Ok(peer) => peer,
            Err(error) => {
                // Our hello first, so that a dialer on another network or version learns why from it.
                self.write_sealed(&local.hello.frame).await?;
                return Err(error);
            }
        };
        if let Some(error) = refuse(&peer) {
            return Err(error);
        }
        self.write_sealed(&local.hello.frame).await?;
        Ok((peer, opener))
    }

    /// Reads the next plaintext frame, which must carry a Noise handshake message.
    async fn read_noise_message(&mut self) -> Result<Bytes, HandshakeError> {
        let envelope = loop {
            if let Some(envelope) = self.codec.decode(&mut self.buffer)? {
                break envelope;
            }
            self.read_more().await?;
        };
        match envelope.body {
            Some(Body::Handshake(Handshake { noise })) => Ok(noise),
            // A version-1 node opens with a plaintext Hello.
            Some(Body::Hello(hello)) => Err(HandshakeError::VersionUnsupported {
                ours: PROTOCOL_VERSION,
                theirs: hello.protocol_version,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Opens sealed chunks until a whole frame is there, which must be a `Hello`.
    async fn read_sealed_hello(&mut self, opener: &mut Opener) -> Result<Hello, HandshakeError> {
        let envelope = loop {
            if let Some(envelope) = self.codec.decode(&mut self.plain)? {
                break envelope;
            }
            if sealed::declared_len(&self.buffer).is_some_and(|len| len > MAX_HANDSHAKE_FRAME_LEN + TAG_LEN) {
                return Err(HandshakeError::InvalidHello("a sealed chunk longer than a hello"));
            }
            let opened = opener
                .open_one(&mut self.buffer, &mut self.plain, &mut |plain, n| plain.reserve(n))
                .map_err(|_| HandshakeError::Noise("a sealed chunk failed authentication".into()))?;
            if opened.is_none() {
                self.read_more().await?;
            }
        };
        match envelope.body {
            Some(Body::Hello(hello)) => Ok(hello),
            other => Err(unexpected(other)),
        }
    }

    async fn read_more(&mut self) -> Result<(), HandshakeError> {
        self.buffer.reserve(HANDSHAKE_READ_LEN.max(sealed::chunk_rest(&self.buffer) + CHUNK_HEADER_LEN));
        match self.socket.read_buf(&mut self.buffer).await {
            Ok(0) => Err(HandshakeError::Closed),
            Ok(_) => Ok(()),
            Err(_) => Err(HandshakeError::Closed),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), HandshakeError> {
        self.writer.write_all(bytes).await.map_err(|_| HandshakeError::Closed)
    }

    async fn write_sealed(&mut self, frame: &[u8]) -> Result<(), HandshakeError> {
        let mut out = SealedBytes::default();
        let sealer = self.sealer.as_mut().ok_or(HandshakeError::Noise("no channel".into()))?;
        sealer.seal(&[frame], &mut out).map_err(noise_error)?;
        self.write(out.as_slice()).await
    }

    /// Best-effort goodbye: sealed once the channel is up, plaintext before.
    async fn goodbye(&mut self, reason: GoodbyeReason, detail: &str) {
        let frame = goodbye_frame(reason, detail);
        let mut out = SealedBytes::default();
        match &mut self.sealer {
            Some(sealer) => {
                if sealer.seal(&[&frame], &mut out).is_err() {
                    return;
                }
            }
            None => out.put(&frame),
        }
        let _ = tokio::time::timeout(GOODBYE_WRITE_TIMEOUT, self.writer.write_all(out.as_slice())).await;
    }
}

/// Longest wait for a goodbye to be written when a connection is abandoned.
pub(crate) const GOODBYE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

fn handshake_frame(noise: &[u8]) -> Bytes {
    let envelope = Envelope::from(Handshake { noise: Bytes::copy_from_slice(noise) });
    // A Noise handshake message is under 1 KiB.
    encode_frame(&envelope, usize::MAX).unwrap_or_default()
}

fn noise_error(error: snow::Error) -> HandshakeError {
    HandshakeError::Noise(error.to_string())
}

/// The error for a frame that is not the one expected (a goodbye means we were refused).
fn unexpected(body: Option<Body>) -> HandshakeError {
    match body {
        Some(Body::Goodbye(Goodbye { reason, detail })) => HandshakeError::Refused {
            reason: GoodbyeReason::try_from(reason).unwrap_or(GoodbyeReason::Unspecified),
            detail,
        },
        Some(other) => HandshakeError::UnexpectedFrame(BodyKind::of(&other).name()),
        None => HandshakeError::UnexpectedFrame("an empty envelope"),
    }
}

fn check_hello(
    hello: Hello,
    id: NodeId,
    local: &LocalHello,
    remote: SocketAddr,
) -> Result<PeerHello, HandshakeError> {
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
fn goodbye_for(error: &HandshakeError) -> Option<GoodbyeReason> {
    match error {
        HandshakeError::Timeout => Some(GoodbyeReason::Timeout),
        HandshakeError::NetworkMismatch { .. } => Some(GoodbyeReason::NetworkMismatch),
        HandshakeError::VersionUnsupported { .. } => Some(GoodbyeReason::VersionUnsupported),
        HandshakeError::SelfConnection => Some(GoodbyeReason::SelfConnection),
        HandshakeError::Banned { .. } => Some(GoodbyeReason::Banned),
        HandshakeError::InvalidHello(_)
        | HandshakeError::InvalidProof(_)
        | HandshakeError::UnexpectedFrame(_)
        | HandshakeError::Codec(_) => Some(GoodbyeReason::ProtocolViolation),
        // Told nothing: a party that cannot finish Noise, a dial that reached another node than it
        // meant to (the address now belongs to someone else), a peer that refused or left.
        HandshakeError::Noise(_)
        | HandshakeError::UnexpectedPeer { .. }
        | HandshakeError::Refused { .. }
        | HandshakeError::Closed => None,
    }
}

/// An encoded goodbye frame (plaintext: the caller seals it once the channel is up).
pub(crate) fn goodbye_frame(reason: GoodbyeReason, detail: &str) -> Bytes {
    let goodbye = Goodbye { reason: reason as i32, detail: detail.chars().take(200).collect() };
    encode_frame(&goodbye.into(), usize::MAX).unwrap_or_default()
}
