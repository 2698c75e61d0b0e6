//! The simulator's command line. Usually started by `cargo xtask sim ...`, which builds it optimised.
//!
//! * `sim membership [--nodes N] [--seed S] [--only NAME]`: the membership scenarios, one table row
//!   each.
//! * `sim broadcast [--nodes N] [--msgs M] [--seed S] [--only NAME]`: the broadcast scenarios
//!   (membership and router on every node), one table row each.
//!
//! Exits non-zero when a scenario fails, printing the seed that replays it (`SEED=` or `--seed`).

use std::process::ExitCode;
use std::time::Instant;

use dotray_sim::{broadcast, scenarios};

const USAGE: &str = "usage: sim membership [--nodes N] [--seed S] [--only join|join-storm|crash-half|partition|churn|partition-long]
       sim broadcast [--nodes N] [--msgs M] [--seed S] [--only steady|crash-20|crash-50|loss-1|partition-30s]";

/// Parsed flags (`msgs` only for `broadcast`).
struct Args {
    nodes: usize,
    msgs: usize,
    seed: Option<u64>,
    only: Option<String>,
}

fn parse(args: &[String], broadcast: bool) -> Option<Args> {
    let mut out = Args { nodes: 1000, msgs: 10_000, seed: None, only: None };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next()?;
        match flag.as_str() {
            "--nodes" => out.nodes = value.parse().ok()?,
            "--msgs" if broadcast => out.msgs = value.parse().ok()?,
            "--seed" => out.seed = Some(value.parse().ok()?),
            "--only" => out.only = Some(value.clone()),
            _ => return None,
        }
    }
    (out.nodes >= 4 && out.msgs >= 1).then_some(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) if c == "membership" || c == "broadcast" => (c.as_str(), rest),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(args) = parse(rest, command == "broadcast") else {
        eprintln!("{USAGE}\n(--nodes must be at least 4)");
        return ExitCode::from(2);
    };
    let seed = args.seed.unwrap_or_else(dotray_sim::seed_from_env);
    let passed = if command == "membership" { membership(&args, seed) } else { broadcasts(&args, seed) };
    if passed {
        ExitCode::SUCCESS
    } else {
        eprintln!("a scenario failed: SEED={seed} to replay");
        ExitCode::FAILURE
    }
}

fn membership(args: &Args, seed: u64) -> bool {
    let params = scenarios::Params::new(args.nodes, seed);
    println!("| scenario | seed | nodes | result | figures |");
    println!("|---|---|---|---|---|");
    let mut passed = true;
    for (name, run) in scenarios::ALL {
        if args.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let started = Instant::now();
        let report = run(&params);
        print!("{report}");
        eprintln!("  ({name}: {:.1}s wall)", started.elapsed().as_secs_f64());
        passed &= report.passed;
    }
    passed
}

fn broadcasts(args: &Args, seed: u64) -> bool {
    let params = broadcast::Params::new(args.nodes, args.msgs, seed);
    println!("{}", broadcast::Report::HEADER);
    let mut passed = true;
    for (name, run) in broadcast::ALL {
        if args.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let started = Instant::now();
        let report = run(&params);
        print!("{report}");
        eprintln!("  ({name}: {:.1}s wall; {})", started.elapsed().as_secs_f64(), report.details);
        passed &= report.passed;
    }
    passed
}
