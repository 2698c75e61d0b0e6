//! Bad input gets a clear error and a closed connection, never a crash; and the node keeps serving
//! well-behaved peers afterwards. Every test runs on real loopback sockets.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dotray_codec::proto::{self, GoodbyeReason};
use dotray_codec::{CodecError, PROTOCOL_VERSION};
use dotray_transport::{DialError, DisconnectReason, HandshakeError, TransportEvent};

fn handshake_failure(event: TransportEvent) -> Option<HandshakeError> {
    match event {
        TransportEvent::HandshakeFailed { error, .. } => Some(error),
        _ => None,
    }
}

#[tokio::test]
async fn garbage_instead_of_a_handshake() {
    let (node, mut events) = node(fast_config()).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.send_raw(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").await;
    // "GET " read as a length is about 1.2 GB: refused from the prefix alone.
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::Codec(CodecError::FrameTooLarge { .. })), "{error:?}");
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn four_gib_length_prefix_before_and_after_the_handshake() {
    let (node, mut events) = node(fast_config()).await;

    let mut raw = RawPeer::connect(node.local_addr()).await;
    let started = Instant::now();
    raw.send_raw(&[0xff, 0xff, 0xff, 0xff]).await;
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(
        matches!(error, HandshakeError::Codec(CodecError::FrameTooLarge { len: 0xffff_ffff, .. })),
        "{error:?}"
    );
    assert!(raw.closed().await);
    assert!(started.elapsed() < Duration::from_millis(400), "refused at once, not at a timeout");

    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    wait_connected(&mut events).await;
    raw.send_raw(&[0xff, 0xff, 0xff, 0xff]).await;
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert!(matches!(reason, DisconnectReason::ProtocolViolation(_)), "{reason:?}");
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn valid_protobuf_of_the_wrong_type_before_the_handshake() {
    let (node, mut events) = node(fast_config()).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.send(&proto::Ping { nonce: 1, sent_at_micros: 2 }.into()).await;
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::UnexpectedFrame("ping")), "{error:?}");
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn silent_peer_is_closed_at_the_handshake_timeout() {
    let config = fast_config();
    let timeout = config.handshake_timeout;
    let (node, mut events) = node(config).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let started = Instant::now();
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::Timeout), "{error:?}");
    let waited = started.elapsed();
    assert!(waited >= timeout - Duration::from_millis(50), "not before the timeout ({waited:?})");
    assert!(waited < timeout + Duration::from_secs(2), "not long after it ({waited:?})");
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::Timeout);
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn slowloris_dribbling_a_hello_is_cut_off_at_the_handshake_timeout() {
    let (node, mut events) = node(fast_config()).await;
    let raw = RawPeer::connect(node.local_addr()).await;
    let mut hello = bytes::BytesMut::new();
    tokio_util::codec::Encoder::encode(
        &mut dotray_codec::FrameCodec::new(),
        &raw.hello("dotray", PROTOCOL_VERSION),
        &mut hello,
    )
    .unwrap();
    // One byte every 100 ms: the whole hello would take seconds; the deadline is 500 ms for all of it.
    let dribble = async {
        for byte in hello.iter() {
            if raw.stream.try_write(&[*byte]).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (error, ()) = tokio::join!(wait_for(&mut events, handshake_failure), dribble);
    assert!(matches!(error, HandshakeError::Timeout), "{error:?}");
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn wrong_network_id_is_a_typed_error_on_both_sides() {
    let (b, mut b_events) = node(fast_config()).await;
    let config_a = dotray_transport::Config { network_id: "other-net".into(), ..fast_config() };
    let (a, _a_events) = node(config_a).await;
    match a.connect(b.local_addr()).await {
        Err(DialError::Handshake(HandshakeError::NetworkMismatch { ours, theirs })) => {
            assert_eq!((ours.as_str(), theirs.as_str()), ("other-net", "dotray"));
        }
        other => panic!("expected NetworkMismatch, got {other:?}"),
    }
    let error = wait_for(&mut b_events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::NetworkMismatch { .. }), "{error:?}");
    // A raw peer sees the goodbye and its reason, sealed, after its hello.
    let mut raw = RawPeer::connect(b.local_addr()).await;
    raw.noise().await.unwrap();
    let hello = raw.hello("other-net", PROTOCOL_VERSION);
    raw.send(&hello).await;
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::NetworkMismatch);
    assert_still_serves(&b, &mut b_events).await;
}

#[tokio::test]
async fn a_version_1_hello_is_refused_with_a_reason() {
    let (node, mut events) = node(fast_config()).await;
    // Version 1 opened with a plaintext hello: answered with a plaintext goodbye.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let hello = raw.hello("dotray", 1);
    raw.send(&hello).await;
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(
        matches!(error, HandshakeError::VersionUnsupported { ours: PROTOCOL_VERSION, theirs: 1 }),
        "{error:?}"
    );
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::VersionUnsupported);

    // A hello inside the channel naming another version (2: encrypted, but without signed broadcasts)
    // is refused too, sealed.
    for theirs in [2, 99] {
        let mut raw = RawPeer::connect(node.local_addr()).await;
        raw.noise().await.unwrap();
        let hello = raw.hello("dotray", theirs);
        raw.send(&hello).await;
        let error = wait_for(&mut events, handshake_failure).await;
        assert!(
            matches!(error, HandshakeError::VersionUnsupported { ours: PROTOCOL_VERSION, theirs: t } if t == theirs),
            "{error:?}"
        );
        assert_eq!(raw.expect_goodbye().await, GoodbyeReason::VersionUnsupported);
    }
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn second_hello_and_frames_after_goodbye() {
    let (node, mut events) = node(fast_config()).await;
    // A second hello after the handshake is a protocol violation.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    wait_connected(&mut events).await;
    let hello = raw.hello("dotray", PROTOCOL_VERSION);
    raw.send(&hello).await;
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);

    // After a goodbye, nothing more is delivered from that connection.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    let peer = wait_connected(&mut events).await.id;
    raw.send(&proto::Goodbye { reason: GoodbyeReason::Shutdown as i32, detail: String::new() }.into()).await;
    raw.send(&proto::Ping { nonce: 66, sent_at_micros: 0 }.into()).await;
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Frames { peer: p, .. } if p == peer => panic!("frame delivered after goodbye"),
        TransportEvent::Disconnected { peer: p, reason } if p == peer => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.peer_left(), "{reason:?}");
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let config = dotray_transport::Config { idle_timeout: Duration::from_millis(300), ..fast_config() };
    let (node, mut events) = node(config).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    wait_connected(&mut events).await;
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Disconnected { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::IdleTimeout);
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::Timeout);
}

#[tokio::test]
async fn dialing_ourselves_is_detected() {
    let (node, mut events) = node(fast_config()).await;
    match node.connect(node.local_addr()).await {
        Err(DialError::Handshake(HandshakeError::SelfConnection)) => {}
        other => panic!("expected SelfConnection, got {other:?}"),
    }
    assert!(node.peers().is_empty());
    assert_still_serves(&node, &mut events).await;
}
