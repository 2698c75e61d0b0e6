//! [`Message`]: a broadcast message as the application receives it.

use std::net::SocketAddr;

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_router::core::{Delivery, MessageId, StreamId};

/// A broadcast message, as delivered to the application: exactly once, in per-origin order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The application bytes.
    pub payload: Bytes,
    /// The node that broadcast it.
    pub origin: NodeId,
    /// That node's listen address, as it declared it.
    pub origin_addr: Option<SocketAddr>,
    /// The origin's stream: a new one at each start of the origin, unless the origin keeps a data
    /// directory (then its stream goes on across restarts).
    pub epoch: u64,
    /// Position in the origin's stream, from 1. Messages of one origin arrive in this order.
    pub seq: u64,
    /// Hops travelled (1: straight from the origin).
    pub hops: u32,
    /// The last position in the origin's stream this message takes: `seq` for a message sent in one
    /// piece, its last piece's for a large one. [`Message::id`] names the message;
    /// acknowledging it (`dotray::Node::ack`) stores the stream's position through this.
    pub through: u64,
}

impl Message {
    /// The message the router core delivered, with its origin's declared address.
    pub fn from_delivery(delivery: Delivery, origin_addr: Option<SocketAddr>) -> Self {
        let MessageId { stream: StreamId { origin, epoch }, seq } = delivery.id;
        let through = delivery.through;
        Self { payload: delivery.payload, origin, origin_addr, epoch, seq, hops: delivery.hops, through }
    }

    /// Its id: origin, epoch and sequence number.
    pub fn id(&self) -> MessageId {
        MessageId { stream: StreamId { origin: self.origin, epoch: self.epoch }, seq: self.seq }
    }
}
