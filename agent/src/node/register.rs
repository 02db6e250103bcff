//! Registering the Node: created with its labels and `--node-taint`s, or,
//! when it exists (a restart, a re-install), its labels brought up to date.
//! Taints are only given at creation, as the kubelet does: later changes
//! belong to whoever made them.

use super::info;
use crate::Context;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use std::time::Duration;

/// A `--node-taint` (`key=value:Effect` or `key:Effect`) as a Taint object.
pub fn parse_taint(text: &str) -> Result<Value, String> {
    let bad = |why: &str| format!("node taint {text:?}: {why} (expected KEY=VALUE:EFFECT or KEY:EFFECT, EFFECT one of NoSchedule, PreferNoSchedule, NoExecute)");
    let (kv, effect) = text.rsplit_once(':').ok_or_else(|| bad("no effect"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad(&format!("unknown effect {effect:?}")));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(bad("empty or malformed key"));
    }
    let mut t = json!({"key": key, "effect": effect});
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        t["value"] = json!(v);
    }
    Ok(t)
}

/// The Node as this agent first creates it.
pub fn initial_node(ctx: &Context) -> Value {
    let taints: Vec<Value> = ctx
        .cfg
        .node_taints
        .iter()
        .filter_map(|t| match parse_taint(t) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "taint ignored");
                None
            }
        })
        .collect();
    let mut node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": ctx.cfg.node_name,
            "labels": info::labels(&ctx.cfg),
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {},
    });
    if !taints.is_empty() {
        node["spec"]["taints"] = Value::Array(taints);
    }
    node
}

/// Creates the Node, or updates its labels when it exists. Returns it.
pub async fn register(ctx: &Context) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    let node: Node = serde_json::from_value(initial_node(ctx)).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &node).await {
        Ok(n) => {
            tracing::info!(node = %ctx.cfg.node_name, "node registered");
            Ok(n)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = json!({"metadata": {
                "labels": info::labels(&ctx.cfg),
                "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            }});
            let n = api.patch(&ctx.cfg.node_name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            tracing::info!(node = %ctx.cfg.node_name, "node already registered; labels updated");
            Ok(n)
        }
        Err(e) => Err(e),
    }
}

/// Registers, retrying with back-off while the API cannot be reached or
/// refuses (the reason is logged each time).
pub async fn until_registered(ctx: &Context) -> Node {
    let mut wait = Duration::from_millis(200);
    loop {
        match tokio::time::timeout(Duration::from_secs(15), register(ctx)).await {
            Ok(Ok(n)) => return n,
            Ok(Err(e)) => tracing::warn!(node = %ctx.cfg.node_name, error = %e, retry_in_ms = wait.as_millis() as u64, "node registration failed"),
            Err(_) => tracing::warn!(node = %ctx.cfg.node_name, "node registration timed out"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(7));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_as_the_kubelet_flag() {
        assert_eq!(parse_taint("dedicated=edge:NoSchedule").unwrap(), json!({"key": "dedicated", "value": "edge", "effect": "NoSchedule"}));
        assert_eq!(parse_taint("gpu:NoExecute").unwrap(), json!({"key": "gpu", "effect": "NoExecute"}));
        assert_eq!(parse_taint("example.com/k=v:PreferNoSchedule").unwrap()["key"], "example.com/k");
        assert!(parse_taint("k=v").unwrap_err().contains("no effect"));
        assert!(parse_taint("k=v:Never").unwrap_err().contains("unknown effect \"Never\""));
        assert!(parse_taint("=v:NoSchedule").unwrap_err().contains("key"));
    }
}
