//! Payloads proven a group at a time in a whole network: one origin's burst travels the tree as
//! groups, each node holds a group's payloads across the reads that bring it (every simulated
//! message is a read of its own) and proves it with one digest, and every node still delivers every
//! message once, in order.

use std::time::Duration;

use bytes::Bytes;
use dotray_membership::core::Config;
use dotray_router::core::MessageId;
use dotray_sim::{NetworkConfig, Sim};

#[test]
fn a_burst_travels_as_groups_and_every_node_delivers_it_in_order() {
    let seed = dotray_sim::seed_from_env();
    let mut sim = Sim::new(seed, NetworkConfig::default(), Config::default());
    let nodes = sim.join_through_first(30, Duration::from_millis(100));
    sim.run_for(Duration::from_secs(10));
    let origin = nodes[7];
    let mut sent: Vec<MessageId> = Vec::new();
    for round in 0..5u32 {
        for i in 0..100u32 {
            let payload = Bytes::from((round * 100 + i).to_le_bytes().to_vec());
            sent.push(sim.broadcast(origin, payload).expect("the origin is up"));
        }
        sim.run_for(Duration::from_millis(500));
    }
    sim.run_for(Duration::from_secs(10));
    for &node in nodes.iter().filter(|&&n| n != origin) {
        let missed = sent.iter().filter(|&&id| !sim.deliveries.delivered(node, id)).count();
        assert_eq!(missed, 0, "SEED={seed}: node {node} missed {missed}");
    }
    let proven: u64 = sim.nodes.iter().map(|n| n.core.counters().groups_proven).sum();
    let groups_sent = 5 * 100u64.div_ceil(dotray_router::proof::GROUP_LEN as u64);
    assert!(
        proven >= groups_sent * (nodes.len() as u64 - 1) / 2,
        "SEED={seed}: {proven} groups proven at once, of {groups_sent} groups at each of {} nodes",
        nodes.len() - 1
    );
}
