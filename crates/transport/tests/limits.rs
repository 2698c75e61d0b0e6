//! Hard limits under abuse: a peer that never reads, and a flood of connections beyond the limit.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dotray_codec::{NodeId, proto};
use dotray_transport::{Config, DisconnectReason, SendError, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_fills_its_queue_and_nothing_else() {
    let config = Config {
        max_frame_len: 64 * 1024,
        max_queue_bytes: 256 * 1024,
        write_timeout: Duration::from_secs(2),
        // Longer than the whole test, so the write stall, not idleness, is what ends the connection.
        idle_timeout: Duration::from_secs(60),
        ..fast_config()
    };
    let max_queue = config.max_queue_bytes;
    let (node, mut events) = node(config).await;

    // The bad peer: handshakes, then never reads again (it keeps the socket open).
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    let stuck = wait_connected(&mut events).await;

    // A good peer, connected to the same node.
    let (good, mut good_events) =
        common::node(Config { idle_timeout: Duration::from_secs(60), ..fast_config() }).await;
    let to_good = good.connect(node.local_addr()).await.unwrap();
    let good_on_node = wait_connected(&mut events).await;
    assert_eq!(good_on_node.id, good.local_id());
    wait_connected(&mut good_events).await;

    // Push 60 KiB frames at the stuck peer without pause until the node gives up on it. The kernel's
    // socket buffers absorb some megabytes; then the writer stalls, the queue fills, and every further
    // try says QueueFull, until the write timeout closes the connection.
    let frame = dotray_codec::OutFrame::encode(
        &proto::Direct { payload: payload(60 * 1024) }.into(),
        dotray_codec::DEFAULT_MAX_FRAME_LEN,
    )
    .unwrap();
    let started = Instant::now();
    let (mut accepted, mut refused_full) = (0usize, 0usize);
    let mut full_since: Option<Instant> = None;
    let mut checked_good_peer = false;
    loop {
        match stuck.sender.try_send(&frame) {
            Ok(()) => {
                accepted += frame.len();
                full_since = None;
            }
            Err(SendError::QueueFull) => {
                refused_full += 1;
                let since = *full_since.get_or_insert_with(Instant::now);
                if !checked_good_peer && since.elapsed() > Duration::from_millis(300) {
                    // The stuck peer has been full for a while: the node must still serve others.
                    round_trip(&good_on_node, &to_good, &mut good_events, &mut events, good.local_id()).await;
                    checked_good_peer = true;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(SendError::Closed) => break,
            Err(other) => panic!("unexpected {other:?}"),
        }
        assert!(stuck.sender.queued_bytes() <= max_queue, "queue bounded by max_queue_bytes");
        assert!(started.elapsed() < Duration::from_secs(20), "the stuck peer must be dropped");
        tokio::task::yield_now().await;
    }
    assert!(refused_full > 0, "the sender was told the queue is full");
    assert!(checked_good_peer, "the queue stayed full long enough to check the good peer");
    // Memory held for the stuck peer: its queue plus what the kernel's socket buffers took.
    assert!(accepted < 64 * 1024 * 1024, "accepted {accepted} B for a peer that never reads");

    // The stalled write ends the stuck connection after write_timeout.
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Disconnected { peer, reason } if peer == raw.id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::WriteTimeout);
    assert_eq!(stuck.sender.try_send(&frame), Err(SendError::Closed));
    good.shutdown().await;
    node.shutdown().await;
}

/// A ping from the node to the good peer and one back, each awaited.
async fn round_trip(
    node_to_good: &dotray_transport::ConnectedPeer,
    good_to_node: &dotray_transport::ConnectedPeer,
    good_events: &mut dotray_transport::Events,
    node_events: &mut dotray_transport::Events,
    good_id: NodeId,
) {
    let ping = proto::Envelope::from(proto::Ping { nonce: 9, sent_at_micros: 0 });
    node_to_good.sender.try_send(&OutFrame::encode(&ping, DEFAULT_MAX_FRAME_LEN).unwrap()).unwrap();
    let got = wait_for(good_events, |e| match e {
        TransportEvent::Frames { mut frames, .. } => Some(frames.remove(0)),
        _ => None,
    })
    .await;
    assert_eq!(got, ping);
    good_to_node.sender.try_send(&OutFrame::encode(&ping, DEFAULT_MAX_FRAME_LEN).unwrap()).unwrap();
    wait_for(node_events, |e| match e {
        TransportEvent::Frames { peer, .. } if peer == good_id => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_connection_attempts_beyond_the_limit() {
    const ATTEMPTS: usize = 2000;
    let max_inbound = 16;
    let config = Config { max_inbound, handshake_timeout: Duration::from_secs(2), ..fast_config() };
    let (node, mut events) = node(config).await;
    let fds_before = open_fds();

    // All attempts at once. Each connects, then waits to be closed (the refused ones are closed at once;
    // the admitted ones at the handshake timeout, since they never say hello).
    let addr = node.local_addr();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..ATTEMPTS {
        attempts.spawn(async move {
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await
            else {
                return Err("connect");
            };
            // Say something, as any real client would. (A connection that overflowed the kernel's accept
            // backlog looks established to the client but is unknown to the server until data arrives.)
            let _ = stream.write_all(b"x").await;
            let mut buf = [0u8; 256];
            // Read until the node closes the socket.
            loop {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
                    Ok(Ok(_)) => continue,
                    Err(_) => return Err("read"),
                }
            }
        });
    }
    // While the flood lasts, the node never holds more than its limit.
    let mut peak_inbound = 0;
    while !attempts.is_empty() {
        let stats = node.stats();
        peak_inbound = peak_inbound.max(stats.inbound_open);
        assert!(stats.inbound_open <= max_inbound, "inbound sockets {} > {max_inbound}", stats.inbound_open);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            done = attempts.join_next() => {
                if let Some(done) = done {
                    if let Err(what) = done.unwrap() {
                        panic!("every attempt is answered by a close, none hangs: {what} timed out ({:?})", node.stats());
                    }
                }
            }
        }
    }
    let stats = node.stats();
    assert!(peak_inbound <= max_inbound);
    assert!(stats.inbound_refused as usize >= ATTEMPTS - 10 * max_inbound, "{stats:?}");
    assert_eq!(stats.inbound_accepted as usize + stats.inbound_refused as usize, ATTEMPTS);

    // Everything is released: admitted sockets time out, refused ones were closed at once.
    let settle = Instant::now();
    while node.stats().inbound_open > 0 && settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node.stats().inbound_open, 0);
    assert!(open_fds() <= fds_before + 4, "file descriptors leaked: {} -> {}", fds_before, open_fds());
    assert_still_serves(&node, &mut events).await;
    node.shutdown().await;
}

#[tokio::test]
async fn simultaneous_dials_end_with_one_shared_connection_100_times() {
    for round in 0..100 {
        let (a, mut a_events) = node(fast_config()).await;
        let (b, mut b_events) = node(fast_config()).await;
        let (ra, rb) = tokio::join!(a.connect(b.local_addr()), b.connect(a.local_addr()));
        assert!(ra.is_ok() || rb.is_ok(), "round {round}: at least one dial wins ({ra:?}, {rb:?})");

        // Wait until both sides have settled on one connection, and check it is the same socket pair.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (pa, pb) = (a.peers(), b.peers());
            let same = pa.len() == 1
                && pb.len() == 1
                && pa[0].local_addr == pb[0].remote_addr
                && pa[0].remote_addr == pb[0].local_addr;
            if same {
                assert_eq!(pa[0].id, b.local_id());
                assert_eq!(pb[0].id, a.local_id());
                assert_ne!(pa[0].outbound, pb[0].outbound, "one side dialed, the other accepted");
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: no agreement: {pa:?} vs {pb:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }

        // Per peer, Connected and Disconnected alternate and the last word is Connected.
        a.shutdown().await;
        b.shutdown().await;
        for (events, other) in [(&mut a_events, b.local_id()), (&mut b_events, a.local_id())] {
            check_alternation(events, other, round);
        }
    }
}

/// Drains the events of a shut-down transport and checks the Connected/Disconnected alternation for
/// `peer`: it must end disconnected (by the shutdown), with exactly one Connected per Disconnected.
fn check_alternation(events: &mut dotray_transport::Events, peer: NodeId, round: usize) {
    let mut connected = false;
    while let Ok(event) = events.try_recv() {
        match event {
            TransportEvent::Connected(p) if p.id == peer => {
                assert!(!connected, "round {round}: Connected twice without Disconnected");
                connected = true;
            }
            TransportEvent::Disconnected { peer: p, .. } if p == peer => {
                assert!(connected, "round {round}: Disconnected without Connected");
                connected = false;
            }
            _ => {}
        }
    }
    assert!(!connected, "round {round}: shutdown must report the final Disconnected");
}
