//! [`PeerAddr`]: an address as a user types it — `ip:port`, or a host name and port — and
//! [`SeedAddr`], a seed named either way.
//!
//! Protocol cores work on resolved [`SocketAddr`]s. A name is resolved by the driver's side: once
//! when the node starts, and again whenever a dial of the address it gave fails, so a seed whose
//! name moves to another address is found there (see [`crate::driver`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;

use dotray_codec::NodeId;
use dotray_membership::core::{ParseSeedError, Seed, split_seed, write_seed};

/// An address to listen on or connect to: a socket address, or `host:port` text resolved when it
/// is used (`localhost:2000`, `seed.example.org:2000`, `[::1]:2000`).
///
/// ```
/// use dotray_node::PeerAddr;
/// let by_ip = PeerAddr::from("127.0.0.1:2000".parse::<std::net::SocketAddr>().unwrap());
/// let by_name = PeerAddr::from("localhost:2000");
/// assert_eq!(by_ip.to_string(), "127.0.0.1:2000");
/// assert_eq!(by_name.to_string(), "localhost:2000");
/// assert!(by_name.socket_addr().is_none(), "a name is resolved when used");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IP address and port.
    Socket(SocketAddr),
    /// `host:port` text: a host name (or an IP in text) and a port, resolved when used.
    Name(String),
}

impl PeerAddr {
    /// The socket address, if this is one (a name must be resolved first).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Socket(addr) => Some(*addr),
            Self::Name(_) => None,
        }
    }

    /// Resolves the address: itself for a socket address, a DNS (or hosts file) lookup for a name.
    /// Of several addresses, the first IPv4 one is taken if there is one (a host name like
    /// `localhost` often names both `::1` and `127.0.0.1`, and nodes listen on IPv4 by default),
    /// else the first.
    pub async fn resolve(&self) -> Result<SocketAddr, ResolveError> {
        let name = match self {
            Self::Socket(addr) => return Ok(*addr),
            Self::Name(name) => name,
        };
        let failed = |error: io::Error| ResolveError { addr: name.clone(), error: error.to_string() };
        let found: Vec<SocketAddr> = tokio::net::lookup_host(name.as_str()).await.map_err(failed)?.collect();
        found
            .iter()
            .find(|a| a.is_ipv4())
            .or(found.first())
            .copied()
            .ok_or_else(|| failed(io::Error::new(io::ErrorKind::NotFound, "the name has no address")))
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self::Socket(addr)
    }
}

impl From<&str> for PeerAddr {
    /// `ip:port` becomes [`PeerAddr::Socket`]; anything else is kept as a name, checked when it is
    /// resolved.
    fn from(text: &str) -> Self {
        match text.parse() {
            Ok(addr) => Self::Socket(addr),
            Err(_) => Self::Name(text.to_owned()),
        }
    }
}

impl From<String> for PeerAddr {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(addr) => write!(f, "{addr}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// An address that does not resolve: malformed (no port), unknown name, or no address for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve {addr:?} (write host:port, e.g. localhost:2000): {error}")]
pub struct ResolveError {
    /// The address as given.
    pub addr: String,
    /// What the resolver said.
    pub error: String,
}

/// A seed as the user names it: an address or a host name, and optionally the node id expected
/// there. Written `host:port`, `ip:port`, or either behind `id@` with the id as 64 hex digits.
///
/// ```
/// use dotray_node::SeedAddr;
/// let seed: SeedAddr = "localhost:2000".parse()?;
/// assert_eq!((seed.addr.to_string(), seed.node), ("localhost:2000".to_owned(), None));
/// # Ok::<(), dotray_membership::core::ParseSeedError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeedAddr {
    /// Where to connect.
    pub addr: PeerAddr,
    /// The node id that must answer there, if known.
    pub node: Option<NodeId>,
}

impl SeedAddr {
    /// Resolves the address into a [`Seed`] for the membership core.
    pub async fn resolve(&self) -> Result<Seed, ResolveError> {
        Ok(Seed { addr: self.addr.resolve().await?, node: self.node })
    }
}

impl From<Seed> for SeedAddr {
    fn from(seed: Seed) -> Self {
        Self { addr: PeerAddr::Socket(seed.addr), node: seed.node }
    }
}

impl From<SocketAddr> for SeedAddr {
    fn from(addr: SocketAddr) -> Self {
        Self { addr: PeerAddr::Socket(addr), node: None }
    }
}

impl From<PeerAddr> for SeedAddr {
    fn from(addr: PeerAddr) -> Self {
        Self { addr, node: None }
    }
}

impl From<&str> for SeedAddr {
    /// Like [`PeerAddr`]'s: the text is checked when the node starts. Use [`str::parse`] to check
    /// an `id@` prefix at once.
    fn from(text: &str) -> Self {
        text.parse().unwrap_or_else(|_| Self { addr: PeerAddr::Name(text.to_owned()), node: None })
    }
}

impl fmt::Display for SeedAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_seed(f, self.node, &self.addr)
    }
}

impl FromStr for SeedAddr {
    type Err = ParseSeedError;

    /// The same written form as [`Seed`]'s ([`split_seed`]), with a host name allowed in place of
    /// the ip.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node, addr) = split_seed(s)?;
        let port = addr.rsplit_once(':').map(|(_, port)| port);
        if port.is_none_or(|port| port.parse::<u16>().is_err()) {
            return Err(ParseSeedError::BAD_ADDRESS);
        }
        Ok(Self { addr: PeerAddr::from(addr), node })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parses_into_addresses_and_names() {
        assert_eq!(PeerAddr::from("127.0.0.1:9"), PeerAddr::Socket("127.0.0.1:9".parse().unwrap()));
        assert_eq!(PeerAddr::from("[::1]:9"), PeerAddr::Socket("[::1]:9".parse().unwrap()));
        assert_eq!(PeerAddr::from("localhost:9"), PeerAddr::Name("localhost:9".to_owned()));
        let pinned: SeedAddr = format!("{}@localhost:9", "ab".repeat(32)).parse().unwrap();
        assert_eq!(pinned.addr, PeerAddr::Name("localhost:9".to_owned()));
        assert!(pinned.node.is_some());
        assert_eq!(pinned.to_string(), format!("{}@localhost:9", "ab".repeat(32)));
        for bad in ["localhost", "localhost:", "localhost:99999", "zz@localhost:9"] {
            assert!(bad.parse::<SeedAddr>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn names_resolve_and_bad_ones_are_a_clear_error() {
        let local = PeerAddr::from("localhost:2000").resolve().await.expect("localhost resolves");
        assert!(local.ip().is_loopback() && local.port() == 2000, "{local}");
        assert!(local.is_ipv4(), "IPv4 preferred: {local}");
        let plain = PeerAddr::from("127.0.0.1:5");
        assert_eq!(plain.resolve().await, Ok("127.0.0.1:5".parse().unwrap()));
        for bad in ["localhost", "localhost:port"] {
            let error = PeerAddr::from(bad).resolve().await.expect_err(bad);
            assert_eq!(error.addr, bad);
        }
    }
}
