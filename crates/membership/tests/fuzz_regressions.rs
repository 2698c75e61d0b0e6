//! Fuzz regressions: every input saved under `fuzz/regressions/membership_handler/` (inputs that once crashed
//! the `membership_handler` fuzz target, and a few interesting corpus seeds) replayed through the target's
//! own checks (`tests/fuzz_driver`), so a fixed bug stays fixed without running the fuzzer.

mod fuzz_driver;
#[path = "../../../fuzz/regressions.rs"]
mod regressions;

#[test]
fn membership_handler_regressions() {
    let inputs = regressions::inputs("membership_handler");
    for (path, data) in inputs {
        eprintln!("replaying {}", path.display());
        fuzz_driver::membership_handler(&data);
    }
}
