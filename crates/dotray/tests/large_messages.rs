//! Large messages end to end on loopback: a message of `max_message_len` bytes reaches every node
//! whole, once; a longer one is refused before it is numbered, so the next message is not held up.

use std::time::Duration;

use bytes::Bytes;
use dotray::{Event, Node, NodeError};

mod chain;
use chain::start_chain;

/// A payload whose every byte depends on its position, so a piece out of place shows.
fn patterned(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect::<Vec<u8>>())
}

/// Receives the next message at `node`, failing the test after `within`.
async fn next_message(node: &Node, within: Duration, what: &str) -> dotray::Message {
    tokio::time::timeout(within, node.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {within:?}"))
        .expect("running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_the_maximum_length_arrives_whole_everywhere_and_one_byte_more_is_refused() {
    let nodes = start_chain(5).await;
    let max = 16 << 20;
    let origin = &nodes[2];

    let large = patterned(max);
    let id = origin.broadcast(large.clone()).await.expect("a message of max_message_len is accepted");
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != 2) {
        let message =
            next_message(node, Duration::from_secs(60), &format!("node {i}, the large message")).await;
        assert_eq!((message.origin, message.seq), (origin.id(), id.seq), "node {i}");
        assert!(message.payload == large, "node {i}: the message arrived altered");
    }

    // One byte over: refused with the typed error, nothing numbered.
    match origin.broadcast(patterned(max + 1)).await {
        Err(NodeError::TooLong(too_long)) => assert_eq!((too_long.len, too_long.max), (max + 1, max)),
        other => panic!("a message over max_message_len must be refused, got {other:?}"),
    }
    // The next message goes out and arrives at once (a stall would wait for the gap timeout, 10 s).
    let after = origin.broadcast(Bytes::from_static(b"after")).await.expect("broadcast");
    assert_eq!(after.seq, id.seq + 64, "16 MiB in pieces of 256 KiB took 64 numbers, the refused one none");
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != 2) {
        let message =
            next_message(node, Duration::from_secs(3), &format!("node {i}, the next message")).await;
        assert_eq!((message.seq, &message.payload[..]), (after.seq, &b"after"[..]), "node {i}");
    }
    // And no node reported a loss.
    for (i, node) in nodes.iter().enumerate() {
        while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(1), node.next_event()).await {
            assert!(!matches!(event, Event::Gap { .. }), "node {i} reported {event:?}");
        }
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_from_two_origins_at_once_keep_their_order() {
    let nodes = start_chain(4).await;
    let sizes = [300_000usize, 5, 1 << 20, 700_000, 17];
    let mut sends = Vec::new();
    for origin in [0usize, 3] {
        let node = nodes[origin].clone();
        sends.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for (k, size) in sizes.iter().enumerate() {
                let mut payload = patterned(*size).to_vec();
                payload[0] = k as u8;
                ids.push(node.broadcast(Bytes::from(payload)).await.expect("broadcast"));
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for send in sends {
        ids.push(send.await.unwrap());
    }
    for (i, node) in nodes.iter().enumerate() {
        let from: Vec<usize> = [0usize, 3].into_iter().filter(|o| *o != i).collect();
        let mut next = [0usize; 4];
        for _ in 0..from.len() * sizes.len() {
            let message = next_message(node, Duration::from_secs(30), &format!("node {i}")).await;
            let o = if message.origin == nodes[0].id() { 0 } else { 3 };
            let k = next[o];
            assert_eq!(message.seq, ids[usize::from(o == 3)][k].seq, "node {i}: origin {o}'s order");
            assert_eq!((message.payload.len(), message.payload[0]), (sizes[k], k as u8), "node {i}");
            next[o] += 1;
        }
    }
    for node in &nodes {
        node.shutdown().await;
    }
}
