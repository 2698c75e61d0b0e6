//! [`Sim`]: many node cores over one simulated network, driven by one event queue. The rules the
//! simulated network follows are documented on [`Sim`] itself; broadcasting and what the nodes
//! deliver live in the child module `broadcast`.

mod broadcast;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use dotray_codec::NodeId;
use dotray_membership::core::{CloseReason, Config, LinkEnd, PeerInfo};
use dotray_node::core::{Action, Event, NodeCore, PeerMessage, Timer};
use dotray_router::proof::InsecureSigner;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::NodeIdx;

/// The simulated wall clock at the start of a simulation, since the Unix epoch (a date in 2027): it
/// dates the nodes' streams (see `dotray_router::core::StreamId::epoch_started_at`).
const WALL_CLOCK_AT_START: Duration = Duration::from_secs(1_800_000_000);
use crate::network::NetworkConfig;
use crate::queue::EventQueue;
use crate::record::Deliveries;

/// Called for every [`Event`] a node emits: (node, simulated time since start, event).
pub type EventHook = Box<dyn FnMut(NodeIdx, Duration, &Event)>;

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// Its id and listen address.
    pub info: PeerInfo,
    /// Its protocol: the node core that a real node's driver runs.
    pub core: NodeCore<ChaCha8Rng>,
    /// False once crashed or left.
    pub alive: bool,
    /// Crashed silently: dials to it time out instead of being refused.
    pub silent: bool,
    /// When it started.
    pub started_at: Duration,
    /// Peers it has an open connection side with, and the connection.
    conns: BTreeMap<NodeIdx, ConnId>,
    /// Most connections it ever had open at once.
    pub max_connections: usize,
}

type ConnId = u64;

/// One connection between two nodes: `ends[0]` dialed `ends[1]`.
#[derive(Debug)]
struct Conn {
    ends: [NodeIdx; 2],
    /// Whether each end considers the connection open.
    open: [bool; 2],
    /// Per direction (0: ends[0] to ends[1]), the latest scheduled arrival, to keep arrivals in order.
    pipe: [Duration; 2],
    /// The dialer has not heard yet that its handshake completed (its `Connected` is on its way).
    connecting: bool,
    /// The target closed the connection with a goodbye before the dialer heard of it (a refusal
    /// for lack of room): the dialer sees the connection come up, then the goodbye, as over TCP.
    goodbye_first: bool,
}

impl Conn {
    fn side(&self, node: NodeIdx) -> usize {
        usize::from(self.ends[1] == node)
    }
}

/// Something that happens at a simulated instant.
#[derive(Debug)]
enum SimEvent {
    Timer {
        node: NodeIdx,
        timer: Timer,
    },
    /// A dial's handshake reaches the node it is for.
    DialArrives {
        from: NodeIdx,
        to: NodeIdx,
        dialed: SocketAddr,
    },
    DialFailed {
        node: NodeIdx,
        addr: SocketAddr,
    },
    /// The dialer learns that its connection is up.
    Connected {
        conn: ConnId,
        node: NodeIdx,
        dialed: SocketAddr,
    },
    Deliver {
        conn: ConnId,
        to: NodeIdx,
        message: PeerMessage,
    },
    /// A goodbye or reset reaches `node` (Local: the node closed it itself).
    Closed {
        conn: ConnId,
        node: NodeIdx,
        peer: NodeIdx,
        reason: LinkEnd,
    },
}

/// Counters over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Messages sent, by kind.
    pub messages: BTreeMap<&'static str, u64>,
    /// Dials started.
    pub dials: u64,
    /// Dials that failed.
    pub dial_failures: u64,
    /// Connections established.
    pub connections: u64,
    /// Connections refused by a node at its connection limit (`TooManyConnections`).
    pub refused: u64,
    /// `NeighbourUp` and `NeighbourDown` events of all nodes.
    pub neighbour_changes: u64,
}

/// The simulator: many node cores over one simulated network, driven by one event queue.
///
/// The simulator plays the transport's part for every node and keeps its promises:
///
/// * at most one connection per pair of nodes: a dial that finds the pair connected fails (the
///   transport's duplicate-connection refusal); a half-open leftover (one side closed it, the other never
///   heard) is reset first, as a real TCP stack would on the new handshake;
/// * both sides learn of a connection (`handle_connected`) and of its end (`handle_disconnected`,
///   also for the side that closed it), and per connection and direction everything arrives in order:
///   the connected notification first, then messages, then the goodbye;
/// * a dial to a live node succeeds after a round trip, to a crashed process is refused after a round
///   trip, and to an unreachable address (partition, silently dead host) fails after the connect
///   timeout.
///
/// Crashes come in two kinds: a *reset* (the process died, its host answers: peers see the connection
/// break) and a *silent* one (the host vanished or hangs: peers notice only through missed pongs).
/// Partitions assign nodes to groups; messages, goodbyes and dials between groups are dropped.
///
/// ## What runs on each node
///
/// Each node is a [`NodeCore`], the same type a real node's tokio driver runs: membership and router
/// composed, neighbour changes routed between them inside the core. What travels on a simulated
/// connection is a [`PeerMessage`], as the driver would decode it from frames. Timers go through the
/// simulation's event queue, and deliveries and gaps are recorded in [`Sim::deliveries`].
/// [`Sim::check_consistency`] verifies after the fact that each core's view of its connections matches
/// the simulated transport.
pub struct Sim {
    base: Instant,
    now: Duration,
    queue: EventQueue<SimEvent>,
    rng: ChaCha8Rng,
    seed: u64,
    network: NetworkConfig,
    membership: Config,
    /// All nodes ever created, by index.
    pub nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, NodeIdx>,
    by_id: HashMap<NodeId, NodeIdx>,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    /// Partition group of each node; nodes in different groups cannot reach each other.
    group: Vec<u32>,
    hook: Option<EventHook>,
    /// The router configuration of nodes created from now on.
    router: dotray_router::core::Config,
    /// What each node delivered to its application.
    pub deliveries: Deliveries,
    /// Counters.
    pub stats: Stats,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Sim {
    /// A simulation with no nodes yet. Everything random derives from `seed`.
    pub fn new(seed: u64, network: NetworkConfig, membership: Config) -> Self {
        Self {
            base: Instant::now(),
            now: Duration::ZERO,
            queue: EventQueue::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            network,
            membership,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            by_id: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            group: Vec::new(),
            hook: None,
            router: dotray_router::core::Config::default(),
            deliveries: Deliveries::default(),
            stats: Stats::default(),
        }
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The membership configuration every node uses.
    pub fn membership_config(&self) -> &Config {
        &self.membership
    }

    /// Sets the function called with every event a node reports to its application.
    pub fn set_event_hook(&mut self, hook: EventHook) {
        self.hook = Some(hook);
    }

    /// The simulation's random generator, for scenarios (node choice, partition sides).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// The listen address of node `i`: `10.a.b.c:2000`.
    pub fn addr_of(i: NodeIdx) -> SocketAddr {
        let i = u32::try_from(i).expect("fewer than 2^24 nodes");
        let [_, a, b, c] = i.to_be_bytes();
        SocketAddr::from(([10, a, b, c], 2000))
    }

    /// Starts a new node now, joining through `seeds` (none: the first node of a network).
    pub fn add_node(&mut self, seeds: Vec<SocketAddr>) -> NodeIdx {
        let idx = self.nodes.len();
        let info = PeerInfo::new(NodeId::random_from(&mut self.rng), Self::addr_of(idx));
        let rng = ChaCha8Rng::seed_from_u64(self.rng.random());
        let now = self.instant();
        let wall_clock = UNIX_EPOCH + WALL_CLOCK_AT_START + self.now();
        let config = dotray_node::core::Config {
            membership: self.membership.clone(),
            router: self.router.clone(),
            ..Default::default()
        };
        // Signed broadcasts run as in production, with a stand-in signature (nobody attacks here,
        // and real Ed25519 would cost most of a simulation's time).
        let signer = InsecureSigner::new(info.id);
        let core =
            NodeCore::new(info, seeds.into_iter().map(Into::into), config, signer, rng, now, wall_clock)
                .expect("valid node config");
        self.nodes.push(SimNode {
            info,
            core,
            alive: true,
            silent: false,
            started_at: self.now,
            conns: BTreeMap::new(),
            max_connections: 0,
        });
        self.by_addr.insert(info.addr, idx);
        self.by_id.insert(info.id, idx);
        self.group.push(0);
        self.deliveries.add_node();
        self.drain(idx);
        idx
    }

    /// Starts a network of `count` nodes: the first with no seeds, then the others one every `every`,
    /// each joining through the first. Returns them in order; the first is their seed.
    pub fn join_through_first(&mut self, count: usize, every: Duration) -> Vec<NodeIdx> {
        let first = self.add_node(Vec::new());
        let mut nodes = vec![first];
        for _ in 1..count {
            self.run_for(every);
            nodes.push(self.add_node(vec![Self::addr_of(first)]));
        }
        nodes
    }

    /// Crashes a node. `silent`: its peers are told nothing (only missed pongs reveal it), and dials to
    /// it time out; otherwise its connections are reset and dials to it refused.
    pub fn crash(&mut self, node: NodeIdx, silent: bool) {
        if !self.nodes[node].alive {
            return;
        }
        self.nodes[node].alive = false;
        self.nodes[node].silent = silent;
        let conns: Vec<(NodeIdx, ConnId)> = self.nodes[node].conns.iter().map(|(p, c)| (*p, *c)).collect();
        self.nodes[node].conns.clear();
        for (peer, conn) in conns {
            let Some(c) = self.conns.get_mut(&conn) else { continue };
            let side = c.side(node);
            c.open[side] = false;
            if !silent {
                self.schedule_close(conn, node, peer, LinkEnd::Failed);
            }
            self.gc(conn);
        }
    }

    /// Makes node `node` leave gracefully (goodbyes to all its peers), then stops it.
    pub fn leave(&mut self, node: NodeIdx) {
        let now = self.instant();
        self.nodes[node].core.leave(now);
        self.drain(node);
        self.nodes[node].alive = false;
    }

    /// Puts each node in partition group `group_of(node)`; nodes in different groups cannot reach
    /// each other until [`Sim::heal_partition`].
    pub fn partition(&mut self, group_of: impl Fn(NodeIdx) -> u32) {
        for (i, g) in self.group.iter_mut().enumerate() {
            *g = group_of(i);
        }
    }

    /// Sets the probability that any one message is lost on a link, from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.network.loss = loss;
    }

    /// Ends every partition.
    pub fn heal_partition(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    /// Whether `a` and `b` each consider a connection between them open: `(a's side, b's side)`.
    pub fn link_state(&self, a: NodeIdx, b: NodeIdx) -> (bool, bool) {
        (self.nodes[a].conns.contains_key(&b), self.nodes[b].conns.contains_key(&a))
    }

    /// Open connections of a node, at the transport level.
    pub fn open_connections(&self, node: NodeIdx) -> usize {
        self.nodes[node].conns.len()
    }

    /// Checks that every live core agrees with the simulated transport: its active peers are exactly
    /// among its open connections, and it counts as many connections as the transport holds for it.
    /// Returns the first disagreement found.
    pub fn check_consistency(&self) -> Result<(), String> {
        for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
            for peer in node.core.membership().active_peers() {
                let open = self.by_id.get(&peer.id).is_some_and(|j| node.conns.contains_key(j));
                if !open {
                    return Err(format!("node {i} lists {:?} as active without an open connection", peer.id));
                }
            }
            let (core, transport) = (node.core.membership().connection_count(), node.conns.len());
            if core != transport {
                return Err(format!("node {i} counts {core} connections, the transport holds {transport}"));
            }
        }
        Ok(())
    }

    /// Partition group of a node.
    pub fn group_of(&self, node: NodeIdx) -> u32 {
        self.group[node]
    }

    fn reachable(&self, a: NodeIdx, b: NodeIdx) -> bool {
        self.group[a] == self.group[b]
    }

    /// The simulated clock as an `Instant` (what the cores see).
    pub fn instant_now(&self) -> Instant {
        self.instant()
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// Runs every event due up to `until` (simulated time since start), then sets the clock to it.
    pub fn run_until(&mut self, until: Duration) {
        while self.queue.peek_time().is_some_and(|at| at <= until) {
            let (at, event) = self.queue.pop().expect("peeked");
            self.now = at;
            self.stats.events += 1;
            self.process(event);
        }
        self.now = until;
    }

    /// Runs for `d` more simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn process(&mut self, event: SimEvent) {
        match event {
            SimEvent::Timer { node, timer } => {
                if self.nodes[node].alive {
                    let now = self.instant();
                    self.nodes[node].core.handle_timer(timer, now);
                    self.drain(node);
                }
            }
            SimEvent::DialArrives { from, to, dialed } => self.dial_arrives(from, to, dialed),
            SimEvent::DialFailed { node, addr } => {
                if self.nodes[node].alive {
                    self.stats.dial_failures += 1;
                    let now = self.instant();
                    self.nodes[node].core.handle_dial_failed(addr, now);
                    self.drain(node);
                }
            }
            SimEvent::Connected { conn, node, dialed } => self.connected(conn, node, dialed),
            SimEvent::Deliver { conn, to, message } => self.deliver(conn, to, message),
            SimEvent::Closed { conn, node, peer, reason } => self.closed(conn, node, peer, reason),
        }
    }

    /// Carries out the actions a node's core produced, as its driver would.
    fn drain(&mut self, node: NodeIdx) {
        while let Some(action) = self.nodes[node].core.poll_action() {
            match action {
                Action::Dial { addr, node: expected } => self.dial(node, addr, expected),
                Action::Send { to, message } => {
                    // Cloned for all but the last recipient, which takes the message itself.
                    if let Some((&last, others)) = to.split_last() {
                        for &peer in others {
                            self.send(node, peer, message.clone());
                        }
                        self.send(node, last, message);
                    }
                }
                Action::Disconnect { peer, reason } => self.disconnect(node, peer, reason),
                Action::Violation { peer, reason } => {
                    // Between honest simulated nodes this is a bug; counted and checked by scenarios.
                    self.deliveries.violations += 1;
                    if std::env::var_os("SIM_DEBUG").is_some() {
                        eprintln!("t={:?} node {node}: violation by {peer:?}: {reason}", self.now);
                    }
                }
                Action::SetTimer { at, timer } => {
                    let at = at.saturating_duration_since(self.base).max(self.now);
                    self.queue.push(at, SimEvent::Timer { node, timer });
                }
                Action::Deliver(delivery) => self.deliveries.deliver(node, &delivery),
                Action::Event(event) => {
                    match &event {
                        Event::Gap { stream, first, last } => {
                            self.deliveries.gap(node, *stream, *first, *last)
                        }
                        Event::NeighbourUp { .. } | Event::NeighbourDown { .. } => {
                            self.stats.neighbour_changes += 1
                        }
                        _ => {}
                    }
                    if let Some(hook) = self.hook.as_mut() {
                        hook(node, self.now, &event);
                    }
                }
                Action::QueryAnswered { .. } => {}
                // Simulated nodes keep nothing on disk: a restarted one starts a new stream.
                Action::Sealed { .. } => {}
                // Nor a history: `Config::history` is off.
                Action::Archive { .. } | Action::Recall { .. } => {}
            }
        }
        let open = self.nodes[node].conns.len();
        let n = &mut self.nodes[node];
        n.max_connections = n.max_connections.max(open);
    }

    /// A dial of `addr`; with `expected`, one that fails unless the node there has that id (the
    /// transport's handshake proves ids, so a node restarted with a new key is another node).
    fn dial(&mut self, from: NodeIdx, addr: SocketAddr, expected: Option<NodeId>) {
        self.stats.dials += 1;
        let to = self.by_addr.get(&addr).copied();
        let Some(to) = to.filter(|&to| expected.is_none_or(|id| id == self.nodes[to].info.id)) else {
            // Nobody listens there, or another node than the one asked for: fails after a round trip.
            let rtt = self.network.latency(&mut self.rng) * 2;
            self.queue.push(self.now + rtt, SimEvent::DialFailed { node: from, addr });
            return;
        };
        if !self.reachable(from, to) || (!self.nodes[to].alive && self.nodes[to].silent) {
            let at = self.now + self.network.connect_timeout;
            self.queue.push(at, SimEvent::DialFailed { node: from, addr });
            return;
        }
        let latency = self.network.latency(&mut self.rng);
        self.queue.push(self.now + latency, SimEvent::DialArrives { from, to, dialed: addr });
    }

    fn dial_arrives(&mut self, from: NodeIdx, to: NodeIdx, dialed: SocketAddr) {
        if !self.nodes[from].alive {
            return;
        }
        let back = self.network.latency(&mut self.rng);
        let refuse = !self.nodes[to].alive || !self.reachable(from, to);
        if refuse {
            let at = if self.nodes[to].alive || self.nodes[to].silent {
                self.now + self.network.connect_timeout
            } else {
                self.now + back
            };
            self.queue.push(at, SimEvent::DialFailed { node: from, addr: dialed });
            return;
        }
        // One connection per pair. A leftover half of an old connection at the target is reset (the
        // dialer closed its side long ago); a live one makes this dial fail as a duplicate.
        if let Some(&old) = self.nodes[to].conns.get(&from) {
            let dialer_side_open = self.nodes[from].conns.contains_key(&to);
            if dialer_side_open {
                self.queue.push(self.now + back, SimEvent::DialFailed { node: from, addr: dialed });
                return;
            }
            self.nodes[to].conns.remove(&from);
            if let Some(c) = self.conns.get_mut(&old) {
                let side = c.side(to);
                c.open[side] = false;
            }
            self.gc(old);
            let now = self.instant();
            let from_id = self.nodes[from].info.id;
            self.nodes[to].core.handle_disconnected(from_id, LinkEnd::Failed, now);
            self.drain(to);
        }
        if self.nodes[from].conns.contains_key(&to) {
            self.queue.push(self.now + back, SimEvent::DialFailed { node: from, addr: dialed });
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.stats.connections += 1;
        let arrival = self.now + back;
        self.conns.insert(
            conn,
            Conn {
                ends: [from, to],
                open: [false, true],
                pipe: [self.now, arrival],
                connecting: true,
                goodbye_first: false,
            },
        );
        self.nodes[to].conns.insert(from, conn);
        // The target's transport has the connection now; the dialer learns of it one latency later,
        // through the same ordered pipe as the target's first messages.
        self.queue.push(arrival, SimEvent::Connected { conn, node: from, dialed });
        let now = self.instant();
        let from_info = self.nodes[from].info;
        self.nodes[to].core.handle_connected(from_info, None, now);
        self.drain(to);
    }

    fn connected(&mut self, conn: ConnId, node: NodeIdx, dialed: SocketAddr) {
        let Some(peer) = self.conns.get(&conn).map(|c| c.ends[1]) else {
            // The target closed it before we heard of it: to us, the dial failed.
            if self.nodes[node].alive {
                self.queue.push(self.now, SimEvent::DialFailed { node, addr: dialed });
            }
            return;
        };
        if !self.nodes[node].alive {
            return;
        }
        let reachable = self.reachable(node, peer);
        let c = self.conns.get_mut(&conn).expect("checked");
        c.connecting = false;
        if (!c.open[1] && !c.goodbye_first) || !reachable {
            // Closed (or cut off) at the other end while the handshake was in flight.
            c.open[0] = false;
            self.gc(conn);
            self.queue.push(self.now, SimEvent::DialFailed { node, addr: dialed });
            return;
        }
        c.open[0] = true;
        self.nodes[node].conns.insert(peer, conn);
        let now = self.instant();
        let peer_info = self.nodes[peer].info;
        self.nodes[node].core.handle_connected(peer_info, Some(dialed), now);
        self.drain(node);
    }

    /// Schedules an arrival at the end of `from`'s pipe towards the other end, keeping order.
    fn schedule_in_pipe(&mut self, conn: ConnId, from: NodeIdx, event: impl FnOnce(NodeIdx) -> SimEvent) {
        let latency = self.network.latency(&mut self.rng);
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let side = c.side(from);
        let to = c.ends[1 - side];
        let at = (self.now + latency).max(c.pipe[side]);
        c.pipe[side] = at;
        self.queue.push(at, event(to));
    }

    fn send(&mut self, from: NodeIdx, to_id: NodeId, message: PeerMessage) {
        *self.stats.messages.entry(message.name()).or_default() += 1;
        let Some(&to) = self.by_id.get(&to_id) else { return };
        let Some(&conn) = self.nodes[from].conns.get(&to) else { return };
        if self.network.lost(&mut self.rng) {
            return;
        }
        self.schedule_in_pipe(conn, from, |to| SimEvent::Deliver { conn, to, message });
    }

    fn deliver(&mut self, conn: ConnId, to: NodeIdx, message: PeerMessage) {
        let Some(c) = self.conns.get(&conn) else { return };
        let from = c.ends[1 - c.side(to)];
        if !self.nodes[to].alive || !c.open[c.side(to)] || !self.reachable(from, to) {
            return;
        }
        let now = self.instant();
        let from_id = self.nodes[from].info.id;
        // Each message is a read of its own, as a driver hands in what it read at once: a group of
        // payloads arriving back to back is held across such reads and proven at once (see
        // `dotray_router::core::Router::begin_batch`), as on a busy real connection.
        let core = &mut self.nodes[to].core;
        core.begin_batch(now);
        core.handle_message(from_id, message, now);
        core.end_batch(now);
        self.drain(to);
    }

    fn disconnect(&mut self, node: NodeIdx, peer_id: NodeId, reason: CloseReason) {
        let Some(&peer) = self.by_id.get(&peer_id) else { return };
        let Some(conn) = self.nodes[node].conns.remove(&peer) else { return };
        if reason == CloseReason::TooManyConnections {
            self.stats.refused += 1;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            let side = c.side(node);
            c.open[side] = false;
            c.goodbye_first |= c.connecting;
        }
        // The peer learns after the messages already on their way; our side is told at once (before
        // anything else can happen between the two nodes: the transport's events strictly alternate).
        self.schedule_close(conn, node, peer, reason.seen_by_peer());
        self.gc(conn);
        let now = self.instant();
        self.nodes[node].core.handle_disconnected(peer_id, LinkEnd::Local, now);
    }

    fn schedule_close(&mut self, conn: ConnId, from: NodeIdx, _to: NodeIdx, reason: LinkEnd) {
        self.schedule_in_pipe(conn, from, |to| SimEvent::Closed { conn, node: to, peer: from, reason });
    }

    fn closed(&mut self, conn: ConnId, node: NodeIdx, peer: NodeIdx, reason: LinkEnd) {
        if !self.nodes[node].alive {
            return;
        }
        let now = self.instant();
        let peer_id = self.nodes[peer].info.id;
        if reason != LinkEnd::Local {
            // A goodbye or reset from the peer.
            let Some(c) = self.conns.get_mut(&conn) else { return };
            let side = c.side(node);
            if !c.open[side] {
                return; // We closed our side first; our own notification covers it.
            }
            if self.group[peer] != self.group[node] {
                return; // Lost in the cut: the node will notice through missed pongs.
            }
            c.open[side] = false;
            self.nodes[node].conns.remove(&peer);
            self.gc(conn);
        }
        self.nodes[node].core.handle_disconnected(peer_id, reason, now);
        self.drain(node);
    }

    /// Drops a connection once both sides closed it (and the dialer heard how its dial ended).
    fn gc(&mut self, conn: ConnId) {
        if self.conns.get(&conn).is_some_and(|c| !c.open[0] && !c.open[1] && !c.connecting) {
            self.conns.remove(&conn);
        }
    }
}
