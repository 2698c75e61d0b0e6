//! # dotray-attack — hostile peers for `cargo xtask attack`
//!
//! Every attacker is a real peer: a key pair of its own, the real handshake and wire protocol, built
//! from dotray's own crates. Each module is one attack against honest nodes given by address; it fills
//! a [`Report`] with what it did and saw. Whether the honest network survived is judged elsewhere:
//! by `cargo xtask attack` from the honest nodes' own logs, and by this crate's tests from nodes run
//! in the test.
//!
//! Attackers listen on 127.0.0.66 and make up addresses on 127.66.0.0/16 only, so anything an honest
//! node reports there is theirs; the reflection attack's victim listens on 127.0.0.67.

pub mod decode;
pub mod directs;
pub mod eclipse;
pub mod poisoning;
pub mod reflection;
pub mod reorder;
pub mod slots;
pub mod slow;
pub mod streams;
pub mod swarm;
mod sybil;

use std::collections::BTreeMap;

/// Why an attack could not run (its outcome, good or bad for the attacker, is in the [`Report`]).
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// An attack's result.
pub type Result<T> = std::result::Result<T, Error>;

/// The attacks, by name.
pub const ATTACKS: [&str; 10] = [
    "decode-amplification",
    "direct-flood",
    "eclipse",
    "passive-poisoning",
    "reflection",
    "reorder-flood",
    "slot-exhaustion",
    "slow-neighbour",
    "stream-table-capture",
    "sybil-swarm",
];

/// What the attacker did and saw: named figures, printed as one JSON object.
#[derive(Debug, Default)]
pub struct Report {
    figures: BTreeMap<&'static str, String>,
}

impl Report {
    /// Adds `n` to a count.
    pub fn add(&mut self, key: &'static str, n: u64) {
        let old: u64 = self.count(key).unwrap_or(0);
        self.figures.insert(key, (old + n).to_string());
    }

    /// Sets a fraction.
    pub fn set_f64(&mut self, key: &'static str, value: f64) {
        self.figures.insert(key, format!("{value:.3}"));
    }

    /// A count, if set.
    pub fn count(&self, key: &str) -> Option<u64> {
        self.figures.get(key)?.parse().ok()
    }

    /// A fraction, if set.
    pub fn fraction(&self, key: &str) -> Option<f64> {
        self.figures.get(key)?.parse().ok()
    }

    /// The report as one JSON object, `attack` first.
    pub fn json(&self, attack: &str) -> String {
        let mut fields = vec![format!("\"attack\":\"{attack}\"")];
        fields.extend(self.figures.iter().map(|(k, v)| format!("\"{k}\":{v}")));
        format!("{{{}}}", fields.join(","))
    }
}
