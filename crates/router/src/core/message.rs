//! The router's typed protocol messages. They mirror `proto/dotray/v1/broadcast.proto`, except that
//! streams are named by their full [`StreamId`] instead of per-connection stream references: the wire
//! layer (`crate::wire`) translates between the two, so the core never sees references or addresses.

use std::sync::Arc;

use bytes::Bytes;

use super::ids::{SeqRange, StreamId, Watermark};
use crate::proof::{Manifest, Signature};

/// One router message between two neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A payload (Plumtree eager push, or a repair answering a `Graft`/`Sync`).
    Data {
        /// The payload's stream.
        stream: StreamId,
        /// Its sequence number, from 1.
        seq: u64,
        /// Hops travelled so far: 0 when sent by the origin.
        hops: u32,
        /// Application bytes; cloning is a reference-count bump.
        payload: Bytes,
    },
    /// Lazy push: "I have these messages" (Plumtree IHAVE), batched as ranges.
    IHave {
        /// What the sender holds and can send on request.
        ranges: Vec<SeqRange>,
        /// The smallest hop count of the sender's copies in this batch.
        hops: u32,
    },
    /// "Send me these" and, when `eager`, "make this link a tree link" (Plumtree GRAFT).
    Graft {
        /// Messages wanted; may be empty (then only the link changes).
        want: Vec<SeqRange>,
        /// Whether the link should become eager.
        eager: bool,
    },
    /// "Stop pushing payloads to me; send digests" (Plumtree PRUNE).
    Prune,
    /// Cumulative acknowledgement of what the sender holds, for streams that changed.
    Ack {
        /// One watermark per changed stream.
        marks: Vec<Watermark>,
    },
    /// Sent when two nodes become neighbours: the sender's position in every stream it knows.
    Sync {
        /// One watermark per known stream.
        marks: Vec<Watermark>,
    },
    /// The origin's signed hashes of a run of its messages: sent on a link before the first `Data`
    /// it covers.
    Manifest(Arc<Manifest>),
    /// One copy of a round of the tree root's beacon (see `beacon.rs`).
    Beacon(Beacon),
}

/// A copy of one round of the tree root's beacon, as one neighbour passes it to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beacon {
    /// The root: its node id and the epoch of its run.
    pub root: StreamId,
    /// The round, from 1.
    pub round: u64,
    /// The receiver's depth in the tree if it takes this copy as its tree copy: 1 from the root.
    pub hops: u32,
    /// Whether the sender sees the link as a tree link (the copy is pushed) or a lazy one (announced).
    pub tree: bool,
    /// Whether the root is a publisher (`Config::root_publisher_rate`): publishers rank first.
    pub publisher: bool,
    /// The root's signature over `root`, `round` and `publisher` ([`crate::proof::beacon_message`]).
    pub signature: Signature,
}

impl Message {
    /// A short name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Data { .. } => "data",
            Self::IHave { .. } => "ihave",
            Self::Graft { .. } => "graft",
            Self::Prune => "prune",
            Self::Ack { .. } => "ack",
            Self::Sync { .. } => "sync",
            Self::Manifest(_) => "manifest",
            Self::Beacon(_) => "beacon",
        }
    }
}
