//! `dotray-bench`: runs one benchmark run and prints its JSON line. Normally started by
//! `cargo xtask bench`, once per (system, run), so each run's CPU time and peak RSS are its own.
//!
//! ```text
//! dotray-bench --system dotray|ideal-tree [--nodes N] [--msgs M] [--size S] [--publishers P]
//!              [--interval-ms I] [--data DIR [--history MIB]]
//! ```
//!
//! `--data DIR` gives every dotray node a data directory under DIR (emptied first; put it on a tmpfs
//! such as `/dev/shm` to measure dotray rather than the disk), and the receivers acknowledge what
//! they take.
//!
//! Recovery from a large history (see `dotray_bench::recovery`), in two processes:
//!
//! ```text
//! dotray-bench --recovery-fill DIR --mib M [--crash]
//! dotray-bench --recovery DIR --mib M
//! ```
//!
//! `--interval-ms I` paces the publishers: message `k` leaves `k · I` ms after the measured phase
//! starts (default 0: as fast as they go). For latency at a low rate.

use anyhow::{Context, Result, bail};
use dotray_bench::{Spec, System};

const USAGE: &str = "usage: dotray-bench --system dotray|ideal-tree [--nodes N] [--msgs M] [--size S] \
[--publishers P] [--interval-ms I] [--data DIR [--history MIB]]
       dotray-bench --recovery-fill DIR --mib M [--crash] | --recovery DIR --mib M";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}\n{USAGE}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // Logs only when asked (RUST_LOG=...), on stderr: the JSON line is the only stdout.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut spec = Spec {
        system: System::Dotray,
        nodes: 32,
        msgs: 10_000,
        size: 1024,
        publishers: 1,
        interval_ms: 0,
        data_dir: None,
        history_mib: None,
    };
    let (mut recovery, mut fill, mut mib, mut crash) = (None::<std::path::PathBuf>, false, 1024u64, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--system" => {
                let name = value()?;
                spec.system = System::parse(&name).with_context(|| format!("unknown system {name}"))?;
            }
            "--nodes" => spec.nodes = value()?.parse()?,
            "--msgs" => spec.msgs = value()?.parse()?,
            "--size" => spec.size = value()?.parse()?,
            "--publishers" => spec.publishers = value()?.parse()?,
            "--interval-ms" => spec.interval_ms = value()?.parse()?,
            "--data" => spec.data_dir = Some(value()?.into()),
            "--history" => spec.history_mib = Some(value()?.parse()?),
            "--recovery" => recovery = Some(value()?.into()),
            "--recovery-fill" => (recovery, fill) = (Some(value()?.into()), true),
            "--mib" => mib = value()?.parse()?,
            "--crash" => crash = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown flag {other}"),
        }
    }
    if let Some(dir) = recovery {
        if fill {
            return dotray_bench::recovery::fill(&dir, mib, crash);
        }
        println!("{}", dotray_bench::recovery::measure(&dir, mib)?);
        return Ok(());
    }
    let report = dotray_bench::run(&spec)?;
    println!("{}", report.to_json());
    Ok(())
}
