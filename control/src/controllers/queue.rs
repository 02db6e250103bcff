//! A work queue of object keys, as client-go's: a key waits at most once,
//! a key being worked on is not handed to a second worker, and a key added
//! while it is worked on is handed out again afterwards.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// `namespace/name` (or `name` for cluster-scoped objects).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: Option<String>,
    pub name: String,
}

impl Key {
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self { namespace: namespace.map(str::to_string), name: name.to_string() }
    }
    pub fn cluster(name: &str) -> Self {
        Self { namespace: None, name: name.to_string() }
    }
    pub fn of<K: kube::Resource>(obj: &K) -> Self {
        let m = obj.meta();
        Self { namespace: m.namespace.clone(), name: m.name.clone().unwrap_or_default() }
    }
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Key>,
    waiting: HashSet<Key>,
    working: HashSet<Key>,
    dirty: HashSet<Key>,
}

#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl Queue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, key: Key) {
        let mut s = self.lock();
        if s.working.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.waiting.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Add `key` once `delay` has passed.
    pub fn add_after(&self, key: Key, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// The next key to work on; call [`Queue::done`] with it afterwards.
    pub async fn next(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.waiting.remove(&key);
                    s.working.insert(key.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    pub fn done(&self, key: &Key) {
        let mut s = self.lock();
        s.working.remove(key);
        if s.dirty.remove(key) && s.waiting.insert(key.clone()) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_waits_once_and_is_not_handed_out_twice() {
        let q = Queue::new();
        let a = Key::new(Some("ns"), "a");
        q.add(a.clone());
        q.add(a.clone());
        assert_eq!(q.len(), 1);
        let got = q.next().await;
        assert_eq!(got, a);
        q.add(a.clone());
        assert_eq!(q.len(), 0, "a key being worked on is not queued a second time");
        q.done(&got);
        assert_eq!(q.len(), 1, "a key added while worked on comes back afterwards");
        assert_eq!(q.next().await, a);
    }
}
