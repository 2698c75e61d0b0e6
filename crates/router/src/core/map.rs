//! Hash maps with a hasher keyed from the injected rng: deterministic under a seeded rng (so seeded
//! simulations replay exactly, which `std`'s per-process random keys would break) and still keyed, so
//! a hostile peer cannot pick stream ids that collide.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasher, Hasher};

/// A `BuildHasher` that prefixes every hash with a secret key (SipHash over `key || value`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedState(pub(crate) u64);

impl BuildHasher for KeyedState {
    type Hasher = DefaultHasher;

    fn build_hasher(&self) -> DefaultHasher {
        // `DefaultHasher::new()` is specified to be identical for every instance; the key makes it ours.
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(self.0);
        hasher
    }
}

/// A `HashMap` with a [`KeyedState`] hasher.
pub(crate) type KeyedMap<K, V> = HashMap<K, V, KeyedState>;
