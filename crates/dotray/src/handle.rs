//! [`Node`] and [`NodeBuilder`]: one running dotray node — its transport and its node driver
//! (`dotray-node`) — behind one handle.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use dotray_codec::proto::{Direct, Envelope};
use dotray_codec::{NodeId, OutFrame, SecretKey};
use dotray_membership::core::NodeInfo;
use dotray_node::core::Event;
use dotray_node::core::Refusal;
use dotray_node::driver::SpawnError;
use dotray_node::{DriverConfig, DriverCounters, Message, NodeHandle};
use dotray_node::{PeerAddr, SeedAddr};
use dotray_router::core::{Counters, MessageId, StreamId, Topology};
use dotray_store::{DataDir, HistoryLimits};
use dotray_transport::{NetworkKey, Transport};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::key_file;
use crate::metrics::{self, MetricsConfig};
use crate::{NodeError, StartError};

/// Where a node's secret key comes from.
#[derive(Debug, Clone)]
enum Identity {
    /// A fresh key for each start.
    Fresh,
    /// This key.
    Key(Box<SecretKey>),
    /// This key file (created when absent).
    File(PathBuf),
}

/// Builds and starts a [`Node`]. Every setting has a documented default.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let node = dotray::Node::builder()
///     .listen("127.0.0.1:2001")
///     .seed("localhost:2000")
///     .start()
///     .await?;
/// node.broadcast("hello".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    listen: PeerAddr,
    seeds: Vec<SeedAddr>,
    fail_fast: Option<Duration>,
    identity: Identity,
    data_dir: Option<PathBuf>,
    network_key_file: Option<PathBuf>,
    transport: dotray_transport::Config,
    protocol: dotray_node::core::Config,
    driver: DriverConfig,
    metrics: MetricsConfig,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            listen: PeerAddr::Socket(SocketAddr::from(([127, 0, 0, 1], 0))),
            seeds: Vec::new(),
            fail_fast: None,
            identity: Identity::Fresh,
            data_dir: None,
            network_key_file: None,
            transport: Default::default(),
            protocol: Default::default(),
            driver: Default::default(),
            metrics: Default::default(),
        }
    }
}

impl NodeBuilder {
    /// Address to listen on. Default `127.0.0.1:0` (loopback, a free port; read it back with
    /// [`Node::local_addr`]). Use `0.0.0.0:PORT` to accept connections from other hosts.
    ///
    /// Takes a [`SocketAddr`] or `host:port` text (`"localhost:2000"`, `"[::1]:2000"`), resolved when
    /// the node starts; a name that does not resolve makes [`NodeBuilder::start`] fail with
    /// [`StartError::Resolve`].
    pub fn listen(mut self, addr: impl Into<PeerAddr>) -> Self {
        self.listen = addr.into();
        self
    }

    /// Adds a seed: an address of any node already in the network. Default none: this node starts a
    /// new network and waits for others to join it.
    ///
    /// Takes a [`SocketAddr`] or `host:port` text (`"seed.example.org:2000"`). A name is resolved when
    /// the node starts (one that does not resolve then is [`StartError::Resolve`]) and again each
    /// time a dial of its address fails, so a seed whose name moves to another address is found
    /// there.
    pub fn seed(mut self, addr: impl Into<SeedAddr>) -> Self {
        self.seeds.push(addr.into());
        self
    }

    /// Adds a seed whose node id is known: the join counts only if the node at `addr` proves `id`
    /// (an address taken over by another node, or by someone passing for it, is not joined).
    pub fn seed_node(mut self, id: NodeId, addr: impl Into<PeerAddr>) -> Self {
        self.seeds.push(SeedAddr { addr: addr.into(), node: Some(id) });
        self
    }

    /// Adds several seeds: addresses, or [`SeedAddr`]s (`"id@ip:port"` parses into one).
    pub fn seeds(mut self, seeds: impl IntoIterator<Item = impl Into<SeedAddr>>) -> Self {
        self.seeds.extend(seeds.into_iter().map(Into::into));
        self
    }

    /// Name of the network; nodes of other networks are refused. Default `"dotray"`.
    pub fn network_id(mut self, id: impl Into<String>) -> Self {
        self.transport.network_id = id.into();
        self
    }

    /// This node's secret key: its node id is the key's public half, proven in every handshake.
    /// Default: a fresh key for each start, so a restarted node is a new node.
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.identity = Identity::Key(Box::new(key));
        self
    }

    /// Keeps this node's secret key in the file at `path`, so that a restarted node is the same node:
    /// created (mode 0600, 64 hex digits) when absent, loaded when present. [`NodeBuilder::start`]
    /// fails with [`StartError::KeyFile`] if the file is readable by other users or holds anything
    /// but a key.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity = Identity::File(path.into());
        self
    }

    /// Makes the network private: only nodes with this key can complete a handshake with this one
    /// (see [`NetworkKey`]). Default none: an open network, which any key pair may join.
    pub fn network_key(mut self, key: NetworkKey) -> Self {
        self.transport.network_key = Some(key);
        self.network_key_file = None;
        self
    }

    /// [`NodeBuilder::network_key`] from the key file at `path`, created with a fresh key when absent
    /// (copy it to every member), with the same checks as [`NodeBuilder::key_file`].
    pub fn network_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.network_key_file = Some(path.into());
        self
    }

    /// The longest message [`Node::broadcast`] accepts and this node delivers. Default 16 MiB (see
    /// `dotray_node::core::Config::max_message_len` for why); use the same value on every node of a
    /// network. Raises the node's reassembly budget and the router's reorder budget to hold at least
    /// one such message when they are lower.
    pub fn max_message_len(mut self, len: usize) -> Self {
        self.protocol.max_message_len = len;
        self.protocol.max_reassembly_bytes = self.protocol.max_reassembly_bytes.max(len);
        self.protocol.router.reorder_max_bytes = self.protocol.router.reorder_max_bytes.max(len);
        self
    }

    /// Transport limits and timeouts (see [`dotray_transport::Config`]). Keeps the network id and key
    /// set on this builder.
    pub fn transport_config(mut self, config: dotray_transport::Config) -> Self {
        let network_id = std::mem::take(&mut self.transport.network_id);
        let network_key = self.transport.network_key.take();
        self.transport = dotray_transport::Config { network_id, network_key, ..config };
        self
    }

    /// Membership settings (see [`dotray_membership::core::Config`]).
    pub fn membership_config(mut self, config: dotray_membership::core::Config) -> Self {
        self.protocol.membership = config;
        self
    }

    /// Broadcast protocol settings (see [`dotray_router::core::Config`]).
    pub fn router_config(mut self, config: dotray_router::core::Config) -> Self {
        self.protocol.router = config;
        self
    }

    /// Driver settings: queues towards the application, hop-by-hop back-pressure (see
    /// [`DriverConfig`]).
    pub fn driver_config(mut self, config: DriverConfig) -> Self {
        self.driver = config;
        self
    }

    /// How often the node publishes its figures through the `metrics` facade (see [`MetricsConfig`]
    /// and the [`metrics`](crate::metrics) module for the names).
    pub fn metrics_config(mut self, config: MetricsConfig) -> Self {
        self.metrics = config;
        self
    }

    /// Makes [`NodeBuilder::start`] wait, at most `within`, until the node has a neighbour, and fail
    /// with [`StartError::Refused`] if every seed refuses it first (another network id, protocol
    /// version or network key, or a ban: see [`Event::Refused`]). A seed that cannot be reached is
    /// not a refusal: when `within` passes without a neighbour or a refusal from every seed, the
    /// node starts and goes on trying. Default: `start` returns once the listener is bound, and
    /// refusals come only as events. Events seen while waiting are kept for
    /// [`Node::next_event`].
    pub fn fail_if_refused(mut self, within: Duration) -> Self {
        self.fail_fast = Some(within);
        self
    }

    /// Keeps the node's state in the directory `path` (created, readable by its owner only, if
    /// absent), so that a restart continues where the last run stopped:
    ///
    /// * the node keeps its **key pair**, and with it its node id. A key given with
    ///   [`NodeBuilder::secret_key`] or [`NodeBuilder::key_file`] must be the one stored there
    ///   ([`StartError::WrongKey`]); without one, the stored key is used, or a fresh one stored;
    /// * its **own stream continues**: same stream, numbers going on from the last one sent. The
    ///   node stores the position of each signed batch before the batch leaves, so a crash never
    ///   makes it send one number twice with different content. A broadcast numbered but not yet
    ///   signed when the process dies was never sent: its number goes to the next broadcast.
    ///
    /// One process at a time: a directory in use is refused ([`StartError::DataDir`]), as is a
    /// damaged or foreign one. If the directory cannot be written while the node runs, the node
    /// stops and reports [`Event::DataDirFailed`]. Default: none (a new stream on every start).
    pub fn data_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(path.into());
        self
    }

    /// With a data directory ([`NodeBuilder::data_dir`]), also keeps a **history**: every message
    /// the node delivers, and its own, on disk within `limits` (the oldest go first, by age and by
    /// bytes). The node serves neighbours that catch up from it when they ask for more than memory
    /// retains (a node that was away for an hour, say), and [`Node::replay`] reads it. Writes are
    /// grouped into one commit per `DriverConfig::history_commit_interval` on a thread of their own:
    /// delivery never waits for the disk. Without a data directory, `start` refuses it
    /// ([`StartError::Config`]). Default: no history.
    pub fn history(mut self, limits: HistoryLimits) -> Self {
        self.driver.history = Some(limits);
        self
    }

    /// Binds the listen address and starts the node. Returns once the listener is bound; joining the
    /// network through the seeds continues in the background (unless
    /// [`NodeBuilder::fail_if_refused`] asks to wait for it).
    pub async fn start(mut self) -> Result<Node, StartError> {
        let store = self.data_dir.as_ref().map(DataDir::open).transpose()?;
        let stored = store.as_ref().map(DataDir::secret_key).transpose()?.flatten();
        let key = match (self.identity, stored) {
            (Identity::Fresh, Some(stored)) => stored,
            (Identity::Fresh, None) => SecretKey::generate(),
            (Identity::Key(key), _) => *key,
            (Identity::File(path), _) => {
                SecretKey::from_bytes(key_file::load_or_create(&path, || SecretKey::generate().to_bytes())?)
            }
        };
        if let Some(store) = &store {
            match store.secret_key()? {
                Some(stored) if stored.node_id() != key.node_id() => {
                    return Err(StartError::WrongKey { stored: stored.node_id(), given: key.node_id() });
                }
                Some(_) => {}
                None => store.save_secret_key(&key)?,
            }
        }
        if let Some(path) = &self.network_key_file {
            let key = key_file::load_or_create(path, || NetworkKey::generate().to_bytes())?;
            self.transport.network_key = Some(NetworkKey::from_bytes(key));
        }
        let listen = self.listen.resolve().await?;
        let mut seeds = Vec::with_capacity(self.seeds.len());
        let mut names = Vec::new();
        for seed in &self.seeds {
            let resolved = seed.resolve().await?;
            if let PeerAddr::Name(_) = seed.addr {
                names.push((seed.addr.clone(), resolved.addr));
            }
            seeds.push(resolved);
        }
        let max_direct_len = self.protocol.max_direct_len;
        let (transport, transport_events) = Transport::bind(listen, key.clone(), self.transport).await?;
        let cancel = CancellationToken::new();
        let (handle, output, task) = dotray_node::driver::spawn(
            transport.clone(),
            transport_events,
            key,
            seeds.iter().copied(),
            self.protocol,
            self.driver,
            store,
            cancel.child_token(),
        )
        .map_err(|error| match error {
            SpawnError::Config(error) => StartError::Config(error),
            SpawnError::DataDir(error) => StartError::DataDir(error),
        })?;
        let inner = Inner {
            transport,
            handle,
            deliveries: Mutex::new(output.deliveries),
            events: Mutex::new(output.events),
            early_events: std::sync::Mutex::new(VecDeque::new()),
            max_direct_len,
            cancel: cancel.clone(),
            task: std::sync::Mutex::new(Some(task)),
            metrics_task: std::sync::Mutex::new(None),
            _stop_on_drop: cancel.clone().drop_guard(),
        };
        let node = Node { inner: Arc::new(inner) };
        if !names.is_empty() {
            node.inner.handle.watch_seed_names(names).await.map_err(|_| StartError::Stopped)?;
        }
        if let Some(within) = self.fail_fast
            && !seeds.is_empty()
        {
            let seed_addrs: Vec<SocketAddr> = seeds.iter().map(|s| s.addr).collect();
            if let Err(refusals) = node.wait_for_join(&seed_addrs, within).await {
                node.shutdown().await;
                return Err(StartError::Refused(refusals));
            }
        }
        if !self.metrics.interval.is_zero() {
            let weak = WeakNode(Arc::downgrade(&node.inner));
            let task = tokio::spawn(metrics::publish_every(weak, self.metrics, cancel.child_token()));
            *node.inner.metrics_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(node)
    }
}

/// A running dotray node. Cheap to clone; dropping the last clone stops the node.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    handle: NodeHandle,
    deliveries: Mutex<mpsc::Receiver<Message>>,
    events: Mutex<mpsc::Receiver<Event>>,
    /// The node core's `max_direct_len`: `send_to` refuses longer messages.
    max_direct_len: usize,
    /// Events read while `start` waited for a join, for [`Node::next_event`].
    early_events: std::sync::Mutex<VecDeque<Event>>,
    cancel: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The task publishing metrics, when [`MetricsConfig::interval`] is not zero.
    metrics_task: std::sync::Mutex<Option<JoinHandle<()>>>,
    _stop_on_drop: DropGuard,
}

/// A reference to a [`Node`] that does not keep it running (for the metrics task).
#[derive(Debug, Clone)]
pub(crate) struct WeakNode(Weak<Inner>);

impl WeakNode {
    /// The node, unless every [`Node`] clone has been dropped.
    pub(crate) fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

/// How many items wait in `queue`; none when a reader holds it, since a reader holds it only while it
/// waits for the next item.
fn queue_depth<T>(queue: &Mutex<mpsc::Receiver<T>>) -> usize {
    queue.try_lock().map_or(0, |receiver| receiver.len())
}

impl Node {
    /// A builder with every default.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.transport.local_id()
    }

    /// The address the node listens on (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.transport.local_addr()
    }

    /// Broadcasts `payload` to every node of the network. Waits while the network is saturated
    /// (back-pressure). Every node that stays connected receives it exactly once, whole; messages
    /// from one node arrive everywhere in the order they were broadcast. A message up to
    /// [`NodeBuilder::max_message_len`] (16 MiB by default) is accepted; a longer one gets
    /// [`NodeError::TooLong`] and is not numbered.
    ///
    /// A message's [`MessageId`] is its position in this node's stream. A large message travels as
    /// several pieces, each with a position of its own, so the next message's `seq` is more than one
    /// higher (see `dotray_node::fragment`).
    pub async fn broadcast(&self, payload: Bytes) -> Result<MessageId, NodeError> {
        Ok(self.inner.handle.broadcast(payload).await?)
    }

    /// The next message broadcast by another node; `None` once the node has stopped.
    pub async fn recv(&self) -> Option<Message> {
        self.inner.deliveries.lock().await.recv().await
    }

    /// Acknowledges `message`: the application has processed it and every earlier message of its
    /// origin's stream. With a data directory ([`NodeBuilder::data_dir`]) the position is stored
    /// before this returns, and from then on:
    ///
    /// * a restart of this node never delivers those messages again;
    /// * every later message of the stream that some neighbour still holds (retention: 30 s by
    ///   default) is delivered after the restart, in order, whether the earlier run delivered it
    ///   (without an acknowledgement) or not; one no neighbour holds any more is reported as an
    ///   [`Event::Gap`], never skipped silently.
    ///
    /// So delivery across restarts is exactly once up to the last acknowledgement and at least once
    /// after it: acknowledge a message once its effects are safe. Acknowledgements that arrive
    /// together share one durable commit. Without a data directory there is nothing to keep, and
    /// this returns at once.
    ///
    /// A delivered payload shares the buffer its connection read it into: an application that keeps
    /// many messages until it acknowledges them keeps those buffers too. To acknowledge later, keep
    /// only what `ack` reads (a [`Message`] with an empty payload acknowledges the same position).
    ///
    /// ```no_run
    /// # async fn run(node: dotray::Node) -> Result<(), dotray::NodeError> {
    /// while let Some(message) = node.recv().await {
    ///     // ... apply the message to the application's state ...
    ///     node.ack(&message).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ack(&self, message: &Message) -> Result<(), NodeError> {
        Ok(self.inner.handle.ack(message.id().stream, message.through).await?)
    }

    /// Reads up to `max_messages` messages of `stream` from this node's history
    /// ([`NodeBuilder::history`]), from the one numbered `from_seq` on, in order: what the node
    /// delivered (or sent) earlier, for an application that rebuilds its state or serves a reader.
    /// Messages the history no longer holds are skipped (a message's `seq` then differs from the
    /// previous one's `through + 1`); a history that fails its checks is an error, never a wrong
    /// message. Replayed messages have no `origin_addr`, and `hops` 0.
    ///
    /// ```no_run
    /// # async fn demo(node: dotray::Node, message: dotray::Message) -> Result<(), dotray::NodeError> {
    /// // Everything stored of `message`'s stream, from its start.
    /// let earlier = node.replay(message.id().stream, 1, 1_000).await?;
    /// # Ok(()) }
    /// ```
    pub async fn replay(
        &self,
        stream: StreamId,
        from_seq: u64,
        max_messages: usize,
    ) -> Result<Vec<Message>, NodeError> {
        Ok(self.inner.handle.replay(stream, from_seq, max_messages).await?)
    }

    /// [`Node::ack`] for every message of `messages` (a batch from [`Node::recv_many`], say), in one
    /// commit.
    pub async fn ack_all(&self, messages: &[Message]) -> Result<(), NodeError> {
        let positions = messages.iter().map(|m| (m.id().stream, m.through)).collect();
        Ok(self.inner.handle.ack_all(positions).await?)
    }

    /// Waits for the next broadcast messages and appends up to `limit` of them to `out` (all that are
    /// waiting, without waiting for more); returns how many, 0 once the node has stopped. For
    /// applications that read at high rates: one wake-up and one lock for a whole batch instead of
    /// one per message.
    ///
    /// ```no_run
    /// # async fn demo(node: dotray::Node) {
    /// let mut batch = Vec::new();
    /// while node.recv_many(&mut batch, 256).await > 0 {
    ///     for message in batch.drain(..) {
    ///         println!("{} bytes from {}", message.payload.len(), message.origin);
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn recv_many(&self, out: &mut Vec<Message>, limit: usize) -> usize {
        self.inner.deliveries.lock().await.recv_many(out, limit).await
    }

    /// The next event (neighbour up/down, gap, refusal, direct message); `None` once the node has
    /// stopped.
    pub async fn next_event(&self) -> Option<Event> {
        if let Some(event) = self.inner.early_events.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
            return Some(event);
        }
        self.inner.events.lock().await.recv().await
    }

    /// Waits, at most `within`, for a neighbour; fails with the refusals if every address in `seeds`
    /// refused this node first. Keeps the events it reads for [`Node::next_event`].
    async fn wait_for_join(
        &self,
        seeds: &[SocketAddr],
        within: Duration,
    ) -> Result<(), Vec<(SocketAddr, Refusal)>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut refusals: Vec<(SocketAddr, Refusal)> = Vec::new();
        let mut events = self.inner.events.lock().await;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
            let joined = matches!(event, Event::NeighbourUp { .. });
            if let Event::Refused { addr, reason } = event
                && seeds.contains(&addr)
                && !refusals.iter().any(|(a, _)| *a == addr)
            {
                refusals.push((addr, reason));
            }
            self.inner.early_events.lock().unwrap_or_else(|e| e.into_inner()).push_back(event);
            if joined {
                return Ok(());
            }
            if refusals.len() == seeds.len() {
                return Err(refusals);
            }
        }
        Ok(())
    }

    /// What this node knows about the network: active neighbours first, then backup addresses, with
    /// state, round-trip time and last contact.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, NodeError> {
        Ok(self.inner.handle.nodes().await?)
    }

    /// Asks another node over the wire what it knows.
    pub async fn query_nodes(&self, peer: NodeId) -> Result<Vec<NodeInfo>, NodeError> {
        Ok(self.inner.handle.query(peer).await?)
    }

    /// Sends `payload` to one node only (not broadcast), over the existing connection or by dialing its
    /// known address. It arrives there as [`Event::Direct`]. At most 64 KiB by default
    /// (`dotray_node::core::Config::max_direct_len`); a longer one gets [`NodeError::TooLong`].
    pub async fn send_to(&self, peer: NodeId, payload: Bytes) -> Result<(), NodeError> {
        let max = self.inner.max_direct_len;
        if payload.len() > max {
            return Err(NodeError::TooLong(dotray_node::core::MessageTooLong { len: payload.len(), max }));
        }
        let envelope = Envelope::from(Direct { payload });
        let frame = OutFrame::encode(&envelope, self.inner.transport.max_frame_len())
            .map_err(|_| NodeError::Send(dotray_transport::SendError::TooLarge))?;
        if let Some(sender) = self.inner.transport.sender(&peer) {
            match sender.send(&frame).await {
                // The connection was closing (a join or an exchange ends with it): dial a new one.
                Err(dotray_transport::SendError::Closed) => {}
                sent => return Ok(sent?),
            }
        }
        let known = self.nodes().await?;
        let addr = known.iter().find(|n| n.peer.id == peer).ok_or(NodeError::UnknownNode)?.peer.addr;
        let sender = self.inner.transport.connect(addr).await?.sender;
        Ok(sender.send(&frame).await?)
    }

    /// Counters of the broadcast layer: payloads sent, received, delivered, duplicates, grafts,
    /// prunes, resends, gaps; and what the driver dropped.
    pub async fn counters(&self) -> Result<(Counters, DriverCounters), NodeError> {
        Ok(self.inner.handle.counters().await?)
    }

    /// Figures of this node's transport: connections, bytes and frames written to sockets, and bans.
    pub fn transport_stats(&self) -> dotray_transport::TransportStats {
        self.inner.transport.stats()
    }

    /// Nodes refused for now because they broke the protocol (see `dotray_transport::Config::ban_duration`).
    pub fn bans(&self) -> Vec<dotray_transport::Ban> {
        self.inner.transport.bans()
    }

    /// Deliveries and events waiting for the application.
    pub(crate) fn queue_depths(&self) -> (usize, usize) {
        (queue_depth(&self.inner.deliveries), queue_depth(&self.inner.events))
    }

    /// This node's links in the broadcast tree (eager) and its lazy links.
    pub async fn topology(&self) -> Result<Topology, NodeError> {
        Ok(self.inner.handle.topology().await?)
    }

    /// Leaves the network gracefully: neighbours are told goodbye and replace this node at once, queued
    /// frames are flushed, every task is stopped and joined.
    pub async fn shutdown(&self) {
        self.inner.handle.leave().await;
        self.inner.cancel.cancel();
        self.inner.transport.shutdown().await;
        for task in [&self.inner.task, &self.inner.metrics_task] {
            let task = task.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}
