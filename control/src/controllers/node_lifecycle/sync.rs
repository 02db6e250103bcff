//! Waiting for an informer's first list, and feeding a queue from it,
//! safe with many waiters.
//!
//! kube-runtime's `Store::wait_until_ready` keeps a single waker: of
//! several tasks waiting at once, only the last to poll is woken, the
//! others wait forever. `Informer::ready`/`feed` use it, so with several
//! controllers on one informer some of their feeds never start. These
//! versions look again every 100 ms instead (once ready, at once).
// TODO(lead): fix `Informer::ready` itself and use `feed` again.

use crate::controllers::informer::{Change, Informer};
use crate::controllers::queue::{Key, Queue};
use crate::controllers::Tasks;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;
use tokio::sync::broadcast;

/// Wait until the informer's first list is in its cache.
pub async fn ready<K>(informer: &Informer<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    loop {
        if tokio::time::timeout(Duration::from_millis(100), informer.store.wait_until_ready()).await.is_ok() {
            return;
        }
    }
}

/// As `Informer::feed`: the keys `map` gives for every object that
/// changes, and for every cached object at start and after a resync.
pub fn feed<K, F>(informer: &Informer<K>, tasks: &Tasks, queue: Queue, map: F)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(&K) -> Vec<Key> + Send + Sync + 'static,
{
    let mut rx = informer.subscribe();
    let me = informer.clone();
    tasks.spawn(async move {
        ready(&me).await;
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
                Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => all(&queue),
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
