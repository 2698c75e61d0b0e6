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

/// Seeded scripts in which four peers connect and ask to be neighbours, then about one byte in five
/// is the op of a group of the other origin's broadcast (10): the fuzzer reaches well-formed groups
/// only by mutation, so this keeps delivery of proven groups under the target's checks in the
/// normal suite.
#[test]
fn node_handler_seeded_group_scripts() {
    use rand::{Rng, SeedableRng};
    for seed in 0..300u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut script = vec![rng.random::<u8>()];
        for peer in 0..4u8 {
            // Connect, then a high-priority `Neighbour` request.
            script.extend_from_slice(&[peer << 4, (peer << 4) | 5, 1]);
        }
        for _ in 0..rng.random_range(50..1_500) {
            let b: u8 = rng.random();
            script.push(if b < 50 { (rng.random::<u8>() & 0x30) | 10 } else { rng.random() });
        }
        fuzz_driver::node_handler(&script);
    }
}
