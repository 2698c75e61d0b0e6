//! The overlay as a Graphviz source, for those who have Graphviz: tree links solid and thick, lazy links
//! dashed and grey, nodes labelled with their address and short id.

use super::topology::{Kind, Topology};

/// The DOT graph.
pub(crate) fn draw(topology: &Topology) -> String {
    let mut out = String::from("graph overlay {\n  node [shape=box, fontname=monospace];\n");
    for node in &topology.nodes {
        let (addr, id) = (quote(&node.addr), quote(node.short_id()));
        out.push_str(&format!("  \"{addr}\" [label=\"{addr}\\n{id}\"];\n"));
    }
    for link in &topology.links {
        let style = match link.kind {
            Kind::Tree => "style=solid, penwidth=2",
            Kind::Lazy => "style=dashed, color=gray",
            Kind::Neighbour => "style=solid, color=gray30",
        };
        let (a, b) = (quote(&topology.nodes[link.a].addr), quote(&topology.nodes[link.b].addr));
        out.push_str(&format!("  \"{a}\" -- \"{b}\" [{style}];\n"));
    }
    out.push_str("}\n");
    out
}

/// `text` for the inside of a DOT string.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::super::topology::{Link, Node};
    use super::*;

    #[test]
    fn nodes_and_links_with_their_styles() {
        let node = |addr: &str| Node { addr: addr.to_owned(), id: "0123456789".to_owned() };
        let t = Topology {
            nodes: vec![node("127.0.0.1:1"), node("127.0.0.1:2"), node("a\"b")],
            links: vec![Link { a: 0, b: 1, kind: Kind::Tree }, Link { a: 1, b: 2, kind: Kind::Lazy }],
        };
        let dot = draw(&t);
        assert!(dot.contains("  \"127.0.0.1:1\" [label=\"127.0.0.1:1\\n01234567\"];\n"), "{dot}");
        assert!(dot.contains("  \"127.0.0.1:1\" -- \"127.0.0.1:2\" [style=solid, penwidth=2];\n"), "{dot}");
        assert!(dot.contains("  \"127.0.0.1:2\" -- \"a\\\"b\" [style=dashed, color=gray];\n"), "{dot}");
        assert!(dot.ends_with("}\n"));
    }
}
