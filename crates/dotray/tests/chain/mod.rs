//! A small network on loopback for the end-to-end tests: nodes started as in the seed's demo, each
//! seeded by the previous one, with membership timers short enough for a test.

use std::time::{Duration, Instant};

use dotray::{Node, NodeBuilder};

/// Membership timers for tests: pings, exchanges and retries in a fraction of a second.
pub(crate) fn fast_membership() -> dotray::membership::core::Config {
    dotray::membership::core::Config {
        ping_interval: Duration::from_millis(200),
        shuffle_interval: Duration::from_millis(700),
        heal_interval: Duration::from_millis(700),
        transient_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        neighbour_refusal_backoff: Duration::from_millis(300),
        sweep_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

/// `n` nodes, each seeded by the previous one; returns once every node knows every other.
#[allow(dead_code)] // not every test binary that includes this module calls both
pub(crate) async fn start_chain(n: usize) -> Vec<Node> {
    start_chain_with(n, |builder| builder).await
}

/// [`start_chain`] with each node's builder passed through `configure` first.
pub(crate) async fn start_chain_with(n: usize, configure: impl Fn(NodeBuilder) -> NodeBuilder) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let mut builder = configure(Node::builder().membership_config(fast_membership()));
        if i > 0 {
            builder = builder.seed(nodes[i - 1].local_addr());
        }
        nodes.push(builder.start().await.expect("start"));
    }
    // Wait until every node knows every other one (discovery done).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut all = true;
        for node in &nodes {
            let known = node.nodes().await.expect("running").len();
            all &= known >= n - 1;
        }
        if all {
            return nodes;
        }
        assert!(Instant::now() < deadline, "nodes did not discover each other");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
