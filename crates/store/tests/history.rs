//! The history file keeps runs of a stream in order, reads back any range across runs, drops the
//! oldest first by age and size, survives reopening and refuses files it cannot trust.

use std::fs;
use std::time::Duration;

use dotray_codec::NodeId;
use dotray_store::{DataDir, HISTORY_DIR, HistoryLimits, NewRun, StoreError};

mod temp_dir;
use temp_dir::TempDir;

const ORIGIN: NodeId = NodeId::from_bytes([3; 32]);

/// A data directory named `name` and its history under `limits` (the directory goes when the first
/// is dropped).
fn history_in(name: &str, limits: HistoryLimits) -> (TempDir, DataDir, dotray_store::History) {
    let dir = TempDir::new("history", name);
    let store = DataDir::open(&dir.0).unwrap();
    let history = store.open_history(limits).unwrap();
    (dir, store, history)
}

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
    let (_dir, _store, history) = history_in("ranges", HistoryLimits::default());
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
fn the_oldest_runs_go_first_and_the_files_stay_within_the_bound() {
    let limits = HistoryLimits { max_age: Duration::from_secs(3600), max_bytes: 8 << 20 };
    let (dir, _store, history) = history_in("limits", limits);
    let payload = vec![7u8; 60 << 10];
    for i in 0..400u64 {
        history.append(&[run(i * 10 + 1, i * 10 + 10, &payload)], 1_000 + i).unwrap();
        assert!(history.bytes() <= limits.max_bytes, "{} bytes on disk after run {i}", history.bytes());
    }
    let kept = spans(&history, (1, 4_000), usize::MAX);
    let oldest = kept.first().expect("the newest runs are kept").0;
    assert!(oldest > 1, "the oldest were dropped");
    // What is kept is everything from some point on: dropped oldest first, nothing in between.
    let expected: Vec<(u64, u64)> = (oldest / 10..400).map(|i| (i * 10 + 1, i * 10 + 10)).collect();
    assert_eq!(kept, expected);
    assert!(kept.len() > 60, "most of the bound is used: {} runs of 60 KiB in 8 MiB", kept.len());
    // Dropped a segment at a time, not all at once.
    let segments = std::fs::read_dir(dir.0.join(HISTORY_DIR)).unwrap().count();
    assert!(segments >= 8, "{segments} segments");
}

#[test]
fn runs_older_than_the_age_limit_go() {
    let limits = HistoryLimits { max_age: Duration::from_secs(60), max_bytes: 4 << 20 };
    let (_dir, _store, history) = history_in("age", limits);
    let payload = vec![1u8; 60 << 10];
    // Enough to fill a few segments (256 KiB each), all stored at time 1 s.
    for i in 0..20u64 {
        history.append(&[run(i * 10 + 1, i * 10 + 10, &payload)], 1_000).unwrap();
    }
    assert_eq!(spans(&history, (1, 10), usize::MAX), [(1, 10)]);
    // Sixty seconds later, only the segment being written is young enough to stay.
    history.append(&[run(201, 210, &payload)], 1_000 + 60_001).unwrap();
    assert_eq!(spans(&history, (1, 10), usize::MAX), []);
    assert!(spans(&history, (201, 210), usize::MAX) == [(201, 210)]);
}

#[test]
fn a_run_stored_again_replaces_the_first_for_readers() {
    let limits = HistoryLimits { max_age: Duration::from_secs(3600), max_bytes: 4 << 20 };
    let (_dir, _store, history) = history_in("again", limits);
    history.append(&[run(1, 10, b"first")], 1).unwrap();
    history.append(&[run(1, 12, b"second")], 2).unwrap();
    let runs = history.read(ORIGIN, 5, (1, 1), usize::MAX).unwrap();
    assert_eq!((runs.len(), runs[0].last, &runs[0].bytes[..]), (1, 12, &b"second"[..]));
    // Also when the two are in different segments: fill the first one, then store again.
    for i in 0..8u64 {
        history.append(&[run(100 + i * 10, 109 + i * 10, &[0u8; 60 << 10])], 3).unwrap();
    }
    history.append(&[run(1, 14, b"third")], 4).unwrap();
    let runs = history.read(ORIGIN, 5, (1, 1), usize::MAX).unwrap();
    assert_eq!((runs.len(), runs[0].last, &runs[0].bytes[..]), (1, 14, &b"third"[..]));
}

#[test]
fn history_survives_reopening_and_two_openers_are_refused() {
    let dir = TempDir::new("history", "reopen");
    {
        let store = DataDir::open(&dir.0).unwrap();
        let history = store.open_history(HistoryLimits::default()).unwrap();
        history.append(&[run(1, 3, b"abc")], 9).unwrap();
        let again = store.open_history(HistoryLimits::default());
        assert!(matches!(again, Err(StoreError::InUse { .. })), "{again:?}");
    }
    let store = DataDir::open(&dir.0).unwrap();
    let history = store.open_history(HistoryLimits::default()).unwrap();
    assert!(history.bytes() > 0);
    assert_eq!(spans(&history, (2, 2), usize::MAX), [(1, 3)]);
    assert_eq!(history.read(ORIGIN, 5, (2, 2), usize::MAX).unwrap()[0].bytes, b"abc");
}

#[test]
fn a_history_file_that_is_not_ours_is_refused() {
    let dir = TempDir::new("history", "foreign");
    drop(DataDir::open(&dir.0).unwrap());
    fs::create_dir_all(dir.0.join(HISTORY_DIR)).unwrap();
    fs::write(dir.0.join(HISTORY_DIR).join("0000000001.redb"), vec![0x55; 8192]).unwrap();
    let store = DataDir::open(&dir.0).unwrap();
    let opened = store.open_history(HistoryLimits::default());
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");
    // A file that is not a segment at all.
    let stranger = TempDir::new("history", "stranger");
    drop(DataDir::open(&stranger.0).unwrap());
    fs::create_dir_all(stranger.0.join(HISTORY_DIR)).unwrap();
    fs::write(stranger.0.join(HISTORY_DIR).join("notes.txt"), b"hello").unwrap();
    let store = DataDir::open(&stranger.0).unwrap();
    let opened = store.open_history(HistoryLimits::default());
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");

    let other = TempDir::new("history", "other-db");
    fs::create_dir_all(other.0.join(HISTORY_DIR)).unwrap();
    {
        let db = redb::Database::create(other.0.join(HISTORY_DIR).join("0000000001.redb")).unwrap();
        let write = db.begin_write().unwrap();
        let table: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("accounts");
        write.open_table(table).unwrap().insert(1, 2).unwrap();
        write.commit().unwrap();
    }
    let store = DataDir::open(&other.0).unwrap();
    let opened = store.open_history(HistoryLimits::default());
    assert!(matches!(opened, Err(StoreError::Foreign { .. })), "{opened:?}");
}
