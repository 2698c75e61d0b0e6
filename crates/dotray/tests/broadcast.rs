//! End to end over real loopback sockets: nodes started as in the seed's demo (each seeded by the
//! previous one) deliver every broadcast exactly once, in per-origin order, with the right origin.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray::{Node, NodeId};

mod chain;
use chain::start_chain;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_delivers_every_message_once_in_order() {
    const PER_PUBLISHER: u64 = 200;
    let nodes = start_chain(5).await;
    let publishers = [2usize, 4];

    // Publish from two nodes concurrently.
    let mut sends = Vec::new();
    for &p in &publishers {
        let node = nodes[p].clone();
        sends.push(tokio::spawn(async move {
            for i in 1..=PER_PUBLISHER {
                let id = node.broadcast(Bytes::from(format!("hello-{p}-{i}"))).await.expect("broadcast");
                assert_eq!(id.seq, i, "sequence numbers count from 1");
            }
        }));
    }
    for send in sends {
        send.await.unwrap();
    }

    // Every node receives every message of every other publisher exactly once, in order.
    for (j, node) in nodes.iter().enumerate() {
        let expected: Vec<usize> = publishers.iter().copied().filter(|&p| p != j).collect();
        let origins: HashMap<NodeId, usize> = expected.iter().map(|&p| (nodes[p].id(), p)).collect();
        let mut next: HashMap<NodeId, u64> = origins.keys().map(|id| (*id, 1)).collect();
        let total = expected.len() as u64 * PER_PUBLISHER;
        for _ in 0..total {
            let message = tokio::time::timeout(Duration::from_secs(20), node.recv())
                .await
                .unwrap_or_else(|_| panic!("node {j} stalled; still expecting {next:?}"))
                .expect("running");
            let p = *origins.get(&message.origin).unwrap_or_else(|| panic!("node {j}: unexpected origin"));
            let want = next.get_mut(&message.origin).unwrap();
            assert_eq!(message.seq, *want, "node {j}: per-origin order, no duplicates, no gaps");
            assert_eq!(message.payload, Bytes::from(format!("hello-{p}-{want}")));
            assert_eq!(message.origin_addr, Some(nodes[p].local_addr()), "the origin, not the previous hop");
            *want += 1;
        }
        // Nothing more: no duplicate arrives late.
        let extra = tokio::time::timeout(Duration::from_millis(300), node.recv()).await;
        assert!(extra.is_err(), "node {j} received more than expected: {extra:?}");
    }
    let (counters, driver) = nodes[0].counters().await.unwrap();
    eprintln!("node 0 counters: {counters:?} {driver:?}");
    for node in &nodes {
        node.shutdown().await;
    }
}

/// `broadcast` numbers a message as it queues it, without asking the router: callers racing on one
/// node must still get distinct ids, and each id must be the one the network delivers that payload
/// under (the queue order is the sending order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_broadcasts_on_one_node_get_the_ids_they_are_delivered_under() {
    const TASKS: usize = 4;
    const PER_TASK: usize = 100;
    let nodes = start_chain(2).await;
    let mut sends = Vec::new();
    for task in 0..TASKS {
        let node = nodes[0].clone();
        sends.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_TASK {
                let payload = Bytes::from(format!("{task}-{i}"));
                ids.push((node.broadcast(payload.clone()).await.expect("broadcast").seq, payload));
            }
            ids
        }));
    }
    let mut told: HashMap<u64, Bytes> = HashMap::new();
    for send in sends {
        for (seq, payload) in send.await.unwrap() {
            assert!(told.insert(seq, payload).is_none(), "seq {seq} given twice");
        }
    }
    let total = (TASKS * PER_TASK) as u64;
    assert_eq!(told.keys().max(), Some(&total), "ids 1..={total}, none skipped");
    for _ in 0..total {
        let message = tokio::time::timeout(Duration::from_secs(20), nodes[1].recv())
            .await
            .expect("delivered")
            .expect("running");
        assert_eq!(Some(&message.payload), told.get(&message.seq), "delivered under the id it was given");
    }
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_reaches_one_node_and_query_works_remotely() {
    let nodes = start_chain(3).await;
    let (a, c) = (&nodes[0], &nodes[2]);
    a.send_to(c.id(), Bytes::from_static(b"just for you")).await.expect("send_to");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), c.next_event()).await.expect("direct arrives");
        if let Some(dotray::Event::Direct { from, payload }) = event {
            assert_eq!(from, a.id());
            assert_eq!(payload, Bytes::from_static(b"just for you"));
            break;
        }
    }
    // One byte over the direct-message limit: refused here, with the typed error.
    let too_long = Bytes::from(vec![0; 64 * 1024 + 1]);
    match a.send_to(c.id(), too_long).await {
        Err(dotray::NodeError::TooLong(error)) => {
            assert_eq!((error.len, error.max), (64 * 1024 + 1, 64 * 1024))
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    let remote = a.query_nodes(nodes[1].id()).await.expect("remote query");
    assert!(remote.iter().any(|info| info.peer.id == c.id()), "node 1 knows node 2: {remote:?}");
    for node in &nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_style_start_node_broadcasts_and_receives() {
    let (send_a, mut recv_a, a) = dotray::start_node("127.0.0.1:0", None).await.unwrap();
    let (send_b, mut recv_b, b) =
        dotray::start_node("127.0.0.1:0", Some(a.local_addr().into())).await.unwrap();
    // Wait for the link, then talk both ways through the channels.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.nodes().await.unwrap().is_empty() || b.nodes().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the two nodes did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send_a.send(Bytes::from_static(b"from a")).await.unwrap();
    send_b.send(Bytes::from_static(b"from b")).await.unwrap();
    let at_b = tokio::time::timeout(Duration::from_secs(10), recv_b.recv()).await.unwrap().unwrap();
    let at_a = tokio::time::timeout(Duration::from_secs(10), recv_a.recv()).await.unwrap().unwrap();
    assert_eq!((at_b.payload, at_b.origin), (Bytes::from_static(b"from a"), a.id()));
    assert_eq!((at_a.payload, at_a.origin), (Bytes::from_static(b"from b"), b.id()));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_calls_fail_with_a_typed_error_and_dropping_the_last_handle_stops_a_node() {
    let nodes = start_chain(3).await;
    // Graceful shutdown: the other nodes see it leave at once (a goodbye, not a timeout).
    nodes[2].shutdown().await;
    assert!(matches!(nodes[2].broadcast(Bytes::from_static(b"late")).await, Err(dotray::NodeError::Stopped)));
    assert!(nodes[2].recv().await.is_none(), "no more messages after shutdown");
    assert!(matches!(nodes[2].nodes().await, Err(dotray::NodeError::Stopped)));

    // Dropping every handle of node 1 stops it: node 0 loses it as a neighbour.
    let (id1, addr1) = (nodes[1].id(), nodes[1].local_addr());
    let mut nodes = nodes;
    drop(nodes.remove(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let known = nodes[0].nodes().await.unwrap();
        let active =
            known.iter().any(|n| n.peer.id == id1 && n.state == dotray::membership::core::NodeState::Active);
        if !active {
            break;
        }
        assert!(Instant::now() < deadline, "the dropped node still looks active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its port is free again: the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr1).await.is_ok() {
        assert!(Instant::now() < deadline, "the dropped node still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[0].shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_sent_as_soon_as_the_joiner_sees_its_seed_reaches_the_seed() {
    // The joiner sees the link before the seed does; what it pushes in between must not be lost.
    for round in 0..3 {
        let seed = Node::builder().start().await.unwrap();
        let joiner = Node::builder().seed(seed.local_addr()).start().await.unwrap();
        let up = tokio::time::timeout(Duration::from_secs(10), async {
            while !matches!(joiner.next_event().await, Some(dotray::Event::NeighbourUp { .. })) {}
        });
        up.await.expect("joined");
        let id = joiner.broadcast(Bytes::from_static(b"right away")).await.unwrap();
        let message = tokio::time::timeout(Duration::from_secs(5), seed.recv())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the seed never got the message"))
            .unwrap();
        assert_eq!((message.origin, message.seq), (joiner.id(), id.seq));
        joiner.shutdown().await;
        seed.shutdown().await;
    }
}
