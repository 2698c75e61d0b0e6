//! Fuzz target `handshake`: the transport's hello validation and first frames, end to end. One real
//! `dotray_transport::Transport` listens on loopback for the whole run; each input (optionally after a
//! valid `Hello`) is written raw to a fresh TCP connection. Checks that no transport task panics, that
//! the connection is closed, that exactly one typed outcome is reported (`HandshakeFailed`, or
//! `Connected` .. `Disconnected`), that the transport writes only its hello and at most one goodbye,
//! and that no connection slot leaks. The logic lives in `crates/dotray/tests/fuzz_driver/mod.rs`, shared
//! with the regression test `crates/dotray/tests/fuzz_regressions.rs`.
#![no_main]

use std::sync::{Mutex, OnceLock};

#[path = "../../crates/dotray/tests/fuzz_driver/mod.rs"]
mod driver;

static FUZZER: OnceLock<Mutex<driver::HandshakeFuzzer>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fuzzer = FUZZER.get_or_init(|| Mutex::new(driver::HandshakeFuzzer::new()));
    fuzzer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).run(data);
});
