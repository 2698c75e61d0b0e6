//! Unit tests of the composition: two node cores wired by hand, the way a driver wires them.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_membership::core::{LinkEnd, Message as MembershipMessage, PeerInfo};
use dotray_router::core::Message as BroadcastMessage;
use dotray_router::proof::InsecureSigner;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use dotray_router::core::MessageId;

fn info(n: u8) -> PeerInfo {
    PeerInfo::new(NodeId::from_bytes([n; 32]), format!("127.0.0.1:{}", 2000 + u16::from(n)).parse().unwrap())
}

fn core(me: PeerInfo, seeds: Vec<std::net::SocketAddr>, now: Instant) -> NodeCore<ChaCha8Rng> {
    core_with(me, seeds, Config::default(), now)
}

fn core_with(
    me: PeerInfo,
    seeds: Vec<std::net::SocketAddr>,
    config: Config,
    now: Instant,
) -> NodeCore<ChaCha8Rng> {
    NodeCore::new(
        me,
        seeds.into_iter().map(Into::into),
        config,
        InsecureSigner::new(me.id),
        ChaCha8Rng::seed_from_u64(u64::from(me.id.as_bytes()[0])),
        now,
        SystemTime::now(),
    )
    .expect("default config is valid")
}

fn drain(core: &mut NodeCore<ChaCha8Rng>) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

/// Delivers every `Send` in `actions` addressed to `to`'s id, from `from`; returns what `to` did.
fn deliver(actions: &[Action], from: NodeId, to: &mut NodeCore<ChaCha8Rng>, now: Instant) -> Vec<Action> {
    let me = to.me().id;
    let mut out = Vec::new();
    for action in actions {
        if let Action::Send { to: peers, message } = action
            && peers.contains(&me)
        {
            to.handle_message(from, message.clone(), now);
            out.extend(drain(to));
        }
    }
    out
}

/// Two nodes, `b` joined through `a`, each with the other as its only neighbour; their actions so far
/// are drained.
fn pair(now: Instant) -> (NodeCore<ChaCha8Rng>, NodeCore<ChaCha8Rng>) {
    pair_with(Config::default(), now)
}

fn pair_with(config: Config, now: Instant) -> (NodeCore<ChaCha8Rng>, NodeCore<ChaCha8Rng>) {
    let (ia, ib) = (info(1), info(2));
    let mut a = core_with(ia, vec![], config.clone(), now);
    let mut b = core_with(ib, vec![ia.addr], config, now);
    drain(&mut a);
    assert!(drain(&mut b).contains(&Action::Dial { addr: ia.addr, node: None }), "the joiner dials its seed");
    a.handle_connected(ib, None, now);
    b.handle_connected(ia, Some(ia.addr), now);
    let from_a = drain(&mut a);
    let from_b = drain(&mut b);
    let from_a = [from_a, deliver(&from_b, ib.id, &mut a, now)].concat();
    deliver(&from_a, ia.id, &mut b, now);
    drain(&mut a);
    assert!(a.router().is_neighbour(&ib.id) && b.router().is_neighbour(&ia.id));
    (a, b)
}

#[test]
fn a_neighbour_membership_reports_reaches_the_router_and_the_application() {
    let now = Instant::now();
    let (ia, ib) = (info(1), info(2));
    let mut a = core(ia, vec![], now);
    // Something to sync: a node that has sent nothing has no position to tell.
    a.broadcast(Bytes::from_static(b"before"), now).unwrap();
    a.seal_broadcasts(now);
    drain(&mut a);
    a.handle_connected(ib, None, now);
    drain(&mut a);
    a.handle_message(ib.id, PeerMessage::Membership(MembershipMessage::Join), now);
    let actions = drain(&mut a);
    let up = actions
        .iter()
        .position(|a| *a == Action::Event(Event::NeighbourUp { peer: ib.id, addr: ib.addr }))
        .expect("the application hears of the new neighbour");
    // The router greets its new neighbour with its watermarks, after membership's own messages.
    let sync = actions
        .iter()
        .position(|a| {
            matches!(a, Action::Send { message: PeerMessage::Broadcast(BroadcastMessage::Sync { .. }), .. })
        })
        .expect("the router syncs with the new neighbour");
    let last_membership =
        actions.iter().rposition(|a| matches!(a, Action::Send { message: PeerMessage::Membership(_), .. }));
    assert!(up < sync && last_membership.is_none_or(|m| m < sync), "{actions:#?}");
    assert!(a.router().is_neighbour(&ib.id));

    a.handle_disconnected(ib.id, LinkEnd::Failed, now);
    let actions = drain(&mut a);
    assert!(actions.contains(&Action::Event(Event::NeighbourDown { peer: ib.id })));
    assert!(!a.router().is_neighbour(&ib.id));
}

#[test]
fn a_broadcast_reaches_the_neighbour_once_in_one_send() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now);
    let id = a.broadcast(Bytes::from_static(b"hello"), now).unwrap();
    assert!(drain(&mut a).iter().all(|a| !matches!(a, Action::Send { .. })), "nothing leaves unsigned");
    a.seal_broadcasts(now);
    let actions = drain(&mut a);
    let data: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            matches!(a, Action::Send { message: PeerMessage::Broadcast(BroadcastMessage::Data { .. }), .. })
        })
        .collect();
    assert_eq!(data.len(), 1, "one action per message and hop: {actions:#?}");
    let delivered = deliver(&actions, a.me().id, &mut b, now);
    let deliveries: Vec<_> = delivered
        .iter()
        .filter_map(|a| match a {
            Action::Deliver(d) => Some((d.id, d.payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(deliveries, vec![(id, Bytes::from_static(b"hello"))]);
}

#[test]
fn broadcast_messages_from_a_node_that_is_not_a_neighbour_are_ignored() {
    let now = Instant::now();
    let (ia, stranger) = (info(1), info(9));
    let mut a = core(ia, vec![], now);
    drain(&mut a);
    a.handle_connected(stranger, None, now);
    drain(&mut a);
    let stream = dotray_router::core::StreamId { origin: stranger.id, epoch: 1 };
    let data = BroadcastMessage::Data { stream, seq: 1, hops: 0, payload: Bytes::from_static(b"x") };
    a.handle_message(stranger.id, PeerMessage::Broadcast(data), now);
    assert_eq!(drain(&mut a), vec![]);
    assert_eq!(a.counters().payloads_received, 0);
}

#[test]
fn a_direct_message_goes_to_the_application() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    let from = info(2).id;
    a.handle_message(from, PeerMessage::Direct(Bytes::from_static(b"psst")), now);
    assert_eq!(
        drain(&mut a),
        vec![Action::Event(Event::Direct { from, payload: Bytes::from_static(b"psst") })]
    );
}

#[test]
fn each_timer_goes_back_to_the_core_that_set_it() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    // Membership arms its periodic timers at start; the router arms its own once it has something
    // to do (here: a broadcast to batch digests for, and to retain).
    a.broadcast(Bytes::from_static(b"x"), now).unwrap();
    let timers: Vec<(Instant, Timer)> = drain(&mut a)
        .into_iter()
        .chain(drain(&mut core(info(3), vec![], now)))
        .filter_map(|action| match action {
            Action::SetTimer { at, timer } => Some((at, timer)),
            _ => None,
        })
        .collect();
    assert!(timers.iter().any(|(_, t)| matches!(t, Timer::Membership(_))), "{timers:?}");
    assert!(timers.iter().any(|(_, t)| matches!(t, Timer::Router(_))), "{timers:?}");
    // Each fires without complaint, in the core that set it: the membership ping timer and the
    // router's housekeeping re-arm themselves.
    let later = now + Duration::from_secs(1);
    for (_, timer) in &timers {
        a.handle_timer(*timer, later);
    }
    let again = drain(&mut a);
    let rearmed = |kind: fn(&Timer) -> bool| {
        again.iter().any(|a| matches!(a, Action::SetTimer { timer, .. } if kind(timer)))
    };
    assert!(rearmed(|t| matches!(t, Timer::Membership(_))), "{again:#?}");
    assert!(rearmed(|t| matches!(t, Timer::Router(_))), "{again:#?}");
}

#[test]
fn one_seed_replays_a_node_exactly() {
    let now = Instant::now();
    let run = || {
        let mut a = core(info(1), vec![info(5).addr], now);
        (a.own_stream(), drain(&mut a))
    };
    assert_eq!(run(), run());
}

#[test]
fn an_invalid_config_is_refused() {
    let mut config = Config::default();
    config.router.graft_timeout = Duration::ZERO;
    let signer = InsecureSigner::new(info(1).id);
    let refused = NodeCore::new(
        info(1),
        vec![],
        config,
        signer,
        ChaCha8Rng::seed_from_u64(1),
        Instant::now(),
        SystemTime::now(),
    );
    assert!(matches!(refused, Err(InvalidNodeConfig::Router(_))));
}

#[test]
fn a_signer_for_another_node_is_refused() {
    let signer = InsecureSigner::new(info(2).id);
    let refused = NodeCore::new(
        info(1),
        vec![],
        Config::default(),
        signer,
        ChaCha8Rng::seed_from_u64(1),
        Instant::now(),
        SystemTime::now(),
    );
    assert!(
        matches!(refused, Err(InvalidNodeConfig::WrongKey { signer, node }) if signer == info(2).id && node == info(1).id)
    );
}

/// What `actions` deliver: (id, payload) in order.
fn delivered(actions: &[Action]) -> Vec<(MessageId, Bytes)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver(d) => Some((d.id, d.payload.clone())),
            _ => None,
        })
        .collect()
}

fn small_pieces() -> Config {
    Config { max_message_len: 100, fragment_len: 8, max_reassembly_bytes: 1000, ..Config::default() }
}

#[test]
fn a_large_message_arrives_whole_once_and_the_next_one_after_it() {
    let now = Instant::now();
    let (mut a, mut b) = pair_with(small_pieces(), now);
    let large = Bytes::from((0..100u8).collect::<Vec<u8>>());
    let id = a.broadcast(large.clone(), now).unwrap();
    assert_eq!(a.next_seq(), id.seq + 13, "100 bytes in pieces of 8 take 13 numbers");
    let after = a.broadcast(Bytes::from_static(b"after"), now).unwrap();
    a.seal_broadcasts(now + Duration::from_secs(1));
    let from_a = drain(&mut a);
    let pieces = from_a
        .iter()
        .filter(|a| {
            matches!(a, Action::Send { message: PeerMessage::Broadcast(BroadcastMessage::Data { .. }), .. })
        })
        .count();
    assert_eq!(pieces, 14, "13 pieces and the short message, each sent once");
    let at_b = deliver(&from_a, a.me().id, &mut b, now);
    assert_eq!(delivered(&at_b), vec![(id, large), (after, Bytes::from_static(b"after"))]);
    assert!(!at_b.iter().any(|a| matches!(a, Action::Event(Event::Gap { .. }))), "{at_b:#?}");
    assert_eq!(b.reassembly_bytes(), 0, "nothing held once the message is whole");
}

#[test]
fn a_message_over_the_limit_is_refused_before_it_is_numbered() {
    let now = Instant::now();
    let (mut a, _b) = pair_with(small_pieces(), now);
    let before = a.next_seq();
    assert_eq!(a.broadcast(Bytes::from(vec![0; 101]), now), Err(MessageTooLong { len: 101, max: 100 }));
    assert_eq!(a.next_seq(), before);
    assert!(drain(&mut a).iter().all(|a| !matches!(a, Action::Send { .. })));
    assert_eq!(a.broadcast(Bytes::from(vec![0; 100]), now).map(|id| id.seq), Ok(before));
}

#[test]
fn a_message_longer_than_the_receivers_limit_is_a_gap_not_a_stall() {
    let now = Instant::now();
    let (ia, ib) = (info(1), info(2));
    let mut a = core_with(ia, vec![], Config { max_message_len: 1000, ..small_pieces() }, now);
    let mut b = core_with(ib, vec![ia.addr], small_pieces(), now);
    drain(&mut a);
    drain(&mut b);
    a.handle_connected(ib, None, now);
    b.handle_connected(ia, Some(ia.addr), now);
    let from_a = drain(&mut a);
    let from_b = drain(&mut b);
    deliver(&from_b, ib.id, &mut a, now);
    deliver(&from_a, ia.id, &mut b, now);
    drain(&mut a);
    let long = a.broadcast(Bytes::from(vec![7; 500]), now).unwrap();
    let short = a.broadcast(Bytes::from_static(b"short"), now).unwrap();
    a.seal_broadcasts(now + Duration::from_secs(1));
    let at_b = deliver(&drain(&mut a), ia.id, &mut b, now);
    let gap = Event::Gap { stream: long.stream, first: long.seq, last: long.seq };
    assert!(at_b.contains(&Action::Event(gap)), "{at_b:#?}");
    assert_eq!(delivered(&at_b), vec![(short, Bytes::from_static(b"short"))]);
}

/// A seed (node 1) and a node that knows it (node 2), each with its first actions taken.
fn seed_and_joiner(now: Instant) -> (PeerInfo, PeerInfo, NodeCore<ChaCha8Rng>, NodeCore<ChaCha8Rng>) {
    let (ia, ib) = (info(1), info(2));
    let mut a = core(ia, vec![], now);
    let mut b = core(ib, vec![ia.addr], now);
    drain(&mut a);
    drain(&mut b);
    (ia, ib, a, b)
}

#[test]
fn what_a_node_pushed_before_the_other_end_saw_the_link_is_fetched_once_it_does() {
    let now = Instant::now();
    let (ia, ib, mut a, mut b) = seed_and_joiner(now);
    a.handle_connected(ib, None, now);
    b.handle_connected(ia, Some(ia.addr), now);
    drain(&mut a);
    // The joiner takes its seed as a neighbour at once and broadcasts before its Join is read.
    let join = drain(&mut b);
    assert!(b.router().is_neighbour(&ia.id) && !a.router().is_neighbour(&ib.id));
    let id = b.broadcast(Bytes::from_static(b"right away"), now).unwrap();
    b.seal_broadcasts(now);
    let pushed = drain(&mut b);
    assert!(deliver(&pushed, ib.id, &mut a, now).is_empty(), "a drops what a non-neighbour pushes");
    // a reads the Join: b is its neighbour now, and what b pushed is announced to a's router.
    let at_a = deliver(&join, ib.id, &mut a, now);
    let delivered_at_a = graft_what_was_announced(&at_a, (&mut a, ia.id), (&mut b, ib.id));
    assert_eq!(delivered(&delivered_at_a), vec![(id, Bytes::from_static(b"right away"))]);
}

/// `a`'s router heard from `b` of messages it lacks (`at_a`, the actions that followed): fires the
/// graft timer it set, lets `b` serve the graft, and returns what `a` then did.
fn graft_what_was_announced(
    at_a: &[Action],
    (a, ia): (&mut NodeCore<ChaCha8Rng>, NodeId),
    (b, ib): (&mut NodeCore<ChaCha8Rng>, NodeId),
) -> Vec<Action> {
    let (at, timer) = at_a
        .iter()
        .find_map(|action| match action {
            Action::SetTimer {
                at,
                timer: timer @ Timer::Router(dotray_router::core::Timer::Graft { .. }),
            } => Some((*at, *timer)),
            _ => None,
        })
        .expect("a graft timer for what b announced");
    a.handle_timer(timer, at);
    let graft = drain(a);
    let served = deliver(&graft, ia, b, at);
    deliver(&served, ib, a, at)
}

#[test]
fn what_a_node_broadcast_before_its_first_neighbour_is_fetched_though_its_sync_came_too_early() {
    let now = Instant::now();
    let (ia, ib, mut a, mut b) = seed_and_joiner(now);
    // b broadcasts while it has no neighbour: nothing is pushed, only its `Sync` will tell.
    let id = b.broadcast(Bytes::from_static(b"before anyone"), now).unwrap();
    b.seal_broadcasts(now);
    drain(&mut b);
    a.handle_connected(ib, None, now);
    b.handle_connected(ia, Some(ia.addr), now);
    drain(&mut a);
    // Its `Sync` reaches a before its `Join` does (as when a replaced connection carried the Join).
    let (sync, join): (Vec<Action>, Vec<Action>) = drain(&mut b)
        .into_iter()
        .partition(|action| matches!(action, Action::Send { message: PeerMessage::Broadcast(_), .. }));
    assert!(b.router().is_neighbour(&ia.id) && !a.router().is_neighbour(&ib.id));
    assert!(!sync.is_empty(), "b tells its new neighbour where its stream stands");
    assert!(deliver(&sync, ib.id, &mut a, now).is_empty(), "a drops it: b is no neighbour of a yet");
    let at_a = deliver(&join, ib.id, &mut a, now);
    let delivered_at_a = graft_what_was_announced(&at_a, (&mut a, ia.id), (&mut b, ib.id));
    assert_eq!(delivered(&delivered_at_a), vec![(id, Bytes::from_static(b"before anyone"))]);
}

#[test]
fn a_direct_message_over_the_limit_is_a_violation_of_its_sender() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    let from = info(2).id;
    let max = Config::default().max_direct_len;
    a.handle_message(from, PeerMessage::Direct(Bytes::from(vec![0; max])), now);
    assert!(matches!(&drain(&mut a)[..], [Action::Event(Event::Direct { .. })]), "the limit itself is fine");
    a.handle_message(from, PeerMessage::Direct(Bytes::from(vec![0; max + 1])), now);
    assert_eq!(
        drain(&mut a),
        vec![Action::Violation { peer: from, reason: "a direct message longer than max_direct_len" }]
    );
}

#[test]
fn each_sender_has_a_byte_budget_for_direct_messages() {
    let now = Instant::now();
    let (mut a, _b) = pair(now);
    let config = Config::default();
    let (max, burst) = (config.max_direct_len, config.direct_burst_bytes as usize);
    let direct = || PeerMessage::Direct(Bytes::from(vec![0; max]));
    let directs = |actions: Vec<Action>| {
        actions.iter().filter(|a| matches!(a, Action::Event(Event::Direct { .. }))).count()
    };
    let (one, other) = (info(2).id, info(3).id);
    let mut taken = 0;
    for _ in 0..2 * burst / max {
        a.handle_message(one, direct(), now);
        taken += directs(drain(&mut a));
    }
    assert_eq!(taken, burst / max, "the burst, then nothing");
    assert_eq!(a.directs_dropped(), (burst / max) as u64);
    a.handle_message(other, direct(), now);
    assert_eq!(directs(drain(&mut a)), 1, "another sender has a budget of its own");
    let refill = Duration::from_secs_f64(max as f64 / f64::from(config.direct_bytes_per_sec));
    a.handle_message(one, direct(), now + refill);
    assert_eq!(directs(drain(&mut a)), 1, "the rate refills it");
}
