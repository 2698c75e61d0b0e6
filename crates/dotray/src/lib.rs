//! # dotray — a peer-to-peer broadcast network
//!
//! Join a TCP network with a listen address and one seed address; broadcast bytes to every node;
//! receive, exactly once and in per-origin order, what every other node broadcasts.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = dotray::Node::builder()
//!     .listen("127.0.0.1:2001")
//!     .seed("localhost:2000")
//!     .start()
//!     .await?;
//! node.broadcast("hello".into()).await?;
//! while let Some(message) = node.recv().await {
//!     println!("{:?} from {:?}", message.payload, message.origin_addr);
//! }
//! # Ok(()) }
//! ```
//!
//! This facade re-exports each layer as a module, so depending on `dotray` alone gives you all of them:
//!
//! * [`codec`] — the wire protocol and its tokio-util codec;
//! * [`transport`] — TCP connections with a checked handshake and hard limits;
//! * [`membership`] — HyParView discovery, ping/pong liveness, failure replacement, node query;
//! * [`router`] — Plumtree spanning-tree broadcast with acks, catch-up and ordered delivery;
//! * [`node`] — both protocols composed into one node core, and the tokio driver that runs it;
//! * [`store`] — the data directory that lets a node continue its identity and stream across
//!   restarts ([`NodeBuilder::data_dir`]).
//!
//! Each node publishes its counters and gauges through the `metrics` facade: the [`metrics`] module
//! lists them.
#![forbid(unsafe_code)]

mod channels;
mod error;
mod handle;
mod key_file;
pub mod metrics;

pub use dotray_codec as codec;
pub use dotray_codec::{NodeId, SecretKey};
pub use dotray_membership as membership;
pub use dotray_node as node;
pub use dotray_router as router;
pub use dotray_store as store;
pub use dotray_transport as transport;

pub use channels::{CHANNEL_CAPACITY, start_node};
pub use dotray_node::core::Event;
pub use dotray_node::core::Refusal;
pub use dotray_node::{Message, PeerAddr, ResolveError, SeedAddr};
pub use dotray_store::HistoryLimits;
pub use dotray_transport::NetworkKey;
pub use error::{NodeError, StartError};
pub use handle::{Node, NodeBuilder};
pub use key_file::KeyFileError;
pub use metrics::MetricsConfig;
