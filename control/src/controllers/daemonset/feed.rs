//! Waiting for informer caches and feeding work queues from them, safe
//! with many concurrent waiters.
//!
//! kube-runtime's `Store::wait_until_ready` (behind `Informer::ready` and
//! `Informer::feed`) keeps a single waker: of several tasks waiting on the
//! same informer at once, only the last to poll is woken, the others wait
//! forever. Several controllers share the Pod informer, so a feed or a
//! reconcile could hang at start. These versions poll instead. (Once
//! `informer.rs` does the same, they can go.)

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
    while tokio::time::timeout(Duration::from_millis(50), informer.ready()).await.is_err() {}
}

/// `Informer::feed`: the keys `map` gives for every object that changes,
/// and for every cached object at start and after a resync.
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    #[derive(Default)]
    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// The kube-runtime behaviour worked around here: of two waiters on
    /// one store, only the last to poll is woken when it becomes ready;
    /// polling again (what [`super::ready`] does) sees it ready.
    #[test]
    fn only_the_last_waiter_on_a_store_is_woken() {
        let (store, mut writer) = kube::runtime::reflector::store::<k8s_openapi::api::core::v1::Pod>();
        let (a, b) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut first = pin!(store.wait_until_ready());
        let mut second = pin!(store.wait_until_ready());
        assert!(first.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
        assert!(second.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        assert!(b.0.load(Ordering::SeqCst), "the last waiter is woken");
        assert!(!a.0.load(Ordering::SeqCst), "the first waiter is not");
        assert!(matches!(first.as_mut().poll(&mut Context::from_waker(&wa)), Poll::Ready(Ok(()))));
        assert!(matches!(second.as_mut().poll(&mut Context::from_waker(&wb)), Poll::Ready(Ok(()))));
    }
}
