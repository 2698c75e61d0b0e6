//! [`NetworkKey`]: the pre-shared key that makes a network private.

use std::fmt;

/// Length of a network key in bytes.
pub const NETWORK_KEY_LEN: usize = 32;

/// A 32-byte secret shared by every node of a private network ([`crate::Config::network_key`]).
///
/// It is mixed into the first message of the Noise handshake (Noise's `psk0` modifier), so a node
/// without it cannot complete a handshake with a member: the member drops its first message without
/// answering, and it learns nothing, not even a node id. It does not identify anyone: each node still
/// proves its own key pair. `{:?}` never shows the bytes.
///
/// ```
/// use dotray_transport::NetworkKey;
/// let key = NetworkKey::generate();
/// assert_eq!(NetworkKey::from_bytes(key.to_bytes()), key);
/// assert_eq!(format!("{key:?}"), "NetworkKey(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkKey([u8; NETWORK_KEY_LEN]);

impl NetworkKey {
    /// A fresh random key, from the thread's cryptographically secure generator.
    pub fn generate() -> Self {
        let mut key = [0u8; NETWORK_KEY_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut key);
        Self(key)
    }

    /// Wraps 32 secret bytes.
    pub const fn from_bytes(key: [u8; NETWORK_KEY_LEN]) -> Self {
        Self(key)
    }

    /// The secret bytes, to store.
    pub const fn to_bytes(&self) -> [u8; NETWORK_KEY_LEN] {
        self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8; NETWORK_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NetworkKey(..)")
    }
}
