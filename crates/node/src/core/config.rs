//! [`Config`]: the protocol settings of a node, one part per core, and [`InvalidNodeConfig`], which
//! says which part cannot work.

use dotray_codec::InvalidConfig;

/// The protocol settings of a node: its membership core's, its router core's, and how application
/// messages map onto router payloads. Every field is documented where it is defined, with its
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Views, liveness, peer exchange, healing (see [`dotray_membership::core::Config`]).
    pub membership: dotray_membership::core::Config,
    /// Tree, digests, repair, retention, bounds (see [`dotray_router::core::Config`]).
    pub router: dotray_router::core::Config,
    /// The longest message `broadcast` accepts, and the longest this node reassembles and delivers
    /// (a longer one is reported lost). Default 16 MiB: the largest blocks and state snapshots of
    /// the blockchains dotray is made for, while a node's memory for partly received messages
    /// ([`Config::max_reassembly_bytes`]) and the retention that repairs them
    /// ([`dotray_router::core::Config::retention_max_bytes`]) still hold several such messages at
    /// once. All nodes of a network should use the same value.
    pub max_message_len: usize,
    /// A message longer than this travels as several payloads of this many bytes (the last one
    /// shorter); see [`crate::fragment`]. Default 256 KiB: a relay forwards a piece as soon as it has
    /// it, so smaller pieces pipeline a large message down the tree, while each piece still costs
    /// only a hash and a 32-byte manifest entry. At most the transport's frame limit less 1 KiB.
    pub fragment_len: usize,
    /// The most memory partly received messages may take at once, all origins together (charged
    /// for the buffers as they grow). When a piece does not fit, the partly received message of
    /// another origin that grew least recently is dropped and reported as a gap. Default 64 MiB; at
    /// least [`Config::max_message_len`].
    pub max_reassembly_bytes: usize,
    /// The longest direct (not broadcast) message a node sends or takes (`send_to`). Default 64 KiB:
    /// direct messages are point-to-point requests and answers, and each waits whole in the
    /// application's event queue until read, so this bounds that queue's memory. A longer one from a
    /// peer is a protocol violation; all nodes of a network should use the same value.
    pub max_direct_len: usize,
    /// Direct message bytes each connected peer may hand this node per second, on average; beyond
    /// its budget its direct messages are dropped (counted in `DriverCounters::directs_dropped`), not
    /// held. Default 256 KiB: requests and answers, not bulk transfer (that is what broadcasts and
    /// their flow control are for). With `direct_burst_bytes` it bounds what one sender can make the
    /// application's event queue hold; the queue's length bounds all senders together.
    pub direct_bytes_per_sec: u32,
    /// Direct message bytes a peer may hand over at once (the bucket's size). Default 1 MiB; at
    /// least `max_direct_len`.
    pub direct_burst_bytes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            membership: Default::default(),
            router: Default::default(),
            max_message_len: 16 << 20,
            fragment_len: 256 << 10,
            max_reassembly_bytes: 64 << 20,
            max_direct_len: 64 << 10,
            direct_bytes_per_sec: 256 << 10,
            direct_burst_bytes: 1 << 20,
        }
    }
}

impl Config {
    /// Checks every part.
    pub fn validate(&self) -> Result<(), InvalidNodeConfig> {
        self.membership.validate().map_err(InvalidNodeConfig::Membership)?;
        self.router.validate().map_err(InvalidNodeConfig::Router)?;
        InvalidConfig::check_nonzero([
            ("max_message_len", self.max_message_len == 0),
            ("fragment_len", self.fragment_len == 0),
            ("max_direct_len", self.max_direct_len == 0),
        ])
        .and_then(|()| {
            InvalidConfig::check(
                self.max_reassembly_bytes >= self.max_message_len,
                "max_reassembly_bytes must hold one message of max_message_len",
            )
        })
        .and_then(|()| {
            InvalidConfig::check(
                self.direct_burst_bytes as usize >= self.max_direct_len,
                "direct_burst_bytes must hold one direct message of max_direct_len",
            )
        })
        .map_err(InvalidNodeConfig::Messages)
    }

    /// Checks that a piece of [`Config::fragment_len`] bytes fits in a frame of `max_frame_len`
    /// bytes with room for its envelope.
    pub fn check_frame_len(&self, max_frame_len: usize) -> Result<(), InvalidNodeConfig> {
        InvalidConfig::check(
            self.fragment_len + FRAME_ROOM <= max_frame_len,
            "fragment_len must be at most the transport's max_frame_len less 1 KiB",
        )
        .map_err(InvalidNodeConfig::Messages)
    }
}

/// Room kept in a frame beside a piece, for its envelope and header.
const FRAME_ROOM: usize = 1024;

/// A node's settings cannot work: which part, and why (each layer's [`InvalidConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidNodeConfig {
    /// The membership part.
    #[error("membership config: {0}")]
    Membership(InvalidConfig),
    /// The router part.
    #[error("router config: {0}")]
    Router(InvalidConfig),
    /// The message settings (`max_message_len`, `fragment_len`, `max_reassembly_bytes`).
    #[error("message config: {0}")]
    Messages(InvalidConfig),
    /// The driver's settings (`driver::DriverConfig`).
    #[error("driver config: {0}")]
    Driver(InvalidConfig),
    /// The signing key is not the key of the node's id.
    #[error("the signing key is not the node's: its id is {signer}, the node's {node}")]
    WrongKey {
        /// The id the key signs for.
        signer: dotray_codec::NodeId,
        /// The node's id.
        node: dotray_codec::NodeId,
    },
}
