//! # dotray-bench — how close dotray's broadcast gets to the machine's limit
//!
//! One run starts `nodes` nodes inside this process (one tokio runtime, real TCP on loopback), lets
//! them settle, broadcasts `msgs` messages of `size` bytes from `publishers` nodes as fast as
//! back-pressure allows, and measures until every node has delivered every message (or the run stalls
//! or times out: it never hangs). Two systems run the same workload:
//!
//! * [`System::Dotray`]: real [`dotray::Node`]s, seeded from node 0, exactly as an application uses
//!   them ([`dotray_net`]).
//! * [`System::IdealTree`]: the physical limit of tree forwarding — plain tokio TCP, node `i` connected
//!   to parent `(i-1)/2`, each message a `u32` length prefix and the payload, forwarded to the other tree
//!   neighbours with buffered writes; no ids, no dedup, no acks ([`ideal_tree`]).
//!
//! `cargo xtask bench` runs each (system, run) in its own process of the `dotray-bench` binary, so CPU
//! time and peak RSS are that run's alone, and reports dotray as ratios to the ideal tree.
//!
//! ```no_run
//! use dotray_bench::{Spec, System};
//! # fn main() -> Result<(), dotray_bench::BenchError> {
//! let spec = Spec { system: System::IdealTree, nodes: 8, msgs: 100, size: 1024, publishers: 1, interval_ms: 0, data_dir: None, history_mib: None };
//! let report = dotray_bench::run(&spec)?;
//! assert_eq!(report.missing(), 0);
//! println!("{}", report.to_json());
//! # Ok(()) }
//! ```
// `unsafe_code` is denied workspace-wide; the one getrusage call in `usage` is allowed there alone.
#![deny(unsafe_code)]

pub mod dotray_net;
pub mod ideal_tree;
pub mod payload;
pub mod recovery;
pub mod report;
pub mod spec;
pub mod tally;
pub mod usage;
pub mod watch;

pub use report::{End, Report};
pub use spec::{Spec, System};

/// Why a run could not be carried out at all (a run that stalls or times out is not an error: it is
/// reported with [`End::Stalled`] or [`End::Timeout`]).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The workload makes no sense (for example fewer than two nodes).
    #[error("invalid workload: {0}")]
    InvalidSpec(String),
    /// A socket operation of the setup failed.
    #[error("setup failed: {0}")]
    Io(#[from] std::io::Error),
    /// A dotray node could not start.
    #[error("a dotray node failed to start: {0}")]
    Start(#[from] dotray::StartError),
    /// A dotray node stopped answering during setup.
    #[error("a dotray node failed: {0}")]
    Node(#[from] dotray::NodeError),
    /// The network did not settle before the setup deadline.
    #[error("the network did not settle: {0}")]
    Unsettled(String),
}

/// Runs one system once on a fresh multi-threaded tokio runtime with one worker per core.
pub fn run(spec: &Spec) -> Result<Report, BenchError> {
    spec.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        match spec.system {
            System::Dotray => dotray_net::run(spec).await,
            System::IdealTree => ideal_tree::run(spec).await,
        }
    });
    // Tasks still blocked on a stalled network are dropped with the runtime, without waiting.
    runtime.shutdown_background();
    report
}
