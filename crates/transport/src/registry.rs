//! The table of live connections, and the rule that keeps at most one connection per pair of nodes.
//!
//! When a second connection to a node completes its handshake, both nodes must keep the *same* one,
//! without talking to each other about it. The rule, applied by each side to the pair it sees:
//!
//! 1. The peer's nonce changed: it restarted, and the old connection is dead. Keep the new one.
//! 2. Both connections were opened by the same side: that side gave up on the old one. Keep the new one.
//! 3. They were opened by opposite sides (a simultaneous dial): keep the one opened by the node with the
//!    smaller id. Both sides see the same two connections and compare the same two ids, so they agree.
//!
//! A kept new connection replaces the old one: the old one is closed, and its `Disconnected` event is
//! emitted before the new one's `Connected` (the new connection waits for the old one's `done` token).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use dotray_codec::NodeId;
use dotray_codec::proto::GoodbyeReason;
use tokio_util::sync::CancellationToken;

use crate::peer_sender::{Closing, ConnShared};
use crate::{DisconnectReason, PeerSender};

/// One registered connection.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) conn_id: u64,
    pub(crate) outbound: bool,
    pub(crate) nonce: u64,
    pub(crate) dialed: Option<SocketAddr>,
    pub(crate) listen_addr: Option<SocketAddr>,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) shared: Arc<ConnShared>,
    /// Cancelled once the connection's `Disconnected` event has been emitted.
    pub(crate) done: CancellationToken,
}

/// The outcome of [`Registry::admit`].
#[derive(Debug)]
pub(crate) enum Admission {
    /// The connection is registered. If it replaced another, wait for that one's `done` first.
    Admitted { wait_for: Option<CancellationToken> },
    /// Another connection to the same node is kept instead.
    Rejected,
}

/// Live connections by peer id.
#[derive(Debug)]
pub(crate) struct Registry {
    local: NodeId,
    entries: Mutex<HashMap<NodeId, Entry>>,
}

impl Registry {
    pub(crate) fn new(local: NodeId) -> Self {
        Self { local, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection that completed its handshake, applying the one-connection rule.
    pub(crate) fn admit(&self, peer: NodeId, new: Entry) -> Admission {
        let mut entries = self.lock();
        let Some(old) = entries.get(&peer) else {
            entries.insert(peer, new);
            return Admission::Admitted { wait_for: None };
        };
        let keep_new = if old.nonce != new.nonce || old.outbound == new.outbound {
            true
        } else {
            let new_initiator = if new.outbound { self.local } else { peer };
            new_initiator == self.local.min(peer)
        };
        if !keep_new {
            return Admission::Rejected;
        }
        let old = entries.insert(peer, new).expect("checked above");
        drop(entries);
        old.shared.begin_close(Closing {
            goodbye: Some(GoodbyeReason::DuplicateConnection),
            flush: false,
            reason: DisconnectReason::Replaced,
        });
        Admission::Admitted { wait_for: Some(old.done) }
    }

    /// Removes the connection `conn_id` of `peer`, if it is still the registered one.
    pub(crate) fn remove(&self, peer: NodeId, conn_id: u64) {
        let mut entries = self.lock();
        if entries.get(&peer).is_some_and(|e| e.conn_id == conn_id) {
            entries.remove(&peer);
        }
    }

    /// The sender of the connection to `peer`.
    pub(crate) fn sender(&self, peer: &NodeId) -> Option<PeerSender> {
        self.lock().get(peer).map(|e| PeerSender { shared: e.shared.clone() })
    }

    /// The node reached at `addr` (dialed or advertised), if connected.
    pub(crate) fn find_by_addr(&self, addr: SocketAddr) -> Option<NodeId> {
        self.lock()
            .iter()
            .find(|(_, e)| e.dialed == Some(addr) || e.listen_addr == Some(addr))
            .map(|(id, _)| *id)
    }

    /// A snapshot of every registered connection.
    pub(crate) fn snapshot(&self) -> Vec<(NodeId, Entry)> {
        self.lock().iter().map(|(id, e)| (*id, e.clone())).collect()
    }
}
