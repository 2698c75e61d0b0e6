//! # dotray-store
//!
//! A node's **data directory**: what a node keeps on disk so that a restart continues where the last
//! run stopped instead of starting as a new node.
//!
//! * its **key pair**, so it keeps its node id;
//! * its **own stream**: the epoch and the last sequence number it ever sent. A node writes that
//!   position durably *before* the messages up to it leave (the router signs its broadcasts in
//!   batches, and each batch's position is written before the batch is sent), so a crash can never
//!   make it send a number twice with different content: a restarted node numbers on from the
//!   stored position, in the same stream. The newest signed batches are stored with the position
//!   ([`DataDir::save_sealed`]), so a restarted node can serve one it stored and died before sending;
//! * how far its application has processed each stream it **receives** ([`Delivered`]): the
//!   positions the application acknowledged, stored before the acknowledgement returns, so a
//!   restarted node delivers on from there, neither repeating nor skipping;
//! * optionally its **history** ([`History`], a file of its own): the messages it delivered, within
//!   limits of age and size, which it serves to nodes catching up and its application can read again.
//!
//! The database is [redb](https://docs.rs/redb): crash-safe commits, checksums, and an exclusive lock
//! on the file, so a second process that opens the same directory is refused instead of writing
//! beside the first. Every way a directory can be unusable is a typed [`StoreError`].
//!
//! ```
//! use dotray_store::{DataDir, OwnStream};
//! # let dir = std::env::temp_dir().join(format!("dotray-store-doc-{}", std::process::id()));
//! let store = DataDir::open(&dir)?;
//! assert_eq!(store.own_stream()?, None);
//! store.save_own_stream(OwnStream { epoch: 7, sealed_through: 12 })?;
//! drop(store);
//! let again = DataDir::open(&dir)?;
//! assert_eq!(again.own_stream()?, Some(OwnStream { epoch: 7, sealed_through: 12 }));
//! # drop(again); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), dotray_store::StoreError>(())
//! ```

#![forbid(unsafe_code)]

mod data_dir;
mod error;
mod history;

pub use data_dir::{DATA_FILE, DataDir, Delivered, FORMAT, OwnStream};
pub use error::StoreError;
pub use history::{HISTORY_DIR, HISTORY_FORMAT, History, HistoryLimits, NewRun, StoredRun};
