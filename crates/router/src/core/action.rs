//! What the core asks its driver to do ([`Action`]), what it hands the application ([`Delivery`],
//! [`Event`]), and its timers as data ([`Timer`]).
//!
//! Timers never need cancelling: the periodic ones ([`Timer::Flush`], [`Timer::Ack`],
//! [`Timer::Sweep`]) are scheduled at most once at a time, and the per-stream ones carry a generation
//! number, so a timer that fires after its stream moved on (or was evicted) is recognised and ignored.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;

use super::ids::{MessageId, StreamId};
use super::message::Message;
use crate::proof::Manifest;

/// The neighbours one [`Action::Send`] goes to: a handful, kept inline (no allocation per send).
pub type Recipients = smallvec::SmallVec<[NodeId; 4]>;

/// One effect for the driver, pulled with [`crate::core::Router::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `message` to each neighbour in `to` (a payload goes to every eager neighbour in one
    /// action, so a driver encodes it once per hop). Dropped for a neighbour whose connection is gone.
    Send {
        /// The neighbours, never empty.
        to: Recipients,
        /// The message.
        message: Message,
    },
    /// Call [`crate::core::Router::handle_timer`] with `timer` at `at` (or as soon as possible after).
    SetTimer {
        /// When.
        at: Instant,
        /// What to hand back.
        timer: Timer,
    },
    /// Hand a payload to the application: exactly once per message, in per-stream order.
    Deliver(Delivery),
    /// Tell the application something (a gap).
    Event(Event),
    /// `peer` broke the protocol (a forged or impossible message). The driver logs it and closes the
    /// connection; the core has already ignored the message.
    Violation {
        /// The offending neighbour.
        peer: NodeId,
        /// What it did.
        reason: &'static str,
    },
    /// This node's own messages up to `through` were just signed, and their sends follow this action.
    /// A driver that keeps the node's stream across restarts stores the position durably before it
    /// carries out anything after it: then no number can leave twice with different content, and a
    /// restart continues after `through` ([`crate::core::Router::continue_stream`]). Storing the
    /// batch too lets the restarted node serve it ([`crate::core::Router::restore_own_batch`]), so a
    /// batch stored but not yet sent when the process died is not lost.
    Sealed {
        /// The node's own stream.
        stream: StreamId,
        /// The last sequence number signed.
        through: u64,
        /// The batch's manifest (`proof.first..=through`).
        proof: Arc<Manifest>,
        /// The batch's payloads, in order.
        payloads: Vec<Bytes>,
    },
    /// Another origin's payload was just delivered (this follows its `Deliver`): a driver that keeps
    /// a history on disk stores it with its manifest, to serve it back when asked
    /// ([`Action::Recall`]). Only with `Config::history`.
    Archive {
        /// The stream.
        stream: StreamId,
        /// Its sequence number.
        seq: u64,
        /// The payload.
        payload: Bytes,
        /// The manifest that proves it.
        proof: Arc<Manifest>,
    },
    /// Neighbour `to` asked for `first..=last` of `stream`, older than this node retains in memory:
    /// read what the history holds of it (the runs that hold any of the range, up to about
    /// `max_bytes`) and hand it to [`crate::core::Router::handle_recalled`] — also when nothing is
    /// found: one recall per neighbour is under way at a time, and the next waits for that answer.
    /// Only with `Config::history`.
    Recall {
        /// The neighbour that asked.
        to: NodeId,
        /// The stream.
        stream: StreamId,
        /// First sequence number asked for.
        first: u64,
        /// Last sequence number asked for.
        last: u64,
        /// The most messages that will be sent.
        max_messages: u64,
        /// The neighbour's repair budget left, in bytes: reading more is wasted.
        max_bytes: u32,
    },
}

/// A payload delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Which message.
    pub id: MessageId,
    /// Hops the copy that arrived first travelled (1 for a direct neighbour of the origin).
    pub hops: u32,
    /// The application bytes.
    pub payload: Bytes,
    /// The last position in its stream that this delivery covers: `id.seq` for one payload. (A
    /// layer above that joins several payloads into one message, as `dotray-node` does for large
    /// ones, sets it to the last one's.) Acknowledging a delivery acknowledges its stream through
    /// this position.
    pub through: u64,
}

/// Something the application should know that is not a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Messages `first..=last` of `stream` could not be obtained within `Config::gap_timeout` (they
    /// left every reachable retention cache) and will never be delivered; delivery continues after them.
    Gap {
        /// The stream.
        stream: StreamId,
        /// First missing sequence number.
        first: u64,
        /// Last missing sequence number.
        last: u64,
    },
}

/// A timer of the router core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Send the batched `IHave` digests to lazy peers. Scheduled when the first digest entry of a batch
    /// is queued, `Config::ihave_interval` later.
    Flush,
    /// Send batched cumulative `Ack`s. Scheduled when the first unacked change is recorded.
    Ack,
    /// Housekeeping: expire retention, evict idle streams. Every `Config::sweep_interval` while the
    /// router holds retained payloads or streams besides its own; an idle router sets none.
    Sweep,
    /// A stream is missing messages that a neighbour announced: ask for them (Plumtree's GRAFT timer,
    /// one per stream, not one per message).
    Graft {
        /// The stream.
        stream: StreamId,
        /// Only the timer matching the stream's current generation acts.
        generation: u64,
    },
    /// Sign the batch of this node's own messages waiting for a manifest (`Config::seal_interval`).
    Seal,
    /// A stream's head gap has waited `Config::gap_timeout`: report it and move on.
    Gap {
        /// The stream.
        stream: StreamId,
        /// Only the timer matching the stream's current generation acts.
        generation: u64,
    },
    /// Every `Config::beacon_interval` while there are neighbours: the tree root sends its next
    /// beacon round, and every node checks whether it has become the root.
    Beacon,
    /// A beacon round came only as announcements: if no pushed copy came since, graft the
    /// shallowest announcer (the tree is cut above this node).
    TreeGraft {
        /// The round; a later round's copies cancel it.
        round: u64,
    },
    /// `Config::move_overlap` after the tree link moved: prune the old one.
    Unlink,
    /// `Config::max_group_hold` after a group's payloads began to be held: prove what is held
    /// one payload at a time if the rest of the group has not come (see `group.rs`).
    GroupHold,
}
