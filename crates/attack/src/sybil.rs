//! One hostile identity: a fresh key pair, a transport of its own bound on the attackers' address, and
//! a connection to one honest node over the real protocol (Noise handshake, `Hello`, sealed frames).
//!
//! It answers pings (so the honest node keeps it as a live neighbour) and nothing else: it relays no
//! broadcast, answers no router message, forwards no walk. Everything it sends goes through
//! [`Sybil::send`] or [`Sybil::send_frame`], so the attacks read as a list of messages.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, NodeId, OutFrame, SecretKey, proto};
use dotray_membership::{Message, NodeInfo};
use dotray_router::core::StreamId;
use dotray_router::proof::{Ed25519Signer, Manifest, payload_hash};
use dotray_transport::{Config, Events, PeerSender, Transport, TransportEvent};

use crate::Result;

/// The address every attacker identity listens on: honest nodes run on 127.0.0.1, so anything an
/// honest node says about 127.0.0.66 is the attackers' doing.
pub(crate) const ATTACKER_IP: [u8; 4] = [127, 0, 0, 66];

/// Pause before an attacker the honest node closed joins again under a new identity.
const REJOIN_DELAY: Duration = Duration::from_millis(200);

/// How long to wait for the honest node to answer a query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// One identity connected to one honest node.
pub(crate) struct Sybil {
    transport: Transport,
    events: Events,
    sender: PeerSender,
}

impl Sybil {
    /// A fresh identity, connected to `target`.
    pub(crate) async fn connect(target: SocketAddr) -> Result<Self> {
        let listen = SocketAddr::from((ATTACKER_IP, 0));
        let (transport, events) = Transport::bind(listen, SecretKey::generate(), Config::default())
            .await
            .map_err(|e| format!("binding: {e}"))?;
        let peer = match transport.connect(target).await {
            Ok(peer) => peer,
            Err(error) => {
                transport.shutdown().await;
                return Err(format!("connecting to {target}: {error}").into());
            }
        };
        Ok(Self { transport, events, sender: peer.sender })
    }

    /// A fresh identity that connects to `target` and asks into its active view: with `Join` or, when
    /// `high_priority`, a high-priority `Neighbour` request (both evict an active peer of a full
    /// view). `None` when the target cannot be reached or the request cannot be sent.
    pub(crate) async fn join(target: SocketAddr, high_priority: bool) -> Option<Self> {
        let sybil = Self::connect(target).await.ok()?;
        let message = if high_priority { Message::Neighbour { high_priority: true } } else { Message::Join };
        sybil.send(message).ok()?;
        Some(sybil)
    }

    /// A fresh identity joined to `target` with `Join`, trying again every `REJOIN_DELAY` until one
    /// gets in; `None` once `deadline` has passed.
    pub(crate) async fn join_before(target: SocketAddr, deadline: tokio::time::Instant) -> Option<Self> {
        while tokio::time::Instant::now() < deadline {
            if let Some(sybil) = Self::join(target, false).await {
                return Some(sybil);
            }
            tokio::time::sleep(REJOIN_DELAY).await;
        }
        None
    }

    /// Closes the connection and the transport, then pauses `REJOIN_DELAY` before the attacker's next
    /// identity joins.
    pub(crate) async fn leave(self) {
        self.close().await;
        tokio::time::sleep(REJOIN_DELAY).await;
    }

    /// This identity's node id.
    pub(crate) fn id(&self) -> NodeId {
        self.transport.local_id()
    }

    /// Sends a membership message.
    pub(crate) fn send(&self, message: Message) -> Result<()> {
        let frame = OutFrame::encode(&message.into(), DEFAULT_MAX_FRAME_LEN)?;
        self.send_frame(&frame)
    }

    /// Sends any frame, waiting for room in the queue.
    pub(crate) fn send_frame(&self, frame: &OutFrame<'_>) -> Result<()> {
        Ok(self.sender.try_send(frame)?)
    }

    /// Sends message `seq` of `stream` (whose origin `origin` signs for): its declaration under
    /// `stream_ref` on this connection, a manifest signed by the origin, then the payload.
    pub(crate) fn publish(
        &self,
        origin: &Ed25519Signer,
        (stream, seq): (StreamId, u64),
        payload: Bytes,
        stream_ref: u32,
    ) -> Result<()> {
        let hash = Bytes::copy_from_slice(&payload_hash(&payload));
        let manifest = Manifest::sign(origin, stream, seq, hash);
        let decl = proto::StreamDecl {
            stream_ref,
            origin: stream.origin.to_bytes(),
            epoch: stream.epoch,
            origin_addr: String::new(),
            origin_signature: Bytes::new(),
        };
        let manifest = proto::Manifest {
            stream_ref,
            first_seq: seq,
            hashes: manifest.hashes.clone(),
            signature: Bytes::copy_from_slice(&manifest.signature),
            groups: manifest.groups.clone(),
        };
        let data = proto::Data { stream_ref, seq, hops: 0, payload };
        for envelope in
            [proto::Envelope::from(decl), proto::Envelope::from(manifest), proto::Envelope::from(data)]
        {
            self.send_frame(&OutFrame::encode(&envelope, DEFAULT_MAX_FRAME_LEN)?)?;
        }
        Ok(())
    }

    /// Serves the connection (answering pings) until it closes or `deadline`. Returns true when the
    /// honest node closed it.
    pub(crate) async fn serve_until(&mut self, deadline: tokio::time::Instant) -> bool {
        loop {
            let event = tokio::select! {
                event = self.events.recv() => event,
                () = tokio::time::sleep_until(deadline) => return false,
            };
            match event {
                None | Some(TransportEvent::Disconnected { .. }) => return true,
                Some(TransportEvent::Frames { frames, .. }) => self.answer_pings(frames),
                Some(_) => {}
            }
        }
    }

    /// Serves what has already arrived (answering pings) without waiting. Returns true when the
    /// honest node closed the connection.
    pub(crate) fn serve_pending(&mut self) -> bool {
        self.serve_pending_with(|_| {})
    }

    /// Like [`Sybil::serve_pending`], handing every frame that is not a ping to `other`.
    pub(crate) fn serve_pending_with(&mut self, mut other: impl FnMut(proto::Envelope)) -> bool {
        loop {
            match self.events.try_recv() {
                Ok(TransportEvent::Disconnected { .. }) => return true,
                Ok(TransportEvent::Frames { frames, .. }) => {
                    for frame in frames {
                        self.answer_ping(frame).map(&mut other);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return false,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn answer_pings(&self, frames: Vec<proto::Envelope>) {
        for frame in frames {
            self.answer_ping(frame);
        }
    }

    /// Answers `frame` if it is a ping; gives it back otherwise.
    fn answer_ping(&self, frame: proto::Envelope) -> Option<proto::Envelope> {
        if let Some(proto::envelope::Body::Ping(ping)) = &frame.body {
            let (nonce, sent_at_micros) = (ping.nonce, ping.sent_at_micros);
            let _ = self.send(Message::Pong { nonce, sent_at_micros });
            return None;
        }
        Some(frame)
    }

    /// Asks the honest node what it knows (its active and passive views).
    pub(crate) async fn query(&mut self) -> Result<Vec<NodeInfo>> {
        let request_id = rand::random();
        self.send(Message::NodeQueryRequest { request_id, max: 256 })?;
        let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
        loop {
            let event = tokio::select! {
                event = self.events.recv() => event,
                () = tokio::time::sleep_until(deadline) => return Err("no answer to the query".into()),
            };
            match event {
                None | Some(TransportEvent::Disconnected { .. }) => {
                    return Err("closed before answering".into());
                }
                Some(TransportEvent::Frames { frames, .. }) => {
                    for frame in frames {
                        match Message::try_from(frame) {
                            Ok(Message::NodeQueryResponse { request_id: id, nodes }) if id == request_id => {
                                return Ok(nodes);
                            }
                            Ok(Message::Ping { nonce, sent_at_micros }) => {
                                let _ = self.send(Message::Pong { nonce, sent_at_micros });
                            }
                            _ => {}
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Closes the connection and the transport.
    pub(crate) async fn close(self) {
        self.transport.shutdown().await;
    }
}

/// Whether an address is one the attackers made up or listen on.
pub(crate) fn is_attackers(addr: &SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets() == ATTACKER_IP || ip.octets()[..2] == [127, 66],
        std::net::IpAddr::V6(_) => false,
    }
}
