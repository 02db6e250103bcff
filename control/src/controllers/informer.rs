//! Shared informers: one list+watch per resource type for all controllers
//! of the process, a cache (kube-runtime's reflector store) to read from,
//! and a broadcast of changes to turn into work-queue keys.

use super::queue::{Key, Queue};
use super::Tasks;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// What a subscriber hears about.
#[derive(Debug, Clone)]
pub enum Change<K> {
    Applied(Arc<K>),
    /// The last state seen of an object that is gone.
    Deleted(Arc<K>),
    /// The cache was rebuilt from a fresh list (some deletions may have
    /// been missed): look at everything again.
    Resync,
}

pub struct Informer<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    tx: broadcast::Sender<Change<K>>,
    /// True once the first list is in the cache. (kube-runtime's own
    /// readiness future wakes only one of several waiters.)
    synced: tokio::sync::watch::Receiver<bool>,
}

impl<K: kube::Resource<DynamicType = ()> + Clone + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), tx: self.tx.clone(), synced: self.synced.clone() }
    }
}

/// Bound of the change broadcast; a subscriber that falls further behind
/// resyncs from the cache instead.
const CHANGES: usize = 8192;

impl<K> Informer<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn start(client: kube::Client, tasks: &Tasks, config: watcher::Config) -> Self {
        let (store, mut writer) = reflector::store::<K>();
        let (tx, _) = broadcast::channel(CHANGES);
        let api: kube::Api<K> = kube::Api::all(client);
        let sender = tx.clone();
        let reader = store.clone();
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        tasks.spawn(async move {
            // managedFields are for field owners, not controllers: dropping
            // them from the cache saves a good part of its memory (as
            // client-go's informer transforms do).
            let mut events = watcher(api, config)
                .default_backoff()
                .modify(|o: &mut K| o.meta_mut().managed_fields = None)
                .boxed();
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                        continue;
                    }
                };
                writer.apply_watcher_event(&ev);
                let change = match ev {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        let cached = reader.get(&reflector::ObjectRef::from_obj(&o));
                        Change::Applied(cached.unwrap_or_else(|| Arc::new(o)))
                    }
                    watcher::Event::Delete(o) => Change::Deleted(Arc::new(o)),
                    watcher::Event::InitDone => {
                        synced_tx.send_replace(true);
                        Change::Resync
                    }
                    watcher::Event::Init => continue,
                };
                let _ = sender.send(change);
            }
        });
        Self { store, tx, synced }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.tx.subscribe()
    }

    /// Wait until the first list is in the cache.
    pub async fn ready(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let mut r = reflector::ObjectRef::new(name);
        if let Some(ns) = namespace {
            r = r.within(ns);
        }
        self.store.get(&r)
    }

    pub fn get_key(&self, key: &Key) -> Option<Arc<K>> {
        self.get(key.namespace.as_deref(), &key.name)
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    pub fn list_in(&self, namespace: &str) -> Vec<Arc<K>> {
        self.store.state_filter(|o| o.meta().namespace.as_deref() == Some(namespace))
    }

    /// Feed `queue` with the keys `map` gives for every object that changes,
    /// and for every cached object at start and after a resync.
    pub fn feed<F>(&self, tasks: &Tasks, queue: Queue, map: F)
    where
        F: Fn(&K) -> Vec<Key> + Send + Sync + 'static,
    {
        let mut rx = self.subscribe();
        let me = self.clone();
        tasks.spawn(async move {
            me.ready().await;
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

    /// Feed `queue` with each object's own key.
    pub fn feed_self(&self, tasks: &Tasks, queue: Queue) {
        self.feed(tasks, queue, |o| vec![Key::of(o)]);
    }
}

/// Informers by (object type, selection name), type-erased.
type InformerMap = HashMap<(TypeId, &'static str), Box<dyn Any + Send + Sync>>;

/// The informers of one process, created on first use.
pub struct Informers {
    client: kube::Client,
    tasks: Tasks,
    map: Mutex<InformerMap>,
}

impl Informers {
    pub fn new(client: kube::Client, tasks: Tasks) -> Self {
        Self { client, tasks, map: Mutex::new(HashMap::new()) }
    }

    /// The shared informer of every `K`.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.get_named("", || watcher::Config::default().any_semantic())
    }

    /// A shared informer of the `K`s a watch config selects (a field or
    /// label selector), named so users of the same selection share it: a
    /// controller that needs one object per namespace does not cache all.
    pub fn get_named<K>(&self, name: &'static str, config: impl FnOnce() -> watcher::Config) -> Informer<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let key = (TypeId::of::<K>(), name);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = map.get(&key).and_then(|b| b.downcast_ref::<Informer<K>>()) {
            return i.clone();
        }
        let informer = Informer::<K>::start(self.client.clone(), &self.tasks, config());
        map.insert(key, Box::new(informer.clone()));
        informer
    }
}
