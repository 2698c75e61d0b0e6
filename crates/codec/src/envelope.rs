//! Conveniences on the generated [`Envelope`]: `From` each body type, and [`BodyKind`] to name and route
//! a body without matching on its contents.

use crate::generated::envelope::Body;
use crate::generated::*;

/// Which kind of body an envelope carries, and which layer owns it. Cheap to copy, handy for logs,
/// counters and dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyKind {
    /// [`Hello`] (transport).
    Hello,
    /// [`Goodbye`] (transport).
    Goodbye,
    /// [`Handshake`] (transport): one Noise handshake message.
    Handshake,
    /// [`Ping`] (membership).
    Ping,
    /// [`Pong`] (membership).
    Pong,
    /// [`Join`] (membership).
    Join,
    /// [`ForwardJoin`] (membership).
    ForwardJoin,
    /// [`Neighbour`] (membership).
    Neighbour,
    /// [`NeighbourReply`] (membership).
    NeighbourReply,
    /// [`PeerExchangeRequest`] (membership).
    PeerExchangeRequest,
    /// [`PeerExchangeResponse`] (membership).
    PeerExchangeResponse,
    /// [`NodeQueryRequest`] (membership).
    NodeQueryRequest,
    /// [`NodeQueryResponse`] (membership).
    NodeQueryResponse,
    /// [`StreamDecl`] (broadcast).
    StreamDecl,
    /// [`Data`] (broadcast).
    Data,
    /// [`Ack`] (broadcast).
    Ack,
    /// [`IHave`] (broadcast).
    IHave,
    /// [`Graft`] (broadcast).
    Graft,
    /// [`Prune`] (broadcast).
    Prune,
    /// [`Sync`] (broadcast).
    Sync,
    /// [`Manifest`] (broadcast).
    Manifest,
    /// [`Beacon`] (broadcast).
    Beacon,
    /// [`Direct`] (application).
    Direct,
}

/// The layer that owns a body kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Handshake and goodbye: handled by the transport itself.
    Transport,
    /// Views, liveness, peer exchange, node query.
    Membership,
    /// Broadcast dissemination and repair.
    Broadcast,
    /// Direct application messages.
    Application,
}

impl BodyKind {
    /// The kind of `body`.
    pub fn of(body: &Body) -> Self {
        match body {
            Body::Hello(_) => Self::Hello,
            Body::Goodbye(_) => Self::Goodbye,
            Body::Handshake(_) => Self::Handshake,
            Body::Ping(_) => Self::Ping,
            Body::Pong(_) => Self::Pong,
            Body::Join(_) => Self::Join,
            Body::ForwardJoin(_) => Self::ForwardJoin,
            Body::Neighbour(_) => Self::Neighbour,
            Body::NeighbourReply(_) => Self::NeighbourReply,
            Body::PeerExchangeRequest(_) => Self::PeerExchangeRequest,
            Body::PeerExchangeResponse(_) => Self::PeerExchangeResponse,
            Body::NodeQueryRequest(_) => Self::NodeQueryRequest,
            Body::NodeQueryResponse(_) => Self::NodeQueryResponse,
            Body::StreamDecl(_) => Self::StreamDecl,
            Body::Data(_) => Self::Data,
            Body::Ack(_) => Self::Ack,
            Body::Ihave(_) => Self::IHave,
            Body::Graft(_) => Self::Graft,
            Body::Prune(_) => Self::Prune,
            Body::Sync(_) => Self::Sync,
            Body::Manifest(_) => Self::Manifest,
            Body::Beacon(_) => Self::Beacon,
            Body::Direct(_) => Self::Direct,
        }
    }

    /// A short lowercase name, for logs and errors ("data", "ihave", "peer-exchange-request", ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Goodbye => "goodbye",
            Self::Handshake => "handshake",
            Self::Ping => "ping",
            Self::Pong => "pong",
            Self::Join => "join",
            Self::ForwardJoin => "forward-join",
            Self::Neighbour => "neighbour",
            Self::NeighbourReply => "neighbour-reply",
            Self::PeerExchangeRequest => "peer-exchange-request",
            Self::PeerExchangeResponse => "peer-exchange-response",
            Self::NodeQueryRequest => "node-query-request",
            Self::NodeQueryResponse => "node-query-response",
            Self::StreamDecl => "stream-decl",
            Self::Data => "data",
            Self::Ack => "ack",
            Self::IHave => "ihave",
            Self::Graft => "graft",
            Self::Prune => "prune",
            Self::Sync => "sync",
            Self::Manifest => "manifest",
            Self::Beacon => "beacon",
            Self::Direct => "direct",
        }
    }

    /// The layer that handles this kind.
    pub fn layer(self) -> Layer {
        match self {
            Self::Hello | Self::Goodbye | Self::Handshake => Layer::Transport,
            Self::Ping
            | Self::Pong
            | Self::Join
            | Self::ForwardJoin
            | Self::Neighbour
            | Self::NeighbourReply
            | Self::PeerExchangeRequest
            | Self::PeerExchangeResponse
            | Self::NodeQueryRequest
            | Self::NodeQueryResponse => Layer::Membership,
            Self::StreamDecl
            | Self::Data
            | Self::Ack
            | Self::IHave
            | Self::Graft
            | Self::Prune
            | Self::Sync
            | Self::Manifest
            | Self::Beacon => Layer::Broadcast,
            Self::Direct => Layer::Application,
        }
    }
}

impl Envelope {
    /// The kind of this envelope's body, or `None` if it has none.
    pub fn kind(&self) -> Option<BodyKind> {
        self.body.as_ref().map(BodyKind::of)
    }
}

impl From<Body> for Envelope {
    fn from(body: Body) -> Self {
        Envelope { body: Some(body) }
    }
}

/// `impl From<$ty> for Envelope` for each body type.
macro_rules! envelope_from {
    ($($ty:ident => $variant:ident),* $(,)?) => {$(
        impl From<$ty> for Envelope {
            fn from(msg: $ty) -> Self {
                Envelope { body: Some(Body::$variant(msg)) }
            }
        }
    )*};
}

envelope_from! {
    Hello => Hello,
    Goodbye => Goodbye,
    Handshake => Handshake,
    Ping => Ping,
    Pong => Pong,
    Join => Join,
    ForwardJoin => ForwardJoin,
    Neighbour => Neighbour,
    NeighbourReply => NeighbourReply,
    PeerExchangeRequest => PeerExchangeRequest,
    PeerExchangeResponse => PeerExchangeResponse,
    NodeQueryRequest => NodeQueryRequest,
    NodeQueryResponse => NodeQueryResponse,
    StreamDecl => StreamDecl,
    Data => Data,
    Ack => Ack,
    IHave => Ihave,
    Graft => Graft,
    Prune => Prune,
    Sync => Sync,
    Manifest => Manifest,
    Beacon => Beacon,
    Direct => Direct,
}
