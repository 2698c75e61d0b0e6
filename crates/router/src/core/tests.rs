//! Unit tests of the router core: the exact actions produced for given events.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use std::sync::Arc;

use super::*;
use crate::proof::{InsecureSigner, Manifest, payload_hash};

pub(super) fn id(n: u8) -> NodeId {
    NodeId::from_bytes([n; 32])
}

pub(super) fn stream(n: u8) -> StreamId {
    StreamId { origin: id(n), epoch: 7 }
}

/// The epoch of every test router's own stream, dated a day after the Unix
/// epoch, so the test routers join long after `stream`'s streams began and take them up as a
/// joining node does (from `Config::backfill_new_stream` back).
pub(super) const OWN_EPOCH: u64 = 86_400 << 32 | 7;

/// Batches of one: a broadcast is signed and sent at once, as a driver that seals after every
/// broadcast would.
pub(super) fn config() -> Config {
    Config { max_batch_len: 1, ..Config::default() }
}

pub(super) fn router(me: u8, now: Instant) -> Router<ChaCha8Rng> {
    Router::new(
        InsecureSigner::new(id(me)),
        OWN_EPOCH,
        config(),
        ChaCha8Rng::seed_from_u64(u64::from(me)),
        now,
    )
}

/// A manifest of `stream`'s origin covering `seq` alone, with this payload.
pub(super) fn proof_of(stream: StreamId, seq: u64, payload: &[u8]) -> Message {
    let hash = Bytes::copy_from_slice(&payload_hash(payload));
    Message::Manifest(Arc::new(Manifest::sign(&*InsecureSigner::new(stream.origin), stream, seq, hash)))
}

/// Hands `message` to `r` as `from` sends it: a `Data` goes after a manifest proving it, as the
/// protocol wants (a proof for one message; real origins batch).
pub(super) fn feed(r: &mut Router<ChaCha8Rng>, from: NodeId, message: Message, now: Instant) {
    if let Message::Data { stream, seq, payload, .. } = &message
        && (1..=MAX_SEQ).contains(seq)
    {
        r.handle_message(from, proof_of(*stream, *seq, payload), now);
    }
    r.handle_message(from, message, now);
}

/// Node 1's router with `peers` as neighbours, the actions of their arrival already drained.
pub(super) fn router_with_neighbours(now: Instant, peers: &[u8]) -> Router<ChaCha8Rng> {
    configured_router(config(), now, peers)
}

/// Node 1's router with `cfg` and `peers` as neighbours, the actions of their arrival already
/// drained.
pub(super) fn configured_router(cfg: Config, now: Instant, peers: &[u8]) -> Router<ChaCha8Rng> {
    let mut r = Router::new(InsecureSigner::new(id(1)), OWN_EPOCH, cfg, ChaCha8Rng::seed_from_u64(1), now);
    for &peer in peers {
        r.handle_neighbour_up(id(peer), now);
    }
    drain(&mut r);
    r
}

pub(super) fn drain(r: &mut Router<ChaCha8Rng>) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

/// The messages `actions` send, manifests left out (`manifests` lists those).
pub(super) fn sends(actions: &[Action]) -> Vec<(NodeId, Message)> {
    actions
        .iter()
        .flat_map(|a| match a {
            Action::Send { message: Message::Manifest(_), .. } => Vec::new(),
            Action::Send { to, message } => to.iter().map(|to| (*to, message.clone())).collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub(super) fn deliveries(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver(d) => Some(d.id.seq),
            _ => None,
        })
        .collect()
}

/// The timers `actions` set, the periodic ones (`Timer::Sweep`, `Timer::Beacon`) left out.
pub(super) fn timers(actions: &[Action]) -> Vec<(Instant, Timer)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer { at, timer } if !matches!(timer, Timer::Sweep | Timer::Beacon) => {
                Some((*at, *timer))
            }
            _ => None,
        })
        .collect()
}

pub(super) fn sweeps(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::SetTimer { timer: Timer::Sweep, .. })).count()
}

#[test]
fn housekeeping_runs_only_while_there_is_something_to_sweep() {
    let now = Instant::now();
    let mut r = router(1, now);
    assert_eq!(sweeps(&drain(&mut r)), 0, "an idle router sets no timer");
    r.handle_neighbour_up(id(2), now);
    drain(&mut r);
    r.broadcast(Bytes::from_static(b"a"), now);
    assert_eq!(sweeps(&drain(&mut r)), 1, "a retained payload arms the sweep");
    r.broadcast(Bytes::from_static(b"b"), now);
    assert_eq!(sweeps(&drain(&mut r)), 0, "once");
    // While something is retained, every sweep arms the next one; once everything has expired and
    // no other stream is tracked, the sweeps stop.
    let mut at = now;
    loop {
        at += r.config().sweep_interval;
        r.handle_timer(Timer::Sweep, at);
        if sweeps(&drain(&mut r)) == 0 {
            break;
        }
        assert!(at < now + r.config().retention_time * 2, "the sweeps never stop");
    }
    assert!(at >= now + r.config().retention_time, "stopped while payloads were retained");
}

/// The last graft timer `actions` set.
pub(super) fn graft_timer(actions: &[Action]) -> Option<Timer> {
    timers(actions).into_iter().rev().find(|(_, t)| matches!(t, Timer::Graft { .. })).map(|(_, t)| t)
}

/// Every range the grafts in `actions` ask for.
pub(super) fn grafted(actions: &[Action]) -> Vec<SeqRange> {
    sends(actions)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Graft { want, .. } => Some(want),
            _ => None,
        })
        .flatten()
        .collect()
}

pub(super) fn data(s: StreamId, seq: u64) -> Message {
    Message::Data { stream: s, seq, hops: 0, payload: Bytes::from(vec![seq as u8; 4]) }
}

/// A router `1` with neighbours 2 (eager) and 3 (made lazy by its prune), actions drained.
fn with_eager_and_lazy(now: Instant) -> Router<ChaCha8Rng> {
    let mut r = router(1, now);
    r.handle_neighbour_up(id(2), now);
    r.handle_neighbour_up(id(3), now);
    r.handle_message(id(3), Message::Prune, now);
    drain(&mut r);
    r
}

#[test]
fn broadcast_pushes_to_eager_peers_and_batches_digests_for_lazy_ones() {
    let now = Instant::now();
    let mut r = with_eager_and_lazy(now);
    r.broadcast(Bytes::from_static(b"a"), now);
    r.broadcast(Bytes::from_static(b"b"), now);
    let actions = drain(&mut r);
    let own = r.own_stream();
    // Payloads only to the eager peer, with hop count 0 (sent by the origin).
    assert_eq!(
        sends(&actions),
        vec![
            (id(2), Message::Data { stream: own, seq: 1, hops: 0, payload: Bytes::from_static(b"a") }),
            (id(2), Message::Data { stream: own, seq: 2, hops: 0, payload: Bytes::from_static(b"b") }),
        ]
    );
    // One flush timer for the whole batch, not one per message.
    assert_eq!(timers(&actions), vec![(now + r.config().ihave_interval, Timer::Flush)]);
    r.handle_timer(Timer::Flush, now + r.config().ihave_interval);
    let actions = drain(&mut r);
    // The lazy peer gets one digest with one range covering both messages.
    assert_eq!(
        sends(&actions),
        vec![(id(3), Message::IHave { ranges: vec![SeqRange { stream: own, first: 1, last: 2 }], hops: 0 })]
    );
    assert_eq!(r.counters().payloads_sent, 2);
    assert_eq!(r.counters().ihaves_sent, 1);
}

#[test]
fn relays_a_new_payload_to_other_eager_peers_with_one_more_hop() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    feed(&mut r, id(2), data(stream(9), 1), now);
    let actions = drain(&mut r);
    assert_eq!(
        sends(&actions),
        vec![(
            id(3),
            Message::Data { stream: stream(9), seq: 1, hops: 1, payload: Bytes::from(vec![1u8; 4]) }
        )]
    );
    assert_eq!(deliveries(&actions), vec![1]);
    match actions.iter().find(|a| matches!(a, Action::Deliver(_))) {
        // Sent with hop count 0 (by the origin), received over one link: delivered as 1 hop.
        Some(Action::Deliver(d)) => assert_eq!(d.hops, 1),
        _ => unreachable!(),
    }
}

#[test]
fn a_duplicate_payload_is_counted_and_prunes_nothing() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    feed(&mut r, id(2), data(stream(9), 1), now);
    drain(&mut r);
    feed(&mut r, id(3), data(stream(9), 1), now);
    let actions = drain(&mut r);
    assert!(sends(&actions).is_empty(), "only beacons prune: {actions:?}");
    assert!(deliveries(&actions).is_empty(), "a duplicate is never delivered");
    assert_eq!((r.counters().duplicates, r.counters().duplicates_eager), (1, 1));
    assert_eq!(r.topology(), Topology { eager: vec![id(2), id(3)], lazy: vec![] });
}

#[test]
fn a_payload_pushed_over_a_link_we_made_lazy_is_refused_again() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    // Neighbour 3 is lazy on our side only (our prune was lost): it still pushes.
    r.peers.get_mut(&id(3)).unwrap().eager = false;
    feed(&mut r, id(3), data(stream(9), 1), now);
    let actions = drain(&mut r);
    assert_eq!(deliveries(&actions), vec![1], "the payload itself is good");
    assert!(sends(&actions).contains(&(id(3), Message::Prune)));
    // Not again while that prune is on its way.
    feed(&mut r, id(3), data(stream(9), 2), now + Duration::from_millis(1));
    assert!(!sends(&drain(&mut r)).contains(&(id(3), Message::Prune)));
}

#[test]
fn digest_of_a_missing_message_leads_to_a_graft_after_the_timeout() {
    let now = Instant::now();
    let mut r = router(1, now);
    r.handle_neighbour_up(id(2), now);
    r.handle_neighbour_up(id(3), now);
    r.handle_message(id(2), Message::Prune, now);
    drain(&mut r);
    let range = SeqRange { stream: stream(9), first: 1, last: 3 };
    r.handle_message(id(2), Message::IHave { ranges: vec![range], hops: 2 }, now);
    let actions = drain(&mut r);
    assert!(sends(&actions).is_empty(), "no graft before the timeout");
    let [(at, timer)] = timers(&actions)[..] else { panic!("one graft timer: {actions:?}") };
    assert_eq!(at, now + r.config().graft_timeout);
    r.handle_timer(timer, at);
    let actions = drain(&mut r);
    // Plumtree: the graft asks for the messages and makes the link a tree link, on both sides.
    assert_eq!(sends(&actions), vec![(id(2), Message::Graft { want: vec![range], eager: true })]);
    assert_eq!(r.topology().eager, vec![id(2), id(3)]);
    let [(retry_at, retry)] = timers(&actions)[..] else { panic!("a retry timer") };
    assert_eq!(retry_at, at + r.config().graft_retry_timeout);
    // Not answered: ask again. The round already made a link eager, so the retry only repairs.
    r.handle_timer(retry, retry_at);
    let actions = drain(&mut r);
    assert_eq!(sends(&actions), vec![(id(2), Message::Graft { want: vec![range], eager: false })]);
    assert_eq!(r.topology().eager, vec![id(2), id(3)]);
    assert_eq!(r.counters().grafts_sent, 2);
    // Answered: the payloads are delivered in order and the timer goes stale.
    for seq in 1..=3 {
        feed(&mut r, id(2), data(stream(9), seq), retry_at);
    }
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2, 3]);
    r.handle_timer(retry, retry_at + Duration::from_millis(40));
    assert!(sends(&drain(&mut r)).is_empty(), "a stale graft timer does nothing");
}

#[test]
fn a_payload_arriving_before_the_graft_timeout_cancels_the_graft() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let range = SeqRange::single(stream(9), 1);
    r.handle_message(id(3), Message::IHave { ranges: vec![range], hops: 0 }, now);
    let [(at, timer)] = timers(&drain(&mut r))[..] else { panic!("one graft timer") };
    feed(&mut r, id(2), data(stream(9), 1), now + Duration::from_millis(10));
    drain(&mut r);
    r.handle_timer(timer, at);
    assert!(sends(&drain(&mut r)).is_empty());
    assert_eq!(r.counters().grafts_sent, 0);
}

#[test]
fn the_graft_timeout_adapts_to_a_tree_that_is_slower_than_the_digests() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    // A digest, then the tree's copy 800 ms later (the graft timer's first firing is ignored here:
    // we deliver before handling it).
    let ihave = |seq| Message::IHave { ranges: vec![SeqRange::single(stream(9), seq)], hops: 0 };
    r.handle_message(id(3), ihave(1), now);
    let t = now + Duration::from_millis(800);
    feed(&mut r, id(2), data(stream(9), 1), t);
    drain(&mut r);
    // Smoothed lag 400 ms: the next graft waits twice that instead of `graft_timeout` (400 ms).
    r.handle_message(id(3), ihave(2), t);
    let graft_at: Vec<Instant> = timers(&drain(&mut r))
        .into_iter()
        .filter(|(_, timer)| matches!(timer, Timer::Graft { .. }))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(graft_at, vec![t + Duration::from_millis(800)]);
}

#[test]
fn graft_is_answered_from_retention_and_makes_the_link_eager() {
    let now = Instant::now();
    let mut r = with_eager_and_lazy(now);
    for b in [b"a", b"b", b"c"] {
        r.broadcast(Bytes::from_static(b), now);
    }
    drain(&mut r);
    let own = r.own_stream();
    let want = vec![SeqRange { stream: own, first: 2, last: u64::MAX }];
    r.handle_message(id(3), Message::Graft { want, eager: true }, now);
    let actions = drain(&mut r);
    // Only what is held is sent, however large the range.
    assert_eq!(
        sends(&actions),
        vec![
            (id(3), Message::Data { stream: own, seq: 2, hops: 0, payload: Bytes::from_static(b"b") }),
            (id(3), Message::Data { stream: own, seq: 3, hops: 0, payload: Bytes::from_static(b"c") }),
        ]
    );
    assert_eq!(r.counters().resends, 2);
    assert_eq!(r.topology().eager, vec![id(2), id(3)]);
}

#[test]
fn graft_answers_are_capped_per_request() {
    let now = Instant::now();
    let cfg = Config { max_serve_per_request: 2, ..config() };
    let mut r = configured_router(cfg, now, &[2]);
    for _ in 0..5 {
        r.broadcast(Bytes::from_static(b"x"), now);
    }
    drain(&mut r);
    let want = vec![SeqRange { stream: r.own_stream(), first: 1, last: 5 }];
    r.handle_message(id(2), Message::Graft { want, eager: false }, now);
    assert_eq!(sends(&drain(&mut r)).len(), 2);
}

#[test]
fn neighbour_down_reoffers_unacknowledged_payloads_on_the_remaining_links() {
    let now = Instant::now();
    let mut r = router(1, now);
    r.handle_neighbour_up(id(2), now);
    r.handle_neighbour_up(id(3), now);
    r.broadcast(Bytes::from_static(b"a"), now);
    r.broadcast(Bytes::from_static(b"b"), now);
    drain(&mut r);
    let own = r.own_stream();
    // Node 3 acknowledged both, node 2 only the first; then node 2 fails.
    r.handle_message(id(3), Message::Ack { marks: vec![Watermark { stream: own, seq: 2 }] }, now);
    r.handle_message(id(2), Message::Ack { marks: vec![Watermark { stream: own, seq: 1 }] }, now);
    drain(&mut r);
    r.handle_neighbour_down(id(2), now);
    r.handle_timer(Timer::Flush, now);
    let actions = drain(&mut r);
    assert_eq!(
        sends(&actions),
        vec![(id(3), Message::IHave { ranges: vec![SeqRange::single(own, 2)], hops: 0 })]
    );
    assert_eq!(r.counters().reoffers, 1);
}

#[test]
fn sync_on_neighbour_up_fills_the_other_sides_gap_from_retention() {
    let now = Instant::now();
    let mut a = router(1, now);
    for _ in 0..3 {
        a.broadcast(Bytes::from_static(b"x"), now);
    }
    drain(&mut a);
    let own = a.own_stream();
    a.handle_neighbour_up(id(2), now);
    // On connect, each side tells the other where it is in every stream.
    assert_eq!(
        sends(&drain(&mut a)),
        vec![(id(2), Message::Sync { marks: vec![Watermark { stream: own, seq: 3 }] })]
    );
    // The peer has the first message only: it gets the other two.
    a.handle_message(id(2), Message::Sync { marks: vec![Watermark { stream: own, seq: 1 }] }, now);
    let got: Vec<u64> = sends(&drain(&mut a))
        .into_iter()
        .map(|(_, m)| match m {
            Message::Data { seq, .. } => seq,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got, vec![2, 3]);
}

#[test]
fn sync_of_an_unknown_young_stream_fetches_it_from_the_start() {
    let now = Instant::now();
    let mut b = router(2, now);
    b.handle_neighbour_up(id(1), now);
    drain(&mut b);
    b.handle_message(id(1), Message::Sync { marks: vec![Watermark { stream: stream(1), seq: 3 }] }, now);
    let [(at, timer)] = timers(&drain(&mut b))[..] else { panic!("a graft timer") };
    b.handle_timer(timer, at);
    let want = vec![SeqRange { stream: stream(1), first: 1, last: 3 }];
    assert_eq!(sends(&drain(&mut b)), vec![(id(1), Message::Graft { want, eager: true })]);
}

#[test]
fn sync_of_an_unknown_old_stream_fetches_only_the_recent_backfill() {
    let now = Instant::now();
    let mut b = router(2, now);
    let backfill = b.config().backfill_new_stream;
    b.handle_neighbour_up(id(1), now);
    drain(&mut b);
    let mark = Watermark { stream: stream(1), seq: 1_000_000 };
    b.handle_message(id(1), Message::Sync { marks: vec![mark] }, now);
    let [(at, timer)] = timers(&drain(&mut b))[..] else { panic!("a graft timer") };
    b.handle_timer(timer, at);
    // Only the last `backfill` messages (sent while we joined), never the stream's whole history.
    let want = vec![SeqRange { stream: stream(1), first: 1_000_000 - backfill + 1, last: 1_000_000 }];
    assert_eq!(sends(&drain(&mut b)), vec![(id(1), Message::Graft { want, eager: true })]);
    for seq in 1_000_000 - backfill + 1..=1_000_001 {
        feed(&mut b, id(1), data(stream(1), seq), now);
    }
    let delivered = deliveries(&drain(&mut b));
    assert_eq!(delivered.first(), Some(&(1_000_000 - backfill + 1)));
    assert_eq!(delivered.last(), Some(&1_000_001));
}

/// A stream that began after this node joined (a partition, or an origin that restarted out of its
/// reach) is owed to it whole: taken up from message 1, however late the node first hears of it. One
/// that began before, or more than `stream_start_tolerance` before, is taken up as a joiner does.
#[test]
fn a_stream_begun_after_we_joined_is_taken_up_from_its_first_message() {
    let now = Instant::now();
    let mut b = router(2, now);
    let (backfill, tolerance) = (b.config().backfill_new_stream, b.config().stream_start_tolerance);
    b.handle_neighbour_up(id(1), now);
    drain(&mut b);
    let joined = OWN_EPOCH >> 32;
    let dated =
        |origin: u8, secs: u64| StreamId { origin: id(origin), epoch: StreamId::epoch_started_at(secs, 1) };
    let cases = [
        (dated(3, joined + 100), 0),
        (dated(4, joined - tolerance.as_secs()), 0),
        (dated(5, joined - tolerance.as_secs() - 1), 500 - backfill),
    ];
    for (stream, start) in cases {
        b.handle_message(id(1), Message::Sync { marks: vec![Watermark { stream, seq: 500 }] }, now);
        let [(at, timer)] = timers(&drain(&mut b))[..] else { panic!("a graft timer") };
        b.handle_timer(timer, at);
        let want = vec![SeqRange { stream, first: start + 1, last: 500 }];
        assert_eq!(sends(&drain(&mut b)), vec![(id(1), Message::Graft { want, eager: true })], "{stream:?}");
        assert_eq!(b.watermark(&stream), Some(start));
    }
    // However young the stream, the node takes up at most a reorder window of it at once.
    let young = dated(6, joined + 1);
    let window = b.config().reorder_window;
    feed(&mut b, id(1), data(young, 1_000_000), now);
    assert_eq!(b.watermark(&young), Some(1_000_000 - window));
}

/// A newcomer that hears of an old stream from a neighbour that joined late itself: the neighbour
/// never had the backfill before its own first message, so the hole is given up after
/// `backfill_timeout`, not `gap_timeout`, and the live messages flow. A stream owed whole, and any
/// hole after the first delivery, wait the whole `gap_timeout`.
#[test]
fn a_backfill_nobody_holds_is_given_up_after_the_backfill_timeout() {
    let now = Instant::now();
    let mut b = router(2, now);
    let config = b.config().clone();
    b.handle_neighbour_up(id(1), now);
    drain(&mut b);
    let gap_timer = |actions: &[Action]| {
        timers(actions).into_iter().find(|(_, t)| matches!(t, Timer::Gap { .. })).expect("a gap timer")
    };
    feed(&mut b, id(1), data(stream(3), 100), now);
    let (at, timer) = gap_timer(&drain(&mut b));
    assert_eq!(at, now + config.backfill_timeout);
    b.handle_timer(timer, at);
    let actions = drain(&mut b);
    let first = 100 - config.backfill_new_stream;
    assert!(actions.contains(&Action::Event(Event::Gap { stream: stream(3), first, last: 99 })));
    assert_eq!(deliveries(&actions), vec![100]);
    // A later hole in the same stream, now that it has delivered: the whole gap timeout.
    feed(&mut b, id(1), data(stream(3), 102), at);
    assert_eq!(gap_timer(&drain(&mut b)).0, at + config.gap_timeout);
    // A stream that began after we joined is owed whole: the whole gap timeout from the start.
    let young = StreamId { origin: id(4), epoch: StreamId::epoch_started_at((OWN_EPOCH >> 32) + 5, 1) };
    feed(&mut b, id(1), data(young, 100), at);
    assert_eq!(gap_timer(&drain(&mut b)).0, at + config.gap_timeout);
}

#[test]
fn out_of_order_payloads_wait_for_the_hole_and_are_delivered_in_order() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2]);
    feed(&mut r, id(2), data(stream(9), 3), now);
    feed(&mut r, id(2), data(stream(9), 2), now);
    assert!(deliveries(&drain(&mut r)).is_empty());
    feed(&mut r, id(2), data(stream(9), 1), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2, 3]);
    assert_eq!(r.watermark(&stream(9)), Some(3));
}

/// Node 1 with neighbour 2, which sent messages 1 and 4 of stream 9: 1 delivered, 4 held behind the
/// hole 2..=3. Returns the router and the actions of the two arrivals.
fn hole_2_to_3(now: Instant) -> (Router<ChaCha8Rng>, Vec<Action>) {
    let mut r = router_with_neighbours(now, &[2]);
    feed(&mut r, id(2), data(stream(9), 1), now);
    feed(&mut r, id(2), data(stream(9), 4), now);
    let actions = drain(&mut r);
    (r, actions)
}

#[test]
fn no_gap_is_reported_while_alone_and_the_clock_restarts_with_the_first_neighbour() {
    let now = Instant::now();
    let (mut r, actions) = hole_2_to_3(now);
    let gap = timers(&actions).into_iter().find(|(_, t)| matches!(t, Timer::Gap { .. }));
    let (at, timer) = gap.expect("a gap timer");
    // Its only neighbour is gone: nobody can repair 2..=3, so the timer reports nothing and waits on.
    r.handle_neighbour_down(id(2), now);
    drain(&mut r);
    r.handle_timer(timer, at);
    let actions = drain(&mut r);
    assert!(!actions.iter().any(|a| matches!(a, Action::Event(Event::Gap { .. }))));
    assert_eq!(r.counters().gaps, 0);
    let rearmed: Vec<(Instant, Timer)> =
        timers(&actions).into_iter().filter(|(_, t)| matches!(t, Timer::Gap { .. })).collect();
    assert_eq!(rearmed.iter().map(|(at, _)| *at).collect::<Vec<_>>(), vec![at + r.config().gap_timeout]);
    // A neighbour at last, just before that timer: the hole gets a whole gap_timeout from now, so the
    // re-armed timer is stale and the new one is due later.
    let back = at + r.config().gap_timeout - Duration::from_millis(1);
    r.handle_neighbour_up(id(3), back);
    let actions = drain(&mut r);
    let (fresh_at, fresh) = timers(&actions)
        .into_iter()
        .find(|(_, t)| matches!(t, Timer::Gap { .. }))
        .expect("the gap clock restarts with the first neighbour");
    assert_eq!(fresh_at, back + r.config().gap_timeout);
    let (stale_at, stale) = rearmed[0];
    r.handle_timer(stale, stale_at);
    assert!(!drain(&mut r).iter().any(|a| matches!(a, Action::Event(Event::Gap { .. }))));
    // The new neighbour serves the hole in time: everything is delivered, nothing reported lost.
    feed(&mut r, id(3), data(stream(9), 2), back);
    feed(&mut r, id(3), data(stream(9), 3), back);
    assert_eq!(deliveries(&drain(&mut r)), vec![2, 3, 4]);
    r.handle_timer(fresh, fresh_at);
    drain(&mut r);
    assert_eq!(r.counters().gaps, 0);
}

#[test]
fn a_hole_that_cannot_be_filled_becomes_a_gap_event_then_delivery_continues() {
    let now = Instant::now();
    let (mut r, actions) = hole_2_to_3(now);
    assert_eq!(deliveries(&actions), vec![1]);
    let gap = timers(&actions).into_iter().find(|(_, t)| matches!(t, Timer::Gap { .. }));
    let (at, timer) = gap.expect("a gap timer");
    assert_eq!(at, now + r.config().gap_timeout);
    r.handle_timer(timer, at);
    let actions = drain(&mut r);
    let gap_then_delivery: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(Event::Gap { first, last, .. }) => Some(format!("gap {first}..={last}")),
            Action::Deliver(d) => Some(format!("deliver {}", d.id.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(gap_then_delivery, vec!["gap 2..=3", "deliver 4"]);
    assert_eq!(r.counters().gaps, 1);
    assert_eq!(r.counters().gap_messages, 2);
    // A late copy of a message reported lost is not delivered.
    feed(&mut r, id(2), data(stream(9), 2), at);
    assert!(deliveries(&drain(&mut r)).is_empty());
}

#[test]
fn congestion_demotes_the_peer_and_reoffers_what_it_may_have_missed() {
    let now = Instant::now();
    let mut r = router(1, now);
    r.handle_neighbour_up(id(2), now);
    r.broadcast(Bytes::from_static(b"a"), now);
    r.broadcast(Bytes::from_static(b"b"), now);
    drain(&mut r);
    r.handle_congested(id(2), now);
    assert_eq!(r.topology(), Topology { eager: vec![], lazy: vec![id(2)] });
    r.handle_timer(Timer::Flush, now);
    let own = r.own_stream();
    assert_eq!(
        sends(&drain(&mut r)),
        vec![(id(2), Message::IHave { ranges: vec![SeqRange { stream: own, first: 1, last: 2 }], hops: 0 })]
    );
    // Further broadcasts go to it as digests only.
    r.broadcast(Bytes::from_static(b"c"), now);
    assert!(sends(&drain(&mut r)).is_empty());
}

#[test]
fn a_forged_far_future_sequence_number_creates_no_state_and_blocks_nothing() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    feed(&mut r, id(2), data(stream(9), 1), now);
    drain(&mut r);
    feed(&mut r, id(3), data(stream(9), 1 << 60), now);
    let actions = drain(&mut r);
    assert_eq!(r.counters().dropped_ahead, 1);
    assert!(sends(&actions).iter().all(|(_, m)| !matches!(m, Message::Data { .. })), "not relayed");
    // Real messages keep flowing.
    feed(&mut r, id(2), data(stream(9), 2), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![2]);
    // The forged claim is dropped after one gap timeout of unanswered grafts, with no gap event.
    let mut t = now;
    for _ in 0..400 {
        t += r.config().graft_retry_timeout;
        let pending: Vec<Timer> = timers(&drain(&mut r)).into_iter().map(|(_, t)| t).collect();
        for timer in pending {
            r.handle_timer(timer, t);
        }
    }
    assert_eq!(r.counters().gaps, 0);
    let still_grafting = timers(&drain(&mut r)).iter().any(|(_, t)| matches!(t, Timer::Graft { .. }));
    assert!(!still_grafting, "an unfounded claim is given up after gap_timeout");
    assert!(r.counters().grafts_sent <= 1 + r.config().gap_timeout.as_millis() as u64 / 40);
}

#[test]
fn data_of_our_own_stream_that_we_never_sent_is_a_violation() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2]);
    let own = r.own_stream();
    feed(&mut r, id(2), data(own, 5), now);
    let actions = drain(&mut r);
    assert!(actions.iter().any(|a| matches!(a, Action::Violation { peer, .. } if *peer == id(2))));
    assert!(deliveries(&actions).is_empty());
}

/// Found by the `router_handler` fuzz target: `Data` with sequence number `u64::MAX` on a new stream
/// was adopted and delivered, and the next watermark (`u64::MAX + 1`) overflowed.
#[test]
fn sequence_numbers_beyond_max_seq_are_violations_and_digests_are_cut_there() {
    let now = Instant::now();
    let violation = |actions: &[Action]| actions.iter().any(|a| matches!(a, Action::Violation { .. }));
    let mut r = router_with_neighbours(now, &[2]);
    for message in [
        data(stream(9), u64::MAX),
        data(stream(9), MAX_SEQ + 1),
        Message::Ack { marks: vec![Watermark { stream: stream(9), seq: u64::MAX }] },
        Message::Sync { marks: vec![Watermark { stream: stream(9), seq: MAX_SEQ + 1 }] },
    ] {
        r.handle_message(id(2), message.clone(), now);
        let actions = drain(&mut r);
        assert!(violation(&actions), "{message:?} is forged");
        assert!(deliveries(&actions).is_empty());
        assert_eq!(r.watermark(&stream(9)), None, "{message:?} creates no stream");
    }
    // The largest possible message is taken (with the backfill before it), and the stream ends there
    // without overflowing.
    let backfill = r.config().backfill_new_stream;
    feed(&mut r, id(2), data(stream(9), MAX_SEQ), now);
    assert!(!violation(&drain(&mut r)));
    for seq in MAX_SEQ - backfill..MAX_SEQ {
        feed(&mut r, id(2), data(stream(9), seq), now);
    }
    assert_eq!(deliveries(&drain(&mut r)).last(), Some(&MAX_SEQ));
    assert_eq!(r.watermark(&stream(9)), Some(MAX_SEQ));
    feed(&mut r, id(2), data(stream(9), MAX_SEQ), now);
    drain(&mut r);
    // A digest reaching past `MAX_SEQ` is cut; one entirely beyond it is ignored.
    let ihave =
        |first, last| Message::IHave { ranges: vec![SeqRange { stream: stream(8), first, last }], hops: 0 };
    r.handle_message(id(2), ihave(MAX_SEQ + 1, u64::MAX), now);
    assert!(!violation(&drain(&mut r)));
    assert_eq!(r.watermark(&stream(8)), None);
    r.handle_message(id(2), ihave(MAX_SEQ, u64::MAX), now);
    assert!(!violation(&drain(&mut r)));
    assert_eq!(
        r.watermark(&stream(8)),
        Some(MAX_SEQ - 1 - backfill),
        "adopted `backfill` messages before the announced one"
    );
}

#[test]
fn acks_are_batched_on_a_timer_and_carry_watermarks() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2]);
    for seq in 1..=3 {
        feed(&mut r, id(2), data(stream(9), seq), now);
    }
    let actions = drain(&mut r);
    let ack_timers: Vec<_> = timers(&actions).into_iter().filter(|(_, t)| *t == Timer::Ack).collect();
    assert_eq!(ack_timers.len(), 1, "one ack timer for the batch");
    assert!(sends(&actions).iter().all(|(_, m)| !matches!(m, Message::Ack { .. })));
    r.handle_timer(Timer::Ack, ack_timers[0].0);
    assert_eq!(
        sends(&drain(&mut r)),
        vec![(id(2), Message::Ack { marks: vec![Watermark { stream: stream(9), seq: 3 }] })]
    );
}

/// A settled-retention budget with room for one of the 4-byte payloads of `data`.
const ONE_SETTLED: usize = 4;

/// Node 1 relays stream(2), whose origin is neighbour 2, to neighbour 3: messages 1..=3, then 3's
/// ack of them. Which of them node 1 still serves to a graft from 3, before the ack and after it.
fn served_before_and_after_settling(cfg: Config) -> (Vec<u64>, Vec<u64>) {
    let now = Instant::now();
    let mut r = Router::new(InsecureSigner::new(id(1)), 7, cfg, ChaCha8Rng::seed_from_u64(1), now);
    r.handle_neighbour_up(id(2), now);
    r.handle_neighbour_up(id(3), now);
    for seq in 1..=3 {
        feed(&mut r, id(2), data(stream(2), seq), now);
    }
    drain(&mut r);
    let want = vec![SeqRange { stream: stream(2), first: 1, last: 3 }];
    let answered = |r: &mut Router<ChaCha8Rng>| {
        r.handle_message(id(3), Message::Graft { want: want.clone(), eager: true }, now);
        sends(&drain(r))
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Data { seq, .. } if to == id(3) => Some(seq),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let before = answered(&mut r);
    r.handle_message(id(3), Message::Ack { marks: vec![Watermark { stream: stream(2), seq: 3 }] }, now);
    drain(&mut r);
    (before, answered(&mut r))
}

#[test]
fn payloads_of_a_neighbours_own_stream_settle_without_its_ack() {
    // Node 2 never acks its own stream; once 3 acks, the payloads are held by every neighbour and
    // go beyond the settled budget: three retained, room for one, the two oldest go.
    let cfg = Config { retention_settled_max_bytes: ONE_SETTLED, ..config() };
    assert_eq!(
        served_before_and_after_settling(cfg),
        (vec![1, 2, 3], vec![3]),
        "nothing settles before 3 acks"
    );
}

#[test]
fn settled_payloads_beyond_the_count_go_too() {
    let cfg = Config { retention_settled_max_messages: 2, ..config() };
    assert_eq!(served_before_and_after_settling(cfg), (vec![1, 2, 3], vec![2, 3]));
    let roomy = Config { retention_settled_max_messages: 3, ..config() };
    assert_eq!(served_before_and_after_settling(roomy), (vec![1, 2, 3], vec![1, 2, 3]));
}

#[test]
fn config_validation_rejects_impossible_settings() {
    assert_eq!(Config::default().validate(), Ok(()));
    let zero = Config { graft_timeout: Duration::ZERO, ..Config::default() };
    assert_eq!(zero.validate(), Err(InvalidConfig::Zero("graft_timeout")));
    let tiny = Config { max_streams: 0, ..Config::default() };
    assert_eq!(tiny.validate(), Err(InvalidConfig::Zero("max_streams")));
    let short = Config { stream_idle_timeout: Duration::from_secs(1), ..Config::default() };
    assert!(matches!(short.validate(), Err(InvalidConfig::Inconsistent(_))));
}

#[test]
fn settled_marks_follow_acks_syncs_and_neighbour_changes() {
    // Random neighbour churn, payloads, acks and syncs; after every step each stream's cached
    // `settled` equals the smallest acknowledgement among the neighbours other than its origin.
    use rand::Rng;
    let now = Instant::now();
    let mut r = router(1, now);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let origins = [2u8, 3, 10, 11];
    let mut next_seq = [1u64; 4];
    for step in 0..2_000 {
        let peer = id(rng.random_range(2..6));
        match rng.random_range(0..10) {
            0 => r.handle_neighbour_up(peer, now),
            1 => r.handle_neighbour_down(peer, now),
            2..=4 => {
                let k = rng.random_range(0..origins.len());
                feed(&mut r, peer, data(stream(origins[k]), next_seq[k]), now);
                next_seq[k] += 1;
            }
            5..=8 => {
                let marks = (0..rng.random_range(1..4))
                    .map(|_| {
                        let k = rng.random_range(0..origins.len());
                        Watermark { stream: stream(origins[k]), seq: rng.random_range(0..next_seq[k]) }
                    })
                    .collect();
                r.handle_message(peer, Message::Ack { marks }, now);
            }
            _ => {
                let k = rng.random_range(0..origins.len());
                let mark = Watermark { stream: stream(origins[k]), seq: rng.random_range(0..next_seq[k]) };
                r.handle_message(peer, Message::Sync { marks: vec![mark] }, now);
            }
        }
        drain(&mut r);
        for (s, state) in &r.streams {
            let settled = router::settled_mark(&r.peers, s.origin, state);
            assert_eq!(state.settled, settled, "stream {s:?} after step {step}");
        }
    }
}

#[test]
fn a_neighbour_that_leaves_no_longer_holds_back_retention() {
    // Neighbour 3 acks stream(9), neighbour 4 never does: nothing settles. Once 4 is gone, everything
    // 3 acked is held by every neighbour and goes beyond the settled budget.
    let now = Instant::now();
    let cfg = Config { retention_settled_max_bytes: ONE_SETTLED, ..config() };
    let mut r = configured_router(cfg, now, &[2, 3, 4]);
    for seq in 1..=3 {
        feed(&mut r, id(2), data(stream(9), seq), now);
    }
    let ack = Message::Ack { marks: vec![Watermark { stream: stream(9), seq: 3 }] };
    r.handle_message(id(2), ack.clone(), now);
    r.handle_message(id(3), ack.clone(), now);
    drain(&mut r);
    let span = |r: &Router<ChaCha8Rng>| r.streams[&stream(9)].retained_span();
    assert_eq!(span(&r), Some((1, 3)), "4 has not acknowledged anything");
    r.handle_neighbour_down(id(4), now);
    r.handle_message(id(3), ack, now);
    drain(&mut r);
    // Three payloads retained, room for one once settled: the two oldest go.
    assert_eq!(span(&r), Some((3, 3)));
}

/// Node 1's router with neighbours 2 and 3, keeping no settled payload: what every neighbour
/// holds is released at once, what one lacks is retained.
fn keeping_nothing_settled(now: Instant) -> Router<ChaCha8Rng> {
    let cfg = Config { retention_settled_max_bytes: 0, ..config() };
    configured_router(cfg, now, &[2, 3])
}

fn ack(s: StreamId, seq: u64) -> Message {
    Message::Ack { marks: vec![Watermark { stream: s, seq }] }
}

#[test]
fn an_acknowledgement_that_overtakes_its_message_still_settles_it() {
    // Neighbour 3 delivers message 1 of stream 9 and acknowledges it before the message reaches
    // us: the only acknowledgement it sends for it must still count.
    let now = Instant::now();
    let mut r = keeping_nothing_settled(now);
    r.handle_message(id(3), ack(stream(9), 1), now);
    feed(&mut r, id(2), data(stream(9), 1), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1]);
    r.handle_message(id(2), ack(stream(9), 1), now);
    drain(&mut r);
    assert_eq!(r.streams[&stream(9)].retained_span(), None, "both neighbours hold it: released");
}

#[test]
fn a_new_neighbours_position_counts_as_its_acknowledgement() {
    // Neighbour 4 comes up holding stream 9 up to 1 and says so in its `Sync`; it sends no `Ack`
    // for a message it delivered before the link came up.
    let now = Instant::now();
    let mut r = keeping_nothing_settled(now);
    feed(&mut r, id(2), data(stream(9), 1), now);
    r.handle_neighbour_up(id(4), now);
    r.handle_message(id(2), ack(stream(9), 1), now);
    r.handle_message(id(3), ack(stream(9), 1), now);
    drain(&mut r);
    assert_eq!(r.streams[&stream(9)].retained_span(), Some((1, 1)), "4 may lack it");
    r.handle_message(id(4), Message::Sync { marks: vec![Watermark { stream: stream(9), seq: 1 }] }, now);
    drain(&mut r);
    assert_eq!(r.streams[&stream(9)].retained_span(), None, "every neighbour holds it");
}

#[test]
fn a_node_with_no_position_to_tell_sends_no_sync() {
    let now = Instant::now();
    let mut r = router(1, now);
    r.handle_neighbour_up(id(2), now);
    assert_eq!(sends(&drain(&mut r)), vec![], "nothing sent or delivered yet");
    r.broadcast(Bytes::from_static(b"a"), now);
    drain(&mut r);
    r.handle_neighbour_up(id(3), now);
    let own = r.own_stream();
    assert_eq!(
        sends(&drain(&mut r)),
        vec![(id(3), Message::Sync { marks: vec![Watermark { stream: own, seq: 1 }] })]
    );
}

#[test]
fn a_digest_batch_holds_one_range_per_stream_however_the_streams_interleave() {
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    r.handle_message(id(3), Message::Prune, now);
    drain(&mut r);
    // Three streams, their messages interleaved, all arriving from 2: 3 is lazy and gets digests.
    for seq in 1..=5 {
        for origin in [7, 8, 9] {
            feed(&mut r, id(2), data(stream(origin), seq), now);
        }
    }
    drain(&mut r);
    r.handle_timer(Timer::Flush, now + r.config().ihave_interval);
    let digests: Vec<Message> =
        sends(&drain(&mut r)).into_iter().filter(|(to, _)| *to == id(3)).map(|(_, m)| m).collect();
    let [Message::IHave { ranges, .. }] = &digests[..] else { panic!("one digest: {digests:?}") };
    let expected: Vec<SeqRange> =
        [7, 8, 9].map(|o| SeqRange { stream: stream(o), first: 1, last: 5 }).to_vec();
    assert_eq!(ranges, &expected);
}

#[test]
fn a_long_graft_round_that_keeps_making_progress_still_asks_for_a_fresh_hole() {
    // A steady stream whose digests run ahead of its payloads, with a hole now and then, each filled
    // by a graft: something is always missing, so the round never ends. After `gap_timeout` its
    // newest hole must still be asked for, not abandoned as if nobody could serve it.
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    feed(&mut r, id(2), data(s, 2), now);
    let mut timer = graft_timer(&drain(&mut r)).expect("a hole arms the graft timer");
    r.handle_timer(timer, now + Duration::from_millis(1));
    assert_eq!(grafted(&drain(&mut r)), vec![SeqRange::single(s, 1)]);
    let rounds = r.config().gap_timeout.as_secs() + 3;
    for k in 1..=rounds {
        let t = now + Duration::from_secs(k);
        // Digests announce the next two; the graft answer fills the hole; the tree brings the
        // payload after the next hole.
        let ahead = SeqRange { stream: s, first: 2 * k + 1, last: 2 * k + 2 };
        r.handle_message(id(3), Message::IHave { ranges: vec![ahead], hops: 0 }, t);
        feed(&mut r, id(3), data(s, 2 * k - 1), t);
        feed(&mut r, id(2), data(s, 2 * k + 2), t);
        timer = graft_timer(&drain(&mut r)).unwrap_or(timer);
        r.handle_timer(timer, t + Duration::from_millis(1));
        let actions = drain(&mut r);
        timer = graft_timer(&actions).unwrap_or(timer);
        let hole = 2 * k + 1;
        let asked = grafted(&actions);
        assert!(
            asked.iter().any(|w| w.stream == s && w.first <= hole && hole <= w.last),
            "{k} s after the round began: hole {hole} not asked for (asked {asked:?})"
        );
    }
    assert_eq!(r.counters().gaps, 0);
}

#[test]
fn repairs_to_one_neighbour_are_bounded_in_bytes_per_second() {
    let now = Instant::now();
    let cfg = Config { serve_burst_bytes: 3_000, serve_bytes_per_sec: 1_000, ..config() };
    let mut r = configured_router(cfg, now, &[2, 3]);
    for _ in 0..10 {
        r.broadcast(Bytes::from(vec![0; 1_000]), now);
    }
    drain(&mut r);
    let own = r.own_stream();
    let all = || vec![SeqRange { stream: own, first: 1, last: u64::MAX }];
    let served = |r: &mut Router<ChaCha8Rng>, to: NodeId| {
        sends(&drain(r)).iter().filter(|(peer, m)| *peer == to && matches!(m, Message::Data { .. })).count()
    };
    r.handle_message(id(3), Message::Graft { want: all(), eager: false }, now);
    assert_eq!(served(&mut r, id(3)), 3, "the burst");
    assert_eq!(r.counters().repairs_over_budget, 7);
    r.handle_message(id(3), Message::Graft { want: all(), eager: false }, now);
    assert_eq!(served(&mut r, id(3)), 0, "asking again does not help");
    r.handle_message(id(2), Message::Graft { want: all(), eager: false }, now);
    assert_eq!(served(&mut r, id(2)), 3, "another neighbour has its own budget");
    let later = now + Duration::from_secs(2);
    r.handle_message(id(3), Message::Graft { want: all(), eager: false }, later);
    assert_eq!(served(&mut r, id(3)), 2, "the rate refills it");
}

#[test]
fn one_stream_holds_at_most_its_share_of_the_reorder_memory() {
    let now = Instant::now();
    // `data` payloads are 4 bytes: two fit a stream's reorder buffer.
    let cfg = Config { reorder_max_stream_bytes: 8, ..config() };
    let mut r = configured_router(cfg, now, &[2]);
    for seq in 2..=4 {
        feed(&mut r, id(2), data(stream(10), seq), now);
    }
    assert_eq!(r.counters().dropped_ahead, 1, "the third one does not fit");
    feed(&mut r, id(2), data(stream(11), 2), now);
    assert_eq!(r.counters().dropped_ahead, 1, "another stream has room of its own");
    drain(&mut r);
    feed(&mut r, id(2), data(stream(10), 1), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2, 3]);
    feed(&mut r, id(2), data(stream(10), 4), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![4], "room again once delivered");
}
