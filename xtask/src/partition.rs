//! `cargo xtask partition`: a partition on real sockets (issue #8). Demo nodes in two Linux network
//! namespaces joined by a veth pair broadcast while the link is cut for `--cut-secs` and restored; the
//! overlay must be one again within the documented bound and every node must deliver every message of
//! both sides exactly once. The scenario itself is `partition_scenario` (shared with the `dotray`
//! crate's `netns_partition` test); this module parses the options, builds the demo, creates the
//! namespaces (`netns`, deleted again at the end, also on error) and prints the verdict.
//!
//! Needs Linux, root and iproute2's `ip`. Logs: `target/partition/<node>-<run>.jsonl`. Exits non-zero
//! on any loss, duplicate, reordering or gap, when the cut did not split the overlay, or when it did
//! not heal within the bound.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::netns::{self, NetnsPair};
use crate::partition_scenario::{self, Plan};

const USAGE: &str =
    "usage: cargo xtask partition [--nodes-per-side N] [--cut-secs S] [--seed SEED] [--every SECONDS]";

fn parse(args: &[String]) -> Result<Plan> {
    let mut plan = Plan {
        nodes_per_side: 4,
        cut: Duration::from_secs(20),
        every: Duration::from_millis(200),
        before: Duration::from_secs(3),
        after: Duration::from_secs(5),
        seed: clock_seed(),
        log_dir: Some(crate::codegen::workspace_root().join("target").join("partition")),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--nodes-per-side" => {
                plan.nodes_per_side = value()?.parse().context("--nodes-per-side takes a number")?
            }
            "--cut-secs" => {
                let secs: f64 = value()?.parse().context("--cut-secs takes seconds")?;
                plan.cut = Duration::try_from_secs_f64(secs).context("--cut-secs takes seconds")?;
            }
            "--seed" => plan.seed = value()?.parse().context("--seed takes a number")?,
            "--every" => {
                let secs: f64 = value()?.parse().context("--every takes seconds")?;
                plan.every = Duration::try_from_secs_f64(secs).context("--every takes seconds")?;
            }
            _ => bail!("unknown argument {arg:?}\n{USAGE}"),
        }
    }
    if !(1..=100).contains(&plan.nodes_per_side) {
        bail!("--nodes-per-side must be 1 to 100");
    }
    if plan.every.is_zero() {
        bail!("--every must be more than zero");
    }
    Ok(plan)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let plan = parse(args)?;
    if let Some(why) = netns::unavailable() {
        bail!("cannot run partitions here: {why}");
    }
    let bin = crate::demo::build_demo()?;
    let bin = std::fs::canonicalize(&bin).with_context(|| format!("finding {}", bin.display()))?;
    println!(
        "== partition: {n}+{n} nodes, link cut for {:?}, each node broadcasting every {:?}, seed {}",
        plan.cut,
        plan.every,
        plan.seed,
        n = plan.nodes_per_side
    );
    if plan.cut + Duration::from_secs(1) >= partition_scenario::RETENTION_TIME {
        println!(
            "   note: a cut this long outlasts the {:?} retention window: messages sent early in it are \
             expected to be lost (reported as gaps)",
            partition_scenario::RETENTION_TIME
        );
    }
    // Declared before the run so that it is dropped after the nodes are stopped: the namespaces go
    // away however the run ends.
    let link = NetnsPair::create().context("creating the network namespaces")?;
    for stale in &link.removed_stale {
        println!("   deleted a stale namespace of an earlier run: {stale}");
    }
    if let Some(dir) = &plan.log_dir {
        println!("   logs: {}/<node>-<run>.jsonl", dir.display());
    }
    let outcome = partition_scenario::run(&bin, &link, &plan)?;
    drop(link);

    println!("\nlink changes across the cut (from the cut on):");
    for line in &outcome.timeline {
        println!("   {line}");
    }
    println!("\n{}", outcome.verdict.table());
    println!("{}", outcome.table());
    println!(
        "joined after {:.1} s; cut side {}; b0 seeds from a{}; heal bound {:?} (cut {:?}, {} nodes per side)",
        outcome.joined_after.as_secs_f64(),
        ["A", "B"][outcome.cut_side],
        outcome.bridge,
        outcome.bound,
        plan.cut,
        plan.nodes_per_side
    );
    for problem in &outcome.verdict.problems {
        println!("  problem: {problem}");
    }
    let failures = outcome.failures();
    if !failures.is_empty() {
        bail!("partition run failed (replay with --seed {}): {}", plan.seed, failures.join("; "));
    }
    println!(
        "healed and lost nothing: every node delivered every message of both sides exactly once, in order"
    );
    Ok(())
}
