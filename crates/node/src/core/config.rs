//! [`Config`]: the protocol settings of a node, one part per core, and [`InvalidNodeConfig`], which
//! says which part cannot work.

use dotray_codec::InvalidConfig;

/// The protocol settings of a node: its membership core's and its router core's. Every field of
/// both is documented where it is defined, with its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Views, liveness, peer exchange, healing (see [`dotray_membership::core::Config`]).
    pub membership: dotray_membership::core::Config,
    /// Tree, digests, repair, retention, bounds (see [`dotray_router::core::Config`]).
    pub router: dotray_router::core::Config,
}

impl Config {
    /// Checks both parts.
    pub fn validate(&self) -> Result<(), InvalidNodeConfig> {
        self.membership.validate().map_err(InvalidNodeConfig::Membership)?;
        self.router.validate().map_err(InvalidNodeConfig::Router)
    }
}

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
