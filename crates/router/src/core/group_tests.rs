//! Unit tests of proving payloads a group at a time (`group.rs`): a whole group in one batch is
//! proven with one digest, and anything else falls back to one proof per payload, with the same
//! outcome as if nothing had been held.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;
use rand_chacha::ChaCha8Rng;

use super::authenticity_tests::violations;
use super::tests::{deliveries, drain, id, router_with_neighbours, sends, stream};
use super::*;
use crate::proof::{GROUP_LEN, InsecureSigner, Manifest};

const COUNT: u64 = GROUP_LEN as u64 + 4;

fn payload(seq: u64) -> Bytes {
    Bytes::from(vec![seq as u8; 100])
}

/// Node 1 with neighbours 2 and 3, holding origin 9's manifest for messages `1..=COUNT` (two
/// groups, the second of 4) received from 2.
fn with_manifest(now: Instant) -> (Router<ChaCha8Rng>, StreamId) {
    let mut r = router_with_neighbours(now, &[2, 3]);
    let s = stream(9);
    let payloads: Vec<Bytes> = (1..=COUNT).map(payload).collect();
    let m = Manifest::sign_payloads(&*InsecureSigner::new(s.origin), s, 1, &payloads);
    r.handle_message(id(2), Message::Manifest(Arc::new(m)), now);
    drain(&mut r);
    (r, s)
}

fn data_from(r: &mut Router<ChaCha8Rng>, from: u8, s: StreamId, seq: u64, payload: Bytes, now: Instant) {
    r.handle_message(id(from), Message::Data { stream: s, seq, hops: 1, payload }, now);
}

/// Messages `seqs` from neighbour 2 in one batch, each with the payload `body(seq)`.
fn batch_of(
    r: &mut Router<ChaCha8Rng>,
    s: StreamId,
    seqs: std::ops::RangeInclusive<u64>,
    body: impl Fn(u64) -> Bytes,
    now: Instant,
) {
    r.begin_batch(now);
    for seq in seqs {
        data_from(r, 2, s, seq, body(seq), now);
    }
    r.end_batch(now);
}

/// Messages `1..=n` from neighbour 2 in one batch (less than a group: they stay held).
fn cut_group(r: &mut Router<ChaCha8Rng>, s: StreamId, n: u64, now: Instant) {
    batch_of(r, s, 1..=n, payload, now);
}

fn relayed_to(actions: &[Action], to: u8) -> Vec<u64> {
    sends(actions)
        .into_iter()
        .filter_map(|(peer, m)| match m {
            Message::Data { seq, .. } if peer == id(to) => Some(seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_whole_group_in_one_batch_is_proven_at_once_then_relayed_and_delivered_in_order() {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    r.begin_batch(now);
    for seq in 1..GROUP_LEN as u64 {
        data_from(&mut r, 2, s, seq, payload(seq), now);
    }
    let held = drain(&mut r);
    assert!(deliveries(&held).is_empty() && relayed_to(&held, 3).is_empty(), "held until the group is whole");
    data_from(&mut r, 2, s, GROUP_LEN as u64, payload(GROUP_LEN as u64), now);
    let whole = drain(&mut r);
    let first_group: Vec<u64> = (1..=GROUP_LEN as u64).collect();
    assert_eq!(deliveries(&whole), first_group);
    assert_eq!(relayed_to(&whole, 3), first_group);
    for seq in GROUP_LEN as u64 + 1..=COUNT {
        data_from(&mut r, 2, s, seq, payload(seq), now);
    }
    r.end_batch(now);
    assert_eq!(deliveries(&drain(&mut r)), (GROUP_LEN as u64 + 1..=COUNT).collect::<Vec<_>>());
    assert_eq!(r.counters().groups_proven, 2, "the shorter last group too");
}

#[test]
fn a_group_with_one_forged_payload_blames_its_sender_and_delivers_what_came_before() {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    let forged_5th = |seq| if seq == 5 { Bytes::from_static(b"forged") } else { payload(seq) };
    batch_of(&mut r, s, 1..=GROUP_LEN as u64, forged_5th, now);
    let actions = drain(&mut r);
    assert_eq!(violations(&actions), vec![id(2)], "the payload that is not the origin's is found");
    assert_eq!(deliveries(&actions), vec![1, 2, 3, 4]);
    assert_eq!(r.counters().groups_proven, 0);
}

#[test]
fn a_group_cut_by_the_end_of_its_batch_is_completed_by_the_next_one() {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    cut_group(&mut r, s, 10, now);
    let actions = drain(&mut r);
    assert!(deliveries(&actions).is_empty(), "the rest of the group is on its way");
    let hold = Config::default().max_group_hold;
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SetTimer { timer: Timer::GroupHold, at } if *at == now + hold))
    );
    // The next read from the same neighbour brings the rest.
    let later = now + hold / 2;
    batch_of(&mut r, s, 11..=GROUP_LEN as u64, payload, later);
    assert_eq!(deliveries(&drain(&mut r)), (1..=GROUP_LEN as u64).collect::<Vec<_>>());
    assert_eq!(r.counters().groups_proven, 1);
}

#[test]
fn a_held_group_whose_rest_does_not_come_is_proven_payload_by_payload_when_the_hold_runs_out() {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    cut_group(&mut r, s, 10, now);
    drain(&mut r);
    r.handle_timer(Timer::GroupHold, now + Config::default().max_group_hold);
    assert_eq!(deliveries(&drain(&mut r)), (1..=10).collect::<Vec<_>>());
    // What comes next does not begin a group: one proof each, at once.
    r.begin_batch(now);
    data_from(&mut r, 2, s, 11, payload(11), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![11]);
    r.end_batch(now);
    assert_eq!(r.counters().groups_proven, 0);
    // A batch that begins after the hold ran out releases too, timer or not.
    let (mut r, s) = with_manifest(now);
    cut_group(&mut r, s, 1, now);
    r.begin_batch(now + Config::default().max_group_hold);
    assert_eq!(deliveries(&drain(&mut r)), vec![1]);
}

#[test]
fn a_payload_from_another_neighbour_releases_the_held_group() {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    r.begin_batch(now);
    for seq in 1..=3 {
        data_from(&mut r, 2, s, seq, payload(seq), now);
    }
    // The same stream's next message from neighbour 3: the held ones go first, one proof each.
    data_from(&mut r, 3, s, 4, payload(4), now);
    assert_eq!(deliveries(&drain(&mut r)), vec![1, 2, 3, 4]);
    // A copy of a held payload from elsewhere is a duplicate, as if it had never been held.
    data_from(&mut r, 3, s, 2, payload(2), now);
    r.end_batch(now);
    assert!(deliveries(&drain(&mut r)).is_empty());
    assert_eq!(r.counters().duplicates, 1);
}

#[test]
fn outside_a_batch_nothing_is_held() {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    for seq in 1..=3 {
        data_from(&mut r, 2, s, seq, payload(seq), now);
        assert_eq!(deliveries(&drain(&mut r)), vec![seq]);
    }
}

/// One step of [`holding_changes_nothing_but_when`]: a payload of origin 9's stream from neighbour
/// 2 or 3 (true or forged), and whether a new read begins before it.
#[derive(Debug, Clone)]
struct Step {
    from: u8,
    seq: u64,
    forged: bool,
    new_read: bool,
}

/// Runs of consecutive messages, as origins and relays send them (each run from one neighbour, maybe
/// with a forged payload and a read boundary inside), expanded into steps.
fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
    use proptest::prelude::*;
    let run = (any::<bool>(), 1..=COUNT, 1..=COUNT, any::<u8>(), any::<u8>(), proptest::bool::weighted(0.2));
    proptest::collection::vec(run, 1..12).prop_map(|runs| {
        let mut steps = Vec::new();
        for (two, start, len, forged_at, cut_at, forged) in runs {
            for (i, seq) in (start..=(start + len - 1).min(COUNT)).enumerate() {
                steps.push(Step {
                    from: if two { 2 } else { 3 },
                    seq,
                    forged: forged && i as u64 == u64::from(forged_at) % len,
                    new_read: i as u64 == u64::from(cut_at) % (2 * len),
                });
            }
        }
        steps
    })
}

/// Runs `steps` through a router and returns what it delivered, whom it blamed and its duplicates;
/// in reads (`begin_batch`/`end_batch`) if `batched`, one message at a time otherwise.
fn run(steps: &[Step], batched: bool) -> (Vec<u64>, Vec<NodeId>, u64) {
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    let mut actions = Vec::new();
    if batched {
        r.begin_batch(now);
    }
    for step in steps {
        if batched && step.new_read {
            r.end_batch(now);
            r.begin_batch(now);
        }
        let body = if step.forged { Bytes::from_static(b"forged") } else { payload(step.seq) };
        data_from(&mut r, step.from, s, step.seq, body, now);
        actions.extend(drain(&mut r));
    }
    if batched {
        r.end_batch(now);
        r.handle_timer(Timer::GroupHold, now + Config::default().max_group_hold);
    }
    actions.extend(drain(&mut r));
    let duplicates = r.counters().duplicates;
    (deliveries(&actions), violations(&actions), duplicates)
}

proptest::proptest! {
    /// Holding a group changes when its payloads are handled, never what happens to them: the same
    /// deliveries in the same order, the same neighbours blamed, the same duplicates, as one message
    /// at a time.
    #[test]
    fn holding_changes_nothing_but_when(steps in steps()) {
        let alone = run(&steps, false);
        let batched = run(&steps, true);
        proptest::prop_assert_eq!(&batched, &alone);
        let delivered = &batched.0;
        proptest::prop_assert!(delivered.windows(2).all(|w| w[1] == w[0] + 1), "in order: {:?}", delivered);
    }
}

#[test]
fn the_difference_test_sees_groups_proven_at_once() {
    // The property above is about something: in-order runs of one neighbour's payloads in one read
    // are proven a group at a time.
    let steps: Vec<Step> =
        (1..=COUNT).map(|seq| Step { from: 2, seq, forged: false, new_read: seq == 20 }).collect();
    let now = Instant::now();
    let (mut r, s) = with_manifest(now);
    r.begin_batch(now);
    for step in &steps {
        if step.new_read {
            r.end_batch(now);
            r.begin_batch(now);
        }
        data_from(&mut r, step.from, s, step.seq, payload(step.seq), now);
    }
    r.end_batch(now);
    assert_eq!(r.counters().groups_proven, 2);
    assert_eq!(run(&steps, true), run(&steps, false));
}
