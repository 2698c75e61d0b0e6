//! Measurements of the overlay: connectivity of the live nodes and active-view sizes.
//!
//! A link between two live nodes counts when **at least one** of them lists the other in its active
//! view. HyParView links are symmetric once settled; during an eviction the two sides disagree for one
//! message latency, and counting either side keeps such instants from looking like partitions. Links
//! to crashed nodes never count.

use std::collections::{HashMap, VecDeque};

use crate::NodeIdx;
use crate::sim::Sim;

/// Connectivity and view sizes at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Live nodes.
    pub live: usize,
    /// Connected components among the live nodes.
    pub components: usize,
    /// Size of the largest component.
    pub largest: usize,
    /// Live nodes with an empty active view.
    pub isolated: usize,
    /// Smallest active view among live nodes.
    pub active_min: usize,
    /// Largest active view among live nodes.
    pub active_max: usize,
    /// Mean active-view size.
    pub active_mean: f64,
    /// Component index of each live node (by node index); `usize::MAX` for dead nodes.
    pub component_of: Vec<usize>,
}

impl Snapshot {
    /// True when all live nodes form one component.
    pub fn connected(&self) -> bool {
        self.components <= 1
    }
}

/// Takes a [`Snapshot`] of the simulation now.
pub fn snapshot(sim: &Sim) -> Snapshot {
    let n = sim.nodes.len();
    let index: HashMap<_, NodeIdx> =
        sim.nodes.iter().enumerate().filter(|(_, x)| x.alive).map(|(i, x)| (x.info.id, i)).collect();
    // Undirected adjacency: a link counts if either side lists it.
    let mut adj: Vec<Vec<NodeIdx>> = vec![Vec::new(); n];
    let (mut min, mut max, mut sum, mut live, mut isolated) = (usize::MAX, 0, 0, 0, 0);
    for (i, node) in sim.nodes.iter().enumerate().filter(|(_, x)| x.alive) {
        let len = node.core.membership().active_len();
        live += 1;
        sum += len;
        min = min.min(len);
        max = max.max(len);
        isolated += usize::from(len == 0);
        for peer in node.core.membership().active_peers() {
            if let Some(&j) = index.get(&peer.id) {
                adj[i].push(j);
                adj[j].push(i);
            }
        }
    }
    let mut component_of = vec![usize::MAX; n];
    let (mut components, mut largest) = (0, 0);
    for start in (0..n).filter(|&i| sim.nodes[i].alive) {
        if component_of[start] != usize::MAX {
            continue;
        }
        let mut size = 0;
        let mut queue = VecDeque::from([start]);
        component_of[start] = components;
        while let Some(i) = queue.pop_front() {
            size += 1;
            for &j in &adj[i] {
                if component_of[j] == usize::MAX {
                    component_of[j] = components;
                    queue.push_back(j);
                }
            }
        }
        components += 1;
        largest = largest.max(size);
    }
    Snapshot {
        live,
        components,
        largest,
        isolated,
        active_min: if live == 0 { 0 } else { min },
        active_max: max,
        active_mean: if live == 0 { 0.0 } else { sum as f64 / live as f64 },
        component_of,
    }
}

/// Most connections any node ever had open at once (transport level, transient ones included), and
/// which node.
pub fn max_connections(sim: &Sim) -> (usize, NodeIdx) {
    sim.nodes.iter().enumerate().map(|(i, n)| (n.max_connections, i)).max().unwrap_or((0, 0))
}
