//! The body of the `router_handler` fuzz target (`fuzz/fuzz_targets/router_handler.rs`), shared with
//! the regression test `tests/fuzz_regressions.rs`, which replays the saved inputs through it.
//!
//! The input is a script for one [`Router`] core (node 0) driven the way the tokio driver drives it,
//! with injected time and a seeded rng: neighbours come and go, time passes, timers the core set fire
//! (or stale ones), the node broadcasts, a neighbour is congested or gets a new RTT, and neighbours send
//! messages. Messages reach the core only through [`dotray_router::wire`], as in the driver, with one
//! [`Inbound`] table per connection: well-formed core messages encoded by the neighbour's own
//! [`Outbound`] (stream declarations included), adversarial protobuf bodies (undeclared or rebound
//! references, bad node ids, zero and huge sequence numbers, inverted ranges, overlong lists), raw frame
//! bytes through [`FrameCodec`], or answers to the core's last `Graft`. A wire error or an
//! `Action::Violation` closes the connection: the neighbour goes down, as in the driver.
//!
//! Every payload in the script is the "true" payload of its message id ([`payload`]), so what the core
//! hands out can be checked. A `Data` reaches the core after the manifest that proves it (signed by
//! its origin with [`InsecureSigner`], which the core under test uses too), unless the script says
//! to leave it out; scripts also send manifests of their own (good or bad signatures, true or false
//! hashes, any position and length), and *group runs*: within one batch, a manifest with group
//! digests and payloads of its group back to back (all, some, one forged, or interleaved), which the
//! core may hold to prove a group at a time. After every step all actions are drained and checked:
//!
//! * no panic;
//! * exactly once, in order: per stream, each `Deliver` is the watermark plus one and each `Gap` starts
//!   there (a stream the core forgot may start again: documented; and a stream's first delivery or
//!   gap may come from anywhere, since until then its watermark is a claim that the first proven
//!   payload can move, see `Router::reanchor`, even while that payload waits for the rest of its
//!   group); once a stream started, the core's watermark ends where the deliveries and gaps say;
//!   its own stream is never delivered; payloads are the true ones;
//! * bounded: at most `max_streams` streams tracked; a `Graft` is answered with at most
//!   `max_serve_per_request` payloads (a `Sync` with at most that many per mark); a payload served
//!   from retention is one retained less than `retention_time` ago (at the last sweep), or one
//!   received and not yet delivered (the reorder buffer); and after every step the retention cache
//!   and the reorder buffers are within their bounds in bytes and payloads (which payloads go first
//!   when they are full is the fair share's business, tested on its own);
//! * payloads are only sent where they belong: the forwarded message of a `Data` step (never back to
//!   its sender), a payload of a group run in that or any later step that is not a repair (never
//!   back to its sender), our own messages once the core signed them (at a broadcast or a seal
//!   timer), or repairs in a `Graft`/`Sync` step;
//! * every message the core sends survives the wire layer (encode, declare, validate, decode) unchanged;
//! * with a history (`Config::history`, half the configurations): every `Archive` is of a payload
//!   just delivered, with a manifest that proves it; at most one `Recall` per neighbour is under way,
//!   within the request's budget; and the answer the script makes up from what was archived (runs
//!   overlapping, beyond the range, or damaged) sends only true payloads of the range asked, to the
//!   neighbour that asked, at most as many as the recall allowed.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use dotray_codec::proto::{self, Body, BodyKind, Layer};
use dotray_codec::{FrameCodec, NodeId};
use dotray_router::core::{
    Action, Beacon, Config, Event, Message, RecalledRun, Router, SeqRange, StreamId, Timer, Watermark,
};
use dotray_router::proof::{InsecureSigner, Manifest, Signer, beacon_message, payload_hash};
use dotray_router::wire::{Inbound, OriginAddr, Outbound};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::codec::Decoder;

/// Most steps run for one input.
const MAX_STEPS: usize = 2_000;
/// Most timers remembered for firing later.
const MAX_TIMERS: usize = 256;
/// The epoch of node 0's own stream.
const OWN_EPOCH: u64 = 7;

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

    /// A sequence number: mostly small, sometimes 0, near `u64::MAX`, or any.
    fn seq(&mut self) -> u64 {
        match self.u8() {
            b @ 0..=199 => u64::from(b % 24),
            b @ 200..=249 => u64::MAX - u64::from(b % 4),
            _ => self.u64(),
        }
    }

    fn hops(&mut self) -> u32 {
        match self.u8() {
            255 => u32::MAX,
            b => u32::from(b % 16),
        }
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fn id(i: u8) -> NodeId {
    NodeId::from_bytes([i; 32])
}

/// Stream `i` of the pool: 8 origins (0 is this node) times two epochs (`OWN_EPOCH` and 1).
fn stream(i: u8) -> StreamId {
    StreamId { origin: id(i & 7), epoch: if i & 8 == 0 { OWN_EPOCH } else { 1 } }
}

/// The true payload of a message: its id in a few bytes, of a length that varies with `seq`.
pub fn payload(stream: StreamId, seq: u64) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(&stream.origin.as_bytes()[..1]);
    b.put_u64(stream.epoch);
    b.put_u64(seq);
    b.put_bytes(0xab, (seq % 5) as usize * 16);
    b.freeze()
}

fn ranges(input: &mut Input<'_>) -> Vec<SeqRange> {
    let n = usize::from(input.u8() % 6);
    (0..n).map(|_| SeqRange { stream: stream(input.u8()), first: input.seq(), last: input.seq() }).collect()
}

fn marks(input: &mut Input<'_>) -> Vec<Watermark> {
    let n = usize::from(input.u8() % 6);
    (0..n).map(|_| Watermark { stream: stream(input.u8()), seq: input.seq() }).collect()
}

/// The origin's manifest of `stream` for `first..` with the true payloads of `count` messages.
fn true_manifest(stream: StreamId, first: u64, count: u64) -> Manifest {
    let hashes: Vec<u8> =
        (first..first + count).flat_map(|seq| payload_hash(&payload(stream, seq))).collect();
    Manifest::sign(&*InsecureSigner::new(stream.origin), stream, first, hashes.into())
}

/// A manifest from the script: any stream, position and length; true or false hashes; a good or a
/// bad signature.
fn manifest(input: &mut Input<'_>) -> Message {
    let stream = stream(input.u8());
    let count = u64::from(input.u8() % 6) + 1;
    let first = input.seq().clamp(1, dotray_router::core::MAX_SEQ - count);
    let mut m = true_manifest(stream, first, count);
    let b = input.u8();
    if b & 1 == 1 {
        let mut hashes = m.hashes.to_vec();
        hashes[0] ^= 1;
        m = Manifest::sign(&*InsecureSigner::new(stream.origin), stream, first, hashes.into());
    }
    if b & 2 == 2 {
        m.signature[0] ^= 1;
    }
    Message::Manifest(Arc::new(m))
}

/// A beacon round of a root among the fuzz ids: signed by it, or (one in four) by another node.
fn beacon(input: &mut Input<'_>) -> Message {
    let b = input.u8();
    let root = stream(b & 7);
    let round = u64::from(input.u8() % 8) + 1;
    let signer = if b & 0x30 == 0x30 { id((b & 7) + 1) } else { root.origin };
    let publisher = b & 0x40 != 0;
    let signature = InsecureSigner::new(signer).sign(&beacon_message(root, round, publisher));
    let (hops, tree) = (u32::from(input.u8() % 12) + 1, input.bool());
    Message::Beacon(Beacon { root, round, hops, tree, publisher, signature })
}

/// A core message with arbitrary (not necessarily valid) values.
fn message(input: &mut Input<'_>) -> Message {
    match input.u8() % 8 {
        7 => beacon(input),
        6 => manifest(input),
        0 => {
            let stream = stream(input.u8());
            let seq = input.seq();
            Message::Data { stream, seq, hops: input.hops(), payload: payload(stream, seq) }
        }
        1 => Message::IHave { ranges: ranges(input), hops: input.hops() },
        2 => Message::Graft { want: ranges(input), eager: input.bool() },
        3 => Message::Prune,
        4 => Message::Ack { marks: marks(input) },
        _ => Message::Sync { marks: marks(input) },
    }
}

fn wire_range(input: &mut Input<'_>) -> proto::SeqRange {
    proto::SeqRange { stream_ref: u32::from(input.u8() % 10), first: input.seq(), last: input.seq() }
}

fn wire_list_len(input: &mut Input<'_>) -> usize {
    match input.u8() {
        255 => dotray_router::wire::MAX_LIST_LEN + 1,
        b => usize::from(b % 6),
    }
}

/// A broadcast-layer protobuf body with adversarial fields.
fn body(input: &mut Input<'_>) -> Body {
    match input.u8() % 8 {
        7 => {
            let b = input.u8();
            Body::Beacon(proto::Beacon {
                origin: if b & 1 == 0 { id(b & 7).to_bytes() } else { vec![b; usize::from(b % 40)].into() },
                epoch: input.u64(),
                round: u64::from(input.u8() % 4),
                hops: u32::from(input.u8() % 4),
                tree: input.bool(),
                signature: vec![b; if b & 2 == 0 { 64 } else { usize::from(b % 70) }].into(),
                publisher: b & 4 != 0,
            })
        }
        0 => {
            let b = input.u8();
            let origin =
                if b & 0x80 == 0 { id(b & 7).to_bytes() } else { vec![b; usize::from(b % 20)].into() };
            let epoch = match input.u8() % 3 {
                0 => OWN_EPOCH,
                1 => 1,
                _ => input.u64(),
            };
            let origin_addr = if input.u8() == 255 { "x".repeat(200) } else { "10.0.0.1:2000".to_owned() };
            Body::StreamDecl(proto::StreamDecl {
                stream_ref: u32::from(b % 10),
                origin,
                epoch,
                origin_addr,
                origin_signature: Bytes::new(),
            })
        }
        1 => Body::Data(proto::Data {
            stream_ref: u32::from(input.u8() % 10),
            seq: input.seq(),
            hops: input.hops(),
            payload: Bytes::new(), // replaced by the true payload once the stream is known
        }),
        2 => {
            let n = wire_list_len(input);
            Body::Ihave(proto::IHave {
                ranges: (0..n).map(|_| wire_range(input)).collect(),
                hops: input.hops(),
            })
        }
        3 => {
            let n = wire_list_len(input);
            Body::Graft(proto::Graft {
                want: (0..n).map(|_| wire_range(input)).collect(),
                eager: input.bool(),
            })
        }
        4 => Body::Prune(proto::Prune {}),
        5 => {
            let n = wire_list_len(input);
            let marks = (0..n)
                .map(|_| proto::Watermark { stream_ref: u32::from(input.u8() % 10), seq: input.seq() })
                .collect();
            Body::Ack(proto::Ack { marks })
        }
        _ => {
            let n = wire_list_len(input);
            let marks = (0..n)
                .map(|_| proto::Watermark { stream_ref: u32::from(input.u8() % 10), seq: input.seq() })
                .collect();
            Body::Sync(proto::Sync { marks })
        }
    }
}

fn config(b: u8) -> Config {
    let config = small_or_default(b);
    Config { history: b % 4 >= 2, ..config }
}

fn small_or_default(b: u8) -> Config {
    match b % 2 {
        0 => Config::default(),
        // Small bounds and short times: every limit is reached within a short script.
        _ => Config {
            retention_time: Duration::from_secs(2),
            stream_idle_timeout: Duration::from_secs(4),
            retention_max_messages: 8,
            retention_max_bytes: 200,
            reorder_window: 16,
            reorder_max_total: 6,
            max_streams: 4,
            max_serve_per_request: 4,
            max_list_len: 3,
            ack_every: 3,
            backfill_new_stream: 4,
            max_announcers: 2,
            new_stream_burst: 3,
            new_streams_per_sec: 1,
            total_new_stream_burst: 5,
            total_new_streams_per_sec: 2,
            max_forgotten_streams: 22,
            serve_burst_bytes: 300,
            serve_bytes_per_sec: 100,
            reorder_max_stream_bytes: 120,
            reorder_max_bytes: 200,
            ..Config::default()
        },
    }
}

fn addr_of(stream: &StreamId) -> OriginAddr {
    OriginAddr { addr: format!("10.0.0.{}:2000", stream.origin.as_bytes()[0]), signature: Bytes::new() }
}

/// What kind of step ran, for the checks on the `Data` it caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// A new payload from `from` (or from this node: `None`) may be forwarded.
    Forward { from: Option<NodeId>, stream: StreamId, seq: u64 },
    /// Repairs: at most `budget` payloads from retention or the reorder buffer.
    Serve { budget: u64 },
    /// Our own messages `first..=last` were signed and may be sent.
    Seal { first: u64, last: u64 },
    /// Payloads read back from the history for `to`'s recall: of `stream`, within `first..=last`,
    /// at most `max`.
    Recall { to: NodeId, stream: StreamId, first: u64, last: u64, max: u64 },
    /// Nothing may send a payload.
    Other,
    /// The step drained the actions it caused itself.
    Drained,
}

/// The core's state before a step, to check the step's deliveries against.
struct Snapshot {
    /// Watermark of every stream of the pool it tracks.
    marks: HashMap<StreamId, u64>,
    /// Streams it had forgotten so far: when this moves, a stream may restart from another watermark.
    evicted: u64,
}

/// One neighbour link: the neighbour's own sending table and the core's receiving table.
struct Link {
    theirs: Outbound,
    ours: Inbound,
}

struct Harness {
    core: Router<ChaCha8Rng>,
    config: Config,
    now: Instant,
    links: BTreeMap<NodeId, Link>,
    /// The core's sending side, to check what it sends survives the wire (one receiving table per peer).
    outbound: Outbound,
    receivers: HashMap<NodeId, Inbound>,
    timers: VecDeque<(Instant, Timer)>,
    /// The latest `Graft` the core sent each peer.
    grafts: HashMap<NodeId, Vec<SeqRange>>,
    /// Replica of the core's retention log: (stream, seq, when), oldest first.
    retention: VecDeque<(StreamId, u64, Instant)>,
    retained: HashMap<(StreamId, u64), usize>,
    /// Payloads handed to the core (they may sit in its reorder buffer until delivered).
    received: HashSet<(StreamId, u64)>,
    /// Payloads handed in by a group run, and who sent each: the core may hold them with their group
    /// and forward them at any later step (the rest of the group, a timer, another message).
    grouped: HashMap<(StreamId, u64), HashSet<NodeId>>,
    /// Peers that broke the protocol, to close after the current drain.
    violators: Vec<NodeId>,
    /// Whether a `Data` from a neighbour goes after its manifest (the script can turn it off).
    prove: bool,
    /// Our own messages broadcast, and how many of them were signed (and so retained and sent).
    broadcasts: u64,
    signed: u64,
    /// Streams that delivered or reported a gap since the core last took them up.
    started: HashSet<StreamId>,
    /// With a history: what the core archived, and the recalls it asked for and are not answered.
    archive: HashMap<(StreamId, u64), Arc<Manifest>>,
    recalls: HashMap<NodeId, (StreamId, u64, u64, u64)>,
}

impl Harness {
    fn pick<T: Copy>(items: impl IntoIterator<Item = T>, b: u8) -> Option<T> {
        let items: Vec<T> = items.into_iter().collect();
        (!items.is_empty()).then(|| items[usize::from(b) % items.len()])
    }

    fn neighbour_up(&mut self, peer: NodeId) {
        if peer == id(0) {
            return; // the transport never connects a node to itself
        }
        if self.links.contains_key(&peer) {
            self.neighbour_down(peer);
        }
        self.links.insert(peer, Link { theirs: Outbound::new(), ours: Inbound::new() });
        self.receivers.insert(peer, Inbound::new());
        self.outbound.peer_down(&peer);
        self.core.handle_neighbour_up(peer, self.now);
    }

    fn neighbour_down(&mut self, peer: NodeId) {
        if self.links.remove(&peer).is_some() {
            self.receivers.remove(&peer);
            self.grafts.remove(&peer);
            self.recalls.remove(&peer);
            self.core.handle_neighbour_down(peer, self.now);
        }
    }

    /// A message to the core from `from`, through its connection's receiving table.
    fn deliver_body(&mut self, from: NodeId, body: &Body) -> Cause {
        let Some(link) = self.links.get_mut(&from) else { return Cause::Other };
        match link.ours.decode(body) {
            Ok(Some(message)) => self.handle(from, message),
            Ok(None) => Cause::Other,
            Err(_) => {
                self.violators.push(from);
                Cause::Other
            }
        }
    }

    /// Hands a decoded message to the core (with its true payload) and says what it may cause.
    fn handle(&mut self, from: NodeId, mut message: Message) -> Cause {
        let cause = match &mut message {
            Message::Data { stream, seq, payload: p, .. } => {
                *p = payload(*stream, *seq);
                self.received.insert((*stream, *seq));
                if self.prove && (1..=dotray_router::core::MAX_SEQ).contains(seq) {
                    let proof = Message::Manifest(Arc::new(true_manifest(*stream, *seq, 1)));
                    self.core.handle_message(from, proof, self.now);
                }
                Cause::Forward { from: Some(from), stream: *stream, seq: *seq }
            }
            Message::Graft { .. } => Cause::Serve { budget: self.config.max_serve_per_request },
            Message::Sync { marks } => {
                Cause::Serve { budget: self.config.max_serve_per_request * marks.len() as u64 }
            }
            _ => Cause::Other,
        };
        self.core.handle_message(from, message, self.now);
        cause
    }

    /// A core message from `from`, encoded by its own table and decoded by ours, as on a real link.
    fn send_from(&mut self, from: NodeId, message: &Message) -> Cause {
        let Some(link) = self.links.get_mut(&from) else { return Cause::Other };
        let mut decls = Vec::new();
        let body = match link.theirs.encode(id(0), message, &mut addr_of, &mut decls) {
            Ok(body) => body,
            Err(_) => return Cause::Other,
        };
        for decl in decls {
            assert_eq!(link.ours.decode(&Body::StreamDecl(decl)), Ok(None), "a declaration is refused");
        }
        self.deliver_body(from, &body)
    }

    fn retain(&mut self, stream: StreamId, seq: u64) {
        self.retention.push_back((stream, seq, self.now));
        *self.retained.entry((stream, seq)).or_default() += 1;
    }

    /// The core's expiry by age. (The core also trims its cache to its bounds, by fair share:
    /// what it serves is a subset of what this replica holds.)
    fn expire(&mut self, cutoff: Option<Instant>) {
        while let Some(&(stream, seq, at)) = self.retention.front() {
            if cutoff.is_none_or(|c| at >= c) {
                break;
            }
            self.retention.pop_front();
            if let Some(n) = self.retained.get_mut(&(stream, seq)) {
                *n -= 1;
                if *n == 0 {
                    self.retained.remove(&(stream, seq));
                }
            }
        }
    }

    /// Pulls every action, checks it (see the module docs), and closes the connections of violators.
    fn drain(&mut self, cause: Cause, before: &Snapshot) {
        let Snapshot { marks: before, evicted: evicted_before } = before;
        let mut marks: HashMap<StreamId, u64> = before.clone();
        let mut served = 0u64;
        // The last position announced with `Action::Sealed`: own payloads may leave only up to it.
        let mut sealed: Option<u64> = None;
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Send { to: recipients, message } => {
                    assert!(!recipients.is_empty(), "a send to nobody");
                    for to in recipients {
                        self.check_sent(to, &message);
                        if let Message::Data { stream, seq, payload: p, .. } = &message {
                            assert_eq!(p, &payload(*stream, *seq), "wrong payload sent for {stream:?}/{seq}");
                            // Who sent a copy the core may be forwarding now: the step's new payload,
                            // or one handed in by a group run (held until this step, or any before).
                            let mut copies: Vec<Option<NodeId>> = Vec::new();
                            if let Cause::Forward { from, stream: s, seq: q } = cause
                                && (s, q) == (*stream, *seq)
                            {
                                copies.push(from);
                            }
                            if !matches!(cause, Cause::Serve { .. } | Cause::Recall { .. })
                                && let Some(senders) = self.grouped.get(&(*stream, *seq))
                            {
                                copies.extend(senders.iter().copied().map(Some));
                            }
                            if !copies.is_empty() {
                                assert!(
                                    copies.iter().any(|f| *f != Some(to)),
                                    "a payload went back to its sender"
                                );
                                continue;
                            }
                            match cause {
                                Cause::Forward { from, stream: s, seq: q } => {
                                    assert_eq!((*stream, *seq), (s, q), "only the new payload is forwarded");
                                    assert_ne!(Some(to), from, "a payload went back to its sender");
                                }
                                Cause::Serve { budget } => {
                                    served += 1;
                                    assert!(served <= budget, "more than {budget} payloads for one request");
                                    let undelivered = before.get(stream).is_none_or(|w| *seq > *w);
                                    assert!(
                                        self.retained.contains_key(&(*stream, *seq))
                                            || (undelivered && self.received.contains(&(*stream, *seq))),
                                        "served {stream:?}/{seq}, which the retention bounds have expired"
                                    );
                                }
                                Cause::Seal { first, last } => {
                                    let own = self.core.own_stream();
                                    assert!(
                                        *stream == own && (first..=last).contains(seq),
                                        "sent {stream:?}/{seq} when {first}..={last} were signed"
                                    );
                                    assert!(
                                        sealed.is_some_and(|through| *seq <= through),
                                        "own {seq} sent before its position was announced ({sealed:?})"
                                    );
                                }
                                Cause::Recall { to: asked_by, stream: s, first, last, max } => {
                                    served += 1;
                                    assert_eq!((to, *stream), (asked_by, s), "recalled for another");
                                    assert!((first..=last).contains(seq), "recalled {seq}, not asked");
                                    assert!(served <= max, "more than {max} recalled payloads");
                                }
                                Cause::Other | Cause::Drained => {
                                    panic!("a payload sent outside forwarding and repair: {message:?}")
                                }
                            }
                        }
                        if let Message::Graft { want, .. } = &message {
                            self.grafts.insert(to, want.clone());
                        }
                    }
                }
                Action::SetTimer { at, timer } => {
                    assert!(at >= self.now, "timer {timer:?} set in the past");
                    if self.timers.len() >= MAX_TIMERS {
                        self.timers.pop_front();
                    }
                    self.timers.push_back((at, timer));
                }
                Action::Deliver(d) => {
                    let (stream, seq) = (d.id.stream, d.id.seq);
                    assert_ne!(stream, self.core.own_stream(), "own message delivered to itself");
                    assert_eq!(d.payload, payload(stream, seq), "wrong payload delivered");
                    // Until a stream's first delivery or gap its watermark is a claim the first
                    // proven payload may move (`Router::reanchor`), down as well as up.
                    if let Some(mark) = marks.get(&stream)
                        && self.started.contains(&stream)
                    {
                        assert_eq!(seq, mark + 1, "{stream:?}: delivered {seq} after {mark}");
                    }
                    self.started.insert(stream);
                    marks.insert(stream, seq);
                    self.retain(stream, seq);
                }
                Action::Event(Event::Gap { stream, first, last }) => {
                    assert!(first <= last, "empty gap");
                    if let Some(mark) = marks.get(&stream)
                        && self.started.contains(&stream)
                    {
                        assert_eq!(first, mark + 1, "{stream:?}: gap from {first} after {mark}");
                    }
                    self.started.insert(stream);
                    marks.insert(stream, last);
                }
                Action::Event(_) => {}
                Action::Violation { peer, .. } => self.violators.push(peer),
                Action::Sealed { stream, through, proof, payloads } => {
                    assert_eq!(
                        (proof.last(), proof.count()),
                        (through, payloads.len() as u64),
                        "the batch announced"
                    );
                    assert_eq!(stream, self.core.own_stream(), "a position announced for another stream");
                    match cause {
                        Cause::Seal { last, .. } => {
                            assert_eq!(through, last, "announced {through}, signed to {last}")
                        }
                        _ => panic!("a position announced outside a seal: {through}"),
                    }
                    sealed = Some(through);
                }
                Action::Archive { stream, seq, payload: p, proof } => {
                    assert!(self.config.history, "archived without a history");
                    assert_ne!(stream, self.core.own_stream(), "own message archived");
                    assert_eq!(p, payload(stream, seq), "wrong payload archived");
                    assert!(proof.proves(seq, &p), "archived with a manifest that does not prove it");
                    assert!(marks.get(&stream).is_some_and(|m| *m >= seq), "archived before delivery");
                    self.archive.insert((stream, seq), proof);
                }
                Action::Recall { to, stream, first, last, max_messages, max_bytes } => {
                    assert!(self.config.history, "a recall without a history");
                    assert!(first <= last && max_messages >= 1 && max_bytes >= 1, "an empty recall");
                    assert!(max_messages <= self.config.max_serve_per_request, "a recall over the budget");
                    let earlier = self.recalls.insert(to, (stream, first, last, max_messages));
                    assert!(earlier.is_none(), "a second recall for {to:?} before the first was answered");
                }
            }
        }
        assert!(self.core.stream_count() <= self.config.max_streams, "too many streams tracked");
        let c = &self.config;
        let (bytes, count) = self.core.retained();
        assert!(bytes <= c.retention_max_bytes && count <= c.retention_max_messages, "retention over bounds");
        let (bytes, count) = self.core.buffered();
        assert!(bytes <= c.reorder_max_bytes && count <= c.reorder_max_total, "reorder over bounds");
        let evicted = self.core.counters().streams_evicted != *evicted_before;
        let own = self.core.own_stream();
        // Until a stream starts, its first proven payload may move its watermark without a delivery
        // in the same step (the payload waits with its group).
        for (stream, mark) in marks.into_iter().filter(|(s, _)| *s != own && self.started.contains(s)) {
            match self.core.watermark(&stream) {
                Some(w) if !evicted => assert_eq!(w, mark, "{stream:?}: watermark disagrees with deliveries"),
                _ => {}
            }
        }
        // A stream the core forgot may come back as a new, provisional one (in the same step, so its
        // watermark may never have been seen missing): after an eviction nothing counts as started.
        if evicted {
            self.started.clear();
        } else {
            let core = &self.core;
            self.started.retain(|s| core.watermark(s).is_some());
        }
        for peer in std::mem::take(&mut self.violators) {
            let before = self.snapshot();
            self.neighbour_down(peer);
            self.drain(Cause::Other, &before);
        }
    }

    /// What the core sends must pass the receiving side's validation unchanged.
    fn check_sent(&mut self, to: NodeId, message: &Message) {
        let Some(receiver) = self.receivers.get_mut(&to) else { return };
        let mut decls = Vec::new();
        let body = self.outbound.encode(to, message, &mut addr_of, &mut decls).expect("encodable");
        for decl in decls {
            assert_eq!(receiver.decode(&Body::StreamDecl(decl)), Ok(None));
        }
        let decoded = receiver.decode(&body).expect("what the core sends validates").expect("a message");
        assert_eq!(&decoded, message, "changed by the wire");
    }

    /// Our own messages the core signed since the last look (its own watermark moved): the
    /// retention replica takes them, and they may be sent now.
    fn sealed(&mut self) -> Cause {
        let own = self.core.own_stream();
        let mark = self.core.watermark(&own).unwrap_or(0);
        if mark <= self.signed {
            return Cause::Other;
        }
        assert!(mark <= self.broadcasts, "signed {mark} of {} broadcasts", self.broadcasts);
        let first = self.signed + 1;
        for seq in first..=mark {
            self.retain(own, seq);
        }
        self.signed = mark;
        Cause::Seal { first, last: mark }
    }

    /// The watermark of every stream of the pool the core tracks, before a step.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            marks: (0..16).map(stream).filter_map(|s| self.core.watermark(&s).map(|w| (s, w))).collect(),
            evicted: self.core.counters().streams_evicted,
        }
    }

    /// The driver's answer to a recall the core asked for: what the archive holds of the range, as
    /// runs (the script may overlap them, add some beyond the range, or damage a payload).
    fn answer_recall(&mut self, input: &mut Input<'_>) -> Cause {
        let b = input.u8();
        let Some(to) = Self::pick(self.recalls.keys().copied(), b) else { return Cause::Other };
        let (stream, first, last, max) = self.recalls.remove(&to).expect("picked");
        let (overlap, beyond, damage) = (input.bool(), input.bool(), input.u8());
        let hi = if beyond { last.saturating_add(3) } else { last };
        let mut seqs: Vec<u64> = self
            .archive
            .keys()
            .filter(|(s, q)| *s == stream && (first..=hi).contains(q))
            .map(|(_, q)| *q)
            .collect();
        seqs.sort_unstable();
        let mut runs: Vec<RecalledRun> = Vec::new();
        for seq in seqs {
            let proof = self.archive[&(stream, seq)].clone();
            let mut p = payload(stream, seq);
            if damage == (seq % 256) as u8 {
                p = Bytes::from_static(b"damaged on disk");
            }
            match runs.last_mut() {
                Some(run)
                    if Arc::ptr_eq(&run.proof, &proof) && run.first + run.payloads.len() as u64 == seq =>
                {
                    run.payloads.push(p);
                }
                _ => runs.push(RecalledRun { proof, first: seq, payloads: vec![p] }),
            }
        }
        if overlap && let Some(run) = runs.first().cloned() {
            runs.push(run);
        }
        self.core.handle_recalled(to, runs, self.now);
        Cause::Recall { to, stream, first, last, max }
    }

    /// `message` from `from` as the core's receiving table decodes it from what `from`'s sending
    /// table encoded; `None` if the wire refuses it (then `from` broke the protocol).
    fn through_wire(&mut self, from: NodeId, message: &Message) -> Option<Message> {
        let link = self.links.get_mut(&from)?;
        let mut decls = Vec::new();
        let body = link.theirs.encode(id(0), message, &mut addr_of, &mut decls).ok()?;
        for decl in decls {
            assert_eq!(link.ours.decode(&Body::StreamDecl(decl)), Ok(None), "a declaration is refused");
        }
        match link.ours.decode(&body) {
            Ok(decoded) => decoded,
            Err(_) => {
                self.violators.push(from);
                None
            }
        }
    }

    /// A group run: within one batch (`Router::begin_batch` … `end_batch`, as the driver brackets
    /// what it read from one connection), a neighbour sends a manifest with group digests and then
    /// payloads of its group back to back, as a relay forwards a group: all of them, or the first few
    /// (the rest cut off by the end of the read, to come in a later step or never), one of them not
    /// the origin's, or with another neighbour's message in between.
    fn group_run(&mut self, input: &mut Input<'_>) -> Cause {
        let b = input.u8();
        let Some(from) = Self::pick(self.links.keys().copied(), b) else { return Cause::Other };
        let s = stream(input.u8());
        let count = u64::from(input.u8() % 8) + 2;
        // Mostly where the stream stands, so that the group arrives in order and may be held.
        let at = input.u8();
        let first = match self.core.watermark(&s) {
            Some(mark) if at & 3 != 0 => mark.saturating_add(1).min(dotray_router::core::MAX_SEQ - count),
            _ => u64::from(at % 24) + 1,
        };
        let cut = input.u8();
        let sent = if cut & 1 == 0 { count } else { u64::from(cut >> 1) % (count + 1) };
        let (forged, between) = (u64::from(input.u8()), u64::from(input.u8()));
        let payloads: Vec<Bytes> = (first..first + count).map(|seq| payload(s, seq)).collect();
        let proof = Manifest::sign_payloads(&*InsecureSigner::new(s.origin), s, first, &payloads);
        self.core.begin_batch(self.now);
        if let Some(message) = self.through_wire(from, &Message::Manifest(Arc::new(proof))) {
            self.core.handle_message(from, message, self.now);
        }
        for seq in first..first + sent {
            let p =
                if seq - first == forged { Bytes::from_static(b"not the origin's") } else { payload(s, seq) };
            let data = Message::Data { stream: s, seq, hops: 1, payload: p };
            let Some(message) = self.through_wire(from, &data) else { break };
            self.received.insert((s, seq));
            if s != self.core.own_stream() {
                // (Our own stream's payloads from a neighbour are forgeries: never forwarded.)
                self.grouped.entry((s, seq)).or_default().insert(from);
            }
            self.core.handle_message(from, message, self.now);
            if seq - first == between {
                let other = Self::pick(self.links.keys().copied(), b.wrapping_add(1)).filter(|o| *o != from);
                if let Some(other) = other {
                    let (s2, q2) = (stream(input.u8()), input.seq());
                    if s2 != self.core.own_stream() {
                        self.grouped.entry((s2, q2)).or_default().insert(other);
                    }
                    let data = Message::Data { stream: s2, seq: q2, hops: 1, payload: Bytes::new() };
                    self.send_from(other, &data);
                }
            }
        }
        self.core.end_batch(self.now);
        Cause::Other
    }

    fn step(&mut self, input: &mut Input<'_>) -> Cause {
        let op = input.u8();
        if op == 255 {
            return self.group_run(input);
        }
        match op % 14 {
            13 => return self.answer_recall(input),
            0 => self.now += Duration::from_millis(u64::from(input.u16()) * 4),
            1 => self.neighbour_up(id(input.u8() & 7)),
            2 => {
                let b = input.u8();
                if let Some(peer) = Self::pick(self.links.keys().copied(), b) {
                    self.neighbour_down(peer);
                }
            }
            3 | 4 => {
                let b = input.u8();
                let message = message(input);
                if let Some(from) = Self::pick(self.links.keys().copied(), b) {
                    return self.send_from(from, &message);
                }
            }
            5 => {
                let b = input.u8();
                let body = body(input);
                if let Some(from) = Self::pick(self.links.keys().copied(), b) {
                    return self.deliver_body(from, &body);
                }
            }
            6 => {
                let b = input.u8();
                let len = usize::from(input.u8());
                let mut frame = BytesMut::with_capacity(len + 4);
                frame.put_u32(len as u32);
                frame.extend_from_slice(input.bytes(len));
                let Some(from) = Self::pick(self.links.keys().copied(), b) else { return Cause::Other };
                match FrameCodec::new().decode(&mut frame) {
                    Ok(Some(proto::Envelope { body: Some(body) })) => {
                        if BodyKind::of(&body).layer() == Layer::Broadcast {
                            return self.deliver_body(from, &body);
                        }
                    }
                    _ => self.violators.push(from),
                }
            }
            7 => {
                let own = self.core.own_stream();
                let seq = self.core.next_seq();
                let id = self.core.broadcast(payload(own, seq), self.now);
                assert_eq!((id.stream, id.seq), (own, seq), "broadcast ids are consecutive");
                assert_eq!(seq, self.broadcasts + 1, "broadcast ids are consecutive from 1");
                self.broadcasts = seq;
                // The driver seals after taking every broadcast waiting; the script may also leave
                // the batch to the seal timer.
                if input.bool() {
                    self.core.seal_broadcasts(self.now);
                }
                return self.sealed();
            }
            8 => {
                let b = input.u8();
                if b == 255 {
                    // A stale or forged per-stream timer.
                    let (stream, generation) = (stream(input.u8()), u64::from(input.u8() % 4));
                    let timer = match input.u8() % 5 {
                        0 => Timer::Graft { stream, generation },
                        1 => Timer::Gap { stream, generation },
                        2 => Timer::Beacon,
                        3 => Timer::Unlink,
                        _ => Timer::TreeGraft { round: generation },
                    };
                    self.core.handle_timer(timer, self.now);
                } else if !self.timers.is_empty() {
                    let (at, timer) =
                        self.timers.remove(usize::from(b) % self.timers.len()).expect("in range");
                    self.now = self.now.max(at);
                    if timer == Timer::Sweep {
                        let cutoff = self.now.checked_sub(self.config.retention_time);
                        self.expire(cutoff);
                    }
                    self.core.handle_timer(timer, self.now);
                    return self.sealed();
                }
            }
            9 => {
                // A neighbour answers the core's latest graft with (some of) what it asked for.
                let b = input.u8();
                let Some(from) = Self::pick(self.grafts.keys().copied(), b) else { return Cause::Other };
                let want = self.grafts.remove(&from).unwrap_or_default();
                let hops = input.hops();
                for range in want.iter().take(2) {
                    for seq in range.first..=range.last.min(range.first.saturating_add(3)) {
                        let message =
                            Message::Data { stream: range.stream, seq, hops, payload: Bytes::new() };
                        let before = self.snapshot();
                        let cause = self.send_from(from, &message);
                        self.drain(cause, &before);
                    }
                }
                return Cause::Drained;
            }
            10 => {
                let b = input.u8();
                if b == 255 {
                    // From now on, payloads arrive without their manifest (or with it again).
                    self.prove = !self.prove;
                } else if let Some(peer) = Self::pick(self.links.keys().copied(), b) {
                    self.core.handle_congested(peer, self.now);
                }
            }
            11 => {
                let b = input.u8();
                let rtt = Duration::from_micros(u64::from(input.u16()));
                if let Some(peer) = Self::pick(self.links.keys().copied(), b) {
                    self.core.handle_rtt(peer, rtt);
                }
            }
            _ => {
                // Told of the loss of a neighbour it never had (or of itself): nothing to do.
                let peer = id(input.u8() & 7);
                if !self.links.contains_key(&peer) {
                    self.core.handle_neighbour_down(peer, self.now);
                }
            }
        }
        Cause::Other
    }
}

/// Runs one input (see the module docs).
pub fn router_handler(data: &[u8]) {
    let mut input = Input(data);
    let config = config(input.u8());
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(u64::from(input.u8()));
    let core = Router::try_new(InsecureSigner::new(id(0)), OWN_EPOCH, config.clone(), rng, now)
        .expect("valid config");
    let mut harness = Harness {
        prove: true,
        broadcasts: 0,
        signed: 0,
        started: HashSet::new(),
        archive: HashMap::new(),
        recalls: HashMap::new(),
        core,
        config,
        now,
        links: BTreeMap::new(),
        outbound: Outbound::new(),
        receivers: HashMap::new(),
        timers: VecDeque::new(),
        grafts: HashMap::new(),
        retention: VecDeque::new(),
        retained: HashMap::new(),
        received: HashSet::new(),
        grouped: HashMap::new(),
        violators: Vec::new(),
    };
    let before = harness.snapshot();
    harness.drain(Cause::Other, &before);
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let before = harness.snapshot();
        let cause = harness.step(&mut input);
        let before = if cause == Cause::Drained { harness.snapshot() } else { before };
        harness.drain(cause, &before);
    }
}
