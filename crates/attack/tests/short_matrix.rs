//! The attack matrix's short form, for `cargo test`: each attack for a few seconds against a small
//! network of honest nodes run in this process (the facade, default configuration but for faster
//! membership timers), while one of them broadcasts. `cargo xtask attack` runs the full matrix
//! against real processes. Each test asserts the attack's own bound and that the target delivered
//! every honest broadcast, exactly once and in order.

use std::time::Duration;

use bytes::Bytes;
use dotray::Node;
use dotray_attack::{Report, decode, eclipse, poisoning, reflection, slots};
use tokio::time::Instant;

/// Honest nodes per test.
const NODES: usize = 8;
/// How long each attack lasts.
const ATTACK: Duration = Duration::from_secs(6);
/// The node attacked: not the first (everyone's way in), not the publisher.
const TARGET: usize = 3;

fn membership() -> dotray::membership::core::Config {
    dotray::membership::core::Config {
        ping_interval: Duration::from_millis(300),
        shuffle_interval: Duration::from_secs(1),
        heal_interval: Duration::from_secs(1),
        transient_timeout: Duration::from_secs(3),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        neighbour_refusal_backoff: Duration::from_millis(300),
        sweep_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

/// `NODES` honest nodes, each seeded by the previous one, once every node has a neighbour.
async fn network() -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..NODES {
        let mut builder = Node::builder().listen("127.0.0.1:0").membership_config(membership());
        if i > 0 {
            builder = builder.seed(nodes[i - 1].local_addr());
        }
        nodes.push(builder.start().await.expect("start"));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes
}

/// The attacks this test runs.
#[derive(Debug, Clone, Copy)]
enum Attack {
    Decode,
    Eclipse,
    Poisoning,
    Reflection,
    Slots,
}

impl Attack {
    async fn run(self, target: std::net::SocketAddr, deadline: Instant) -> Report {
        let mut report = Report::default();
        let outcome = match self {
            Self::Decode => decode::run(target, &mut report).await,
            Self::Eclipse => eclipse::run(target, deadline, &mut report).await,
            Self::Poisoning => poisoning::run(target, deadline, &mut report).await,
            Self::Reflection => reflection::run(target, deadline, &mut report).await,
            Self::Slots => slots::run(target, deadline, &mut report).await,
        };
        outcome.unwrap_or_else(|error| panic!("{self:?} did not run: {error}"));
        report
    }
}

/// Runs `attack` against the target while node 0 broadcasts every 50 ms; returns the attacker's report
/// once the target has delivered every broadcast, in order (or panics after a generous wait).
async fn under_attack(attack: Attack) -> Report {
    let nodes = network().await;
    let target = nodes[TARGET].clone();
    let deadline = Instant::now() + ATTACK;
    let publisher = nodes[0].clone();
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        while Instant::now() < deadline {
            publisher.broadcast(Bytes::from(sent.to_be_bytes().to_vec())).await.expect("broadcast");
            sent += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent
    });
    let report = attack.run(target.local_addr(), deadline).await;
    let sent = sender.await.expect("sender");
    let mut next = 0u64;
    let wait = Instant::now() + Duration::from_secs(20);
    while next < sent {
        let message = tokio::time::timeout_at(wait, target.recv())
            .await
            .unwrap_or_else(|_| panic!("the target delivered {next} of {sent} broadcasts: {report:?}"))
            .expect("running");
        if message.origin == nodes[0].id() {
            let seq = u64::from_be_bytes(message.payload[..8].try_into().expect("8 bytes"));
            assert_eq!(seq, next, "in order, once each");
            next += 1;
        }
    }
    for node in nodes {
        node.shutdown().await;
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_amplification_is_refused_before_decoding() {
    let report = under_attack(Attack::Decode).await;
    assert_eq!(report.count("closed_by_target"), Some(4), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eclipse_never_takes_the_whole_active_view() {
    let report = under_attack(Attack::Eclipse).await;
    assert!(report.count("joins").is_some_and(|joins| joins >= 5), "{report:?}");
    assert!(report.fraction("attacker_share_max").is_some_and(|share| share < 1.0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoning_displaces_no_honest_backup() {
    let report = under_attack(Attack::Poisoning).await;
    assert!(report.count("requests").is_some_and(|n| n >= 5), "{report:?}");
    assert_eq!(report.count("honest_backups_kept"), report.count("honest_backups_before"), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_reflect_at_most_the_dial_budget() {
    let report = under_attack(Attack::Reflection).await;
    let config = dotray::membership::core::Config::default();
    // The budget's burst and rate over the attack, and a heal dial of the victim's address per
    // second (the test's heal interval) once it sits in the passive view.
    let limit = u64::from(config.named_dial_burst + config.named_dial_rate * 7) + 7;
    assert!(report.count("walks_sent").is_some_and(|n| n > 100), "{report:?}");
    assert!(report.count("victim_connections").is_some_and(|n| n <= limit), "{report:?} (limit {limit})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_from_one_address_leave_room_for_newcomers() {
    let report = under_attack(Attack::Slots).await;
    let tried = report.count("newcomers_tried").unwrap_or(0);
    let admitted = report.count("newcomers_admitted").unwrap_or(0);
    assert!(report.count("sockets_opened").is_some_and(|n| n >= 96), "{report:?}");
    assert!(tried >= 5 && admitted == tried, "{report:?}");
}
