//! A hostile peer for the facade's tests: a raw connection that completes a real handshake and
//! `Join`s a node (so that the node takes it as a neighbour), then sends whatever a broken or malicious
//! node would; and the honest pair (a victim and a good publisher) it is tried against.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray::Node;
use dotray::codec::proto::{self, Body, Envelope};
use dotray::codec::{PROTOCOL_VERSION, SecretKey};

#[path = "../../../transport/tests/common/mod.rs"]
mod common;
pub(crate) use common::RawPeer;

/// A peer that joined `node` through a real handshake and `Join` (so that the node takes it as a
/// neighbour), and now sends whatever it likes.
pub(crate) struct Hostile {
    pub(crate) raw: RawPeer,
}

impl Hostile {
    pub(crate) async fn join(node: &Node) -> Self {
        Self::join_as(node, SecretKey::generate()).await
    }

    pub(crate) async fn join_as(node: &Node, key: SecretKey) -> Self {
        let id = key.node_id().to_bytes();
        let mut raw = RawPeer::connect_as(node.local_addr(), key).await;
        raw.noise().await.expect("noise handshake");
        let hello = proto::Hello {
            network_id: "dotray".into(),
            protocol_version: PROTOCOL_VERSION,
            // An address of its own: a node takes a second node at one address for a restart of the
            // first, so hostile peers that share one replace each other.
            listen_addr: format!("127.0.0.1:{}", 10_000 + u16::from_be_bytes([id[0], id[1]]) % 50_000),
            nonce: rand::random(),
        };
        raw.send(&Envelope::from(hello)).await;
        raw.send(&Envelope::from(proto::Join {})).await;
        Self { raw }
    }

    pub(crate) async fn send(&mut self, body: impl Into<Envelope>) -> bool {
        self.raw.send(&body.into()).await;
        true
    }

    /// Reads (answering pings) until the node's goodbye; `None` if the connection ends without one.
    pub(crate) async fn goodbye(&mut self) -> Option<proto::Goodbye> {
        loop {
            match self.raw.recv_for(Duration::from_secs(10)).await?.body {
                Some(Body::Goodbye(goodbye)) => return Some(goodbye),
                Some(Body::Ping(p)) => {
                    let _ = self.send(proto::Pong { nonce: p.nonce, sent_at_micros: p.sent_at_micros }).await;
                }
                _ => {}
            }
        }
    }

    /// Reads (and answers pings) without blocking long, so the node never sees a stalled reader.
    pub(crate) async fn drain(&mut self) {
        while let Some(env) = self.raw.recv_for(Duration::from_millis(1)).await {
            if let Some(Body::Ping(p)) = env.body {
                let _ = self.send(proto::Pong { nonce: p.nonce, sent_at_micros: p.sent_at_micros }).await;
            }
        }
    }
}

pub(crate) fn fast() -> dotray::membership::core::Config {
    dotray::membership::core::Config { ping_interval: Duration::from_millis(200), ..Default::default() }
}

/// A victim node and a good node joined to it; returns once they are neighbours.
pub(crate) async fn victim_and_good_peer() -> (Node, Node) {
    let victim = Node::builder().membership_config(fast()).start().await.unwrap();
    let good = Node::builder().membership_config(fast()).seed(victim.local_addr()).start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while victim.nodes().await.unwrap().iter().all(|n| n.peer.id != good.id()) {
        assert!(Instant::now() < deadline, "good peer did not join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (victim, good)
}

/// The good node's broadcast still reaches the victim, promptly.
pub(crate) async fn assert_good_broadcast_arrives(victim: &Node, good: &Node, tag: &str) {
    let payload = Bytes::from(format!("still-serving-{tag}"));
    good.broadcast(payload.clone()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline.into(), victim.recv())
            .await
            .expect("good message in time")
            .unwrap();
        if m.payload == payload {
            assert_eq!(m.origin, good.id());
            return;
        }
    }
}
