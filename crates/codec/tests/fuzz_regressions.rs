//! Fuzz regressions: every input saved under `fuzz/regressions/frame_decode/` (inputs that once crashed
//! the `frame_decode` fuzz target, and a few interesting corpus seeds) replayed through the target's
//! own checks (`tests/fuzz_driver`), so a fixed bug stays fixed without running the fuzzer.

mod fuzz_driver;

use std::path::PathBuf;

/// The saved inputs of one fuzz target, sorted by name.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|path| (path.clone(), std::fs::read(&path).expect("readable input"))).collect()
}

#[test]
fn frame_decode_regressions() {
    let inputs = inputs("frame_decode");
    assert!(!inputs.is_empty(), "no saved inputs");
    for (path, data) in inputs {
        eprintln!("replaying {}", path.display());
        fuzz_driver::frame_decode(&data);
    }
}
