//! The spanning trees the drawings hang the nodes on: one per connected part of a set of links, rooted
//! at the part's centre (the node whose farthest node is nearest, which keeps the drawing shallow), the
//! children of a node in node order. Links of the set that the trees leave out close cycles.
//!
//! Built by breadth-first search with a visited mark per node, so cycles and disconnected parts end
//! like everything else.

use std::collections::VecDeque;

/// Spanning trees over `nodes` nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forest {
    /// One root per connected part, the largest part first (ties: in node order). A node without
    /// links is a part of its own.
    pub(crate) roots: Vec<usize>,
    /// Each node's children.
    pub(crate) children: Vec<Vec<usize>>,
    /// The links not in a tree (each closes a cycle), `(lower, higher)` index.
    pub(crate) cycle_links: Vec<(usize, usize)>,
}

impl Forest {
    /// The spanning forest of nodes `0..nodes` over `links` (pairs of node indices; repeated pairs,
    /// loops and indices out of range are ignored).
    pub(crate) fn new(nodes: usize, links: &[(usize, usize)]) -> Forest {
        let mut adjacent: Vec<Vec<usize>> = vec![Vec::new(); nodes];
        for &(a, b) in links.iter().filter(|&&(a, b)| a != b && a < nodes && b < nodes) {
            adjacent[a].push(b);
            adjacent[b].push(a);
        }
        for list in &mut adjacent {
            list.sort_unstable();
            list.dedup();
        }
        let mut parts: Vec<Vec<usize>> = Vec::new();
        let mut seen = vec![false; nodes];
        for start in 0..nodes {
            if !seen[start] {
                let mut part: Vec<usize> = distances(&adjacent, start).into_iter().map(|(n, _)| n).collect();
                part.sort_unstable();
                for &n in &part {
                    seen[n] = true;
                }
                parts.push(part);
            }
        }
        parts.sort_by_key(|part| std::cmp::Reverse(part.len()));

        let mut forest =
            Forest { roots: Vec::new(), children: vec![Vec::new(); nodes], cycle_links: Vec::new() };
        let mut parent: Vec<Option<usize>> = vec![None; nodes];
        for part in &parts {
            // The first node with the smallest eccentricity (parts are sorted, so in node order).
            let eccentricity = |&n: &usize| distances(&adjacent, n).iter().map(|&(_, d)| d).max();
            let Some(centre) = part.iter().copied().min_by_key(eccentricity) else { continue };
            forest.roots.push(centre);
            let mut placed = vec![false; nodes];
            placed[centre] = true;
            let mut queue = VecDeque::from([centre]);
            while let Some(node) = queue.pop_front() {
                for &next in &adjacent[node] {
                    if !placed[next] {
                        placed[next] = true;
                        parent[next] = Some(node);
                        forest.children[node].push(next);
                        queue.push_back(next);
                    }
                }
            }
        }
        for (a, list) in adjacent.iter().enumerate() {
            for &b in list.iter().filter(|&&b| a < b) {
                if parent[a] != Some(b) && parent[b] != Some(a) {
                    forest.cycle_links.push((a, b));
                }
            }
        }
        forest
    }

    /// Every node once: each tree in depth-first order (a node, then its children's subtrees).
    pub(crate) fn preorder(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.children.len());
        for &root in &self.roots {
            let mut stack = vec![root];
            while let Some(node) = stack.pop() {
                order.push(node);
                stack.extend(self.children[node].iter().rev());
            }
        }
        order
    }
}

/// Every node reachable from `start`, with its distance in links, nearest first.
fn distances(adjacent: &[Vec<usize>], start: usize) -> Vec<(usize, usize)> {
    let mut seen = vec![false; adjacent.len()];
    seen[start] = true;
    let mut out = vec![(start, 0)];
    let mut next = 0;
    while let Some(&(node, d)) = out.get(next) {
        next += 1;
        for &n in &adjacent[node] {
            if !seen[n] {
                seen[n] = true;
                out.push((n, d + 1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_hangs_from_its_middle() {
        let forest = Forest::new(5, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
        assert_eq!(forest.roots, [2]);
        assert_eq!(forest.children[2], [1, 3]);
        assert_eq!(forest.preorder(), [2, 1, 0, 3, 4]);
        assert!(forest.cycle_links.is_empty());
    }

    #[test]
    fn a_cycle_leaves_one_link_out_and_every_node_appears_once() {
        let forest = Forest::new(4, &[(0, 1), (1, 2), (2, 3), (3, 0), (0, 1), (2, 2)]);
        let mut order = forest.preorder();
        order.sort_unstable();
        assert_eq!(order, [0, 1, 2, 3]);
        assert_eq!(forest.cycle_links.len(), 1, "{forest:?}");
    }

    #[test]
    fn disconnected_parts_and_lone_nodes_are_trees_of_their_own() {
        let forest = Forest::new(6, &[(4, 5), (0, 2), (2, 3), (9, 1)]);
        // Largest part first, then by node order: {0,2,3} rooted at 2, {4,5} at 4, then lone 1.
        assert_eq!(forest.roots, [2, 4, 1]);
        assert_eq!(forest.preorder(), [2, 0, 3, 4, 5, 1]);
        assert!(forest.cycle_links.is_empty());
        assert_eq!(Forest::new(0, &[]).preorder(), Vec::<usize>::new());
    }
}
