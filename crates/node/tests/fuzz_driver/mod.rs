//! The logic of the node crate's fuzz targets, shared with the regression test.
//!
//! `reassembly`: arbitrary payloads, in arbitrary order of streams and sequence numbers, with losses
//! reported in between, handed to `dotray_node::fragment::Reassembly`. Checks: no panic; the charge
//! never exceeds the budget; a delivered message never exceeds `max_message_len`; a message is
//! delivered with a sequence number no lower than one already delivered for its stream; an honest
//! message (cut by `split`) fed without interruption comes out whole.
//!
//! `node_handler`: a whole `dotray_node::core::NodeCore` (small direct-message budget) with up to
//! four peers connecting and going, fed direct messages of any length, membership requests and
//! answers (so peers become neighbours and the router gets them), broadcast payloads from
//! neighbours and strangers, groups of another origin's broadcast as a relay forwards them (within
//! one `begin_batch`/`end_batch`, a signed manifest with group digests, then payloads of its group
//! back to back: all, the first few, or one not the origin's), its own broadcasts, the timers it
//! set, and time passing. Checks: no panic; a direct message over `max_direct_len` is a violation; a
//! direct message reaches the application only from a connected peer, and per sender never more
//! bytes than its budget allows (`direct_burst_bytes` plus `direct_bytes_per_sec` for the time since
//! its first one on that connection); the other origin's messages are delivered in order, at most
//! once each, and are the ones it signed.
// `pub` for the fuzz target, which includes this file too.
#![allow(unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_membership::core::{LinkEnd, Message as MembershipMessage, PeerInfo};
use dotray_node::core::{Action, Config, Event, NodeCore, PeerMessage, Timer};
use dotray_node::fragment::{Reassembled, Reassembly, split};
use dotray_router::core::{Message as BroadcastMessage, StreamId};
use dotray_router::proof::{InsecureSigner, Manifest};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MAX_MESSAGE_LEN: usize = 600;
const MAX_BYTES: usize = 2_000;

/// Reads the input as a script of operations until it runs out.
pub fn reassembly(data: &[u8]) {
    let mut reassembly = Reassembly::new(MAX_MESSAGE_LEN, MAX_BYTES);
    let mut script = data;
    let mut next_seq: HashMap<u8, u64> = HashMap::new();
    let mut delivered_up_to: HashMap<u8, u64> = HashMap::new();
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        let origin = op & 0x03;
        let stream = StreamId { origin: NodeId::from_bytes([origin; 32]), epoch: 1 };
        let seq = next_seq.entry(origin).or_insert(1);
        match op >> 2 {
            // A raw payload of up to 63 bytes from the script.
            0..=31 => {
                let len = usize::from(op >> 2).min(script.len());
                let (payload, rest) = script.split_at(len);
                script = rest;
                let result = reassembly.accept(stream, *seq, &Bytes::copy_from_slice(payload));
                check(&result, origin, &mut delivered_up_to);
                *seq = seq.saturating_add(1);
            }
            // An honest message, cut into pieces of 16 bytes, fed whole.
            32..=47 if *seq < u64::MAX / 2 => {
                let Some((&half_len, rest)) = script.split_first() else { return };
                script = rest;
                let len = usize::from(half_len) * 2;
                let message = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
                let pieces = split(&message, 16);
                let first = *seq;
                let mut out = None;
                for piece in &pieces {
                    let result = reassembly.accept(stream, *seq, piece);
                    check(&result, origin, &mut delivered_up_to);
                    if let Reassembled::Message { .. } = result {
                        out = Some(result);
                    }
                    *seq += 1;
                }
                assert_eq!(
                    out,
                    Some(Reassembled::Message { seq: first, payload: message }),
                    "an honest message fed without interruption comes out whole"
                );
            }
            // A loss of a few payloads, reported.
            48..=55 => {
                let last = seq.saturating_add(u64::from(op & 0x1c));
                let (first, reported_last) = reassembly.gap(stream, *seq, last);
                assert!(first <= *seq && reported_last == last, "a loss starts at or before the hole");
                *seq = last.saturating_add(1);
            }
            // A silent jump (a stream forgotten upstream and met again further on).
            56..=59 => *seq = seq.saturating_add(u64::from(op & 0x0c) + 2),
            // A sequence number near the end of the range (never backwards: the router delivers in order).
            60..=63 => *seq = (*seq).max(u64::MAX - u64::from(op & 0x03)),
            // An honest message where the range has no room for its pieces: skipped.
            _ => {}
        }
        assert!(reassembly.held_bytes() <= MAX_BYTES, "{} > {MAX_BYTES}", reassembly.held_bytes());
        while reassembly.take_lost().is_some() {}
    }
}

fn check(result: &Reassembled, origin: u8, delivered_up_to: &mut HashMap<u8, u64>) {
    if let Reassembled::Message { seq, payload } = result {
        assert!(payload.len() <= MAX_MESSAGE_LEN, "a delivered message is within the limit");
        let previous = delivered_up_to.entry(origin).or_insert(0);
        assert!(*seq >= *previous, "messages of a stream come out in order");
        *previous = *seq;
    }
}

/// Direct-message bounds of the `node_handler` target.
const MAX_DIRECT_LEN: usize = 1_000;
const DIRECT_RATE: u32 = 2_000;
const DIRECT_BURST: u32 = 3_000;

/// The other origin whose broadcasts neighbours relay in groups.
fn group_stream() -> StreamId {
    StreamId { origin: NodeId::from_bytes([9; 32]), epoch: 1 }
}

/// What the other origin broadcast as message `seq` (what the application must get).
fn group_message(seq: u64) -> Bytes {
    Bytes::from(format!("message {seq} of the other origin"))
}

fn peer(n: u8) -> PeerInfo {
    let port = 3000 + u16::from(n);
    PeerInfo::new(NodeId::from_bytes([n; 32]), format!("127.0.0.1:{port}").parse().expect("an address"))
}

/// One connection's worth of direct messages handed to the application.
struct Directs {
    first: Option<Instant>,
    bytes: u64,
}

/// Reads the input as a script of operations on one node core until it runs out.
pub fn node_handler(data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let config = Config {
        max_direct_len: MAX_DIRECT_LEN,
        direct_bytes_per_sec: DIRECT_RATE,
        direct_burst_bytes: DIRECT_BURST,
        ..Config::default()
    };
    let me = peer(1);
    let seeds = [peer(2).addr.into()];
    let signer = InsecureSigner::new(me.id);
    let rng = ChaCha8Rng::seed_from_u64(u64::from(data.first().copied().unwrap_or(0)));
    let mut node = Node {
        core: NodeCore::new(me, seeds, config, signer, rng, now, SystemTime::UNIX_EPOCH)
            .expect("a valid config"),
        connected: BTreeMap::new(),
        timers: Vec::new(),
        group_mark: 0,
    };
    node.drain(now);
    let mut next_group = 1;
    let mut script = data;
    let take = |script: &mut &[u8]| -> u8 {
        let Some((&b, rest)) = script.split_first() else { return 0 };
        *script = rest;
        b
    };
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        let who = peer(2 + (op >> 4) % 4);
        let connected = node.connected.contains_key(&who.id);
        let core = &mut node.core;
        match op & 0x0f {
            0 if !connected => {
                core.handle_connected(who, None, now);
                node.connected.insert(who.id, Directs { first: None, bytes: 0 });
            }
            1 if connected => {
                node.connected.remove(&who.id);
                core.handle_disconnected(who.id, LinkEnd::Failed, now);
            }
            2 | 3 => {
                // A direct message of up to 1,530 bytes.
                let len = usize::from(take(&mut script)) * 6;
                if connected {
                    core.handle_message(who.id, PeerMessage::Direct(Bytes::from(vec![op; len])), now);
                }
            }
            4 => now += Duration::from_millis(u64::from(take(&mut script)) * 20),
            5 => {
                let message = match take(&mut script) % 6 {
                    0 => MembershipMessage::Join,
                    1 => MembershipMessage::Neighbour { high_priority: true },
                    2 => MembershipMessage::NeighbourReply { accepted: true },
                    3 => MembershipMessage::Ping { nonce: 1, sent_at_micros: 0 },
                    4 => MembershipMessage::Pong { nonce: 1, sent_at_micros: 0 },
                    _ => MembershipMessage::NodeQueryRequest { request_id: 7, max: 8 },
                };
                if connected {
                    core.handle_message(who.id, PeerMessage::Membership(message), now);
                }
            }
            6 => {
                // A payload of another origin's stream, from a neighbour or a stranger.
                let seq = u64::from(take(&mut script));
                let stream = StreamId { origin: NodeId::from_bytes([9; 32]), epoch: 1 };
                let payload = Bytes::from(vec![op; 8]);
                let message = BroadcastMessage::Data { stream, seq, hops: 1, payload };
                if connected {
                    core.handle_message(who.id, PeerMessage::Broadcast(message), now);
                }
            }
            7 => {
                let len = usize::from(take(&mut script)) * 4;
                let _ = core.broadcast(Bytes::from(vec![op; len]), now);
                core.seal_broadcasts(now);
            }
            8 => {
                // Every timer that is due, in order.
                node.timers.sort_by_key(|(at, _)| *at);
                let due = node.timers.partition_point(|(at, _)| *at <= now);
                for (_, timer) in node.timers.drain(..due) {
                    core.handle_timer(timer, now);
                }
            }
            9 => core.handle_congested(who.id, now),
            10 => {
                // A group of the other origin's broadcast from a neighbour, as a relay forwards it:
                // mostly where the last group ended, so that it arrives in order.
                let b = take(&mut script);
                let count = u64::from(b % 8) + 2;
                let first = if b & 0x30 == 0 { u64::from(take(&mut script)) + 1 } else { next_group };
                let cut = take(&mut script);
                let sent = if cut & 1 == 0 { count } else { u64::from(cut >> 1) % (count + 1) };
                let forged = u64::from(take(&mut script));
                if connected {
                    let stream = group_stream();
                    let payloads: Vec<Bytes> = (first..first + count)
                        .map(|seq| split(&group_message(seq), 1024).remove(0))
                        .collect();
                    let proof = Manifest::sign_payloads(
                        &*InsecureSigner::new(stream.origin),
                        stream,
                        first,
                        &payloads,
                    );
                    core.begin_batch(now);
                    core.handle_message(
                        who.id,
                        PeerMessage::Broadcast(BroadcastMessage::Manifest(Arc::new(proof))),
                        now,
                    );
                    for (i, payload) in payloads.into_iter().take(sent as usize).enumerate() {
                        let seq = first + i as u64;
                        // A forgery a node would hand up as a whole message if it took it.
                        let payload = if i as u64 == forged {
                            split(&Bytes::from_static(b"not the origin's"), 1024).remove(0)
                        } else {
                            payload
                        };
                        let message = BroadcastMessage::Data { stream, seq, hops: 1, payload };
                        core.handle_message(who.id, PeerMessage::Broadcast(message), now);
                    }
                    core.end_batch(now);
                    next_group = first + count;
                }
            }
            _ => {}
        }
        node.drain(now);
    }
}

/// The node under test and what the harness knows of it.
struct Node {
    core: NodeCore<ChaCha8Rng>,
    connected: BTreeMap<NodeId, Directs>,
    /// Timers it set and that have not fired (at most 10,000: the rest are dropped).
    timers: Vec<(Instant, Timer)>,
    /// The last message of the other origin delivered or reported lost.
    group_mark: u64,
}

impl Node {
    /// Takes every action, checks it, and plays the driver's part: timers kept, violators and
    /// refused peers disconnected.
    fn drain(&mut self, now: Instant) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::SetTimer { at, timer } => {
                    assert!(at >= now, "a timer set in the past");
                    if self.timers.len() < 10_000 {
                        self.timers.push((at, timer));
                    }
                }
                Action::Event(Event::Direct { from, payload }) => {
                    let directs =
                        self.connected.get_mut(&from).expect("a direct message from a peer not connected");
                    assert!(payload.len() <= MAX_DIRECT_LEN, "a direct message over the limit handed up");
                    let first = *directs.first.get_or_insert(now);
                    directs.bytes += payload.len() as u64;
                    let allowed = u64::from(DIRECT_BURST)
                        + (now - first).as_secs_f64().mul_add(f64::from(DIRECT_RATE), 1.0) as u64;
                    assert!(
                        directs.bytes <= allowed,
                        "{} direct bytes from one sender, {allowed} allowed",
                        directs.bytes
                    );
                }
                Action::Deliver(d) if d.id.stream == group_stream() => {
                    assert!(d.id.seq > self.group_mark, "{} delivered after {}", d.id.seq, self.group_mark);
                    assert_eq!(d.payload, group_message(d.id.seq), "not what the origin broadcast");
                    self.group_mark = d.through;
                }
                Action::Event(Event::Gap { stream, first, last }) if stream == group_stream() => {
                    assert!(first > self.group_mark, "a gap from {first} after {}", self.group_mark);
                    self.group_mark = last;
                }
                Action::Disconnect { peer, .. } | Action::Violation { peer, .. }
                    if self.connected.remove(&peer).is_some() =>
                {
                    self.core.handle_disconnected(peer, LinkEnd::Failed, now);
                }
                _ => {}
            }
        }
    }
}
