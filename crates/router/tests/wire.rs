//! The wire layer: stream references (`StreamDecl` once per connection, node-global refs so one
//! encoded `Data` serves every peer), round trips of every message through `proto`, and validation
//! of hostile input (undeclared or rebound refs, bad node ids, bad ranges, huge lists), with proptest.

use std::sync::Arc;

use bytes::Bytes;
use dotray_codec::proto::{self, Body};
use dotray_codec::{NodeId, SecretKey};
use dotray_router::core::{Beacon, Message, SeqRange, StreamId, Watermark};
use dotray_router::proof::{
    Ed25519Signer, GROUP_LEN, HASH_LEN, Manifest, ManifestError, stream_decl_message,
};
use dotray_router::wire::{Inbound, MAX_LIST_LEN, OriginAddr, Outbound, WireError, verify_origin_addr};
use proptest::prelude::*;

fn stream(n: u8) -> StreamId {
    StreamId { origin: NodeId::from_bytes([n; 32]), epoch: u64::from(n) * 1000 }
}

fn addr(s: &StreamId) -> OriginAddr {
    OriginAddr { addr: format!("10.0.0.{}:7000", s.origin.as_bytes()[0]), signature: Bytes::new() }
}

/// Sends `msg` from `out` to the peer's `inbound` the way the driver does: declarations first.
fn transfer(out: &mut Outbound, peer: NodeId, inbound: &mut Inbound, msg: &Message) -> Message {
    let mut decls = Vec::new();
    let body = out.encode(peer, msg, &mut addr, &mut decls).expect("encode");
    for decl in decls {
        assert_eq!(inbound.decode(&Body::StreamDecl(decl)), Ok(None));
    }
    inbound.decode(&body).expect("decode").expect("a message")
}

#[test]
fn declarations_are_sent_once_per_connection_and_refs_are_shared_by_all_peers() {
    let mut out = Outbound::new();
    let (p1, p2) = (NodeId::from_bytes([1; 32]), NodeId::from_bytes([2; 32]));
    let msg = Message::Data { stream: stream(9), seq: 1, hops: 0, payload: Bytes::from_static(b"x") };
    let mut d1 = Vec::new();
    let b1 = out.encode(p1, &msg, &mut addr, &mut d1).unwrap();
    let mut d2 = Vec::new();
    let b2 = out.encode(p2, &msg, &mut addr, &mut d2).unwrap();
    assert_eq!(b1, b2, "the same Data body for every peer: encode once per hop");
    assert_eq!(d1.len(), 1);
    assert_eq!(d2, d1, "each new connection gets the same declaration");
    assert_eq!(d1[0].origin_addr, "10.0.0.9:7000");
    let mut again = Vec::new();
    out.encode(p1, &msg, &mut addr, &mut again).unwrap();
    assert!(again.is_empty(), "declared once per connection");
    out.peer_down(&p1);
    out.encode(p1, &msg, &mut addr, &mut again).unwrap();
    assert_eq!(again.len(), 1, "a new connection is declared again");
}

#[test]
fn every_message_kind_round_trips() {
    let mut out = Outbound::new();
    let mut inbound = Inbound::new();
    let peer = NodeId::from_bytes([5; 32]);
    let messages = vec![
        Message::Data { stream: stream(1), seq: 3, hops: 2, payload: Bytes::from_static(b"hi") },
        Message::IHave {
            ranges: vec![
                SeqRange { stream: stream(1), first: 1, last: 9 },
                SeqRange { stream: stream(2), first: 4, last: 4 },
            ],
            hops: 1,
        },
        Message::Graft { want: vec![SeqRange { stream: stream(3), first: 2, last: 5 }], eager: true },
        Message::Graft { want: vec![], eager: false },
        Message::Prune,
        Message::Ack { marks: vec![Watermark { stream: stream(1), seq: 9 }] },
        Message::Sync { marks: vec![Watermark { stream: stream(4), seq: 0 }] },
        Message::Beacon(Beacon {
            root: stream(2),
            round: 9,
            hops: 3,
            tree: false,
            publisher: true,
            signature: [4; 64],
        }),
    ];
    for msg in &messages {
        assert_eq!(&transfer(&mut out, peer, &mut inbound, msg), msg);
    }
    assert_eq!(inbound.lookup(0).map(|(s, a)| (s, a.to_owned())), Ok((stream(1), addr(&stream(1)).addr)));
}

#[test]
fn undeclared_references_are_violations_and_redeclared_ones_rebind() {
    let mut inbound = Inbound::new();
    let data = Body::Data(proto::Data { stream_ref: 4, seq: 1, hops: 0, payload: Bytes::new() });
    assert_eq!(inbound.decode(&data), Err(WireError::UndeclaredRef(4)));
    let decl = |origin: u8| proto::StreamDecl {
        stream_ref: 4,
        origin: Bytes::copy_from_slice(&[origin; 32]),
        epoch: 1,
        origin_addr: "127.0.0.1:1".into(),
        origin_signature: Bytes::new(),
    };
    assert_eq!(inbound.declare(&decl(1)), Ok(()));
    assert_eq!(inbound.declare(&decl(1)), Ok(()), "repeating the same binding is harmless");
    // A recycled reference: the sender declares it again for another stream, and later frames use it.
    assert_eq!(inbound.declare(&decl(2)), Ok(()));
    let Ok(Some(dotray_router::core::Message::Data { stream, .. })) = inbound.decode(&data) else {
        panic!("data after the rebinding decodes");
    };
    assert_eq!(stream.origin, dotray_codec::NodeId::from_bytes([2; 32]));
    assert_eq!(inbound.len(), 1, "a rebinding replaces, it does not add");
}

#[test]
fn outbound_recycles_references_of_forgotten_streams_and_declares_them_again() {
    use dotray_codec::NodeId;
    use dotray_router::core::{Message, StreamId};
    use dotray_router::wire::Outbound;
    let peer = NodeId::from_bytes([9; 32]);
    let (a, b) = (
        StreamId { origin: NodeId::from_bytes([1; 32]), epoch: 1 },
        StreamId { origin: NodeId::from_bytes([2; 32]), epoch: 1 },
    );
    let data = |stream| Message::Data { stream, seq: 1, hops: 0, payload: Bytes::new() };
    let mut out = Outbound::new();
    let mut addr = |_: &StreamId| OriginAddr { addr: "127.0.0.1:1".to_owned(), signature: Bytes::new() };
    let mut decls = Vec::new();
    out.encode(peer, &data(a), &mut addr, &mut decls).unwrap();
    assert_eq!(decls.len(), 1, "first use declares");
    decls.clear();
    out.encode(peer, &data(a), &mut addr, &mut decls).unwrap();
    assert!(decls.is_empty(), "declared once per connection");
    let ref_a = out.stream_ref(a);
    out.forget_stream(&a);
    out.encode(peer, &data(b), &mut addr, &mut decls).unwrap();
    assert_eq!(decls.len(), 1, "the recycled reference is declared again, for the new stream");
    assert_eq!(decls[0].stream_ref, ref_a, "the freed number is reused");
    assert_eq!(decls[0].origin, b.origin.to_bytes());
}

#[test]
fn malformed_fields_are_rejected() {
    let mut inbound = Inbound::new();
    let short =
        proto::StreamDecl { stream_ref: 0, origin: Bytes::from_static(b"short"), ..Default::default() };
    assert_eq!(inbound.declare(&short), Err(WireError::BadNodeId(5)));
    let long_addr = proto::StreamDecl {
        stream_ref: 0,
        origin: Bytes::copy_from_slice(&[1; 32]),
        epoch: 0,
        origin_addr: "x".repeat(1000),
        origin_signature: Bytes::new(),
    };
    assert_eq!(inbound.declare(&long_addr), Err(WireError::AddrTooLong(1000)));
    let ok = proto::StreamDecl { origin_addr: String::new(), ..long_addr };
    inbound.declare(&ok).unwrap();
    let zero = Body::Data(proto::Data { stream_ref: 0, seq: 0, hops: 0, payload: Bytes::new() });
    assert_eq!(inbound.decode(&zero), Err(WireError::ZeroSeq));
    let backwards = Body::Ihave(proto::IHave {
        ranges: vec![proto::SeqRange { stream_ref: 0, first: 5, last: 4 }],
        hops: 0,
    });
    assert_eq!(inbound.decode(&backwards), Err(WireError::BadRange { first: 5, last: 4 }));
    let from_zero = Body::Graft(proto::Graft {
        want: vec![proto::SeqRange { stream_ref: 0, first: 0, last: 4 }],
        eager: false,
    });
    assert_eq!(inbound.decode(&from_zero), Err(WireError::BadRange { first: 0, last: 4 }));
    let huge =
        Body::Ack(proto::Ack { marks: vec![proto::Watermark { stream_ref: 0, seq: 1 }; MAX_LIST_LEN + 1] });
    assert_eq!(inbound.decode(&huge), Err(WireError::ListTooLong(MAX_LIST_LEN + 1)));
    let other = Body::Ping(proto::Ping { nonce: 1, sent_at_micros: 0 });
    assert_eq!(inbound.decode(&other), Err(WireError::NotBroadcast));
}

fn arb_stream() -> impl Strategy<Value = StreamId> {
    (0u8..6, any::<u64>()).prop_map(|(n, epoch)| StreamId { origin: NodeId::from_bytes([n; 32]), epoch })
}

fn arb_range() -> impl Strategy<Value = SeqRange> {
    (arb_stream(), 1u64..u64::MAX, any::<u32>()).prop_map(|(stream, first, len)| SeqRange {
        stream,
        first,
        last: first.saturating_add(u64::from(len)),
    })
}

fn arb_marks() -> impl Strategy<Value = Vec<Watermark>> {
    prop::collection::vec(
        (arb_stream(), any::<u64>()).prop_map(|(stream, seq)| Watermark { stream, seq }),
        0..8,
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb_stream(), 1u64.., any::<u32>(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(stream, seq, hops, p)| Message::Data { stream, seq, hops, payload: Bytes::from(p) }),
        (prop::collection::vec(arb_range(), 0..8), any::<u32>())
            .prop_map(|(ranges, hops)| Message::IHave { ranges, hops }),
        (prop::collection::vec(arb_range(), 0..8), any::<bool>())
            .prop_map(|(want, eager)| Message::Graft { want, eager }),
        Just(Message::Prune),
        arb_marks().prop_map(|marks| Message::Ack { marks }),
        arb_marks().prop_map(|marks| Message::Sync { marks }),
        (arb_stream(), 1u64.., 1u32.., any::<(bool, bool)>(), any::<[u8; 64]>()).prop_map(
            |(root, round, hops, (tree, publisher), signature)| {
                Message::Beacon(Beacon { root, round, hops, tree, publisher, signature })
            }
        ),
        (arb_stream(), 1u64..1 << 40, 1usize..40, any::<[u8; 64]>(), any::<bool>()).prop_map(
            |(stream, first, n, signature, grouped)| {
                let hashes = Bytes::from(vec![7u8; n * HASH_LEN]);
                let groups = if grouped { vec![8u8; n.div_ceil(GROUP_LEN) * HASH_LEN] } else { Vec::new() };
                Message::Manifest(Arc::new(Manifest {
                    stream,
                    first,
                    hashes,
                    signature,
                    groups: groups.into(),
                }))
            }
        ),
    ]
}

proptest! {
    #[test]
    fn any_message_round_trips(msgs in prop::collection::vec(arb_message(), 1..20)) {
        let mut out = Outbound::new();
        let mut inbound = Inbound::new();
        let peer = NodeId::from_bytes([9; 32]);
        for msg in &msgs {
            prop_assert_eq!(&transfer(&mut out, peer, &mut inbound, msg), msg);
        }
    }

    /// Garbage bodies never panic: they decode or give a typed error.
    #[test]
    fn garbage_never_panics(
        decls in prop::collection::vec((any::<u32>(), prop::collection::vec(any::<u8>(), 0..20), any::<u64>()), 0..5),
        refs in prop::collection::vec((any::<u32>(), any::<u64>(), any::<u64>()), 0..10),
    ) {
        let mut inbound = Inbound::new();
        for (stream_ref, origin, epoch) in decls {
            let decl = proto::StreamDecl { stream_ref, origin: Bytes::from(origin), epoch, ..Default::default() };
            let _ = inbound.decode(&Body::StreamDecl(decl));
        }
        let ranges: Vec<proto::SeqRange> = refs.iter().map(|&(stream_ref, first, last)| proto::SeqRange { stream_ref, first, last }).collect();
        let _ = inbound.decode(&Body::Ihave(proto::IHave { ranges: ranges.clone(), hops: 0 }));
        let _ = inbound.decode(&Body::Graft(proto::Graft { want: ranges, eager: true }));
        for (stream_ref, seq, _) in refs {
            let _ = inbound.decode(&Body::Data(proto::Data { stream_ref: stream_ref % 4, seq, hops: 0, payload: Bytes::new() }));
        }
    }
}

#[test]
fn a_malformed_manifest_is_a_typed_error() {
    let mut inbound = Inbound::new();
    let decl = proto::StreamDecl {
        stream_ref: 0,
        origin: stream(1).origin.to_bytes(),
        epoch: 1,
        ..Default::default()
    };
    inbound.decode(&Body::StreamDecl(decl)).unwrap();
    let manifest = |first_seq, hashes: usize, signature: usize| {
        Body::Manifest(proto::Manifest {
            stream_ref: 0,
            first_seq,
            hashes: Bytes::from(vec![1u8; hashes]),
            signature: Bytes::from(vec![2u8; signature]),
            groups: Bytes::new(),
        })
    };
    assert!(matches!(inbound.decode(&manifest(1, 64, 64)), Ok(Some(Message::Manifest(_)))));
    assert_eq!(inbound.decode(&manifest(0, 32, 64)), Err(WireError::BadManifest(ManifestError::ZeroFirst)));
    assert_eq!(
        inbound.decode(&manifest(1, 31, 64)),
        Err(WireError::BadManifest(ManifestError::BadHashes(31)))
    );
    assert_eq!(inbound.decode(&manifest(1, 0, 64)), Err(WireError::BadManifest(ManifestError::BadHashes(0))));
    assert_eq!(
        inbound.decode(&manifest(1, 32, 65)),
        Err(WireError::BadManifest(ManifestError::BadSignatureLen(65)))
    );
    let Err(WireError::UndeclaredRef(5)) = inbound.decode(&Body::Manifest(proto::Manifest {
        stream_ref: 5,
        first_seq: 1,
        ..Default::default()
    })) else {
        panic!("an undeclared reference");
    };
}

#[test]
fn an_origin_address_counts_only_with_the_origins_signature() {
    let key = SecretKey::generate();
    let s = StreamId { origin: key.node_id(), epoch: 3 };
    let signer = Ed25519Signer::new(key);
    let signed = |text: &str| {
        let signature = dotray_router::proof::Signer::sign(&*signer, &stream_decl_message(s, text));
        OriginAddr { addr: text.to_owned(), signature: Bytes::copy_from_slice(&signature) }
    };
    assert!(verify_origin_addr(s, &signed("127.0.0.1:9")));
    assert!(verify_origin_addr(s, &OriginAddr::default()), "no address at all is no claim");
    let rebound = OriginAddr { addr: "127.0.0.1:10".into(), ..signed("127.0.0.1:9") };
    assert!(!verify_origin_addr(s, &rebound), "a relay cannot rebind it");
    assert!(
        !verify_origin_addr(StreamId { epoch: 4, ..s }, &signed("127.0.0.1:9")),
        "nor move it to another epoch"
    );
    assert!(!verify_origin_addr(s, &OriginAddr { addr: "127.0.0.1:9".into(), signature: Bytes::new() }));
}

#[test]
fn a_malformed_beacon_is_a_typed_error() {
    let mut inbound = Inbound::new();
    let good = proto::Beacon {
        origin: Bytes::from(vec![3u8; 32]),
        epoch: 7,
        round: 1,
        hops: 1,
        tree: true,
        signature: Bytes::from(vec![1u8; 64]),
        publisher: false,
    };
    assert!(matches!(inbound.decode(&Body::Beacon(good.clone())), Ok(Some(Message::Beacon(_)))));
    let cases = [
        (proto::Beacon { origin: Bytes::from(vec![3u8; 31]), ..good.clone() }, WireError::BadNodeId(31)),
        (proto::Beacon { signature: Bytes::from(vec![1u8; 63]), ..good.clone() }, WireError::BadBeacon),
        (proto::Beacon { round: 0, ..good.clone() }, WireError::BadBeacon),
        (proto::Beacon { hops: 0, ..good.clone() }, WireError::BadBeacon),
    ];
    for (body, err) in cases {
        assert_eq!(inbound.decode(&Body::Beacon(body)), Err(err));
    }
}
