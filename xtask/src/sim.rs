//! `cargo xtask sim membership [--nodes N] [--seed S] [--only NAME]` and
//! `cargo xtask sim broadcast [--nodes N] [--msgs M] [--seed S] [--only NAME]`: run the deterministic
//! simulator's membership or broadcast scenarios (1,000 nodes and 10,000 messages by default) and
//! print one markdown table row per scenario.
//!
//! The simulation is CPU-bound, and xtask itself is built without optimisation, so this command only
//! forwards its arguments to `cargo run --release -p dotray-sim --bin sim`, which is. It checks the
//! flags first, so that a typo fails at once rather than after an optimised build. The exit status
//! is the simulator's: non-zero when a scenario fails, with the seed that replays it (`SEED=` or
//! `--seed`).

use anyhow::{Context, Result, bail};
use std::process::Command;

use crate::cli::{Flags, Help};

/// The command's help.
pub(crate) static HELP: Help = Help {
    name: "sim",
    usage: &[
        "sim membership [--nodes N] [--seed S | --seeds A..B] [--only NAME]",
        "sim broadcast [--nodes N] [--msgs M] [--seed S | --seeds A..B] [--only NAME]",
    ],
    about: "\
run the membership scenarios, or the broadcast scenarios (membership + router), in the
deterministic simulator (1,000 nodes, 10,000 messages by default)",
    details: "\
options:
  --nodes N     simulated nodes (default 1000, at least 4)
  --msgs M      broadcast only: messages to send (default 10000)
  --seed S      the seed of the run (default: the SEED environment variable, else a random one)
  --seeds A..B  every seed from A to B, then a summary: seeds failed, worst steady RMR
  --only NAME   one scenario: membership: join, join-storm, crash-half, partition, churn,
                partition-long;
                broadcast: steady, rare-origins, crash-20, crash-50, loss-1, partition-30s
  -h, --help    this text

The simulator is built and run optimised. It prints one table row per scenario and exits non-zero
when a scenario fails, with the seed that replays it.
",
};

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    parse(args)?;
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

/// Checks the command line the simulator will get: which scenarios, known flags, each with a value of
/// the right type. (The simulator checks the bounds, such as at least 4 nodes.)
fn parse(args: &[String]) -> Result<()> {
    let mut flags = Flags::new(&HELP, args);
    let broadcast = match flags.next()? {
        Some("broadcast") => true,
        Some("membership") => false,
        Some(other) => {
            return Err(flags.misuse(format!("unknown scenarios `{other}`: membership or broadcast")));
        }
        None => return Err(flags.misuse("which scenarios: membership or broadcast?")),
    };
    while let Some(flag) = flags.next()? {
        match flag {
            "--nodes" => {
                flags.value::<usize>(flag, "a number")?;
            }
            "--msgs" if broadcast => {
                flags.value::<usize>(flag, "a number")?;
            }
            "--seed" => {
                flags.value::<u64>(flag, "a number")?;
            }
            "--seeds" => {
                let range = flags.value::<String>(flag, "a range of seeds, A..B")?;
                let valid = range
                    .split_once("..")
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                    .is_some_and(|(a, b)| a <= b);
                if !valid {
                    return Err(
                        flags.misuse(format!("--seeds wants a range A..B with A <= B, not `{range}`"))
                    );
                }
            }
            "--only" => {
                flags.value::<String>(flag, "a scenario's name")?;
            }
            "--msgs" => return Err(flags.misuse("--msgs is for `sim broadcast` only")),
            other => return Err(flags.unknown(other)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::cli::testing::{args, assert_help, assert_misuse};

    #[test]
    fn flags() {
        assert!(parse(&args("membership")).is_ok());
        assert!(parse(&args("broadcast --nodes 200 --msgs 500 --seed 7 --only steady")).is_ok());
        assert!(parse(&args("broadcast --nodes 60 --msgs 1000 --only rare-origins --seeds 1..100")).is_ok());
        assert_misuse(parse(&args("broadcast --seeds 9..1")), "A <= B");
        assert_misuse(parse(&args("broadcast --seeds 7")), "A..B");
        for line in ["--help", "-h", "broadcast --help", "membership -h", "broadcast --nodes 9 --help"] {
            assert_help(parse(&args(line)), "sim");
        }
        assert_misuse(parse(&args("")), "membership or broadcast");
        assert_misuse(parse(&args("gossip")), "`gossip`");
        assert_misuse(parse(&args("broadcast --bogus 1")), "unknown flag `--bogus`");
        assert_misuse(parse(&args("membership --msgs 5")), "broadcast` only");
        assert_misuse(parse(&args("broadcast --seed")), "--seed needs a value");
        assert_misuse(parse(&args("broadcast --nodes lots")), "not `lots`");
    }
}
