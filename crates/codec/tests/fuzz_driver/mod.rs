//! The body of the `frame_decode` fuzz target (`fuzz/fuzz_targets/frame_decode.rs`), shared with the
//! regression test `tests/fuzz_regressions.rs`, which replays the saved inputs through it.
//!
//! Input layout: byte 0 picks a small maximum frame length (16..=1036 bytes); then, repeatedly, one
//! byte picks a chunk length (1..=64) and that many bytes are appended to the read buffer, as one
//! socket read would, and the decoder runs until it wants more. Checked on every call:
//!
//! * no panic;
//! * a decoded envelope has a body and survives an encode/decode round trip unchanged;
//! * an oversize prefix is refused with `FrameTooLarge` naming the prefix and the limit, and nothing is
//!   reserved for it (the buffer's capacity is unchanged by the refusing call);
//! * the read buffer never holds more than the limit allows: its capacity stays below
//!   `2 * (max + header + chunk) + 64` bytes whatever the prefixes say;
//! * only typed errors come out (`FrameTooLarge`, `Malformed`, `MissingBody`); never `Io` from
//!   `decode`. After an error the decoder starts afresh on the rest of the input, as a new connection.
#![allow(dead_code, unreachable_pub)]

use bytes::BytesMut;
use dotray_codec::{CodecError, DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, FrameCodec, encode_frame};
use tokio_util::codec::Decoder;

/// Longest chunk appended to the buffer at once.
const MAX_CHUNK: usize = 64;

/// Runs the `frame_decode` checks on one input (see the module docs).
pub fn frame_decode(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let max = 16 + usize::from(first) * 4;
    let bound = 2 * (max + FRAME_HEADER_LEN + MAX_CHUNK) + 64;
    let mut codec = FrameCodec::with_max_frame_len(max);
    let mut buf = BytesMut::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = (usize::from(len) % MAX_CHUNK + 1).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            let capacity = buf.capacity();
            let prefix = buf.get(..FRAME_HEADER_LEN).map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
            match codec.decode(&mut buf) {
                Ok(Some(envelope)) => {
                    assert!(envelope.body.is_some(), "an envelope without a body was accepted");
                    let frame = encode_frame(&envelope, DEFAULT_MAX_FRAME_LEN).expect("re-encodes");
                    let again = FrameCodec::new().decode(&mut BytesMut::from(&frame[..]));
                    assert_eq!(again.expect("re-decodes").as_ref(), Some(&envelope), "round trip");
                }
                Ok(None) => {
                    assert!(buf.capacity() <= bound, "buffer of {} bytes for max {max}", buf.capacity());
                    break;
                }
                Err(CodecError::FrameTooLarge { len, max: limit }) => {
                    assert_eq!(limit, max);
                    assert_eq!(Some(len), prefix.map(|p| p as usize), "the error names the prefix");
                    assert!(len > max);
                    assert_eq!(buf.capacity(), capacity, "nothing reserved for a refused frame");
                    buf = BytesMut::new();
                    break;
                }
                Err(CodecError::Malformed(_) | CodecError::MissingBody) => {
                    buf = BytesMut::new();
                    break;
                }
                Err(other) => panic!("unexpected error from decode: {other:?}"),
            }
            assert!(buf.capacity() <= bound, "buffer of {} bytes for max {max}", buf.capacity());
        }
    }
    // End of stream: a partial frame left over is an i/o error ("bytes remaining"), nothing else.
    match codec.decode_eof(&mut buf) {
        Ok(Some(envelope)) => assert!(envelope.body.is_some()),
        Ok(None) => assert!(buf.is_empty()),
        Err(CodecError::Io(_) | CodecError::Malformed(_) | CodecError::MissingBody) => {}
        Err(CodecError::FrameTooLarge { len, .. }) => assert!(len > max),
        Err(other) => panic!("unexpected error from decode_eof: {other:?}"),
    }
}
