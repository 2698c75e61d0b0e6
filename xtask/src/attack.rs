//! `cargo xtask attack`: hostile peers against a network of honest demo processes, one attack per row,
//! and a verdict on what the honest network went through.
//!
//! Both the honest demo and the attacker are optimised builds: a user's node is one, and on a
//! machine of two cores the unoptimised demo spends several times the CPU per message, which the
//! delay verdict would measure instead of the attack.
//!
//! For each row a fresh network of `--nodes` honest demo processes starts on loopback, three of them
//! broadcasting (the target among them) and a fourth starting to broadcast half way through the
//! attack (a new origin the network must admit while under attack). After a warm-up, `dotray-attack` (real peers with key pairs
//! of their own, speaking the real protocol; see `crates/attack`) attacks for `--secs`, then the
//! network runs on for a calm period and every node leaves. The honest nodes' `--json` logs are
//! judged as `chaos` judges them, separately for messages sent during the attack and after it; the
//! target's peak RSS and CPU time come from `/proc`. A row passes when no honest message was lost
//! or duplicated, every honest node's peak RSS stayed below `MAX_RSS`, the worst delivery delay was
//! at most `MAX_EXTRA_DELAY` worse than in the row without an attack, and the attack's own bound
//! held (see [`Attack::bound`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cargo_build::Binary;
use crate::cli::{Flags, Help, clock_seed};
use crate::demo_log::{self, Run};
use crate::demo_net::{self, Cluster};

/// The command's help.
pub(crate) static HELP: Help = Help {
    name: "attack",
    usage: &[
        "attack [--only NAME] [--json] [--seed SEED] [--secs S] [--nodes N]",
        "attack --node-bin PATH [...]",
    ],
    about: "\
hostile peers (real processes, real protocol) against honest demo nodes, one row per
attack, with a verdict (exit non-zero when an honest message is lost or a bound is broken)",
    details: "\
options:
  --only NAME       one attack: none, decode-amplification, direct-flood, eclipse,
                    passive-poisoning, reflection, reorder-flood, slot-exhaustion,
                    slow-neighbour, stream-table-capture, sybil-swarm
  --json            one JSON object per row instead of the table
  --seed SEED       chooses the target and the publishers (default: from the clock; printed)
  --secs S          how long each attack lasts (default 20)
  --nodes N         honest demo processes per row (default 8, at least 8)
  --node-bin PATH   run the honest nodes from this demo binary (e.g. an older build, to compare)
  -h, --help        this text

Logs: target/attack/<row>/<node>-<run>.jsonl.
",
};

/// Highest peak RSS allowed of any honest node.
const MAX_RSS: u64 = 256 << 20;
/// How much worse than without an attack the worst honest delivery delay may be.
const MAX_EXTRA_DELAY: Duration = Duration::from_secs(5);
/// Time for the network to form before the attack.
const WARM_UP: Duration = Duration::from_secs(5);
/// Time after the attack before every node leaves.
const CALM: Duration = Duration::from_secs(8);
/// As in `chaos`: how long a node must have been up, and stay up after a send, to owe a delivery.
const SETTLE: Duration = Duration::from_secs(3);
const GRACE: Duration = Duration::from_secs(3);
/// How often each publisher broadcasts, in seconds.
const EVERY: &str = "0.25";

/// One row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    None,
    DecodeAmplification,
    DirectFlood,
    Eclipse,
    PassivePoisoning,
    Reflection,
    ReorderFlood,
    SlotExhaustion,
    SlowNeighbour,
    StreamTableCapture,
    SybilSwarm,
}

const ALL: [Attack; 11] = [
    Attack::None,
    Attack::DecodeAmplification,
    Attack::DirectFlood,
    Attack::Eclipse,
    Attack::PassivePoisoning,
    Attack::Reflection,
    Attack::ReorderFlood,
    Attack::SlotExhaustion,
    Attack::SlowNeighbour,
    Attack::StreamTableCapture,
    Attack::SybilSwarm,
];

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::DecodeAmplification => "decode-amplification",
            Self::DirectFlood => "direct-flood",
            Self::Eclipse => "eclipse",
            Self::PassivePoisoning => "passive-poisoning",
            Self::Reflection => "reflection",
            Self::ReorderFlood => "reorder-flood",
            Self::SlotExhaustion => "slot-exhaustion",
            Self::SlowNeighbour => "slow-neighbour",
            Self::StreamTableCapture => "stream-table-capture",
            Self::SybilSwarm => "sybil-swarm",
        }
    }

    /// What the attacker does, for the table.
    fn what(self, nodes: usize) -> String {
        match self {
            Self::None => "nothing (the baseline)".to_owned(),
            Self::DecodeAmplification => {
                "4 connections, one 4 MB frame each: a list of 2 million empty entries".to_owned()
            }
            Self::DirectFlood => {
                "16 connections send 64 KiB direct messages padded to 4 MiB frames as fast as read".to_owned()
            }
            Self::Eclipse => {
                "5 identities join the target at once; each evicted one rejoins as a new identity".to_owned()
            }
            Self::PassivePoisoning => {
                "a fresh identity every 0.5 s ends a peer exchange at the target with 16 made-up addresses"
                    .to_owned()
            }
            Self::Reflection => {
                "a stranger and a neighbour send 50 walks/s each naming a victim address".to_owned()
            }
            Self::ReorderFlood => {
                "1 identity at each node starts a stream every 4 s and sends its messages 2-257 (64 KiB \
                 each), never 1"
                    .to_owned()
            }
            Self::SlotExhaustion => {
                "96 silent sockets from one address, reopened when closed; a newcomer tries to connect \
                 every 0.5 s"
                    .to_owned()
            }
            Self::SlowNeighbour => {
                "a neighbour of the target asks for all it retains and reads nothing for 3 s, reads 0.5 s, \
                 again; another, elsewhere, publishes 2 × 2 MiB each cycle"
                    .to_owned()
            }
            Self::StreamTableCapture => {
                "3 identities at the target, 1 at each other node, mint up to 6,000 signed streams each, \
                 every one refreshed every 10 s"
                    .to_owned()
            }
            Self::SybilSwarm => {
                format!(
                    "{} identities at once join random honest nodes, stay 2-6 s, relay nothing",
                    nodes * 10
                )
            }
        }
    }

    /// The attack's own bound on what the attacker saw, if it has one: `Some(problem)` when broken.
    /// `secs`: how long the attack lasted.
    fn bound(self, attacker: &Value, secs: u64) -> Option<String> {
        match self {
            Self::Eclipse => {
                let share = attacker["attacker_share_max"].as_f64().unwrap_or(1.0);
                (share >= 1.0).then(|| format!("the attackers held the target's whole active view ({share})"))
            }
            Self::PassivePoisoning => {
                let before = attacker["honest_backups_before"].as_u64().unwrap_or(0);
                let kept = attacker["honest_backups_kept"].as_u64().unwrap_or(0);
                (kept < before)
                    .then(|| format!("the target lost {} of its {before} honest backups", before - kept))
            }
            Self::Reflection => {
                // The membership default budget (2 dials a second, 8 at once), and one heal dial of
                // the victim's address every 15 s once it sits in the passive view.
                let limit = 8 + 2 * secs + secs / 15 + 1;
                let hits = attacker["victim_connections"].as_u64().unwrap_or(u64::MAX);
                (hits > limit)
                    .then(|| format!("the target connected to the victim {hits} times (limit {limit})"))
            }
            Self::SlotExhaustion => {
                let tried = attacker["newcomers_tried"].as_u64().unwrap_or(0);
                let admitted = attacker["newcomers_admitted"].as_u64().unwrap_or(0);
                (tried == 0 || admitted * 10 < tried * 9)
                    .then(|| format!("only {admitted} of {tried} newcomers could connect to the target"))
            }
            Self::StreamTableCapture => {
                // Not a bound on the defence: a check that the attack was strong enough to fill a
                // default stream table (4,096), or the row proves nothing.
                let minted = attacker["streams_minted"].as_u64().unwrap_or(0);
                (minted < 4_096).then(|| format!("the attacker minted only {minted} streams"))
            }
            _ => None,
        }
    }
}

struct Options {
    only: Option<Attack>,
    json: bool,
    seed: u64,
    secs: u64,
    nodes: usize,
    node_bin: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options =
        Options { only: None, json: false, seed: clock_seed(), secs: 20, nodes: 8, node_bin: None };
    let mut flags = Flags::new(&HELP, args);
    while let Some(flag) = flags.next()? {
        match flag {
            "--only" => {
                let name: String = flags.value(flag, "an attack name")?;
                let attack = ALL.into_iter().find(|a| a.name() == name);
                options.only = Some(attack.ok_or_else(|| flags.misuse(format!("no attack named `{name}`")))?);
            }
            "--json" => options.json = true,
            "--seed" => options.seed = flags.value(flag, "a number")?,
            "--secs" => options.secs = flags.value(flag, "whole seconds")?,
            "--nodes" => options.nodes = flags.value(flag, "a number")?,
            "--node-bin" => options.node_bin = Some(flags.value::<String>(flag, "a path")?.into()),
            other => return Err(flags.unknown(other)),
        }
    }
    if options.nodes < 8 {
        return Err(flags.misuse("--nodes must be at least 8"));
    }
    Ok(options)
}

/// Entry point of the command.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let node_bin = match &options.node_bin {
        Some(path) => path.clone(),
        None => crate::demo::build_demo(true)?,
    };
    let attack_bin = build_attacker()?;
    // The seed picks the target and three more publishers; the target is never node 0, everyone's
    // seed.
    let n = options.nodes;
    let target = 1 + (options.seed % (n as u64 - 1)) as usize;
    let roles = Roles {
        target,
        publishers: [target, (target + n / 3) % n, (target + 2 * n / 3) % n],
        late: (target + n / 2) % n,
    };
    if !options.json {
        println!(
            "== attack: {n} honest nodes, target n{target:02}, publishers {:?} every {EVERY}s and n{:02} from half \
             way through each attack, attacks of {} s, seed {}",
            roles.publishers, roles.late, options.secs, options.seed
        );
    }
    let rows: Vec<Attack> = match options.only {
        Some(attack) if attack != Attack::None => vec![Attack::None, attack],
        Some(_) => vec![Attack::None],
        None => ALL.to_vec(),
    };
    let mut baseline_delay = Duration::ZERO;
    let mut results = Vec::new();
    for attack in rows {
        let row = run_row(&options, attack, &node_bin, &attack_bin, &roles)?;
        if attack == Attack::None {
            baseline_delay = row.worst_delay;
        }
        let result = row.verdict(attack, baseline_delay, &options);
        if options.json {
            println!("{result}");
        } else {
            print_row(&result);
        }
        results.push(result);
    }
    let failed: Vec<&str> =
        results.iter().filter(|r| r["verdict"] != "pass").filter_map(|r| r["attack"].as_str()).collect();
    if !failed.is_empty() {
        bail!("failed: {} (replay with --seed {})", failed.join(", "), options.seed);
    }
    Ok(())
}

/// Builds the attacker binary (optimised, so that it attacks at full strength) and returns its path.
fn build_attacker() -> Result<PathBuf> {
    let attacker = Binary { package: "dotray-attack", kind: "--bin", name: "dotray-attack", release: true };
    crate::cargo_build::build(&attacker)
}

/// Which honest nodes do what.
struct Roles {
    /// The node attacked.
    target: usize,
    /// The nodes broadcasting from the start.
    publishers: [usize; 3],
    /// The node that starts broadcasting half way through the attack.
    late: usize,
}

/// What one row measured.
struct Row {
    during: Window,
    after: Window,
    duplicates: u64,
    worst_delay: Duration,
    /// Which delivery took `worst_delay` (`Verdict::worst_delayed`).
    worst_delayed: String,
    peak_rss: u64,
    target_cpu: Duration,
    attacker: Value,
}

/// Figures of the messages sent within one period.
#[derive(Debug, Default)]
struct Window {
    sent: u64,
    delivered: u64,
    missed: u64,
    worst_delay: Duration,
}

fn run_row(
    options: &Options,
    attack: Attack,
    node_bin: &Path,
    attack_bin: &Path,
    roles: &Roles,
) -> Result<Row> {
    let target = roles.target;
    let n = options.nodes;
    let addrs = demo_net::local_addrs(0, n);
    let log_dir = crate::codegen::workspace_root().join("target").join("attack").join(attack.name());
    let _ = std::fs::remove_dir_all(&log_dir);
    let mut cluster = Cluster::new(node_bin.to_path_buf(), n).log_to(log_dir)?;
    for i in 0..n {
        let mut args = vec!["-l".to_owned(), addrs[i].to_string()];
        for seed in [(i + n - 1) % n, i / 2] {
            if seed != i && (i > 0 || seed != 0) {
                args.extend(["-s".to_owned(), addrs[seed].to_string()]);
            }
        }
        if roles.publishers.contains(&i) || i == roles.late {
            args.extend(["--every".to_owned(), EVERY.to_owned(), "-i".to_owned(), i.to_string()]);
        }
        if i == roles.late {
            let after = WARM_UP + Duration::from_secs(options.secs) / 2;
            args.extend(["--after".to_owned(), after.as_secs_f64().to_string()]);
        }
        cluster.start(i, &format!("n{i:02}"), &args).context("starting an honest node")?;
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(WARM_UP);
    let target_pid = cluster.pid(target).context("the target is not running")?;
    let cpu_before = cpu_time(target_pid).unwrap_or_default();
    let started = Instant::now();
    let attacker = match attack {
        Attack::None => {
            std::thread::sleep(Duration::from_secs(options.secs));
            json!({})
        }
        _ => {
            let honest: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            let output = Command::new(attack_bin)
                .arg(attack.name())
                .args(["--target", &addrs[target].to_string(), "--honest", &honest.join(",")])
                .args(["--secs", &options.secs.to_string(), "--identities", &(n * 10).to_string()])
                .output()
                .context("running dotray-attack")?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                bail!("dotray-attack {} failed: {}", attack.name(), String::from_utf8_lossy(&output.stderr));
            }
            // The attacks that end early (one burst of frames) leave the rest of the period to the
            // network, so every row's "during" spans the same time.
            let left = Duration::from_secs(options.secs).saturating_sub(started.elapsed());
            std::thread::sleep(left);
            serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or(json!({}))
        }
    };
    let ended = Instant::now();
    std::thread::sleep(CALM);
    let target_cpu = cpu_time(target_pid).unwrap_or_default().saturating_sub(cpu_before);
    let peak_rss = (0..n).filter_map(|i| cluster.pid(i)).filter_map(peak_rss).max().unwrap_or(0);
    cluster.stop_all(Duration::from_secs(5));
    let runs = honest_only(cluster.runs());
    let verdict = demo_log::judge(&runs, SETTLE, GRACE);
    Ok(Row {
        during: window(&runs, started, ended),
        after: window(&runs, ended, Instant::now()),
        duplicates: verdict.totals().duplicates,
        worst_delay: verdict.worst_delay,
        worst_delayed: verdict.worst_delayed,
        peak_rss,
        target_cpu,
        attacker,
    })
}

/// The runs with only what concerns the honest nodes' own messages: the attackers' streams are
/// delivered too (they are valid broadcasts), but the demo names a message by origin and sequence
/// number, not epoch, so the many streams an attacker key starts would read as duplicates.
fn honest_only(mut runs: Vec<Run>) -> Vec<Run> {
    let honest: std::collections::HashSet<String> = runs.iter().map(|r| r.id.clone()).collect();
    for run in &mut runs {
        run.lines.retain(|(_, v)| {
            v["event"] != "receive" || v["origin_id"].as_str().is_some_and(|id| honest.contains(id))
        });
    }
    runs
}

/// Judges the messages sent in `[from, to)` alone: the runs' other sends are left out.
fn window(runs: &[Run], from: Instant, to: Instant) -> Window {
    let mut only: Vec<Run> = runs.to_vec();
    for run in &mut only {
        run.lines.retain(|(at, v)| v["event"] != "send" || (from..to).contains(at));
    }
    let verdict = demo_log::judge(&only, SETTLE, GRACE);
    let keys: std::collections::HashSet<(String, u64)> = only
        .iter()
        .flat_map(|r| r.events("send"))
        .map(|(_, v)| {
            (v["origin_id"].as_str().unwrap_or_default().to_owned(), v["seq"].as_u64().unwrap_or(0))
        })
        .collect();
    let delivered = runs
        .iter()
        .flat_map(|r| r.events("receive"))
        .filter(|(_, v)| {
            keys.contains(&(
                v["origin_id"].as_str().unwrap_or_default().to_owned(),
                v["seq"].as_u64().unwrap_or(0),
            ))
        })
        .count();
    Window {
        sent: verdict.sent,
        delivered: delivered as u64,
        missed: verdict.totals().missed,
        worst_delay: verdict.worst_delay,
    }
}

impl Row {
    /// The row as JSON, with its verdict.
    fn verdict(&self, attack: Attack, baseline_delay: Duration, options: &Options) -> Value {
        let mut problems = Vec::new();
        let missed = self.during.missed + self.after.missed;
        if missed > 0 {
            problems.push(format!("{missed} honest deliveries missed"));
        }
        if self.duplicates > 0 {
            problems.push(format!("{} duplicate deliveries", self.duplicates));
        }
        if self.peak_rss >= MAX_RSS {
            problems.push(format!("peak RSS {} MB", self.peak_rss >> 20));
        }
        if self.worst_delay > baseline_delay + MAX_EXTRA_DELAY {
            problems.push(format!(
                "worst delay {:?} ({}) against {:?} without an attack",
                self.worst_delay, self.worst_delayed, baseline_delay
            ));
        }
        if self.during.sent == 0 {
            problems.push("no honest message was sent during the attack".to_owned());
        }
        problems.extend(attack.bound(&self.attacker, options.secs));
        json!({
            "attack": attack.name(),
            "did": attack.what(options.nodes),
            "sent_during": self.during.sent,
            "delivered_during": self.during.delivered,
            "missed_during": self.during.missed,
            "sent_after": self.after.sent,
            "delivered_after": self.after.delivered,
            "missed_after": self.after.missed,
            "duplicates": self.duplicates,
            "worst_delay_ms": self.worst_delay.as_millis() as u64,
            "worst_delayed": self.worst_delayed,
            "worst_delay_during_ms": self.during.worst_delay.as_millis() as u64,
            "peak_rss_mb": (self.peak_rss as f64 / f64::from(1 << 20) * 10.0).round() / 10.0,
            "target_cpu_s": (self.target_cpu.as_secs_f64() * 100.0).round() / 100.0,
            "attacker": self.attacker,
            "verdict": if problems.is_empty() { "pass" } else { "FAIL" },
            "problems": problems,
        })
    }
}

fn print_row(r: &Value) {
    println!(
        "| {} | {} | {}/{}/{} | {}/{}/{} | {} | {} ms | {} MB | {} s | {} | {} |",
        r["attack"].as_str().unwrap_or_default(),
        r["did"].as_str().unwrap_or_default(),
        r["sent_during"],
        r["delivered_during"],
        r["missed_during"],
        r["sent_after"],
        r["delivered_after"],
        r["missed_after"],
        r["duplicates"],
        r["worst_delay_ms"],
        r["peak_rss_mb"],
        r["target_cpu_s"],
        r["attacker"],
        r["verdict"].as_str().unwrap_or_default(),
    );
    for problem in r["problems"].as_array().into_iter().flatten() {
        println!("  problem: {}", problem.as_str().unwrap_or_default());
    }
}

/// Peak resident set size of a process (`VmHWM` in `/proc/<pid>/status`), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time a process's threads have used so far: the sum of their `/proc/<pid>/task/*/schedstat`
/// first fields (nanoseconds on a CPU). A node's runtime threads live as long as it does.
fn cpu_time(pid: u32) -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        nanos += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::{Attack, parse};
    use crate::cli::testing::{args, assert_help, assert_misuse};

    #[test]
    fn flags() {
        let options = parse(&args("--only eclipse --json --seed 5 --secs 10 --nodes 12"));
        assert!(options.is_ok_and(|o| o.only == Some(Attack::Eclipse)
            && o.json
            && o.seed == 5
            && o.secs == 10
            && o.nodes == 12));
        assert_help(parse(&args("--help")), "attack");
        assert_misuse(parse(&args("--only nothing")), "no attack named `nothing`");
        assert_misuse(parse(&args("--nodes 4")), "at least 8");
    }
}
