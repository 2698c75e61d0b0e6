//! Multi-node tests of the router core over the in-memory network of `harness`: reliability,
//! exactly-once in-order delivery, redundancy (RMR) and tree depth (LDH), with loss and crashes.
//! Each test prints its seed; replay with `SEED=<n> cargo test -p dotray-router --test network`.

mod harness;

use std::time::Duration;

use harness::{Report, Sim, SimConfig, seed_or};

fn run(cfg: SimConfig) -> Report {
    let seed = cfg.seed;
    eprintln!("SEED={seed}");
    let report = Sim::new(cfg).run();
    eprintln!("SEED={seed} {report:#?}");
    report
}

/// Every live node delivered every message of every live origin, once, in order, with no gap.
fn assert_reliable(r: &Report, seed: u64) {
    assert!(r.live_broadcasts > 0 && r.live_nodes > 1, "SEED={seed}: nothing was tested");
    assert_eq!(r.missing, 0, "SEED={seed}: live nodes missed live-origin messages: {r:#?}");
    assert_eq!(r.order_violations, 0, "SEED={seed}: duplicate or out-of-order delivery: {r:#?}");
    assert_eq!(r.live_gaps, 0, "SEED={seed}: gap reported on a live stream: {r:#?}");
    assert_eq!(r.violations, 0, "SEED={seed}: protocol violations between honest nodes: {r:#?}");
}

#[test]
fn every_node_delivers_every_message_once_in_order() {
    // 100 nodes, 300 messages from random origins, 5 ms apart: many origins in flight at once.
    let seed = seed_or(1);
    let r = run(SimConfig::new(seed));
    assert_reliable(&r, seed);
    assert_eq!(r.live_nodes, 100);
    // Nothing crashed: every node but the origin delivered every message, exactly once.
    assert_eq!(r.deliveries, (r.broadcasts * 99) as u64, "SEED={seed}");
}

#[test]
fn redundancy_vanishes_once_the_tree_has_formed() {
    // One publisher (the common case, and the benchmark's). The first messages flood and prune; in
    // the second half of the run each node receives each payload (almost) exactly once.
    let seed = seed_or(5);
    let mut cfg = SimConfig::new(seed);
    cfg.origins = Some(1);
    let r = run(cfg);
    assert_reliable(&r, seed);
    assert!(r.rmr_steady < 0.05, "SEED={seed}: steady-state RMR {} too high", r.rmr_steady);
    // The eager links form a spanning tree: 2 (n - 1) directions, plus at most a few.
    assert!(r.eager_links < 2 * 99 + 10, "SEED={seed}: {} eager links", r.eager_links);
    assert!(r.ldh_max < 20, "SEED={seed}: tree too deep (LDH {})", r.ldh_max);
}

#[test]
fn survives_one_percent_message_loss() {
    let seed = seed_or(2);
    let mut cfg = SimConfig::new(seed);
    cfg.loss = 0.01;
    let r = run(cfg);
    assert_reliable(&r, seed);
    assert_eq!(r.deliveries, (r.broadcasts * 99) as u64, "SEED={seed}");
}

#[test]
fn survives_twenty_percent_of_nodes_crashing_mid_stream() {
    let seed = seed_or(3);
    let mut cfg = SimConfig::new(seed);
    cfg.crash_fraction = 0.2;
    let r = run(cfg);
    assert_reliable(&r, seed);
    assert_eq!(r.live_nodes, 80, "SEED={seed}");
}

#[test]
fn survives_crashes_and_loss_together() {
    let seed = seed_or(4);
    let mut cfg = SimConfig::new(seed);
    cfg.crash_fraction = 0.2;
    cfg.loss = 0.01;
    cfg.detection_delay = Duration::from_millis(200);
    let r = run(cfg);
    assert_reliable(&r, seed);
}

/// A longer run for measurements (not part of the default suite): 100 nodes, 2,000 messages from
/// random origins. `cargo test -p dotray-router --test network -- --ignored --nocapture`.
#[test]
#[ignore = "slow: a measurement run"]
fn long_run_many_origins() {
    let seed = seed_or(6);
    let mut cfg = SimConfig::new(seed);
    cfg.messages = 2_000;
    let r = run(cfg);
    assert_reliable(&r, seed);
}
