//! The body of the `handshake` fuzz target (`fuzz/fuzz_targets/handshake.rs`), shared with the
//! regression test `tests/fuzz_regressions.rs`, which replays the saved inputs through it.
//!
//! The handshake check (`check_hello`) is private to `dotray-transport`, so it is fuzzed through the
//! transport's public surface, end to end: one real [`Transport`] listens on `127.0.0.1:0` inside a
//! current-thread tokio runtime, and each input is written raw to a fresh TCP connection to it, after
//! which the client half-closes. Byte 0 of the input chooses whether a valid `Hello` (with one of a
//! few listen addresses) goes first, so the fuzzer reaches both the hello checks and the frames after
//! a successful handshake. Checked for every input:
//!
//! * no panic in any transport task (the fuzz target aborts on a panic anywhere);
//! * the transport closes the connection within [`DEADLINE`];
//! * exactly one outcome is reported upward: `HandshakeFailed` for this connection, or `Connected`,
//!   then `Frames` (never a `Hello` or `Goodbye` among them, never empty), then `Disconnected`;
//! * what the transport wrote is well-formed: its own `Hello` first, then at most one `Goodbye`;
//! * afterwards no connection is left open and no inbound slot is held.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use dotray::transport::{Config, Events, Transport, TransportEvent};
use dotray_codec::proto::{self, Body};
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, FrameCodec, NodeId, PROTOCOL_VERSION, encode_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_util::codec::Decoder;

/// Longest wait for anything in one input: far beyond the transport's (shortened) timeouts.
pub const DEADLINE: Duration = Duration::from_secs(5);

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
        let (transport, events) =
            runtime.block_on(Transport::bind(addr, NodeId::from_bytes([0xee; 16]), config)).expect("bind");
        Self { runtime, transport, events, inputs: 0 }
    }

    /// Runs one input (see the module docs).
    pub fn run(&mut self, data: &[u8]) {
        self.inputs += 1;
        let (flags, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
        let mut wire = Vec::new();
        let mut peer_id = None;
        if flags & 1 == 1 {
            // A fresh id per input: the previous connection may still be unregistering.
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&self.inputs.to_le_bytes());
            let listen_addr = match (flags >> 1) & 3 {
                0 => String::new(),
                1 => "127.0.0.1:9".to_owned(),
                2 => "0.0.0.0:9".to_owned(),
                _ => "127.0.0.1:0".to_owned(),
            };
            let hello = proto::Hello {
                network_id: "dotray".to_owned(),
                protocol_version: PROTOCOL_VERSION,
                node_id: id.to_vec().into(),
                listen_addr,
                nonce: self.inputs,
            };
            wire.extend_from_slice(&encode_frame(&hello.into(), DEFAULT_MAX_FRAME_LEN).expect("small"));
            peer_id = Some(NodeId::from_bytes(id));
        }
        wire.extend_from_slice(rest);
        let addr = self.transport.local_addr();
        let transport = self.transport.clone();
        let events = &mut self.events;
        self.runtime.block_on(async move {
            let (written, outcome) = tokio::join!(talk(addr, &wire), outcome(events, peer_id));
            let (local, received, clean_eof) = written;
            if let Outcome::HandshakeFailed(remote) = outcome {
                assert_eq!(remote, local, "the failure is reported for this connection");
            }
            if clean_eof {
                check_reply(&received);
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

/// Connects, writes `wire`, half-closes, and reads until the transport closes. Returns the local
/// address, what the transport sent, and whether it ended with a clean EOF (rather than a reset).
async fn talk(addr: SocketAddr, wire: &[u8]) -> (SocketAddr, Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).await.expect("connect to the transport");
    let local = stream.local_addr().expect("local address");
    let (mut reader, mut writer) = stream.split();
    let read_all = async {
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return (received, true),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(_) => return (received, false),
            }
        }
    };
    let write_all = async {
        // The transport may close (and reset) before reading everything: a write error is fine.
        if writer.write_all(wire).await.is_ok() {
            let _ = writer.shutdown().await;
        }
    };
    let ((received, clean), ()) = tokio::time::timeout(DEADLINE, async { tokio::join!(read_all, write_all) })
        .await
        .expect("the transport closes the connection");
    // Abort the socket rather than close it gracefully: at a thousand connections a second, ports
    // left in TIME_WAIT add up (loopback reuses them; see fuzz/README.md).
    let _ = stream.set_zero_linger();
    (local, received, clean)
}

#[derive(Debug)]
enum Outcome {
    HandshakeFailed(SocketAddr),
    Session,
}

/// Waits for the one outcome of the connection and checks the events on the way.
async fn outcome(events: &mut Events, peer_id: Option<NodeId>) -> Outcome {
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
                assert_eq!(Some(peer.id), peer_id, "only the valid hello connects");
                connected = Some(peer.id);
            }
            (TransportEvent::Frames { peer, frames }, Some(id)) => {
                assert_eq!(peer, id);
                assert!(!frames.is_empty(), "an empty Frames event");
                for frame in frames {
                    assert!(
                        !matches!(frame.body, None | Some(Body::Hello(_) | Body::Goodbye(_))),
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

/// What the transport wrote: its `Hello`, then at most one `Goodbye`, all well-formed frames.
fn check_reply(received: &[u8]) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::from(received);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buf).expect("the transport writes valid frames") {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "a partial frame from the transport");
    assert!(matches!(frames.first().and_then(|f| f.body.as_ref()), Some(Body::Hello(_))), "hello first");
    for frame in &frames[1..] {
        assert!(matches!(frame.body, Some(Body::Goodbye(_))), "only a goodbye after the hello: {frame:?}");
    }
    assert!(frames.len() <= 2, "more than one goodbye");
}
