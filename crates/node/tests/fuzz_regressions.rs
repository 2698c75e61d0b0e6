//! Fuzz regressions: every input saved under `fuzz/regressions/reassembly/` and
//! `fuzz/regressions/node_handler/` replayed through its fuzz target's own checks
//! (`tests/fuzz_driver`), so a fixed bug stays fixed without running the fuzzer.

mod fuzz_driver;
#[path = "../../../fuzz/regressions.rs"]
mod regressions;

#[test]
fn reassembly_regressions() {
    for (path, data) in regressions::inputs("reassembly") {
        eprintln!("replaying {}", path.display());
        fuzz_driver::reassembly(&data);
    }
}

#[test]
fn node_handler_regressions() {
    for (path, data) in regressions::inputs("node_handler") {
        eprintln!("replaying {}", path.display());
        fuzz_driver::node_handler(&data);
    }
}
