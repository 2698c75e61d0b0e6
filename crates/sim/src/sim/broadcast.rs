//! Broadcasting in [`Sim`]: the router configuration of new nodes, broadcasts from a node (recorded,
//! to check later who delivered them), and the routers' totals.

use bytes::Bytes;
use dotray_router::core::{Config, MessageId};

use super::Sim;
use crate::NodeIdx;

impl Sim {
    /// The router configuration of every node created from now on (default:
    /// `dotray_router::core::Config::default()`). Call before adding nodes.
    pub fn set_router_config(&mut self, config: Config) {
        config.validate().expect("valid router config");
        self.router = config;
    }

    /// Node `node` broadcasts `payload`. Returns the message id (None if the node is dead or the
    /// message is longer than the node's `max_message_len`). The broadcast is recorded, to check
    /// later who delivered it.
    pub fn broadcast(&mut self, node: NodeIdx, payload: Bytes) -> Option<MessageId> {
        if !self.nodes[node].alive {
            return None;
        }
        let now = self.instant();
        let id = self.nodes[node].core.broadcast(payload, now).ok()?;
        self.deliveries.broadcast(node, id, self.now);
        self.drain(node);
        Some(id)
    }

    /// Sum over all nodes of (payloads received, payloads delivered) by their routers.
    pub fn router_totals(&self) -> (u64, u64) {
        self.nodes.iter().fold((0, 0), |(r, d), node| {
            let c = node.core.counters();
            (r + c.payloads_received, d + c.delivered)
        })
    }
}
