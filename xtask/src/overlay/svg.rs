//! The overlay as an SVG picture, written as text: the nodes on a circle, in the order of the terminal
//! picture's trees (so that most tree links join nodes next to each other), tree links solid, lazy links
//! dashed, neighbour links (while the nodes run) thin; each node labelled with its address and short
//! id outside the circle; a title with the counts and a legend.
//!
//! The circle grows with the number of nodes so that the labels, which sit side by side at its top and
//! bottom, do not overlap. Text widths are estimated from a monospace font's advance.

use std::f64::consts::{FRAC_PI_2, TAU};
use std::fmt::Write;

use super::forest::Forest;
use super::topology::{Kind, Topology};

/// Font size of the labels, px.
const FONT: f64 = 12.0;
/// Advance of one character of a 12 px monospace font, px (0.6 em, rounded up).
const ADVANCE: f64 = 7.4;
/// Distance between the baselines of a label's two lines, px.
const LINE: f64 = 14.0;
/// Smallest radius of the circle, px.
const MIN_RADIUS: f64 = 140.0;
/// Height of the title band, px.
const TITLE: f64 = 44.0;
/// Height of one legend entry, px.
const LEGEND_ROW: f64 = 22.0;
/// Narrowest picture: room for the title and the legend, px.
const MIN_WIDTH: f64 = 600.0;

const TEXT: &str = "#24292f";
const MUTED: &str = "#57606a";

/// How each kind of link is drawn: stroke colour, width, dash pattern.
fn stroke(kind: Kind) -> (&'static str, f64, Option<&'static str>) {
    match kind {
        Kind::Tree => ("#1f6feb", 2.5, None),
        Kind::Lazy => ("#8c959f", 1.5, Some("6 4")),
        Kind::Neighbour => ("#57606a", 1.5, None),
    }
}

/// The legend's words for each kind of link.
fn meaning(kind: Kind) -> &'static str {
    match kind {
        Kind::Tree => "tree link: messages are pushed along it (eager push)",
        Kind::Lazy => "lazy link: only announcements (lazy push); repairs the tree",
        Kind::Neighbour => "neighbour link (tree or lazy: told when the nodes stop)",
    }
}

/// Where a node and its label go.
#[derive(Debug, Clone, Copy)]
struct Place {
    x: f64,
    y: f64,
    /// Where the label's lines start: `start`, `middle` or `end` of the text at `label_x`.
    anchor: &'static str,
    label_x: f64,
    /// Baselines of the address line and the id line.
    baselines: (f64, f64),
}

/// The picture's size and every node's place, by node index.
#[derive(Debug, Clone)]
struct Layout {
    width: f64,
    height: f64,
    places: Vec<Place>,
    legend_top: f64,
}

fn layout(topology: &Topology, legend_rows: usize) -> Layout {
    let n = topology.nodes.len();
    let widest =
        topology.nodes.iter().map(|node| label_width(&node.addr)).fold(label_width("12345678"), f64::max);
    // Side by side at the top of the circle, neighbouring labels need a label's width (and a gap) of arc.
    let radius = (n as f64 * (widest + 16.0) / TAU).max(MIN_RADIUS);
    let margin_x = widest + 30.0;
    let margin_y = 2.0 * LINE + 24.0;
    let width = (2.0 * (radius + margin_x)).max(MIN_WIDTH);
    let (cx, cy) = (width / 2.0, TITLE + margin_y + radius);
    let legend_top = cy + radius + margin_y;
    let height = legend_top + legend_rows as f64 * LEGEND_ROW + 16.0;
    let mut places = vec![Place { x: cx, y: cy, anchor: "middle", label_x: cx, baselines: (cy, cy) }; n];
    let order = Forest::new(n, &topology.pairs(topology.spine())).preorder();
    for (k, &node) in order.iter().enumerate() {
        let angle = -FRAC_PI_2 + TAU * k as f64 / n as f64;
        let (cos, sin) = (angle.cos(), angle.sin());
        let (lx, ly) = (cx + (radius + 12.0) * cos, cy + (radius + 12.0) * sin);
        let anchor = if cos > 0.3 {
            "start"
        } else if cos < -0.3 {
            "end"
        } else {
            "middle"
        };
        let baselines = if sin < -0.5 {
            (ly - LINE, ly) // above the node
        } else if sin > 0.5 {
            (ly + FONT, ly + FONT + LINE) // below
        } else {
            (ly - 1.0, ly - 1.0 + LINE) // beside, centred on it
        };
        places[node] = Place { x: cx + radius * cos, y: cy + radius * sin, anchor, label_x: lx, baselines };
    }
    Layout { width, height, places, legend_top }
}

/// The estimated width of `text` in the labels' font.
fn label_width(text: &str) -> f64 {
    text.chars().count() as f64 * ADVANCE
}

/// The SVG document.
pub(crate) fn draw(topology: &Topology) -> String {
    let mut kinds = vec![Kind::Tree, Kind::Lazy];
    if topology.count(Kind::Neighbour) > 0 {
        kinds.push(Kind::Neighbour);
    }
    let layout = layout(topology, kinds.len() + 1);
    let (w, h) = (layout.width, layout.height);
    let title = escape(&format!("dotray overlay: {}", topology.summary()));
    let mut out = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="monospace" font-size="{FONT}">"#
    );
    let _ = writeln!(out, "<title>{title}</title>");
    let _ = writeln!(out, r#"<rect width="{w:.0}" height="{h:.0}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="20" y="28" font-size="15" font-weight="bold" fill="{TEXT}">{title}</text>"#
    );

    // Lazy links first, tree links last: solid lines on top of dashed ones.
    let _ = writeln!(out, r#"<g id="links" fill="none">"#);
    for kind in [Kind::Lazy, Kind::Neighbour, Kind::Tree] {
        let (colour, width, dash) = stroke(kind);
        let dash = dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
        for (a, b) in topology.pairs(kind) {
            let (p, q) = (layout.places[a], layout.places[b]);
            let _ = writeln!(
                out,
                r#"<line class="{}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="{width}"{dash}/>"#,
                class(kind),
                p.x,
                p.y,
                q.x,
                q.y
            );
        }
    }
    let _ = writeln!(out, "</g>");

    // White halos behind the labels keep them legible where links cross them.
    let _ = writeln!(
        out,
        r#"<g id="nodes" stroke-linejoin="round"><!-- each node: a circle, its address, its short id -->"#
    );
    for (node, place) in topology.nodes.iter().zip(&layout.places) {
        let halo = r#"stroke="white" stroke-width="3" paint-order="stroke""#;
        let _ = writeln!(
            out,
            r#"<g class="node"><circle cx="{:.1}" cy="{:.1}" r="6" fill="white" stroke="{TEXT}" stroke-width="1.5"/><text x="{:.1}" y="{:.1}" text-anchor="{}" fill="{TEXT}" {halo}>{}</text><text x="{:.1}" y="{:.1}" text-anchor="{}" fill="{MUTED}" {halo}>{}</text></g>"#,
            place.x,
            place.y,
            place.label_x,
            place.baselines.0,
            place.anchor,
            escape(&node.addr),
            place.label_x,
            place.baselines.1,
            place.anchor,
            escape(node.short_id()),
        );
    }
    let _ = writeln!(out, "</g>");

    let _ = writeln!(out, r#"<g id="legend" fill="{TEXT}">"#);
    let mut y = layout.legend_top + 8.0;
    for &kind in &kinds {
        let (colour, width, dash) = stroke(kind);
        let dash = dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
        let _ = writeln!(
            out,
            r#"<path d="M20 {y:.1} h40" stroke="{colour}" stroke-width="{width}"{dash}/><text x="72" y="{:.1}">{}</text>"#,
            y + 4.0,
            escape(meaning(kind))
        );
        y += LEGEND_ROW;
    }
    let _ = writeln!(
        out,
        r#"<circle cx="40" cy="{y:.1}" r="6" fill="white" stroke="{TEXT}" stroke-width="1.5"/><text x="72" y="{:.1}">node: its address, then the first 8 hex digits of its id</text>"#,
        y + 4.0
    );
    let _ = writeln!(out, "</g>");
    let _ = writeln!(out, "</svg>");
    out
}

fn class(kind: Kind) -> &'static str {
    match kind {
        Kind::Tree => "tree",
        Kind::Lazy => "lazy",
        Kind::Neighbour => "neighbour",
    }
}

/// `text` with the characters XML gives a meaning replaced by entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::topology::{Link, Node};
    use super::*;

    fn topology(nodes: usize, links: &[(usize, usize, Kind)]) -> Topology {
        Topology {
            nodes: (0..nodes)
                .map(|i| Node { addr: format!("127.0.0.1:{}", 2000 + i), id: format!("{i:08x}ffff") })
                .collect(),
            links: links.iter().map(|&(a, b, kind)| Link { a, b, kind }).collect(),
        }
    }

    /// Panics unless every tag is closed in order and every `&` starts an entity; returns the names of
    /// the elements, in document order.
    fn check_well_formed(svg: &str) -> Vec<String> {
        let mut open: Vec<String> = Vec::new();
        let mut elements = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray > in {text:?}");
            let end = rest[start..].find('>').expect("an unclosed <") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with("!--") {
                continue;
            }
            assert!(!tag.contains('<'), "< inside the tag {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "closing {name} out of order");
            } else {
                let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                assert!(!name.is_empty(), "a tag without a name: {tag:?}");
                assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag:?}");
                elements.push(name.clone());
                if !tag.ends_with('/') {
                    open.push(name);
                }
            }
        }
        assert!(open.is_empty(), "never closed: {open:?}");
        for (i, _) in svg.match_indices('&') {
            let entity = &svg[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| entity.starts_with(e)),
                "a bare & at {:?}",
                &entity[..entity.len().min(12)]
            );
        }
        elements
    }

    #[test]
    fn a_line_per_link_dashed_when_lazy_in_a_well_formed_document() {
        use Kind::{Lazy, Tree};
        let t = topology(
            5,
            &[(0, 1, Tree), (1, 2, Tree), (2, 3, Tree), (3, 4, Tree), (0, 3, Lazy), (1, 4, Lazy)],
        );
        let svg = draw(&t);
        let elements = check_well_formed(&svg);
        assert_eq!(elements.first().map(String::as_str), Some("svg"));
        assert_eq!(elements.iter().filter(|e| *e == "line").count(), 6);
        assert_eq!(svg.matches(r#"<line class="tree""#).count(), 4);
        let lazy: Vec<&str> = svg.lines().filter(|l| l.starts_with(r#"<line class="lazy""#)).collect();
        assert_eq!(lazy.len(), 2);
        assert!(lazy.iter().all(|l| l.contains("stroke-dasharray")));
        assert_eq!(svg.matches(r#"<g class="node">"#).count(), 5);
        assert!(svg.contains(">127.0.0.1:2004</text>") && svg.contains(">00000004</text>"), "{svg}");
        assert!(svg.contains("dotray overlay: 5 nodes, 4 tree links, 2 lazy links"));
    }

    #[test]
    fn labels_are_escaped() {
        let mut t = topology(2, &[(0, 1, Kind::Tree)]);
        t.nodes[0].addr = r#"<a&b>"'"#.to_owned();
        t.nodes[1].id = "<&>".to_owned();
        let svg = draw(&t);
        check_well_formed(&svg);
        assert!(svg.contains(">&lt;a&amp;b&gt;&quot;&apos;</text>"), "{svg}");
        assert!(svg.contains(">&lt;&amp;&gt;</text>"), "{svg}");
    }

    #[test]
    fn empty_and_running_overlays_are_drawn_too() {
        assert_eq!(check_well_formed(&draw(&Topology::default())).iter().filter(|e| *e == "line").count(), 0);
        let t = topology(3, &[(0, 1, Kind::Neighbour), (1, 2, Kind::Neighbour)]);
        let svg = draw(&t);
        check_well_formed(&svg);
        assert_eq!(svg.matches(r#"<line class="neighbour""#).count(), 2);
        assert!(svg.contains("neighbour link (tree or lazy"), "the legend explains them");
    }

    #[test]
    fn labels_do_not_overlap_up_to_many_nodes() {
        for n in [1, 2, 3, 5, 8, 10, 16, 30, 60] {
            let t = topology(n, &[]);
            let layout = layout(&t, 3);
            let boxes: Vec<(f64, f64, f64, f64)> = t
                .nodes
                .iter()
                .zip(&layout.places)
                .map(|(node, p)| {
                    let w = label_width(&node.addr);
                    let left = match p.anchor {
                        "start" => p.label_x,
                        "end" => p.label_x - w,
                        _ => p.label_x - w / 2.0,
                    };
                    (left, p.baselines.0 - FONT, left + w, p.baselines.1 + 3.0)
                })
                .collect();
            for (i, a) in boxes.iter().enumerate() {
                assert!(
                    a.0 >= 0.0 && a.2 <= layout.width && a.1 >= TITLE - 10.0,
                    "{n} nodes: label {i} outside"
                );
                assert!(a.3 <= layout.legend_top, "{n} nodes: label {i} in the legend");
                for (j, b) in boxes.iter().enumerate().skip(i + 1) {
                    let apart = a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1;
                    assert!(apart, "{n} nodes: labels {i} and {j} overlap: {a:?} {b:?}");
                }
            }
        }
    }
}
