//! Fuzz regressions for the transport's handshake: every input saved under
//! `fuzz/regressions/handshake/` (inputs that once crashed the `handshake` fuzz target, and a few
//! interesting corpus seeds) replayed through the target's own checks (`tests/fuzz_driver`) against a
//! real transport on loopback. The handshake lives in `dotray-transport`; the test lives here, in the
//! facade, which depends on every layer.

mod fuzz_driver;
#[path = "../../../fuzz/regressions.rs"]
mod regressions;

#[test]
fn handshake_regressions() {
    let inputs = regressions::inputs("handshake");
    let mut fuzzer = fuzz_driver::HandshakeFuzzer::new();
    for (path, data) in inputs {
        eprintln!("replaying {}", path.display());
        fuzzer.run(&data);
    }
}
