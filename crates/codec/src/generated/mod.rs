//! Rust types generated from `proto/dotray/v1/*.proto` by `cargo xtask codegen`.
//!
//! Do not edit `dotray.v1.rs` by hand: change the `.proto` files and regenerate. A test fails when the
//! committed file is stale.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!("dotray.v1.rs");
