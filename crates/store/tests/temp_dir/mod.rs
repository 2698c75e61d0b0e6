//! A scratch directory for the store's tests: fresh under the system's temporary directory, removed
//! when dropped.

use std::fs;
use std::path::PathBuf;

/// A fresh directory, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// `dotray-<suite>-<pid>-<name>`, emptied first.
    pub(crate) fn new(suite: &str, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dotray-{suite}-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
