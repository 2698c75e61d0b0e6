//! `sim membership [--nodes N] [--seed S] [--only NAME]`: runs the membership scenarios and prints one
//! table row per scenario. Exits non-zero when one fails, printing the seed that replays it.
//!
//! Usually started by `cargo xtask sim membership`, which builds it optimised.

use std::process::ExitCode;
use std::time::Instant;

use dotray_sim::scenarios::{self, Params};

const USAGE: &str =
    "usage: sim membership [--nodes N] [--seed S] [--only join|crash-half|partition|churn|partition-long]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut nodes, mut seed, mut only) = (1000usize, None, None);
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("membership") => {}
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    while let Some(flag) = it.next() {
        let value = it.next();
        let parsed = match (flag.as_str(), value) {
            ("--nodes", Some(v)) => v.parse().map(|v| nodes = v).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|v| seed = Some(v)).is_ok(),
            ("--only", Some(v)) => {
                only = Some(v.clone());
                true
            }
            _ => false,
        };
        if !parsed {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    if nodes < 4 {
        eprintln!("--nodes must be at least 4");
        return ExitCode::from(2);
    }
    let seed = seed.unwrap_or_else(dotray_sim::seed_from_env);
    let params = Params::new(nodes, seed);
    println!("| scenario | seed | nodes | result | figures |");
    println!("|---|---|---|---|---|");
    let mut failed = false;
    for (name, run) in scenarios::ALL {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let started = Instant::now();
        let report = run(&params);
        print!("{report}");
        eprintln!("  ({name}: {:.1}s wall)", started.elapsed().as_secs_f64());
        failed |= !report.passed;
    }
    if failed {
        eprintln!("a scenario failed: SEED={seed} to replay");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
