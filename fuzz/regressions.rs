//! Loading the saved fuzz inputs for the regression tests of the normal suite. Each crate's
//! `tests/fuzz_regressions.rs` includes this file by `#[path]` (the tests of four crates share it
//! without a crate of their own) and replays the inputs through its target's `tests/fuzz_driver`.

use std::path::PathBuf;

/// The saved inputs of one fuzz target (`fuzz/regressions/<target>/`), sorted by name. Panics if
/// there are none: a regression test that replays nothing must not pass.
pub(crate) fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    // `CARGO_MANIFEST_DIR` is the including crate's, two levels below the workspace root.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    files.into_iter().map(|path| (path.clone(), std::fs::read(&path).expect("readable input"))).collect()
}
