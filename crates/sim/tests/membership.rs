//! The membership scenarios at a small size (60 nodes), so that `cargo test` stays fast. `cargo xtask
//! sim membership` runs them at 1,000 nodes. Each test prints its report; a failure names the seed
//! (`SEED=… cargo test -p dotray-sim` replays it).

use std::time::Duration;

use dotray_membership::core::Config;
use dotray_node::core::Event;
use dotray_sim::scenarios::{self, Params, Report};
use dotray_sim::{NetworkConfig, Sim, metrics};

const NODES: usize = 60;

fn run(scenario: fn(&Params) -> Report) {
    let params = Params::new(NODES, dotray_sim::seed_from_env());
    let report = scenario(&params);
    println!("{report}");
    assert!(report.passed, "{report}SEED={} to replay", params.seed);
}

#[test]
fn join_through_one_seed() {
    run(scenarios::join);
}

#[test]
fn a_whole_network_started_in_one_instant_forms_one_overlay() {
    run(scenarios::join_storm);
}

#[test]
fn survivors_reconnect_after_half_the_nodes_crash() {
    run(scenarios::crash_half);
}

#[test]
fn halves_merge_after_a_partition() {
    run(scenarios::partition);
}

#[test]
fn overlay_stays_connected_under_churn() {
    run(scenarios::churn);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let params = Params::new(30, dotray_sim::seed_from_env());
    let (a, b) = (scenarios::crash_half(&params), scenarios::crash_half(&params));
    assert_eq!(a.figures, b.figures, "SEED={} to replay", params.seed);
}

#[test]
fn a_silent_crash_is_detected_by_missed_pongs_and_a_reset_at_once() {
    let seed = dotray_sim::seed_from_env();
    let mut sim = Sim::new(seed, NetworkConfig::default(), Config::default());
    let downs = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = downs.clone();
    sim.set_event_hook(Box::new(move |node, at, event| {
        if let Event::NeighbourDown { .. } = event {
            log.borrow_mut().push((node, at));
        }
    }));
    let first = sim.add_node(Vec::new());
    let second = sim.add_node(vec![Sim::addr_of(first)]);
    let third = sim.add_node(vec![Sim::addr_of(first)]);
    sim.run_for(Duration::from_secs(5));
    let snap = metrics::snapshot(&sim);
    assert!(snap.connected() && snap.isolated == 0, "SEED={seed}");

    // Silent: only missed pongs reveal it, after 3 ping intervals (6–8 s with the defaults).
    let crashed_at = sim.now();
    sim.crash(second, true);
    sim.run_for(Duration::from_secs(10));
    let detected: Vec<_> =
        downs.borrow().iter().filter(|(n, _)| *n != second).map(|(_, at)| *at - crashed_at).collect();
    assert!(!detected.is_empty(), "SEED={seed}");
    assert!(
        detected.iter().all(|d| *d >= Duration::from_secs(4) && *d <= Duration::from_secs(9)),
        "{detected:?}"
    );

    // Reset: the survivor hears of it within one latency.
    downs.borrow_mut().clear();
    let crashed_at = sim.now();
    sim.crash(third, false);
    sim.run_for(Duration::from_secs(1));
    let detected: Vec<_> = downs.borrow().iter().map(|(_, at)| *at - crashed_at).collect();
    assert_eq!(detected.len(), 1, "SEED={seed}");
    assert!(detected[0] <= Duration::from_millis(20), "{detected:?}");
}

#[test]
fn a_graceful_leave_is_replaced_at_once() {
    let seed = dotray_sim::seed_from_env();
    let mut sim = Sim::new(seed, NetworkConfig::default(), Config::default());
    let first = sim.add_node(Vec::new());
    for _ in 0..9 {
        sim.add_node(vec![Sim::addr_of(first)]);
    }
    sim.run_for(Duration::from_secs(30));
    sim.leave(first);
    // Far less than a ping timeout: peers replaced the leaver on its goodbye.
    sim.run_for(Duration::from_secs(1));
    let snap = metrics::snapshot(&sim);
    assert!(snap.connected() && snap.isolated == 0, "SEED={seed}: {snap:?}");
    let left_id = sim.nodes[first].info.id;
    let still_listed = sim
        .nodes
        .iter()
        .filter(|n| n.alive)
        .any(|n| n.core.membership().active_peers().any(|p| p.id == left_id));
    assert!(!still_listed, "SEED={seed}");
}

#[test]
fn halves_merge_through_the_seed_after_a_long_partition() {
    run(scenarios::partition_long);
}
