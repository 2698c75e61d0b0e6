//! Where the demo example's binary is, for the tests that run it as real processes.

use std::path::PathBuf;

/// The demo built beside the running test binary (`cargo test` builds the examples):
/// `target/<profile>/deps/<test>-<hash>` → `target/<profile>/examples/demo`.
pub(crate) fn demo_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("test binary path");
    let profile_dir = test_exe.parent().and_then(|deps| deps.parent()).expect("target layout");
    let bin = profile_dir.join("examples").join("demo");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --example demo` (cargo test builds it)",
        bin.display()
    );
    bin
}
