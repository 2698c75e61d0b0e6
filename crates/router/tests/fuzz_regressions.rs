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

/// Seeded scripts that open with three neighbours, with about one byte in six the op byte of a group
/// run (255): the fuzzer reaches group runs only by mutation, so this keeps the held-group paths
/// under the target's checks in the normal suite.
#[test]
fn router_handler_seeded_group_scripts() {
    use rand::{Rng, SeedableRng};
    for seed in 0..300u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut script = vec![rng.random::<u8>(), rng.random::<u8>()];
        for peer in 1..=3u8 {
            script.extend_from_slice(&[1, peer]);
        }
        for _ in 0..rng.random_range(50..1_500) {
            let b: u8 = rng.random();
            script.push(if b < 40 { 255 } else { rng.random() });
        }
        fuzz_driver::router_handler(&script);
    }
}
