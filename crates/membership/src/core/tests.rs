//! Unit tests of the core: for given events, the exact actions.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dotray_codec::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn at(ms: u64) -> Instant {
    t0() + Duration::from_millis(ms)
}

fn peer(i: u8) -> PeerInfo {
    PeerInfo::new(NodeId::from_bytes([i; 32]), SocketAddr::from(([10, 0, 0, i], 2000)))
}

fn node(me: u8, seeds: Vec<SocketAddr>) -> Membership<ChaCha8Rng> {
    node_with(me, seeds, Config::default())
}

fn node_with(me: u8, seeds: Vec<SocketAddr>, config: Config) -> Membership<ChaCha8Rng> {
    Membership::new(
        peer(me),
        seeds.into_iter().map(Seed::from),
        config,
        ChaCha8Rng::seed_from_u64(u64::from(me)),
        t0(),
    )
    .unwrap()
}

/// A node whose active view holds a single peer, so that it is full (and does not refill) with one.
fn tiny(me: u8) -> Membership<ChaCha8Rng> {
    node_with(me, vec![], Config { active_view_capacity: 1, ..Config::default() })
}

fn drain(m: &mut Membership<ChaCha8Rng>) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

/// The actions, without timers (most tests are not about them).
fn drain_no_timers(m: &mut Membership<ChaCha8Rng>) -> Vec<Action> {
    drain(m).into_iter().filter(|a| !matches!(a, Action::SetTimer { .. })).collect()
}

fn send(to: u8, message: Message) -> Action {
    Action::Send { to: peer(to).id, message }
}

/// A dial of a node learned with its id.
fn dial(p: PeerInfo) -> Action {
    Action::Dial { addr: p.addr, node: Some(p.id) }
}

/// A dial of a seed address (no id known).
fn dial_seed(p: PeerInfo) -> Action {
    Action::Dial { addr: p.addr, node: None }
}

fn up(i: u8) -> Action {
    Action::Event(Event::NeighbourUp(peer(i)))
}

fn down(i: u8) -> Action {
    Action::Event(Event::NeighbourDown(peer(i).id))
}

/// Makes `p` an active peer of `m` through an inbound connection and a high-priority request.
fn make_active(m: &mut Membership<ChaCha8Rng>, p: u8, now: Instant) {
    m.handle_connected(peer(p), None, now);
    m.handle_message(peer(p).id, Message::Neighbour { high_priority: true }, now);
    let actions = drain_no_timers(m);
    assert!(actions.contains(&up(p)), "{actions:?}");
}

/// Puts `p` in `m`'s passive view through a peer-exchange response on a fresh shuffle.
fn learn_passive(m: &mut Membership<ChaCha8Rng>, via: u8, p: u8, now: Instant) {
    m.handle_timer(Timer::Shuffle, now);
    let exchange_id = drain(m)
        .into_iter()
        .find_map(|a| match a {
            Action::Send { message: Message::PeerExchangeRequest { exchange_id, .. }, .. } => {
                Some(exchange_id)
            }
            _ => None,
        })
        .expect("a shuffle starts an exchange");
    m.handle_message(peer(via).id, Message::PeerExchangeResponse { peers: vec![peer(p)], exchange_id }, now);
    drain(m);
}

fn state_of(m: &Membership<ChaCha8Rng>, p: u8) -> Option<NodeState> {
    m.nodes(at(0)).into_iter().find(|n| n.peer == peer(p)).map(|n| n.state)
}

#[test]
fn first_node_only_arms_its_timers() {
    let mut m = node(1, vec![]);
    let timers: Vec<Timer> = drain(&mut m)
        .into_iter()
        .map(|a| match a {
            Action::SetTimer { timer, .. } => timer,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(timers, vec![Timer::Ping, Timer::Shuffle, Timer::Heal, Timer::Sweep]);
}

#[test]
fn joining_node_dials_its_seed_and_sends_join() {
    let mut m = node(1, vec![peer(2).addr]);
    assert_eq!(drain_no_timers(&mut m), vec![dial_seed(peer(2))]);
    m.handle_connected(peer(2), Some(peer(2).addr), at(10));
    // The `Join` before `NeighbourUp`: the contact must read it before anything the layers above
    // send once they hear of the neighbour.
    assert_eq!(drain_no_timers(&mut m), vec![send(2, Message::Join), up(2)]);
    assert_eq!(state_of(&m, 2), Some(NodeState::Active));
}

#[test]
fn contact_admits_the_joiner_and_sends_forward_joins_to_its_other_peers() {
    let mut m = node(1, vec![]);
    for p in [2, 3, 4] {
        make_active(&mut m, p, at(0));
    }
    m.handle_connected(peer(9), None, at(5));
    m.handle_message(peer(9).id, Message::Join, at(6));
    let walk = |to| send(to, Message::ForwardJoin { node: peer(9), ttl: 6 });
    assert_eq!(drain_no_timers(&mut m), vec![up(9), walk(2), walk(3), walk(4)]);
}

#[test]
fn forward_join_continues_the_walk_and_keeps_the_joiner_as_passive_at_prwl() {
    let mut m = node(1, vec![]);
    for p in [2, 3, 4, 5, 6] {
        make_active(&mut m, p, at(0));
    }
    m.handle_message(peer(2).id, Message::ForwardJoin { node: peer(9), ttl: 3 }, at(1));
    let actions = drain_no_timers(&mut m);
    assert_eq!(actions.len(), 1, "{actions:?}");
    match &actions[0] {
        Action::Send { to, message: Message::ForwardJoin { node, ttl: 2 } } => {
            assert!(*to != peer(2).id && *to != peer(9).id, "never back to the sender or the joiner");
            assert_eq!(*node, peer(9));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(state_of(&m, 9), Some(NodeState::Passive));
}

#[test]
fn forward_join_ends_with_a_neighbour_request_to_the_joiner() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    make_active(&mut m, 3, at(0));
    // A huge TTL from the wire is clamped; TTL 0 ends the walk here.
    m.handle_message(peer(2).id, Message::ForwardJoin { node: peer(9), ttl: 0 }, at(1));
    assert_eq!(drain_no_timers(&mut m), vec![dial(peer(9))]);
    m.handle_connected(peer(9), Some(peer(9).addr), at(2));
    assert_eq!(drain_no_timers(&mut m), vec![send(9, Message::Neighbour { high_priority: false })]);
    m.handle_message(peer(9).id, Message::NeighbourReply { accepted: true }, at(3));
    assert_eq!(drain_no_timers(&mut m), vec![up(9)]);
}

#[test]
fn a_full_node_refuses_a_low_priority_neighbour_and_accepts_a_high_priority_one() {
    let mut m = node(1, vec![]);
    for p in 2..=6 {
        make_active(&mut m, p, at(0));
    }
    m.handle_connected(peer(8), None, at(1));
    m.handle_message(peer(8).id, Message::Neighbour { high_priority: false }, at(1));
    assert_eq!(drain_no_timers(&mut m), vec![send(8, Message::NeighbourReply { accepted: false })]);

    m.handle_connected(peer(9), None, at(2));
    m.handle_message(peer(9).id, Message::Neighbour { high_priority: true }, at(2));
    let actions = drain_no_timers(&mut m);
    // The reply first (see `a_neighbour_reply_goes_out_before_neighbour_up`), then a random active peer
    // is replaced (HyParView DISCONNECT) and 9 is admitted.
    assert_eq!(actions[0], send(9, Message::NeighbourReply { accepted: true }));
    let victim = match &actions[1] {
        Action::Disconnect { peer, reason: CloseReason::Replaced } => *peer,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(actions[2..], [Action::Event(Event::NeighbourDown(victim)), up(9)]);
    assert_eq!(m.active_len(), 5);
    assert_eq!(
        m.nodes(at(2)).iter().find(|n| n.peer.id == victim).map(|n| n.state),
        Some(NodeState::Passive)
    );
}

#[test]
fn a_refused_neighbour_request_closes_the_connection() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    m.handle_message(peer(2).id, Message::ForwardJoin { node: peer(9), ttl: 0 }, at(1));
    drain(&mut m);
    m.handle_connected(peer(9), Some(peer(9).addr), at(2));
    drain(&mut m);
    m.handle_message(peer(9).id, Message::NeighbourReply { accepted: false }, at(3));
    let actions = drain_no_timers(&mut m);
    assert_eq!(actions[0], Action::Disconnect { peer: peer(9).id, reason: CloseReason::Done });
    assert_eq!(state_of(&m, 9), Some(NodeState::Passive));
}

#[test]
fn ping_is_answered_and_pong_measures_the_round_trip() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    m.handle_message(peer(2).id, Message::Ping { nonce: 7, sent_at_micros: 99 }, at(1));
    assert_eq!(drain_no_timers(&mut m), vec![send(2, Message::Pong { nonce: 7, sent_at_micros: 99 })]);

    m.handle_timer(Timer::Ping, at(2000));
    let nonce = match drain_no_timers(&mut m).as_slice() {
        [Action::Send { message: Message::Ping { nonce, sent_at_micros: 2_000_000 }, .. }] => *nonce,
        other => panic!("unexpected {other:?}"),
    };
    // A pong with another nonce is ignored; the right one gives a 30 ms sample.
    m.handle_message(peer(2).id, Message::Pong { nonce: nonce ^ 1, sent_at_micros: 0 }, at(2010));
    assert_eq!(drain_no_timers(&mut m), vec![]);
    m.handle_message(peer(2).id, Message::Pong { nonce, sent_at_micros: 0 }, at(2030));
    let rtt = Duration::from_millis(30);
    assert_eq!(drain_no_timers(&mut m), vec![Action::Event(Event::RttUpdated { peer: peer(2).id, rtt })]);
    assert_eq!(m.nodes(at(2030))[0].rtt, Some(rtt));
}

#[test]
fn missed_pongs_declare_the_peer_down_and_a_passive_peer_replaces_it() {
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    learn_passive(&mut m, 2, 7, at(0));
    for tick in 1..=3 {
        m.handle_timer(Timer::Ping, at(2000 * tick));
        let actions = drain_no_timers(&mut m);
        assert!(
            matches!(actions.as_slice(), [Action::Send { message: Message::Ping { .. }, .. }]),
            "{actions:?}"
        );
    }
    assert_eq!(state_of(&m, 2), Some(NodeState::Suspect));
    m.handle_timer(Timer::Ping, at(8000));
    assert_eq!(
        drain_no_timers(&mut m),
        vec![Action::Disconnect { peer: peer(2).id, reason: CloseReason::Timeout }, down(2), dial(peer(7)),]
    );
    assert_eq!(state_of(&m, 2), Some(NodeState::Down));
    // The replacement has no neighbour left: its request is of high priority.
    m.handle_connected(peer(7), Some(peer(7).addr), at(8010));
    assert_eq!(drain_no_timers(&mut m), vec![send(7, Message::Neighbour { high_priority: true })]);
}

#[test]
fn a_goodbye_makes_the_node_replace_the_leaver_at_once_and_forget_it() {
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    learn_passive(&mut m, 2, 7, at(0));
    m.handle_disconnected(peer(2).id, LinkEnd::PeerLeft, at(5));
    assert_eq!(drain_no_timers(&mut m), vec![down(2), dial(peer(7))]);
    assert_eq!(state_of(&m, 2), None);
}

#[test]
fn a_replaced_peer_is_kept_as_passive() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    make_active(&mut m, 3, at(0));
    m.handle_disconnected(peer(2).id, LinkEnd::PeerReplaced, at(5));
    let actions = drain_no_timers(&mut m);
    assert_eq!(actions[0], down(2));
    assert_eq!(state_of(&m, 2), Some(NodeState::Passive));
}

#[test]
fn the_end_of_a_peer_exchange_walk_answers_the_origin_and_merges_a_bounded_sample() {
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    learn_passive(&mut m, 2, 7, at(0));
    let origin = peer(50);
    let peers: Vec<PeerInfo> = (100..140).map(peer).collect();
    let request = Message::PeerExchangeRequest { origin, ttl: 5, peers, exchange_id: 77 };
    m.handle_message(peer(2).id, request, at(1));
    // Only one active peer (the sender): the walk ends here, the origin is dialed for the answer.
    assert_eq!(drain_no_timers(&mut m), vec![dial(origin)]);
    // 40 records are cut to `max_exchange_peers` (16), of which one source (peer 2, which also told us
    // of the entry we had) keeps at most `max_passive_per_source` (8).
    assert_eq!(m.passive_len(), Config::default().max_passive_per_source);
    m.handle_connected(origin, Some(origin.addr), at(2));
    // The answer is a sample of our passive view as it was before the merge (one entry), topped up
    // with our active peer since the view was thinner than the sample asked for.
    let answer = Message::PeerExchangeResponse { peers: vec![peer(7), peer(2)], exchange_id: 77 };
    assert_eq!(drain_no_timers(&mut m), vec![send(50, answer)]);
}

#[test]
fn a_neighbour_reply_goes_out_before_neighbour_up() {
    // The layers above start talking to a neighbour as soon as `NeighbourUp` is out (the router sends
    // its `Sync`); the requester only listens to them once it has our reply, so the reply must be
    // queued first. (The other order lost a `Sync` in `dotray-sim`'s crash-50 scenario, and with it
    // every stream the requester had not heard of.)
    let mut m = node(1, vec![]);
    m.handle_connected(peer(2), None, at(0));
    m.handle_message(peer(2).id, Message::Neighbour { high_priority: false }, at(0));
    assert_eq!(drain_no_timers(&mut m), vec![send(2, Message::NeighbourReply { accepted: true }), up(2)]);
}

#[test]
fn a_newcomers_first_exchange_is_answered_with_a_full_sample() {
    // A joining node's first exchange carries only itself; answering "as many as received" would give
    // it a single backup address.
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    for p in 10..20 {
        learn_passive(&mut m, 2, p, at(0));
    }
    let newcomer = peer(50);
    let request =
        Message::PeerExchangeRequest { origin: newcomer, ttl: 0, peers: vec![newcomer], exchange_id: 5 };
    m.handle_connected(newcomer, None, at(1));
    m.handle_message(newcomer.id, request, at(1));
    let actions = drain_no_timers(&mut m);
    let Some(Action::Send { message: Message::PeerExchangeResponse { peers, .. }, .. }) = actions.first()
    else {
        panic!("an answer: {actions:?}");
    };
    let c = Config::default();
    assert_eq!(peers.len(), 1 + c.shuffle_active_count + c.shuffle_passive_count);
    assert!(peers.iter().all(|p| (10..20).map(peer).any(|q| q == *p)), "from the passive view: {peers:?}");
}

#[test]
fn a_walk_passing_through_fills_a_thin_passive_view_and_never_evicts() {
    // One source may fill the whole view here: this test is about passing walks, not shares.
    let mut m = node_with(1, vec![], Config { max_passive_per_source: 30, ..Config::default() });
    make_active(&mut m, 2, at(0));
    make_active(&mut m, 3, at(0));
    let peers: Vec<PeerInfo> = (100..104).map(peer).collect();
    let request = Message::PeerExchangeRequest { origin: peer(100), ttl: 3, peers, exchange_id: 9 };
    m.handle_message(peer(2).id, request, at(1));
    let actions = drain_no_timers(&mut m);
    // Forwarded on (what follows is the refill dialing one of the new backups: 2 of 5 active).
    assert!(
        matches!(&actions[0], Action::Send { to, message: Message::PeerExchangeRequest { ttl: 2, .. } } if *to == peer(3).id),
        "{actions:?}"
    );
    for p in 100..104 {
        assert_eq!(state_of(&m, p), Some(NodeState::Passive), "learned {p}");
    }
    // A full view keeps what it has: a passing walk only fills room.
    let capacity = Config::default().passive_view_capacity;
    let mut next = 110u8;
    while m.passive_len() < capacity {
        learn_passive(&mut m, 2, next, at(2));
        next += 1;
    }
    let before: Vec<NodeId> = m.nodes(at(3)).iter().map(|n| n.peer.id).collect();
    let request = Message::PeerExchangeRequest {
        origin: peer(200),
        ttl: 3,
        peers: vec![peer(200), peer(201)],
        exchange_id: 10,
    };
    m.handle_message(peer(2).id, request, at(3));
    drain(&mut m);
    let after: Vec<NodeId> = m.nodes(at(3)).iter().map(|n| n.peer.id).collect();
    assert_eq!(before, after);
}

#[test]
fn shuffle_responses_never_grow_the_passive_view_beyond_its_capacity() {
    let mut m = node_with(1, vec![], Config { max_passive_per_source: 30, ..Config::default() });
    make_active(&mut m, 2, at(0));
    for round in 0..10u8 {
        m.handle_timer(Timer::Shuffle, at(1));
        let exchange_id = drain(&mut m)
            .into_iter()
            .find_map(|a| match a {
                Action::Send { message: Message::PeerExchangeRequest { exchange_id, peers, .. }, .. } => {
                    assert_eq!(peers[0], peer(1), "the sample starts with the origin");
                    Some(exchange_id)
                }
                _ => None,
            })
            .unwrap();
        let peers = (0..200u8).map(|i| peer(i.wrapping_mul(7).wrapping_add(round))).collect();
        m.handle_message(peer(2).id, Message::PeerExchangeResponse { peers, exchange_id }, at(2));
        drain(&mut m);
        assert!(m.passive_len() <= Config::default().passive_view_capacity);
    }
    assert_eq!(m.passive_len(), Config::default().passive_view_capacity);
    assert!(m.nodes(at(3)).iter().all(|n| n.peer.id != peer(1).id), "never itself");
}

#[test]
fn malformed_input_disconnects_the_peer_as_a_protocol_violation() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    m.handle_protocol_violation(peer(2).id, at(1));
    assert_eq!(
        drain_no_timers(&mut m),
        vec![Action::Disconnect { peer: peer(2).id, reason: CloseReason::ProtocolViolation }, down(2)]
    );
    assert_eq!(state_of(&m, 2), None, "a violator is forgotten");
}

#[test]
fn an_unasked_neighbour_reply_is_a_protocol_violation() {
    let mut m = node(1, vec![]);
    m.handle_connected(peer(3), None, at(0));
    m.handle_message(peer(3).id, Message::NeighbourReply { accepted: true }, at(1));
    assert_eq!(
        drain_no_timers(&mut m),
        vec![Action::Disconnect { peer: peer(3).id, reason: CloseReason::ProtocolViolation }]
    );
    assert_eq!(m.active_len(), 0);
}

#[test]
fn silent_strangers_never_block_the_nodes_own_dials() {
    // Slot exhaustion: strangers connect and say nothing. Beyond `max_transient_connections` they are
    // refused, and the node's own dials have a budget of their own.
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    let limit = Config::default().max_transient_connections as u8;
    for p in 0..limit {
        m.handle_connected(peer(10 + p), None, at(u64::from(p)));
    }
    drain(&mut m);
    m.handle_connected(peer(99), None, at(100));
    assert_eq!(
        drain_no_timers(&mut m),
        vec![Action::Disconnect { peer: peer(99).id, reason: CloseReason::TooManyConnections }]
    );
    assert_eq!(m.connection_count(), 1 + usize::from(limit));
    // A backup to dial: the refill still dials it, strangers or not.
    m.handle_connected(peer(50), Some(peer(50).addr), at(200));
    m.handle_disconnected(peer(50).id, LinkEnd::Local, at(200));
    let dials: Vec<Action> = drain(&mut m).into_iter().filter(|a| matches!(a, Action::Dial { .. })).collect();
    assert_eq!(dials, vec![dial(peer(50))]);
}

#[test]
fn transient_connections_are_closed_after_the_timeout() {
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    m.handle_connected(peer(3), None, at(0));
    m.handle_timer(Timer::Sweep, at(9_000));
    assert_eq!(drain_no_timers(&mut m), vec![]);
    m.handle_timer(Timer::Sweep, at(10_000));
    assert_eq!(
        drain_no_timers(&mut m),
        vec![Action::Disconnect { peer: peer(3).id, reason: CloseReason::Timeout }]
    );
    assert_eq!(m.connection_count(), 1);
}

#[test]
fn node_queries_are_answered_bounded_and_asked_with_a_request_id() {
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    learn_passive(&mut m, 2, 7, at(0));
    // Remote: the answer is cut to what the asker wants.
    m.handle_message(peer(2).id, Message::NodeQueryRequest { request_id: 5, max: 1 }, at(1));
    match drain_no_timers(&mut m).as_slice() {
        [Action::Send { message: Message::NodeQueryResponse { request_id: 5, nodes }, .. }] => {
            assert_eq!(nodes.len(), 1);
            assert_eq!(nodes[0].peer, peer(2), "active peers first");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Local: ask a connected peer.
    let id = m.query_node(peer(2).id, at(2)).unwrap();
    let max = Config::default().max_query_nodes as u32;
    assert_eq!(drain_no_timers(&mut m), vec![send(2, Message::NodeQueryRequest { request_id: id, max })]);
    let nodes = vec![NodeInfo {
        peer: peer(8),
        state: NodeState::Active,
        rtt: None,
        last_seen_ago: None,
        direction: None,
    }];
    m.handle_message(peer(2).id, Message::NodeQueryResponse { request_id: id, nodes: nodes.clone() }, at(3));
    assert_eq!(
        drain_no_timers(&mut m),
        vec![Action::Event(Event::QueryResponse { request_id: id, peer: peer(2).id, nodes })]
    );
    // A passive peer is dialed; an unknown one is an error.
    let id = m.query_node(peer(7).id, at(4)).unwrap();
    assert_eq!(drain_no_timers(&mut m), vec![dial(peer(7))]);
    m.handle_dial_failed(peer(7).addr, at(5));
    let actions = drain_no_timers(&mut m);
    assert!(
        actions.contains(&Action::Event(Event::QueryFailed { request_id: id, peer: peer(7).id })),
        "{actions:?}"
    );
    assert_eq!(m.query_node(peer(42).id, at(6)), Err(QueryError::UnknownPeer));
}

#[test]
fn a_seed_given_with_its_id_is_dialed_expecting_it() {
    let seed = Seed { addr: peer(2).addr, node: Some(peer(2).id) };
    let mut m =
        Membership::new(peer(1), [seed], Config::default(), ChaCha8Rng::seed_from_u64(1), t0()).unwrap();
    assert_eq!(drain_no_timers(&mut m), vec![dial(peer(2))]);
    // The same after a failure, on the retry.
    m.handle_dial_failed(peer(2).addr, at(0));
    let refill = drain(&mut m).into_iter().find_map(|a| match a {
        Action::SetTimer { at, timer: timer @ Timer::Refill { .. } } => Some((at, timer)),
        _ => None,
    });
    let (when, timer) = refill.expect("a refill timer");
    m.handle_timer(timer, when);
    assert!(drain_no_timers(&mut m).contains(&dial(peer(2))));
}

#[test]
fn a_failing_seed_is_retried_with_growing_backoff_and_never_dropped() {
    let mut m = node(1, vec![peer(2).addr]);
    drain(&mut m);
    let mut now = at(0);
    let mut waits = Vec::new();
    for _ in 0..12 {
        m.handle_dial_failed(peer(2).addr, now);
        let (when, generation) = drain(&mut m)
            .into_iter()
            .find_map(|a| match a {
                Action::SetTimer { at, timer: Timer::Refill { generation } } => Some((at, generation)),
                Action::Dial { .. } => panic!("no redial before the backoff"),
                _ => None,
            })
            .expect("a refill timer");
        waits.push(when - now);
        now = when;
        m.handle_timer(Timer::Refill { generation }, now);
        assert!(drain_no_timers(&mut m).contains(&dial_seed(peer(2))));
    }
    assert!(waits[3] > waits[0], "backoff grows: {waits:?}");
    assert!(waits.iter().all(|w| *w <= Config::default().backoff_max), "and is capped: {waits:?}");
}

#[test]
fn a_seed_that_never_answered_is_retried_even_after_others_joined_us() {
    // Our seed was not up yet; a third node joined us meanwhile. Without our seed we would be an
    // island of two.
    let refill_timer = |actions: Vec<Action>| {
        actions.into_iter().find_map(|a| match a {
            Action::SetTimer { at, timer: Timer::Refill { generation } } => Some((at, generation)),
            _ => None,
        })
    };
    let mut m = node(1, vec![peer(2).addr]);
    drain(&mut m);
    m.handle_dial_failed(peer(2).addr, at(0));
    let (when, generation) = refill_timer(drain(&mut m)).expect("a retry of the seed");
    make_active(&mut m, 3, at(1));
    m.handle_timer(Timer::Refill { generation }, when);
    assert!(drain_no_timers(&mut m).contains(&dial_seed(peer(2))), "the seed is dialed again");
    // It fails again: still retried, though we have a neighbour.
    m.handle_dial_failed(peer(2).addr, when);
    let (later, generation) = refill_timer(drain(&mut m)).expect("the seed keeps its retry");
    m.handle_timer(Timer::Refill { generation }, later);
    assert!(drain_no_timers(&mut m).contains(&dial_seed(peer(2))), "and is dialed again");
    // Once it has answered, a node with neighbours enough not to be lonely leaves it to the heal
    // rounds (a lonely one joins through it again: see
    // `a_node_hanging_by_one_link_joins_again_through_a_seed_that_answered_before`).
    m.handle_connected(peer(2), Some(peer(2).addr), later);
    make_active(&mut m, 4, later);
    drain(&mut m);
    m.handle_disconnected(peer(2).id, LinkEnd::Failed, later);
    let after = drain(&mut m);
    assert!(
        !after.iter().any(|a| matches!(a, Action::Dial { addr, .. } if *addr == peer(2).addr)),
        "{after:?}"
    );
}

#[test]
fn a_seed_whose_name_moved_is_dialed_at_its_new_address_with_its_id() {
    let seed = Seed { addr: peer(2).addr, node: Some(peer(2).id) };
    let mut m =
        Membership::new(peer(1), [seed], Config::default(), ChaCha8Rng::seed_from_u64(1), t0()).unwrap();
    drain(&mut m);
    m.handle_dial_failed(peer(2).addr, at(0));
    drain(&mut m);
    // The driver looked the name up again: it now gives another address.
    let moved = PeerInfo::new(peer(2).id, peer(5).addr);
    m.replace_seed(peer(2).addr, moved.addr);
    // Any event that makes the node look for neighbours (here: another failed dial) dials it.
    m.handle_dial_failed(peer(9).addr, at(1));
    let dials: Vec<Action> =
        drain_no_timers(&mut m).into_iter().filter(|a| matches!(a, Action::Dial { .. })).collect();
    assert_eq!(
        dials,
        vec![Action::Dial { addr: moved.addr, node: Some(peer(2).id) }],
        "no back-off for a new address"
    );
}

#[test]
fn a_stale_refill_timer_is_ignored() {
    let mut m = node(1, vec![peer(2).addr]);
    drain(&mut m);
    m.handle_dial_failed(peer(2).addr, at(0));
    drain(&mut m);
    m.handle_timer(Timer::Refill { generation: 0 }, at(60_000));
    assert_eq!(drain_no_timers(&mut m), vec![]);
}

#[test]
fn leave_says_goodbye_to_everyone_and_ignores_what_follows() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    m.handle_connected(peer(3), None, at(0));
    drain(&mut m);
    m.leave(at(1));
    assert_eq!(
        drain(&mut m),
        vec![
            Action::Disconnect { peer: peer(2).id, reason: CloseReason::Shutdown },
            down(2),
            Action::Disconnect { peer: peer(3).id, reason: CloseReason::Shutdown },
        ]
    );
    m.handle_timer(Timer::Ping, at(2));
    m.handle_connected(peer(4), None, at(2));
    assert_eq!(drain(&mut m), vec![Action::Disconnect { peer: peer(4).id, reason: CloseReason::Shutdown }]);
}

#[test]
fn a_peer_declared_down_that_comes_back_is_relinked_even_into_a_full_view() {
    // Partition healing: 9 was an active peer that we declared down; when it asks again with low
    // priority, we accept although our view is full.
    let mut m = node(1, vec![]);
    make_active(&mut m, 9, at(0));
    m.handle_disconnected(peer(9).id, LinkEnd::Failed, at(1));
    drain(&mut m);
    for p in 2..=6 {
        make_active(&mut m, p, at(2));
    }
    assert_eq!(state_of(&m, 9), Some(NodeState::Down));
    m.handle_connected(peer(9), None, at(3));
    m.handle_message(peer(9).id, Message::Neighbour { high_priority: false }, at(3));
    let actions = drain_no_timers(&mut m);
    assert!(
        actions.contains(&up(9)) && actions.contains(&send(9, Message::NeighbourReply { accepted: true }))
    );
    assert_eq!(m.active_len(), 5);
}

#[test]
fn a_passive_address_that_keeps_failing_is_dropped() {
    let mut m = tiny(1);
    make_active(&mut m, 2, at(0));
    learn_passive(&mut m, 2, 7, at(0));
    let max = Config::default().max_dial_failures;
    for i in 1..max {
        m.handle_dial_failed(peer(7).addr, at(u64::from(i)));
        assert_eq!(state_of(&m, 7), Some(NodeState::Passive), "kept after {i} failures");
    }
    m.handle_dial_failed(peer(7).addr, at(100));
    assert_eq!(state_of(&m, 7), None, "dropped after {max} failures");
}

#[test]
fn a_seed_that_answers_again_after_failing_is_joined_anew() {
    // Long partitions: a full node whose seed failed and now answers sends `Join` again, and accepts
    // the neighbour requests that end the join's walks although its view is full.
    let mut m_seeded =
        node_with(1, vec![peer(9).addr], Config { active_view_capacity: 1, ..Config::default() });
    drain(&mut m_seeded);
    m_seeded.handle_dial_failed(peer(9).addr, at(0));
    make_active(&mut m_seeded, 2, at(1));
    drain(&mut m_seeded);
    // Heal rounds until one goes to the seed.
    let mut now = 0;
    loop {
        now += 15_000;
        m_seeded.handle_timer(Timer::Heal, at(now));
        if drain_no_timers(&mut m_seeded).contains(&dial_seed(peer(9))) {
            break;
        }
        assert!(now < 15_000 * 10, "a heal round goes to the seed");
    }
    m_seeded.handle_connected(peer(9), Some(peer(9).addr), at(now + 10));
    let actions = drain_no_timers(&mut m_seeded);
    assert_eq!(
        actions,
        vec![
            send(9, Message::Join),
            Action::Disconnect { peer: peer(2).id, reason: CloseReason::Replaced },
            down(2),
            up(9)
        ]
    );
    // A walk's end asks us: accepted although the view is full.
    m_seeded.handle_connected(peer(5), None, at(now + 20));
    m_seeded.handle_message(peer(5).id, Message::Neighbour { high_priority: false }, at(now + 20));
    assert!(drain_no_timers(&mut m_seeded).contains(&send(5, Message::NeighbourReply { accepted: true })));
}

/// A node with a full view of one (peer 2) that joined through its seed (peer 9) long ago: the join
/// succeeded, later the seed was replaced by another neighbour, and the refill that followed dialed
/// the seed again, a dial whose report never came (so it expired by 11 s).
fn full_node_joined_through_its_seed() -> Membership<ChaCha8Rng> {
    let mut m = node_with(1, vec![peer(9).addr], Config { active_view_capacity: 1, ..Config::default() });
    drain(&mut m);
    m.handle_connected(peer(9), Some(peer(9).addr), at(0));
    m.handle_disconnected(peer(9).id, LinkEnd::PeerReplaced, at(1));
    make_active(&mut m, 2, at(2));
    m.handle_timer(Timer::Sweep, at(11_000));
    drain(&mut m);
    m
}

/// Runs heal rounds 15 s apart after `after` ms until one dials the seed (peer 9); returns its time.
fn heal_until_the_seed_is_dialed(m: &mut Membership<ChaCha8Rng>, after: u64) -> u64 {
    let mut now = after;
    loop {
        now += 15_000;
        m.handle_timer(Timer::Heal, at(now));
        if drain_no_timers(m).contains(&dial(peer(9))) {
            return now;
        }
        assert!(now < after + 15_000 * 10, "a heal round goes to the seed");
    }
}

#[test]
fn a_heal_round_to_a_healthy_seed_with_a_full_view_is_a_direct_exchange() {
    let mut m = full_node_joined_through_its_seed();
    let now = heal_until_the_seed_is_dialed(&mut m, 11_000);
    m.handle_connected(peer(9), Some(peer(9).addr), at(now + 10));
    match drain_no_timers(&mut m).as_slice() {
        [Action::Send { to, message: Message::PeerExchangeRequest { ttl: 0, origin, .. } }] => {
            assert_eq!((*to, *origin), (peer(9).id, peer(1)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_seed_busy_for_a_heal_round_is_not_joined_again() {
    // Every node of a large network dials its seed now and then. A seed too busy to take a heal
    // round is alive and reachable: a node with a full view must not join through it again (a join
    // evicts links over the overlay; at 10,000 nodes that was the tree's churn).
    let mut m = full_node_joined_through_its_seed();
    let now = heal_until_the_seed_is_dialed(&mut m, 11_000);
    m.handle_connected(peer(9), Some(peer(9).addr), at(now + 10));
    drain(&mut m);
    m.handle_disconnected(peer(9).id, LinkEnd::PeerBusy, at(now + 20));
    // Whatever the node does in the next minute short of another heal round, it does not dial the
    // seed: its refill timers fire, other events come, and the view stays as it is.
    let mut pending = drain(&mut m);
    for k in 1..=6 {
        m.handle_timer(Timer::Sweep, at(now + 10_000 * k));
        pending.extend(drain(&mut m));
    }
    let mut fired = 0;
    while let Some(action) = pending.pop() {
        match action {
            Action::Dial { addr, .. } => assert_ne!(addr, peer(9).addr, "the busy seed is not joined again"),
            Action::SetTimer { at: when, timer: timer @ Timer::Refill { .. } }
                if when <= at(now + 60_000) =>
            {
                fired += 1;
                assert!(fired < 100, "refill timers do not spin");
                m.handle_timer(timer, when);
                pending.extend(drain(&mut m));
            }
            _ => {}
        }
    }
    assert!(m.active.contains(&peer(2).id));
}

/// Runs `m` from `start` to `end` with every other node down: each dial fails 5 ms after it is made,
/// and every timer that comes due fires, those set in `earlier` actions too. Returns the times `seed`
/// was dialed.
fn dials_with_everyone_down(
    m: &mut Membership<ChaCha8Rng>,
    earlier: Vec<Action>,
    seed: SocketAddr,
    start: Instant,
    end: Instant,
) -> Vec<Instant> {
    let mut dials = Vec::new();
    let mut failing = Vec::new();
    let mut timers = Vec::new();
    let mut now = start;
    let mut actions = earlier;
    loop {
        actions.extend(drain(m));
        for action in std::mem::take(&mut actions) {
            match action {
                Action::Dial { addr, .. } => {
                    if addr == seed {
                        dials.push(now);
                    }
                    failing.push(addr);
                }
                Action::SetTimer { at: when, timer } if when <= end => timers.push((when, timer)),
                _ => {}
            }
        }
        assert!(dials.len() < 1_000, "dials do not spin");
        if let Some(addr) = failing.pop() {
            now += Duration::from_millis(5);
            m.handle_dial_failed(addr, now);
            continue;
        }
        timers.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
        let Some((when, timer)) = timers.pop() else { return dials };
        now = when.max(now);
        m.handle_timer(timer, now);
    }
}

#[test]
fn a_node_alone_keeps_asking_its_dead_seed_every_few_seconds() {
    // Restarted while its only seed was down, a node knows no other address: whatever it
    // broadcasts waits until the seed is back. It asks at most `alone_seed_backoff_max` apart, not
    // after a back-off that doubles to a minute.
    let seed = peer(9).addr;
    let mut m = node(1, vec![seed]);
    let dials = dials_with_everyone_down(&mut m, Vec::new(), seed, at(0), at(30_000));
    let max = Config::default().alone_seed_backoff_max + Duration::from_millis(10);
    for pair in dials.windows(2) {
        assert!(pair[1] - pair[0] <= max, "dialed again only after {:?}", pair[1] - pair[0]);
    }
    assert!(dials.len() >= 15, "{} dials in 30 s", dials.len());
}

#[test]
fn a_node_left_alone_asks_its_seed_again_soon_however_long_its_backoff_grew() {
    // While the node had a neighbour, its dead seed backed off as any address does (heal rounds
    // find it failing again and again). Once the neighbour is gone, the seed is asked again within
    // `alone_seed_backoff_max`, not at the end of the long back-off.
    let seed = peer(9).addr;
    let mut m = node(1, vec![seed]);
    m.handle_dial_failed(seed, at(10));
    make_active(&mut m, 2, at(20));
    for k in 1..=6 {
        m.handle_dial_failed(seed, at(20 + k));
    }
    let earlier = drain(&mut m);
    assert!(!earlier.contains(&dial_seed(peer(9))), "the seed rests while the node has a neighbour");
    let lost = at(100);
    m.handle_disconnected(peer(2).id, LinkEnd::Failed, lost);
    let dials = dials_with_everyone_down(&mut m, earlier, seed, lost, lost + Duration::from_secs(10));
    let first = dials.first().map(|t| *t - lost);
    assert!(
        first.is_some_and(|d| d <= Config::default().alone_seed_backoff_max),
        "first dial after {first:?}"
    );
}

#[test]
fn seeds_that_refuse_joins_for_lack_of_room_are_not_asked_again_at_once() {
    // A thousand nodes start together through the same seeds: most joins find their slots full
    // (the link comes up, then closes with "busy"). The refusal leaves the seed's address in the
    // passive view; it must not be dialed again as a neighbour candidate at once: each such dial
    // is a handshake the busy seed pays for, then refuses. Here both seeds refuse everything for
    // three seconds: every address rests at least half a second (the seed's pause) between dials.
    let seeds = [peer(8), peer(9)];
    let mut m = node(1, seeds.iter().map(|s| s.addr).collect());
    let mut dials: Vec<(SocketAddr, Instant)> = Vec::new();
    let mut unanswered = Vec::new();
    let mut timers = Vec::new();
    let mut now = at(0);
    let end = at(3_000);
    loop {
        for action in drain(&mut m) {
            match action {
                Action::Dial { addr, .. } => {
                    dials.push((addr, now));
                    unanswered.push(addr);
                }
                Action::SetTimer { at: when, timer } if when <= end => timers.push((when, timer)),
                _ => {}
            }
        }
        assert!(dials.len() < 100, "dials do not spin: {dials:?}");
        // Every dial connects and is refused a few milliseconds later.
        if let Some(addr) = unanswered.pop() {
            let seed = *seeds.iter().find(|s| s.addr == addr).expect("only seeds are known");
            m.handle_connected(seed, Some(addr), now + Duration::from_millis(5));
            now += Duration::from_millis(10);
            m.handle_disconnected(seed.id, LinkEnd::PeerBusy, now);
            continue;
        }
        timers.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
        let Some((when, timer)) = timers.pop() else { break };
        now = when.max(now);
        m.handle_timer(timer, now);
    }
    assert!(dials.len() >= 4, "the node keeps trying to join: {dials:?}");
    for seed in seeds {
        let times: Vec<Instant> = dials.iter().filter(|(a, _)| *a == seed.addr).map(|(_, t)| *t).collect();
        for pair in times.windows(2) {
            let rest = pair[1] - pair[0];
            assert!(rest >= Duration::from_millis(500), "{} dialed again after {rest:?}", seed.addr);
        }
    }
}

#[test]
fn a_seed_that_refused_a_dial_for_lack_of_room_is_not_taken_for_one_coming_back() {
    // A heal round finds the seed's connection slots full (someone floods it); the next one gets
    // through. A failed dial followed by an answer means the seed comes back from a partition, and
    // the node joins through it anew; a busy one is alive all along, and the next round is the
    // usual direct exchange.
    for busy in [true, false] {
        let mut m = full_node_joined_through_its_seed();
        let now = heal_until_the_seed_is_dialed(&mut m, 11_000);
        if busy {
            m.handle_dial_busy(peer(9).addr, at(now + 5));
        } else {
            m.handle_dial_failed(peer(9).addr, at(now + 5));
        }
        drain(&mut m);
        let now = heal_until_the_seed_is_dialed(&mut m, now);
        m.handle_connected(peer(9), Some(peer(9).addr), at(now + 10));
        let actions = drain_no_timers(&mut m);
        let joined = actions.contains(&send(9, Message::Join));
        assert_eq!(joined, !busy, "busy {busy}: {actions:?}");
    }
}

/// Makes `p` an active peer of `m` through a connection `m` dialed and an accepted neighbour request.
fn make_active_outbound(m: &mut Membership<ChaCha8Rng>, p: u8, now: Instant) {
    learn_passive(m, 2, p, now);
    m.handle_connected(peer(p), Some(peer(p).addr), now);
    m.handle_message(peer(p).id, Message::Neighbour { high_priority: false }, now);
    drain(m);
}

#[test]
fn strangers_joining_cannot_take_the_links_a_node_chose() {
    // An eclipse attempt: one fresh identity after another joins. Each `Join` must be accepted (that
    // is how a network grows), but the links this node dialed itself stay.
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    make_active_outbound(&mut m, 3, at(1));
    make_active_outbound(&mut m, 4, at(2));
    make_active(&mut m, 5, at(3));
    make_active(&mut m, 6, at(4));
    drain(&mut m);
    assert_eq!(m.active_len(), 5);
    for stranger in 100..160u8 {
        m.handle_connected(peer(stranger), None, at(10));
        m.handle_message(peer(stranger).id, Message::Join, at(10));
        let high = Message::Neighbour { high_priority: true };
        m.handle_connected(peer(stranger + 60), None, at(10));
        m.handle_message(peer(stranger + 60).id, high, at(10));
        drain(&mut m);
        assert_eq!(m.active_len(), 5);
    }
    let active: Vec<NodeId> = m.active_peers().map(|p| p.id).collect();
    for chosen in [3, 4] {
        assert!(active.contains(&peer(chosen).id), "{chosen} was evicted: {active:?}");
    }
    // The oldest inbound link (2) is protected too; strangers hold at most the two other slots.
    assert!(active.contains(&peer(2).id), "{active:?}");
    assert!(active.iter().filter(|id| ![2, 3, 4].iter().any(|&i| peer(i).id == **id)).count() <= 2);
}

#[test]
fn a_strangers_exchange_cannot_replace_the_verified_backups() {
    // Passive-view poisoning: strangers end exchange walks at us with made-up addresses.
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    // Ten backups this node dialed itself (verified), and some hearsay from its neighbour.
    for p in 10..20u8 {
        m.handle_connected(peer(p), Some(peer(p).addr), at(1));
        m.handle_disconnected(peer(p).id, LinkEnd::Local, at(1));
    }
    drain(&mut m);
    let verified: Vec<NodeId> = (10..20u8).map(|p| peer(p).id).collect();
    for stranger in 0..40u8 {
        let attacker = peer(100 + stranger);
        m.handle_connected(attacker, None, at(2));
        let peers =
            (0..16u8).map(|i| peer(200u8.wrapping_add(stranger.wrapping_mul(16)).wrapping_add(i))).collect();
        let request = Message::PeerExchangeRequest { origin: attacker, ttl: 0, peers, exchange_id: 1 };
        m.handle_message(attacker.id, request, at(2));
        drain(&mut m);
    }
    let passive: Vec<NodeId> =
        m.nodes(at(3)).iter().filter(|n| n.state == NodeState::Passive).map(|n| n.peer.id).collect();
    assert!(verified.iter().all(|id| passive.contains(id)), "verified backups kept: {passive:?}");
    assert!(passive.len() <= Config::default().passive_view_capacity);
}

#[test]
fn walks_cannot_make_a_node_dial_addresses_at_will() {
    // Reflection: every walk that ends here names an address to dial (the origin, to answer it; the
    // joiner, to link with it). A stranger naming someone else gets nothing at all; an active
    // neighbour gets the dial budget's burst and then its rate.
    let mut m = node(1, vec![]);
    // A full active view: no refill dials to muddle the count.
    for p in 2..7 {
        make_active(&mut m, p, at(0));
    }
    drain(&mut m);
    let stranger = peer(9);
    m.handle_connected(stranger, None, at(1));
    let victim = |port: u16| {
        PeerInfo::new(NodeId::from_bytes([port as u8; 32]), SocketAddr::from(([192, 0, 2, 1], port)))
    };
    let request =
        Message::PeerExchangeRequest { origin: victim(80), ttl: 0, peers: vec![victim(81)], exchange_id: 1 };
    m.handle_message(stranger.id, request, at(1));
    assert!(drain_no_timers(&mut m).is_empty(), "a stranger's walk for another origin is dropped");
    assert_eq!(state_of(&m, 81), None, "and not merged");
    let dials = |actions: Vec<Action>| actions.iter().filter(|a| matches!(a, Action::Dial { .. })).count();
    let mut dialed = 0;
    for port in 100..160u16 {
        let walk = if port % 2 == 0 {
            Message::PeerExchangeRequest {
                origin: victim(port),
                ttl: 0,
                peers: vec![],
                exchange_id: port.into(),
            }
        } else {
            Message::ForwardJoin { node: victim(port), ttl: 0 }
        };
        m.handle_message(peer(2).id, walk, at(2));
        dialed += dials(drain(&mut m));
        // Dials that fail at once free their connection slot: only the budget limits them.
        for port in 100..160u16 {
            m.handle_dial_failed(victim(port).addr, at(2));
        }
        drain(&mut m);
    }
    assert_eq!(dialed, Config::default().named_dial_burst as usize);
}

#[test]
fn refill_tries_addresses_that_worked_before_hearsay() {
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    let stranger = peer(50);
    m.handle_connected(stranger, None, at(1));
    let peers = (100..116).map(peer).collect();
    m.handle_message(
        stranger.id,
        Message::PeerExchangeRequest { origin: stranger, ttl: 0, peers, exchange_id: 1 },
        at(1),
    );
    // The view is far from full (one active peer of five): refill dials one backup at a time, so far
    // one of the made-up ones.
    let pending: Vec<SocketAddr> = drain(&mut m)
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(pending.len(), 1);
    // A backup this node dialed before (verified) joins them; once the pending dial fails, it is next.
    m.handle_connected(peer(10), Some(peer(10).addr), at(2));
    m.handle_disconnected(peer(10).id, LinkEnd::Local, at(2));
    m.handle_dial_failed(pending[0], at(2));
    let dials: Vec<Action> = drain(&mut m).into_iter().filter(|a| matches!(a, Action::Dial { .. })).collect();
    assert_eq!(dials, vec![dial(peer(10))]);
}

#[test]
fn a_stream_of_strangers_keeps_the_backups_its_neighbours_vouched_for() {
    let mut m = node(1, vec![]);
    // Two honest nodes that were our neighbours (they connected to us) and moved on: unverified
    // backups, a neighbour's word. Then a full view.
    for p in [20, 21] {
        make_active(&mut m, p, at(0));
        m.handle_disconnected(peer(p).id, LinkEnd::PeerReplaced, at(1));
    }
    for p in 2..7 {
        make_active(&mut m, p, at(1));
    }
    drain(&mut m);
    for stranger in 0..40u8 {
        let attacker = PeerInfo::new(
            NodeId::from_bytes([100 + stranger; 32]),
            SocketAddr::from(([10, 66, 0, stranger], 9)),
        );
        m.handle_connected(attacker, None, at(2));
        let peers = (0..16u8)
            .map(|i| {
                PeerInfo::new(
                    NodeId::from_bytes([
                        i, stranger, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                        7, 7, 7, 7, 7, 7,
                    ]),
                    SocketAddr::from(([10, 67, stranger, i], 9)),
                )
            })
            .collect();
        let request = Message::PeerExchangeRequest { origin: attacker, ttl: 0, peers, exchange_id: 1 };
        m.handle_message(attacker.id, request, at(2));
        m.handle_disconnected(attacker.id, LinkEnd::PeerLeft, at(2));
        drain(&mut m);
        for p in [20, 21] {
            assert_eq!(
                state_of(&m, p),
                Some(NodeState::Passive),
                "honest {p} lost after stranger {stranger}"
            );
        }
    }
}

#[test]
fn a_node_hanging_by_one_link_asks_with_high_priority() {
    // Two nodes left with nobody but each other would stay an island if full nodes could refuse them.
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    learn_passive(&mut m, 2, 7, at(0));
    m.handle_connected(peer(7), Some(peer(7).addr), at(1));
    assert_eq!(drain_no_timers(&mut m), vec![send(7, Message::Neighbour { high_priority: true })]);
    m.handle_message(peer(7).id, Message::NeighbourReply { accepted: true }, at(2));
    assert_eq!(drain_no_timers(&mut m), vec![up(7)]);
    // With two neighbours it asks politely.
    learn_passive(&mut m, 2, 8, at(3));
    m.handle_connected(peer(8), Some(peer(8).addr), at(4));
    assert_eq!(drain_no_timers(&mut m), vec![send(8, Message::Neighbour { high_priority: false })]);
}

#[test]
fn a_node_hanging_by_one_link_joins_again_through_a_seed_that_answered_before() {
    // A restarted node and the one node it found, both cut off from the rest: their seed went down.
    let seed = peer(5);
    let mut m = node(1, vec![seed.addr]);
    drain(&mut m);
    m.handle_connected(seed, Some(seed.addr), at(0));
    m.handle_message(seed.id, Message::NeighbourReply { accepted: true }, at(0));
    make_active(&mut m, 2, at(0));
    drain(&mut m);
    m.handle_disconnected(seed.id, LinkEnd::Failed, at(1));
    let actions = drain(&mut m);
    assert!(actions.contains(&dial_seed(seed)), "joins again through the seed: {actions:?}");
    // It is still down: retried after a back-off, not at once.
    m.handle_dial_failed(seed.addr, at(2));
    let actions = drain(&mut m);
    assert!(!actions.contains(&dial_seed(seed)), "{actions:?}");
    let retry = actions.iter().find_map(|a| match a {
        Action::SetTimer { at, timer: timer @ Timer::Refill { .. } } => Some((*at, *timer)),
        _ => None,
    });
    let (when, timer) = retry.expect("a refill when the seed's back-off ends");
    m.handle_timer(timer, when);
    assert!(drain(&mut m).contains(&dial_seed(seed)));
    // With two neighbours it waits for the seed as any node does.
    let mut m = node(1, vec![seed.addr]);
    drain(&mut m);
    m.handle_connected(seed, Some(seed.addr), at(0));
    m.handle_message(seed.id, Message::NeighbourReply { accepted: true }, at(0));
    make_active(&mut m, 2, at(0));
    make_active(&mut m, 3, at(0));
    drain(&mut m);
    m.handle_disconnected(seed.id, LinkEnd::Failed, at(1));
    assert!(!drain(&mut m).contains(&dial_seed(seed)));
}

#[test]
fn a_peer_that_replaced_us_is_left_alone_for_a_while() {
    // Two lonely nodes asking one full node in turn would each evict the other from it, a round
    // trip apart, for as long as neither finds anyone else.
    let mut m = node(1, vec![]);
    make_active(&mut m, 2, at(0));
    m.handle_disconnected(peer(2).id, LinkEnd::PeerReplaced, at(1));
    let actions = drain(&mut m);
    assert!(!actions.contains(&dial(peer(2))), "{actions:?}");
    let refill = actions
        .iter()
        .find_map(|a| match a {
            Action::SetTimer { at, timer: timer @ Timer::Refill { .. } } => Some((*at, *timer)),
            _ => None,
        })
        .expect("a refill once the wait is over");
    assert!(refill.0 >= at(1) + Config::default().neighbour_refusal_backoff.mul_f64(0.75));
    m.handle_timer(refill.1, refill.0);
    assert!(drain_no_timers(&mut m).contains(&dial(peer(2))));
}

/// Makes `p` an active peer of `m`, then declares it down (its link failed): a down entry of the
/// passive view, kept for healing.
fn lose(m: &mut Membership<ChaCha8Rng>, p: u8, now: Instant) {
    make_active(m, p, now);
    m.handle_disconnected(peer(p).id, LinkEnd::Failed, now);
    drain(m);
}

/// The id expected by the dial of `addr` among `m`'s next actions, if it dials `addr`.
fn dial_of(m: &mut Membership<ChaCha8Rng>, addr: SocketAddr) -> Option<Option<NodeId>> {
    drain_no_timers(m).into_iter().find_map(|a| match a {
        Action::Dial { addr: a, node } if a == addr => Some(node),
        _ => None,
    })
}

/// A node with one slot, a peer (3) lost at an address and another (2) active.
fn lost_peer_3() -> Membership<ChaCha8Rng> {
    let mut m = tiny(1);
    lose(&mut m, 3, at(0));
    make_active(&mut m, 2, at(1));
    drain(&mut m);
    m
}

/// Heal rounds from `now` on until one dials `addr`; returns the dial's time and the id it expects.
fn heal_until_dial(m: &mut Membership<ChaCha8Rng>, addr: SocketAddr, mut now: u64) -> (u64, Option<NodeId>) {
    for _ in 0..20 {
        now += 15_000;
        m.handle_timer(Timer::Heal, at(now));
        if let Some(node) = dial_of(m, addr) {
            return (now, node);
        }
    }
    panic!("no heal round dialed {addr}");
}

#[test]
fn a_peer_back_under_a_new_id_takes_its_old_entrys_place_and_is_asked_at_once() {
    // A full view (one slot), and a peer lost at an address: healing dials it now and then.
    let mut m = lost_peer_3();
    let (now, expected) = heal_until_dial(&mut m, peer(3).addr, 1);
    assert_eq!(expected, Some(peer(3).id), "the address is dialed for the node we knew there");
    // The node there restarted with a new key pair: it proves another id, and the dial fails.
    let reborn = PeerInfo::new(NodeId::from_bytes([33; 32]), peer(3).addr);
    m.handle_dial_unexpected_peer(reborn.addr, peer(3).id, reborn.id, at(now + 5));
    let actions = drain_no_timers(&mut m);
    assert!(actions.contains(&dial(reborn)), "dialed again for the node there now: {actions:?}");
    // It answers as itself: it was a peer we lost, so healing asks it to be a neighbour.
    m.handle_connected(reborn, Some(reborn.addr), at(now + 10));
    let actions = drain_no_timers(&mut m);
    assert!(
        actions
            .contains(&Action::Send { to: reborn.id, message: Message::Neighbour { high_priority: false } }),
        "{actions:?}"
    );
    assert!(m.passive.get(&peer(3).id).is_none(), "the old id is gone from the view");
}

#[test]
fn a_seed_pinned_by_id_is_not_replaced_by_whoever_answers_there() {
    let seed = Seed { addr: peer(2).addr, node: Some(peer(2).id) };
    let mut m =
        Membership::new(peer(1), [seed], Config::default(), ChaCha8Rng::seed_from_u64(1), t0()).unwrap();
    assert!(drain_no_timers(&mut m).contains(&dial(peer(2))));
    let other = NodeId::from_bytes([22; 32]);
    m.handle_dial_unexpected_peer(peer(2).addr, peer(2).id, other, at(0));
    let actions = drain_no_timers(&mut m);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Dial { node: Some(id), .. } if *id == other)),
        "the user named the seed's id: {actions:?}"
    );
    assert!(m.passive.get(&other).is_none());
    // Its back-off grew as for any failed dial: no redial at once.
    assert!(!actions.contains(&dial(peer(2))), "{actions:?}");
}

#[test]
fn an_address_that_answers_every_dial_with_a_fresh_id_is_dropped_like_a_dead_one() {
    let mut m = lost_peer_3();
    let (mut now, mut expected) = heal_until_dial(&mut m, peer(3).addr, 1);
    let mut dials = 1;
    for i in 0..=Config::default().max_dial_failures {
        let fresh = NodeId::from_bytes([100 + i as u8; 32]);
        m.handle_dial_unexpected_peer(peer(3).addr, expected.expect("dialed by id"), fresh, at(now));
        match dial_of(&mut m, peer(3).addr) {
            Some(node) => {
                assert_eq!(node, Some(fresh));
                expected = node;
                dials += 1;
            }
            None => break,
        }
        now += 10;
    }
    assert!(
        dials <= Config::default().max_dial_failures,
        "{dials} dials for one address that never proves the id it was dialed for"
    );
    assert!(!m.passive.iter().any(|e| e.info.addr == peer(3).addr), "the address is dropped");
    // Nothing dials it again.
    for round in 1..=8 {
        m.handle_timer(Timer::Heal, at(now + round * 15_000));
        let actions = drain_no_timers(&mut m);
        assert!(!actions.iter().any(|a| matches!(a, Action::Dial { addr, .. } if *addr == peer(3).addr)));
    }
}
