//! What the Job controller wrote but its pod cache may not show yet: pods
//! it created, pods it deleted, and pods whose tracking finalizer it
//! removed (already counted in the Job status). Until the cache catches
//! up, the Job does not create or delete more pods and does not count
//! those pods again. Only this process's own writes are remembered: after a
//! restart the cache is listed afresh, so there is nothing to wait for.

use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After this long an expectation is dropped (a missed watch event must
/// not wedge a Job forever).
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    /// Names of pods created.
    created: Vec<(String, Instant)>,
    /// (name, uid) of pods deleted.
    deleted: Vec<(String, String, Instant)>,
    /// UIDs of pods whose finalizer was removed.
    finalizer_removed: HashSet<String>,
}

#[derive(Clone, Default)]
pub struct Expectations(Arc<Mutex<HashMap<String, Pending>>>);

impl Expectations {
    fn with<R>(&self, key: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(key.to_string()).or_default())
    }

    pub fn created(&self, key: &str, name: &str) {
        self.with(key, |p| p.created.push((name.to_string(), Instant::now())));
    }

    pub fn deleted(&self, key: &str, name: &str, uid: &str) {
        self.with(key, |p| p.deleted.push((name.to_string(), uid.to_string(), Instant::now())));
    }

    pub fn finalizer_removed(&self, key: &str, uid: &str) {
        self.with(key, |p| {
            p.finalizer_removed.insert(uid.to_string());
        });
    }

    /// True when the cache (`lookup` by pod name) shows every pod created
    /// and every deletion; observed entries are forgotten.
    pub fn satisfied(&self, key: &str, lookup: impl Fn(&str) -> Option<Arc<Pod>>) -> bool {
        self.with(key, |p| {
            p.created.retain(|(name, at)| at.elapsed() < TIMEOUT && lookup(name).is_none());
            p.deleted.retain(|(name, uid, at)| {
                at.elapsed() < TIMEOUT
                    && lookup(name).is_some_and(|pod| pod.metadata.uid.as_deref() == Some(uid.as_str()) && pod.metadata.deletion_timestamp.is_none())
            });
            p.created.is_empty() && p.deleted.is_empty()
        })
    }

    /// UIDs whose finalizer removal the cache does not show yet; entries
    /// the cache confirms (`still_has_finalizer` false) are forgotten.
    pub fn finalizers_removed(&self, key: &str, still_has_finalizer: impl Fn(&str) -> bool) -> HashSet<String> {
        self.with(key, |p| {
            p.finalizer_removed.retain(|uid| still_has_finalizer(uid));
            p.finalizer_removed.clone()
        })
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, deleting: bool) -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.uid = Some(uid.into());
        if deleting {
            p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        }
        Arc::new(p)
    }

    #[test]
    fn waits_for_the_cache_to_show_writes() {
        let e = Expectations::default();
        e.created("ns/j", "j-abcde");
        assert!(!e.satisfied("ns/j", |_| None));
        assert!(e.satisfied("ns/j", |_| Some(pod("u1", false))));
        e.deleted("ns/j", "j-abcde", "u1");
        assert!(!e.satisfied("ns/j", |_| Some(pod("u1", false))));
        assert!(e.satisfied("ns/j", |_| Some(pod("u1", true))));
        e.finalizer_removed("ns/j", "u1");
        assert_eq!(e.finalizers_removed("ns/j", |_| true).len(), 1);
        assert!(e.finalizers_removed("ns/j", |_| false).is_empty());
    }
}
