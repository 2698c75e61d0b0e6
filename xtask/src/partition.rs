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

use crate::cli::{Flags, Help, clock_seed};
use crate::netns::{self, NetnsPair};
use crate::partition_scenario::{self, Plan};

/// The command's help.
pub(crate) static HELP: Help = Help {
    name: "partition",
    usage: &["partition [--nodes-per-side N] [--cut-secs S] [--seed SEED] [--every SECONDS]"],
    about: "\
two network namespaces joined by a veth pair (Linux, root): cut the link while both
sides broadcast, restore it, then a heal time and a delivery verdict (exit non-zero on
any loss or duplicate, or no heal within the bound)",
    details: "\
options:
  --nodes-per-side N   demo processes in each namespace (default 4, 1 to 100)
  --cut-secs S         how long the link stays cut (default 20; fractions allowed)
  --seed SEED          the seed of the run's choices, to replay it (default: the clock; printed)
  --every SECONDS      how often every node broadcasts (default 0.2)
  -h, --help           this text

Needs Linux, root and iproute2's `ip`; the namespaces are deleted again at the end.
Logs: target/partition/<node>-<run>.jsonl.
",
};

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
    let mut flags = Flags::new(&HELP, args);
    while let Some(flag) = flags.next()? {
        match flag {
            "--nodes-per-side" => plan.nodes_per_side = flags.value(flag, "a number")?,
            "--cut-secs" => plan.cut = seconds(&mut flags, flag)?,
            "--seed" => plan.seed = flags.value(flag, "a number")?,
            "--every" => plan.every = seconds(&mut flags, flag)?,
            other => return Err(flags.unknown(other)),
        }
    }
    if !(1..=100).contains(&plan.nodes_per_side) {
        return Err(flags.misuse("--nodes-per-side must be 1 to 100"));
    }
    if plan.every.is_zero() {
        return Err(flags.misuse("--every must be more than zero"));
    }
    Ok(plan)
}

/// The duration in seconds (fractions allowed) that follows `flag`.
fn seconds(flags: &mut Flags<'_>, flag: &str) -> Result<Duration> {
    let secs: f64 = flags.value(flag, "seconds")?;
    Duration::try_from_secs_f64(secs).map_err(|_| flags.misuse(format!("{flag} takes seconds, not {secs}")))
}

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let plan = parse(args)?;
    if let Some(why) = netns::unavailable() {
        bail!("cannot run partitions here: {why}");
    }
    let bin = crate::demo::build_demo(false)?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse;
    use crate::cli::testing::{args, assert_help, assert_misuse};

    #[test]
    fn flags() {
        let plan = parse(&args("--nodes-per-side 2 --cut-secs 2.5 --seed 9 --every 0.1"));
        assert!(plan.is_ok_and(|p| p.nodes_per_side == 2
            && p.cut == Duration::from_millis(2500)
            && p.seed == 9
            && p.every == Duration::from_millis(100)));
        for line in ["--help", "-h", "--cut-secs 5 --help"] {
            assert_help(parse(&args(line)), "partition");
        }
        assert_misuse(parse(&args("--nodes 3")), "unknown flag `--nodes`");
        assert_misuse(parse(&args("--nodes-per-side 0")), "1 to 100");
        assert_misuse(parse(&args("--cut-secs -1")), "--cut-secs takes seconds, not -1");
        assert_misuse(parse(&args("--every 0")), "more than zero");
    }
}
