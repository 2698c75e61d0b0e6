//! The partition scenario on real sockets (issue #8): demo nodes on both sides of a veth link between
//! two network namespaces broadcast while the link is cut and restored. Measured: how soon the overlay
//! split and how soon after the restore it was one again; judged (with `demo_log`): every node delivered
//! every message of both sides exactly once, in per-origin order.
//!
//! Layout: side A's nodes listen on `10.213.0.1`, side B's on `10.213.0.2` (ports 7000 up), each inside
//! its side's namespace ([`crate::netns`]). Node `i` of a side seeds from node `i - 1` of the same side;
//! node `a0` starts the network, and `b0`, the first node of side B, lists a node of side A as its seed:
//! it joins across the link, so the overlay spans the link from the start, and after a cut longer than
//! the failure budget of the addresses across it, that seed is what finds the other side again. Every
//! node broadcasts `hello-<label>` every [`Plan::every`].
//!
//! Phases, each with a deadline, so that a run never hangs:
//!
//! 1. start every node; wait (at most [`JOIN_DEADLINE`]) until the overlay is one;
//! 2. broadcast for [`Plan::before`];
//! 3. cut the link (one end down; which side is chosen by the seed) for [`Plan::cut`], noting when the
//!    overlay split;
//! 4. restore the link; wait (at most [`heal_bound`]) until the overlay is one again: the heal time;
//! 5. keep broadcasting for [`Plan::after`] (what was sent during the cut catches up), then stop every
//!    node with SIGTERM;
//! 6. judge: every node must have delivered, exactly once, every message sent after the overlay first
//!    formed, except those of the last [`GRACE`] before the stop.
//!
//! "The overlay is one" is read from the logs ([`demo_log::Overlay`]): each node's `up`/`down` lines
//! give its active neighbours; a link counts when both of its ends report it, and the overlay is one
//! when those links connect every node.
//!
//! Shared by `cargo xtask partition` and the `dotray` crate's `netns_partition` test (included by path
//! with `demo_log`, `demo_net` and `netns`), so that both run the very same scenario; the test runs it
//! small.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::demo_log::{self, Overlay, Run, Verdict};
use crate::demo_net::Cluster;
use crate::netns::NetnsPair;

/// Side A's first listen port; node `i` of a side listens on `BASE_PORT + i` (namespaces are private,
/// so these never collide with anything on the host).
const BASE_PORT: u16 = 7000;
/// Longest wait for the overlay to form at the start.
pub const JOIN_DEADLINE: Duration = Duration::from_secs(30);
/// Messages sent this close to the stop are not required of anyone (all nodes stop at once).
pub const GRACE: Duration = Duration::from_secs(3);
/// How often the logs are read to see the overlay.
const POLL: Duration = Duration::from_millis(100);

// The defaults the heal bound rests on. xtask does not link the library crates, so these are copies;
// the `netns_partition` test checks them against `dotray-membership`'s and `dotray-transport`'s
// `Config::default()`.
/// `membership::core::Config::backoff_initial`.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// `membership::core::Config::backoff_max`.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// `membership::core::Config::max_dial_failures`.
pub const MAX_DIAL_FAILURES: u32 = 8;
/// `membership::core::Config::heal_interval`.
pub const HEAL_INTERVAL: Duration = Duration::from_secs(15);
/// `membership::core::Config::heal_seed_every`.
pub const HEAL_SEED_EVERY: u32 = 4;
/// `membership::core::Config::active_view_capacity`.
pub const ACTIVE_VIEW_CAPACITY: usize = 5;
/// `transport::Config::connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `router::core::Config::retention_time`: how long a message can wait for a node across a cut.
pub const RETENTION_TIME: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Nodes on each side of the link.
    pub nodes_per_side: usize,
    /// How long the link stays cut.
    pub cut: Duration,
    /// How often each node broadcasts.
    pub every: Duration,
    /// Broadcasting over the whole overlay before the cut.
    pub before: Duration,
    /// Broadcasting after the overlay healed, before the stop.
    pub after: Duration,
    /// Chooses the side whose end of the link goes down and the node of side A that `b0` seeds from.
    pub seed: u64,
    /// Where each node's log goes (`<label>-<run>.jsonl`), if anywhere.
    pub log_dir: Option<PathBuf>,
}

/// What happened, and the delivery verdict.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The plan that ran.
    pub plan: Plan,
    /// The side whose end of the link was taken down (0 = A, 1 = B).
    pub cut_side: usize,
    /// The node of side A that `b0` seeds from.
    pub bridge: usize,
    /// From the first start until the overlay was one.
    pub joined_after: Duration,
    /// From the cut until the overlay split, if it did.
    pub split_after: Option<Duration>,
    /// From the restore until the overlay was one again, if it was within the bound.
    pub healed_after: Option<Duration>,
    /// The heal bound for this plan ([`heal_bound`]).
    pub bound: Duration,
    /// Messages sent by side A and by side B while the link was cut.
    pub sent_during_cut: [u64; 2],
    /// Link changes across the cut between the cut and shortly after the heal, for the report.
    pub timeline: Vec<String>,
    /// The delivery verdict over every node's log.
    pub verdict: Verdict,
}

/// How soon after the restore the overlay must be one again, by the membership layer's documented
/// healing (`heal_interval` in `crates/membership/src/core/config.rs`):
///
/// * a cut shorter than the failure budget of an address heals when a node redials a peer across the
///   cut that it declared down. Redials back off exponentially from `backoff_initial`, at most
///   `backoff_max` apart, with equal jitter (each wait is half to all of its base). The waits spent
///   during a cut of `c` therefore add up to at least half the base of the wait under way at the
///   restore, which is so at most `2c` (and at most `backoff_max`); a dial under way may take one more
///   `connect_timeout`. A node redials as soon as its backoff allows while its active view has room,
///   which it always has when a side has at most `active_view_capacity` nodes; with a full view only
///   its heal timer redials (every `heal_interval` ± 25 %), which adds up to `1.25 * heal_interval`;
/// * a cut longer than that budget heals through the original seeds: `b0` dials its seed across the
///   link within `1.25 * heal_interval * heal_seed_every` (75 s), plus a connect.
pub fn heal_bound(cut: Duration, nodes_per_side: usize) -> Duration {
    if cut >= failure_budget() {
        return HEAL_INTERVAL.mul_f64(1.25) * HEAL_SEED_EVERY + CONNECT_TIMEOUT;
    }
    let mut bound = (cut * 2 + BACKOFF_INITIAL).min(BACKOFF_MAX) + CONNECT_TIMEOUT;
    if nodes_per_side > ACTIVE_VIEW_CAPACITY {
        bound += HEAL_INTERVAL.mul_f64(1.25);
    }
    bound
}

/// The shortest time an address across a cut survives after it was declared down: `max_dial_failures`
/// dials, each after the shortest jittered backoff (the first one as soon as it was declared down).
pub fn failure_budget() -> Duration {
    let base = |failures: u32| (BACKOFF_INITIAL * (1 << failures.saturating_sub(1).min(20))).min(BACKOFF_MAX);
    let bases: Duration = base(1) + (1..MAX_DIAL_FAILURES).map(base).sum::<Duration>();
    bases / 2
}

/// Runs the scenario on `link` with the demo binary `bin`, printing each phase as it starts.
///
/// An error means the scenario could not run (a node did not start, the overlay did not form, `ip`
/// failed); a run that went wrong in the network is an [`Outcome`] with [`Outcome::failures`].
pub fn run(bin: &Path, link: &NetnsPair, plan: &Plan) -> io::Result<Outcome> {
    let n = plan.nodes_per_side;
    let mut rng = Rng(plan.seed.max(1));
    let cut_side = rng.below(2);
    let bridge = rng.below(n);
    let bound = heal_bound(plan.cut, n);
    let label = |side: usize, i: usize| format!("{}{i}", ["a", "b"][side]);
    let addr = |side: usize, i: usize| SocketAddr::from((link.addrs[side], BASE_PORT + i as u16));
    let args_for = |side: usize, i: usize| -> Vec<String> {
        let mut args = vec!["-l".to_owned(), addr(side, i).to_string()];
        let seed = match (side, i) {
            (0, 0) => None,
            (1, 0) => Some(addr(0, bridge)),
            (side, i) => Some(addr(side, i - 1)),
        };
        if let Some(seed) = seed {
            args.extend(["-s".to_owned(), seed.to_string()]);
        }
        args.extend(["--every".to_owned(), plan.every.as_secs_f64().to_string()]);
        args.extend(["-i".to_owned(), label(side, i)]);
        args
    };

    let mut cluster = Cluster::new(bin.to_path_buf(), 2 * n);
    if let Some(dir) = &plan.log_dir {
        let _ = std::fs::remove_dir_all(dir);
        cluster = cluster.log_to(dir.clone())?;
    }
    let start = Instant::now();
    let t = |at: Instant| at.saturating_duration_since(start).as_secs_f64();
    println!("   t={:>5.1}s start {n} nodes in {} and {n} in {}", 0.0, link.ns[0], link.ns[1]);
    for side in 0..2 {
        for i in 0..n {
            cluster.start_in_netns(side * n + i, &label(side, i), &link.ns[side], &args_for(side, i))?;
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    let Some(joined) = wait_for(&cluster, Instant::now() + JOIN_DEADLINE, |o| o.is_one(2 * n)) else {
        let overlay = cluster.with_runs(Overlay::read);
        cluster.stop_all(Duration::from_secs(5));
        return Err(io::Error::other(format!(
            "the overlay did not form within {JOIN_DEADLINE:?}: {} of {} nodes listening, {} components",
            overlay.listening,
            2 * n,
            overlay.components
        )));
    };
    println!("   t={:>5.1}s overlay is one; broadcasting for {:?}", t(joined), plan.before);
    std::thread::sleep(plan.before);

    link.cut(cut_side)?;
    let cut_at = Instant::now();
    println!(
        "   t={:>5.1}s link cut ({} down in {}) for {:?}",
        t(cut_at),
        link.veth[cut_side],
        link.ns[cut_side],
        plan.cut
    );
    let restore_due = cut_at + plan.cut;
    let split = wait_for(&cluster, restore_due, |o| o.components > 1);
    match split {
        Some(at) => println!("   t={:>5.1}s overlay split, {:.1} s into the cut", t(at), t(at) - t(cut_at)),
        None => println!("   the overlay did not split during the cut"),
    }
    std::thread::sleep(restore_due.saturating_duration_since(Instant::now()));
    link.restore(cut_side)?;
    let restored_at = Instant::now();
    println!("   t={:>5.1}s link restored; waiting at most {bound:?} for one overlay", t(restored_at));
    let healed = wait_for(&cluster, restored_at + bound, |o| o.is_one(2 * n));
    match healed {
        Some(at) => println!(
            "   t={:>5.1}s overlay is one again, {:.1} s after the restore",
            t(at),
            t(at) - t(restored_at)
        ),
        None => println!("   the overlay was not one again within {bound:?}"),
    }
    println!("   broadcasting for {:?} more, then stopping every node (SIGTERM)", plan.after);
    std::thread::sleep(plan.after);
    cluster.stop_all(Duration::from_secs(5));

    let runs = cluster.runs();
    let first_start = runs.iter().map(|r| r.started).min().unwrap_or(start);
    // Every run must deliver what was sent once the overlay had formed: `judge` counts `settle` from
    // each run's own start, and the first start is the earliest.
    let settle = joined.saturating_duration_since(first_start);
    let verdict = demo_log::judge(&runs, settle, GRACE);
    let mut sent_during_cut = [0; 2];
    for run in &runs {
        let side = usize::from(run.node.starts_with('b'));
        let during = |at: &Instant| *at >= cut_at && *at <= restored_at;
        sent_during_cut[side] +=
            run.lines.iter().filter(|(at, v)| v["event"] == "send" && during(at)).count() as u64;
    }
    let until = healed.unwrap_or(restored_at + bound) + Duration::from_secs(1);
    Ok(Outcome {
        plan: plan.clone(),
        cut_side,
        bridge,
        joined_after: joined.saturating_duration_since(start),
        split_after: split.map(|at| at.saturating_duration_since(cut_at)),
        healed_after: healed.map(|at| at.saturating_duration_since(restored_at)),
        bound,
        sent_during_cut,
        timeline: timeline(&runs, cut_at, until),
        verdict,
    })
}

impl Outcome {
    /// What went wrong, if anything: loss, duplicates, reordering, gaps, no split, no heal in time.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let totals = self.verdict.totals();
        if !self.verdict.clean() {
            out.push(format!(
                "{} missed, {} duplicates, {} out of order",
                totals.missed, totals.duplicates, totals.out_of_order
            ));
        }
        if totals.gaps > 0 {
            out.push(format!("{} gap events (messages given up on)", totals.gaps));
        }
        for (side, sent) in self.sent_during_cut.iter().enumerate() {
            if *sent == 0 {
                out.push(format!("side {} sent nothing while the link was cut", ["A", "B"][side]));
            }
        }
        if self.split_after.is_none() {
            out.push(format!(
                "the cut ({:?}) did not split the overlay (a peer is declared down after 6-8 s of silence)",
                self.plan.cut
            ));
        }
        match self.healed_after {
            None => out.push(format!("the overlay was not one again within {:?} of the restore", self.bound)),
            Some(healed) if self.plan.cut + healed >= RETENTION_TIME && !self.verdict.clean() => {
                out.push(format!("the cut plus the heal outlasted the {RETENTION_TIME:?} retention window"))
            }
            Some(_) => {}
        }
        out
    }

    /// The summary as a markdown table of one row.
    pub fn table(&self) -> String {
        let totals = self.verdict.totals();
        let secs = |d: Option<Duration>| d.map_or("no".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        let mut out = String::from(
            "| nodes | cut | seed | sent | sent during cut (A/B) | delivered | duplicates | missed | gaps | worst delay | split after | healed after | bound |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        out.push_str(&format!(
            "| {n}+{n} | {} s | {} | {} | {}/{} | {} | {} | {} | {} | {:.1} s | {} | {} | {} s |\n",
            self.plan.cut.as_secs_f64(),
            self.plan.seed,
            self.verdict.sent,
            self.sent_during_cut[0],
            self.sent_during_cut[1],
            totals.received,
            totals.duplicates,
            totals.missed,
            totals.gaps,
            self.verdict.worst_delay.as_secs_f64(),
            secs(self.split_after),
            secs(self.healed_after),
            self.bound.as_secs_f64(),
            n = self.plan.nodes_per_side,
        ));
        out
    }
}

/// Reads the overlay every [`POLL`] until `done` holds (returns when) or `deadline` passes (`None`).
fn wait_for(cluster: &Cluster, deadline: Instant, mut done: impl FnMut(&Overlay) -> bool) -> Option<Instant> {
    loop {
        let now = Instant::now();
        if done(&cluster.with_runs(Overlay::read)) {
            return Some(now);
        }
        if now >= deadline {
            return None;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// The `up`/`down` lines between `from` and `until` that concern a peer on the other side of the link
/// (side A's addresses differ from side B's), as `+<secs> <node> <event> <peer>` from `from`.
fn timeline(runs: &[Run], from: Instant, until: Instant) -> Vec<String> {
    let mut lines: Vec<(Instant, String)> = Vec::new();
    for run in runs {
        let Some(me) = run.lines.iter().find(|(_, v)| v["event"] == "listening") else { continue };
        let my_ip = ip_of(me.1["addr"].as_str().unwrap_or_default());
        for (at, v) in run.lines.iter().filter(|(at, _)| *at >= from && *at <= until) {
            let event = v["event"].as_str().unwrap_or_default();
            let peer = v["peer"].as_str().unwrap_or_default();
            if (event == "up" || event == "down") && ip_of(peer) != my_ip {
                let secs = at.duration_since(from).as_secs_f64();
                lines.push((*at, format!("+{secs:>5.2}s {} {event:<4} {peer}", run.node)));
            }
        }
    }
    lines.sort();
    lines.into_iter().map(|(_, line)| line).collect()
}

fn ip_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(ip, _)| ip)
}

/// A small seeded generator (xorshift64*), so the choices depend on the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heal_bound_follows_the_backoff() {
        assert_eq!(heal_bound(Duration::from_secs(20), 4), Duration::from_secs(46));
        assert_eq!(heal_bound(Duration::from_secs(10), 2), Duration::from_secs(26));
        assert_eq!(heal_bound(Duration::from_secs(40), 4), Duration::from_secs(65));
        assert_eq!(
            heal_bound(Duration::from_secs(20), 8),
            Duration::from_secs(46) + HEAL_INTERVAL.mul_f64(1.25)
        );
        assert_eq!(failure_budget(), Duration::from_secs(62));
        assert_eq!(heal_bound(Duration::from_secs(300), 4), Duration::from_secs(80));
    }
}
