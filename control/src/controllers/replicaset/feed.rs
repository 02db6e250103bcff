//! Feeding work queues from the shared informers, like
//! [`Informer::feed`], but waiting for the first list in a way that works
//! with many waiters: kube-runtime's `Store::wait_until_ready` wakes only
//! the last task that polled it, so with several controllers on one
//! informer the others would wait forever. Here the wait polls again
//! every 50 ms (once the store is ready, any poll sees it).

use super::super::informer::{Change, Informer};
use super::super::queue::{Key, Queue};
use super::super::Tasks;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// Wait until the informer's first list is in its cache.
pub async fn wait_ready<K>(informer: &Informer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    while tokio::time::timeout(Duration::from_millis(50), informer.ready()).await.is_err() {}
}

/// Add the keys `map` gives for every cached object once the cache is
/// ready (and again after a resync), and for every object that changes.
pub fn feed<K, F>(informer: &Informer<K>, tasks: &Tasks, queue: Queue, map: F)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(&K) -> Vec<Key> + Send + Sync + 'static,
{
    let mut rx = informer.subscribe();
    let me = informer.clone();
    tasks.spawn(async move {
        wait_ready(&me).await;
        let all = |q: &Queue| {
            for o in me.list() {
                for k in map(&o) {
                    q.add(k);
                }
            }
        };
        all(&queue);
        loop {
            match rx.recv().await {
                Ok(Change::Applied(o)) | Ok(Change::Deleted(o)) => {
                    for k in map(&o) {
                        queue.add(k);
                    }
                }
                Ok(Change::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => all(&queue),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
