//! A local network of demo processes: start (on this host or inside a Linux network namespace), kill
//! (SIGKILL), restart and stop (SIGTERM) nodes, and collect each process's `--json` lines with the time
//! they were read.
//!
//! Shared by `cargo xtask demo`, `chaos` and `partition` and the `dotray` crate's multi-process tests
//! (included by path).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::demo_log::Run;

/// Nodes of a local demo network, by index.
pub struct Cluster {
    bin: PathBuf,
    children: Vec<Option<Child>>,
    /// Index into `runs` of each node's current run.
    current: Vec<Option<usize>>,
    /// Each node's label.
    labels: Vec<String>,
    /// Where each run's output is also written, one file per run, if set.
    log_dir: Option<PathBuf>,
    /// Time zero of the log files' timestamps.
    epoch: Instant,
    runs: Arc<Mutex<Vec<Run>>>,
}

impl Cluster {
    /// A network of up to `nodes` nodes, each run as `bin`.
    pub fn new(bin: PathBuf, nodes: usize) -> Self {
        Self {
            bin,
            children: (0..nodes).map(|_| None).collect(),
            current: vec![None; nodes],
            labels: vec![String::new(); nodes],
            log_dir: None,
            epoch: Instant::now(),
            runs: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Also writes every run's output to `dir/<label>-<run>.jsonl`, each line prefixed with the seconds
    /// since the cluster was created and a tab, so that logs of different nodes can be lined up.
    pub fn log_to(mut self, dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        self.log_dir = Some(dir);
        Ok(self)
    }

    /// Starts node `index` with `args` (plus `--json`), labelled `label`.
    pub fn start(&mut self, index: usize, label: &str, args: &[String]) -> std::io::Result<()> {
        let mut command = Command::new(&self.bin);
        command.args(args);
        self.spawn(index, label, command)
    }

    /// Starts node `index` like [`Cluster::start`], but inside the Linux network namespace `netns`
    /// (`ip netns exec <netns> <binary> <args> --json`; needs root). `ip` execs the binary, so the
    /// process is the node itself: [`Cluster::stop`] and [`Cluster::kill`] signal it directly.
    pub fn start_in_netns(
        &mut self,
        index: usize,
        label: &str,
        netns: &str,
        args: &[String],
    ) -> std::io::Result<()> {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns]).arg(&self.bin).args(args);
        self.spawn(index, label, command)
    }

    /// Spawns `command` (plus `--json`) as node `index` and reads its output on a thread.
    /// With a log directory, the node's stderr (its warnings: violations, refusals) goes to
    /// `{label}-{run}.log` beside its `.jsonl`.
    fn spawn(&mut self, index: usize, label: &str, mut command: Command) -> std::io::Result<()> {
        let next_run = self.runs.lock().expect("lock").len();
        let stderr = match &self.log_dir {
            Some(dir) => Stdio::from(std::fs::File::create(dir.join(format!("{label}-{next_run:04}.log")))?),
            None => Stdio::null(),
        };
        let mut child =
            command.arg("--json").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let run_index = {
            let mut runs = self.runs.lock().expect("lock");
            runs.push(Run::new(label.to_owned(), Instant::now()));
            runs.len() - 1
        };
        let runs = self.runs.clone();
        let epoch = self.epoch;
        let mut log = match &self.log_dir {
            Some(dir) => Some(std::fs::File::create(dir.join(format!("{label}-{run_index:04}.jsonl")))?),
            None => None,
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let now = Instant::now();
                if let Some(log) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(log, "{:.3}\t{line}", now.duration_since(epoch).as_secs_f64());
                }
                runs.lock().expect("lock")[run_index].record(now, &line);
            }
            let mut runs = runs.lock().expect("lock");
            let run = &mut runs[run_index];
            run.ended.get_or_insert_with(Instant::now);
        });
        self.children[index] = Some(child);
        self.current[index] = Some(run_index);
        self.labels[index] = label.to_owned();
        Ok(())
    }

    /// Kills node `index` at once (SIGKILL): no goodbye, like a crash.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            self.mark_ended(index);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `index` gracefully (SIGTERM: goodbyes, then exit), SIGKILL after `patience`.
    pub fn stop(&mut self, index: usize, patience: Duration) {
        let Some(mut child) = self.children[index].take() else { return };
        self.mark_ended(index);
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + patience;
        while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The process id of node `index`, while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children[index].as_ref().map(Child::id)
    }

    /// True while node `index` has a running process.
    pub fn is_running(&self, index: usize) -> bool {
        self.children[index].is_some()
    }

    /// Stops every node with SIGTERM (a graceful leave) and waits for them, SIGKILL after `patience`.
    pub fn stop_all(&mut self, patience: Duration) {
        for child in self.children.iter().flatten() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        }
        let deadline = Instant::now() + patience;
        for index in 0..self.children.len() {
            let Some(mut child) = self.children[index].take() else { continue };
            loop {
                if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Give the reader threads a moment to read the last lines.
        std::thread::sleep(Duration::from_millis(200));
        for index in 0..self.current.len() {
            self.mark_ended(index);
        }
    }

    fn mark_ended(&mut self, index: usize) {
        if let Some(run) = self.current[index] {
            self.runs.lock().expect("lock")[run].ended.get_or_insert_with(Instant::now);
        }
    }

    /// A copy of every run so far.
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().expect("lock").clone()
    }

    /// Calls `f` with every run so far, without copying them (the readers wait meanwhile, so keep `f`
    /// short). For polling the logs while the nodes run.
    pub fn with_runs<T>(&self, f: impl FnOnce(&[Run]) -> T) -> T {
        f(&self.runs.lock().expect("lock"))
    }

    /// Deliveries so far per node index (all runs of that node).
    pub fn received(&self) -> Vec<usize> {
        let runs = self.runs.lock().expect("lock");
        let count = |label: &String| -> usize {
            runs.iter()
                .filter(|r| &r.node == label)
                .map(|r| r.lines.iter().filter(|(_, v)| v["event"] == "receive").count())
                .sum()
        };
        self.labels.iter().map(count).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `count` loopback addresses with consecutive ports from `base` if all are free, else (or with
/// `base` 0) free ports chosen by the operating system.
pub fn local_addrs(base: u16, count: usize) -> Vec<SocketAddr> {
    let wanted: Vec<SocketAddr> =
        (0..count).map(|i| SocketAddr::from(([127, 0, 0, 1], base.saturating_add(i as u16)))).collect();
    if base != 0 && wanted.iter().all(|a| TcpListener::bind(a).is_ok()) {
        return wanted;
    }
    let listeners: Vec<TcpListener> =
        (0..count).filter_map(|_| TcpListener::bind("127.0.0.1:0").ok()).collect();
    listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
}
