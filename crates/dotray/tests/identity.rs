//! A node's identity through the facade: a key file keeps it across restarts; a bad key file stops the
//! start with a clear error; a network key keeps strangers out of a private network.

use std::time::{Duration, Instant};

use dotray::{KeyFileError, NetworkKey, Node, StartError};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dotray-identity-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_key_file_keeps_the_node_id_across_restarts() {
    let path = scratch("restart").join("node.key");
    let first = Node::builder().key_file(&path).start().await.unwrap();
    let id = first.id();
    first.shutdown().await;
    let second = Node::builder().key_file(&path).start().await.unwrap();
    assert_eq!(second.id(), id, "the same key, the same node");
    let fresh = Node::builder().start().await.unwrap();
    assert_ne!(fresh.id(), id, "without a key file, a new key");
    second.shutdown().await;
    fresh.shutdown().await;
}

#[tokio::test]
async fn a_bad_key_file_is_a_clear_error_at_start() {
    let path = scratch("bad").join("node.key");
    std::fs::write(&path, b"not a key\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    match Node::builder().key_file(&path).start().await {
        Err(StartError::KeyFile(KeyFileError::Format { .. })) => {}
        other => panic!("expected a key file error, got {:?}", other.map(|n| n.id())),
    }
}

/// True once `node`'s node query lists `other` as a neighbour, within `limit`.
async fn becomes_neighbour(node: &Node, other: &Node, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if node.nodes().await.unwrap().iter().any(|n| n.peer.id == other.id()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_network_admits_members_only() {
    let dir = scratch("private");
    let key_path = dir.join("network.key");
    let first = Node::builder().network_key_file(&key_path).start().await.unwrap();
    // The file was created by the first node; a member loads it.
    let member = Node::builder().network_key_file(&key_path).seed(first.local_addr()).start().await.unwrap();
    assert!(becomes_neighbour(&first, &member, Duration::from_secs(10)).await, "a member joins");
    let outsider = Node::builder()
        .network_key(NetworkKey::from_bytes([1; 32]))
        .seed(first.local_addr())
        .start()
        .await
        .unwrap();
    let open = Node::builder().seed(first.local_addr()).start().await.unwrap();
    assert!(!becomes_neighbour(&first, &outsider, Duration::from_secs(2)).await, "another key stays out");
    assert!(!becomes_neighbour(&first, &open, Duration::from_millis(100)).await, "no key stays out");
    assert!(outsider.nodes().await.unwrap().iter().all(|n| n.peer.id != first.id()), "and learns no id");
    for node in [first, member, outsider, open] {
        node.shutdown().await;
    }
}
