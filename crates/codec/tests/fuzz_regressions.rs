//! Fuzz regressions: every input saved under `fuzz/regressions/frame_decode/` (inputs that once crashed
//! the `frame_decode` fuzz target, and a few interesting corpus seeds) replayed through the target's
//! own checks (`tests/fuzz_driver`), so a fixed bug stays fixed without running the fuzzer.

mod fuzz_driver;
#[path = "../../../fuzz/regressions.rs"]
mod regressions;

#[test]
fn frame_decode_regressions() {
    let inputs = regressions::inputs("frame_decode");
    for (path, data) in inputs {
        eprintln!("replaying {}", path.display());
        fuzz_driver::frame_decode(&data);
    }
}
