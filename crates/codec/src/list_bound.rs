//! A bound on list entries, checked on a frame's bytes before prost decodes it.
//!
//! prost decodes a whole envelope before any layer can apply its own bounds, and a list entry costs
//! far more in memory than on the wire: an empty `NodeInfo` is 2 bytes in a frame and a struct of
//! about 80 bytes once decoded, so one 4 MiB frame of them would become some 170 MB of `Vec`. So each
//! frame that prost is to decode is first walked field by field, without allocating, and refused
//! when any field of its body occurs more than [`MAX_LIST_ENTRIES`] times. Every list in the protocol
//! is a repeated field of a body (`IHave.ranges`, `NodeQueryResponse.nodes`, …), so the memory a frame
//! can take once decoded stays within a small multiple of the frame limit. The layers above apply
//! their own, smaller bounds after decoding (each core's `MAX_LIST_LEN`).

use crate::CodecError;

/// The most times one field may occur in a frame's body: the longest list any layer sends
/// (`dotray-router`'s `MAX_LIST_LEN`; the cores check that theirs fit).
pub const MAX_LIST_ENTRIES: usize = 4_096;

/// Field numbers counted in a body. Every repeated field of the protocol has a smaller number; prost
/// skips the fields it does not know without allocating, so larger numbers cost nothing to ignore.
const COUNTED_FIELDS: usize = 64;

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Refuses a frame (an encoded `Envelope`, without its prefix) whose body repeats a field more than
/// [`MAX_LIST_ENTRIES`] times. A frame that is not well-formed protobuf passes: prost refuses it.
pub(crate) fn check_list_entries(frame: &[u8]) -> Result<(), CodecError> {
    for field in Fields(frame) {
        let Some((_, wire_type, value)) = field else { return Ok(()) };
        if wire_type == LEN {
            check_body(value)?;
        }
    }
    Ok(())
}

fn check_body(body: &[u8]) -> Result<(), CodecError> {
    let mut counts = [0usize; COUNTED_FIELDS];
    for field in Fields(body) {
        let Some((number, _, _)) = field else { return Ok(()) };
        if let Some(count) = counts.get_mut(number as usize) {
            *count += 1;
            if *count > MAX_LIST_ENTRIES {
                return Err(CodecError::TooManyEntries { field: number, max: MAX_LIST_ENTRIES });
            }
        }
    }
    Ok(())
}

/// The fields of a protobuf message: `Some((number, wire type, value))` each, then `None` once if
/// the rest is not well formed (the walk stops there).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u32, u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_none() {
            self.0 = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Option<(u32, u8, &'a [u8])> {
        let key = self.varint()?;
        let (number, wire_type) = (u32::try_from(key >> 3).ok()?, (key & 7) as u8);
        let len = match wire_type {
            VARINT => {
                self.varint()?;
                0
            }
            FIXED64 => 8,
            FIXED32 => 4,
            LEN => usize::try_from(self.varint()?).ok()?,
            _ => return None,
        };
        let value = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some((number, wire_type, value))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::generated::{Envelope, IHave, NodeInfo, NodeQueryResponse, SeqRange};

    fn frame(envelope: Envelope) -> Vec<u8> {
        envelope.encode_to_vec()
    }

    #[test]
    fn lists_up_to_the_bound_pass_and_one_more_entry_is_refused() {
        let ranges =
            |n: usize| IHave { ranges: vec![SeqRange { stream_ref: 1, first: 1, last: 2 }; n], hops: 0 };
        assert!(check_list_entries(&frame(ranges(MAX_LIST_ENTRIES).into())).is_ok());
        let refused = check_list_entries(&frame(ranges(MAX_LIST_ENTRIES + 1).into()));
        assert!(
            matches!(refused, Err(CodecError::TooManyEntries { field: 1, max: MAX_LIST_ENTRIES })),
            "{refused:?}"
        );
    }

    #[test]
    fn empty_entries_count_like_full_ones() {
        let nodes = vec![NodeInfo::default(); MAX_LIST_ENTRIES + 1];
        let response = NodeQueryResponse { request_id: 7, nodes };
        assert!(matches!(
            check_list_entries(&frame(response.into())),
            Err(CodecError::TooManyEntries { field: 2, .. })
        ));
    }

    #[test]
    fn malformed_bytes_are_left_to_prost() {
        for bytes in [&[0xff_u8; 12][..], &[0x0a, 0x7f, 0x01][..], &[0x0b][..], &[][..]] {
            assert!(check_list_entries(bytes).is_ok(), "{bytes:?}");
        }
    }
}
