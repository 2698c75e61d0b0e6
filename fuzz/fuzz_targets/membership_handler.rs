//! Fuzz target `membership_handler`: the sans-IO HyParView core (`dotray_membership::Membership`) fed an
//! arbitrary sequence of transport events, timers and membership messages (adversarial protobuf
//! bodies, raw frames and plausible answers, all through `dotray_membership::wire`), with injected time
//! and a seeded rng. Checks that it never panics, that the active and passive views and the open
//! connections stay within their configured bounds, that `NeighbourUp`/`NeighbourDown` agree with the
//! active view, and that everything it sends passes the wire layer. The logic lives in
//! `crates/membership/tests/fuzz_driver/mod.rs`, shared with the regression test
//! `crates/membership/tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../../crates/membership/tests/fuzz_driver/mod.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::membership_handler(data));
