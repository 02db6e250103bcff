//! A range of numbers handed out once each (service IPs as `u32`, node
//! ports), with the owner (a Service's uid) of every allocated one.
//!
//! As upstream, a request for any free value is served from the upper part
//! of the range first, at a random place, so the lower band stays free for
//! values users ask for by number (10.43.0.10 for DNS, say).

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeError {
    NotInRange,
    Allocated,
    Full,
}

#[derive(Debug, Clone)]
pub struct Range {
    /// First value of the range.
    base: u32,
    /// How many values it has.
    size: u32,
    /// Values below `base + band` are given out only when the upper part is full.
    band: u32,
    used: HashMap<u32, String>,
}

impl Range {
    pub fn new(base: u32, size: u32, band: u32) -> Self {
        Self { base, size, band: band.min(size), used: HashMap::new() }
    }

    /// The usable addresses of an IPv4 network (without the network and
    /// broadcast addresses), with a lower band of size/16 kept between 16 and 256.
    pub fn for_network(network: std::net::Ipv4Addr, prefix: u8) -> Self {
        let total: u64 = 1u64 << (32 - u32::from(prefix.min(32)));
        let (base, size) = if total > 2 { (u32::from(network).saturating_add(1), (total - 2) as u32) } else { (u32::from(network), total as u32) };
        Self::new(base, size, (size / 16).clamp(16, 256))
    }

    /// Ports `from..=to`, with a lower band of size/32 kept between 16 and 128.
    pub fn for_ports(from: u16, to: u16) -> Self {
        let size = u32::from(to.saturating_sub(from)) + 1;
        Self::new(u32::from(from), size, (size / 32).clamp(16, 128))
    }

    pub fn contains(&self, v: u32) -> bool {
        v >= self.base && u64::from(v) < u64::from(self.base) + u64::from(self.size)
    }

    pub fn owner(&self, v: u32) -> Option<&str> {
        self.used.get(&v).map(String::as_str)
    }

    pub fn used(&self) -> usize {
        self.used.len()
    }

    /// Take `v` for `owner`; true when newly taken, false when `owner` already had it.
    pub fn allocate(&mut self, v: u32, owner: &str) -> Result<bool, RangeError> {
        if !self.contains(v) {
            return Err(RangeError::NotInRange);
        }
        match self.used.get(&v) {
            Some(o) if o == owner => Ok(false),
            Some(_) => Err(RangeError::Allocated),
            None => {
                self.used.insert(v, owner.to_string());
                Ok(true)
            }
        }
    }

    /// Take any free value for `owner`; `random` picks where to start looking.
    pub fn allocate_next(&mut self, owner: &str, random: u64) -> Result<u32, RangeError> {
        let upper = (self.band, self.size);
        let lower = (0, self.band);
        for (from, to) in [upper, lower] {
            let len = to - from;
            if len == 0 {
                continue;
            }
            let start = (random % u64::from(len)) as u32;
            for i in 0..len {
                let offset = from + (start + i) % len;
                let v = self.base + offset;
                if let std::collections::hash_map::Entry::Vacant(e) = self.used.entry(v) {
                    e.insert(owner.to_string());
                    return Ok(v);
                }
            }
        }
        Err(RangeError::Full)
    }

    /// Give `v` back if `owner` has it.
    pub fn release(&mut self, v: u32, owner: &str) {
        if self.used.get(&v).map(|o| o == owner).unwrap_or(false) {
            self.used.remove(&v);
        }
    }

    /// The values `owner` has.
    pub fn owned_by(&self, owner: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self.used.iter().filter(|(_, o)| *o == owner).map(|(v, _)| *v).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn networks_leave_out_network_and_broadcast_addresses() {
        let r = Range::for_network(Ipv4Addr::new(10, 43, 0, 0), 16);
        assert!(!r.contains(u32::from(Ipv4Addr::new(10, 43, 0, 0))));
        assert!(r.contains(u32::from(Ipv4Addr::new(10, 43, 0, 1))));
        assert!(r.contains(u32::from(Ipv4Addr::new(10, 43, 255, 254))));
        assert!(!r.contains(u32::from(Ipv4Addr::new(10, 43, 255, 255))));
        assert!(!r.contains(u32::from(Ipv4Addr::new(1, 2, 3, 4))));
    }

    #[test]
    fn any_free_value_comes_from_the_upper_band_first_and_never_twice() {
        let mut r = Range::for_ports(30000, 30099);
        let mut seen = std::collections::HashSet::new();
        for i in 0..100u64 {
            let v = r.allocate_next("svc", i.wrapping_mul(7919)).expect("free value");
            assert!((30000..=30099).contains(&v));
            if i < 84 {
                assert!(v >= 30016, "upper band first, got {v}");
            }
            assert!(seen.insert(v), "{v} handed out twice");
        }
        assert_eq!(r.allocate_next("svc", 1), Err(RangeError::Full));
    }

    #[test]
    fn asked_for_values_are_checked_and_released_only_by_their_owner() {
        let mut r = Range::for_ports(30000, 32767);
        assert_eq!(r.allocate(30080, "a"), Ok(true));
        assert_eq!(r.allocate(30080, "a"), Ok(false));
        assert_eq!(r.allocate(30080, "b"), Err(RangeError::Allocated));
        assert_eq!(r.allocate(80, "b"), Err(RangeError::NotInRange));
        r.release(30080, "b");
        assert_eq!(r.owner(30080), Some("a"));
        r.release(30080, "a");
        assert_eq!(r.allocate(30080, "b"), Ok(true));
        assert_eq!(r.owned_by("b"), vec![30080]);
    }
}
