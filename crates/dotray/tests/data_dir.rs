//! A node with a data directory continues across restarts: the same id, the same stream, numbers
//! going on where they stopped, so the rest of the network delivers on without a gap or a repeat;
//! and what its application acknowledged is not delivered again, while what it did not is. A
//! directory in use, one that cannot be written, or a key that is not the stored one is refused at
//! start; a directory that fills up while the node runs stops it.

#[cfg(unix)]
mod demo_binary;
mod durable;
use durable::{assert_no_gap, broadcast_joined, next_message, scratch};
use std::time::Duration;

use bytes::Bytes;
use dotray::store::StoreError;
use dotray::{Message, Node, SecretKey, StartError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_continues_its_stream_where_it_stopped() {
    let dir = scratch("continue");
    let listener = Node::builder().start().await.unwrap();

    let first = Node::builder().data_dir(&dir).seed(listener.local_addr()).start().await.unwrap();
    let id = first.id();
    let mut sent = Vec::new();
    for payload in [&b"one"[..], b"two", b"three"] {
        sent.push(broadcast_joined(&first, payload).await);
    }
    for expected in &sent {
        assert_eq!(next_message(&listener).await.id(), *expected);
    }
    first.shutdown().await;

    let second = Node::builder().data_dir(&dir).seed(listener.local_addr()).start().await.unwrap();
    assert_eq!(second.id(), id, "the stored key, the same node");
    let fourth = broadcast_joined(&second, b"four").await;
    let fifth = second.broadcast(Bytes::from_static(b"five")).await.unwrap();
    assert_eq!(fourth.stream, sent[0].stream, "the same stream");
    assert_eq!((fourth.seq, fifth.seq), (4, 5), "numbers go on");
    for (expected, payload) in [(fourth, &b"four"[..]), (fifth, b"five")] {
        let message = next_message(&listener).await;
        assert_eq!((message.id(), &message.payload[..]), (expected, payload));
    }
    // Nothing lost on the way: no gap was reported.
    assert_no_gap(&listener).await;
    second.shutdown().await;
    listener.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_data_dir_in_use_is_refused() {
    let dir = scratch("in-use");
    let first = Node::builder().data_dir(&dir).start().await.unwrap();
    match Node::builder().data_dir(&dir).start().await {
        Err(StartError::DataDir(StoreError::InUse { .. })) => {}
        other => panic!("expected the directory to be in use, got {:?}", other.map(|n| n.id())),
    }
    first.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_other_than_the_stored_one_is_refused() {
    let dir = scratch("wrong-key");
    let first = Node::builder().data_dir(&dir).start().await.unwrap();
    let stored = first.id();
    first.shutdown().await;
    let other = SecretKey::generate();
    match Node::builder().data_dir(&dir).secret_key(other.clone()).start().await {
        Err(StartError::WrongKey { stored: s, given }) => assert_eq!((s, given), (stored, other.node_id())),
        other => panic!("expected a key mismatch, got {:?}", other.map(|n| n.id())),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_delivers_exactly_what_its_application_did_not_acknowledge() {
    let dir = scratch("acks");
    let origin = Node::builder().start().await.unwrap();
    let first = Node::builder().data_dir(&dir).seed(origin.local_addr()).start().await.unwrap();
    let mut sent = Vec::new();
    for payload in [&b"m1"[..], b"m2", b"m3", b"m4", b"m5"] {
        sent.push(broadcast_joined(&origin, payload).await);
    }
    let mut received = Vec::new();
    for _ in 0..5 {
        received.push(next_message(&first).await);
    }
    assert_eq!(received.iter().map(Message::id).collect::<Vec<_>>(), sent);
    // The application processed three of the five before it stopped.
    first.ack(&received[2]).await.unwrap();
    first.shutdown().await;
    // While it is away, two more.
    for payload in [&b"m6"[..], b"m7"] {
        sent.push(origin.broadcast(Bytes::from_static(payload)).await.unwrap());
    }

    let second = Node::builder().data_dir(&dir).seed(origin.local_addr()).start().await.unwrap();
    let mut again = Vec::new();
    for _ in 0..4 {
        again.push(next_message(&second).await.id());
    }
    assert_eq!(again, sent[3..].to_vec(), "4 and 5 (never acknowledged), then 6 and 7; not 1..=3");
    // Nothing more comes, and nothing was reported lost.
    let extra = tokio::time::timeout(Duration::from_millis(500), second.recv()).await;
    assert!(extra.is_err(), "a delivery beyond the stream: {extra:?}");
    assert_no_gap(&second).await;
    second.shutdown().await;
    origin.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_never_acknowledged_is_taken_up_where_the_earlier_run_took_it_up() {
    let dir = scratch("never-acked");
    // A newcomer would take up only the last message of a stream older than it: what the earlier
    // run took up is owed instead.
    let newcomer_takes_one = || {
        let router = dotray::router::core::Config {
            backfill_new_stream: 1,
            stream_start_tolerance: Duration::ZERO,
            ..Default::default()
        };
        Node::builder().data_dir(&dir).router_config(router)
    };
    let first = newcomer_takes_one().start().await.unwrap();
    let origin = Node::builder().seed(first.local_addr()).start().await.unwrap();
    let mut sent = vec![broadcast_joined(&origin, b"m1").await];
    for payload in [&b"m2"[..], b"m3"] {
        sent.push(origin.broadcast(Bytes::from_static(payload)).await.unwrap());
    }
    for expected in &sent {
        assert_eq!(next_message(&first).await.id(), *expected);
    }
    // Nothing acknowledged; the node stops, and two more are sent meanwhile.
    first.shutdown().await;
    for payload in [&b"m4"[..], b"m5"] {
        sent.push(origin.broadcast(Bytes::from_static(payload)).await.unwrap());
    }
    // Stream start times count in whole seconds: make the stream plainly older than the next run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = newcomer_takes_one().seed(origin.local_addr()).start().await.unwrap();
    let mut again = Vec::new();
    for _ in 0..5 {
        again.push(next_message(&second).await.id());
    }
    assert_eq!(again, sent, "from the first message the earlier run delivered");
    assert_no_gap(&second).await;
    second.shutdown().await;
    origin.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_data_dir_an_acknowledgement_is_a_no_op() {
    let a = Node::builder().start().await.unwrap();
    let b = Node::builder().seed(a.local_addr()).start().await.unwrap();
    broadcast_joined(&a, b"x").await;
    let message = next_message(&b).await;
    b.ack(&message).await.expect("nothing to store, nothing to fail");
    a.shutdown().await;
    b.shutdown().await;
}

/// The demo on loopback with the data directory `dir` and `args`, its files limited to `blocks`
/// blocks of 512 bytes (`ulimit -f`), SIGXFSZ ignored: a write past the limit fails with EFBIG, as
/// one to a full disk fails with ENOSPC.
#[cfg(unix)]
fn demo_with_file_limit(blocks: u32, dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let script = format!(
        "trap '' XFSZ; ulimit -f {blocks}; exec '{}' -l 127.0.0.1:0 --data '{}' --json {}",
        demo_binary::demo_binary().display(),
        dir.display(),
        args.join(" ")
    );
    let mut command = std::process::Command::new("sh");
    command.arg("-c").arg(script);
    command
}

/// A full disk at start: the demo cannot create its data file and refuses to start with the
/// directory named in its error. (`ulimit -f 1` lets the process write files of one 512-byte block
/// at most; with SIGXFSZ ignored, a longer write fails with EFBIG, as a write to a full disk fails
/// with ENOSPC.)
#[cfg(unix)]
#[test]
fn a_data_dir_that_cannot_be_written_is_refused_at_start() {
    let dir = scratch("full");
    let out = demo_with_file_limit(1, &dir, &[]).output().expect("sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on an unwritable directory: {stdout}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(stderr.contains("data directory") && stderr.contains(&*dir.to_string_lossy()), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A disk that fills up while the node runs: the write of a signed batch's position fails, the node
/// stops before sending that batch and says why, and the demo fails. (`ulimit -f` lets the data
/// file grow to 150 KiB, about twice its size when new; the node broadcasts every 2 ms, each signed
/// batch stored with its position, until the file can grow no more. Its output is a pipe, which
/// the limit does not cover.)
#[cfg(unix)]
#[test]
fn a_data_dir_that_fills_up_while_running_stops_the_node() {
    let dir = scratch("fills-up");
    let mut child = demo_with_file_limit(300, &dir, &["-m", "--every", "0.002"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sh runs");
    let stdout = child.stdout.take().expect("piped");
    // Bounded: the file fills in a few seconds; a node that never stops is killed after 60 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap();
    let status = status.expect("the node stopped by itself");
    assert!(!status.success(), "the demo failed: {status}");
    assert!(out.contains(r#""event":"data_dir_failed""#), "{out}");
    assert!(out.contains("File too large"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A history that cannot grow any more (the disk is full) is given up: the node says so once and
/// goes on delivering. (The files may grow to 150 KiB: the history's first segment outgrows that
/// within about a hundred messages of 1 KiB; the node's own records stay far below it.)
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_that_fills_up_is_given_up_and_the_node_goes_on() {
    use std::io::BufRead;
    let dir = scratch("history-full");
    let publisher = Node::builder().start().await.unwrap();
    let addr = publisher.local_addr().to_string();
    let mut child = demo_with_file_limit(300, &dir, &["-s", &addr, "--history", "16"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sh runs");
    let stdout = child.stdout.take().expect("piped");
    // Receives after the failure, counted by a reader thread; bounded by the deadline below.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let sending = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            for n in 0..20_000u32 {
                let mut payload = vec![b'x'; 1024];
                payload[..4].copy_from_slice(&n.to_le_bytes());
                if publisher.broadcast(Bytes::from(payload)).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (mut failed, mut after) = (0, 0);
    while after < 50 {
        let Ok(Some(line)) = tokio::time::timeout_at(deadline, rx.recv()).await else { break };
        if line.contains(r#""event":"history_failed""#) {
            assert!(line.contains("File too large"), "{line}");
            failed += 1;
        } else if failed > 0 && line.contains(r#""event":"receive""#) {
            after += 1;
        }
        assert!(!line.contains(r#""event":"data_dir_failed""#), "{line}");
    }
    sending.abort();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(failed, 1, "the history's failure is told once");
    assert_eq!(after, 50, "deliveries go on after it");
    publisher.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two processes, one data directory: the second demo refuses to start and says the directory is in
/// use; the first goes on.
#[cfg(unix)]
#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let dir = scratch("two-processes");
    let demo = demo_binary::demo_binary();
    let start = || {
        std::process::Command::new(&demo)
            .args(["-l", "127.0.0.1:0", "--json", "--data"])
            .arg(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the demo starts")
    };
    let mut first = start();
    // Wait for the first one's `listening` line: it holds the directory from then on.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stdout.take().expect("piped")));
    let listening = lines.next().expect("a line").expect("text");
    assert!(listening.contains("listening"), "{listening}");
    let second = start().wait_with_output().expect("the second ends");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second process started on the same directory");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert_eq!(first.try_wait().expect("wait"), None, "the first one goes on");
    let _ = first.kill();
    let _ = first.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
