//! What a ReplicaSet is still waiting to see after its own writes: the
//! pods it created that are not yet in the cache, and the pods it deleted
//! that the cache still shows alive (client-go's "expectations", kept by
//! pod name rather than by count).
//!
//! While any is pending the ReplicaSet does not create or delete pods, so
//! a lagging cache never causes duplicates. It is only memory: after a
//! restart there is nothing pending and the first full list of the pod
//! informer is the whole truth. Entries older than five minutes are
//! dropped, as upstream does, so a lost watch event cannot wedge a set.

use super::super::queue::Key;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

/// How the cache shows a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Absent,
    Alive,
    Terminating,
}

#[derive(Default)]
pub struct Expectations {
    map: Mutex<HashMap<Key, Pending>>,
}

impl Expectations {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Pending>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry<'a>(map: &'a mut HashMap<Key, Pending>, key: &Key) -> &'a mut Pending {
        let p = map
            .entry(key.clone())
            .or_insert_with(|| Pending { creates: HashSet::new(), deletes: HashSet::new(), since: Instant::now() });
        p.since = Instant::now();
        p
    }

    pub fn expect_creates(&self, key: &Key, names: &[String]) {
        let mut map = self.lock();
        Self::entry(&mut map, key).creates.extend(names.iter().cloned());
    }

    pub fn expect_deletes(&self, key: &Key, names: &[String]) {
        let mut map = self.lock();
        Self::entry(&mut map, key).deletes.extend(names.iter().cloned());
    }

    /// A write that failed will never be observed.
    pub fn cancel(&self, key: &Key, name: &str) {
        if let Some(p) = self.lock().get_mut(key) {
            p.creates.remove(name);
            p.deletes.remove(name);
        }
    }

    /// The informer showed `name` (controlled by `key`) in state `seen`.
    pub fn observed(&self, key: &Key, name: &str, seen: Seen) {
        if let Some(p) = self.lock().get_mut(key) {
            p.creates.remove(name);
            if seen != Seen::Alive {
                p.deletes.remove(name);
            }
        }
    }

    pub fn forget(&self, key: &Key) {
        self.lock().remove(key);
    }

    /// True when nothing is pending for `key` once the cache (`seen`) is
    /// taken into account.
    pub fn satisfied(&self, key: &Key, seen: impl Fn(&str) -> Seen) -> bool {
        let mut map = self.lock();
        let Some(p) = map.get_mut(key) else { return true };
        p.creates.retain(|n| seen(n) == Seen::Absent);
        p.deletes.retain(|n| seen(n) == Seen::Alive);
        if (p.creates.is_empty() && p.deletes.is_empty()) || p.since.elapsed() > TTL {
            map.remove(key);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_writes_hold_a_set_until_the_cache_shows_them() {
        let e = Expectations::default();
        let k = Key::new(Some("ns"), "web");
        assert!(e.satisfied(&k, |_| Seen::Absent), "nothing pending at start (or after a restart)");
        e.expect_creates(&k, &["web-a".into(), "web-b".into()]);
        assert!(!e.satisfied(&k, |_| Seen::Absent));
        assert!(!e.satisfied(&k, |n| if n == "web-a" { Seen::Alive } else { Seen::Absent }));
        e.observed(&k, "web-b", Seen::Terminating);
        assert!(e.satisfied(&k, |_| Seen::Absent), "web-a was seen in the cache before, web-b by an event");
        e.expect_deletes(&k, &["web-a".into()]);
        assert!(!e.satisfied(&k, |_| Seen::Alive));
        assert!(e.satisfied(&k, |_| Seen::Terminating));
        e.expect_creates(&k, &["web-c".into()]);
        e.cancel(&k, "web-c");
        assert!(e.satisfied(&k, |_| Seen::Absent), "a failed create is not waited for");
    }
}
