//! Node query: what this node knows ([`Membership::nodes`]), answering `NodeQueryRequest`s from peers,
//! and asking a peer ([`Membership::query_node`]).
//!
//! A query to a peer that is not connected opens a transient connection, closed when the answer
//! arrives. The answer surfaces as [`Event::QueryResponse`] carrying the id `query_node` returned, or
//! as [`Event::QueryFailed`] when the peer cannot be reached or does not answer within
//! `transient_timeout`. Answers we give are cut to `max_query_nodes` entries, and so are answers we
//! receive.

use std::net::SocketAddr;
use std::time::Instant;

use dotray_codec::NodeId;
use rand::Rng;

use super::{
    Action, Awaiting, CloseReason, Direction, Event, Fate, Membership, Message, NodeInfo, NodeState, Purpose,
};

/// Why [`Membership::query_node`] could not send a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The node is neither connected nor in the passive view: we do not know its address.
    #[error("unknown node")]
    UnknownPeer,
    /// The connection limit leaves no room for the connection the query needs.
    #[error("too many connections to open one for the query")]
    TooManyConnections,
    /// This node has left the network.
    #[error("the node has left")]
    Left,
}

impl<R: Rng> Membership<R> {
    /// Every node this one knows: active peers first (active or suspect), then the passive view
    /// (passive or down), with round-trip time, time since last heard of, and connection direction.
    pub fn nodes(&self, now: Instant) -> Vec<NodeInfo> {
        let active = self.active.iter().map(|p| NodeInfo {
            peer: p.info,
            state: if p.missed() > 0 { NodeState::Suspect } else { NodeState::Active },
            rtt: p.rtt.smoothed(),
            last_seen_ago: Some(now.saturating_duration_since(p.last_seen)),
            direction: Some(p.direction),
        });
        let passive = self.passive.iter().map(|e| NodeInfo {
            peer: e.info,
            state: if e.down { NodeState::Down } else { NodeState::Passive },
            rtt: None,
            last_seen_ago: e.last_seen.map(|at| now.saturating_duration_since(at)),
            direction: self.transient.get(&e.info.id).map(|t| t.direction),
        });
        active.chain(passive).collect()
    }

    /// Asks `peer` which nodes it knows. Returns the request id that the answer's
    /// [`Event::QueryResponse`] (or [`Event::QueryFailed`]) will carry.
    pub fn query_node(&mut self, peer: NodeId, now: Instant) -> Result<u64, QueryError> {
        if self.left {
            return Err(QueryError::Left);
        }
        let connected = self.is_connected(&peer);
        let addr = if connected {
            None
        } else {
            Some(self.passive.get(&peer).ok_or(QueryError::UnknownPeer)?.info.addr)
        };
        if let Some(addr) = addr {
            // Dial, unless a dial to that address is already under way (the query then rides on it).
            if !self.dials.contains_key(&addr) && !self.dial(addr, Some(peer), Purpose::Query, now) {
                return Err(QueryError::TooManyConnections);
            }
        }
        let request_id = self.rng.random();
        let expires = now + self.config.transient_timeout;
        self.queries.insert(request_id, PendingQuery { peer, addr, expires, sent: false });
        if connected {
            self.flush_queries(peer);
        }
        Ok(request_id)
    }

    /// Sends the queries waiting for a connection to `peer`, now that there is one.
    pub(super) fn flush_queries(&mut self, peer: NodeId) {
        let ready: Vec<u64> =
            self.queries.iter().filter(|(_, q)| q.peer == peer && !q.sent).map(|(id, _)| *id).collect();
        let max = u32::try_from(self.config.max_query_nodes).unwrap_or(u32::MAX);
        for request_id in ready {
            if let Some(q) = self.queries.get_mut(&request_id) {
                q.sent = true;
            }
            if let Some(t) = self.transient.get_mut(&peer) {
                if t.awaiting == Awaiting::Nothing {
                    t.awaiting = Awaiting::QueryResponse(request_id);
                }
            }
            self.send(peer, Message::NodeQueryRequest { request_id, max });
        }
    }

    /// A peer asks what we know: answer with at most `min(max, max_query_nodes)` entries.
    pub(super) fn on_query_request(&mut self, from: NodeId, request_id: u64, max: u32, now: Instant) {
        let mut nodes = self.nodes(now);
        nodes.truncate((max as usize).min(self.config.max_query_nodes));
        self.send(from, Message::NodeQueryResponse { request_id, nodes });
    }

    /// The answer to our query.
    pub(super) fn on_query_response(
        &mut self,
        from: NodeId,
        request_id: u64,
        mut nodes: Vec<NodeInfo>,
        now: Instant,
    ) {
        if self.queries.get(&request_id).is_none_or(|q| q.peer != from) {
            return; // Late (we gave up) or not ours: ignore.
        }
        self.queries.remove(&request_id);
        nodes.truncate(self.config.max_query_nodes);
        // Inbound connections are never closed here: they are the other side's to close.
        let ours = self.transient.get(&from).is_some_and(|t| {
            t.awaiting == Awaiting::QueryResponse(request_id) && t.direction == Direction::Outbound
        });
        if ours {
            self.transient.get_mut(&from).expect("checked").awaiting = Awaiting::Nothing;
            self.close(from, CloseReason::Done, Fate::Keep, now);
        }
        self.push(Action::Event(Event::QueryResponse { request_id, peer: from, nodes }));
    }

    /// A query will get no answer: tell the user, once.
    pub(super) fn fail_query(&mut self, request_id: u64) {
        if let Some(q) = self.queries.remove(&request_id) {
            self.push(Action::Event(Event::QueryFailed { request_id, peer: q.peer }));
        }
    }

    /// The connection to `peer` is gone: the queries sent over it will not be answered.
    pub(super) fn fail_queries_to(&mut self, peer: NodeId) {
        let lost: Vec<u64> =
            self.queries.iter().filter(|(_, q)| q.peer == peer && q.sent).map(|(id, _)| *id).collect();
        lost.into_iter().for_each(|id| self.fail_query(id));
    }

    /// A dial of `addr` failed: the queries waiting for it will not be sent.
    pub(super) fn fail_queries_to_addr(&mut self, addr: SocketAddr) {
        let lost: Vec<u64> =
            self.queries.iter().filter(|(_, q)| q.addr == Some(addr) && !q.sent).map(|(id, _)| *id).collect();
        lost.into_iter().for_each(|id| self.fail_query(id));
    }
}

/// A node query asked by the user and not answered yet.
#[derive(Debug, Clone)]
pub(super) struct PendingQuery {
    /// The node asked.
    pub(super) peer: NodeId,
    /// Its address, when a dial was needed.
    pub(super) addr: Option<SocketAddr>,
    /// When we give up.
    pub(super) expires: Instant,
    /// Sent over a connection (else waiting for one).
    pub(super) sent: bool,
}
