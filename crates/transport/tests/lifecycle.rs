//! Normal operation: frames flow in order both ways, graceful shutdown says goodbye, dropping the handle
//! stops the transport.

mod common;

use std::time::Duration;

use common::*;
use dotray_codec::OutFrame;
use dotray_codec::proto::{self, Body, GoodbyeReason};
use dotray_transport::{Config, DialError, DisconnectReason, SendError, TransportEvent};

/// Payload of frame `seq` in `many_frames_arrive_in_order_both_ways`: 0 to 9 KiB of a byte its own.
fn payload_of(seq: u64) -> bytes::Bytes {
    bytes::Bytes::from(vec![seq as u8; (seq as usize * 37) % 9000])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_frames_arrive_in_order_both_ways() {
    const FRAMES: u64 = 5_000;
    let (a, mut a_events) = node(fast_config()).await;
    let (b, mut b_events) = node(fast_config()).await;
    let to_b = a.connect(b.local_addr()).await.unwrap();
    let to_a = wait_connected(&mut b_events).await;
    wait_connected(&mut a_events).await;

    // Mixed sizes so that batching, vectored writes and partial writes all happen, and every way of
    // building and queuing a frame, interleaved: a contiguous encoded frame or a data frame (each
    // copied into the queue below 4 KiB, queued by reference above), waiting for room, or trying and
    // waiting for the queue to drain.
    let send = |sender: dotray_transport::PeerSender| async move {
        let max = dotray_codec::DEFAULT_MAX_FRAME_LEN;
        for seq in 1..=FRAMES {
            let payload = payload_of(seq);
            let frame = if seq % 2 == 0 {
                let data = proto::Data { stream_ref: 1, seq, hops: 0, payload };
                OutFrame::encode(&data.into(), max).unwrap()
            } else {
                OutFrame::data(1, seq, 0, &payload, max).unwrap()
            };
            if seq % 4 < 2 {
                sender.send(&frame).await.unwrap();
            } else {
                while let Err(error) = sender.try_send(&frame) {
                    assert_eq!(error, SendError::QueueFull);
                    sender.queue_drained(0).await;
                }
            }
        }
    };
    let recv = |mut events: dotray_transport::Events| async move {
        let mut next = 1;
        while next <= FRAMES {
            match next_event(&mut events).await {
                TransportEvent::Frames { frames, .. } => {
                    assert!(!frames.is_empty(), "a batch is never empty");
                    for envelope in frames {
                        match envelope.body {
                            Some(Body::Data(d)) => {
                                assert_eq!(d.seq, next, "frames in order");
                                assert_eq!(d.payload, payload_of(next));
                                next += 1;
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        events
    };
    let (_, _, _, _) =
        tokio::join!(send(to_b.sender.clone()), send(to_a.sender.clone()), recv(b_events), recv(a_events));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_says_goodbye_and_stops_listening() {
    let (a, mut a_events) = node(fast_config()).await;
    let (b, mut b_events) = node(fast_config()).await;
    let a_addr = a.local_addr();
    a.connect(b.local_addr()).await.unwrap();
    wait_connected(&mut b_events).await;
    wait_connected(&mut a_events).await;

    a.shutdown().await;
    let reason = wait_for(&mut b_events, |e| match e {
        TransportEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Goodbye { reason: GoodbyeReason::Shutdown, detail: String::new() });
    assert!(reason.peer_left());
    let local = wait_for(&mut a_events, |e| match e {
        TransportEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(local, DisconnectReason::Shutdown);
    assert!(tokio::net::TcpStream::connect(a_addr).await.is_err(), "listener closed");
    assert!(matches!(a.connect(b.local_addr()).await, Err(DialError::Shutdown)));
    b.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_an_event_receiver_nobody_reads() {
    // Room for two events; five peers connect and nobody reads: the channel fills with their
    // `Connected`, and the `Disconnected` events of the shutdown cannot fit. Shutdown must still end
    // (the owner of the receiver is the one awaiting it), reporting what did not fit.
    let (a, _unread) = node(Config { event_queue_len: 2, ..fast_config() }).await;
    let mut peers = Vec::new();
    for _ in 0..5 {
        let mut raw = RawPeer::connect(a.local_addr()).await;
        raw.handshake().await;
        peers.push(raw);
    }
    tokio::time::timeout(DEADLINE, a.shutdown()).await.expect("shutdown ends");
    for raw in &mut peers {
        assert_eq!(raw.expect_goodbye().await, GoodbyeReason::Shutdown);
    }
    assert_eq!(a.stats().events_dropped_at_shutdown, 5, "{:?}", a.stats());
}

#[tokio::test]
async fn local_disconnect_flushes_then_says_goodbye() {
    let (a, mut a_events) = node(fast_config()).await;
    let mut raw = RawPeer::connect(a.local_addr()).await;
    raw.handshake().await;
    let peer = wait_connected(&mut a_events).await;
    for nonce in 0..100 {
        peer.sender.try_send(&ping_frame(nonce)).unwrap();
    }
    assert!(a.disconnect(&peer.id, GoodbyeReason::Replaced));
    for nonce in 0..100 {
        match raw.recv().await.map(|e| e.body) {
            Some(Some(Body::Ping(p))) => assert_eq!(p.nonce, nonce),
            other => panic!("expected ping {nonce}, got {other:?}"),
        }
    }
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::Replaced);
    let reason = wait_for(&mut a_events, |e| match e {
        TransportEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Local(GoodbyeReason::Replaced));
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_transport() {
    let (a, _a_events) = node(fast_config()).await;
    let (b, mut b_events) = node(fast_config()).await;
    a.connect(b.local_addr()).await.unwrap();
    wait_connected(&mut b_events).await;
    drop(a);
    let reason = wait_for(&mut b_events, |e| match e {
        TransportEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.peer_left(), "{reason:?}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    b.shutdown().await;
}
