//! The broadcast scenarios (membership + router on every node) at a small size, so that `cargo test`
//! stays fast: 60 nodes, 300 messages from random origins (1,000 for the steady-state redundancy, so
//! that the second half is well past the tree's formation). `cargo xtask sim broadcast` runs them at
//! 1,000 nodes and 10,000 messages. Each test prints its report row; a failure names the seed
//! (`SEED=… cargo test -p dotray-sim --test broadcast` replays it).

use dotray_sim::broadcast::{self, Params, Report};

const NODES: usize = 60;
const MESSAGES: usize = 300;

fn run(scenario: fn(&Params) -> Report) -> Report {
    run_with(scenario, MESSAGES)
}

fn run_with(scenario: fn(&Params) -> Report, messages: usize) -> Report {
    run_seeded(scenario, messages, dotray_sim::seed_from_env())
}

fn run_seeded(scenario: fn(&Params) -> Report, messages: usize, seed: u64) -> Report {
    let params = Params::new(NODES, messages, seed);
    let report = scenario(&params);
    println!("{}\n{report}", Report::HEADER);
    assert!(report.passed, "{report}SEED={} to replay", params.seed);
    report
}

#[test]
fn every_node_delivers_every_message_once_in_order_and_the_tree_settles() {
    // `steady` checks reliability 100 %, no duplicate delivery, steady-state RMR <= 0.01 and a mean
    // LDH within twice the origins' mean eccentricity. `cargo xtask sim broadcast --nodes 60 --msgs
    // 1000 --only steady --seeds 1..100` checks a hundred seeds at once.
    let r = run_with(broadcast::steady, 1_000);
    assert_eq!(r.reliability, 100.0);
    assert!(r.steady_rmr <= 0.01, "SEED={}: steady RMR {}", r.seed, r.steady_rmr);
}

#[test]
fn the_tree_settles_when_every_origin_speaks_once_in_minutes() {
    // Every message from a different origin, each silent for two minutes in between: nothing but the
    // root's beacon can prune the tree (see dotray-router's crate docs, *The tree beacon*).
    let r = run_with(broadcast::rare_origins, 240);
    assert!(r.steady_rmr <= 0.01, "SEED={}: steady RMR {}", r.seed, r.steady_rmr);
    assert!(r.ldh_mean <= 2.0 * r.eccentricity_mean, "SEED={}: {r}", r.seed);
}

#[test]
fn survivors_deliver_everything_after_twenty_percent_crash() {
    run(broadcast::crash_20);
}

#[test]
fn survivors_deliver_everything_after_half_the_nodes_crash() {
    run(broadcast::crash_50);
}

#[test]
fn one_percent_message_loss_loses_nothing() {
    run(broadcast::loss);
}

#[test]
fn both_sides_of_a_healed_partition_deliver_everything() {
    run(broadcast::partition);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let params = Params::new(30, 100, dotray_sim::seed_from_env());
    let (a, b) = (broadcast::loss(&params), broadcast::loss(&params));
    assert_eq!(a.row(), b.row(), "SEED={} to replay", params.seed);
}

#[test]
fn one_publisher_builds_a_tree_without_redundancy() {
    // One origin over the root's tree. 2,000 messages: long enough for graft rounds that run through
    // many holes (each must still be repaired, not reported as a gap).
    let seed = dotray_sim::seed_from_env();
    let mut params = Params::new(100, 2_000, seed);
    params.origins = Some(1);
    let r = broadcast::steady(&params);
    println!("{}\n{r}", Report::HEADER);
    assert_eq!(r.reliability, 100.0, "{r}SEED={seed} to replay");
    assert_eq!((r.duplicates, r.order_violations, r.gaps, r.violations), (0, 0, 0, 0), "{r}SEED={seed}");
    assert!(r.steady_rmr <= 0.01, "SEED={seed}: steady RMR {}", r.steady_rmr);
    assert!(r.ldh_max < 20, "SEED={seed}: tree too deep (LDH {})", r.ldh_max);
}

#[test]
fn crashes_and_loss_together_lose_nothing() {
    run(broadcast::crash_with_loss);
}

#[test]
fn the_tree_reforms_under_a_new_root_after_its_root_dies() {
    // The root crashes silently a third into a 10 s stream; `root_timeout` (5 s) later the smallest
    // live id takes over. `crash_root` checks one live root for all and a spanning tree at the end.
    let r = run_with(broadcast::crash_root, 2_000);
    assert_eq!(r.reliability, 100.0);
}
