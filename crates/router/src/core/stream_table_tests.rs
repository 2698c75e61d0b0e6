//! Tests of the stream table's defences: new-stream budgets per neighbour, least-recently-active
//! eviction, parking of quiet streams, and watermarks that survive both.

use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;

use super::tests::{config, configured_router, data, deliveries, drain, feed, id, sends, stream};
use super::*;

/// Node 1's router with `cfg` and neighbours 2 and 3.
fn router_with(cfg: Config, now: Instant) -> Router<ChaCha8Rng> {
    configured_router(cfg, now, &[2, 3])
}

#[test]
fn a_full_table_evicts_the_least_recently_active_stream() {
    let t0 = Instant::now();
    // Our own stream and two others.
    let mut r = router_with(Config { max_streams: 3, ..config() }, t0);
    feed(&mut r, id(2), data(stream(10), 1), t0);
    feed(&mut r, id(2), data(stream(11), 1), t0 + Duration::from_millis(1));
    // Stream 10 is active again: 11 is now the least recently active, though created later.
    feed(&mut r, id(2), data(stream(10), 2), t0 + Duration::from_millis(2));
    feed(&mut r, id(3), data(stream(12), 1), t0 + Duration::from_millis(3));
    assert_eq!(r.stream_count(), 3);
    assert_eq!(r.watermark(&stream(10)), Some(2));
    assert_eq!(r.watermark(&stream(11)), None, "the least recently active stream went");
    assert_eq!(r.watermark(&stream(12)), Some(1), "a new stream is admitted at once, well within retention");
    assert_eq!((r.counters().streams_evicted, r.counters().streams_refused), (1, 0));
    assert_eq!(r.forgotten_count(), 1);
}

#[test]
fn an_evicted_stream_resumes_at_its_watermark() {
    let t0 = Instant::now();
    let mut r = router_with(Config { max_streams: 2, ..config() }, t0);
    for seq in 1..=3 {
        feed(&mut r, id(2), data(stream(10), seq), t0);
    }
    feed(&mut r, id(2), data(stream(11), 1), t0 + Duration::from_millis(1));
    assert_eq!(r.watermark(&stream(10)), None, "evicted for stream 11");
    drain(&mut r);
    // A neighbour still retains 1..=3 and offers them again, then the stream goes on: without the
    // remembered watermark, 1..=3 would be delivered twice.
    let later = t0 + Duration::from_millis(2);
    for seq in 1..=4 {
        feed(&mut r, id(3), data(stream(10), seq), later);
    }
    assert_eq!(deliveries(&drain(&mut r)), vec![4], "only the new message is delivered");
    assert_eq!(r.counters().streams_restored, 1);
    assert_eq!(r.forgotten_count(), 1, "stream 11 is remembered now, stream 10's mark was taken back");
    assert_serials_name_the_tracked_streams(&r);
    assert_eq!(r.streams[&stream(10)].serial, 3, "a stream tracked again has a serial of its own");
}

/// The retention log's serials name exactly the tracked streams, each its own.
fn assert_serials_name_the_tracked_streams(r: &Router<ChaCha8Rng>) {
    assert_eq!(r.serials.len(), r.streams.len());
    for (serial, stream) in &r.serials {
        assert_eq!(r.streams[stream].serial, *serial, "{stream:?}");
    }
}

#[test]
fn a_stream_tracked_again_retains_its_payloads_for_their_own_time() {
    let t0 = Instant::now();
    let cfg = Config { max_streams: 2, retention_time: Duration::from_secs(10), ..config() };
    let mut r = router_with(cfg, t0);
    for seq in 1..=3 {
        feed(&mut r, id(2), data(stream(10), seq), t0);
    }
    // Stream 10 is evicted for 11 with its payloads retained, then tracked again from its watermark.
    feed(&mut r, id(2), data(stream(11), 1), t0 + Duration::from_secs(1));
    feed(&mut r, id(3), data(stream(10), 4), t0 + Duration::from_secs(5));
    assert_serials_name_the_tracked_streams(&r);
    let retains = |r: &Router<ChaCha8Rng>| r.streams.get(&stream(10)).is_some_and(|s| s.retains(4));
    assert!(retains(&r));
    // The first life's entries (retained at t0) age out first and name a serial that is gone;
    // message 4, retained later, stays until its own time is up.
    r.handle_timer(Timer::Sweep, t0 + Duration::from_secs(11));
    assert!(retains(&r), "expired with the stream's earlier life");
    r.handle_timer(Timer::Sweep, t0 + Duration::from_secs(16));
    assert!(!retains(&r));
}

#[test]
fn a_quiet_stream_is_parked_and_resumes_at_its_watermark() {
    let t0 = Instant::now();
    let mut r = router_with(config(), t0);
    for seq in 1..=2 {
        feed(&mut r, id(2), data(stream(10), seq), t0);
    }
    // Acknowledged to the neighbours, then nothing more: once its payloads age out of retention,
    // the sweep lets the stream go and keeps its watermark.
    r.handle_timer(Timer::Ack, t0 + r.config().ack_interval);
    drain(&mut r);
    let aged = t0 + r.config().retention_time + r.config().sweep_interval;
    r.handle_timer(Timer::Sweep, aged);
    assert_eq!(r.watermark(&stream(10)), None, "parked");
    assert_eq!((r.counters().streams_parked, r.forgotten_count()), (1, 1));
    drain(&mut r);
    // A neighbour offers it again from the start, and it goes on: nothing is delivered twice.
    for seq in 1..=3 {
        feed(&mut r, id(3), data(stream(10), seq), aged);
    }
    assert_eq!(deliveries(&drain(&mut r)), vec![3], "only the new message is delivered");
    assert_eq!(r.counters().streams_restored, 1);
}

/// Node 1's router, neighbours 2 and 3, keeping no settled payload, with stream 10's messages 1
/// and 2 delivered and acknowledged by both neighbours at `t0`.
fn settled_stream(t0: Instant) -> Router<ChaCha8Rng> {
    settled_stream_with(Config { retention_settled_max_bytes: 0, ..config() }, t0)
}

/// The same with `cfg`.
fn settled_stream_with(cfg: Config, t0: Instant) -> Router<ChaCha8Rng> {
    let mut r = router_with(cfg, t0);
    for seq in 1..=2 {
        feed(&mut r, id(2), data(stream(10), seq), t0);
    }
    for peer in [2, 3] {
        r.handle_message(
            id(peer),
            Message::Ack { marks: vec![Watermark { stream: stream(10), seq: 2 }] },
            t0,
        );
    }
    r.handle_timer(Timer::Ack, t0);
    drain(&mut r);
    r
}

#[test]
fn a_settled_stream_is_parked_soon_after_it_goes_quiet() {
    // Both neighbours hold its messages, so nothing of it is retained: it goes once quiet for
    // `stream_park_after`, long before its messages would have aged out of retention.
    let t0 = Instant::now();
    let mut r = settled_stream(t0);
    let sweep = r.config().sweep_interval;
    r.handle_timer(Timer::Sweep, t0 + sweep);
    assert_eq!(r.watermark(&stream(10)), Some(2), "quiet for less than stream_park_after");
    let quiet = t0 + r.config().stream_park_after + sweep;
    assert!(quiet < t0 + r.config().retention_time);
    r.handle_timer(Timer::Sweep, quiet);
    assert_eq!(r.watermark(&stream(10)), None, "parked");
    assert_eq!((r.counters().streams_parked, r.forgotten_count()), (1, 1));
}

#[test]
fn a_quiet_stream_every_neighbour_holds_folds_its_marks() {
    // Kept retaining (the settled budget has room), stream 10 waits to be parked with one folded
    // mark instead of one per neighbour; what each neighbour holds reads the same, and a neighbour
    // that comes later holds nothing.
    let t0 = Instant::now();
    let mut r = settled_stream_with(config(), t0);
    let slots: Vec<u64> = r.peers.values().map(|p| p.slot).collect();
    let acked = |r: &Router<ChaCha8Rng>| {
        slots.iter().map(|&s| r.streams[&stream(10)].acked_by(s)).collect::<Vec<_>>()
    };
    assert_eq!(acked(&r), vec![2, 2]);
    let quiet = t0 + r.config().sweep_interval;
    r.handle_timer(Timer::Sweep, quiet);
    let state = &r.streams[&stream(10)];
    assert!(state.sent.is_empty(), "folded: {:?}", state.sent);
    assert_eq!((state.retained_span(), state.settled), (Some((1, 2)), 2));
    assert_eq!(acked(&r), vec![2, 2], "each neighbour still holds what it acknowledged");
    r.handle_neighbour_up(id(4), quiet);
    assert_eq!(r.streams[&stream(10)].settled, 0, "the newcomer holds nothing");
    // Message 3 goes to the neighbours with its manifest again (which manifest each was sent last
    // is what folding forgets), and their marks start from what they held.
    drain(&mut r);
    feed(&mut r, id(3), data(stream(10), 3), quiet);
    let actions = drain(&mut r);
    let manifest_to_2 = actions
        .iter()
        .any(|a| matches!(a, Action::Send { to, message: Message::Manifest(_) } if to.contains(&id(2))));
    assert!(manifest_to_2, "{actions:?}");
    assert_eq!(acked(&r), vec![2, 2]);
}

/// [`settled_stream`] once the sweep parked stream 10, and the time it did, actions drained.
fn parked_stream() -> (Router<ChaCha8Rng>, Instant) {
    let t0 = Instant::now();
    let mut r = settled_stream(t0);
    let later = t0 + r.config().stream_park_after + r.config().sweep_interval;
    r.handle_timer(Timer::Sweep, later);
    assert_eq!(r.counters().streams_parked, 1);
    drain(&mut r);
    (r, later)
}

#[test]
fn late_news_of_a_parked_stream_leaves_it_parked() {
    // Digests, acknowledgements, manifests and payload copies naming only delivered messages
    // arrive after the stream was parked: none brings its state back, and nothing is delivered
    // twice. News of message 3 does bring it back, at its watermark.
    let (mut r, later) = parked_stream();
    let old = SeqRange { stream: stream(10), first: 1, last: 2 };
    r.handle_message(id(3), Message::IHave { ranges: vec![old], hops: 0 }, later);
    r.handle_message(id(3), Message::Ack { marks: vec![Watermark { stream: stream(10), seq: 2 }] }, later);
    r.handle_message(id(3), Message::Sync { marks: vec![Watermark { stream: stream(10), seq: 1 }] }, later);
    feed(&mut r, id(3), data(stream(10), 2), later);
    assert_eq!(deliveries(&drain(&mut r)), Vec::<u64>::new());
    assert_eq!(r.watermark(&stream(10)), None, "still parked");
    let c = r.counters();
    assert_eq!((c.streams_restored, c.duplicates, c.unproven_payloads), (0, 1, 0));
    assert!(c.parked_news >= 4, "{} pieces of news of a parked stream ignored", c.parked_news);
    let new = SeqRange { stream: stream(10), first: 3, last: 3 };
    r.handle_message(id(3), Message::IHave { ranges: vec![new], hops: 0 }, later);
    assert_eq!(r.watermark(&stream(10)), Some(2), "back at its watermark");
    assert_eq!(r.counters().streams_restored, 1);
}

#[test]
fn a_new_neighbour_naming_a_parked_stream_hears_our_position() {
    // A new neighbour's `Sync` names stream 10 at a position we had delivered when we parked it:
    // it retains that message until every neighbour holds it, and our watermark will not move to
    // tell it, so we acknowledge its position.
    let (mut r, later) = parked_stream();
    r.handle_neighbour_up(id(7), later);
    drain(&mut r);
    let position = Watermark { stream: stream(10), seq: 2 };
    r.handle_message(id(7), Message::Sync { marks: vec![position] }, later);
    let acks: Vec<_> =
        sends(&drain(&mut r)).into_iter().filter(|(_, m)| matches!(m, Message::Ack { .. })).collect();
    assert_eq!(acks, vec![(id(7), Message::Ack { marks: vec![position] })]);
    assert_eq!(r.watermark(&stream(10)), None, "still parked");
}

#[test]
fn a_parked_stream_comes_back_on_no_budget() {
    // A neighbour with budget for two new streams a second names two, which are parked once
    // quiet; with its budget spent on two more, both parked streams still come back.
    let t0 = Instant::now();
    let cfg = Config { new_stream_burst: 2, new_streams_per_sec: 0, ..config() };
    let mut r = router_with(cfg, t0);
    for n in [10, 11] {
        feed(&mut r, id(2), data(stream(n), 1), t0);
    }
    r.handle_timer(Timer::Ack, t0 + r.config().ack_interval);
    drain(&mut r);
    let aged = t0 + r.config().retention_time + r.config().sweep_interval;
    r.handle_timer(Timer::Sweep, aged);
    assert_eq!(r.counters().streams_parked, 2);
    // The budget is spent now (this neighbour's own bucket never refills).
    r.handle_neighbour_up(id(7), aged);
    for n in [12, 13, 14] {
        feed(&mut r, id(7), data(stream(n), 1), aged);
    }
    assert_eq!(r.counters().streams_refused, 1, "the third new stream is over budget");
    drain(&mut r);
    for n in [10, 11] {
        feed(&mut r, id(7), data(stream(n), 2), aged);
    }
    assert_eq!(deliveries(&drain(&mut r)), vec![2, 2], "both parked streams go on");
    assert_eq!((r.counters().streams_restored, r.counters().streams_refused), (2, 1));
}

#[test]
fn a_stream_with_a_hole_is_not_parked() {
    let t0 = Instant::now();
    let mut r = router_with(config(), t0);
    feed(&mut r, id(2), data(stream(10), 1), t0);
    feed(&mut r, id(2), data(stream(10), 3), t0);
    r.handle_timer(Timer::Ack, t0 + r.config().ack_interval);
    drain(&mut r);
    // Message 1's retention ends while 3 waits for 2 (a gap timer is armed): not quiet.
    let aged = t0 + r.config().retention_time + r.config().sweep_interval;
    r.handle_timer(Timer::Sweep, aged);
    assert_eq!(r.counters().streams_parked, 0);
    assert_eq!(r.watermark(&stream(10)), Some(1), "still tracked, waiting for its hole");
}

#[test]
fn each_neighbour_has_its_own_new_stream_budget() {
    let t0 = Instant::now();
    let cfg = Config { new_stream_burst: 4, new_streams_per_sec: 2, ..config() };
    let mut r = router_with(cfg, t0);
    for n in 10..20 {
        feed(&mut r, id(2), data(stream(n), 1), t0);
    }
    assert_eq!(r.stream_count(), 1 + 4, "neighbour 2 named four new streams, no more");
    assert_eq!(r.counters().streams_refused, 6);
    // Neighbour 3 still has its whole budget, and is the only way stream 19 comes.
    feed(&mut r, id(3), data(stream(19), 1), t0);
    assert_eq!(r.watermark(&stream(19)), Some(1));
    // Known streams cost nothing; after a second neighbour 2 has two more tokens.
    feed(&mut r, id(2), data(stream(10), 2), t0);
    let t1 = t0 + Duration::from_secs(1);
    for n in 30..35 {
        feed(&mut r, id(2), data(stream(n), 1), t1);
    }
    assert_eq!(r.stream_count(), 1 + 4 + 1 + 2);
    // A peer that is not a neighbour names no stream at all.
    feed(&mut r, id(9), data(stream(40), 1), t1);
    assert_eq!(r.watermark(&stream(40)), None);
}

#[test]
fn the_node_budget_holds_however_many_neighbours_come() {
    let t0 = Instant::now();
    let cfg = Config { total_new_stream_burst: 6, total_new_streams_per_sec: 1, ..config() };
    let mut r = router_with(cfg, t0);
    // Fresh identities, each with a full bucket of its own.
    for (n, peer) in (10..20).zip(30..40) {
        r.handle_neighbour_up(id(peer), t0);
        feed(&mut r, id(peer), data(stream(n), 1), t0);
    }
    assert_eq!(r.stream_count(), 1 + 6);
    feed(&mut r, id(2), data(stream(19), 1), t0 + Duration::from_secs(1));
    assert_eq!(r.watermark(&stream(19)), Some(1), "one more a second");
}

#[test]
fn marks_must_outlive_the_churn_the_budget_allows() {
    let retention = Config::default().retention_time.as_secs() + 1;
    let small =
        Config { max_forgotten_streams: 2 * (4_096 + 256 * retention as usize) - 1, ..Config::default() };
    assert!(matches!(small.validate(), Err(InvalidConfig::Inconsistent(_))));
    let enough =
        Config { max_forgotten_streams: 2 * (4_096 + 256 * retention as usize), ..Config::default() };
    assert_eq!(enough.validate(), Ok(()));
    let longer = Config { retention_time: Duration::from_secs(120), ..Config::default() };
    assert!(longer.validate().is_err(), "a longer retention needs more marks");
    let fixed = Config { max_forgotten_streams: longer.min_forgotten_streams(), ..longer };
    assert_eq!(fixed.validate(), Ok(()));
}

#[test]
fn idle_streams_are_swept_and_active_ones_stay() {
    let t0 = Instant::now();
    let mut r = router_with(config(), t0);
    feed(&mut r, id(2), data(stream(10), 1), t0);
    feed(&mut r, id(2), data(stream(11), 1), t0);
    let idle = r.config().stream_idle_timeout;
    let half = t0 + idle / 2;
    feed(&mut r, id(2), data(stream(11), 2), half);
    let mut now = t0;
    while now < t0 + idle + Duration::from_secs(2) {
        now += r.config().sweep_interval;
        r.handle_timer(Timer::Sweep, now);
    }
    assert_eq!(r.watermark(&stream(10)), None, "idle past the timeout");
    assert_eq!(r.watermark(&stream(11)), Some(2), "active half way");
    assert_eq!(r.forgotten_count(), 0, "an idle stream leaves no mark");
    // Checked once a timeout after it was queued, it was found active and queued again: it goes
    // after between one and two timeouts of idleness.
    let end = t0 + 2 * idle + Duration::from_secs(2);
    r.handle_timer(Timer::Sweep, end);
    assert_eq!(r.stream_count(), 1, "only our own stream is left");
}

#[test]
fn a_timer_of_an_evicted_stream_does_not_fire_for_its_successor() {
    let t0 = Instant::now();
    let mut r = router_with(Config { max_streams: 2, ..config() }, t0);
    // A hole in stream 10 arms its gap timer.
    feed(&mut r, id(2), data(stream(10), 1), t0);
    feed(&mut r, id(2), data(stream(10), 3), t0);
    let stale: Vec<Timer> = drain(&mut r)
        .into_iter()
        .filter_map(|a| match a {
            Action::SetTimer { timer: timer @ Timer::Gap { .. }, .. } => Some(timer),
            _ => None,
        })
        .collect();
    assert_eq!(stale.len(), 1);
    // Stream 10 is evicted, comes back, and has a hole of its own again.
    let t1 = t0 + Duration::from_millis(1);
    feed(&mut r, id(2), data(stream(11), 1), t1);
    feed(&mut r, id(3), data(stream(10), 5), t1);
    drain(&mut r);
    // The old incarnation's gap timer fires: the new hole (2..=4) is not reported early.
    r.handle_timer(stale[0], t1 + r.config().gap_timeout);
    let gaps = drain(&mut r).into_iter().filter(|a| matches!(a, Action::Event(Event::Gap { .. }))).count();
    assert_eq!(gaps, 0);
    assert_eq!(r.watermark(&stream(10)), Some(1));
}

#[test]
fn a_stream_without_budget_costs_no_signature_check() {
    let t0 = Instant::now();
    let cfg = Config { new_stream_burst: 1, new_streams_per_sec: 0, ..config() };
    let mut r = router_with(cfg, t0);
    feed(&mut r, id(2), data(stream(10), 1), t0);
    assert_eq!(r.counters().manifests_verified, 1);
    for n in 11..20 {
        feed(&mut r, id(2), data(stream(n), 1), t0);
    }
    assert_eq!(r.counters().manifests_verified, 1, "refused before any verification");
    assert_eq!(
        r.counters().streams_refused,
        9,
        "each manifest was refused (a payload alone names no stream)"
    );
}
