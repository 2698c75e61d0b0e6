//! [`NodeId`]: the fixed-size random identity of a dotray node.

use std::fmt;
use std::str::FromStr;

/// Length of a node id in bytes.
pub const NODE_ID_LEN: usize = 16;

/// The identity of a node: 16 random bytes, chosen when the node starts unless configured.
///
/// A node is known by its id, not by its address: one node reached as `localhost:2000` and
/// `127.0.0.1:2000` is still one node, which is what keeps messages from looping. 128 random bits make a
/// collision between independently started nodes vanishingly unlikely.
///
/// Displayed as 32 lowercase hex digits; `{:?}` shows the first 8 for logs.
///
/// ```
/// use dotray_codec::NodeId;
/// let id = NodeId::random();
/// let text = id.to_string();
/// assert_eq!(text.len(), 32);
/// assert_eq!(text.parse::<NodeId>()?, id);
/// # Ok::<(), dotray_codec::ParseNodeIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; NODE_ID_LEN]);

impl NodeId {
    /// Wraps 16 bytes.
    pub const fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random id from the operating system's generator.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A random id from the given generator (for deterministic simulations).
    pub fn random_from(rng: &mut impl rand::Rng) -> Self {
        Self(rng.random())
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// Reads an id from a wire field, which must hold exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; NODE_ID_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// The id as a wire field.
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 32 hex digits")]
pub struct ParseNodeIdError;

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != NODE_ID_LEN * 2 {
            return Err(ParseNodeIdError);
        }
        let mut out = [0u8; NODE_ID_LEN];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(ParseNodeIdError)?;
            let lo = hex_value(pair[1]).ok_or(ParseNodeIdError)?;
            out[i] = hi << 4 | lo;
        }
        Ok(Self(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let id = NodeId::from_bytes(*b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\xff");
        assert_eq!(id.to_string(), "000102030405060708090a0b0c0d0eff");
        assert_eq!("000102030405060708090A0B0C0D0EFF".parse::<NodeId>(), Ok(id));
        assert_eq!(format!("{id:?}"), "00010203");
    }

    #[test]
    fn rejects_bad_text_and_bad_lengths() {
        assert_eq!("00".parse::<NodeId>(), Err(ParseNodeIdError));
        assert_eq!("zz0102030405060708090a0b0c0d0eff".parse::<NodeId>(), Err(ParseNodeIdError));
        assert_eq!(NodeId::from_slice(&[0; 15]), None);
        assert_eq!(NodeId::from_slice(&[0; 17]), None);
        assert!(NodeId::from_slice(&[7; 16]).is_some());
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(NodeId::random(), NodeId::random());
    }
}
