//! [`Context`]: the state a transport's handle shares with its listener, dialers and connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::per_address::PerAddress;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Span;

use crate::ban::BanList;
use crate::handshake::LocalHello;
use crate::noise::LocalIdentity;
use crate::registry::Registry;
use crate::{Config, TransportEvent};

/// State shared by the transport's handle and all its tasks.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: Config,
    pub(crate) hello: LocalHello,
    pub(crate) identity: LocalIdentity,
    pub(crate) registry: Registry,
    pub(crate) bans: Arc<BanList>,
    pub(crate) events: mpsc::Sender<TransportEvent>,
    /// Cancelled at shutdown; every connection's close token is a child of it.
    pub(crate) root: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) inbound: Arc<Semaphore>,
    /// Inbound connections per remote address (`Config::max_inbound_per_address`).
    pub(crate) per_address: Arc<PerAddress>,
    pub(crate) outbound: Arc<Semaphore>,
    pub(crate) stats: Counters,
    pub(crate) span: Span,
    pub(crate) conn_ids: AtomicU64,
}

/// Monotonic counters, updated without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) inbound_accepted: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) frames_written: AtomicU64,
    pub(crate) events_dropped_at_shutdown: AtomicU64,
    pub(crate) handshake_events_dropped: AtomicU64,
}

impl Context {
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends an event upward, waiting for room; gives up when `cancel` fires or nobody listens.
    pub(crate) async fn emit(&self, event: TransportEvent, cancel: &CancellationToken) -> bool {
        // The common case, room in the channel, without building the select's futures.
        let event = match self.events.try_send(event) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        tokio::select! {
            biased;
            sent = self.events.send(event) => sent.is_ok(),
            _ = cancel.cancelled() => false,
        }
    }
}
