//! `cargo xtask bench --recovery`: how soon a node with a large history on disk starts and serves
//! catch-up, after a clean stop and after a crash (issue #23's target: within 2 s for 1 GiB).
//!
//! Runs the release `dotray-bench` in two processes per case: one fills the data directories (and,
//! for the crash, aborts without closing them), the next starts the node and measures (see
//! `dotray_bench::recovery`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The target: the first catch-up message within this long of the start.
const TARGET_MS: u64 = 2_000;

/// Measures both cases with `mib` MiB of messages in a history under `dir`; fails on a miss.
pub(crate) fn run(binary: &Path, dir: Option<PathBuf>, mib: u64, json: bool) -> Result<()> {
    let dir = dir.unwrap_or_else(|| crate::codegen::workspace_root().join("target").join("recovery"));
    let mut missed = Vec::new();
    for crash in [false, true] {
        let case = if crash { "after a crash" } else { "after a clean stop" };
        if !json {
            eprintln!("recovery {case}: filling {mib} MiB of history under {}", dir.display());
        }
        let mut fill = Command::new(binary);
        fill.arg("--recovery-fill").arg(&dir).args(["--mib", &mib.to_string()]);
        if crash {
            fill.arg("--crash");
        }
        let status = fill.status().context("running the fill")?;
        // The crash case aborts the process on purpose, once the history is written.
        if status.success() == crash {
            bail!("the fill {case} ended with {status}");
        }
        let output = Command::new(binary)
            .arg("--recovery")
            .arg(&dir)
            .args(["--mib", &mib.to_string()])
            .output()
            .context("running the measurement")?;
        if !output.status.success() {
            bail!("the measurement {case} failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let line = String::from_utf8_lossy(&output.stdout);
        let mut report: Value = serde_json::from_str(line.trim()).context("the measurement's JSON")?;
        report["case"] = Value::from(if crash { "crash" } else { "clean" });
        let first = report["first_catch_up_ms"].as_u64().unwrap_or(u64::MAX);
        let pass = first <= TARGET_MS;
        report["pass"] = Value::from(pass);
        if json {
            println!("{report}");
        } else {
            eprintln!(
                "  {:.2} GB of history files: started in {} ms, first catch-up message {} ms after the \
                 start (target <= {TARGET_MS} ms): {}; {} messages caught up in the next 5 s",
                report["history_bytes"].as_f64().unwrap_or(0.0) / 1e9,
                report["start_ms"],
                first,
                if pass { "PASS" } else { "FAIL" },
                report["caught_up_in_5s"],
            );
        }
        if !pass {
            missed.push(case);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !missed.is_empty() {
        bail!("recovery target missed {}", missed.join(" and "));
    }
    Ok(())
}
