//! A stream that begins apart from the network is owed to every node whole. Two nodes start in a
//! partition of their own (an origin restarted where it can reach only a node whose seeds are down,
//! say), one of them publishes more messages than `backfill_new_stream` while they are apart, and
//! when the partition heals every node of the network, all of which were up when the stream began,
//! must deliver it from its first message.

use std::time::Duration;

use bytes::Bytes;
use dotray_membership::core::Config;
use dotray_router::core::MessageId;
use dotray_sim::{NetworkConfig, Sim};

#[test]
fn a_stream_begun_in_a_partition_reaches_every_node_from_its_first_message() {
    let seed = dotray_sim::seed_from_env();
    let mut sim = Sim::new(seed, NetworkConfig::default(), Config::default());
    let network = sim.join_through_first(6, Duration::from_millis(200));
    let first = network[0];
    sim.run_for(Duration::from_secs(5));
    // Two newcomers in a group of their own, one seeded by the other and both by the network's seed,
    // which they cannot reach yet.
    let island_seed = sim.add_node(vec![Sim::addr_of(first)]);
    let origin = sim.add_node(vec![Sim::addr_of(island_seed), Sim::addr_of(first)]);
    let island = [island_seed, origin];
    sim.partition(|node| u32::from(island.contains(&node)));
    sim.run_for(Duration::from_secs(3));
    let backfill = dotray_router::core::Config::default().backfill_new_stream;
    // The origin publishes steadily, while apart and on after the partition heals, so that what the
    // network first hears of its stream is a recent message or position, not the stream's start.
    let mut sent: Vec<MessageId> = Vec::new();
    let publish = |sim: &mut Sim, sent: &mut Vec<MessageId>, count: u64| {
        for _ in 0..count {
            sim.run_for(Duration::from_millis(20));
            let payload = Bytes::from(sent.len().to_le_bytes().to_vec());
            sent.push(sim.broadcast(origin, payload).expect("the origin is up"));
        }
    };
    publish(&mut sim, &mut sent, backfill * 2);
    sim.run_for(Duration::from_secs(2));
    assert!(sent.iter().all(|&id| sim.deliveries.delivered(island_seed, id)), "SEED={seed}");
    assert!(network.iter().all(|&node| !sim.deliveries.delivered(node, sent[0])), "SEED={seed}: apart");
    sim.heal_partition();
    publish(&mut sim, &mut sent, backfill * 2);
    sim.run_for(Duration::from_secs(60));
    for &node in &network {
        let missed: Vec<u64> =
            sent.iter().filter(|&&id| !sim.deliveries.delivered(node, id)).map(|id| id.seq).collect();
        assert!(missed.is_empty(), "SEED={seed}: node {node} missed {missed:?}");
    }
}
