//! Counting deliveries: a [`Tally`] of atomics shared by all receivers (read by the watcher while the
//! run goes on), and one [`NodeLog`] per node (duplicates and latencies, merged at the end).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::payload::{Header, Phase};

/// Figures every receiver updates; the watcher reads them to see progress.
#[derive(Debug)]
pub struct Tally {
    /// The run's clock: publish times and delivery times are ns since this instant.
    pub clock: Instant,
    /// Measured-phase deliveries to the application, duplicates included.
    pub delivered: AtomicU64,
    /// Warm-up deliveries, duplicates included.
    pub warmup_delivered: AtomicU64,
    /// Time of the latest measured delivery, in ns on the run's clock.
    pub last_delivery_ns: AtomicU64,
}

impl Tally {
    /// A tally whose clock starts now.
    pub fn new() -> Self {
        Self {
            clock: Instant::now(),
            delivered: AtomicU64::new(0),
            warmup_delivered: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
        }
    }

    /// Now, in ns on the run's clock.
    pub fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// One node's record of the measured phase.
#[derive(Debug)]
pub struct NodeLog {
    /// The node's index in the run.
    pub node: usize,
    seen: Vec<u64>,
    /// Deliveries of a message this node had already delivered.
    pub duplicates: u64,
    /// Publish-to-delivery latency of each first delivery, in µs.
    pub latencies_us: Vec<u32>,
}

impl NodeLog {
    /// Node `node`'s log for a run of `msgs` messages.
    pub fn new(node: usize, msgs: usize) -> Self {
        let seen = vec![0; msgs.div_ceil(64)];
        Self { node, seen, duplicates: 0, latencies_us: Vec::with_capacity(msgs) }
    }

    /// Whether message `index` was delivered.
    pub fn has(&self, index: usize) -> bool {
        self.seen.get(index / 64).is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// The messages below `msgs` that `wanted` selects and this node has not delivered, as
    /// inclusive ranges of indexes.
    pub fn missing(&self, msgs: usize, wanted: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for index in (0..msgs).filter(|&i| wanted(i) && !self.has(i)) {
            match ranges.last_mut() {
                Some((_, last)) if *last + 1 == index => *last = index,
                _ => ranges.push((index, index)),
            }
        }
        ranges
    }

    /// Records one delivery with `header`, at `now_ns` on the run's clock, and updates `tally`.
    pub fn record(&mut self, header: Header, now_ns: u64, tally: &Tally) {
        if header.phase == Phase::Warmup {
            tally.warmup_delivered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let index = header.index as usize;
        let Some(word) = self.seen.get_mut(index / 64) else {
            // Not a message of this run: count it as a duplicate so the run cannot look complete.
            self.duplicates += 1;
            return;
        };
        let bit = 1u64 << (index % 64);
        if *word & bit != 0 {
            self.duplicates += 1;
        } else {
            *word |= bit;
            let latency_us = now_ns.saturating_sub(header.sent_at_ns) / 1_000;
            self.latencies_us.push(latency_us.min(u32::MAX as u64) as u32);
        }
        tally.delivered.fetch_add(1, Ordering::Relaxed);
        tally.last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
    }

    /// Distinct messages delivered.
    pub fn distinct(&self) -> u64 {
        self.latencies_us.len() as u64
    }
}

/// A [`NodeLog`] that hands itself to a collector when dropped: when its task ends, and also when the
/// task is aborted at the end of a run (a stalled run's tasks never end by themselves).
#[derive(Debug)]
pub struct HandedLog {
    /// The log being written.
    pub log: NodeLog,
    sink: tokio::sync::mpsc::UnboundedSender<NodeLog>,
}

impl HandedLog {
    /// Node `node`'s log for `msgs` messages, which goes to `sink` when dropped.
    pub fn new(node: usize, msgs: usize, sink: tokio::sync::mpsc::UnboundedSender<NodeLog>) -> Self {
        Self { log: NodeLog::new(node, msgs), sink }
    }
}

impl Drop for HandedLog {
    fn drop(&mut self) {
        let node = self.log.node;
        let log = std::mem::replace(&mut self.log, NodeLog::new(node, 0));
        let _ = self.sink.send(log);
    }
}

/// The merged record of all nodes.
#[derive(Debug, Default)]
pub struct Merged {
    /// Distinct (node, message) deliveries.
    pub distinct: u64,
    /// Repeated deliveries to the application.
    pub duplicates: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Merges the logs of all nodes.
pub fn merge(logs: Vec<NodeLog>) -> Merged {
    let duplicates = logs.iter().map(|l| l.duplicates).sum();
    let mut all: Vec<u32> = logs.into_iter().flat_map(|l| l.latencies_us).collect();
    all.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let rank = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len());
        all[rank - 1] as f64 / 1_000.0
    };
    Merged { distinct: all.len() as u64, duplicates, p50_ms: quantile(0.50), p99_ms: quantile(0.99) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(index: u32, sent_at_ns: u64) -> Header {
        Header { phase: Phase::Measured, index, sent_at_ns }
    }

    #[test]
    fn duplicates_and_unknown_messages_are_counted() {
        let tally = Tally::new();
        let mut log = NodeLog::new(0, 10);
        log.record(measured(3, 0), 2_000_000, &tally);
        log.record(measured(3, 0), 3_000_000, &tally);
        log.record(measured(99, 0), 3_000_000, &tally);
        log.record(Header { phase: Phase::Warmup, index: 0, sent_at_ns: 0 }, 1, &tally);
        assert_eq!((log.distinct(), log.duplicates), (1, 2));
        assert_eq!(tally.delivered.load(Ordering::Relaxed), 2);
        assert_eq!(tally.warmup_delivered.load(Ordering::Relaxed), 1);
        assert_eq!(tally.last_delivery_ns.load(Ordering::Relaxed), 3_000_000);
    }

    #[test]
    fn missing_messages_come_as_ranges_of_the_wanted_ones() {
        let tally = Tally::new();
        let mut log = NodeLog::new(3, 10);
        for i in [0, 1, 4, 8] {
            log.record(measured(i, 0), 1, &tally);
        }
        assert_eq!(log.missing(10, |_| true), vec![(2, 3), (5, 7), (9, 9)]);
        // Node 3 publishes the odd messages and does not deliver its own.
        assert_eq!(log.missing(10, |i| i % 2 == 0), vec![(2, 2), (6, 6)]);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let tally = Tally::new();
        let mut log = NodeLog::new(0, 100);
        for i in 0..100u32 {
            // Latency i+1 ms.
            log.record(measured(i, 0), (i as u64 + 1) * 1_000_000, &tally);
        }
        let merged = merge(vec![log]);
        assert_eq!(merged.distinct, 100);
        assert_eq!(merged.p50_ms, 50.0);
        assert_eq!(merged.p99_ms, 99.0);
    }
}
