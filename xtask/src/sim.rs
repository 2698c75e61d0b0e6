//! `cargo xtask sim membership [--nodes N] [--seed S] [--only NAME]` and
//! `cargo xtask sim broadcast [--nodes N] [--msgs M] [--seed S] [--only NAME]`: run the deterministic
//! simulator's membership or broadcast scenarios (1,000 nodes and 10,000 messages by default) and
//! print one markdown table row per scenario.
//!
//! The simulation is CPU-bound, and xtask itself is built without optimisation, so this command only
//! forwards its arguments to `cargo run --release -p dotray-sim --bin sim`, which is. The exit status
//! is the simulator's: non-zero when a scenario fails, with the seed that replays it (`SEED=` or
//! `--seed`).

use anyhow::{Context, Result, bail};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask sim membership [--nodes N] [--seed S] [--only join|crash-half|partition|churn|partition-long]
       cargo xtask sim broadcast [--nodes N] [--msgs M] [--seed S] [--only steady|crash-20|crash-50|loss-1|partition-30s]";

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("membership" | "broadcast") => {}
        _ => bail!("{USAGE}"),
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--release", "--package", "dotray-sim", "--bin", "sim", "--"])
        .args(args)
        .status()
        .context("running the simulator")?;
    if !status.success() {
        bail!("the simulation failed ({status}); see the seed above to replay it");
    }
    Ok(())
}
