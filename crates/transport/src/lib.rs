//! # dotray-transport — TCP connections between dotray nodes
//!
//! The only crate of dotray that touches sockets. It listens on a TCP address and dials others, proves
//! and checks node ids and encrypts every connection in a Noise handshake, and moves [`dotray_codec`]
//! frames through bounded queues. The
//! membership and router layers above see typed [`TransportEvent`]s and never a socket; their protocol
//! logic lives in sans-IO cores that are tested without this crate at all.
//!
//! ## A connection's life
//!
//! 1. **Handshake.** A Noise handshake (`Noise_XX_25519_AESGCM_SHA256`, through the `snow` crate) in
//!    which each side proves the secret key of its node id (an Ed25519 public key; see
//!    [`dotray_codec::SecretKey`]), then each side's `Hello` inside the new channel: network id,
//!    protocol version, advertised listen address, and a random per-process nonce. A different
//!    network id or an unsupported version (a version-1 peer among them) is refused with a `Goodbye`
//!    naming the reason, and both sides get a typed error ([`HandshakeError`]). With a
//!    [`Config::network_key`] the handshake is `XXpsk0`: a node without the key is dropped after its
//!    first message and learns nothing. A dial can name the node id it expects
//!    ([`Transport::connect_to`]); another id fails it. A node that reaches itself (same nonce) drops
//!    the connection. A banned node id (see 4.) is refused with `Goodbye(Banned)`: the refusing side
//!    reports [`HandshakeError::Banned`], the banned side [`HandshakeError::Refused`]. The whole
//!    handshake must finish within [`Config::handshake_timeout`].
//! 2. **One connection per pair.** If two nodes dial each other at the same moment, both keep the same
//!    connection, chosen from their ids alone (see the `registry` module); the other is closed with
//!    `Goodbye(DuplicateConnection)`.
//! 3. **Traffic.** Every byte after the handshake is sealed: frames are encrypted and authenticated
//!    (AES-256-GCM) in chunks of up to 64 KiB, so a chunk that is altered, replayed, reordered or cut
//!    closes the connection before any of it is decoded. A reader task opens chunks and decodes frames
//!    into [`TransportEvent::Frames`] (all that one read completed); a writer task drains a per-peer
//!    queue bounded in bytes ([`Config::max_queue_bytes`]), sealing what is queued into as few chunks
//!    as it fills, one write per batch, with `TCP_NODELAY` set (and the kernel's buffers bounded if
//!    asked: [`Config::socket_receive_buffer`], [`Config::socket_unsent_max`]). [`PeerSender::try_send`]
//!    says [`SendError::QueueFull`] when a peer reads too slowly; [`PeerSender::send`] waits for room.
//!    Both take a [`dotray_codec::OutFrame`], encoded once and queued for as many peers as need it.
//! 4. **Close.** A goodbye, EOF, a protocol violation, no frame within [`Config::idle_timeout`], a
//!    stalled write ([`Config::write_timeout`]), a local [`Transport::disconnect`] or
//!    [`Transport::shutdown`] ends it with one [`TransportEvent::Disconnected`] carrying the
//!    [`DisconnectReason`] (at shutdown, only if the event channel has room for it). A violation is
//!    an invalid frame or a second `Hello` (found here), or anything the layers above report with
//!    [`PeerSender::close_for_violation`]: the peer gets `Goodbye(ProtocolViolation)` saying what, a
//!    `warn` event says it too, and its node id is banned
//!    for [`Config::ban_duration`], doubled for each repeat offence up to [`Config::max_ban_duration`]
//!    ([`Transport::bans`] lists them). Node ids are proven, so a ban falls on the node that offended
//!    and no one can get another node banned. Garbage before the handshake names no node id: it only
//!    closes the connection; so does a chunk that fails authentication, which anyone on the path could
//!    cause ([`DisconnectReason::Unauthentic`]). Nothing is ever banned by IP address, which many
//!    honest nodes may share.
//!
//! ## Limits
//!
//! Every resource a remote peer can make this node spend is capped by a [`Config`] field: inbound and
//! outbound connections (excess sockets are closed at once), inbound connections per remote address
//! ([`Config::max_inbound_per_address`], so one host cannot hold every slot), frame length (checked from the length
//! prefix before allocating; 1 KiB until the handshake is done, and a sealed chunk is at most 64 KiB), queued bytes per peer, time to handshake, idle time, write stall time,
//! events waiting for the layer above (readers wait: TCP back-pressure), and node ids remembered by
//! the ban list ([`Config::max_bans`]).
//!
//! ## Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, SecretKey, proto};
//! use dotray_transport::{Config, Transport, TransportEvent};
//!
//! let local = "127.0.0.1:0".parse()?;
//! let (a, _a_events) = Transport::bind(local, SecretKey::generate(), Config::default()).await?;
//! let (b, mut b_events) = Transport::bind(local, SecretKey::generate(), Config::default()).await?;
//!
//! // A dials B, expecting B's node id; both sides prove their ids in the handshake.
//! let to_b = a.connect_to(b.local_id(), b.local_addr()).await?;
//! assert_eq!(to_b.id, b.local_id());
//! let ping = OutFrame::encode(&proto::Ping { nonce: 7, sent_at_micros: 0 }.into(), DEFAULT_MAX_FRAME_LEN)?;
//! to_b.sender.try_send(&ping)?;
//!
//! loop {
//!     match b_events.recv().await.expect("transport running") {
//!         TransportEvent::Connected(peer) => assert_eq!(peer.id, a.local_id()),
//!         TransportEvent::Frames { peer, frames } => {
//!             assert_eq!(peer, a.local_id());
//!             assert_eq!(frames, vec![proto::Ping { nonce: 7, sent_at_micros: 0 }.into()]);
//!             break;
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "aws-lc")]
mod aead;
mod ban;
mod config;
mod connection;
mod context;
mod error;
mod event;
mod handshake;
mod listener;
mod network_key;
mod noise;
mod out_queue;
mod peer_sender;
mod per_address;
mod reader;
mod registry;
mod sealed;
mod socket;
mod transport;

pub use ban::Ban;
pub use config::{Config, InvalidConfig, MAX_NETWORK_ID_LEN, MAX_WRITE_SLICES};
pub use dotray_codec::Direction;
pub use error::{DialError, DisconnectReason, HandshakeError, SendError, StartError};
pub use event::{ConnectedPeer, TransportEvent};
pub use network_key::{NETWORK_KEY_LEN, NetworkKey};
pub use peer_sender::PeerSender;
pub use transport::{Events, PeerSummary, Transport, TransportStats};
