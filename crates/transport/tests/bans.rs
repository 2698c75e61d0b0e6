//! A peer that breaks the protocol after its handshake is disconnected and its node id is banned: its
//! connections are refused with `Goodbye(Banned)` until the ban ends, in both directions, while other
//! peers (on the same IP address) are served as usual. Real loopback sockets, short bans.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dotray_codec::proto::{self, Body, Envelope, GoodbyeReason};
use dotray_codec::{NodeId, PROTOCOL_VERSION, SecretKey};
use dotray_transport::{
    Config, DialError, DisconnectReason, Events, HandshakeError, Transport, TransportEvent,
};

/// Short bans, so that expiry runs in the test; long enough that a loaded machine still reconnects
/// within the ban.
fn ban_config(ban: Duration) -> Config {
    Config { ban_duration: ban, ..fast_config() }
}

/// What a node answers to a hello with node id `id`: its own hello (admitted), or a goodbye.
enum Answer {
    Admitted(Box<RawPeer>),
    Refused(proto::Goodbye),
}

async fn hello_as(node: &Transport, key: &SecretKey) -> Answer {
    let mut raw = RawPeer::connect_as(node.local_addr(), key.clone()).await;
    raw.noise().await.expect("noise handshake");
    let hello = raw.hello("dotray", PROTOCOL_VERSION);
    raw.send(&hello).await;
    match raw.recv().await {
        Some(Envelope { body: Some(Body::Hello(_)) }) => Answer::Admitted(Box::new(raw)),
        Some(Envelope { body: Some(Body::Goodbye(goodbye)) }) => {
            assert!(raw.closed().await, "closed after the goodbye");
            Answer::Refused(goodbye)
        }
        other => panic!("expected a hello or a goodbye, got {other:?}"),
    }
}

/// Connects as `key`, completes the handshake, then sends a second hello: a violation.
async fn offend(node: &Transport, events: &mut Events, key: &SecretKey) {
    let id = key.node_id();
    let Answer::Admitted(mut raw) = hello_as(node, key).await else { panic!("{id:?} refused") };
    wait_for(events, |e| matches!(e, TransportEvent::Connected(p) if p.id == id).then_some(())).await;
    let hello = raw.hello("dotray", PROTOCOL_VERSION);
    raw.send(&hello).await;
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    let reason = wait_disconnected(events, id).await;
    assert_eq!(reason, DisconnectReason::ProtocolViolation("hello after the handshake".into()));
}

async fn wait_disconnected(events: &mut Events, id: NodeId) -> DisconnectReason {
    wait_for(events, |e| match e {
        TransportEvent::Disconnected { peer, reason } if peer == id => Some(reason),
        _ => None,
    })
    .await
}

fn banned_refusal(event: TransportEvent) -> Option<HandshakeError> {
    match event {
        TransportEvent::HandshakeFailed { error: error @ HandshakeError::Banned { .. }, .. } => Some(error),
        _ => None,
    }
}

/// Retries a hello as `key` until admitted; returns when.
async fn admitted_again(node: &Transport, key: &SecretKey) -> Instant {
    let id = key.node_id();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match hello_as(node, key).await {
            Answer::Admitted(_) => return Instant::now(),
            Answer::Refused(goodbye) => assert_eq!(goodbye.reason, GoodbyeReason::Banned as i32),
        }
        assert!(Instant::now() < deadline, "{id:?} never admitted again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_invalid_frame_bans_the_node_id_until_the_ban_ends() {
    let ban = Duration::from_secs(1);
    let (node, mut events) = node(ban_config(ban)).await;
    let offender = SecretKey::generate();
    let Answer::Admitted(mut raw) = hello_as(&node, &offender).await else { panic!("refused") };
    wait_connected(&mut events).await;

    // A 4 GiB length prefix after the handshake: disconnected with a goodbye that says why.
    let sent = Instant::now();
    raw.send_raw(&[0xff, 0xff, 0xff, 0xff]).await;
    match raw.recv().await {
        Some(Envelope { body: Some(Body::Goodbye(g)) }) => {
            assert_eq!(g.reason, GoodbyeReason::ProtocolViolation as i32);
            assert!(g.detail.starts_with("invalid frame: "), "{:?}", g.detail);
        }
        other => panic!("expected the goodbye, got {other:?}"),
    }
    let reason = wait_disconnected(&mut events, offender.node_id()).await;
    assert!(matches!(reason, DisconnectReason::ProtocolViolation(_)), "{reason:?}");
    let bans = node.bans();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!((bans[0].peer, bans[0].offences), (offender.node_id(), 1));
    assert!(bans[0].remaining <= ban && bans[0].reason.starts_with("invalid frame: "), "{bans:?}");

    // Its immediate reconnect with the same node id is refused, after its hello and before ours.
    let Answer::Refused(goodbye) = hello_as(&node, &offender).await else { panic!("banned peer admitted") };
    assert_eq!(goodbye.reason, GoodbyeReason::Banned as i32);
    assert!(goodbye.detail.contains("invalid frame"), "the detail says why: {:?}", goodbye.detail);
    match wait_for(&mut events, banned_refusal).await {
        HandshakeError::Banned { peer, offences: 1, remaining, reason } => {
            assert_eq!(peer, offender.node_id());
            assert!(remaining <= ban && reason.starts_with("invalid frame: "), "{remaining:?} {reason}");
        }
        other => panic!("{other:?}"),
    }
    let stats = node.stats();
    assert_eq!((stats.bans, stats.bans_issued, stats.ban_refusals), (1, 1, 1), "{stats:?}");

    // Another peer, from the same IP address, is served as usual: bans are by node id.
    assert_still_serves(&node, &mut events).await;

    // After the ban, the offender is admitted again.
    let admitted = admitted_again(&node, &offender).await;
    assert!(admitted - sent >= ban, "admitted {:?} after its offence", admitted - sent);
    assert!(node.bans().is_empty());
    assert_eq!(wait_connected(&mut events).await.id, offender.node_id());
    node.shutdown().await;
}

#[tokio::test]
async fn a_second_offence_doubles_the_ban() {
    let ban = Duration::from_millis(400);
    let (node, mut events) = node(ban_config(ban)).await;
    let offender = SecretKey::generate();

    offend(&node, &mut events, &offender).await;
    assert_eq!(node.bans()[0].offences, 1);
    admitted_again(&node, &offender).await;
    wait_disconnected(&mut events, offender.node_id()).await; // That connection closed: the test dropped it.

    // Admitted again, it offends again: banned twice as long.
    let sent = Instant::now();
    offend(&node, &mut events, &offender).await;
    let bans = node.bans();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0].offences, 2);
    assert!(bans[0].remaining > ban && bans[0].remaining <= 2 * ban, "{bans:?}");
    let admitted = admitted_again(&node, &offender).await;
    assert!(admitted - sent >= 2 * ban, "admitted {:?} after its second offence", admitted - sent);
    assert_eq!(node.stats().bans_issued, 2);
    node.shutdown().await;
}

#[tokio::test]
async fn a_violation_reported_from_above_bans_in_both_directions() {
    let (a, mut a_events) = node(ban_config(Duration::from_secs(1))).await;
    let (b, mut b_events) = node(fast_config()).await;
    let b_to_a = b.connect(a.local_addr()).await.expect("connect");
    let a_to_b = wait_connected(&mut a_events).await;
    wait_connected(&mut b_events).await;

    // A's upper layer finds a bad message from B. Reported twice (say by two layers): one offence.
    a_to_b.sender.close_for_violation("test: a message out of order");
    a_to_b.sender.close_for_violation("test: reported again");
    match wait_disconnected(&mut b_events, a.local_id()).await {
        DisconnectReason::Goodbye { reason: GoodbyeReason::ProtocolViolation, detail } => {
            assert_eq!(detail, "test: a message out of order");
        }
        other => panic!("{other:?}"),
    }
    let reason = wait_disconnected(&mut a_events, b.local_id()).await;
    assert_eq!(reason, DisconnectReason::ProtocolViolation("test: a message out of order".into()));
    assert!(b_to_a.sender.is_closed());
    let bans = a.bans();
    assert_eq!((bans.len(), bans[0].peer, bans[0].offences), (1, b.local_id(), 1), "{bans:?}");

    // B dials A: B's handshake is refused (a typed error), A reports the refusal.
    match b.connect(a.local_addr()).await {
        Err(DialError::Handshake(HandshakeError::Refused { reason: GoodbyeReason::Banned, detail })) => {
            assert!(detail.contains("test: a message out of order"), "{detail:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let refused = wait_for(&mut a_events, banned_refusal).await;
    assert!(matches!(refused, HandshakeError::Banned { peer, .. } if peer == b.local_id()), "{refused:?}");

    // A dials B: A refuses B once B's hello names it. B accepted, so it sees a connection that A closes
    // at once with the banned goodbye.
    match a.connect(b.local_addr()).await {
        Err(DialError::Handshake(HandshakeError::Banned { peer, offences: 1, .. })) => {
            assert_eq!(peer, b.local_id());
        }
        other => panic!("expected our own refusal, got {other:?}"),
    }
    match wait_disconnected(&mut b_events, a.local_id()).await {
        DisconnectReason::Goodbye { reason: GoodbyeReason::Banned, detail } => {
            assert!(detail.contains("banned") && detail.contains("out of order"), "{detail:?}");
        }
        other => panic!("{other:?}"),
    }
    let stats = a.stats();
    assert_eq!((stats.bans, stats.bans_issued, stats.ban_refusals), (1, 1, 2), "{stats:?}");
    assert!(a.peers().is_empty() && b.peers().is_empty());

    // After the ban, B connects again.
    let deadline = Instant::now() + DEADLINE;
    while !a.bans().is_empty() {
        assert!(Instant::now() < deadline, "the ban never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = b.connect(a.local_addr()).await.expect("admitted after the ban");
    assert_eq!(again.id, a.local_id());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_ban_list_stays_within_max_bans_under_many_offenders() {
    let config = Config { max_bans: 8, ..ban_config(Duration::from_secs(30)) };
    let (node, mut events) = node(config).await;
    let offenders: Vec<SecretKey> = (0..30).map(|_| SecretKey::generate()).collect();
    for key in &offenders {
        offend(&node, &mut events, key).await;
        assert!(node.bans().len() <= 8);
    }
    let stats = node.stats();
    assert_eq!((stats.bans, stats.bans_issued), (8, 30), "{stats:?}");
    // The bans ending first (the oldest) made room; the newest are all in force.
    let banned: Vec<NodeId> = node.bans().iter().map(|b| b.peer).collect();
    assert_eq!(
        banned,
        offenders[22..].iter().map(SecretKey::node_id).collect::<Vec<_>>(),
        "bans listed in the order they end"
    );
    let Answer::Refused(_) = hello_as(&node, &offenders[29]).await else {
        panic!("newest offender admitted")
    };
    let Answer::Admitted(_) = hello_as(&node, &offenders[0]).await else {
        panic!("evicted ban still refuses")
    };
    assert_still_serves(&node, &mut events).await;
    node.shutdown().await;
}

#[tokio::test]
async fn garbage_before_the_handshake_bans_nobody() {
    let (node, mut events) = node(ban_config(Duration::from_secs(30))).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.send(&proto::Ping { nonce: 1, sent_at_micros: 2 }.into()).await;
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.send_raw(b"\x00\x00\x00\x03abc").await;
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    assert!(node.bans().is_empty());
    assert_eq!(node.stats().bans_issued, 0);
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn zero_max_bans_only_disconnects() {
    let (node, mut events) = node(Config { max_bans: 0, ..fast_config() }).await;
    let offender = SecretKey::generate();
    offend(&node, &mut events, &offender).await;
    assert!(node.bans().is_empty());
    let Answer::Admitted(_) = hello_as(&node, &offender).await else { panic!("refused with bans off") };
}
