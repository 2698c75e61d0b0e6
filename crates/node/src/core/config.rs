//! [`Config`]: the protocol settings of a node, one part per core, and [`InvalidConfig`].

/// The protocol settings of a node: its membership core's and its router core's. Every field of
/// both is documented where it is defined, with its default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Views, liveness, peer exchange, healing (see [`dotray_membership::core::Config`]).
    pub membership: dotray_membership::core::Config,
    /// Tree, digests, repair, retention, bounds (see [`dotray_router::core::Config`]).
    pub router: dotray_router::core::Config,
}

impl Config {
    /// Checks both parts.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.membership.validate()?;
        self.router.validate()?;
        Ok(())
    }
}

/// A setting is out of range, or two settings contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidConfig {
    /// In the membership part.
    #[error("membership config: {0}")]
    Membership(#[from] dotray_membership::core::InvalidConfig),
    /// In the router part.
    #[error("router config: {0}")]
    Router(#[from] dotray_router::core::InvalidConfig),
    /// A driver setting that must be positive is zero (see `driver::DriverConfig`).
    #[error("driver config field `{0}` must not be zero")]
    Zero(&'static str),
}
