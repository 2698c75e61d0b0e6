//! The driver's loop (see the [module docs](super) for what it does and why).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_codec::proto::GoodbyeReason;
use dotray_membership::core::{CloseReason, LinkEnd, PeerInfo};
use dotray_membership::wire::{goodbye_reason, link_end};
use dotray_router::core::StreamId;
use dotray_router::proof::{Manifest, stream_decl_message};
use dotray_router::wire::Inbound;
use dotray_store::{DataDir, OwnStream};
use dotray_transport::{
    DialError, DisconnectReason, Events, HandshakeError, PeerSender, SendError, Transport, TransportEvent,
};
use foldhash::{HashMap, HashMapExt};
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::DriverCounters;
use super::ack_writer::AckWriter;
use super::history::{Archived, HistoryIo};
use super::wire::{Decoded, Wire};
use super::{AckError, Broadcast, Command, DriverConfig, RemoteQueryError};
use crate::Message;
use crate::core::{Action, Event, NodeCore, PeerMessage, QueryAnswer, Refusal, Timer};
use crate::fragment;
use crate::stored_batch;
use crate::timers::TimerQueue;
use crate::{PeerAddr, ResolveError};

/// What the driver talks to: the transport below, the application above, and its stop signal.
pub(super) struct Io {
    pub(super) transport: Transport,
    pub(super) events: Events,
    pub(super) broadcasts: mpsc::Receiver<Broadcast>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) deliveries: mpsc::Sender<Message>,
    pub(super) app_events: mpsc::Sender<Event>,
    pub(super) cancel: CancellationToken,
    /// The data directory, if the node keeps its stream across restarts.
    pub(super) store: Option<std::sync::Arc<DataDir>>,
    /// The acknowledgement writer of that data directory ([`super::ack_writer`]).
    pub(super) acks: Option<AckWriter>,
    /// The history's writer and reads, if the node keeps one ([`super::history`]).
    pub(super) history: Option<HistoryIo>,
    /// With a data directory: the streams this run has delivered from, whose starting point is
    /// stored (see `Driver::note_stream_start`). At most `max_forgotten_streams`, then started over.
    pub(super) started: std::collections::HashSet<StreamId>,
}

/// A connection to a peer (a neighbour or a transient one) and what the driver tracks about it.
struct Link {
    sender: PeerSender,
    /// Stream references the peer declared on this connection.
    inbound: Inbound,
    /// An active neighbour (between the core's `NeighbourUp` and `NeighbourDown`): only neighbours
    /// hold the node back when their queue fills, not a connection that carries a join or a query.
    neighbour: bool,
    /// Since when its queue has been above the publish high-water mark.
    full_since: Option<Instant>,
    /// Demoted for congestion: it no longer holds the node back until its queue drains.
    slow: bool,
    /// Demotions in a row, and until when the latest keeps it from holding the node back even once
    /// drained (see `DriverConfig::congestion_backoff_max`).
    demotions: u32,
    exempt_until: Option<Instant>,
    /// When a payload (`Data`) was last queued for it.
    last_payload: Option<Instant>,
}

pub(super) struct Driver {
    core: NodeCore<StdRng>,
    io: Io,
    config: DriverConfig,
    /// Membership's timers wait while the driver reads no frames; the router's never do.
    membership_timers: TimerQueue<Timer>,
    router_timers: TimerQueue<Timer>,
    links: HashMap<NodeId, Link>,
    wire: Wire,
    /// Deliveries that found the application's queue full, oldest first. While any wait here, no
    /// frames are taken from the network.
    pending: VecDeque<Message>,
    /// Remote queries waiting for their answer, by request id.
    queries: HashMap<u64, oneshot::Sender<Result<Vec<dotray_membership::core::NodeInfo>, RemoteQueryError>>>,
    /// Set once `leave` was asked: answered when the goodbyes are queued.
    leaving: Option<oneshot::Sender<()>>,
    /// Set when the data directory could not be written: the driver stops without carrying out
    /// another action (the sends of a batch whose position is not stored must not leave).
    store_failed: bool,

    counters: DriverCounters,
    next_cleanup: Instant,
    /// Since when the driver has been holding back without a break (no broadcasts, no frames taken).
    held_since: Option<Instant>,
    /// The time, read once per turn of the loop.
    now: Instant,
    /// Scratch list of peers a send could not reach (reused).
    refused: Vec<NodeId>,
    /// Seeds given by host name, looked up again when a dial of their address fails.
    seed_names: Vec<SeedName>,
    /// Answers of those lookups: (index in `seed_names`, address).
    resolved_tx: mpsc::UnboundedSender<(usize, Result<SocketAddr, ResolveError>)>,
    resolved_rx: mpsc::UnboundedReceiver<(usize, Result<SocketAddr, ResolveError>)>,
    /// The pieces of a large broadcast not handed to the core yet: they go a batch at a time, each
    /// when no neighbour holds the node back, so a large message flows at the pace of the tree
    /// instead of flooding the connections' queues. No other broadcast is taken meanwhile.
    outgoing: VecDeque<Bytes>,
}

/// A seed given by host name, and the address it resolved to last.
struct SeedName {
    name: PeerAddr,
    addr: SocketAddr,
    /// A lookup is under way.
    resolving: bool,
}

/// The refusal a failed dial reports, if the node there refused this one for a reason that
/// retrying will not cure.
fn refusal_of(error: &DialError) -> Option<Refusal> {
    let DialError::Handshake(error) = error else { return None };
    Some(match error {
        HandshakeError::NetworkMismatch { .. } => Refusal::Network,
        HandshakeError::VersionUnsupported { .. } => Refusal::Version,
        HandshakeError::Noise(_) => Refusal::NetworkKey,
        HandshakeError::Refused { reason, .. } => match reason {
            GoodbyeReason::NetworkMismatch => Refusal::Network,
            GoodbyeReason::VersionUnsupported => Refusal::Version,
            GoodbyeReason::Banned => Refusal::Banned,
            _ => return None,
        },
        _ => return None,
    })
}

/// Waits for room in the application's queue. (An owned permit: a borrowed one would keep the queue
/// borrowed through every branch of the driver's `select!`.)
async fn reserve(
    deliveries: &mpsc::Sender<Message>,
) -> Result<mpsc::OwnedPermit<Message>, mpsc::error::SendError<()>> {
    deliveries.clone().reserve_owned().await
}

impl Driver {
    pub(super) fn new(core: NodeCore<StdRng>, io: Io, config: DriverConfig) -> Self {
        let now = Instant::now();
        let own = core.own_stream();
        let own_addr = core.me().addr;
        let own_signature = core.router().signer().sign(&stream_decl_message(own, &own_addr.to_string()));
        // Addresses of the streams tracked, and as many again of streams declared and not tracked
        // (yet, or any more) until the next cleanup.
        let max_origin_addrs = 2 * core.router().config().max_streams;
        let wire = Wire::new((own, own_addr, own_signature), max_origin_addrs, io.transport.max_frame_len());
        // Unbounded, but holds at most one answer per seed name: one lookup per name at a time.
        let (resolved_tx, resolved_rx) = mpsc::unbounded_channel();
        Self {
            core,
            io,
            next_cleanup: now + config.cleanup_interval,
            config,
            membership_timers: TimerQueue::new(),
            router_timers: TimerQueue::new(),
            links: HashMap::new(),
            wire,
            pending: VecDeque::new(),
            queries: HashMap::new(),
            leaving: None,
            store_failed: false,

            counters: DriverCounters::default(),
            held_since: None,
            now,
            refused: Vec::new(),
            seed_names: Vec::new(),
            resolved_tx,
            resolved_rx,
            outgoing: VecDeque::new(),
        }
    }

    pub(super) async fn run(mut self) {
        // The core's first actions (dial the seeds, arm the timers) are already waiting.
        self.apply_actions();
        if self.store_failed {
            return;
        }
        // One cancellation future for the whole loop: building one per turn takes the token's lock.
        let cancelled = self.io.cancel.clone().cancelled_owned();
        tokio::pin!(cancelled);
        // One timer for the whole loop, moved only when the next deadline changes: a new `Sleep` per
        // turn would register and cancel an entry in the runtime's timer wheel on every turn.
        let timer = tokio::time::sleep_until(self.next_cleanup.into());
        tokio::pin!(timer);
        loop {
            let waiting_on = self.hold_back();
            let held_back = waiting_on.is_some();
            let app_behind = !self.pending.is_empty();
            let reading = !held_back && !app_behind;
            let high = self.config.publish_high_water;
            let recheck = self.config.held_back_recheck;
            let mut deadline = self.router_timers.next_deadline().unwrap_or(self.next_cleanup);
            deadline = deadline.min(self.next_cleanup);
            if reading && let Some(at) = self.membership_timers.next_deadline() {
                deadline = deadline.min(at);
            }
            if timer.deadline() != deadline.into() {
                timer.as_mut().reset(deadline.into());
            }
            tokio::select! {
                _ = &mut cancelled => return,
                event = self.io.events.recv(), if reading => match event {
                    Some(event) => self.on_transport_event(event),
                    None => return,
                },
                () = std::future::ready(()), if !held_back && !self.outgoing.is_empty() => self.send_pieces(),
                broadcast = self.io.broadcasts.recv(), if !held_back && self.outgoing.is_empty() => match broadcast {
                    Some(broadcast) => {
                        self.on_broadcast(broadcast);
                        // The rest of what is queued, in the same turn (at most a queue's worth), up
                        // to a large message, which goes at its own pace.
                        for _ in 1..self.config.broadcast_queue_len {
                            if !self.outgoing.is_empty() {
                                break;
                            }
                            let Ok(broadcast) = self.io.broadcasts.try_recv() else { break };
                            self.on_broadcast(broadcast);
                        }
                        // One signature for the burst (group commit): nothing waits for company.
                        self.core.seal_broadcasts(Instant::now());
                    }
                    None => return,
                },
                command = self.io.commands.recv() => match command {
                    Some(command) => {
                        self.on_command(command);
                        // The rest of what is queued, in the same turn: acknowledgements that
                        // arrive together share one commit.
                        for _ in 1..self.config.command_queue_len {
                            let Ok(command) = self.io.commands.try_recv() else { break };
                            self.on_command(command);
                        }
                    }
                    None => return,
                },
                _ = async { if let Some(s) = &waiting_on { s.queue_drained(high).await } }, if held_back => {}
                // In a block: `select!` builds every branch's future on every turn, enabled or not,
                // and a bare `sleep` reads the clock and takes a timer entry when built.
                _ = async { tokio::time::sleep(recheck).await }, if held_back => {}
                permit = reserve(&self.io.deliveries), if app_behind => match permit {
                    Ok(permit) => {
                        if let Some(message) = self.pending.pop_front() {
                            permit.send(message);
                        }
                        self.flush_pending();
                    }
                    Err(_) => {
                        self.counters.deliveries_dropped += self.pending.len() as u64;
                        self.pending.clear();
                    }
                },
                _ = &mut timer => self.on_deadline(reading),
                Some((index, answer)) = self.resolved_rx.recv() => self.on_resolved(index, answer),
                Some((to, runs)) = async { match &mut self.io.history {
                    Some(history) => history.recalled.recv().await,
                    None => std::future::pending().await,
                } } => self.core.handle_recalled(to, runs, Instant::now()),
            }
            self.now = Instant::now();
            self.apply_actions();
            if self.store_failed {
                return;
            }
            if let Some(done) = self.leaving.take() {
                // The goodbyes are queued on every connection; the transport flushes them.
                let _ = done.send(());
                return;
            }
        }
    }

    fn on_deadline(&mut self, reading: bool) {
        let now = Instant::now();
        while let Some(timer) = self.router_timers.pop_due(now) {
            self.core.handle_timer(timer, now);
        }
        if reading {
            while let Some(timer) = self.membership_timers.pop_due(now) {
                self.core.handle_timer(timer, now);
            }
        }
        if now >= self.next_cleanup {
            let router = self.core.router();
            self.wire.cleanup(|stream| router.watermark(stream).is_some());
            self.next_cleanup = now + self.config.cleanup_interval;
        }
    }

    fn on_transport_event(&mut self, event: TransportEvent) {
        let now = Instant::now();
        match event {
            TransportEvent::Connected(peer) => {
                let addr = peer.listen_addr.unwrap_or(peer.remote_addr);
                self.wire.connection_reset(&peer.id);
                let link = Link {
                    sender: peer.sender,
                    inbound: Inbound::new(),
                    neighbour: false,
                    full_since: None,
                    slow: false,
                    demotions: 0,
                    exempt_until: None,
                    last_payload: None,
                };
                self.links.insert(peer.id, link);
                self.core.handle_connected(PeerInfo::new(peer.id, addr), peer.dialed, now);
            }
            TransportEvent::Disconnected { peer, reason } => {
                self.links.remove(&peer);
                self.wire.connection_reset(&peer);
                self.core.handle_disconnected(peer, link_end_of(&reason), now);
            }
            TransportEvent::DialFailed { addr, error } => {
                debug!(%addr, %error, "dial failed");
                match refusal_of(&error) {
                    Some(reason) => {
                        warn!(%addr, %reason, "refused by the node there");
                        self.core.handle_dial_refused(addr, reason, now);
                    }
                    None if refused_as_busy(&error) => self.core.handle_dial_busy(addr, now),
                    None => match unexpected_peer(&error) {
                        Some((expected, proven)) => {
                            self.core.handle_dial_unexpected_peer(addr, expected, proven, now)
                        }
                        None => self.core.handle_dial_failed(addr, now),
                    },
                }
                self.resolve_again(addr);
            }
            TransportEvent::HandshakeFailed { remote, error } => {
                debug!(%remote, %error, "inbound handshake failed");
            }
            TransportEvent::Frames { peer, frames } => {
                // One read's frames are one batch: the core may prove a group of payloads at once.
                self.core.begin_batch(now);
                self.on_frames(peer, frames, now);
                self.core.end_batch(now);
            }
            _ => {}
        }
    }

    /// The frames read from `peer` at once, decoded and handed to the core in order.
    fn on_frames(&mut self, peer: NodeId, frames: Vec<dotray_codec::proto::Envelope>, now: Instant) {
        for envelope in frames {
            let Some(link) = self.links.get_mut(&peer) else { return };
            match self.wire.decode(&mut link.inbound, envelope) {
                Decoded::Message(message) => self.core.handle_message(peer, message, now),
                Decoded::Nothing => {}
                Decoded::Invalid(reason) => {
                    warn!(?peer, %reason, "protocol violation; closing the connection");
                    self.counters.violations += 1;
                    link.sender.close_for_violation(&reason);
                    self.core.handle_protocol_violation(peer, now);
                    return;
                }
            }
        }
    }

    /// A broadcast from the application: a short one goes to the core at once; a large one's pieces
    /// wait in `outgoing` and go a batch at a time ([`Driver::send_pieces`]).
    fn on_broadcast(&mut self, broadcast: Broadcast) {
        let mut pieces = fragment::split(&broadcast.payload, self.core.fragment_len());
        if pieces.len() == 1 {
            let id = self.core.broadcast_piece(pieces.swap_remove(0), Instant::now());
            debug_assert_eq!(id.seq, broadcast.seq, "the handle numbers broadcasts as the core does");
            return;
        }
        debug_assert_eq!(
            self.core.next_seq(),
            broadcast.seq,
            "the handle numbers broadcasts as the core does"
        );
        self.outgoing.extend(pieces);
        self.send_pieces();
    }

    /// Hands the core the next pieces of the large broadcast under way, until a batch is signed and
    /// sent (the neighbours' queues then say when to go on) or the message is complete (its last
    /// batch is signed at once).
    fn send_pieces(&mut self) {
        let now = Instant::now();
        while let Some(piece) = self.outgoing.pop_front() {
            self.core.broadcast_piece(piece, now);
            if self.outgoing.is_empty() {
                self.core.seal_message(now);
            } else if self.core.router().unsealed() == 0 {
                break;
            }
        }
    }

    /// A dial of `addr` failed: if a seed's host name gave that address, look the name up again (at
    /// most one lookup per name at a time); [`Driver::on_resolved`] takes the answer.
    fn resolve_again(&mut self, addr: SocketAddr) {
        for (index, seed) in self.seed_names.iter_mut().enumerate() {
            if seed.addr != addr || seed.resolving {
                continue;
            }
            seed.resolving = true;
            let (name, answers) = (seed.name.clone(), self.resolved_tx.clone());
            tokio::spawn(async move {
                let _ = answers.send((index, name.resolve().await));
            });
        }
    }

    /// A seed's host name was looked up again: a new address replaces the old one in the core.
    fn on_resolved(&mut self, index: usize, answer: Result<SocketAddr, ResolveError>) {
        let Some(seed) = self.seed_names.get_mut(index) else { return };
        seed.resolving = false;
        match answer {
            Ok(new) if new != seed.addr => {
                tracing::info!(name = %seed.name, old = %seed.addr, %new, "a seed's name resolves to a new address");
                self.core.replace_seed(seed.addr, new, Instant::now());
                seed.addr = new;
            }
            Ok(_) => {}
            Err(error) => debug!(%error, "a seed's name did not resolve; its last address stays"),
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Ack { positions, done } => match &self.io.acks {
                // The writer answers once they are stored; its thread gone, the node is stopping.
                Some(writer) => {
                    if let Err((_, done)) = writer.send((positions, done)) {
                        let _ = done.send(Err(AckError::Stopped(super::Stopped)));
                    }
                }
                None => {
                    let _ = done.send(Ok(()));
                }
            },
            Command::SeedNames(names) => {
                self.seed_names =
                    names.into_iter().map(|(name, addr)| SeedName { name, addr, resolving: false }).collect();
            }
            Command::Nodes(reply) => {
                let _ = reply.send(self.core.nodes(now));
            }
            Command::Query(peer, reply) => match self.core.query_node(peer, now) {
                Ok(request_id) => {
                    self.queries.insert(request_id, reply);
                }
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                }
            },
            Command::Counters(reply) => {
                let counters = DriverCounters {
                    directs_dropped: self.counters.directs_dropped + self.core.directs_dropped(),
                    ..self.counters
                };
                let _ = reply.send((*self.core.counters(), counters));
            }
            Command::Topology(reply) => {
                let _ = reply.send(self.core.topology());
            }
            Command::Leave(done) => {
                self.core.leave(now);
                self.leaving = Some(done);
            }
        }
    }

    /// Carries out everything the core asked for.
    fn apply_actions(&mut self) {
        while !self.store_failed
            && let Some(action) = self.core.poll_action()
        {
            match action {
                Action::Sealed { stream, through, proof, payloads } => {
                    self.store_sealed(stream, through, &proof, &payloads);
                    for (seq, payload) in (proof.first..).zip(payloads) {
                        self.archive(stream, seq, payload, proof.clone());
                    }
                }
                Action::Archive { stream, seq, payload, proof } => self.archive(stream, seq, payload, proof),
                Action::Recall { to, stream, first, last, max_bytes } => match &self.io.history {
                    Some(history) => history.recall(to, stream, (first, last), max_bytes),
                    None => self.core.handle_recalled(to, Vec::new(), self.now),
                },
                Action::Dial { addr, node } => self.io.transport.dial(addr, node),
                Action::Send { to, message } => self.send(&to, message),
                // Membership answers every violation with this, including the ones the driver found
                // itself while decoding (it has closed that connection already: one offence, one
                // report).
                Action::Disconnect { peer, reason: CloseReason::ProtocolViolation } => {
                    if self.links.get(&peer).is_some_and(|link| !link.sender.is_closed()) {
                        self.violation(peer, "membership message out of protocol order");
                    }
                }
                Action::Disconnect { peer, reason } => {
                    self.io.transport.disconnect(&peer, goodbye_reason(reason));
                }
                Action::Violation { peer, reason } => self.violation(peer, reason),
                Action::SetTimer { at, timer } => match timer {
                    Timer::Membership(_) => self.membership_timers.push(at, timer),
                    Timer::Router(_) => self.router_timers.push(at, timer),
                },
                Action::Deliver(delivery) => {
                    self.counters.messages_delivered += 1;
                    self.note_stream_start(delivery.id.stream, delivery.id.seq);
                    let origin_addr = self.wire.origin_addr(&delivery.id.stream);
                    self.deliver(Message::from_delivery(delivery, origin_addr));
                }
                Action::Event(event) => {
                    let neighbour = match &event {
                        Event::NeighbourUp { peer, .. } => Some((peer, true)),
                        Event::NeighbourDown { peer } => Some((peer, false)),
                        _ => None,
                    };
                    if let Some((peer, up)) = neighbour
                        && let Some(link) = self.links.get_mut(peer)
                    {
                        link.neighbour = up;
                    }
                    self.emit(event);
                }
                Action::QueryAnswered { request_id, answer } => {
                    if let Some(reply) = self.queries.remove(&request_id) {
                        let _ = reply.send(match answer {
                            QueryAnswer::Nodes(nodes) => Ok(nodes),
                            QueryAnswer::NoAnswer => Err(RemoteQueryError::NoAnswer),
                        });
                    }
                }
            }
        }
    }

    /// Stores the own stream's position, with the batch that ends at it, before the batch is sent
    /// (the sends are the actions after this one). The write is synchronous: it takes one durable
    /// commit per signed batch, and the router signs at most one batch per `seal_interval` under
    /// load. If it fails, nothing after it is carried out and the node stops.
    fn store_sealed(&mut self, stream: StreamId, through: u64, proof: &Manifest, payloads: &[Bytes]) {
        let Some(store) = &self.io.store else { return };
        let own = OwnStream { epoch: stream.epoch, sealed_through: through };
        let batch = stored_batch::encode(proof, proof.first, payloads);
        if let Err(error) = store.save_sealed(own, proof.first, &batch, self.config.stored_own_bytes) {
            tracing::error!(%error, "cannot store the own stream's position; stopping the node");
            self.emit(Event::DataDirFailed { error: error.to_string() });
            self.store_failed = true;
        }
    }

    /// With a data directory, stores where this run took up `stream` (just before `seq`, its first
    /// delivery), unless a position is stored already: a restart then takes the stream up from
    /// there too, rather than as a newcomer would (from its last few messages), even if the
    /// application never acknowledges anything of it. Positions only rise, so an acknowledged one
    /// stays.
    fn note_stream_start(&mut self, stream: StreamId, seq: u64) {
        let Some(writer) = &self.io.acks else { return };
        if self.io.started.contains(&stream) {
            return;
        }
        if self.io.started.len() >= self.core.router().config().max_forgotten_streams {
            self.io.started.clear();
        }
        self.io.started.insert(stream);
        // Nobody waits for this one.
        let (done, _) = oneshot::channel();
        let _ = writer.send((vec![(stream, seq - 1)], done));
    }

    /// Hands a delivered (or own, signed) payload to the history's writer, if the node keeps a
    /// history.
    fn archive(&mut self, stream: StreamId, seq: u64, payload: Bytes, proof: std::sync::Arc<Manifest>) {
        let Some(history) = &mut self.io.history else { return };
        match history.archive(stream, seq, payload, proof) {
            Archived::Queued => {}
            Archived::Dropped => self.counters.history_dropped += 1,
            Archived::Failed(error) => self.emit(Event::HistoryFailed { error }),
        }
    }

    /// Encodes `message` once and queues it for every peer in `to`. A broadcast message refused by a
    /// full queue is congestion: that neighbour is demoted to lazy.
    fn send(&mut self, to: &[NodeId], message: PeerMessage) {
        let Self { links, wire, core, counters, refused, now, .. } = self;
        let PeerMessage::Broadcast(message) = message else {
            // Membership and direct messages are small and rare: a full queue means the peer is far
            // behind, and the missed pongs that follow let membership replace it.
            let name = message.name();
            match wire.encode_plain(message) {
                Ok(frame) => {
                    for peer in to {
                        let sent = links.get(peer).map(|link| link.sender.try_send(&frame));
                        if let Some(Err(error)) = sent {
                            debug!(?peer, message = name, %error, "not queued");
                        }
                    }
                }
                Err(error) => warn!(message = name, %error, "cannot encode; dropped"),
            }
            return;
        };
        let is_data = matches!(message, dotray_router::core::Message::Data { .. });
        let mut congested: Vec<NodeId> = Vec::new();
        let encoded = wire.encode_broadcast(to, &message, refused, |peer, frame| {
            let Some(link) = links.get_mut(&peer) else { return false };
            if is_data {
                link.last_payload = Some(*now);
            }
            match link.sender.try_send(frame) {
                Ok(()) => true,
                Err(SendError::QueueFull) => {
                    if congested.last() != Some(&peer) {
                        link.slow = true;
                        congested.push(peer);
                    }
                    false
                }
                Err(_) => false,
            }
        });
        if let Err(error) = encoded {
            warn!(%error, message = message.name(), "message too large to encode; dropped");
        }
        for peer in refused.drain(..) {
            warn!(?peer, "cannot encode for this connection; reconnecting it");
            if let Some(link) = links.get(&peer) {
                link.sender.close(dotray_codec::proto::GoodbyeReason::Unspecified);
            }
        }
        for peer in congested {
            counters.sends_refused += 1;
            core.handle_congested(peer, Instant::now());
        }
    }

    /// Whether a neighbour that is not known to be slow has more than the high-water mark queued:
    /// the driver then takes neither broadcasts nor frames (see the module docs). Marks neighbours
    /// that stay above it for the grace period as congested — but only while another neighbour's
    /// queue is drained: a neighbour is slow when it lags behind the others. When every queue is
    /// full, the network as a whole is at capacity (on a loaded machine every node is short of CPU
    /// alike) and demoting would only churn the tree.
    ///
    /// Returns the connection of one neighbour the driver waits for (any one will do: when it drains,
    /// the driver checks again), or `None` when it is not held back.
    fn hold_back(&mut self) -> Option<PeerSender> {
        // The time read at the end of the last turn: this runs at the top of every turn.
        let now = self.now;
        let (high, grace) = (self.config.publish_high_water, self.config.congestion_grace);
        let mut waiting_on: Option<PeerSender> = None;
        let mut newly_slow = Vec::new();
        // Only links we pushed payloads to lately compare: a lazy link's queue (digests only) is
        // always drained.
        let someone_drained = self.links.values().any(|link| {
            !link.slow
                && link.last_payload.is_some_and(|at| now.duration_since(at) < grace)
                && link.sender.queued_bytes() <= high / 4
        });
        let stuck = self.held_since.is_some_and(|at| now.duration_since(at) >= grace);
        let backoff_max = self.config.congestion_backoff_max;
        for (id, link) in self.links.iter_mut().filter(|(_, link)| link.neighbour) {
            let queued = link.sender.queued_bytes();
            if queued <= high / 4 {
                link.full_since = None;
                link.slow = false;
                continue;
            }
            if link.slow || queued <= high || link.exempt_until.is_some_and(|until| now < until) {
                continue;
            }
            let since = *link.full_since.get_or_insert(now);
            // Held back without a break for the whole grace: the queue may never drain (two nodes
            // each waiting for the other to read), so demote whether or not others drain.
            if now.duration_since(since) >= grace && (someone_drained || stuck) {
                link.slow = true;
                if link.exempt_until.is_some_and(|until| now.duration_since(until) >= backoff_max) {
                    link.demotions = 0;
                }
                let backoff = grace.saturating_mul(1 << link.demotions.min(16)).min(backoff_max);
                link.demotions += 1;
                link.exempt_until = Some(now + backoff);
                newly_slow.push(*id);
            } else if waiting_on.is_none() {
                waiting_on = Some(link.sender.clone());
            }
        }
        for peer in newly_slow {
            debug!(?peer, "neighbour stayed congested; demoting it");
            self.core.handle_congested(peer, now);
        }
        if waiting_on.is_none() {
            self.held_since = None;
        } else if self.held_since.is_none() {
            self.held_since = Some(now);
        }
        waiting_on
    }

    fn deliver(&mut self, message: Message) {
        if !self.pending.is_empty() {
            self.pending.push_back(message);
            return;
        }
        match self.io.deliveries.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(message)) => self.pending.push_back(message),
            Err(mpsc::error::TrySendError::Closed(_)) => self.counters.deliveries_dropped += 1,
        }
    }

    /// Moves waiting deliveries into the application's queue while it has room.
    fn flush_pending(&mut self) {
        while let Some(message) = self.pending.pop_front() {
            if let Err(error) = self.io.deliveries.try_send(message) {
                if let mpsc::error::TrySendError::Full(message) = error {
                    self.pending.push_front(message);
                } else {
                    self.counters.deliveries_dropped += 1;
                }
                return;
            }
        }
    }

    /// Hands an event to the application. Direct messages may take three quarters of the queue: the
    /// rest is kept for the events about the node itself (neighbours, gaps, refusals), so a flood of
    /// direct messages from many senders cannot hide them.
    fn emit(&mut self, event: Event) {
        let room = self.io.app_events.capacity();
        if matches!(event, Event::Direct { .. }) && room <= self.io.app_events.max_capacity() / 4 {
            self.counters.directs_dropped += 1;
            return;
        }
        if self.io.app_events.try_send(event).is_err() {
            self.counters.events_dropped += 1;
        }
    }

    /// Closes the connection of a peer that broke the protocol; the transport bans it for a while.
    fn violation(&mut self, peer: NodeId, reason: &str) {
        warn!(?peer, reason, "protocol violation; closing the connection");
        self.counters.violations += 1;
        if let Some(link) = self.links.get(&peer) {
            link.sender.close_for_violation(reason);
        }
    }
}

/// Whether the node dialed refused us for lack of room (its connection limit): alive, but busy.
fn refused_as_busy(error: &DialError) -> bool {
    matches!(
        error,
        DialError::Handshake(HandshakeError::Refused { reason: GoodbyeReason::TooManyConnections, .. })
    )
}

/// The node id a dial by id expected and the one the node there proved instead, if that is why
/// the dial failed.
fn unexpected_peer(error: &DialError) -> Option<(NodeId, NodeId)> {
    match error {
        DialError::Handshake(HandshakeError::UnexpectedPeer { expected, proven }) => {
            Some((*expected, *proven))
        }
        _ => None,
    }
}

/// How the link ended, as membership needs to know it, from the transport's detailed reason.
fn link_end_of(reason: &DisconnectReason) -> LinkEnd {
    match reason {
        DisconnectReason::Local(_) | DisconnectReason::Shutdown | DisconnectReason::Replaced => {
            LinkEnd::Local
        }
        DisconnectReason::Goodbye { reason, .. } => link_end(*reason),
        // Closed without a goodbye (crash, kill), timeouts, violations, socket errors: the peer failed.
        _ => LinkEnd::Failed,
    }
}
