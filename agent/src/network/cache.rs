//! The API objects node networking reads: Nodes, Services and
//! EndpointSlices, each in a reflector cache fed by a watch. Readers (the
//! proxy, DNS, routes) take what is in the cache and never wait on the
//! API; a generation counter tells them something changed. Must not:
//! write to the API.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Caches {
    pub nodes: Store<Node>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    /// Bumped on every change of any of them.
    pub changed: watch::Receiver<u64>,
    /// How many of the three have their first list in.
    synced: watch::Receiver<u8>,
}

impl Caches {
    /// The caches, and the future that keeps them filled (run it as long
    /// as they are used).
    pub fn new(client: kube::Client) -> (Caches, impl Future<Output = ()> + Send) {
        let (changed_tx, changed) = watch::channel(0u64);
        let (synced_tx, synced) = watch::channel(0u8);
        let (nodes, f1) = reflect::<Node>(client.clone(), changed_tx.clone(), synced_tx.clone());
        let (services, f2) = reflect::<Service>(client.clone(), changed_tx.clone(), synced_tx.clone());
        let (slices, f3) = reflect::<EndpointSlice>(client, changed_tx, synced_tx);
        let run = async move {
            tokio::join!(f1, f2, f3);
        };
        (Caches { nodes, services, slices, changed, synced }, run)
    }

    /// Waits until every cache has had its first list.
    pub async fn ready(&self) {
        let mut s = self.synced.clone();
        let _ = s.wait_for(|n| *n >= 3).await;
    }

    pub fn is_ready(&self) -> bool {
        *self.synced.borrow() >= 3
    }
}

fn reflect<K>(client: kube::Client, changed: watch::Sender<u64>, synced: watch::Sender<u8>) -> (Store<K>, impl Future<Output = ()> + Send)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, mut writer) = reflector::store::<K>();
    let run = async move {
        let api: kube::Api<K> = kube::Api::all(client);
        let mut events = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|o: &mut K| o.meta_mut().managed_fields = None)
            .boxed();
        let mut counted = false;
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "network: watch failed; retrying");
                    continue;
                }
            };
            writer.apply_watcher_event(&ev);
            match ev {
                watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                watcher::Event::InitDone if !counted => {
                    counted = true;
                    synced.send_modify(|n| *n += 1);
                }
                _ => {}
            }
            changed.send_modify(|g| *g += 1);
        }
    };
    (store, run)
}
