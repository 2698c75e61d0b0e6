//! [`Spec`]: what one benchmark run does (which system, how many nodes, messages, bytes, publishers),
//! and the limits every run obeys.

use std::time::Duration;

use crate::BenchError;
use crate::payload::HEADER_LEN;

/// A run ends as stalled when no node delivered anything for this long.
pub const STALL_AFTER: Duration = Duration::from_secs(10);
/// A run ends as timed out this long after the first publish.
pub const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Which implementation carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Real dotray nodes.
    Dotray,
    /// The plain-TCP binary-tree baseline.
    IdealTree,
}

impl System {
    /// The name used on the command line and in the JSON (`"dotray"`, `"ideal-tree"`).
    pub fn name(self) -> &'static str {
        match self {
            System::Dotray => "dotray",
            System::IdealTree => "ideal-tree",
        }
    }

    /// Parses [`System::name`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "dotray" => Some(System::Dotray),
            "ideal-tree" => Some(System::IdealTree),
            _ => None,
        }
    }
}

/// One run's workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The system under test.
    pub system: System,
    /// Nodes in the network (at least 2).
    pub nodes: usize,
    /// Messages broadcast in the measured phase.
    pub msgs: usize,
    /// Bytes per message (at least [`HEADER_LEN`]: each payload starts with its index and send time).
    pub size: usize,
    /// Publishing nodes: message `k` is broadcast by node `k % publishers`.
    pub publishers: usize,
    /// Pacing: message `k` is broadcast `k · interval_ms` after the measured phase starts. 0: as fast
    /// as the system takes them (the default). A paced run measures latency at a low rate, where a
    /// system cannot hide per-message delays behind batching.
    pub interval_ms: u64,
    /// dotray only: every node keeps a data directory (`<data_dir>/node-<i>`, emptied first), and
    /// the application acknowledges what it receives (the last message of each stream in each batch
    /// it takes), as a durable application does. `None`: no data directory (the default).
    pub data_dir: Option<std::path::PathBuf>,
    /// dotray only, with `data_dir`: every node also keeps a history of this many MiB
    /// (`NodeBuilder::history`). `None`: no history (the default).
    pub history_mib: Option<u64>,
}

impl Spec {
    /// Deliveries a complete run makes: every message at every node but its publisher.
    pub fn expected(&self) -> u64 {
        (self.nodes as u64 - 1) * self.msgs as u64
    }

    /// When message `index` is due, after the measured phase starts (`None`: at once).
    pub fn due(&self, index: usize) -> Option<Duration> {
        (self.interval_ms > 0).then(|| Duration::from_millis(self.interval_ms) * index as u32)
    }

    /// The node that publishes message `index`.
    pub fn publisher_of(&self, index: usize) -> usize {
        index % self.publishers
    }

    /// Checks that the workload can run.
    pub fn validate(&self) -> Result<(), BenchError> {
        let fail = |what: &str| Err(BenchError::InvalidSpec(what.to_owned()));
        if self.nodes < 2 {
            return fail("at least 2 nodes");
        }
        if self.msgs == 0 || self.msgs > u32::MAX as usize {
            return fail("between 1 and 2^32-1 messages");
        }
        if self.size < HEADER_LEN {
            return fail(&format!("messages of at least {HEADER_LEN} bytes"));
        }
        if self.publishers == 0 || self.publishers > self.nodes {
            return fail("between 1 and `nodes` publishers");
        }
        Ok(())
    }
}
