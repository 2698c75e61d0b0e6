//! [`NodeId`]: the identity of a dotray node, which is its Ed25519 public key.

use std::fmt;
use std::str::FromStr;

/// Length of a node id in bytes.
pub const NODE_ID_LEN: usize = 32;

/// The identity of a node: the 32-byte Ed25519 public key of its [`SecretKey`](crate::SecretKey).
///
/// A node is known by its id, not by its address: one node reached as `localhost:2000` and
/// `127.0.0.1:2000` is still one node, which is what keeps messages from looping. Because the id is a
/// public key, a node proves it in every handshake (the transport's Noise handshake carries a
/// signature by the matching secret key), and nobody else can claim it. A node that keeps its key
/// (a key file) is the same node after a restart.
///
/// Displayed as 64 lowercase hex digits, the form to copy; `{:?}` shows the first 8 for logs.
///
/// ```
/// use dotray_codec::{NodeId, SecretKey};
/// let id = SecretKey::generate().node_id();
/// let text = id.to_string();
/// assert_eq!(text.len(), 64);
/// assert_eq!(text.parse::<NodeId>()?, id);
/// # Ok::<(), dotray_codec::ParseNodeIdError>(())
/// ```
#[derive(Clone, Copy, Eq)]
pub struct NodeId([u8; NODE_ID_LEN]);

impl NodeId {
    /// The id as two 128-bit halves, big-endian: what equality and order compare and hashing reads,
    /// in two machine operations each instead of a call to `memcmp` or a 32-byte hash loop (ids are
    /// map keys on every message's path). Comparing the halves orders ids as their bytes.
    #[inline]
    fn halves(&self) -> (u128, u128) {
        let (a, b) = self.0.split_at(NODE_ID_LEN / 2);
        let half = |bytes: &[u8]| u128::from_be_bytes(bytes.try_into().unwrap_or_default());
        (half(a), half(b))
    }
}

impl PartialEq for NodeId {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.halves() == other.halves()
    }
}

impl Ord for NodeId {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.halves().cmp(&other.halves())
    }
}

impl PartialOrd for NodeId {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hashes the first 128 bits only. Ids are public keys, so they are spread evenly; and because the
/// maps that hold them use keyed hashers, colliding ids would have to share a 128-bit prefix, which
/// takes about 2^64 key generations to find for a pair. Equal ids hash equally, as `Hash` requires.
impl std::hash::Hash for NodeId {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.halves().0);
    }
}

impl NodeId {
    /// Wraps 32 bytes. Whether they are a valid public key is checked where it matters: in the
    /// handshake, and by [`NodeId::verify`].
    pub const fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The id of a fresh random key, for tests and simulations that need an id and never a key.
    pub fn random() -> Self {
        crate::SecretKey::generate().node_id()
    }

    /// The id of a key drawn from the given generator (deterministic simulations replay it).
    pub fn random_from(rng: &mut impl rand::Rng) -> Self {
        crate::SecretKey::from_bytes(rng.random()).node_id()
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// Reads an id from a wire field, which must hold exactly 32 bytes.
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

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 64 hex digits")]
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
        let mut bytes = [0u8; NODE_ID_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        bytes[NODE_ID_LEN - 1] = 0xff;
        let id = NodeId::from_bytes(bytes);
        let text = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff";
        assert_eq!(id.to_string(), text);
        assert_eq!(text.to_uppercase().parse::<NodeId>(), Ok(id));
        assert_eq!(format!("{id:?}"), "00010203");
    }

    #[test]
    fn rejects_bad_text_and_bad_lengths() {
        assert_eq!("00".parse::<NodeId>(), Err(ParseNodeIdError));
        let bad_digit = format!("zz{}", "0".repeat(62));
        assert_eq!(bad_digit.parse::<NodeId>(), Err(ParseNodeIdError));
        assert_eq!("0".repeat(32).parse::<NodeId>(), Err(ParseNodeIdError), "a version-1 id is too short");
        assert_eq!(NodeId::from_slice(&[0; 16]), None);
        assert_eq!(NodeId::from_slice(&[0; 33]), None);
        assert!(NodeId::from_slice(&[7; 32]).is_some());
    }

    #[test]
    fn equality_reads_every_byte_and_equal_ids_hash_alike() {
        use std::hash::BuildHasher;
        let base = NodeId::from_bytes([9; NODE_ID_LEN]);
        for i in 0..NODE_ID_LEN {
            let mut bytes = [9; NODE_ID_LEN];
            bytes[i] ^= 1;
            assert_ne!(NodeId::from_bytes(bytes), base, "byte {i}");
        }
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(base), hasher.hash_one(NodeId::from_bytes([9; NODE_ID_LEN])));
        // Ordered as their bytes, whichever byte differs.
        for i in 0..NODE_ID_LEN {
            let (mut low, mut high) = ([5; NODE_ID_LEN], [5; NODE_ID_LEN]);
            high[i] = 6;
            low[NODE_ID_LEN - 1 - i.min(NODE_ID_LEN - 1)] = 0xff;
            low[i] = 4;
            assert_eq!(NodeId::from_bytes(low).cmp(&NodeId::from_bytes(high)), low.cmp(&high), "byte {i}");
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(NodeId::random(), NodeId::random());
    }
}
