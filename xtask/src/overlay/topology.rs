//! The overlay as a graph to draw: its nodes (address and id) and the links between them, each a tree
//! (eager) link, a lazy link or, while the nodes run, a neighbour link whose role is not known yet.
//!
//! Read from the demo nodes' JSON lines: [`Topology::at_exit`] from the `topology` line each node prints
//! when it stops (its eager and lazy peers), [`Topology::now`] from the `up` and `down` lines of the
//! nodes still running (their neighbours; a link counts when both ends report it).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::demo_log::Run;

/// A node of the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Its listening address.
    pub(crate) addr: String,
    /// Its node id in hex; empty when no `listening` line told it.
    pub(crate) id: String,
}

impl Node {
    /// The first 8 hex digits of the id, or `?` when it is not known.
    pub(crate) fn short_id(&self) -> &str {
        match self.id.get(..8) {
            Some(short) => short,
            None if self.id.is_empty() => "?",
            None => &self.id,
        }
    }
}

/// What a link carries. The order is the precedence when the two ends disagree: a link that either end
/// pushes messages along is drawn as a tree link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// A link of the broadcast tree: messages are pushed along it (eager push).
    Tree,
    /// A lazy link: only announcements of messages cross it (lazy push); it stands by to repair the tree.
    Lazy,
    /// A link between running neighbours: tree or lazy, which the nodes tell only when they stop.
    Neighbour,
}

impl Kind {
    /// The name of such a link ("tree link").
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Tree => "tree link",
            Kind::Lazy => "lazy link",
            Kind::Neighbour => "neighbour link",
        }
    }
}

/// A link between two nodes, by index into [`Topology::nodes`], `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    /// The end that comes first in the node list.
    pub(crate) a: usize,
    /// The other end.
    pub(crate) b: usize,
    /// What the link carries.
    pub(crate) kind: Kind,
}

/// The overlay: nodes in the order the runs started, each link once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Topology {
    /// The nodes.
    pub(crate) nodes: Vec<Node>,
    /// The links, ordered by their ends.
    pub(crate) links: Vec<Link>,
}

impl Topology {
    /// The overlay as the nodes left it: each address's last run, its id, and the eager and lazy peers
    /// of its closing `topology` line (a run killed without one contributes no links of its own).
    pub(crate) fn at_exit(runs: &[Run]) -> Self {
        let mut builder = Builder::default();
        let mut last_run: Vec<&Run> = Vec::new();
        for run in runs {
            let Some(addr) = run.addr() else { continue };
            let i = builder.node(addr);
            builder.nodes[i].id.clone_from(&run.id);
            match last_run.get_mut(i) {
                Some(last) => *last = run,
                None => last_run.push(run),
            }
        }
        for (i, run) in last_run.iter().enumerate() {
            let Some((_, topology)) = run.events("topology").last() else { continue };
            for (field, kind) in [("eager", Kind::Tree), ("lazy", Kind::Lazy)] {
                for peer in topology[field].as_array().into_iter().flatten().filter_map(|p| p.as_str()) {
                    let j = builder.node(peer);
                    builder.link(i, j, kind);
                }
            }
        }
        builder.build()
    }

    /// The overlay of the running nodes now: a neighbour link where both ends report the other up.
    pub(crate) fn now(runs: &[Run]) -> Self {
        let mut builder = Builder::default();
        let mut neighbours: Vec<HashSet<String>> = Vec::new();
        for run in runs.iter().filter(|r| r.ended.is_none()) {
            let Some(addr) = run.addr() else { continue };
            let i = builder.node(addr);
            builder.nodes[i].id.clone_from(&run.id);
            if i == neighbours.len() {
                neighbours.push(run.neighbours());
            } else {
                neighbours[i] = run.neighbours();
            }
        }
        for (i, up) in neighbours.iter().enumerate() {
            let me = builder.nodes[i].addr.clone();
            for peer in up {
                let Some(&j) = builder.index.get(peer) else { continue };
                if neighbours[j].contains(&me) {
                    builder.link(i, j, Kind::Neighbour);
                }
            }
        }
        builder.build()
    }

    /// The number of links of `kind`.
    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.links.iter().filter(|l| l.kind == kind).count()
    }

    /// The links of `kind`, as pairs of node indices.
    pub(crate) fn pairs(&self, kind: Kind) -> Vec<(usize, usize)> {
        self.links.iter().filter(|l| l.kind == kind).map(|l| (l.a, l.b)).collect()
    }

    /// The kind of links the drawings hang the nodes on: tree links when there are any (the final
    /// overlay), else neighbour links (the overlay while it runs).
    pub(crate) fn spine(&self) -> Kind {
        if self.count(Kind::Tree) == 0 && self.count(Kind::Neighbour) > 0 {
            Kind::Neighbour
        } else {
            Kind::Tree
        }
    }

    /// "5 nodes, 4 tree links, 3 lazy links": the counts, kinds without links left out.
    pub(crate) fn summary(&self) -> String {
        let mut parts = vec![plural(self.nodes.len(), "node", "nodes")];
        for kind in [Kind::Tree, Kind::Lazy, Kind::Neighbour] {
            let count = self.count(kind);
            if count > 0 || (kind == Kind::Tree && self.spine() == Kind::Tree) {
                parts.push(plural(count, kind.name(), &format!("{}s", kind.name())));
            }
        }
        parts.join(", ")
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Collects nodes by address and links by their ends.
#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    links: BTreeMap<(usize, usize), Kind>,
}

impl Builder {
    /// The index of the node at `addr`, added (with no id yet) if new.
    fn node(&mut self, addr: &str) -> usize {
        if let Some(&i) = self.index.get(addr) {
            return i;
        }
        self.nodes.push(Node { addr: addr.to_owned(), id: String::new() });
        self.index.insert(addr.to_owned(), self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// Records a link; when it is already known, the kind that takes precedence stays.
    fn link(&mut self, i: usize, j: usize, kind: Kind) {
        if i == j {
            return;
        }
        let kept = self.links.entry((i.min(j), i.max(j))).or_insert(kind);
        *kept = (*kept).min(kind);
    }

    fn build(self) -> Topology {
        let links = self.links.into_iter().map(|((a, b), kind)| Link { a, b, kind }).collect();
        Topology { nodes: self.nodes, links }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn run(label: &str, lines: &[&str], ended: bool) -> Run {
        let at = Instant::now();
        let mut run = Run::new(label.to_owned(), at);
        for line in lines {
            run.record(at, line);
        }
        if ended {
            run.ended = Some(at + Duration::from_secs(1));
        }
        run
    }

    fn listening(port: u16, id: &str) -> String {
        format!(r#"{{"event":"listening","addr":"127.0.0.1:{port}","id":"{id}"}}"#)
    }

    #[test]
    fn at_exit_reads_the_last_run_of_each_address_and_merges_both_ends() {
        let a = listening(1, "aaaaaaaa11112222");
        let b_old = listening(2, "bbbbbbbb00000000");
        let b_new = listening(2, "cccccccc00000000");
        let d = listening(4, "dddddddd");
        let runs = [
            run("1", &[&a, r#"{"event":"topology","eager":["127.0.0.1:2"],"lazy":["127.0.0.1:3"]}"#], true),
            // Killed: no topology line; its restart at the same address replaces it.
            run("2", &[&b_old], true),
            run(
                "2",
                &[&b_new, r#"{"event":"topology","eager":[],"lazy":["127.0.0.1:1","127.0.0.1:4"]}"#],
                true,
            ),
            run("4", &[&d, r#"{"event":"topology","eager":[],"lazy":["127.0.0.1:2"]}"#], true),
        ];
        let t = Topology::at_exit(&runs);
        let addrs: Vec<&str> = t.nodes.iter().map(|n| n.addr.as_str()).collect();
        // 127.0.0.1:3 is only a peer: it is drawn after the nodes that ran, with an unknown id.
        assert_eq!(addrs, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:4", "127.0.0.1:3"]);
        let ids: Vec<&str> = t.nodes.iter().map(Node::short_id).collect();
        assert_eq!(ids, ["aaaaaaaa", "cccccccc", "dddddddd", "?"]);
        // 1 says eager, 2 says lazy: a tree link. 2 and 4 agree on lazy: one link.
        assert_eq!(t.pairs(Kind::Tree), [(0, 1)]);
        assert_eq!(t.pairs(Kind::Lazy), [(0, 3), (1, 2)]);
        assert_eq!(t.summary(), "4 nodes, 1 tree link, 2 lazy links");
        assert_eq!(t.spine(), Kind::Tree);
    }

    #[test]
    fn now_counts_links_both_running_ends_report() {
        let up = |port: u16| format!(r#"{{"event":"up","peer":"127.0.0.1:{port}"}}"#);
        let down = |port: u16| format!(r#"{{"event":"down","peer":"127.0.0.1:{port}"}}"#);
        let runs = [
            run("1", &[&listening(1, "a"), &up(2), &up(3)], false),
            run("2", &[&listening(2, "b"), &up(1), &up(3), &down(3)], false),
            run("3", &[&listening(3, "c"), &up(1), &up(2)], false),
            run("4", &[&listening(4, "d"), &up(1)], true),
        ];
        let t = Topology::now(&runs);
        assert_eq!(t.nodes.len(), 3, "the ended run is not drawn");
        // 1-2 and 1-3 both ends report; 2 reports 3 down again; 4 has ended.
        assert_eq!(t.pairs(Kind::Neighbour), [(0, 1), (0, 2)]);
        assert_eq!(t.spine(), Kind::Neighbour);
        assert_eq!(t.summary(), "3 nodes, 2 neighbour links");
    }
}
