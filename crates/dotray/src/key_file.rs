//! Key files: a node's secret key (or a network key) kept on disk, so that a restarted node is the same
//! node (or a member of the same private network).
//!
//! A key file holds the 32-byte key as 64 hex digits and a newline. It is created, with mode 0600,
//! when absent; when present it is loaded, and refused if other users may read or write it (on Unix)
//! or if it holds anything but one key. It is read with a small bound, so a wrong path (a log file, a
//! device) costs nothing. Nothing here is cryptography: the key bytes go to `ed25519-dalek` and `snow`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of a key file: 64 hex digits and a line end.
const KEY_TEXT_LEN: usize = 64;
/// Most bytes read from a key file: a key, a line end, and room for trailing blanks.
const MAX_KEY_FILE_LEN: u64 = 256;

/// A key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or creating the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Other users may read or write the file, so the key may be known to them.
    #[error("key file {path} is accessible to other users (mode {mode:o}); run `chmod 600` on it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold one key as 64 hex digits.
    #[error("key file {path} does not hold a key (64 hex digits): {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
}

/// Loads the 32-byte key in `path`, or stores `generate()` there (mode 0600) if the file is absent.
pub(crate) fn load_or_create(
    path: &Path,
    generate: impl FnOnce() -> [u8; 32],
) -> Result<[u8; 32], KeyFileError> {
    let io_error = |source| KeyFileError::Io { path: path.to_owned(), source };
    match create_new(path) {
        Ok(mut file) => {
            let key = generate();
            let text = format!("{}\n", to_hex(&key));
            file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error)?;
            Ok(key)
        }
        // Present (or created by someone else meanwhile): load it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(io_error(e)),
    }
}

/// Loads the key in `path`.
pub(crate) fn load(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let io_error = |source| KeyFileError::Io { path: path.to_owned(), source };
    let format = |what| KeyFileError::Format { path: path.to_owned(), what };
    let file = File::open(path).map_err(io_error)?;
    check_private(path, &file)?;
    let mut text = Vec::new();
    file.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut text).map_err(io_error)?;
    if text.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(format("the file is too long"));
    }
    let text = std::str::from_utf8(&text).map_err(|_| format("not text"))?.trim();
    if text.len() != KEY_TEXT_LEN {
        return Err(format("wrong length"));
    }
    from_hex(text).ok_or_else(|| format("not hex digits"))
}

#[cfg(unix)]
fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn check_private(path: &Path, file: &File) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|source| KeyFileError::Io { path: path.to_owned(), source })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: path.to_owned(), mode: mode & 0o777 });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &File) -> Result<(), KeyFileError> {
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        key[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dotray-key-file-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("node.key")
    }

    #[test]
    fn created_once_then_loaded() {
        let path = scratch("created");
        let key = load_or_create(&path, || [7; 32]).unwrap();
        assert_eq!(key, [7; 32]);
        assert_eq!(load_or_create(&path, || [8; 32]).unwrap(), [7; 32], "loaded, not replaced");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", "07".repeat(32)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = scratch("open");
        load_or_create(&path, || [1; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_or_create(&path, || [2; 32]).unwrap_err();
        assert!(matches!(error, KeyFileError::Permissions { mode: 0o644, .. }), "{error:?}");
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn wrong_length_garbage_and_huge_files_are_clear_errors() {
        #[cfg(unix)]
        use std::os::unix::fs::PermissionsExt;
        let cases: [(&[u8], &str); 5] = [
            (b"0102\n", "wrong length"),
            (&[b'0'; 66], "wrong length"),
            (&[b'z'; 64], "not hex digits"),
            (&[0xff, 0xfe, 0x00, 0x01], "not text"),
            (&[b'0'; 10_000], "the file is too long"),
        ];
        for (i, (content, what)) in cases.into_iter().enumerate() {
            let path = scratch(&format!("bad-{i}"));
            std::fs::write(&path, content).unwrap();
            #[cfg(unix)]
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            match load_or_create(&path, || [0; 32]) {
                Err(KeyFileError::Format { what: found, .. }) => assert_eq!(found, what, "case {i}"),
                other => panic!("case {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let path = scratch("missing").with_file_name("no-such-dir").join("node.key");
        assert!(matches!(load_or_create(&path, || [0; 32]), Err(KeyFileError::Io { .. })));
    }
}
