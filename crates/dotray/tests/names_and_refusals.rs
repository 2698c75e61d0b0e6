//! What a user types and what a user is told: addresses by host name on real sockets, and a node
//! refused by its seed hears why (as an event, or as a start error when it asks to fail fast).

use std::time::Duration;

use bytes::Bytes;
use dotray::{Event, Node, Refusal, StartError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_and_seed_addresses_may_be_host_names() {
    let a = Node::builder().listen("localhost:0").start().await.expect("localhost resolves");
    assert!(a.local_addr().ip().is_loopback(), "{}", a.local_addr());
    let seed = format!("localhost:{}", a.local_addr().port());
    let b = Node::builder().listen("localhost:0").seed(seed.as_str()).start().await.expect("start");
    // Both ends see the link before the broadcast (as in the other end-to-end tests).
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(b.next_event().await, Some(Event::NeighbourUp { .. })) {}
        while !matches!(a.next_event().await, Some(Event::NeighbourUp { .. })) {}
    });
    joined.await.expect("b joins a through its name");
    let id = b.broadcast(Bytes::from_static(b"by name")).await.expect("broadcast");
    let message =
        tokio::time::timeout(Duration::from_secs(10), a.recv()).await.expect("joined by name").unwrap();
    assert_eq!((message.origin, message.seq, &message.payload[..]), (b.id(), id.seq, &b"by name"[..]));
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn an_address_that_does_not_resolve_is_a_clear_start_error() {
    match Node::builder().listen("localhost").start().await {
        Err(StartError::Resolve(error)) => assert_eq!(error.addr, "localhost"),
        other => panic!("expected a resolve error, got {other:?}"),
    }
    match Node::builder().seed("localhost:port").start().await {
        Err(StartError::Resolve(error)) => assert!(error.to_string().contains("host:port"), "{error}"),
        other => panic!("expected a resolve error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_network_hears_that_its_seed_refused_it() {
    let seed = Node::builder().network_id("main").start().await.unwrap();
    let stranger = Node::builder().network_id("test").seed(seed.local_addr()).start().await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stranger.next_event().await.expect("running") {
                Event::Refused { addr, reason } => return (addr, reason),
                _ => continue,
            }
        }
    })
    .await
    .expect("a refusal event");
    assert_eq!(refused, (seed.local_addr(), Refusal::Network));
    stranger.shutdown().await;

    // Told to fail fast, start itself fails, naming the seed and the reason.
    let started = Node::builder()
        .network_id("test")
        .seed(seed.local_addr())
        .fail_if_refused(Duration::from_secs(10))
        .start()
        .await;
    match started {
        Err(StartError::Refused(refusals)) => {
            assert_eq!(refusals, vec![(seed.local_addr(), Refusal::Network)])
        }
        other => panic!("expected every seed to refuse, got {other:?}"),
    }
    // The same network joins without complaint, and the events read while waiting are kept.
    let member = Node::builder()
        .network_id("main")
        .seed(seed.local_addr())
        .fail_if_refused(Duration::from_secs(10))
        .start()
        .await
        .expect("joins");
    let first = tokio::time::timeout(Duration::from_secs(1), member.next_event()).await.unwrap();
    assert!(matches!(first, Some(Event::NeighbourUp { addr, .. }) if addr == seed.local_addr()), "{first:?}");
    member.shutdown().await;
    seed.shutdown().await;
}
