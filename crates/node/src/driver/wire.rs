//! [`Wire`]: the node's side of the wire protocol — frames to [`PeerMessage`]s and back.
//!
//! Decoding goes through each layer's `wire` module, which validates every field a peer sends
//! (`dotray_membership::wire`, `dotray_router::wire`); a frame that does not validate is the
//! sending peer's protocol violation. Broadcast frames name streams by small per-connection
//! references (`StreamDecl`, see `dotray_router::wire`): the node keeps one [`Inbound`] table per
//! connection and one node-wide [`Outbound`] table, and remembers each origin's declared address,
//! which deliveries carry. A declared address counts only with its origin's signature, checked once
//! per stream and address (a declaration that repeats a verified one costs a comparison); a bad one
//! is the declaring peer's violation.
//!
//! Encoding builds one [`OutFrame`] per message and hop: a payload that goes to several neighbours
//! is encoded once (stream references are node-wide, so its frame is the same for all of them),
//! after the declarations each of them still needs.

use std::net::SocketAddr;

use bytes::Bytes;
use dotray_codec::proto::{self, Body, Envelope, Layer};
use dotray_codec::{CodecError, FrameEncoder, NodeId, OutFrame};
use dotray_router::core::{Message as BroadcastMessage, StreamId};
use dotray_router::proof::Signature;
use dotray_router::wire::{Inbound, OriginAddr, Outbound, verify_origin_addr};
use foldhash::{HashMap, HashMapExt};

use crate::core::PeerMessage;

/// What one received frame turned out to be.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A message for the node core.
    Message(PeerMessage),
    /// Wire bookkeeping only (a stream declaration), or a body this node does not handle here.
    Nothing,
    /// The frame broke the protocol; the reason says how.
    Invalid(String),
}

/// The node-wide encoding state, and what the driver learned from declarations.
#[derive(Debug)]
pub(crate) struct Wire {
    outbound: Outbound,
    encoder: FrameEncoder,
    /// The declared listen address of each stream's origin (and our own), with the origin's
    /// signature over it. Declarations come from any connection, so it is bounded: at most
    /// `max_origin_addrs` entries; beyond it a new origin's address is not learned (it is for
    /// display only) until the next `cleanup` makes room.
    stream_addrs: HashMap<StreamId, SignedAddr>,
    max_origin_addrs: usize,
    own: StreamId,
}

/// An origin's address, as verified (or, for our own stream, as we signed it).
#[derive(Debug, Clone)]
struct SignedAddr {
    addr: SocketAddr,
    /// The address as the origin wrote it (what its signature covers).
    text: String,
    signature: Bytes,
}

impl Wire {
    /// The wire of the node whose stream is `own`, listening on `own_addr`; `own_signature` is its
    /// signature over that pair (`dotray_router::proof::stream_decl_message`). It remembers at most
    /// `max_origin_addrs` origin addresses.
    pub(crate) fn new(
        (own, own_addr, own_signature): (StreamId, SocketAddr, Signature),
        max_origin_addrs: usize,
        max_frame_len: usize,
    ) -> Self {
        let mut stream_addrs = HashMap::new();
        let signed = SignedAddr {
            addr: own_addr,
            text: own_addr.to_string(),
            signature: Bytes::copy_from_slice(&own_signature),
        };
        stream_addrs.insert(own, signed);
        let encoder = FrameEncoder::new(max_frame_len);
        Self { outbound: Outbound::new(), encoder, stream_addrs, max_origin_addrs, own }
    }

    /// A new connection to `peer` (or the end of one): nothing is declared on it.
    pub(crate) fn connection_reset(&mut self, peer: &NodeId) {
        self.outbound.peer_down(peer);
    }

    /// The origin address `stream` declared, if known.
    pub(crate) fn origin_addr(&self, stream: &StreamId) -> Option<SocketAddr> {
        self.stream_addrs.get(stream).map(|s| s.addr)
    }

    /// Turns a frame received on a connection with declaration table `inbound` into a message.
    pub(crate) fn decode(&mut self, inbound: &mut Inbound, envelope: Envelope) -> Decoded {
        let Some(body) = envelope.body else { return Decoded::Nothing };
        match proto::BodyKind::of(&body).layer() {
            Layer::Membership => match dotray_membership::core::Message::try_from(body) {
                Ok(message) => Decoded::Message(PeerMessage::Membership(message)),
                Err(error) => Decoded::Invalid(format!("invalid membership message: {error}")),
            },
            Layer::Broadcast => match inbound.decode(&body) {
                Ok(Some(message)) => Decoded::Message(PeerMessage::Broadcast(message)),
                Ok(None) => match &body {
                    Body::StreamDecl(decl) => self.origin_declared(inbound, decl),
                    _ => Decoded::Nothing,
                },
                Err(error) => Decoded::Invalid(format!("invalid broadcast message: {error}")),
            },
            _ => match body {
                // Copied out of the read buffer: a direct message may wait long in the application's
                // queue, and a slice would pin the whole buffer (up to a frame) with it.
                Body::Direct(direct) => {
                    Decoded::Message(PeerMessage::Direct(Bytes::copy_from_slice(&direct.payload)))
                }
                _ => Decoded::Nothing,
            },
        }
    }

    /// A `StreamDecl` was recorded in `inbound`: learn its origin's address if the origin signed it.
    fn origin_declared(&mut self, inbound: &Inbound, decl: &proto::StreamDecl) -> Decoded {
        let Ok((stream, _)) = inbound.lookup(decl.stream_ref) else { return Decoded::Nothing };
        if decl.origin_addr.is_empty() && decl.origin_signature.is_empty() {
            return Decoded::Nothing;
        }
        if let Some(known) = self.stream_addrs.get(&stream)
            && known.text == decl.origin_addr
            && known.signature == decl.origin_signature
        {
            return Decoded::Nothing;
        }
        if self.stream_addrs.len() >= self.max_origin_addrs && !self.stream_addrs.contains_key(&stream) {
            return Decoded::Nothing;
        }
        // Copied out of the read buffer, which a slice would keep alive as long as the entry.
        let signature = Bytes::copy_from_slice(&decl.origin_signature);
        let origin = OriginAddr { addr: decl.origin_addr.clone(), signature };
        if !verify_origin_addr(stream, &origin) {
            return Decoded::Invalid(
                "stream declaration with an origin address its origin did not sign".into(),
            );
        }
        if let Ok(addr) = decl.origin_addr.parse() {
            let signed = SignedAddr { addr, text: origin.addr, signature: origin.signature };
            self.stream_addrs.insert(stream, signed);
        }
        Decoded::Nothing
    }

    /// Encodes a membership or direct message (one frame for every recipient).
    pub(crate) fn encode_plain(&mut self, message: PeerMessage) -> Result<OutFrame<'static>, CodecError> {
        let envelope = match message {
            PeerMessage::Membership(message) => Envelope::from(message),
            PeerMessage::Direct(payload) => Envelope::from(proto::Direct { payload }),
            PeerMessage::Broadcast(_) => unreachable!("broadcast messages go through encode_broadcast"),
        };
        self.encoder.encode(&envelope).map(OutFrame::from)
    }

    /// Encodes a broadcast message for the peers in `to`: calls `emit(peer, frame)` for each
    /// declaration a peer still needs, then for the message itself (one frame shared by every peer).
    /// `emit` returns whether the connection took the frame. A declaration it did not take is
    /// declared again before the next use, and the message is not sent to that peer: a frame naming
    /// a reference its receiver never saw declared is a protocol violation. A peer whose connection
    /// cannot take another stream reference gets nothing and is returned in `refused`.
    pub(crate) fn encode_broadcast(
        &mut self,
        to: &[NodeId],
        message: &BroadcastMessage,
        refused: &mut Vec<NodeId>,
        mut emit: impl FnMut(NodeId, &OutFrame<'_>) -> bool,
    ) -> Result<(), CodecError> {
        let Self { outbound, encoder, stream_addrs, .. } = self;
        let mut addr_of = |stream: &StreamId| {
            stream_addrs
                .get(stream)
                .map(|s| OriginAddr { addr: s.text.clone(), signature: s.signature.clone() })
                .unwrap_or_default()
        };
        let mut decls = Vec::new();
        let mut frame: Option<OutFrame<'_>> = None;
        for &peer in to {
            let body = match message {
                BroadcastMessage::Data { stream, .. } => {
                    outbound.declare(peer, *stream, &mut addr_of, &mut decls).map(|_| None)
                }
                other => outbound.encode(peer, other, &mut addr_of, &mut decls).map(Some),
            };
            let body = match body {
                Ok(body) => body,
                Err(_) => {
                    refused.push(peer);
                    continue;
                }
            };
            let mut declared = true;
            for decl in decls.drain(..) {
                let stream_ref = decl.stream_ref;
                declared =
                    declared && emit(peer, &encoder.encode(&Envelope::from(decl)).map(OutFrame::from)?);
                if !declared {
                    outbound.undeclare(peer, stream_ref);
                }
            }
            if !declared {
                continue;
            }
            let frame = match (&frame, body, message) {
                (Some(frame), _, _) => frame,
                (None, Some(body), _) => {
                    frame.insert(encoder.encode(&Envelope::from(body)).map(OutFrame::from)?)
                }
                (None, None, BroadcastMessage::Data { stream, seq, hops, payload }) => {
                    let stream_ref = outbound.stream_ref(*stream);
                    frame.insert(OutFrame::data(stream_ref, *seq, *hops, payload, encoder.max_frame_len())?)
                }
                (None, None, _) => unreachable!("only Data skips the body"),
            };
            emit(peer, frame);
        }
        Ok(())
    }

    /// Forgets origin addresses and wire references of streams for which `tracked` is false.
    pub(crate) fn cleanup(&mut self, tracked: impl Fn(&StreamId) -> bool) {
        let own = self.own;
        let stale: Vec<StreamId> =
            self.outbound.streams().filter(|s| **s != own && !tracked(s)).copied().collect();
        for stream in &stale {
            self.outbound.forget_stream(stream);
        }
        self.stream_addrs.retain(|stream, _| *stream == own || tracked(stream));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dotray_codec::SecretKey;

    fn wire() -> Wire {
        let own = StreamId { origin: SecretKey::from_bytes([1; 32]).node_id(), epoch: 1 };
        Wire::new((own, "127.0.0.1:1".parse().unwrap(), [0; 64]), 16, 1 << 20)
    }

    fn data(origin: NodeId) -> BroadcastMessage {
        let stream = StreamId { origin, epoch: 7 };
        BroadcastMessage::Data { stream, seq: 1, hops: 0, payload: Bytes::from_static(b"x") }
    }

    /// Sends `message` to `peer`, the connection taking frames while `room` lasts; returns how many
    /// frames were offered.
    fn send(wire: &mut Wire, peer: NodeId, message: &BroadcastMessage, mut room: usize) -> usize {
        let mut offered = 0;
        let mut refused = Vec::new();
        wire.encode_broadcast(&[peer], message, &mut refused, |_, _| {
            offered += 1;
            let took = room > 0;
            room = room.saturating_sub(1);
            took
        })
        .unwrap();
        assert!(refused.is_empty());
        offered
    }

    #[test]
    fn a_declaration_the_connection_refused_is_sent_again_before_the_next_use() {
        let mut wire = wire();
        let peer = SecretKey::from_bytes([2; 32]).node_id();
        let message = data(SecretKey::from_bytes([3; 32]).node_id());
        // The queue is full: the declaration is refused, and the payload is not offered after it.
        assert_eq!(send(&mut wire, peer, &message, 0), 1);
        // Next time the declaration goes first again, then the payload.
        assert_eq!(send(&mut wire, peer, &message, usize::MAX), 2);
        // Once declared, only the payload.
        assert_eq!(send(&mut wire, peer, &message, usize::MAX), 1);
    }
}
