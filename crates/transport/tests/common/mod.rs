//! Helpers for the transport's loopback tests: nodes with short timeouts, event waiting with deadlines,
//! and a hand-rolled raw peer that speaks (or abuses) the real codec.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dotray_codec::proto::{self, Body, Envelope, GoodbyeReason};
pub use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame};
use dotray_codec::{FrameCodec, NodeId, PROTOCOL_VERSION};
use dotray_transport::{Config, ConnectedPeer, Events, Transport, TransportEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

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
    Transport::bind("127.0.0.1:0".parse().unwrap(), NodeId::random(), config).await.expect("bind")
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

/// A peer written by hand on top of the codec, to send exactly the bytes a test wants.
pub struct RawPeer {
    pub framed: Framed<TcpStream, FrameCodec>,
    pub id: NodeId,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        Self { framed: Framed::new(stream, FrameCodec::new()), id: NodeId::random() }
    }

    pub fn hello(&self, network_id: &str, version: u32) -> Envelope {
        proto::Hello {
            network_id: network_id.into(),
            protocol_version: version,
            node_id: self.id.to_bytes(),
            listen_addr: String::new(),
            nonce: rand::random(),
        }
        .into()
    }

    /// Sends a valid hello for the default network and reads the node's hello.
    pub async fn handshake(&mut self) {
        let hello = self.hello("dotray", PROTOCOL_VERSION);
        self.send(&hello).await;
        match self.recv().await {
            Some(Envelope { body: Some(Body::Hello(_)) }) => {}
            other => panic!("expected the node's hello, got {other:?}"),
        }
    }

    pub async fn send(&mut self, envelope: &Envelope) {
        self.framed.send(envelope).await.expect("send");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.framed.get_mut().write_all(bytes).await.expect("write");
    }

    /// The next frame; `None` at EOF, on a socket error or after [`DEADLINE`].
    pub async fn recv(&mut self) -> Option<Envelope> {
        match tokio::time::timeout(DEADLINE, self.framed.next()).await {
            Ok(Some(Ok(env))) => Some(env),
            _ => None,
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

    /// True when the node closed the connection (EOF or reset) within [`DEADLINE`].
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(DEADLINE, self.framed.next()).await {
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub fn payload(len: usize) -> Bytes {
    Bytes::from(vec![0x42; len])
}
