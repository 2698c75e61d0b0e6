//! Slow neighbour: join the target, ask it for everything it retains, and stop reading.
//!
//! A neighbour's full queue holds a node back (no broadcasts, no frames read) until the neighbour
//! is found slow and demoted; once its queue drains it is trusted again. `IDENTITIES` attackers join
//! the target; each, in a cycle, reads for `DRAIN` (answering pings, learning the target's streams
//! from its declarations), then sends one eager `Graft` asking for every message of every stream it
//! heard of and publishes a `PAYLOAD`-byte message of its own (which the target pushes to the other
//! attacker, stalled), and reads nothing for `STALL`. The honest network must not slow down for it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dotray_codec::proto::{self, Envelope, envelope::Body};
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, SecretKey};
use dotray_router::core::StreamId;
use dotray_router::proof::{Ed25519Signer, Signer};
use tokio::time::Instant;

use crate::sybil::Sybil;
use crate::{Report, Result};

/// Attacker identities joined to the target at once.
const IDENTITIES: usize = 2;
/// How long each cycle reads (and answers pings).
const DRAIN: Duration = Duration::from_millis(500);
/// How long each cycle reads nothing, after its `Graft`.
const STALL: Duration = Duration::from_secs(3);
/// The message each identity publishes per cycle: far more than a node lets queue up for a
/// neighbour before it holds back.
const PAYLOAD: usize = 512 << 10;
/// Pause before an evicted attacker joins again under a new identity.
const REJOIN_DELAY: Duration = Duration::from_millis(200);

/// Runs the attack against `target` until `deadline`.
pub async fn run(target: SocketAddr, deadline: Instant, report: &mut Report) -> Result<()> {
    let grafts = Arc::new(AtomicU64::new(0));
    let joins = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IDENTITIES {
        let (grafts, joins) = (grafts.clone(), joins.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Some(mut sybil) = Sybil::join(target, false).await else {
                    tokio::time::sleep(REJOIN_DELAY).await;
                    continue;
                };
                joins.fetch_add(1, Ordering::Relaxed);
                let origin = Ed25519Signer::new(SecretKey::generate());
                let own = StreamId { origin: origin.node_id(), epoch: rand::random() };
                let mut seq = 0;
                let mut streams: HashSet<(Bytes, u64)> = HashSet::new();
                while Instant::now() < deadline {
                    let drained = Instant::now() + DRAIN;
                    let mut closed = false;
                    while Instant::now() < drained && !closed {
                        closed = sybil.serve_pending_with(|frame| {
                            if let Some(Body::StreamDecl(decl)) = frame.body {
                                streams.insert((decl.origin, decl.epoch));
                            }
                        });
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    if closed || greedy_graft(&sybil, &streams).is_err() {
                        break;
                    }
                    seq += 1;
                    let payload = Bytes::from(vec![0; PAYLOAD]);
                    // Declared after the streams the graft named.
                    let stream_ref = u32::try_from(streams.len()).unwrap_or(u32::MAX);
                    if sybil.publish(&origin, (own, seq), payload, stream_ref).is_err() {
                        break;
                    }
                    grafts.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(STALL).await;
                }
                sybil.close().await;
                tokio::time::sleep(REJOIN_DELAY).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("joins", joins.load(Ordering::Relaxed));
    report.add("grafts", grafts.load(Ordering::Relaxed));
    Ok(())
}

/// Declares every stream heard of and asks, in one eager `Graft`, for all of each.
fn greedy_graft(sybil: &Sybil, streams: &HashSet<(Bytes, u64)>) -> Result<()> {
    let mut want = Vec::new();
    for (stream_ref, (origin, epoch)) in (0u32..).zip(streams) {
        let decl = proto::StreamDecl {
            stream_ref,
            origin: origin.clone(),
            epoch: *epoch,
            origin_addr: String::new(),
            origin_signature: Bytes::new(),
        };
        sybil.send_frame(&OutFrame::encode(&Envelope::from(decl), DEFAULT_MAX_FRAME_LEN)?)?;
        want.push(proto::SeqRange { stream_ref, first: 1, last: u64::MAX >> 1 });
    }
    let graft = proto::Graft { want, eager: true };
    sybil.send_frame(&OutFrame::encode(&Envelope::from(graft), DEFAULT_MAX_FRAME_LEN)?)?;
    Ok(())
}
