//! Property tests: arbitrary bytes never make the decoder panic, and it reports typed errors.

mod strategies;

use bytes::{BufMut, BytesMut};
use dotray_codec::{CodecError, FrameCodec};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Decodes `input` fed in `chunk`-byte reads. On an error the decoder starts afresh on the rest of the
/// input (as a new connection would); returns how many envelopes and errors came out.
fn decode_garbage(input: &[u8], chunk: usize, max: usize) -> (usize, usize) {
    let (mut ok, mut errors) = (0, 0);
    let mut codec = FrameCodec::with_max_frame_len(max);
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => ok += 1,
                Ok(None) => break,
                Err(_) => {
                    errors += 1;
                    buf.clear();
                    break;
                }
            }
            assert!(buf.capacity() <= 2 * (max + 4) + 8192, "buffer bounded by the frame limit");
        }
    }
    (ok, errors)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..512) {
        decode_garbage(&input, chunk, 1024);
    }

    /// Frames with a plausible length prefix and a random body: exercises the protobuf layer, not just
    /// the length check.
    #[test]
    fn random_frame_bodies_are_typed_errors_or_envelopes(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
        match FrameCodec::new().decode(&mut buf) {
            Ok(Some(env)) => prop_assert!(env.body.is_some()),
            Ok(None) => prop_assert!(false, "a whole frame was present"),
            Err(CodecError::Malformed(_) | CodecError::MissingBody) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    /// A valid envelope with its bytes flipped: never a panic.
    #[test]
    fn corrupted_valid_frames_never_panic(env in strategies::envelope(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut wire = BytesMut::new();
        tokio_util::codec::Encoder::encode(&mut FrameCodec::new(), &env, &mut wire).expect("encodable");
        for (at, x) in flips {
            let i = 4 + at % (wire.len() - 4).max(1);
            if i < wire.len() { wire[i] ^= x; }
        }
        let _ = decode_garbage(&wire, 7, dotray_codec::DEFAULT_MAX_FRAME_LEN);
    }
}

#[test]
fn four_gib_prefix_is_rejected_at_once() {
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]);
    match FrameCodec::new().decode(&mut buf) {
        Err(CodecError::FrameTooLarge { len, max }) => {
            assert_eq!(len, 0xffff_ffff);
            assert_eq!(max, dotray_codec::DEFAULT_MAX_FRAME_LEN);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

#[test]
fn truncated_frame_waits_for_more_without_error() {
    let mut buf = BytesMut::from(&[0, 0, 0, 10, 1, 2][..]);
    assert!(matches!(FrameCodec::new().decode(&mut buf), Ok(None)));
}

/// What a decoder made of a byte stream fed in pieces: the envelopes, then the first error (its
/// `Debug` text), if any.
type Outcome = (Vec<dotray_codec::proto::Envelope>, Option<String>);

/// `wire` fed in `chunk`-byte reads, decoded one frame at a time with `decode_available`.
fn one_by_one(wire: &[u8], chunk: usize, max_len: usize) -> Outcome {
    let mut codec = FrameCodec::with_max_frame_len(max_len);
    let (mut buf, mut out) = (BytesMut::new(), Vec::new());
    for piece in wire.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode_available(&mut buf) {
                Ok(Some(env)) => out.push(env),
                Ok(None) => break,
                Err(e) => return (out, Some(format!("{e:?}"))),
            }
        }
    }
    (out, None)
}

/// The same stream decoded with `decode_many`, at most `per_call` frames a call.
fn many_at_once(wire: &[u8], chunk: usize, max_len: usize, per_call: usize) -> Outcome {
    let mut codec = FrameCodec::with_max_frame_len(max_len);
    let (mut buf, mut out) = (BytesMut::new(), Vec::new());
    for piece in wire.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let before = out.len();
            match codec.decode_many(&mut buf, per_call, &mut out) {
                Ok(0) => break,
                Ok(n) => assert_eq!(out.len(), before + n, "the count is what was appended"),
                Err(e) => return (out, Some(format!("{e:?}"))),
            }
        }
    }
    (out, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The batch decoder is the frame-by-frame decoder, only cheaper: same envelopes, same first
    /// error, however the stream is cut and whatever the batch size — on valid streams and on streams
    /// with corrupted bytes (which may land in a length prefix, making it oversize or short).
    #[test]
    fn decode_many_decodes_exactly_what_decode_available_does(
        envs in proptest::collection::vec(strategies::envelope(), 1..8),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        chunk in 1usize..700,
        per_call in 1usize..5,
        max_len in prop_oneof![Just(dotray_codec::DEFAULT_MAX_FRAME_LEN), 40usize..400],
    ) {
        let mut wire = BytesMut::new();
        for env in &envs {
            tokio_util::codec::Encoder::encode(&mut FrameCodec::new(), env, &mut wire).expect("encodable");
        }
        for (at, x) in flips {
            let i = at % wire.len();
            wire[i] ^= x;
        }
        let expected = one_by_one(&wire, chunk, max_len);
        prop_assert_eq!(many_at_once(&wire, chunk, max_len, per_call), expected);
    }
}
