//! Fuzz target `frame_decode`: arbitrary bytes, cut into arbitrary chunks, fed to
//! `dotray_codec::FrameCodec` (a tokio-util `Decoder`) with a small maximum frame length. Checks that it
//! never panics, returns only typed errors, refuses an oversize prefix before reserving anything, keeps
//! its read buffer within a bound set by the limit, and that every envelope it accepts has a body and
//! round-trips. The logic lives in `crates/codec/tests/fuzz_driver/mod.rs`, shared with the regression
//! test `crates/codec/tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../../crates/codec/tests/fuzz_driver/mod.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::frame_decode(data));
