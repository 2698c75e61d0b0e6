//! [`DataDir`]: the database file in a node's data directory, and the few records it holds.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dotray_codec::{NodeId, SECRET_KEY_LEN, SecretKey};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::StoreError;
use crate::history::{History, HistoryLimits};

/// The database file's name inside the data directory.
pub const DATA_FILE: &str = "node.redb";

/// The format this version writes, recorded in the file: a file naming another is refused.
pub const FORMAT: &str = "dotray data 3";

/// Every record, by name: the format, the secret key, the own stream's epoch and position.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dotray");
const FORMAT_KEY: &str = "format";
const SECRET_KEY: &str = "secret_key";
const OWN_EPOCH: &str = "own_stream_epoch";
const OWN_SEALED: &str = "own_stream_sealed_through";

/// Acknowledged positions of the streams the node receives: key the stream (origin, then epoch
/// big-endian), value the position and the generation of the commit that last raised it (both
/// little-endian), so the oldest can go first when there are too many.
const DELIVERED: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("delivered");
const STREAM_KEY_LEN: usize = 32 + 8;
/// The newest signed batches of the node's own stream, by first sequence number; the value is the
/// node's own encoding of the batch (manifest and payloads), opaque here.
const OWN_BATCHES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("own_batches");
const POSITION_LEN: usize = 16;

/// A node's own stream as stored: its epoch, and the highest sequence number the node may have sent
/// in it (written before the messages up to it leave).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnStream {
    /// The stream's epoch (the router's `StreamId::epoch`).
    pub epoch: u64,
    /// The last sequence number that may have left the node; a restart numbers on from the next.
    pub sealed_through: u64,
}

/// How far the application has processed one stream it receives: it acknowledged every message of
/// `origin`'s stream `epoch` through position `through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The stream's origin.
    pub origin: NodeId,
    /// The stream's epoch.
    pub epoch: u64,
    /// The last position acknowledged.
    pub through: u64,
}

/// An open data directory. Holds the database's exclusive lock until dropped.
#[derive(Debug)]
pub struct DataDir {
    db: Database,
    file: PathBuf,
    /// The generation the next commit of delivered positions gets (one more than any stored).
    generation: AtomicU64,
    /// Bytes of the stored own batches.
    own_batch_bytes: AtomicU64,
}

impl DataDir {
    /// Opens the data directory `dir`, creating it (readable by its owner only) and its database file
    /// if they do not exist.
    ///
    /// Refuses a directory another process has open ([`StoreError::InUse`]), a file that fails its
    /// integrity check ([`StoreError::Corrupt`]), one that is not a dotray data file
    /// ([`StoreError::Foreign`]) and one of another format ([`StoreError::UnknownFormat`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        create_private_dir(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
        let file = dir.join(DATA_FILE);
        let fresh = fs::metadata(&file).map(|m| m.len() == 0).unwrap_or(true);
        if fresh {
            create_private_file(&file).map_err(|source| StoreError::Io { path: file.clone(), source })?;
        }
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(&file)
            .map_err(|e| classify(&file, e.into()))?;
        let store = Self { db, file, generation: AtomicU64::new(0), own_batch_bytes: AtomicU64::new(0) };
        store.check_format(fresh)?;
        let stored: u64 = store.own_batches()?.iter().map(|(_, batch)| batch.len() as u64).sum();
        store.own_batch_bytes.store(stored, Ordering::Relaxed);
        let next = store.read_delivered()?.iter().map(|(_, generation)| generation + 1).max().unwrap_or(0);
        store.generation.store(next, Ordering::Relaxed);
        Ok(store)
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Opens the directory's [`History`] (a file of its own beside the database), creating it if
    /// absent, keeping within `limits` from the next [`History::append`] on.
    pub fn open_history(&self, limits: HistoryLimits) -> Result<History, StoreError> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        History::open(dir, limits)
    }

    /// The stored secret key, if one was saved.
    pub fn secret_key(&self) -> Result<Option<SecretKey>, StoreError> {
        let Some(bytes) = self.get(SECRET_KEY)? else { return Ok(None) };
        let seed: [u8; SECRET_KEY_LEN] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            self.corrupt(format!("the secret key has {} bytes, not {SECRET_KEY_LEN}", bytes.len()))
        })?;
        Ok(Some(SecretKey::from_bytes(seed)))
    }

    /// Stores `key` as the node's secret key (durably, before returning).
    pub fn save_secret_key(&self, key: &SecretKey) -> Result<(), StoreError> {
        self.put(&[(SECRET_KEY, &key.to_bytes())])
    }

    /// The stored own stream, if the node ever saved one.
    pub fn own_stream(&self) -> Result<Option<OwnStream>, StoreError> {
        let (Some(epoch), Some(sealed)) = (self.get(OWN_EPOCH)?, self.get(OWN_SEALED)?) else {
            return Ok(None);
        };
        Ok(Some(OwnStream {
            epoch: self.decode_u64(OWN_EPOCH, epoch)?,
            sealed_through: self.decode_u64(OWN_SEALED, sealed)?,
        }))
    }

    /// Stores the own stream's epoch and position, durably, before returning: a node calls it before
    /// the messages up to `sealed_through` leave.
    pub fn save_own_stream(&self, own: OwnStream) -> Result<(), StoreError> {
        self.put(&[(OWN_EPOCH, &own.epoch.to_le_bytes()), (OWN_SEALED, &own.sealed_through.to_le_bytes())])
    }

    /// Stores the own stream's position and the batch that ends at it (`batch`, starting at sequence
    /// number `first`) in one durable commit, before the batch leaves. Keeps the newest batches
    /// within `keep_bytes` (the oldest go first; the newest is kept whatever its size).
    pub fn save_sealed(
        &self,
        own: OwnStream,
        first: u64,
        batch: &[u8],
        keep_bytes: u64,
    ) -> Result<(), StoreError> {
        let write = self.db.begin_write().map_err(|e| classify(&self.file, e.into()))?;
        {
            let mut meta = write.open_table(META).map_err(|e| classify(&self.file, e.into()))?;
            meta.insert(OWN_EPOCH, &own.epoch.to_le_bytes()[..])
                .map_err(|e| classify(&self.file, e.into()))?;
            meta.insert(OWN_SEALED, &own.sealed_through.to_le_bytes()[..])
                .map_err(|e| classify(&self.file, e.into()))?;
            let mut batches = write.open_table(OWN_BATCHES).map_err(|e| classify(&self.file, e.into()))?;
            batches.insert(first, batch).map_err(|e| classify(&self.file, e.into()))?;
            let mut total = self.own_batch_bytes.load(Ordering::Relaxed) + batch.len() as u64;
            while total > keep_bytes && batches.len().map_err(|e| classify(&self.file, e.into()))? > 1 {
                let Some((_, oldest)) = batches.pop_first().map_err(|e| classify(&self.file, e.into()))?
                else {
                    break;
                };
                total -= (oldest.value().len() as u64).min(total);
            }
            self.own_batch_bytes.store(total, Ordering::Relaxed);
        }
        write.commit().map_err(|e| classify(&self.file, e.into()))
    }

    /// The stored batches of the own stream, oldest first: (first sequence number, batch).
    pub fn own_batches(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.scan(OWN_BATCHES, |first, batch| Ok((first.value(), batch.value().to_vec())))
    }

    /// Stores acknowledged positions, durably, in one commit (one commit for however many streams: a
    /// caller gathers the acknowledgements that arrive meanwhile). A position is raised, never
    /// lowered. At most `keep` streams are kept: past twice that, those acknowledged longest ago go.
    pub fn save_delivered(&self, positions: &[Delivered], keep: usize) -> Result<(), StoreError> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let write = self.db.begin_write().map_err(|e| classify(&self.file, e.into()))?;
        {
            let mut table = write.open_table(DELIVERED).map_err(|e| classify(&self.file, e.into()))?;
            for position in positions {
                let key = stream_key(position.origin, position.epoch);
                let stored = table.get(&key[..]).map_err(|e| classify(&self.file, e.into()))?;
                let old = stored.map(|v| decode_position(v.value()).map(|(through, _)| through)).transpose();
                let old = old.map_err(|detail| self.corrupt(detail))?;
                let through = old.map_or(position.through, |old| old.max(position.through));
                let mut value = [0u8; POSITION_LEN];
                value[..8].copy_from_slice(&through.to_le_bytes());
                value[8..].copy_from_slice(&generation.to_le_bytes());
                table.insert(&key[..], &value[..]).map_err(|e| classify(&self.file, e.into()))?;
            }
            let len = table.len().map_err(|e| classify(&self.file, e.into()))?;
            if len > 2 * keep as u64 {
                let mut all = Vec::with_capacity(len as usize);
                for entry in table.iter().map_err(|e| classify(&self.file, e.into()))? {
                    let (key, value) = entry.map_err(|e| classify(&self.file, e.into()))?;
                    let (_, generation) =
                        decode_position(value.value()).map_err(|detail| self.corrupt(detail))?;
                    all.push((generation, key.value().to_vec()));
                }
                all.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
                for (_, key) in all.into_iter().skip(keep) {
                    table.remove(&key[..]).map_err(|e| classify(&self.file, e.into()))?;
                }
            }
        }
        write.commit().map_err(|e| classify(&self.file, e.into()))
    }

    /// The stored acknowledged positions, those acknowledged most recently first, at most `limit`.
    pub fn delivered(&self, limit: usize) -> Result<Vec<Delivered>, StoreError> {
        let mut all = self.read_delivered()?;
        all.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.1));
        Ok(all.into_iter().take(limit).map(|(position, _)| position).collect())
    }

    /// Every stored position with its generation.
    fn read_delivered(&self) -> Result<Vec<(Delivered, u64)>, StoreError> {
        self.scan(DELIVERED, |key, value| {
            let key: [u8; STREAM_KEY_LEN] = key.value().try_into().map_err(|_| {
                self.corrupt(format!("a delivered position's key is not {STREAM_KEY_LEN} bytes"))
            })?;
            let (through, generation) =
                decode_position(value.value()).map_err(|detail| self.corrupt(detail))?;
            let origin = NodeId::from_bytes(key[..32].try_into().expect("32 bytes"));
            let epoch = u64::from_be_bytes(key[32..].try_into().expect("8 bytes"));
            Ok((Delivered { origin, epoch, through }, generation))
        })
    }

    /// Every entry of `table`, in key order, through `each`; none when the table was never written.
    fn scan<K: redb::Key + 'static, V: redb::Value + 'static, T>(
        &self,
        table: TableDefinition<'_, K, V>,
        mut each: impl FnMut(redb::AccessGuard<'_, K>, redb::AccessGuard<'_, V>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let read = self.db.begin_read().map_err(|e| classify(&self.file, e.into()))?;
        let table = match read.open_table(table) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(classify(&self.file, e.into())),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| classify(&self.file, e.into()))? {
            let (key, value) = entry.map_err(|e| classify(&self.file, e.into()))?;
            out.push(each(key, value)?);
        }
        Ok(out)
    }

    /// Checks the recorded format; records it in a fresh file.
    fn check_format(&self, fresh: bool) -> Result<(), StoreError> {
        match self.get(FORMAT_KEY)? {
            Some(found) if found == FORMAT.as_bytes() => Ok(()),
            Some(found) => Err(StoreError::UnknownFormat {
                path: self.file.clone(),
                found: String::from_utf8_lossy(&found).into_owned(),
                expected: FORMAT,
            }),
            None if fresh || self.is_empty()? => self.put(&[(FORMAT_KEY, FORMAT.as_bytes())]),
            None => Err(StoreError::Foreign {
                path: self.file.clone(),
                detail: "a database without dotray's records".to_owned(),
            }),
        }
    }

    /// Whether the database holds no table at all (created, then never written).
    fn is_empty(&self) -> Result<bool, StoreError> {
        let read = self.db.begin_read().map_err(|e| classify(&self.file, e.into()))?;
        let mut tables = read.list_tables().map_err(|e| classify(&self.file, e.into()))?;
        Ok(tables.next().is_none())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.db.begin_read().map_err(|e| classify(&self.file, e.into()))?;
        let table = match read.open_table(META) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(classify(&self.file, e.into())),
        };
        let value = table.get(key).map_err(|e| classify(&self.file, e.into()))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Writes `records` in one transaction, committed durably (the commit returns once the data is on
    /// disk).
    fn put(&self, records: &[(&str, &[u8])]) -> Result<(), StoreError> {
        let write = self.db.begin_write().map_err(|e| classify(&self.file, e.into()))?;
        {
            let mut table = write.open_table(META).map_err(|e| classify(&self.file, e.into()))?;
            for (key, value) in records {
                table.insert(*key, *value).map_err(|e| classify(&self.file, e.into()))?;
            }
        }
        write.commit().map_err(|e| classify(&self.file, e.into()))
    }

    fn decode_u64(&self, key: &str, bytes: Vec<u8>) -> Result<u64, StoreError> {
        let bytes: [u8; 8] =
            bytes.try_into().map_err(|_| self.corrupt(format!("the record {key:?} is not 8 bytes")))?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt { path: self.file.clone(), detail }
    }
}

/// The key of a stream in the delivered table.
fn stream_key(origin: NodeId, epoch: u64) -> [u8; STREAM_KEY_LEN] {
    let mut key = [0u8; STREAM_KEY_LEN];
    key[..32].copy_from_slice(&origin.to_bytes());
    key[32..].copy_from_slice(&epoch.to_be_bytes());
    key
}

/// A delivered position's value: (position, generation).
fn decode_position(value: &[u8]) -> Result<(u64, u64), String> {
    let value: [u8; POSITION_LEN] =
        value.try_into().map_err(|_| format!("a delivered position is not {POSITION_LEN} bytes"))?;
    let through = u64::from_le_bytes(value[..8].try_into().expect("8 bytes"));
    let generation = u64::from_le_bytes(value[8..].try_into().expect("8 bytes"));
    Ok((through, generation))
}

/// The [`StoreError`] of a redb error on `file`.
pub(crate) fn classify(file: &Path, error: redb::Error) -> StoreError {
    let path = file.to_owned();
    match error {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => StoreError::InUse { path },
        redb::Error::Io(source) if source.kind() == io::ErrorKind::InvalidData && !looks_like_redb(file) => {
            StoreError::Foreign { path, detail: source.to_string() }
        }
        redb::Error::Io(source) => StoreError::Io { path, source },
        redb::Error::UpgradeRequired(version) => {
            StoreError::Foreign { path, detail: format!("a redb file of an older format ({version})") }
        }
        redb::Error::Corrupted(detail) if !looks_like_redb(file) => StoreError::Foreign { path, detail },
        redb::Error::Corrupted(detail) => StoreError::Corrupt { path, detail },
        redb::Error::TableTypeMismatch(_) | redb::Error::TableIsMultimap(_) => {
            StoreError::Foreign { path, detail: error.to_string() }
        }
        other => StoreError::Corrupt { path, detail: other.to_string() },
    }
}

/// Whether `file` starts with redb's magic number (then a failed check means damage, not another
/// kind of file).
fn looks_like_redb(file: &Path) -> bool {
    use std::io::Read;
    const MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
    let mut start = [0u8; MAGIC.len()];
    fs::File::open(file).and_then(|mut f| f.read_exact(&mut start)).is_ok() && start == MAGIC
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Creates the (empty) database file readable by its owner only: it holds the secret key.
#[cfg(unix)]
pub(crate) fn create_private_file(file: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(file).map(drop)
}

#[cfg(not(unix))]
pub(crate) fn create_private_file(file: &Path) -> io::Result<()> {
    fs::OpenOptions::new().write(true).create(true).truncate(false).open(file).map(drop)
}
