//! [`KeyCache`]: the public keys of the origins a node verifies, each parsed once.
//!
//! Parsing a key (decompressing its curve point) is about a tenth of a signature check, and a node
//! checks many manifests of each origin it hears. The cache is a plain memo: when it holds
//! [`KEY_CACHE_LEN`] keys it starts over, so a peer that names ever new origins costs at most the parse
//! per check that a node without a cache would pay, and the cache's memory stays bounded.

use dotray_codec::{NodeId, PublicKey};
use foldhash::{HashMap, HashMapExt};

/// The most origins whose parsed keys one node keeps (about 200 bytes each).
pub(crate) const KEY_CACHE_LEN: usize = 4_096;

/// Parsed public keys by node id; `None` for an id that is no usable key.
#[derive(Debug)]
pub(crate) struct KeyCache {
    keys: HashMap<NodeId, Option<PublicKey>>,
}

impl KeyCache {
    pub(crate) fn new() -> Self {
        Self { keys: HashMap::new() }
    }

    /// `id`'s parsed key, parsing it on first use.
    pub(crate) fn get(&mut self, id: &NodeId) -> Option<PublicKey> {
        if let Some(key) = self.keys.get(id) {
            return *key;
        }
        if self.keys.len() >= KEY_CACHE_LEN {
            self.keys.clear();
        }
        let key = id.public_key();
        self.keys.insert(*id, key);
        key
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use dotray_codec::SecretKey;

    use super::*;

    #[test]
    fn a_key_is_parsed_once_and_the_cache_stays_bounded() {
        let mut cache = KeyCache::new();
        let key = SecretKey::from_bytes([3; 32]);
        assert_eq!(cache.get(&key.node_id()).map(|k| k.node_id()), Some(key.node_id()));
        assert_eq!(cache.get(&key.node_id()).map(|k| k.node_id()), Some(key.node_id()));
        assert_eq!(cache.len(), 1);
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(cache.get(&NodeId::from_bytes(off_curve)).is_none());
        for i in 0..KEY_CACHE_LEN as u32 + 10 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            cache.get(&NodeId::from_bytes(bytes));
            assert!(cache.len() <= KEY_CACHE_LEN);
        }
        assert!(cache.get(&key.node_id()).is_some(), "parsed again after the cache started over");
    }
}
