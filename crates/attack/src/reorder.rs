//! Reorder flood: fill every honest node's reorder buffers with messages that can never be delivered
//! in order, so that the memory they take is bounded by time (the gap timeout) rather than by size.
//!
//! One attacker joins each honest node. Every `NEW_STREAM_EVERY` each starts a stream of its own
//! and sends, validly signed, messages 2 to `MESSAGES + 1` of `PAYLOAD` bytes each, never message 1:
//! every node relays them and must hold them until it gives message 1 up as lost. The honest nodes
//! must keep their memory bounded and their own broadcasts flowing.

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

/// Messages sent per stream after the missing first one.
const MESSAGES: u64 = 256;
/// Bytes of each message.
const PAYLOAD: usize = 64 << 10;
/// How often each attacker starts a new stream.
const NEW_STREAM_EVERY: Duration = Duration::from_secs(4);

/// Runs the attack against every node of `honest` until `deadline`.
pub async fn run(honest: &[SocketAddr], deadline: Instant, report: &mut Report) -> Result<()> {
    if honest.is_empty() {
        return Err("the reorder flood needs --honest addresses".into());
    }
    let sent = Arc::new(AtomicU64::new(0));
    let streams = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for node in honest.iter().copied() {
        let (sent, streams) = (sent.clone(), streams.clone());
        tasks.push(tokio::spawn(async move {
            let origin = Ed25519Signer::new(SecretKey::generate());
            while let Some(mut sybil) = Sybil::join_before(node, deadline).await {
                // Let the join land: a stream named by a non-neighbour is ignored.
                tokio::time::sleep(Duration::from_millis(300)).await;
                while Instant::now() < deadline {
                    let next = Instant::now() + NEW_STREAM_EVERY;
                    let stream = StreamId { origin: origin.node_id(), epoch: rand::random() };
                    streams.fetch_add(1, Ordering::Relaxed);
                    let mut seq = 2;
                    while seq <= MESSAGES + 1 && Instant::now() < deadline {
                        if sybil.serve_pending() {
                            break;
                        }
                        let payload = Bytes::from(vec![seq as u8; PAYLOAD]);
                        match sybil.publish(&origin, (stream, seq), payload, 0) {
                            Ok(()) => {
                                sent.fetch_add(1, Ordering::Relaxed);
                                seq += 1;
                            }
                            // The link's queue is full: wait for it, as a real sender does.
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    if sybil.serve_pending() {
                        break;
                    }
                    tokio::time::sleep_until(next.min(deadline)).await;
                }
                sybil.leave().await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("streams", streams.load(Ordering::Relaxed));
    report.add("messages_sent", sent.load(Ordering::Relaxed));
    Ok(())
}
