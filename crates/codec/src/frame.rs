//! [`FrameCodec`]: envelopes in and out of length-prefixed frames, for `tokio_util::codec::Framed`.
//!
//! Frame layout: `u32` big-endian length `L`, then `L` bytes of protobuf `Envelope`. This is the layout
//! of tokio-util's `LengthDelimitedCodec::new()`; this codec adds the typed protobuf layer and a limit
//! check that happens before any memory is reserved for a frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tokio_util::codec::{Decoder, Encoder};

use crate::CodecError;
use crate::data_frame::{ParsedData, parse_data};
use crate::generated::{Data, Envelope};
use crate::list_bound::check_list_entries;
use crate::recycle::BufferRecycler;

/// Size of the length prefix in bytes.
pub const FRAME_HEADER_LEN: usize = 4;

/// Default maximum length of one frame (not counting its 4-byte prefix): 4 MiB.
///
/// Large enough for broadcast payloads of a few MiB (a block in a small blockchain), small enough that a
/// node with its default 64 connections cannot be made to buffer more than 256 MiB of partial frames.
/// Applications with larger messages raise it on every node, or split their data.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

/// Encoder and decoder of dotray frames.
///
/// ```
/// # async fn demo(stream: tokio::net::TcpStream) -> Result<(), dotray_codec::CodecError> {
/// use dotray_codec::{FrameCodec, proto};
/// use futures_util::{SinkExt, StreamExt};
/// use tokio_util::codec::Framed;
///
/// let mut framed = Framed::new(stream, FrameCodec::new());
/// framed.send(&proto::Envelope::from(proto::Ping { nonce: 1, sent_at_micros: 0 })).await?;
/// while let Some(envelope) = framed.next().await {
///     println!("got {:?}", envelope?.kind());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl FrameCodec {
    /// A codec with the default maximum frame length ([`DEFAULT_MAX_FRAME_LEN`]).
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A codec that refuses frames longer than `max_frame_len` bytes (not counting the prefix), both
    /// when decoding and when encoding. Clamped to `u32::MAX`, the largest length the prefix can state.
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self { max_frame_len: max_frame_len.min(u32::MAX as usize) }
    }

    /// The maximum frame length this codec accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for FrameCodec {
    type Item = Envelope;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Envelope>, CodecError> {
        let decoded = self.decode_available(src)?;
        if decoded.is_none() {
            // Reserve room for the rest of a partial frame in one go (at most the limit: the prefix was
            // checked), so that `FramedRead` does not grow the buffer read by read.
            if let Some(total) = Self::next_frame_len(src) {
                src.reserve(total - src.len());
            }
        }
        Ok(decoded)
    }
}

impl FrameCodec {
    /// Decodes the frame at the start of `src` if it is complete, like [`Decoder::decode`], but never
    /// reserves room for a partial one: for readers that size their buffers themselves
    /// (`dotray-transport` reuses its read buffers, and uses [`FrameCodec::next_frame_len`] to make room).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use dotray_codec::{FrameCodec, proto};
    ///
    /// let mut codec = FrameCodec::new();
    /// let frame = dotray_codec::encode_frame(&proto::Prune {}.into(), 1024)?;
    /// let mut buf = BytesMut::from(&frame[..frame.len() - 1]);
    /// assert!(codec.decode_available(&mut buf)?.is_none());
    /// assert_eq!(FrameCodec::next_frame_len(&buf), Some(frame.len()));
    /// buf.extend_from_slice(&frame[frame.len() - 1..]);
    /// assert!(codec.decode_available(&mut buf)?.is_some());
    /// # Ok::<(), dotray_codec::CodecError>(())
    /// ```
    pub fn decode_available(&mut self, src: &mut BytesMut) -> Result<Option<Envelope>, CodecError> {
        // Step 1: the prefix. Until 4 bytes are here there is nothing to decide.
        let Some(total) = Self::next_frame_len(src) else {
            return Ok(None);
        };
        // Step 2: refuse an oversize frame from its prefix alone, before anything waits for it.
        let len = total - FRAME_HEADER_LEN;
        if len > self.max_frame_len {
            return Err(CodecError::FrameTooLarge { len, max: self.max_frame_len });
        }
        // Step 3: wait for the whole frame.
        if src.len() < total {
            return Ok(None);
        }
        // Step 4: split the frame off the buffer without copying, and parse it. `bytes` fields of the
        // envelope become slices of `frame`, which shares the read buffer's memory.
        src.advance(FRAME_HEADER_LEN);
        let frame = src.split_to(len).freeze();
        decode_envelope(frame).map(Some)
    }

    /// Decodes every complete frame at the start of `src`, at most `max` of them, appending them to
    /// `out` in order; returns how many it appended. Never reserves room for a partial frame (see
    /// [`FrameCodec::decode_available`]).
    ///
    /// Same frames and same errors as calling [`FrameCodec::decode_available`] until it returns `None`,
    /// but cheaper for a reader that receives many frames per read: the complete frames are split off
    /// `src` together, as one `Bytes`, and every frame is parsed in place from it. Each frame's
    /// `bytes` fields still share the read buffer (no copy), but the frames themselves are never
    /// split off one by one: splitting costs an atomic reference-count update on the buffer's shared
    /// header, and dropping the split frame another, which the thread that drops the payloads later
    /// (the layer above, on the other core) also updates: a cache line crossing cores twice per frame.
    ///
    /// On an error, the frames before the bad one are in `out` and the error is returned; the stream
    /// cannot be trusted after it (close the connection). An oversize length prefix is refused before
    /// anything waits for, or reserves room for, its frame.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use dotray_codec::{FrameCodec, encode_frame, proto};
    ///
    /// let mut wire = BytesMut::new();
    /// for nonce in 0..3 {
    ///     wire.extend_from_slice(&encode_frame(&proto::Ping { nonce, sent_at_micros: 0 }.into(), 1024)?);
    /// }
    /// wire.truncate(wire.len() - 1); // the third frame is not complete yet
    /// let mut frames = Vec::new();
    /// assert_eq!(FrameCodec::new().decode_many(&mut wire, 10, &mut frames)?, 2);
    /// assert_eq!(frames.len(), 2);
    /// assert_eq!(Some(wire.len()), FrameCodec::next_frame_len(&wire).map(|n| n - 1));
    /// # Ok::<(), dotray_codec::CodecError>(())
    /// ```
    pub fn decode_many(
        &mut self,
        src: &mut BytesMut,
        max: usize,
        out: &mut Vec<Envelope>,
    ) -> Result<usize, CodecError> {
        // Step 1: find the complete frames by their prefixes alone, checking each against the limit.
        let (mut end, mut count, mut refused) = (0, 0, None);
        while count < max {
            let Some(total) = Self::next_frame_len(&src[end..]) else { break };
            let len = total - FRAME_HEADER_LEN;
            if len > self.max_frame_len {
                refused = Some(CodecError::FrameTooLarge { len, max: self.max_frame_len });
                break;
            }
            if src.len() - end < total {
                break;
            }
            end += total;
            count += 1;
        }
        // Step 2: split them off together and parse each in place. `Take` over `&mut Bytes` hands
        // prost slices of `chunk` for `bytes` fields, and leaves `chunk` at the next frame.
        if count > 0 {
            let mut chunk = src.split_to(end).freeze();
            out.reserve(count);
            for _ in 0..count {
                let len = chunk.get_u32() as usize;
                // Most frames are `Data`: read in place when in canonical shape, else by prost.
                if let Some(ParsedData { stream_ref, seq, hops, payload }) = parse_data(&chunk[..len]) {
                    let payload = chunk.slice(payload);
                    chunk.advance(len);
                    out.push(Data { stream_ref, seq, hops, payload }.into());
                    continue;
                }
                check_list_entries(&chunk[..len])?;
                let envelope = Envelope::decode((&mut chunk).take(len))?;
                if envelope.body.is_none() {
                    return Err(CodecError::MissingBody);
                }
                out.push(envelope);
            }
        }
        match refused {
            Some(error) => Err(error),
            None => Ok(count),
        }
    }

    /// Length of the frame at the start of `src`, prefix included, once its 4-byte prefix is there
    /// (the rest may still be missing); `None` before that. Not checked against the limit.
    pub fn next_frame_len(src: &[u8]) -> Option<usize> {
        let header = src.get(..FRAME_HEADER_LEN)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        Some(FRAME_HEADER_LEN + len)
    }
}

/// Parses one frame body (without its prefix) and checks that it carries a body.
fn decode_envelope(frame: Bytes) -> Result<Envelope, CodecError> {
    if let Some(ParsedData { stream_ref, seq, hops, payload }) = parse_data(&frame) {
        return Ok(Data { stream_ref, seq, hops, payload: frame.slice(payload) }.into());
    }
    check_list_entries(&frame)?;
    let envelope = Envelope::decode(frame)?;
    if envelope.body.is_none() {
        return Err(CodecError::MissingBody);
    }
    Ok(envelope)
}

impl Encoder<&Envelope> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, envelope: &Envelope, dst: &mut BytesMut) -> Result<(), CodecError> {
        let len = envelope.encoded_len();
        if len > self.max_frame_len {
            return Err(CodecError::FrameTooLarge { len, max: self.max_frame_len });
        }
        dst.reserve(FRAME_HEADER_LEN + len);
        // `len <= max_frame_len <= u32::MAX`, checked above and in the constructor.
        dst.put_u32(len as u32);
        envelope.encode_raw(dst);
        Ok(())
    }
}

impl Encoder<Envelope> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, envelope: Envelope, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&envelope, dst)
    }
}

/// Encodes one envelope as a complete frame (prefix included) in a buffer of exactly the right size.
///
/// Use it to encode a message once and hand the same `Bytes` to several connections: cloning `Bytes`
/// copies no data. Fails with [`CodecError::FrameTooLarge`] above `max_frame_len`.
///
/// ```
/// use dotray_codec::{encode_frame, proto, DEFAULT_MAX_FRAME_LEN};
/// let frame = encode_frame(&proto::Prune {}.into(), DEFAULT_MAX_FRAME_LEN)?;
/// assert_eq!(&frame[..4], &[0, 0, 0, 3]); // a 3-byte envelope: field 35 (2-byte tag), length 0
/// # Ok::<(), dotray_codec::CodecError>(())
/// ```
pub fn encode_frame(envelope: &Envelope, max_frame_len: usize) -> Result<Bytes, CodecError> {
    let mut buf = BytesMut::new();
    FrameCodec::with_max_frame_len(max_frame_len).encode(envelope, &mut buf)?;
    Ok(buf.freeze())
}

/// Encodes many frames with few allocations: frames are carved out of one large buffer.
///
/// [`encode_frame`] allocates once per frame. A sender that encodes a stream of frames (a relay, a
/// benchmark) uses a `FrameEncoder` instead: each frame is written into a shared chunk and split off as
/// its own `Bytes`. When the current chunk is used up, the encoder takes an earlier chunk whose frames
/// have all been dropped (a [`BufferRecycler`]) and allocates only if every one is still in use: a
/// steady stream of frames keeps reusing the same warm memory.
///
/// ```
/// use dotray_codec::{FrameEncoder, proto};
/// let mut encoder = FrameEncoder::new(dotray_codec::DEFAULT_MAX_FRAME_LEN);
/// let a = encoder.encode(&proto::Prune {}.into())?;
/// let b = encoder.encode(&proto::Prune {}.into())?;
/// assert_eq!(a, b);
/// # Ok::<(), dotray_codec::CodecError>(())
/// ```
#[derive(Debug)]
pub struct FrameEncoder {
    codec: FrameCodec,
    chunk: BytesMut,
    /// Used-up chunks, reused once every frame cut from them is dropped.
    recycler: BufferRecycler,
}

/// Size of the chunks a [`FrameEncoder`] carves frames from.
const ENCODER_CHUNK: usize = 64 * 1024;
/// Used-up chunks a [`FrameEncoder`] keeps for reuse.
const ENCODER_RETIRED_CHUNKS: usize = 2;
/// Largest chunk kept for reuse (a frame above this size is allocated on its own every time).
const ENCODER_MAX_RECYCLED: usize = 256 * 1024;

impl FrameEncoder {
    /// An encoder that refuses envelopes longer than `max_frame_len` when encoded.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            codec: FrameCodec::with_max_frame_len(max_frame_len),
            chunk: BytesMut::new(),
            recycler: BufferRecycler::new(ENCODER_RETIRED_CHUNKS, ENCODER_MAX_RECYCLED),
        }
    }

    /// The longest envelope this encoder accepts, in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.codec.max_frame_len
    }

    /// Encodes one complete frame (prefix included).
    pub fn encode(&mut self, envelope: &Envelope) -> Result<Bytes, CodecError> {
        let len = envelope.encoded_len();
        if len > self.codec.max_frame_len {
            return Err(CodecError::FrameTooLarge { len, max: self.codec.max_frame_len });
        }
        let chunk = self.room_for(FRAME_HEADER_LEN + len);
        // Length checked above: the codec's `encode` would compute it a second time.
        chunk.put_u32(len as u32);
        envelope.encode_raw(chunk);
        Ok(chunk.split().freeze())
    }

    /// The current chunk, with room for a frame of `needed` bytes (prefix included) at its end.
    pub(crate) fn room_for(&mut self, needed: usize) -> &mut BytesMut {
        if self.chunk.capacity() - self.chunk.len() < needed {
            // A retired chunk whose frames are all gone, or a new one; frames bigger than a chunk get a
            // buffer of their own.
            let fresh = match self.recycler.take(needed) {
                Some(reused) => reused,
                None => BytesMut::with_capacity(needed.max(ENCODER_CHUNK)),
            };
            let used_up = std::mem::replace(&mut self.chunk, fresh);
            self.recycler.retire(used_up);
        }
        &mut self.chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::{Data, Ping};

    fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> Vec<Envelope> {
        let mut out = Vec::new();
        while let Some(env) = codec.decode(buf).expect("valid stream") {
            out.push(env);
        }
        out
    }

    #[test]
    fn round_trip_one_frame() {
        let mut codec = FrameCodec::new();
        let env = Envelope::from(Ping { nonce: 42, sent_at_micros: 9 });
        let mut buf = BytesMut::new();
        codec.encode(&env, &mut buf).unwrap();
        assert_eq!(decode_all(&mut codec, &mut buf), vec![env]);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_prefix_is_refused_before_reserving() {
        let mut codec = FrameCodec::with_max_frame_len(1024);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let capacity_before = buf.capacity();
        match codec.decode(&mut buf) {
            Err(CodecError::FrameTooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, 1024);
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        assert_eq!(buf.capacity(), capacity_before, "nothing reserved for a refused frame");
    }

    #[test]
    fn encoder_refuses_oversize_envelopes() {
        let mut codec = FrameCodec::with_max_frame_len(100);
        let big = Envelope::from(Data { payload: Bytes::from(vec![0u8; 200]), ..Default::default() });
        let mut buf = BytesMut::new();
        assert!(matches!(codec.encode(&big, &mut buf), Err(CodecError::FrameTooLarge { max: 100, .. })));
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_envelope_is_missing_body() {
        // A zero-length frame is a valid, empty protobuf message: an envelope without a body.
        let mut buf = BytesMut::from(&[0, 0, 0, 0][..]);
        assert!(matches!(FrameCodec::new().decode(&mut buf), Err(CodecError::MissingBody)));
    }

    #[test]
    fn unknown_body_is_missing_body() {
        // Field 99 (varint 1) is a body number this version does not know: prost skips it as an unknown
        // field, which leaves the oneof empty.
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0x98, 0x06, 0x01][..]);
        assert!(matches!(FrameCodec::new().decode(&mut buf), Err(CodecError::MissingBody)));
    }

    #[test]
    fn data_payload_shares_the_read_buffer() {
        let payload = Bytes::from(vec![0xab; 1000]);
        let frame = encode_frame(
            &Data { stream_ref: 1, seq: 1, hops: 0, payload: payload.clone() }.into(),
            DEFAULT_MAX_FRAME_LEN,
        )
        .unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let read_range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let env = FrameCodec::new().decode(&mut buf).unwrap().unwrap();
        let Some(crate::proto::Body::Data(data)) = env.body else { panic!("not data") };
        assert_eq!(data.payload, payload);
        let at = data.payload.as_ptr() as usize;
        assert!(read_range.contains(&at), "payload must point into the read buffer, not a copy");
    }

    #[test]
    fn frame_encoder_matches_encode_frame_and_shares_chunks() {
        let mut encoder = FrameEncoder::new(DEFAULT_MAX_FRAME_LEN);
        let envs: Vec<Envelope> = (0..100u64)
            .map(|seq| Data { stream_ref: 1, seq, hops: 1, payload: Bytes::from(vec![7; 100]) }.into())
            .collect();
        let frames: Vec<Bytes> = envs.iter().map(|e| encoder.encode(e).unwrap()).collect();
        for (env, frame) in envs.iter().zip(&frames) {
            assert_eq!(frame, &encode_frame(env, DEFAULT_MAX_FRAME_LEN).unwrap());
        }
        // Consecutive small frames are adjacent in one chunk: one allocation served them.
        let end_of_first = frames[0].as_ptr() as usize + frames[0].len();
        assert_eq!(end_of_first, frames[1].as_ptr() as usize);
        // A frame larger than a chunk still encodes.
        let big: Envelope = Data { payload: Bytes::from(vec![1; 200_000]), ..Default::default() }.into();
        assert_eq!(encoder.encode(&big).unwrap(), encode_frame(&big, DEFAULT_MAX_FRAME_LEN).unwrap());
        let mut small = FrameEncoder::new(10);
        assert!(matches!(small.encode(&big), Err(CodecError::FrameTooLarge { .. })));
    }

    #[test]
    fn frame_encoder_never_reuses_a_chunk_a_frame_still_holds() {
        // Frames of different contents; every 7th is kept, the rest dropped at once, over many chunks:
        // the encoder reuses chunks whose frames are all gone, and a kept frame must never change.
        let mut encoder = FrameEncoder::new(DEFAULT_MAX_FRAME_LEN);
        let env = |i: u64| -> Envelope {
            Data {
                stream_ref: 1,
                seq: i,
                hops: 1,
                payload: Bytes::from(vec![i as u8; 700 + (i % 5) as usize * 300]),
            }
            .into()
        };
        let mut kept = Vec::new();
        for i in 0..5_000u64 {
            let frame = encoder.encode(&env(i)).unwrap();
            if i % 7 == 0 {
                kept.push((i, frame));
            }
            if i % 1_000 == 999 {
                kept.retain(|(i, _)| i % 2 == 0); // let some chunks go entirely free later
            }
        }
        for (i, frame) in &kept {
            assert_eq!(frame, &encode_frame(&env(*i), DEFAULT_MAX_FRAME_LEN).unwrap(), "frame {i} intact");
        }
    }

    #[test]
    fn same_layout_as_length_delimited_codec() {
        let env = Envelope::from(Ping { nonce: 5, sent_at_micros: 6 });
        let frame = encode_frame(&env, DEFAULT_MAX_FRAME_LEN).unwrap();
        let mut buf = BytesMut::from(&frame[..]);
        let body = tokio_util::codec::LengthDelimitedCodec::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!(Envelope::decode(body.freeze()).unwrap(), env);
    }
}
