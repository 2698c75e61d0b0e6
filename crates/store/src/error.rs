//! [`StoreError`]: every way a data directory can fail to open, read or write.

use std::io;
use std::path::PathBuf;

/// Why a data directory could not be used. A node refuses to start on any of them rather than risk
/// its stream or its identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another node in this one) has the directory open.
    #[error("the data directory {path} is in use by another process")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The file is a database but its contents fail their checks (torn or altered on disk).
    #[error("the data directory {path} is corrupt: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The file is not a dotray data file: another program's database, or not a database at all.
    #[error("{path} is not a dotray data file: {detail}")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The file was written by a newer version of dotray, in a format this one cannot read.
    #[error("the data directory {path} has format {found:?}; this dotray reads {expected:?}")]
    UnknownFormat {
        /// The database file.
        path: PathBuf,
        /// The format the file names.
        found: String,
        /// The format this version writes and reads.
        expected: &'static str,
    },
    /// The operating system refused a read or a write (a full disk, permissions).
    #[error("the data directory {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}
