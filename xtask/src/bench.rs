//! `cargo xtask bench`: dotray's broadcast against the ideal tree, end to end, on this machine.
//!
//! For each run it starts the release `dotray-bench` binary twice — once per system, in alternating
//! order — so every (system, run) is a process of its own (its CPU time and peak RSS are its own), and
//! the two systems see the machine in the same state. Each process prints one JSON object with the
//! issue's keys; `--json` passes them through. The human table shows medians and dotray's ratios to
//! the ideal tree.
//!
//! * `--quick`: two small workloads, one run each; fails unless both systems complete with nothing
//!   missing and nothing duplicated (not a speed check: it keeps the benchmark from rotting, in CI).
//! * `--suite`: the target workloads of issues #7 and #22, with a verdict per target; fails on a miss.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cargo_build::Binary;
use crate::cli::{Flags, Help};

/// The command's help.
pub(crate) static HELP: Help = Help {
    name: "bench",
    usage: &[
        "bench [--nodes N] [--msgs M] [--size S] [--publishers P] [--runs R] [--json]",
        "bench --quick [--json]",
        "bench --suite [--runs R] [--json] [--data DIR [--history MIB]]",
        "bench --recovery [--mib M] [--json] [--data DIR]",
    ],
    about: "\
N dotray nodes in one process vs an ideal binary tree of plain TCP: goodput,
amplification, redundancy, latency, CPU, memory (--quick: small, checks completion only;
--suite: the five target workloads with a verdict)",
    details: "\
options:
  --nodes N        nodes (default 32)
  --msgs M         messages in all (default 10000)
  --size S         payload bytes (default 1024)
  --publishers P   nodes that publish, the messages spread over them (default 1)
  --runs R         runs per system, alternating which goes first; tables show medians (default 3)
  --json           one JSON object per run on stdout; the tables go to stderr
  --quick          two small workloads, one run each; fails unless both systems deliver everything
                   exactly once (not a speed check: CI runs it to keep the benchmark working)
  --suite          the target workloads (issues #7 and #22) with a verdict each; fails on a miss
  --data DIR       (any form but --quick) every dotray node keeps a data directory under DIR
                   (emptied at each run) and
                   its application acknowledges what it receives; use a tmpfs (/dev/shm/...) to
                   measure dotray rather than the disk (default: no data directories)
  --history MIB    (with --data) every dotray node also keeps a history of MIB MiB
  --recovery       a node with M MiB of history (default 1024) starts, and a node away since
                   the stream began catches up from it: after a clean stop and after a crash;
                   fails unless the first catch-up message comes within 2 s (--data DIR: where)
  --mib M          (--recovery) MiB of messages in the history
  -h, --help       this text

Builds the release dotray-bench binary and runs each (system, run) as a process of its own.
",
};

/// What the command line asks for.
#[derive(Debug, PartialEq)]
struct Options {
    workload: Workload,
    runs: usize,
    json: bool,
    quick: bool,
    suite: bool,
    data: Option<PathBuf>,
    recovery: bool,
    mib: u64,
    history: Option<u64>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        workload: Workload { nodes: 32, msgs: 10_000, size: 1024, publishers: 1 },
        runs: 3,
        json: false,
        quick: false,
        suite: false,
        data: None,
        recovery: false,
        mib: 1024,
        history: None,
    };
    let mut flags = Flags::new(&HELP, args);
    while let Some(flag) = flags.next()? {
        let w = &mut options.workload;
        match flag {
            "--nodes" => w.nodes = flags.value(flag, "a number")?,
            "--msgs" => w.msgs = flags.value(flag, "a number")?,
            "--size" => w.size = flags.value(flag, "a number of bytes")?,
            "--publishers" => w.publishers = flags.value(flag, "a number")?,
            "--runs" => options.runs = flags.value::<usize>(flag, "a number")?.max(1),
            "--json" => options.json = true,
            "--quick" => options.quick = true,
            "--suite" => options.suite = true,
            "--recovery" => options.recovery = true,
            "--mib" => options.mib = flags.value(flag, "a number of MiB")?,
            "--history" => options.history = Some(flags.value(flag, "a number of MiB")?),
            "--data" => options.data = Some(flags.value::<String>(flag, "a directory")?.into()),
            other => return Err(flags.unknown(other)),
        }
    }
    Ok(options)
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Workload {
    nodes: usize,
    msgs: usize,
    size: usize,
    publishers: usize,
}

impl Workload {
    fn describe(&self) -> String {
        let publishers = match self.publishers {
            1 => "1 publisher".to_owned(),
            p => format!("{p} publishers"),
        };
        format!("{} nodes, {} x {} B, {publishers}", self.nodes, self.msgs, self.size)
    }
}

/// What a workload must reach (ratios to the ideal tree, medians).
#[derive(Debug, Clone, Copy)]
struct Targets {
    goodput_ratio: f64,
    amplification: f64,
    rmr: f64,
    p99_ratio: f64,
    peak_rss_mb: Option<f64>,
}

/// The workloads and targets of issue #7, and the large-message row of issue #22.
const SUITE: [(Workload, Targets); 5] = [
    (
        Workload { nodes: 32, msgs: 10_000, size: 1024, publishers: 1 },
        Targets { goodput_ratio: 0.33, amplification: 1.05, rmr: 0.01, p99_ratio: 3.0, peak_rss_mb: None },
    ),
    (
        Workload { nodes: 32, msgs: 9_600, size: 256, publishers: 32 },
        Targets { goodput_ratio: 0.25, amplification: 1.10, rmr: 0.02, p99_ratio: 3.0, peak_rss_mb: None },
    ),
    (
        Workload { nodes: 16, msgs: 200, size: 256 * 1024, publishers: 1 },
        Targets { goodput_ratio: 0.50, amplification: 1.02, rmr: 0.01, p99_ratio: 3.0, peak_rss_mb: None },
    ),
    (
        Workload { nodes: 128, msgs: 2_000, size: 1024, publishers: 1 },
        // 256 MiB, in the report's MB (10^6 B).
        Targets {
            goodput_ratio: 0.25,
            amplification: 1.05,
            rmr: 0.01,
            p99_ratio: 3.0,
            peak_rss_mb: Some(268.4),
        },
    ),
    (
        // Large messages (issue 22): each travels as 32 pieces of 256 KiB.
        Workload { nodes: 16, msgs: 20, size: 8 << 20, publishers: 1 },
        Targets { goodput_ratio: 0.50, amplification: 1.02, rmr: 0.01, p99_ratio: 3.0, peak_rss_mb: None },
    ),
];

/// The `--quick` workloads: small, both shapes (one publisher, all publish).
const QUICK: [Workload; 2] = [
    Workload { nodes: 8, msgs: 500, size: 1024, publishers: 1 },
    Workload { nodes: 8, msgs: 800, size: 256, publishers: 8 },
];

const SYSTEMS: [&str; 2] = ["ideal-tree", "dotray"];

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let Options { workload, runs, json, quick, suite, data, recovery, mib, history } = parse(args)?;
    if recovery {
        return crate::recovery::run(&build()?, data, mib, json);
    }
    if history.is_some() && data.is_none() {
        bail!("--history needs --data");
    }
    let runner = Runner { binary: build()?, data, history };
    if quick {
        let mut failures = Vec::new();
        for w in QUICK {
            let reports = runner.measure(w, 1, json)?;
            print_table(w, &reports, json);
            for r in &reports {
                if !r["completed"].as_bool().unwrap_or(false)
                    || r["missing"] != 0
                    || r["duplicates_delivered_to_app"] != 0
                {
                    failures.push(format!("{} on {}: {r}", r["system"], w.describe()));
                }
            }
        }
        if !failures.is_empty() {
            bail!("incomplete or wrong deliveries:\n{}", failures.join("\n"));
        }
        return Ok(());
    }
    if suite {
        let mut verdicts = Vec::new();
        for (w, targets) in SUITE {
            let reports = runner.measure(w, runs, json)?;
            print_table(w, &reports, json);
            verdicts.push((w, judge(&reports, &targets)));
        }
        let out = summary_sink(json);
        out(String::new());
        out("| workload | goodput vs ideal | amplification | rmr | p99 vs ideal | complete, 0 missing, 0 dup | peak RSS | verdict |".to_owned());
        out("|---|---|---|---|---|---|---|---|".to_owned());
        let mut all_pass = true;
        for (w, v) in &verdicts {
            all_pass &= v.pass;
            out(format!(
                "| {} | {} | {} |",
                w.describe(),
                v.cells.join(" | "),
                if v.pass { "PASS" } else { "FAIL" }
            ));
        }
        if !all_pass {
            bail!("some targets were missed (see the table)");
        }
        return Ok(());
    }
    let reports = runner.measure(workload, runs, json)?;
    print_table(workload, &reports, json);
    Ok(())
}

/// Builds the benchmark binary in release mode and returns its path.
fn build() -> Result<PathBuf> {
    let bench = Binary { package: "dotray-bench", kind: "--bin", name: "dotray-bench", release: true };
    crate::cargo_build::build(&bench)
}

/// The benchmark binary, and what every dotray run gets besides its workload.
struct Runner {
    binary: PathBuf,
    /// `--data`: the data directories' parent.
    data: Option<PathBuf>,
    /// `--history`: each node's history, in MiB.
    history: Option<u64>,
}

impl Runner {
    /// [`measure`] with this binary and options.
    fn measure(&self, w: Workload, runs: usize, json: bool) -> Result<Vec<Value>> {
        measure(&self.binary, w, runs, json, (self.data.as_deref(), self.history))
    }
}

/// Runs both systems `runs` times, alternating which goes first. Returns every run's JSON object.
fn measure(
    binary: &PathBuf,
    w: Workload,
    runs: usize,
    json: bool,
    data: (Option<&std::path::Path>, Option<u64>),
) -> Result<Vec<Value>> {
    let mut reports = Vec::new();
    for run in 0..runs {
        let order: Vec<&str> =
            if run % 2 == 0 { SYSTEMS.to_vec() } else { SYSTEMS.iter().rev().copied().collect() };
        for system in order {
            if !json {
                eprintln!("{}: {system}, run {}/{runs}", w.describe(), run + 1);
            }
            let report = run_one(binary, system, w, data)?;
            if json {
                println!("{report}");
            }
            reports.push(report);
        }
    }
    Ok(reports)
}

/// One process of the benchmark binary; its last stdout line is the report.
fn run_one(
    binary: &PathBuf,
    system: &str,
    w: Workload,
    (data, history): (Option<&std::path::Path>, Option<u64>),
) -> Result<Value> {
    let mut command = Command::new(binary);
    if let Some(dir) = data.filter(|_| system == "dotray") {
        command.arg("--data").arg(dir);
        if let Some(mib) = history {
            command.args(["--history", &mib.to_string()]);
        }
    }
    let mut child = command
        .args(["--system", system])
        .args(["--nodes", &w.nodes.to_string(), "--msgs", &w.msgs.to_string()])
        .args(["--size", &w.size.to_string(), "--publishers", &w.publishers.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    // Drain stderr on a thread so a chatty child can never block on a full pipe.
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let last = BufReader::new(stdout).lines().map_while(Result::ok).last();
    let status = child.wait()?;
    let errors = errors.join().unwrap_or_default();
    let Some(line) = last.filter(|_| status.success()) else {
        bail!("{system} on {} failed ({status}):\n{errors}", w.describe());
    };
    let report: Value = serde_json::from_str(&line).with_context(|| format!("{system} printed {line}"))?;
    // A run that did not complete printed what it measured at its end: keep it, a medians table
    // would hide the one run that showed it.
    if report["end"] != "completed" {
        eprintln!("{system} on {} ended {}; what it printed:\n{errors}", w.describe(), report["end"]);
    }
    Ok(report)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median of `key` over the runs of `system`.
fn med(reports: &[Value], system: &str, key: &str) -> f64 {
    median(reports.iter().filter(|r| r["system"] == system).filter_map(|r| r[key].as_f64()).collect())
}

/// Where summary lines go: stdout, or stderr when stdout carries the JSON lines.
fn summary_sink(json: bool) -> fn(String) {
    if json { |line| eprintln!("{line}") } else { |line| println!("{line}") }
}

fn print_table(w: Workload, reports: &[Value], json: bool) {
    let out = summary_sink(json);
    let runs = reports.iter().filter(|r| r["system"] == "dotray").count();
    out(format!("\n{} ({runs} runs, medians)\n", w.describe()));
    out("| system | ends | deliver ms | msgs/s | goodput MB/s | amplification | rmr | p50 ms | p99 ms | cpu s | peak RSS MB | missing | dup |".to_owned());
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|".to_owned());
    for system in SYSTEMS {
        let ends: Vec<String> = reports
            .iter()
            .filter(|r| r["system"] == system)
            .map(|r| r["end"].as_str().unwrap_or("?").to_owned())
            .collect();
        let m = |key| med(reports, system, key);
        out(format!(
            "| {system} | {} | {:.0} | {:.0} | {:.1} | {:.3} | {:.4} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} |",
            ends.join(","),
            m("deliver_ms"),
            m("throughput_msgs_per_s"),
            m("goodput_mb_s"),
            m("amplification"),
            m("rmr"),
            m("lat_p50_ms"),
            m("lat_p99_ms"),
            m("cpu_s"),
            m("peak_rss_mb"),
            m("missing"),
            m("duplicates_delivered_to_app"),
        ));
    }
    let ratio = |key| med(reports, "dotray", key) / med(reports, "ideal-tree", key);
    out(format!(
        "\ndotray / ideal tree: goodput {:.1}%, p99 latency {:.2}x, cpu per message {:.2}x",
        ratio("goodput_mb_s") * 100.0,
        ratio("lat_p99_ms"),
        ratio("cpu_s"),
    ));
}

struct Verdict {
    pass: bool,
    cells: Vec<String>,
}

fn judge(reports: &[Value], t: &Targets) -> Verdict {
    let d = |key| med(reports, "dotray", key);
    let i = |key| med(reports, "ideal-tree", key);
    let goodput = d("goodput_mb_s") / i("goodput_mb_s");
    let p99 = d("lat_p99_ms") / i("lat_p99_ms");
    let complete = reports.iter().filter(|r| r["system"] == "dotray").all(|r| {
        r["completed"].as_bool().unwrap_or(false)
            && r["missing"] == 0
            && r["duplicates_delivered_to_app"] == 0
    });
    let rss = d("peak_rss_mb");
    let checks = [
        (goodput >= t.goodput_ratio, format!("{:.1}% (>= {:.0}%)", goodput * 100.0, t.goodput_ratio * 100.0)),
        (
            d("amplification") <= t.amplification,
            format!("{:.3} (<= {})", d("amplification"), t.amplification),
        ),
        (d("rmr") <= t.rmr, format!("{:.4} (<= {})", d("rmr"), t.rmr)),
        (p99 <= t.p99_ratio, format!("{p99:.2}x (<= {}x)", t.p99_ratio)),
        (complete, if complete { "yes".to_owned() } else { "NO".to_owned() }),
        match t.peak_rss_mb {
            Some(max) => (rss <= max, format!("{rss:.0} MB (<= {max:.0} MB)")),
            None => (true, format!("{rss:.0} MB")),
        },
    ];
    Verdict {
        pass: checks.iter().all(|(ok, _)| *ok),
        cells: checks.into_iter().map(|(ok, text)| if ok { text } else { format!("**{text}**") }).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        use crate::cli::testing::{args, assert_help, assert_misuse};
        let options = parse(&args("--nodes 8 --msgs 100 --size 64 --publishers 2 --runs 0 --json"));
        let expected = Options {
            workload: Workload { nodes: 8, msgs: 100, size: 64, publishers: 2 },
            runs: 1,
            json: true,
            quick: false,
            suite: false,
            data: None,
            recovery: false,
            mib: 1024,
            history: None,
        };
        assert_eq!(options.ok(), Some(expected));
        assert!(parse(&args("--recovery --mib 64")).is_ok_and(|o| o.recovery && o.mib == 64));
        assert!(parse(&args("--suite --data /dev/shm/d")).is_ok_and(|o| o.data == Some("/dev/shm/d".into())));
        assert!(parse(&args("--quick")).is_ok_and(|o| o.quick && !o.suite));
        assert!(parse(&args("--suite --runs 5")).is_ok_and(|o| o.suite && o.runs == 5));
        for line in ["--help", "-h", "--quick --help", "--nodes 4 -h"] {
            assert_help(parse(&args(line)), "bench");
        }
        assert_misuse(parse(&args("--fast")), "unknown flag `--fast`");
        assert_misuse(parse(&args("--nodes")), "--nodes needs a value");
        assert_misuse(parse(&args("--size 1k")), "--size takes a number of bytes, not `1k`");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_missed_target_fails_the_verdict() {
        let run = |system: &str, goodput: f64, p99: f64| {
            serde_json::json!({
                "system": system, "completed": true, "missing": 0, "duplicates_delivered_to_app": 0,
                "goodput_mb_s": goodput, "amplification": 1.01, "rmr": 0.0, "lat_p99_ms": p99, "peak_rss_mb": 50.0,
            })
        };
        let targets = SUITE[0].1;
        let good = [run("ideal-tree", 1000.0, 10.0), run("dotray", 400.0, 20.0)];
        assert!(judge(&good, &targets).pass);
        let slow = [run("ideal-tree", 1000.0, 10.0), run("dotray", 300.0, 20.0)];
        assert!(!judge(&slow, &targets).pass);
        let laggy = [run("ideal-tree", 1000.0, 10.0), run("dotray", 400.0, 31.0)];
        assert!(!judge(&laggy, &targets).pass);
    }
}
