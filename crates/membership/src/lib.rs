//! # dotray-membership — who is in the network
//!
//! HyParView membership (active and passive views, forward-join random walks, peer exchange),
//! ping/pong liveness with smoothed round-trip times, failure replacement, partition healing and the
//! node query, as a sans-IO core plus a thin tokio driver over `dotray-transport`.
#![forbid(unsafe_code)]
