//! The sans-IO router core: Plumtree broadcast plus reliable, ordered, exactly-once delivery.
//!
//! No tokio, no clock, no OS randomness: events go in through `handle_*` (with `now`), effects come out
//! of [`Router::poll_action`] as [`Action`]s. See the [crate docs](crate) for the protocol in prose.
//!
//! Files: `router.rs` (state and API), `data.rs` (payload path), `authenticity.rs` (manifests and
//! unproven payloads), `repair.rs` (digests, grafts, prunes, acks, sync, neighbour changes, gaps), `stream.rs` (per-stream watermark, reorder buffer,
//! retention), `stream_table.rs` (which streams are tracked: new-stream budgets, eviction), `fair_share.rs`
//! (max-min fair shares of the reorder and retention pools), `history.rs` (serving from a history on disk), `peer.rs` (per-link state), `retention.rs` (global retention order), `ids.rs`,
//! `message.rs`, `action.rs`, `config.rs`, `counters.rs`, `map.rs`, `spare.rs` (giving back room
//! collections no longer need).

mod action;
mod authenticity;
mod beacon;
mod config;
mod counters;
mod data;
mod fair_share;
mod group;
mod history;
mod ids;
mod map;
mod message;
mod peer;
mod repair;
mod retention;
mod router;
mod spare;
mod stream;
mod stream_table;

#[cfg(test)]
mod authenticity_tests;
#[cfg(test)]
mod beacon_tests;
#[cfg(test)]
mod continuation_tests;
#[cfg(test)]
mod fair_share_tests;
#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod relay_budget_tests;
#[cfg(test)]
mod stream_table_tests;
#[cfg(test)]
mod tests;

pub use action::{Action, Delivery, Event, Recipients, Timer};
pub use config::{Config, InvalidConfig, MAX_LIST_LEN};
pub use counters::{Counters, Topology};
pub use history::RecalledRun;
pub use ids::{MAX_SEQ, MessageId, SeqRange, StreamId, Watermark};
pub use message::{Beacon, Message};
pub use router::Router;
