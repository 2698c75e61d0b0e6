//! Reading the demo's `--json` output and judging delivery: exactly once, in per-origin order, to every
//! node that had joined when a message was sent. Also whether the running nodes form one overlay, as
//! their logs tell it ([`Overlay`]).
//!
//! Shared by `cargo xtask demo` and by the `dotray` crate's multi-process test (which includes this
//! file by path), so both judge a run the same way. A *run* is one process's lifetime: a restarted node
//! is a new run with a new node id. Lines are timestamped by the reader as they arrive.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// One process's output.
#[derive(Debug, Clone)]
pub struct Run {
    /// The node's label (for example its port).
    pub node: String,
    /// Node id from the `listening` line.
    pub id: String,
    /// When the process started (the reader's clock).
    pub started: Instant,
    /// When it ended, if it did.
    pub ended: Option<Instant>,
    /// Every JSON line with the time it was read.
    pub lines: Vec<(Instant, serde_json::Value)>,
}

impl Run {
    /// A run that has just started.
    pub fn new(node: String, started: Instant) -> Self {
        Self { node, id: String::new(), started, ended: None, lines: Vec::new() }
    }

    /// Records one line of output; lines that are not JSON are ignored.
    pub fn record(&mut self, at: Instant, line: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { return };
        if value["event"] == "listening" {
            self.id = value["id"].as_str().unwrap_or_default().to_owned();
        }
        self.lines.push((at, value));
    }

    /// The lines of one kind of event (`"up"`, `"topology"`, ...), in order.
    pub fn events<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a (Instant, serde_json::Value)> + 'a {
        self.lines.iter().filter(move |(_, v)| v["event"] == kind)
    }

    /// The address from the `listening` line, once it came.
    pub fn addr(&self) -> Option<&str> {
        self.events("listening").next().and_then(|(_, v)| v["addr"].as_str())
    }

    /// The neighbours up at the last line: the peers of its `up` lines, less those of later `down` lines.
    pub fn neighbours(&self) -> HashSet<String> {
        let mut up = HashSet::new();
        for (_, v) in &self.lines {
            let peer = || v["peer"].as_str().unwrap_or_default().to_owned();
            match v["event"].as_str() {
                Some("up") => {
                    up.insert(peer());
                }
                Some("down") => {
                    up.remove(&peer());
                }
                _ => {}
            }
        }
        up
    }
}

/// A message, by origin id and sequence number.
pub type MessageKey = (String, u64);

/// Per-node figures of the verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFigures {
    /// Messages this node broadcast (all its runs).
    pub sent: u64,
    /// Deliveries (all runs).
    pub received: u64,
    /// Deliveries of a message the same run had already delivered.
    pub duplicates: u64,
    /// Messages this node should have delivered and did not.
    pub missed: u64,
    /// Deliveries out of per-origin order.
    pub out_of_order: u64,
    /// Gap events reported.
    pub gaps: u64,
    /// With data directories ([`judge_durable`]): deliveries, by a restarted run, of a message an
    /// earlier run delivered but had not acknowledged when it was killed. Allowed: delivery is at
    /// least once after the last acknowledgement.
    pub redelivered: u64,
}

impl NodeFigures {
    /// Adds `other`'s deliveries, duplicates, misses, reorderings, gaps and redeliveries (not its
    /// sends, which the verdict counts once per node).
    fn add(&mut self, other: &NodeFigures) {
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.missed += other.missed;
        self.out_of_order += other.out_of_order;
        self.gaps += other.gaps;
        self.redelivered += other.redelivered;
    }
}

/// The verdict over all runs.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Figures per node label, in label order.
    pub nodes: BTreeMap<String, NodeFigures>,
    /// Messages sent in all.
    pub sent: u64,
    /// The longest time from a send to its delivery, over the deliveries a node was required to make
    /// (catch-up deliveries to a node that started after the send are not counted).
    pub worst_delay: Duration,
    /// Which delivery took `worst_delay`: "n05 delivered n03's seq 37", empty when none was required.
    pub worst_delayed: String,
    /// Up to 20 examples of what went wrong, for the report.
    pub problems: Vec<String>,
}

impl Verdict {
    /// True when nothing was lost, duplicated or reordered.
    pub fn clean(&self) -> bool {
        self.nodes.values().all(|n| n.duplicates == 0 && n.missed == 0 && n.out_of_order == 0)
    }

    /// Totals over all nodes.
    pub fn totals(&self) -> NodeFigures {
        let mut t = NodeFigures::default();
        for n in self.nodes.values() {
            t.sent += n.sent;
            t.add(n);
        }
        t
    }

    /// A markdown table, one row per node and a total.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| node | sent | received | duplicates | missed | out of order | gaps |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        let row = |name: &str, n: &NodeFigures| {
            format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                n.sent, n.received, n.duplicates, n.missed, n.out_of_order, n.gaps
            )
        };
        for (name, n) in &self.nodes {
            out.push_str(&row(name, n));
        }
        out.push_str(&row("all", &self.totals()));
        out
    }
}

/// Every message sent (when, and by which run), each run's join time (its first neighbour), and a
/// verdict with the senders' counts filled in.
#[allow(clippy::type_complexity)]
fn sends(runs: &[Run]) -> (Verdict, HashMap<MessageKey, (Instant, usize)>, Vec<Option<Instant>>) {
    let mut verdict = Verdict::default();
    let mut sent: HashMap<MessageKey, (Instant, usize)> = HashMap::new();
    let joined = runs.iter().map(|run| run.events("up").next().map(|(at, _)| *at)).collect();
    for (i, run) in runs.iter().enumerate() {
        let figures = verdict.nodes.entry(run.node.clone()).or_default();
        for (at, v) in run.events("send") {
            sent.insert(message_key(v), (*at, i));
            figures.sent += 1;
        }
    }
    verdict.sent = sent.len() as u64;
    (verdict, sent, joined)
}

/// The message a `send`, `receive` or `acked` line names.
fn message_key(v: &serde_json::Value) -> MessageKey {
    (v["origin_id"].as_str().unwrap_or_default().to_owned(), v["seq"].as_u64().unwrap_or(0))
}

/// Judges the runs. A run must deliver a message when it had joined (its first neighbour came up)
/// `settle` before the send and stayed up `grace` after it, and the message's origin run also stayed
/// up `grace` after sending it (a node killed right after a send may take the message with it). A run
/// that has not joined yet (all its seeds down, say) is not in the network and cannot be required to
/// hear it; likewise what a run sends before it has joined leaves it only when it joins, so for the
/// `grace` periods such a message counts as sent then (and not at all from a run that never joined).
pub fn judge(runs: &[Run], settle: Duration, grace: Duration) -> Verdict {
    let (mut verdict, sent, joined) = sends(runs);
    for run in runs {
        let mut seen: HashSet<MessageKey> = HashSet::new();
        let mut delivered_at: HashMap<MessageKey, Instant> = HashMap::new();
        let mut last_seq: HashMap<String, u64> = HashMap::new();
        let mut figures = NodeFigures::default();
        for (at, v) in run.events("receive") {
            let key = message_key(v);
            figures.received += 1;
            if !seen.insert(key.clone()) {
                figures.duplicates += 1;
                verdict.problem(format!("{} ({}) delivered {:?} twice", run.node, short(&run.id), key));
                continue;
            }
            let last = last_seq.entry(key.0.clone()).or_insert(0);
            if key.1 < *last {
                figures.out_of_order += 1;
                verdict.problem(format!("{} delivered {:?} after seq {}", run.node, key, last));
            } else {
                *last = key.1;
            }
            delivered_at.insert(key, *at);
        }
        figures.gaps = run.events("gap").count() as u64;
        let this_joined = run.events("up").next().map(|(at, _)| *at);
        // What this run had to deliver.
        for (key, (sent_at, origin_run)) in &sent {
            if key.0 == run.id {
                continue; // a node does not deliver its own messages
            }
            let Some(origin_joined) = joined[*origin_run] else { continue };
            let left_origin = (*sent_at).max(origin_joined);
            let was_up = this_joined.is_some_and(|joined| joined + settle <= *sent_at);
            let stayed_up = run.ended.is_none_or(|end| end >= left_origin + grace);
            let origin_stayed = runs[*origin_run].ended.is_none_or(|end| end >= left_origin + grace);
            if !(was_up && stayed_up && origin_stayed) {
                continue; // not required of this run (it may still deliver it, from catch-up)
            }
            match delivered_at.get(key) {
                Some(at) => {
                    verdict.note_delay(at.saturating_duration_since(*sent_at), run, &runs[*origin_run], key)
                }
                None => {
                    figures.missed += 1;
                    verdict.problem(format!("{} ({}) missed {:?}", run.node, short(&run.id), key));
                }
            }
        }
        verdict.nodes.entry(run.node.clone()).or_default().add(&figures);
    }
    verdict
}

/// Judges the runs of nodes that keep a data directory (the demo's `--data`, which acknowledges each
/// message it prints and says so with an `acked` line): a node is all its runs. Across them:
///
/// * a message acknowledged by one run is never delivered again by a later run (counted as a
///   duplicate, like two deliveries within one run); a message an earlier run delivered without
///   acknowledging it (killed between the two) may be delivered again (`redelivered`);
/// * per origin, each run delivers in order, and a later run starts after what was acknowledged;
/// * a message is required of a node when the node had joined `settle` before it was sent and, the
///   origin run staying up `grace` after sending it, either a run of the node was up from `settle`
///   before the send to `grace` after it, or the node came back within `window` after the send (its
///   neighbours still retain the message);
/// * a node that came back owes them if it stayed up `gap_timeout` and `grace` after joining again:
///   when it was away longer than its neighbours retain messages, the stream resumes behind a hole
///   that the gap timer reports first;
/// * a restarted origin's messages sent within `gap_timeout` of its restart get `gap_timeout` more
///   grace: a killed run may have stored a batch's numbers and died before sending it, and then
///   every node holds the next messages behind that hole until its gap timer reports it.
pub fn judge_durable(
    runs: &[Run],
    settle: Duration,
    grace: Duration,
    window: Duration,
    gap_timeout: Duration,
) -> Verdict {
    let (mut verdict, sent, joined) = sends(runs);
    let mut labels: Vec<&str> = runs.iter().map(|r| r.node.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    for label in labels {
        let node_runs: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].node == label).collect();
        let node_id = node_runs.iter().map(|&i| runs[i].id.as_str()).find(|id| !id.is_empty()).unwrap_or("");
        let first_join = node_runs.iter().filter_map(|&i| joined[i]).min();
        let mut figures = NodeFigures::default();
        // Per message: the run that delivered it first, and when; per origin: acknowledged through.
        let mut delivered: HashMap<MessageKey, (usize, Instant)> = HashMap::new();
        let mut acked: HashMap<String, u64> = HashMap::new();
        for &i in &node_runs {
            let run = &runs[i];
            let mut last_seq: HashMap<String, u64> = HashMap::new();
            let acked_at_start = acked.clone();
            for (at, v) in &run.lines {
                match v["event"].as_str() {
                    Some("receive") => {
                        let key = message_key(v);
                        figures.received += 1;
                        let through = acked_at_start.get(&key.0).copied().unwrap_or(0);
                        if key.1 <= through {
                            figures.duplicates += 1;
                            verdict.problem(format!(
                                "{label} ({}) delivered {key:?}, acknowledged before, again",
                                short(&run.id)
                            ));
                            continue;
                        }
                        match delivered.get(&key) {
                            Some((by, _)) if *by == i => {
                                figures.duplicates += 1;
                                verdict
                                    .problem(format!("{label} ({}) delivered {key:?} twice", short(&run.id)));
                                continue;
                            }
                            Some(_) => figures.redelivered += 1,
                            None => {
                                delivered.insert(key.clone(), (i, *at));
                            }
                        }
                        let last = last_seq.entry(key.0.clone()).or_insert(0);
                        if key.1 < *last {
                            figures.out_of_order += 1;
                            verdict.problem(format!("{label} delivered {key:?} after seq {last}"));
                        } else {
                            *last = key.1;
                        }
                    }
                    Some("acked") => {
                        let through = v["through"].as_u64().unwrap_or(0);
                        let origin = v["origin_id"].as_str().unwrap_or_default().to_owned();
                        let mark = acked.entry(origin).or_insert(0);
                        *mark = (*mark).max(through);
                    }
                    Some("gap") => figures.gaps += 1,
                    _ => {}
                }
            }
        }
        for (key, (sent_at, origin_run)) in &sent {
            if key.0 == node_id {
                continue;
            }
            let Some(origin_joined) = joined[*origin_run] else { continue };
            let left_origin = (*sent_at).max(origin_joined);
            let origin = &runs[*origin_run];
            let restarted = runs.iter().any(|r| r.node == origin.node && r.started < origin.started);
            let grace = if restarted && *sent_at < origin.started + gap_timeout {
                grace + gap_timeout
            } else {
                grace
            };
            let origin_stayed = origin.ended.is_none_or(|end| end >= left_origin + grace);
            let had_joined = first_join.is_some_and(|j| j + settle <= *sent_at);
            if !origin_stayed || !had_joined {
                continue;
            }
            // The run up from before the send to `grace` after it, if any; or a run back soon after.
            let mut up_through = None;
            let mut returned = false;
            for &i in &node_runs {
                let Some(j) = joined[i] else { continue };
                let stayed = |from: Instant| runs[i].ended.is_none_or(|end| end >= from + grace);
                if j + settle <= *sent_at && stayed(left_origin) {
                    up_through = Some(i);
                }
                // Back after longer than its neighbours retain, a run first waits for its gap timer to
                // report what none of them holds any more, then delivers what they do.
                returned |= j > *sent_at && j <= *sent_at + window && stayed(j + gap_timeout);
            }
            if up_through.is_none() && !returned {
                continue;
            }
            match delivered.get(key) {
                // The delay counts for the run that was up when it was sent (not for catch-up).
                Some((by, at)) if up_through == Some(*by) => {
                    verdict.note_delay(at.saturating_duration_since(*sent_at), &runs[*by], origin, key)
                }
                Some(_) => {}
                None => {
                    figures.missed += 1;
                    verdict.problem(format!("{label} missed {key:?}"));
                }
            }
        }
        verdict.nodes.entry(label.to_owned()).or_default().add(&figures);
    }
    verdict
}

impl Verdict {
    /// Keeps `delay` if it is the worst so far, with which delivery it was.
    fn note_delay(&mut self, delay: Duration, run: &Run, origin: &Run, key: &MessageKey) {
        if delay > self.worst_delay || self.worst_delayed.is_empty() {
            self.worst_delay = self.worst_delay.max(delay);
            self.worst_delayed = format!("{} delivered {}'s seq {}", run.node, origin.node, key.1);
        }
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < 20 {
            self.problems.push(what);
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The overlay as the logs of the running nodes tell it: each node's `up`/`down` lines give its active
/// neighbours; a link counts when both of its ends report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlay {
    /// Running nodes.
    pub nodes: usize,
    /// Running nodes that printed their `listening` line.
    pub listening: usize,
    /// Connected components of the running nodes over links that both ends report up.
    pub components: usize,
}

impl Overlay {
    /// Reads the overlay from the `listening`, `up` and `down` lines of the runs that have not ended.
    pub fn read(runs: &[Run]) -> Overlay {
        let live: Vec<&Run> = runs.iter().filter(|r| r.ended.is_none()).collect();
        let addrs: Vec<Option<&str>> = live.iter().map(|run| run.addr()).collect();
        let neighbours: Vec<HashSet<String>> = live.iter().map(|run| run.neighbours()).collect();
        let index: HashMap<&str, usize> =
            addrs.iter().enumerate().filter_map(|(i, a)| a.map(|a| (a, i))).collect();
        let mut parent: Vec<usize> = (0..live.len()).collect();
        for (i, up) in neighbours.iter().enumerate() {
            let Some(me) = addrs[i] else { continue };
            for &j in up.iter().filter_map(|peer| index.get(peer.as_str())) {
                if neighbours[j].contains(me) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
            }
        }
        let components = (0..live.len()).filter(|&i| root(&mut parent, i) == i).count();
        Overlay { nodes: live.len(), listening: index.len(), components }
    }

    /// True when `expected` nodes run, all listening, in one component.
    pub fn is_one(&self, expected: usize) -> bool {
        self.nodes == expected && self.listening == expected && self.components == 1
    }
}

/// The representative of `i`'s component in a union-find forest (halving the path on the way).
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(node: &str, lines: &[&str]) -> Run {
        let mut run = Run::new(node.to_owned(), Instant::now());
        for line in lines {
            run.record(Instant::now(), line);
        }
        run
    }

    /// A run of node `id` (its id too), listening from `at`.
    fn started(id: &str, at: Instant) -> Run {
        let mut run = Run::new(id.into(), at);
        run.record(at, &format!(r#"{{"event":"listening","addr":"10.0.0.1:1","id":"{id}"}}"#));
        run
    }

    /// `run`'s first (or next) neighbour came up at `at`.
    fn up(run: &mut Run, at: Instant) {
        run.record(at, r#"{"event":"up","peer":"10.0.0.9:1"}"#);
    }

    /// A test clock: `at(ms)` is `ms` milliseconds after it was made.
    fn clock() -> impl Fn(u64) -> Instant {
        let start = Instant::now();
        move |ms| start + Duration::from_millis(ms)
    }

    /// `run` broadcast its message `seq` at `at`.
    fn send(run: &mut Run, at: Instant, seq: u64) {
        let line = format!(r#"{{"event":"send","data":"x","origin_id":"{}","seq":{seq}}}"#, run.id);
        run.record(at, &line);
    }

    #[test]
    fn a_run_must_deliver_what_was_sent_after_it_joined_and_only_that() {
        let at = clock();
        let mut origin = started("o", at(0));
        up(&mut origin, at(100));
        send(&mut origin, at(5_000), 1);
        send(&mut origin, at(9_000), 2);
        // Started at once, but joined only at 5.5 s (its seeds were down): seq 1 is not required of
        // it, seq 2 (sent 3.5 s after it joined) is.
        let mut late = started("l", at(0));
        up(&mut late, at(5_500));
        let settle = Duration::from_secs(3);
        let verdict = judge(&[origin.clone(), late.clone()], settle, Duration::ZERO);
        assert_eq!(verdict.nodes["l"].missed, 1, "{:?}", verdict.problems);
        assert!(verdict.problems[0].contains("\"o\", 2"), "{:?}", verdict.problems);
        late.record(
            at(9_100),
            r#"{"event":"receive","data":"x","origin":"","origin_id":"o","seq":2,"hops":1}"#,
        );
        let verdict = judge(&[origin, late], settle, Duration::ZERO);
        assert!(verdict.clean());
        assert_eq!(verdict.worst_delay, Duration::from_millis(100));
        assert_eq!(verdict.worst_delayed, "l delivered o's seq 2");
    }

    #[test]
    fn a_message_sent_before_its_origin_joined_is_required_only_of_runs_up_after_it_joined() {
        let at = clock();
        let mut early = started("e", at(0));
        up(&mut early, at(100));
        // A restarted origin sends at 5 s but joins (its seeds down) only at 9 s.
        let mut origin = started("o", at(4_000));
        send(&mut origin, at(5_000), 1);
        up(&mut origin, at(9_000));
        let (settle, grace) = (Duration::from_secs(3), Duration::from_secs(1));
        // Killed at 9.5 s: before the message could reach it. Not required.
        early.ended = Some(at(9_500));
        let verdict = judge(&[early.clone(), origin.clone()], settle, grace);
        assert!(verdict.clean(), "{:?}", verdict.problems);
        // Up until 12 s: required.
        early.ended = Some(at(12_000));
        assert_eq!(judge(&[early.clone(), origin.clone()], settle, grace).nodes["e"].missed, 1);
        // An origin that never joins sends nothing into the network.
        let mut alone = started("o", at(4_000));
        send(&mut alone, at(5_000), 1);
        assert!(judge(&[early, alone], settle, grace).clean());
    }

    fn receive(run: &mut Run, at: Instant, origin: &str, seq: u64) {
        let line = format!(
            r#"{{"event":"receive","data":"x","origin":"","origin_id":"{origin}","seq":{seq},"hops":1}}"#
        );
        run.record(at, &line);
    }

    fn acked(run: &mut Run, at: Instant, origin: &str, seq: u64) {
        run.record(at, &format!(r#"{{"event":"acked","origin_id":"{origin}","seq":{seq},"through":{seq}}}"#));
    }

    #[test]
    fn across_restarts_only_what_was_acknowledged_must_not_come_again() {
        let at = clock();
        let mut origin = started("o", at(0));
        up(&mut origin, at(100));
        for seq in 1..=3 {
            send(&mut origin, at(5_000 + seq * 100), seq);
        }
        // Node "n" delivers 1..=3, acknowledges 1 and 2, and is killed before acknowledging 3.
        let mut first = started("n", at(0));
        up(&mut first, at(200));
        for seq in 1..=3 {
            receive(&mut first, at(5_050 + seq * 100), "o", seq);
        }
        acked(&mut first, at(5_160), "o", 1);
        acked(&mut first, at(5_260), "o", 2);
        first.ended = Some(at(9_000));
        // Its next run delivers 3 again: allowed, the run before had not acknowledged it.
        let mut second = started("n", at(9_500));
        up(&mut second, at(9_600));
        receive(&mut second, at(9_700), "o", 3);
        let (settle, grace, window, gap) = (
            Duration::from_secs(3),
            Duration::from_secs(1),
            Duration::from_secs(20),
            Duration::from_secs(10),
        );
        let verdict =
            judge_durable(&[origin.clone(), first.clone(), second.clone()], settle, grace, window, gap);
        assert!(verdict.clean(), "{:?}", verdict.problems);
        assert_eq!(verdict.nodes["n"].redelivered, 1);
        // Delivering 2 again, acknowledged before, is a duplicate.
        receive(&mut second, at(9_800), "o", 2);
        let verdict = judge_durable(&[origin, first, second], settle, grace, window, gap);
        assert_eq!(verdict.nodes["n"].duplicates, 1, "{:?}", verdict.problems);
    }

    #[test]
    fn a_node_back_within_the_window_owes_what_was_sent_while_it_was_down() {
        let at = clock();
        let mut origin = started("o", at(0));
        up(&mut origin, at(100));
        send(&mut origin, at(10_000), 1);
        let mut first = started("n", at(0));
        up(&mut first, at(200));
        first.ended = Some(at(8_000));
        let (settle, grace, window, gap) = (
            Duration::from_secs(3),
            Duration::from_secs(1),
            Duration::from_secs(20),
            Duration::from_secs(10),
        );
        // Back 5 s after the send: it owes the message.
        let mut back = started("n", at(14_000));
        up(&mut back, at(15_000));
        let verdict =
            judge_durable(&[origin.clone(), first.clone(), back.clone()], settle, grace, window, gap);
        assert_eq!(verdict.nodes["n"].missed, 1, "{:?}", verdict.problems);
        // Stopped 5 s after it was back: it may still have been waiting for its gap timer.
        let mut brief = back.clone();
        brief.ended = Some(at(20_000));
        assert!(judge_durable(&[origin.clone(), first.clone(), brief], settle, grace, window, gap).clean());
        receive(&mut back, at(15_200), "o", 1);
        assert!(judge_durable(&[origin.clone(), first.clone(), back], settle, grace, window, gap).clean());
        // Back only after the window: not owed.
        let mut late = started("n", at(40_000));
        up(&mut late, at(40_100));
        assert!(judge_durable(&[origin, first, late], settle, grace, window, gap).clean());
    }

    #[test]
    fn a_restarted_origins_first_messages_get_a_gap_timeout_more_grace() {
        let at = clock();
        let mut before = started("o", at(0));
        up(&mut before, at(100));
        before.ended = Some(at(5_000));
        let mut origin = started("o", at(6_000));
        up(&mut origin, at(6_100));
        send(&mut origin, at(7_000), 1);
        let mut node = started("n", at(0));
        up(&mut node, at(200));
        let (settle, grace, window, gap) = (
            Duration::from_secs(3),
            Duration::from_secs(1),
            Duration::from_secs(20),
            Duration::from_secs(10),
        );
        // Stopped 5 s after the send, before a receiver's gap timer could have let it through.
        node.ended = Some(at(12_000));
        let runs = [before.clone(), origin.clone(), node.clone()];
        assert!(judge_durable(&runs, settle, grace, window, gap).clean());
        // Up 12 s after it: owed.
        node.ended = Some(at(19_000));
        assert_eq!(judge_durable(&[before, origin, node], settle, grace, window, gap).nodes["n"].missed, 1);
    }

    #[test]
    fn the_overlay_counts_links_that_both_ends_report() {
        let a = run_with(
            "a0",
            &[
                r#"{"event":"listening","addr":"10.0.0.1:1","id":"a"}"#,
                r#"{"event":"up","peer":"10.0.0.2:1"}"#,
            ],
        );
        let mut b = run_with("b0", &[r#"{"event":"listening","addr":"10.0.0.2:1","id":"b"}"#]);
        assert_eq!(Overlay::read(&[a.clone(), b.clone()]).components, 2, "one end only");
        b.record(Instant::now(), r#"{"event":"up","peer":"10.0.0.1:1"}"#);
        let overlay = Overlay::read(&[a.clone(), b.clone()]);
        assert!(overlay.is_one(2), "{overlay:?}");
        b.record(Instant::now(), r#"{"event":"down","peer":"10.0.0.1:1"}"#);
        assert_eq!(Overlay::read(&[a, b]).components, 2, "down again");
    }
}
