//! What a parked stream keeps of its retention cache: its settled payloads, without the rest of its
//! state.
//!
//! A stream that retains a payload cannot be parked by emptying its cache alone, and in a large
//! network with many origins the settled payloads a node keeps for newcomers and healed partitions
//! (`Config::retention_settled_max_messages`) belong to almost as many streams: each one's full
//! state (its box, table slot, recency entry, marks) would stay for a payload or two. So a quiet
//! stream whose retained payloads every neighbour holds is parked with them: its watermark goes to
//! the remembered marks as for any parked stream, and its run of payloads, with its serial in the
//! retention log, stays here. The log releases them as it does tracked streams' payloads (oldest
//! first, by age and by the settled budgets, which count them); grafts and `Sync` are served from
//! here; a stream tracked again takes its run back. A run exists only while it holds a payload, so
//! there are never more runs than retained payloads.
//!
//! A parked run counts as settled even for a neighbour that came up after it was parked: what that
//! neighbour lacks of it, it learns from our `Sync` (which lists the parked runs) and gets in
//! answer to its own, while the run is kept.

use std::time::Instant;

use rand::Rng;

use super::ids::StreamId;
use super::retained::RetainedRun;
use super::router::Router;

/// A parked stream's retained payloads.
#[derive(Debug)]
pub(crate) struct ParkedRun {
    /// The stream's serial in the retention log (see `StreamState::serial`), kept for its entries.
    pub(crate) serial: u64,
    pub(crate) run: RetainedRun,
}

impl<R: Rng> Router<R> {
    /// Parks the quiet streams whose retained payloads are all settled, keeping the payloads (see
    /// the module docs). Quiet as `park_quiet_streams` means it: nothing buffered, proven ahead or
    /// under repair, no acknowledgement waiting to go out, something delivered, and no payload or
    /// announcement of it for `Config::stream_park_after`.
    pub(crate) fn park_settled_streams(&mut self, now: Instant) {
        let quiet_for = self.config.stream_park_after;
        let own = self.own;
        let settled: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(id, s)| {
                **id != own
                    && s.retained_span().is_some_and(|(_, last)| s.settled >= last)
                    && !s.has_repair()
                    && s.proofs.is_empty()
                    && !s.provisional
                    && !s.ack_dirty
                    && s.delivered > 0
                    && now.saturating_duration_since(s.last_active) >= quiet_for
            })
            .map(|(id, _)| *id)
            .collect();
        for id in settled {
            let Some(state) = self.streams.get_mut(&id) else { continue };
            let mut run = std::mem::replace(&mut state.retained, RetainedRun::new(0));
            run.shrink();
            let serial = state.serial;
            self.counters.streams_parked += 1;
            // The run's payloads stay in the totals: `forget_stream` finds the state's cache empty.
            self.evict_stream(id, now);
            self.serials.insert(serial, id);
            self.parked_runs.insert(id, ParkedRun { serial, run });
        }
    }

    /// Gives a stream tracked again its parked run back, with its serial (its log entries name it).
    /// False when it has none.
    pub(crate) fn unpark_run(&mut self, id: StreamId) -> bool {
        let Some(parked) = self.parked_runs.remove(&id) else { return false };
        let Some(state) = self.streams.get_mut(&id) else { return false };
        self.serials.remove(&state.serial);
        state.serial = parked.serial;
        state.retained = parked.run;
        true
    }

    /// Drops a parked stream's payloads up to and including `seq`, and its run once empty.
    pub(crate) fn expire_parked_through(&mut self, id: StreamId, seq: u64) {
        let Some(parked) = self.parked_runs.get_mut(&id) else { return };
        let (bytes, count) = parked.run.expire_through(seq);
        self.retained_bytes -= bytes;
        self.retained_count -= count;
        if parked.run.len() == 0 {
            let serial = parked.serial;
            self.parked_runs.remove(&id);
            self.serials.remove(&serial);
        }
    }
}
