//! [`SplitFrame`]: a frame in two parts — its head, then a payload shared rather than copied.
//!
//! A `Data` frame is mostly payload, and the payload is already a `Bytes` the application (or the read
//! buffer it arrived in) owns. Encoding it contiguously copies every payload byte once more per frame.
//! Protobuf writes fields in field-number order and `Data.payload` is the last field, so everything
//! before the payload's bytes — the length prefix, the envelope's field key and length, `stream_ref`,
//! `seq`, `hops`, the payload's key and length — is a short *head*, and the frame on the wire is
//! exactly `head` followed by `payload`. A writer that gathers both into one vectored write sends the
//! payload from where it already is: zero copies between the application and the socket.
//!
//! Worth it for large payloads only: for small ones one contiguous frame (one slice, one reference
//! count) is cheaper than copying the payload is expensive. [`FrameEncoder::encode_data`] chooses.

use bytes::{Bytes, BytesMut};

use crate::data_frame::{data_lens, put_data_head};
use crate::generated::Data;
use crate::{CodecError, DataFrame, FRAME_HEADER_LEN, FrameEncoder};

/// Payloads at least this long are sent as a [`SplitFrame`] by [`FrameEncoder::encode_data`]; shorter
/// ones are copied into one contiguous frame. 4 KiB: a copy of that size costs about what a second
/// slice in the write and a second reference count do.
pub const SPLIT_PAYLOAD_MIN: usize = 4 * 1024;

/// One encoded frame: `head` followed by `payload` on the wire. A contiguous frame has an empty
/// payload part. Cheap to clone (two `Bytes`).
///
/// ```
/// use bytes::Bytes;
/// use dotray_codec::{DEFAULT_MAX_FRAME_LEN, FrameEncoder, encode_frame, proto};
///
/// let data = proto::Data { stream_ref: 1, seq: 7, hops: 2, payload: Bytes::from(vec![9; 10_000]) };
/// let contiguous = encode_frame(&data.clone().into(), DEFAULT_MAX_FRAME_LEN)?;
/// let frame = FrameEncoder::new(DEFAULT_MAX_FRAME_LEN).encode_data(data)?;
/// assert!(frame.head().len() < 32, "the payload is not copied");
/// assert_eq!([frame.head().as_ref(), frame.payload().as_ref()].concat(), contiguous.as_ref());
/// # Ok::<(), dotray_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitFrame {
    head: Bytes,
    payload: Bytes,
}

impl SplitFrame {
    /// The first part: the whole frame, or everything before the payload.
    pub fn head(&self) -> &Bytes {
        &self.head
    }

    /// The second part (empty for a contiguous frame).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload.len()
    }

    /// True for a frame of no bytes (never made by the encoders here).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Both parts, to take apart.
    pub fn into_parts(self) -> (Bytes, Bytes) {
        (self.head, self.payload)
    }
}

impl From<Bytes> for SplitFrame {
    /// A contiguous frame (as made by [`crate::encode_frame`] or [`FrameEncoder::encode`]).
    fn from(frame: Bytes) -> Self {
        Self { head: frame, payload: Bytes::new() }
    }
}

impl FrameEncoder {
    /// Encodes a `Data` envelope; a payload of at least [`SPLIT_PAYLOAD_MIN`] bytes is not copied but
    /// shared by the returned frame's second part. Byte for byte what [`FrameEncoder::encode`] writes
    /// for the same envelope, without prost's generic path (see the `data_frame` module).
    pub fn encode_data(&mut self, data: Data) -> Result<SplitFrame, CodecError> {
        let mut fields = data;
        let payload = std::mem::take(&mut fields.payload);
        let lens = data_lens(&fields, payload.len());
        let max = self.max_frame_len();
        if lens.0 > max {
            return Err(CodecError::FrameTooLarge { len: lens.0, max });
        }
        if payload.len() < SPLIT_PAYLOAD_MIN {
            let frame = DataFrame::new(fields.stream_ref, fields.seq, fields.hops, &payload, max)?;
            let chunk = self.room_for(frame.len());
            frame.put(chunk);
            return Ok(SplitFrame::from(chunk.split().freeze()));
        }
        // The head only: the payload goes out from where it is.
        let head_len = FRAME_HEADER_LEN + lens.0 - payload.len();
        let mut head = BytesMut::with_capacity(head_len);
        put_data_head(&mut head, lens, &fields, payload.len());
        debug_assert_eq!(head.len(), head_len);
        Ok(SplitFrame { head: head.freeze(), payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::Envelope;
    use crate::{DEFAULT_MAX_FRAME_LEN, FrameCodec, encode_frame};
    use proptest::prelude::*;
    use tokio_util::codec::Decoder;

    fn joined(frame: &SplitFrame) -> Vec<u8> {
        [frame.head().as_ref(), frame.payload().as_ref()].concat()
    }

    proptest! {
        #[test]
        fn split_frame_is_byte_for_byte_the_contiguous_frame(
            stream_ref in any::<u32>(),
            seq in any::<u64>(),
            hops in any::<u32>(),
            len in 0usize..40_000,
        ) {
            let data = Data { stream_ref, seq, hops, payload: Bytes::from(vec![0xa5; len]) };
            let frame = FrameEncoder::new(DEFAULT_MAX_FRAME_LEN).encode_data(data.clone()).unwrap();
            let contiguous = encode_frame(&data.clone().into(), DEFAULT_MAX_FRAME_LEN).unwrap();
            prop_assert_eq!(joined(&frame), contiguous.to_vec());
            prop_assert_eq!(frame.payload().is_empty(), len < SPLIT_PAYLOAD_MIN);
            let mut wire = BytesMut::from(&joined(&frame)[..]);
            prop_assert_eq!(FrameCodec::new().decode(&mut wire).unwrap(), Some(Envelope::from(data)));
        }
    }

    #[test]
    fn large_payloads_are_shared_not_copied() {
        let payload = Bytes::from(vec![1; 64 * 1024]);
        let data = Data { stream_ref: 3, seq: 1, hops: 0, payload: payload.clone() };
        let frame = FrameEncoder::new(DEFAULT_MAX_FRAME_LEN).encode_data(data.clone()).unwrap();
        assert_eq!(frame.payload().as_ptr(), payload.as_ptr());
        assert_eq!(frame.len(), encode_frame(&data.into(), DEFAULT_MAX_FRAME_LEN).unwrap().len());
    }

    #[test]
    fn too_large_is_refused() {
        let data = Data { payload: Bytes::from(vec![1; 10_000]), ..Default::default() };
        assert!(matches!(
            FrameEncoder::new(5_000).encode_data(data),
            Err(CodecError::FrameTooLarge { max: 5_000, .. })
        ));
    }
}
