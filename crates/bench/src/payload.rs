//! The benchmark's payload layout: a small header (phase, message index, publish time) followed by
//! filler up to the message size. Receivers read the header to count deliveries and latencies.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the header: phase (1), message index (4), publish time in ns since the run's clock (8).
pub const HEADER_LEN: usize = 13;

/// Which phase a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Settling the tree before measuring; not counted.
    Warmup,
    /// The measured workload.
    Measured,
}

/// What a receiver reads from a payload's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The phase.
    pub phase: Phase,
    /// The message index within its phase.
    pub index: u32,
    /// When it was published, in ns since the run's clock started.
    pub sent_at_ns: u64,
}

/// Builds a payload of `size` bytes (`size >= HEADER_LEN`).
pub fn make(size: usize, header: Header) -> Bytes {
    let mut buf = BytesMut::with_capacity(size);
    buf.put_u8(match header.phase {
        Phase::Warmup => 0,
        Phase::Measured => 1,
    });
    buf.put_u32(header.index);
    buf.put_u64(header.sent_at_ns);
    buf.resize(size.max(HEADER_LEN), 0xA5);
    buf.freeze()
}

/// Reads the header of a payload made by [`make`]; `None` for anything else.
pub fn read(payload: &[u8]) -> Option<Header> {
    if payload.len() < HEADER_LEN {
        return None;
    }
    let phase = match payload[0] {
        0 => Phase::Warmup,
        1 => Phase::Measured,
        _ => return None,
    };
    let index = u32::from_be_bytes(payload[1..5].try_into().ok()?);
    let sent_at_ns = u64::from_be_bytes(payload[5..13].try_into().ok()?);
    Some(Header { phase, index, sent_at_ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_size_is_exact() {
        let header = Header { phase: Phase::Measured, index: 77, sent_at_ns: 123_456_789 };
        let payload = make(256, header);
        assert_eq!(payload.len(), 256);
        assert_eq!(read(&payload), Some(header));
        assert_eq!(read(&payload[..HEADER_LEN - 1]), None);
    }
}
