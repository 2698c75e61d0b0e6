//! The seed's demo: start as many nodes as you like, kill any node as you like.
//!
//! ```text
//! cargo run --example demo -- -l 127.0.0.1:2000                      # the first node
//! cargo run --example demo -- -l 127.0.0.1:2001 -s 127.0.0.1:2000    # joins through the first
//! cargo run --example demo -- -l 127.0.0.1:2002 -s 127.0.0.1:2001 -m -i 3   # says hello-3 every 5 s
//! ```
//!
//! Flags (those of the original Go demo, plus a few):
//!
//! * `-l ADDR` — listen address, `ip:port` or `host:port` (default `127.0.0.1:2000`);
//! * `-s ADDR` — seed: any node already in the network, `ip:port` or `host:port` (repeatable; none
//!   starts a new network; a name is looked up again when its address stops answering); as
//!   `ID@ADDR` (the node id as 64 hex digits, as the node prints it), only that node is joined there;
//! * `-m` — send a message every 5 seconds; `--every SECONDS` changes the period (fractions allowed);
//! * `-i ID` — vary the message: `hello-<ID>`;
//! * `--json` — one JSON object per line instead of the human output (see below);
//! * `--count N` — stop sending after N messages (default: no limit);
//! * `--after SECONDS` — send the first message this long after the start, plus one period
//!   (default 0: one period in), to bring a new origin into a running network;
//! * `--key FILE` — keep this node's secret key in FILE (created, mode 0600, when absent), so that a
//!   restarted node is the same node (default: a fresh key, a new node id, at each start);
//! * `--data DIR` — keep the node's state in the directory DIR (created when absent): its key, so it
//!   is the same node, and its own stream, so a restarted node's messages go on from the number
//!   where it stopped instead of starting a new stream, and it acknowledges each message it prints,
//!   so a restarted node prints what it missed and nothing twice (default: none). One process per
//!   directory; with `--data`, `--key` must name the key stored there, or be left out;
//! * `--history MIB` — with `--data`: also keep the messages it delivers and sends in DIR, up to MIB
//!   mebibytes (the oldest go first), and serve them to nodes that come back after longer than
//!   memory retains (default: none);
//! * `--network-key-file FILE` — a private network: only nodes with the key in FILE (created when
//!   absent; copy it to every member) can connect (default: an open network);
//! * `--metrics ADDR` — serve the node's metrics in Prometheus text format at
//!   `http://ADDR/metrics`, e.g. `--metrics 127.0.0.1:9000` (default: not served). The names are
//!   listed in the `dotray::metrics` module; they are updated once a second.
//!
//! Human output: `send message: hello-3` on each send and
//! `receive message: hello-3 from other node: "127.0.0.1:2002"` on each delivery (the origin's
//! address, not the previous hop's). With `--json`:
//!
//! ```text
//! {"event":"listening","addr":"127.0.0.1:2002","id":"<hex>"}
//! {"event":"send","data":"hello-3","origin_id":"<hex>","seq":1}
//! {"event":"receive","data":"hello-3","origin":"127.0.0.1:2002","origin_id":"<hex>","seq":1,"hops":2}
//! {"event":"up","peer":"127.0.0.1:2001"}
//! {"event":"down","peer":"127.0.0.1:2001"}
//! {"event":"gap","origin_id":"<hex>","first":5,"last":7}
//! {"event":"refused","peer":"127.0.0.1:2000","reason":"another network id"}
//! {"event":"acked","origin_id":"<hex>","seq":1,"through":1}   (with --data: the receive before it is stored as processed)
//! {"event":"data_dir_failed","error":"..."}   (the data directory could not be written: the node stops, the demo fails)
//! {"event":"counters","router":{"broadcasts":0,..,"delivered":12,..},"driver":{..},"transport":{..}} (at exit)
//! {"event":"nodes","known":[{"addr":"127.0.0.1:2001","state":"Active"}]}       (at exit)
//! {"event":"topology","eager":["127.0.0.1:2001"],"lazy":["127.0.0.1:2003"]}   (at exit)
//! ```
//!
//! With `--metrics`, the `listening` line has a `"metrics"` key too, the address served. The
//! `counters` line has every field of the router's `Counters`, the driver's `DriverCounters` and the
//! transport's `TransportStats`, by field name (the human output lists those that are not zero).
//!
//! A payload longer than 1 KiB is shown cut, its first KiB and `…`, and its `receive` line has a
//! `"size"` key after `"data"`: the payload's length in bytes.
//!
//! `origin_id` + `seq` identify a message. The node stops cleanly on SIGINT (Ctrl-C) or SIGTERM: it
//! prints its final topology, tells its neighbours goodbye and exits. Logs (`RUST_LOG=debug`) go to
//! stderr, so stdout carries only the lines above.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use dotray::{Event, Node, NodeId, metrics};
use dotray::{PeerAddr, SeedAddr};
use tokio::signal::unix::{SignalKind, signal};

/// Command-line options.
struct Options {
    listen: PeerAddr,
    seeds: Vec<SeedAddr>,
    send: bool,
    every: Duration,
    id: String,
    json: bool,
    count: Option<u64>,
    after: Duration,
    key: Option<PathBuf>,
    data: Option<PathBuf>,
    /// `--history MIB`: keep a history of up to this many mebibytes.
    history_mib: Option<u64>,
    network_key: Option<PathBuf>,
    metrics: Option<SocketAddr>,
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        listen: PeerAddr::from("127.0.0.1:2000"),
        seeds: Vec::new(),
        send: false,
        every: Duration::from_secs(5),
        id: "0".to_owned(),
        json: false,
        count: None,
        after: Duration::ZERO,
        key: None,
        data: None,
        history_mib: None,
        network_key: None,
        metrics: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-l" => options.listen = PeerAddr::from(value("-l")?),
            "-s" => {
                options.seeds.push(value("-s")?.parse().context("-s takes host:port, ip:port or id@either")?)
            }
            "-m" => options.send = true,
            "-i" => options.id = value("-i")?,
            "--every" => {
                let seconds: f64 = value("--every")?.parse().context("--every takes seconds")?;
                options.every = Duration::try_from_secs_f64(seconds).context("--every takes seconds")?;
                options.send = true;
            }
            "--count" => options.count = Some(value("--count")?.parse().context("--count takes a number")?),
            "--after" => {
                let seconds: f64 = value("--after")?.parse().context("--after takes seconds")?;
                options.after = Duration::try_from_secs_f64(seconds).context("--after takes seconds")?;
            }
            "--json" => options.json = true,
            "--key" => options.key = Some(value("--key")?.into()),
            "--data" => options.data = Some(value("--data")?.into()),
            "--history" => {
                options.history_mib = Some(value("--history")?.parse().context("--history takes mebibytes")?)
            }
            "--network-key-file" => options.network_key = Some(value("--network-key-file")?.into()),
            "--metrics" => {
                options.metrics = Some(value("--metrics")?.parse().context("--metrics takes ip:port")?)
            }
            "-h" | "--help" => {
                println!(
                    "usage: demo [-l ADDR] [-s ADDR]... [-m] [--every SECONDS] [-i ID] [--count N] [--after SECONDS] [--json] \
                     [--key FILE] [--data DIR [--history MIB]] [--network-key-file FILE] [--metrics ADDR]\n\n\
                     --metrics ADDR  serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9000)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if options.every.is_zero() {
        bail!("--every must be more than zero");
    }
    Ok(options)
}

/// Most payload bytes printed per delivery. A longer payload (another program's, such as a 2 MiB
/// blob) is cut: printing it whole would cost this loop more time than the delivery itself, and
/// every process reading the output as much again.
const MAX_SHOWN_LEN: usize = 1024;

/// A payload as text, at most [`MAX_SHOWN_LEN`] bytes of it (bytes that are not UTF-8 shown as
/// U+FFFD), with `…` after a cut.
fn shown(payload: &[u8]) -> String {
    if payload.len() <= MAX_SHOWN_LEN {
        return String::from_utf8_lossy(payload).into_owned();
    }
    let mut text = String::from_utf8_lossy(&payload[..MAX_SHOWN_LEN]).into_owned();
    text.push('…');
    text
}

/// A JSON string literal (the demo's values are short ASCII, but escape properly anyway).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prints one output line and flushes, so that a process reading our stdout sees it at once.
fn emit(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let options = parse_args()?;
    if let Some(addr) = options.metrics {
        // Installed before the node starts, so that its first figures are recorded.
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("--metrics {addr}"))?;
    }
    let mut builder = Node::builder().listen(options.listen.clone()).seeds(options.seeds.clone());
    if let Some(path) = &options.key {
        builder = builder.key_file(path);
    }
    if let Some(path) = &options.data {
        builder = builder.data_dir(path);
    }
    if let Some(mib) = options.history_mib {
        let limits = dotray::HistoryLimits { max_bytes: mib << 20, ..Default::default() };
        builder = builder.history(limits);
    }
    if let Some(path) = &options.network_key {
        builder = builder.network_key_file(path);
    }
    let node = builder.start().await?;
    let me = node.id();
    if options.json {
        let metrics = options.metrics.map(|a| format!(r#","metrics":{}"#, json_str(&a.to_string())));
        emit(format!(
            r#"{{"event":"listening","addr":{},"id":{}{}}}"#,
            json_str(&node.local_addr().to_string()),
            json_str(&me.to_string()),
            metrics.unwrap_or_default()
        ));
    } else {
        println!("listening on {} as node {me}", node.local_addr());
        if let Some(addr) = options.metrics {
            println!("metrics at http://{addr}/metrics");
        }
    }

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    // The first message goes out one period in (after `--after`).
    let first = tokio::time::Instant::now() + options.after + options.every;
    let mut ticker = tokio::time::interval_at(first, options.every);
    let message = format!("hello-{}", options.id);
    let mut sent = 0u64;
    let mut neighbours: HashMap<NodeId, SocketAddr> = HashMap::new();
    // Set when the node stopped because it could not write its data directory.
    let mut stopped_by: Option<String> = None;

    loop {
        let sending = options.send && options.count.is_none_or(|n| sent < n);
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = ticker.tick(), if sending => {
                let id = match node.broadcast(Bytes::from(message.clone())).await {
                    Ok(id) => id,
                    // Stopped by itself: what it reported is read below.
                    Err(dotray::NodeError::Stopped) => break,
                    Err(error) => return Err(error.into()),
                };
                sent += 1;
                if options.json {
                    emit(format!(
                        r#"{{"event":"send","data":{},"origin_id":{},"seq":{}}}"#,
                        json_str(&message), json_str(&me.to_string()), id.seq
                    ));
                } else {
                    emit(format!("send message: {message}"));
                }
            }
            received = node.recv() => {
                let Some(m) = received else { break };
                let data = shown(&m.payload);
                let origin = m.origin_addr.map(|a| a.to_string()).unwrap_or_default();
                if options.json {
                    let size = if m.payload.len() > MAX_SHOWN_LEN {
                        format!(r#","size":{}"#, m.payload.len())
                    } else {
                        String::new()
                    };
                    emit(format!(
                        r#"{{"event":"receive","data":{}{size},"origin":{},"origin_id":{},"seq":{},"hops":{}}}"#,
                        json_str(&data), json_str(&origin), json_str(&m.origin.to_string()), m.seq, m.hops
                    ));
                } else {
                    emit(format!("receive message: {data} from other node: \"{origin}\""));
                }
                // Printed, so processed: with a data directory a restart will not print it again. The
                // acknowledgement commits in the background (the next messages need not wait for
                // it); its line is printed once it is stored.
                if options.data.is_some() {
                    let (node, json) = (node.clone(), options.json);
                    tokio::spawn(async move {
                        if node.ack(&m).await.is_ok() && json {
                            emit(format!(
                                r#"{{"event":"acked","origin_id":{},"seq":{},"through":{}}}"#,
                                json_str(&m.origin.to_string()), m.seq, m.through
                            ));
                        }
                    });
                }
            }
            event = node.next_event() => {
                let Some(event) = event else { break };
                if let Event::DataDirFailed { error } = &event {
                    stopped_by = Some(error.clone());
                }
                if let Some(line) = describe(&event, &mut neighbours, options.json) {
                    emit(line);
                }
            }
        }
    }
    // Events the node reported as it stopped by itself (a data directory it could not write) and
    // that the loop did not read: printed, and then the demo fails.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(100), node.next_event()).await {
        if let Event::DataDirFailed { error } = &event {
            stopped_by = Some(error.clone());
        }
        if let Some(line) = describe(&event, &mut neighbours, options.json) {
            emit(line);
        }
    }
    if let Some(error) = stopped_by {
        bail!("the node stopped: its data directory cannot be written ({error})");
    }

    // Leaving: the counters and who this node knows (for diagnosing a run from its log), the final
    // topology (for `cargo xtask demo`'s picture), then goodbyes.
    if let Ok((router, driver)) = node.counters().await {
        let layers = [
            ("router", metrics::router_figures(&router)),
            ("driver", metrics::driver_figures(&driver)),
            ("transport", metrics::transport_figures(&node.transport_stats())),
        ];
        if options.json {
            let objects: Vec<String> = layers
                .iter()
                .map(|(layer, figures)| {
                    let fields: Vec<String> =
                        figures.iter().map(|f| format!("{}:{}", json_str(f.field), f.value)).collect();
                    format!("{}:{{{}}}", json_str(layer), fields.join(","))
                })
                .collect();
            emit(format!(r#"{{"event":"counters",{}}}"#, objects.join(",")));
        } else {
            for (layer, figures) in &layers {
                let fields: Vec<String> = figures
                    .iter()
                    .filter(|f| f.value != 0)
                    .map(|f| format!("{}={}", f.field, f.value))
                    .collect();
                let fields = if fields.is_empty() { "all zero".to_owned() } else { fields.join(" ") };
                emit(format!("counters ({layer}): {fields}"));
            }
        }
    }
    if let Ok(known) = node.nodes().await {
        let list: Vec<String> = known
            .iter()
            .map(|info| {
                format!(r#"{{"addr":{},"state":"{:?}"}}"#, json_str(&info.peer.addr.to_string()), info.state)
            })
            .collect();
        if options.json {
            emit(format!(r#"{{"event":"nodes","known":[{}]}}"#, list.join(",")));
        } else {
            emit(format!("known nodes: {}", list.join(", ")));
        }
    }
    if let Ok(topology) = node.topology().await {
        let addrs = |ids: &[NodeId]| -> String {
            let list: Vec<String> =
                ids.iter().filter_map(|id| neighbours.get(id)).map(|a| json_str(&a.to_string())).collect();
            format!("[{}]", list.join(","))
        };
        let (eager, lazy) = (addrs(&topology.eager), addrs(&topology.lazy));
        if options.json {
            emit(format!(r#"{{"event":"topology","eager":{eager},"lazy":{lazy}}}"#));
        } else {
            emit(format!("tree links: {eager}  lazy links: {lazy}"));
        }
    }
    node.shutdown().await;
    Ok(())
}

/// The output line for an event, if it has one.
fn describe(event: &Event, neighbours: &mut HashMap<NodeId, SocketAddr>, json: bool) -> Option<String> {
    match event {
        Event::NeighbourUp { peer, addr } => {
            neighbours.insert(*peer, *addr);
            Some(if json {
                format!(r#"{{"event":"up","peer":{}}}"#, json_str(&addr.to_string()))
            } else {
                format!("neighbour up: {addr}")
            })
        }
        Event::NeighbourDown { peer } => {
            let addr = neighbours.get(peer).map(|a| a.to_string()).unwrap_or_else(|| peer.to_string());
            Some(if json {
                format!(r#"{{"event":"down","peer":{}}}"#, json_str(&addr))
            } else {
                format!("neighbour down: {addr}")
            })
        }
        Event::Gap { stream, first, last } => Some(if json {
            format!(
                r#"{{"event":"gap","origin_id":{},"first":{first},"last":{last}}}"#,
                json_str(&stream.origin.to_string())
            )
        } else {
            format!("gap: messages {first}..={last} of {} are lost", stream.origin)
        }),
        Event::Refused { addr, reason } => Some(if json {
            format!(
                r#"{{"event":"refused","peer":{},"reason":{}}}"#,
                json_str(&addr.to_string()),
                json_str(&reason.to_string())
            )
        } else {
            format!("refused by {addr}: {reason}")
        }),
        Event::HistoryFailed { error } => Some(if json {
            format!(r#"{{"event":"history_failed","error":{}}}"#, json_str(error))
        } else {
            format!("the history cannot be written ({error}); the node goes on without it")
        }),
        Event::DataDirFailed { error } => Some(if json {
            format!(r#"{{"event":"data_dir_failed","error":{}}}"#, json_str(error))
        } else {
            format!("the data directory cannot be written ({error}); the node stops")
        }),
        _ => None,
    }
}
