//! Unit tests of the tree beacon (`beacon.rs`): who is the root, what a round prunes and moves, how
//! a node cut off from the tree re-attaches, and what a forged or replayed beacon changes (nothing).

use std::time::{Duration, Instant};

use dotray_codec::NodeId;

use super::tests::{OWN_EPOCH, config, data, drain, feed, id, sends, stream};
use super::*;
use crate::proof::{InsecureSigner, Signer, beacon_message};

/// Node `me`'s router with `peers` as neighbours (all eager), the actions of their arrival drained.
fn node(me: u8, peers: &[u8], now: Instant) -> Router<rand_chacha::ChaCha8Rng> {
    node_with(config(), me, peers, now)
}

/// Node `me` with `cfg` and neighbours `peers`.
fn node_with(cfg: Config, me: u8, peers: &[u8], now: Instant) -> Router<rand_chacha::ChaCha8Rng> {
    use rand::SeedableRng;
    let signer = InsecureSigner::new(id(me));
    let mut r = Router::new(signer, OWN_EPOCH, cfg, rand_chacha::ChaCha8Rng::seed_from_u64(1), now);
    for &p in peers {
        r.handle_neighbour_up(id(p), now);
    }
    drain(&mut r);
    r
}

/// Round `round` of root `root`'s beacon (its stream is `stream(root)`), as a neighbour passes it.
fn beacon(root: u8, round: u64, hops: u32, tree: bool) -> Message {
    let root_stream = stream(root);
    let signature = InsecureSigner::new(id(root)).sign(&beacon_message(root_stream, round, false));
    Message::Beacon(Beacon { root: root_stream, round, hops, tree, publisher: false, signature })
}

/// The beacons `actions` send: (to, round, hops, pushed).
fn beacons(actions: &[Action]) -> Vec<(NodeId, u64, u32, bool)> {
    sends(actions)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Beacon(b) => Some((to, b.round, b.hops, b.tree)),
            _ => None,
        })
        .collect()
}

/// The first timer of kind `kind` that `actions` set, with when it fires.
fn timer_set(actions: &[Action], kind: fn(&Timer) -> bool) -> Option<(Instant, Timer)> {
    actions.iter().find_map(|a| match a {
        Action::SetTimer { at, timer } if kind(timer) => Some((*at, *timer)),
        _ => None,
    })
}

/// Whether `actions` report `peer` for a protocol violation.
fn reported(actions: &[Action], peer: NodeId) -> bool {
    actions.iter().any(|a| matches!(a, Action::Violation { peer: p, .. } if *p == peer))
}

fn graft_link() -> Message {
    Message::Graft { want: Vec::new(), eager: true }
}

#[test]
fn the_root_is_the_smallest_id_that_sends_beacons() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    // Nobody heard of yet: this node is the root and sends round 1, pushed on both tree links.
    r.handle_timer(Timer::Beacon, now);
    assert_eq!(beacons(&drain(&mut r)), vec![(id(7), 1, 1, true), (id(8), 1, 1, true)]);
    assert_eq!((r.tree_root(), r.tree_depth()), (Some(id(5)), Some(0)));
    // A larger root is not followed, and its beacon goes no further.
    let t = now + Duration::from_millis(10);
    r.handle_message(id(7), beacon(9, 1, 1, true), t);
    assert!(beacons(&drain(&mut r)).is_empty());
    assert_eq!(r.tree_root(), Some(id(5)));
    // A smaller one is: its round goes on to the other neighbour, one hop deeper.
    r.handle_message(id(7), beacon(3, 1, 2, true), t);
    assert_eq!(beacons(&drain(&mut r)), vec![(id(8), 1, 3, true)]);
    assert_eq!((r.tree_root(), r.tree_depth()), (Some(id(3)), Some(2)));
    assert_eq!(r.counters().beacon_rounds, 1);
    // While it is heard, this node sends no beacon of its own.
    r.handle_timer(Timer::Beacon, now + Duration::from_secs(1));
    assert!(beacons(&drain(&mut r)).is_empty());
    // Silent for `root_timeout`: this node takes over, its rounds numbered on from its last.
    r.handle_timer(Timer::Beacon, t + config().root_timeout + Duration::from_millis(1));
    assert_eq!(beacons(&drain(&mut r)), vec![(id(7), 2, 1, true), (id(8), 2, 1, true)]);
}

#[test]
fn a_second_pushed_copy_of_a_round_prunes_its_link_and_a_later_round_is_fresh() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8, 9], now);
    r.handle_message(id(7), beacon(3, 1, 2, true), now);
    assert_eq!(beacons(&drain(&mut r)), vec![(id(8), 1, 3, true), (id(9), 1, 3, true)]);
    // The same round pushed again, by 8: a cycle through that link. Cut it, on both ends.
    r.handle_message(id(8), beacon(3, 1, 3, true), now);
    let actions = drain(&mut r);
    assert_eq!(sends(&actions), vec![(id(8), Message::Prune)]);
    assert_eq!(r.topology(), Topology { eager: vec![id(7), id(9)], lazy: vec![id(8)] });
    // The next round's first pushed copy is the tree copy again, wherever it comes from; it is
    // announced on the lazy link and pushed on the other tree link.
    let t = now + Duration::from_secs(1);
    r.handle_message(id(9), beacon(3, 2, 4, true), t);
    assert_eq!(beacons(&drain(&mut r)), vec![(id(7), 2, 5, true), (id(8), 2, 5, false)]);
    assert_eq!(r.tree_depth(), Some(4));
    // An earlier round is stale: it neither prunes nor goes on.
    r.handle_message(id(7), beacon(3, 1, 2, true), t);
    assert!(sends(&drain(&mut r)).is_empty());
}

#[test]
fn an_announcement_from_a_shallower_neighbour_moves_the_tree_link_there() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    r.handle_message(id(8), Message::Prune, now);
    drain(&mut r);
    r.handle_message(id(7), beacon(3, 1, 4, true), now);
    drain(&mut r);
    // As deep as the tree copy (threshold 1): nothing moves.
    r.handle_message(id(8), beacon(3, 1, 4, false), now);
    assert!(sends(&drain(&mut r)).is_empty());
    // One hop shallower: 8 becomes the tree link. Nothing below us can be shallower than us, so
    // this cannot close a cycle. The old link is pruned `move_overlap` later, so that what the old
    // parent pushes until the new one takes over is not lost.
    r.handle_message(id(8), beacon(3, 1, 3, false), now);
    let actions = drain(&mut r);
    assert_eq!(sends(&actions), vec![(id(8), graft_link())]);
    assert_eq!(r.topology(), Topology { eager: vec![id(7), id(8)], lazy: vec![] });
    let unlink = timer_set(&actions, |t| *t == Timer::Unlink);
    assert_eq!(unlink, Some((now + config().move_overlap, Timer::Unlink)));
    r.handle_timer(Timer::Unlink, now + config().move_overlap);
    assert_eq!(sends(&drain(&mut r)), vec![(id(7), Message::Prune)]);
    assert_eq!(r.topology(), Topology { eager: vec![id(8)], lazy: vec![id(7)] });
    assert_eq!(r.counters().optimisations, 1);
    // At most one move per round.
    r.handle_message(id(7), beacon(3, 1, 1, false), now);
    assert!(sends(&drain(&mut r)).is_empty());
}

#[test]
fn a_round_that_comes_only_as_announcements_grafts_the_shallowest_announcer() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8, 9], now);
    for p in [8, 9] {
        r.handle_message(id(p), Message::Prune, now);
    }
    drain(&mut r);
    // The tree is cut above us (7 pushes nothing); 8 and 9 announce the round.
    r.handle_message(id(8), beacon(3, 1, 5, false), now);
    let actions = drain(&mut r);
    assert!(beacons(&actions).is_empty(), "an announcement is not passed on");
    let graft_timer = timer_set(&actions, |t| matches!(t, Timer::TreeGraft { .. }));
    let (at, timer) = graft_timer.expect("a tree-graft timer");
    r.handle_message(id(9), beacon(3, 1, 3, false), now);
    drain(&mut r);
    // No pushed copy within the graft delay: graft the shallowest announcer and pass the round on.
    r.handle_timer(timer, at);
    let actions = drain(&mut r);
    assert_eq!(sends(&actions)[0], (id(9), graft_link()));
    assert_eq!(beacons(&actions), vec![(id(7), 1, 4, true), (id(8), 1, 4, false)]);
    assert_eq!((r.tree_depth(), r.counters().tree_grafts), (Some(3), 1));
    assert_eq!(r.topology().eager, vec![id(7), id(9)]);
}

#[test]
fn a_pushed_copy_before_the_graft_delay_cancels_the_tree_graft() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    r.handle_message(id(8), Message::Prune, now);
    r.handle_message(id(8), beacon(3, 1, 2, false), now);
    let graft_timer = timer_set(&drain(&mut r), |t| matches!(t, Timer::TreeGraft { .. }));
    let (_, timer) = graft_timer.expect("a tree-graft timer");
    r.handle_message(id(7), beacon(3, 1, 6, true), now + Duration::from_millis(50));
    drain(&mut r);
    r.handle_timer(timer, now + Duration::from_secs(1));
    assert!(!sends(&drain(&mut r)).contains(&(id(8), graft_link())));
    assert_eq!(r.counters().tree_grafts, 0);
}

#[test]
fn both_ends_of_a_link_come_to_agree_on_what_it_is() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    // 8 announces over a link we push on: it pruned it and the prune was lost. Take its view.
    r.handle_message(id(8), beacon(3, 1, 2, false), now);
    drain(&mut r);
    assert_eq!(r.topology().lazy, vec![id(8)]);
    // 7 pushes over a link we made lazy: tell it again.
    let mut r = node(5, &[7, 8], now);
    r.peers.get_mut(&id(7)).unwrap().eager = false;
    r.handle_message(id(7), beacon(3, 1, 2, true), now);
    assert!(sends(&drain(&mut r)).contains(&(id(7), Message::Prune)));
    // Right after a graft the other end may still announce what it will push: no change then.
    let mut r = node(5, &[7, 8], now);
    r.handle_message(id(8), Message::Graft { want: Vec::new(), eager: true }, now);
    r.handle_message(id(8), beacon(3, 1, 2, false), now + Duration::from_millis(5));
    drain(&mut r);
    assert_eq!(r.topology().eager, vec![id(7), id(8)]);
}

#[test]
fn a_forged_beacon_is_a_violation_and_changes_nothing() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    // Signed by 4, claiming root 3.
    let forged = Beacon {
        root: stream(3),
        round: 1,
        hops: 1,
        tree: true,
        publisher: false,
        signature: InsecureSigner::new(id(4)).sign(&beacon_message(stream(3), 1, false)),
    };
    r.handle_message(id(7), Message::Beacon(forged), now);
    let actions = drain(&mut r);
    assert!(reported(&actions, id(7)));
    assert!(beacons(&actions).is_empty(), "a forged beacon goes no further");
    assert_eq!(r.tree_root(), None);
    // A copy of a round already checked is compared with it, not checked again: a different
    // signature is a forgery too.
    r.handle_message(id(8), beacon(3, 1, 2, true), now);
    drain(&mut r);
    let Message::Beacon(mut copy) = beacon(3, 1, 2, false) else { unreachable!() };
    copy.signature[0] ^= 1;
    r.handle_message(id(8), Message::Beacon(copy), now);
    assert!(reported(&drain(&mut r), id(8)));
}

#[test]
fn rounds_faster_than_any_root_sends_them_are_not_checked() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    r.handle_message(id(7), beacon(3, 1, 2, true), now);
    drain(&mut r);
    // A quarter of the interval later is too soon for the next round: dropped unchecked.
    r.handle_message(id(7), beacon(3, 2, 2, true), now + config().beacon_interval / 8);
    assert!(beacons(&drain(&mut r)).is_empty());
    assert_eq!(r.counters().beacon_rounds, 1);
    r.handle_message(id(7), beacon(3, 2, 2, true), now + config().beacon_interval);
    assert_eq!(beacons(&drain(&mut r)).len(), 1);
    assert_eq!(r.counters().beacon_rounds, 2);
}

#[test]
fn while_beacons_flow_a_data_graft_only_fetches() {
    let now = Instant::now();
    let mut r = node(5, &[7, 8], now);
    r.handle_message(id(8), Message::Prune, now);
    r.handle_message(id(7), beacon(3, 1, 2, true), now);
    drain(&mut r);
    // 8 announces a message the tree does not bring: the graft asks for it, the link stays lazy
    // (the beacon, not the data, decides the tree).
    let range = SeqRange::single(stream(9), 1);
    r.handle_message(id(8), Message::IHave { ranges: vec![range], hops: 0 }, now);
    let (at, timer) = super::tests::timers(&drain(&mut r))[0];
    r.handle_timer(timer, at);
    assert_eq!(sends(&drain(&mut r)), vec![(id(8), Message::Graft { want: vec![range], eager: false })]);
    assert_eq!(r.topology().lazy, vec![id(8)]);
    feed(&mut r, id(8), data(stream(9), 1), at);
    assert_eq!(r.watermark(&stream(9)), Some(1));
}

#[test]
fn a_publisher_ranks_before_a_smaller_id_as_the_root() {
    let now = Instant::now();
    let publishers = Config { root_publisher_rate: 64, ..config() };
    let mut r = node_with(publishers.clone(), 5, &[7, 8], now);
    r.handle_message(id(7), beacon(3, 1, 2, true), now);
    drain(&mut r);
    // Node 5 broadcasts `root_publisher_rate` messages: it is a publisher now, and takes over from
    // root 3 at its next tick, saying so in its round.
    for _ in 0..publishers.root_publisher_rate {
        r.broadcast(bytes::Bytes::from_static(b"m"), now);
    }
    drain(&mut r);
    let t = now + Duration::from_secs(1);
    r.handle_timer(Timer::Beacon, t);
    let rounds: Vec<_> = sends(&drain(&mut r))
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Beacon(b) => Some((b.root, b.publisher)),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, vec![(r.own_stream(), true); 2]);
    assert_eq!(r.tree_root(), Some(id(5)));
    // Root 3's next round (not a publisher) does not win now; a publisher with a smaller id would.
    r.handle_message(id(7), beacon(3, 2, 2, true), t + Duration::from_millis(10));
    assert!(beacons(&drain(&mut r)).is_empty());
    assert_eq!(r.tree_root(), Some(id(5)));
    // Quiet, it ranks as a publisher until `root_publisher_hold` after the last tick that counted
    // its burst (a burst counts at the two ticks that follow it); after that root 3 ranks first.
    let hold = config().root_publisher_hold;
    let mut at = t;
    let mut round = 3;
    while r.tree_root() == Some(id(5)) && at < t + hold + Duration::from_secs(3) {
        at += Duration::from_secs(1);
        r.handle_timer(Timer::Beacon, at);
        drain(&mut r);
        round += 1;
        r.handle_message(id(7), beacon(3, round, 2, true), at + Duration::from_millis(10));
        drain(&mut r);
    }
    assert!(at >= t + hold, "a publisher for {:?} only", at - t);
    assert_eq!(r.tree_root(), Some(id(3)));
}
