//! # dotray-node — one node: membership and broadcast as one state machine, and its driver
//!
//! A dotray node runs two protocols: HyParView membership (`dotray-membership`: who its few
//! neighbours are) and Plumtree broadcast (`dotray-router`: what travels over them). Each is a sans-IO
//! core of its own crate that knows nothing of the other. This crate composes them, in two layers:
//!
//! * [`core`] — [`NodeCore`](core::NodeCore), the node's whole protocol as one sans-IO state machine:
//!   connection facts and [`PeerMessage`](core::PeerMessage)s in (`handle_*`, with `now`), one stream
//!   of [`Action`](core::Action)s out (`poll_action`), neighbour changes routed from membership to the
//!   router inside. No tokio, no clock, injected randomness. The `dotray-sim` simulator drives this
//!   very type, so what it shows of thousands of nodes is what ships.
//! * [`driver`] — the one tokio task per node that runs the core over `dotray-transport`: frames
//!   from the connections' readers are decoded and handed to the core, and the core's messages are
//!   encoded once per hop and queued on the connections' writers. It adds hop-by-hop back-pressure
//!   and nothing else.
//!
//! The facade crate `dotray` builds a node from these parts (`dotray::Node`); use this crate
//! directly to drive a node core yourself. How a broadcast travels through the layers is drawn in
//! `docs/ARCHITECTURE.md`.
#![forbid(unsafe_code)]

pub mod core;
pub mod driver;
pub mod fragment;
mod message;
mod peer_addr;
pub mod stored_batch;
pub mod timers;

pub use driver::{
    AckError, BroadcastError, DriverConfig, DriverCounters, NodeHandle, NodeOutput, RemoteQueryError,
    ReplayError, Stopped,
};
pub use message::Message;
pub use peer_addr::{PeerAddr, ResolveError, SeedAddr};
