//! [`Report`]: one run's figures, and its JSON line with exactly the keys `cargo xtask bench --json`
//! promises.

use serde_json::{Value, json};

use crate::Spec;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every node delivered every message.
    Completed,
    /// No delivery for [`crate::spec::STALL_AFTER`].
    Stalled,
    /// Still incomplete [`crate::spec::TIME_LIMIT`] after the first publish.
    Timeout,
}

impl End {
    /// `"completed"`, `"stalled"` or `"timeout"`.
    pub fn name(self) -> &'static str {
        match self {
            End::Completed => "completed",
            End::Stalled => "stalled",
            End::Timeout => "timeout",
        }
    }
}

/// One run's figures. Field meanings are those of the JSON keys of the same names.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The workload.
    pub spec: Spec,
    /// How the run ended.
    pub end: End,
    /// From the start of the run to the settled network, ms.
    pub setup_ms: f64,
    /// From the first publish to the last delivery at the last node, ms.
    pub deliver_ms: f64,
    /// Distinct (node, message) deliveries.
    pub delivered: u64,
    /// Repeated deliveries of a message to the same node's application.
    pub duplicates_delivered_to_app: u64,
    /// Bytes written to all TCP sockets during the measured phase.
    pub wire_bytes: u64,
    /// Payload-carrying messages received by all nodes, duplicates included.
    pub payload_msgs_received: u64,
    /// Payload-carrying messages one message takes on a link: 1, or the number of pieces a large
    /// message is cut into (`dotray_node::fragment`).
    pub payloads_per_msg: u64,
    /// Process CPU seconds (user + system) during the measured phase.
    pub cpu_s: f64,
    /// Peak RSS of the process, MB.
    pub peak_rss_mb: f64,
    /// Median publish-to-delivery latency, ms.
    pub lat_p50_ms: f64,
    /// 99th percentile publish-to-delivery latency, ms.
    pub lat_p99_ms: f64,
}

impl Report {
    /// Deliveries a complete run makes.
    pub fn expected(&self) -> u64 {
        self.spec.expected()
    }

    /// Deliveries that never happened.
    pub fn missing(&self) -> u64 {
        self.expected().saturating_sub(self.delivered)
    }

    /// Messages per second of the measured phase.
    pub fn throughput_msgs_per_s(&self) -> f64 {
        per_second(self.spec.msgs as f64, self.deliver_ms)
    }

    /// Delivered payload bytes, all nodes, per second, in MB (10^6 B).
    pub fn goodput_mb_s(&self) -> f64 {
        per_second(self.delivered as f64 * self.spec.size as f64 / 1e6, self.deliver_ms)
    }

    /// Wire bytes per byte of payload that a perfect tree must move: `wire / (M·S·(N−1))`.
    pub fn amplification(&self) -> f64 {
        self.wire_bytes as f64
            / (self.spec.msgs as f64 * self.spec.size as f64 * (self.spec.nodes - 1) as f64)
    }

    /// Relative message redundancy: `payload_msgs_received / (M·P·(N−1)) − 1`, with P the payloads
    /// per message.
    pub fn rmr(&self) -> f64 {
        self.payload_msgs_received as f64 / (self.expected() * self.payloads_per_msg.max(1)) as f64 - 1.0
    }

    /// The JSON object of this run, with exactly the documented keys.
    pub fn to_json(&self) -> Value {
        let s = &self.spec;
        json!({
            "system": s.system.name(),
            "nodes": s.nodes,
            "msgs": s.msgs,
            "size": s.size,
            "publishers": s.publishers,
            "completed": self.end == End::Completed,
            "end": self.end.name(),
            "setup_ms": round(self.setup_ms, 1),
            "deliver_ms": round(self.deliver_ms, 1),
            "expected": self.expected(),
            "delivered": self.delivered,
            "missing": self.missing(),
            "duplicates_delivered_to_app": self.duplicates_delivered_to_app,
            "throughput_msgs_per_s": round(self.throughput_msgs_per_s(), 1),
            "goodput_mb_s": round(self.goodput_mb_s(), 2),
            "wire_bytes": self.wire_bytes,
            "amplification": round(self.amplification(), 4),
            "payload_msgs_received": self.payload_msgs_received,
            "rmr": round(self.rmr(), 5),
            "cpu_s": round(self.cpu_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "lat_p50_ms": round(self.lat_p50_ms, 3),
            "lat_p99_ms": round(self.lat_p99_ms, 3),
        })
    }
}

/// The keys of [`Report::to_json`], in order.
pub const JSON_KEYS: [&str; 23] = [
    "system",
    "nodes",
    "msgs",
    "size",
    "publishers",
    "completed",
    "end",
    "setup_ms",
    "deliver_ms",
    "expected",
    "delivered",
    "missing",
    "duplicates_delivered_to_app",
    "throughput_msgs_per_s",
    "goodput_mb_s",
    "wire_bytes",
    "amplification",
    "payload_msgs_received",
    "rmr",
    "cpu_s",
    "peak_rss_mb",
    "lat_p50_ms",
    "lat_p99_ms",
];

fn per_second(amount: f64, ms: f64) -> f64 {
    if ms > 0.0 { amount / (ms / 1e3) } else { 0.0 }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::System;

    #[test]
    fn json_has_exactly_the_documented_keys_and_derived_figures() {
        let spec = Spec {
            system: System::Dotray,
            nodes: 5,
            msgs: 10,
            size: 1000,
            publishers: 1,
            interval_ms: 0,
            data_dir: None,
            history_mib: None,
        };
        let report = Report {
            spec,
            end: End::Completed,
            setup_ms: 12.0,
            deliver_ms: 500.0,
            delivered: 40,
            duplicates_delivered_to_app: 0,
            wire_bytes: 42_000,
            payload_msgs_received: 44,
            payloads_per_msg: 1,
            cpu_s: 0.5,
            peak_rss_mb: 10.0,
            lat_p50_ms: 1.0,
            lat_p99_ms: 2.0,
        };
        let json = report.to_json();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = JSON_KEYS.to_vec();
        expected.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(json["expected"], 40);
        assert_eq!(json["missing"], 0);
        assert_eq!(json["throughput_msgs_per_s"], 20.0);
        // 40 deliveries × 1000 B in 0.5 s = 0.08 MB/s.
        assert_eq!(json["goodput_mb_s"], 0.08);
        assert_eq!(json["amplification"], 1.05);
        assert_eq!(json["rmr"], 0.1);
        assert_eq!(json["end"], "completed");
    }
}
