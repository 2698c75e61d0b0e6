//! The history file keeps runs of a stream in order, reads back any range across runs, drops the
//! oldest first by age and size, survives reopening and refuses files it cannot trust.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use dotray_codec::NodeId;
use dotray_store::{DataDir, HISTORY_FILE, HistoryLimits, NewRun, StoreError};

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dotray-history-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const ORIGIN: NodeId = NodeId::from_bytes([3; 32]);

fn run(first: u64, last: u64, bytes: &[u8]) -> NewRun<'_> {
    NewRun { origin: ORIGIN, epoch: 5, first, last, bytes }
}

/// (first, last) of what `read` returns.
fn spans(history: &dotray_store::History, range: (u64, u64), max_bytes: usize) -> Vec<(u64, u64)> {
    let runs = history.read(ORIGIN, 5, range, max_bytes).unwrap();
    runs.iter().map(|r| (r.first, r.last)).collect()
}

#[test]
fn a_range_reads_back_every_run_that_holds_part_of_it() {
    let dir = TempDir::new("ranges");
    let store = DataDir::open(&dir.0).unwrap();
    let history = store.open_history(HistoryLimits::default()).unwrap();
    history.append(&[run(1, 10, b"one"), run(11, 20, b"two")], 1_000).unwrap();
    history.append(&[run(21, 30, b"three")], 2_000).unwrap();
    // Another stream of the same origin, and another origin, do not mix in.
    let other = NewRun { origin: NodeId::from_bytes([4; 32]), epoch: 5, first: 1, last: 50, bytes: b"x" };
    history.append(&[NewRun { epoch: 6, ..run(1, 40, b"y") }, other], 2_000).unwrap();

    assert_eq!(spans(&history, (5, 5), usize::MAX), [(1, 10)]);
    assert_eq!(spans(&history, (10, 21), usize::MAX), [(1, 10), (11, 20), (21, 30)]);
    assert_eq!(spans(&history, (11, 11), usize::MAX), [(11, 20)]);
    assert_eq!(spans(&history, (31, 99), usize::MAX), []);
    // The byte budget stops after the run that reaches it (and always returns one).
    assert_eq!(spans(&history, (1, 30), 1), [(1, 10)]);
    assert_eq!(spans(&history, (1, 30), 4), [(1, 10), (11, 20)]);
    assert_eq!(history.read(ORIGIN, 5, (11, 11), usize::MAX).unwrap()[0].bytes, b"two");
    assert_eq!(history.epochs(ORIGIN).unwrap(), [5, 6]);
    assert_eq!(history.epochs(NodeId::from_bytes([9; 32])).unwrap(), Vec::<u64>::new());
}

#[test]
fn the_oldest_runs_go_first_by_size_and_by_age() {
    let dir = TempDir::new("limits");
    let store = DataDir::open(&dir.0).unwrap();
    let limits = HistoryLimits { max_age: Duration::from_secs(60), max_bytes: 3 * (16 + 100) };
    let history = store.open_history(limits).unwrap();
    let payload = [7u8; 100];
    for i in 0..5u64 {
        history.append(&[run(i * 10 + 1, i * 10 + 10, &payload)], 1_000 + i).unwrap();
        assert!(history.bytes() <= limits.max_bytes, "{} bytes kept", history.bytes());
    }
    assert_eq!(spans(&history, (1, 50), usize::MAX), [(21, 30), (31, 40), (41, 50)]);
    // Sixty seconds after the newest was stored, nothing is young enough.
    history.append(&[run(51, 60, &payload)], 1_004 + 60_001).unwrap();
    assert_eq!(spans(&history, (1, 60), usize::MAX), [(51, 60)]);
    assert_eq!(history.bytes(), 116);
}

#[test]
fn a_run_stored_again_replaces_the_first_and_keeps_its_count() {
    let dir = TempDir::new("again");
    let store = DataDir::open(&dir.0).unwrap();
    let limits = HistoryLimits { max_age: Duration::from_secs(3600), max_bytes: 1_000 };
    let history = store.open_history(limits).unwrap();
    history.append(&[run(1, 10, b"first")], 1).unwrap();
    history.append(&[run(1, 12, b"second")], 2).unwrap();
    assert_eq!(history.bytes(), 16 + 6);
    let runs = history.read(ORIGIN, 5, (1, 1), usize::MAX).unwrap();
    assert_eq!((runs.len(), runs[0].last, &runs[0].bytes[..]), (1, 12, &b"second"[..]));
    // The first store's order entry is stale: dropping it for age leaves the newer run.
    let young = HistoryLimits { max_age: Duration::from_millis(1), ..limits };
    drop(history);
    let history = store.open_history(young).unwrap();
    history.append(&[], 2).unwrap();
    assert_eq!(spans(&history, (1, 12), usize::MAX), [(1, 12)]);
}

#[test]
fn history_survives_reopening_and_two_openers_are_refused() {
    let dir = TempDir::new("reopen");
    {
        let store = DataDir::open(&dir.0).unwrap();
        let history = store.open_history(HistoryLimits::default()).unwrap();
        history.append(&[run(1, 3, b"abc")], 9).unwrap();
        let again = store.open_history(HistoryLimits::default());
        assert!(matches!(again, Err(StoreError::InUse { .. })), "{again:?}");
    }
    let store = DataDir::open(&dir.0).unwrap();
    let history = store.open_history(HistoryLimits::default()).unwrap();
    assert_eq!(history.bytes(), 16 + 3);
    assert_eq!(spans(&history, (2, 2), usize::MAX), [(1, 3)]);
}

#[test]
fn a_history_file_that_is_not_ours_is_refused() {
    let dir = TempDir::new("foreign");
    drop(DataDir::open(&dir.0).unwrap());
    fs::write(dir.0.join(HISTORY_FILE), vec![0x55; 8192]).unwrap();
    let store = DataDir::open(&dir.0).unwrap();
    let opened = store.open_history(HistoryLimits::default());
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");

    let other = TempDir::new("other-db");
    fs::create_dir_all(&other.0).unwrap();
    {
        let db = redb::Database::create(other.0.join(HISTORY_FILE)).unwrap();
        let write = db.begin_write().unwrap();
        let table: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("accounts");
        write.open_table(table).unwrap().insert(1, 2).unwrap();
        write.commit().unwrap();
    }
    let store = DataDir::open(&other.0).unwrap();
    let opened = store.open_history(HistoryLimits::default());
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");
}
