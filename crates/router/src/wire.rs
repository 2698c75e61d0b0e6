//! The router's wire layer (pure, no tokio): per-connection stream-reference tables and the
//! conversion between the core's typed [`Message`]s and `proto` bodies, with validation.
//!
//! # Stream references
//!
//! On the wire a stream is named by a small `stream_ref`, bound to the full `(origin, epoch)` by a
//! `StreamDecl` sent once per connection and direction before first use.
//!
//! * [`Outbound`] (one per node) assigns **node-global** references: a stream has the same reference on
//!   every connection, so a `Data` frame is encoded once per hop and the same bytes go to every eager
//!   peer. Per peer it remembers which references were already declared; [`Outbound::encode`] returns
//!   the `StreamDecl`s the driver must send first (usually none).
//! * [`Inbound`] (one per connection) maps the peer's references back to streams and origin
//!   addresses. It is bounded ([`MAX_REFS_PER_CONNECTION`]); an undeclared or excess reference is a
//!   [`WireError`]: a protocol violation, after which the driver closes the connection.
//!
//! References are recycled. When the core stops tracking a stream, [`Outbound::forget_stream`] frees
//! its reference and marks it undeclared on every connection; a later stream that gets the same number
//! is declared again before its first use, and the receiver rebinds it. TCP keeps frames in order, so
//! every frame sent before the new `StreamDecl` is still read with the old binding. So the tables on
//! both sides hold at most the streams alive at once, however long a connection lives.
//!
//! # Validation
//!
//! [`Inbound::decode`] checks what the core relies on: node ids of 32 bytes, ranges with
//! `1 <= first <= last`, sequence numbers from 1, list lengths of at most [`MAX_LIST_LEN`], and the
//! shape of manifests ([`Manifest::parse`]). Signatures are checked above this layer: a manifest's by
//! the core (once per manifest, not per connection), a declaration's origin address by the driver
//! ([`verify_origin_addr`]).
//!
//! # Origin addresses
//!
//! A `StreamDecl` carries the origin's listen address and the origin's signature over it
//! ([`crate::proof::stream_decl_message`]), which relays pass on unchanged: whoever declares a
//! stream either proves the origin's address or names none (an empty address and signature, when a
//! relay no longer knows it).

use std::sync::Arc;

use bytes::Bytes;
use foldhash::HashMap;

use dotray_codec::NodeId;
use dotray_codec::proto::{self, Body};

use crate::core::{Beacon, Message, SeqRange, StreamId, Watermark};
use crate::proof::{Manifest, ManifestError, stream_decl_message};

pub use crate::core::MAX_LIST_LEN;

/// Maximum stream references bound at once on one connection. The core tracks at most
/// `Config::max_streams` streams (default 4,096) at a time and references are recycled, so a
/// well-behaved peer stays far below; twice that leaves room for a peer with a larger `max_streams`.
pub const MAX_REFS_PER_CONNECTION: usize = 8_192;

/// Maximum length of an origin address in a `StreamDecl` (`[ipv6%scope]:port` fits easily).
pub const MAX_ADDR_LEN: usize = 128;

/// What is wrong with a received broadcast frame, or why a frame cannot be encoded for a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A frame used a stream reference the peer never declared.
    #[error("undeclared stream reference {0}")]
    UndeclaredRef(u32),
    /// The peer declared more references than allowed on one connection (or, outbound, we would).
    #[error("too many stream references on this connection")]
    TooManyRefs,
    /// A node id that is not 32 bytes.
    #[error("node id must be 32 bytes, got {0}")]
    BadNodeId(usize),
    /// An origin address that is too long.
    #[error("origin address too long ({0} bytes)")]
    AddrTooLong(usize),
    /// A range with `first > last` or `first == 0`.
    #[error("invalid range {first}..={last}")]
    BadRange {
        /// First sequence number.
        first: u64,
        /// Last sequence number.
        last: u64,
    },
    /// A `Data` with sequence number 0.
    #[error("sequence number 0")]
    ZeroSeq,
    /// A list longer than [`MAX_LIST_LEN`].
    #[error("list of {0} entries exceeds the limit")]
    ListTooLong(usize),
    /// Not a broadcast-layer body.
    #[error("not a broadcast body")]
    NotBroadcast,
    /// A malformed manifest.
    #[error("bad manifest: {0}")]
    BadManifest(#[from] ManifestError),
    /// A `StreamDecl` whose origin address the origin did not sign.
    #[error("stream declaration with an origin address its origin did not sign")]
    UnsignedOriginAddr,
    /// A `Beacon` whose signature is not 64 bytes, or whose round or hop count is 0.
    #[error("malformed beacon")]
    BadBeacon,
}

/// An origin's listen address as declared, with the origin's signature over it (both empty when
/// unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginAddr {
    /// `ip:port`, or empty.
    pub addr: String,
    /// The origin's signature of [`stream_decl_message`], or empty.
    pub signature: Bytes,
}

/// Checks a received declaration's origin address: true when it names none, or when the stream's
/// origin signed it. (An Ed25519 verification: callers keep what they verified and skip repeats.)
pub fn verify_origin_addr(stream: StreamId, origin: &OriginAddr) -> bool {
    if origin.addr.is_empty() && origin.signature.is_empty() {
        return true;
    }
    let Ok(signature) = <[u8; 64]>::try_from(&origin.signature[..]) else { return false };
    stream.origin.verify(&stream_decl_message(stream, &origin.addr), &signature)
}

/// The sending side: node-global stream references and, per peer, which are declared.
#[derive(Debug, Default)]
pub struct Outbound {
    refs: HashMap<StreamId, u32>,
    /// References freed by `forget_stream`, handed out again before new numbers.
    free: Vec<u32>,
    next_ref: u32,
    declared: HashMap<NodeId, RefSet>,
    /// The last reference looked up: a `Data` is encoded for every eager peer in a row, and an ack's
    /// marks for every neighbour, so the same stream comes again at once.
    last: Option<(StreamId, u32)>,
}

/// A set of stream references, as a bit per reference: references are small numbers (recycled,
/// at most as many as streams alive at once), so membership is an index, not a hash.
#[derive(Debug, Default)]
struct RefSet {
    words: Vec<u64>,
    len: usize,
}

impl RefSet {
    fn contains(&self, r: u32) -> bool {
        let (word, bit) = (r as usize / 64, r % 64);
        self.words.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Adds `r`; false if it was there.
    fn insert(&mut self, r: u32) -> bool {
        let (word, bit) = (r as usize / 64, r % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & (1 << bit) == 0;
        self.words[word] |= 1 << bit;
        self.len += usize::from(fresh);
        fresh
    }

    fn remove(&mut self, r: u32) {
        let (word, bit) = (r as usize / 64, r % 64);
        if let Some(w) = self.words.get_mut(word)
            && *w & (1 << bit) != 0
        {
            *w &= !(1 << bit);
            self.len -= 1;
        }
    }
}

impl Outbound {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The node-global reference of `stream`, assigned on first use (a freed one if any: small
    /// numbers encode shorter, and the tables stay as small as the set of live streams).
    pub fn stream_ref(&mut self, stream: StreamId) -> u32 {
        if let Some((last, r)) = self.last
            && last == stream
        {
            return r;
        }
        let r = match self.refs.get(&stream) {
            Some(r) => *r,
            None => {
                let r = self.free.pop().unwrap_or_else(|| {
                    let r = self.next_ref;
                    self.next_ref = self.next_ref.wrapping_add(1);
                    r
                });
                self.refs.insert(stream, r);
                r
            }
        };
        self.last = Some((stream, r));
        r
    }

    /// Forgets the connection to `peer` (closed): a new connection starts undeclared.
    pub fn peer_down(&mut self, peer: &NodeId) {
        self.declared.remove(peer);
    }

    /// Forgets a stream the core no longer tracks. Its reference is freed and becomes undeclared on
    /// every connection, so whichever stream gets it next is declared again before use.
    pub fn forget_stream(&mut self, stream: &StreamId) {
        if let Some(r) = self.refs.remove(stream) {
            for declared in self.declared.values_mut() {
                declared.remove(r);
            }
            self.free.push(r);
            self.last = None;
        }
    }

    /// Marks `stream_ref` undeclared on the connection to `peer`: its declaration never left (the
    /// connection's queue refused it), so the next use declares it again.
    pub fn undeclare(&mut self, peer: NodeId, stream_ref: u32) {
        if let Some(set) = self.declared.get_mut(&peer) {
            set.remove(stream_ref);
        }
    }

    /// The streams that currently hold a reference.
    pub fn streams(&self) -> impl Iterator<Item = &StreamId> + '_ {
        self.refs.keys()
    }

    /// Makes sure `stream` is declared to `peer`: returns its reference, and pushes a `StreamDecl` onto
    /// `decls` if this is its first use on that connection. `addr_of` gives the origin's address.
    pub fn declare(
        &mut self,
        peer: NodeId,
        stream: StreamId,
        addr_of: &mut impl FnMut(&StreamId) -> OriginAddr,
        decls: &mut Vec<proto::StreamDecl>,
    ) -> Result<u32, WireError> {
        let r = self.stream_ref(stream);
        let set = self.declared.entry(peer).or_default();
        if !set.contains(r) {
            if set.len >= MAX_REFS_PER_CONNECTION {
                return Err(WireError::TooManyRefs);
            }
            set.insert(r);
            let OriginAddr { addr, signature } = addr_of(&stream);
            decls.push(proto::StreamDecl {
                stream_ref: r,
                origin: stream.origin.to_bytes(),
                epoch: stream.epoch,
                origin_addr: addr,
                origin_signature: signature,
            });
        }
        Ok(r)
    }

    /// Converts `message` for `peer` into a `proto` body, pushing onto `decls` the `StreamDecl`s that
    /// must be sent before it. For `Data` the body is identical for every peer (node-global refs):
    /// encode it once and send the frame to all, after each peer's declarations.
    pub fn encode(
        &mut self,
        peer: NodeId,
        message: &Message,
        addr_of: &mut impl FnMut(&StreamId) -> OriginAddr,
        decls: &mut Vec<proto::StreamDecl>,
    ) -> Result<Body, WireError> {
        // Lists are filled in loops: see `Inbound::ranges`.
        let mut ranges_of = |this: &mut Self, ranges: &[SeqRange], decls: &mut Vec<proto::StreamDecl>| {
            let mut out = Vec::with_capacity(ranges.len());
            for r in ranges {
                let stream_ref = this.declare(peer, r.stream, addr_of, decls)?;
                out.push(proto::SeqRange { stream_ref, first: r.first, last: r.last });
            }
            Ok::<_, WireError>(out)
        };
        Ok(match message {
            Message::Data { stream, seq, hops, payload } => Body::Data(proto::Data {
                stream_ref: self.declare(peer, *stream, addr_of, decls)?,
                seq: *seq,
                hops: *hops,
                payload: payload.clone(),
            }),
            Message::IHave { ranges, hops } => {
                Body::Ihave(proto::IHave { ranges: ranges_of(self, ranges, decls)?, hops: *hops })
            }
            Message::Graft { want, eager } => {
                Body::Graft(proto::Graft { want: ranges_of(self, want, decls)?, eager: *eager })
            }
            Message::Prune => Body::Prune(proto::Prune {}),
            Message::Ack { marks } => {
                Body::Ack(proto::Ack { marks: self.marks(peer, marks, addr_of, decls)? })
            }
            Message::Sync { marks } => {
                Body::Sync(proto::Sync { marks: self.marks(peer, marks, addr_of, decls)? })
            }
            Message::Manifest(m) => Body::Manifest(proto::Manifest {
                stream_ref: self.declare(peer, m.stream, addr_of, decls)?,
                first_seq: m.first,
                hashes: m.hashes.clone(),
                signature: Bytes::copy_from_slice(&m.signature),
                groups: m.groups.clone(),
            }),
            Message::Beacon(b) => Body::Beacon(proto::Beacon {
                origin: Bytes::copy_from_slice(&b.root.origin.to_bytes()),
                epoch: b.root.epoch,
                round: b.round,
                hops: b.hops,
                tree: b.tree,
                signature: Bytes::copy_from_slice(&b.signature),
                publisher: b.publisher,
            }),
        })
    }

    fn marks(
        &mut self,
        peer: NodeId,
        marks: &[Watermark],
        addr_of: &mut impl FnMut(&StreamId) -> OriginAddr,
        decls: &mut Vec<proto::StreamDecl>,
    ) -> Result<Vec<proto::Watermark>, WireError> {
        let mut out = Vec::with_capacity(marks.len());
        for m in marks {
            out.push(proto::Watermark {
                stream_ref: self.declare(peer, m.stream, addr_of, decls)?,
                seq: m.seq,
            });
        }
        Ok(out)
    }
}

/// The receiving side of one connection: the peer's references, bounded.
#[derive(Debug, Default)]
pub struct Inbound {
    refs: HashMap<u32, (StreamId, String)>,
}

impl Inbound {
    /// An empty table for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of references declared so far.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether nothing was declared yet.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// The stream and origin address bound to `stream_ref`.
    pub fn lookup(&self, stream_ref: u32) -> Result<(StreamId, &str), WireError> {
        self.refs.get(&stream_ref).map(|(s, a)| (*s, a.as_str())).ok_or(WireError::UndeclaredRef(stream_ref))
    }

    /// Records a `StreamDecl`. Declaring a bound reference again rebinds it (the sender recycled it).
    pub fn declare(&mut self, decl: &proto::StreamDecl) -> Result<(), WireError> {
        let origin = NodeId::from_slice(&decl.origin).ok_or(WireError::BadNodeId(decl.origin.len()))?;
        if decl.origin_addr.len() > MAX_ADDR_LEN {
            return Err(WireError::AddrTooLong(decl.origin_addr.len()));
        }
        let stream = StreamId { origin, epoch: decl.epoch };
        if !self.refs.contains_key(&decl.stream_ref) && self.refs.len() >= MAX_REFS_PER_CONNECTION {
            return Err(WireError::TooManyRefs);
        }
        self.refs.insert(decl.stream_ref, (stream, decl.origin_addr.clone()));
        Ok(())
    }

    /// Converts a broadcast body into a core [`Message`]. A `StreamDecl` is recorded and gives
    /// `Ok(None)`. Any other body is [`WireError::NotBroadcast`].
    pub fn decode(&mut self, body: &Body) -> Result<Option<Message>, WireError> {
        Ok(Some(match body {
            Body::StreamDecl(decl) => {
                self.declare(decl)?;
                return Ok(None);
            }
            Body::Data(d) => {
                if d.seq == 0 {
                    return Err(WireError::ZeroSeq);
                }
                Message::Data {
                    stream: self.lookup(d.stream_ref)?.0,
                    seq: d.seq,
                    hops: d.hops,
                    payload: d.payload.clone(),
                }
            }
            Body::Ihave(i) => Message::IHave { ranges: self.ranges(&i.ranges)?, hops: i.hops },
            Body::Graft(g) => Message::Graft { want: self.ranges(&g.want)?, eager: g.eager },
            Body::Prune(_) => Message::Prune,
            Body::Ack(a) => Message::Ack { marks: self.marks(&a.marks)? },
            Body::Sync(s) => Message::Sync { marks: self.marks(&s.marks)? },
            Body::Manifest(m) => {
                let stream = self.lookup(m.stream_ref)?.0;
                // Copied out of the frame: a kept manifest must not pin the whole read buffer its
                // frame arrived in (the proof budgets count the hashes and groups only).
                let hashes = Bytes::copy_from_slice(&m.hashes);
                let groups = Bytes::copy_from_slice(&m.groups);
                let manifest = Manifest::parse(stream, m.first_seq, hashes, groups, &m.signature)?;
                Message::Manifest(Arc::new(manifest))
            }
            Body::Beacon(b) => {
                let origin = NodeId::from_slice(&b.origin).ok_or(WireError::BadNodeId(b.origin.len()))?;
                let signature = b.signature.as_ref().try_into().map_err(|_| WireError::BadBeacon)?;
                if b.round == 0 || b.hops == 0 {
                    return Err(WireError::BadBeacon);
                }
                let root = StreamId { origin, epoch: b.epoch };
                let (round, hops, tree, publisher) = (b.round, b.hops, b.tree, b.publisher);
                Message::Beacon(Beacon { root, round, hops, tree, publisher, signature })
            }
            _ => return Err(WireError::NotBroadcast),
        }))
    }

    fn ranges(&self, ranges: &[proto::SeqRange]) -> Result<Vec<SeqRange>, WireError> {
        if ranges.len() > MAX_LIST_LEN {
            return Err(WireError::ListTooLong(ranges.len()));
        }
        // Filled in a loop rather than collected from an iterator of `Result`s, which cannot tell its
        // length and grows the vector step by step (1% of the CPU of `cargo xtask bench`).
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            if r.first == 0 || r.first > r.last {
                return Err(WireError::BadRange { first: r.first, last: r.last });
            }
            out.push(SeqRange { stream: self.lookup(r.stream_ref)?.0, first: r.first, last: r.last });
        }
        Ok(out)
    }

    fn marks(&self, marks: &[proto::Watermark]) -> Result<Vec<Watermark>, WireError> {
        if marks.len() > MAX_LIST_LEN {
            return Err(WireError::ListTooLong(marks.len()));
        }
        let mut out = Vec::with_capacity(marks.len());
        for m in marks {
            out.push(Watermark { stream: self.lookup(m.stream_ref)?.0, seq: m.seq });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::RefSet;

    #[test]
    fn ref_set_counts_each_reference_once() {
        let mut set = RefSet::default();
        assert!(!set.contains(70));
        assert!(set.insert(70));
        assert!(!set.insert(70), "already there");
        assert!(set.insert(3));
        assert!(set.contains(70) && set.contains(3) && !set.contains(71) && !set.contains(1_000));
        assert_eq!(set.len, 2);
        set.remove(70);
        set.remove(70);
        set.remove(5_000);
        assert!(!set.contains(70) && set.contains(3));
        assert_eq!(set.len, 1);
    }
}
