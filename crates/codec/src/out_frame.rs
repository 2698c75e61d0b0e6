//! [`OutFrame`]: the one type of outgoing frame — a head, then a payload shared rather than copied.
//!
//! A `Data` frame is mostly payload, and the payload is already a `Bytes` the application (or the read
//! buffer it arrived in) owns. Protobuf writes fields in field-number order and `Data.payload` is the
//! last field, so everything before the payload's bytes — the length prefix, the envelope's field key
//! and length, `stream_ref`, `seq`, `hops`, the payload's key and length — is a short *head*, and the
//! frame on the wire is exactly `head` followed by `payload`. [`OutFrame::data`] writes that head
//! into the frame itself (no allocation) and *borrows* the payload; any other envelope is one
//! contiguous head ([`OutFrame::encode`], or `From<Bytes>` for a frame encoded elsewhere).
//!
//! Whoever queues the frame decides, by its length, whether to copy it or to share its parts: a
//! connection's queue copies a frame below [`COPY_FRAME_MAX`] bytes into its own buffer (one copy, and
//! not even a reference count taken on the payload, which other cores hold too), and queues a longer
//! one as its two parts, so a large payload is written (or encrypted) from where it already is. One
//! `OutFrame` is built per message and hop and queued by reference for every neighbour that gets it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::data_frame::{DATA_HEAD_MAX, data_lens, put_data_head};
use crate::generated::{Data, Envelope};
use crate::{CodecError, FRAME_HEADER_LEN, encode_frame};

/// Frames shorter than this are best copied into a connection's queue; longer ones are best queued
/// as their parts, by reference. 4 KiB: a copy of that size costs about what a second slice in the
/// write and a reference count taken and dropped on two cores do.
pub const COPY_FRAME_MAX: usize = 4 * 1024;

/// One encoded frame ready to queue on any number of connections: `head` followed by `payload` on
/// the wire. A contiguous frame has an empty payload part.
///
/// ```
/// use bytes::Bytes;
/// use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, encode_frame, proto};
///
/// let payload = Bytes::from(vec![9; 10_000]);
/// let frame = OutFrame::data(1, 7, 2, &payload, DEFAULT_MAX_FRAME_LEN)?;
/// assert!(frame.head().len() < 32, "the payload is not copied");
/// assert_eq!(frame.payload().as_ptr(), payload.as_ptr());
///
/// let data = proto::Data { stream_ref: 1, seq: 7, hops: 2, payload: payload.clone() };
/// let contiguous = encode_frame(&data.into(), DEFAULT_MAX_FRAME_LEN)?;
/// assert_eq!(frame.to_bytes(), contiguous);
/// # Ok::<(), dotray_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame<'a> {
    head: Head,
    payload: &'a Bytes,
}

/// The payload part of a contiguous frame.
static NO_PAYLOAD: Bytes = Bytes::new();

/// The part of a frame before its shared payload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Head {
    /// The head of a `Data` frame, written in place.
    Inline { bytes: [u8; DATA_HEAD_MAX], len: u8 },
    /// A whole frame encoded elsewhere.
    Shared(Bytes),
}

impl OutFrame<'static> {
    /// Encodes `envelope` as one contiguous frame. Fails with [`CodecError::FrameTooLarge`] when its
    /// body is longer than `max_frame_len`.
    pub fn encode(envelope: &Envelope, max_frame_len: usize) -> Result<Self, CodecError> {
        encode_frame(envelope, max_frame_len).map(Self::from)
    }
}

impl<'a> OutFrame<'a> {
    /// The frame of `Data { stream_ref, seq, hops, payload }`, byte for byte what
    /// [`OutFrame::encode`] makes of it, with the payload shared, not copied. Fails with
    /// [`CodecError::FrameTooLarge`] when its body is longer than `max_frame_len`.
    pub fn data(
        stream_ref: u32,
        seq: u64,
        hops: u32,
        payload: &'a Bytes,
        max_frame_len: usize,
    ) -> Result<Self, CodecError> {
        let fields = Data { stream_ref, seq, hops, payload: Bytes::new() };
        let lens = data_lens(&fields, payload.len());
        if lens.0 > max_frame_len {
            return Err(CodecError::FrameTooLarge { len: lens.0, max: max_frame_len });
        }
        let mut bytes = [0u8; DATA_HEAD_MAX];
        let mut dst = &mut bytes[..];
        put_data_head(&mut dst, lens, &fields, payload.len());
        let len = DATA_HEAD_MAX - dst.remaining_mut();
        let len = u8::try_from(len).expect("a data head fits DATA_HEAD_MAX");
        debug_assert_eq!(usize::from(len) + payload.len(), FRAME_HEADER_LEN + lens.0);
        Ok(Self { head: Head::Inline { bytes, len }, payload })
    }

    /// The first part: the whole frame, or everything before the payload.
    pub fn head(&self) -> &[u8] {
        match &self.head {
            Head::Inline { bytes, len } => &bytes[..usize::from(*len)],
            Head::Shared(bytes) => bytes,
        }
    }

    /// The head as its own `Bytes` (a reference when it was encoded elsewhere, else a copy).
    pub fn head_bytes(&self) -> Bytes {
        match &self.head {
            Head::Inline { .. } => Bytes::copy_from_slice(self.head()),
            Head::Shared(bytes) => bytes.clone(),
        }
    }

    /// The second part, the payload this frame borrows (empty for a contiguous frame).
    pub fn payload(&self) -> &'a Bytes {
        self.payload
    }

    /// Bytes on the wire, length prefix included.
    pub fn len(&self) -> usize {
        self.head().len() + self.payload.len()
    }

    /// Always false: a frame has at least its length prefix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the whole frame to `dst`.
    pub fn put(&self, dst: &mut BytesMut) {
        dst.reserve(self.len());
        dst.put_slice(self.head());
        dst.put_slice(self.payload);
    }

    /// The whole frame in one buffer (a copy, unless it is contiguous already).
    pub fn to_bytes(&self) -> Bytes {
        match (&self.head, self.payload.is_empty()) {
            (Head::Shared(bytes), true) => bytes.clone(),
            _ => {
                let mut dst = BytesMut::with_capacity(self.len());
                self.put(&mut dst);
                dst.freeze()
            }
        }
    }
}

impl From<Bytes> for OutFrame<'static> {
    /// A complete frame encoded elsewhere ([`crate::encode_frame`], [`crate::FrameEncoder::encode`]).
    fn from(frame: Bytes) -> Self {
        Self { head: Head::Shared(frame), payload: &NO_PAYLOAD }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::Envelope;
    use crate::{DEFAULT_MAX_FRAME_LEN, FrameCodec};
    use proptest::prelude::*;
    use tokio_util::codec::Decoder;

    proptest! {
        #[test]
        fn a_data_frame_is_byte_for_byte_the_contiguous_frame(
            stream_ref in any::<u32>(),
            seq in any::<u64>(),
            hops in any::<u32>(),
            len in 0usize..40_000,
            before in 0usize..8,
        ) {
            let payload = Bytes::from(vec![0xa5; len]);
            let data = Data { stream_ref, seq, hops, payload: payload.clone() };
            let frame = OutFrame::data(stream_ref, seq, hops, &payload, DEFAULT_MAX_FRAME_LEN).unwrap();
            let contiguous = encode_frame(&data.clone().into(), DEFAULT_MAX_FRAME_LEN).unwrap();
            prop_assert_eq!(frame.to_bytes(), contiguous.clone());
            prop_assert_eq!(frame.len(), contiguous.len());
            prop_assert_eq!(frame.head_bytes().len(), frame.head().len());
            let mut dst = BytesMut::from(&vec![0xee; before][..]);
            frame.put(&mut dst);
            prop_assert_eq!(&dst[..before], &vec![0xee; before][..], "appended after what was there");
            prop_assert_eq!(&dst[before..], &contiguous[..]);
            let mut wire = BytesMut::from(&contiguous[..]);
            prop_assert_eq!(FrameCodec::new().decode(&mut wire).unwrap(), Some(Envelope::from(data)));
        }
    }

    #[test]
    fn payloads_are_shared_not_copied() {
        let payload = Bytes::from(vec![1; 64 * 1024]);
        let frame = OutFrame::data(3, 1, 0, &payload, DEFAULT_MAX_FRAME_LEN).unwrap();
        assert_eq!(frame.payload().as_ptr(), payload.as_ptr());
    }

    #[test]
    fn a_frame_encoded_elsewhere_is_one_part() {
        let envelope = Envelope::from(crate::generated::Prune {});
        let frame = OutFrame::encode(&envelope, DEFAULT_MAX_FRAME_LEN).unwrap();
        assert!(frame.payload().is_empty());
        assert_eq!(frame.to_bytes(), encode_frame(&envelope, DEFAULT_MAX_FRAME_LEN).unwrap());
    }

    #[test]
    fn too_large_is_refused() {
        let payload = Bytes::from(vec![1; 10_000]);
        assert!(matches!(
            OutFrame::data(0, 0, 0, &payload, 5_000),
            Err(CodecError::FrameTooLarge { max: 5_000, .. })
        ));
        let body = OutFrame::data(1, 1, 0, &payload, usize::MAX).unwrap().len() - FRAME_HEADER_LEN;
        assert!(OutFrame::data(1, 1, 0, &payload, body).is_ok());
        assert!(matches!(
            OutFrame::data(1, 1, 0, &payload, body - 1),
            Err(CodecError::FrameTooLarge { len, max }) if len == body && max == body - 1
        ));
    }

    #[test]
    fn the_longest_data_head_fits() {
        let payload = Bytes::from(vec![1; 1 << 21]);
        let frame = OutFrame::data(u32::MAX, u64::MAX, u32::MAX, &payload, usize::MAX).unwrap();
        let data = Data { stream_ref: u32::MAX, seq: u64::MAX, hops: u32::MAX, payload: payload.clone() };
        assert_eq!(frame.to_bytes(), encode_frame(&data.into(), usize::MAX).unwrap());
    }
}
