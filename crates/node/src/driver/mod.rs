//! The tokio driver: one task per node that runs the [`NodeCore`] over `dotray-transport`.
//!
//! It decides nothing. In one loop it
//!
//! 1. takes transport events (connections up and down, failed dials, batches of frames), decodes
//!    each frame with `wire` and hands it to the core;
//! 2. takes the application's broadcasts and queries ([`NodeHandle`]);
//! 3. fires the core's timers;
//! 4. carries out the core's [`Action`](crate::core::Action)s: dials, frames queued on connections (one [`OutFrame`] per
//!    message and hop, queued for every neighbour that gets it), closes, deliveries and events for
//!    the application.
//!
//! No frame passes through any other task between the connection's reader and this one, nor between
//! this one and the connection's writer.
//!
//! ## Back-pressure
//!
//! * **Congestion.** A send refused with `QueueFull` is reported to the core (`handle_congested`),
//!   which demotes that neighbour to lazy: it pulls what it misses, and nobody waits for it. A
//!   neighbour whose queue stays above [`DriverConfig::publish_high_water`] for
//!   [`DriverConfig::congestion_grace`] while another neighbour's queue is drained is treated the same
//!   way.
//! * **Hop by hop.** While some neighbour that is not known to be slow has more than
//!   `publish_high_water` bytes queued, new broadcasts wait *and no frames are taken from the
//!   network*: a relay whose child is behind stops reading from its parent, TCP carries that
//!   upstream, and the publisher slows to what the tree can carry. Memory stays bounded at every hop.
//!   A hold that lasts a whole `congestion_grace` without a break demotes the congested neighbours
//!   even when no other queue drains, so two nodes waiting for each other cannot deadlock. A demoted
//!   neighbour cannot hold the node back again for a while, longer after each demotion
//!   ([`DriverConfig::congestion_backoff_max`]): one that reads just enough to be trusted again and
//!   then stops slows only its own link.
//! * **The application.** Deliveries wait in a queue of [`DriverConfig::delivery_queue_len`]; when
//!   the application falls that far behind, the driver stops taking frames from the network until it
//!   catches up: nothing is dropped. Meanwhile membership's timers wait too (a pong that cannot be
//!   read must not count as missed); the router's keep running.
//!
//! [`OutFrame`]: dotray_codec::OutFrame

mod ack_writer;
mod config;
mod history;
mod run;
mod wire;

pub use config::DriverConfig;
pub use history::ReplayError;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use dotray_codec::InvalidConfig;
use dotray_codec::{NodeId, SecretKey};
use dotray_membership::core::{NodeInfo, PeerInfo, QueryError, Seed};
use dotray_router::core::{Counters, MessageId, StreamId, Topology};
use dotray_router::proof::{Ed25519Signer, Signer};
use dotray_store::{DataDir, History, StoreError};
use dotray_transport::{Events, Transport};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use crate::core::{Config, Event, InvalidNodeConfig, MessageTooLong, NodeCore};
use crate::{Message, PeerAddr};

/// The node's driver has stopped (the node shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped")]
pub struct Stopped;

/// Asking a peer for the nodes it knows failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteQueryError {
    /// The query could not be sent.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The peer did not answer in time or closed the connection.
    #[error("the peer did not answer")]
    NoAnswer,
    /// The node stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Acknowledging a delivery failed (see [`NodeHandle::ack`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The data directory could not be written: the position is not stored, and a restart may
    /// deliver the message again.
    #[error("the acknowledgement could not be stored: {0}")]
    DataDir(String),
    /// The node stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// What the application asks of the driver, besides broadcasts.
enum Command {
    Ack { positions: Vec<(StreamId, u64)>, done: oneshot::Sender<Result<(), AckError>> },
    Nodes(oneshot::Sender<Vec<NodeInfo>>),
    Query(NodeId, oneshot::Sender<Result<Vec<NodeInfo>, RemoteQueryError>>),
    Counters(oneshot::Sender<(Counters, DriverCounters)>),
    Topology(oneshot::Sender<Topology>),
    Leave(oneshot::Sender<()>),
    SeedNames(Vec<(PeerAddr, SocketAddr)>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Ack { .. } => "Ack",
            Command::Nodes(_) => "Nodes",
            Command::Query(..) => "Query",
            Command::Counters(_) => "Counters",
            Command::Topology(_) => "Topology",
            Command::Leave(_) => "Leave",
            Command::SeedNames(_) => "SeedNames",
        })
    }
}

/// Broadcasting failed: nothing was numbered or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The message is longer than the node's `max_message_len`.
    #[error(transparent)]
    TooLong(#[from] MessageTooLong),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// A broadcast, with the sequence number the handle gave its first piece (see
/// [`NodeHandle::broadcast`]).
#[derive(Debug)]
struct Broadcast {
    payload: Bytes,
    seq: u64,
}

/// Talks to a running node driver. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    broadcasts: mpsc::Sender<Broadcast>,
    commands: mpsc::Sender<Command>,
    /// This node's stream, and the sequence number of its next broadcast.
    own: StreamId,
    next_seq: Arc<Mutex<u64>>,
    /// The node core's `max_message_len` and `fragment_len`.
    max_message_len: usize,
    fragment_len: usize,
    /// The history on disk, and the signer that checks what is read from it.
    history: Option<(Arc<History>, Arc<dyn Signer>)>,
}

impl NodeHandle {
    /// Broadcasts `payload` to every node. Waits while the network is saturated (back-pressure);
    /// returns the message's id once it is queued for the driver, which sends queued broadcasts in
    /// order (a broadcast still queued when the node stops is not sent).
    ///
    /// The handle numbers broadcasts itself, in the order they enter the driver's queue (under a
    /// lock, so concurrent callers get numbers in queue order), as the core numbers them: a publisher
    /// keeps up to [`DriverConfig::broadcast_queue_len`] broadcasts in flight instead of waiting for
    /// a round trip to the driver for each id. A message longer than the core's `fragment_len` takes
    /// one number per piece (see [`crate::fragment`]); its id is its first piece's. A message longer
    /// than `max_message_len` is refused here, before it is numbered.
    pub async fn broadcast(&self, payload: Bytes) -> Result<MessageId, BroadcastError> {
        if payload.len() > self.max_message_len {
            return Err(MessageTooLong { len: payload.len(), max: self.max_message_len }.into());
        }
        let slot = self.broadcasts.reserve().await.map_err(|_| Stopped)?;
        let mut next_seq = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        let seq = *next_seq;
        *next_seq += crate::fragment::piece_count(payload.len(), self.fragment_len);
        slot.send(Broadcast { payload, seq });
        Ok(MessageId { stream: self.own, seq })
    }

    /// Acknowledges that the application has processed `stream` through position `through` (a
    /// [`Message`]'s `through`): with a data directory, a restart will not deliver those messages
    /// again. Returns once the position is stored durably. Acknowledgements that arrive together
    /// share one commit. Without a data directory there is nothing to store, and it returns at once.
    pub async fn ack(&self, stream: StreamId, through: u64) -> Result<(), AckError> {
        self.ack_all(vec![(stream, through)]).await
    }

    /// [`NodeHandle::ack`] for several positions at once (of one stream or many): one command, one
    /// commit.
    pub async fn ack_all(&self, positions: Vec<(StreamId, u64)>) -> Result<(), AckError> {
        self.ask(|done| Command::Ack { positions, done }).await?
    }

    /// Reads up to `max_messages` messages of `stream` from this node's history on disk, from the
    /// one numbered `from` on, in order (see [`DriverConfig::history`]). Whatever the history no
    /// longer holds (dropped for age or size) or never stored is skipped: where a message's `seq`
    /// is not the previous one's `through + 1`, messages are missing. Reads on a thread of the
    /// blocking pool; the node goes on meanwhile. Replayed messages have no `origin_addr` and
    /// `hops` 0.
    pub async fn replay(
        &self,
        stream: StreamId,
        from: u64,
        max_messages: usize,
    ) -> Result<Vec<Message>, ReplayError> {
        let Some((history, signer)) = self.history.clone() else { return Err(ReplayError::NoHistory) };
        let max_message_len = self.max_message_len;
        let read = tokio::task::spawn_blocking(move || {
            history::replay(&history, &*signer, stream, from, max_messages, max_message_len)
        });
        match read.await {
            Ok(result) => Ok(result?),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }

    /// What this node knows: active neighbours first, then backup addresses.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, Stopped> {
        self.ask(Command::Nodes).await
    }

    /// Asks `peer` over the wire for the nodes it knows (bounded by the peer's own cap).
    pub async fn query(&self, peer: NodeId) -> Result<Vec<NodeInfo>, RemoteQueryError> {
        self.ask(|reply| Command::Query(peer, reply)).await?
    }

    /// The router core's counters and the driver's.
    pub async fn counters(&self) -> Result<(Counters, DriverCounters), Stopped> {
        self.ask(Command::Counters).await
    }

    /// This node's tree (eager) and lazy links.
    pub async fn topology(&self) -> Result<Topology, Stopped> {
        self.ask(Command::Topology).await
    }

    /// Seeds given by host name, with the addresses they resolved to when the node started: when a
    /// dial of such an address fails, the driver looks the name up again and, if it moved, the
    /// node's joins and heals use the new address.
    pub async fn watch_seed_names(&self, names: Vec<(PeerAddr, SocketAddr)>) -> Result<(), Stopped> {
        self.commands.send(Command::SeedNames(names)).await.map_err(|_| Stopped)
    }

    /// Leaves the network gracefully: every peer is told goodbye (`Shutdown`) and replaces this node
    /// at once. Returns when the goodbyes are queued; the driver then stops.
    pub async fn leave(&self) {
        let _ = self.ask(Command::Leave).await;
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(command(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

/// What the application reads from a running node.
#[derive(Debug)]
pub struct NodeOutput {
    /// Broadcast messages, exactly once each, in per-origin order.
    pub deliveries: mpsc::Receiver<Message>,
    /// Neighbour changes, gaps, direct messages.
    pub events: mpsc::Receiver<Event>,
}

/// Starts the driver of the node behind `transport`, joining through `seeds` (none: the first node of
/// a network). `key` is the node's secret key (the one the transport was bound with): the node signs
/// its broadcasts with it. With a data directory `store`, the node continues the stream stored there
/// (same epoch, next number) and stores its position before each signed batch leaves. Cancelling
/// `cancel` stops it without a goodbye (use [`NodeHandle::leave`] for a graceful exit).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    transport: Transport,
    events: Events,
    key: SecretKey,
    seeds: impl IntoIterator<Item = Seed>,
    config: Config,
    driver: DriverConfig,
    store: Option<DataDir>,
    cancel: CancellationToken,
) -> Result<(NodeHandle, NodeOutput, JoinHandle<()>), SpawnError> {
    driver.validate().map_err(InvalidNodeConfig::Driver)?;
    InvalidConfig::check(driver.history.is_none() || store.is_some(), "a history needs a data directory")
        .map_err(InvalidNodeConfig::Driver)?;
    let mut config = config;
    config.router.history = driver.history.is_some();
    let me = PeerInfo::new(transport.local_id(), transport.local_addr());
    let now = Instant::now();
    config.check_frame_len(transport.max_frame_len())?;
    let mut core = NodeCore::new(
        me,
        seeds,
        config,
        Ed25519Signer::new(key),
        StdRng::from_os_rng(),
        now,
        SystemTime::now(),
    )?;
    if let Some(store) = &store
        && let Some(own) = store.own_stream()?
    {
        if own.sealed_through >= dotray_router::core::MAX_SEQ {
            return Err(SpawnError::DataDir(StoreError::Corrupt {
                path: store.file().to_owned(),
                detail: format!(
                    "the own stream's position {} is beyond any sequence number",
                    own.sealed_through
                ),
            }));
        }
        core.continue_stream(own.epoch, own.sealed_through);
        // Its newest batches, back into retention for neighbours that missed them.
        let stream = core.own_stream();
        for (first, bytes) in store.own_batches()? {
            let (proof, payloads) = crate::stored_batch::decode(stream, first, &bytes)
                .map_err(|detail| StoreError::Corrupt { path: store.file().to_owned(), detail })?;
            core.restore_own_batch(proof, payloads, now);
        }
    }
    if let Some(store) = &store {
        // The streams it receives: taken up after what the application acknowledged.
        for position in store.delivered(core.router().config().max_forgotten_streams)? {
            let stream = StreamId { origin: position.origin, epoch: position.epoch };
            core.resume_stream(stream, position.through, now);
        }
    }
    let (broadcasts_tx, broadcasts) = mpsc::channel(driver.broadcast_queue_len);
    let (commands_tx, commands) = mpsc::channel(driver.command_queue_len);
    let (deliveries_tx, deliveries) = mpsc::channel(driver.delivery_queue_len);
    let (events_tx, app_events) = mpsc::channel(driver.event_queue_len);
    let handle = NodeHandle {
        broadcasts: broadcasts_tx,
        commands: commands_tx,
        own: core.own_stream(),
        next_seq: Arc::new(Mutex::new(core.next_seq())),
        max_message_len: core.max_message_len(),
        fragment_len: core.fragment_len(),
        history: None,
    };
    let history = match (&store, driver.history) {
        (Some(store), Some(limits)) => {
            let history = Arc::new(store.open_history(limits)?);
            let writer = history::HistoryIo::start(
                history,
                driver.history_commit_interval,
                driver.history_queue_bytes,
            )
            .map_err(|source| StoreError::Io { path: "dotray-history thread".into(), source })?;
            Some(writer)
        }
        _ => None,
    };
    let handle = NodeHandle {
        history: history.as_ref().map(|h| (h.history().clone(), core.router().signer().clone())),
        ..handle
    };
    let store = store.map(Arc::new);
    let keep = core.router().config().max_forgotten_streams;
    let acks = store
        .as_ref()
        .map(|store| ack_writer::spawn(store.clone(), keep, driver.ack_commit_interval))
        .transpose()
        .map_err(|source| StoreError::Io { path: "dotray-acks thread".into(), source })?;
    let span = info_span!("node", id = ?me.id, addr = %me.addr);
    let io = run::Io {
        transport,
        events,
        broadcasts,
        commands,
        deliveries: deliveries_tx,
        app_events: events_tx,
        cancel,
        acks,
        store,
        history,
        started: Default::default(),
    };
    let state = run::Driver::new(core, io, driver);
    let task = tokio::spawn(state.run().instrument(span));
    Ok((handle, NodeOutput { deliveries, events: app_events }, task))
}

/// Why [`spawn`] could not start a node.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A configuration value is out of range or inconsistent.
    #[error(transparent)]
    Config(#[from] InvalidNodeConfig),
    /// The data directory could not be read, or holds a position no stream can continue from.
    #[error(transparent)]
    DataDir(#[from] StoreError),
}

/// What the driver's own bookkeeping counted, next to the router core's [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Messages handed to the application (a large message counts once).
    pub messages_delivered: u64,
    /// Deliveries dropped because the application had closed its receiver.
    pub deliveries_dropped: u64,
    /// Events dropped because the application did not read them.
    pub events_dropped: u64,
    /// Direct messages dropped: over their sender's byte budget
    /// (`dotray_node::core::Config::direct_bytes_per_sec`), or because the event queue was three
    /// quarters full (the rest is kept for neighbour and gap events).
    pub directs_dropped: u64,
    /// Sends refused by a full connection queue.
    pub sends_refused: u64,
    /// Connections closed for protocol violations.
    pub violations: u64,
    /// Delivered messages not stored in the history: its writer was `history_queue_bytes` behind.
    pub history_dropped: u64,
}
