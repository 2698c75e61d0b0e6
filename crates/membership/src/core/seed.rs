//! [`Seed`]: an address to join the network through, and the node id expected there if it is known.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use dotray_codec::NodeId;

/// A node to join the network through: its address, and optionally its node id. With an id, a
/// connection to the address counts only if the node there proves that id (the transport's handshake),
/// so a seed address taken over by someone else is not joined.
///
/// Written `ip:port`, or `id@ip:port` with the id as 64 hex digits:
///
/// ```
/// use dotray_membership::core::Seed;
/// let plain: Seed = "127.0.0.1:2000".parse()?;
/// assert_eq!(plain.node, None);
/// let text = format!("{}@127.0.0.1:2000", "ab".repeat(32));
/// let pinned: Seed = text.parse()?;
/// assert_eq!(pinned.to_string(), text);
/// # Ok::<(), dotray_membership::core::ParseSeedError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seed {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The node id that must answer there, if known.
    pub node: Option<NodeId>,
}

impl From<SocketAddr> for Seed {
    fn from(addr: SocketAddr) -> Self {
        Self { addr, node: None }
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_seed(f, self.node, &self.addr)
    }
}

/// Seed text that does not parse: a malformed `id@` prefix, or an address without a port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a seed is ip:port (or host:port where names are taken), optionally behind id@ (the id as 64 hex digits): {0}"
)]
pub struct ParseSeedError(&'static str);

impl ParseSeedError {
    /// The address part is not an address.
    pub const BAD_ADDRESS: Self = Self("bad address");
}

impl FromStr for Seed {
    type Err = ParseSeedError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node, addr) = split_seed(s)?;
        let addr = addr.parse().map_err(|_| ParseSeedError::BAD_ADDRESS)?;
        Ok(Self { addr, node })
    }
}

/// The written form of a seed, shared by every type that names one: `id@address`, or the address
/// alone. Splits off the node id, if there is one, and returns it with the address text.
pub fn split_seed(text: &str) -> Result<(Option<NodeId>, &str), ParseSeedError> {
    match text.split_once('@') {
        Some((id, addr)) => Ok((Some(id.parse().map_err(|_| ParseSeedError("bad node id"))?), addr)),
        None => Ok((None, text)),
    }
}

/// Writes a seed in the form [`split_seed`] reads.
pub fn write_seed(f: &mut fmt::Formatter<'_>, node: Option<NodeId>, addr: &dyn fmt::Display) -> fmt::Result {
    match node {
        Some(id) => write!(f, "{id}@{addr}"),
        None => write!(f, "{addr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_text_is_refused() {
        assert!("127.0.0.1".parse::<Seed>().is_err());
        assert!("zz@127.0.0.1:1".parse::<Seed>().is_err());
        assert!(format!("{}@", "00".repeat(32)).parse::<Seed>().is_err());
        assert_eq!("[::1]:9".parse::<Seed>().unwrap().addr, "[::1]:9".parse().unwrap());
    }
}
