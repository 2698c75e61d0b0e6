//! The overlay as text for the terminal: a summary line, then the spanning trees of the tree links
//! drawn like `tree(1)` draws directories (each node once, with its address and short id), then the
//! links the trees leave out, grouped by their first end. While the nodes run, the neighbour links
//! take the tree links' place (which of them are tree links the nodes tell only when they stop).
//!
//! ```text
//! 5 nodes, 4 tree links, 2 lazy links
//! broadcast tree (eager links), drawn from its centre:
//! 127.0.0.1:2002 (0c9d4e55)
//! ├── 127.0.0.1:2001 (77ab0e12)
//! │   └── 127.0.0.1:2000 (3f2a9c1d)
//! └── 127.0.0.1:2003 (aa01bc33)
//!     └── 127.0.0.1:2004 (5e6f7a8b)
//! lazy links (announcements only):
//!   127.0.0.1:2000 ┄┄ 127.0.0.1:2003, 127.0.0.1:2004
//! ```

use super::forest::Forest;
use super::topology::{Kind, Topology};

/// The picture, one line per node in the trees and one per node with links left over.
pub(crate) fn draw(topology: &Topology) -> String {
    let spine = topology.spine();
    let forest = Forest::new(topology.nodes.len(), &topology.pairs(spine));
    let mut out = format!("{}\n", topology.summary());
    if topology.nodes.is_empty() {
        return out;
    }
    let drawn = match forest.roots.len() {
        1 => "drawn from its centre".to_owned(),
        n => format!("in {n} parts, each drawn from its centre"),
    };
    match spine {
        Kind::Neighbour => out.push_str(&format!(
            "neighbour links as a tree, {drawn} (tree or lazy: the nodes tell when they stop):\n"
        )),
        _ => out.push_str(&format!("broadcast tree (eager links), {drawn}:\n")),
    }
    for &root in &forest.roots {
        let alone = forest.children[root].is_empty() && topology.nodes.len() > 1;
        out.push_str(&label(topology, root));
        if alone {
            out.push_str(&format!("  (no {})", spine.name()));
        }
        out.push('\n');
        branches(topology, &forest, root, "", &mut out);
    }
    let more = match spine {
        Kind::Neighbour => "more neighbour links (they close cycles):",
        _ => "more tree links (they close cycles):",
    };
    list(topology, more, "──", &forest.cycle_links, &mut out);
    for kind in [Kind::Tree, Kind::Lazy, Kind::Neighbour].into_iter().filter(|&k| k != spine) {
        let (title, line) = match kind {
            Kind::Lazy => ("lazy links (announcements only):", "┄┄"),
            Kind::Tree => ("tree links:", "──"),
            Kind::Neighbour => ("neighbour links:", "──"),
        };
        list(topology, title, line, &topology.pairs(kind), &mut out);
    }
    out
}

/// `127.0.0.1:2000 (3f2a9c1d)`.
fn label(topology: &Topology, node: usize) -> String {
    let node = &topology.nodes[node];
    format!("{} ({})", node.addr, node.short_id())
}

/// The subtrees under `node`, each line prefixed with `prefix` and its own branch.
fn branches(topology: &Topology, forest: &Forest, node: usize, prefix: &str, out: &mut String) {
    let children = &forest.children[node];
    for (i, &child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, below) = if last { ("└── ", "    ") } else { ("├── ", "│   ") };
        out.push_str(&format!("{prefix}{branch}{}\n", label(topology, child)));
        branches(topology, forest, child, &format!("{prefix}{below}"), out);
    }
}

/// `title` and the links, one line per first end: `  a ┄┄ b, c`. Nothing when there are no links.
fn list(topology: &Topology, title: &str, line: &str, links: &[(usize, usize)], out: &mut String) {
    if links.is_empty() {
        return;
    }
    out.push_str(title);
    out.push('\n');
    let mut links = links.to_vec();
    links.sort_unstable();
    for group in links.chunk_by(|x, y| x.0 == y.0) {
        let others: Vec<&str> = group.iter().map(|&(_, b)| topology.nodes[b].addr.as_str()).collect();
        out.push_str(&format!("  {} {line} {}\n", topology.nodes[group[0].0].addr, others.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::super::topology::{Link, Node};
    use super::*;

    fn topology(nodes: usize, links: &[(usize, usize, Kind)]) -> Topology {
        Topology {
            nodes: (0..nodes)
                .map(|i| Node {
                    addr: format!("127.0.0.1:{}", 2000 + i),
                    id: format!("{i}{i}{i}{i}abcdef0123"),
                })
                .collect(),
            links: links.iter().map(|&(a, b, kind)| Link { a, b, kind }).collect(),
        }
    }

    /// How often each node's label starts a line of the tree section.
    fn appearances(picture: &str, topology: &Topology) -> Vec<usize> {
        let tree: Vec<&str> = picture.lines().skip(2).take_while(|l| !l.ends_with(':')).collect();
        (0..topology.nodes.len())
            .map(|i| {
                let label = label(topology, i);
                let drawn = |line: &&&str| {
                    let line = line.trim_start_matches(['│', '├', '└', '─', ' ']);
                    line == label || line.starts_with(&format!("{label}  ("))
                };
                tree.iter().filter(drawn).count()
            })
            .collect()
    }

    #[test]
    fn the_final_overlay_is_a_tree_then_its_lazy_links() {
        use Kind::{Lazy, Tree};
        let t = topology(
            5,
            &[(0, 1, Tree), (1, 2, Tree), (2, 3, Tree), (3, 4, Tree), (0, 3, Lazy), (0, 4, Lazy)],
        );
        let picture = draw(&t);
        assert_eq!(
            picture,
            "\
5 nodes, 4 tree links, 2 lazy links
broadcast tree (eager links), drawn from its centre:
127.0.0.1:2002 (2222abcd)
├── 127.0.0.1:2001 (1111abcd)
│   └── 127.0.0.1:2000 (0000abcd)
└── 127.0.0.1:2003 (3333abcd)
    └── 127.0.0.1:2004 (4444abcd)
lazy links (announcements only):
  127.0.0.1:2000 ┄┄ 127.0.0.1:2003, 127.0.0.1:2004
"
        );
        assert_eq!(appearances(&picture, &t), [1; 5]);
    }

    #[test]
    fn thirty_nodes_in_a_tree_appear_once_each() {
        let mut links: Vec<(usize, usize, Kind)> = (1..30).map(|i| ((i - 1) / 3, i, Kind::Tree)).collect();
        links.extend((0..30).map(|i| (i, (i + 7) % 30, Kind::Lazy)));
        let t = topology(30, &links);
        assert_eq!(appearances(&draw(&t), &t), [1; 30]);
    }

    #[test]
    fn cycles_and_split_parts_end_and_show_every_node() {
        use Kind::Tree;
        // A triangle, a pair, and a node with no tree link.
        let t = topology(6, &[(0, 1, Tree), (1, 2, Tree), (0, 2, Tree), (3, 4, Tree)]);
        let picture = draw(&t);
        assert_eq!(appearances(&picture, &t), [1; 6], "{picture}");
        assert!(picture.contains("in 3 parts"), "{picture}");
        assert!(
            picture.contains("more tree links (they close cycles):\n  127.0.0.1:2001 ── 127.0.0.1:2002\n"),
            "{picture}"
        );
        assert!(picture.contains("127.0.0.1:2005 (5555abcd)  (no tree link)\n"), "{picture}");
    }

    #[test]
    fn while_running_the_neighbour_links_make_the_tree() {
        use Kind::Neighbour;
        let t = topology(3, &[(0, 1, Neighbour), (1, 2, Neighbour), (0, 2, Neighbour)]);
        let picture = draw(&t);
        assert!(picture.starts_with("3 nodes, 3 neighbour links\nneighbour links as a tree"), "{picture}");
        assert_eq!(appearances(&picture, &t), [1; 3], "{picture}");
        assert!(picture.contains("more neighbour links (they close cycles):"), "{picture}");
    }

    #[test]
    fn no_nodes_is_one_line() {
        assert_eq!(draw(&Topology::default()), "0 nodes, 0 tree links\n");
    }
}
