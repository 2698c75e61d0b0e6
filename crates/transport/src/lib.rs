//! # dotray-transport — TCP connections between dotray nodes
//!
//! The only crate of dotray that touches sockets. It listens on a TCP address and dials others; every
//! connection starts with a `Hello` handshake both ways (network id, protocol version, node id,
//! advertised listen address, nonce), keeps at most one connection per pair of nodes, and moves
//! [`dotray_codec`] frames through bounded per-peer queues with hard limits on everything a remote peer
//! could abuse. The membership and router layers above see typed events and never a socket.
#![forbid(unsafe_code)]
