//! Recovery from a large history: how soon a node whose data directory holds gigabytes of history
//! starts, and serves catch-up from it, after a clean stop or a crash.
//!
//! Two steps, each a process of its own (`dotray-bench --recovery-fill` then `--recovery`):
//!
//! 1. **Fill**: a data directory for a node A whose own stream has `mib` MiB of 1 KiB messages, all
//!    in its history (signed runs of 1,024 messages, as A's driver stores them), and one for a node
//!    B that has acknowledged nothing of A's stream yet (B was away since the stream began). With
//!    `crash`, the fill process aborts without closing the history, as a killed node would: the
//!    next open must repair it.
//! 2. **Measure**: A starts on its directory; then B starts and asks A for the stream from its
//!    start. Reported: how long A's start took, how long from A's start until B received its first
//!    message (served from A's history), and how many B received in the next seconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use dotray::node::stored_batch;
use dotray::router::core::StreamId;
use dotray::router::proof::{Ed25519Signer, Manifest, payload_hash};
use dotray::store::{DataDir, Delivered, HistoryLimits, NewRun, OwnStream};
use dotray::{Node, SecretKey};

/// Messages per stored run (one manifest each): as many 1 KiB messages as the driver puts in one
/// run (just under 256 KiB stored).
const RUN_LEN: u64 = 240;
/// Payload bytes per message.
const MESSAGE_LEN: usize = 1_024;
/// Runs per commit while filling.
const RUNS_PER_COMMIT: usize = 64;
/// How long B's catch-up is measured after its first message.
const CATCH_UP_SPAN: Duration = Duration::from_secs(5);
/// How long B may wait for its first message before the run fails.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The two directories under `dir`.
fn dirs(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("a"), dir.join("b"))
}

/// A history that keeps all of `mib` MiB of messages (and redb's space around them).
fn limits(mib: u64) -> HistoryLimits {
    HistoryLimits { max_bytes: 2 * (mib << 20) + (64 << 20), ..HistoryLimits::default() }
}

/// Step 1: fills `dir` (emptied first) with A's and B's data directories; aborts the process at the
/// end, without closing anything, if `crash`.
pub fn fill(dir: &Path, mib: u64, crash: bool) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let (a_dir, b_dir) = dirs(dir);
    let key = SecretKey::generate();
    let a = DataDir::open(&a_dir).context("A's data directory")?;
    a.save_secret_key(&key)?;
    let epoch = StreamId::epoch_started_at(unix_secs(), rand_u32());
    let stream = StreamId { origin: key.node_id(), epoch };
    let messages = (mib << 20) / MESSAGE_LEN as u64;
    let runs = messages.div_ceil(RUN_LEN);
    let total = runs * RUN_LEN;
    a.save_own_stream(OwnStream { epoch, sealed_through: total })?;
    let history = a.open_history(limits(mib))?;
    let signer = Ed25519Signer::new(key);
    let now_ms = unix_secs() * 1000;
    let mut pending: Vec<(u64, u64, Vec<u8>)> = Vec::new();
    for run in 0..runs {
        let first = run * RUN_LEN + 1;
        let payloads: Vec<Bytes> = (first..first + RUN_LEN).map(payload).collect();
        let hashes: Vec<u8> = payloads.iter().flat_map(|p| payload_hash(p)).collect();
        let proof = Manifest::sign(&*signer, stream, first, hashes.into());
        pending.push((first, first + RUN_LEN - 1, stored_batch::encode(&proof, first, &payloads)));
        if pending.len() == RUNS_PER_COMMIT || run + 1 == runs {
            let new: Vec<NewRun<'_>> = pending
                .iter()
                .map(|(first, last, bytes)| NewRun {
                    origin: stream.origin,
                    epoch,
                    first: *first,
                    last: *last,
                    bytes,
                })
                .collect();
            history.append(&new, now_ms)?;
            pending.clear();
        }
    }
    let b = DataDir::open(&b_dir).context("B's data directory")?;
    b.save_delivered(&[Delivered { origin: stream.origin, epoch, through: 0 }], 16)?;
    eprintln!("filled: {total} messages, {} MiB of history", history.bytes() >> 20);
    if crash {
        // As a killed node: nothing closed, nothing flushed beyond what each commit made durable.
        std::process::abort();
    }
    Ok(())
}

/// Step 2: starts A, then B, and returns the report as one JSON object.
pub fn measure(dir: &Path, mib: u64) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (a_dir, b_dir) = dirs(dir);
        let mut file_bytes = 0;
        for entry in std::fs::read_dir(a_dir.join(dotray::store::HISTORY_DIR))? {
            file_bytes += entry?.metadata()?.len();
        }
        let started = Instant::now();
        let a = Node::builder().data_dir(&a_dir).history(limits(mib)).start().await?;
        let a_start = started.elapsed();
        let b = Node::builder().data_dir(&b_dir).seed(a.local_addr()).start().await?;
        let first = tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, b.recv())
            .await
            .context("no catch-up message in time")?
            .context("B stopped")?;
        let first_message = started.elapsed();
        if first.seq != 1 {
            bail!("catch-up began at {}, not at the stream's first message", first.seq);
        }
        let mut received = 1u64;
        let mut next = 2;
        let until = Instant::now() + CATCH_UP_SPAN;
        while let Ok(Some(message)) = tokio::time::timeout_at(until.into(), b.recv()).await {
            if message.seq != next {
                bail!("catch-up delivered {} after {}", message.seq, next - 1);
            }
            next += 1;
            received += 1;
        }
        let recalled = a.counters().await?.0.recalled;
        b.shutdown().await;
        a.shutdown().await;
        Ok(format!(
            "{{\"history_bytes\":{file_bytes},\"start_ms\":{},\"first_catch_up_ms\":{},\
             \"caught_up_in_{}s\":{received},\"recalled\":{recalled}}}",
            a_start.as_millis(),
            first_message.as_millis(),
            CATCH_UP_SPAN.as_secs(),
        ))
    })
}

/// Message `seq`'s payload: a whole-message piece (the node's framing of a short message) of
/// `MESSAGE_LEN` bytes.
fn payload(seq: u64) -> Bytes {
    let mut bytes = vec![0u8; MESSAGE_LEN];
    bytes[1..9].copy_from_slice(&seq.to_le_bytes());
    Bytes::from(bytes)
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rand_u32() -> u32 {
    // The process id and the clock: distinct epochs for fills in a row, nothing more needed.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id()
}
