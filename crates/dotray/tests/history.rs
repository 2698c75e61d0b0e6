//! A node with a history keeps what it delivered on disk: a node that was away longer than any
//! memory retains catches up from it, exactly from where its application stopped, and the
//! application can read a stream again from any position.

mod durable;

use std::time::Duration;

use bytes::Bytes;
use dotray::router::core::StreamId;
use dotray::{HistoryLimits, Message, Node, NodeBuilder, StartError};
use durable::{assert_no_gap, broadcast_joined, next_message, scratch};

/// Memory that forgets within a second, so that what a node missed while away for a few seconds is
/// held by the histories alone.
fn forgetful(builder: NodeBuilder) -> NodeBuilder {
    let router = dotray::router::core::Config {
        retention_time: Duration::from_millis(500),
        sweep_interval: Duration::from_millis(200),
        ..Default::default()
    };
    builder.router_config(router)
}

fn with_history(builder: NodeBuilder, dir: &std::path::Path) -> NodeBuilder {
    forgetful(builder).data_dir(dir).history(HistoryLimits::default())
}

async fn recalled(node: &Node) -> u64 {
    node.counters().await.unwrap().0.recalled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_away_longer_than_memory_retains_catches_up_from_a_history() {
    let (seed_dir, publisher_dir, reader_dir) = (scratch("h-seed"), scratch("h-pub"), scratch("h-reader"));
    let seed = with_history(Node::builder(), &seed_dir).start().await.unwrap();
    let publisher =
        with_history(Node::builder(), &publisher_dir).seed(seed.local_addr()).start().await.unwrap();
    let reader =
        forgetful(Node::builder()).data_dir(&reader_dir).seed(seed.local_addr()).start().await.unwrap();

    let first = broadcast_joined(&publisher, b"1").await;
    for n in 2..=5 {
        publisher.broadcast(Bytes::from(n.to_string())).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 1..=5 {
        seen.push(next_message(&reader).await);
    }
    assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    reader.ack_all(&seen).await.unwrap();
    reader.shutdown().await;

    // Sent while the reader is away, and then forgotten by every memory.
    for n in 6..=20 {
        publisher.broadcast(Bytes::from(n.to_string())).await.unwrap();
    }
    for _ in 1..=20 {
        next_message(&seed).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let reader =
        forgetful(Node::builder()).data_dir(&reader_dir).seed(seed.local_addr()).start().await.unwrap();
    for n in 6..=20u64 {
        let message = next_message(&reader).await;
        assert_eq!((message.id().stream, message.seq), (first.stream, n));
        assert_eq!(message.payload, Bytes::from(n.to_string()));
    }
    assert_no_gap(&reader).await;
    assert!(recalled(&seed).await + recalled(&publisher).await >= 15, "served from a history");
    for node in [&reader, &publisher, &seed] {
        node.shutdown().await;
    }
    for dir in [seed_dir, publisher_dir, reader_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `node`'s history of `stream` from message 1, once it holds `count` messages (its writer
/// commits in the background), or as it is after five seconds.
async fn replay_when_stored(node: &Node, stream: StreamId, count: usize) -> Vec<Message> {
    let mut replayed = Vec::new();
    for _ in 0..100 {
        replayed = node.replay(stream, 1, 100).await.unwrap();
        if replayed.len() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replayed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_reads_a_stream_again_from_any_position() {
    let (dir, publisher_dir) = (scratch("replay"), scratch("replay-pub"));
    let node = Node::builder().data_dir(&dir).history(HistoryLimits::default()).start().await.unwrap();
    let publisher = Node::builder()
        .data_dir(&publisher_dir)
        .history(HistoryLimits::default())
        .seed(node.local_addr())
        .start()
        .await
        .unwrap();
    let large = Bytes::from(vec![7u8; 700 << 10]);
    let first = broadcast_joined(&publisher, b"small 1").await;
    publisher.broadcast(large.clone()).await.unwrap();
    publisher.broadcast(Bytes::from_static(b"small 2")).await.unwrap();
    let mut delivered: Vec<Message> = Vec::new();
    for _ in 0..3 {
        delivered.push(next_message(&node).await);
    }
    assert_eq!(delivered[1].payload, large);
    assert!(delivered[1].through > delivered[1].seq, "the large message took several pieces");
    let stream: StreamId = first.stream;

    let replayed = replay_when_stored(&node, stream, 3).await;
    let view = |ms: &[Message]| ms.iter().map(|m| (m.seq, m.through, m.payload.clone())).collect::<Vec<_>>();
    assert_eq!(view(&replayed), view(&delivered), "what was delivered, in order");
    // From a later position; from inside the large message (it began before: not included); a cap.
    assert_eq!(view(&node.replay(stream, delivered[1].seq, 100).await.unwrap()), view(&delivered[1..]));
    assert_eq!(view(&node.replay(stream, delivered[1].seq + 1, 100).await.unwrap()), view(&delivered[2..]));
    assert_eq!(view(&node.replay(stream, 1, 2).await.unwrap()), view(&delivered[..2]));
    // The publisher keeps its own messages too.
    let own = replay_when_stored(&publisher, stream, 3).await;
    assert_eq!(view(&own), view(&delivered));
    // A stream it never saw: nothing.
    let unknown = StreamId { origin: node.id(), epoch: 1 };
    assert!(node.replay(unknown, 1, 100).await.unwrap().is_empty());

    let plain = Node::builder().start().await.unwrap();
    assert!(matches!(plain.replay(stream, 1, 10).await, Err(dotray::NodeError::Replay(_))));
    for n in [&plain, &publisher, &node] {
        n.shutdown().await;
    }
    let _ = (std::fs::remove_dir_all(dir), std::fs::remove_dir_all(publisher_dir));
}

#[tokio::test]
async fn a_history_without_a_data_directory_is_refused() {
    let started = Node::builder().history(HistoryLimits::default()).start().await;
    assert!(matches!(started, Err(StartError::Config(_))), "{:?}", started.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_asking_for_whole_streams_gets_their_past_from_a_history() {
    let (seed_dir, newcomer_dir) = (scratch("h-whole-seed"), scratch("h-whole-new"));
    let seed = with_history(Node::builder(), &seed_dir).start().await.unwrap();
    let publisher = forgetful(Node::builder()).seed(seed.local_addr()).start().await.unwrap();
    let first = broadcast_joined(&publisher, b"1").await;
    for n in 2..=20 {
        publisher.broadcast(Bytes::from(n.to_string())).await.unwrap();
    }
    for _ in 1..=20 {
        next_message(&seed).await;
    }
    // The stream is older than a newcomer's tolerance, and every memory has forgotten it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A small reorder window, so the stream's past is more than one window.
    let whole = dotray::router::core::Config {
        backfill_new_stream: u64::MAX,
        reorder_window: 8,
        stream_start_tolerance: Duration::ZERO,
        retention_time: Duration::from_millis(500),
        sweep_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let newcomer = Node::builder()
        .router_config(whole)
        .data_dir(&newcomer_dir)
        .seed(seed.local_addr())
        .start()
        .await
        .unwrap();
    // A new message reaches the newcomer first, far beyond its window: it must not make it skip
    // the past.
    broadcast_joined(&newcomer, b"hello").await;
    publisher.broadcast(Bytes::from_static(b"21")).await.unwrap();
    for n in 1..=21u64 {
        let message = next_message(&newcomer).await;
        assert_eq!(
            (message.id().stream, message.seq, message.payload.clone()),
            (first.stream, n, Bytes::from(n.to_string()))
        );
    }
    assert_no_gap(&newcomer).await;
    for node in [&newcomer, &publisher, &seed] {
        node.shutdown().await;
    }
    let _ = (std::fs::remove_dir_all(seed_dir), std::fs::remove_dir_all(newcomer_dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_history_is_an_error_never_a_wrong_message() {
    let (dir, publisher_dir) = (scratch("h-damaged"), scratch("h-damaged-pub"));
    let node = Node::builder().data_dir(&dir).history(HistoryLimits::default()).start().await.unwrap();
    let publisher = Node::builder().data_dir(&publisher_dir).seed(node.local_addr()).start().await.unwrap();
    let first = broadcast_joined(&publisher, b"an unmistakable payload").await;
    next_message(&node).await;
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = node.replay(first.stream, 1, 10).await.unwrap();
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored.len(), 1, "stored");
    node.shutdown().await;
    drop(node);

    // One byte of the payload changes on disk.
    let mut damaged = 0;
    for entry in std::fs::read_dir(dir.join(dotray::store::HISTORY_DIR)).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let needle = b"an unmistakable payload";
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at + 3] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            damaged += 1;
        }
    }
    assert_eq!(damaged, 1, "the payload is in one segment");
    let node = Node::builder().data_dir(&dir).history(HistoryLimits::default()).start().await;
    match node {
        // redb's checks may refuse the file at open; if not, the read must.
        Err(error) => assert!(matches!(error, StartError::DataDir(_)), "{error:?}"),
        Ok(node) => {
            let read = node.replay(first.stream, 1, 10).await;
            assert!(matches!(read, Err(dotray::NodeError::Replay(_))), "{read:?}");
            node.shutdown().await;
        }
    }
    publisher.shutdown().await;
    let _ = (std::fs::remove_dir_all(dir), std::fs::remove_dir_all(publisher_dir));
}
