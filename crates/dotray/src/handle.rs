//! [`Node`] and [`NodeBuilder`]: one running dotray node — its transport and its node driver
//! (`dotray-node`) — behind one handle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use dotray_codec::proto::{Direct, Envelope};
use dotray_codec::{NodeId, OutFrame, SecretKey};
use dotray_membership::core::{NodeInfo, Seed};
use dotray_node::core::Event;
use dotray_node::{DriverConfig, DriverCounters, Message, NodeHandle};
use dotray_router::core::{Counters, MessageId, Topology};
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
///     .listen("127.0.0.1:2001".parse()?)
///     .seed("127.0.0.1:2000".parse()?)
///     .start()
///     .await?;
/// node.broadcast("hello".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    listen: SocketAddr,
    seeds: Vec<Seed>,
    identity: Identity,
    network_key_file: Option<PathBuf>,
    transport: dotray_transport::Config,
    protocol: dotray_node::core::Config,
    driver: DriverConfig,
    metrics: MetricsConfig,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seeds: Vec::new(),
            identity: Identity::Fresh,
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
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Adds a seed: an address of any node already in the network. Default none: this node starts a
    /// new network and waits for others to join it.
    pub fn seed(mut self, addr: SocketAddr) -> Self {
        self.seeds.push(addr.into());
        self
    }

    /// Adds a seed whose node id is known: the join counts only if the node at `addr` proves `id`
    /// (an address taken over by another node, or by someone passing for it, is not joined).
    pub fn seed_node(mut self, id: NodeId, addr: SocketAddr) -> Self {
        self.seeds.push(Seed { addr, node: Some(id) });
        self
    }

    /// Adds several seeds: addresses, or [`Seed`]s (`"id@ip:port"` parses into one).
    pub fn seeds(mut self, seeds: impl IntoIterator<Item = impl Into<Seed>>) -> Self {
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

    /// Binds the listen address and starts the node. Returns once the listener is bound; joining the
    /// network through the seeds continues in the background.
    pub async fn start(mut self) -> Result<Node, StartError> {
        let key = match self.identity {
            Identity::Fresh => SecretKey::generate(),
            Identity::Key(key) => *key,
            Identity::File(path) => {
                SecretKey::from_bytes(key_file::load_or_create(&path, || SecretKey::generate().to_bytes())?)
            }
        };
        if let Some(path) = &self.network_key_file {
            let key = key_file::load_or_create(path, || NetworkKey::generate().to_bytes())?;
            self.transport.network_key = Some(NetworkKey::from_bytes(key));
        }
        let (transport, transport_events) = Transport::bind(self.listen, key.clone(), self.transport).await?;
        let cancel = CancellationToken::new();
        let (handle, output, task) = dotray_node::driver::spawn(
            transport.clone(),
            transport_events,
            key,
            self.seeds,
            self.protocol,
            self.driver,
            cancel.child_token(),
        )?;
        let inner = Inner {
            transport,
            handle,
            deliveries: Mutex::new(output.deliveries),
            events: Mutex::new(output.events),
            cancel: cancel.clone(),
            task: std::sync::Mutex::new(Some(task)),
            metrics_task: std::sync::Mutex::new(None),
            _stop_on_drop: cancel.clone().drop_guard(),
        };
        let node = Node { inner: Arc::new(inner) };
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

    /// The next event (neighbour up/down, gap, direct message); `None` once the node has stopped.
    pub async fn next_event(&self) -> Option<Event> {
        self.inner.events.lock().await.recv().await
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
    /// known address. It arrives there as [`Event::Direct`].
    pub async fn send_to(&self, peer: NodeId, payload: Bytes) -> Result<(), NodeError> {
        let envelope = Envelope::from(Direct { payload });
        let sender = match self.inner.transport.sender(&peer) {
            Some(sender) => sender,
            None => {
                let known = self.nodes().await?;
                let addr = known.iter().find(|n| n.peer.id == peer).ok_or(NodeError::UnknownNode)?.peer.addr;
                self.inner.transport.connect(addr).await?.sender
            }
        };
        let frame = OutFrame::encode(&envelope, self.inner.transport.max_frame_len())
            .map_err(|_| NodeError::Send(dotray_transport::SendError::TooLarge))?;
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
