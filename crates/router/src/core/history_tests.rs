//! Serving from a history on disk: delivered payloads are handed to the driver to store, requests
//! for what memory no longer holds become one read at a time, and what the read returns is checked
//! and sent within the range asked and the neighbour's repair budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::NodeId;
use rand_chacha::ChaCha8Rng;

use super::tests::{config, configured_router, drain, feed, id, sends, stream};
use super::*;
use crate::proof::{InsecureSigner, Manifest, payload_hash};

fn history_config() -> Config {
    Config { history: true, ..config() }
}

fn payload(seq: u64) -> Bytes {
    Bytes::from(format!("message {seq}"))
}

/// One manifest of `stream(5)` over `first..=last`, signed by its origin.
fn manifest(first: u64, last: u64) -> Arc<Manifest> {
    let hashes: Vec<u8> = (first..=last).flat_map(|seq| payload_hash(&payload(seq))).collect();
    Arc::new(Manifest::sign(&*InsecureSigner::new(stream(5).origin), stream(5), first, hashes.into()))
}

fn run(first: u64, last: u64) -> RecalledRun {
    RecalledRun { proof: manifest(1, 50), first, payloads: (first..=last).map(payload).collect() }
}

/// Node 1 with neighbours 2 and 3 and a history, after delivering `stream(5)` 1..=3 from node 2 and
/// letting retention expire: everything it delivered is on disk only.
fn delivered_then_forgotten(now: Instant) -> (Router<ChaCha8Rng>, Instant) {
    let mut r = configured_router(history_config(), now, &[2, 3]);
    for seq in 1..=3 {
        feed(&mut r, id(2), Message::Data { stream: stream(5), seq, hops: 0, payload: payload(seq) }, now);
    }
    let later = now + r.config().retention_time + Duration::from_secs(1);
    r.handle_timer(Timer::Sweep, later);
    drain(&mut r);
    assert_eq!(r.retained(), (0, 0), "retention expired");
    (r, later)
}

fn recalls(actions: &[Action]) -> Vec<(NodeId, u64, u64, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Recall { to, first, last, max_messages, .. } => Some((*to, *first, *last, *max_messages)),
            _ => None,
        })
        .collect()
}

fn graft(r: &mut Router<ChaCha8Rng>, from: u8, first: u64, last: u64, now: Instant) -> Vec<Action> {
    let want = vec![SeqRange { stream: stream(5), first, last }];
    r.handle_message(id(from), Message::Graft { want, eager: false }, now);
    drain(r)
}

fn data_seqs(actions: &[Action]) -> Vec<u64> {
    sends(actions)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Data { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

#[test]
fn each_delivery_is_handed_on_for_the_history_with_its_proof() {
    let now = Instant::now();
    let mut r = configured_router(history_config(), now, &[2]);
    feed(&mut r, id(2), Message::Data { stream: stream(5), seq: 1, hops: 0, payload: payload(1) }, now);
    let actions = drain(&mut r);
    let deliver = actions.iter().position(|a| matches!(a, Action::Deliver(_))).expect("delivered");
    let archive = actions
        .iter()
        .position(|a| {
            matches!(a, Action::Archive { stream: s, seq: 1, payload: p, proof }
                if *s == stream(5) && *p == payload(1) && proof.proves(1, p))
        })
        .expect("archived");
    assert!(deliver < archive);

    let mut without = configured_router(config(), now, &[2]);
    feed(&mut without, id(2), Message::Data { stream: stream(5), seq: 1, hops: 0, payload: payload(1) }, now);
    assert!(!drain(&mut without).iter().any(|a| matches!(a, Action::Archive { .. })));
}

#[test]
fn what_memory_no_longer_holds_is_recalled_one_read_at_a_time() {
    let (mut r, now) = delivered_then_forgotten(Instant::now());
    let first = graft(&mut r, 3, 1, 3, now);
    assert_eq!(recalls(&first), [(id(3), 1, 3, 3)]);
    assert!(data_seqs(&first).is_empty(), "nothing is sent before the read comes back");
    // A second request while the read is under way reads nothing more, and sends nothing.
    let second = graft(&mut r, 3, 1, 3, now);
    assert!(recalls(&second).is_empty() && data_seqs(&second).is_empty());
    // Another neighbour has a read of its own.
    assert_eq!(recalls(&graft(&mut r, 2, 2, 2, now)), [(id(2), 2, 2, 1)]);

    // The answer: overlapping runs (a message stored twice) and more than was asked.
    r.handle_recalled(id(3), vec![run(1, 2), run(2, 5)], now);
    let answer = drain(&mut r);
    assert_eq!(data_seqs(&answer), [1, 2, 3], "the range asked, each message once");
    let manifests = answer.iter().filter(|a| matches!(a, Action::Send { message: Message::Manifest(_), .. }));
    assert_eq!(manifests.count(), 1, "the manifest goes first, once");
    assert_eq!(r.counters().recalled, 3);
    // The read is answered: the next request reads again.
    assert_eq!(recalls(&graft(&mut r, 3, 1, 3, now)), [(id(3), 1, 3, 3)]);
}

#[test]
fn a_stream_no_longer_tracked_is_recalled_whole_and_the_cap_holds() {
    let now = Instant::now();
    let cfg = Config { max_serve_per_request: 4, ..history_config() };
    let mut r = configured_router(cfg, now, &[2]);
    let actions = graft(&mut r, 2, 10, 1_000_000, now);
    assert_eq!(recalls(&actions), [(id(2), 10, 1_000_000, 4)]);
    r.handle_recalled(id(2), vec![run(10, 20)], now);
    assert_eq!(data_seqs(&drain(&mut r)), [10, 11, 12, 13]);
}

#[test]
fn a_damaged_read_is_not_sent() {
    let (mut r, now) = delivered_then_forgotten(Instant::now());
    graft(&mut r, 3, 1, 3, now);
    let mut forged = (*manifest(1, 50)).clone();
    forged.signature[0] ^= 1;
    let bad_signature = RecalledRun { proof: Arc::new(forged), ..run(1, 1) };
    let mut bad_payload = run(2, 3);
    bad_payload.payloads[1] = Bytes::from_static(b"not message 3");
    r.handle_recalled(id(3), vec![bad_signature, bad_payload], now);
    assert_eq!(data_seqs(&drain(&mut r)), [2], "only what its proof vouches for");
    assert_eq!(r.counters().history_damaged, 2);
}

#[test]
fn a_neighbour_without_repair_budget_reads_nothing() {
    let now = Instant::now();
    let cfg = Config { serve_burst_bytes: 9, serve_bytes_per_sec: 1, ..history_config() };
    let mut r = configured_router(cfg, now, &[2]);
    assert_eq!(recalls(&graft(&mut r, 2, 1, 3, now)), [(id(2), 1, 3, 3)]);
    // "message 1" is 9 bytes: it takes the whole budget.
    r.handle_recalled(id(2), vec![run(1, 3)], now);
    assert_eq!(data_seqs(&drain(&mut r)), [1]);
    assert!(r.counters().repairs_over_budget > 0);
    assert!(recalls(&graft(&mut r, 2, 2, 3, now)).is_empty(), "no budget left: no read");
}

#[test]
fn without_a_history_nothing_is_recalled() {
    let now = Instant::now();
    let mut r = configured_router(config(), now, &[2]);
    assert!(recalls(&graft(&mut r, 2, 1, 3, now)).is_empty());
}

#[test]
fn a_resumed_stream_far_behind_a_neighbour_asks_for_everything_after_its_mark() {
    use super::tests::{graft_timer, grafted, router_with_neighbours};
    let now = Instant::now();
    let mut r = router_with_neighbours(now, &[]);
    // Acknowledged through 0 in an earlier run: owed the whole stream, however far it went on.
    r.resume_stream(stream(5), 0, now);
    r.handle_neighbour_up(id(2), now);
    drain(&mut r);
    let marks = vec![Watermark { stream: stream(5), seq: 100_000 }];
    r.handle_message(id(2), Message::Sync { marks }, now);
    let timer = graft_timer(&drain(&mut r)).expect("a graft armed");
    r.handle_timer(timer, now + Duration::from_secs(2));
    let want = grafted(&drain(&mut r));
    assert_eq!(want.first().map(|w| (w.stream, w.first)), Some((stream(5), 1)), "{want:?}");
}

#[test]
fn with_a_history_an_idle_stream_keeps_its_mark_and_old_messages_are_not_delivered_again() {
    use super::tests::deliveries;
    let t0 = Instant::now();
    let mut r = configured_router(history_config(), t0, &[2]);
    for seq in 1..=3 {
        feed(&mut r, id(2), Message::Data { stream: stream(5), seq, hops: 0, payload: payload(seq) }, t0);
    }
    drain(&mut r);
    // Idle for hours: forgotten from the table, but its mark stays.
    let idle = r.config().stream_idle_timeout;
    let mut now = t0;
    while now < t0 + 6 * idle {
        now += Duration::from_secs(30);
        r.handle_timer(Timer::Sweep, now);
    }
    drain(&mut r);
    assert_eq!(r.watermark(&stream(5)), None, "not tracked any more");
    assert_eq!(r.forgotten_count(), 1, "its mark is kept");
    // A neighbour's history serves 2..=4: only 4 is new.
    for seq in 2..=4 {
        feed(&mut r, id(2), Message::Data { stream: stream(5), seq, hops: 0, payload: payload(seq) }, now);
    }
    assert_eq!(deliveries(&drain(&mut r)), [4]);
}

/// Fires `r`'s timers in order until `until`, starting from `actions`; returns every action.
fn run_timers(r: &mut Router<ChaCha8Rng>, mut actions: Vec<Action>, until: Instant) -> Vec<Action> {
    let mut all = Vec::new();
    let mut timers: Vec<(Instant, Timer)> = Vec::new();
    loop {
        for action in &actions {
            if let Action::SetTimer { at, timer } = action {
                timers.push((*at, *timer));
            }
        }
        all.append(&mut actions);
        timers.sort_by_key(|(at, _)| *at);
        if timers.is_empty() || timers[0].0 > until {
            return all;
        }
        let (at, timer) = timers.remove(0);
        r.handle_timer(timer, at);
        actions = drain(r);
    }
}

#[test]
fn a_stream_resumed_behind_what_anyone_holds_reports_the_gap_and_goes_on() {
    use super::tests::grafted;
    let now = Instant::now();
    let mut r = configured_router(config(), now, &[2]);
    r.resume_stream(stream(5), 0, now);
    // The stream went on to 10,000 meanwhile: its origin's manifest proves it.
    feed(
        &mut r,
        id(2),
        Message::Data { stream: stream(5), seq: 10_000, hops: 0, payload: payload(10_000) },
        now,
    );
    let actions = drain(&mut r);
    let gap_timeout = r.config().gap_timeout;
    let actions = run_timers(&mut r, actions, now + gap_timeout + Duration::from_secs(1));
    let gaps: Vec<(u64, u64)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(Event::Gap { first, last, .. }) => Some((*first, *last)),
            _ => None,
        })
        .collect();
    let window = r.config().reorder_window;
    assert_eq!(gaps, [(1, 10_000 - window)], "what nobody served, reported once");
    let last_ask = grafted(&actions).into_iter().last().expect("grafts sent");
    assert_eq!(
        (last_ask.first, last_ask.last),
        (10_000 - window + 1, 10_000),
        "then the window up to the proof"
    );

    // A neighbour's unproven claim of a far-ahead number skips nothing.
    let mut other = configured_router(config(), now, &[2]);
    other.resume_stream(stream(5), 0, now);
    feed(&mut other, id(2), Message::Data { stream: stream(5), seq: 3, hops: 0, payload: payload(3) }, now);
    let marks = vec![Watermark { stream: stream(5), seq: 1_000_000 }];
    other.handle_message(id(2), Message::Sync { marks }, now);
    other.handle_message(
        id(2),
        Message::Data { stream: stream(5), seq: 900_000, hops: 0, payload: payload(1) },
        now,
    );
    let actions = drain(&mut other);
    let actions = run_timers(&mut other, actions, now + 3 * gap_timeout);
    let skipped =
        actions.iter().any(|a| matches!(a, Action::Event(Event::Gap { first: 1, last, .. }) if *last > 3));
    assert!(!skipped, "{actions:?}");
}
