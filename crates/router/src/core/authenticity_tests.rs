//! Unit tests of signed broadcasts in the router core: batching and signing at the origin, manifests
//! ahead of payloads on every link, and what a neighbour lying about another origin's stream gets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::tests::{data, deliveries, drain, feed, id, router_with_neighbours, sends, stream};
use super::*;
use crate::proof::{InsecureSigner, Manifest, payload_hash};

pub(super) fn violations(actions: &[Action]) -> Vec<NodeId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Violation { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect()
}

fn manifests(actions: &[Action]) -> Vec<(Vec<NodeId>, Arc<Manifest>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, message: Message::Manifest(m) } => Some((to.to_vec(), m.clone())),
            _ => None,
        })
        .collect()
}

/// Node 1's router with `config` and `neighbours`, the actions of their arrival drained.
fn node_with(config: Config, neighbours: &[u8], now: Instant) -> Router<ChaCha8Rng> {
    let mut r = Router::new(InsecureSigner::new(id(1)), 7, config, ChaCha8Rng::seed_from_u64(1), now);
    for &n in neighbours {
        r.handle_neighbour_up(id(n), now);
    }
    drain(&mut r);
    r
}

/// The runs `first..=last` of the manifests `actions` send.
fn signed_runs(actions: &[Action]) -> Vec<(u64, u64)> {
    manifests(actions).iter().map(|(_, m)| (m.first, m.last())).collect()
}

fn gaps(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Event(Event::Gap { .. }))).count()
}

/// A manifest of `stream` covering `first..` with these payloads, signed by its origin.
fn manifest(stream: StreamId, first: u64, payloads: &[&[u8]]) -> Arc<Manifest> {
    let hashes: Vec<u8> = payloads.iter().flat_map(|p| payload_hash(p)).collect();
    Arc::new(Manifest::sign(&*InsecureSigner::new(stream.origin), stream, first, hashes.into()))
}

fn payload(seq: u64) -> Bytes {
    Bytes::from(vec![seq as u8; 4])
}

#[test]
fn a_burst_of_broadcasts_shares_one_manifest_sent_ahead_of_the_payloads() {
    let now = Instant::now();
    let config = Config { max_batch_len: 8, ..Config::default() };
    let mut r = node_with(config, &[2, 3], now);
    for b in [b"a", b"b", b"c"] {
        r.broadcast(Bytes::from_static(b), now);
    }
    let actions = drain(&mut r);
    assert!(sends(&actions).is_empty() && manifests(&actions).is_empty(), "nothing leaves unsigned");
    assert!(
        actions.iter().any(|a| matches!(a, Action::SetTimer { timer: Timer::Seal, at } if *at == now)),
        "nothing was signed before: the batch may be signed at once"
    );
    r.seal_broadcasts(now);
    let actions = drain(&mut r);
    let sent = manifests(&actions);
    assert_eq!(sent.len(), 1, "one manifest, to both eager peers in one send");
    let (to, m) = &sent[0];
    assert_eq!(to, &vec![id(2), id(3)]);
    assert_eq!((m.first, m.last()), (1, 3));
    assert!(m.verify(&*InsecureSigner::new(id(9))), "signed by node 1 for its stream");
    assert!(m.proves(2, b"b"));
    // The manifest goes first, then the payloads.
    let first_data =
        actions.iter().position(|a| matches!(a, Action::Send { message: Message::Data { .. }, .. }));
    let manifest_at =
        actions.iter().position(|a| matches!(a, Action::Send { message: Message::Manifest(_), .. }));
    assert!(manifest_at < first_data);
    assert_eq!(sends(&actions).len(), 6, "three payloads to each of two peers");
    assert_eq!(r.counters().manifests_signed, 1);
    // The seal timer firing later finds nothing to do.
    r.handle_timer(Timer::Seal, now);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn under_load_one_signature_covers_each_seal_interval() {
    let now = Instant::now();
    let mut r = node_with(Config::default(), &[2], now);
    let interval = r.config().seal_interval;
    r.broadcast(Bytes::from_static(b"a"), now);
    r.seal_broadcasts(now);
    assert_eq!(manifests(&drain(&mut r)).len(), 1, "after a quiet spell: signed at once");
    // More broadcasts within the interval: the driver's seal waits for the interval to pass.
    let soon = now + interval / 5;
    for b in [b"b", b"c", b"d"] {
        r.broadcast(Bytes::from_static(b), soon);
        r.seal_broadcasts(soon);
    }
    assert!(drain(&mut r).is_empty(), "nothing leaves before the interval is over");
    // The timer armed by the first broadcast fires, finds the interval not over, and waits for it.
    r.handle_timer(Timer::Seal, soon);
    let actions = drain(&mut r);
    assert!(manifests(&actions).is_empty() && sends(&actions).is_empty());
    let timer = actions.iter().find_map(|a| match a {
        Action::SetTimer { at, timer: Timer::Seal } => Some(*at),
        _ => None,
    });
    assert_eq!(timer, Some(now + interval), "the seal timer ends the interval");
    r.handle_timer(Timer::Seal, now + interval);
    let actions = drain(&mut r);
    assert_eq!(signed_runs(&actions), vec![(2, 4)], "one signature for the interval's three broadcasts");
    assert_eq!(r.counters().manifests_signed, 2);
}

#[test]
fn a_full_batch_is_signed_at_once_and_the_seal_timer_signs_a_lone_one() {
    let now = Instant::now();
    let config = Config { max_batch_len: 2, ..Config::default() };
    let mut r = node_with(config, &[2], now);
    r.broadcast(Bytes::from_static(b"a"), now);
    r.broadcast(Bytes::from_static(b"b"), now);
    r.broadcast(Bytes::from_static(b"c"), now);
    let actions = drain(&mut r);
    assert_eq!(signed_runs(&actions), vec![(1, 2)]);
    // Too early: the interval since the full batch is not over.
    r.handle_timer(Timer::Seal, now + Duration::from_millis(1));
    assert!(manifests(&drain(&mut r)).is_empty());
    r.handle_timer(Timer::Seal, now + r.config().seal_interval);
    let actions = drain(&mut r);
    assert_eq!(signed_runs(&actions), vec![(3, 3)]);
    assert_eq!(sends(&actions).len(), 1);
}

#[test]
fn a_batch_of_many_bytes_is_signed_at_once() {
    let now = Instant::now();
    let config = Config { max_batch_bytes: 10, ..Config::default() };
    let mut r = node_with(config, &[2], now);
    r.broadcast(Bytes::from_static(b"first"), now);
    r.seal_broadcasts(now);
    drain(&mut r);
    // Within the seal interval, but six and five bytes make eleven: signed at once.
    let soon = now + Duration::from_millis(1);
    r.broadcast(Bytes::from_static(b"second"), soon);
    assert!(manifests(&drain(&mut r)).is_empty());
    r.broadcast(Bytes::from_static(b"third"), soon);
    assert_eq!(signed_runs(&drain(&mut r)), vec![(2, 3)]);
}

#[test]
fn a_relay_verifies_once_and_passes_the_manifest_on_before_the_first_payload_it_covers() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    let m = manifest(s, 1, &[&payload(1), &payload(2)]);
    r.handle_message(id(2), Message::Manifest(m.clone()), now);
    r.handle_message(id(3), Message::Manifest(m.clone()), now);
    assert_eq!(r.counters().manifests_verified, 1, "a copy of a held manifest is not checked again");
    let actions = drain(&mut r);
    assert!(manifests(&actions).is_empty() && sends(&actions).is_empty(), "a manifest alone is not relayed");
    r.handle_message(id(2), data(s, 1), now);
    let actions = drain(&mut r);
    assert_eq!(deliveries(&actions), vec![1]);
    assert_eq!(manifests(&actions), vec![(vec![id(3)], m.clone())]);
    r.handle_message(id(2), data(s, 2), now);
    let actions = drain(&mut r);
    assert_eq!(deliveries(&actions), vec![2]);
    assert!(manifests(&actions).is_empty(), "neighbour 3 has it already");
    assert!(violations(&actions).is_empty());
}

#[test]
fn a_payload_that_is_not_the_one_its_origin_signed_is_a_violation_and_goes_nowhere() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    r.handle_message(id(3), Message::Manifest(manifest(s, 1, &[&payload(1), &payload(2)])), now);
    drain(&mut r);
    let forged = Message::Data { stream: s, seq: 1, hops: 0, payload: Bytes::from_static(b"evil") };
    r.handle_message(id(3), forged, now);
    let actions = drain(&mut r);
    assert_eq!(violations(&actions), vec![id(3)]);
    assert!(deliveries(&actions).is_empty() && sends(&actions).is_empty(), "neither delivered nor relayed");
    // The real message still gets through, from an honest neighbour.
    r.handle_message(id(2), data(s, 1), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1]);
}

#[test]
fn a_manifest_its_origin_did_not_sign_is_a_violation_and_creates_nothing() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2]);
    let s = stream(9);
    let good = manifest(s, 1, &[&payload(1)]);
    let variants = [
        Manifest { signature: [0; 64], ..(*good).clone() },
        // Signed by neighbour 2 in origin 9's name.
        Manifest::sign(&*InsecureSigner::new(id(2)), s, 1, good.hashes.clone()),
        // A different payload under the origin's signature.
        Manifest { hashes: Bytes::copy_from_slice(&payload_hash(b"evil")), ..(*good).clone() },
        // The origin's manifest of another epoch, relabelled (a replay across epochs).
        Manifest { stream: StreamId { epoch: 8, ..s }, ..(*good).clone() },
    ];
    for forged in variants {
        let streams = r.stream_count();
        r.handle_message(id(2), Message::Manifest(Arc::new(forged)), now);
        assert_eq!(violations(&drain(&mut r)), vec![id(2)]);
        assert_eq!(r.stream_count(), streams, "no state for a forgery");
    }
}

#[test]
fn an_old_epochs_message_replayed_into_the_current_epoch_is_rejected() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let old = StreamId { epoch: 6, ..stream(9) };
    let new = stream(9);
    feed(&mut r, id(2), data(new, 1), now);
    drain(&mut r);
    // The attacker holds message 2 of the old epoch with its manifest, and replays both as the
    // current epoch's message 2.
    let old_manifest = manifest(old, 2, &[b"old news"]);
    r.handle_message(
        id(3),
        Message::Manifest(Arc::new(Manifest { stream: new, ..(*old_manifest).clone() })),
        now,
    );
    assert_eq!(violations(&drain(&mut r)), vec![id(3)]);
    // Or without a manifest: the payload is proven by nothing and goes nowhere.
    r.handle_message(
        id(3),
        Message::Data { stream: new, seq: 2, hops: 0, payload: Bytes::from_static(b"old news") },
        now,
    );
    let actions = drain(&mut r);
    assert!(deliveries(&actions).is_empty() && sends(&actions).is_empty());
    assert_eq!(r.counters().unproven_payloads, 1);
}

#[test]
fn a_payload_without_a_manifest_is_not_relayed_but_fetched_again_with_one() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    feed(&mut r, id(2), data(s, 1), now);
    drain(&mut r);
    r.handle_message(id(3), data(s, 2), now);
    let actions = drain(&mut r);
    assert!(deliveries(&actions).is_empty() && sends(&actions).is_empty() && violations(&actions).is_empty());
    // It counts as announced by neighbour 3: the graft timer asks for it.
    let graft = actions.iter().find_map(|a| match a {
        Action::SetTimer { at, timer: timer @ Timer::Graft { .. } } => Some((*at, *timer)),
        _ => None,
    });
    let (at, timer) = graft.expect("a graft timer");
    r.handle_timer(timer, at);
    let asked = sends(&drain(&mut r));
    assert_eq!(asked, vec![(id(3), Message::Graft { want: vec![SeqRange::single(s, 2)], eager: true })]);
}

#[test]
fn graft_answers_carry_their_manifest_even_to_a_peer_that_had_it() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    let m = manifest(s, 1, &[&payload(1), &payload(2)]);
    r.handle_message(id(2), Message::Manifest(m.clone()), now);
    r.handle_message(id(2), data(s, 1), now);
    r.handle_message(id(2), data(s, 2), now);
    assert_eq!(manifests(&drain(&mut r)), vec![(vec![id(3)], m.clone())]);
    r.handle_message(
        id(3),
        Message::Graft { want: vec![SeqRange { stream: s, first: 1, last: 2 }], eager: false },
        now,
    );
    let actions = drain(&mut r);
    assert_eq!(manifests(&actions), vec![(vec![id(3)], m)], "once, before the first payload");
    assert_eq!(sends(&actions).len(), 2);
}

#[test]
fn a_forged_far_ahead_payload_causes_no_gap_and_the_stream_goes_on() {
    // A payload far ahead of an honest stream: nobody may wait for messages that never existed,
    // report a gap for them, or then drop the origin's real messages as old.
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    feed(&mut r, id(2), data(s, 1), now);
    drain(&mut r);
    r.handle_message(
        id(3),
        Message::Data { stream: s, seq: 4_001, hops: 0, payload: Bytes::from_static(b"x") },
        now,
    );
    // A forged manifest to go with it is a violation.
    let forged = Manifest { signature: [7; 64], ..(*manifest(s, 4_001, &[b"x"])).clone() };
    r.handle_message(id(3), Message::Manifest(Arc::new(forged)), now);
    let mut actions = drain(&mut r);
    assert_eq!(violations(&actions), vec![id(3)]);
    // Time passes well beyond the gap timeout; every timer fires.
    let mut t = now;
    for _ in 0..40 {
        t += Duration::from_millis(500);
        r.handle_timer(Timer::Flush, t);
        let timers: Vec<Timer> = actions
            .iter()
            .filter_map(|a| match a {
                Action::SetTimer { at, timer } if *at <= t => Some(*timer),
                _ => None,
            })
            .collect();
        actions.retain(|a| !matches!(a, Action::SetTimer { at, .. } if *at <= t));
        for timer in timers {
            r.handle_timer(timer, t);
        }
        let new = drain(&mut r);
        assert_eq!(gaps(&new), 0, "a gap for messages nobody proved to exist");
        actions.extend(new);
    }
    feed(&mut r, id(2), data(s, 2), t);
    assert_eq!(deliveries(&drain(&mut r)), vec![2], "the publisher's next message is delivered");
    assert_eq!(r.watermark(&s), Some(2));
}

#[test]
fn a_false_position_in_a_sync_does_not_make_a_newcomer_skip_a_stream() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    // Neighbour 3 claims origin 9 is at 10,000: the newcomer would start near there and drop the
    // real messages (at 5) as old.
    r.handle_message(id(3), Message::Sync { marks: vec![Watermark { stream: s, seq: 10_000 }] }, now);
    drain(&mut r);
    assert!(r.watermark(&s).is_some_and(|w| w > 5));
    feed(&mut r, id(2), data(s, 5), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![5], "the first proven payload re-anchors the stream");
    feed(&mut r, id(2), data(s, 6), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![6]);
}

#[test]
fn a_false_low_position_does_not_strand_a_newcomer_behind_the_window() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    r.handle_message(id(3), Message::IHave { ranges: vec![SeqRange::single(s, 1)], hops: 0 }, now);
    drain(&mut r);
    let far = r.config().reorder_window * 3;
    feed(&mut r, id(2), data(s, far), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![far]);
}

#[test]
fn the_origin_signing_two_versions_of_a_message_does_not_change_what_was_accepted() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    r.handle_message(id(2), Message::Manifest(manifest(s, 1, &[&payload(1), &payload(2)])), now);
    r.handle_message(id(3), Message::Manifest(manifest(s, 2, &[b"other"])), now);
    let actions = drain(&mut r);
    assert!(violations(&actions).is_empty(), "the relay passed on a genuine signature");
    assert_eq!(r.counters().equivocations, 1);
    r.handle_message(
        id(3),
        Message::Data { stream: s, seq: 2, hops: 0, payload: Bytes::from_static(b"other") },
        now,
    );
    assert_eq!(violations(&drain(&mut r)), vec![id(3)], "judged by the first manifest");
}

#[test]
fn pending_manifests_are_bounded_per_stream_and_released_on_delivery() {
    let now = Instant::now();
    let one = manifest(stream(9), 1, &[&payload(1)]).size();
    let config =
        Config { max_stream_proof_bytes: 3 * one, max_proof_bytes: 5 * one, ..super::tests::config() };
    let mut r = node_with(config, &[2], now);
    for seq in 1..=5 {
        r.handle_message(id(2), Message::Manifest(manifest(stream(9), seq, &[&payload(seq)])), now);
    }
    assert_eq!(r.counters().proofs_dropped, 2, "three fit the stream's budget");
    for seq in 1..=3 {
        r.handle_message(id(2), Message::Manifest(manifest(stream(8), seq, &[&payload(seq)])), now);
    }
    assert_eq!(r.counters().proofs_dropped, 3, "the node's budget holds five");
    assert_eq!(r.proof_bytes, 5 * one);
    for seq in 1..=3 {
        r.handle_message(id(2), data(stream(9), seq), now);
    }
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2, 3]);
    assert_eq!(r.proof_bytes, 2 * one, "delivered messages keep their proof in retention only");
}
