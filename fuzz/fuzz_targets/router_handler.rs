//! Fuzz target `router_handler`: the sans-IO Plumtree core (`dotray_router::core::Router`) fed an
//! arbitrary sequence of neighbour changes, timers, broadcasts and router messages (well-formed,
//! adversarial protobuf bodies, raw frames and graft answers, all through `dotray_router::wire`), with
//! injected time and a seeded rng. Checks that it never panics, delivers each message at most once and
//! in order (gaps reported, never skipped), hands out the right payloads, stays within its stream,
//! serving and retention bounds, and sends only what passes the wire layer. The logic lives in
//! `crates/router/tests/fuzz_driver/mod.rs`, shared with the regression test
//! `crates/router/tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../../crates/router/tests/fuzz_driver/mod.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::router_handler(data));
