//! One connection on loopback: dotray-transport (encrypted, as always) against plain tokio TCP with a
//! length prefix; then the time to establish a connection.
//!
//! Run with `cargo bench -p dotray-transport --bench throughput [-- SIZE...]` (`VERBOSE=1` prints every
//! run's pair; `-- handshake` runs only the handshake timing).
//! For each payload size, one side sends as fast as back-pressure allows and the other receives every
//! frame; the time runs from the first send to the last receive. dotray's side does everything a node
//! does per frame: build the `Data` frame the way the node's driver does (`OutFrame::data`: a payload
//! under 4 KiB copied into the connection's queue, a larger one shared, not copied), seal the queued
//! frames into AES-256-GCM chunks, write, open, decode, and hand them to the layer above in a batch
//! event. The
//! baseline does the least a length-prefixed TCP stream can: a buffered `write_u32` + `write_all` per
//! frame, a buffered `read_u32` + `read_exact` into one reused buffer. The two run alternately `RUNS`
//! times; the table gives medians of payload MB/s (10^6 B) and frames/s, and the median of the paired
//! ratios.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, SecretKey};
use dotray_transport::{Config, Transport, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

/// Pairs of runs per payload size. Plain TCP's speed is bimodal on a 2-core machine, so the medians
/// need many pairs to settle (see `docs/PERFORMANCE.md`).
const RUNS: usize = 21;
/// Payload bytes moved per run and size (fewer frames for large payloads, same volume).
const VOLUME: usize = 256 * 1024 * 1024;
const MAX_FRAMES: usize = 1_000_000;

fn frames_for(size: usize) -> usize {
    (VOLUME / size).min(MAX_FRAMES)
}

async fn dotray_run(size: usize) -> Duration {
    let frames = frames_for(size);
    let local = "127.0.0.1:0".parse().expect("addr");
    let (a, _a_events) =
        Transport::bind(local, SecretKey::generate(), Config::default()).await.expect("bind");
    let (b, mut b_events) =
        Transport::bind(local, SecretKey::generate(), Config::default()).await.expect("bind");
    let to_b = a.connect(b.local_addr()).await.expect("connect");
    while !matches!(b_events.recv().await, Some(TransportEvent::Connected(_))) {}

    let payload = Bytes::from(vec![0x5a; size]);
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        for seq in 0..frames as u64 {
            let frame = OutFrame::data(1, seq, 0, &payload, DEFAULT_MAX_FRAME_LEN).expect("encode");
            to_b.sender.send(&frame).await.expect("send");
        }
    });
    // The receiving side runs as a task on the runtime's workers, as a node's upper layer does.
    let receiver = tokio::spawn(async move {
        let mut received = 0;
        while received < frames {
            match b_events.recv().await {
                Some(TransportEvent::Frames { frames, .. }) => received += frames.len(),
                Some(_) => {}
                None => panic!("transport stopped"),
            }
        }
        started.elapsed()
    });
    let elapsed = receiver.await.expect("receiver");
    sender.await.expect("sender");
    a.shutdown().await;
    b.shutdown().await;
    elapsed
}

async fn baseline_run(size: usize) -> Duration {
    let frames = frames_for(size);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept = tokio::spawn(async move { listener.accept().await.expect("accept").0 });
    let out = TcpStream::connect(addr).await.expect("connect");
    let inbound = accept.await.expect("accept task");
    out.set_nodelay(true).expect("nodelay");

    let payload = vec![0x5a; size];
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(256 * 1024, out);
        for _ in 0..frames {
            w.write_u32(payload.len() as u32).await.expect("write");
            w.write_all(&payload).await.expect("write");
        }
        w.flush().await.expect("flush");
    });
    let receiver = tokio::spawn(async move {
        let mut r = BufReader::with_capacity(256 * 1024, inbound);
        let mut buf = vec![0u8; size];
        for _ in 0..frames {
            let len = r.read_u32().await.expect("read") as usize;
            r.read_exact(&mut buf[..len]).await.expect("read");
        }
        started.elapsed()
    });
    let elapsed = receiver.await.expect("receiver");
    sender.await.expect("sender");
    elapsed
}

/// Handshakes timed, one after another, on one pair of transports.
const HANDSHAKES: usize = 400;

/// Time from `connect` to a usable connection (TCP connect, the three Noise messages, both hellos),
/// for each of [`HANDSHAKES`] connections in turn.
async fn handshake_times() -> Vec<Duration> {
    let local = "127.0.0.1:0".parse().expect("addr");
    let (a, mut a_events) =
        Transport::bind(local, SecretKey::generate(), Config::default()).await.expect("bind");
    let (b, mut b_events) =
        Transport::bind(local, SecretKey::generate(), Config::default()).await.expect("bind");
    // Drain both event channels so that no connection waits for room.
    let drain = tokio::spawn(async move {
        loop {
            tokio::select! {
                e = a_events.recv() => if e.is_none() { break },
                e = b_events.recv() => if e.is_none() { break },
            }
        }
    });
    let mut times = Vec::with_capacity(HANDSHAKES);
    for _ in 0..HANDSHAKES {
        let started = Instant::now();
        let peer = a.connect_to(b.local_id(), b.local_addr()).await.expect("connect");
        times.push(started.elapsed());
        a.disconnect(&peer.id, dotray_codec::proto::GoodbyeReason::Unspecified);
        while !a.peers().is_empty() || !b.peers().is_empty() {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    a.shutdown().await;
    b.shutdown().await;
    drain.abort();
    times
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!(
        "one connection on loopback, {RUNS} alternating runs per system, {} MB per run; medians, and the median of the paired ratios",
        VOLUME / 1_000_000
    );
    println!(
        "| payload | dotray MB/s | dotray frames/s | baseline MB/s | baseline frames/s | dotray / baseline |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    // `cargo bench ... -- 1024` runs one size only (cargo itself passes `--bench`, ignored here).
    let only: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let handshake_only = std::env::args().any(|a| a == "handshake");
    for size in [64usize, 1024, 64 * 1024] {
        if handshake_only || (!only.is_empty() && !only.contains(&size)) {
            continue;
        }
        let frames = frames_for(size) as f64;
        let bytes = frames * size as f64;
        // dotray and the baseline run alternately, and the ratio is the median of the pairs' ratios:
        // this machine's speed drifts between runs (seen: the baseline alone varying 2x), and pairing
        // keeps that drift out of the comparison.
        let mut pairs = Vec::new();
        // `VERBOSE=1` prints every pair (the baseline alone is bimodal on this machine at 1 KiB:
        // about 1.9 or 3.7 GB/s, whether its two tasks happen to run in parallel or not).
        let verbose = std::env::var_os("VERBOSE").is_some();
        for _ in 0..RUNS {
            // `PROFILE=dotray` or `PROFILE=baseline` runs one system only (for `perf record`).
            let profile = std::env::var("PROFILE").unwrap_or_default();
            if profile == "baseline" {
                let b = runtime.block_on(baseline_run(size));
                pairs.push((b, b));
                continue;
            }
            let d = runtime.block_on(dotray_run(size));
            if profile == "dotray" {
                pairs.push((d, d));
                continue;
            }
            let b = runtime.block_on(baseline_run(size));
            pairs.push((d, b));
            if verbose {
                let mb_s = |t: Duration| bytes / t.as_secs_f64() / 1e6;
                eprintln!("{size} B run: dotray {:.0} MB/s, baseline {:.0} MB/s", mb_s(d), mb_s(b));
            }
        }
        let dotray = median(pairs.iter().map(|p| p.0).collect());
        let baseline = median(pairs.iter().map(|p| p.1).collect());
        let mut ratios: Vec<f64> = pairs.iter().map(|(d, b)| b.as_secs_f64() / d.as_secs_f64()).collect();
        ratios.sort_by(f64::total_cmp);
        let (d, b) = (dotray.as_secs_f64(), baseline.as_secs_f64());
        println!(
            "| {size} B | {:.0} | {:.0} | {:.0} | {:.0} | {:.0}% |",
            bytes / d / 1e6,
            frames / d,
            bytes / b / 1e6,
            frames / b,
            100.0 * ratios[ratios.len() / 2]
        );
    }
    if only.is_empty() || handshake_only {
        let mut times = runtime.block_on(handshake_times());
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!();
        println!(
            "handshake on loopback ({HANDSHAKES} connections in turn, from connect to usable): median {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.99),
            times[times.len() - 1]
        );
    }
}
