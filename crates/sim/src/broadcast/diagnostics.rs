//! Diagnostics of a broadcast run, printed next to each report row: why payloads were received twice
//! (the routers' `duplicates_*` counters), how much grafting and pruning went on, and the shape of the
//! eager (tree) graph at the end.

use std::collections::{HashMap, HashSet};

use crate::NodeIdx;
use crate::sim::Sim;

/// Summed over all routers: duplicate receptions by cause (graft answer beaten by the tree, tree copy
/// after a graft, pushed on an eager link, pushed on a lazy link), grafts sent, prunes sent, tree
/// optimisations, repair payloads sent, payloads that came without their manifest, streams refused
/// over a new-stream budget, streams evicted from a full table, streams parked while quiet and
/// streams restored after either, groups of payloads proven with one digest; and neighbour changes
/// of all nodes.
pub(super) fn causes(sim: &Sim) -> [u64; 15] {
    let mut out = [0; 15];
    out[14] = sim.stats.neighbour_changes;
    for node in &sim.nodes {
        let c = node.core.counters();
        let each = [
            c.duplicates_graft_answer,
            c.duplicates_after_graft,
            c.duplicates_eager,
            c.duplicates_lazy,
            c.grafts_sent,
            c.prunes_sent,
            c.optimisations,
            c.resends,
            c.unproven_payloads,
            c.streams_refused,
            c.streams_evicted,
            c.streams_parked,
            c.streams_restored,
            c.groups_proven,
        ];
        for (o, v) in out.iter_mut().zip(each) {
            *o += v;
        }
    }
    out
}

/// The eager (tree) graph among live nodes: links eager at both ends, links eager at one end only,
/// and the connected components of the first kind (a spanning tree: `live - 1` links, 1 component).
pub(super) fn eager_shape(sim: &Sim) -> (usize, usize, usize) {
    let index: HashMap<_, _> = sim.nodes.iter().enumerate().map(|(i, n)| (n.info.id, i)).collect();
    let eager: Vec<HashSet<NodeIdx>> = sim
        .nodes
        .iter()
        .map(|n| match n.alive {
            true => n.core.topology().eager.iter().filter_map(|id| index.get(id).copied()).collect(),
            false => HashSet::new(),
        })
        .collect();
    let mut parent: Vec<NodeIdx> = (0..sim.nodes.len()).collect();
    fn find(p: &mut [NodeIdx], mut x: NodeIdx) -> NodeIdx {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let (mut both, mut one) = (0, 0);
    for (i, set) in eager.iter().enumerate() {
        for &j in set {
            if !eager[j].contains(&i) {
                one += 1;
            } else if i < j {
                both += 1;
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let live: Vec<NodeIdx> = (0..sim.nodes.len()).filter(|&i| sim.nodes[i].alive).collect();
    let components = live.iter().filter(|&&i| find(&mut parent, i) == i).count();
    (both, one, components)
}

/// The diagnostics line of a report: second-half duplicate causes, grafts and prunes, and the eager
/// graph among live nodes at the end (see [`eager_shape`]), and how many streams a live node tracks
/// at the end, on average (what its memory grows with).
pub(super) fn details(sim: &Sim, half: [u64; 15]) -> String {
    let now = causes(sim);
    let d: Vec<u64> = now.iter().zip(half).map(|(a, b)| a - b).collect();
    let (both, one, components) = eager_shape(sim);
    let live = sim.nodes.iter().filter(|n| n.alive).count();
    let tracked: usize = sim.nodes.iter().filter(|n| n.alive).map(|n| n.core.router().stream_count()).sum();
    let tracked = tracked as f64 / live.max(1) as f64;
    format!(
        "second-half duplicates: graft-answer {} after-graft {} eager-link {} lazy-link {}; grafts {} prunes {} optimisations {} resends {} unproven {}; streams refused {} evicted {} parked {} restored {}, groups proven {}, tracked per node at the end {tracked:.0}; neighbour up/down {}; \
         eager graph: {both} edges (+{one} one-sided) over {live} live nodes, {components} component(s); messages per delivery: {}",
        d[0],
        d[1],
        d[2],
        d[3],
        d[4],
        d[5],
        d[6],
        d[7],
        d[8],
        d[9],
        d[10],
        d[11],
        d[12],
        d[13],
        d[14],
        per_delivery(sim),
    )
}

/// The kinds of message sent over the whole run, each as a count per delivery, most frequent first
/// (the six most frequent): what one delivery costs the network.
fn per_delivery(sim: &Sim) -> String {
    let delivered = sim.router_totals().1.max(1) as f64;
    let mut kinds: Vec<(&str, u64)> = sim.stats.messages.iter().map(|(k, n)| (*k, *n)).collect();
    kinds.sort_by_key(|&(kind, n)| (std::cmp::Reverse(n), kind));
    let shown: Vec<String> =
        kinds.iter().take(6).map(|(kind, n)| format!("{kind} {:.2}", *n as f64 / delivered)).collect();
    shown.join(", ")
}
