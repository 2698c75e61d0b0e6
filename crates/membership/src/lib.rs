//! # dotray-membership — who is in the network, and who keeps connections to whom
//!
//! This crate is dotray's membership layer. It decides which few nodes each node keeps open connections
//! with, notices when one of them dies, replaces it, and keeps enough knowledge of the rest of the
//! network that a node can always find its way back in. The broadcast router above it sends over the
//! connections this layer chooses.
//!
//! ## The protocol: HyParView
//!
//! The layer implements HyParView (João Leitão, José Pereira, Luís Rodrigues, *HyParView: a membership
//! protocol for reliable gossip-based broadcast*, DSN 2007,
//! <https://asc.di.fct.unl.pt/~jleitao/pdf/dsn07-leitao.pdf>), in the spirit of iroh-gossip's
//! `proto/hyparview.rs`. Each node keeps two *views* of the network:
//!
//! * a small **active view** (5 peers by default) of open TCP connections. Links are symmetric, so the
//!   active views form an undirected graph, the *overlay*; broadcasts travel only over its links. Every
//!   active link is pinged: a peer that stops answering is declared down within seconds;
//! * a larger **passive view** (30 addresses by default) of nodes this node knows but is not connected
//!   to. When an active peer fails or leaves, a passive one replaces it at once.
//!
//! A node joins by sending `Join` to a *seed* (any node of the network). The seed sends the newcomer on
//! `ForwardJoin` random walks through the overlay; the nodes where the walks end connect to it. So the
//! newcomer gets several neighbours spread over the network, and the seed holds only one connection of
//! its own to it, however many nodes join through it. Periodically each node exchanges a sample of its
//! views with a node at the end of another random walk (*peer exchange*, the paper's shuffle), which
//! keeps passive views fresh and well mixed.
//!
//! dotray adds to the paper what a long-running network over TCP needs: round-trip time measurement per
//! link, exponential backoff with jitter for failing addresses (dropped after repeated failures, except
//! the original seeds), a graceful leave (a `Shutdown` goodbye makes peers replace the leaver at once),
//! *partition healing* (a timer that keeps dialing a peer declared down, a seed, or a random passive
//! address, so two halves of a network that were cut apart merge again on their own), and node queries
//! (what a node knows, locally or over the wire).
//!
//! ## Layout
//!
//! * [`core`] — the protocol as a sans-IO state machine, [`core::Membership`]: events in
//!   (`handle_*`), [`core::Action`]s out (`poll_action`). No runtime, no clock, injected randomness, so
//!   the same code runs in a real node (composed with the router by `dotray-node`, whose tokio driver
//!   runs it) and in the `dotray-sim` deterministic simulator.
//! * [`wire`] — conversions between the core's [`core::Message`] and the protobuf bodies of
//!   `proto/dotray/v1/membership.proto`, validating every field a peer sends.
//!
//! ## Driving the core by hand
//!
//! A driver owns the sockets and the clock; the core only sees events. Here two cores are wired
//! together by hand, the way `dotray-node`'s driver and the `dotray-sim` simulator do it:
//!
//! ```
//! use std::time::Instant;
//! use dotray_codec::NodeId;
//! use dotray_membership::core::{Action, Config, Membership, Message, PeerInfo};
//! use rand::{SeedableRng, rngs::StdRng};
//!
//! let now = Instant::now();
//! let a = PeerInfo::new(NodeId::from_bytes([1; 32]), "127.0.0.1:2001".parse()?);
//! let b = PeerInfo::new(NodeId::from_bytes([2; 32]), "127.0.0.1:2002".parse()?);
//! // `a` starts a network; `b` joins it with `a` as its seed.
//! let mut seed = Membership::new(a, vec![], Config::default(), StdRng::seed_from_u64(1), now)?;
//! let mut joiner = Membership::new(b, [a.addr.into()], Config::default(), StdRng::seed_from_u64(2), now)?;
//!
//! // Besides arming its timers, the joiner asks for a dial of the seed.
//! let actions: Vec<Action> = std::iter::from_fn(|| joiner.poll_action()).collect();
//! assert!(actions.contains(&Action::Dial { addr: a.addr, node: None }));
//!
//! // The transport connected them. The joiner is told which of its dials this answers; the seed,
//! // which was dialed, is told `None`.
//! seed.handle_connected(b, None, now);
//! joiner.handle_connected(a, Some(a.addr), now);
//!
//! // The joiner now sends `Join`; the driver delivers it to the seed.
//! let join = Action::Send { to: a.id, message: Message::Join };
//! assert!(std::iter::from_fn(|| joiner.poll_action()).any(|action| action == join));
//! seed.handle_message(b.id, Message::Join, now);
//!
//! // Both are now each other's active peer.
//! assert_eq!(seed.active_peers().collect::<Vec<_>>(), vec![b]);
//! assert_eq!(joiner.active_peers().collect::<Vec<_>>(), vec![a]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Nothing a peer sends can make this layer panic or grow without bound: every list is cut to a
//! configured bound, views have fixed capacities, every wait has a deadline, and anything malformed
//! disconnects the peer that sent it.
#![forbid(unsafe_code)]

pub mod core;
pub mod wire;

pub use crate::core::{
    Action, CloseReason, Config, Direction, Event, InvalidConfig, LinkEnd, MAX_LIST_LEN, Membership, Message,
    NodeInfo, NodeState, PeerInfo, QueryError, Timer,
};
pub use wire::WireError;
