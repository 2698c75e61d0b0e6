//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! Each command lives in its own module. Run `cargo xtask help` for the list.

mod bench;
mod chaos;
mod codegen;
mod demo;
mod demo_log;
mod demo_net;
mod netns;
mod partition;
mod partition_scenario;
mod sim;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  codegen [--check]   regenerate the protobuf code from proto/ (--check: fail if the committed code is stale)
  sim membership [--nodes N] [--seed S]
                      run the membership scenarios in the deterministic simulator (1,000 nodes by default)
  sim broadcast [--nodes N] [--msgs M] [--seed S]
                      run the broadcast scenarios (membership + router; 1,000 nodes, 10,000 messages)
  demo [--nodes N] [--every SECONDS] [--base-port PORT]
                      the seed's demo as real processes: join, broadcast, kill and restart the middle
                      node, then a per-node summary and a picture of the overlay (about 30 s)
  bench [--nodes N] [--msgs M] [--size S] [--publishers P] [--runs R] [--json] [--quick] [--suite]
                      N dotray nodes in one process vs an ideal binary tree of plain TCP: goodput,
                      amplification, redundancy, latency, CPU, memory (--quick: small, checks
                      completion only; --suite: the four target workloads with a verdict)
  chaos [--nodes N] [--secs S] [--seed SEED] [--senders K] [--every SECONDS]
                      demo processes under SIGKILL/SIGTERM/restart for a bounded time, then a
                      delivery verdict (exit non-zero on any loss or duplicate)
  partition [--nodes-per-side N] [--cut-secs S] [--seed SEED] [--every SECONDS]
                      two network namespaces joined by a veth pair (Linux, root): cut the link while both
                      sides broadcast, restore it, then a heal time and a delivery verdict (exit non-zero
                      on any loss or duplicate, or no heal within the bound)
  help                this text
";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "help".to_owned());
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "codegen" => codegen::run(&rest),
        "bench" => bench::run(&rest),
        "chaos" => chaos::run(&rest),
        "demo" => demo::run(&rest),
        "partition" => partition::run(&rest),
        "sim" => sim::run(&rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}
