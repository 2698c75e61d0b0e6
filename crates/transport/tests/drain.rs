//! `PeerSender::queue_drained`: the wake-up a sender that stops at a high-water mark waits for. It must
//! stay pending while the peer reads nothing, resolve once the peer reads, and resolve when the
//! connection closes, so a waiter never hangs.

mod common;

use std::time::Duration;

use common::*;
use dotray_codec::proto;
use dotray_transport::{Config, ConnectedPeer, Events, SendError, Transport};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Queues 16 KiB frames for `sender` until its writer is stalled: the peer reads nothing, so the
/// kernel's socket buffers fill (some megabytes), then the queue, which then stays full.
async fn fill_until_stalled(sender: &dotray_transport::PeerSender) {
    let frame = dotray_codec::OutFrame::encode(
        &proto::Direct { payload: payload(16 * 1024) }.into(),
        dotray_codec::DEFAULT_MAX_FRAME_LEN,
    )
    .unwrap();
    for _ in 0..1_000 {
        loop {
            match sender.try_send(&frame) {
                Ok(()) => {}
                Err(SendError::QueueFull) => break,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if sender.queued_bytes() > 128 * 1024 {
            return;
        }
    }
    panic!("the queue never stayed full");
}

fn config() -> Config {
    Config {
        max_frame_len: 64 * 1024,
        max_queue_bytes: 256 * 1024,
        idle_timeout: Duration::from_secs(60),
        ..fast_config()
    }
}

/// A node with one connected peer that reads nothing, its queue full and its writer stalled, and a
/// `queue_drained(0)` waiter that must still be pending. The node and its events are returned so the
/// connection outlives the call.
async fn stalled_with_a_waiter() -> (Transport, Events, RawPeer, ConnectedPeer, JoinHandle<()>) {
    let (node, mut events) = node(config()).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    let peer = wait_connected(&mut events).await;
    fill_until_stalled(&peer.sender).await;
    let drained = tokio::spawn(peer.sender.queue_drained(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!drained.is_finished(), "resolved while {} B are still queued", peer.sender.queued_bytes());
    (node, events, raw, peer, drained)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_once_the_peer_reads_and_not_before() {
    let (_node, _events, mut raw, peer, drained) = stalled_with_a_waiter().await;
    // The peer reads everything: the writer empties the queue and wakes the waiter.
    let reading = tokio::spawn(async move { while raw.recv().await.is_some() {} });
    timeout(Duration::from_secs(10), drained).await.expect("woken once the queue drained").unwrap();
    assert_eq!(peer.sender.queued_bytes(), 0);
    // Already drained: resolves at once.
    timeout(Duration::from_secs(1), peer.sender.queue_drained(0)).await.expect("resolves at once");
    reading.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_when_the_connection_closes() {
    let (_node, _events, _raw, peer, drained) = stalled_with_a_waiter().await;
    peer.sender.close(proto::GoodbyeReason::Shutdown);
    timeout(Duration::from_secs(5), drained).await.expect("a closing connection wakes its waiters").unwrap();
}
