//! A data directory keeps a node's key and stream position across reopenings, and refuses every kind
//! of directory it cannot trust with a typed error.

use std::fs;

use dotray_codec::SecretKey;
use dotray_store::{DATA_FILE, DataDir, FORMAT, OwnStream, StoreError};

mod temp_dir;
use temp_dir::TempDir;

#[test]
fn the_key_and_the_own_stream_survive_reopening() {
    let dir = TempDir::new("store", "roundtrip");
    let key = SecretKey::generate();
    {
        let store = DataDir::open(&dir.0).unwrap();
        assert!(store.secret_key().unwrap().is_none());
        assert_eq!(store.own_stream().unwrap(), None);
        store.save_secret_key(&key).unwrap();
        store.save_own_stream(OwnStream { epoch: 5 << 32 | 9, sealed_through: 41 }).unwrap();
        store.save_own_stream(OwnStream { epoch: 5 << 32 | 9, sealed_through: 42 }).unwrap();
    }
    let store = DataDir::open(&dir.0).unwrap();
    assert_eq!(store.secret_key().unwrap().map(|k| k.node_id()), Some(key.node_id()));
    assert_eq!(store.own_stream().unwrap(), Some(OwnStream { epoch: 5 << 32 | 9, sealed_through: 42 }));
}

#[cfg(unix)]
#[test]
fn the_directory_and_file_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("store", "private");
    let store = DataDir::open(&dir.0).unwrap();
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.0), 0o700);
    assert_eq!(mode(store.file()), 0o600);
}

#[test]
fn a_directory_in_use_is_refused() {
    let dir = TempDir::new("store", "in-use");
    let first = DataDir::open(&dir.0).unwrap();
    let second = DataDir::open(&dir.0);
    assert!(matches!(second, Err(StoreError::InUse { .. })), "{second:?}");
    drop(first);
    DataDir::open(&dir.0).expect("free again once the first is closed");
}

#[test]
fn a_file_that_is_no_database_is_foreign() {
    let dir = TempDir::new("store", "garbage");
    fs::create_dir_all(&dir.0).unwrap();
    fs::write(dir.0.join(DATA_FILE), vec![0x5a; 10_000]).unwrap();
    let opened = DataDir::open(&dir.0);
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");
    assert_eq!(fs::read(dir.0.join(DATA_FILE)).unwrap(), vec![0x5a; 10_000], "left as it was");
}

#[test]
fn another_programs_database_is_foreign() {
    let dir = TempDir::new("store", "other-program");
    fs::create_dir_all(&dir.0).unwrap();
    {
        let db = redb::Database::create(dir.0.join(DATA_FILE)).unwrap();
        let write = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("accounts");
            write.open_table(table).unwrap().insert(1, 2).unwrap();
        }
        write.commit().unwrap();
    }
    let opened = DataDir::open(&dir.0);
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");
}

#[test]
fn a_file_of_another_format_is_refused() {
    let dir = TempDir::new("store", "format");
    drop(DataDir::open(&dir.0).unwrap());
    {
        let db = redb::Database::create(dir.0.join(DATA_FILE)).unwrap();
        let write = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("dotray");
            write.open_table(table).unwrap().insert("format", &b"dotray data 99"[..]).unwrap();
        }
        write.commit().unwrap();
    }
    match DataDir::open(&dir.0) {
        Err(StoreError::UnknownFormat { found, expected, .. }) => {
            assert_eq!(found, "dotray data 99");
            assert_eq!(expected, FORMAT);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_file_is_corrupt_not_trusted() {
    let dir = TempDir::new("store", "damaged");
    {
        let store = DataDir::open(&dir.0).unwrap();
        store.save_secret_key(&SecretKey::from_bytes([9; 32])).unwrap();
    }
    let path = dir.0.join(DATA_FILE);
    let mut bytes = fs::read(&path).unwrap();
    // Flip a byte inside the committed record of the format: its page's checksum no longer matches.
    let at =
        bytes.windows(FORMAT.len()).position(|w| w == FORMAT.as_bytes()).expect("the record is in the file");
    bytes[at + 3] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    let opened = DataDir::open(&dir.0);
    assert!(matches!(opened, Err(StoreError::Corrupt { .. })), "{opened:?}");
}

#[test]
fn delivered_positions_rise_survive_reopening_and_stay_bounded() {
    use dotray_codec::NodeId;
    use dotray_store::Delivered;
    let dir = TempDir::new("store", "delivered");
    let origin = |n: u8| NodeId::from_bytes([n; 32]);
    let at = |n: u8, through| Delivered { origin: origin(n), epoch: 9, through };
    {
        let store = DataDir::open(&dir.0).unwrap();
        assert!(store.delivered(10).unwrap().is_empty());
        store.save_delivered(&[at(1, 5), at(2, 7)], 10).unwrap();
        store.save_delivered(&[at(1, 3)], 10).unwrap();
        store.save_delivered(&[at(2, 8)], 10).unwrap();
    }
    let store = DataDir::open(&dir.0).unwrap();
    // Most recently acknowledged first; a lower position never replaces a higher one.
    assert_eq!(store.delivered(10).unwrap(), vec![at(2, 8), at(1, 5)]);
    assert_eq!(store.delivered(1).unwrap(), vec![at(2, 8)]);
    // Past twice the bound, the streams acknowledged longest ago go.
    for n in 10..20 {
        store.save_delivered(&[at(n, 1)], 3).unwrap();
    }
    let kept = store.delivered(100).unwrap();
    assert!(kept.len() <= 6, "{kept:?}");
    assert_eq!(kept[0], at(19, 1));
    assert!(!kept.contains(&at(1, 5)), "the oldest went first: {kept:?}");
}
