//! The seed's demo as five real processes: node i seeded by node i-1, nodes 3 and 5 broadcasting; kill
//! the middle node with SIGKILL, restart it at the same address, stop everyone with SIGTERM; then judge
//! the `--json` output: every node delivered every hello exactly once, in per-origin order, while it
//! was up (the same judge as `cargo xtask demo`).
//!
//! `cargo test` builds the examples before running tests, so the demo binary sits next to this test's
//! own binary in `target/<profile>/examples/`.

#[path = "../../../xtask/src/demo_log.rs"]
mod demo_log;
#[path = "../../../xtask/src/demo_net.rs"]
mod demo_net;

mod demo_binary;
use demo_binary::demo_binary;

use std::time::Duration;

#[test]
fn five_demo_processes_kill_and_restart_the_middle_exactly_once_delivery() {
    let addrs = demo_net::local_addrs(0, 5);
    let labels: Vec<String> = addrs.iter().map(|a| a.port().to_string()).collect();
    let args_for = |i: usize| -> Vec<String> {
        let mut args = vec!["-l".to_owned(), addrs[i].to_string()];
        if i > 0 {
            args.extend(["-s".to_owned(), addrs[i - 1].to_string()]);
        }
        if i == 2 || i == 4 {
            args.extend(["--every".to_owned(), "0.2".to_owned(), "-i".to_owned(), (i + 1).to_string()]);
        }
        args
    };
    let mut cluster = demo_net::Cluster::new(demo_binary(), 5);
    for (i, label) in labels.iter().enumerate() {
        cluster.start(i, label, &args_for(i)).expect("start");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(4));
    cluster.kill(2);
    std::thread::sleep(Duration::from_secs(3));
    cluster.start(2, &labels[2], &args_for(2)).expect("restart");
    std::thread::sleep(Duration::from_secs(4));
    cluster.stop_all(Duration::from_secs(5));

    let runs = cluster.runs();
    let verdict = demo_log::judge(&runs, Duration::from_secs(2), Duration::from_secs(2));
    println!("{}\nworst delay {:?}", verdict.table(), verdict.worst_delay);
    let totals = verdict.totals();
    assert!(verdict.sent >= 40, "both senders sent throughout ({} messages)", verdict.sent);
    assert!(totals.received >= 3 * verdict.sent, "deliveries happened: {}", totals.received);
    assert!(verdict.clean(), "loss, duplicates or reordering:\n{}\n{:?}", verdict.table(), verdict.problems);
    // The restarted node is a new run (new node id) that joined and received.
    let restarted: Vec<_> = runs.iter().filter(|r| r.node == labels[2]).collect();
    assert_eq!(restarted.len(), 2);
    assert_ne!(restarted[0].id, restarted[1].id, "a restart is a new node id");
    // Worst delay bounded: no survivor waited for the restart to get its messages.
    assert!(verdict.worst_delay < Duration::from_secs(3), "worst delay {:?}", verdict.worst_delay);
}
