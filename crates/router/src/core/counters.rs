//! Counters the application can read ([`Counters`]) and a snapshot of the broadcast tree
//! ([`Topology`]).

use dotray_codec::NodeId;

/// Monotonic counters of one router core. Cheap to copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Messages this node originated with `broadcast`.
    pub broadcasts: u64,
    /// `Data` messages sent (every copy to every peer, eager pushes and repairs).
    pub payloads_sent: u64,
    /// Payload bytes sent (sum of payload lengths of `payloads_sent`).
    pub payload_bytes_sent: u64,
    /// `Data` messages received.
    pub payloads_received: u64,
    /// Payload bytes received.
    pub payload_bytes_received: u64,
    /// Payloads delivered in order (to the node core, which makes messages of them: a large
    /// message's pieces count one each).
    pub delivered: u64,
    /// `Data` received for a message already held (or already delivered).
    pub duplicates: u64,
    /// Of `duplicates`: answers to our own `Graft` that the tree copy beat (a premature graft).
    pub duplicates_graft_answer: u64,
    /// Of `duplicates`: the tree copy of a message we had already obtained by grafting (a premature
    /// graft: the tree was slower than the graft timeout).
    pub duplicates_after_graft: u64,
    /// Of `duplicates`: pushed over a link that is eager in our view (a cycle in the eager graph).
    pub duplicates_eager: u64,
    /// Of `duplicates`: pushed over a link that is lazy in our view (in flight when we pruned it, a
    /// link the sender still thinks eager, or a resend answering `Sync`).
    pub duplicates_lazy: u64,
    /// `Data` dropped because it was beyond the reorder window, or the reorder buffer was full.
    pub dropped_ahead: u64,
    /// Payloads buffered behind a hole beyond the stream's relay budget (`relay_ahead_bytes`),
    /// relayed only once delivered or once the budget has room again.
    pub relays_deferred: u64,
    /// Payloads taken from the reorder buffer of the stream holding the most, to make room for
    /// another stream's (see `fair_share.rs`).
    pub reorder_evicted: u64,
    /// Payloads taken from the retention cache of the stream retaining the most, to keep the cache
    /// within its bounds (see `fair_share.rs`).
    pub retention_evicted: u64,
    /// `IHave` messages sent.
    pub ihaves_sent: u64,
    /// `Graft` messages sent.
    pub grafts_sent: u64,
    /// Graft timers that found the stream's watermark moving (the tree delivering, late) and waited
    /// another graft delay instead of grafting.
    pub grafts_deferred: u64,
    /// `Graft` messages received.
    pub grafts_received: u64,
    /// `Prune` messages sent.
    pub prunes_sent: u64,
    /// `Prune` messages received.
    pub prunes_received: u64,
    /// Payloads sent in answer to a `Graft` or `Sync` (repairs).
    pub resends: u64,
    /// Of `resends`: those answering a `Sync`.
    pub sync_resends: u64,
    /// Payloads asked for by a `Graft` or `Sync` and not sent: the neighbour was over its repair
    /// budget (`Config::serve_bytes_per_sec`).
    pub repairs_over_budget: u64,
    /// Reads of the history on disk asked of the driver (`Action::Recall`).
    pub recalls: u64,
    /// Payloads sent from the history on disk (not counted in `resends`).
    pub recalled: u64,
    /// Runs or payloads read back from the history that failed their check (a damaged file) and were
    /// not sent.
    pub history_damaged: u64,
    /// Ranges re-offered by digest after a neighbour went down or a send was dropped by congestion.
    pub reoffers: u64,
    /// Tree optimisations: a beacon announcement from a shallower neighbour moved the tree link there.
    pub optimisations: u64,
    /// Beacon copies sent (every copy to every neighbour; see *The tree beacon* in the crate docs).
    pub beacons_sent: u64,
    /// Beacon copies received.
    pub beacons_received: u64,
    /// New beacon rounds taken (each one's signature checked).
    pub beacon_rounds: u64,
    /// Rounds that came only as announcements, so that this node grafted the shallowest announcer.
    pub tree_grafts: u64,
    /// `Gap` events emitted.
    pub gaps: u64,
    /// Messages covered by those gaps.
    pub gap_messages: u64,
    /// New streams refused: over the new-stream budget of the neighbour whose message named them or
    /// of the node (`Config::new_stream_burst`, `Config::total_new_stream_burst`), or named by a
    /// peer that is not a neighbour.
    pub streams_refused: u64,
    /// Streams forgotten for idleness or to make room.
    pub streams_evicted: u64,
    /// Quiet streams let go of, their watermark remembered: nothing of them was retained, buffered
    /// or under way any more.
    pub streams_parked: u64,
    /// Streams that came back after an eviction or a park and resumed at their remembered watermark.
    pub streams_restored: u64,
    /// Manifests, digests, marks and payloads of a stream let go of that named only messages it had
    /// delivered: ignored, the stream left where it was.
    pub parked_news: u64,
    /// Protocol violations reported.
    pub violations: u64,
    /// Manifests this node signed for its own messages.
    pub manifests_signed: u64,
    /// `Manifest`s sent (every copy to every peer).
    pub manifests_sent: u64,
    /// `Manifest`s received.
    pub manifests_received: u64,
    /// Of those, signatures checked (a copy of a manifest already held is not checked again).
    pub manifests_verified: u64,
    /// Groups of payloads proven at once by their manifest's group digest (see `group.rs`).
    pub groups_proven: u64,
    /// New payloads dropped because no verified manifest covered them (the sender did not send one
    /// first, or it was dropped over the proof budget): fetched again by the repair path.
    pub unproven_payloads: u64,
    /// Verified manifests dropped over `max_proof_bytes` or `max_stream_proof_bytes`.
    pub proofs_dropped: u64,
    /// Validly signed manifests that contradict one already held (the origin signed two versions of
    /// one sequence number): the first one stands.
    pub equivocations: u64,
}

/// The node's current view of the broadcast tree: which neighbours it pushes payloads to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    /// Neighbours receiving payloads eagerly (tree links), sorted.
    pub eager: Vec<NodeId>,
    /// Neighbours receiving only digests, sorted.
    pub lazy: Vec<NodeId>,
}
