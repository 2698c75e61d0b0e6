//! Fuzz target `reassembly`: scripts of payloads (raw bytes or honest messages cut by `split`),
//! reported losses, silent jumps and sequence numbers near the end of the range, fed to
//! `dotray_node::fragment::Reassembly`. Checks that it never panics, keeps its charge within the
//! budget, delivers nothing over the limit or out of order, and delivers an honest message fed
//! without interruption whole. The logic lives in `crates/node/tests/fuzz_driver/mod.rs`, shared
//! with the regression test `crates/node/tests/fuzz_regressions.rs`.
#![no_main]

// The driver holds both node targets; each uses one.
#[allow(dead_code)]
#[path = "../../crates/node/tests/fuzz_driver/mod.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::reassembly(data));
