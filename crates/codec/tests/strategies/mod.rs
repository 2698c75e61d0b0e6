//! proptest strategies that generate every kind of envelope body with arbitrary field values.
//! Shared by the codec's property tests.

use bytes::Bytes;
use dotray_codec::proto::{self, Body, Envelope};
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes_field(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn node_id() -> impl Strategy<Value = Bytes> {
    proptest::array::uniform32(any::<u8>()).prop_map(|a| Bytes::copy_from_slice(&a))
}

fn addr() -> impl Strategy<Value = String> {
    (any::<[u8; 4]>(), any::<u16>())
        .prop_map(|(ip, port)| format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]))
}

fn peer() -> impl Strategy<Value = proto::PeerRecord> {
    (node_id(), addr()).prop_map(|(node_id, addr)| proto::PeerRecord { node_id, addr })
}

fn peers() -> impl Strategy<Value = Vec<proto::PeerRecord>> {
    vec(peer(), 0..8)
}

fn range() -> impl Strategy<Value = proto::SeqRange> {
    (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(stream_ref, first, last)| proto::SeqRange {
        stream_ref,
        first,
        last,
    })
}

fn marks() -> impl Strategy<Value = Vec<proto::Watermark>> {
    vec((any::<u32>(), any::<u64>()).prop_map(|(stream_ref, seq)| proto::Watermark { stream_ref, seq }), 0..8)
}

fn node_info() -> impl Strategy<Value = proto::NodeInfo> {
    (peer(), 0..5i32, any::<u32>(), any::<u64>(), 0..3i32).prop_map(
        |(node, state, rtt_micros, last_seen_ms_ago, direction)| proto::NodeInfo {
            node: Some(node),
            state,
            rtt_micros,
            last_seen_ms_ago,
            direction,
        },
    )
}

/// Any body of any kind.
pub(crate) fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (".{0,20}", any::<u32>(), addr(), any::<u64>()).prop_map(
            |(network_id, protocol_version, listen_addr, nonce)| {
                Body::Hello(proto::Hello { network_id, protocol_version, listen_addr, nonce })
            }
        ),
        bytes_field(96).prop_map(|noise| Body::Handshake(proto::Handshake { noise })),
        (0..11i32, ".{0,40}").prop_map(|(reason, detail)| Body::Goodbye(proto::Goodbye { reason, detail })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(nonce, sent_at_micros)| Body::Ping(proto::Ping { nonce, sent_at_micros })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(nonce, sent_at_micros)| Body::Pong(proto::Pong { nonce, sent_at_micros })),
        Just(Body::Join(proto::Join {})),
        (peer(), any::<u32>())
            .prop_map(|(node, ttl)| Body::ForwardJoin(proto::ForwardJoin { node: Some(node), ttl })),
        any::<bool>().prop_map(|high_priority| Body::Neighbour(proto::Neighbour { high_priority })),
        any::<bool>().prop_map(|accepted| Body::NeighbourReply(proto::NeighbourReply { accepted })),
        (peer(), any::<u32>(), peers(), any::<u64>()).prop_map(|(origin, ttl, peers, exchange_id)| {
            Body::PeerExchangeRequest(proto::PeerExchangeRequest {
                origin: Some(origin),
                ttl,
                peers,
                exchange_id,
            })
        }),
        (peers(), any::<u64>()).prop_map(|(peers, exchange_id)| Body::PeerExchangeResponse(
            proto::PeerExchangeResponse { peers, exchange_id }
        )),
        (any::<u64>(), any::<u32>()).prop_map(|(request_id, max)| Body::NodeQueryRequest(
            proto::NodeQueryRequest { request_id, max }
        )),
        (any::<u64>(), vec(node_info(), 0..6)).prop_map(|(request_id, nodes)| Body::NodeQueryResponse(
            proto::NodeQueryResponse { request_id, nodes }
        )),
        (any::<u32>(), node_id(), any::<u64>(), addr(), bytes_field(64)).prop_map(
            |(stream_ref, origin, epoch, origin_addr, origin_signature)| {
                Body::StreamDecl(proto::StreamDecl {
                    stream_ref,
                    origin,
                    epoch,
                    origin_addr,
                    origin_signature,
                })
            }
        ),
        (any::<u32>(), any::<u64>(), bytes_field(256), bytes_field(64), bytes_field(64)).prop_map(
            |(stream_ref, first_seq, hashes, signature, groups)| {
                Body::Manifest(proto::Manifest { stream_ref, first_seq, hashes, signature, groups })
            }
        ),
        (any::<u32>(), any::<u64>(), any::<u32>(), bytes_field(2048)).prop_map(
            |(stream_ref, seq, hops, payload)| { Body::Data(proto::Data { stream_ref, seq, hops, payload }) }
        ),
        marks().prop_map(|marks| Body::Ack(proto::Ack { marks })),
        (vec(range(), 0..8), any::<u32>())
            .prop_map(|(ranges, hops)| Body::Ihave(proto::IHave { ranges, hops })),
        (vec(range(), 0..8), any::<bool>())
            .prop_map(|(want, eager)| Body::Graft(proto::Graft { want, eager })),
        Just(Body::Prune(proto::Prune {})),
        (bytes_field(40), any::<u64>(), any::<u64>(), any::<u32>(), any::<(bool, bool)>(), bytes_field(80))
            .prop_map(|(origin, epoch, round, hops, (tree, publisher), signature)| {
                Body::Beacon(proto::Beacon { origin, epoch, round, hops, tree, signature, publisher })
            }),
        marks().prop_map(|marks| Body::Sync(proto::Sync { marks })),
        bytes_field(2048).prop_map(|payload| Body::Direct(proto::Direct { payload })),
    ]
}

/// Any envelope (always with a body).
pub(crate) fn envelope() -> impl Strategy<Value = Envelope> {
    body().prop_map(Envelope::from)
}
