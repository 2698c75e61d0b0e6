//! The history on disk (router `Config::history`): a thread of its own that stores what the node
//! delivers, and reads on tokio's blocking pool for neighbours that catch up ([`HistoryIo::recall`])
//! and for the application ([`replay`]). The driver, which relays for the whole network, never
//! waits for the disk.
//!
//! **Writes** are grouped: after a commit the writer lets `DriverConfig::history_commit_interval`
//! pass, then stores everything that arrived meanwhile in one commit, each stream's consecutive
//! messages under one manifest as one run. What waits for the writer is bounded in bytes
//! (`DriverConfig::history_queue_bytes`): past it a delivered message is not stored (counted in
//! `DriverCounters::history_dropped`), so a disk slower than the network costs history, never
//! memory or delivery speed.
//!
//! **Reads** never trust the disk: the router checks what a recall returns before it sends it, and
//! [`replay`] checks each run's manifest and payloads before it hands them to the application.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_router::core::{MAX_SEQ, RecalledRun, StreamId};
use dotray_router::proof::{Manifest, Signer};
use dotray_store::{History, NewRun, StoreError};
use tokio::sync::mpsc as tokio_mpsc;
use tracing::warn;

use crate::Message;
use crate::fragment::{Reassembled, Reassembly};
use crate::stored_batch;

/// One delivered (or own, signed) payload on its way to the writer.
struct Record {
    stream: StreamId,
    seq: u64,
    payload: Bytes,
    proof: Arc<Manifest>,
}

/// A recall's answer: the neighbour it is for, and what was read.
pub(super) type Recalled = (NodeId, Vec<RecalledRun>);

/// The writer thread, the reads' answers, and what the driver needs to hand records to the writer.
pub(super) struct HistoryIo {
    history: Arc<History>,
    queue: Option<mpsc::Sender<Record>>,
    thread: Option<thread::JoinHandle<()>>,
    /// Payload bytes handed to the writer and not yet taken by it.
    queued_bytes: Arc<AtomicUsize>,
    max_queued_bytes: usize,
    /// Why the writer stopped, if it did.
    failed: Arc<Mutex<Option<String>>>,
    recalled_tx: tokio_mpsc::UnboundedSender<Recalled>,
    /// Answers of recalls, for the driver's loop: at most one per neighbour is under way.
    pub(super) recalled: tokio_mpsc::UnboundedReceiver<Recalled>,
}

/// What became of a record handed to [`HistoryIo::archive`].
pub(super) enum Archived {
    /// Queued for the writer.
    Queued,
    /// Not stored: the writer is that far behind.
    Dropped,
    /// The writer has stopped (it could not write): why. Reported once; nothing more is stored.
    Failed(String),
}

impl HistoryIo {
    /// Starts the writer of `history`.
    pub(super) fn start(
        history: Arc<History>,
        commit_interval: Duration,
        max_queued_bytes: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Record>();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(None));
        let writer =
            Writer { history: history.clone(), queued_bytes: queued_bytes.clone(), failed: failed.clone() };
        let thread = thread::Builder::new()
            .name("dotray-history".to_owned())
            .spawn(move || writer.run(&rx, commit_interval))?;
        let (recalled_tx, recalled) = tokio_mpsc::unbounded_channel();
        Ok(Self {
            history,
            queue: Some(tx),
            thread: Some(thread),
            queued_bytes,
            max_queued_bytes,
            failed,
            recalled_tx,
            recalled,
        })
    }

    /// The history, for reads beside the driver.
    pub(super) fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Hands a payload to the writer.
    pub(super) fn archive(
        &mut self,
        stream: StreamId,
        seq: u64,
        payload: Bytes,
        proof: Arc<Manifest>,
    ) -> Archived {
        let Some(queue) = &self.queue else { return Archived::Dropped };
        let len = payload.len();
        if self.queued_bytes.load(Ordering::Relaxed) + len > self.max_queued_bytes {
            return Archived::Dropped;
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if queue.send(Record { stream, seq, payload, proof }).is_err() {
            self.queue = None;
            let why = self.failed.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Archived::Failed(why.unwrap_or_else(|| "the history writer stopped".to_owned()));
        }
        Archived::Queued
    }

    /// Reads `first..=last` of `stream` (about `max_bytes`) on the blocking pool; the answer arrives
    /// on [`HistoryIo::recalled`], empty if nothing is stored or the read failed.
    pub(super) fn recall(&self, to: NodeId, stream: StreamId, (first, last): (u64, u64), max_bytes: u32) {
        let history = self.history.clone();
        let answer = self.recalled_tx.clone();
        tokio::task::spawn_blocking(move || {
            let runs = match history.read(stream.origin, stream.epoch, (first, last), max_bytes as usize) {
                Ok(runs) => runs,
                Err(error) => {
                    warn!(%error, "cannot read the history");
                    Vec::new()
                }
            };
            let runs = runs
                .into_iter()
                .filter_map(|run| match stored_batch::decode(stream, run.first, &run.bytes) {
                    Ok((proof, payloads)) => Some(RecalledRun { proof, first: run.first, payloads }),
                    Err(detail) => {
                        warn!(%detail, first = run.first, "a damaged run in the history");
                        None
                    }
                })
                .collect();
            let _ = answer.send((to, runs));
        });
    }
}

impl Drop for HistoryIo {
    /// Closes the writer's queue and waits for it to store what it holds.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread's state.
struct Writer {
    history: Arc<History>,
    queued_bytes: Arc<AtomicUsize>,
    failed: Arc<Mutex<Option<String>>>,
}

impl Writer {
    fn run(self, queue: &mpsc::Receiver<Record>, interval: Duration) {
        let mut last_commit: Option<Instant> = None;
        while let Ok(first) = queue.recv() {
            if let Some(wait) =
                last_commit.and_then(|at| (at + interval).checked_duration_since(Instant::now()))
            {
                thread::sleep(wait);
            }
            let records: Vec<Record> = std::iter::once(first).chain(queue.try_iter()).collect();
            let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            let runs = into_runs(records);
            let encoded: Vec<(StreamId, u64, u64, Vec<u8>)> = runs
                .iter()
                .map(|(stream, first, proof, payloads)| {
                    let last = first + payloads.len() as u64 - 1;
                    (*stream, *first, last, stored_batch::encode(proof, *first, payloads))
                })
                .collect();
            let new_runs: Vec<NewRun<'_>> = encoded
                .iter()
                .map(|(stream, first, last, bytes)| NewRun {
                    origin: stream.origin,
                    epoch: stream.epoch,
                    first: *first,
                    last: *last,
                    bytes,
                })
                .collect();
            let now_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            if let Err(error) = self.history.append(&new_runs, now_ms) {
                warn!(%error, "cannot write the history; no more messages are stored");
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
                return;
            }
            last_commit = Some(Instant::now());
        }
    }
}

/// A run being gathered: its stream, first sequence number, manifest and payloads.
type OpenRun = (StreamId, u64, Arc<Manifest>, Vec<Bytes>);

/// The most bytes a run takes stored, unless one payload alone is larger. The store allocates
/// space in powers of two, so a run just under one wastes nothing, and one just over wastes half:
/// runs are cut before 256 KiB (with the store's own bytes per run to spare).
const MAX_RUN_BYTES: usize = (256 << 10) - 512;

/// Groups records into runs: a stream's consecutive messages under one manifest make one run,
/// however the streams interleave, up to `MAX_RUN_BYTES`.
fn into_runs(records: Vec<Record>) -> Vec<OpenRun> {
    // Stored size of a run: the manifest once, then each payload with its length (see
    // `stored_batch`).
    let size = |run: &OpenRun| {
        12 + run.2.hashes.len()
            + dotray_codec::SIGNATURE_LEN
            + run.3.iter().map(|p| 4 + p.len()).sum::<usize>()
    };
    let mut open: HashMap<StreamId, OpenRun> = HashMap::new();
    let mut done = Vec::new();
    for Record { stream, seq, payload, proof } in records {
        if let Some(run) = open.get_mut(&stream) {
            let next = run.1 + run.3.len() as u64;
            if next == seq && Arc::ptr_eq(&run.2, &proof) && size(run) + 4 + payload.len() <= MAX_RUN_BYTES {
                run.3.push(payload);
                continue;
            }
            done.extend(open.remove(&stream));
        }
        open.insert(stream, (stream, seq, proof, vec![payload]));
    }
    done.extend(open.into_values());
    done
}

/// Why [`replay`] could not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The node keeps no history (no data directory, or no `history` limits).
    #[error("this node keeps no history")]
    NoHistory,
    /// The history could not be read, or holds messages that fail their check.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Bytes read from the history per read while replaying.
const REPLAY_READ_BYTES: usize = 4 << 20;

/// Up to `max_messages` messages of `stream` from the history, from the one at `from` on (a large
/// message that begins before `from` is not included), in order. A message the history lacks (it
/// was dropped for age or size, or never stored) is skipped: compare each message's `seq` with the
/// previous one's `through` to see where. Each run's manifest is verified with `signer` and each
/// payload checked against it: damage is an error, never a wrong message.
pub(super) fn replay(
    history: &History,
    signer: &dyn Signer,
    stream: StreamId,
    from: u64,
    max_messages: usize,
    max_message_len: usize,
) -> Result<Vec<Message>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { path: history.dir().to_owned(), detail };
    let mut out = Vec::new();
    let mut reassembly = Reassembly::new(max_message_len, max_message_len);
    let mut next = from.max(1);
    while out.len() < max_messages && next <= MAX_SEQ {
        let runs = history.read(stream.origin, stream.epoch, (next, MAX_SEQ), REPLAY_READ_BYTES)?;
        let before = next;
        for run in runs {
            let (proof, payloads) = stored_batch::decode(stream, run.first, &run.bytes).map_err(corrupt)?;
            if !proof.verify(signer) {
                return Err(corrupt(format!("a stored manifest of {} fails its signature", proof.first)));
            }
            for (seq, payload) in (run.first..).zip(payloads) {
                if seq < next {
                    continue;
                }
                if !proof.proves(seq, &payload) {
                    return Err(corrupt(format!("stored message {seq} does not match its manifest")));
                }
                if seq > next {
                    // A hole: a large message around it cannot be whole.
                    reassembly = Reassembly::new(max_message_len, max_message_len);
                }
                next = seq + 1;
                if let Reassembled::Message { seq: first, payload } = reassembly.accept(stream, seq, &payload)
                {
                    out.push(Message {
                        payload,
                        origin: stream.origin,
                        origin_addr: None,
                        epoch: stream.epoch,
                        seq: first,
                        hops: 0,
                        through: seq,
                    });
                    if out.len() == max_messages {
                        return Ok(out);
                    }
                }
            }
        }
        if next == before {
            break;
        }
    }
    Ok(out)
}
