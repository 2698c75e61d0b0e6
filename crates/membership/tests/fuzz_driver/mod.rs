//! The body of the `membership_handler` fuzz target (`fuzz/fuzz_targets/membership_handler.rs`), shared
//! with the regression test `tests/fuzz_regressions.rs`, which replays the saved inputs through it.
//!
//! The input is a script for one [`Membership`] core (node 0) driven the way the tokio driver drives it,
//! with injected time and a seeded rng: a model of the transport keeps the open connections and the
//! pending dials, and each step is one event a real transport could report — an inbound connection, a
//! pending dial connecting (possibly to another node than expected) or failing, a connection closing for
//! any reason, a timer the core set firing (or a stale one), time passing, a query, a graceful leave —
//! or a membership message from a peer. Messages are protobuf bodies with adversarial fields (bad ids
//! and addresses, huge TTLs, long lists), raw frame bytes through [`FrameCodec`], or plausible answers to
//! what the core last sent that peer (pong, neighbour reply, exchange response, query response), and
//! go through [`dotray_membership::wire`] exactly as the driver does: a body that does not validate
//! becomes `handle_protocol_violation`. After every step all actions are drained and checked:
//!
//! * no panic;
//! * the active view holds at most `active_view_capacity` peers, the passive view at most
//!   `passive_view_capacity`, and open connections at most `max_connections()`;
//! * `NeighbourUp` / `NeighbourDown` alternate per peer, only connected peers are announced up, and the
//!   announced set equals `active_peers()`; this node is never its own neighbour;
//! * every message the core sends passes the wire layer (encode, then validate and decode, reads back
//!   as the same body) and fits in a default-size frame.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use dotray_codec::proto::{self, Body};
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, FrameCodec, NodeId, encode_frame};
use dotray_membership::core::{Action, Config, Event, LinkEnd, Membership, Message, PeerInfo, Timer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::codec::Decoder;

/// Most steps run for one input, so a long input cannot make one execution slow.
const MAX_STEPS: usize = 2_000;
/// Most timers remembered for firing later (the oldest are dropped beyond it).
const MAX_TIMERS: usize = 256;

/// Reads the script; every read past the end gives zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }

    /// Mostly small numbers (so they match what the core uses), sometimes any.
    fn small_u64(&mut self) -> u64 {
        match self.u8() {
            b @ 0..=247 => u64::from(b % 8),
            _ => self.u64(),
        }
    }

    fn small_u32(&mut self) -> u32 {
        match self.u8() {
            b @ 0..=247 => u32::from(b % 16),
            _ => u32::MAX - u32::from(self.u8()),
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// Node `i` of the pool; node 0 is the core under test.
fn id(i: u8) -> NodeId {
    NodeId::from_bytes([i; 32])
}

/// Address `i` of the pool: mostly distinct usable addresses, a few unusable or odd ones.
fn addr(i: u8) -> SocketAddr {
    match i % 12 {
        9 => "0.0.0.0:2000".parse().expect("valid"),
        10 => "10.0.0.9:0".parse().expect("valid"),
        11 => "[::1]:2001".parse().expect("valid"),
        n => SocketAddr::from(([10, 0, 0, n], 2000)),
    }
}

fn peer(input: &mut Input<'_>) -> PeerInfo {
    let b = input.u8();
    // Usually a node at its own address; sometimes at another node's (a restart, a forged record).
    let a = if b & 0x80 == 0 { b & 7 } else { input.u8() };
    PeerInfo::new(id(b & 7), addr(a))
}

fn record(input: &mut Input<'_>) -> proto::PeerRecord {
    let b = input.u8();
    let node_id = match b >> 6 {
        0 => vec![b & 7; 5].into(),
        _ => id(b & 7).to_bytes(),
    };
    let addr = match (b >> 3) & 7 {
        0 => "not an address".to_owned(),
        1 => String::new(),
        n => addr(n.wrapping_add(input.u8())).to_string(),
    };
    proto::PeerRecord { node_id, addr }
}

fn records(input: &mut Input<'_>) -> Vec<proto::PeerRecord> {
    let n = match input.u8() {
        255 => 257, // one more than the wire allows
        b => usize::from(b % 20),
    };
    (0..n).map(|_| record(input)).collect()
}

/// A membership body with adversarial fields.
fn body(input: &mut Input<'_>) -> Body {
    match input.u8() % 10 {
        0 => Body::Join(proto::Join {}),
        1 => {
            let node = input.bool().then(|| record(input));
            Body::ForwardJoin(proto::ForwardJoin { node, ttl: input.small_u32() })
        }
        2 => Body::Neighbour(proto::Neighbour { high_priority: input.bool() }),
        3 => Body::NeighbourReply(proto::NeighbourReply { accepted: input.bool() }),
        4 => Body::PeerExchangeRequest(proto::PeerExchangeRequest {
            origin: input.bool().then(|| record(input)),
            ttl: input.small_u32(),
            peers: records(input),
            exchange_id: input.small_u64(),
        }),
        5 => Body::PeerExchangeResponse(proto::PeerExchangeResponse {
            peers: records(input),
            exchange_id: input.small_u64(),
        }),
        6 => Body::Ping(proto::Ping { nonce: input.small_u64(), sent_at_micros: input.u64() }),
        7 => Body::Pong(proto::Pong { nonce: input.small_u64(), sent_at_micros: input.u64() }),
        8 => Body::NodeQueryRequest(proto::NodeQueryRequest {
            request_id: input.small_u64(),
            max: input.small_u32(),
        }),
        _ => {
            let n = usize::from(input.u8() % 12);
            let nodes = (0..n)
                .map(|_| proto::NodeInfo {
                    node: input.bool().then(|| record(input)),
                    state: i32::from(input.u8() % 6) - 1,
                    rtt_micros: u32::from(input.u16()),
                    last_seen_ms_ago: input.small_u64(),
                    direction: i32::from(input.u8() % 5) - 1,
                })
                .collect();
            Body::NodeQueryResponse(proto::NodeQueryResponse { request_id: input.small_u64(), nodes })
        }
    }
}

/// A plausible answer to `sent` (what the core last sent that peer), or `None`.
fn answer(sent: &Message, input: &mut Input<'_>) -> Option<Message> {
    Some(match sent {
        Message::Ping { nonce, sent_at_micros } => {
            Message::Pong { nonce: *nonce, sent_at_micros: *sent_at_micros }
        }
        Message::Neighbour { .. } => Message::NeighbourReply { accepted: input.bool() },
        Message::PeerExchangeRequest { exchange_id, .. } => {
            let n = usize::from(input.u8() % 6);
            let peers = (0..n).map(|_| peer(input)).collect();
            Message::PeerExchangeResponse { peers, exchange_id: *exchange_id }
        }
        Message::NodeQueryRequest { request_id, .. } => {
            Message::NodeQueryResponse { request_id: *request_id, nodes: Vec::new() }
        }
        Message::Join => Message::ForwardJoin { node: peer(input), ttl: input.small_u32() },
        _ => return None,
    })
}

fn disconnect_reason(b: u8) -> LinkEnd {
    match b % 6 {
        0 => LinkEnd::Local,
        1 => LinkEnd::PeerLeft,
        2 => LinkEnd::PeerReplaced,
        3 => LinkEnd::PeerClosed,
        4 => LinkEnd::PeerBusy,
        _ => LinkEnd::Failed,
    }
}

fn config(b: u8) -> Config {
    match b % 3 {
        0 => Config::default(),
        // Tiny views: every bound is reached at once.
        1 => Config {
            active_view_capacity: 1,
            passive_view_capacity: 2,
            max_transient_connections: 1,
            shuffle_active_count: 1,
            shuffle_passive_count: 1,
            max_exchange_peers: 3,
            max_query_nodes: 2,
            max_dial_failures: 1,
            ..Config::default()
        },
        _ => Config {
            active_view_capacity: 3,
            passive_view_capacity: 5,
            max_transient_connections: 2,
            active_random_walk_length: 2,
            passive_random_walk_length: 1,
            ..Config::default()
        },
    }
}

/// The transport as the core sees it, and what the checks need to remember.
struct Harness {
    core: Membership<ChaCha8Rng>,
    config: Config,
    now: Instant,
    /// Open connections (the core may have asked to close some: see `closing`).
    conns: BTreeSet<NodeId>,
    /// Connections the core asked to close, not yet reported closed.
    closing: BTreeSet<NodeId>,
    /// Dials under way, in the order asked (the same address may be dialed again after expiry).
    dials: Vec<SocketAddr>,
    timers: VecDeque<(Instant, Timer)>,
    /// Peers announced with `NeighbourUp` and not yet `NeighbourDown`.
    up: BTreeSet<NodeId>,
    /// The last few messages sent to each peer, to answer them.
    sent: BTreeMap<NodeId, VecDeque<Message>>,
}

impl Harness {
    fn pick<T: Copy>(items: impl IntoIterator<Item = T>, b: u8) -> Option<T> {
        let items: Vec<T> = items.into_iter().collect();
        (!items.is_empty()).then(|| items[usize::from(b) % items.len()])
    }

    /// Pulls every action and checks it and the core's state (see the module docs).
    fn drain(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Dial { addr, .. } => self.dials.push(addr),
                Action::Send { to, message } => {
                    let body = Body::from(message.clone());
                    let frame = encode_frame(&proto::Envelope::from(body.clone()), DEFAULT_MAX_FRAME_LEN);
                    assert!(frame.is_ok(), "{message:?} does not fit a frame");
                    // The wire rounds durations (to whole ms and µs, 0 ms sent as 1): compare on the wire.
                    let decoded = Message::try_from(body.clone()).expect("what the core sends validates");
                    assert_eq!(Body::from(decoded), body, "the peer reads something else than {message:?}");
                    let queue = self.sent.entry(to).or_default();
                    if queue.len() >= 8 {
                        queue.pop_front();
                    }
                    queue.push_back(message);
                }
                Action::Disconnect { peer, .. } => {
                    if self.conns.contains(&peer) {
                        self.closing.insert(peer);
                    }
                }
                Action::SetTimer { at, timer } => {
                    assert!(at >= self.now, "timer {timer:?} set in the past");
                    if self.timers.len() >= MAX_TIMERS {
                        self.timers.pop_front();
                    }
                    self.timers.push_back((at, timer));
                }
                Action::Event(Event::NeighbourUp(p)) => {
                    assert_ne!(p.id, id(0), "this node became its own neighbour");
                    assert!(self.conns.contains(&p.id), "{p:?} announced up without a connection");
                    assert!(self.up.insert(p.id), "{p:?} announced up twice");
                }
                Action::Event(Event::NeighbourDown(peer)) => {
                    assert!(self.up.remove(&peer), "{peer:?} announced down but was not up");
                }
                Action::Event(_) => {}
            }
        }
        let config = &self.config;
        assert!(self.core.active_len() <= config.active_view_capacity, "active view over capacity");
        assert!(self.core.passive_len() <= config.passive_view_capacity, "passive view over capacity");
        assert!(self.core.connection_count() <= config.max_connections(), "too many connections");
        let active: BTreeSet<NodeId> = self.core.active_peers().map(|p| p.id).collect();
        assert_eq!(active, self.up, "NeighbourUp/Down events disagree with the active view");
    }

    /// A message from `from`, through the wire layer as the driver does it.
    fn deliver(&mut self, from: NodeId, body: Body) {
        match Message::try_from(body) {
            Ok(message) => self.core.handle_message(from, message, self.now),
            Err(_) => self.core.handle_protocol_violation(from, self.now),
        }
    }

    fn close(&mut self, peer: NodeId, reason: LinkEnd) {
        self.conns.remove(&peer);
        self.closing.remove(&peer);
        self.core.handle_disconnected(peer, reason, self.now);
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % 13 {
            0 => self.now += Duration::from_millis(u64::from(input.u16()) * 4),
            1 => {
                let p = peer(input);
                if self.conns.contains(&p.id) {
                    // The transport reports the replaced connection's close first.
                    self.close(p.id, LinkEnd::PeerReplaced);
                }
                self.conns.insert(p.id);
                self.core.handle_connected(p, None, self.now);
            }
            2 => {
                let b = input.u8();
                if self.dials.is_empty() {
                    return;
                }
                let dialed = self.dials.remove(usize::from(b) % self.dials.len());
                let mut p = peer(input);
                if b & 0x80 == 0 {
                    p.addr = dialed; // usually the node we meant to reach
                }
                if self.conns.contains(&p.id) {
                    // One connection per pair: the dial is refused.
                    self.core.handle_dial_failed(dialed, self.now);
                } else {
                    self.conns.insert(p.id);
                    self.core.handle_connected(p, Some(dialed), self.now);
                }
            }
            3 => {
                let b = input.u8();
                if !self.dials.is_empty() {
                    let dialed = self.dials.remove(usize::from(b) % self.dials.len());
                    self.core.handle_dial_failed(dialed, self.now);
                }
            }
            4 => {
                let b = input.u8();
                let reason = disconnect_reason(input.u8());
                if let Some(p) = Self::pick(self.conns.iter().copied(), b) {
                    self.close(p, reason);
                }
            }
            5 => {
                // Every connection the core closed is reported closed.
                for p in std::mem::take(&mut self.closing) {
                    self.close(p, LinkEnd::Local);
                }
            }
            6 | 7 => {
                let b = input.u8();
                let from =
                    if b & 0x80 == 0 { Self::pick(self.conns.iter().copied(), b) } else { Some(id(b & 7)) };
                let body = body(input);
                if let Some(from) = from {
                    self.deliver(from, body);
                }
            }
            8 => {
                let b = input.u8();
                let len = usize::from(input.u8());
                let mut frame = BytesMut::with_capacity(len + 4);
                frame.put_u32(len as u32);
                frame.extend_from_slice(input.bytes(len));
                let Some(from) = Self::pick(self.conns.iter().copied(), b) else { return };
                match FrameCodec::new().decode(&mut frame) {
                    Ok(Some(envelope)) => match envelope.body {
                        Some(body) if body_is_membership(&body) => self.deliver(from, body),
                        _ => {}
                    },
                    Ok(None) | Err(_) => self.core.handle_protocol_violation(from, self.now),
                }
            }
            9 => {
                let b = input.u8();
                let Some(from) = Self::pick(self.conns.iter().copied(), b) else { return };
                let last = self.sent.get_mut(&from).and_then(|q| q.pop_back());
                if let Some(reply) = last.and_then(|sent| answer(&sent, input)) {
                    self.core.handle_message(from, reply, self.now);
                }
            }
            10 => {
                let b = input.u8();
                if b == 255 {
                    // A stale or forged timer.
                    let generation = input.small_u64();
                    self.core.handle_timer(Timer::Refill { generation }, self.now);
                } else if !self.timers.is_empty() {
                    // A timer fires at its time (or later): time moves on to it.
                    let (at, timer) =
                        self.timers.remove(usize::from(b) % self.timers.len()).expect("in range");
                    self.now = self.now.max(at);
                    self.core.handle_timer(timer, self.now);
                }
            }
            11 => {
                let target = id(input.u8() & 7);
                let _ = self.core.query_node(target, self.now);
            }
            _ => {
                if input.u8() == 0 {
                    self.core.leave(self.now);
                }
            }
        }
    }
}

fn body_is_membership(body: &Body) -> bool {
    dotray_codec::proto::BodyKind::of(body).layer() == dotray_codec::proto::Layer::Membership
}

/// Runs one input (see the module docs).
pub fn membership_handler(data: &[u8]) {
    let mut input = Input(data);
    let setup = input.u8();
    let config = config(setup);
    let seeds: Vec<SocketAddr> = (0..(setup >> 2) % 3).map(|_| addr(input.u8())).collect();
    let me = PeerInfo::new(id(0), addr(0));
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(u64::from(input.u8()));
    let core = Membership::new(me, seeds.into_iter().map(Into::into), config.clone(), rng, now)
        .expect("valid config");
    let mut harness = Harness {
        core,
        config,
        now,
        conns: BTreeSet::new(),
        closing: BTreeSet::new(),
        dials: Vec::new(),
        timers: VecDeque::new(),
        up: BTreeSet::new(),
        sent: BTreeMap::new(),
    };
    harness.drain();
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        harness.step(&mut input);
        harness.drain();
    }
}
