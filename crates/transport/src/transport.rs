//! [`Transport`]: the handle that starts the listener, dials, sends, disconnects and shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dotray_codec::proto::GoodbyeReason;
use dotray_codec::{NodeId, OutFrame, SecretKey};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span};

use crate::ban::{Ban, BanList};
use crate::context::{Context, Counters};
use crate::handshake::LocalHello;
use crate::noise::LocalIdentity;
use crate::registry::Registry;
use crate::{Config, ConnectedPeer, DialError, PeerSender, SendError, StartError, TransportEvent};

/// The receiving end of the transport's events.
pub type Events = mpsc::Receiver<TransportEvent>;

/// A connection as listed by [`Transport::peers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSummary {
    /// The peer's node id.
    pub id: NodeId,
    /// The peer's advertised listen address.
    pub listen_addr: Option<SocketAddr>,
    /// The socket's remote address.
    pub remote_addr: SocketAddr,
    /// The socket's local address.
    pub local_addr: SocketAddr,
    /// True when we dialed.
    pub outbound: bool,
}

/// Figures about the transport, for tests, metrics and the node query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportStats {
    /// Connections that completed the handshake and are open now.
    pub connections: usize,
    /// Inbound sockets open now, handshakes in progress included.
    pub inbound_open: usize,
    /// Outbound sockets open now, dials in progress included.
    pub outbound_open: usize,
    /// Inbound sockets accepted since start.
    pub inbound_accepted: u64,
    /// Inbound sockets refused at the limit since start.
    pub inbound_refused: u64,
    /// Bytes of frames written to peers since start, as queued (before sealing, which adds 18 bytes
    /// per chunk of up to 64 KiB; the handshake and goodbyes are not counted).
    pub bytes_written: u64,
    /// Frames written to peers' sockets since start (same scope as `bytes_written`).
    pub frames_written: u64,
    /// Node ids banned now for breaking the protocol (see [`Transport::bans`]).
    pub bans: usize,
    /// Bans issued since start, repeat offences included.
    pub bans_issued: u64,
    /// Connections refused since start because the peer's node id was banned, in both directions.
    pub ban_refusals: u64,
    /// `Disconnected` events not reported because the event channel was full once shutdown had begun
    /// (see [`Transport::shutdown`]).
    pub events_dropped_at_shutdown: u64,
    /// [`TransportEvent::HandshakeFailed`] events not reported because the event channel was full (a
    /// failed inbound handshake never waits for the layer above: see that event).
    pub handshake_events_dropped: u64,
}

/// A running transport: a listener, its connections, and the way to reach them.
///
/// Cheap to clone. Dropping the last clone shuts the transport down (without waiting); call
/// [`Transport::shutdown`] to also say goodbye to every peer and wait for every task.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use dotray_transport::{Config, Transport, TransportEvent};
/// use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, SecretKey, proto};
///
/// let (transport, mut events) =
///     Transport::bind("127.0.0.1:0".parse()?, SecretKey::generate(), Config::default()).await?;
/// let peer = transport.connect("127.0.0.1:2000".parse()?).await?;
/// let ping = OutFrame::encode(&proto::Ping { nonce: 1, sent_at_micros: 0 }.into(), DEFAULT_MAX_FRAME_LEN)?;
/// peer.sender.try_send(&ping)?;
/// while let Some(event) = events.recv().await {
///     if let TransportEvent::Frames { peer, frames } = event {
///         println!("{peer:?} sent {} frames", frames.len());
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Transport {
    inner: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    ctx: Arc<Context>,
    local_addr: SocketAddr,
    _stop_on_drop: DropGuard,
}

impl Transport {
    /// Binds `listen` (port 0 picks a free port) and starts accepting connections as the node whose
    /// secret key is `key` (its node id is the key's public half).
    pub async fn bind(
        listen: SocketAddr,
        key: SecretKey,
        config: Config,
    ) -> Result<(Self, Events), StartError> {
        config.validate()?;
        let id = key.node_id();
        let identity = LocalIdentity::new(key, config.network_key.clone())
            .map_err(|e| StartError::Noise(e.to_string()))?;
        let listener =
            listen_on(listen, &config).map_err(|source| StartError::Bind { addr: listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: listen, source })?;
        let advertised = config.advertise_addr.unwrap_or(local_addr);
        let (events_tx, events_rx) = mpsc::channel(config.event_queue_len);
        let root = CancellationToken::new();
        let span = info_span!("transport", node = ?id, addr = %local_addr);
        let ctx = Arc::new(Context {
            hello: LocalHello::new(rand::random(), config.network_id.clone(), Some(advertised)),
            identity,
            registry: Registry::new(id),
            bans: Arc::new(BanList::new(&config)),
            events: events_tx,
            root: root.clone(),
            tracker: TaskTracker::new(),
            inbound: Arc::new(Semaphore::new(config.max_inbound)),
            per_address: Arc::default(),
            outbound: Arc::new(Semaphore::new(config.max_outbound)),
            stats: Counters::default(),
            conn_ids: AtomicU64::new(1),
            span: span.clone(),
            config,
        });
        ctx.tracker.spawn(crate::listener::accept_loop(ctx.clone(), listener).instrument(span));
        let inner = Handle { ctx, local_addr, _stop_on_drop: root.drop_guard() };
        Ok((Self { inner: Arc::new(inner) }, events_rx))
    }

    fn ctx(&self) -> &Arc<Context> {
        &self.inner.ctx
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.ctx().identity.node_id()
    }

    /// The address the listener is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The network id from the config.
    pub fn network_id(&self) -> &str {
        &self.ctx().config.network_id
    }

    /// The longest frame body this transport sends or accepts (`Config::max_frame_len`).
    pub fn max_frame_len(&self) -> usize {
        self.ctx().config.max_frame_len
    }

    /// Dials `addr` in the background. The outcome arrives as [`TransportEvent::Connected`] or
    /// [`TransportEvent::DialFailed`]. With `expected`, the connection is kept only if the peer proves
    /// that node id ([`HandshakeError::UnexpectedPeer`](crate::HandshakeError::UnexpectedPeer) if not).
    pub fn dial(&self, addr: SocketAddr, expected: Option<NodeId>) {
        let ctx = self.ctx().clone();
        let task = async move {
            if let Err(error) = dial(ctx.clone(), addr, expected).await {
                let _ = ctx.emit(TransportEvent::DialFailed { addr, error }, &ctx.root).await;
            }
        };
        self.ctx().tracker.spawn(task.instrument(self.ctx().span.clone()));
    }

    /// Dials `addr` and waits for the handshake. The connection is also announced as
    /// [`TransportEvent::Connected`]; a failure is returned here only.
    pub async fn connect(&self, addr: SocketAddr) -> Result<ConnectedPeer, DialError> {
        dial(self.ctx().clone(), addr, None).await
    }

    /// [`Transport::connect`] to the node `expected` at `addr`: fails with
    /// [`HandshakeError::UnexpectedPeer`](crate::HandshakeError::UnexpectedPeer) unless the peer proves
    /// that node id.
    pub async fn connect_to(&self, expected: NodeId, addr: SocketAddr) -> Result<ConnectedPeer, DialError> {
        dial(self.ctx().clone(), addr, Some(expected)).await
    }

    /// The sender for the connection to `peer`, if connected.
    pub fn sender(&self, peer: &NodeId) -> Option<PeerSender> {
        self.ctx().registry.sender(peer)
    }

    /// Queues an encoded frame to `peer` if there is room now.
    pub fn try_send(&self, peer: &NodeId, frame: &OutFrame<'_>) -> Result<(), SendError> {
        self.sender(peer).ok_or(SendError::NotConnected)?.try_send(frame)
    }

    /// Closes the connection to `peer` after writing what is queued and a goodbye with `reason`.
    /// Returns false when not connected.
    pub fn disconnect(&self, peer: &NodeId, reason: GoodbyeReason) -> bool {
        self.sender(peer).map(|s| s.close(reason)).is_some()
    }

    /// Every open connection.
    pub fn peers(&self) -> Vec<PeerSummary> {
        self.ctx()
            .registry
            .snapshot()
            .into_iter()
            .map(|(id, e)| PeerSummary {
                id,
                listen_addr: e.listen_addr,
                remote_addr: e.remote_addr,
                local_addr: e.local_addr,
                outbound: e.outbound,
            })
            .collect()
    }

    /// Current figures.
    pub fn stats(&self) -> TransportStats {
        let ctx = self.ctx();
        TransportStats {
            connections: ctx.registry.snapshot().len(),
            inbound_open: ctx.config.max_inbound - ctx.inbound.available_permits(),
            outbound_open: ctx.config.max_outbound - ctx.outbound.available_permits(),
            inbound_accepted: ctx.stats.inbound_accepted.load(Ordering::Relaxed),
            inbound_refused: ctx.stats.inbound_refused.load(Ordering::Relaxed),
            bytes_written: ctx.stats.bytes_written.load(Ordering::Relaxed),
            frames_written: ctx.stats.frames_written.load(Ordering::Relaxed),
            bans: ctx.bans.count_in_force(tokio::time::Instant::now()),
            bans_issued: ctx.bans.issued(),
            ban_refusals: ctx.bans.refusals(),
            events_dropped_at_shutdown: ctx.stats.events_dropped_at_shutdown.load(Ordering::Relaxed),
            handshake_events_dropped: ctx.stats.handshake_events_dropped.load(Ordering::Relaxed),
        }
    }

    /// Node ids banned now for breaking the protocol, the ban ending first first. Their connections
    /// are refused with `Goodbye(Banned)` until then (see [`Config::ban_duration`]).
    pub fn bans(&self) -> Vec<Ban> {
        self.ctx().bans.in_force(tokio::time::Instant::now())
    }

    /// Stops accepting, says goodbye (`Shutdown`) to every peer after flushing their queues, and waits
    /// until every task has finished. Every connection still reports `Disconnected` if the event
    /// channel has room for it; shutdown never waits for the receiver to be read (its owner is usually
    /// the one awaiting this call), so what does not fit is dropped and counted in
    /// [`TransportStats::events_dropped_at_shutdown`].
    pub async fn shutdown(&self) {
        let ctx = self.ctx();
        ctx.root.cancel();
        ctx.tracker.close();
        ctx.tracker.wait().await;
    }
}

/// Binds a listening socket. `SO_REUSEADDR` lets a restarted node take its address back while
/// connections of its previous run linger in TIME_WAIT (it does not allow two live listeners).
fn listen_on(addr: SocketAddr, config: &Config) -> std::io::Result<TcpListener> {
    let socket = new_socket(addr, config)?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(config.listen_backlog)
}

/// A socket for `addr`'s family with the options a connection needs before its handshake.
fn new_socket(addr: SocketAddr, config: &Config) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    crate::socket::before_connect(&socket, config)?;
    Ok(socket)
}

/// Opens a TCP connection to `addr`.
async fn connect(addr: SocketAddr, config: &Config) -> std::io::Result<TcpStream> {
    new_socket(addr, config)?.connect(addr).await
}

/// Connects to `addr` and runs the connection; resolves when its handshake is done.
async fn dial(
    ctx: Arc<Context>,
    addr: SocketAddr,
    expected: Option<NodeId>,
) -> Result<ConnectedPeer, DialError> {
    if ctx.root.is_cancelled() {
        return Err(DialError::Shutdown);
    }
    if let Some(id) = ctx.registry.find_by_addr(addr) {
        return Err(DialError::AlreadyConnected(id));
    }
    let permit = ctx.outbound.clone().try_acquire_owned().map_err(|_| DialError::TooManyOutbound)?;
    let stream = tokio::select! {
        _ = ctx.root.cancelled() => return Err(DialError::Shutdown),
        connected = timeout(ctx.config.connect_timeout, connect(addr, &ctx.config)) => match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(DialError::Connect(e)),
            Err(_) => return Err(DialError::ConnectTimeout),
        },
    };
    let (reply, outcome) = oneshot::channel();
    let task =
        crate::connection::run(ctx.clone(), stream, Some((addr, expected)), (permit, None), Some(reply));
    ctx.tracker.spawn(task);
    outcome.await.unwrap_or(Err(DialError::Shutdown))
}
