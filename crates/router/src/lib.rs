//! # dotray-router — broadcast along a self-healing spanning tree
//!
//! Plumtree eager/lazy push over the membership layer's active links, with cumulative acks, catch-up
//! sync after outages, exactly-once in-order delivery and explicit gap events, as a sans-IO core plus
//! a thin tokio driver.
#![forbid(unsafe_code)]
