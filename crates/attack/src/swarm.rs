//! Sybil swarm: many more attacker identities than honest nodes, joining all over the network,
//! churning, and relaying nothing.
//!
//! `identities` attackers run at once. Each joins a random honest node (alternating `Join` and
//! high-priority `Neighbour`), stays a random while answering pings only, then leaves, and a fresh
//! identity takes its place. The honest nodes must keep delivering every broadcast to each other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::sybil::Sybil;
use crate::{Report, Result};

/// Shortest and longest stay of one identity, in milliseconds.
const STAY_MS: std::ops::Range<u64> = 2_000..6_000;

/// Runs the attack against every node of `honest` until `deadline`, with `identities` at once.
pub async fn run(
    honest: &[SocketAddr],
    identities: usize,
    deadline: Instant,
    report: &mut Report,
) -> Result<()> {
    if honest.is_empty() {
        return Err("the swarm needs --honest addresses".into());
    }
    let joins = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for slot in 0..identities {
        let (joins, honest) = (joins.clone(), honest.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut high_priority = slot % 2 == 0;
            // Spread the first joins over a second rather than all in one instant.
            let spread = Duration::from_millis(rand::rng().random_range(0..1_000));
            tokio::time::sleep(spread).await;
            while Instant::now() < deadline {
                let pick = rand::rng().random_range(0..honest.len());
                let target = honest[pick];
                high_priority = !high_priority;
                let Some(mut sybil) = Sybil::join(target, high_priority).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                joins.fetch_add(1, Ordering::Relaxed);
                let stay = Duration::from_millis(rand::rng().random_range(STAY_MS));
                sybil.serve_until(deadline.min(Instant::now() + stay)).await;
                sybil.close().await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("identities_at_once", identities as u64);
    report.add("joins", joins.load(Ordering::Relaxed));
    Ok(())
}
