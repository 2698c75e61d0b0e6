//! Tests of the relay budget (`Config::relay_ahead_bytes`): what waits behind a hole is relayed
//! within the stream's budget at once, and the rest in order when the hole fills or is given up.

use std::time::Instant;

use dotray_codec::NodeId;
use rand_chacha::ChaCha8Rng;

use super::tests::{config, configured_router, data, deliveries, drain, feed, id, stream, timers};
use super::*;

/// Node 1 with neighbours 2 (which sends) and 3 (which it relays to); room to relay two of the
/// tests' 4-byte payloads ahead of a hole.
fn relay(now: Instant) -> Router<ChaCha8Rng> {
    configured_router(Config { relay_ahead_bytes: 8, ..config() }, now, &[2, 3])
}

/// The sequence numbers of the `Data` that `actions` send to `to`, in order.
fn relayed_to(actions: &[Action], to: NodeId) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to: peers, message: Message::Data { seq, .. } } if peers.contains(&to) => {
                Some(*seq)
            }
            _ => None,
        })
        .collect()
}

fn feed_all(r: &mut Router<ChaCha8Rng>, seqs: impl IntoIterator<Item = u64>, now: Instant) -> Vec<Action> {
    for seq in seqs {
        feed(r, id(2), data(stream(9), seq), now);
    }
    drain(r)
}

#[test]
fn payloads_behind_a_hole_go_on_within_the_budget_and_the_rest_once_it_fills() {
    let now = Instant::now();
    let mut r = relay(now);
    let actions = feed_all(&mut r, 2..=5, now);
    assert_eq!(relayed_to(&actions, id(3)), vec![2, 3], "the budget's worth");
    assert_eq!(r.counters().relays_deferred, 2);
    let actions = feed_all(&mut r, [1], now);
    assert_eq!(relayed_to(&actions, id(3)), vec![1, 4, 5], "the rest, in order, as delivered");
    assert_eq!(relayed_to(&actions, id(2)), Vec::<u64>::new(), "never back to their sender");
    assert_eq!(deliveries(&actions), vec![1, 2, 3, 4, 5]);
}

#[test]
fn deliveries_free_the_budget_for_what_waits_behind_the_next_hole() {
    let now = Instant::now();
    let mut r = relay(now);
    // Holes at 1 and 4.
    let actions = feed_all(&mut r, [2, 3, 5, 6, 7], now);
    assert_eq!(relayed_to(&actions, id(3)), vec![2, 3]);
    // 1 fills the first: 1..=3 are delivered, and 5 and 6 fit the freed budget; 7 waits on.
    let actions = feed_all(&mut r, [1], now);
    assert_eq!(deliveries(&actions), vec![1, 2, 3]);
    assert_eq!(relayed_to(&actions, id(3)), vec![1, 5, 6]);
    let actions = feed_all(&mut r, [4], now);
    assert_eq!(relayed_to(&actions, id(3)), vec![4, 7]);
    assert_eq!(deliveries(&actions), vec![4, 5, 6, 7]);
}

#[test]
fn a_hole_given_up_as_a_gap_releases_what_waited_behind_it() {
    let now = Instant::now();
    let mut r = relay(now);
    let actions = feed_all(&mut r, 2..=5, now);
    let (at, timer) =
        timers(&actions).into_iter().find(|(_, t)| matches!(t, Timer::Gap { .. })).expect("a gap timer");
    r.handle_timer(timer, at);
    let actions = drain(&mut r);
    assert!(actions.iter().any(|a| matches!(a, Action::Event(Event::Gap { first: 1, last: 1, .. }))));
    assert_eq!(deliveries(&actions), vec![2, 3, 4, 5]);
    assert_eq!(relayed_to(&actions, id(3)), vec![4, 5]);
}

#[test]
fn a_stream_whose_first_hole_never_fills_costs_the_tree_only_its_budget() {
    let now = Instant::now();
    let mut r = relay(now);
    // The reorder buffer holds them all; the tree gets two.
    let actions = feed_all(&mut r, 2..=200, now);
    assert_eq!(relayed_to(&actions, id(3)), vec![2, 3]);
    assert_eq!(r.counters().relays_deferred, 197);
    assert_eq!(r.buffered(), (199 * 4, 199));
}
