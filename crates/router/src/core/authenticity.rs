//! Only an origin can speak for its stream: receiving manifests (verify once, keep within budget),
//! payloads that no manifest proves, and how the first proven payload of a new stream fixes where
//! the stream starts. The scheme and its security argument are in the crate docs.

use std::sync::Arc;
use std::time::Instant;

use dotray_codec::NodeId;

use super::ids::{SeqRange, StreamId};
use super::router::Router;
use super::stream::Stored;
use crate::proof::Manifest;

impl<R: rand::Rng> Router<R> {
    /// A `Manifest` from `from`. A copy of one held is dropped without checking its signature again;
    /// one for messages already delivered is useless and dropped unchecked; anything else is
    /// verified, and a bad signature is `from`'s violation (it must check before relaying). A valid
    /// one creates its stream if new (starting where `Router::adoption_start` says).
    pub(crate) fn on_manifest(&mut self, from: NodeId, manifest: Arc<Manifest>, now: Instant) {
        self.counters.manifests_received += 1;
        let stream = manifest.stream;
        if stream.origin == self.me {
            // Our own, relayed back to us (or from an earlier run of ours): nothing to learn.
            return;
        }
        let window = self.config.reorder_window;
        // A new stream takes its place in the table before its signature is checked: one the node
        // has no budget for costs no verification (see `stream_table.rs`).
        let known = self.streams.contains_key(&stream);
        let span = (self.adoption_start(stream, manifest.first), manifest.last());
        if !known && !self.ensure_stream(from, stream, span, now) {
            return;
        }
        if let Some(state) = self.streams.get(&stream) {
            if state.holds_proof(&manifest) {
                return;
            }
            // While a stream is provisional its watermark is only a claim: keep what the origin
            // proves wherever it lies, so the first proven payload can move the watermark.
            if !state.provisional && manifest.first > state.delivered + window {
                // Beyond the window: not kept, but one (per skip) is checked, as proof that the
                // stream went on that far (see `StreamState::proven_ahead`).
                if state.repair().proven_ahead.is_none() {
                    self.counters.manifests_verified += 1;
                    if !manifest.verify(&*self.signer) {
                        return self.violation(from, "manifest with a bad signature");
                    }
                    if let Some(state) = self.streams.get_mut(&stream) {
                        state.repair_mut().proven_ahead = Some(manifest.first);
                    }
                }
                return;
            }
            if !state.provisional && manifest.last() <= state.delivered {
                return;
            }
        }
        self.counters.manifests_verified += 1;
        if !manifest.verify(&*self.signer) {
            if !known {
                self.counters.streams_evicted += 1;
                self.evict_stream(stream, now);
            }
            return self.violation(from, "manifest with a bad signature");
        }
        let budget = self.config.max_stream_proof_bytes;
        if self.proof_bytes + manifest.size() > self.config.max_proof_bytes {
            self.counters.proofs_dropped += 1;
            return;
        }
        let Some(state) = self.streams.get_mut(&stream) else { return };
        let size = manifest.size();
        match state.store_proof(manifest, budget) {
            Stored::Kept => self.proof_bytes += size,
            Stored::Contradicts => self.counters.equivocations += 1,
            Stored::OverBudget => self.counters.proofs_dropped += 1,
        }
    }

    /// A new payload that no verified manifest covers. It is neither relayed nor delivered. The
    /// sender owed us the manifest first, but an honest one may have sent it while we could not
    /// keep it (over budget, beyond the window, for a stream we had not room for), so this is no
    /// proof of malice: the message counts as announced by `from`, and the repair path fetches it
    /// with its manifest (answers to a `Graft` always carry theirs).
    pub(crate) fn on_unproven(&mut self, from: NodeId, stream: StreamId, seq: u64, now: Instant) {
        self.counters.unproven_payloads += 1;
        self.note_announced(from, SeqRange::single(stream, seq), false, now);
    }

    /// The first proven payload of a provisional stream (nothing delivered yet; the watermark came
    /// from someone's claim) lies at or behind the watermark, or beyond the reorder window: the
    /// claim was wrong, so the stream starts just before this payload instead. This is what keeps
    /// a neighbour's false `Sync` or digest from making a newcomer skip a stream's real messages
    /// (claimed too high) or never reach them (claimed too low).
    pub(crate) fn reanchor(&mut self, stream: StreamId, seq: u64) {
        let window = self.config.reorder_window;
        let Some(state) = self.streams.get_mut(&stream) else { return };
        if seq > state.delivered && seq - state.delivered <= window {
            return;
        }
        let start = seq - 1;
        let stale: Vec<u64> = state.repair().buffer.range(..=start).map(|(s, _)| *s).collect();
        for s in &stale {
            if let Some((held, _)) = state.buffer_remove(*s) {
                self.buffered_bytes -= held.payload.len();
            }
        }
        self.buffered_total -= stale.len();
        state.delivered = start;
        state.known_hi = state.known_hi.max(start);
        self.proof_bytes -= state.release_proofs_through(start);
        tracing::debug!(?stream, seq, "provisional stream re-anchored on its first proven payload");
    }
}
