//! Inbound connections per remote address: a cap, so that one machine cannot hold every inbound slot.
//!
//! The inbound limit ([`crate::Config::max_inbound`]) bounds file descriptors and memory, but a single
//! host opening sockets that never finish their handshake (each held for up to
//! [`crate::Config::handshake_timeout`]) could take all of it and lock every honest newcomer out.
//! Each remote address may hold at most [`crate::Config::max_inbound_per_address`] inbound
//! connections at once, handshakes included. IPv6 addresses count by their /64 prefix, the block a
//! single site is usually given, so that one host does not become thousands by changing its low
//! bits. Like Bitcoin Core's eviction, it makes slots cost addresses rather than sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The number of inbound connections held per address.
#[derive(Debug, Default)]
pub(crate) struct PerAddress {
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One inbound connection's share of its address's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    counts: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// Takes a slot for `ip` if it holds fewer than `max`.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot { counts: self.clone(), key })
    }

    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.get(&address_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.counts.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// What counts as one address: an IPv4 address (or an IPv4-mapped IPv6 one) whole, an IPv6 address
/// by its /64 prefix.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_holds_at_most_the_cap_and_gets_slots_back() {
        let counts = Arc::new(PerAddress::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let slots: Vec<_> = (0..5).filter_map(|_| counts.take(a, 3)).collect();
        assert_eq!(slots.len(), 3);
        assert!(counts.take(b, 3).is_some(), "another address has its own count");
        drop(slots);
        assert_eq!(counts.held(a), 0);
        assert!(counts.take(a, 3).is_some());
    }

    #[test]
    fn an_ipv6_site_counts_once_and_a_mapped_ipv4_as_itself() {
        let counts = Arc::new(PerAddress::default());
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_site: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_site: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _first = counts.take(one, 1).unwrap();
        assert!(counts.take(same_site, 1).is_none());
        assert!(counts.take(other_site, 1).is_some());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _v4 = counts.take(v4, 1).unwrap();
        assert!(counts.take(mapped, 1).is_none());
    }
}
