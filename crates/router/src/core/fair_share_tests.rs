//! Tests of the fair shares of the reorder and retention pools (`fair_share.rs`).

use std::time::Instant;

use rand_chacha::ChaCha8Rng;

use super::tests::{
    configured_router, data, deliveries, drain, feed, graft_timer, grafted, id, sends, stream,
};
use super::*;

/// Node 1's router with the given limits and neighbour 2. `data` payloads are 4 bytes.
fn router(cfg: Config, now: Instant) -> Router<ChaCha8Rng> {
    configured_router(Config { max_batch_len: 1, ..cfg }, now, &[2])
}

#[test]
fn a_full_reorder_pool_makes_room_from_the_stream_holding_the_most() {
    let now = Instant::now();
    let mut r = router(Config { reorder_max_bytes: 40, ..Config::default() }, now);
    let (heavy, light) = (stream(10), stream(11));
    // The heavy stream withholds its first message and fills the whole pool.
    for seq in 2..=11 {
        feed(&mut r, id(2), data(heavy, seq), now);
    }
    feed(&mut r, id(2), data(heavy, 12), now);
    assert_eq!(r.counters().dropped_ahead, 1, "the stream holding the most makes no room for itself");
    assert_eq!(r.counters().reorder_evicted, 0);
    // A light stream's payload, ahead of a short hole, still finds room.
    feed(&mut r, id(2), data(light, 2), now);
    assert_eq!(r.counters().dropped_ahead, 1, "not dropped");
    let evicted = r.counters().reorder_evicted;
    assert!(evicted >= 1);
    drain(&mut r);
    feed(&mut r, id(2), data(light, 1), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2]);
    // The heavy stream gave up its furthest payloads, and kept the ones next in line.
    feed(&mut r, id(2), data(heavy, 1), now);
    let delivered = deliveries(&drain(&mut r));
    assert_eq!(delivered, (1..=11 - evicted).collect::<Vec<_>>());
}

#[test]
fn a_full_retention_cache_keeps_the_light_streams_and_trims_the_heaviest() {
    let now = Instant::now();
    let mut r = router(Config { retention_max_bytes: 40, ..Config::default() }, now);
    let (heavy, light) = (stream(10), stream(11));
    for seq in 1..=2 {
        feed(&mut r, id(2), data(light, seq), now);
    }
    for seq in 1..=20 {
        feed(&mut r, id(2), data(heavy, seq), now);
    }
    assert!(r.counters().retention_evicted >= 12, "the cache holds 40 bytes at most");
    drain(&mut r);
    let graft = |s: StreamId, first: u64, last: u64| Message::Graft {
        want: vec![SeqRange { stream: s, first, last }],
        eager: false,
    };
    let served = |r: &mut Router<ChaCha8Rng>| {
        sends(&drain(r)).iter().filter(|(_, m)| matches!(m, Message::Data { .. })).count()
    };
    // Older than all of the heavy stream's payloads, the light stream's are all still there.
    r.handle_message(id(2), graft(light, 1, 2), now);
    assert_eq!(served(&mut r), 2);
    r.handle_message(id(2), graft(heavy, 1, 20), now);
    let kept = served(&mut r);
    assert!((1..=8).contains(&kept), "the heavy stream keeps at most the rest ({kept})");
    r.handle_message(id(2), graft(heavy, 20, 20), now);
    assert_eq!(served(&mut r), 1, "its newest payloads");
}

#[test]
fn a_stream_that_did_not_fit_is_repaired_from_its_head_hole_only() {
    let now = Instant::now();
    // Room for two 4-byte payloads of one stream.
    let mut r = router(Config { reorder_max_stream_bytes: 8, ..Config::default() }, now);
    let s = stream(10);
    // Holes at 1 and 4; 6 does not fit.
    feed(&mut r, id(2), data(s, 2), now);
    feed(&mut r, id(2), data(s, 3), now);
    feed(&mut r, id(2), data(s, 5), now);
    feed(&mut r, id(2), data(s, 6), now);
    assert_eq!(r.counters().dropped_ahead, 2);
    let timer = graft_timer(&drain(&mut r)).expect("the holes arm the graft timer");
    r.handle_timer(timer, now + r.config().graft_timeout);
    let actions = drain(&mut r);
    assert_eq!(grafted(&actions), vec![SeqRange::single(s, 1)], "what follows would not fit");
    // Once the head is filled and the buffer drained, everything missing is asked for again.
    feed(&mut r, id(2), data(s, 1), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2, 3]);
    let timer = graft_timer(&actions).expect("the round goes on");
    r.handle_timer(timer, now + r.config().graft_timeout * 2);
    let asked = grafted(&drain(&mut r));
    assert_eq!(asked, vec![SeqRange { stream: s, first: 4, last: 6 }]);
}
