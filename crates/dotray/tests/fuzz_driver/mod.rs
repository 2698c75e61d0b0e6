//! The body of the `handshake` fuzz target (`fuzz/fuzz_targets/handshake.rs`), shared with the
//! regression test `tests/fuzz_regressions.rs`, which replays the saved inputs through it.
//!
//! The handshake is private to `dotray-transport`, so it is fuzzed through the transport's public
//! surface, end to end: one real [`Transport`] listens on `127.0.0.1:0` inside a current-thread tokio
//! runtime, and each input drives a fresh TCP connection to it, after which the client half-closes.
//! Byte 0 of the input picks the mode:
//!
//! * bit 0 clear: the rest of the input goes on the socket as it is, before any handshake (plaintext
//!   frames, Noise message 1 or anything else);
//! * bit 0 set: the client completes the Noise handshake correctly (a fresh key per input, proving its
//!   id), then seals a valid `Hello` (unless bit 3 is set; bits 1–2 pick its listen address) and the
//!   rest of the input as plaintext frame bytes, one chunk; bit 4 flips one bit of that last chunk.
//!
//! So the fuzzer reaches the plaintext frame checks, Noise message parsing, the hello checks inside the
//! channel, chunk authentication, and the frames after a successful handshake. Checked for every input:
//!
//! * no panic in any transport task (the fuzz target aborts on a panic anywhere);
//! * the transport closes the connection within [`DEADLINE`];
//! * exactly one outcome is reported upward: `HandshakeFailed` for this connection, or `Connected`
//!   (with the id the client proved), then `Frames` (never a `Hello` or `Goodbye` among them, never
//!   empty), then `Disconnected`;
//! * what the transport wrote is well-formed: plaintext `Handshake` frames and at most one `Goodbye`;
//!   after a completed Noise handshake, sealed chunks that open to its `Hello` and/or one `Goodbye`;
//! * afterwards no connection is left open and no inbound slot is held.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dotray::transport::{Config, Events, Transport, TransportEvent};
use dotray_codec::proto::{self, Body, Envelope};
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, FrameCodec, NodeId, PROTOCOL_VERSION, SecretKey, encode_frame};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_util::codec::Decoder;

/// Longest wait for anything in one input: far beyond the transport's (shortened) timeouts.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// The open network's Noise protocol and the proof's signed text, as `proto/dotray/v1/handshake.proto`
/// spells them.
const NOISE: &str = "Noise_XX_25519_AESGCM_SHA256";
const PROLOGUE: &[u8] = b"dotray/2";
const PROOF_CONTEXT: &[u8] = b"dotray-noise-static-key:";
const TAG_LEN: usize = 16;
/// Most plaintext in one chunk.
const MAX_CHUNK_PLAINTEXT: usize = u16::MAX as usize - TAG_LEN;

/// A transport under test and the runtime it runs in, reused across inputs (binding one per input
/// would make each execution ten times slower).
pub struct HandshakeFuzzer {
    runtime: Runtime,
    transport: Transport,
    events: Events,
    inputs: u64,
}

impl HandshakeFuzzer {
    /// Starts the transport: small buffers and short timeouts, so that every input finishes quickly.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let config = Config {
            handshake_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            max_frame_len: 16 * 1024,
            max_queue_bytes: 64 * 1024,
            read_buffer_len: 4 * 1024,
            ..Config::default()
        };
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid");
        let key = SecretKey::from_bytes([0xee; 32]);
        let (transport, events) = runtime.block_on(Transport::bind(addr, key, config)).expect("bind");
        Self { runtime, transport, events, inputs: 0 }
    }

    /// Runs one input (see the module docs).
    pub fn run(&mut self, data: &[u8]) {
        self.inputs += 1;
        let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
        let script = if flags & 1 == 1 {
            let listen_addr = match (flags >> 1) & 3 {
                0 => String::new(),
                1 => "127.0.0.1:9".to_owned(),
                2 => "0.0.0.0:9".to_owned(),
                _ => "127.0.0.1:0".to_owned(),
            };
            let hello = proto::Hello {
                network_id: "dotray".to_owned(),
                protocol_version: PROTOCOL_VERSION,
                listen_addr,
                nonce: self.inputs,
            };
            let mut frames = Vec::new();
            if flags & 8 == 0 {
                frames.extend_from_slice(&encode_frame(&hello.into(), DEFAULT_MAX_FRAME_LEN).expect("small"));
            }
            frames.extend_from_slice(rest);
            // A fresh key per input: the previous connection may still be unregistering.
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&self.inputs.to_le_bytes());
            Script::Noise { key: Box::new(SecretKey::from_bytes(seed)), frames, flip: flags & 16 != 0 }
        } else {
            Script::Raw(rest.to_vec())
        };
        let expected = match &script {
            Script::Noise { key, .. } => Some(key.node_id()),
            Script::Raw(_) => None,
        };
        let addr = self.transport.local_addr();
        let transport = self.transport.clone();
        let events = &mut self.events;
        self.runtime.block_on(async move {
            let (talked, outcome) = tokio::join!(talk(addr, script), outcome(events, expected));
            if let Outcome::HandshakeFailed(remote) = outcome {
                assert_eq!(remote, talked.local, "the failure is reported for this connection");
            }
            if talked.clean_eof {
                check_reply(&talked);
            }
            // Every slot is given back.
            tokio::time::timeout(DEADLINE, async {
                loop {
                    let stats = transport.stats();
                    if stats.inbound_open == 0 && stats.connections == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the connection's slot is released");
        });
    }
}

impl Default for HandshakeFuzzer {
    fn default() -> Self {
        Self::new()
    }
}

/// What the client does on its connection.
enum Script {
    /// These bytes, as they are.
    Raw(Vec<u8>),
    /// A correct Noise handshake as `key`, then `frames` sealed in one chunk (`flip`: one bit altered).
    Noise { key: Box<SecretKey>, frames: Vec<u8>, flip: bool },
}

/// What one connection saw.
struct Talked {
    local: SocketAddr,
    /// Plaintext bytes the transport sent before the channel (all of them, for a raw script).
    plain: Vec<u8>,
    /// Sealed bytes it sent after, and the channel to open them with.
    sealed: Vec<u8>,
    channel: Option<snow::StatelessTransportState>,
    /// The connection ended with a clean EOF (rather than a reset).
    clean_eof: bool,
}

/// Connects, runs `script`, half-closes, and reads until the transport closes.
async fn talk(addr: SocketAddr, script: Script) -> Talked {
    let mut stream = TcpStream::connect(addr).await.expect("connect to the transport");
    let local = stream.local_addr().expect("local address");
    let talked = tokio::time::timeout(DEADLINE, async {
        let mut talked =
            Talked { local, plain: Vec::new(), sealed: Vec::new(), channel: None, clean_eof: false };
        let wire = match script {
            Script::Raw(bytes) => bytes,
            Script::Noise { key, frames, flip } => match noise(&mut stream, &key, &mut talked.plain).await {
                Some(channel) => {
                    let mut wire = Vec::new();
                    for (nonce, plaintext) in frames.chunks(MAX_CHUNK_PLAINTEXT).enumerate() {
                        let mut chunk = vec![0u8; plaintext.len() + TAG_LEN];
                        let len = channel.write_message(nonce as u64, plaintext, &mut chunk).expect("seal");
                        wire.extend_from_slice(&(len as u16).to_be_bytes());
                        wire.extend_from_slice(&chunk[..len]);
                    }
                    if flip && let Some(last) = wire.last_mut() {
                        *last ^= 1;
                    }
                    talked.channel = Some(channel);
                    wire
                }
                None => Vec::new(),
            },
        };
        let (mut reader, mut writer) = stream.split();
        let read_all = async {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) => return true,
                    Ok(n) if talked.channel.is_some() => talked.sealed.extend_from_slice(&buf[..n]),
                    Ok(n) => talked.plain.extend_from_slice(&buf[..n]),
                    Err(_) => return false,
                }
            }
        };
        let write_all = async {
            // The transport may close (and reset) before reading everything: a write error is fine.
            if writer.write_all(&wire).await.is_ok() {
                let _ = writer.shutdown().await;
            }
        };
        let (clean, ()) = tokio::join!(read_all, write_all);
        talked.clean_eof = clean;
        talked
    })
    .await
    .expect("the transport closes the connection");
    // Abort the socket rather than close it gracefully: at a thousand connections a second, ports
    // left in TIME_WAIT add up (loopback reuses them; see fuzz/README.md).
    let _ = stream.set_zero_linger();
    talked
}

/// The dialer's three Noise messages as `key`; keeps the transport's plaintext frames in `plain`.
/// Returns the channel (no nonce used yet in either direction), or `None` if the transport refused.
async fn noise(
    stream: &mut TcpStream,
    key: &SecretKey,
    plain: &mut Vec<u8>,
) -> Option<snow::StatelessTransportState> {
    let keypair = snow::Builder::new(NOISE.parse().ok()?).generate_keypair().ok()?;
    let mut state = snow::Builder::new(NOISE.parse().ok()?)
        .local_private_key(&keypair.private)
        .ok()?
        .prologue(PROLOGUE)
        .ok()?
        .build_initiator()
        .ok()?;
    let mut message = vec![0u8; 1024];
    let len = state.write_message(&[], &mut message).ok()?;
    stream.write_all(&handshake_frame(&message[..len])).await.ok()?;
    // Message 2, one plaintext frame.
    let mut codec = FrameCodec::new();
    let mut buffer = BytesMut::new();
    let reply = loop {
        if let Some(envelope) = codec.decode(&mut buffer).expect("the transport writes valid frames") {
            break envelope;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        plain.extend_from_slice(&chunk[..n]);
        buffer.extend_from_slice(&chunk[..n]);
    };
    assert!(buffer.is_empty(), "the transport sent more than message 2 before message 3");
    let Some(Body::Handshake(proto::Handshake { noise })) = reply.body else {
        panic!("the transport answered message 1 with {reply:?}");
    };
    let mut payload = vec![0u8; 1024];
    let len = state.read_message(&noise, &mut payload).expect("the transport's message 2 reads");
    let proof = proto::IdentityProof::decode(&payload[..len]).expect("an identity proof");
    let node = NodeId::from_slice(&proof.node_id).expect("a node id");
    let signed = [PROOF_CONTEXT, state.get_remote_static().expect("static key")].concat();
    assert!(node.verify(&signed, &proof.signature), "the transport's proof verifies");
    let signature = key.sign(&[PROOF_CONTEXT, &keypair.public[..]].concat());
    let proof = proto::IdentityProof {
        node_id: key.node_id().to_bytes(),
        signature: Bytes::copy_from_slice(&signature),
    };
    let len = state.write_message(&proof.encode_to_vec(), &mut message).ok()?;
    stream.write_all(&handshake_frame(&message[..len])).await.ok()?;
    state.into_stateless_transport_mode().ok()
}

fn handshake_frame(noise: &[u8]) -> Bytes {
    let envelope = Envelope::from(proto::Handshake { noise: Bytes::copy_from_slice(noise) });
    encode_frame(&envelope, DEFAULT_MAX_FRAME_LEN).expect("small")
}

#[derive(Debug)]
enum Outcome {
    HandshakeFailed(SocketAddr),
    Session,
}

/// Waits for the one outcome of the connection and checks the events on the way.
async fn outcome(events: &mut Events, expected: Option<NodeId>) -> Outcome {
    let mut connected = None;
    loop {
        let event = tokio::time::timeout(DEADLINE, events.recv())
            .await
            .expect("an outcome is reported")
            .expect("the transport is running");
        match (event, connected) {
            (TransportEvent::HandshakeFailed { remote, .. }, None) => {
                return Outcome::HandshakeFailed(remote);
            }
            (TransportEvent::Connected(peer), None) => {
                assert_eq!(Some(peer.id), expected, "only a proven id connects");
                connected = Some(peer.id);
            }
            (TransportEvent::Frames { peer, frames }, Some(id)) => {
                assert_eq!(peer, id);
                assert!(!frames.is_empty(), "an empty Frames event");
                for frame in frames {
                    assert!(
                        !matches!(
                            frame.body,
                            None | Some(Body::Hello(_) | Body::Goodbye(_) | Body::Handshake(_))
                        ),
                        "the transport passed up {frame:?}"
                    );
                }
            }
            (TransportEvent::Disconnected { peer, .. }, Some(id)) => {
                assert_eq!(peer, id);
                return Outcome::Session;
            }
            (event, state) => panic!("unexpected {event:?} (connected: {state:?})"),
        }
    }
}

/// What the transport wrote: valid plaintext frames (handshake messages, at most one goodbye, last);
/// after a completed handshake, sealed chunks that open, in order, to its hello and/or one goodbye.
fn check_reply(talked: &Talked) {
    let frames = decode_all(&talked.plain);
    let goodbyes = frames.iter().filter(|f| matches!(f.body, Some(Body::Goodbye(_)))).count();
    assert!(goodbyes <= 1, "more than one plaintext goodbye: {frames:?}");
    for frame in &frames {
        assert!(matches!(frame.body, Some(Body::Handshake(_) | Body::Goodbye(_))), "in plaintext: {frame:?}");
    }
    let Some(channel) = &talked.channel else { return };
    let mut sealed = &talked.sealed[..];
    let mut opened = Vec::new();
    let mut nonce = 0;
    while sealed.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([sealed[0], sealed[1]]));
        assert!(sealed.len() >= 2 + len, "a partial chunk from the transport");
        let mut plaintext = vec![0u8; len];
        let n = channel.read_message(nonce, &sealed[2..2 + len], &mut plaintext).expect("its chunks open");
        opened.extend_from_slice(&plaintext[..n]);
        sealed = &sealed[2 + len..];
        nonce += 1;
    }
    assert!(sealed.is_empty(), "a partial chunk header from the transport");
    let frames = decode_all(&opened);
    let hellos = frames.iter().take_while(|f| matches!(f.body, Some(Body::Hello(_)))).count();
    assert!(hellos <= 1, "more than one hello: {frames:?}");
    let rest = &frames[hellos..];
    assert!(rest.len() <= 1, "more than one goodbye after the hello: {frames:?}");
    for frame in rest {
        assert!(matches!(frame.body, Some(Body::Goodbye(_))), "only a goodbye after the hello: {frame:?}");
    }
}

fn decode_all(bytes: &[u8]) -> Vec<Envelope> {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buf).expect("the transport writes valid frames") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "a partial frame from the transport");
    frames
}
