//! Helpers for the transport's loopback tests: nodes with short timeouts, event waiting with deadlines,
//! and a hand-rolled raw peer that speaks (or abuses) the real codec.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dotray_codec::proto::{self, Body, Envelope, GoodbyeReason};
pub use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, SecretKey};
use dotray_codec::{FrameCodec, NodeId, PROTOCOL_VERSION};
use dotray_transport::{Config, ConnectedPeer, Events, Transport, TransportEvent};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

/// Every wait in these tests gives up after this long, so a broken build fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Short timeouts so that timeout paths run in a fraction of a second.
pub fn fast_config() -> Config {
    Config {
        handshake_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

pub async fn node(config: Config) -> (Transport, Events) {
    Transport::bind("127.0.0.1:0".parse().unwrap(), SecretKey::generate(), config).await.expect("bind")
}

/// The next event, or a panic after [`DEADLINE`].
pub async fn next_event(events: &mut Events) -> TransportEvent {
    tokio::time::timeout(DEADLINE, events.recv()).await.expect("event before the deadline").expect("open")
}

/// Skips events until `pick` returns `Some`.
pub async fn wait_for<T>(events: &mut Events, mut pick: impl FnMut(TransportEvent) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("awaited event before the deadline")
            .expect("events open");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

pub async fn wait_connected(events: &mut Events) -> ConnectedPeer {
    wait_for(events, |e| match e {
        TransportEvent::Connected(peer) => Some(peer),
        _ => None,
    })
    .await
}

/// A `Ping` frame with `nonce`, ready to queue.
pub fn ping_frame(nonce: u64) -> OutFrame<'static> {
    OutFrame::encode(&proto::Ping { nonce, sent_at_micros: 0 }.into(), DEFAULT_MAX_FRAME_LEN).unwrap()
}

/// Proves `node` still serves a well-behaved peer: a fresh transport connects and a ping arrives.
pub async fn assert_still_serves(node: &Transport, events: &mut Events) {
    let (good, _good_events) = self::node(fast_config()).await;
    let peer = good.connect(node.local_addr()).await.expect("a good peer can still connect");
    let ping = Envelope::from(proto::Ping { nonce: 0xfeed, sent_at_micros: 1 });
    peer.sender.try_send(&OutFrame::encode(&ping, DEFAULT_MAX_FRAME_LEN).unwrap()).expect("queue has room");
    let got = wait_for(events, |e| match e {
        TransportEvent::Frames { peer, mut frames } if peer == good.local_id() => Some(frames.remove(0)),
        _ => None,
    })
    .await;
    assert_eq!(got, ping);
    good.shutdown().await;
}

/// The Noise protocol of an open dotray network, its prologue and the text a node signs: written out
/// here from `proto/dotray/v1/handshake.proto`, so that the raw peer checks the node against the spec
/// rather than against the node's own code.
const NOISE_OPEN: &str = "Noise_XX_25519_AESGCM_SHA256";
const NOISE_PRIVATE: &str = "Noise_XXpsk0_25519_AESGCM_SHA256";
const PROLOGUE: &[u8] = b"dotray/2";
const PROOF_CONTEXT: &[u8] = b"dotray-noise-static-key:";
const TAG_LEN: usize = 16;

/// A peer written by hand on top of the codec and `snow`, to send exactly the bytes a test wants: a
/// correct handshake, a wrong one, sealed frames, or altered ciphertext.
pub struct RawPeer {
    pub stream: TcpStream,
    /// The key this peer proves (its node id is `id`).
    pub key: SecretKey,
    pub id: NodeId,
    /// The node id to name in the identity proof, when it is not our own (an impersonation attempt).
    pub claim: Option<NodeId>,
    /// The network key to use, if any.
    pub network_key: Option<[u8; 32]>,
    channel: Option<Channel>,
    /// Bytes read from the socket and not yet used (frames before the channel, chunks after).
    buffer: BytesMut,
    /// Opened plaintext not yet decoded.
    plain: BytesMut,
    codec: FrameCodec,
}

struct Channel {
    state: snow::StatelessTransportState,
    send_nonce: u64,
    recv_nonce: u64,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_as(addr, SecretKey::generate()).await
    }

    pub async fn connect_as(addr: SocketAddr, key: SecretKey) -> Self {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        Self {
            stream,
            id: key.node_id(),
            key,
            claim: None,
            network_key: None,
            channel: None,
            buffer: BytesMut::new(),
            plain: BytesMut::new(),
            codec: FrameCodec::new(),
        }
    }

    pub fn hello(&self, network_id: &str, version: u32) -> Envelope {
        proto::Hello {
            network_id: network_id.into(),
            protocol_version: version,
            listen_addr: String::new(),
            nonce: rand::random(),
        }
        .into()
    }

    /// A dialer's handshake state with a fresh static key, and that key's public half (which the
    /// proof signs).
    fn start(&self) -> (snow::HandshakeState, Vec<u8>) {
        let name = if self.network_key.is_some() { NOISE_PRIVATE } else { NOISE_OPEN };
        let builder = snow::Builder::new(name.parse().unwrap());
        let keypair = builder.generate_keypair().unwrap();
        let mut builder = snow::Builder::new(name.parse().unwrap())
            .local_private_key(&keypair.private)
            .unwrap()
            .prologue(PROLOGUE)
            .unwrap();
        if let Some(key) = &self.network_key {
            builder = builder.psk(0, key).unwrap();
        }
        (builder.build_initiator().unwrap(), keypair.public)
    }

    fn proof(&self, static_public: &[u8]) -> Vec<u8> {
        let signature = self.key.sign(&[PROOF_CONTEXT, static_public].concat());
        let node_id = self.claim.unwrap_or(self.id);
        proto::IdentityProof { node_id: node_id.to_bytes(), signature: Bytes::copy_from_slice(&signature) }
            .encode_to_vec()
    }

    /// Runs the three Noise messages as the dialer. Returns the node id the node proved, or what went
    /// wrong (the node's goodbye, or a closed connection).
    pub async fn noise(&mut self) -> Result<NodeId, String> {
        let (mut state, static_public) = self.start();
        let mut message = vec![0u8; 1024];
        let len = state.write_message(&[], &mut message).unwrap();
        self.send(&proto::Handshake { noise: Bytes::copy_from_slice(&message[..len]) }.into()).await;
        let reply = match self.recv().await {
            Some(Envelope { body: Some(Body::Handshake(h)) }) => h.noise,
            other => return Err(format!("no message 2: {other:?}")),
        };
        let mut payload = vec![0u8; 1024];
        let len = state.read_message(&reply, &mut payload).map_err(|e| e.to_string())?;
        let proof = proto::IdentityProof::decode(&payload[..len]).map_err(|e| e.to_string())?;
        let node = NodeId::from_slice(&proof.node_id).ok_or("bad node id")?;
        let signed = [PROOF_CONTEXT, state.get_remote_static().unwrap()].concat();
        assert!(node.verify(&signed, &proof.signature), "the node's proof verifies");
        let len = state.write_message(&self.proof(&static_public), &mut message).unwrap();
        self.send(&proto::Handshake { noise: Bytes::copy_from_slice(&message[..len]) }.into()).await;
        let state = state.into_stateless_transport_mode().unwrap();
        self.channel = Some(Channel { state, send_nonce: 0, recv_nonce: 0 });
        Ok(node)
    }

    /// Noise, then a valid hello for the default network, then the node's hello.
    pub async fn handshake(&mut self) {
        self.noise().await.expect("noise handshake");
        let hello = self.hello("dotray", PROTOCOL_VERSION);
        self.send(&hello).await;
        match self.recv().await {
            Some(Envelope { body: Some(Body::Hello(_)) }) => {}
            other => panic!("expected the node's hello, got {other:?}"),
        }
    }

    /// `plaintext` sealed as one chunk with the next nonce: the bytes to put on the wire.
    pub fn seal(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let channel = self.channel.as_mut().expect("channel up");
        let mut chunk = vec![0u8; 2 + plaintext.len() + TAG_LEN];
        let len = channel.state.write_message(channel.send_nonce, plaintext, &mut chunk[2..]).unwrap();
        channel.send_nonce += 1;
        chunk[..2].copy_from_slice(&(len as u16).to_be_bytes());
        chunk
    }

    /// The encoded frame of `envelope`.
    pub fn frame(envelope: &Envelope) -> BytesMut {
        let mut frame = BytesMut::new();
        FrameCodec::new().encode(envelope, &mut frame).unwrap();
        frame
    }

    /// Sends `envelope`: sealed once the channel is up, plaintext before.
    pub async fn send(&mut self, envelope: &Envelope) {
        let frame = Self::frame(envelope);
        self.send_raw(&frame).await;
    }

    /// Sends `bytes` as the frame stream: sealed as one chunk once the channel is up, as they are before.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let wire = if self.channel.is_some() { self.seal(bytes) } else { bytes.to_vec() };
        self.send_wire(&wire).await;
    }

    /// Puts `bytes` on the socket as they are.
    pub async fn send_wire(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame; `None` at EOF, on a socket error, on a chunk that fails authentication, or after
    /// [`DEADLINE`].
    pub async fn recv(&mut self) -> Option<Envelope> {
        self.recv_for(DEADLINE).await
    }

    /// [`RawPeer::recv`], waiting at most `wait`.
    pub async fn recv_for(&mut self, wait: Duration) -> Option<Envelope> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(channel) = &mut self.channel {
                while self.buffer.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([self.buffer[0], self.buffer[1]]));
                    if self.buffer.len() < 2 + len {
                        break;
                    }
                    let mut out = vec![0u8; len];
                    let n = channel
                        .state
                        .read_message(channel.recv_nonce, &self.buffer[2..2 + len], &mut out)
                        .ok()?;
                    channel.recv_nonce += 1;
                    self.plain.extend_from_slice(&out[..n]);
                    let _ = self.buffer.split_to(2 + len);
                }
                if let Ok(Some(envelope)) = self.codec.decode(&mut self.plain) {
                    return Some(envelope);
                }
            } else if let Ok(Some(envelope)) = self.codec.decode(&mut self.buffer) {
                return Some(envelope);
            }
            self.buffer.reserve(64 * 1024);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Reads until the node's goodbye and returns its reason; then expects the connection to close.
    pub async fn expect_goodbye(&mut self) -> GoodbyeReason {
        loop {
            match self.recv().await {
                Some(Envelope { body: Some(Body::Goodbye(g)) }) => {
                    let reason = GoodbyeReason::try_from(g.reason).expect("known reason");
                    assert!(self.recv().await.is_none(), "connection closes after the goodbye");
                    return reason;
                }
                Some(_) => continue,
                None => panic!("connection closed without a goodbye"),
            }
        }
    }

    /// True when the node closed the connection (EOF or reset) within [`DEADLINE`]; frames before it
    /// are skipped.
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            self.buffer.reserve(64 * 1024);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// True when the node closed the connection within [`DEADLINE`] without sending a single byte.
    pub async fn closed_in_silence(&mut self) -> bool {
        let before = self.buffer.len();
        self.closed().await && self.buffer.len() == before
    }
}

pub fn payload(len: usize) -> Bytes {
    Bytes::from(vec![0x42; len])
}
