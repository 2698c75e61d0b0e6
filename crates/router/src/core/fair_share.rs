//! Fair shares of the node's two payload pools: the reorder buffers and the retention cache.
//!
//! Both pools are bounded for the whole node (`Config::reorder_max_bytes` / `reorder_max_total`,
//! `Config::retention_max_bytes` / `retention_max_messages`), and every stream draws on them. A bound
//! alone would let one heavy origin take a pool and push everyone else out: a flood of validly
//! signed messages that can never be delivered in order (the first one withheld) would fill the
//! reorder pool, and honest payloads that arrive ahead of a short-lived hole would be dropped; a
//! flood of deliverable ones would cycle the retention cache in seconds, and an honest neighbour's
//! graft for a message a few seconds old would find nothing to serve.
//!
//! So a full pool is shared **max-min fairly** between streams: room is made by taking payloads from
//! whichever stream holds the most, one at a time, until every stream that gives up payloads holds
//! no more than the others. A stream that uses little of a pool (every honest publisher at a normal
//! rate) keeps all of it, however many streams are heavy, and the heaviest pay first.
//!
//! What a stream gives up: from its reorder buffer the payloads furthest ahead (they were relayed,
//! and are fetched again by repair once the hole before them is filled), from its retention the
//! oldest (the ones least likely to be asked for). Making room costs one pass over the streams
//! holding payloads and a heap; to keep that off the per-payload path, each time a pool is found full
//! it is trimmed a little below its bound (a [`TRIM_SLACK`]th of it), not just to it.

use std::collections::BinaryHeap;

use super::ids::StreamId;
use super::router::Router;

/// A full pool is trimmed to `bound - bound / TRIM_SLACK`, so that the streams are scanned about once
/// per `bound / TRIM_SLACK` of arrivals, not at every one.
const TRIM_SLACK: usize = 32;

impl<R: rand::Rng> Router<R> {
    /// Makes room in the reorder pool for one more payload of `len` bytes of `stream`, taking the
    /// furthest-ahead payloads of the streams that would still hold more than `stream` does with
    /// it. Returns whether the payload fits now (it does not when the other streams hold no more).
    pub(crate) fn make_reorder_room(&mut self, stream: StreamId, len: usize) -> bool {
        let (max_total, max_bytes) = (self.config.reorder_max_total, self.config.reorder_max_bytes);
        let fits = |total: usize, bytes: usize| total < max_total && bytes + len <= max_bytes;
        if fits(self.buffered_total, self.buffered_bytes) {
            return true;
        }
        let ours = self.streams.get(&stream).map_or(0, |s| s.repair().buffer_bytes) + len;
        let mut heaviest: BinaryHeap<(usize, StreamId)> = self
            .streams
            .iter()
            .filter(|(id, s)| **id != stream && s.repair().buffer_bytes > ours)
            .map(|(id, s)| (s.repair().buffer_bytes, *id))
            .collect();
        let (goal_total, goal_bytes) =
            (max_total - max_total / TRIM_SLACK, max_bytes - max_bytes / TRIM_SLACK);
        while !fits(self.buffered_total, self.buffered_bytes)
            || self.buffered_total > goal_total
            || self.buffered_bytes + len > goal_bytes
        {
            let Some((_, victim)) = heaviest.pop() else { break };
            let Some(state) = self.streams.get_mut(&victim) else { continue };
            let Some(held) = state.buffer_pop_last() else { continue };
            state.repair_mut().shed = true;
            self.buffered_bytes -= held.payload.len();
            self.buffered_total -= 1;
            self.counters.reorder_evicted += 1;
            if state.repair().buffer_bytes > ours {
                heaviest.push((state.repair().buffer_bytes, victim));
            }
        }
        fits(self.buffered_total, self.buffered_bytes)
    }

    /// Brings the retention cache back within `retention_max_bytes` and `retention_max_messages`
    /// by taking the oldest retained payloads of the streams that retain the most.
    pub(crate) fn trim_retention(&mut self) {
        let (max_bytes, max_count) = (self.config.retention_max_bytes, self.config.retention_max_messages);
        if self.retained_bytes <= max_bytes && self.retained_count <= max_count {
            return;
        }
        // Weighed by whichever bound is broken: bytes, else payloads.
        let by_bytes = self.retained_bytes > max_bytes;
        let weight = |bytes: usize, count: usize| if by_bytes { bytes } else { count };
        let mut heaviest: BinaryHeap<(usize, StreamId)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.retained_count() > 0)
            .map(|(id, s)| (weight(s.retained_bytes, s.retained_count()), *id))
            .collect();
        let (goal_bytes, goal_count) =
            (max_bytes - max_bytes / TRIM_SLACK, max_count - max_count / TRIM_SLACK);
        while self.retained_bytes > goal_bytes || self.retained_count > goal_count {
            let Some((_, victim)) = heaviest.pop() else { break };
            let Some(state) = self.streams.get_mut(&victim) else { continue };
            let Some(len) = state.evict_oldest_retained() else { continue };
            self.retained_bytes -= len;
            self.retained_count -= 1;
            self.counters.retention_evicted += 1;
            if state.retained_count() > 0 {
                heaviest.push((weight(state.retained_bytes, state.retained_count()), victim));
            }
        }
    }
}
