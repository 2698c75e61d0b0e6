//! Fuzz regressions for the transport's handshake: every input saved under
//! `fuzz/regressions/handshake/` (inputs that once crashed the `handshake` fuzz target, and a few
//! interesting corpus seeds) replayed through the target's own checks (`tests/fuzz_driver`) against a
//! real transport on loopback. The handshake lives in `dotray-transport`; the test lives here, in the
//! facade, which depends on every layer.

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
fn handshake_regressions() {
    let inputs = inputs("handshake");
    assert!(!inputs.is_empty(), "no saved inputs");
    let mut fuzzer = fuzz_driver::HandshakeFuzzer::new();
    for (path, data) in inputs {
        eprintln!("replaying {}", path.display());
        fuzzer.run(&data);
    }
}
