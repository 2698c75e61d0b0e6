//! A node's own stream across a restart: every signed batch announces its position before it
//! leaves ([`Action::Sealed`]), and a router given that position ([`Router::continue_stream`])
//! numbers on in the same stream, so its neighbours deliver on without a gap or a repeat.

use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;
use rand_chacha::ChaCha8Rng;

use super::tests::{deliveries, drain, id, router};
use super::*;

/// A receiver (node 2) and the first run of an origin (node 1), neighbours, after the origin
/// broadcast three messages and the receiver delivered them; with the last position the origin
/// announced for storing.
fn first_run_delivered_three(now: Instant) -> (Router<ChaCha8Rng>, Router<ChaCha8Rng>, u64) {
    let mut receiver = router(2, now);
    receiver.handle_neighbour_up(id(1), now);
    drain(&mut receiver);
    let mut first_run = router(1, now);
    first_run.handle_neighbour_up(id(2), now);
    drain(&mut first_run);
    for payload in [b"a", b"b", b"c"] {
        first_run.broadcast(Bytes::from_static(payload), now);
    }
    let actions = drain(&mut first_run);
    let stored = actions
        .iter()
        .filter_map(|a| match a {
            Action::Sealed { through, .. } => Some(*through),
            _ => None,
        })
        .max()
        .expect("a position announced");
    pass(&actions, id(2), id(1), &mut receiver, now);
    assert_eq!(deliveries(&drain(&mut receiver)), vec![1, 2, 3]);
    (receiver, first_run, stored)
}

/// Hands every message `from` sends to `to` to the router `to` (by id `to_id`).
fn pass(actions: &[Action], to_id: NodeId, from: NodeId, to: &mut Router<ChaCha8Rng>, now: Instant) {
    for action in actions {
        if let Action::Send { to: recipients, message } = action
            && recipients.contains(&to_id)
        {
            to.handle_message(from, message.clone(), now);
        }
    }
}

#[test]
fn each_signed_batch_announces_its_position_before_it_leaves() {
    let now = Instant::now();
    let mut r = router(1, now);
    r.handle_neighbour_up(id(2), now);
    drain(&mut r);
    r.broadcast(Bytes::from_static(b"a"), now);
    r.broadcast(Bytes::from_static(b"b"), now);
    let actions = drain(&mut r);
    let own = r.own_stream();
    let sealed = |at: u64| {
        actions.iter().position(|a| {
            matches!(a, Action::Sealed { stream, through, proof, payloads }
                if *stream == own && *through == at && proof.last() == at && payloads.len() == 1)
        })
    };
    let first_send_of = |seq| {
        actions.iter().position(|a| match a {
            Action::Send { message: Message::Manifest(m), .. } => m.first == seq,
            Action::Send { message: Message::Data { seq: s, .. }, .. } => *s == seq,
            _ => false,
        })
    };
    for seq in [1, 2] {
        let (Some(at), Some(sent)) = (sealed(seq), first_send_of(seq)) else {
            panic!("no announcement or no send of {seq}: {actions:?}");
        };
        assert!(at < sent, "{seq} was sent before its position was announced");
    }
}

#[test]
fn a_continued_stream_numbers_on_and_its_neighbours_deliver_on() {
    let now = Instant::now();
    // The origin's first run: three messages, then it dies.
    let (mut receiver, first_run, stored) = first_run_delivered_three(now);
    assert_eq!(stored, 3);

    // The second run continues the stored stream.
    let stream = first_run.own_stream();
    let mut second_run = router(1, now);
    second_run.continue_stream(stream.epoch, stored);
    assert_eq!(second_run.own_stream(), stream);
    assert_eq!(second_run.next_seq(), 4);
    second_run.handle_neighbour_up(id(2), now);
    receiver.handle_neighbour_down(id(1), now);
    receiver.handle_neighbour_up(id(1), now);
    let hello = drain(&mut second_run);
    pass(&drain(&mut receiver), id(1), id(2), &mut second_run, now);
    pass(&hello, id(2), id(1), &mut receiver, now);
    drain(&mut second_run);
    let id4 = second_run.broadcast(Bytes::from_static(b"d"), now);
    assert_eq!(id4, MessageId { stream, seq: 4 });
    pass(&drain(&mut second_run), id(2), id(1), &mut receiver, now);
    let actions = drain(&mut receiver);
    assert_eq!(deliveries(&actions), vec![4], "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Event(Event::Gap { .. }))));
    assert!(!actions.iter().any(|a| matches!(a, Action::Violation { .. })));
}

#[test]
#[should_panic(expected = "right after Router::new")]
fn a_stream_cannot_be_continued_once_the_router_has_broadcast() {
    let now = Instant::now();
    let mut r = router(1, now);
    r.broadcast(Bytes::from_static(b"a"), now);
    r.continue_stream(5, 10);
}

#[test]
fn a_resumed_stream_is_taken_up_right_after_the_stored_position() {
    use super::tests::{data, feed, router_with_neighbours, stream};
    let now = Instant::now();
    let deliver_all = |r: &mut Router<ChaCha8Rng>| {
        for seq in 1..=6 {
            feed(r, id(3), data(stream(9), seq), now);
        }
        deliveries(&drain(r))
    };
    // A node that never saw the stream takes up all it is sent.
    let mut fresh = router_with_neighbours(now, &[3]);
    assert_eq!(deliver_all(&mut fresh), vec![1, 2, 3, 4, 5, 6]);
    // A restarted node whose application acknowledged 3 takes up 4 onwards, and 1..=3 are duplicates.
    let mut restarted = router_with_neighbours(now, &[3]);
    restarted.resume_stream(stream(9), 3, now);
    assert_eq!(deliver_all(&mut restarted), vec![4, 5, 6]);
    assert_eq!(restarted.watermark(&stream(9)), Some(6));
}

/// Passes messages both ways between `a` (id 1) and `b` (id 2) and fires their timers, for
/// `millis` of simulated time from `start` in 10 ms steps; returns `b`'s actions.
fn pump(a: &mut Router<ChaCha8Rng>, b: &mut Router<ChaCha8Rng>, start: Instant, millis: u64) -> Vec<Action> {
    let mut b_actions = Vec::new();
    let mut timers: Vec<(bool, Instant, Timer)> = Vec::new();
    for step in 0..=millis / 10 {
        let now = start + std::time::Duration::from_millis(step * 10);
        let due: Vec<(bool, Timer)> = {
            let (due, later): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(_, at, _)| *at <= now);
            timers = later;
            due.into_iter().map(|(is_a, _, t)| (is_a, t)).collect()
        };
        for (is_a, timer) in due {
            if is_a { a.handle_timer(timer, now) } else { b.handle_timer(timer, now) }
        }
        for _ in 0..4 {
            let from_a = drain(a);
            let from_b = drain(b);
            for action in &from_a {
                if let Action::SetTimer { at, timer } = action {
                    timers.push((true, *at, *timer));
                }
            }
            for action in &from_b {
                if let Action::SetTimer { at, timer } = action {
                    timers.push((false, *at, *timer));
                }
            }
            pass(&from_a, id(2), id(1), b, now);
            pass(&from_b, id(1), id(2), a, now);
            b_actions.extend(from_b);
        }
    }
    b_actions
}

#[test]
fn a_batch_stored_but_never_sent_is_served_by_the_restarted_origin() {
    let now = Instant::now();
    let (mut receiver, mut first_run, _) = first_run_delivered_three(now);
    // Message 4 is signed and its batch stored, then the process dies before sending it.
    first_run.broadcast(Bytes::from_static(b"d"), now);
    let stored = drain(&mut first_run)
        .into_iter()
        .find_map(|a| match a {
            Action::Sealed { through: 4, proof, payloads, .. } => Some((proof, payloads)),
            _ => None,
        })
        .expect("the batch of 4 announced");

    let stream = first_run.own_stream();
    let mut second_run = router(1, now);
    second_run.continue_stream(stream.epoch, 4);
    assert!(second_run.restore_own_batch(stored.0.clone(), stored.1.clone(), now));
    // A batch of another stream, or with payloads it does not list, is refused.
    assert!(!router(3, now).restore_own_batch(stored.0.clone(), stored.1.clone(), now));
    assert!(!second_run.restore_own_batch(stored.0, vec![Bytes::from_static(b"x")], now));

    receiver.handle_neighbour_down(id(1), now);
    second_run.handle_neighbour_up(id(2), now);
    receiver.handle_neighbour_up(id(1), now);
    second_run.broadcast(Bytes::from_static(b"e"), now);
    let actions = pump(&mut second_run, &mut receiver, now, 3_000);
    assert_eq!(deliveries(&actions), vec![4, 5], "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Event(Event::Gap { .. }))));
}
