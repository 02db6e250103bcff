//! The serviceaccount controller: every active namespace has a ServiceAccount
//! named `default`, made again if deleted.

use super::{benign, namespace_active};
use crate::controllers::queue::{Key, Queue};
use crate::controllers::{run_workers, Context, Error, Requeue};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;

pub const NAME: &str = "default";
const CONTROLLER: &str = "serviceaccount-controller";

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let (tasks, q) = (ctx.tasks.clone(), queue.clone());
    ctx.tasks.spawn(async move {
        // Feed only once the caches are filled (see `ready`).
        namespaces.ready().await;
        accounts.ready().await;
        namespaces.feed(&tasks, q.clone(), |ns| vec![Key::cluster(ns.metadata.name.as_deref().unwrap_or(""))]);
        accounts.feed(&tasks, q, |sa| match (sa.metadata.name.as_deref(), sa.metadata.namespace.as_deref()) {
            (Some(NAME), Some(ns)) => vec![Key::cluster(ns)],
            _ => Vec::new(),
        });
    });
    let ctx2 = ctx.clone();
    run_workers(ctx, CONTROLLER, queue, 1, move |key| reconcile(ctx2.clone(), key));
}

async fn reconcile(ctx: Context, key: Key) -> Result<Requeue, Error> {
    let ns_name = key.name.as_str();
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    namespaces.ready().await;
    accounts.ready().await;
    if !namespace_active(namespaces.get(None, ns_name).as_deref()) || accounts.get(Some(ns_name), NAME).is_some() {
        return Ok(None);
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta { name: Some(NAME.into()), namespace: Some(ns_name.into()), ..Default::default() },
        ..Default::default()
    };
    match kube::Api::<ServiceAccount>::namespaced(ctx.client.clone(), ns_name).create(&PostParams::default(), &sa).await {
        Ok(_) => {
            tracing::info!(controller = CONTROLLER, namespace = ns_name, "created default service account");
            Ok(None)
        }
        Err(e) if benign(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
