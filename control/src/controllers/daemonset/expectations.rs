//! Creations and deletions a DaemonSet sync made that the pod cache does
//! not show yet (upstream's `ControllerExpectations`). Daemon pods get
//! generated names, so until the cache catches up a second sync could
//! create a second pod for the same node; a sync waits instead.
//!
//! Only in memory: after a restart the informers list everything before
//! the first sync, so there is nothing to wait for. An expectation not met
//! within [`TTL`] is dropped (the cache will have resynced by then).

use crate::controllers::informer::Informer;
use crate::controllers::queue::Key;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Pending {
    creates: HashSet<String>,
    /// pod name -> uid
    deletes: HashMap<String, String>,
    since: Option<Instant>,
}

#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<Key, Pending>>,
}

impl Expectations {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Key, Pending>) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn created(&self, key: &Key, pod: &str) {
        self.with(|m| {
            let p = m.entry(key.clone()).or_default();
            p.creates.insert(pod.to_string());
            p.since = Some(Instant::now());
        });
    }

    pub fn deleted(&self, key: &Key, pod: &str, uid: &str) {
        self.with(|m| {
            let p = m.entry(key.clone()).or_default();
            p.deletes.insert(pod.to_string(), uid.to_string());
            p.since = Some(Instant::now());
        });
    }

    /// The pod informer saw `pod` (created, changed or deleted).
    pub fn observed(&self, key: &Key, pod: &str) {
        self.with(|m| {
            if let Some(p) = m.get_mut(key) {
                p.creates.remove(pod);
            }
        });
    }

    pub fn forget(&self, key: &Key) {
        self.with(|m| {
            m.remove(key);
        });
    }

    /// True when the cache shows everything this key's syncs did (or the
    /// wait timed out).
    pub fn satisfied(&self, key: &Key, pods: &Informer<Pod>) -> bool {
        self.with(|m| {
            let Some(p) = m.get_mut(key) else { return true };
            p.creates.retain(|name| pods.get(key.namespace.as_deref(), name).is_none());
            p.deletes.retain(|name, uid| match pods.get(key.namespace.as_deref(), name) {
                Some(pod) => pod.metadata.uid.as_deref() == Some(uid.as_str()) && pod.metadata.deletion_timestamp.is_none(),
                None => false,
            });
            let done = (p.creates.is_empty() && p.deletes.is_empty()) || p.since.map(|s| s.elapsed() > TTL).unwrap_or(true);
            if done {
                m.remove(key);
            }
            done
        })
    }
}
