//! [`History`]: the messages a node delivered, kept on disk so that it can serve catch-up beyond what
//! its memory retains, and so its application can read a stream again ([`History::read`]).
//!
//! A file of its own in the data directory ([`HISTORY_FILE`]), apart from the node's small records:
//! it grows to gigabytes, and the node's file is checked whole at every open while this one opens in
//! the time it takes to read its allocator state (redb repairs it after a crash, as it must).
//!
//! What is stored is **runs**: consecutive messages of one stream, written by one commit. The store
//! does not look inside a run (the node encodes the payloads and the proof that vouches for them);
//! it knows each run's stream, first and last sequence number, size and when it was stored, and
//! drops whole runs, oldest first, to stay within [`HistoryLimits`].

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dotray_codec::NodeId;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::StoreError;
use crate::data_dir::{classify, create_private_file};

/// The history's file name inside the data directory.
pub const HISTORY_FILE: &str = "history.redb";

/// The format this version writes, recorded in the file.
pub const HISTORY_FORMAT: &str = "dotray history 1";

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dotray");
const FORMAT_KEY: &str = "format";
/// Runs by (origin, epoch big-endian, first sequence number big-endian), so a stream's runs are
/// adjacent and in order. Value: last sequence number and storage time (both little-endian), then
/// the run's bytes.
const RUNS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("runs");
/// Runs in the order they were stored: key a counter, value the run's key, its size and its storage
/// time. What is dropped first.
const ORDER: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("order");

const RUN_KEY_LEN: usize = 32 + 8 + 8;
const RUN_HEADER_LEN: usize = 16;
const ORDER_VALUE_LEN: usize = RUN_KEY_LEN + 16;

/// How much history a node keeps: the oldest runs go first once either bound is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Runs older than this are dropped.
    pub max_age: Duration,
    /// Bytes of runs (their stored encoding) kept at most.
    pub max_bytes: u64,
}

impl Default for HistoryLimits {
    /// A day, and 1 GiB.
    fn default() -> Self {
        Self { max_age: Duration::from_secs(24 * 3600), max_bytes: 1 << 30 }
    }
}

/// Consecutive messages of one stream, as handed to [`History::append`].
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// The stream's origin.
    pub origin: NodeId,
    /// The stream's epoch.
    pub epoch: u64,
    /// The first sequence number in the run.
    pub first: u64,
    /// The last.
    pub last: u64,
    /// The run, encoded by the caller.
    pub bytes: &'a [u8],
}

/// A run read back by [`History::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRun {
    /// The first sequence number in the run.
    pub first: u64,
    /// The last.
    pub last: u64,
    /// The bytes the caller stored.
    pub bytes: Vec<u8>,
}

/// Totals kept in memory, rebuilt from the order table at open.
#[derive(Debug, Default)]
struct Totals {
    bytes: u64,
    next_order: u64,
}

/// An open history file. Reads may run on any thread beside the writer (redb's readers see the last
/// commit).
#[derive(Debug)]
pub struct History {
    db: Database,
    file: PathBuf,
    limits: HistoryLimits,
    totals: Mutex<Totals>,
}

impl History {
    /// Opens (or creates, readable by its owner only) the history file in the directory `dir`.
    pub(crate) fn open(dir: &Path, limits: HistoryLimits) -> Result<Self, StoreError> {
        let file = dir.join(HISTORY_FILE);
        let fresh = fs::metadata(&file).map(|m| m.len() == 0).unwrap_or(true);
        if fresh {
            create_private_file(&file).map_err(|source| StoreError::Io { path: file.clone(), source })?;
        }
        let db = Database::builder().create(&file).map_err(|e| classify(&file, e.into()))?;
        let history = Self { db, file, limits, totals: Mutex::new(Totals::default()) };
        history.check_format()?;
        let totals = history.read_totals()?;
        *history.totals.lock().unwrap_or_else(|e| e.into_inner()) = totals;
        Ok(history)
    }

    /// The file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Bytes of the runs kept.
    pub fn bytes(&self) -> u64 {
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// Stores `runs` in one durable commit, at wall-clock time `now_ms` (milliseconds since the Unix
    /// epoch), and drops the oldest runs beyond the limits (those older than `max_age` at `now_ms`,
    /// then the oldest while over `max_bytes`). A run stored again under the same stream and first
    /// number replaces the earlier one.
    pub fn append(&self, runs: &[NewRun<'_>], now_ms: u64) -> Result<(), StoreError> {
        let err = |e: redb::Error| classify(&self.file, e);
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let (mut bytes, mut next_order) = (totals.bytes, totals.next_order);
        let write = self.db.begin_write().map_err(|e| err(e.into()))?;
        {
            let mut table = write.open_table(RUNS).map_err(|e| err(e.into()))?;
            let mut order = write.open_table(ORDER).map_err(|e| err(e.into()))?;
            for run in runs {
                let key = run_key(run.origin, run.epoch, run.first);
                let mut value = Vec::with_capacity(RUN_HEADER_LEN + run.bytes.len());
                value.extend_from_slice(&run.last.to_le_bytes());
                value.extend_from_slice(&now_ms.to_le_bytes());
                value.extend_from_slice(run.bytes);
                if let Some(old) = table.insert(&key[..], &value[..]).map_err(|e| err(e.into()))? {
                    bytes -= (old.value().len() as u64).min(bytes);
                }
                bytes += value.len() as u64;
                let mut entry = [0u8; ORDER_VALUE_LEN];
                entry[..RUN_KEY_LEN].copy_from_slice(&key);
                entry[RUN_KEY_LEN..RUN_KEY_LEN + 8].copy_from_slice(&(value.len() as u64).to_le_bytes());
                entry[RUN_KEY_LEN + 8..].copy_from_slice(&now_ms.to_le_bytes());
                order.insert(next_order, &entry[..]).map_err(|e| err(e.into()))?;
                next_order += 1;
            }
            let cutoff =
                now_ms.saturating_sub(u64::try_from(self.limits.max_age.as_millis()).unwrap_or(u64::MAX));
            loop {
                let Some((_, oldest)) = order.first().map_err(|e| err(e.into()))? else { break };
                let (key, size, stored_at) =
                    decode_order(oldest.value()).map_err(|detail| self.corrupt(detail))?;
                drop(oldest);
                if stored_at >= cutoff && bytes <= self.limits.max_bytes {
                    break;
                }
                order.pop_first().map_err(|e| err(e.into()))?;
                // The run may have been stored again since (same key, later time): then this entry
                // is stale and the run stays.
                let current =
                    table.get(&key[..]).map_err(|e| err(e.into()))?.map(|v| decode_run_header(v.value()));
                if let Some(Ok((_, at))) = current
                    && at == stored_at
                {
                    table.remove(&key[..]).map_err(|e| err(e.into()))?;
                    bytes -= size.min(bytes);
                }
            }
        }
        write.commit().map_err(|e| err(e.into()))?;
        *totals = Totals { bytes, next_order };
        Ok(())
    }

    /// The runs of `origin`'s stream `epoch` that hold any of `first..=last`, in order, stopping once
    /// `max_bytes` are gathered (the first run is returned whatever its size). Runs may overlap (a
    /// message delivered again after a restart is stored again): a reader skips what it has seen.
    pub fn read(
        &self,
        origin: NodeId,
        epoch: u64,
        (first, last): (u64, u64),
        max_bytes: usize,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let err = |e: redb::Error| classify(&self.file, e);
        if first > last {
            return Ok(Vec::new());
        }
        let read = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = match read.open_table(RUNS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e.into())),
        };
        let (lo, at, hi) =
            (run_key(origin, epoch, 0), run_key(origin, epoch, first), run_key(origin, epoch, last));
        let mut out = Vec::new();
        let mut gathered = 0usize;
        // The run that starts at or before `first` may reach into the range; those that start
        // after it, up to `last`, do.
        let before = table.range(&lo[..]..=&at[..]).map_err(|e| err(e.into()))?.next_back();
        let after = table.range(&at[..]..=&hi[..]).map_err(|e| err(e.into()))?;
        for entry in before.into_iter().chain(after) {
            let (key, value) = entry.map_err(|e| err(e.into()))?;
            let run_first = u64::from_be_bytes(
                key.value()[RUN_KEY_LEN - 8..]
                    .try_into()
                    .map_err(|_| self.corrupt(format!("a history key is not {RUN_KEY_LEN} bytes")))?,
            );
            let (run_last, _) = decode_run_header(value.value()).map_err(|detail| self.corrupt(detail))?;
            if run_last < first || out.last().is_some_and(|r: &StoredRun| r.first == run_first) {
                continue;
            }
            let bytes = value.value()[RUN_HEADER_LEN..].to_vec();
            gathered += bytes.len();
            out.push(StoredRun { first: run_first, last: run_last, bytes });
            if gathered >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// The epochs of `origin`'s streams that have runs stored, in order.
    pub fn epochs(&self, origin: NodeId) -> Result<Vec<u64>, StoreError> {
        let err = |e: redb::Error| classify(&self.file, e);
        let read = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = match read.open_table(RUNS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e.into())),
        };
        let mut epochs: Vec<u64> = Vec::new();
        let mut from = run_key(origin, 0, 0);
        let end = run_key(origin, u64::MAX, u64::MAX);
        // One lookup per epoch, not one per run.
        while let Some(entry) = table.range(&from[..]..=&end[..]).map_err(|e| err(e.into()))?.next() {
            let (key, _) = entry.map_err(|e| err(e.into()))?;
            let epoch = u64::from_be_bytes(
                key.value()[32..40]
                    .try_into()
                    .map_err(|_| self.corrupt(format!("a history key is not {RUN_KEY_LEN} bytes")))?,
            );
            epochs.push(epoch);
            let Some(next) = epoch.checked_add(1) else { break };
            from = run_key(origin, next, 0);
        }
        Ok(epochs)
    }

    /// The totals of the stored runs, from the order table.
    fn read_totals(&self) -> Result<Totals, StoreError> {
        let err = |e: redb::Error| classify(&self.file, e);
        let read = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = match read.open_table(ORDER) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Totals::default()),
            Err(e) => return Err(err(e.into())),
        };
        let mut totals = Totals::default();
        for entry in table.iter().map_err(|e| err(e.into()))? {
            let (counter, value) = entry.map_err(|e| err(e.into()))?;
            let (_, size, _) = decode_order(value.value()).map_err(|detail| self.corrupt(detail))?;
            totals.bytes += size;
            totals.next_order = counter.value() + 1;
        }
        Ok(totals)
    }

    /// Checks the recorded format; records it in a new file.
    fn check_format(&self) -> Result<(), StoreError> {
        let err = |e: redb::Error| classify(&self.file, e);
        let read = self.db.begin_read().map_err(|e| err(e.into()))?;
        let found = match read.open_table(META) {
            Ok(table) => table.get(FORMAT_KEY).map_err(|e| err(e.into()))?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(err(e.into())),
        };
        drop(read);
        match found {
            Some(found) if found == HISTORY_FORMAT.as_bytes() => Ok(()),
            Some(found) => Err(StoreError::UnknownFormat {
                path: self.file.clone(),
                found: String::from_utf8_lossy(&found).into_owned(),
                expected: HISTORY_FORMAT,
            }),
            None => {
                let read = self.db.begin_read().map_err(|e| err(e.into()))?;
                if read.list_tables().map_err(|e| err(e.into()))?.next().is_some() {
                    return Err(StoreError::Foreign {
                        path: self.file.clone(),
                        detail: "a database without dotray's records".to_owned(),
                    });
                }
                drop(read);
                let write = self.db.begin_write().map_err(|e| err(e.into()))?;
                {
                    let mut meta = write.open_table(META).map_err(|e| err(e.into()))?;
                    meta.insert(FORMAT_KEY, HISTORY_FORMAT.as_bytes()).map_err(|e| err(e.into()))?;
                }
                write.commit().map_err(|e| err(e.into()))
            }
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt { path: self.file.clone(), detail }
    }
}

fn run_key(origin: NodeId, epoch: u64, first: u64) -> [u8; RUN_KEY_LEN] {
    let mut key = [0u8; RUN_KEY_LEN];
    key[..32].copy_from_slice(&origin.to_bytes());
    key[32..40].copy_from_slice(&epoch.to_be_bytes());
    key[40..].copy_from_slice(&first.to_be_bytes());
    key
}

/// A run's (last sequence number, storage time).
fn decode_run_header(value: &[u8]) -> Result<(u64, u64), String> {
    let header: &[u8; RUN_HEADER_LEN] = value
        .get(..RUN_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| "a history run shorter than its header".to_owned())?;
    let last = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let at = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
    Ok((last, at))
}

/// An order entry's (run key, size, storage time).
fn decode_order(value: &[u8]) -> Result<([u8; RUN_KEY_LEN], u64, u64), String> {
    let value: &[u8; ORDER_VALUE_LEN] =
        value.try_into().map_err(|_| format!("a history order entry is not {ORDER_VALUE_LEN} bytes"))?;
    let key: [u8; RUN_KEY_LEN] = value[..RUN_KEY_LEN].try_into().expect("key length");
    let size = u64::from_le_bytes(value[RUN_KEY_LEN..RUN_KEY_LEN + 8].try_into().expect("8 bytes"));
    let at = u64::from_le_bytes(value[RUN_KEY_LEN + 8..].try_into().expect("8 bytes"));
    Ok((key, size, at))
}
