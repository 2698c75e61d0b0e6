//! The ideal-tree baseline: the physical limit of tree forwarding on this machine.
//!
//! Plain tokio TCP on loopback. Node `i > 0` connects to its parent `(i-1)/2`, so the nodes form a
//! fixed binary tree. A message is a `u32` big-endian length prefix and the payload. Every link has a
//! reader task and a writer task: the reader cuts frames out of its buffer without copying
//! (`BytesMut::split_to` + `freeze`) and hands the same bytes to the writers of the node's other
//! links; a writer drains its queue into a buffered writer and flushes when the queue is empty. No ids,
//! no dedup, no acks: in a tree every node receives every message exactly once.
//!
//! Back-pressure is the queues' and TCP's: a writer's queue holds about [`LINK_QUEUE_BYTES`], like
//! dotray's publish high-water mark, so both systems may keep a similar amount of data in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::payload::{self, Header, Phase};
use crate::tally::{HandedLog, NodeLog, Tally, merge};
use crate::{BenchError, Report, Spec, usage, watch};

/// Bytes a link's queue may hold (in whole frames, at least [`MIN_LINK_QUEUE_FRAMES`]).
pub const LINK_QUEUE_BYTES: usize = 1024 * 1024;
/// Frames a link's queue holds at least, whatever the frame size.
pub const MIN_LINK_QUEUE_FRAMES: usize = 4;
/// Capacity of a writer's buffer.
const WRITE_BUFFER: usize = 256 * 1024;
/// Room kept free in a reader's buffer for the next read.
const READ_ROOM: usize = 256 * 1024;
/// Length prefix of a frame.
const PREFIX: usize = 4;

/// Runs the baseline once.
pub async fn run(spec: &Spec) -> Result<Report, BenchError> {
    let tally = Arc::new(Tally::new());
    let wire = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let frame_len = PREFIX + spec.size;
    let queue_frames = (LINK_QUEUE_BYTES / frame_len).max(MIN_LINK_QUEUE_FRAMES);

    // Build the tree: every node's links as (read half, write half).
    let links = connect_tree(spec.nodes).await?;
    let mut tasks = JoinSet::new();
    let mut log_rx = Vec::new();
    let mut injectors: Vec<Vec<mpsc::Sender<Bytes>>> = Vec::new();
    for (node, node_links) in links.into_iter().enumerate() {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..node_links.len()).map(|_| mpsc::channel::<Bytes>(queue_frames)).unzip();
        let (log_tx, rx) = mpsc::unbounded_channel::<NodeLog>();
        log_rx.push(rx);
        for (link, ((read, write), queue)) in node_links.into_iter().zip(receivers).enumerate() {
            tasks.spawn(write_link(write, queue, wire.clone()));
            let others: Vec<_> =
                senders.iter().enumerate().filter(|(i, _)| *i != link).map(|(_, s)| s.clone()).collect();
            let reader = Reader {
                others,
                tally: tally.clone(),
                received: received.clone(),
                log: HandedLog::new(node, spec.msgs, log_tx.clone()),
            };
            tasks.spawn(reader.run(read));
        }
        injectors.push(senders);
    }
    let setup_ms = tally.clock.elapsed().as_secs_f64() * 1e3;

    // Measure.
    let before = usage::now();
    let wire_before = wire.load(Ordering::Relaxed);
    let start_ns = tally.now_ns();
    let started = tokio::time::Instant::now();
    for (publisher, links) in injectors.iter().enumerate().take(spec.publishers) {
        let links = links.clone();
        let (tally, spec) = (tally.clone(), spec.clone());
        tasks.spawn(async move {
            for index in (publisher..spec.msgs).step_by(spec.publishers) {
                if let Some(due) = spec.due(index) {
                    tokio::time::sleep_until(started + due).await;
                }
                let header =
                    Header { phase: Phase::Measured, index: index as u32, sent_at_ns: tally.now_ns() };
                let frame = frame(&payload::make(spec.size, header));
                for link in &links {
                    if link.send(frame.clone()).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    let end = watch::until_complete(&tally.delivered, spec.expected()).await;
    let after = usage::now();
    let wire_bytes = wire.load(Ordering::Relaxed) - wire_before;
    let last_ns = tally.last_delivery_ns.load(Ordering::Relaxed);

    // Stop, then collect each reader's log (a reader sends it when its task ends).
    drop(injectors);
    tasks.shutdown().await;
    let mut logs = Vec::new();
    for mut rx in log_rx {
        while let Ok(log) = rx.try_recv() {
            logs.push(log);
        }
    }
    let merged = merge(logs);
    Ok(Report {
        spec: spec.clone(),
        end,
        setup_ms,
        deliver_ms: last_ns.saturating_sub(start_ns) as f64 / 1e6,
        delivered: merged.distinct,
        duplicates_delivered_to_app: merged.duplicates,
        wire_bytes,
        payload_msgs_received: received.load(Ordering::Relaxed),
        payloads_per_msg: 1,
        cpu_s: after.cpu_s - before.cpu_s,
        peak_rss_mb: after.peak_rss_mb,
        lat_p50_ms: merged.p50_ms,
        lat_p99_ms: merged.p99_ms,
    })
}

/// A length-prefixed frame of `payload`.
fn frame(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(PREFIX + payload.len());
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.freeze()
}

type Link = (OwnedReadHalf, OwnedWriteHalf);

/// Binds one listener per node and connects every node `i > 0` to its parent `(i-1)/2`. Returns every
/// node's links; a child says its index in the first 4 bytes so its parent knows who it is.
async fn connect_tree(nodes: usize) -> Result<Vec<Vec<Link>>, BenchError> {
    let mut listeners = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        listeners.push(TcpListener::bind("127.0.0.1:0").await?);
    }
    let mut links: Vec<Vec<Link>> = (0..nodes).map(|_| Vec::new()).collect();
    for child in 1..nodes {
        let parent = (child - 1) / 2;
        let mut up = TcpStream::connect(listeners[parent].local_addr()?).await?;
        up.set_nodelay(true)?;
        up.write_u32(child as u32).await?;
        let (mut down, _) = listeners[parent].accept().await?;
        down.set_nodelay(true)?;
        let said = down.read_u32().await?;
        if said as usize != child {
            return Err(BenchError::Unsettled(format!("tree link {child}: peer said {said}")));
        }
        links[child].push(up.into_split());
        links[parent].push(down.into_split());
    }
    Ok(links)
}

/// Drains one link's queue into buffered writes; flushes whenever the queue is momentarily empty.
async fn write_link(write: OwnedWriteHalf, mut queue: mpsc::Receiver<Bytes>, wire: Arc<AtomicU64>) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write);
    while let Some(frame) = queue.recv().await {
        let mut bytes = frame.len();
        if out.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(frame) = queue.try_recv() {
            bytes += frame.len();
            if out.write_all(&frame).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
        wire.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// One link's reader: records each message and forwards it to the node's other links.
struct Reader {
    others: Vec<mpsc::Sender<Bytes>>,
    tally: Arc<Tally>,
    received: Arc<AtomicU64>,
    log: HandedLog,
}

impl Reader {
    async fn run(mut self, mut read: OwnedReadHalf) {
        let mut buf = BytesMut::with_capacity(READ_ROOM);
        loop {
            while let Some(frame) = next_frame(&mut buf) {
                self.received.fetch_add(1, Ordering::Relaxed);
                if let Some(header) = payload::read(&frame[PREFIX..]) {
                    self.log.log.record(header, self.tally.now_ns(), &self.tally);
                }
                for other in &self.others {
                    if other.send(frame.clone()).await.is_err() {
                        return;
                    }
                }
            }
            if buf.capacity() - buf.len() < READ_ROOM / 4 {
                buf.reserve(READ_ROOM);
            }
            match read.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Cuts the next complete frame (prefix included) off the front of `buf`, without copying.
fn next_frame(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < PREFIX {
        return None;
    }
    let len = PREFIX + (&buf[..PREFIX]).get_u32() as usize;
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return None;
    }
    Some(buf.split_to(len).freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_whole_and_only_when_complete() {
        let mut buf = BytesMut::new();
        buf.put_slice(&frame(b"hello"));
        buf.put_slice(&frame(b"wor")[..5]);
        assert_eq!(next_frame(&mut buf).as_deref(), Some(&frame(b"hello")[..]));
        assert_eq!(next_frame(&mut buf), None);
        buf.put_slice(&frame(b"wor")[5..]);
        assert_eq!(next_frame(&mut buf).as_deref(), Some(&frame(b"wor")[..]));
    }
}
