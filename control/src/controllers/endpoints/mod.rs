//! The endpoints controller: for each Service with a selector, an
//! Endpoints object of the same name listing the addresses of the pods it
//! selects (ready ones in `addresses`, others in `notReadyAddresses`),
//! grouped by the ports they serve. Endpoints of a deleted Service go with
//! it; Services without a selector keep the Endpoints users write.
//!
//! Owns: Endpoints of Services with selectors. Must not: touch
//! EndpointSlices ([`super::endpointslice`]) or the `kubernetes` Service's
//! Endpoints (the API server keeps those; that Service has no selector).

pub mod pods;
pub mod subsets;

use super::queue::{Key, Queue};
use super::{Context, Error, Requeue};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

const COMPONENT: &str = "endpoint-controller";
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Endpoints used as leader-election locks carry this and are not ours.
const LEADER: &str = "control-plane.alpha.kubernetes.io/leader";

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    services.feed_self(&ctx.tasks, queue.clone());
    {
        let services = services.clone();
        let endpoints = endpoints.clone();
        pods.feed(&ctx.tasks, queue.clone(), move |pod| services_of_pod(pod, &services.list_in(pod_ns(pod)), &endpoints.list_in(pod_ns(pod))));
    }
    {
        // Someone changed or deleted Endpoints of a Service: put them back.
        let services = services.clone();
        endpoints.feed(&ctx.tasks, queue.clone(), move |ep| {
            let key = Key::of(ep);
            if services.get_key(&key).is_some() {
                vec![key]
            } else {
                Vec::new()
            }
        });
    }
    {
        // At start, Endpoints left behind by Services deleted meanwhile.
        let (services, endpoints, queue) = (services.clone(), endpoints.clone(), queue.clone());
        ctx.tasks.spawn(async move {
            services.ready().await;
            endpoints.ready().await;
            for ep in endpoints.list() {
                let leader = ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER));
                if !leader && services.get_key(&Key::of(ep.as_ref())).is_none() {
                    queue.add(Key::of(ep.as_ref()));
                }
            }
        });
    }
    let c = ctx.clone();
    super::run_workers(ctx, COMPONENT, queue, 2, move |key| {
        let c = c.clone();
        async move { reconcile(&c, key).await }
    });
}

fn pod_ns(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("")
}

/// The Services a pod change concerns: those selecting it now, and those
/// whose Endpoints list it (it may have stopped matching).
fn services_of_pod(pod: &Pod, services: &[Arc<Service>], endpoints: &[Arc<Endpoints>]) -> Vec<Key> {
    let mut keys = pods::selecting(pod, services);
    let name = pod.metadata.name.as_deref();
    for ep in endpoints {
        let lists = ep.subsets.iter().flatten().any(|s| {
            s.addresses.iter().chain(s.not_ready_addresses.iter()).flatten().any(|a| a.target_ref.as_ref().and_then(|r| r.name.as_deref()) == name)
        });
        if lists {
            keys.push(Key::of(ep.as_ref()));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The labels the Endpoints of `svc` carry: the Service's, and the
/// headless marker for a headless Service.
fn labels_for(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if pods::is_headless(svc) {
        labels.insert(pods::HEADLESS.into(), String::new());
    } else {
        labels.remove(pods::HEADLESS);
    }
    labels
}

async fn reconcile(ctx: &Context, key: Key) -> Result<Requeue, Error> {
    let services = ctx.informers.get::<Service>();
    let pod_informer = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    services.ready().await;
    pod_informer.ready().await;
    endpoints.ready().await;
    tracing::debug!(service = %key, cached = services.get_key(&key).is_some(), "syncing endpoints");
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), key.ns());
    let Some(svc) = services.get_key(&key) else {
        if endpoints.get_key(&key).is_some() {
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(endpoints = %key, "deleted endpoints of a deleted service"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(None);
    };
    if pods::selector(&svc).is_none() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let selected = pods::selected(&svc, &pod_informer.list_in(key.ns()));
    let desired = subsets::desired(&svc, &selected);
    let labels = labels_for(&svc);
    let current = endpoints.get_key(&key);
    let over = |ep: &Endpoints| ep.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(OVER_CAPACITY));
    if let Some(cur) = &current {
        let same_subsets = cur.subsets.clone().unwrap_or_default() == desired.subsets;
        let same_labels = cur.metadata.labels.clone().unwrap_or_default() == labels;
        if same_subsets && same_labels && over(cur) == desired.truncated {
            return Ok(None);
        }
    }
    let mut annotations = current.as_ref().and_then(|c| c.metadata.annotations.clone()).unwrap_or_default();
    match pods::trigger_time(&svc, &selected) {
        Some(t) => annotations.insert(pods::TRIGGER_TIME.into(), pods::format_trigger(t)),
        None => annotations.remove(pods::TRIGGER_TIME),
    };
    if desired.truncated {
        annotations.insert(OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    let mut ep = Endpoints {
        metadata: kube::api::ObjectMeta {
            name: Some(key.name.clone()),
            namespace: Some(key.ns().to_string()),
            labels: Some(labels),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..Default::default()
        },
        subsets: Some(desired.subsets).filter(|s| !s.is_empty()),
    };
    let result = match &current {
        Some(cur) => {
            ep.metadata.resource_version = cur.metadata.resource_version.clone();
            ep.metadata.owner_references = cur.metadata.owner_references.clone();
            ep.metadata.finalizers = cur.metadata.finalizers.clone();
            api.replace(&key.name, &PostParams::default(), &ep).await
        }
        None => api.create(&PostParams::default(), &ep).await,
    };
    match result {
        Ok(_) => {
            tracing::debug!(endpoints = %key, "endpoints updated");
            Ok(None)
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Err(Error::Kube(kube::Error::Api(s))),
        Err(e) => {
            let msg = format!("Failed to update endpoint {key}: {e}");
            ctx.events.publish(svc.as_ref(), COMPONENT, super::events::EventType::Warning, "FailedToUpdateEndpoint", &msg).await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pods::fixtures::{pod, service};
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_changes_reach_selecting_services_and_those_listing_the_pod() {
        let web = Arc::new(service("web", json!({"selector": {"app": "web"}})));
        let other = Arc::new(service("other", json!({"selector": {"app": "other"}})));
        let p = pod("a", json!({"app": "web"}), "10.42.0.5", true);
        let old: Endpoints = serde_json::from_value(json!({"metadata": {"name": "other", "namespace": "default"},
            "subsets": [{"notReadyAddresses": [{"ip": "10.42.0.5", "targetRef": {"kind": "Pod", "name": "a", "namespace": "default"}}]}]}))
        .expect("endpoints");
        let keys = services_of_pod(&p, &[web, other], &[Arc::new(old)]);
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, vec!["other", "web"]);
    }

    #[test]
    fn headless_services_label_their_endpoints() {
        let svc = service("db", json!({"clusterIP": "None", "selector": {"a": "b"}}));
        assert_eq!(labels_for(&svc).get(pods::HEADLESS).map(String::as_str), Some(""));
        assert!(labels_for(&service("web", json!({}))).is_empty());
    }
}
