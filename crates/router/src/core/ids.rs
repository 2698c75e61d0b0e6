//! Message identity: a [`StreamId`] is one run of one origin, a [`MessageId`] one message in it, and
//! [`SeqRange`] / [`Watermark`] describe sets of messages compactly (digests, grafts, acks, sync).

use dotray_codec::NodeId;

/// One run of one origin node: `(origin, epoch)`. The epoch is new per start of the origin, so a
/// restarted node's messages never collide with those of its previous run.
///
/// An honest origin makes its epoch with [`StreamId::epoch_started_at`]: the start time in the high
/// 32 bits, a random number in the low 32. The start time tells a node that first hears of the stream
/// whether every message of it is owed to it (see `Config::stream_start_tolerance`). An origin can
/// write any time there, but it only decides how much of its *own* stream others fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The node that broadcast the stream's messages.
    pub origin: NodeId,
    /// The origin's epoch for this run.
    pub epoch: u64,
}

impl StreamId {
    /// The epoch of a stream started `unix_secs` seconds after the Unix epoch, made unique by `random`
    /// (two runs of one origin collide only if they start in the same second and draw the same
    /// 32 bits). Seconds past 2^32 (the year 2106) wrap.
    ///
    /// ```
    /// use dotray_router::core::StreamId;
    /// let epoch = StreamId::epoch_started_at(1_800_000_000, 42);
    /// let stream = StreamId { origin: dotray_codec::NodeId::from_bytes([1; 32]), epoch };
    /// assert_eq!(stream.started_unix_secs(), 1_800_000_000);
    /// ```
    pub fn epoch_started_at(unix_secs: u64, random: u32) -> u64 {
        (unix_secs & u64::from(u32::MAX)) << 32 | u64::from(random)
    }

    /// When the origin says it started this stream, in seconds since the Unix epoch (the high 32 bits
    /// of the epoch: see [`StreamId::epoch_started_at`]).
    pub fn started_unix_secs(&self) -> u64 {
        self.epoch >> 32
    }
}

/// The identity of one broadcast message: its stream and its sequence number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    /// The stream.
    pub stream: StreamId,
    /// Sequence number in the stream, from 1.
    pub seq: u64,
}

/// The largest sequence number that can exist: `i64::MAX`. No origin broadcasts 2^63 messages, so a
/// larger one in a `Data`, `Ack` or `Sync` is forged and a protocol violation, and a digest reaching
/// past it is cut there (a `Graft` is only ever answered with what is held). This keeps every
/// watermark at most `MAX_SEQ`, so watermark arithmetic (the next sequence number, the watermark plus
/// the reorder window) cannot overflow whatever a peer sends.
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// An inclusive range `first..=last` of sequence numbers of one stream. Always `1 <= first <= last`
/// (the wire layer and the core reject anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The stream.
    pub stream: StreamId,
    /// First sequence number in the range.
    pub first: u64,
    /// Last sequence number in the range (`>= first`).
    pub last: u64,
}

impl SeqRange {
    /// A range holding one message.
    pub fn single(stream: StreamId, seq: u64) -> Self {
        Self { stream, first: seq, last: seq }
    }

    /// Number of sequence numbers in the range (saturating: a hostile `1..=u64::MAX` is `u64::MAX`).
    pub fn len(&self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    /// Never true for a valid range; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    /// Whether the range is well formed: `1 <= first <= last`.
    pub fn is_valid(&self) -> bool {
        self.first >= 1 && self.first <= self.last
    }
}

/// A position in one stream: every message with sequence number `<= seq` is held (or was reported
/// lost with a gap event). `seq == 0` means "nothing yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Watermark {
    /// The stream.
    pub stream: StreamId,
    /// The contiguous high-water mark.
    pub seq: u64,
}
