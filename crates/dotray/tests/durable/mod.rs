//! What the tests of durable nodes (data directories, history) share: scratch directories, and
//! bounded waits for deliveries, gaps and neighbours.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use dotray::membership::core::NodeState;
use dotray::{Event, Message, Node};

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dotray-data-dir-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The next delivery at `node`, within a bound.
pub(crate) async fn next_message(node: &Node) -> Message {
    tokio::time::timeout(Duration::from_secs(20), node.recv())
        .await
        .expect("a delivery in time")
        .expect("running")
}

/// Fails if `node` has reported a `Gap` (reads its waiting events).
pub(crate) async fn assert_no_gap(node: &Node) {
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(50), node.next_event()).await {
        assert!(!matches!(event, Event::Gap { .. }), "{event:?}");
    }
}

/// Broadcasts `payload` from `node` until a neighbour exists to take it (a fresh node has none for a
/// moment), then returns its id.
pub(crate) async fn broadcast_joined(node: &Node, payload: &'static [u8]) -> dotray::router::core::MessageId {
    for _ in 0..200 {
        if !node.nodes().await.unwrap().iter().any(|n| n.state == NodeState::Active) {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        }
        return node.broadcast(Bytes::from_static(payload)).await.unwrap();
    }
    panic!("no neighbour within 5 s");
}
