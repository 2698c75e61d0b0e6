//! Hash maps with a hasher keyed from the injected rng: deterministic under a seeded rng (so seeded
//! simulations replay exactly, which `std`'s per-process random keys would break) and still keyed, so
//! a hostile peer who cannot see our hashes cannot pick stream ids that collide.
//!
//! The hash is foldhash (the one hashbrown uses by default), seeded with the key: the router looks up
//! stream and node ids several times per message, and SipHash was the largest single cost in the
//! end-to-end benchmark's profile.

use std::collections::HashMap;
use std::hash::BuildHasher;

use foldhash::fast::{FixedState, FoldHasher};

/// A `BuildHasher` keyed with a secret seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedState(pub(crate) u64);

impl BuildHasher for KeyedState {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FixedState::with_seed(self.0).build_hasher()
    }
}

/// A `HashMap` with a [`KeyedState`] hasher.
pub(crate) type KeyedMap<K, V> = HashMap<K, V, KeyedState>;
