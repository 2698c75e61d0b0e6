//! The nodes' metrics as an operator sees them: scraped over HTTP from the Prometheus exporter, in
//! process (three nodes, one recorder) and from the demo binary's `--metrics ADDR`, whose `counters`
//! line at exit must agree with what it delivered.
//!
//! The Prometheus recorder is global to a process, so this file installs it once, in one test; the
//! demo test runs its nodes as processes of their own.

mod chain;
mod demo_binary;
use demo_binary::demo_binary;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray::{MetricsConfig, Node};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DELIVERED: &str = "dotray_messages_delivered_total";

/// A loopback address whose port was free a moment ago.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// The body of a `200 OK` answer to `GET /metrics`, from the raw HTTP response.
fn body(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    body.to_owned()
}

async fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    Some(body(&response))
}

fn scrape_blocking(addr: SocketAddr) -> Option<String> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    Some(body(&response))
}

/// The value of `metric` with exactly the labels `labels` (as written between the braces).
fn value(text: &str, metric: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{metric}{{{labels}}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).map(|v| v.parse().expect("a number"))
}

fn node_labels(node: &Node) -> String {
    format!(r#"node="{}""#, &node.id().to_string()[..8])
}

/// Scrapes until `done` holds for the text, and returns that text.
async fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(text) = scrape(addr).await {
            if done(&text) {
                return text;
            }
            last = Some(text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never scraped {what}; last scrape:\n{}", last.unwrap_or_default());
}

async fn start_chain(n: usize) -> Vec<Node> {
    chain::start_chain_with(n, |builder| {
        builder.metrics_config(MetricsConfig { interval: Duration::from_millis(100) })
    })
    .await
}

async fn receive(node: &Node, count: usize) {
    for _ in 0..count {
        tokio::time::timeout(Duration::from_secs(10), node.recv())
            .await
            .expect("delivered in time")
            .expect("running");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_metrics_follow_three_nodes_broadcasting() {
    let addr = free_addr();
    PrometheusBuilder::new().with_http_listener(addr).install().expect("install the exporter");
    let nodes = start_chain(3).await;
    let labels: Vec<String> = nodes.iter().map(node_labels).collect();
    assert!(labels[0] != labels[1] && labels[1] != labels[2] && labels[0] != labels[2], "{labels:?}");

    let payload = |i: usize| Bytes::from(format!("metrics-{i}"));
    assert_eq!(payload(9).len(), 9);
    for i in 0..5 {
        nodes[0].broadcast(payload(i)).await.expect("broadcast");
    }
    receive(&nodes[1], 5).await;
    receive(&nodes[2], 5).await;
    let first = scrape_until(addr, "5 deliveries at nodes 1 and 2", |text| {
        value(text, DELIVERED, &labels[1]) == Some(5.0) && value(text, DELIVERED, &labels[2]) == Some(5.0)
    })
    .await;
    assert!(first.contains(&format!("# TYPE {DELIVERED} counter")), "{first}");
    assert!(first.contains("# TYPE dotray_connections gauge"), "{first}");
    assert_eq!(value(&first, "dotray_broadcasts_total", &labels[0]), Some(5.0));
    assert_eq!(value(&first, DELIVERED, &labels[0]), Some(0.0), "a node does not deliver its own broadcasts");
    // Every message is 9 bytes long, 10 as a payload with its header (`dotray_node::fragment`);
    // copies that arrive twice count twice in both.
    let received = value(&first, "dotray_payloads_received_total", &labels[1]).expect("payloads received");
    assert!(received >= 5.0, "{received}");
    assert_eq!(value(&first, "dotray_payload_received_bytes_total", &labels[1]), Some(10.0 * received));
    for label in &labels {
        let connections = value(&first, "dotray_connections", label).expect("connections");
        let active =
            value(&first, "dotray_known_nodes", &format!(r#"{label},state="active""#)).expect("known");
        let links = value(&first, "dotray_eager_links", label).expect("eager")
            + value(&first, "dotray_lazy_links", label).expect("lazy");
        assert!(
            connections >= 1.0 && active >= 1.0 && links >= 1.0,
            "{label}: {connections} {active} {links}"
        );
    }

    // Node 2 leaves the second batch in its queue for now.
    for i in 5..10 {
        nodes[0].broadcast(payload(i)).await.expect("broadcast");
    }
    receive(&nodes[1], 5).await;
    let second = scrape_until(addr, "10 deliveries, 5 waiting at node 2", |text| {
        value(text, DELIVERED, &labels[1]) == Some(10.0)
            && value(text, DELIVERED, &labels[2]) == Some(10.0)
            && value(text, "dotray_delivery_queue_depth", &labels[2]) == Some(5.0)
    })
    .await;
    assert_eq!(value(&second, "dotray_broadcasts_total", &labels[0]), Some(10.0));
    assert_eq!(value(&second, "dotray_delivery_queue_depth", &labels[1]), Some(0.0));
    receive(&nodes[2], 5).await;
    scrape_until(addr, "node 2's queue read", |text| {
        value(text, "dotray_delivery_queue_depth", &labels[2]) == Some(0.0)
    })
    .await;

    // Pings measure every link: each node's neighbour round-trip times become numbers, in order.
    let rtts = |text: &str, label: &str| {
        ["min", "median", "max"].map(|which| {
            value(text, &format!("dotray_neighbour_rtt_{which}_seconds"), label).unwrap_or(f64::NAN)
        })
    };
    let text = scrape_until(addr, "round-trip times", |text| {
        labels.iter().all(|label| rtts(text, label).iter().all(|rtt| rtt.is_finite()))
    })
    .await;
    for label in &labels {
        let [min, median, max] = rtts(&text, label);
        assert!(0.0 < min && min <= median && median <= max && max < 1.0, "{label}: {min} {median} {max}");
    }

    for node in &nodes {
        node.shutdown().await;
    }
}

/// A demo process, killed if the test ends before it exits.
struct Demo {
    child: Child,
    /// Its standard output, when piped, after the lines already read.
    stdout: Option<BufReader<ChildStdout>>,
    /// The lines already read.
    read: String,
}

impl Demo {
    fn start(args: &[&str], stdout: Stdio) -> Demo {
        let mut child = Command::new(demo_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().map(BufReader::new);
        Demo { child, stdout, read: String::new() }
    }

    /// The address a `--json` demo listens on, from its first line (blocks until printed). Nodes
    /// listen on port 0 and are found this way: a port picked free beforehand may be taken, by an
    /// outgoing connection of a test running beside this one, before the demo binds it.
    fn listening_addr(&mut self) -> String {
        let stdout = self.stdout.as_mut().expect("a piped standard output");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read stdout");
        self.read.push_str(&line);
        let listening: serde_json::Value = serde_json::from_str(&line).expect("the listening line");
        assert_eq!(listening["event"], "listening", "{line}");
        listening["addr"].as_str().expect("an address").to_string()
    }

    /// SIGTERM (the demo's graceful exit), then its standard output.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "the demo did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = std::mem::take(&mut self.read);
        if let Some(mut stdout) = self.stdout.take() {
            stdout.read_to_string(&mut out).expect("read stdout");
        }
        out
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number of the only `metric` line of a single-node scrape.
fn single(text: &str, metric: &str) -> Option<f64> {
    let prefix = format!("{metric}{{node=\"");
    text.lines().find(|line| line.starts_with(&prefix))?.rsplit_once(' ')?.1.parse().ok()
}

#[test]
fn the_demo_serves_metrics_and_prints_its_counters_as_json() {
    let help = Command::new(demo_binary()).arg("--help").output().expect("run the demo");
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--metrics ADDR"),
        "{} predates --metrics: cargo relinks target/<profile>/examples/demo only when it rebuilds the \
         example, so another checkout sharing the target directory may have left its own there",
        demo_binary().display()
    );
    let metrics = free_addr();
    let mut receiver =
        Demo::start(&["-l", "127.0.0.1:0", "--json", "--metrics", &metrics.to_string()], Stdio::piped());
    let listen = receiver.listening_addr();
    let sender =
        Demo::start(&["-l", "127.0.0.1:0", "-s", &listen, "--every", "0.1", "-i", "7"], Stdio::null());

    let scrape_until = |what: &str, done: &dyn Fn(f64) -> bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let delivered = scrape_blocking(metrics).and_then(|text| single(&text, DELIVERED));
            if let Some(delivered) = delivered.filter(|d| done(*d)) {
                return delivered;
            }
            assert!(Instant::now() < deadline, "never scraped {what}: last {delivered:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = scrape_until("a delivery", &|d| d >= 2.0);
    let second = scrape_until("more deliveries", &|d| d > first);
    assert!(second > first);

    let _ = sender.stop();
    let out = receiver.stop();
    let lines: Vec<serde_json::Value> =
        out.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
    let listening = lines.iter().find(|v| v["event"] == "listening").expect("listening line");
    assert_eq!(listening["metrics"], metrics.to_string());
    let received = lines.iter().filter(|v| v["event"] == "receive").count() as u64;
    let counters = lines.iter().find(|v| v["event"] == "counters").expect("counters line");
    assert!(out.contains(r#"{"event":"counters","router":{"broadcasts":0,"#), "event first, fields in order");
    assert_eq!(counters["router"]["delivered"], received, "the counters agree with the receive lines");
    assert!(received as f64 >= second, "{received} received, {second} scraped before");
    let driver = counters["driver"].as_object().expect("driver fields");
    assert_eq!(driver.len(), 7, "{driver:?}");
    assert_eq!(driver["messages_delivered"], received, "{driver:?}");
    let others = driver.iter().filter(|(name, _)| *name != "messages_delivered");
    assert!(others.clone().all(|(_, v)| v.as_u64() == Some(0)), "nothing dropped or refused: {driver:?}");
    assert!(counters["transport"]["inbound_accepted"].as_u64() >= Some(1), "{counters}");
    assert!(counters["transport"]["bytes_written"].as_u64() > Some(0), "{counters}");
}
