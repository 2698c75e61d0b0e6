//! The overlay of a demo run, drawn without external programs: as text for the terminal
//! ([`terminal`]: the broadcast tree like `tree(1)` draws directories, then the lazy links), as an SVG
//! picture ([`svg`]: the nodes on a circle) and as a Graphviz source ([`dot`]).
//!
//! All three are pure functions of a [`topology::Topology`], which [`topology`] reads from the demo nodes' JSON
//! lines. [`forest`] chooses the spanning trees both drawings hang the nodes on.

pub(crate) mod dot;
pub(crate) mod forest;
pub(crate) mod svg;
pub(crate) mod terminal;
pub(crate) mod topology;
