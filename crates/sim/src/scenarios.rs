//! The membership scenarios: each builds a network in a fresh [`Sim`], does something to it, measures,
//! and returns a [`Report`] with pass/fail and figures.
//!
//! 1. [`join`] — N nodes join through one seed, one every 20 ms.
//! 2. [`crash_half`] — half the nodes crash at once (half of those silently).
//! 3. [`partition`] — the network is cut in two random halves for a minute, then healed.
//! 4. [`churn`] — nodes join and crash continuously for two minutes.
//! 5. [`partition_long`] — the cut lasts ten minutes, longer than the failure budget of any address
//!    across it, so that only the original seed can bring the halves together again.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use dotray_membership::core::Config;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::NodeIdx;
use crate::metrics::{self, Snapshot};
use crate::network::NetworkConfig;
use crate::sim::Sim;

/// Time between two joins while a network is built.
const JOIN_GAP: Duration = Duration::from_millis(20);
/// Time to let a freshly built network settle before a fault is injected.
const SETTLE: Duration = Duration::from_secs(30);
/// How often connectivity is sampled during churn.
const SAMPLE: Duration = Duration::from_secs(1);
/// Resolution of the recovery times reported.
const STEP: Duration = Duration::from_millis(100);

/// Parameters shared by all scenarios.
#[derive(Debug, Clone)]
pub struct Params {
    /// Nodes in the network.
    pub nodes: usize,
    /// Seed of the run.
    pub seed: u64,
    /// The network model.
    pub network: NetworkConfig,
    /// The membership configuration of every node.
    pub membership: Config,
}

impl Params {
    /// Default network and membership configuration.
    pub fn new(nodes: usize, seed: u64) -> Self {
        Self { nodes, seed, network: NetworkConfig::default(), membership: Config::default() }
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub name: &'static str,
    /// Seed (`SEED=` replays it).
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Whether every check held.
    pub passed: bool,
    /// Measured figures, in display order.
    pub figures: Vec<(&'static str, String)>,
    /// The checks that failed, in words.
    pub failures: Vec<String>,
}

impl Report {
    fn new(name: &'static str, params: &Params) -> Self {
        Self {
            name,
            seed: params.seed,
            nodes: params.nodes,
            passed: true,
            figures: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn figure(&mut self, name: &'static str, value: impl std::fmt::Display) {
        self.figures.push((name, value.to_string()));
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.passed = false;
            self.failures.push(what());
        }
    }

    /// One table row: `| name | seed | nodes | PASS/FAIL | figures |`.
    pub fn row(&self) -> String {
        let mut figures = String::new();
        for (i, (k, v)) in self.figures.iter().enumerate() {
            let _ = write!(figures, "{}{k}={v}", if i == 0 { "" } else { ", " });
        }
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        format!("| {} | {} | {} | {verdict} | {figures} |", self.name, self.seed, self.nodes)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_report(f, &self.row(), &self.failures, self.passed, self.seed, None)
    }
}

/// How every scenario report prints: its table row; when it failed, why, extra `details`, and the seed
/// that replays it.
pub(crate) fn write_report(
    f: &mut std::fmt::Formatter<'_>,
    row: &str,
    failures: &[String],
    passed: bool,
    seed: u64,
    details: Option<&str>,
) -> std::fmt::Result {
    writeln!(f, "{row}")?;
    for failure in failures {
        writeln!(f, "  failed: {failure}")?;
    }
    if !passed {
        if let Some(details) = details {
            writeln!(f, "  {details}")?;
        }
        writeln!(f, "  SEED={seed} to replay")?;
    }
    Ok(())
}

/// A scenario: parameters in, report out.
pub type Scenario = fn(&Params) -> Report;

/// Every scenario, by name, in the order they are reported.
pub const ALL: [(&str, Scenario); 6] = [
    ("join", join),
    ("join-storm", join_storm),
    ("crash-half", crash_half),
    ("partition", partition),
    ("churn", churn),
    ("partition-long", partition_long),
];

/// Runs every scenario.
pub fn all(params: &Params) -> Vec<Report> {
    ALL.iter().map(|(_, run)| run(params)).collect()
}

/// Starts node 0 alone, then one node every [`JOIN_GAP`] through node 0 as seed.
fn build(params: &Params) -> (Sim, SocketAddr) {
    let mut sim = Sim::new(params.seed, params.network.clone(), params.membership.clone());
    sim.add_node(Vec::new());
    let seed = Sim::addr_of(0);
    for i in 1..params.nodes {
        sim.run_until(JOIN_GAP * i as u32);
        sim.add_node(vec![seed]);
    }
    (sim, seed)
}

/// Samples every [`STEP`] for up to `limit` until `done(snapshot)`; returns the time it took.
fn time_until(sim: &mut Sim, limit: Duration, done: impl Fn(&Snapshot) -> bool) -> Option<Duration> {
    let start = sim.now();
    loop {
        if let Err(e) = sim.check_consistency() {
            panic!("core and transport disagree at {:?}: {e} (SEED={})", sim.now(), sim.seed());
        }
        if done(&metrics::snapshot(sim)) {
            return Some(sim.now() - start);
        }
        if sim.now() - start >= limit {
            return None;
        }
        sim.run_for(STEP);
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()))
}

fn view_figures(report: &mut Report, snap: &Snapshot) {
    report.figure(
        "active min/mean/max",
        format!("{}/{:.2}/{}", snap.active_min, snap.active_mean, snap.active_max),
    );
}

/// Checks every node's views and connection counts against the configuration.
fn check_bounds(report: &mut Report, sim: &Sim, snap: &Snapshot) {
    let config = sim.membership_config();
    let (max_conns, at) = metrics::max_connections(sim);
    report.figure("max conns", format!("{max_conns} (node {at})"));
    report.check(max_conns <= config.max_connections(), || {
        format!("node {at} had {max_conns} connections, limit {}", config.max_connections())
    });
    report.check(snap.active_max <= config.active_view_capacity, || {
        format!("an active view of {} exceeds {}", snap.active_max, config.active_view_capacity)
    });
    let passive_max = sim.nodes.iter().map(|n| n.core.membership().passive_len()).max().unwrap_or(0);
    report.check(passive_max <= config.passive_view_capacity, || format!("a passive view of {passive_max}"));
}

/// After an overlay formed: 10 s more, then it must still be one with no isolated node, every view
/// and connection count within bounds.
fn holds_together(report: &mut Report, sim: &mut Sim) {
    sim.run_for(Duration::from_secs(10));
    let snap = metrics::snapshot(sim);
    report.check(snap.connected() && snap.isolated == 0, || {
        format!("{} components, {} isolated, 10 s after forming", snap.components, snap.isolated)
    });
    view_figures(report, &snap);
    check_bounds(report, sim, &snap);
}

/// Scenario 1: N nodes join through one seed. The overlay ends connected with no isolated node, every
/// view within bounds, and no node (the seed included) above the connection limit.
pub fn join(params: &Params) -> Report {
    let mut report = Report::new("join", params);
    let (mut sim, _) = build(params);
    let converged = time_until(&mut sim, Duration::from_secs(60), |s| s.connected() && s.isolated == 0);
    report.figure("converged after last join", secs(converged));
    report.check(converged.is_some(), || "the overlay did not converge within 60 s".to_owned());
    holds_together(&mut report, &mut sim);
    let seed = &sim.nodes[0];
    report.figure(
        "seed active/max conns",
        format!("{}/{}", seed.core.membership().active_len(), seed.max_connections),
    );
    report.check(seed.core.membership().active_len() >= 1, || "the seed has no neighbour".to_owned());
    report.figure("refused conns", sim.stats.refused);
    report.figure("events", sim.stats.events);
    report
}

/// How many seeds every node of the join storm is given.
const STORM_SEEDS: usize = 3;
/// How soon after the storm the overlay must be one.
const STORM_LIMIT: Duration = Duration::from_secs(10);

/// Scenario 1b: every node starts in the same instant (a data-centre restart, a deploy), all through
/// the same three seeds, which start in that instant too. An honest storm is not an attack: the
/// defences against strangers taking slots must not keep the overlay from forming. One connected
/// overlay with no isolated node within [`STORM_LIMIT`], every bound held.
pub fn join_storm(params: &Params) -> Report {
    let mut report = Report::new("join-storm", params);
    let mut sim = Sim::new(params.seed, params.network.clone(), params.membership.clone());
    let seeds: Vec<SocketAddr> = (0..STORM_SEEDS.min(params.nodes)).map(Sim::addr_of).collect();
    for i in 0..params.nodes {
        sim.add_node(seeds.iter().copied().filter(|s| *s != Sim::addr_of(i)).collect());
    }
    let converged = time_until(&mut sim, STORM_LIMIT, |s| s.connected() && s.isolated == 0);
    report.figure("one overlay after", secs(converged));
    report.check(converged.is_some(), || format!("no single overlay within {STORM_LIMIT:?}"));
    holds_together(&mut report, &mut sim);
    report.figure("refused conns", sim.stats.refused);
    report
}

/// Scenario 2: half of a settled network crashes at once (half of those silently). The survivors must
/// form one connected overlay again; the time it takes is reported.
pub fn crash_half(params: &Params) -> Report {
    let mut report = Report::new("crash-half", params);
    let (mut sim, _) = build(params);
    sim.run_for(SETTLE);
    let mut order: Vec<NodeIdx> = (0..params.nodes).collect();
    order.shuffle(sim.rng());
    for (k, &node) in order[..params.nodes / 2].iter().enumerate() {
        sim.crash(node, k % 2 == 0);
    }
    let ping = sim.membership_config().ping_interval;
    let healed = await_one_overlay(&mut report, &mut sim, "reconnected after", "survivors not one overlay");
    if let Some(d) = healed {
        report.figure("in ping periods", format!("{:.1}", d.as_secs_f64() / ping.as_secs_f64()));
    }
    report
}

/// Waits (up to 120 s) for the live nodes to form one overlay, records how long it took as `figure`
/// (or fails with `failure`), checks that it still holds 10 s later, and adds the view figures and the
/// bounds checks. Returns the time it took.
fn await_one_overlay(
    report: &mut Report,
    sim: &mut Sim,
    figure: &'static str,
    failure: &'static str,
) -> Option<Duration> {
    let limit = Duration::from_secs(120);
    let healed = time_until(sim, limit, |s| s.connected() && s.isolated == 0);
    report.figure(figure, secs(healed));
    report.check(healed.is_some(), || format!("{failure} within {}s", limit.as_secs()));
    sim.run_for(Duration::from_secs(10));
    let snap = metrics::snapshot(sim);
    report.check(snap.connected(), || format!("{} components 10 s later", snap.components));
    view_figures(report, &snap);
    check_bounds(report, sim, &snap);
    healed
}

/// Active links between the two sides of a partition (0 once each side declared the other down).
fn cross_links(sim: &Sim) -> usize {
    let index: std::collections::HashMap<_, _> =
        sim.nodes.iter().enumerate().map(|(i, n)| (n.info.id, i)).collect();
    sim.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.alive)
        .flat_map(|(i, n)| n.core.membership().active_peers().map(move |p| (i, p.id)))
        .filter(|(i, id)| index.get(id).is_some_and(|&j| sim.group_of(j) != sim.group_of(*i)))
        .count()
}

/// Scenario 3: the network is cut into two random halves for 60 s (each side declares the other down),
/// then the cut ends. The two halves must merge into one overlay on their own; the time is reported.
pub fn partition(params: &Params) -> Report {
    partition_for(params, Duration::from_secs(60))
}

/// Scenario 5: like [`partition`], with a cut of 600 s. By then every address across the cut has
/// failed `max_dial_failures` times and was dropped, except the original seed's.
pub fn partition_long(params: &Params) -> Report {
    let mut report = partition_for(params, Duration::from_secs(600));
    report.name = "partition-long";
    report
}

/// Scenario 3 with a cut of `cut` instead of 60 s. A cut of more than a few minutes outlasts the
/// failure budget of the addresses across it, so that only the original seeds and fresh peer exchanges
/// are left to merge the halves.
pub fn partition_for(params: &Params, cut: Duration) -> Report {
    let mut report = Report::new("partition", params);
    let (mut sim, _) = build(params);
    sim.run_for(SETTLE);
    let sides: Vec<u32> = (0..params.nodes).map(|_| u32::from(sim.rng().random_bool(0.5))).collect();
    sim.partition(|i| sides[i]);
    sim.run_for(cut);
    let cross = cross_links(&sim);
    let during = metrics::snapshot(&sim);
    report.figure("cut", format!("{}s", cut.as_secs()));
    report.figure("components in cut", during.components);
    report.check(during.components >= 2, || "the cut did not split the overlay".to_owned());
    report.figure("cross links at heal", cross);
    report.check(cross == 0, || format!("{cross} active links still cross the cut after {}s", cut.as_secs()));
    sim.heal_partition();
    await_one_overlay(&mut report, &mut sim, "merged after", "the halves did not merge");
    report
}

/// Scenario 4: for 120 s, one node joins and one crashes every period (a reset crash, one in four
/// silent; never the original seed, which new nodes join through together with a random live node). From 20 s on, every second, the nodes alive for at least 10 s must all be in one
/// component; the worst sample is reported.
pub fn churn(params: &Params) -> Report {
    let mut report = Report::new("churn", params);
    let (mut sim, seed) = build(params);
    sim.run_for(SETTLE);
    let period = Duration::from_secs_f64((500.0 / params.nodes as f64).clamp(0.25, 5.0));
    let duration = Duration::from_secs(120);
    let grace = Duration::from_secs(20);
    let settled_age = Duration::from_secs(10);
    let start = sim.now();
    let (mut next_churn, mut next_sample) = (start, start + grace);
    let (mut worst, mut bad_samples, mut samples, mut crashes, mut joins) = (1.0_f64, 0, 0, 0, 0);
    while sim.now() < start + duration {
        if sim.now() >= next_churn {
            let live: Vec<NodeIdx> = (1..sim.nodes.len()).filter(|&i| sim.nodes[i].alive).collect();
            let contact = live[sim.rng().random_range(0..live.len())];
            sim.add_node(vec![seed, Sim::addr_of(contact)]);
            let victim = live[sim.rng().random_range(0..live.len())];
            sim.crash(victim, crashes % 4 == 3);
            crashes += 1;
            joins += 1;
            next_churn += period;
        }
        if sim.now() >= next_sample {
            if let Err(e) = sim.check_consistency() {
                panic!("core and transport disagree at {:?}: {e} (SEED={})", sim.now(), sim.seed());
            }
            let snap = metrics::snapshot(&sim);
            let now = sim.now();
            let settled: Vec<NodeIdx> = (0..sim.nodes.len())
                .filter(|&i| sim.nodes[i].alive && now.saturating_sub(sim.nodes[i].started_at) >= settled_age)
                .collect();
            let mut counts = std::collections::HashMap::new();
            for &i in &settled {
                *counts.entry(snap.component_of[i]).or_insert(0usize) += 1;
            }
            let biggest = counts.values().copied().max().unwrap_or(0);
            let fraction = if settled.is_empty() { 1.0 } else { biggest as f64 / settled.len() as f64 };
            worst = worst.min(fraction);
            samples += 1;
            bad_samples += usize::from(biggest < settled.len());
            if biggest < settled.len() && std::env::var_os("SIM_DEBUG").is_some() {
                let main = counts.iter().max_by_key(|(_, c)| **c).map(|(k, _)| *k);
                for &i in settled.iter().filter(|&&i| Some(snap.component_of[i]) != main) {
                    let n = &sim.nodes[i];
                    eprintln!(
                        "t={:?} node {i} outside: active={} passive={} started={:?} nodes={:?}",
                        now,
                        n.core.membership().active_len(),
                        n.core.membership().passive_len(),
                        n.started_at,
                        n.core
                            .nodes(sim.instant_now())
                            .iter()
                            .map(|x| (x.peer.addr, x.state))
                            .collect::<Vec<_>>()
                    );
                }
            }
            next_sample += SAMPLE;
        }
        let step = next_churn.min(next_sample);
        sim.run_until(step);
    }
    report.figure("joins/crashes", format!("{joins}/{crashes}"));
    report.figure("worst connected fraction", format!("{:.4}", worst));
    report.figure("disconnected samples", format!("{bad_samples}/{samples}"));
    report.check(bad_samples == 0, || {
        format!("{bad_samples} of {samples} samples had settled nodes outside the main component (worst {worst:.4})")
    });
    let snap = metrics::snapshot(&sim);
    view_figures(&mut report, &snap);
    check_bounds(&mut report, &sim, &snap);
    report
}
