//! The system under test: `nodes` real [`dotray::Node`]s in this process, used exactly as an
//! application uses them (`broadcast`, `recv`).
//!
//! Setup: node 0 starts first; node `i` is seeded with node 0 and node `i-1`. The network counts as
//! settled when every node has active neighbours and the overlay is connected, and then warm-up rounds
//! (a few small broadcasts from the publishers) have let the broadcast tree prune itself: the setup
//! ends after [`CLEAN_ROUNDS`] warm-up rounds in a row without a single duplicate payload. Only then
//! does the measured phase start, with counters snapshotted before and after it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dotray::membership::core::NodeState;
use dotray::{Node, NodeId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::payload::{self, Header, Phase};
use crate::tally::{HandedLog, NodeLog, Tally, merge};
use crate::{BenchError, End, Report, Spec, usage, watch};

/// Longest wait for the overlay to form.
pub const OVERLAY_DEADLINE: Duration = Duration::from_secs(60);
/// Most messages an application task takes per wake-up (`Node::recv_many`).
const RECV_BATCH: usize = 256;
/// Setup waits for this long without a neighbour change before warming up.
pub const QUIET_FOR: Duration = Duration::from_secs(2);
/// Longest wait for the overlay to become quiet (then the run goes on anyway).
pub const QUIET_DEADLINE: Duration = Duration::from_secs(30);
/// Warm-up messages per round (spread over the publishers).
pub const WARMUP_MSGS: usize = 32;
/// Bytes per warm-up message.
pub const WARMUP_SIZE: usize = 64;
/// Consecutive duplicate-free warm-up rounds that make the tree settled.
pub const CLEAN_ROUNDS: usize = 2;
/// Warm-up lasts at least this long, however soon its rounds come clean: three of dotray's beacon
/// intervals (`Config::beacon_interval`, 1 s). The tree is shaped by beacon rounds, and a node that
/// starts publishing becomes the tree's root within two intervals (`Config::root_publisher_rate`),
/// after which links move towards it; clean rounds within the first interval would only show that
/// the move had not begun, and the measured phase would pay for it.
pub const MIN_WARMUP: Duration = Duration::from_secs(3);
/// Most warm-up rounds before measuring anyway.
pub const MAX_WARMUP_ROUNDS: usize = 400;
/// Longest a warm-up round may take.
const WARMUP_ROUND_LIMIT: Duration = Duration::from_secs(30);
/// How often the overlay is polled while forming.
const OVERLAY_POLL: Duration = Duration::from_millis(50);

/// Runs dotray once.
pub async fn run(spec: &Spec) -> Result<Report, BenchError> {
    let tally = Arc::new(Tally::new());
    let nodes = start_nodes(spec.nodes, spec.data_dir.as_deref(), spec.history_mib).await?;

    let mut receivers = JoinSet::new();
    let (log_tx, mut log_rx) = mpsc::unbounded_channel();
    for (index, node) in nodes.iter().enumerate() {
        let log = HandedLog::new(index, spec.msgs, log_tx.clone());
        let receiver = Receiver { log, ack: spec.data_dir.is_some() };
        receivers.spawn(receiver.run(node.clone(), tally.clone()));
    }
    let link_changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for node in &nodes {
        let (node, changes) = (node.clone(), link_changes.clone());
        receivers.spawn(async move {
            while let Some(event) = node.next_event().await {
                match event {
                    dotray::Event::NeighbourUp { .. } => changes.fetch_add(1, Ordering::Relaxed),
                    dotray::Event::NeighbourDown { .. } => changes.fetch_add(1 << 32, Ordering::Relaxed),
                    _ => 0,
                };
            }
        });
    }
    await_overlay(&nodes).await?;
    await_quiet(&link_changes).await;
    warm_up(&nodes, spec, &tally).await?;
    let setup_ms = tally.clock.elapsed().as_secs_f64() * 1e3;

    // Measure.
    let before_counts = snapshot(&nodes).await?;
    let changes_before = link_changes.load(Ordering::Relaxed);
    let before = usage::now();
    let start_ns = tally.now_ns();
    let started = tokio::time::Instant::now();
    let mut publishers = JoinSet::new();
    for (publisher, node) in nodes.iter().enumerate().take(spec.publishers) {
        let (node, tally, spec) = (node.clone(), tally.clone(), spec.clone());
        publishers.spawn(async move {
            for index in (publisher..spec.msgs).step_by(spec.publishers) {
                if let Some(due) = spec.due(index) {
                    tokio::time::sleep_until(started + due).await;
                }
                let header =
                    Header { phase: Phase::Measured, index: index as u32, sent_at_ns: tally.now_ns() };
                if node.broadcast(payload::make(spec.size, header)).await.is_err() {
                    return;
                }
            }
        });
    }
    let end = watch::until_complete(&tally.delivered, spec.expected()).await;
    let after = usage::now();
    let after_counts = snapshot(&nodes).await?;
    let last_ns = tally.last_delivery_ns.load(Ordering::Relaxed);
    // A run that did not complete says what was measured at its end, so that a rare stall can be
    // understood from the one run that showed it.
    if debug() || end != End::Completed {
        let (both, one) = eager_edges(&nodes).await;
        eprintln!("eager links at the end: {both} both ways, {one} one way, over {} nodes", nodes.len());
        let (a, b) = (after_counts, before_counts);
        eprintln!(
            "measured: grafts {} prunes {} reoffers {} refused sends {} duplicates {} \
             (eager {} lazy {} graft {}) optimisations {} deferred {} groups proven {} manifests signed {} verified {} \
             link ups/downs {}",
            a.grafts - b.grafts,
            a.prunes - b.prunes,
            a.reoffers - b.reoffers,
            a.refused - b.refused,
            a.duplicates - b.duplicates,
            a.dup_eager - b.dup_eager,
            a.dup_lazy - b.dup_lazy,
            a.dup_graft - b.dup_graft,
            a.optimisations - b.optimisations,
            a.deferred - b.deferred,
            a.groups_proven - b.groups_proven,
            a.manifests_signed - b.manifests_signed,
            a.manifests_verified - b.manifests_verified,
            {
                let d = link_changes.load(Ordering::Relaxed) - changes_before;
                format!("{}/{}", d & 0xffff_ffff, d >> 32)
            },
        );
    }

    publishers.shutdown().await;
    receivers.shutdown().await;
    drop(log_tx);
    let mut logs = Vec::new();
    while let Some(log) = log_rx.recv().await {
        logs.push(log);
    }
    if end != End::Completed {
        report_missing(spec, &logs);
    }
    let merged = merge(logs);
    Ok(Report {
        spec: spec.clone(),
        end,
        setup_ms,
        deliver_ms: last_ns.saturating_sub(start_ns) as f64 / 1e6,
        delivered: merged.distinct,
        duplicates_delivered_to_app: merged.duplicates,
        wire_bytes: after_counts.wire_bytes - before_counts.wire_bytes,
        payload_msgs_received: after_counts.payloads_received - before_counts.payloads_received,
        payloads_per_msg: dotray::node::fragment::piece_count(
            spec.size,
            dotray::node::core::Config::default().fragment_len,
        ),
        cpu_s: after.cpu_s - before.cpu_s,
        peak_rss_mb: after.peak_rss_mb,
        lat_p50_ms: merged.p50_ms,
        lat_p99_ms: merged.p99_ms,
    })
}

/// Whether `DOTRAY_BENCH_DEBUG` asks for progress details on stderr (overlay, warm-up rounds, the
/// measured phase's repair counters).
/// Prints, for every node short of messages, which ones it lacks (a stalled or timed-out run).
fn report_missing(spec: &Spec, logs: &[NodeLog]) {
    let mut logs: Vec<&NodeLog> = logs.iter().collect();
    logs.sort_by_key(|log| log.node);
    for log in logs {
        let missing = log.missing(spec.msgs, |index| spec.publisher_of(index) != log.node);
        if missing.is_empty() {
            continue;
        }
        let count: usize = missing.iter().map(|(first, last)| last - first + 1).sum();
        let shown: Vec<String> = missing.iter().take(8).map(|(a, b)| format!("{a}..={b}")).collect();
        let more = if missing.len() > 8 { ", ..." } else { "" };
        eprintln!("dotray: node {} lacks {count} messages: {}{more}", log.node, shown.join(", "));
    }
}

fn debug() -> bool {
    std::env::var_os("DOTRAY_BENCH_DEBUG").is_some()
}

/// Starts every node in the same instant, each seeded with node 0 and its predecessor: a join storm,
/// as when a whole network restarts at once. Every node listens on an address chosen beforehand, so
/// that a node's seeds are known before they run.
async fn start_nodes(
    count: usize,
    data_dir: Option<&std::path::Path>,
    history_mib: Option<u64>,
) -> Result<Vec<Node>, BenchError> {
    let addrs = free_loopback_addrs(count)?;
    let mut nodes: Vec<Node> = Vec::with_capacity(count);
    if let Some(dir) = data_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    for i in 0..count {
        let mut builder = Node::builder().listen(addrs[i]).network_id("dotray-bench");
        if let Some(dir) = data_dir {
            builder = builder.data_dir(dir.join(format!("node-{i}")));
        }
        if let Some(mib) = history_mib {
            builder = builder.history(dotray::HistoryLimits { max_bytes: mib << 20, ..Default::default() });
        }
        if i > 0 {
            builder = builder.seed(addrs[0]);
        }
        if i > 1 {
            builder = builder.seed(addrs[i - 1]);
        }
        nodes.push(builder.start().await?);
    }
    Ok(nodes)
}

/// `count` free loopback addresses: each bound once with port 0 to let the system pick, then released.
fn free_loopback_addrs(count: usize) -> Result<Vec<std::net::SocketAddr>, BenchError> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    Ok(listeners.iter().map(std::net::TcpListener::local_addr).collect::<Result<_, _>>()?)
}

/// Waits until every node has an active neighbour and the active links connect all nodes. (HyParView
/// does not top up a node's active view on its own: a late joiner may keep one or two links until
/// others join through it or a link fails, so "every node has k links" is not a settling condition.)
async fn await_overlay(nodes: &[Node]) -> Result<(), BenchError> {
    let wanted = 1;
    let started = Instant::now();
    let deadline = started + OVERLAY_DEADLINE;
    loop {
        let mut links: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        let mut enough = true;
        for node in nodes {
            let active: Vec<NodeId> = node
                .nodes()
                .await?
                .into_iter()
                .filter(|n| n.state == NodeState::Active)
                .map(|n| n.peer.id)
                .collect();
            enough &= active.len() >= wanted;
            links.insert(node.id(), active);
        }
        if enough && connected(&links, nodes.len()) {
            if debug() {
                eprintln!("overlay: one component after {:?}", started.elapsed());
            }
            return Ok(());
        }
        if debug() {
            let mut counts: Vec<usize> = links.values().map(Vec::len).collect();
            counts.sort_unstable();
            eprintln!("overlay: active counts {counts:?}, components {:?}", components(&links));
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Unsettled(format!("overlay not connected after {OVERLAY_DEADLINE:?}")));
        }
        tokio::time::sleep(OVERLAY_POLL).await;
    }
}

/// Waits until no node reported a neighbour up or down for [`QUIET_FOR`] (at most [`QUIET_DEADLINE`]).
///
/// A freshly joined node accepts every neighbour request for a while (membership's
/// `transient_timeout`), evicting a peer when its view is full, so the views keep changing for some
/// seconds after the last join; measuring meanwhile measures that churn (every new link starts eager).
async fn await_quiet(link_changes: &std::sync::atomic::AtomicU64) {
    let started = Instant::now();
    let deadline = started + QUIET_DEADLINE;
    let mut last = link_changes.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < QUIET_FOR {
        tokio::time::sleep(OVERLAY_POLL).await;
        let now = link_changes.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    if debug() {
        eprintln!(
            "overlay: quiet for {:?} after {:?} of waiting (at most {QUIET_DEADLINE:?})",
            since.elapsed(),
            started.elapsed()
        );
    }
}

/// True when the links (taken as undirected) reach all `count` nodes from any one of them.
fn connected(links: &HashMap<NodeId, Vec<NodeId>>, count: usize) -> bool {
    links.len() == count && components(links) == [count]
}

/// Sizes of the connected components of the links (taken as undirected), largest first.
fn components(links: &HashMap<NodeId, Vec<NodeId>>) -> Vec<usize> {
    let mut undirected: HashMap<NodeId, HashSet<NodeId>> = HashMap::new();
    for (a, peers) in links {
        undirected.entry(*a).or_default();
        for b in peers {
            undirected.entry(*a).or_default().insert(*b);
            undirected.entry(*b).or_default().insert(*a);
        }
    }
    let mut seen = HashSet::new();
    let mut sizes = Vec::new();
    for start in undirected.keys() {
        if !seen.insert(*start) {
            continue;
        }
        let mut size = 1;
        let mut queue = VecDeque::from([*start]);
        while let Some(a) = queue.pop_front() {
            for b in undirected.get(&a).into_iter().flatten() {
                if seen.insert(*b) {
                    size += 1;
                    queue.push_back(*b);
                }
            }
        }
        sizes.push(size);
    }
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

/// Broadcasts warm-up rounds from the publishers until [`CLEAN_ROUNDS`] rounds in a row carried no
/// duplicate payload, the last of them at least [`MIN_WARMUP`] after the first round (or until
/// [`MAX_WARMUP_ROUNDS`] have passed).
async fn warm_up(nodes: &[Node], spec: &Spec, tally: &Tally) -> Result<(), BenchError> {
    let per_round = WARMUP_MSGS.max(spec.publishers);
    let started = Instant::now();
    let mut clean = 0;
    for round in 0..MAX_WARMUP_ROUNDS {
        let before = snapshot(nodes).await?;
        let target = tally.warmup_delivered.load(Ordering::Relaxed) + (per_round * (nodes.len() - 1)) as u64;
        for index in 0..per_round {
            let header = Header { phase: Phase::Warmup, index: index as u32, sent_at_ns: tally.now_ns() };
            nodes[spec.publisher_of(index)].broadcast(payload::make(WARMUP_SIZE, header)).await?;
        }
        let end = watch::until(&tally.warmup_delivered, target, WARMUP_ROUND_LIMIT, WARMUP_ROUND_LIMIT).await;
        if end != End::Completed {
            return Err(BenchError::Unsettled(format!("warm-up round {round} ended {}", end.name())));
        }
        // Let late duplicates of this round arrive before judging it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = snapshot(nodes).await?;
        let duplicates = after.duplicates - before.duplicates;
        clean = if duplicates == 0 { clean + 1 } else { 0 };
        if clean >= CLEAN_ROUNDS && started.elapsed() >= MIN_WARMUP {
            eprintln!("dotray: tree settled after {} warm-up rounds", round + 1);
            return Ok(());
        }
        if debug() {
            eprintln!("dotray: warm-up round {round}: {duplicates} duplicate payloads");
        }
    }
    eprintln!("dotray: tree not settled after {MAX_WARMUP_ROUNDS} warm-up rounds; measuring anyway");
    Ok(())
}

/// Sums of every node's counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    wire_bytes: u64,
    payloads_received: u64,
    duplicates: u64,
    grafts: u64,
    prunes: u64,
    reoffers: u64,
    refused: u64,
    optimisations: u64,
    deferred: u64,
    dup_eager: u64,
    dup_lazy: u64,
    dup_graft: u64,
    groups_proven: u64,
    manifests_signed: u64,
    manifests_verified: u64,
}

/// Links eager at both ends, and at one end only (a tree over N nodes has N - 1 of the first kind
/// and none of the second).
async fn eager_edges(nodes: &[Node]) -> (usize, usize) {
    let mut eager = std::collections::HashSet::new();
    for node in nodes {
        if let Ok(topology) = node.topology().await {
            eager.extend(topology.eager.into_iter().map(|peer| (node.id(), peer)));
        }
    }
    let both = eager.iter().filter(|(a, b)| eager.contains(&(*b, *a))).count();
    (both / 2, eager.len() - both)
}

async fn snapshot(nodes: &[Node]) -> Result<Snapshot, BenchError> {
    let mut sum = Snapshot::default();
    for node in nodes {
        let (counters, driver) = node.counters().await?;
        sum.payloads_received += counters.payloads_received;
        sum.duplicates += counters.duplicates;
        sum.grafts += counters.grafts_sent;
        sum.prunes += counters.prunes_sent;
        sum.reoffers += counters.reoffers;
        sum.refused += driver.sends_refused;
        sum.optimisations += counters.optimisations;
        sum.groups_proven += counters.groups_proven;
        sum.manifests_signed += counters.manifests_signed;
        sum.manifests_verified += counters.manifests_verified;
        sum.deferred += counters.grafts_deferred;
        sum.dup_eager += counters.duplicates_eager;
        sum.dup_lazy += counters.duplicates_lazy;
        sum.dup_graft += counters.duplicates_graft_answer + counters.duplicates_after_graft;
        sum.wire_bytes += node.transport_stats().bytes_written;
    }
    Ok(sum)
}

/// One node's application: receives and records every delivery.
struct Receiver {
    log: HandedLog,
    /// Acknowledge what it receives (with data directories).
    ack: bool,
}

impl Receiver {
    async fn run(mut self, node: Node, tally: Arc<Tally>) {
        let mut batch = Vec::new();
        // With data directories: the newest message of each stream not acknowledged yet, and the
        // acknowledgement under way. One at a time, as an application that keeps processing while
        // its last acknowledgement commits: the next covers everything taken meanwhile.
        let mut unacked: HashMap<(NodeId, u64), dotray::Message> = HashMap::new();
        let mut acking: Option<tokio::task::JoinHandle<()>> = None;
        while node.recv_many(&mut batch, RECV_BATCH).await > 0 {
            let now = tally.now_ns();
            for message in batch.drain(..) {
                if let Some(header) = payload::read(&message.payload) {
                    self.log.log.record(header, now, &tally);
                }
                if self.ack {
                    // Kept without its payload: a delivered payload is a slice of the connection's
                    // read buffer, and holding it would keep that whole buffer from being reused.
                    let position = dotray::Message { payload: bytes::Bytes::new(), ..message };
                    unacked.insert((position.origin, position.epoch), position);
                }
            }
            if !unacked.is_empty() && acking.as_ref().is_none_or(|ack| ack.is_finished()) {
                let messages: Vec<dotray::Message> = unacked.drain().map(|(_, m)| m).collect();
                let node = node.clone();
                acking = Some(tokio::spawn(async move {
                    let _ = node.ack_all(&messages).await;
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectivity_sees_a_split() {
        let ids: Vec<NodeId> = (0..4).map(|_| NodeId::random()).collect();
        let mut links = HashMap::new();
        links.insert(ids[0], vec![ids[1]]);
        links.insert(ids[1], vec![]);
        links.insert(ids[2], vec![ids[3]]);
        links.insert(ids[3], vec![]);
        assert!(!connected(&links, 4));
        links.insert(ids[1], vec![ids[2]]);
        assert!(connected(&links, 4));
    }
}
