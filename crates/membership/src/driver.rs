//! The tokio driver: a thin loop that runs the sans-IO [`Membership`](crate::core::Membership) core over
//! `dotray-transport`.
//!
//! It does four things and decides nothing:
//!
//! 1. transport events in → `handle_connected` / `handle_disconnected` / `handle_dial_failed` /
//!    `handle_message` (membership frames, decoded and validated by [`crate::wire`]);
//! 2. core actions out → dial, queue a frame on the peer's connection, disconnect, set a timer, or pass
//!    an event up;
//! 3. timers: sleeps until the earliest one and hands due ones back to the core;
//! 4. everything that is not membership's (broadcast and application frames) goes up unchanged, in the
//!    order it arrived, interleaved correctly with `NeighbourUp` / `NeighbourDown`.
//!
//! The layer above receives [`Upward`] items on a bounded channel: when it is slow, this loop waits,
//! and the transport's readers wait behind it (TCP back-pressure), so nothing grows without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dotray_codec::NodeId;
use dotray_codec::proto::{Envelope, Layer};
use dotray_transport::{DisconnectReason as TransportReason, Events, PeerSender, Transport, TransportEvent};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::core::{
    Action, CloseReason, Config, Direction, DisconnectReason, Event, InvalidConfig, Membership, NodeInfo,
    PeerInfo, QueryError,
};
use crate::timers::TimerQueue;

/// What membership hands to the layer above (the router), in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Upward {
    /// `peer` joined this node's active view; frames to it go through `sender`.
    NeighbourUp {
        /// The new neighbour.
        peer: PeerInfo,
        /// Its connection's queue.
        sender: PeerSender,
    },
    /// `peer` left the active view (closed, failed, replaced or left the network).
    NeighbourDown {
        /// The former neighbour.
        peer: NodeId,
    },
    /// A fresh smoothed round-trip time to an active neighbour.
    Rtt {
        /// The neighbour.
        peer: NodeId,
        /// Smoothed round-trip time.
        rtt: Duration,
    },
    /// Frames for the layers above membership (broadcast, application), in arrival order.
    Frames {
        /// The sender.
        peer: NodeId,
        /// The frames, oldest first.
        frames: Vec<Envelope>,
    },
}

/// The membership driver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the membership layer has stopped")]
pub struct Stopped;

/// Asking a peer for its known nodes failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteQueryError {
    /// The query could not be sent.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The peer did not answer in time or closed the connection.
    #[error("the peer did not answer")]
    NoAnswer,
    /// The driver stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

enum Command {
    Nodes(oneshot::Sender<Vec<NodeInfo>>),
    Query(NodeId, oneshot::Sender<Result<Vec<NodeInfo>, RemoteQueryError>>),
    Leave(oneshot::Sender<()>),
}

/// Talks to a running membership driver. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MembershipHandle {
    commands: mpsc::Sender<Command>,
    transport: Transport,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Nodes(_) => "Nodes",
            Command::Query(..) => "Query",
            Command::Leave(_) => "Leave",
        })
    }
}

impl MembershipHandle {
    /// What this node knows: active neighbours first, then passive (backup) addresses.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Nodes(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Asks `peer` over the wire for the nodes it knows (bounded by the peer's own cap).
    pub async fn query(&self, peer: NodeId) -> Result<Vec<NodeInfo>, RemoteQueryError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Query(peer, tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)?
    }

    /// Leaves the network gracefully: every neighbour is told goodbye (`Shutdown`) and replaces this
    /// node at once. Returns when the goodbyes are queued; the driver then stops.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
}

/// Starts the driver for the node behind `transport`. `seeds` are the addresses to join through
/// (none: this is the first node of a network). Upward items arrive on `upward`; cancelling `cancel`
/// stops the loop without a goodbye (use [`MembershipHandle::leave`] for a graceful exit).
pub fn spawn(
    transport: Transport,
    events: Events,
    seeds: Vec<SocketAddr>,
    config: Config,
    upward: mpsc::Sender<Upward>,
    cancel: CancellationToken,
) -> Result<(MembershipHandle, JoinHandle<()>), InvalidConfig> {
    let me = PeerInfo::new(transport.local_id(), transport.local_addr());
    let core = Membership::new(me, seeds, config, StdRng::from_os_rng(), Instant::now())?;
    let (commands_tx, commands) = mpsc::channel(64);
    let span = info_span!("membership", node = ?me.id, addr = %me.addr);
    let driver = Driver {
        core,
        transport: transport.clone(),
        events,
        commands,
        upward,
        cancel,
        timers: TimerQueue::new(),
        senders: HashMap::new(),
        queries: HashMap::new(),
        leaving: None,
    };
    let task = tokio::spawn(driver.run().instrument(span));
    Ok((MembershipHandle { commands: commands_tx, transport }, task))
}

struct Driver {
    core: Membership<StdRng>,
    transport: Transport,
    events: Events,
    commands: mpsc::Receiver<Command>,
    upward: mpsc::Sender<Upward>,
    cancel: CancellationToken,
    timers: TimerQueue<crate::core::Timer>,
    /// The connection of every connected peer (active or transient).
    senders: HashMap<NodeId, PeerSender>,
    /// Remote queries waiting for their answer, by request id.
    queries: HashMap<u64, oneshot::Sender<Result<Vec<NodeInfo>, RemoteQueryError>>>,
    /// Set once `leave` was asked: answered when the goodbyes are queued.
    leaving: Option<oneshot::Sender<()>>,
}

impl Driver {
    async fn run(mut self) {
        // The core's first actions (dial the seeds, start the timers) are already waiting.
        if !self.apply_actions().await {
            return;
        }
        // One cancellation future for the whole loop: building one per turn takes the token's lock.
        let cancelled = self.cancel.clone().cancelled_owned();
        tokio::pin!(cancelled);
        loop {
            let deadline = self.timers.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut cancelled => return,
                event = self.events.recv() => match event {
                    Some(event) => self.on_transport_event(event).await,
                    None => return,
                },
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                _ = sleep => {
                    let now = Instant::now();
                    while let Some(timer) = self.timers.pop_due(now) {
                        self.core.handle_timer(timer, now);
                    }
                }
            }
            if !self.apply_actions().await {
                return;
            }
            if let Some(done) = self.leaving.take() {
                // The goodbyes are queued on every connection; the transport flushes them.
                let _ = done.send(());
                return;
            }
        }
    }

    async fn on_transport_event(&mut self, event: TransportEvent) {
        let now = Instant::now();
        match event {
            TransportEvent::Connected(peer) => {
                let addr = peer.listen_addr.unwrap_or(peer.remote_addr);
                let direction = match peer.direction {
                    dotray_transport::Direction::Inbound => Direction::Inbound,
                    dotray_transport::Direction::Outbound { dialed } => Direction::Outbound { dialed },
                };
                self.senders.insert(peer.id, peer.sender);
                self.core.handle_connected(PeerInfo::new(peer.id, addr), direction, now);
            }
            TransportEvent::Disconnected { peer, reason } => {
                self.senders.remove(&peer);
                self.core.handle_disconnected(peer, disconnect_reason(&reason), now);
            }
            TransportEvent::DialFailed { addr, error } => {
                debug!(%addr, %error, "dial failed");
                self.core.handle_dial_failed(addr, now);
            }
            TransportEvent::HandshakeFailed { remote, error } => {
                debug!(%remote, %error, "inbound handshake failed");
            }
            TransportEvent::Frames { peer, frames } => self.on_frames(peer, frames, now).await,
            _ => {}
        }
    }

    /// Membership frames go to the core; runs of other frames go up, keeping the arrival order relative
    /// to the events the membership frames cause (a `NeighborReply` before a `Data` means the router
    /// learns of the neighbour first).
    async fn on_frames(&mut self, peer: NodeId, frames: Vec<Envelope>, now: Instant) {
        let is_membership = |e: &Envelope| e.kind().map(|k| k.layer()) == Some(Layer::Membership);
        // The common case under load, a batch of data frames only: up as it came, without re-collecting.
        if !frames.iter().any(is_membership) {
            let _ = self.upward.send(Upward::Frames { peer, frames }).await;
            return;
        }
        let mut others = Vec::new();
        for envelope in frames {
            if !is_membership(&envelope) {
                others.push(envelope);
                continue;
            }
            if !others.is_empty() {
                let run = std::mem::take(&mut others);
                if self.upward.send(Upward::Frames { peer, frames: run }).await.is_err() {
                    return;
                }
            }
            match crate::core::Message::try_from(envelope) {
                Ok(message) => self.core.handle_message(peer, message, now),
                Err(error) => {
                    warn!(?peer, %error, "invalid membership message");
                    // Closed and banned with the precise reason; the core's own disconnect below
                    // then counts as the same offence.
                    if let Some(sender) = self.senders.get(&peer) {
                        sender.close_for_violation(&format!("invalid membership message: {error}"));
                    }
                    self.core.handle_protocol_violation(peer, now);
                }
            }
            if !self.apply_actions().await {
                return;
            }
        }
        if !others.is_empty() {
            let _ = self.upward.send(Upward::Frames { peer, frames: others }).await;
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
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
            Command::Leave(done) => {
                self.core.leave(now);
                self.leaving = Some(done);
            }
        }
    }

    /// Carries out everything the core asked for. False when the layer above is gone.
    async fn apply_actions(&mut self) -> bool {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Dial(addr) => self.transport.dial(addr),
                Action::Send { to, message } => {
                    let name = message.name();
                    let Some(sender) = self.senders.get(&to) else {
                        debug!(peer = ?to, message = name, "not connected; dropped");
                        continue;
                    };
                    if let Err(error) = sender.try_send_envelope(&message.into()) {
                        // Membership messages are small and rare: a full queue means the peer is far
                        // behind, and the missed pongs that follow let the core replace it.
                        debug!(peer = ?to, message = name, %error, "not queued");
                    }
                }
                // A peer that broke the protocol is also banned by the transport for a while.
                Action::Disconnect { peer, reason: CloseReason::ProtocolViolation } => {
                    if let Some(sender) = self.senders.get(&peer) {
                        sender.close_for_violation("membership message out of protocol order");
                    }
                }
                Action::Disconnect { peer, reason } => {
                    self.transport.disconnect(&peer, close_goodbye(reason));
                }
                Action::SetTimer { at, timer } => self.timers.push(at, timer),
                Action::Event(event) => {
                    if !self.on_core_event(event).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    async fn on_core_event(&mut self, event: Event) -> bool {
        let upward = match event {
            Event::NeighbourUp(peer) => match self.senders.get(&peer.id) {
                Some(sender) => Upward::NeighbourUp { peer, sender: sender.clone() },
                None => return true,
            },
            Event::NeighbourDown(peer) => Upward::NeighbourDown { peer },
            Event::RttUpdated { peer, rtt } => Upward::Rtt { peer, rtt },
            Event::QueryResponse { request_id, nodes, .. } => {
                if let Some(reply) = self.queries.remove(&request_id) {
                    let _ = reply.send(Ok(nodes));
                }
                return true;
            }
            Event::QueryFailed { request_id, .. } => {
                if let Some(reply) = self.queries.remove(&request_id) {
                    let _ = reply.send(Err(RemoteQueryError::NoAnswer));
                }
                return true;
            }
        };
        self.upward.send(upward).await.is_ok()
    }
}

fn close_goodbye(reason: CloseReason) -> dotray_codec::proto::GoodbyeReason {
    reason.goodbye()
}

/// Maps the transport's detailed reason to what the core needs to know.
fn disconnect_reason(reason: &TransportReason) -> DisconnectReason {
    match reason {
        TransportReason::Local(_) | TransportReason::Shutdown | TransportReason::Replaced => {
            DisconnectReason::Local
        }
        TransportReason::Goodbye { reason, .. } => DisconnectReason::from_goodbye(*reason),
        // Closed without a goodbye (crash, kill), timeouts, violations, socket errors: the peer failed.
        _ => DisconnectReason::Failed,
    }
}
