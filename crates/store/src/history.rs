//! [`History`]: the messages a node delivered, kept on disk so that it can serve catch-up beyond what
//! its memory retains, and so its application can read a stream again.
//!
//! What is stored is **runs**: consecutive messages of one stream, written by one commit. The store
//! does not look inside a run (the node encodes the payloads and the proof that vouches for them);
//! it knows each run's stream, first and last sequence number, and when it was stored.
//!
//! The history is a directory of **segments** ([`HISTORY_DIR`]), each a redb database of its own:
//! runs go into the newest until it is a sixteenth of [`HistoryLimits::max_bytes`], then a new one
//! begins. Two things follow from that shape:
//!
//! * **Bounds are exact and cheap**: what the history takes on disk is the size of its files, and
//!   the oldest go first — a whole segment is deleted when the files exceed `max_bytes`, or when
//!   its newest run is older than `max_age`. Deleting a file costs nothing per run.
//! * **A crash costs one segment's repair**: every segment but the newest was closed cleanly when
//!   the next began, so after a crash redb repairs (reads whole) only the newest, not gigabytes.
//!
//! Apart from the node's small records (`node.redb`), which are checked whole at every open.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dotray_codec::NodeId;
use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};

use crate::StoreError;
use crate::data_dir::{classify, create_private_dir, create_private_file};

/// The history's directory inside the data directory.
pub const HISTORY_DIR: &str = "history";

/// The format each segment records.
pub const HISTORY_FORMAT: &str = "dotray history 2";

/// Segments per `max_bytes`: the history is dropped a sixteenth at a time.
const SEGMENTS: u64 = 16;
/// The smallest segment, whatever `max_bytes` says.
const MIN_SEGMENT_BYTES: u64 = 256 << 10;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dotray");
const FORMAT_KEY: &str = "format";
/// The storage time of the segment's newest run (milliseconds since the Unix epoch, little-endian).
const NEWEST_KEY: &str = "newest_ms";
/// Runs by (origin, epoch big-endian, first sequence number big-endian), so a stream's runs are
/// adjacent and in order. Value: the last sequence number (little-endian), then the run's bytes.
const RUNS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("runs");

const RUN_KEY_LEN: usize = 32 + 8 + 8;
const RUN_HEADER_LEN: usize = 8;

/// How much history a node keeps: the oldest runs go first once either bound is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Runs older than this are dropped (a segment at a time: a segment goes once its newest run
    /// is this old).
    pub max_age: Duration,
    /// Bytes of history files on disk at most (redb's own space included). The oldest sixteenth
    /// goes first.
    pub max_bytes: u64,
}

impl Default for HistoryLimits {
    /// A day, and 1 GiB.
    fn default() -> Self {
        Self { max_age: Duration::from_secs(24 * 3600), max_bytes: 1 << 30 }
    }
}

impl HistoryLimits {
    /// The size at which a segment is closed and the next begins.
    fn segment_bytes(&self) -> u64 {
        (self.max_bytes / SEGMENTS).max(MIN_SEGMENT_BYTES)
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

/// A segment's database: the newest is written; the others are closed and read only, so that a
/// crash leaves them clean.
enum Db {
    Writable(Database),
    ReadOnly(ReadOnlyDatabase),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Writable(_) => "Writable",
            Db::ReadOnly(_) => "ReadOnly",
        })
    }
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Db::Writable(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        }
    }
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    number: u64,
    db: Db,
    file: PathBuf,
    /// Storage time of its newest run (0: none yet).
    newest_ms: u64,
}

/// An open history. Reads may run on any thread beside the writer (redb's readers see the last
/// commit); the segments' list is behind a lock held for the length of one read or one append.
#[derive(Debug)]
pub struct History {
    dir: PathBuf,
    limits: HistoryLimits,
    /// Oldest first; never empty (the last is the one written).
    segments: Mutex<Vec<Segment>>,
}

impl History {
    /// Opens (or creates, readable by its owner only) the history under the data directory `dir`.
    pub(crate) fn open(dir: &Path, limits: HistoryLimits) -> Result<Self, StoreError> {
        let dir = dir.join(HISTORY_DIR);
        create_private_dir(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        let mut numbers = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })? {
            let entry = entry.map_err(|source| StoreError::Io { path: dir.clone(), source })?;
            let name = entry.file_name();
            let number =
                name.to_str().and_then(|n| n.strip_suffix(".redb")).and_then(|n| n.parse::<u64>().ok());
            match number {
                Some(number) => numbers.push(number),
                None => {
                    return Err(StoreError::Foreign {
                        path: entry.path(),
                        detail: "a file that is not a history segment".to_owned(),
                    });
                }
            }
        }
        numbers.sort_unstable();
        if numbers.is_empty() {
            numbers.push(1);
        }
        let newest = *numbers.last().expect("at least one");
        let segments = numbers
            .into_iter()
            .map(|n| if n == newest { Segment::open(&dir, n) } else { Segment::open_closed(&dir, n) })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { dir, limits, segments: Mutex::new(segments) })
    }

    /// The history's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of the history's files on disk.
    pub fn bytes(&self) -> u64 {
        let segments = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        segments.iter().map(Segment::size).sum()
    }

    /// Stores `runs` in one durable commit, at wall-clock time `now_ms` (milliseconds since the Unix
    /// epoch); then begins a new segment if this one is full, and deletes the oldest segments
    /// beyond the limits. A run stored again under the same stream and first number replaces the
    /// earlier one for readers.
    pub fn append(&self, runs: &[NewRun<'_>], now_ms: u64) -> Result<(), StoreError> {
        let mut segments = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        let active = segments.last_mut().expect("never empty");
        active.append(runs, now_ms)?;
        if active.size() >= self.limits.segment_bytes() {
            let full = segments.pop().expect("never empty");
            let next = full.number + 1;
            segments.push(full.close()?);
            segments.push(Segment::open(&self.dir, next)?);
        }
        let cutoff =
            now_ms.saturating_sub(u64::try_from(self.limits.max_age.as_millis()).unwrap_or(u64::MAX));
        while segments.len() > 1 {
            let total: u64 = segments.iter().map(Segment::size).sum();
            let oldest = &segments[0];
            if total <= self.limits.max_bytes && oldest.newest_ms >= cutoff {
                break;
            }
            let oldest = segments.remove(0);
            let file = oldest.file.clone();
            drop(oldest);
            fs::remove_file(&file).map_err(|source| StoreError::Io { path: file, source })?;
        }
        Ok(())
    }

    /// The runs of `origin`'s stream `epoch` that hold any of `first..=last`, in order of their
    /// first number, stopping once `max_bytes` are gathered (the first run is returned whatever its
    /// size). Runs may overlap (a message delivered again after a restart is stored again): a
    /// reader skips what it has seen.
    pub fn read(
        &self,
        origin: NodeId,
        epoch: u64,
        (first, last): (u64, u64),
        max_bytes: usize,
    ) -> Result<Vec<StoredRun>, StoreError> {
        if first > last {
            return Ok(Vec::new());
        }
        let segments = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        // Newest segment first, so that of two runs with one first number the newer is kept.
        let mut found: Vec<StoredRun> = Vec::new();
        for segment in segments.iter().rev() {
            for run in segment.read(origin, epoch, (first, last), max_bytes)? {
                if !found.iter().any(|r| r.first == run.first) {
                    found.push(run);
                }
            }
        }
        found.sort_by_key(|run| run.first);
        let mut gathered = 0usize;
        let keep = found
            .iter()
            .position(|run| {
                gathered += run.bytes.len();
                gathered >= max_bytes
            })
            .map_or(found.len(), |at| at + 1);
        found.truncate(keep);
        Ok(found)
    }

    /// The epochs of `origin`'s streams that have runs stored, in order.
    pub fn epochs(&self, origin: NodeId) -> Result<Vec<u64>, StoreError> {
        let segments = self.segments.lock().unwrap_or_else(|e| e.into_inner());
        let mut epochs = Vec::new();
        for segment in segments.iter() {
            epochs.extend(segment.epochs(origin)?);
        }
        epochs.sort_unstable();
        epochs.dedup();
        Ok(epochs)
    }
}

impl Segment {
    /// Opens (or creates) segment `number` in `dir`.
    fn open(dir: &Path, number: u64) -> Result<Self, StoreError> {
        let file = dir.join(format!("{number:010}.redb"));
        let fresh = fs::metadata(&file).map(|m| m.len() == 0).unwrap_or(true);
        if fresh {
            create_private_file(&file).map_err(|source| StoreError::Io { path: file.clone(), source })?;
        }
        let db = Database::builder().create(&file).map_err(|e| classify(&file, e.into()))?;
        let mut segment = Self { number, db: Db::Writable(db), file, newest_ms: 0 };
        segment.newest_ms = segment.check_format()?;
        Ok(segment)
    }

    /// Opens segment `number`, written no more, read only (repairing it first if it was not closed
    /// cleanly: a crash while the next one began).
    fn open_closed(dir: &Path, number: u64) -> Result<Self, StoreError> {
        let file = dir.join(format!("{number:010}.redb"));
        match ReadOnlyDatabase::open(&file) {
            Ok(db) => {
                let mut segment = Self { number, db: Db::ReadOnly(db), file, newest_ms: 0 };
                segment.newest_ms = segment.check_format()?;
                Ok(segment)
            }
            Err(_) => Self::open(dir, number)?.close(),
        }
    }

    /// Closes the database for writing — cleanly, so a crash from now on leaves it as it is — and
    /// opens it again to read.
    fn close(self) -> Result<Self, StoreError> {
        let Self { number, db, file, newest_ms } = self;
        if let Db::Writable(mut db) = db {
            // Gives back the space redb keeps for growth: a closed segment never grows again.
            db.compact(redb::CompactionMode::Balanced).map_err(|e| classify(&file, e.into()))?;
        }
        let db = ReadOnlyDatabase::open(&file).map_err(|e| classify(&file, e.into()))?;
        Ok(Self { number, db: Db::ReadOnly(db), file, newest_ms })
    }

    fn size(&self) -> u64 {
        fs::metadata(&self.file).map_or(0, |m| m.len())
    }

    fn err(&self, error: impl Into<redb::Error>) -> StoreError {
        classify(&self.file, error.into())
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt { path: self.file.clone(), detail }
    }

    fn append(&mut self, runs: &[NewRun<'_>], now_ms: u64) -> Result<(), StoreError> {
        let Db::Writable(db) = &self.db else {
            return Err(self.corrupt("a closed segment written".to_owned()));
        };
        let write = db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = write.open_table(RUNS).map_err(|e| self.err(e))?;
            for run in runs {
                let key = run_key(run.origin, run.epoch, run.first);
                let mut value = Vec::with_capacity(RUN_HEADER_LEN + run.bytes.len());
                value.extend_from_slice(&run.last.to_le_bytes());
                value.extend_from_slice(run.bytes);
                table.insert(&key[..], &value[..]).map_err(|e| self.err(e))?;
            }
            let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
            meta.insert(NEWEST_KEY, &now_ms.to_le_bytes()[..]).map_err(|e| self.err(e))?;
        }
        write.commit().map_err(|e| self.err(e))?;
        self.newest_ms = now_ms;
        Ok(())
    }

    /// This segment's runs for `read`, at most about `max_bytes` of them.
    fn read(
        &self,
        origin: NodeId,
        epoch: u64,
        (first, last): (u64, u64),
        max_bytes: usize,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match read.open_table(RUNS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let (lo, at, hi) =
            (run_key(origin, epoch, 0), run_key(origin, epoch, first), run_key(origin, epoch, last));
        let mut out: Vec<StoredRun> = Vec::new();
        let mut gathered = 0usize;
        // The run that starts at or before `first` may reach into the range; those that start
        // after it, up to `last`, do.
        let before = table.range(&lo[..]..=&at[..]).map_err(|e| self.err(e))?.next_back();
        let after = table.range(&at[..]..=&hi[..]).map_err(|e| self.err(e))?;
        for entry in before.into_iter().chain(after) {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let run_first = u64::from_be_bytes(
                key.value()[RUN_KEY_LEN - 8..]
                    .try_into()
                    .map_err(|_| self.corrupt(format!("a history key is not {RUN_KEY_LEN} bytes")))?,
            );
            let value = value.value();
            let header: [u8; RUN_HEADER_LEN] = value
                .get(..RUN_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| self.corrupt("a history run shorter than its header".to_owned()))?;
            let run_last = u64::from_le_bytes(header);
            if run_last < first || out.last().is_some_and(|r| r.first == run_first) {
                continue;
            }
            let bytes = value[RUN_HEADER_LEN..].to_vec();
            gathered += bytes.len();
            out.push(StoredRun { first: run_first, last: run_last, bytes });
            if gathered >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    fn epochs(&self, origin: NodeId) -> Result<Vec<u64>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match read.open_table(RUNS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut epochs: Vec<u64> = Vec::new();
        let mut from = run_key(origin, 0, 0);
        let end = run_key(origin, u64::MAX, u64::MAX);
        // One lookup per epoch, not one per run.
        while let Some(entry) = table.range(&from[..]..=&end[..]).map_err(|e| self.err(e))?.next() {
            let (key, _) = entry.map_err(|e| self.err(e))?;
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

    /// Checks the recorded format (recording it in a new file); returns the newest run's time.
    fn check_format(&self) -> Result<u64, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.err(e))?;
        let (found, newest) = match read.open_table(META) {
            Ok(table) => {
                let format = table.get(FORMAT_KEY).map_err(|e| self.err(e))?.map(|v| v.value().to_vec());
                let newest = table.get(NEWEST_KEY).map_err(|e| self.err(e))?.map(|v| v.value().to_vec());
                (format, newest)
            }
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None),
            Err(e) => return Err(self.err(e)),
        };
        let empty = read.list_tables().map_err(|e| self.err(e))?.next().is_none();
        drop(read);
        match found {
            Some(found) if found == HISTORY_FORMAT.as_bytes() => {}
            Some(found) => {
                return Err(StoreError::UnknownFormat {
                    path: self.file.clone(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: HISTORY_FORMAT,
                });
            }
            None if empty => {
                let Db::Writable(db) = &self.db else {
                    return Err(self.corrupt("a closed segment without its format".to_owned()));
                };
                let write = db.begin_write().map_err(|e| self.err(e))?;
                {
                    let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
                    meta.insert(FORMAT_KEY, HISTORY_FORMAT.as_bytes()).map_err(|e| self.err(e))?;
                }
                write.commit().map_err(|e| self.err(e))?;
            }
            None => {
                return Err(StoreError::Foreign {
                    path: self.file.clone(),
                    detail: "a database without dotray's records".to_owned(),
                });
            }
        }
        match newest {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_le_bytes(
                bytes
                    .try_into()
                    .map_err(|_| self.corrupt("the newest run's time is not 8 bytes".to_owned()))?,
            )),
        }
    }
}

fn run_key(origin: NodeId, epoch: u64, first: u64) -> [u8; RUN_KEY_LEN] {
    let mut key = [0u8; RUN_KEY_LEN];
    key[..32].copy_from_slice(&origin.to_bytes());
    key[32..40].copy_from_slice(&epoch.to_be_bytes());
    key[40..].copy_from_slice(&first.to_be_bytes());
    key
}
