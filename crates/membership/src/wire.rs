//! Conversions between the core's typed [`Message`] and the generated protobuf bodies of
//! `proto/dotray/v1/membership.proto`.
//!
//! Encoding (`From<Message>`) cannot fail. Decoding (`TryFrom<proto::Body>`) validates everything a
//! peer could get wrong or forge: a node id must be exactly 32 bytes, an address must parse as
//! `ip:port`, a required record must be present, an enum must hold a known value, and no list may hold
//! more than [`MAX_LIST_LEN`] entries (the core then cuts lists further to its configured bounds). A
//! failure is a [`WireError`]; the driver then calls
//! [`Membership::handle_protocol_violation`](crate::core::Membership::handle_protocol_violation), which
//! disconnects the peer. Nothing here panics on any input.

use std::net::SocketAddr;
use std::time::Duration;

use dotray_codec::proto::{self, Body, BodyKind};
use dotray_codec::{NODE_ID_LEN, NodeId};

use crate::core::{CloseReason, Direction, LinkEnd, Message, NodeInfo, NodeState, PeerInfo};

pub use crate::core::MAX_LIST_LEN;

/// The goodbye reason sent on the wire when the core closes a connection for `reason`.
pub fn goodbye_reason(reason: CloseReason) -> proto::GoodbyeReason {
    match reason {
        CloseReason::Replaced => proto::GoodbyeReason::Replaced,
        CloseReason::Shutdown => proto::GoodbyeReason::Shutdown,
        CloseReason::ProtocolViolation => proto::GoodbyeReason::ProtocolViolation,
        CloseReason::Timeout => proto::GoodbyeReason::Timeout,
        CloseReason::TooManyConnections => proto::GoodbyeReason::TooManyConnections,
        CloseReason::Done => proto::GoodbyeReason::Unspecified,
    }
}

/// How a link ended that the peer closed with `goodbye`.
pub fn link_end(goodbye: proto::GoodbyeReason) -> LinkEnd {
    match goodbye {
        proto::GoodbyeReason::Shutdown => LinkEnd::PeerLeft,
        proto::GoodbyeReason::Replaced => LinkEnd::PeerReplaced,
        proto::GoodbyeReason::TooManyConnections => LinkEnd::PeerBusy,
        _ => LinkEnd::PeerClosed,
    }
}

/// A membership body that does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body belongs to another layer.
    #[error("not a membership body: {0:?}")]
    NotMembership(BodyKind),
    /// A required field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A node id is not 32 bytes long.
    #[error("node id of {0} bytes, expected {NODE_ID_LEN}")]
    BadNodeId(usize),
    /// An address does not parse as `ip:port`.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// A list is longer than [`MAX_LIST_LEN`].
    #[error("list `{field}` of {len} entries, at most {MAX_LIST_LEN} allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// An enum field holds a value this version does not know.
    #[error("unknown value {value} for `{field}`")]
    BadEnum {
        /// The field.
        field: &'static str,
        /// The value.
        value: i32,
    },
}

// ----- encoding -----

fn record(peer: PeerInfo) -> proto::PeerRecord {
    proto::PeerRecord { node_id: peer.id.to_bytes(), addr: peer.addr.to_string() }
}

fn records(peers: Vec<PeerInfo>) -> Vec<proto::PeerRecord> {
    peers.into_iter().map(record).collect()
}

fn node_info(info: NodeInfo) -> proto::NodeInfo {
    let state = match info.state {
        NodeState::Active => proto::NodeState::Active,
        NodeState::Passive => proto::NodeState::Passive,
        NodeState::Suspect => proto::NodeState::Suspect,
        NodeState::Down => proto::NodeState::Down,
    };
    let direction = match info.direction {
        None => proto::Direction::Unspecified,
        Some(Direction::Inbound) => proto::Direction::Inbound,
        Some(Direction::Outbound) => proto::Direction::Outbound,
    };
    proto::NodeInfo {
        node: Some(record(info.peer)),
        state: state as i32,
        // Saturates at ~71 minutes, far beyond any real round trip; 0 means "not measured".
        rtt_micros: info.rtt.map_or(0, |d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX).max(1)),
        // 0 means "never", so a contact less than a millisecond ago is sent as 1 ms.
        last_seen_ms_ago: info
            .last_seen_ago
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)),
        direction: direction as i32,
    }
}

impl From<Message> for Body {
    fn from(message: Message) -> Self {
        match message {
            Message::Join => Body::Join(proto::Join {}),
            Message::ForwardJoin { node, ttl } => {
                Body::ForwardJoin(proto::ForwardJoin { node: Some(record(node)), ttl })
            }
            Message::Neighbour { high_priority } => Body::Neighbour(proto::Neighbour { high_priority }),
            Message::NeighbourReply { accepted } => Body::NeighbourReply(proto::NeighbourReply { accepted }),
            Message::PeerExchangeRequest { origin, ttl, peers, exchange_id } => {
                Body::PeerExchangeRequest(proto::PeerExchangeRequest {
                    origin: Some(record(origin)),
                    ttl,
                    peers: records(peers),
                    exchange_id,
                })
            }
            Message::PeerExchangeResponse { peers, exchange_id } => {
                Body::PeerExchangeResponse(proto::PeerExchangeResponse { peers: records(peers), exchange_id })
            }
            Message::Ping { nonce, sent_at_micros } => Body::Ping(proto::Ping { nonce, sent_at_micros }),
            Message::Pong { nonce, sent_at_micros } => Body::Pong(proto::Pong { nonce, sent_at_micros }),
            Message::NodeQueryRequest { request_id, max } => {
                Body::NodeQueryRequest(proto::NodeQueryRequest { request_id, max })
            }
            Message::NodeQueryResponse { request_id, nodes } => {
                Body::NodeQueryResponse(proto::NodeQueryResponse {
                    request_id,
                    nodes: nodes.into_iter().map(node_info).collect(),
                })
            }
        }
    }
}

impl From<Message> for proto::Envelope {
    fn from(message: Message) -> Self {
        proto::Envelope::from(Body::from(message))
    }
}

// ----- decoding -----

fn parse_record(record: Option<proto::PeerRecord>, field: &'static str) -> Result<PeerInfo, WireError> {
    let record = record.ok_or(WireError::MissingField(field))?;
    let id = NodeId::from_slice(&record.node_id).ok_or(WireError::BadNodeId(record.node_id.len()))?;
    let addr: SocketAddr = record.addr.parse().map_err(|_| {
        // Keep the error small whatever the peer sent.
        WireError::BadAddress(record.addr.chars().take(64).collect())
    })?;
    Ok(PeerInfo { id, addr })
}

fn check_len(field: &'static str, len: usize) -> Result<(), WireError> {
    if len > MAX_LIST_LEN { Err(WireError::TooLong { field, len }) } else { Ok(()) }
}

fn parse_records(records: Vec<proto::PeerRecord>, field: &'static str) -> Result<Vec<PeerInfo>, WireError> {
    check_len(field, records.len())?;
    records.into_iter().map(|r| parse_record(Some(r), field)).collect()
}

fn parse_node_info(info: proto::NodeInfo) -> Result<NodeInfo, WireError> {
    let peer = parse_record(info.node, "NodeInfo.node")?;
    let state = match proto::NodeState::try_from(info.state) {
        Ok(proto::NodeState::Active) => NodeState::Active,
        Ok(proto::NodeState::Passive) => NodeState::Passive,
        Ok(proto::NodeState::Suspect) => NodeState::Suspect,
        Ok(proto::NodeState::Down) => NodeState::Down,
        Ok(proto::NodeState::Unspecified) | Err(_) => {
            return Err(WireError::BadEnum { field: "NodeInfo.state", value: info.state });
        }
    };
    let direction = match proto::Direction::try_from(info.direction) {
        Ok(proto::Direction::Unspecified) => None,
        Ok(proto::Direction::Inbound) => Some(Direction::Inbound),
        Ok(proto::Direction::Outbound) => Some(Direction::Outbound),
        Err(_) => return Err(WireError::BadEnum { field: "NodeInfo.direction", value: info.direction }),
    };
    Ok(NodeInfo {
        peer,
        state,
        rtt: (info.rtt_micros > 0).then(|| Duration::from_micros(info.rtt_micros.into())),
        last_seen_ago: (info.last_seen_ms_ago > 0).then(|| Duration::from_millis(info.last_seen_ms_ago)),
        direction,
    })
}

impl TryFrom<Body> for Message {
    type Error = WireError;

    fn try_from(body: Body) -> Result<Self, WireError> {
        Ok(match body {
            Body::Join(proto::Join {}) => Message::Join,
            Body::ForwardJoin(m) => {
                Message::ForwardJoin { node: parse_record(m.node, "ForwardJoin.node")?, ttl: m.ttl }
            }
            Body::Neighbour(m) => Message::Neighbour { high_priority: m.high_priority },
            Body::NeighbourReply(m) => Message::NeighbourReply { accepted: m.accepted },
            Body::PeerExchangeRequest(m) => Message::PeerExchangeRequest {
                origin: parse_record(m.origin, "PeerExchangeRequest.origin")?,
                ttl: m.ttl,
                peers: parse_records(m.peers, "PeerExchangeRequest.peers")?,
                exchange_id: m.exchange_id,
            },
            Body::PeerExchangeResponse(m) => Message::PeerExchangeResponse {
                peers: parse_records(m.peers, "PeerExchangeResponse.peers")?,
                exchange_id: m.exchange_id,
            },
            Body::Ping(m) => Message::Ping { nonce: m.nonce, sent_at_micros: m.sent_at_micros },
            Body::Pong(m) => Message::Pong { nonce: m.nonce, sent_at_micros: m.sent_at_micros },
            Body::NodeQueryRequest(m) => Message::NodeQueryRequest { request_id: m.request_id, max: m.max },
            Body::NodeQueryResponse(m) => {
                check_len("NodeQueryResponse.nodes", m.nodes.len())?;
                Message::NodeQueryResponse {
                    request_id: m.request_id,
                    nodes: m.nodes.into_iter().map(parse_node_info).collect::<Result<_, _>>()?,
                }
            }
            other => return Err(WireError::NotMembership(BodyKind::of(&other))),
        })
    }
}

impl TryFrom<proto::Envelope> for Message {
    type Error = WireError;

    fn try_from(envelope: proto::Envelope) -> Result<Self, WireError> {
        Message::try_from(envelope.body.ok_or(WireError::MissingField("Envelope.body"))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> PeerInfo {
        PeerInfo::new(NodeId::from_bytes([i; 32]), SocketAddr::from(([127, 0, 0, 1], 2000 + u16::from(i))))
    }

    #[test]
    fn a_goodbye_means_to_the_peer_what_the_closing_core_meant() {
        use CloseReason::*;
        for reason in [Replaced, Shutdown, ProtocolViolation, Timeout, TooManyConnections, Done] {
            assert_eq!(link_end(goodbye_reason(reason)), reason.seen_by_peer(), "{reason:?}");
        }
    }

    fn round_trip(message: Message) {
        let envelope = proto::Envelope::from(message.clone());
        assert_eq!(Message::try_from(envelope), Ok(message));
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Message::Join);
        round_trip(Message::ForwardJoin { node: peer(1), ttl: 6 });
        round_trip(Message::Neighbour { high_priority: true });
        round_trip(Message::NeighbourReply { accepted: false });
        round_trip(Message::PeerExchangeRequest {
            origin: peer(1),
            ttl: 3,
            peers: vec![peer(2), peer(3)],
            exchange_id: 9,
        });
        round_trip(Message::PeerExchangeResponse { peers: vec![peer(4)], exchange_id: 9 });
        round_trip(Message::Ping { nonce: 1, sent_at_micros: 2 });
        round_trip(Message::Pong { nonce: 1, sent_at_micros: 2 });
        round_trip(Message::NodeQueryRequest { request_id: 5, max: 10 });
        round_trip(Message::NodeQueryResponse {
            request_id: 5,
            nodes: vec![
                NodeInfo {
                    peer: peer(1),
                    state: NodeState::Active,
                    rtt: Some(Duration::from_micros(1500)),
                    last_seen_ago: Some(Duration::from_millis(20)),
                    direction: Some(Direction::Outbound),
                },
                NodeInfo {
                    peer: peer(2),
                    state: NodeState::Down,
                    rtt: None,
                    last_seen_ago: None,
                    direction: None,
                },
            ],
        });
        // IPv6 addresses too.
        let v6 = PeerInfo::new(NodeId::from_bytes([7; 32]), "[::1]:4000".parse().unwrap());
        round_trip(Message::ForwardJoin { node: v6, ttl: 1 });
    }

    #[test]
    fn rejects_bad_ids_addresses_and_missing_records() {
        let bad_id = proto::PeerRecord { node_id: vec![1u8; 15].into(), addr: "127.0.0.1:1".into() };
        let body = Body::ForwardJoin(proto::ForwardJoin { node: Some(bad_id), ttl: 1 });
        assert_eq!(Message::try_from(body), Err(WireError::BadNodeId(15)));

        let bad_addr = proto::PeerRecord { node_id: vec![1u8; 32].into(), addr: "localhost:1".into() };
        let body = Body::ForwardJoin(proto::ForwardJoin { node: Some(bad_addr), ttl: 1 });
        assert!(matches!(Message::try_from(body), Err(WireError::BadAddress(_))));

        let body = Body::ForwardJoin(proto::ForwardJoin { node: None, ttl: 1 });
        assert_eq!(Message::try_from(body), Err(WireError::MissingField("ForwardJoin.node")));

        assert_eq!(
            Message::try_from(proto::Envelope { body: None }),
            Err(WireError::MissingField("Envelope.body"))
        );
        let data = Body::Prune(proto::Prune {});
        assert_eq!(Message::try_from(data), Err(WireError::NotMembership(BodyKind::Prune)));
    }

    #[test]
    fn rejects_overlong_lists_and_unknown_enums() {
        let records = vec![record(peer(1)); MAX_LIST_LEN + 1];
        let body = Body::PeerExchangeResponse(proto::PeerExchangeResponse { peers: records, exchange_id: 1 });
        assert_eq!(
            Message::try_from(body),
            Err(WireError::TooLong { field: "PeerExchangeResponse.peers", len: MAX_LIST_LEN + 1 })
        );
        let info = proto::NodeInfo { node: Some(record(peer(1))), state: 42, ..Default::default() };
        let body = Body::NodeQueryResponse(proto::NodeQueryResponse { request_id: 1, nodes: vec![info] });
        assert_eq!(Message::try_from(body), Err(WireError::BadEnum { field: "NodeInfo.state", value: 42 }));
    }

    mod garbage {
        use super::*;
        use proptest::prelude::*;

        fn any_record() -> impl Strategy<Value = proto::PeerRecord> {
            let id = prop_oneof![
                prop::collection::vec(any::<u8>(), 16),
                prop::collection::vec(any::<u8>(), 0..40),
            ];
            let addr = prop_oneof![
                (any::<[u8; 4]>(), any::<u16>())
                    .prop_map(|(ip, port)| SocketAddr::from((ip, port)).to_string()),
                ".{0,40}",
            ];
            (id, addr).prop_map(|(id, addr)| proto::PeerRecord { node_id: id.into(), addr })
        }

        fn any_body() -> impl Strategy<Value = Body> {
            let records = || prop::collection::vec(any_record(), 0..20);
            let info =
                (prop::option::of(any_record()), any::<i32>(), any::<u32>(), any::<u64>(), any::<i32>())
                    .prop_map(|(node, state, rtt_micros, last_seen_ms_ago, direction)| proto::NodeInfo {
                        node,
                        state,
                        rtt_micros,
                        last_seen_ms_ago,
                        direction,
                    });
            prop_oneof![
                (prop::option::of(any_record()), any::<u32>())
                    .prop_map(|(node, ttl)| Body::ForwardJoin(proto::ForwardJoin { node, ttl })),
                (prop::option::of(any_record()), any::<u32>(), records(), any::<u64>()).prop_map(
                    |(origin, ttl, peers, exchange_id)| Body::PeerExchangeRequest(
                        proto::PeerExchangeRequest { origin, ttl, peers, exchange_id }
                    )
                ),
                (records(), any::<u64>()).prop_map(|(peers, exchange_id)| Body::PeerExchangeResponse(
                    proto::PeerExchangeResponse { peers, exchange_id }
                )),
                (any::<u64>(), prop::collection::vec(info, 0..10)).prop_map(|(request_id, nodes)| {
                    Body::NodeQueryResponse(proto::NodeQueryResponse { request_id, nodes })
                }),
            ]
        }

        proptest! {
            /// Whatever a peer puts in the fields, decoding returns a message or an error, and a
            /// message that decodes encodes back to the same body.
            #[test]
            fn decoding_arbitrary_fields_never_panics_and_accepted_input_round_trips(body in any_body()) {
                if let Ok(message) = Message::try_from(body.clone()) {
                    let again = Message::try_from(Body::from(message.clone()));
                    prop_assert_eq!(again, Ok(message));
                }
            }
        }
    }
}
