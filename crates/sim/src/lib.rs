//! # dotray-sim — a deterministic simulator of many dotray cores
//!
//! `dotray-sim` runs hundreds to thousands of node cores ([`dotray_node::core::NodeCore`]: membership
//! and router composed, the very state machine a real node's driver runs) in one process, over a
//! simulated network with latency, optional loss, crashes and partitions. There are no sockets, no
//! threads and no clock: a binary heap of events ordered by (simulated time, sequence number) drives
//! everything, and every random choice — ids, latencies, which nodes crash, and each core's own
//! generator — derives from one seed through `ChaCha8Rng`. The same seed replays the same run, event
//! for event.
//!
//! * [`Sim`] — the network and the nodes; add nodes, crash them, partition, run for a while, and
//!   [`Sim::broadcast`] from one.
//! * [`metrics`] — connectivity of the overlay and view sizes at an instant.
//! * [`record`] — what each node delivered, checked for exactly-once, in-order delivery.
//! * [`scenarios`] — the membership scenarios (join, crash half, partition, churn), each returning a
//!   [`scenarios::Report`]. `cargo xtask sim membership` runs them at 1,000 nodes; the tests of this
//!   crate at 60.
//! * [`broadcast`] — the broadcast scenarios (steady stream, crashes, loss, partition) with the
//!   papers' metrics (reliability, RMR, LDH). `cargo xtask sim broadcast` runs them at 1,000 nodes and
//!   10,000 messages; the tests of this crate at 60 nodes.
//!
//! ```
//! use dotray_sim::{Sim, NetworkConfig, metrics};
//! use dotray_membership::core::Config;
//! use std::time::Duration;
//!
//! let mut sim = Sim::new(7, NetworkConfig::default(), Config::default());
//! let seed = Sim::addr_of(sim.add_node(Vec::new()));
//! for _ in 0..10 {
//!     sim.add_node(vec![seed]);
//! }
//! sim.run_for(Duration::from_secs(10));
//! assert!(metrics::snapshot(&sim).connected());
//! ```
#![forbid(unsafe_code)]

pub mod broadcast;
pub mod metrics;
mod network;
mod queue;
pub mod record;
pub mod scenarios;
mod sim;

pub use network::NetworkConfig;
pub use sim::{EventHook, Sim, SimNode, Stats};

/// Index of a node in the simulation (in order of creation; never reused).
pub type NodeIdx = usize;

/// The seed for a run: the `SEED` environment variable if set (to replay a run), else a random one.
pub fn seed_from_env() -> u64 {
    match std::env::var("SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("SEED must be a u64, got {s:?}")),
        Err(_) => rand::random(),
    }
}
