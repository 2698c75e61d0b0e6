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
//!   is random per start of the origin. Dedup is a per-stream contiguous watermark plus a small
//!   reorder buffer: O(1) per message, memory bounded, no set of every id.
//! * **Ordered, exactly-once delivery.** Payloads are relayed as soon as they arrive (a hole here never
//!   delays the rest of the tree) but delivered in order; out-of-order ones wait in a bounded reorder
//!   buffer. A hole that cannot be filled within `gap_timeout` is reported as [`core::Event::Gap`] and
//!   delivery continues: never skipped silently. Time without any neighbour does not count (nobody
//!   could repair the hole then).
//! * **Retention and repair.** Recent payloads stay in a bounded retention cache (`retention_time`,
//!   `retention_max_messages`, `retention_max_bytes`) to answer `Graft`s.
//! * **Acks and resend.** Cumulative `Ack`s (per-stream watermarks, batched every `ack_interval` or
//!   every `ack_every` deliveries) tell a node what its neighbours hold. When a neighbour goes down with
//!   unacknowledged payloads, they are re-offered by digest on the remaining links, so whoever lacks
//!   them pulls them.
//! * **Sync.** Two new neighbours exchange `Sync` (their watermarks) and push each other, from
//!   retention, what the other lacks: a node cut off briefly catches up. A node that never heard of a
//!   stream adopts the peer's position (or, for a young stream, starts from 1): a newcomer is not
//!   flooded with history and does not wait for messages from before it joined.
//! * **Slow peers.** When the driver reports a full outbound queue (`handle_congested`), that peer is
//!   demoted to lazy and everything it has not acknowledged is re-offered by digest: it pulls at its
//!   own pace and never stalls the others.
//! * **Bounded against hostile peers.** List lengths, ranges, reorder buffers (per stream and total),
//!   tracked streams and payloads served per request are all bounded; see [`core::Config`].
//!
//! ## Layout
//!
//! * [`core`] — the sans-IO state machine ([`core::Router`]): events in, [`core::Action`]s out, no
//!   tokio, no clock, no OS randomness.
//! * [`wire`] — stream references (`StreamDecl`) and conversion between [`core::Message`] and the
//!   protobuf bodies of `dotray-codec`, with validation.
#![forbid(unsafe_code)]

pub mod core;
pub mod wire;
