//! The root CA publisher: every active namespace has the ConfigMap
//! `kube-root-ca.crt` with the cluster CA as `ca.crt` (what projected
//! service account volumes mount), kept as published.

use super::{benign, namespace_active};
use crate::admission::service_account::ROOT_CA_CONFIGMAP;
use crate::controllers::queue::{Key, Queue};
use crate::controllers::{run_workers, Context, Error, Requeue};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use std::collections::BTreeMap;

const CONTROLLER: &str = "root-ca-cert-publisher";
pub const DATA_KEY: &str = "ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let (namespaces, configmaps) = (ctx.informers.get::<Namespace>(), root_ca_configmaps(ctx));
    let (tasks, q) = (ctx.tasks.clone(), queue.clone());
    ctx.tasks.spawn(async move {
        namespaces.ready().await;
        configmaps.ready().await;
        namespaces.feed(&tasks, q.clone(), |ns| vec![Key::cluster(ns.metadata.name.as_deref().unwrap_or(""))]);
        configmaps.feed(&tasks, q, |cm| match (cm.metadata.name.as_deref(), cm.metadata.namespace.as_deref()) {
            (Some(ROOT_CA_CONFIGMAP), Some(ns)) => vec![Key::cluster(ns)],
            _ => Vec::new(),
        });
    });
    let ctx2 = ctx.clone();
    run_workers(ctx, CONTROLLER, queue, 1, move |key| reconcile(ctx2.clone(), key));
}

/// Only the `kube-root-ca.crt` ConfigMaps: caching every ConfigMap of the
/// cluster for them would cost memory in proportion to all of them.
fn root_ca_configmaps(ctx: &Context) -> super::super::informer::Informer<ConfigMap> {
    ctx.informers.get_named(ROOT_CA_CONFIGMAP, || {
        kube::runtime::watcher::Config::default().any_semantic().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}"))
    })
}

/// The published ConfigMap's content differs from what it should be.
pub fn needs_update(cm: &ConfigMap, ca_pem: &str) -> bool {
    let want: BTreeMap<String, String> = [(DATA_KEY.to_string(), ca_pem.to_string())].into();
    let described = cm.metadata.annotations.as_ref().and_then(|a| a.get(DESCRIPTION_ANNOTATION)).is_some_and(|d| !d.is_empty());
    cm.data.as_ref() != Some(&want) || !described
}

async fn reconcile(ctx: Context, key: Key) -> Result<Requeue, Error> {
    let Some(issuer) = crate::auth::issuer_for(&ctx.config) else { return Ok(None) };
    let ns_name = key.name.as_str();
    let namespaces = ctx.informers.get::<Namespace>();
    let configmaps = root_ca_configmaps(&ctx);
    namespaces.ready().await;
    configmaps.ready().await;
    if !namespace_active(namespaces.get(None, ns_name).as_deref()) {
        return Ok(None);
    }
    let api = kube::Api::<ConfigMap>::namespaced(ctx.client.clone(), ns_name);
    let data: BTreeMap<String, String> = [(DATA_KEY.to_string(), issuer.ca_pem.clone())].into();
    let result = match configmaps.get(Some(ns_name), ROOT_CA_CONFIGMAP) {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIGMAP.into()),
                    namespace: Some(ns_name.into()),
                    annotations: Some([(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())].into()),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            api.create(&PostParams::default(), &cm).await.map(|_| "created")
        }
        Some(cm) if needs_update(&cm, &issuer.ca_pem) => {
            let mut cm = (*cm).clone();
            cm.data = Some(data);
            cm.metadata.annotations.get_or_insert_with(Default::default).insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
            api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm).await.map(|_| "updated")
        }
        Some(_) => return Ok(None),
    };
    match result {
        Ok(what) => {
            tracing::info!(controller = CONTROLLER, namespace = ns_name, action = what, "published root CA");
            Ok(None)
        }
        Err(e) if benign(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn republishes_changed_or_undescribed_configmaps() {
        let good = ConfigMap {
            metadata: ObjectMeta { annotations: Some([(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())].into()), ..Default::default() },
            data: Some([(DATA_KEY.to_string(), "PEM".to_string())].into()),
            ..Default::default()
        };
        assert!(!needs_update(&good, "PEM"));
        assert!(needs_update(&good, "OTHER"));
        let mut extra = good.clone();
        extra.data.get_or_insert_with(Default::default).insert("x".into(), "y".into());
        assert!(needs_update(&extra, "PEM"));
        let mut bare = good.clone();
        bare.metadata.annotations = None;
        assert!(needs_update(&bare, "PEM"));
    }
}
