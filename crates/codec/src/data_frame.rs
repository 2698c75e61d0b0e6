//! The hot path of the wire: `Data` frames (broadcast payloads) written and read without prost's
//! generic machinery, byte for byte as prost writes and reads them.
//!
//! Nearly every frame a busy node handles is a `Data` envelope, and its layout is fixed: the length
//! prefix, the envelope's key for field 4 (`0x22`), the length of the `Data` message, then its
//! fields in field-number order — `stream_ref` (key `0x08`), `seq` (`0x10`), `hops` (`0x18`), each
//! left out when zero, as proto3 does — and last the payload (`0x22`, its length, its bytes; left out
//! when empty). prost's generic code gets there through the envelope's `oneof` and computes the inner
//! length twice when encoding, and walks a field-dispatch loop when decoding: on a busy connection of
//! small frames, more CPU than copying the payload (see docs/PERFORMANCE.md).
//!
//! * [`put_data_head`] writes everything before the payload's bytes, into the head of a
//!   [`crate::OutFrame`]; the payload follows it by reference.
//! * [`parse_data`] recognises a frame body in exactly that canonical shape and returns its fields
//!   and where its payload is. Anything else — fields out of order or repeated, unknown fields, values
//!   that prost would truncate, a second envelope field after the data — returns `None`, and the
//!   caller decodes the frame with prost as before. So the fast path only ever accepts input that
//!   prost decodes to the same envelope (a property test checks both directions on random and
//!   corrupted frames), and every error still comes from prost.

use std::ops::Range;

use bytes::BufMut;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::generated::Data;

/// Field number of `Envelope.data` (see `proto/dotray/v1/envelope.proto`).
pub(crate) const ENVELOPE_DATA_FIELD: u32 = 4;
/// Field number of `Data.payload`, the last field of `Data` (see `proto/dotray/v1/broadcast.proto`).
const DATA_PAYLOAD_FIELD: u32 = 4;
/// The key of `Envelope.data` (field 4, length-delimited) as a varint: (4 << 3) | 2 = 34.
const ENVELOPE_DATA_KEY: [u8; 1] = [0x22];
/// Keys of `Data`'s fields 1–4 (one byte each): three varints and the length-delimited payload.
const KEY_STREAM_REF: u8 = 0x08;
const KEY_SEQ: u8 = 0x10;
const KEY_HOPS: u8 = 0x18;
const KEY_PAYLOAD: u8 = 0x22;
/// The longest varint protobuf allows.
const MAX_VARINT_LEN: usize = 10;
/// The longest head [`put_data_head`] writes: the prefix (4), the envelope's key (1) and length (at
/// most 5 for a 32-bit length), `stream_ref` (1 + 5), `seq` (1 + 10), `hops` (1 + 5), the payload's
/// key (1) and length (5).
pub(crate) const DATA_HEAD_MAX: usize = 39;

/// Lengths of a `Data` envelope: `(envelope, data)` — the frame body without its prefix, and the
/// `Data` message inside it — for `data`'s fields with a payload of `payload_len` bytes.
///
/// `fields` must have an empty payload (the payload is passed by length, so that it can be taken out
/// of the message first).
pub(crate) fn data_lens(fields: &Data, payload_len: usize) -> (usize, usize) {
    debug_assert!(fields.payload.is_empty());
    let payload_field = match payload_len {
        0 => 0,
        n => key_len(DATA_PAYLOAD_FIELD) + encoded_len_varint(n as u64) + n,
    };
    let inner = fields.encoded_len() + payload_field;
    (key_len(ENVELOPE_DATA_FIELD) + encoded_len_varint(inner as u64) + inner, inner)
}

/// Writes a `Data` frame up to its payload's bytes: the prefix stating `envelope_len`, the envelope's
/// key and the data's length `inner_len` (both from [`data_lens`]), `fields` (with an empty payload),
/// and the payload's key and length. The frame is complete once `payload_len` payload bytes follow.
pub(crate) fn put_data_head(
    dst: &mut impl BufMut,
    (envelope_len, inner_len): (usize, usize),
    fields: &Data,
    payload_len: usize,
) {
    // Callers check `envelope_len` against the frame limit, which is at most `u32::MAX`.
    dst.put_u32(envelope_len as u32);
    encode_key(ENVELOPE_DATA_FIELD, WireType::LengthDelimited, dst);
    encode_varint(inner_len as u64, dst);
    fields.encode_raw(dst);
    if payload_len > 0 {
        encode_key(DATA_PAYLOAD_FIELD, WireType::LengthDelimited, dst);
        encode_varint(payload_len as u64, dst);
    }
}

/// The fields of a canonical `Data` frame body, and where its payload lies in that body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedData {
    pub(crate) stream_ref: u32,
    pub(crate) seq: u64,
    pub(crate) hops: u32,
    pub(crate) payload: Range<usize>,
}

/// Recognises a frame body (without its prefix) that is one `Data` envelope in canonical shape (see
/// the module docs); `None` for anything else, which the caller decodes with prost.
pub(crate) fn parse_data(body: &[u8]) -> Option<ParsedData> {
    if body.get(..ENVELOPE_DATA_KEY.len())? != ENVELOPE_DATA_KEY {
        return None;
    }
    let mut at = ENVELOPE_DATA_KEY.len();
    let inner_len = take_varint(body, &mut at)?;
    if inner_len != (body.len() - at) as u64 {
        return None;
    }
    let mut parsed = ParsedData { stream_ref: 0, seq: 0, hops: 0, payload: 0..0 };
    // Fields must come in increasing order, each at most once: `next` is the lowest key still allowed.
    let mut next = KEY_STREAM_REF;
    while at < body.len() {
        let key = body[at];
        if key < next {
            return None;
        }
        at += 1;
        match key {
            KEY_STREAM_REF => parsed.stream_ref = u32::try_from(take_varint(body, &mut at)?).ok()?,
            KEY_SEQ => parsed.seq = take_varint(body, &mut at)?,
            KEY_HOPS => parsed.hops = u32::try_from(take_varint(body, &mut at)?).ok()?,
            KEY_PAYLOAD => {
                let len = usize::try_from(take_varint(body, &mut at)?).ok()?;
                // The payload is the last field: it ends the body exactly.
                if len != body.len() - at {
                    return None;
                }
                parsed.payload = at..body.len();
                at = body.len();
            }
            _ => return None,
        }
        next = key + 1;
    }
    Some(parsed)
}

/// Reads the varint at `body[*at..]` and moves `at` past it; `None` where prost would fail (no end
/// within ten bytes, or a value beyond 64 bits).
fn take_varint(body: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..MAX_VARINT_LEN {
        let byte = *body.get(*at + i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            // The tenth byte may only hold the 64th bit.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return None;
            }
            *at += i + 1;
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::Envelope;
    use crate::generated::envelope::Body;
    use bytes::{Bytes, BytesMut};
    use proptest::prelude::*;

    /// The body of `data`'s frame as prost encodes it (no prefix).
    fn prost_body(data: &Data) -> Vec<u8> {
        Envelope::from(data.clone()).encode_to_vec()
    }

    /// What `parse_data` made of `body`, as the envelope it stands for.
    fn fast_envelope(body: &[u8]) -> Option<Envelope> {
        let parsed = parse_data(body)?;
        let payload = Bytes::copy_from_slice(&body[parsed.payload]);
        Some(Data { stream_ref: parsed.stream_ref, seq: parsed.seq, hops: parsed.hops, payload }.into())
    }

    fn data() -> impl Strategy<Value = Data> {
        let small = prop_oneof![Just(0u64), 0u64..300, any::<u64>()];
        (small.clone(), small.clone(), small, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(
            |(stream_ref, seq, hops, payload)| Data {
                stream_ref: stream_ref as u32,
                seq,
                hops: hops as u32,
                payload: Bytes::from(payload),
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The head writer plus the payload is prost's encoding, byte for byte.
        #[test]
        fn head_and_payload_are_prosts_frame(data in data()) {
            let mut fields = data.clone();
            let payload = std::mem::take(&mut fields.payload);
            let lens = data_lens(&fields, payload.len());
            let mut frame = BytesMut::new();
            put_data_head(&mut frame, lens, &fields, payload.len());
            frame.extend_from_slice(&payload);
            let body = prost_body(&data);
            prop_assert_eq!(lens.0, body.len());
            prop_assert_eq!(&frame[..4], &(body.len() as u32).to_be_bytes());
            prop_assert_eq!(&frame[4..], &body[..]);
        }

        /// Every frame prost writes for a `Data` is taken by the fast path, with the same fields.
        #[test]
        fn prosts_data_frames_parse_to_the_same_envelope(data in data()) {
            prop_assert_eq!(fast_envelope(&prost_body(&data)), Some(Envelope::from(data)));
        }

        /// Corrupted frames: whatever the fast path accepts, prost decodes to the same envelope.
        #[test]
        fn what_the_fast_path_accepts_prost_decodes_the_same(
            data in data(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut body = prost_body(&data);
            for (at, x) in flips {
                let i = at % body.len();
                body[i] ^= x;
            }
            body.truncate(cut % (body.len() + 1));
            if let Some(fast) = fast_envelope(&body) {
                prop_assert_eq!(Envelope::decode(&body[..]).ok(), Some(fast));
            }
        }

        /// Random bytes behind the right key: the same, and no panic.
        #[test]
        fn random_bodies_behind_the_data_key(tail in proptest::collection::vec(any::<u8>(), 0..40)) {
            let body = [&ENVELOPE_DATA_KEY[..], &tail].concat();
            if let Some(fast) = fast_envelope(&body) {
                prop_assert_eq!(Envelope::decode(&body[..]).ok(), Some(fast));
            }
        }
    }

    #[test]
    fn shapes_prost_accepts_but_the_fast_path_leaves_to_prost() {
        let canonical =
            prost_body(&Data { stream_ref: 1, seq: 2, hops: 3, payload: Bytes::from_static(b"x") });
        assert!(parse_data(&canonical).is_some());
        // Fields out of order, repeated, or unknown; a second envelope field after the data; a
        // stream_ref beyond 32 bits (prost truncates it).
        let inner = |fields: &[u8]| [&ENVELOPE_DATA_KEY[..], &[fields.len() as u8], fields].concat();
        for body in [
            inner(&[KEY_SEQ, 2, KEY_STREAM_REF, 1]),
            inner(&[KEY_SEQ, 2, KEY_SEQ, 3]),
            inner(&[0x28, 1]),
            [&inner(&[KEY_SEQ, 2])[..], &ENVELOPE_DATA_KEY[..], &[0]].concat(),
            inner(&[KEY_STREAM_REF, 0x80, 0x80, 0x80, 0x80, 0x10]),
        ] {
            assert_eq!(parse_data(&body), None, "{body:?}");
            let decoded = Envelope::decode(&body[..]).expect("prost takes it");
            assert!(matches!(decoded.body, Some(Body::Data(_))));
        }
    }
}
