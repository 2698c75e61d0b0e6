//! Small networks, where HyParView's random walks are shortest and a few unlucky joins can leave a
//! node as the only bridge between two groups. The demo's scenario, over many seeds: five nodes join
//! in a chain 300 ms apart (each seeded by the previous one), the middle one crashes 8 s later — before
//! any periodic shuffle (default 20 s) — and the survivors must still form one overlay within 5 s.

use std::time::Duration;

use dotray_membership::core::Config;
use dotray_sim::{NetworkConfig, Sim, metrics};

#[test]
fn the_middle_of_a_five_node_chain_can_die_early_without_splitting_the_network() {
    let base = dotray_sim::seed_from_env();
    let mut split = Vec::new();
    for i in 0..100u64 {
        let seed = base.wrapping_add(i);
        let mut sim = Sim::new(seed, NetworkConfig::default(), Config::default());
        let mut previous = sim.add_node(Vec::new());
        let mut nodes = vec![previous];
        for _ in 1..5 {
            sim.run_for(Duration::from_millis(300));
            previous = sim.add_node(vec![Sim::addr_of(previous)]);
            nodes.push(previous);
        }
        sim.run_for(Duration::from_secs(8));
        sim.crash(nodes[2], false);
        sim.run_for(Duration::from_secs(5));
        let snapshot = metrics::snapshot(&sim);
        if !(snapshot.connected() && snapshot.isolated == 0) {
            split.push(seed);
        }
    }
    assert!(split.is_empty(), "the survivors stayed split for seeds {split:?} (SEED=… replays)");
}
