//! Identity and encryption on real loopback sockets: node ids are proven, not claimed; a stranger
//! cannot take over, drop or get banned an honest node's link; altered, replayed or cut ciphertext
//! closes only its own connection, without a ban; a node without the network key learns nothing; a
//! handshake that stalls at any step is cut off at the timeout.

mod common;

use std::time::Duration;

use common::*;
use dotray_codec::proto::{self, Body, Envelope, GoodbyeReason};
use dotray_codec::{CodecError, NodeId, PROTOCOL_VERSION, SecretKey};
use dotray_transport::{
    Config, DialError, DisconnectReason, Events, HandshakeError, NetworkKey, Transport, TransportEvent,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn handshake_failure(event: TransportEvent) -> Option<HandshakeError> {
    match event {
        TransportEvent::HandshakeFailed { error, .. } => Some(error),
        _ => None,
    }
}

fn disconnected(peer: NodeId) -> impl FnMut(TransportEvent) -> Option<DisconnectReason> {
    move |e| match e {
        TransportEvent::Disconnected { peer: p, reason } if p == peer => Some(reason),
        _ => None,
    }
}

/// The next frames from `peer`, failing if `peer` disconnects first.
async fn frames_from(events: &mut Events, peer: NodeId) -> Vec<Envelope> {
    wait_for(events, |e| match e {
        TransportEvent::Frames { peer: p, frames } if p == peer => Some(frames),
        TransportEvent::Disconnected { peer: p, reason } if p == peer => {
            panic!("{peer:?} dropped: {reason:?}")
        }
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_stranger_who_knows_an_honest_nodes_id_cannot_touch_its_link() {
    let (node, mut events) = node(fast_config()).await;
    let (honest, _honest_events) = self::node(fast_config()).await;
    let link = honest.connect(node.local_addr()).await.expect("honest connects");
    assert_eq!(wait_connected(&mut events).await.id, honest.local_id());

    // 1. Claims the honest id in its proof, signed with its own key.
    let mut impostor = RawPeer::connect(node.local_addr()).await;
    impostor.claim = Some(honest.local_id());
    assert!(impostor.noise().await.is_ok(), "the node proves itself first");
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::InvalidProof(_)), "{error:?}");
    assert_eq!(impostor.expect_goodbye().await, GoodbyeReason::ProtocolViolation);

    // 2. Speaks version 1, where ids were claimed in a plaintext hello, and says goodbye as the
    //    honest node: refused before any of it is read.
    let mut old = RawPeer::connect(node.local_addr()).await;
    old.send(&proto::Hello { protocol_version: 1, network_id: "dotray".into(), ..Default::default() }.into())
        .await;
    old.send(&proto::Goodbye { reason: GoodbyeReason::Shutdown as i32, detail: String::new() }.into()).await;
    assert_eq!(old.expect_goodbye().await, GoodbyeReason::VersionUnsupported);

    // 3. Completes a handshake as itself and breaks the protocol: its own id is banned, no one else's.
    let mut offender = RawPeer::connect(node.local_addr()).await;
    offender.handshake().await;
    offender.send_raw(&[0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(offender.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
    let bans = wait_for(&mut events, |_| Some(node.bans()).filter(|b| !b.is_empty())).await;
    assert_eq!(bans.iter().map(|b| b.peer).collect::<Vec<_>>(), vec![offender.id]);

    // The honest link was never replaced or dropped, and still carries frames.
    let summary = node.peers();
    assert_eq!(summary.iter().filter(|p| p.id == honest.local_id()).count(), 1, "{summary:?}");
    link.sender.try_send(&ping_frame(7)).unwrap();
    let frames = frames_from(&mut events, honest.local_id()).await;
    assert_eq!(frames, vec![Envelope::from(proto::Ping { nonce: 7, sent_at_micros: 0 })]);
    assert!(!link.sender.is_closed());
    node.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test]
async fn a_dial_by_id_keeps_only_the_node_it_meant() {
    let (a, _a_events) = node(fast_config()).await;
    let (b, _b_events) = node(fast_config()).await;
    let someone_else = SecretKey::generate().node_id();
    match a.connect_to(someone_else, b.local_addr()).await {
        Err(DialError::Handshake(HandshakeError::UnexpectedPeer { expected, proven })) => {
            assert_eq!((expected, proven), (someone_else, b.local_id()));
        }
        other => panic!("expected UnexpectedPeer, got {other:?}"),
    }
    assert!(a.peers().is_empty());
    let peer = a.connect_to(b.local_id(), b.local_addr()).await.expect("the right node");
    assert_eq!(peer.id, b.local_id());
}

#[tokio::test]
async fn a_node_without_the_network_key_learns_nothing() {
    let key = NetworkKey::from_bytes([3; 32]);
    let private = Config { network_key: Some(key.clone()), ..fast_config() };
    let (member, mut member_events) = node(private.clone()).await;

    // An outsider with no key: dropped after its first message, without a byte in answer.
    let mut outsider = RawPeer::connect(member.local_addr()).await;
    assert!(outsider.noise().await.is_err());
    assert!(outsider.closed_in_silence().await, "not a goodbye, not a node id");
    let error = wait_for(&mut member_events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::Noise(_)), "{error:?}");

    // An outsider with another key, and an open node: the same.
    for config in
        [Config { network_key: Some(NetworkKey::from_bytes([4; 32])), ..fast_config() }, fast_config()]
    {
        let (stranger, _events) = node(config).await;
        match stranger.connect(member.local_addr()).await {
            Err(DialError::Handshake(HandshakeError::Noise(_) | HandshakeError::Closed)) => {}
            other => panic!("expected a failed handshake, got {other:?}"),
        }
        assert!(stranger.peers().is_empty() && member.peers().is_empty());
    }

    // A raw peer with the key gets in; so does a fellow member.
    let mut insider = RawPeer::connect(member.local_addr()).await;
    insider.network_key = Some(key.to_bytes());
    assert_eq!(insider.noise().await, Ok(member.local_id()));
    let (fellow, _fellow_events) = node(private).await;
    assert_eq!(fellow.connect(member.local_addr()).await.expect("member").id, member.local_id());
}

/// A raw peer connected to `node` through a full handshake, and the node's id for it.
async fn connected(node: &Transport, events: &mut Events) -> (RawPeer, NodeId) {
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.handshake().await;
    let id = wait_connected(events).await.id;
    assert_eq!(id, raw.id);
    (raw, id)
}

fn ping_bytes(nonce: u64) -> Vec<u8> {
    RawPeer::frame(&proto::Ping { nonce, sent_at_micros: 0 }.into()).to_vec()
}

#[tokio::test]
async fn altered_ciphertext_closes_the_connection_without_a_ban() {
    let (node, mut events) = node(fast_config()).await;
    let (mut raw, id) = connected(&node, &mut events).await;
    let mut chunk = raw.seal(&ping_bytes(1));
    chunk[5] ^= 0x01;
    raw.send_wire(&chunk).await;
    assert_eq!(wait_for(&mut events, disconnected(id)).await, DisconnectReason::Unauthentic);
    assert!(raw.closed().await);
    assert!(node.bans().is_empty(), "a third party on the path could have flipped it");
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn a_replayed_chunk_is_refused_and_the_original_delivered_once() {
    let (node, mut events) = node(fast_config()).await;
    let (mut raw, id) = connected(&node, &mut events).await;
    let chunk = raw.seal(&ping_bytes(2));
    raw.send_wire(&chunk).await;
    raw.send_wire(&chunk).await;
    let mut delivered = Vec::new();
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Frames { peer, frames } if peer == id => {
            delivered.extend(frames);
            None
        }
        TransportEvent::Disconnected { peer, reason } if peer == id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Unauthentic);
    assert_eq!(delivered, vec![Envelope::from(proto::Ping { nonce: 2, sent_at_micros: 0 })]);
    assert!(node.bans().is_empty());
}

#[tokio::test]
async fn a_chunk_cut_short_delivers_nothing() {
    let (node, mut events) = node(fast_config()).await;
    let (mut raw, id) = connected(&node, &mut events).await;
    let chunk = raw.seal(&ping_bytes(3));
    raw.send_wire(&chunk[..chunk.len() - 1]).await;
    raw.stream.shutdown().await.unwrap();
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Frames { peer, .. } if peer == id => panic!("a frame from a cut chunk"),
        TransportEvent::Disconnected { peer, reason } if peer == id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::Closed);
}

#[tokio::test]
async fn an_empty_chunk_is_a_violation() {
    let (node, mut events) = node(fast_config()).await;
    let (mut raw, id) = connected(&node, &mut events).await;
    let empty = raw.seal(&[]);
    raw.send_wire(&empty).await;
    let reason = wait_for(&mut events, disconnected(id)).await;
    assert_eq!(reason, DisconnectReason::ProtocolViolation("an empty sealed chunk".into()));
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
}

#[tokio::test]
async fn a_handshake_that_stalls_at_any_step_ends_at_the_timeout() {
    let (node, mut events) = node(fast_config()).await;
    // Stalls after message 1: the node has sent message 2 and waits for message 3.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let state = snow::Builder::new("Noise_XX_25519_AESGCM_SHA256".parse().unwrap());
    let mut state =
        state.local_private_key(&[1; 32]).unwrap().prologue(b"dotray/2").unwrap().build_initiator().unwrap();
    let mut message = [0u8; 64];
    let len = state.write_message(&[], &mut message).unwrap();
    raw.send(&proto::Handshake { noise: bytes::Bytes::copy_from_slice(&message[..len]) }.into()).await;
    assert!(matches!(raw.recv().await, Some(Envelope { body: Some(Body::Handshake(_)) })));
    assert!(matches!(wait_for(&mut events, handshake_failure).await, HandshakeError::Timeout));
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::Timeout);

    // Stalls after message 3, before its hello: the channel is up, so the goodbye is sealed.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.noise().await.unwrap();
    assert!(matches!(wait_for(&mut events, handshake_failure).await, HandshakeError::Timeout));
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::Timeout);

    // As a dialer: an acceptor that reads message 1 and then says nothing, or answers message 1 and
    // then says nothing more after message 3.
    for answer in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            if answer {
                // Not a valid message 2: the dialer fails at once instead.
                let _ = socket.write_all(&RawPeer::frame(&proto::Handshake::default().into())).await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        });
        let started = tokio::time::Instant::now();
        let result = node.connect(addr).await;
        match (answer, result) {
            (false, Err(DialError::Handshake(HandshakeError::Timeout))) => {
                assert!(started.elapsed() >= fast_config().handshake_timeout - Duration::from_millis(50));
            }
            (true, Err(DialError::Handshake(HandshakeError::Noise(_)))) => {}
            (_, other) => panic!("answer {answer}: {other:?}"),
        }
        acceptor.abort();
    }
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn sixty_four_kib_of_noise_as_a_handshake_message_is_refused_from_its_prefix() {
    let (node, mut events) = node(fast_config()).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    let noise: Vec<u8> = (0..64 * 1024).map(|_| rand::random::<u8>()).collect();
    let mut frame = (noise.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&noise);
    raw.send_wire(&frame).await;
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::Codec(CodecError::FrameTooLarge { .. })), "{error:?}");
    assert!(raw.closed().await);

    // Noise that fits a frame but is no Noise message: refused, in silence.
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.send(&proto::Handshake { noise: noise[..16].to_vec().into() }.into()).await;
    let error = wait_for(&mut events, handshake_failure).await;
    assert!(matches!(error, HandshakeError::Noise(_)), "{error:?}");
    assert!(raw.closed_in_silence().await);
    assert_still_serves(&node, &mut events).await;
}

#[tokio::test]
async fn the_hello_travels_sealed() {
    // A network id chosen to be found: it never appears on the wire in clear text.
    let config = Config { network_id: "findme-network-id".into(), ..fast_config() };
    let (node, _events) = node(config).await;
    let mut raw = RawPeer::connect(node.local_addr()).await;
    raw.noise().await.unwrap();
    raw.send(&raw.hello("findme-network-id", PROTOCOL_VERSION)).await;
    // Read the raw bytes of the node's answer before the peer decrypts them.
    let mut wire = vec![0u8; 4096];
    let n = tokio::time::timeout(DEADLINE, raw.stream.read(&mut wire)).await.unwrap().unwrap();
    assert!(n > 0);
    assert!(!wire[..n].windows(6).any(|w| w == b"findme"), "the network id in clear text");
}

#[tokio::test]
async fn a_handshake_message_inside_the_channel_is_a_violation() {
    // A Handshake body belongs to the handshake only: inside the channel it ends the connection and
    // never reaches the layer above.
    let (node, mut events) = node(fast_config()).await;
    let (mut raw, id) = connected(&node, &mut events).await;
    raw.send(&proto::Handshake::default().into()).await;
    let reason = wait_for(&mut events, |e| match e {
        TransportEvent::Frames { peer, frames } if peer == id => panic!("passed up: {frames:?}"),
        TransportEvent::Disconnected { peer, reason } if peer == id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::ProtocolViolation("handshake message after the handshake".into()));
    assert_eq!(raw.expect_goodbye().await, GoodbyeReason::ProtocolViolation);
}

#[tokio::test]
async fn a_dial_whose_acceptor_stalls_after_proving_itself_ends_at_the_timeout() {
    use bytes::BytesMut;
    use prost::Message as _;
    use tokio_util::codec::Decoder;
    let (node, _events) = node(fast_config()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A raw acceptor: reads message 1, answers with a correct message 2 (a real proof), reads message
    // 3 and the dialer's hello, and then says nothing.
    let acceptor = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let key = SecretKey::generate();
        let params: snow::params::NoiseParams = "Noise_XX_25519_AESGCM_SHA256".parse().unwrap();
        let keypair = snow::Builder::new(params.clone()).generate_keypair().unwrap();
        let mut state = snow::Builder::new(params)
            .local_private_key(&keypair.private)
            .unwrap()
            .prologue(b"dotray/2")
            .unwrap()
            .build_responder()
            .unwrap();
        let mut codec = dotray_codec::FrameCodec::new();
        let mut buffer = BytesMut::new();
        let mut next_noise = async |socket: &mut tokio::net::TcpStream, buffer: &mut BytesMut| loop {
            if let Some(Envelope { body: Some(Body::Handshake(h)) }) = codec.decode(buffer).unwrap() {
                return h.noise;
            }
            assert!(socket.read_buf(buffer).await.unwrap() > 0, "the dialer hung up");
        };
        let first = next_noise(&mut socket, &mut buffer).await;
        let mut payload = [0u8; 1024];
        state.read_message(&first, &mut payload).unwrap();
        let signature = key.sign(&[&b"dotray-noise-static-key:"[..], &keypair.public].concat());
        let proof = proto::IdentityProof {
            node_id: key.node_id().to_bytes(),
            signature: bytes::Bytes::copy_from_slice(&signature),
        };
        let mut message = [0u8; 1024];
        let len = state.write_message(&proof.encode_to_vec(), &mut message).unwrap();
        let frame = RawPeer::frame(
            &proto::Handshake { noise: bytes::Bytes::copy_from_slice(&message[..len]) }.into(),
        );
        socket.write_all(&frame).await.unwrap();
        let last = next_noise(&mut socket, &mut buffer).await;
        state.read_message(&last, &mut payload).unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        key.node_id()
    });
    let started = tokio::time::Instant::now();
    match node.connect(addr).await {
        Err(DialError::Handshake(HandshakeError::Timeout)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    let timeout = fast_config().handshake_timeout;
    assert!(
        waited >= timeout - Duration::from_millis(50) && waited < timeout + Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(node.peers().is_empty());
    acceptor.abort();
}
