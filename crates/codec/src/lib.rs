//! # dotray-codec — the wire protocol of dotray
//!
//! Every dotray connection is a stream of *frames*. A frame is a 4-byte big-endian length followed by
//! that many bytes of one protobuf-encoded [`proto::Envelope`]. The envelope's `body` is one message of
//! one layer: the handshake and goodbye of the transport, the HyParView messages of the membership layer,
//! the Plumtree messages of the broadcast router, or a direct application message. The protocol is
//! described field by field in `proto/dotray/v1/*.proto` at the root of the repository; the Rust types in
//! [`proto`] are generated from those files by `cargo xtask codegen` and committed.
//!
//! This crate is the bottom layer of dotray and depends on no other. It gives you:
//!
//! * [`proto`] — the generated message types (prost), with `bytes::Bytes` for every `bytes` field;
//! * [`FrameCodec`] — a [`tokio_util::codec`] `Decoder` and `Encoder`, so any `AsyncRead + AsyncWrite`
//!   becomes a stream and sink of envelopes with [`tokio_util::codec::Framed`];
//! * [`OutFrame`] — the outgoing frame: encode a message once per hop, queue it on every connection
//!   that gets it; a `Data` payload in it is shared, not copied ([`OutFrame::data`]);
//! * [`encode_frame`] — one envelope to one contiguous frame in a `Bytes` of its own;
//! * [`FrameEncoder`] — the same for a stream of frames, carving them out of large shared chunks;
//! * [`BufferRecycler`] — reuses such chunks (and read buffers) once every frame cut from them is gone;
//! * [`NodeId`] — a node's identity, the public half of its [`SecretKey`] (Ed25519), and
//!   [`Direction`] — who dialed a connection;
//! * [`CodecError`] — what can go wrong, typed;
//! * [`InvalidConfig`] — why a layer's configuration cannot work, the one shape every layer uses;
//! * [`TokenBucket`] — the per-second budget every layer puts on what a peer can make this node do.
//!
//! ## Safety against bad input
//!
//! The decoder reads the length prefix first and refuses a frame longer than the configured maximum
//! ([`FrameCodec::with_max_frame_len`], default [`DEFAULT_MAX_FRAME_LEN`]) **before** it reserves any
//! memory for it, with [`CodecError::FrameTooLarge`]. Bytes that are not valid protobuf give
//! [`CodecError::Malformed`]; an envelope with no body, or a body this version does not know, gives
//! [`CodecError::MissingBody`]. No input makes it panic. After an error the stream cannot be trusted to be
//! in sync: close the connection.
//!
//! ## Zero copy
//!
//! A decoded frame is split off the read buffer and frozen, and prost decodes `bytes` fields from it with
//! `Bytes::slice`, so the payload of a [`proto::Data`] message shares the read buffer: no copy is made
//! between the socket and the application.
//!
//! ## Use it alone
//!
//! ```
//! use dotray_codec::{FrameCodec, proto};
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = FrameCodec::new();
//! let ping = proto::Envelope::from(proto::Ping { nonce: 7, sent_at_micros: 1_000 });
//!
//! let mut wire = BytesMut::new();
//! codec.encode(&ping, &mut wire)?;            // 4-byte length + protobuf
//! let decoded = codec.decode(&mut wire)?;     // back to an envelope
//! assert_eq!(decoded, Some(ping));
//! # Ok::<(), dotray_codec::CodecError>(())
//! ```
//!
//! The runnable example `cargo run --example codec_only` sends envelopes over a real TCP socket with
//! nothing but this crate and tokio. The frame format is exactly tokio-util's
//! `LengthDelimitedCodec::new()`, so non-Rust peers can speak it with any length-prefix framer.
#![forbid(unsafe_code)]

mod data_frame;
mod direction;
mod envelope;
mod error;
mod frame;
mod identity;
mod invalid_config;
mod list_bound;
mod node_id;
mod out_frame;
mod recycle;
mod token_bucket;

pub mod generated;

/// The protobuf messages of the dotray wire protocol, generated from `proto/dotray/v1/*.proto`.
///
/// Start from [`proto::Envelope`]: every frame is one. Each body type converts into an envelope with
/// `From`, for example `proto::Envelope::from(proto::Ping { .. })`.
pub mod proto {
    pub use crate::envelope::{BodyKind, Layer};
    pub use crate::generated::envelope::Body;
    pub use crate::generated::*;
}

pub use direction::Direction;
pub use error::CodecError;
pub use frame::{DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, FrameCodec, FrameEncoder, encode_frame};
pub use identity::{PublicKey, SECRET_KEY_LEN, SIGNATURE_LEN, SecretKey};
pub use invalid_config::InvalidConfig;
pub use list_bound::MAX_LIST_ENTRIES;
pub use node_id::{NODE_ID_LEN, NodeId, ParseNodeIdError};
pub use out_frame::{COPY_FRAME_MAX, OutFrame};
pub use recycle::BufferRecycler;
pub use token_bucket::TokenBucket;

/// The wire protocol version this crate speaks (`Hello.protocol_version`). Version 2 runs every
/// connection inside a Noise channel and makes node ids Ed25519 public keys. Version 3 adds signed
/// broadcasts: `Manifest`s prove every payload to be its origin's, and `StreamDecl`s carry the
/// origin's signature. Version 4 gives every broadcast payload a one-byte header, so that a large
/// message can travel as several payloads (`dotray_node::fragment`). Version 5 adds group digests
/// to manifests (`dotray_router::proof::GROUP_LEN`) and gives `Data` a one-byte envelope key. Other
/// versions are refused.
pub const PROTOCOL_VERSION: u32 = 5;
