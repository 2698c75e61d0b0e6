//! Fuzz regressions: every input saved under `fuzz/regressions/router_handler/` (inputs that once crashed
//! the `router_handler` fuzz target, and a few interesting corpus seeds) replayed through the target's
//! own checks (`tests/fuzz_driver`), so a fixed bug stays fixed without running the fuzzer.

mod fuzz_driver;
#[path = "../../../fuzz/regressions.rs"]
mod regressions;

#[test]
fn router_handler_regressions() {
    let inputs = regressions::inputs("router_handler");
    for (path, data) in inputs {
        eprintln!("replaying {}", path.display());
        fuzz_driver::router_handler(&data);
    }
}
