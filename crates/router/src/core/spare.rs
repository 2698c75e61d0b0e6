//! Giving back the spare room of collections that grew in a burst. Neither a `VecDeque` nor a
//! `HashMap` ever shrinks by itself, so a node that once tracked thousands of streams (a flood of
//! new origins, a burst of traffic) would keep room for them for good. The sweep calls these, so
//! the cost (a copy or a rehash of what is left) comes at most once a sweep and only after the
//! collection emptied to a quarter of its room.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Below this many slots of room nothing is given back: not worth a copy.
const KEEP_ROOM: usize = 64;

/// Shrinks `deque` to twice its length once it uses less than a quarter of its room.
pub(crate) fn trim_deque<T>(deque: &mut VecDeque<T>) {
    if deque.capacity() > KEEP_ROOM.max(4 * deque.len()) {
        deque.shrink_to(KEEP_ROOM.max(2 * deque.len()));
    }
}

/// Shrinks `map` to twice its length once it uses less than a quarter of its room.
pub(crate) fn trim_map<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > KEEP_ROOM.max(4 * map.len()) {
        map.shrink_to(KEEP_ROOM.max(2 * map.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_given_back_only_when_mostly_unused() {
        let mut deque: VecDeque<u64> = (0..10_000).collect();
        deque.truncate(5_000);
        trim_deque(&mut deque);
        assert!(deque.capacity() >= 10_000, "half used: kept");
        deque.truncate(100);
        trim_deque(&mut deque);
        assert!(deque.capacity() < 1_000, "a hundredth used: given back, {}", deque.capacity());
        assert_eq!(deque.iter().copied().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());

        let mut map: HashMap<u64, u64> = (0..10_000).map(|k| (k, k)).collect();
        map.retain(|k, _| *k < 100);
        trim_map(&mut map);
        assert!(map.capacity() < 1_000, "{}", map.capacity());
        assert_eq!(map.len(), 100);
    }
}
