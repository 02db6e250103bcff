//! What this controller last wrote, so a reconcile does not act on a cache
//! that has not seen its own writes yet (it would create a second slice for
//! the same pods). Entries expire: a slice someone else removed meanwhile
//! does not hold a Service up for long.

use crate::controllers::queue::Key;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EXPIRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// The cache should hold the slice at this resourceVersion or later.
    AtLeast(u64),
    Gone,
}

/// Per Service: slice name, what is expected of it, since when.
type Expected = HashMap<Key, Vec<(String, Expect, Instant)>>;

#[derive(Clone, Default)]
pub struct Tracker(Arc<Mutex<Expected>>);

impl Tracker {
    pub fn expect(&self, svc: &Key, slice: &str, e: Expect) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = m.entry(svc.clone()).or_default();
        list.retain(|(n, _, _)| n != slice);
        list.push((slice.to_string(), e, Instant::now()));
    }

    /// True while the cache (`cached`: a slice's resourceVersion, if there)
    /// is behind what was written for `svc`.
    pub fn stale(&self, svc: &Key, cached: impl Fn(&str) -> Option<u64>) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = m.get_mut(svc) else { return false };
        list.retain(|(name, e, at)| {
            if at.elapsed() > EXPIRY {
                return false;
            }
            match (e, cached(name)) {
                (Expect::AtLeast(rv), Some(have)) => have < *rv,
                (Expect::AtLeast(_), None) => true,
                (Expect::Gone, Some(_)) => true,
                (Expect::Gone, None) => false,
            }
        });
        let stale = !list.is_empty();
        if !stale {
            m.remove(svc);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_not_yet_in_the_cache_hold_the_service() {
        let t = Tracker::default();
        let k = Key::new(Some("default"), "web");
        t.expect(&k, "web-abcde", Expect::AtLeast(10));
        t.expect(&k, "web-old", Expect::Gone);
        assert!(t.stale(&k, |_| Some(9)), "deleted slice still cached, older version of the other");
        assert!(t.stale(&k, |n| (n == "web-abcde").then_some(9)), "an older version cached");
        assert!(t.stale(&k, |_| None), "created slice not seen");
        assert!(!t.stale(&k, |n| (n == "web-abcde").then_some(10)));
        assert!(!t.stale(&k, |_| None), "satisfied entries are dropped");
    }
}
