//! `cargo xtask demo`: the seed's five-terminal scenario as one command.
//!
//! Builds the demo example, starts N nodes (default 5) as real processes on loopback (ports 2000 up, or
//! free ports when those are taken), each seeded by the previous one, nodes 3 and 5 broadcasting
//! `hello-3` / `hello-5`. Shows live what flows, kills the middle node (SIGKILL), shows the network
//! healing, restarts it at the same address, then stops every node and prints a summary per node
//! (sent, received, duplicates, missed) and the final overlay: drawn in the terminal, and written as
//! `target/demo/overlay.svg` (and `overlay.dot` for Graphviz). Pressing Enter while it runs prints the
//! overlay as it is then. Exits non-zero if any message was lost or duplicated. Stops by itself in
//! about half a minute.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cargo_build::Binary;
use crate::cli::{Flags, Help};
use crate::demo_log::{self, Run};
use crate::demo_net::{self, Cluster};
use crate::enter_key::EnterKey;
use crate::overlay::{dot, svg, terminal, topology::Topology};

/// The command's help.
pub(crate) static HELP: Help = Help {
    name: "demo",
    usage: &["demo [--nodes N] [--every SECONDS] [--base-port PORT]"],
    about: "\
the seed's demo as real processes: join, broadcast, kill and restart the middle node,
then a per-node summary and a picture of the overlay (about 30 s)",
    details: "\
options:
  --nodes N          demo processes (default 5, at least 3)
  --every SECONDS    how often the two senders broadcast (default 1; fractions allowed)
  --base-port PORT   the nodes listen on 127.0.0.1:PORT and up (default 2000; free ports when taken)
  -h, --help         this text

Nodes 3 and 5 say hello-3 and hello-5 (with other sizes, the second and the last node).
Press Enter while it runs to see the overlay as it is then: its neighbour links (only when stdin is
a terminal; which links are tree links the nodes tell when they stop).
At the end, the overlay as the nodes left it: its broadcast tree drawn in the terminal, then its
lazy links, and the picture target/demo/overlay.svg (nodes on a circle, tree links solid, lazy
links dashed; target/demo/overlay.dot holds the same graph for Graphviz).
Exits non-zero if any message was lost or duplicated.
",
};

struct Options {
    nodes: usize,
    every: f64,
    base_port: u16,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options { nodes: 5, every: 1.0, base_port: 2000 };
    let mut flags = Flags::new(&HELP, args);
    while let Some(flag) = flags.next()? {
        match flag {
            "--nodes" => options.nodes = flags.value(flag, "a number")?,
            "--every" => options.every = flags.value(flag, "seconds")?,
            "--base-port" => options.base_port = flags.value(flag, "a port")?,
            other => return Err(flags.unknown(other)),
        }
    }
    if options.nodes < 3 {
        return Err(flags.misuse("--nodes must be at least 3 (one is killed and restarted)"));
    }
    Ok(options)
}

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let bin = build_demo(false)?;
    let addrs = demo_net::local_addrs(options.base_port, options.nodes);
    let labels: Vec<String> = addrs.iter().map(|a| a.port().to_string()).collect();
    // As in the seed's README: nodes 3 and 5 (1-based) send; with other sizes, the second and the last.
    let senders: Vec<usize> = if options.nodes >= 5 { vec![2, 4] } else { vec![1, options.nodes - 1] };
    let middle = options.nodes / 2;
    let args_for = |i: usize| -> Vec<String> {
        let mut args = vec!["-l".to_owned(), addrs[i].to_string()];
        if i > 0 {
            args.extend(["-s".to_owned(), addrs[i - 1].to_string()]);
        }
        if senders.contains(&i) {
            args.extend(["-m".to_owned(), "--every".to_owned(), options.every.to_string()]);
            args.extend(["-i".to_owned(), (i + 1).to_string()]);
        }
        args
    };

    println!("== starting {} nodes on {} .. {}", options.nodes, addrs[0], addrs[options.nodes - 1]);
    for &s in &senders {
        println!("   node {} ({}) says hello-{} every {}s", s + 1, addrs[s], s + 1, options.every);
    }
    let mut keys = EnterKey::listen();
    if keys.is_listening() {
        println!("   press Enter at any time to see the overlay as it is then");
    }
    let mut cluster = Cluster::new(bin, options.nodes);
    let started = Instant::now();
    for (i, label) in labels.iter().enumerate() {
        cluster.start(i, label, &args_for(i)).context("starting a demo node")?;
        std::thread::sleep(Duration::from_millis(300));
    }
    watch(&cluster, &labels, started, Duration::from_secs(8), &mut keys);

    println!("== killing node {} ({}) with SIGKILL", middle + 1, addrs[middle]);
    let killed_at = Instant::now();
    cluster.kill(middle);
    watch(&cluster, &labels, started, Duration::from_secs(6), &mut keys);
    print_healing(&cluster.runs(), killed_at);

    println!("== restarting node {} at {}", middle + 1, addrs[middle]);
    cluster.start(middle, &labels[middle], &args_for(middle)).context("restarting the node")?;
    watch(&cluster, &labels, started, Duration::from_secs(8), &mut keys);

    println!("== stopping every node (SIGTERM: graceful leave)");
    cluster.stop_all(Duration::from_secs(5));
    let runs = cluster.runs();
    let verdict = demo_log::judge(&runs, Duration::from_secs(2), Duration::from_secs(2));
    println!("\n{}", verdict.table());
    println!("messages sent: {}, worst delivery delay: {:?}", verdict.sent, verdict.worst_delay);
    for problem in &verdict.problems {
        println!("  problem: {problem}");
    }
    if verdict.clean() {
        println!("every live node received every message exactly once, in order");
    }
    draw_overlay(&runs)?;
    if !verdict.clean() {
        bail!("messages were lost, duplicated or reordered");
    }
    Ok(())
}

/// Builds the demo example, optimised or not, and returns the binary's path.
pub(crate) fn build_demo(release: bool) -> Result<PathBuf> {
    let how = if release { " --release" } else { "" };
    println!("== building the demo (cargo build{how} --example demo)");
    let demo = Binary { package: "dotray", kind: "--example", name: "demo", release };
    crate::cargo_build::build(&demo)
}

/// Prints per-node delivery counts once a second for `how_long`, and the overlay when Enter is pressed.
fn watch(cluster: &Cluster, labels: &[String], started: Instant, how_long: Duration, keys: &mut EnterKey) {
    let until = Instant::now() + how_long;
    let mut tick = Instant::now() + Duration::from_secs(1);
    while tick <= until {
        if keys.wait(tick) {
            let topology = cluster.with_runs(Topology::now);
            println!("== the overlay at t={:.1}s", started.elapsed().as_secs_f64());
            print!("{}", terminal::draw(&topology));
            continue;
        }
        let counts = cluster.received();
        let cells: Vec<String> = labels.iter().zip(&counts).map(|(l, c)| format!("{l}:{c:>4}")).collect();
        println!("   t={:>4.1}s received  {}", started.elapsed().as_secs_f64(), cells.join("  "));
        tick += Duration::from_secs(1);
    }
}

/// Shows the neighbour changes that followed the kill: the overlay healing.
fn print_healing(runs: &[Run], since: Instant) {
    for run in runs.iter().filter(|r| r.ended.is_none()) {
        for (at, v) in run.lines.iter().filter(|(at, _)| *at >= since) {
            let event = v["event"].as_str().unwrap_or_default();
            if event == "up" || event == "down" {
                println!(
                    "   +{:>4}ms node {} neighbour {} {}",
                    at.duration_since(since).as_millis(),
                    run.node,
                    event,
                    v["peer"].as_str().unwrap_or_default()
                );
            }
        }
    }
}

/// Draws the overlay as the nodes left it: writes `target/demo/overlay.svg` and `overlay.dot`, prints
/// the terminal picture, and last the SVG's path.
fn draw_overlay(runs: &[Run]) -> Result<()> {
    let topology = Topology::at_exit(runs);
    let dir = crate::codegen::workspace_root().join("target").join("demo");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join("overlay.svg");
    for (path, text) in
        [(dir.join("overlay.dot"), dot::draw(&topology)), (svg_path.clone(), svg::draw(&topology))]
    {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("\n== the overlay when the nodes stopped");
    print!("{}", terminal::draw(&topology));
    // Relative to the working directory when inside it: shorter, and still a path to open.
    let shown =
        std::env::current_dir().ok().and_then(|cwd| svg_path.strip_prefix(cwd).ok().map(PathBuf::from));
    println!("overlay picture: {}", shown.unwrap_or(svg_path).display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::cli::testing::{args, assert_help, assert_misuse};

    #[test]
    fn flags() {
        let options = parse(&args("--nodes 7 --every 0.5 --base-port 3000"));
        assert!(options.is_ok_and(|o| (o.nodes, o.every, o.base_port) == (7, 0.5, 3000)));
        assert!(parse(&[]).is_ok_and(|o| (o.nodes, o.every, o.base_port) == (5, 1.0, 2000)));
        for line in ["--help", "-h", "--nodes 7 --help"] {
            assert_help(parse(&args(line)), "demo");
        }
        assert_misuse(parse(&args("--port 3000")), "unknown flag `--port`");
        assert_misuse(parse(&args("--base-port 70000")), "--base-port takes a port, not `70000`");
        assert_misuse(parse(&args("--nodes 2")), "at least 3");
    }
}
