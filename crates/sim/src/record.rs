//! What the routers of the simulated nodes handed their applications: every broadcast, and per node
//! and stream the deliveries and gaps, checked as they happen for the exactly-once, in-order promise.
//!
//! Memory stays proportional to (nodes × streams + messages), not to deliveries: per node and stream
//! only the last delivered sequence number and a count are kept, which is enough because delivery must
//! be in order — a node that delivered `count == last` messages of a stream with no gap and no
//! violation delivered each of `1..=last` exactly once.

use std::collections::HashMap;
use std::time::Duration;

use dotray_router::core::{Delivery, MessageId, StreamId};

use crate::NodeIdx;

/// One node's record of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamLog {
    /// Last sequence number delivered or skipped by a gap.
    pub last: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages skipped by `Gap` events.
    pub gap_messages: u64,
}

/// One broadcast message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broadcast {
    /// Its origin.
    pub origin: NodeIdx,
    /// Its id.
    pub id: MessageId,
    /// When it was sent (simulated time since start).
    pub at: Duration,
    /// Largest hop count of any delivery of it (its last delivery hop).
    pub ldh: u32,
    /// Its origin's eccentricity in the overlay when it was sent (the most hops any live node was
    /// from it along shortest paths), if the scenario measured it.
    pub eccentricity: u32,
}

/// Deliveries of every node, and the broadcasts they should match.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Per node, per stream.
    pub nodes: Vec<HashMap<StreamId, StreamLog>>,
    /// Every broadcast, in order.
    pub broadcasts: Vec<Broadcast>,
    index: HashMap<MessageId, usize>,
    /// Deliveries of a message the node had already delivered (must stay 0).
    pub duplicates: u64,
    /// Deliveries out of per-stream order: a number skipped with no `Gap` covering it (must stay 0).
    pub order_violations: u64,
    /// `Gap` events.
    pub gaps: u64,
    /// Protocol violations reported by routers (must stay 0 between honest nodes).
    pub violations: u64,
}

impl Deliveries {
    pub(crate) fn add_node(&mut self) {
        self.nodes.push(HashMap::new());
    }

    pub(crate) fn broadcast(&mut self, origin: NodeIdx, id: MessageId, at: Duration) {
        self.index.insert(id, self.broadcasts.len());
        self.broadcasts.push(Broadcast { origin, id, at, ldh: 0, eccentricity: 0 });
    }

    /// A `Deliver` action of `node`'s router.
    pub(crate) fn deliver(&mut self, node: NodeIdx, d: &Delivery) {
        let log = self.nodes[node].entry(d.id.stream).or_default();
        if d.id.seq <= log.last {
            self.duplicates += 1;
            return;
        }
        if d.id.seq != log.last + 1 {
            self.order_violations += 1;
        }
        log.last = d.id.seq;
        log.delivered += 1;
        if let Some(&i) = self.index.get(&d.id) {
            let b = &mut self.broadcasts[i];
            b.ldh = b.ldh.max(d.hops);
        }
    }

    /// A `Gap` event of `node`'s router: `first..=last` of `stream` will never be delivered.
    pub(crate) fn gap(&mut self, node: NodeIdx, stream: StreamId, first: u64, last: u64) {
        self.gaps += 1;
        let log = self.nodes[node].entry(stream).or_default();
        if first != log.last + 1 {
            self.order_violations += 1;
        }
        log.last = log.last.max(last);
        log.gap_messages += last - first + 1;
    }

    /// Whether `node` delivered message `id`.
    pub fn delivered(&self, node: NodeIdx, id: MessageId) -> bool {
        // In-order delivery: a message is delivered iff it is at or below the watermark and was not
        // skipped. Skips are rare (and must not happen on live streams), so count them as not delivered
        // for the whole stream.
        self.nodes[node].get(&id.stream).is_some_and(|log| log.last >= id.seq && log.gap_messages == 0)
    }
}
