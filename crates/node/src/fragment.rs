//! Application messages as router payloads: a one-byte header, and large messages cut into pieces.
//!
//! The router carries opaque payloads, each numbered, signed and delivered in order on its own. A
//! node sends an application message as one payload (`WHOLE`) or, when it is longer than
//! [`Config::fragment_len`](crate::core::Config::fragment_len), as a run of consecutive payloads
//! (`FIRST`, then `MORE`…, then `LAST`), so no frame on the wire is ever larger than a piece, relays
//! forward the first piece while the last is still on its way, and a lost piece is fetched again on
//! its own. The header is part of the payload the origin signs, so no relay can cut, join or
//! extend a message.
//!
//! ```text
//! WHOLE: [0x00] message bytes
//! FIRST: [0x01] total length (varint) first piece
//! MORE:  [0x02] piece
//! LAST:  [0x03] last piece
//! ```
//!
//! A message's id is the sequence number of its first payload; the numbers of its other pieces are
//! not message ids. Because the router delivers one origin's payloads in order, a receiver holds at
//! most one partly received message per origin ([`Reassembly`]), bounded in bytes per message and
//! for the whole node.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use dotray_router::core::StreamId;
use foldhash::{HashMap, HashMapExt};

/// The header byte of a message sent as one payload.
const WHOLE: u8 = 0x00;
/// The header byte of a large message's first piece (followed by the total length, as a varint).
const FIRST: u8 = 0x01;
/// The header byte of a piece that is neither first nor last.
const MORE: u8 = 0x02;
/// The header byte of a large message's last piece.
const LAST: u8 = 0x03;

/// The most bytes a header takes (a kind byte and a 10-byte varint).
pub const MAX_HEADER_LEN: usize = 11;

/// How many router payloads a message of `len` bytes takes with pieces of `fragment_len` bytes.
pub fn piece_count(len: usize, fragment_len: usize) -> u64 {
    if len <= fragment_len { 1 } else { len.div_ceil(fragment_len) as u64 }
}

/// Cuts `message` into the payloads that carry it, headers included: one when it fits in
/// `fragment_len` bytes, [`piece_count`] otherwise. Copies the bytes once.
pub fn split(message: &Bytes, fragment_len: usize) -> Vec<Bytes> {
    if message.len() <= fragment_len {
        return vec![with_header(&[WHOLE], message)];
    }
    let mut first_header = Vec::with_capacity(MAX_HEADER_LEN);
    first_header.push(FIRST);
    put_varint(&mut first_header, message.len() as u64);
    let chunks: Vec<&[u8]> = message.chunks(fragment_len).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| match i {
            0 => with_header(&first_header, chunk),
            i if i == last => with_header(&[LAST], chunk),
            _ => with_header(&[MORE], chunk),
        })
        .collect()
}

fn with_header(header: &[u8], body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header.len() + body.len());
    out.put_slice(header);
    out.put_slice(body);
    out.freeze()
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint from the front of `bytes`: the value and its length, or `None` if it is cut or
/// longer than ten bytes.
fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// One payload, read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Whole(Bytes),
    First { total: u64, body: Bytes },
    More(Bytes),
    Last(Bytes),
}

fn parse(payload: &Bytes) -> Option<Piece> {
    let (&kind, rest) = payload.split_first()?;
    Some(match kind {
        WHOLE => Piece::Whole(payload.slice(1..)),
        FIRST => {
            let (total, len) = get_varint(rest)?;
            Piece::First { total, body: payload.slice(1 + len..) }
        }
        MORE => Piece::More(payload.slice(1..)),
        LAST => Piece::Last(payload.slice(1..)),
        _ => return None,
    })
}

/// What [`Reassembly::accept`] made of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembled {
    /// A whole message, with the sequence number of its first payload.
    Message {
        /// The message's id in its stream: its first payload's sequence number.
        seq: u64,
        /// The application bytes.
        payload: Bytes,
    },
    /// A piece kept until the rest of its message arrives.
    Held,
    /// A piece of a message this node will not deliver: one that began before this node met the
    /// stream, or one already reported lost. Nothing to report.
    Skipped,
    /// Messages `first..=last` of the stream are lost (see [`Loss`]); delivery goes on after them.
    Lost {
        /// The first lost message's id.
        first: u64,
        /// The last sequence number the loss covers.
        last: u64,
        /// Why.
        why: Loss,
    },
}

/// Why a message was lost in reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Its origin announced more than [`Config::max_message_len`](crate::core::Config::max_message_len)
    /// bytes.
    TooLong,
    /// Its pieces do not add up: a header that does not parse, a piece out of place, or more or
    /// fewer bytes than announced. Only the origin can have sent that (it signed the pieces).
    Malformed,
}

/// Bookkeeping charged to each partly received message on top of its buffer, so that many tiny
/// ones cannot hide in a byte budget.
const PARTIAL_OVERHEAD: usize = 256;

/// A message whose first pieces have arrived.
#[derive(Debug)]
struct Partial {
    first_seq: u64,
    /// The sequence number of its latest piece: the next must follow it directly.
    last_seq: u64,
    /// The length its first piece announced.
    total: usize,
    /// The pieces so far, copied out of their frames (a piece kept as a slice could pin a much
    /// larger receive buffer) into a buffer of `total` bytes.
    buf: BytesMut,
    /// When it last grew, in payloads accepted by this node (the eviction order).
    touched: u64,
}

impl Partial {
    /// What it costs the node's budget.
    fn charge(&self) -> usize {
        self.buf.capacity() + PARTIAL_OVERHEAD
    }
}

/// Large messages being reassembled, at most one per stream, within a byte budget for the node.
#[derive(Debug)]
pub struct Reassembly {
    max_message_len: usize,
    max_bytes: usize,
    partial: HashMap<StreamId, Partial>,
    /// The sum of the partial messages' charges.
    bytes: usize,
    clock: u64,
    /// Losses found while making room, reported before the next result.
    evicted: VecDeque<(StreamId, u64, u64)>,
}

impl Reassembly {
    /// Reassembly of messages up to `max_message_len` bytes, holding at most `max_bytes` of partly
    /// received messages at once (raised to one message of `max_message_len` if lower).
    pub fn new(max_message_len: usize, max_bytes: usize) -> Self {
        Self {
            max_message_len,
            max_bytes: max_bytes.max(max_message_len + PARTIAL_OVERHEAD),
            partial: HashMap::new(),
            bytes: 0,
            clock: 0,
            evicted: VecDeque::new(),
        }
    }

    /// Bytes charged for partly received messages (their buffers and bookkeeping).
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Partly received messages held.
    pub fn held_messages(&self) -> usize {
        self.partial.len()
    }

    /// A message lost to make room for another stream's, or cut short by a new message of its own
    /// stream: `(stream, first, last)`, to report as a gap. Take them after each
    /// [`Reassembly::accept`].
    pub fn take_lost(&mut self) -> Option<(StreamId, u64, u64)> {
        self.evicted.pop_front()
    }

    /// The next payload of `stream`, sequence number `seq`, in stream order.
    pub fn accept(&mut self, stream: StreamId, seq: u64, payload: &Bytes) -> Reassembled {
        self.clock += 1;
        let Some(piece) = parse(payload) else { return self.fail(stream, seq, Loss::Malformed) };
        let (body, last) = match piece {
            Piece::Whole(body) => {
                self.cut_short(stream, seq);
                return Reassembled::Message { seq, payload: body };
            }
            Piece::First { total, body } => {
                self.cut_short(stream, seq);
                if total > self.max_message_len as u64 {
                    return Reassembled::Lost { first: seq, last: seq, why: Loss::TooLong };
                }
                // A large message has at least two non-empty pieces.
                let total = total as usize;
                if body.is_empty() || body.len() >= total {
                    return Reassembled::Lost { first: seq, last: seq, why: Loss::Malformed };
                }
                // The whole message's buffer at once, charged in full: filling it needs no copy of
                // what came before, and its untouched pages take no memory until written.
                self.make_room(stream, total + PARTIAL_OVERHEAD);
                let mut buf = BytesMut::with_capacity(total);
                buf.put_slice(&body);
                let partial = Partial { first_seq: seq, last_seq: seq, total, buf, touched: self.clock };
                self.bytes += partial.charge();
                self.partial.insert(stream, partial);
                return Reassembled::Held;
            }
            Piece::More(body) => (body, false),
            Piece::Last(body) => (body, true),
        };
        // The next piece of a message: of the one held, or of one this node does not deliver.
        let Some(partial) = self.partial.get(&stream) else { return Reassembled::Skipped };
        if partial.last_seq.checked_add(1) != Some(seq) {
            // Payloads went missing without a gap report (the stream was forgotten upstream and
            // met again further on): the held message cannot be completed, and this piece belongs
            // to another one, begun in the hole.
            self.cut_short(stream, seq);
            return Reassembled::Skipped;
        }
        let received = partial.buf.len() + body.len();
        if body.is_empty() || received > partial.total || last != (received == partial.total) {
            return self.fail(stream, seq, Loss::Malformed);
        }
        // The buffer holds the announced total (checked above), so this copy never reallocates.
        let Some(partial) = self.partial.get_mut(&stream) else { return Reassembled::Skipped };
        partial.buf.put_slice(&body);
        partial.last_seq = seq;
        partial.touched = self.clock;
        if !last {
            return Reassembled::Held;
        }
        let partial = self.partial.remove(&stream).expect("held above");
        self.bytes -= partial.charge();
        Reassembled::Message { seq: partial.first_seq, payload: partial.buf.freeze() }
    }

    /// The router reports payloads `first..=last` of `stream` lost. The message being reassembled,
    /// if any, is lost with them: returns the range to report (from that message's id), and the
    /// pieces of a lost message that still arrive are skipped.
    pub fn gap(&mut self, stream: StreamId, first: u64, last: u64) -> (u64, u64) {
        match self.drop_partial(stream) {
            Some(partial_first) => (partial_first.min(first), last),
            None => (first, last),
        }
    }

    /// Forgets `stream`'s partial message, if any (the stream ended or was forgotten upstream).
    pub fn forget(&mut self, stream: StreamId) {
        self.drop_partial(stream);
    }

    /// A new message starts at `seq`: a partial one of the same stream never got its last piece.
    fn cut_short(&mut self, stream: StreamId, seq: u64) {
        if let Some(first) = self.drop_partial(stream) {
            self.evicted.push_back((stream, first, seq.saturating_sub(1).max(first)));
        }
    }

    fn fail(&mut self, stream: StreamId, seq: u64, why: Loss) -> Reassembled {
        let first = self.drop_partial(stream).unwrap_or(seq);
        Reassembled::Lost { first, last: seq, why }
    }

    /// Drops `stream`'s partial message, if any; returns its id.
    fn drop_partial(&mut self, stream: StreamId) -> Option<u64> {
        let partial = self.partial.remove(&stream)?;
        self.bytes -= partial.charge();
        Some(partial.first_seq)
    }

    /// Evicts the partial messages of other streams that grew least recently until `more` bytes fit.
    /// Room for one whole message always remains after that (see [`Reassembly::new`]).
    fn make_room(&mut self, stream: StreamId, more: usize) {
        while self.bytes + more > self.max_bytes {
            let victim = self
                .partial
                .iter()
                .filter(|(s, _)| **s != stream)
                .min_by_key(|(_, p)| p.touched)
                .map(|(s, _)| *s);
            let Some(victim) = victim else { return };
            if let Some(first) = self.drop_partial(victim) {
                self.evicted.push_back((victim, first, first));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use dotray_codec::NodeId;

    use super::*;

    fn stream(n: u8) -> StreamId {
        StreamId { origin: NodeId::from_bytes([n; 32]), epoch: 1 }
    }

    /// Feeds `pieces` to `reassembly` as `stream`'s payloads from `first` on.
    fn feed(reassembly: &mut Reassembly, stream: StreamId, first: u64, pieces: &[Bytes]) -> Vec<Reassembled> {
        pieces.iter().zip(first..).map(|(piece, seq)| reassembly.accept(stream, seq, piece)).collect()
    }

    #[test]
    fn every_length_survives_the_round_trip() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 100, 1000] {
            let message = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
            let pieces = split(&message, 8);
            assert_eq!(pieces.len() as u64, piece_count(len, 8), "length {len}");
            assert!(pieces.iter().all(|p| p.len() <= 8 + MAX_HEADER_LEN));
            let mut reassembly = Reassembly::new(1000, 1000);
            let results = feed(&mut reassembly, stream(1), 5, &pieces);
            let (last, held) = results.split_last().unwrap();
            assert!(held.iter().all(|r| *r == Reassembled::Held), "length {len}: {results:?}");
            assert_eq!(*last, Reassembled::Message { seq: 5, payload: message }, "length {len}");
            assert_eq!((reassembly.held_bytes(), reassembly.held_messages()), (0, 0));
        }
    }

    #[test]
    fn varints_round_trip_and_a_cut_one_is_refused() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            assert_eq!(get_varint(&bytes), Some((value, bytes.len())));
            assert_eq!(get_varint(&bytes[..bytes.len() - 1]), None);
        }
        assert_eq!(get_varint(&[0xff; 11]), None, "longer than ten bytes");
    }

    #[test]
    fn a_gap_inside_a_message_loses_it_from_its_first_piece_and_skips_its_rest() {
        let message = Bytes::from(vec![1; 40]);
        let pieces = split(&message, 8); // seqs 10..=14
        let mut reassembly = Reassembly::new(100, 1000);
        feed(&mut reassembly, stream(1), 10, &pieces[..2]);
        assert_eq!(reassembly.gap(stream(1), 12, 12), (10, 12), "the loss starts at the message's id");
        assert_eq!(reassembly.held_bytes(), 0);
        let rest = feed(&mut reassembly, stream(1), 13, &pieces[3..]);
        assert_eq!(rest, vec![Reassembled::Skipped, Reassembled::Skipped]);
        let next = split(&Bytes::from_static(b"next"), 8);
        assert_eq!(
            feed(&mut reassembly, stream(1), 15, &next),
            vec![Reassembled::Message { seq: 15, payload: Bytes::from_static(b"next") }]
        );
    }

    #[test]
    fn pieces_of_a_message_begun_before_this_node_met_the_stream_are_skipped() {
        let pieces = split(&Bytes::from(vec![1; 40]), 8);
        let mut reassembly = Reassembly::new(100, 1000);
        assert_eq!(feed(&mut reassembly, stream(1), 3, &pieces[2..]), vec![Reassembled::Skipped; 3]);
    }

    #[test]
    fn pieces_that_do_not_add_up_are_a_loss() {
        let mut reassembly = Reassembly::new(100, 1000);
        let first = |total: u8| Bytes::from(vec![FIRST, total, 1, 2, 3, 4]);
        // A last piece short of the announced length.
        reassembly.accept(stream(1), 1, &first(10));
        let lost = reassembly.accept(stream(1), 2, &Bytes::from_static(&[LAST, 5]));
        assert_eq!(lost, Reassembled::Lost { first: 1, last: 2, why: Loss::Malformed });
        // More bytes than announced.
        reassembly.accept(stream(1), 3, &first(6));
        let lost = reassembly.accept(stream(1), 4, &Bytes::from_static(&[MORE, 5, 6, 7]));
        assert_eq!(lost, Reassembled::Lost { first: 3, last: 4, why: Loss::Malformed });
        // A first piece that is already the whole message, an empty piece, an unknown kind.
        assert!(matches!(
            reassembly.accept(stream(1), 5, &first(4)),
            Reassembled::Lost { why: Loss::Malformed, .. }
        ));
        reassembly.accept(stream(1), 6, &first(10));
        assert!(matches!(
            reassembly.accept(stream(1), 7, &Bytes::from_static(&[MORE])),
            Reassembled::Lost { first: 6, why: Loss::Malformed, .. }
        ));
        assert!(matches!(
            reassembly.accept(stream(1), 8, &Bytes::from_static(&[9])),
            Reassembled::Lost { .. }
        ));
        assert!(matches!(reassembly.accept(stream(1), 9, &Bytes::new()), Reassembled::Lost { .. }));
        assert_eq!(reassembly.held_bytes(), 0);
    }

    #[test]
    fn a_message_announced_longer_than_the_limit_is_lost_without_holding_anything() {
        let mut reassembly = Reassembly::new(100, 1000);
        let pieces = split(&Bytes::from(vec![1; 101]), 50);
        assert_eq!(
            reassembly.accept(stream(1), 1, &pieces[0]),
            Reassembled::Lost { first: 1, last: 1, why: Loss::TooLong }
        );
        assert_eq!(feed(&mut reassembly, stream(1), 2, &pieces[1..]), vec![Reassembled::Skipped; 2]);
        assert_eq!(reassembly.held_messages(), 0);
    }

    #[test]
    fn a_new_message_cuts_a_partial_one_short_and_reports_it() {
        let mut reassembly = Reassembly::new(100, 1000);
        let pieces = split(&Bytes::from(vec![1; 40]), 8);
        feed(&mut reassembly, stream(1), 1, &pieces[..2]);
        let whole = reassembly.accept(stream(1), 3, &split(&Bytes::from_static(b"x"), 8)[0]);
        assert_eq!(whole, Reassembled::Message { seq: 3, payload: Bytes::from_static(b"x") });
        assert_eq!(reassembly.take_lost(), Some((stream(1), 1, 2)));
        assert_eq!(reassembly.take_lost(), None);
    }

    #[test]
    fn the_budget_evicts_the_partial_message_that_grew_least_recently() {
        // Messages of 300 bytes are charged 300 bytes and the overhead from their first piece on:
        // three fit in 2,000 bytes, a fourth does not.
        let mut reassembly = Reassembly::new(300, 2000);
        let pieces: Vec<Vec<Bytes>> = (1..=4u8).map(|n| split(&Bytes::from(vec![n; 300]), 100)).collect();
        for n in 0..3u8 {
            feed(&mut reassembly, stream(n + 1), 1, &pieces[usize::from(n)][..2]);
        }
        assert_eq!(reassembly.held_bytes(), 3 * (300 + PARTIAL_OVERHEAD));
        // Stream 2 grows again, so stream 1 is the one that grew least recently.
        assert_eq!(
            reassembly.accept(stream(2), 3, &pieces[1][2]),
            Reassembled::Message { seq: 1, payload: Bytes::from(vec![2; 300]) }
        );
        feed(&mut reassembly, stream(2), 4, &split(&Bytes::from(vec![2; 300]), 100)[..1]);
        assert_eq!(reassembly.take_lost(), None);
        // A fourth origin's message evicts stream 1's, which is reported lost and skipped after.
        assert_eq!(reassembly.accept(stream(4), 1, &pieces[3][0]), Reassembled::Held);
        assert_eq!(reassembly.take_lost(), Some((stream(1), 1, 1)));
        assert_eq!(reassembly.accept(stream(1), 3, &pieces[0][2]), Reassembled::Skipped);
        assert_eq!(reassembly.held_messages(), 3);
        assert!(reassembly.held_bytes() <= 2000);
    }

    #[test]
    fn the_charge_never_exceeds_the_budget_whatever_the_order() {
        let max = 1000;
        let mut reassembly = Reassembly::new(400, max);
        let messages: Vec<Vec<Bytes>> = (0..6u8).map(|n| split(&Bytes::from(vec![n; 400]), 64)).collect();
        let longest = messages.iter().map(Vec::len).max().unwrap();
        for i in 0..longest {
            for (n, pieces) in messages.iter().enumerate() {
                if let Some(piece) = pieces.get(i) {
                    reassembly.accept(stream(n as u8), 1 + i as u64, piece);
                    assert!(reassembly.held_bytes() <= max, "{} > {max}", reassembly.held_bytes());
                }
            }
        }
    }

    #[test]
    fn a_piece_after_a_silent_hole_never_completes_an_older_message() {
        let mut reassembly = Reassembly::new(100, 1000);
        let old = split(&Bytes::from(vec![1; 24]), 8); // seqs 1..=3
        let newer = split(&Bytes::from(vec![2; 16]), 8); // seqs 7..=8
        feed(&mut reassembly, stream(1), 1, &old[..2]);
        // Seqs 3 to 7 never arrive and no gap is reported; the last piece of the newer message
        // would make up exactly the length the older one announced.
        assert_eq!(feed(&mut reassembly, stream(1), 8, &newer[1..]), vec![Reassembled::Skipped]);
        assert_eq!(reassembly.take_lost(), Some((stream(1), 1, 7)));
        assert_eq!(reassembly.held_messages(), 0);
    }

    /// Sequence numbers with bytes: payloads with their message's id, or messages with their id.
    type Numbered = Vec<(u64, Bytes)>;

    /// One stream's payloads in order, each with the id of the message it belongs to, and its
    /// messages.
    fn stream_payloads(lengths: &[usize], fragment_len: usize) -> (Numbered, Numbered) {
        let (mut payloads, mut messages) = (Vec::new(), Vec::new());
        for (k, len) in lengths.iter().enumerate() {
            let message = Bytes::from((0..*len).map(|i| (i + k) as u8).collect::<Vec<u8>>());
            let first = payloads.len() as u64 + 1;
            messages.push((first, message.clone()));
            payloads.extend(split(&message, fragment_len).into_iter().map(|p| (first, p)));
        }
        (payloads, messages)
    }

    proptest::proptest! {
        /// Whatever the interleaving of streams, the losses and the budget: every message is
        /// delivered whole and in order, or reported lost; the budget is never exceeded.
        #[test]
        fn every_message_is_delivered_whole_or_reported_lost(
            lengths in proptest::collection::vec(proptest::collection::vec(0usize..300, 1..8), 1..4),
            schedule in proptest::collection::vec(0usize..4, 0..400),
            lose in proptest::collection::vec((0usize..4, 1u64..40, 0u64..5), 0..3),
        ) {
            let (fragment_len, max_bytes) = (16, 800);
            let mut reassembly = Reassembly::new(300, max_bytes);
            let streams: Vec<_> = lengths.iter().map(|l| stream_payloads(l, fragment_len)).collect();
            let mut next = vec![0usize; streams.len()];
            let mut delivered: Vec<Vec<(u64, Bytes)>> = vec![Vec::new(); streams.len()];
            let mut lost: Vec<Vec<(u64, u64)>> = vec![Vec::new(); streams.len()];
            let mut step = |n: usize, reassembly: &mut Reassembly, next: &mut Vec<usize>| {
                let (payloads, _) = &streams[n];
                let Some((_, payload)) = payloads.get(next[n]) else { return };
                let seq = next[n] as u64 + 1;
                // A loss of this stream starting here: the router reports the range and goes on.
                if let Some((_, _, len)) = lose.iter().find(|(s, at, _)| *s == n && *at == seq) {
                    let last = (seq + len).min(payloads.len() as u64);
                    let (first, last) = reassembly.gap(stream(n as u8), seq, last);
                    lost[n].push((first, last));
                    next[n] = last as usize;
                    return;
                }
                match reassembly.accept(stream(n as u8), seq, payload) {
                    Reassembled::Message { seq, payload } => delivered[n].push((seq, payload)),
                    Reassembled::Lost { first, last, .. } => lost[n].push((first, last)),
                    Reassembled::Held | Reassembled::Skipped => {}
                }
                while let Some((s, first, last)) = reassembly.take_lost() {
                    lost[usize::from(s.origin.as_bytes()[0])].push((first, last));
                }
                next[n] += 1;
            };
            for n in schedule.iter().map(|n| n % streams.len()) {
                step(n, &mut reassembly, &mut next);
                proptest::prop_assert!(reassembly.held_bytes() <= max_bytes);
            }
            // Then each stream to its end.
            for n in 0..streams.len() {
                while next[n] < streams[n].0.len() {
                    step(n, &mut reassembly, &mut next);
                    proptest::prop_assert!(reassembly.held_bytes() <= max_bytes);
                }
            }
            for (n, (_, messages)) in streams.iter().enumerate() {
                let mut previous = 0;
                for (seq, payload) in &delivered[n] {
                    proptest::prop_assert!(*seq > previous, "in order");
                    previous = *seq;
                    let original = messages.iter().find(|(first, _)| first == seq);
                    proptest::prop_assert_eq!(original.map(|(_, m)| m), Some(payload), "whole and unaltered");
                }
                for (first, _) in messages {
                    let was_delivered = delivered[n].iter().any(|(seq, _)| seq == first);
                    let was_lost = lost[n].iter().any(|(f, l)| (f..=l).contains(&first));
                    proptest::prop_assert!(was_delivered != was_lost, "message {} of stream {}: delivered {} lost {}", first, n, was_delivered, was_lost);
                }
            }
            proptest::prop_assert_eq!(reassembly.held_messages(), 0, "every stream ended on a whole message");
        }
    }
}
