//! [`CodecError`]: everything that can go wrong while framing or parsing envelopes.

/// An error from [`crate::FrameCodec`].
///
/// Every variant but [`CodecError::Io`] means the peer sent something that breaks the protocol; the
/// stream is no longer in a known state and the connection should be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The length prefix announces a frame longer than the configured maximum. Detected from the 4-byte
    /// header alone, before any memory is reserved for the frame.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// Length announced by the prefix (or, when encoding, the length of the encoded envelope).
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The frame's bytes are not a valid protobuf `Envelope`.
    #[error("malformed frame: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// A field of the frame's body occurs more often than any list of the protocol may hold
    /// ([`crate::MAX_LIST_ENTRIES`]); found before the frame is decoded.
    #[error("field {field} of the body occurs more than {max} times")]
    TooManyEntries {
        /// The repeated field's number.
        field: u32,
        /// The bound.
        max: usize,
    },
    /// The envelope has no body, or a body this protocol version does not know.
    #[error("envelope has no body known to protocol version {}", crate::PROTOCOL_VERSION)]
    MissingBody,
    /// Reading from or writing to the underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
