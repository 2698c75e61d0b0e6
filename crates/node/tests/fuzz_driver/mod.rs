//! The `reassembly` fuzz target's logic, shared with the regression test: arbitrary payloads, in
//! arbitrary order of streams and sequence numbers, with losses reported in between, handed to
//! `dotray_node::fragment::Reassembly`.
//!
//! Checks: no panic; the charge never exceeds the budget; a delivered message never exceeds
//! `max_message_len`; a message is delivered with a sequence number no lower than one already
//! delivered for its stream; an honest message (cut by `split`) fed without interruption comes out
//! whole.
// `pub` for the fuzz target, which includes this file too.
#![allow(unreachable_pub)]

use std::collections::HashMap;

use bytes::Bytes;
use dotray_codec::NodeId;
use dotray_node::fragment::{Reassembled, Reassembly, split};
use dotray_router::core::StreamId;

const MAX_MESSAGE_LEN: usize = 600;
const MAX_BYTES: usize = 2_000;

/// Reads the input as a script of operations until it runs out.
pub fn reassembly(data: &[u8]) {
    let mut reassembly = Reassembly::new(MAX_MESSAGE_LEN, MAX_BYTES);
    let mut script = data;
    let mut next_seq: HashMap<u8, u64> = HashMap::new();
    let mut delivered_up_to: HashMap<u8, u64> = HashMap::new();
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        let origin = op & 0x03;
        let stream = StreamId { origin: NodeId::from_bytes([origin; 32]), epoch: 1 };
        let seq = next_seq.entry(origin).or_insert(1);
        match op >> 2 {
            // A raw payload of up to 63 bytes from the script.
            0..=31 => {
                let len = usize::from(op >> 2).min(script.len());
                let (payload, rest) = script.split_at(len);
                script = rest;
                let result = reassembly.accept(stream, *seq, &Bytes::copy_from_slice(payload));
                check(&result, origin, &mut delivered_up_to);
                *seq = seq.saturating_add(1);
            }
            // An honest message, cut into pieces of 16 bytes, fed whole.
            32..=47 if *seq < u64::MAX / 2 => {
                let Some((&half_len, rest)) = script.split_first() else { return };
                script = rest;
                let len = usize::from(half_len) * 2;
                let message = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
                let pieces = split(&message, 16);
                let first = *seq;
                let mut out = None;
                for piece in &pieces {
                    let result = reassembly.accept(stream, *seq, piece);
                    check(&result, origin, &mut delivered_up_to);
                    if let Reassembled::Message { .. } = result {
                        out = Some(result);
                    }
                    *seq += 1;
                }
                assert_eq!(
                    out,
                    Some(Reassembled::Message { seq: first, payload: message }),
                    "an honest message fed without interruption comes out whole"
                );
            }
            // A loss of a few payloads, reported.
            48..=55 => {
                let last = seq.saturating_add(u64::from(op & 0x1c));
                let (first, reported_last) = reassembly.gap(stream, *seq, last);
                assert!(first <= *seq && reported_last == last, "a loss starts at or before the hole");
                *seq = last.saturating_add(1);
            }
            // A silent jump (a stream forgotten upstream and met again further on).
            56..=59 => *seq = seq.saturating_add(u64::from(op & 0x0c) + 2),
            // A sequence number near the end of the range (never backwards: the router delivers in order).
            60..=63 => *seq = (*seq).max(u64::MAX - u64::from(op & 0x03)),
            // An honest message where the range has no room for its pieces: skipped.
            _ => {}
        }
        assert!(reassembly.held_bytes() <= MAX_BYTES, "{} > {MAX_BYTES}", reassembly.held_bytes());
        while reassembly.take_lost().is_some() {}
    }
}

fn check(result: &Reassembled, origin: u8, delivered_up_to: &mut HashMap<u8, u64>) {
    if let Reassembled::Message { seq, payload } = result {
        assert!(payload.len() <= MAX_MESSAGE_LEN, "a delivered message is within the limit");
        let previous = delivered_up_to.entry(origin).or_insert(0);
        assert!(*seq >= *previous, "messages of a stream come out in order");
        *previous = *seq;
    }
}
