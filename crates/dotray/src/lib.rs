//! # dotray — a peer-to-peer broadcast network
//!
//! Join a TCP network with a listen address and one seed address; broadcast bytes to every node;
//! receive, exactly once and in per-origin order, what every other node broadcasts.
//!
//! This facade re-exports each layer as a module, so depending on `dotray` alone gives you all of them:
//!
//! * [`codec`] — the wire protocol and its tokio-util codec;
//! * [`transport`] — TCP connections with a checked handshake and hard limits;
//! * [`membership`] — HyParView discovery, ping/pong liveness, failure replacement, node query;
//! * [`router`] — Plumtree spanning-tree broadcast with acks, catch-up and ordered delivery.
//!
//! The node type most users want (a builder, a handle to broadcast and receive) arrives with the
//! facade issue.
#![forbid(unsafe_code)]

pub use dotray_codec as codec;
pub use dotray_membership as membership;
pub use dotray_router as router;
pub use dotray_transport as transport;
