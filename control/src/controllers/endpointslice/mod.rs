//! The EndpointSlice controller (discovery.k8s.io/v1): for each Service
//! with a selector, slices `<service>-<random>` listing the pods it selects
//! with their conditions (ready, serving, terminating), node, zone and
//! target, grouped by the ports they serve, at most 100 to a slice, owned
//! by the Service and labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`.
//!
//! Owns: the slices labelled as managed by this controller. Must not: touch
//! other slices (the API server keeps the `kubernetes` Service's own slice,
//! users may write slices for Services without selectors) or Endpoints.

mod plan;
mod tracker;

use super::endpoints::pods;
use super::queue::{Key, Queue};
use super::{Context, Error, Requeue};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use plan::{MANAGED_BY, SERVICE_NAME};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracker::{Expect, Tracker};

const COMPONENT: &str = "endpointslice-controller";

pub fn start(ctx: &Context) {
    let queue = Queue::new();
    let services = ctx.informers.get::<Service>();
    let pods_inf = ctx.informers.get::<Pod>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let nodes = ctx.informers.get::<Node>();
    services.feed_self(&ctx.tasks, queue.clone());
    {
        let services = services.clone();
        let slices = slices.clone();
        pods_inf.feed(&ctx.tasks, queue.clone(), move |pod| {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("");
            services_of_pod(pod, &services.list_in(ns), &slices.list_in(ns))
        });
    }
    slices.feed(&ctx.tasks, queue.clone(), |s| service_of(s).into_iter().collect());
    {
        let slices = slices.clone();
        nodes.feed(&ctx.tasks, queue.clone(), move |node| services_with_stale_zone(node, &slices.list()));
    }
    let tracker = Tracker::default();
    let c = ctx.clone();
    super::run_workers(ctx, COMPONENT, queue, 2, move |key| {
        let c = c.clone();
        let tracker = tracker.clone();
        async move { reconcile(&c, &tracker, key).await }
    });
}

fn managed(s: &EndpointSlice) -> bool {
    s.metadata.labels.as_ref().and_then(|l| l.get(MANAGED_BY)).map(String::as_str) == Some(plan::CONTROLLER)
}

/// The Service a slice of this controller belongs to.
fn service_of(s: &EndpointSlice) -> Option<Key> {
    if !managed(s) {
        return None;
    }
    let svc = s.metadata.labels.as_ref()?.get(SERVICE_NAME)?;
    Some(Key::new(s.metadata.namespace.as_deref(), svc))
}

fn services_of_pod(pod: &Pod, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Vec<Key> {
    let mut keys = pods::selecting(pod, services);
    let name = pod.metadata.name.as_deref();
    for s in slices {
        if s.endpoints.iter().any(|e| e.target_ref.as_ref().and_then(|r| r.name.as_deref()) == name) {
            keys.extend(service_of(s));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

fn services_with_stale_zone(node: &Node, slices: &[Arc<EndpointSlice>]) -> Vec<Key> {
    let name = node.metadata.name.as_deref();
    let zone = node.metadata.labels.as_ref().and_then(|l| l.get(plan::ZONE));
    let mut keys: Vec<Key> = slices
        .iter()
        .filter(|s| s.endpoints.iter().any(|e| e.node_name.as_deref() == name && e.zone.as_ref() != zone))
        .filter_map(|s| service_of(s))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn rv(s: &EndpointSlice) -> Option<u64> {
    s.metadata.resource_version.as_deref().and_then(|v| v.parse().ok())
}

async fn reconcile(ctx: &Context, tracker: &Tracker, key: Key) -> Result<Requeue, Error> {
    let services = ctx.informers.get::<Service>();
    let pods_inf = ctx.informers.get::<Pod>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let nodes = ctx.informers.get::<Node>();
    services.ready().await;
    pods_inf.ready().await;
    slices.ready().await;
    nodes.ready().await;
    let ns_slices: Vec<Arc<EndpointSlice>> =
        slices.list_in(key.ns()).into_iter().filter(|s| service_of(s).as_ref() == Some(&key)).collect();
    if tracker.stale(&key, |name| ns_slices.iter().find(|s| s.metadata.name.as_deref() == Some(name)).and_then(|s| rv(s))) {
        return Ok(Some(Duration::from_millis(100)));
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), key.ns());
    let svc = services.get_key(&key);
    let wanted = svc.as_ref().filter(|s| {
        pods::selector(s).is_some() && s.metadata.deletion_timestamp.is_none() && s.spec.as_ref().and_then(|sp| sp.type_.as_deref()) != Some("ExternalName")
    });
    let Some(svc) = wanted else {
        // Gone, or no longer selecting pods: its slices go too.
        for s in &ns_slices {
            delete(&api, tracker, &key, s).await?;
        }
        return Ok(None);
    };
    let uid = svc.metadata.uid.as_deref().unwrap_or("");
    let (owned, foreign): (Vec<_>, Vec<_>) = ns_slices.into_iter().partition(|s| super::util::is_controlled_by(&s.metadata, uid));
    for s in &foreign {
        // Left from an earlier Service of the same name.
        delete(&api, tracker, &key, s).await?;
    }
    let selected = pods::selected(svc, &pods_inf.list_in(key.ns()));
    let zone_of = |n: &str| nodes.get(None, n).map(|node| node.metadata.labels.as_ref().and_then(|l| l.get(plan::ZONE)).cloned());
    let (groups, missing_nodes) = plan::desired(svc, &selected, zone_of);
    let mut annotations = BTreeMap::new();
    if let Some(t) = pods::trigger_time(svc, &selected) {
        annotations.insert(pods::TRIGGER_TIME.to_string(), pods::format_trigger(t));
    }
    let todo = plan::plan(svc, groups, &owned, annotations);
    let again = (missing_nodes > 0).then_some(Duration::from_secs(5));
    if todo.is_empty() {
        return Ok(again);
    }
    if let Err(e) = apply(&api, tracker, &key, todo).await {
        if !e.is_conflict() && !e.is_not_found() {
            let msg = format!("Error updating Endpoint Slices for Service {key}: {e}");
            ctx.events.publish(svc.as_ref(), COMPONENT, super::events::EventType::Warning, "FailedToUpdateEndpointSlices", &msg).await;
        }
        return Err(e);
    }
    Ok(again)
}

async fn delete(api: &Api<EndpointSlice>, tracker: &Tracker, key: &Key, s: &EndpointSlice) -> Result<(), Error> {
    let name = s.metadata.name.clone().unwrap_or_default();
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            tracker.expect(key, &name, Expect::Gone);
            tracing::debug!(service = %key, slice = %name, "endpoint slice deleted");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A slice as sent: with `endpoints: null` when it has none, as upstream's
/// controller writes its placeholder slices.
fn wire(s: &EndpointSlice) -> Result<DynamicObject, Error> {
    let mut v = serde_json::to_value(s).map_err(|e| Error::Other(format!("encoding endpoint slice: {e}")))?;
    if s.endpoints.is_empty() {
        v["endpoints"] = serde_json::Value::Null;
    }
    serde_json::from_value(v).map_err(|e| Error::Other(format!("encoding endpoint slice: {e}")))
}

async fn apply(api: &Api<EndpointSlice>, tracker: &Tracker, key: &Key, todo: plan::Plan) -> Result<(), Error> {
    let dynamic: Api<DynamicObject> = Api::namespaced_with(api.clone().into_client(), key.ns(), &ApiResource::erase::<EndpointSlice>(&()));
    let rv_of = |o: &DynamicObject| o.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
    for s in todo.update {
        let name = s.metadata.name.clone().unwrap_or_default();
        let out = dynamic.replace(&name, &PostParams::default(), &wire(&s)?).await?;
        if let Some(v) = rv_of(&out) {
            tracker.expect(key, &name, Expect::AtLeast(v));
        }
    }
    for s in todo.create {
        let out = dynamic.create(&PostParams::default(), &wire(&s)?).await?;
        if let (Some(name), Some(v)) = (out.metadata.name.as_deref(), rv_of(&out)) {
            tracker.expect(key, name, Expect::AtLeast(v));
            tracing::debug!(service = %key, slice = %name, endpoints = s.endpoints.len(), "endpoint slice created");
        }
    }
    for s in &todo.delete {
        delete(api, tracker, key, s).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::endpoints::pods::fixtures::{pod, service};
    use serde_json::json;

    fn slice(name: &str, svc: &str, managed_by: &str, pod: &str, node: &str, zone: Option<&str>) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "labels": {SERVICE_NAME: svc, MANAGED_BY: managed_by}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.42.0.5"], "nodeName": node, "zone": zone, "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}}],
            }))
            .expect("slice"),
        )
    }

    #[test]
    fn changes_map_to_the_services_concerned() {
        let ours = slice("web-abcde", "web", plan::CONTROLLER, "a", "n1", None);
        let theirs = slice("kubernetes", "kubernetes", "someone-else", "a", "n1", None);
        assert_eq!(service_of(&ours), Some(Key::new(Some("default"), "web")));
        assert_eq!(service_of(&theirs), None);
        let p = pod("a", json!({"app": "db"}), "10.42.0.5", true);
        let db = Arc::new(service("db", json!({"selector": {"app": "db"}})));
        let names: Vec<String> = services_of_pod(&p, &[db], &[ours.clone(), theirs]).into_iter().map(|k| k.name).collect();
        assert_eq!(names, vec!["db", "web"]);
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {plan::ZONE: "z1"}}})).expect("node");
        assert_eq!(services_with_stale_zone(&node, &[ours]).len(), 1);
    }
}
