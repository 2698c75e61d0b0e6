//! The simulator's command line. Usually started by `cargo xtask sim ...`, which builds it optimised.
//!
//! * `sim membership [--nodes N] [--seed S] [--only NAME]`: the membership scenarios, one table row
//!   each.
//! * `sim broadcast [--nodes N] [--msgs M] [--seed S] [--only NAME]`: the broadcast scenarios
//!   (membership and router on every node), one table row each.
//! * `--seeds A..B` instead of `--seed`: every seed from A to B, then how many failed and (broadcast)
//!   the worst steady RMR.
//!
//! Exits non-zero when a scenario fails, printing the seed that replays it (`SEED=` or `--seed`).

use std::process::ExitCode;
use std::time::Instant;

use dotray_sim::{broadcast, scenarios};

const USAGE: &str = "usage: sim membership [--nodes N] [--seed S | --seeds A..B] [--only join|join-storm|crash-half|partition|churn|partition-long]
       sim broadcast [--nodes N] [--msgs M] [--seed S | --seeds A..B] [--only steady|rare-origins|crash-20|crash-50|loss-1|partition-30s]";

/// Parsed flags (`msgs` only for `broadcast`).
struct Args {
    nodes: usize,
    msgs: usize,
    seed: Option<u64>,
    /// `--seeds FIRST..LAST`: every seed of the range (inclusive), one after the other.
    seeds: Option<(u64, u64)>,
    only: Option<String>,
}

fn parse(args: &[String], broadcast: bool) -> Option<Args> {
    let mut out = Args { nodes: 1000, msgs: 10_000, seed: None, seeds: None, only: None };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next()?;
        match flag.as_str() {
            "--nodes" => out.nodes = value.parse().ok()?,
            "--msgs" if broadcast => out.msgs = value.parse().ok()?,
            "--seed" => out.seed = Some(value.parse().ok()?),
            "--seeds" => {
                let (first, last) = value.split_once("..")?;
                let (first, last) = (first.parse().ok()?, last.parse().ok()?);
                out.seeds = (first <= last).then_some((first, last));
                out.seeds?;
            }
            "--only" => out.only = Some(value.clone()),
            _ => return None,
        }
    }
    (out.nodes >= 4 && out.msgs >= 1 && !(out.seed.is_some() && out.seeds.is_some())).then_some(out)
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
    let seeds: Vec<u64> = match args.seeds {
        Some((first, last)) => (first..=last).collect(),
        None => vec![args.seed.unwrap_or_else(dotray_sim::seed_from_env)],
    };
    let mut failed = Vec::new();
    let mut worst: Option<(f64, &'static str, u64)> = None;
    for (i, &seed) in seeds.iter().enumerate() {
        let passed = if command == "membership" {
            membership(&args, seed, i == 0)
        } else {
            broadcasts(&args, seed, i == 0, &mut worst)
        };
        if !passed {
            failed.push(seed);
        }
    }
    if seeds.len() > 1 {
        println!(
            "\n{} seeds, {} failed{}",
            seeds.len(),
            failed.len(),
            if failed.is_empty() { "" } else { ":" }
        );
        for seed in &failed {
            println!("  SEED={seed}");
        }
        if let Some((rmr, name, seed)) = worst {
            println!("worst steady RMR: {rmr:.4} ({name}, seed {seed})");
        }
    }
    match failed.first() {
        None => ExitCode::SUCCESS,
        Some(seed) => {
            eprintln!("a scenario failed: SEED={seed} to replay");
            ExitCode::FAILURE
        }
    }
}

fn membership(args: &Args, seed: u64, header: bool) -> bool {
    let params = scenarios::Params::new(args.nodes, seed);
    if header {
        println!("| scenario | seed | nodes | result | figures |");
        println!("|---|---|---|---|---|");
    }
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

/// Runs the broadcast scenarios of one seed; `worst` keeps the highest steady RMR seen so far.
fn broadcasts(args: &Args, seed: u64, header: bool, worst: &mut Option<(f64, &'static str, u64)>) -> bool {
    let params = broadcast::Params::new(args.nodes, args.msgs, seed);
    if header {
        println!("{}", broadcast::Report::HEADER);
    }
    let mut passed = true;
    for (name, run) in broadcast::ALL {
        if args.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let started = Instant::now();
        let report = run(&params);
        print!("{report}");
        eprintln!("  ({name}: {:.1}s wall; {})", started.elapsed().as_secs_f64(), report.details);
        if broadcast::CHECKS_STEADY_RMR.contains(&name)
            && worst.is_none_or(|(rmr, ..)| report.steady_rmr > rmr)
        {
            *worst = Some((report.steady_rmr, name, seed));
        }
        passed &= report.passed;
    }
    passed
}
