//! Stream-table capture: fill every honest node's stream table with streams of the attacker's own,
//! kept alive, so that a new honest origin finds no room.
//!
//! An origin may start any number of streams (one per epoch), each with validly signed messages
//! that every honest node relays. `IDENTITIES` attackers join the target and one joins every other
//! honest node; each mints new streams under one attacker key as fast as its link takes them (a
//! `StreamDecl`, a signed `Manifest` and a `Data` each) and sends the next message of every stream
//! it minted every `REFRESH`, so none of them ever looks idle. The honest network must still admit
//! an origin that starts publishing during the attack, and lose nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dotray_codec::SecretKey;
use dotray_router::core::StreamId;
use dotray_router::proof::{Ed25519Signer, Signer};
use tokio::time::Instant;

use crate::sybil::Sybil;
use crate::{Report, Result};

/// Attacker identities joined to the target (one more joins every other honest node).
const IDENTITIES: usize = 3;
/// How often each minted stream gets its next message.
const REFRESH: Duration = Duration::from_secs(10);
/// Most streams one identity keeps alive (more than a default stream table holds).
const MAX_STREAMS_PER_IDENTITY: usize = 6_000;
/// Streams minted per burst, between two looks at the connection.
const BURST: usize = 200;
/// Stream references recycled on one connection (the protocol allows 8,192 bound at once).
const REFS: u32 = 4_096;

/// Runs the attack against `target` and every node of `honest` until `deadline`.
pub async fn run(
    target: SocketAddr,
    honest: &[SocketAddr],
    deadline: Instant,
    report: &mut Report,
) -> Result<()> {
    let origin = Ed25519Signer::new(SecretKey::generate());
    let minted = Arc::new(AtomicU64::new(0));
    let refreshed = Arc::new(AtomicU64::new(0));
    let joins = Arc::new(AtomicU64::new(0));
    let mut victims = vec![target; IDENTITIES];
    victims.extend(honest.iter().filter(|a| **a != target));
    let mut tasks = Vec::new();
    for victim in victims {
        let (origin, minted, refreshed, joins) =
            (origin.clone(), minted.clone(), refreshed.clone(), joins.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(sybil) = Sybil::join_before(victim, deadline).await {
                joins.fetch_add(1, Ordering::Relaxed);
                let mut minter = Minter { sybil, origin: origin.clone(), streams: Vec::new(), next_ref: 0 };
                minter.flood(deadline, &minted, &refreshed).await;
                minter.sybil.leave().await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("joins", joins.load(Ordering::Relaxed));
    report.add("streams_minted", minted.load(Ordering::Relaxed));
    report.add("refreshes", refreshed.load(Ordering::Relaxed));
    Ok(())
}

/// One identity's streams: each with its stream reference on this connection and its last message.
struct Minter {
    sybil: Sybil,
    origin: Arc<Ed25519Signer>,
    streams: Vec<(StreamId, u64)>,
    next_ref: u32,
}

impl Minter {
    /// Mints and refreshes streams until `deadline` or until the honest node closes the connection.
    async fn flood(&mut self, deadline: Instant, minted: &AtomicU64, refreshed: &AtomicU64) {
        // Let the join land before the first stream (a stream named by a non-neighbour is ignored).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut next_refresh = Instant::now() + REFRESH;
        while Instant::now() < deadline {
            if self.sybil.serve_pending() {
                return;
            }
            if Instant::now() >= next_refresh {
                next_refresh += REFRESH;
                for i in 0..self.streams.len() {
                    let (stream, seq) = self.streams[i];
                    if self.send_message(stream, seq + 1).is_err() {
                        break;
                    }
                    self.streams[i].1 = seq + 1;
                    refreshed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if self.streams.len() < MAX_STREAMS_PER_IDENTITY {
                for _ in 0..BURST {
                    let stream = StreamId { origin: self.origin.node_id(), epoch: rand::random() };
                    if self.send_message(stream, 1).is_err() {
                        break;
                    }
                    self.streams.push((stream, 1));
                    minted.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends message `seq` of `stream`, declared under the next recycled reference.
    fn send_message(&mut self, stream: StreamId, seq: u64) -> Result<()> {
        let stream_ref = self.next_ref;
        self.next_ref = (self.next_ref + 1) % REFS;
        let payload = Bytes::from(format!("capture-{}-{seq}", stream.epoch));
        self.sybil.publish(&self.origin, (stream, seq), payload, stream_ref)
    }
}
