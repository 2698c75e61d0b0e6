//! The broadcast scenarios: membership and router cores together on every node, a stream of messages
//! from random origins, and faults (crashes, loss, a partition) in the middle of it. Each returns a
//! [`Report`] with the papers' metrics and pass/fail:
//!
//! * **reliability** — of the (live node, message whose origin stayed alive) pairs, the share
//!   delivered; must be 100 %;
//! * **RMR** (relative message redundancy) — payload messages received / deliveries − 1, over the
//!   whole stream and over its second half (*steady*, once the first messages built the tree);
//! * **LDH** (last delivery hop) — per message, the largest hop count of any delivery; mean (max);
//!   beside it the mean **eccentricity** of the messages' origins in the overlay (the most hops any
//!   node is from the origin along shortest paths: no tree can do better);
//! * **duplicates delivered** to the application, **order violations** and **gaps** on streams of live
//!   origins — all must be 0.
//!
//! Scenarios: [`steady`] (no failure; steady RMR ≤ 0.01 and a mean LDH within twice the mean
//! eccentricity are checked), [`rare_origins`] (the same, with every message from a different origin,
//! each silent for minutes), [`crash_20`] and [`crash_50`]
//! (that share of nodes crashes at once in the middle of the stream, half of them silently), [`loss`]
//! (1 % of all messages lost on links) and [`partition`] (a 30 s cut into two halves, then healed).
//! `cargo xtask sim broadcast` runs them at 1,000 nodes and 10,000 messages; the tests of this crate at
//! 60–100 nodes and a few hundred.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use dotray_membership::core::Config as MembershipConfig;
use dotray_router::core::{Config as RouterConfig, StreamId};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::NodeIdx;
use crate::network::NetworkConfig;
use crate::sim::Sim;

mod diagnostics;
mod overlay;
use diagnostics::{causes, details, eager_shape};
use overlay::Overlay;

/// Time between two joins while the network is built.
const JOIN_GAP: Duration = Duration::from_millis(20);
/// Time for the overlay to settle before the stream starts.
const SETTLE: Duration = Duration::from_secs(20);
/// Time after the last broadcast (or the end of the last fault) for repairs to finish: longer than the
/// router's `gap_timeout`, and than membership's failure detection.
const DRAIN: Duration = Duration::from_secs(30);
/// Length of the partition of [`partition`].
const CUT: Duration = Duration::from_secs(30);
/// Steady-state RMR that [`steady`] and [`rare_origins`] must reach.
const STEADY_RMR_MAX: f64 = 0.01;
/// The most the mean last delivery hop may be, in [`steady`] and [`rare_origins`], as a multiple of
/// the origins' mean eccentricity.
const LDH_OVER_ECCENTRICITY_MAX: f64 = 2.0;
/// In [`rare_origins`], every origin stays silent at least this long between two of its messages.
const RARE_SILENCE: Duration = Duration::from_secs(120);
/// The scenarios that check the steady-state RMR and the tree's depth.
pub const CHECKS_STEADY_RMR: [&str; 2] = ["steady", "rare-origins"];

/// Parameters shared by the broadcast scenarios.
#[derive(Debug, Clone)]
pub struct Params {
    /// Nodes in the network.
    pub nodes: usize,
    /// Messages broadcast, from random live origins.
    pub messages: usize,
    /// Time between two broadcasts.
    pub interval: Duration,
    /// Broadcasts come from this many origins (the longest-lived live nodes); `None`: from any live
    /// node, chosen at random for each message.
    pub origins: Option<usize>,
    /// Seed of the run.
    pub seed: u64,
    /// The network model.
    pub network: NetworkConfig,
    /// Membership configuration of every node.
    pub membership: MembershipConfig,
    /// Router configuration of every node.
    pub router: RouterConfig,
}

impl Params {
    /// Default network, membership and router configuration; a message every 5 ms (many origins in
    /// flight at once: a message crosses the network in about 100 ms).
    pub fn new(nodes: usize, messages: usize, seed: u64) -> Self {
        Self {
            nodes,
            messages,
            interval: Duration::from_millis(5),
            origins: None,
            seed,
            network: NetworkConfig::default(),
            membership: MembershipConfig::default(),
            router: RouterConfig::default(),
        }
    }
}

/// A fault injected at a time relative to the first broadcast.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// This share of the live nodes crashes at once (every other one silently).
    Crash(f64),
    /// The tree root (the node whose beacon rounds the live nodes follow) crashes silently.
    CrashRoot,
    /// Every link loses this share of its messages from now on.
    Loss(f64),
    /// The network is cut into two random halves.
    Cut,
    /// The cut ends.
    Heal,
}

/// The outcome of one scenario.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Scenario name.
    pub name: &'static str,
    /// Seed (`SEED=` replays it).
    pub seed: u64,
    /// Nodes at the start.
    pub nodes: usize,
    /// Messages broadcast.
    pub messages: usize,
    /// Nodes alive at the end.
    pub live_nodes: usize,
    /// Share of (live node, live-origin message) pairs delivered, in percent.
    pub reliability: f64,
    /// Payloads received / deliveries − 1, over the whole stream.
    pub rmr: f64,
    /// The same over the second half of the stream.
    pub steady_rmr: f64,
    /// Mean over live-origin messages of their last delivery hop.
    pub ldh_mean: f64,
    /// Largest last delivery hop.
    pub ldh_max: u32,
    /// Mean over the same messages of their origin's eccentricity in the overlay.
    pub eccentricity_mean: f64,
    /// Deliveries of an already delivered message.
    pub duplicates: u64,
    /// Deliveries out of order.
    pub order_violations: u64,
    /// Gap events on streams of live origins.
    pub live_gaps: u64,
    /// Gap events in total (streams of crashed origins may legitimately have some).
    pub gaps: u64,
    /// Protocol violations between the (honest) simulated nodes.
    pub violations: u64,
    /// Distinct tree roots the live nodes follow at the end (1 once the beacon has settled).
    pub roots: usize,
    /// Whether that root (the smallest, if several) is alive.
    pub root_alive: bool,
    /// Links eager at both ends among live nodes at the end (a spanning tree has `live_nodes - 1`).
    pub eager_edges: usize,
    /// Connected components of those links among the live nodes.
    pub eager_components: usize,
    /// Diagnostics: duplicate receptions by cause over the second half of the stream, grafts and
    /// prunes, and the shape of the eager graph at the end.
    pub details: String,
    /// Whether every check held.
    pub passed: bool,
    /// The checks that failed, in words.
    pub failures: Vec<String>,
}

impl Report {
    /// The markdown table header matching [`Report::row`].
    pub const HEADER: &'static str = "| scenario | seed | nodes | messages | reliability | RMR | steady RMR | LDH mean (max) | eccentricity mean | duplicates delivered | order violations | gaps live/all | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    /// One markdown table row.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {:.3}% | {:.4} | {:.4} | {:.1} ({}) | {:.1} | {} | {} | {}/{} | {} |",
            self.name,
            self.seed,
            self.nodes,
            self.messages,
            self.reliability,
            self.rmr,
            self.steady_rmr,
            self.ldh_mean,
            self.ldh_max,
            self.eccentricity_mean,
            self.duplicates,
            self.order_violations,
            self.live_gaps,
            self.gaps,
            if self.passed { "PASS" } else { "FAIL" },
        )
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.passed = false;
            self.failures.push(what());
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::scenarios::write_report(
            f,
            &self.row(),
            &self.failures,
            self.passed,
            self.seed,
            Some(&self.details),
        )
    }
}

/// A scenario: parameters in, report out.
pub type Scenario = fn(&Params) -> Report;

/// Every scenario, by name, in the order they are reported.
pub const ALL: [(&str, Scenario); 6] = [
    ("steady", steady),
    ("rare-origins", rare_origins),
    ("crash-20", crash_20),
    ("crash-50", crash_50),
    ("loss-1", loss),
    ("partition-30s", partition),
];

/// No failure. Everything delivered exactly once, the tree settles (steady-state RMR ≤ 0.01) and
/// stays shallow (mean LDH within twice the origins' mean eccentricity).
pub fn steady(params: &Params) -> Report {
    let report = run("steady", params, params.interval, Order::Random, &[]);
    check_tree(report)
}

/// Like [`steady`], but every message comes from a different origin (all live nodes in turn, in a
/// random order), one every [`RARE_SILENCE`] / nodes at most: each origin speaks once in minutes, as
/// the wallets of a blockchain network do. The tree must settle and stay shallow all the same.
pub fn rare_origins(params: &Params) -> Report {
    let interval = params.interval.max(RARE_SILENCE / params.nodes.max(1) as u32);
    let report = run("rare-origins", params, interval, Order::EachInTurn, &[]);
    check_tree(report)
}

fn check_tree(mut report: Report) -> Report {
    let rmr = report.steady_rmr;
    report.check(rmr <= STEADY_RMR_MAX, || format!("steady-state RMR {rmr:.4} > {STEADY_RMR_MAX}"));
    let (ldh, ecc) = (report.ldh_mean, report.eccentricity_mean);
    report.check(ldh <= LDH_OVER_ECCENTRICITY_MAX * ecc, || {
        format!("mean LDH {ldh:.1} > {LDH_OVER_ECCENTRICITY_MAX} × mean eccentricity {ecc:.1}")
    });
    report
}

/// How each message's origin is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Any live node (or one of `Params::origins`), at random for each message.
    Random,
    /// Every live node in turn, in a random order, before any speaks again.
    EachInTurn,
}

/// 20 % of the nodes crash at once in the middle of the stream.
pub fn crash_20(params: &Params) -> Report {
    run("crash-20", params, params.interval, Order::Random, &[(0.5, Fault::Crash(0.2))])
}

/// 50 % of the nodes crash at once in the middle of the stream.
pub fn crash_50(params: &Params) -> Report {
    run("crash-50", params, params.interval, Order::Random, &[(0.5, Fault::Crash(0.5))])
}

/// Every link loses 1 % of its messages (membership's too) for the whole stream.
pub fn loss(params: &Params) -> Report {
    run("loss-1", params, params.interval, Order::Random, &[(0.0, Fault::Loss(0.01))])
}

/// The tree root crashes silently a third into the stream. The live nodes must deliver everything, give
/// the root up after `root_timeout`, follow one new root, and cut the tree again: all of them must
/// name the same, live root at the end, and the eager graph must be a spanning tree of them.
pub fn crash_root(params: &Params) -> Report {
    let mut report = run("crash-root", params, params.interval, Order::Random, &[(0.33, Fault::CrashRoot)]);
    let (roots, alive) = (report.roots, report.root_alive);
    report.check(roots == 1 && alive, || format!("live nodes follow {roots} roots (alive: {alive})"));
    let (edges, components, live) = (report.eager_edges, report.eager_components, report.live_nodes);
    report.check(edges + 1 == live && components == 1, || {
        format!("eager graph of {edges} edges in {components} components over {live} live nodes")
    });
    report
}

/// The tree roots the live nodes follow, smallest first.
fn tree_roots(sim: &Sim) -> Vec<dotray_codec::NodeId> {
    let mut roots: Vec<_> =
        sim.nodes.iter().filter(|n| n.alive).filter_map(|n| n.core.router().tree_root()).collect();
    roots.sort_unstable();
    roots.dedup();
    roots
}

/// 1 % of all messages lost on every link for the whole stream, and 20 % of the nodes crashing at once
/// in its middle: repair must work through lossy links while the tree re-forms.
pub fn crash_with_loss(params: &Params) -> Report {
    let faults = [(0.0, Fault::Loss(0.01)), (0.5, Fault::Crash(0.2))];
    run("crash-20+loss-1", params, params.interval, Order::Random, &faults)
}

/// The network is cut in two random halves for 30 s (`CUT`) in the middle of the stream, then healed.
/// Afterwards every node must deliver every message, including those broadcast on the other side
/// during the cut. The stream is spread so that it covers the cut, and the router's retention is
/// raised to cover the cut plus the time membership takes to merge the halves: `retention_time`, and
/// the settled payloads a node keeps, which every message of the stream fits in (the property
/// checked is "within the retention window").
pub fn partition(params: &Params) -> Report {
    let mut params = params.clone();
    params.router.retention_time = params.router.retention_time.max(CUT * 4);
    params.router.retention_settled_max_messages =
        params.router.retention_settled_max_messages.max(params.messages);
    params.router.stream_idle_timeout = params.router.stream_idle_timeout.max(params.router.retention_time);
    params.router.max_forgotten_streams =
        params.router.max_forgotten_streams.max(params.router.min_forgotten_streams());
    let span = CUT * 2;
    let interval = params.interval.max(span / params.messages.max(1) as u32);
    let stream = interval * params.messages as u32;
    let start = (stream.as_secs_f64() - CUT.as_secs_f64()).max(0.0) / 2.0 / stream.as_secs_f64();
    let end = start + CUT.as_secs_f64() / stream.as_secs_f64();
    run("partition-30s", &params, interval, Order::Random, &[(start, Fault::Cut), (end, Fault::Heal)])
}

/// Builds the network, streams `params.messages` messages `interval` apart from live origins chosen
/// in `order`, injecting each fault at its fraction of the stream's length, lets repairs finish, and
/// measures.
fn run(
    name: &'static str,
    params: &Params,
    interval: Duration,
    order: Order,
    faults: &[(f64, Fault)],
) -> Report {
    let mut sim = build(params);
    let total = params.messages;
    let start = sim.now();
    let stream_len = interval * total as u32;
    let mut faults: Vec<(Duration, Fault)> =
        faults.iter().map(|&(at, f)| (start + stream_len.mul_f64(at), f)).collect();
    faults.sort_by_key(|(at, _)| *at);
    let mut faults = faults.into_iter().peekable();
    let mut half = (0, 0);
    let mut half_causes = [0; 15];
    let mut overlay = Overlay::default();
    let mut turn: Vec<NodeIdx> = Vec::new();
    for k in 0..total {
        let at = start + interval * k as u32;
        while let Some((when, fault)) = faults.next_if(|(when, _)| *when <= at) {
            sim.run_until(when);
            inject(&mut sim, fault);
        }
        sim.run_until(at);
        if k == total / 2 {
            half = sim.router_totals();
            half_causes = causes(&sim);
        }
        let live: Vec<NodeIdx> = (0..sim.nodes.len()).filter(|&i| sim.nodes[i].alive).collect();
        let origin = match order {
            Order::Random => {
                let choices = params.origins.map_or(live.len(), |n| n.clamp(1, live.len()));
                live[sim.rng().random_range(0..choices)]
            }
            Order::EachInTurn => loop {
                if turn.is_empty() {
                    turn.clone_from(&live);
                    turn.shuffle(sim.rng());
                }
                match turn.pop() {
                    Some(node) if sim.nodes[node].alive => break node,
                    _ => {}
                }
            },
        };
        let payload = Bytes::from((k as u64).to_le_bytes().to_vec());
        let eccentricity = overlay.eccentricity(&sim, origin);
        if sim.broadcast(origin, payload).is_some()
            && let Some(b) = sim.deliveries.broadcasts.last_mut()
        {
            b.eccentricity = eccentricity;
        }
    }
    for (when, fault) in faults {
        sim.run_until(when.max(sim.now()));
        inject(&mut sim, fault);
    }
    sim.run_for(DRAIN);
    let mut report = measure(name, params, &sim, half);
    report.details = details(&sim, half_causes);
    let roots = tree_roots(&sim);
    report.roots = roots.len();
    report.root_alive = roots.first().is_some_and(|id| sim.nodes.iter().any(|n| n.alive && n.info.id == *id));
    (report.eager_edges, _, report.eager_components) = eager_shape(&sim);
    report
}

/// A settled overlay of `params.nodes` nodes, each running a router.
fn build(params: &Params) -> Sim {
    let mut sim = Sim::new(params.seed, params.network.clone(), params.membership.clone());
    sim.set_router_config(params.router.clone());
    sim.add_node(Vec::new());
    let seed = Sim::addr_of(0);
    for i in 1..params.nodes {
        sim.run_until(JOIN_GAP * i as u32);
        sim.add_node(vec![seed]);
    }
    sim.run_for(SETTLE);
    sim
}

fn inject(sim: &mut Sim, fault: Fault) {
    match fault {
        Fault::Crash(share) => {
            let mut live: Vec<NodeIdx> = (0..sim.nodes.len()).filter(|&i| sim.nodes[i].alive).collect();
            live.shuffle(sim.rng());
            let count = (live.len() as f64 * share).round() as usize;
            for (k, &node) in live[..count].iter().enumerate() {
                sim.crash(node, k % 2 == 0);
            }
        }
        Fault::CrashRoot => {
            let root = tree_roots(sim)
                .into_iter()
                .next()
                .and_then(|id| sim.nodes.iter().position(|n| n.info.id == id));
            if let Some(root) = root {
                sim.crash(root, true);
            }
        }
        Fault::Loss(p) => sim.set_loss(p),
        Fault::Cut => {
            let sides: Vec<u32> =
                (0..sim.nodes.len()).map(|_| u32::from(sim.rng().random_bool(0.5))).collect();
            sim.partition(|i| sides[i]);
        }
        Fault::Heal => sim.heal_partition(),
    }
}

/// Computes the figures and checks the delivery promises.
fn measure(name: &'static str, params: &Params, sim: &Sim, half: (u64, u64)) -> Report {
    let d = &sim.deliveries;
    let live: Vec<NodeIdx> = (0..sim.nodes.len()).filter(|&i| sim.nodes[i].alive).collect();
    let (mut expected, mut got, mut ldh_sum, mut ldh_max, mut counted) = (0u64, 0u64, 0u64, 0u32, 0u64);
    let mut eccentricity_sum = 0u64;
    for b in d.broadcasts.iter().filter(|b| sim.nodes[b.origin].alive) {
        for &n in live.iter().filter(|&&n| n != b.origin) {
            expected += 1;
            got += u64::from(d.delivered(n, b.id));
        }
        ldh_sum += u64::from(b.ldh);
        ldh_max = ldh_max.max(b.ldh);
        eccentricity_sum += u64::from(b.eccentricity);
        counted += 1;
    }
    let live_streams: HashSet<StreamId> =
        d.broadcasts.iter().filter(|b| sim.nodes[b.origin].alive).map(|b| b.id.stream).collect();
    let live_gaps = d
        .gapped()
        .filter(|&(node, stream, _)| sim.nodes[node].alive && live_streams.contains(&stream))
        .count() as u64;
    let (received, delivered) = sim.router_totals();
    let rmr = received as f64 / delivered.max(1) as f64 - 1.0;
    let steady_rmr = (received - half.0) as f64 / (delivered - half.1).max(1) as f64 - 1.0;
    let mut report = Report {
        name,
        seed: params.seed,
        nodes: params.nodes,
        messages: d.broadcasts.len(),
        live_nodes: live.len(),
        reliability: if expected == 0 { 100.0 } else { got as f64 * 100.0 / expected as f64 },
        rmr,
        steady_rmr,
        ldh_mean: ldh_sum as f64 / counted.max(1) as f64,
        ldh_max,
        eccentricity_mean: eccentricity_sum as f64 / counted.max(1) as f64,
        duplicates: d.duplicates,
        order_violations: d.order_violations,
        live_gaps,
        gaps: d.gaps,
        violations: d.violations,
        roots: 0,
        root_alive: false,
        eager_edges: 0,
        eager_components: 0,
        details: String::new(),
        passed: true,
        failures: Vec::new(),
    };
    report.check(expected > 0, || "nothing was checked (no live-origin message)".to_owned());
    report.check(got == expected, || {
        format!("{} (live node, live-origin message) pairs undelivered", expected - got)
    });
    let (dups, order, violations) = (d.duplicates, d.order_violations, d.violations);
    report.check(dups == 0, || format!("{dups} duplicate deliveries"));
    report.check(order == 0, || format!("{order} order violations"));
    report.check(live_gaps == 0, || format!("{live_gaps} gaps on streams of live origins"));
    report.check(violations == 0, || format!("{violations} protocol violations"));
    report
}
