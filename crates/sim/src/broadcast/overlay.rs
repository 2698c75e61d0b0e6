//! The overlay as a graph, for the eccentricity of each broadcast's origin: the most hops any live
//! node is from it along shortest paths. A tree can do no better than that for the last delivery
//! hop, so the report sets the two side by side.

use std::collections::{HashMap, VecDeque};

use crate::NodeIdx;
use crate::sim::Sim;

/// The live nodes' neighbour lists, rebuilt only when a neighbour came or went.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    /// `Stats::neighbour_changes` when `adjacent` was built (`None`: never).
    built_at: Option<u64>,
    adjacent: Vec<Vec<NodeIdx>>,
}

impl Overlay {
    /// The eccentricity of `origin` in the overlay now: the largest hop distance to a live node it
    /// reaches.
    pub(super) fn eccentricity(&mut self, sim: &Sim, origin: NodeIdx) -> u32 {
        if self.built_at != Some(sim.stats.neighbour_changes) {
            self.rebuild(sim);
        }
        let mut distance = vec![u32::MAX; self.adjacent.len()];
        let mut queue = VecDeque::from([origin]);
        distance[origin] = 0;
        let mut farthest = 0;
        while let Some(node) = queue.pop_front() {
            let d = distance[node];
            farthest = farthest.max(d);
            for &next in &self.adjacent[node] {
                if distance[next] == u32::MAX {
                    distance[next] = d + 1;
                    queue.push_back(next);
                }
            }
        }
        farthest
    }

    fn rebuild(&mut self, sim: &Sim) {
        let index: HashMap<_, _> = sim.nodes.iter().enumerate().map(|(i, n)| (n.info.id, i)).collect();
        self.adjacent = sim
            .nodes
            .iter()
            .map(|n| {
                if !n.alive {
                    return Vec::new();
                }
                let topology = n.core.topology();
                topology
                    .eager
                    .iter()
                    .chain(&topology.lazy)
                    .filter_map(|id| index.get(id).copied())
                    .filter(|&i| sim.nodes[i].alive)
                    .collect()
            })
            .collect();
        self.built_at = Some(sim.stats.neighbour_changes);
    }
}
