//! # dotray-router — broadcast along a self-repairing spanning tree
//!
//! Every node of a dotray network receives every broadcast message **exactly once, in per-origin
//! order, with nothing lost silently**. This crate is the layer that does it, above membership (which
//! keeps each node connected to a few *neighbours*) and below the application.
//!
//! ## Plumtree
//!
//! The dissemination protocol is Plumtree — Leitão, Pereira, Rodrigues, *Epidemic Broadcast Trees*,
//! SRDS 2007 (<https://asc.di.fct.unl.pt/~jleitao/pdf/srds07-leitao.pdf>); the readable reference
//! implementation we follow is iroh-gossip's `src/proto/plumtree.rs`
//! (<https://github.com/n0-computer/iroh-gossip>). Each node splits its neighbours into
//! **eager** links (the spanning tree) and **lazy** links (everything else):
//!
//! * a payload (`Data`) is pushed along eager links only; lazy links get a small digest (`IHave`) of
//!   what the node has, batched every `ihave_interval` as *ranges* of sequence numbers;
//! * every link starts eager, so the first messages flood; a node that receives a payload it already
//!   has answers `Prune`, and the link becomes lazy. After a few messages the eager links form a tree
//!   and each node receives each payload once;
//! * a node that learns from a digest (or an ack) of a message it lacks waits `graft_timeout` for the
//!   tree to bring it, then asks an announcer for it with `Graft`, which also makes that link a tree
//!   link again. This is how the tree repairs itself when a link or relay dies: the lazy links are the
//!   spare tree;
//! * tree optimisation: a digest arriving over a path `optimization_threshold` hops shorter than the
//!   tree path grafts that link and prunes the long one; and when the tree copy of a message we had
//!   to graft arrives after the graft's answer, the announcer's (faster) link replaces the slow one
//!   (both only for the pruning origin's messages, see below).
//!
//! ### Where dotray departs from the paper, and why
//!
//! This is the one place where the design story is told; the code and `docs/ARCHITECTURE.md` link
//! here, and the measurements behind each choice are dated in `docs/PERFORMANCE.md`.
//!
//! The paper's evaluation sends one message at a time. With one publisher, textbook Plumtree turns
//! the eager links into a spanning tree and the redundancy goes to 0. With many origins sending at once
//! it does not settle (the simulator classifies every duplicate reception by cause in the
//! `duplicates_*` counters, which is how this was found): pruning on *every* duplicate cuts each
//! cycle of the eager graph in several places at once (messages of different origins meet themselves
//! at different links of the same cycle), the eager graph falls apart into pieces, every node at the
//! edge of a piece grafts, which makes new cycles, and so on. So:
//!
//! * **one pruning origin.** Only messages from one origin change the tree by pruning: the *pruning
//!   origin*, the smallest origin id heard from within `Config::prune_origin_timeout`, which every
//!   node works out alike. A duplicate of one of its messages prunes (textbook: lazy here, `Prune` to
//!   the sender); so do the two tree optimisations (a swap is a prune too). One message meets itself
//!   at exactly one link per cycle, and the messages of one origin follow the same paths one after
//!   the other, so each cycle is cut exactly once and the tree never falls apart. A single publisher is
//!   its own pruning origin: that case is textbook Plumtree. Duplicates of other origins' messages
//!   are only counted; they vanish once the tree is a tree. The optimisation swaps are restricted the
//!   same way: allowed for every origin, they alone kept cutting the tree in several places.
//! * **long graft timeout.** A graft fired while the tree copy is merely slow (*premature*) closes a
//!   cycle, which costs redundancy until the pruning origin's next message cuts it. So
//!   `graft_timeout` is well above the link latency, as in the paper, and adapts (up to
//!   `max_graft_timeout`) to twice the lag measured between a digest and the tree copy.
//! * a graft makes its link eager on both sides (textbook), but a graft round makes at most one link
//!   eager: retries to other announcers only repair, so a message nobody can serve does not turn
//!   every link eager one retry at a time.
//! * receiving a new payload does not make its link eager (payloads in flight on a just-pruned link
//!   would revive it); links become eager at start, through grafts and through the optimisation.
//! * tree optimisation only trusts single-stream digests: `IHave.hops` is the smallest hop count of
//!   the whole batch, which says nothing about one stream's path when the batch mixes streams.
//! * a node left with no eager link at all grafts its fastest neighbour at once.
//!
//! ## What dotray adds for reliability
//!
//! * **Identity and dedup.** A message is `(StreamId { origin, epoch }, seq)`, seq from 1; the epoch
//!   is new per start of the origin: its start time (Unix seconds) above 32 random bits. Dedup is a per-stream contiguous watermark plus a small
//!   reorder buffer: O(1) per message, memory bounded, no set of every id.
//! * **Ordered, exactly-once delivery.** Payloads are delivered in order; out-of-order ones wait in a
//!   bounded reorder buffer. The next payload in order is relayed as soon as it arrives, and so are
//!   those behind a hole up to a per-stream relay budget (`relay_ahead_bytes`; the rest go on when the
//!   hole fills or is given up): a hole here delays the rest of the tree by one repair at most, and a
//!   stream whose first hole never fills (a hostile origin that never sends it) cannot make the whole
//!   network carry more than that budget of payloads nobody can deliver yet. A hole that cannot be filled within `gap_timeout` is reported as [`core::Event::Gap`] and
//!   delivery continues: never skipped silently. Time without any neighbour does not count (nobody
//!   could repair the hole then).
//! * **Retention and repair.** Recent payloads stay in a bounded retention cache (`retention_time`,
//!   `retention_max_messages`, `retention_max_bytes`) to answer `Graft`s.
//! * **Fair shares.** The reorder buffers and the retention cache are node-wide pools; when one is
//!   full, the streams holding the most give up payloads first (max-min fairness), so a flood from
//!   one origin, or many, never pushes out what a light origin needs.
//! * **Acks and resend.** Cumulative `Ack`s (per-stream watermarks, batched every `ack_interval` or
//!   every `ack_every` deliveries) tell a node what its neighbours hold. When a neighbour goes down with
//!   unacknowledged payloads, they are re-offered by digest on the remaining links, so whoever lacks
//!   them pulls them.
//! * **Sync.** Two new neighbours exchange `Sync` (their watermarks) and push each other, from
//!   retention, what the other lacks: a node cut off briefly catches up. A node that never heard of a
//!   stream takes it up `backfill_new_stream` messages before the first it hears of: a newcomer is
//!   not flooded with history and does not wait for messages from before it joined. A stream that
//!   its origin started after the node joined (the epoch's start time, within
//!   `stream_start_tolerance`) began apart from it, in a partition or at a restarted origin only a
//!   few nodes could reach; every message of it is owed, and the node takes it up from message 1.
//! * **Slow peers.** When the driver reports a full outbound queue (`handle_congested`), that peer is
//!   demoted to lazy and everything it has not acknowledged is re-offered by digest: it pulls at its
//!   own pace and never stalls the others.
//! * **Bounded against hostile peers.** List lengths, ranges, reorder buffers (per stream and total),
//!   tracked streams and payloads served per request are all bounded; see [`core::Config`].
//!
//! ## Across restarts, and history on disk
//!
//! The core reads no disk; it tells its driver what to keep and asks it what to read.
//!
//! * **Its own stream.** Each signed batch is announced ([`core::Action::Sealed`]) before its sends;
//!   a driver with a data directory stores it first, and a restarted router numbers on after it
//!   ([`core::Router::continue_stream`]) and serves the stored batches
//!   ([`core::Router::restore_own_batch`]).
//! * **Where it stood in others' streams.** A stored position becomes a remembered watermark
//!   ([`core::Router::resume_stream`]): when a neighbour tells of the stream, the router asks for
//!   everything after it, a reorder window at a time (`StreamState::announced_hi`).
//! * **History** (`Config::history`). Every delivered payload goes to the driver with its manifest
//!   ([`core::Action::Archive`]); a request for what lies before the retained span becomes
//!   [`core::Action::Recall`] (one per neighbour at a time, sized by its repair budget), and what the
//!   driver reads back is checked against its manifest before it is sent
//!   ([`core::Router::handle_recalled`]).
//! * **What nobody holds.** A stream whose window after the watermark nobody serves for
//!   `gap_timeout`, with nothing buffered, reports a gap up to a window before a number the origin's
//!   verified manifest proves exists, and goes on: it never waits for ever, and no neighbour's
//!   unsigned claim can make it skip.
//!
//! ## Only an origin can speak for its stream
//!
//! Links are authenticated (`dotray-transport`'s Noise channel), but a neighbour is just another
//! node with a key pair of its own: it could relay a payload of its own making under another
//! origin's stream and sequence number, skip or fill numbers, or rebind where a stream comes from.
//! So every broadcast message carries its origin's proof, checked by every node before it relays or
//! delivers anything. The pieces are in [`proof`].
//!
//! * **Manifests, not per-message signatures.** An Ed25519 verification costs tens of microseconds,
//!   many times what relaying a small message costs. The origin numbers each broadcast at once but
//!   signs them in *batches*: a [`proof::Manifest`] lists the hash of each payload of a run
//!   `first..=last` of its stream, and the origin signs the stream (origin and epoch), `first`, the
//!   count and the hash of the hash list, under a domain tag. A full batch (`Config::max_batch_len`,
//!   256) is signed at once; otherwise the origin signs at most once per `Config::seal_interval`
//!   (20 ms). After a quiet spell a broadcast is signed as soon as the driver has handed in every
//!   broadcast waiting ([`core::Router::seal_broadcasts`]), so it waits for no other; under load,
//!   the broadcasts of an interval share one signature, and each waits at most the interval.
//! * **Manifest first, on every link.** Before the first `Data` a manifest covers, a sender sends that
//!   manifest on the same link (it remembers per neighbour and stream the last one sent; a `Graft` or
//!   `Sync` from the neighbour makes it send them again with the repairs). Repairs carry proofs:
//!   retention keeps each payload with its manifest (shared by the run).
//! * **Checked once, then one hash per payload.** A receiver verifies a manifest's signature once (a
//!   copy of a manifest it holds is compared, not verified again; one for messages it delivered
//!   already is dropped unread) and keeps it until the messages it covers are delivered, within a
//!   byte budget per stream and per node (`max_stream_proof_bytes`, `max_proof_bytes`). A new `Data`
//!   is relayed and delivered only if a held manifest lists its payload's hash at its sequence
//!   number.
//! * **Origin addresses are signed too**: a `StreamDecl` carries the origin's signature over its
//!   listen address (checked once per stream and address by the driver), so no relay can rebind it.
//!
//! What a malicious neighbour can and cannot do, and what it costs the honest nodes:
//!
//! * **Forge** a payload, or a manifest, for another origin's stream: it cannot without the origin's
//!   secret key (Ed25519's unforgeability; finding a second payload with a listed hash is out of
//!   reach). The first honest node to receive the forgery finds a bad signature or a payload that does
//!   not match a verified manifest: that is provable misbehaviour (the sender should have checked),
//!   so it reports [`core::Action::Violation`] and the driver bans the sender's proven identity. The
//!   forgery goes no further than the forger's own neighbours. Cost: one verification or one hash.
//! * **Skip, fill or reorder** an origin's sequence numbers: a payload far ahead, with nothing to prove
//!   it, is not buffered; claims in digests, acks and `Sync` only make a node ask for messages (a
//!   bounded graft round); and a `Gap` is only ever declared in front of a payload the node holds,
//!   which a verified manifest proved, so the origin itself said a later number exists: a `Gap` means
//!   real loss. A newcomer takes a stream's starting point from a neighbour's `Sync` or digest, which
//!   could lie (too high, to make it skip the real messages; too low, to strand it behind the reorder
//!   window): the stream stays *provisional* until its first proven payload, which moves the starting
//!   point to itself if the claim was wrong (`Router::reanchor`).
//! * **Replay across epochs**: the epoch is part of what the origin signs, so an old epoch's message
//!   relabelled as the current epoch's fails like any forgery. Replaying an old epoch as itself replays
//!   authentic messages of the origin's earlier run: a node that has them drops them as duplicates, but
//!   a node that never had that run delivers them as what they are (messages of that run). Ordering
//!   epochs per origin, so a superseded run is refused, needs the durable epochs of a later issue.
//!   Likewise a stream a node forgot (idle for `stream_idle_timeout`, longer than any retention)
//!   starts again from its next manifest: authentic old messages of it, replayed by a neighbour that
//!   kept them, would be delivered again.
//! * **Truncate or split** a manifest: the count and every hash are signed; a shorter or altered list
//!   fails verification.
//! * **Withhold a manifest, or send data before it**: the payload is unproven. It is neither relayed
//!   nor delivered (and not even hashed); it counts as announced by that neighbour, so the repair path
//!   fetches it, with its manifest, from whoever announces it. This is not reported as a violation: an
//!   honest neighbour's manifest can be lost to this node's own budget (over `max_proof_bytes`, or a
//!   stream it had no room for), and a neighbour must never be banned for our limits. A neighbour that
//!   withholds everything can delay only what it alone could bring (eclipse defences are membership's).
//! * **Start streams without end** (any key pair may, one per epoch, each validly signed): the stream
//!   table stays open to new origins, with budgets of new streams per neighbour and per node and
//!   least-recently-active eviction that remembers watermarks (`core/stream_table.rs` tells the
//!   story); a stream over budget costs no verification.
//! * **Ask for everything, again and again** (a `Graft` or `Sync` naming all of retention): repairs sent
//!   to one neighbour are budgeted in bytes per second (`serve_bytes_per_sec`).
//! * **The origin itself** can sign two versions of one number (equivocation). Each node keeps the first
//!   manifest it verified and counts the other (`Counters::equivocations`); different nodes may take
//!   different versions. Only the origin's own stream suffers.
//! * What it costs: the origin one signature per batch; every node one Ed25519 verification per
//!   manifest (one per `seal_interval` of the origin's broadcasts under load, one per message at a
//!   low rate) and one hash per payload ([`proof::payload_hash`]: SHA-256 or BLAKE3 by length);
//!   every link 32 bytes per message and about a hundred per manifest.
//!
//! ## Layout
//!
//! * [`core`] — the sans-IO state machine ([`core::Router`]): events in, [`core::Action`]s out, no
//!   tokio, no clock, no OS randomness.
//! * [`proof`] — manifests, the signed origin address, and the [`proof::Signer`] the core is given.
//! * [`wire`] — stream references (`StreamDecl`) and conversion between [`core::Message`] and the
//!   protobuf bodies of `dotray-codec`, with validation.
#![forbid(unsafe_code)]

pub mod core;
mod key_cache;
pub mod proof;
pub mod wire;
