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
//! * every link starts eager, so the first messages flood; the tree is then cut out of the eager
//!   links by the **tree beacon** (below), not by duplicate payloads as in the paper;
//! * a node that learns from a digest (or an ack) of a message it lacks waits `graft_timeout` for the
//!   tree to bring it, then asks an announcer for it with `Graft`. The lazy links are the spare tree:
//!   what a dead relay no longer brings is pulled over them.
//!
//! ### The tree beacon, and why payloads do not prune
//!
//! This is the one place where the design story is told; the code and `docs/ARCHITECTURE.md` link
//! here, and the measurements behind each choice are dated in `docs/PERFORMANCE.md`.
//!
//! The paper's evaluation sends one message at a time, and prunes the link of every duplicate. With
//! many origins sending at once that does not settle: messages of different origins meet themselves
//! at different links of the same cycle, so each cycle is cut in several places, the eager graph falls
//! apart, every node at the edge of a piece grafts, which makes new cycles, and so on (the simulator
//! classifies every duplicate reception by cause in the `duplicates_*` counters, which is how this was
//! found). Pruning on one origin's messages only fixes that while that origin speaks often; when it
//! is rare (every wallet of a blockchain network is an origin of a few transactions), nothing prunes
//! and the cycles stay. So in dotray payloads never prune. A small periodic message does:
//!
//! * **The root.** Nodes rank as roots by smaller id (or, with `Config::root_publisher_rate` set,
//!   publishers first: nodes that broadcast at least that many messages in two intervals, for
//!   `Config::root_publisher_hold` after); the first-ranked node that sends beacons is the *tree
//!   root*. Every `Config::beacon_interval` it
//!   signs a new *round* ([`core::Beacon`]: its stream, the round number, whether it is a publisher,
//!   its Ed25519 signature over them). A node that hears no root, or whose root has been silent for
//!   `Config::root_timeout` (it died, or a partition cut it off), or that ranks before the root, sends
//!   rounds itself; hearing a round of a root that ranks before it, it stops. A newcomer waits an
//!   interval and a random part of another before its first round, so it hears the root first.
//!   The tree is a shortest-path tree from its root, so a busy publisher as the root would send its
//!   own messages along the shortest paths; but each change of root moves links all over the tree,
//!   and a publisher becomes the root just as its burst starts, so the rule is off by default.
//! * **One flood per round.** A node passes a new round on to every neighbour at once: pushed on its
//!   tree links, *announced* on the others, with the depth a receiver would have below it. Rounds are
//!   an interval apart, far longer than a flood takes, so no two rounds' floods overlap; that is what
//!   makes the cuts consistent.
//! * **A round cuts each cycle once.** The first pushed copy of a round is the node's tree copy: its
//!   sender is the node's parent, its hop count the node's depth. A second pushed copy of the same
//!   round came around a cycle: its link is pruned (lazy here, `Prune` to the sender). One flood meets
//!   itself exactly once per cycle, so each round leaves exactly the tree of first copies: connected,
//!   without cycles. The round's signature is checked once per node (a forged round is a violation
//!   of the neighbour that sent it, and goes no further); copies of a round already held are compared,
//!   not checked.
//! * **A shallow tree.** An announcement that offers a depth `Config::optimization_threshold` hops
//!   smaller than the node's own moves the node's tree link there (`Graft` that asks for nothing, and
//!   `Prune` to the old parent), at most once per round. Nothing below a node can offer a smaller
//!   depth than its own, so a move never closes a cycle; over a few rounds every node's depth comes
//!   within the threshold of its distance from the root in hops.
//! * **Re-attaching.** A node whose round came only as announcements (the tree is cut above it: a
//!   relay died) grafts the shallowest announcer one graft delay later and passes the round on below
//!   it. While rounds flow, they alone shape the tree: a data graft only fetches what is missing.
//!   Without rounds (no root yet, or between a root's death and `root_timeout`), a data graft also
//!   makes its link a tree link, as in Plumtree, and a node left with no tree link at all grafts its
//!   fastest neighbour at once.
//! * **Both ends agree.** The `tree` flag of each copy says how the sender sees the link: a push over a
//!   link the receiver made lazy gets another `Prune` (the first was lost, or crossed a graft), and an
//!   announcement over a link the receiver pushes on makes it lazy there too, except just after a
//!   graft (the announcement may predate it). So a link is never left eager at one end only.
//! * **Cost.** One small message per link and one signature check per node per round (about a
//!   hundred bytes each way). A cycle that a data graft made while rounds were not flowing lasts at
//!   most one interval.
//! * **What a hostile neighbour can do with it.** Forge a round: it cannot (the root's signature), and
//!   it is banned for trying. Replay an old round: it is stale and changes nothing; pushing a copy of
//!   the current round a second time only prunes the replayer's own link. Send rounds faster than any
//!   root would: rounds closer than a quarter interval are dropped unchecked. Lie about its depth (the
//!   hop count is not signed): it can attract tree links to itself and then withhold payloads, which
//!   costs the nodes below it one graft delay per message until the next rounds move them (the lazy
//!   links still announce everything). Become the root, with a key pair ground to a small id (or,
//!   with the publisher rule on, by broadcasting enough): it then shapes the tree as any root does,
//!   and can stop sending rounds, after which the next smallest takes over within `root_timeout`;
//!   messages flow meanwhile. None of it loses or alters a message.
//!
//! Other departures from the paper:
//!
//! * **long graft timeout.** A graft fired while the tree copy is merely slow (*premature*) fetches
//!   a duplicate. So `graft_timeout` is well above the link latency, as in the paper, and adapts (up to
//!   `max_graft_timeout`) to twice the lag measured between a digest and the tree copy.
//! * without rounds, a graft round makes at most one link eager: retries to other announcers only
//!   repair, so a message nobody can serve does not turn every link eager one retry at a time.
//! * receiving a new payload does not make its link eager (payloads in flight on a just-pruned link
//!   would revive it).

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
//! * **A group at a time where it can.** An origin's manifest also lists one digest per *group* of
//!   [`proof::GROUP_LEN`] consecutive messages ([`proof::group_digest`]: BLAKE3 over the group's
//!   payloads, each with its length, laid end to end), signed with the hash list. Hashing one small
//!   payload is serial work; hashing a group's payloads laid end to end, BLAKE3 hashes many chunks
//!   at once. So while the driver hands in what it read from one connection, a node holds the
//!   payloads of a group that arrive in order from one neighbour, and when the group is whole
//!   proves all of them with one digest ([`core::Router::begin_batch`]; `core/group.rs`). Anything
//!   else (a group cut by the end of the read, another sender, a payload of 2 KiB or more, a digest
//!   that fails) takes the one-hash-per-payload path, which is what decides and whom it blames:
//!   the group digest can only accept payloads the hash list would accept too.
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
//! * **Truncate or split** a manifest: the count, every hash and every group digest are signed; a
//!   shorter or altered list fails verification, and so does a manifest stripped of its group digests.
//!   A group digest covers the payloads' lengths, so the same bytes split otherwise between the
//!   payloads of a group do not match it.
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
//!   low rate) and one hash per payload ([`proof::payload_hash`]: SHA-256 or BLAKE3 by length), or,
//!   for a group received whole in one read, one BLAKE3 pass over the group; a neighbour that sends
//!   a group with a bad payload makes this node hash that group twice before it is banned; every
//!   link 34 bytes per message (its hash and its share of a group digest) and about a hundred per
//!   manifest.
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
