//! An in-memory network of router cores: a seeded, deterministic discrete-event simulation with
//! per-link latency (FIFO per direction, like TCP), message loss, node crashes, and emulated membership
//! (`neighbour_down` on crash after a detection delay, and a replacement edge so the graph stays
//! connected). No sockets, no tokio, no wall clock: `Instant`s are a fixed base plus simulated offsets.
//!
//! Written to be lifted into `crates/sim`: [`SimConfig`] in, [`Report`] out, nothing else shared.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_router::core::{Action, Config, Event, Message, Router, StreamId, Timer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Replays exactly.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Each node opens this many links to random others (the graph's degree is about twice this).
    pub links_per_node: usize,
    /// Messages broadcast in total, from random live origins.
    pub messages: usize,
    /// Time between two broadcasts.
    pub interval: Duration,
    /// Per-link one-way latency is uniform in this range (fixed per link).
    pub latency: (Duration, Duration),
    /// Probability that any one message is lost.
    pub loss: f64,
    /// Fraction of nodes that crash, at random times during the middle of the run.
    pub crash_fraction: f64,
    /// How long membership takes to notice a crash.
    pub detection_delay: Duration,
    /// Simulated time after the last broadcast before checking.
    pub settle: Duration,
    /// Payload size in bytes.
    pub payload_len: usize,
    /// Broadcasts come from this many distinct origins (chosen at random, replaced if they crash);
    /// `None`: any live node.
    pub origins: Option<usize>,
    /// Router configuration of every node.
    pub router: Config,
}

impl SimConfig {
    /// A small, fast default.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: 100,
            links_per_node: 3,
            messages: 300,
            interval: Duration::from_millis(5),
            latency: (Duration::from_millis(1), Duration::from_millis(20)),
            loss: 0.0,
            crash_fraction: 0.0,
            detection_delay: Duration::from_millis(500),
            settle: Duration::from_secs(20),
            payload_len: 64,
            origins: None,
            router: Config::default(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Messages broadcast.
    pub broadcasts: usize,
    /// Broadcasts whose origin was alive at the end (these must reach every live node).
    pub live_broadcasts: usize,
    /// Nodes alive at the end.
    pub live_nodes: usize,
    /// (live node, live-origin message) pairs not delivered.
    pub missing: usize,
    /// Deliveries of a message already delivered, or out of per-stream order.
    pub order_violations: usize,
    /// Gap events on streams of live origins.
    pub live_gaps: usize,
    /// Gap events in total.
    pub gaps: usize,
    /// Sum over nodes of payloads received.
    pub payloads_received: u64,
    /// Sum over nodes of deliveries.
    pub deliveries: u64,
    /// Payload receptions / deliveries − 1, over the second half of the broadcasts (tree formed).
    pub rmr_steady: f64,
    /// The same over the whole run.
    pub rmr_total: f64,
    /// Largest hop count of any delivery (last delivery hop).
    pub ldh_max: u32,
    /// Mean hop count of deliveries.
    pub hops_mean: f64,
    /// Duplicates, grafts, prunes, resends, over all nodes.
    pub duplicates: u64,
    /// Duplicate receptions by cause: (graft answer beaten by the tree, tree copy after a graft,
    /// pushed on an eager link, pushed on a lazy link), over the second half of the run.
    pub duplicate_causes: [u64; 4],
    /// Resends answering `Sync`.
    pub sync_resends: u64,
    /// Grafts sent.
    pub grafts: u64,
    /// Prunes sent.
    pub prunes: u64,
    /// Repair payloads sent.
    pub resends: u64,
    /// Protocol violations reported (should be none between honest nodes).
    pub violations: u64,
    /// Eager (tree) links at the end, counted once per direction, over live nodes. A spanning tree
    /// of `n` nodes has `2 (n - 1)`.
    pub eager_links: usize,
    /// Eager links at the end, as undirected edges: (eager on both sides, eager on one side only).
    pub eager_edges: (usize, usize),
    /// Connected components of the graph of symmetric eager edges over live nodes (1: a connected
    /// tree or more; a spanning tree has `live_nodes - 1` edges and 1 component).
    pub eager_components: usize,
}

enum Ev {
    Msg { from: usize, to: usize, msg: Message },
    Timer { node: usize, timer: Timer },
    Broadcast,
    Crash { node: usize },
    Down { node: usize, peer: usize },
    Up { a: usize, b: usize },
}

struct Node {
    router: Router<ChaCha8Rng>,
    alive: bool,
    /// Per stream: last delivered seq.
    last: HashMap<StreamId, u64>,
    delivered: u64,
}

/// The simulation.
pub struct Sim {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    base: Instant,
    now: Duration,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    events: HashMap<usize, Ev>,
    next_event: usize,
    counter: u64,
    nodes: Vec<Node>,
    ids: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    edges: BTreeSet<(usize, usize)>,
    latency: HashMap<(usize, usize), Duration>,
    fifo: HashMap<(usize, usize), Duration>,
    /// (origin index, stream, seq) of every broadcast.
    sent: Vec<(usize, StreamId, u64)>,
    /// Snapshot of (payloads received, deliveries) at the half-way broadcast.
    half: Option<(u64, u64)>,
    /// Snapshot of the duplicate causes at the half-way broadcast.
    half_causes: [u64; 4],
    report: Report,
    hops_sum: u64,
    remaining_broadcasts: usize,
}

impl Sim {
    /// Builds the network (a random connected graph) and schedules broadcasts and crashes.
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let base = Instant::now();
        let mut nodes = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..cfg.nodes {
            let id = NodeId::random_from(&mut rng);
            let epoch = rng.random();
            let router_rng = ChaCha8Rng::seed_from_u64(rng.random());
            let router = Router::new(id, epoch, cfg.router.clone(), router_rng, base);
            ids.push(id);
            nodes.push(Node { router, alive: true, last: HashMap::new(), delivered: 0 });
        }
        let index = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut sim = Self {
            rng,
            base,
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            counter: 0,
            nodes,
            ids,
            index,
            edges: BTreeSet::new(),
            latency: HashMap::new(),
            fifo: HashMap::new(),
            sent: Vec::new(),
            half: None,
            half_causes: [0; 4],
            report: Report::default(),
            hops_sum: 0,
            remaining_broadcasts: cfg.messages,
            cfg,
        };
        // A random ring keeps the graph connected; random extra links give it a HyParView-like degree.
        let n = sim.cfg.nodes;
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = sim.rng.random_range(0..=i);
            order.swap(i, j);
        }
        for i in 0..n {
            sim.connect(order[i], order[(i + 1) % n]);
        }
        for a in 0..n {
            for _ in 1..sim.cfg.links_per_node {
                let b = sim.rng.random_range(0..n);
                sim.connect(a, b);
            }
        }
        for i in 0..n {
            sim.drain_actions(i);
        }
        sim.schedule(Duration::from_millis(100), Ev::Broadcast);
        let crashes = (n as f64 * sim.cfg.crash_fraction).round() as usize;
        let span = sim.cfg.interval * sim.cfg.messages as u32;
        let mut victims: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = sim.rng.random_range(0..=i);
            victims.swap(i, j);
        }
        for &node in victims.iter().take(crashes) {
            // Crash somewhere in the middle half of the broadcast period.
            let at = Duration::from_millis(100) + span / 4 + span.mul_f64(sim.rng.random::<f64>() / 2.0);
            sim.schedule(at, Ev::Crash { node });
        }
        sim
    }

    fn connect(&mut self, a: usize, b: usize) -> bool {
        if a == b || self.edges.contains(&(a.min(b), a.max(b))) {
            return false;
        }
        self.edges.insert((a.min(b), a.max(b)));
        let (lo, hi) = self.cfg.latency;
        let lat = lo + (hi - lo).mul_f64(self.rng.random::<f64>());
        self.latency.insert((a, b), lat);
        self.latency.insert((b, a), lat);
        let now = self.base + self.now;
        let (ia, ib) = (self.ids[a], self.ids[b]);
        self.nodes[a].router.handle_neighbour_up(ib, now);
        self.nodes[b].router.handle_neighbour_up(ia, now);
        true
    }

    fn schedule(&mut self, at: Duration, ev: Ev) {
        let key = self.next_event;
        self.next_event += 1;
        self.counter += 1;
        self.events.insert(key, ev);
        self.queue.push(Reverse((at, self.counter, key)));
    }

    /// Runs to the end and checks every live node against every live-origin broadcast.
    pub fn run(mut self) -> Report {
        let end_guard =
            Duration::from_millis(100) + self.cfg.interval * self.cfg.messages as u32 + self.cfg.settle;
        while let Some(Reverse((at, _, key))) = self.queue.pop() {
            if at > end_guard {
                break;
            }
            self.now = at;
            let ev = self.events.remove(&key).expect("event");
            self.step(ev);
        }
        self.finish()
    }

    fn step(&mut self, ev: Ev) {
        let now = self.base + self.now;
        match ev {
            Ev::Msg { from, to, msg } => {
                if !self.nodes[to].alive {
                    return;
                }
                if !self.edges.contains(&(from.min(to), from.max(to))) {
                    return; // the connection closed meanwhile
                }
                let from_id = self.ids[from];
                self.nodes[to].router.handle_message(from_id, msg, now);
                self.drain_actions(to);
            }
            Ev::Timer { node, timer } => {
                if self.nodes[node].alive {
                    self.nodes[node].router.handle_timer(timer, now);
                    self.drain_actions(node);
                }
            }
            Ev::Broadcast => {
                let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.nodes[*i].alive).collect();
                let pool = self.cfg.origins.unwrap_or(live.len()).min(live.len());
                let origin = live[self.rng.random_range(0..pool)];
                if self.sent.len() == self.cfg.messages / 2 {
                    self.half = Some(self.totals());
                    self.half_causes = self.causes();
                }
                let payload = Bytes::from(vec![self.sent.len() as u8; self.cfg.payload_len]);
                let id = self.nodes[origin].router.broadcast(payload, now);
                self.sent.push((origin, id.stream, id.seq));
                self.drain_actions(origin);
                self.remaining_broadcasts -= 1;
                if self.remaining_broadcasts > 0 {
                    self.schedule(self.now + self.cfg.interval, Ev::Broadcast);
                }
            }
            Ev::Crash { node } => {
                self.nodes[node].alive = false;
                let neighbours: Vec<usize> = self
                    .edges
                    .iter()
                    .filter_map(|&(a, b)| {
                        if a == node {
                            Some(b)
                        } else if b == node {
                            Some(a)
                        } else {
                            None
                        }
                    })
                    .collect();
                for peer in neighbours {
                    self.edges.remove(&(node.min(peer), node.max(peer)));
                    let at = self.now + self.cfg.detection_delay;
                    self.schedule(at, Ev::Down { node: peer, peer: node });
                }
            }
            Ev::Down { node, peer } => {
                if !self.nodes[node].alive {
                    return;
                }
                let peer_id = self.ids[peer];
                self.nodes[node].router.handle_neighbour_down(peer_id, now);
                self.drain_actions(node);
                // Membership replaces the lost neighbour with a random live node.
                let live: Vec<usize> =
                    (0..self.nodes.len()).filter(|i| self.nodes[*i].alive && *i != node).collect();
                for _ in 0..8 {
                    let b = live[self.rng.random_range(0..live.len())];
                    if !self.edges.contains(&(node.min(b), node.max(b))) {
                        let at = self.now + Duration::from_millis(50);
                        self.schedule(at, Ev::Up { a: node, b });
                        break;
                    }
                }
            }
            Ev::Up { a, b } => {
                if self.nodes[a].alive && self.nodes[b].alive && self.connect(a, b) {
                    self.drain_actions(a);
                    self.drain_actions(b);
                }
            }
        }
    }

    fn drain_actions(&mut self, i: usize) {
        while let Some(action) = self.nodes[i].router.poll_action() {
            match action {
                Action::Send { to, message } => {
                    let to = self.index[&to];
                    if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
                        continue;
                    }
                    let lat = self.latency.get(&(i, to)).copied().unwrap_or(Duration::from_millis(10));
                    // FIFO per direction, like a TCP connection.
                    let fifo = self.fifo.entry((i, to)).or_default();
                    let at = (self.now + lat).max(*fifo);
                    *fifo = at;
                    self.schedule(at, Ev::Msg { from: i, to, msg: message });
                }
                Action::SetTimer { at, timer } => {
                    let at = at.saturating_duration_since(self.base).max(self.now);
                    self.schedule(at, Ev::Timer { node: i, timer });
                }
                Action::Deliver(d) => {
                    let node = &mut self.nodes[i];
                    let last = node.last.entry(d.id.stream).or_insert(0);
                    if d.id.seq != *last + 1 && *last != 0 {
                        self.report.order_violations += 1;
                    }
                    if d.id.seq <= *last {
                        self.report.order_violations += 1;
                    }
                    *last = d.id.seq;
                    node.delivered += 1;
                    self.hops_sum += u64::from(d.hops);
                    self.report.ldh_max = self.report.ldh_max.max(d.hops);
                }
                Action::Event(Event::Gap { stream, first, last }) => {
                    self.report.gaps += 1;
                    let node = &mut self.nodes[i];
                    let entry = node.last.entry(stream).or_insert(0);
                    if *entry + 1 != first {
                        self.report.order_violations += 1;
                    }
                    *entry = last;
                    let origin = self.index[&stream.origin];
                    if self.nodes[origin].alive {
                        self.report.live_gaps += 1;
                    }
                }
                Action::Event(_) => {}
                Action::Violation { .. } => self.report.violations += 1,
            }
        }
    }

    fn totals(&self) -> (u64, u64) {
        let mut received = 0;
        let mut delivered = 0;
        for n in &self.nodes {
            received += n.router.counters().payloads_received;
            delivered += n.router.counters().delivered;
        }
        (received, delivered)
    }

    /// (symmetric eager edges, one-sided eager edges) and the components of the symmetric ones.
    fn eager_graph(&self) -> ((usize, usize), usize) {
        let n = self.nodes.len();
        let eager: Vec<BTreeSet<usize>> = (0..n)
            .map(|i| {
                let topo = self.nodes[i].router.topology();
                topo.eager.iter().map(|id| self.index[id]).filter(|&j| self.nodes[j].alive).collect()
            })
            .collect();
        let (mut both, mut one) = (0, 0);
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for i in (0..n).filter(|&i| self.nodes[i].alive) {
            for &j in &eager[i] {
                if eager[j].contains(&i) {
                    if i < j {
                        both += 1;
                        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                        parent[a] = b;
                    }
                } else {
                    one += 1;
                }
            }
        }
        let components =
            (0..n).filter(|&i| self.nodes[i].alive).filter(|&i| find(&mut parent, i) == i).count();
        ((both, one), components)
    }

    fn causes(&self) -> [u64; 4] {
        let mut out = [0; 4];
        for n in &self.nodes {
            let c = n.router.counters();
            let each =
                [c.duplicates_graft_answer, c.duplicates_after_graft, c.duplicates_eager, c.duplicates_lazy];
            for (o, v) in out.iter_mut().zip(each) {
                *o += v;
            }
        }
        out
    }

    fn finish(mut self) -> Report {
        let mut r = std::mem::take(&mut self.report);
        r.broadcasts = self.sent.len();
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.nodes[*i].alive).collect();
        r.live_nodes = live.len();
        let mut first_seq: BTreeMap<StreamId, u64> = BTreeMap::new();
        for &(_, stream, seq) in &self.sent {
            first_seq.entry(stream).or_insert(seq);
        }
        for &(origin, stream, seq) in &self.sent {
            if !self.nodes[origin].alive {
                continue;
            }
            r.live_broadcasts += 1;
            for &n in &live {
                if n == origin {
                    continue;
                }
                let got = self.nodes[n].last.get(&stream).copied().unwrap_or(0);
                if got < seq {
                    r.missing += 1;
                }
            }
        }
        let (received, delivered) = self.totals();
        r.payloads_received = received;
        r.deliveries = delivered;
        r.rmr_total = received as f64 / delivered.max(1) as f64 - 1.0;
        let (hr, hd) = self.half.unwrap_or((0, 0));
        r.rmr_steady = (received - hr) as f64 / (delivered - hd).max(1) as f64 - 1.0;
        r.hops_mean = self.hops_sum as f64 / delivered.max(1) as f64;
        for n in self.nodes.iter().filter(|n| n.alive) {
            r.eager_links += n.router.topology().eager.len();
        }
        let (edges, components) = self.eager_graph();
        r.eager_edges = edges;
        r.eager_components = components;
        let causes = self.causes();
        for (i, v) in causes.iter().enumerate() {
            r.duplicate_causes[i] = v - self.half_causes[i];
        }
        for n in &self.nodes {
            let c = n.router.counters();
            r.sync_resends += c.sync_resends;
            r.duplicates += c.duplicates;
            r.grafts += c.grafts_sent;
            r.prunes += c.prunes_sent;
            r.resends += c.resends;
        }
        r
    }
}

/// The seed to use: `SEED=` from the environment, or `default`.
pub fn seed_or(default: u64) -> u64 {
    std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}
