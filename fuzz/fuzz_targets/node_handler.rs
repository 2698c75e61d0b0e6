//! Fuzz target `node_handler`: scripts of connections, direct messages of any length, membership
//! requests, broadcast payloads from neighbours and strangers, own broadcasts, timers and time,
//! fed to one `dotray_node::core::NodeCore`. Checks that it never panics and that no sender gets
//! more direct-message bytes to the application than its budget allows. The logic lives in
//! `crates/node/tests/fuzz_driver/mod.rs`, shared with the regression test
//! `crates/node/tests/fuzz_regressions.rs`.
#![no_main]

// The driver holds both node targets; each uses one.
#[allow(dead_code)]
#[path = "../../crates/node/tests/fuzz_driver/mod.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::node_handler(data));
