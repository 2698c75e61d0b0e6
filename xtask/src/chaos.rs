//! `cargo xtask chaos`: many demo processes, several broadcasting, while nodes are killed (SIGKILL),
//! stopped gracefully (SIGTERM) and restarted at the same address, for a bounded time. Then every
//! node's `--json` log is judged: every message reached, exactly once and in per-origin order, every
//! node that was up (and had joined) when it was sent and stayed up a grace period after.
//!
//! Seeded (`--seed`): the same seed makes the same choices at the same moments, so a failing run can be
//! replayed as closely as real processes allow. Exits non-zero on any loss, duplicate or reordering.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cli::{Flags, Help, clock_seed};
use crate::demo_log;
use crate::demo_net::{self, Cluster};

/// The command's help.
pub(crate) static HELP: Help = Help {
    name: "chaos",
    usage: &[
        "chaos [--nodes N] [--secs S] [--seed SEED] [--senders K] [--every SECONDS]",
        "chaos --durable [options as above]",
    ],
    about: "\
demo processes under SIGKILL/SIGTERM/restart for a bounded time, then a delivery
verdict (exit non-zero on any loss or duplicate)",
    details: "\
options:
  --nodes N          demo processes on 127.0.0.1, free ports (default 16, at least 4)
  --secs S           how long nodes are killed, stopped and restarted (default 120), then a calm end
  --seed SEED        the seed of the choices, to replay a run (default: from the clock; printed)
  --senders K        nodes that broadcast (default a quarter of the nodes, at least 2)
  --every SECONDS    how often each sender broadcasts (default 0.25; fractions allowed)
  --durable          every node keeps a data directory with a history (demo --data --history 64),
                     reused by its restarts: the verdict is across each node's runs (what one run
                     acknowledged must never come again; what was sent while a node was down is
                     owed when it is back, however long it was away; a message delivered but not
                     acknowledged when a run was killed may come again, counted as redelivered)
  -h, --help         this text

Logs: target/chaos/<node>-<run>.jsonl; data directories (--durable): target/chaos/data/<node>.
",
};

/// How long a node must have been up before a message for it to count as "up when it was sent"
/// (starting, binding and joining through its seeds).
const SETTLE: Duration = Duration::from_secs(3);
/// How long after a send a node must stay up for the message to be required of it.
const GRACE: Duration = Duration::from_secs(3);
/// Quiet time at the end, without kills, so the last messages can settle before the verdict.
const COOL_DOWN: Duration = Duration::from_secs(5);
/// With `--durable`: a node back this soon after a send owes the message. Every node keeps a history
/// larger than a run sends, so this is longer than any run: everything sent is owed.
const CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// With `--durable`: each node's history, in MiB (demo `--history`).
const HISTORY_MIB: &str = "64";
/// The router's default `gap_timeout`: with `--durable`, how long a restarted origin's first messages
/// may wait behind numbers its killed run stored but never sent.
const GAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most nodes down at once, as a fraction of all.
const MAX_DOWN_FRACTION: f64 = 0.3;

struct Options {
    nodes: usize,
    secs: u64,
    seed: u64,
    senders: usize,
    every: f64,
    durable: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options =
        Options { nodes: 16, secs: 120, seed: clock_seed(), senders: 0, every: 0.25, durable: false };
    let mut flags = Flags::new(&HELP, args);
    while let Some(flag) = flags.next()? {
        match flag {
            "--nodes" => options.nodes = flags.value(flag, "a number")?,
            "--secs" => options.secs = flags.value(flag, "whole seconds")?,
            "--seed" => options.seed = flags.value(flag, "a number")?,
            "--senders" => options.senders = flags.value(flag, "a number")?,
            "--every" => options.every = flags.value(flag, "seconds")?,
            "--durable" => options.durable = true,
            other => return Err(flags.unknown(other)),
        }
    }
    if options.nodes < 4 {
        return Err(flags.misuse("--nodes must be at least 4"));
    }
    if options.senders == 0 {
        options.senders = (options.nodes / 4).max(2);
    }
    Ok(options)
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

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let mut rng = Rng(options.seed.max(1));
    let bin = crate::demo::build_demo(false)?;
    let addrs = demo_net::local_addrs(0, options.nodes);
    let labels: Vec<String> = (0..options.nodes).map(|i| format!("n{i:02}")).collect();
    // Every node has two seeds among the others, node 0 included: a restarted node must be able to find
    // its way back in. (With none, a restarted node 0 broadcast into the void until another node's heal
    // timer found it, seconds later: its first messages then reached nodes that had left meanwhile too
    // late. Seeds that are down are retried with backoff.)
    let n = options.nodes;
    let log_dir = crate::codegen::workspace_root().join("target").join("chaos");
    let data_dir = log_dir.join("data");
    let args_for = |i: usize| -> Vec<String> {
        let mut args = vec!["-l".to_owned(), addrs[i].to_string()];
        if options.durable {
            let dir = data_dir.join(&labels[i]).display().to_string();
            args.extend(["--data".to_owned(), dir, "--history".to_owned(), HISTORY_MIB.to_owned()]);
        }
        let second = if i >= 2 { i / 2 } else { n / 2 };
        for seed in [(i + n - 1) % n, second] {
            if seed != i {
                args.extend(["-s".to_owned(), addrs[seed].to_string()]);
            }
        }
        // Senders spread over the nodes: every `stride`-th node, `senders` of them.
        let stride = (options.nodes / options.senders).max(1);
        if i.is_multiple_of(stride) && i / stride < options.senders {
            args.extend(["--every".to_owned(), options.every.to_string(), "-i".to_owned(), i.to_string()]);
        }
        args
    };
    println!(
        "== chaos: {} nodes, {} senders every {}s, {} s, seed {}{}",
        options.nodes,
        options.senders,
        options.every,
        options.secs,
        options.seed,
        if options.durable { ", durable (data directories)" } else { "" }
    );
    let _ = std::fs::remove_dir_all(&log_dir);
    let mut cluster = Cluster::new(bin, options.nodes).log_to(log_dir.clone())?;
    println!("   logs: {}/<node>-<run>.jsonl", log_dir.display());
    for (i, label) in labels.iter().enumerate() {
        cluster.start(i, label, &args_for(i)).context("starting a node")?;
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));

    let max_down = ((options.nodes as f64) * MAX_DOWN_FRACTION).floor() as usize;
    let started = Instant::now();
    let end = started + Duration::from_secs(options.secs);
    let (mut kills, mut stops, mut restarts) = (0, 0, 0);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(300 + rng.below(1200) as u64));
        let down: Vec<usize> = (0..options.nodes).filter(|&i| !cluster.is_running(i)).collect();
        let up: Vec<usize> = (0..options.nodes).filter(|&i| cluster.is_running(i)).collect();
        let roll = rng.below(100);
        if !down.is_empty() && (roll < 40 || down.len() >= max_down) {
            let i = down[rng.below(down.len())];
            cluster.start(i, &labels[i], &args_for(i)).context("restarting a node")?;
            restarts += 1;
            println!("   t={:>5.1}s restart {}", started.elapsed().as_secs_f64(), labels[i]);
        } else if down.len() < max_down && !up.is_empty() {
            let i = up[rng.below(up.len())];
            if roll < 85 {
                cluster.kill(i);
                kills += 1;
                println!("   t={:>5.1}s SIGKILL {}", started.elapsed().as_secs_f64(), labels[i]);
            } else {
                cluster.stop(i, Duration::from_secs(3));
                stops += 1;
                println!("   t={:>5.1}s SIGTERM {}", started.elapsed().as_secs_f64(), labels[i]);
            }
        }
    }
    println!("== cooling down {:?}, then stopping every node", COOL_DOWN);
    std::thread::sleep(COOL_DOWN);
    cluster.stop_all(Duration::from_secs(5));

    let runs = cluster.runs();
    let verdict = if options.durable {
        demo_log::judge_durable(&runs, SETTLE, GRACE, CATCH_UP_WINDOW, GAP_TIMEOUT)
    } else {
        demo_log::judge(&runs, SETTLE, GRACE)
    };
    let totals = verdict.totals();
    println!("\n{}", verdict.table());
    println!(
        "| seed | nodes | secs | kills | graceful stops | restarts | sent | delivered | duplicates | missed | gaps | worst delay |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {kills} | {stops} | {restarts} | {} | {} | {} | {} | {} | {:?} |",
        options.seed,
        options.nodes,
        options.secs,
        verdict.sent,
        totals.received,
        totals.duplicates,
        totals.missed,
        totals.gaps,
        verdict.worst_delay
    );
    if !verdict.worst_delayed.is_empty() {
        println!("\nworst delay: {}", verdict.worst_delayed);
    }
    if options.durable {
        println!(
            "\nredelivered by a restarted run (delivered, not yet acknowledged, when its earlier run was killed): {}",
            totals.redelivered
        );
    }
    for problem in &verdict.problems {
        println!("  problem: {problem}");
    }
    if !verdict.clean() {
        bail!("messages were lost, duplicated or reordered (replay with --seed {})", options.seed);
    }
    if verdict.sent == 0 {
        bail!("nothing was sent");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::cli::testing::{args, assert_help, assert_misuse};

    #[test]
    fn flags() {
        let options = parse(&args("--nodes 8 --secs 30 --seed 5 --every 0.5"));
        assert!(options.is_ok_and(|o| (o.nodes, o.secs, o.seed, o.senders, o.every) == (8, 30, 5, 2, 0.5)));
        assert!(parse(&args("--nodes 24 --senders 3")).is_ok_and(|o| o.senders == 3));
        assert!(parse(&args("--nodes 8 --durable")).is_ok_and(|o| o.durable));
        assert!(parse(&args("--nodes 8")).is_ok_and(|o| !o.durable));
        for line in ["--help", "-h", "--nodes 8 --help"] {
            assert_help(parse(&args(line)), "chaos");
        }
        assert_misuse(parse(&args("--kill 3")), "unknown flag `--kill`");
        assert_misuse(parse(&args("--nodes 3")), "at least 4");
        assert_misuse(parse(&args("--secs 1.5")), "--secs takes whole seconds, not `1.5`");
    }
}
