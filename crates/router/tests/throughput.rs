//! A rough speed check of the core's payload path (not part of the default suite): one router relays
//! 200,000 payloads of one stream from one neighbour to two eager and three lazy neighbours, each
//! proven by an Ed25519-signed manifest of 256 payloads, as the origin's batches are under load.
//! `cargo test --release -p dotray-router --test throughput -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::{NodeId, SecretKey};
use dotray_router::core::{Action, Config, Message, Router, StreamId, Timer};
use dotray_router::proof::{Ed25519Signer, Manifest, payload_hash};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
#[ignore = "a measurement, run in release"]
fn relay_path_cost_per_message() {
    let start = Instant::now();
    let id = |n: u8| NodeId::from_bytes([n; 32]);
    let relay = Ed25519Signer::new(SecretKey::generate());
    let mut r = Router::new(relay, 1, Config::default(), ChaCha8Rng::seed_from_u64(1), start);
    for n in 2..=7 {
        r.handle_neighbour_up(id(n), start);
    }
    for n in 5..=7 {
        r.handle_message(id(n), Message::Prune, start);
    }
    let origin = Ed25519Signer::new(SecretKey::generate());
    let stream = StreamId { origin: dotray_router::proof::Signer::node_id(&*origin), epoch: 3 };
    let payload = Bytes::from(vec![0u8; 1024]);
    let batch = 256u64;
    let hashes: Bytes = (0..batch).flat_map(|_| payload_hash(&payload)).collect::<Vec<u8>>().into();
    let n = 200_000u64;
    let (mut sends, mut delivered) = (0u64, 0u64);
    let mut kinds = std::collections::BTreeMap::new();
    let mut pending: Vec<(Instant, Timer)> = Vec::new();
    let wall = Instant::now();
    for seq in 1..=n {
        // Simulated time: 10 µs per message, so timers fire along the way.
        let now = start + Duration::from_micros(10 * seq);
        if seq % batch == 1 {
            let manifest = Manifest::sign(&*origin, stream, seq, hashes.clone());
            r.handle_message(id(2), Message::Manifest(Arc::new(manifest)), now);
        }
        r.handle_message(id(2), Message::Data { stream, seq, hops: 1, payload: payload.clone() }, now);
        while let Some(action) = r.poll_action() {
            match action {
                Action::Send { to, message } => {
                    sends += to.len() as u64;
                    *kinds.entry(message.name()).or_insert(0u64) += to.len() as u64;
                }
                Action::Deliver(_) => delivered += 1,
                Action::SetTimer { at, timer } => pending.push((at, timer)),
                _ => {}
            }
        }
        // Fire the batching timers that are due (the graft/gap/sweep ones are not needed here).
        let (due, later): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(at, _)| *at <= now);
        pending = later;
        for (_, timer) in due.into_iter().filter(|(_, t)| matches!(t, Timer::Flush | Timer::Ack)) {
            r.handle_timer(timer, now);
        }
    }
    let elapsed = wall.elapsed();
    eprintln!(
        "{n} payloads in {elapsed:?}: {:.0} ns/payload, {sends} sends, {delivered} delivered",
        elapsed.as_nanos() as f64 / n as f64
    );
    eprintln!("sends by kind: {kinds:?}");
    assert_eq!(delivered, n);
    // Two eager pushes per payload; digests and acks are batched, not per message.
    assert_eq!(kinds.get("data"), Some(&(2 * n)));
    assert!(kinds.get("ihave").copied().unwrap_or(0) < n / 50, "digests are batched");
    assert!(kinds.get("ack").copied().unwrap_or(0) < n / 20, "acks are batched");
}
