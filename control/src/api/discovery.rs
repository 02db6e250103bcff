//! Discovery documents: `/api`, `/apis`, per group and group-version, and
//! aggregated discovery (apidiscovery.k8s.io/v2) that kubectl asks for first.

use crate::registry::{Resource, Table};
use serde_json::{json, Value};
use std::sync::Arc;

pub const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Does the Accept header ask for aggregated discovery?
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p = part.replace(' ', "");
        p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") && p.contains("v=v2") && !p.contains("v=v2beta1")
    })
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn groups(table: &Table) -> Value {
    let groups: Vec<Value> = table.groups().iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_doc(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(table: &Table, name: &str) -> Option<Value> {
    let (g, v) = table.groups().into_iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(&g, &v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// (subresource, kind group, kind version, kind, verbs)
fn subresources(r: &Resource) -> Vec<(String, String, String, String, Vec<&'static str>)> {
    let mut out = Vec::new();
    let same = |sub: &str, verbs: Vec<&'static str>| (sub.to_string(), r.group.clone(), r.version.clone(), r.kind.clone(), verbs);
    if r.status {
        out.push(same("status", vec!["get", "patch", "update"]));
    }
    if r.scale.is_some() {
        out.push(("scale".into(), "autoscaling".into(), "v1".into(), "Scale".into(), vec!["get", "patch", "update"]));
    }
    for sub in &r.extra_subresources {
        let entry = match *sub {
            "log" => ("log".into(), String::new(), "v1".into(), "Pod".into(), vec!["get"]),
            "exec" => ("exec".into(), String::new(), "v1".into(), "PodExecOptions".into(), vec!["create", "get"]),
            "attach" => ("attach".into(), String::new(), "v1".into(), "PodAttachOptions".into(), vec!["create", "get"]),
            "portforward" => ("portforward".into(), String::new(), "v1".into(), "PodPortForwardOptions".into(), vec!["create", "get"]),
            "binding" => ("binding".into(), String::new(), "v1".into(), "Binding".into(), vec!["create"]),
            "eviction" => ("eviction".into(), "policy".into(), "v1".into(), "Eviction".into(), vec!["create"]),
            "ephemeralcontainers" => same("ephemeralcontainers", vec!["get", "patch", "update"]),
            "token" => ("token".into(), "authentication.k8s.io".into(), "v1".into(), "TokenRequest".into(), vec!["create"]),
            "proxy" => {
                let kind = format!("{}ProxyOptions", r.kind);
                ("proxy".into(), String::new(), "v1".into(), kind, vec!["create", "delete", "get", "patch", "update"])
            }
            "finalize" => same("finalize", vec!["update"]),
            "approval" => same("approval", vec!["get", "patch", "update"]),
            other => same(other, vec!["get"]),
        };
        out.push(entry);
    }
    out
}

pub fn resource_list(table: &Table, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    let mut any = false;
    for r in table.in_group_version(group, version) {
        any = true;
        let mut doc = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            doc["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            doc["categories"] = json!(r.categories);
        }
        resources.push(doc);
        for (sub, g, v, kind, verbs) in subresources(r) {
            let mut doc = json!({"name": format!("{}/{}", r.plural, sub), "singularName": "", "namespaced": r.namespaced, "kind": kind, "verbs": verbs});
            if g != r.group || v != r.version {
                doc["group"] = json!(g);
                doc["version"] = json!(v);
            }
            resources.push(doc);
        }
    }
    if !any {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

fn aggregated_resource(r: &Arc<Resource>) -> Value {
    let mut doc = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        doc["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        doc["categories"] = json!(r.categories);
    }
    let subs: Vec<Value> = subresources(r)
        .into_iter()
        .map(|(sub, g, v, kind, verbs)| json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs}))
        .collect();
    if !subs.is_empty() {
        doc["subresources"] = json!(subs);
    }
    doc
}

/// Aggregated discovery for the core group (`core == true`, `/api`) or all named groups (`/apis`).
pub fn aggregated(table: &Table, core: bool) -> Value {
    let mut items = Vec::new();
    for (group, versions) in table.groups() {
        if group.is_empty() != core {
            continue;
        }
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> = table.in_group_version(&group, v).map(aggregated_resource).collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let metadata = if group.is_empty() { json!({"creationTimestamp": null}) } else { json!({"name": group, "creationTimestamp": null}) };
        items.push(json!({"metadata": metadata, "versions": vs}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
