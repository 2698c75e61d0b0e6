//! What the routers of the simulated nodes handed their applications: every broadcast, and per node
//! and stream how far delivery got, checked as it happens for the exactly-once, in-order promise.
//!
//! Memory stays proportional to nodes × streams at four bytes a pair (plus the broadcasts), never to
//! deliveries: per node and stream only the last sequence number delivered (or skipped by a gap) is
//! kept, which is enough because delivery must be in order. A node that delivered `seq` after `last`
//! with `seq != last + 1` and no gap covering the hole broke the order promise (counted), and one
//! that delivered `seq <= last` delivered twice (counted); a stream with no gap and neither count
//! delivered each of `1..=last` exactly once. Streams are numbered in the order they are first seen,
//! so a node's marks are a plain vector indexed by that number; gaps, rare, live in a side map.

use std::collections::HashMap;
use std::time::Duration;

use dotray_router::core::{Delivery, MessageId, StreamId};

use crate::NodeIdx;

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
    /// Every broadcast, in order.
    pub broadcasts: Vec<Broadcast>,
    /// Broadcasts by message id (their index in `broadcasts`).
    index: HashMap<MessageId, usize>,
    /// Each stream's number (its index in every node's `last`).
    stream_numbers: HashMap<StreamId, u32>,
    /// Per node, per stream number: the last sequence number delivered or skipped by a gap (0: none;
    /// the vector may be shorter than the number of streams, missing entries are 0).
    last: Vec<Vec<u32>>,
    /// Per (node, stream number): messages skipped by `Gap` events.
    gapped: HashMap<(NodeIdx, u32), u64>,
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
        self.last.push(Vec::new());
    }

    pub(crate) fn broadcast(&mut self, origin: NodeIdx, id: MessageId, at: Duration) {
        self.number(id.stream);
        self.index.insert(id, self.broadcasts.len());
        self.broadcasts.push(Broadcast { origin, id, at, ldh: 0, eccentricity: 0 });
    }

    /// The number of `stream`, given one if it is new.
    fn number(&mut self, stream: StreamId) -> u32 {
        let next = u32::try_from(self.stream_numbers.len()).expect("fewer than 2^32 streams");
        *self.stream_numbers.entry(stream).or_insert(next)
    }

    /// `node`'s mark for stream number `number`, made room for.
    fn mark(&mut self, node: NodeIdx, number: u32) -> &mut u32 {
        let marks = &mut self.last[node];
        let i = number as usize;
        if marks.len() <= i {
            marks.resize(i + 1, 0);
        }
        &mut marks[i]
    }

    /// A `Deliver` action of `node`'s router.
    pub(crate) fn deliver(&mut self, node: NodeIdx, d: &Delivery) {
        let number = self.number(d.id.stream);
        // Simulated streams stay far below 2^32 messages; a number beyond it is recorded at the top.
        let seq = u32::try_from(d.id.seq).unwrap_or(u32::MAX);
        let last = self.mark(node, number);
        if seq <= *last {
            self.duplicates += 1;
            return;
        }
        let in_order = seq == *last + 1;
        *last = seq;
        if !in_order {
            self.order_violations += 1;
        }
        if let Some(&i) = self.index.get(&d.id) {
            let b = &mut self.broadcasts[i];
            b.ldh = b.ldh.max(d.hops);
        }
    }

    /// A `Gap` event of `node`'s router: `first..=last` of `stream` will never be delivered.
    pub(crate) fn gap(&mut self, node: NodeIdx, stream: StreamId, first: u64, last: u64) {
        self.gaps += 1;
        let number = self.number(stream);
        let mark = self.mark(node, number);
        let in_order = first == u64::from(*mark) + 1;
        *mark = (*mark).max(u32::try_from(last).unwrap_or(u32::MAX));
        if !in_order {
            self.order_violations += 1;
        }
        *self.gapped.entry((node, number)).or_default() += last - first + 1;
    }

    /// Whether `node` delivered message `id`.
    pub fn delivered(&self, node: NodeIdx, id: MessageId) -> bool {
        // In-order delivery: a message is delivered iff it is at or below the mark and was not
        // skipped. Skips are rare (and must not happen on live streams), so count them as not
        // delivered for the whole stream.
        let Some(&number) = self.stream_numbers.get(&id.stream) else { return false };
        let last = self.last[node].get(number as usize).copied().unwrap_or(0);
        u64::from(last) >= id.seq && !self.gapped.contains_key(&(node, number))
    }

    /// The (node, stream) pairs with messages skipped by gaps, and how many.
    pub fn gapped(&self) -> impl Iterator<Item = (NodeIdx, StreamId, u64)> + '_ {
        let streams: HashMap<u32, StreamId> = self.stream_numbers.iter().map(|(s, n)| (*n, *s)).collect();
        self.gapped.iter().map(move |(&(node, number), &count)| (node, streams[&number], count))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use dotray_codec::NodeId;

    use super::*;

    fn stream(n: u8) -> StreamId {
        StreamId { origin: NodeId::from_bytes([n; 32]), epoch: 1 }
    }

    fn delivery(stream: StreamId, seq: u64) -> Delivery {
        Delivery { id: MessageId { stream, seq }, hops: 1, payload: Bytes::new(), through: seq }
    }

    fn record(nodes: usize) -> Deliveries {
        let mut d = Deliveries::default();
        (0..nodes).for_each(|_| d.add_node());
        d
    }

    #[test]
    fn in_order_deliveries_count_as_delivered_once() {
        let mut d = record(2);
        let (a, b) = (stream(1), stream(2));
        d.broadcast(0, MessageId { stream: a, seq: 1 }, Duration::ZERO);
        d.deliver(1, &delivery(a, 1));
        d.deliver(1, &delivery(a, 2));
        d.deliver(0, &delivery(b, 1));
        assert!(d.delivered(1, MessageId { stream: a, seq: 2 }));
        assert!(!d.delivered(1, MessageId { stream: a, seq: 3 }));
        assert!(!d.delivered(0, MessageId { stream: a, seq: 1 }), "node 0 has no mark for a");
        assert!(d.delivered(0, MessageId { stream: b, seq: 1 }));
        assert!(!d.delivered(1, MessageId { stream: b, seq: 1 }), "node 1 delivered nothing of b");
        assert_eq!((d.duplicates, d.order_violations), (0, 0));
    }

    #[test]
    fn a_repeat_is_a_duplicate_and_a_skip_an_order_violation() {
        let mut d = record(1);
        let a = stream(1);
        d.deliver(0, &delivery(a, 1));
        d.deliver(0, &delivery(a, 1));
        assert_eq!(d.duplicates, 1);
        d.deliver(0, &delivery(a, 3));
        assert_eq!(d.order_violations, 1);
        d.deliver(0, &delivery(a, 2));
        assert_eq!(d.duplicates, 2, "2 arrived after 3");
    }

    #[test]
    fn a_gap_covers_its_hole_and_marks_the_stream_not_delivered() {
        let mut d = record(2);
        let a = stream(1);
        d.deliver(0, &delivery(a, 1));
        d.gap(0, a, 2, 4);
        d.deliver(0, &delivery(a, 5));
        assert_eq!((d.gaps, d.order_violations, d.duplicates), (1, 0, 0));
        assert!(!d.delivered(0, MessageId { stream: a, seq: 1 }), "a gapped stream counts as not delivered");
        assert_eq!(d.gapped().collect::<Vec<_>>(), vec![(0, a, 3)]);
        d.gap(1, a, 3, 3);
        assert_eq!(d.order_violations, 1, "a gap must start right after the mark");
    }
}
