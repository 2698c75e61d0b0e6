//! Slow neighbour: join the target, ask it for everything it retains, and stop reading.
//!
//! A neighbour's full queue holds a node back (no broadcasts, no frames read) until the neighbour
//! is found slow and demoted; once its queue drains it is trusted again. One attacker joins the
//! target and, in a cycle, reads for `DRAIN` (answering pings, learning the target's streams from
//! its declarations), then sends one eager `Graft` asking for every message of every stream it heard
//! of, and reads nothing for `STALL`. A second attacker, joined to another honest node, publishes a
//! `PER_CYCLE` messages of `PAYLOAD` bytes every cycle: the network carries it to the target, which pushes it to the
//! stalled one. The honest network must not slow down for it.

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

/// How long each cycle reads (and answers pings).
const DRAIN: Duration = Duration::from_millis(500);
/// How long each cycle reads nothing, after its `Graft`.
const STALL: Duration = Duration::from_secs(3);
/// The messages published per cycle: together far more than a node lets queue up for a neighbour
/// before it holds back, and than the kernel's socket buffers of a loopback connection absorb.
const PAYLOAD: usize = 2 << 20;
/// How many such messages each cycle.
const PER_CYCLE: u64 = 2;

/// Runs the attack against `target` until `deadline`; the publisher joins the first other node of
/// `honest`.
pub async fn run(
    target: SocketAddr,
    honest: &[SocketAddr],
    deadline: Instant,
    report: &mut Report,
) -> Result<()> {
    let elsewhere = *honest.iter().find(|a| **a != target).ok_or("slow-neighbour needs --honest nodes")?;
    let joins = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = tokio::spawn(publish(elsewhere, deadline, joins.clone(), published.clone()));
    let mut grafts = 0;
    while let Some(mut sybil) = Sybil::join_before(target, deadline).await {
        joins.fetch_add(1, Ordering::Relaxed);
        let mut streams: HashSet<(Bytes, u64)> = HashSet::new();
        while Instant::now() < deadline {
            if read_for(&mut sybil, DRAIN, &mut streams).await || greedy_graft(&sybil, &streams).is_err() {
                break;
            }
            grafts += 1;
            tokio::time::sleep(STALL).await;
        }
        sybil.leave().await;
    }
    let _ = publisher.await;
    report.add("joins", joins.load(Ordering::Relaxed));
    report.add("grafts", grafts);
    report.add("published", published.load(Ordering::Relaxed));
    Ok(())
}

/// Joins `node` and publishes `PER_CYCLE` messages of `PAYLOAD` bytes every cycle until `deadline`.
async fn publish(node: SocketAddr, deadline: Instant, joins: Arc<AtomicU64>, published: Arc<AtomicU64>) {
    let origin = Ed25519Signer::new(SecretKey::generate());
    let stream = StreamId { origin: origin.node_id(), epoch: rand::random() };
    let mut seq = 0;
    while let Some(mut sybil) = Sybil::join_before(node, deadline).await {
        joins.fetch_add(1, Ordering::Relaxed);
        let mut ignored = HashSet::new();
        while Instant::now() < deadline {
            if read_for(&mut sybil, DRAIN + STALL, &mut ignored).await {
                break;
            }
            let burst = (1..=PER_CYCLE).map(|i| (seq + i, Bytes::from(vec![0; PAYLOAD])));
            if burst.map(|(n, payload)| sybil.publish(&origin, (stream, n), payload, 0)).any(|r| r.is_err()) {
                break;
            }
            seq += PER_CYCLE;
            published.fetch_add(PER_CYCLE, Ordering::Relaxed);
        }
        sybil.leave().await;
    }
}

/// Reads (answering pings, noting the streams declared) for `period`. True when the connection
/// closed.
async fn read_for(sybil: &mut Sybil, period: Duration, streams: &mut HashSet<(Bytes, u64)>) -> bool {
    let until = Instant::now() + period;
    while Instant::now() < until {
        let closed = sybil.serve_pending_with(|frame| {
            if let Some(Body::StreamDecl(decl)) = frame.body {
                streams.insert((decl.origin, decl.epoch));
            }
        });
        if closed {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
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
