//! Insiders lying about another origin's stream, on real sockets. A hostile node with a key pair of
//! its own joins a victim as a neighbour, watches the good publisher's stream go by (declaration,
//! manifests, payloads), and then tries what issue 20 lists: forged messages at the next sequence
//! number, inside the reorder window and far ahead; a genuine manifest moved to other numbers; a
//! message of the publisher's previous run replayed into its current one; a forged stream
//! declaration; a payload sent without its manifest. Each forgery is rejected and its sender banned
//! (withholding a manifest only gets the payload ignored: see the router's crate docs); the victim
//! delivers exactly the publisher's messages, once, in order, and the publisher keeps its link.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray::codec::proto::{self, Body, Envelope};
use dotray::codec::{NodeId, SecretKey};
use dotray::router::core::StreamId;
use dotray::router::proof::{Ed25519Signer, Manifest, payload_hash, stream_decl_message};
use dotray::{Message, Node};

mod hostile_peer;
use hostile_peer::{Hostile, fast};

/// What the hostile node saw of the publisher's stream on its link from the victim.
struct Seen {
    manifest: proto::Manifest,
    data: proto::Data,
}

/// Reads what the victim relays to `hostile` until it has a manifest and a payload of `stream`.
async fn watch(hostile: &mut Hostile, stream: StreamId) -> Seen {
    let (mut stream_ref, mut manifest, mut data) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let envelope = hostile.raw.recv_for(left).await.expect("the victim relays the publisher's stream");
        match envelope.body {
            Some(Body::StreamDecl(d)) if d.origin == stream.origin.to_bytes() && d.epoch == stream.epoch => {
                stream_ref = Some(d.stream_ref)
            }
            Some(Body::Manifest(m)) if Some(m.stream_ref) == stream_ref => manifest = Some(m),
            Some(Body::Data(d)) if Some(d.stream_ref) == stream_ref => data = Some(d),
            Some(Body::Ping(p)) => {
                hostile.send(proto::Pong { nonce: p.nonce, sent_at_micros: p.sent_at_micros }).await;
            }
            _ => {}
        }
        if let (Some(manifest), Some(data)) = (&manifest, &data) {
            return Seen { manifest: manifest.clone(), data: data.clone() };
        }
    }
}

/// The hostile node's declaration of `stream` as its reference 1, naming no address.
fn declare(stream: StreamId) -> Envelope {
    proto::StreamDecl {
        stream_ref: 1,
        origin: stream.origin.to_bytes(),
        epoch: stream.epoch,
        ..Default::default()
    }
    .into()
}

/// A manifest for `stream` listing `payload` at `first`, signed by `key` (not the origin's).
fn forged_manifest(key: &SecretKey, stream: StreamId, first: u64, payload: &[u8]) -> Envelope {
    let hashes = Bytes::copy_from_slice(&payload_hash(payload));
    let m = Manifest::sign(&*Ed25519Signer::new(key.clone()), stream, first, hashes);
    proto::Manifest {
        stream_ref: 1,
        first_seq: first,
        hashes: m.hashes,
        signature: m.signature.to_vec().into(),
        groups: m.groups,
    }
    .into()
}

fn data(seq: u64, payload: &'static [u8]) -> Envelope {
    proto::Data { stream_ref: 1, seq, hops: 0, payload: Bytes::from_static(payload) }.into()
}

/// Everything the victim delivers, in order.
fn record(victim: &Node) -> Arc<Mutex<Vec<Message>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (node, out) = (victim.clone(), log.clone());
    tokio::spawn(async move {
        while let Some(m) = node.recv().await {
            out.lock().unwrap().push(m);
        }
    });
    log
}

/// The publisher's next message, `good-{seq}`, and the wait until the victim has delivered it.
async fn publish(good: &Node, log: &Mutex<Vec<Message>>, seq: u64) {
    let payload = Bytes::from(format!("good-{seq}"));
    let id = good.broadcast(payload.clone()).await.unwrap();
    assert_eq!(id.seq, seq);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.origin == good.id() && m.epoch == id.stream.epoch && m.seq == seq)
    {
        assert!(Instant::now() < deadline, "the victim did not deliver the publisher's message {seq}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `a` and `b` are neighbours.
async fn neighbours(a: &Node, b: &Node) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let links = a.topology().await.unwrap();
        if links.eager.contains(&b.id()) || links.lazy.contains(&b.id()) {
            return;
        }
        assert!(Instant::now() < deadline, "{} and {} did not become neighbours", a.id(), b.id());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Joins a new hostile identity to `victim`, sends `frames` as it, and returns the victim's goodbye
/// (`None` if it kept the connection for a second).
async fn attack(victim: &Node, key: &SecretKey, frames: Vec<Envelope>) -> Option<proto::Goodbye> {
    let mut hostile = Hostile::join_as(victim, key.clone()).await;
    // Broadcast frames count only from a neighbour: wait for the victim's `Sync`, which it sends a
    // new neighbour.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match hostile.raw.recv_for(left).await.expect("the victim takes the hostile node as a neighbour").body
        {
            Some(Body::Sync(_)) => break,
            Some(Body::Ping(p)) => {
                hostile.send(proto::Pong { nonce: p.nonce, sent_at_micros: p.sent_at_micros }).await;
            }
            _ => {}
        }
    }
    for frame in frames {
        hostile.raw.send(&frame).await;
    }
    // The victim pings its neighbours, so the connection never goes quiet: watch it for a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match hostile.raw.recv_for(left).await?.body {
            Some(Body::Goodbye(goodbye)) => return Some(goodbye),
            Some(Body::Ping(p)) => {
                hostile.send(proto::Pong { nonce: p.nonce, sent_at_micros: p.sent_at_micros }).await;
            }
            _ => {}
        }
    }
}

fn assert_banned_for(goodbye: Option<proto::Goodbye>, why: &str, name: &str) {
    let goodbye = goodbye.unwrap_or_else(|| panic!("{name}: the forger was not disconnected"));
    assert_eq!(goodbye.reason, proto::GoodbyeReason::ProtocolViolation as i32, "{name}");
    assert!(goodbye.detail.contains(why), "{name}: {:?}", goodbye.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_and_unproven_messages_change_nothing_the_victim_delivers() {
    let publisher_key = SecretKey::generate();
    let victim = Node::builder().membership_config(fast()).start().await.unwrap();
    let start_publisher = || {
        Node::builder()
            .membership_config(fast())
            .secret_key(publisher_key.clone())
            .seed(victim.local_addr())
            .start()
    };
    let good = start_publisher().await.unwrap();
    let log = record(&victim);
    neighbours(&victim, &good).await;
    publish(&good, &log, 1).await;
    let epoch = log.lock().unwrap()[0].epoch;
    let stream = StreamId { origin: good.id(), epoch };

    // A watcher joins and sees the stream go by, as any neighbour may.
    let mut watcher = Hostile::join(&victim).await;
    watcher.drain().await;
    let watching = tokio::spawn(async move {
        let seen = watch(&mut watcher, stream).await;
        (watcher, seen)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish(&good, &log, 2).await;
    let (_watcher, seen) = watching.await.unwrap();
    let mut next = 3;

    let mut banned = Vec::new();
    let forged: [(&str, u64); 3] = [("next", 0), ("inside the reorder window", 5), ("far ahead", 4_000)];
    for (name, ahead) in forged {
        let key = SecretKey::generate();
        let seq = next + ahead;
        let goodbye = attack(
            &victim,
            &key,
            vec![declare(stream), forged_manifest(&key, stream, seq, b"forged"), data(seq, b"forged")],
        )
        .await;
        assert_banned_for(goodbye, "manifest with a bad signature", name);
        banned.push(key.node_id());
        publish(&good, &log, next).await;
        next += 1;
    }

    // The publisher's genuine manifest, moved to the next numbers, with the payload it signed.
    let key = SecretKey::generate();
    let moved = proto::Manifest { stream_ref: 1, first_seq: next, ..seen.manifest.clone() };
    let replayed = proto::Data { stream_ref: 1, seq: next, ..seen.data.clone() };
    let goodbye = attack(&victim, &key, vec![declare(stream), moved.into(), replayed.into()]).await;
    assert_banned_for(goodbye, "manifest with a bad signature", "a genuine manifest moved");
    banned.push(key.node_id());
    publish(&good, &log, next).await;
    next += 1;

    // A declaration binding the publisher's stream to another address, not signed by the publisher.
    let key = SecretKey::generate();
    let lie = stream_decl_message(stream, "127.0.0.1:6666");
    let decl = proto::StreamDecl {
        stream_ref: 1,
        origin: stream.origin.to_bytes(),
        epoch,
        origin_addr: "127.0.0.1:6666".into(),
        origin_signature: key.sign(&lie).to_vec().into(),
    };
    let goodbye = attack(&victim, &key, vec![decl.into()]).await;
    assert_banned_for(goodbye, "origin address its origin did not sign", "a forged stream declaration");
    banned.push(key.node_id());

    // A payload with no manifest at all: ignored, not relayed, not delivered.
    let key = SecretKey::generate();
    let goodbye = attack(&victim, &key, vec![declare(stream), data(next, b"unproven")]).await;
    assert!(goodbye.is_none(), "withholding a manifest is not provable misbehaviour: {goodbye:?}");
    publish(&good, &log, next).await;
    next += 1;

    // The publisher restarts with its key: a new epoch. Its previous run's message, replayed as the
    // new run's next one, is a forgery; replayed as what it is, it is an old message nobody takes.
    good.shutdown().await;
    drop(good);
    let good = start_publisher().await.unwrap();
    neighbours(&victim, &good).await;
    publish(&good, &log, 1).await;
    let new_epoch = log.lock().unwrap().last().unwrap().epoch;
    assert_ne!(new_epoch, epoch);
    let current = StreamId { epoch: new_epoch, ..stream };
    let key = SecretKey::generate();
    let old_manifest = proto::Manifest { stream_ref: 1, first_seq: 2, ..seen.manifest.clone() };
    let old_data = proto::Data { stream_ref: 1, seq: 2, ..seen.data.clone() };
    let goodbye =
        attack(&victim, &key, vec![declare(current), old_manifest.clone().into(), old_data.clone().into()])
            .await;
    assert_banned_for(goodbye, "manifest with a bad signature", "an old epoch's message replayed");
    banned.push(key.node_id());
    let key = SecretKey::generate();
    let as_itself = proto::Manifest { first_seq: seen.manifest.first_seq, ..old_manifest };
    let goodbye = attack(
        &victim,
        &key,
        vec![declare(stream), as_itself.into(), proto::Data { stream_ref: 1, ..seen.data }.into()],
    )
    .await;
    assert!(goodbye.is_none(), "a genuine old message is no violation: {goodbye:?}");
    publish(&good, &log, 2).await;

    // What the victim delivered: exactly the publisher's messages, once, in order, with its address.
    let delivered = log.lock().unwrap().clone();
    let runs: Vec<(u64, u64, Bytes)> =
        delivered.iter().map(|m| (m.epoch, m.seq, m.payload.clone())).collect();
    let mut expected: Vec<(u64, u64, Bytes)> =
        (1..next).map(|seq| (epoch, seq, Bytes::from(format!("good-{seq}")))).collect();
    expected.extend((1..=2).map(|seq| (new_epoch, seq, Bytes::from(format!("good-{seq}")))));
    assert_eq!(runs, expected);
    assert!(
        delivered.iter().all(|m| m.origin == good.id() && m.origin_addr.is_some_and(|a| a.port() != 6666))
    );
    // Only the forgers are banned, and the publisher is still the victim's neighbour.
    let mut bans: Vec<NodeId> = victim.bans().iter().map(|b| b.peer).collect();
    bans.sort();
    banned.sort();
    assert_eq!(bans, banned);
    assert!(good.bans().is_empty());
    let links = victim.topology().await.unwrap();
    assert!(links.eager.contains(&good.id()) || links.lazy.contains(&good.id()), "{links:?}");
}
