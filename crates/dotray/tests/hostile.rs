//! Hostile peers speaking the real codec: after a valid handshake and a `Join` (so that the node takes
//! them as neighbours and hands their frames to membership and the router), they send what a broken or
//! malicious node would. The node must stay bounded and keep serving its good peers.

use std::time::Duration;

use bytes::Bytes;
use dotray::codec::proto::{self, Body};
use dotray::codec::{NodeId, SecretKey};

mod hostile_peer;
use hostile_peer::{Hostile, RawPeer, assert_good_broadcast_arrives, fast, victim_and_good_peer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_fake_addresses_in_peer_exchange_keep_the_views_bounded() {
    let (victim, good) = victim_and_good_peer().await;
    let mut hostile = Hostile::join(&victim).await;
    for round in 0..40u32 {
        let peers: Vec<proto::PeerRecord> = (0..200u32)
            .map(|i| proto::PeerRecord {
                node_id: NodeId::random().to_bytes(),
                addr: format!("127.0.{}.{}:{}", round % 250 + 1, i % 250 + 1, 10_000 + i),
            })
            .collect();
        let origin = proto::PeerRecord { node_id: NodeId::random().to_bytes(), addr: "127.0.0.1:9".into() };
        hostile
            .send(proto::PeerExchangeRequest { origin: Some(origin), ttl: 0, peers, exchange_id: 1 })
            .await;
        hostile.drain().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let known = victim.nodes().await.unwrap();
    let config = fast();
    assert!(
        known.len()
            <= config.active_view_capacity + config.passive_view_capacity + config.max_transient_connections,
        "8,000 fake addresses left {} known nodes",
        known.len()
    );
    assert_good_broadcast_arrives(&victim, &good, "after-exchange-flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_far_future_data_and_endless_digests_do_not_stall_delivery() {
    let (victim, good) = victim_and_good_peer().await;
    // The good node's stream, as the victim knows it.
    let first = good.broadcast(Bytes::from_static(b"good-1")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), victim.recv()).await.unwrap().unwrap();
    assert_eq!((m.seq, m.origin), (1, good.id()));

    let mut hostile = Hostile::join(&victim).await;
    hostile.drain().await;
    // Forge a payload a billion messages ahead on the good node's real stream, and digests and grafts
    // for ranges of billions of messages that do not exist.
    let forged_ref = 1;
    hostile
        .send(proto::StreamDecl {
            stream_ref: forged_ref,
            origin: good.id().to_bytes(),
            epoch: first.stream.epoch,
            ..Default::default()
        })
        .await;
    hostile
        .send(proto::Data {
            stream_ref: forged_ref,
            seq: 1_000_000_000,
            hops: 0,
            payload: Bytes::from_static(b"forged"),
        })
        .await;
    for stream_ref in 2..=200u32 {
        hostile
            .send(proto::StreamDecl {
                stream_ref,
                origin: NodeId::random().to_bytes(),
                epoch: 7,
                ..Default::default()
            })
            .await;
        hostile
            .send(proto::IHave {
                ranges: vec![proto::SeqRange { stream_ref, first: 1, last: u64::MAX / 2 }],
                hops: 0,
            })
            .await;
        hostile
            .send(proto::Graft {
                want: vec![proto::SeqRange { stream_ref, first: 1, last: u64::MAX }],
                eager: true,
            })
            .await;
        hostile.drain().await;
    }
    // A node query flood.
    for request_id in 0..2_000u64 {
        hostile.send(proto::NodeQueryRequest { request_id, max: u32::MAX }).await;
    }
    hostile.drain().await;

    // The good stream goes on: messages 2 and 3 arrive next, in order; the forgery never does.
    for seq in 2..=3u64 {
        good.broadcast(Bytes::from(format!("good-{seq}"))).await.unwrap();
    }
    for seq in 2..=3u64 {
        let m = tokio::time::timeout(Duration::from_secs(10), victim.recv()).await.expect("in time").unwrap();
        assert_eq!((m.origin, m.seq), (good.id(), seq), "the good stream is neither blocked nor skipped");
        assert_eq!(m.payload, Bytes::from(format!("good-{seq}")));
    }
    let (counters, _) = victim.counters().await.unwrap();
    assert_eq!(counters.delivered, 3, "digests and grafts for nothing deliver nothing: {counters:?}");
    assert_good_broadcast_arrives(&victim, &good, "after-forgeries").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_level_violation_bans_the_peer_and_its_reconnect_is_refused() {
    let (victim, good) = victim_and_good_peer().await;
    let key = SecretKey::generate();
    let id = key.node_id();
    let mut hostile = Hostile::join_as(&victim, key.clone()).await;
    // Data with sequence number 0 on a declared stream: the router layer finds the violation.
    let origin = NodeId::random().to_bytes();
    hostile.send(proto::StreamDecl { stream_ref: 1, origin, epoch: 1, ..Default::default() }).await;
    hostile.send(proto::Data { stream_ref: 1, seq: 0, hops: 0, payload: Bytes::from_static(b"bad") }).await;
    let goodbye = hostile.goodbye().await.expect("a goodbye");
    assert_eq!(goodbye.reason, proto::GoodbyeReason::ProtocolViolation as i32);
    assert!(goodbye.detail.contains("sequence number 0"), "the detail says why: {:?}", goodbye.detail);
    let bans = victim.bans();
    assert_eq!((bans.len(), bans[0].peer, bans[0].offences), (1, id, 1), "{bans:?}");

    // Back at once with the same node id: refused after its hello.
    let mut again = Hostile::join_as(&victim, key).await;
    let goodbye = again.goodbye().await.expect("a goodbye");
    assert_eq!(goodbye.reason, proto::GoodbyeReason::Banned as i32);
    assert_eq!(victim.transport_stats().ban_refusals, 1);
    assert_good_broadcast_arrives(&victim, &good, "after-ban").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_level_violation_bans_the_peer_too() {
    let (victim, good) = victim_and_good_peer().await;
    let key = SecretKey::generate();
    let id = key.node_id();
    let mut hostile = Hostile::join_as(&victim, key.clone()).await;
    // A forward-join naming a 31-byte node id: membership's wire check finds the violation.
    let bad = proto::PeerRecord { node_id: vec![1u8; 31].into(), addr: "127.0.0.1:1".into() };
    hostile.send(proto::ForwardJoin { node: Some(bad), ttl: 1 }).await;
    let goodbye = hostile.goodbye().await.expect("a goodbye");
    assert_eq!(goodbye.reason, proto::GoodbyeReason::ProtocolViolation as i32);
    assert!(goodbye.detail.starts_with("invalid membership message"), "{:?}", goodbye.detail);
    let bans = victim.bans();
    assert_eq!((bans.len(), bans[0].peer, bans[0].offences), (1, id, 1), "one offence: {bans:?}");
    let goodbye = Hostile::join_as(&victim, key).await.goodbye().await.expect("a goodbye");
    assert_eq!(goodbye.reason, proto::GoodbyeReason::Banned as i32);
    assert_good_broadcast_arrives(&victim, &good, "after-membership-ban").await;
}

/// The attack that node ids as public keys close: a stranger asks the victim which peers it knows
/// (node query answers anyone who completes a handshake), then tries to pass for the victim's honest
/// neighbour (claiming its id in the handshake, speaking version 1 with a plaintext `Hello` under its
/// id, sending an empty frame and `Goodbye(Shutdown)` as it) while the neighbour broadcasts. The honest
/// link survives: nobody is banned but the stranger, and every message arrives, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_pass_for_a_neighbour_learned_from_a_node_query() {
    let (victim, good) = victim_and_good_peer().await;

    // 1. Learn the victim's neighbours, as anyone may.
    let mut spy = RawPeer::connect(victim.local_addr()).await;
    spy.handshake().await;
    spy.send(&proto::NodeQueryRequest { request_id: 7, max: 64 }.into()).await;
    let known = loop {
        match spy.recv().await.expect("an answer").body {
            Some(Body::NodeQueryResponse(answer)) => break answer.nodes,
            _ => continue,
        }
    };
    let neighbour_id = known
        .iter()
        .filter_map(|info| NodeId::from_slice(&info.node.as_ref()?.node_id))
        .find(|id| *id == good.id())
        .expect("the query names the honest neighbour");

    // 2. While the neighbour broadcasts, try every way to pass for it.
    let sending = {
        let good = good.clone();
        tokio::spawn(async move {
            for i in 0..28u32 {
                good.broadcast(Bytes::from(format!("m{i}"))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    for _ in 0..3 {
        // Claims the neighbour's id in its identity proof, signed with its own key.
        let mut impostor = RawPeer::connect(victim.local_addr()).await;
        impostor.claim = Some(neighbour_id);
        if impostor.noise().await.is_ok() {
            impostor.send_raw(&[]).await;
            impostor
                .send(
                    &proto::Goodbye { reason: proto::GoodbyeReason::Shutdown as i32, detail: String::new() }
                        .into(),
                )
                .await;
            assert!(impostor.closed().await, "the impostor is cut off");
        }
        // Speaks version 1: a plaintext hello under the neighbour's id, an empty frame, a goodbye.
        let mut old = RawPeer::connect(victim.local_addr()).await;
        old.send(
            &proto::Hello { protocol_version: 1, network_id: "dotray".into(), ..Default::default() }.into(),
        )
        .await;
        old.send_wire(&[0, 0, 0, 0]).await;
        old.send(
            &proto::Goodbye { reason: proto::GoodbyeReason::Shutdown as i32, detail: String::new() }.into(),
        )
        .await;
        assert_eq!(old.expect_goodbye().await, proto::GoodbyeReason::VersionUnsupported);
    }
    sending.await.unwrap();

    // 3. Every message arrived once and in order, over the link that was never touched.
    for i in 0..28u32 {
        let m = tokio::time::timeout(Duration::from_secs(10), victim.recv()).await.expect("in time").unwrap();
        assert_eq!((m.origin, m.payload), (good.id(), Bytes::from(format!("m{i}"))));
    }
    assert!(victim.bans().iter().all(|ban| ban.peer != good.id()), "{:?}", victim.bans());
    let neighbours = victim.nodes().await.unwrap();
    assert!(
        neighbours
            .iter()
            .any(|n| n.peer.id == good.id() && n.state == dotray::membership::core::NodeState::Active),
        "still an active neighbour: {neighbours:?}"
    );
    assert_eq!(victim.transport_stats().ban_refusals, 0);
}
