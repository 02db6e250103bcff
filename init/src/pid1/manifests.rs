//! The machine config's extra manifests, applied when the server starts
//! (like k3s' manifests directory): every document of every file is
//! created or updated by server-side apply with field manager
//! `coracle-manifests` (forced: the machine config is the owner of what
//! it says). Documents that cannot be applied yet (a CRD not there yet,
//! the API still starting) are retried until they are.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use std::collections::BTreeMap;
use std::time::Duration;

pub const FIELD_MANAGER: &str = "coracle-manifests";

/// One document to apply, named for the logs.
#[derive(Debug, Clone)]
pub struct Doc {
    pub origin: String,
    pub gvk: GroupVersionKind,
    pub name: String,
    pub namespace: Option<String>,
    pub body: serde_json::Value,
}

/// Split the files into documents; an unusable document is an error
/// naming the file and its place.
pub fn documents(files: &BTreeMap<String, String>) -> (Vec<Doc>, Vec<String>) {
    use serde::Deserialize;
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let origin = format!("{file} document {}", i + 1);
            let value = match serde_json::Value::deserialize(de) {
                Ok(serde_json::Value::Null) => continue,
                Ok(v) => v,
                Err(e) => {
                    errors.push(format!("{origin}: {e}"));
                    continue;
                }
            };
            let s = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(api_version), Some(kind)) = (s("apiVersion"), s("kind")) else {
                errors.push(format!("{origin}: needs apiVersion and kind"));
                continue;
            };
            let meta = value.get("metadata");
            let Some(name) = meta.and_then(|m| m.get("name")).and_then(|n| n.as_str()).map(str::to_string) else {
                errors.push(format!("{origin}: needs metadata.name"));
                continue;
            };
            let namespace = meta.and_then(|m| m.get("namespace")).and_then(|n| n.as_str()).map(str::to_string);
            let (group, version) = match api_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), api_version.clone()),
            };
            docs.push(Doc { origin: format!("{origin} ({kind} {name})"), gvk: GroupVersionKind::gvk(&group, &version, &kind), name, namespace, body: value });
        }
    }
    (docs, errors)
}

async fn apply_one(client: &kube::Client, d: &Doc) -> Result<(), String> {
    let (ar, caps) = kube::discovery::pinned_kind(client, &d.gvk).await.map_err(|e| format!("{}: unknown kind: {e}", d.origin))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), d.namespace.as_deref().unwrap_or("default"), &ar),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&d.name, &pp, &Patch::Apply(&d.body)).await.map_err(|e| format!("{}: {e}", d.origin))?;
    Ok(())
}

/// Apply every document, retrying those that fail every 5 s; returns when
/// all are applied.
pub async fn apply(client: kube::Client, files: BTreeMap<String, String>) {
    if files.is_empty() {
        return;
    }
    let (mut pending, errors) = documents(&files);
    for e in errors {
        tracing::error!(error = e, "manifest skipped");
    }
    let total = pending.len();
    let mut round = 0u32;
    while !pending.is_empty() {
        let mut left = Vec::new();
        for d in pending {
            match apply_one(&client, &d).await {
                Ok(()) => tracing::info!(manifest = d.origin, "manifest applied"),
                Err(e) => {
                    if round.is_multiple_of(12) {
                        tracing::warn!(error = e, "manifest not applied yet; retrying");
                    }
                    left.push(d);
                }
            }
        }
        pending = left;
        if !pending.is_empty() {
            round += 1;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    tracing::info!(documents = total, "machine config manifests applied");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_split_and_named() {
        let mut files = BTreeMap::new();
        files.insert("a.yaml".to_string(), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one, namespace: kube-system}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: two}\n".to_string());
        files.insert("b.yaml".to_string(), "kind: ConfigMap\nmetadata: {name: x}\n".to_string());
        let (docs, errors) = documents(&files);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].gvk, GroupVersionKind::gvk("", "v1", "ConfigMap"));
        assert_eq!(docs[0].namespace.as_deref(), Some("kube-system"));
        assert_eq!(docs[1].gvk, GroupVersionKind::gvk("apps", "v1", "Deployment"));
        assert_eq!(docs[1].origin, "a.yaml document 3 (Deployment two)");
        assert_eq!(errors, vec!["b.yaml document 1: needs apiVersion and kind".to_string()]);
    }
}
