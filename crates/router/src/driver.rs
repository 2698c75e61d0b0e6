//! The tokio driver: a thin loop that runs the sans-IO [`Router`] core over the membership layer.
//!
//! Inputs: membership's [`Upward`] stream (neighbours up and down, round-trip times, broadcast and
//! application frames), commands from [`RouterHandle`] (broadcast, counters, topology), and the core's
//! timers. Outputs: frames queued on the neighbours' connections, deliveries and events for the
//! application.
//!
//! What it adds to the core, and nothing else:
//!
//! * **Wire encoding.** One [`Outbound`] table for the node and one [`Inbound`] per connection turn
//!   the core's messages into frames and back; a `Data` frame is encoded once per hop and the same bytes
//!   are queued for every eager neighbour (the core emits those sends back to back).
//! * **Congestion.** A send refused with `QueueFull` is reported to the core (`handle_congested`), which
//!   demotes that neighbour to lazy: it pulls what it misses, and nobody waits for it. A neighbour whose
//!   queue stays above [`DriverConfig::publish_high_water`] for [`DriverConfig::congestion_grace`] is
//!   treated the same way.
//! * **Hop-by-hop back-pressure.** While some neighbour that is not known to be slow has more than
//!   `publish_high_water` bytes queued, new broadcasts wait *and no frames are taken from the
//!   network*: a relay whose child is behind stops reading from its parent, TCP carries that upstream,
//!   and the publisher slows to what the tree can carry. Memory stays bounded at every hop. (Measured
//!   with `cargo xtask bench`, 16 nodes, 200 x 256 KiB: with publishers alone held back, relays filled
//!   their children's 8 MiB queues, found them full and demoted them — 2,044 refused sends, RMR 0.56,
//!   amplification 1.56, 198 MB/s; with relays held back too: none refused, RMR 0, 1.0001, 937 MB/s.)
//!   A hold that lasts a whole `congestion_grace` without a break demotes the congested neighbours
//!   even when no other queue drains, so two nodes waiting for each other cannot deadlock.
//! * **Application back-pressure.** Deliveries wait in a queue of
//!   [`DriverConfig::delivery_queue_len`]; when the application falls that far behind, the driver
//!   stops taking frames from the network until it catches up: nothing is dropped. The back-pressure
//!   reaches the neighbours through TCP, and a neighbour whose queue to this node stays full while its
//!   others drain demotes it (see *Congestion*): a slow application slows its own node, which then
//!   pulls what it misses at its own pace, not the network. (An earlier version dropped deliveries
//!   beyond the queue and said so; under load, `cargo xtask bench` showed that turning into lost
//!   messages at CPU-starved nodes.)

use foldhash::{HashMap, HashMapExt};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::proto::{Body, Envelope, GoodbyeReason, Layer};
use dotray_codec::{CodecError, DataFrame, FrameEncoder, NodeId, SPLIT_PAYLOAD_MIN, SplitFrame};
use dotray_membership::driver::Upward;
use dotray_membership::timers::TimerQueue;
use dotray_transport::{PeerSender, SendError};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::core::{
    Action, Config, ConfigError, Counters, Event, Message, MessageId, Router, StreamId, Timer, Topology,
};
use crate::wire::{Inbound, Outbound};

/// Settings of the driver (the protocol's are in [`Config`]).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Deliveries waiting for the application. When it is full the node stops taking frames from the
    /// network until the application reads (back-pressure; nothing is dropped). Default 8,192: at
    /// 1 KiB per message, 8 MiB, enough for an application that pauses briefly not to slow its node.
    pub delivery_queue_len: usize,
    /// Events waiting for the application (neighbours, gaps, direct messages). Default 1,024.
    pub event_queue_len: usize,
    /// Broadcasts (and other commands) waiting for the driver; a publisher awaits beyond it.
    /// Default 2: a publisher never waits for a round trip to the driver (the next broadcast is
    /// queued while the driver sends the previous one), and little waits in front of the driver.
    /// Measured with `cargo xtask bench`, 32 nodes all publishing 256 B (4 alternating runs each):
    /// with 2, median goodput 247 MB/s, p99 latency 130 ms, peak RSS 106 MB; with 4, 242 MB/s,
    /// 223 ms, 123 MB — what waits in this queue only adds latency once the tree is saturated.
    pub command_queue_len: usize,
    /// A neighbour with more bytes than this queued holds this node back — no new broadcasts and no
    /// frames taken from the network (hop-by-hop back-pressure) — until it drains or is found slow.
    /// The connection's writer wakes the node as soon as a write brings the queue back to this mark,
    /// so it only needs to cover the writer's next write, not a polling period. Default 64 KiB: what
    /// waits here is latency (and, at every hop, payloads held for repair until the next hop has them),
    /// so the mark is as low as keeps the writer busy. Measured with `cargo xtask bench` (3 alternating
    /// runs each): 32 nodes, 10,000 × 1 KiB: with 1 MiB, p99 latency 125–301 ms, goodput 738–905 MB/s,
    /// peak RSS 126–168 MB; with 64 KiB, 19–24 ms, 825–1,063 MB/s, 82–86 MB. 16 nodes, 200 × 256 KiB
    /// (a frame is four times the mark, so the queue holds one frame at a time): no loss, 1,779–2,043
    /// against 1,520–2,172 MB/s. (With the earlier 1 ms polling instead of the wake-up, 64 KiB gave
    /// 705–812 against 732–942 MB/s at 1 MiB: the link idled between polls.)
    pub publish_high_water: usize,
    /// How long a neighbour may stay above `publish_high_water` before it is demoted to lazy and
    /// stops holding the publisher back. Default 1 s: a node starved of CPU for a moment is not a slow
    /// node (at 200 ms, `cargo xtask bench` on a busy 2-core machine saw several demotions per run,
    /// each costing its subtree a graft delay of latency and the tree some churn).
    pub congestion_grace: Duration,
    /// How often stream bookkeeping (origin addresses, wire references of streams the core no longer
    /// tracks) is cleaned. Default 10 s.
    pub cleanup_interval: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            delivery_queue_len: 8_192,
            event_queue_len: 1_024,
            command_queue_len: 2,
            publish_high_water: 64 * 1024,
            congestion_grace: Duration::from_millis(1000),
            cleanup_interval: Duration::from_secs(10),
        }
    }
}

/// A broadcast message delivered to this node's application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Which message: origin node, its epoch, and the sequence number in that origin's stream.
    pub id: MessageId,
    /// The origin's listen address, as it declared it.
    pub origin_addr: Option<SocketAddr>,
    /// Hops the delivered copy travelled (1 when it came straight from the origin).
    pub hops: u32,
    /// The application bytes.
    pub payload: Bytes,
}

/// Something the application may want to know besides deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterEvent {
    /// A new neighbour (an active link of the overlay).
    NeighbourUp {
        /// Its node id.
        peer: NodeId,
        /// Its listen address.
        addr: SocketAddr,
    },
    /// A neighbour is gone.
    NeighbourDown {
        /// Its node id.
        peer: NodeId,
    },
    /// Messages `first..=last` of `stream` can no longer be obtained and will never be delivered.
    Gap {
        /// The stream.
        stream: StreamId,
        /// First missing sequence number.
        first: u64,
        /// Last missing sequence number.
        last: u64,
    },
    /// A direct (non-broadcast) message from a connected node.
    Direct {
        /// The sender.
        from: NodeId,
        /// The application bytes.
        payload: Bytes,
    },
}

/// The router driver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the router has stopped")]
pub struct Stopped;

/// What the driver's own bookkeeping counted, next to the core's [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Deliveries dropped because the application had closed its receiver.
    pub deliveries_dropped: u64,
    /// Events dropped because the application did not read them.
    pub events_dropped: u64,
    /// Sends refused by a full connection queue.
    pub sends_refused: u64,
    /// Connections closed for protocol violations.
    pub violations: u64,
}

enum Command {
    /// A payload to broadcast, with the sequence number the handle gave it (see `RouterHandle`).
    Broadcast(Bytes, u64),
    Counters(oneshot::Sender<(Counters, DriverCounters)>),
    Topology(oneshot::Sender<Topology>),
}

/// Talks to a running router driver. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RouterHandle {
    commands: mpsc::Sender<Command>,
    /// This node's stream, and the sequence number of its next broadcast (see `broadcast`).
    own: StreamId,
    next_seq: Arc<Mutex<u64>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Broadcast(..) => "Broadcast",
            Command::Counters(_) => "Counters",
            Command::Topology(_) => "Topology",
        })
    }
}

impl RouterHandle {
    /// Broadcasts `payload` to every node. Waits while the network is saturated (back-pressure);
    /// returns the message's id once the message is queued for the router, which sends queued
    /// broadcasts in order (a message queued when the node stops is not sent).
    ///
    /// The id is known without asking the router: messages are numbered in the order they enter its
    /// queue, so the handle numbers them as it queues them (under a lock, so that concurrent callers
    /// get the numbers in queue order). A publisher thus keeps up to
    /// [`DriverConfig::command_queue_len`] broadcasts in flight instead of one: waiting for the router
    /// to hand back each id made every broadcast a round trip between the two tasks (with 32
    /// publishers in `cargo xtask bench`, that round trip, not CPU, set each publisher's rate).
    pub async fn broadcast(&self, payload: Bytes) -> Result<MessageId, Stopped> {
        let slot = self.commands.reserve().await.map_err(|_| Stopped)?;
        let mut next_seq = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        let seq = *next_seq;
        *next_seq += 1;
        slot.send(Command::Broadcast(payload, seq));
        Ok(MessageId { stream: self.own, seq })
    }

    /// The core's counters and the driver's.
    pub async fn counters(&self) -> Result<(Counters, DriverCounters), Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Counters(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// This node's tree (eager) and lazy links.
    pub async fn topology(&self) -> Result<Topology, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Topology(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

/// What the application reads: deliveries and events.
#[derive(Debug)]
pub struct RouterOutput {
    /// Broadcast messages, exactly once each, in per-origin order.
    pub deliveries: mpsc::Receiver<Received>,
    /// Neighbour changes, gaps, lag, direct messages.
    pub events: mpsc::Receiver<RouterEvent>,
}

/// Starts the router for node `me` (listening on `my_addr`) on membership's `upward` stream.
pub fn spawn(
    me: NodeId,
    my_addr: SocketAddr,
    upward: mpsc::Receiver<Upward>,
    config: Config,
    driver: DriverConfig,
    cancel: CancellationToken,
) -> Result<(RouterHandle, RouterOutput, JoinHandle<()>), ConfigError> {
    let epoch = rand::random();
    let core = Router::try_new(me, epoch, config, StdRng::from_os_rng(), Instant::now())?;
    let (commands_tx, commands) = mpsc::channel(driver.command_queue_len);
    let (deliveries_tx, deliveries) = mpsc::channel(driver.delivery_queue_len);
    let (events_tx, events) = mpsc::channel(driver.event_queue_len);
    let mut stream_addrs = HashMap::new();
    stream_addrs.insert(core.own_stream(), my_addr);
    let span = info_span!("router", node = ?me, epoch);
    let next_cleanup = Instant::now() + driver.cleanup_interval;
    let state = Driver {
        core,
        upward,
        commands,
        deliveries: deliveries_tx,
        events: events_tx,
        cancel,
        timers: TimerQueue::new(),
        peers: HashMap::new(),
        outbound: Outbound::new(),
        encoder: FrameEncoder::new(dotray_codec::DEFAULT_MAX_FRAME_LEN),
        last_data: None,
        stream_addrs,
        pending: VecDeque::new(),
        counters: DriverCounters::default(),
        next_cleanup,
        config: driver,
        now: Instant::now(),
        held_since: None,
    };
    let handle = RouterHandle {
        commands: commands_tx,
        own: state.core.own_stream(),
        next_seq: Arc::new(Mutex::new(state.core.next_seq())),
    };
    let task = tokio::spawn(state.run().instrument(span));
    Ok((handle, RouterOutput { deliveries, events }, task))
}

/// A neighbour's connection and what the driver tracks about it.
struct PeerLink {
    sender: PeerSender,
    inbound: Inbound,
    /// Since when its queue has been above the publish high-water mark.
    full_since: Option<Instant>,
    /// Demoted for congestion: it no longer holds the publisher back until its queue drains.
    slow: bool,
    /// When a payload (`Data`) was last queued for it.
    last_payload: Option<Instant>,
}

struct Driver {
    core: Router<StdRng>,
    upward: mpsc::Receiver<Upward>,
    commands: mpsc::Receiver<Command>,
    deliveries: mpsc::Sender<Received>,
    events: mpsc::Sender<RouterEvent>,
    cancel: CancellationToken,
    timers: TimerQueue<Timer>,
    peers: HashMap<NodeId, PeerLink>,
    outbound: Outbound,
    encoder: FrameEncoder,
    /// The last `Data` frame encoded, to reuse for the next eager neighbour: ((stream, seq, hops), frame).
    last_data: Option<((StreamId, u64, u32), SplitFrame)>,
    /// Origin listen address of each stream, from `StreamDecl`s (and our own).
    stream_addrs: HashMap<StreamId, SocketAddr>,
    /// Deliveries that found the application's queue full, oldest first. While any wait here, no
    /// frames are taken from the network.
    pending: VecDeque<Received>,
    counters: DriverCounters,
    next_cleanup: Instant,
    config: DriverConfig,
    /// Since when the driver has been holding back without a break (no broadcasts, no frames taken).
    held_since: Option<Instant>,
    /// The time, read once per turn of the loop (a clock read per queued payload showed in profiles).
    now: Instant,
}

/// Waits for room in the application's queue. (An owned permit: a borrowed one would keep the queue
/// borrowed through every branch of the driver's `select!`; the clone is made only when polled.)
async fn reserve(
    deliveries: &mpsc::Sender<Received>,
) -> Result<mpsc::OwnedPermit<Received>, mpsc::error::SendError<()>> {
    deliveries.clone().reserve_owned().await
}

/// Queues `frame`; true when the queue was full (congestion).
fn queue_frame(sender: &PeerSender, frame: impl Into<SplitFrame>) -> bool {
    is_congestion(sender.try_send(frame))
}

/// True when a send found the queue full. A closing connection is not congestion: membership reports
/// `NeighbourDown` shortly.
fn is_congestion(sent: Result<(), SendError>) -> bool {
    matches!(sent, Err(SendError::QueueFull))
}

/// Encodes one body; a `Data` body with a large payload shares the payload instead of copying it
/// (see [`SplitFrame`]).
fn encode_body(encoder: &mut FrameEncoder, body: Body) -> Result<SplitFrame, CodecError> {
    match body {
        Body::Data(data) => encoder.encode_data(data),
        other => encoder.encode(&Envelope::from(other)).map(SplitFrame::from),
    }
}

/// A message ready for one neighbour: a small `Data` to write straight into its queue, a frame already
/// encoded for another neighbour, or a body to encode.
enum Encoded<'a> {
    /// A payload below [`SPLIT_PAYLOAD_MIN`]: copied once, into the connection's queue
    /// ([`PeerSender::try_send_data`]), which is cheaper than encoding it once and copying the frame
    /// into each eager neighbour's queue.
    SmallData {
        stream_ref: u32,
        seq: u64,
        hops: u32,
        payload: &'a [u8],
    },
    Frame(SplitFrame),
    Body(Body),
}

/// How often a held-back driver re-checks the neighbours' queues even if none drains, so that one
/// that stays full is demoted after [`DriverConfig::congestion_grace`]. (Going on once a queue drains
/// needs no polling: the connection's writer wakes the driver, see [`PeerSender::queue_drained`].)
const HELD_BACK_RECHECK: Duration = Duration::from_millis(10);

impl Driver {
    async fn run(mut self) {
        self.apply_actions();
        // One cancellation future for the whole loop: building one per turn takes the token's lock.
        let cancelled = self.cancel.clone().cancelled_owned();
        tokio::pin!(cancelled);
        loop {
            let waiting_on = self.hold_back();
            let held_back = waiting_on.is_some();
            let high = self.config.publish_high_water;
            let app_behind = !self.pending.is_empty();
            let deadline =
                self.timers.next_deadline().map_or(self.next_cleanup, |t| t.min(self.next_cleanup));
            tokio::select! {
                _ = &mut cancelled => return,
                up = self.upward.recv(), if !app_behind && !held_back => match up {
                    Some(up) => self.on_upward(up),
                    None => return,
                },
                command = self.commands.recv(), if !held_back => match command {
                    Some(command) => {
                        self.on_command(command);
                        // The rest of what is queued, in the same turn (at most a queue's worth):
                        // a publisher keeps several broadcasts queued.
                        for _ in 1..self.config.command_queue_len {
                            let Ok(command) = self.commands.try_recv() else { break };
                            self.on_command(command);
                        }
                    }
                    None => return,
                },
                _ = async { if let Some(s) = &waiting_on { s.queue_drained(high).await } }, if held_back => {}
                _ = tokio::time::sleep(HELD_BACK_RECHECK), if held_back => {}
                permit = reserve(&self.deliveries), if app_behind => match permit {
                    Ok(permit) => {
                        if let Some(received) = self.pending.pop_front() {
                            permit.send(received);
                        }
                        self.flush_pending();
                    }
                    Err(_) => {
                        self.counters.deliveries_dropped += self.pending.len() as u64;
                        self.pending.clear();
                    }
                },
                _ = tokio::time::sleep_until(deadline.into()) => self.on_deadline(),
            }
            self.now = Instant::now();
            self.apply_actions();
        }
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        while let Some(timer) = self.timers.pop_due(now) {
            self.core.handle_timer(timer, now);
        }
        if now >= self.next_cleanup {
            self.cleanup();
            self.next_cleanup = now + self.config.cleanup_interval;
        }
    }

    fn on_upward(&mut self, up: Upward) {
        let now = Instant::now();
        match up {
            Upward::NeighbourUp { peer, sender } => {
                self.outbound.peer_down(&peer.id);
                self.peers.insert(
                    peer.id,
                    PeerLink {
                        sender,
                        inbound: Inbound::new(),
                        full_since: None,
                        slow: false,
                        last_payload: None,
                    },
                );
                self.core.handle_neighbour_up(peer.id, now);
                self.emit(RouterEvent::NeighbourUp { peer: peer.id, addr: peer.addr });
            }
            Upward::NeighbourDown { peer } => {
                self.peers.remove(&peer);
                self.outbound.peer_down(&peer);
                self.core.handle_neighbour_down(peer, now);
                self.emit(RouterEvent::NeighbourDown { peer });
            }
            Upward::Rtt { peer, rtt } => self.core.handle_rtt(peer, rtt),
            Upward::Frames { peer, frames } => {
                for envelope in frames {
                    self.on_frame(peer, envelope, now);
                }
            }
            _ => {}
        }
    }

    fn on_frame(&mut self, peer: NodeId, envelope: Envelope, now: Instant) {
        let Some(body) = envelope.body else { return };
        let layer = dotray_codec::proto::BodyKind::of(&body).layer();
        if let Body::Direct(direct) = body {
            self.emit(RouterEvent::Direct { from: peer, payload: direct.payload });
            return;
        }
        if layer != Layer::Broadcast {
            return;
        }
        // Frames from a node that is not (or no longer) a neighbour carry no tree state: ignore them.
        let Some(link) = self.peers.get_mut(&peer) else { return };
        match link.inbound.decode(&body) {
            Ok(Some(message)) => self.core.handle_message(peer, message, now),
            Ok(None) => {
                if let Body::StreamDecl(decl) = &body
                    && let Ok((stream, addr)) = link.inbound.lookup(decl.stream_ref)
                    && let Ok(addr) = addr.parse()
                {
                    self.stream_addrs.insert(stream, addr);
                }
            }
            Err(error) => self.violation(peer, &error.to_string()),
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Broadcast(payload, seq) => {
                let id = self.core.broadcast(payload, now);
                debug_assert_eq!(id.seq, seq, "the handle numbers broadcasts as the core does");
            }
            Command::Counters(reply) => {
                let _ = reply.send((*self.core.counters(), self.counters));
            }
            Command::Topology(reply) => {
                let _ = reply.send(self.core.topology());
            }
        }
    }

    /// Whether a neighbour that is not known to be slow has more than the high-water mark queued:
    /// the driver then takes neither broadcasts nor frames (see the module doc). Marks neighbours
    /// that stay above it for the grace period as congested — but only while another neighbour's
    /// queue is drained: a neighbour is slow when it lags behind the others. When every
    /// queue is full, the network as a whole is at capacity (on a loaded machine, every node is
    /// short of CPU alike) and demoting would only churn the tree (measured with `cargo xtask bench`:
    /// each demotion cost its subtree a graft delay and thousands of repair duplicates).
    ///
    /// Returns the connection of one neighbour the driver waits for (any one will do: when it drains,
    /// the driver checks again), or `None` when it is not held back.
    fn hold_back(&mut self) -> Option<PeerSender> {
        let now = Instant::now();
        let (high, grace) = (self.config.publish_high_water, self.config.congestion_grace);
        let mut waiting_on: Option<PeerSender> = None;
        let mut newly_slow = Vec::new();
        // Only neighbours we pushed payloads to lately compare: a lazy link's queue (digests only) is
        // always drained.
        let someone_drained = self.peers.values().any(|link| {
            !link.slow
                && link.last_payload.is_some_and(|at| now.duration_since(at) < grace)
                && link.sender.queued_bytes() <= high / 4
        });
        for (id, link) in &mut self.peers {
            let queued = link.sender.queued_bytes();
            if queued <= high / 4 {
                link.full_since = None;
                link.slow = false;
                continue;
            }
            if link.slow || queued <= high {
                continue;
            }
            let since = *link.full_since.get_or_insert(now);
            // Held back without a break for the whole grace: the queue may never drain (two nodes
            // each waiting for the other to read), so demote whether or not others drain.
            let stuck = self.held_since.is_some_and(|at| now.duration_since(at) >= grace);
            if now.duration_since(since) >= grace && (someone_drained || stuck) {
                link.slow = true;
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

    /// Carries out everything the core asked for.
    fn apply_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Send { to, message } => self.send(to, &message),
                Action::SetTimer { at, timer } => self.timers.push(at, timer),
                Action::Deliver(delivery) => {
                    let received = Received {
                        origin_addr: self.stream_addrs.get(&delivery.id.stream).copied(),
                        id: delivery.id,
                        hops: delivery.hops,
                        payload: delivery.payload,
                    };
                    self.deliver(received);
                }
                Action::Event(Event::Gap { stream, first, last }) => {
                    self.emit(RouterEvent::Gap { stream, first, last });
                }
                Action::Violation { peer, reason } => self.violation(peer, reason),
            }
        }
    }

    /// Encodes `message` for `to` (declarations first) and queues it; a full queue is congestion.
    fn send(&mut self, to: NodeId, message: &Message) {
        // Field by field, so the neighbour's sender is borrowed rather than cloned per message.
        let Self { peers, outbound, stream_addrs, encoder, last_data, now, .. } = self;
        let Some(link) = peers.get_mut(&to) else { return };
        let mut decls = Vec::new();
        let mut addr_of =
            |stream: &StreamId| stream_addrs.get(stream).map(|a| a.to_string()).unwrap_or_default();
        // A small `Data` is written into the neighbour's queue as it is encoded. A larger one just
        // encoded for another eager peer is sent as it is: only the declaration is per peer (no body
        // is built, no payload reference taken and dropped).
        let encoded = match (message, &*last_data) {
            (Message::Data { stream, seq, hops, payload }, _) if payload.len() < SPLIT_PAYLOAD_MIN => {
                let small = |stream_ref| Encoded::SmallData { stream_ref, seq: *seq, hops: *hops, payload };
                outbound.declare(to, *stream, &mut addr_of, &mut decls).map(small)
            }
            (Message::Data { stream, seq, hops, .. }, Some((key, frame)))
                if *key == (*stream, *seq, *hops) =>
            {
                let frame = frame.clone();
                outbound.declare(to, *stream, &mut addr_of, &mut decls).map(|_| Encoded::Frame(frame))
            }
            _ => outbound.encode(to, message, &mut addr_of, &mut decls).map(Encoded::Body),
        };
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(error) => {
                warn!(peer = ?to, %error, "cannot encode for this connection; reconnecting it");
                link.sender.close(GoodbyeReason::Unspecified);
                return;
            }
        };
        let mut refused = false;
        for decl in decls {
            if let Ok(frame) = encoder.encode(&Envelope::from(decl)) {
                refused |= queue_frame(&link.sender, frame);
            }
        }
        let sent = match encoded {
            Encoded::SmallData { stream_ref, seq, hops, payload } => {
                DataFrame::new(stream_ref, seq, hops, payload, encoder.max_frame_len())
                    .map(|frame| link.sender.try_send_data(&frame))
            }
            Encoded::Frame(frame) => Ok(link.sender.try_send(frame)),
            Encoded::Body(body) => encode_body(encoder, body).map(|frame| {
                if let Message::Data { stream, seq, hops, .. } = message {
                    *last_data = Some(((*stream, *seq, *hops), frame.clone()));
                }
                link.sender.try_send(frame)
            }),
        };
        let sent = match sent {
            Ok(sent) => sent,
            Err(error) => {
                warn!(%error, "message too large to encode; dropped");
                return;
            }
        };
        if matches!(message, Message::Data { .. }) {
            link.last_payload = Some(*now);
        }
        refused |= is_congestion(sent);
        if refused {
            link.slow = true;
            self.counters.sends_refused += 1;
            self.core.handle_congested(to, Instant::now());
        }
    }

    fn deliver(&mut self, received: Received) {
        if !self.pending.is_empty() {
            self.pending.push_back(received);
            return;
        }
        match self.deliveries.try_send(received) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(received)) => self.pending.push_back(received),
            Err(mpsc::error::TrySendError::Closed(_)) => self.counters.deliveries_dropped += 1,
        }
    }

    /// Moves waiting deliveries into the application's queue while it has room.
    fn flush_pending(&mut self) {
        while let Some(received) = self.pending.pop_front() {
            if let Err(error) = self.deliveries.try_send(received) {
                if let mpsc::error::TrySendError::Full(received) = error {
                    self.pending.push_front(received);
                } else {
                    self.counters.deliveries_dropped += 1;
                }
                return;
            }
        }
    }

    fn emit(&mut self, event: RouterEvent) {
        if self.events.try_send(event).is_err() {
            self.counters.events_dropped += 1;
        }
    }

    fn violation(&mut self, peer: NodeId, reason: &str) {
        warn!(?peer, reason, "protocol violation; closing the connection");
        self.counters.violations += 1;
        if let Some(link) = self.peers.get(&peer) {
            link.sender.close_for_violation(reason); // Goodbye(ProtocolViolation), and a ban.
        }
    }

    /// Forgets origin addresses and wire references of streams that neither the core nor any
    /// connection's table still knows.
    fn cleanup(&mut self) {
        let own = self.core.own_stream();
        let stale: Vec<StreamId> = self
            .outbound
            .streams()
            .filter(|s| **s != own && self.core.watermark(s).is_none())
            .copied()
            .collect();
        for stream in &stale {
            self.outbound.forget_stream(stream);
        }
        let core = &self.core;
        self.stream_addrs.retain(|stream, _| *stream == own || core.watermark(stream).is_some());
    }
}
