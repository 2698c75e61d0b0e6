//! Serving from a history on disk (`Config::history`): the driver stores every delivered payload
//! with its manifest ([`Action::Archive`]); when a neighbour asks for messages older than this node
//! retains in memory, the core asks the driver to read them ([`Action::Recall`]) and sends what comes
//! back ([`Router::handle_recalled`]) as it sends from retention: manifest first, each payload
//! charged to the neighbour's repair budget.
//!
//! A hostile neighbour that asks for old messages over and over costs this node at most one read at
//! a time, each no larger than what its repair budget has left; what the disk returns is checked
//! (its manifest verified, each payload against it) before it leaves, so a damaged file can never
//! make this node send what its neighbour would have to refuse.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dotray_codec::NodeId;

use super::action::Action;
use super::ids::StreamId;
use super::message::Message;
use super::router::Router;
use crate::proof::Manifest;

/// Messages read back from the history for [`Router::handle_recalled`]: `payloads` are sequence
/// numbers `first, first + 1, …` of `proof`'s stream, and `proof` is the manifest stored with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecalledRun {
    /// The manifest covering the payloads.
    pub proof: Arc<Manifest>,
    /// The sequence number of the first payload.
    pub first: u64,
    /// The payloads, in order.
    pub payloads: Vec<Bytes>,
}

/// A recall waiting for the driver's answer: what was asked, and how many messages may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingRecall {
    pub(crate) stream: StreamId,
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) max_messages: u64,
}

impl<R: rand::Rng> Router<R> {
    /// Part of a request from `to`, `first..=last` of `stream`, lies before what this node retains in
    /// memory: with a history, ask the driver to read it. Returns the budget of sends left (a recall
    /// takes the messages it may send from it). Without a history, or while `to`'s earlier recall is
    /// under way, or with its repair budget spent, nothing is asked (it asks again).
    pub(crate) fn recall(
        &mut self,
        to: NodeId,
        stream: StreamId,
        (first, last): (u64, u64),
        budget: u64,
        now: Instant,
    ) -> u64 {
        if !self.config.history || budget == 0 || first > last {
            return budget;
        }
        let Some(p) = self.peers.get_mut(&to) else { return budget };
        if p.recalling.is_some() {
            return budget;
        }
        let max_bytes = p.serve_bytes.available(now);
        if max_bytes == 0 {
            return budget;
        }
        let max_messages = budget.min(last - first + 1);
        p.recalling = Some(PendingRecall { stream, first, last, max_messages });
        self.counters.recalls += 1;
        self.actions.push_back(Action::Recall { to, stream, first, last, max_messages, max_bytes });
        budget - max_messages
    }

    /// The driver's answer to the [`Action::Recall`] for `to`: what the history holds of the range
    /// asked (possibly nothing, or more than asked: only the range asked, at most the messages the
    /// recall allowed, is sent). Runs whose manifest fails verification, or whose payloads it does not
    /// prove, are counted in `Counters::history_damaged` and not sent.
    pub fn handle_recalled(&mut self, to: NodeId, runs: Vec<RecalledRun>, now: Instant) {
        let Some(pending) = self.peers.get_mut(&to).and_then(|p| p.recalling.take()) else { return };
        let PendingRecall { stream, first, last, mut max_messages } = pending;
        let mut sent_through = first - 1;
        let mut verified: Option<Arc<Manifest>> = None;
        for run in runs {
            if run.proof.stream != stream || max_messages == 0 {
                continue;
            }
            if verified.as_ref() != Some(&run.proof) {
                if !run.proof.verify(&*self.signer) {
                    self.counters.history_damaged += 1;
                    continue;
                }
                verified = Some(run.proof.clone());
            }
            for (seq, payload) in (run.first..).zip(run.payloads) {
                if seq <= sent_through || seq > last || max_messages == 0 {
                    continue;
                }
                if !run.proof.proves(seq, &payload) {
                    self.counters.history_damaged += 1;
                    break;
                }
                let Some(p) = self.peers.get_mut(&to) else { return };
                if !p.serve_bytes.take_n(payload.len().try_into().unwrap_or(u32::MAX), now) {
                    self.counters.repairs_over_budget += max_messages;
                    return;
                }
                sent_through = seq;
                max_messages -= 1;
                self.counters.recalled += 1;
                self.counters.payloads_sent += 1;
                self.counters.payload_bytes_sent += payload.len() as u64;
                let (slot, proof_run) = (p.slot, (run.proof.first, run.proof.last()));
                if self.streams.get_mut(&stream).is_none_or(|s| s.note_sent(slot, seq, proof_run)) {
                    self.counters.manifests_sent += 1;
                    self.send(to, Message::Manifest(run.proof.clone()));
                }
                // Hops are not stored: counted from this node, as for the origin's own messages.
                self.send(to, Message::Data { stream, seq, hops: 0, payload });
            }
        }
    }
}
