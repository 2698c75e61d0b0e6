//! The read half of a connection after its handshake: socket reads of sealed chunks, opened into one
//! plaintext buffer, frames decoded from it and handed up in batches, and the reasons a connection ends
//! on the read side.
//!
//! ```text
//!   socket ──read (room sized by ReadRoom)──► sealed ──open──► buffer ──decode──► up to 256 frames
//!                                                               ▲                      │
//!       make_read_room: reuse the buffer in place, or a retired one          Frames event (awaits room:
//!                                                                                  back-pressure)
//! ```
//!
//! The sealed bytes are copied out as they are opened, so that buffer is always reused in place.
//! Frames are slices of the plaintext buffer (no copy), so a buffer stays in use until the layer above
//! drops every frame cut from it; [`make_read_room`] and a [`BufferRecycler`] keep a busy connection cycling
//! through a few warm buffers instead of allocating a new one per read. When a buffer is full, only
//! its partial frame moves to the next one, with room for all of it ([`PlainRoom`]): a frame is never
//! copied once whole. [`ReadRoom`] sizes each read: small while the peer sends little, larger while
//! the kernel keeps more queued than one read takes.

use std::collections::VecDeque;

use bytes::BytesMut;
use dotray_codec::proto::{Body, Envelope, GoodbyeReason};
use dotray_codec::{BufferRecycler, CodecError, FRAME_HEADER_LEN, FrameCodec};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tracing::debug;

use crate::context::Context;
use crate::handshake::PeerHello;
use crate::peer_sender::{Closing, ConnShared};
use crate::sealed::{self, OpenError, Opener};
use crate::{DisconnectReason, TransportEvent};

/// The socket side of the read half: the socket, the sealed bytes read and not yet opened, and the
/// channel half that opens them.
pub(crate) struct SealedStream {
    pub(crate) socket: OwnedReadHalf,
    pub(crate) sealed: BytesMut,
    pub(crate) opener: Opener,
}

/// Most frames handed up in one event.
const MAX_FRAMES_PER_EVENT: usize = 256;
/// Frames a new batch has room for at least (it starts at the previous batch's length).
const MIN_BATCH_CAPACITY: usize = 8;

/// Read buffers whose frames may still be in use upstream, kept per connection for reuse; each is at
/// most twice the largest read room, and they are freed when the connection goes quiet (at the next
/// idle-timer check, at most `idle_timeout` later). More would find a free one more often on a busy
/// connection of large frames, but they are memory every connection that carried a burst keeps, and
/// a node holds one connection per neighbour (figures in `docs/PERFORMANCE.md`).
const RETIRED_READ_BUFFERS: usize = 2;

/// How many bytes the next read offers the kernel: between `Config::read_buffer_len` and
/// `Config::max_read_buffer_len`.
///
/// A read that fills all the room it was offered means the kernel had more queued: the room doubles,
/// so a fast stream costs fewer syscalls (and fewer wake-ups and events above) per byte. A read that
/// uses less than an eighth of the room means the stream has slowed down: the room halves. Most
/// connections (pings, digests, a trickle of messages) stay at the small size; only the ones that carry
/// a burst grow, and only while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadRoom {
    current: usize,
    min: usize,
    max: usize,
}

impl ReadRoom {
    /// Starts at `min` bytes, grows up to `max` (at least `min`).
    pub(crate) fn new(min: usize, max: usize) -> Self {
        Self { current: min, min, max: max.max(min) }
    }

    /// Room to keep for the next read.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// The largest room this connection can ask for.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Adapts to a read that returned `read` bytes out of the `offered` bytes of room it had.
    pub(crate) fn after_read(&mut self, read: usize, offered: usize) {
        if read >= offered && offered >= self.current / 2 {
            self.current = (self.current * 2).min(self.max);
        } else if read < self.current / 8 {
            self.current = (self.current / 2).max(self.min);
        }
    }
}

/// Reads frames and forwards them until the connection ends. Records why in `shared`.
///
/// Frames already decoded from one read go up together as one [`TransportEvent::Frames`], so the
/// per-frame cost of the channel and of waking the layer above is shared by the whole batch. `stream`
/// and `buffer` hold whatever the handshake read past the peer's hello.
pub(crate) async fn read_loop(
    ctx: &Context,
    stream: SealedStream,
    buffer: BytesMut,
    decoder: FrameCodec,
    shared: &ConnShared,
    peer: &PeerHello,
) {
    let idle = ctx.config.idle_timeout;
    let mut room = ReadRoom::new(ctx.config.read_buffer_len, ctx.config.max_read_buffer_len);
    // One close future and one idle timer for the whole loop, not one per read: creating them costs a
    // lock (the token's) and a timer-wheel insert and removal (the timer's), and reads are frequent.
    // The idle timer is lazy: reads only note the time; when it fires early, it is pushed back.
    let closed = shared.close.cancelled();
    tokio::pin!(closed);
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let mut last_read = tokio::time::Instant::now();
    let recycler = BufferRecycler::new(RETIRED_READ_BUFFERS, 2 * room.max());
    let mut r =
        Reading { stream, buffer, ready: VecDeque::new(), decoder, recycler, batch_len: MIN_BATCH_CAPACITY };
    let mut end = r.open_and_emit(ctx, room, shared, peer).await;
    while end.is_none() {
        let sealed = &mut r.stream.sealed;
        sealed.reserve(room.current().max(sealed::chunk_rest(sealed)));
        let offered = sealed.capacity() - sealed.len();
        let read = tokio::select! {
            biased;
            _ = &mut closed => return,
            read = r.stream.socket.read_buf(sealed) => Some(read),
            _ = &mut idle_timer => None,
        };
        end = match read {
            None if last_read.elapsed() >= idle => {
                Some(peer_fault(GoodbyeReason::Timeout, DisconnectReason::IdleTimeout))
            }
            None => {
                idle_timer.as_mut().reset(last_read + idle);
                // The timer fires about once per idle period: a connection whose burst is over
                // gives its spare read buffers back then, and its writer its sealing buffers.
                r.recycler.clear();
                shared.request_buffer_release();
                if r.stream.sealed.is_empty() && r.stream.sealed.capacity() > room.current() {
                    r.stream.sealed = BytesMut::new();
                }
                continue;
            }
            Some(Err(e)) => {
                Some(Closing { goodbye: None, flush: false, reason: DisconnectReason::Io(e.kind()) })
            }
            // The peer closed its side. A partial frame left in the buffer is lost with the connection.
            Some(Ok(0)) => Some(Closing { goodbye: None, flush: false, reason: DisconnectReason::Closed }),
            Some(Ok(read)) => {
                last_read = tokio::time::Instant::now();
                room.after_read(read, offered);
                r.open_and_emit(ctx, room, shared, peer).await
            }
        };
    }
    if let Some(closing) = end {
        shared.begin_close(closing);
    }
}

/// What the read loop keeps from one read to the next: the socket side, the plaintext buffer with its
/// decoder and spare buffers, and the length of the last batch handed up.
struct Reading {
    stream: SealedStream,
    buffer: BytesMut,
    /// Whole frames opened into an earlier plaintext buffer and not decoded yet, oldest first: when
    /// the buffer runs out of room, only its partial frame moves on (see [`PlainRoom`]).
    ready: VecDeque<BytesMut>,
    decoder: FrameCodec,
    recycler: BufferRecycler,
    batch_len: usize,
}

impl Reading {
    /// Opens every complete sealed chunk into the plaintext buffer, then decodes and hands up its
    /// frames.
    async fn open_and_emit(
        &mut self,
        ctx: &Context,
        room: ReadRoom,
        shared: &ConnShared,
        peer: &PeerHello,
    ) -> Option<Closing> {
        let mut plain_room = PlainRoom {
            whole: 0,
            max_frame_len: self.decoder.max_frame_len(),
            read_room: room.current(),
            ready: &mut self.ready,
            recycler: &mut self.recycler,
        };
        let opened = self
            .stream
            .opener
            .open(&mut self.stream.sealed, &mut self.buffer, |plain, n| plain_room.make(plain, n));
        // Chunks opened before a bad one are authentic: their frames go up first.
        let mut plain = Plain { ready: &mut self.ready, buffer: &mut self.buffer };
        let end =
            decode_and_emit(ctx, &mut self.decoder, &mut plain, shared, peer, &mut self.batch_len).await;
        match opened {
            Ok(_) => end,
            Err(_) if end.is_some() => end,
            Err(OpenError::Unauthentic) => {
                debug!("a sealed chunk failed authentication");
                Some(Closing { goodbye: None, flush: false, reason: DisconnectReason::Unauthentic })
            }
            Err(OpenError::Empty) => {
                shared.report_violation("an empty sealed chunk");
                Some(violation("an empty sealed chunk".to_owned()))
            }
        }
    }
}

/// The opened plaintext of a connection: whole frames set aside from earlier buffers, then the
/// current buffer (whole frames, then at most one partial frame).
struct Plain<'a> {
    ready: &'a mut VecDeque<BytesMut>,
    buffer: &'a mut BytesMut,
}

impl Plain<'_> {
    /// Decodes up to `max` frames into `frames`, in the order they were opened.
    fn decode(
        &mut self,
        decoder: &mut FrameCodec,
        max: usize,
        frames: &mut Vec<Envelope>,
    ) -> Result<usize, CodecError> {
        let mut decoded = 0;
        while let Some(front) = self.ready.front_mut() {
            decoded += decoder.decode_many(front, max - decoded, frames)?;
            if !front.is_empty() {
                // The batch is full (a set-aside buffer holds whole frames only).
                return Ok(decoded);
            }
            self.ready.pop_front();
        }
        Ok(decoded + decoder.decode_many(self.buffer, max - decoded, frames)?)
    }
}

/// Decodes every complete frame opened and hands them up, at most [`MAX_FRAMES_PER_EVENT`] per
/// event. Returns why the connection ends, if a frame ends it or the layer above is gone.
///
/// `batch_len` is the length of the previous batch: the next one is allocated that large up front.
/// (Growing each batch from empty would reallocate and copy it up to eight times.)
async fn decode_and_emit(
    ctx: &Context,
    decoder: &mut FrameCodec,
    plain: &mut Plain<'_>,
    shared: &ConnShared,
    peer: &PeerHello,
    batch_len: &mut usize,
) -> Option<Closing> {
    loop {
        let mut frames = Vec::with_capacity(*batch_len);
        let decoded = plain.decode(decoder, MAX_FRAMES_PER_EVENT, &mut frames);
        let end = classify(decoded, &mut frames);
        // Ban before anything can wait, so that the peer's next connection finds the ban in place.
        if let Some(Closing { reason: DisconnectReason::ProtocolViolation(what), .. }) = &end {
            shared.report_violation(what);
        }
        let full = frames.len() == MAX_FRAMES_PER_EVENT;
        if !frames.is_empty() {
            *batch_len = frames.len().max(MIN_BATCH_CAPACITY);
        }
        if !frames.is_empty()
            && !ctx.emit(TransportEvent::Frames { peer: peer.id, frames }, &shared.close).await
        {
            // Closed locally, or the transport is shutting down: the close is already recorded.
            return Some(shared.closing());
        }
        if end.is_some() || !full {
            return end;
        }
    }
}

/// Room in the plaintext buffer for each chunk about to be opened, kept over the chunks of one read.
///
/// A chunk is opened where the buffer has room for it and for the rest of the partial frame at the
/// buffer's end (whose length its prefix gives). When it has not, the whole frames before the partial
/// one are set aside (`ready`, decoded first) and only the partial frame moves to a buffer with room
/// for all of it ([`make_read_room`]): no frame is copied once it is whole, and a large frame is
/// copied at most once, while little of it has arrived.
struct PlainRoom<'a> {
    /// Bytes at the front of the buffer known to be whole frames.
    whole: usize,
    /// Frames longer than this are refused by the decoder: no room is made for them.
    max_frame_len: usize,
    read_room: usize,
    ready: &'a mut VecDeque<BytesMut>,
    recycler: &'a mut BufferRecycler,
}

impl PlainRoom<'_> {
    /// Makes room in `plain` for a chunk of `n` plaintext bytes.
    fn make(&mut self, plain: &mut BytesMut, n: usize) {
        while let Some(total) = FrameCodec::next_frame_len(&plain[self.whole..])
            && plain.len() - self.whole >= total
        {
            self.whole += total;
        }
        let needed = self.partial_rest(plain).max(n);
        if plain.capacity() - plain.len() >= needed {
            return;
        }
        if self.whole > 0 {
            self.ready.push_back(plain.split_to(self.whole));
            self.whole = 0;
        }
        make_read_room(plain, self.read_room, needed, self.recycler);
    }

    /// Bytes still missing of the partial frame at the end of `plain`: 0 if there is none, or if its
    /// prefix is not all there yet or declares more than the decoder takes (it refuses that frame).
    fn partial_rest(&self, plain: &[u8]) -> usize {
        let partial = &plain[self.whole..];
        FrameCodec::next_frame_len(partial)
            .filter(|total| total - FRAME_HEADER_LEN <= self.max_frame_len)
            .map_or(0, |total| total - partial.len())
    }
}

/// Makes room in `buffer` for `needed` more bytes, and when it must move, for a read of `read_room`
/// bytes too. Frames already handed up may still share the buffer.
///
/// When every frame cut from the buffer is gone, its memory is reused in place. Otherwise what the
/// buffer holds (part of a frame) moves to a retired buffer that is free again, or to a new one, and
/// the old buffer is retired: a busy connection cycles through the same few warm buffers instead of
/// allocating (and page-faulting) a new one per read, which `BytesMut::reserve` alone would do. (The
/// codec's `Decoder::decode` reserves the rest of a partial frame that way; the read loop uses
/// `decode_many`, which does not, so that every buffer goes through here.)
fn make_read_room(buffer: &mut BytesMut, read_room: usize, needed: usize, recycler: &mut BufferRecycler) {
    if buffer.capacity() - buffer.len() >= needed || buffer.try_reclaim(needed) {
        return;
    }
    let tail = buffer.split();
    let len = tail.len() + read_room.max(needed);
    let mut fresh = recycler.take(len).unwrap_or_else(|| BytesMut::with_capacity(len));
    fresh.extend_from_slice(&tail);
    recycler.retire(std::mem::replace(buffer, fresh));
}

/// Sorts what one `decode_many` call gave: the frames for the layer above stay in `frames`, and the
/// reason the connection ends comes back — a decode error, or a goodbye, a second hello or a handshake
/// message among the frames (which, and every frame after it, leave `frames`).
fn classify(decoded: Result<usize, CodecError>, frames: &mut Vec<Envelope>) -> Option<Closing> {
    let ending = frames.iter().position(|envelope| {
        matches!(envelope.body, Some(Body::Goodbye(_) | Body::Hello(_) | Body::Handshake(_)))
    });
    if let Some(at) = ending {
        return match frames.drain(at..).next().and_then(|envelope| envelope.body) {
            Some(Body::Goodbye(g)) => Some(Closing {
                goodbye: None,
                flush: false,
                reason: DisconnectReason::Goodbye {
                    reason: GoodbyeReason::try_from(g.reason).unwrap_or(GoodbyeReason::Unspecified),
                    detail: g.detail,
                },
            }),
            Some(Body::Hello(_)) => {
                debug!("peer sent a second hello");
                Some(violation("hello after the handshake".to_owned()))
            }
            _ => {
                debug!("peer sent a handshake message inside the channel");
                Some(violation("handshake message after the handshake".to_owned()))
            }
        };
    }
    match decoded {
        Ok(_) => None,
        Err(CodecError::Io(e)) => {
            Some(Closing { goodbye: None, flush: false, reason: DisconnectReason::Io(e.kind()) })
        }
        // Violations are reported as a warning with the ban (`ban` module).
        Err(e) => {
            debug!(error = %e, "peer sent an invalid frame");
            Some(violation(format!("invalid frame: {e}")))
        }
    }
}

fn peer_fault(goodbye: GoodbyeReason, reason: DisconnectReason) -> Closing {
    Closing { goodbye: Some(goodbye), flush: false, reason }
}

fn violation(what: String) -> Closing {
    peer_fault(GoodbyeReason::ProtocolViolation, DisconnectReason::ProtocolViolation(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_room_grows_while_reads_fill_it_and_shrinks_when_they_do_not() {
        let mut room = ReadRoom::new(64, 256);
        room.after_read(64, 64);
        assert_eq!(room.current(), 128, "a full read doubles the room");
        room.after_read(128, 128);
        room.after_read(256, 256);
        assert_eq!(room.current(), 256, "never above the maximum");
        room.after_read(100, 256);
        assert_eq!(room.current(), 256, "a read of more than an eighth keeps it");
        room.after_read(20, 256);
        assert_eq!(room.current(), 128, "a small read halves it");
        room.after_read(1, 128);
        room.after_read(1, 64);
        assert_eq!(room.current(), 64, "never below the minimum");
        // A read that filled a nearly full buffer's last few bytes says nothing about the stream.
        room.after_read(10, 10);
        assert_eq!(room.current(), 64);
        assert_eq!(ReadRoom::new(64, 16).max(), 64, "the maximum is at least the minimum");
    }

    fn ping(nonce: u64) -> bytes::Bytes {
        dotray_codec::encode_frame(&dotray_codec::proto::Ping { nonce, sent_at_micros: 0 }.into(), 1 << 20)
            .unwrap()
    }

    #[test]
    fn a_full_plaintext_buffer_sets_its_whole_frames_aside_and_moves_only_the_partial_one() {
        let big = dotray_codec::encode_frame(
            &dotray_codec::proto::Goodbye { reason: 0, detail: "x".repeat(500) }.into(),
            1 << 20,
        )
        .unwrap();
        let mut buffer = BytesMut::with_capacity(100);
        for nonce in 1..=3 {
            buffer.extend_from_slice(&ping(nonce));
        }
        buffer.extend_from_slice(&big[..20]);
        let whole_len = buffer.len() - 20;
        let (mut ready, mut recycler) = (VecDeque::new(), BufferRecycler::new(RETIRED_READ_BUFFERS, 4_000));
        let mut room = PlainRoom {
            whole: 0,
            max_frame_len: 1 << 20,
            read_room: 64,
            ready: &mut ready,
            recycler: &mut recycler,
        };
        let before = buffer.as_ptr();
        room.make(&mut buffer, 8);
        assert_ne!(buffer.as_ptr(), before, "no room for the rest of the partial frame: it moved");
        assert_eq!(&buffer[..], &big[..20], "and only it");
        assert!(buffer.capacity() - buffer.len() >= big.len() - 20, "to where all of it fits");
        assert_eq!(room.ready.len(), 1);
        assert_eq!(room.ready[0].len(), whole_len, "the whole frames stay where they were opened");

        // The rest fits where the partial frame now is: nothing moves.
        let at = buffer.as_ptr();
        room.make(&mut buffer, big.len() - 20);
        assert_eq!(buffer.as_ptr(), at);
        buffer.extend_from_slice(&big[20..]);

        // Decoded in the order opened: the set-aside frames first.
        let mut decoder = FrameCodec::new();
        let mut frames = Vec::new();
        let mut plain = Plain { ready: &mut ready, buffer: &mut buffer };
        assert_eq!(plain.decode(&mut decoder, 2, &mut frames).unwrap(), 2, "at most `max`");
        assert_eq!(plain.decode(&mut decoder, 10, &mut frames).unwrap(), 2);
        let nonces: Vec<_> = frames[..3]
            .iter()
            .map(|f| match &f.body {
                Some(Body::Ping(p)) => p.nonce,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(nonces, [1, 2, 3]);
        assert!(matches!(frames[3].body, Some(Body::Goodbye(_))));
        assert!(ready.is_empty() && buffer.is_empty());
    }

    #[test]
    fn no_room_is_made_for_a_frame_longer_than_the_decoder_takes() {
        let mut buffer = BytesMut::with_capacity(64);
        buffer.extend_from_slice(&ping(1));
        // A prefix declaring 4 GiB: the decoder refuses the frame, so the buffer only needs room for
        // the chunk being opened.
        buffer.extend_from_slice(&u32::MAX.to_be_bytes());
        let (mut ready, mut recycler) = (VecDeque::new(), BufferRecycler::new(RETIRED_READ_BUFFERS, 4_000));
        let mut room = PlainRoom {
            whole: 0,
            max_frame_len: 1_024,
            read_room: 64,
            ready: &mut ready,
            recycler: &mut recycler,
        };
        let (at, capacity) = (buffer.as_ptr(), buffer.capacity());
        room.make(&mut buffer, 16);
        assert_eq!((buffer.as_ptr(), buffer.capacity()), (at, capacity), "opened in place");
        let free = buffer.capacity() - buffer.len();
        room.make(&mut buffer, free + 1);
        assert!(buffer.capacity() < 1 << 20, "room for the chunk and a read, not for the declared frame");
    }

    #[test]
    fn read_room_keeps_the_partial_frame_and_reuses_buffers_whose_frames_are_gone() {
        let room = 1_000;
        let mut recycler = BufferRecycler::new(RETIRED_READ_BUFFERS, 2 * room);
        let mut buffer = BytesMut::with_capacity(2 * room);
        let first_base = buffer.as_ptr() as usize;
        buffer.extend_from_slice(&[1; 1_980]);
        // 1,960 bytes of frames went up; 20 bytes of the next frame remain, with little room after them.
        let frames = buffer.split_to(1_960).freeze();
        make_read_room(&mut buffer, room, 100, &mut recycler);
        assert_eq!(&buffer[..], &[1; 20], "the partial frame moved along");
        assert!(buffer.capacity() - buffer.len() >= room);
        assert_eq!(recycler.len(), 1, "the old buffer waits for its frames");

        // Its frames are gone: the next time room runs out while frames are still up, the old memory
        // comes back instead of a new allocation.
        drop(frames);
        let fill = buffer.capacity() - buffer.len() - 10;
        buffer.extend_from_slice(&vec![2; fill]);
        let held = buffer.split_to(buffer.len() - 5).freeze();
        make_read_room(&mut buffer, room, 100, &mut recycler);
        assert_eq!(buffer.as_ptr() as usize, first_base, "the first buffer, reused from its start");
        assert_eq!(&buffer[..], &[2; 5]);
        assert_eq!(held.len(), 20 + fill - 5, "frames still up are untouched");

        // The rest of a large partial frame gets room for all of it, beyond the read room.
        let mut big = BytesMut::with_capacity(room);
        big.extend_from_slice(&[4; 100]);
        let _held = big.split_to(90).freeze();
        make_read_room(&mut big, room, 5 * room, &mut recycler);
        assert!(big.capacity() - big.len() >= 5 * room, "room for the whole frame");
        assert_eq!(&big[..], &[4; 10]);

        // When nothing upstream holds the buffer, room is made in place.
        drop(held);
        let before = buffer.as_ptr() as usize;
        buffer.extend_from_slice(&vec![3; buffer.capacity() - buffer.len()]);
        let _consumed = buffer.split_to(buffer.len() - 1);
        drop(_consumed);
        make_read_room(&mut buffer, room, 100, &mut recycler);
        assert_eq!(buffer.as_ptr() as usize, before, "reclaimed in place");
        assert_eq!(&buffer[..], &[3]);
    }
}
