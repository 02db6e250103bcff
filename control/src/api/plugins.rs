//! The mutating admission plugins that need the store: `Priority` (which
//! reads the PriorityClasses) and `DefaultTolerationSeconds` (which reads
//! the cluster settings), run on pod and PriorityClass writes before
//! defaulting and validation. The decisions are in
//! [`crate::admission::plugins`]; this only gathers what they look at and
//! turns refusals into upstream's Forbidden errors.

use super::request::Query;
use super::status::ApiError;
use super::ApiServer;
use crate::admission::plugins::{self, PriorityClassInfo};
use crate::registry::Resource;
use serde_json::Value;

fn is_pod(res: &Resource) -> bool {
    res.group.is_empty() && res.kind == "Pod"
}

fn is_priority_class(res: &Resource) -> bool {
    res.group == "scheduling.k8s.io" && res.kind == "PriorityClass"
}

async fn priority_classes(server: &ApiServer) -> Result<Vec<PriorityClassInfo>, ApiError> {
    let table = server.registry.table();
    let Some(res) = table.get("scheduling.k8s.io", "v1", "priorityclasses") else { return Ok(Vec::new()) };
    let listed = super::list::list(server, &res, None, &Query::default()).await?;
    Ok(listed.items.iter().filter_map(PriorityClassInfo::from_object).collect())
}

fn forbidden(res: &Resource, obj: &Value, why: impl std::fmt::Display) -> ApiError {
    let name = super::object::name(obj).unwrap_or("");
    let mut e = ApiError::forbidden(format!("{} \"{name}\" is forbidden: {why}", super::status::qualified(&res.plural, &res.group)));
    e.details = Some(serde_json::json!({"name": name, "group": res.group, "kind": res.plural}));
    e
}

/// On create, before defaulting: default tolerations and priority of a
/// pod; the single-default rule of a PriorityClass.
pub async fn on_create(server: &ApiServer, res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    if is_pod(res) {
        let cfg = &server.config;
        plugins::default_tolerations(obj, cfg.default_not_ready_toleration_seconds, cfg.default_unreachable_toleration_seconds);
        let classes = priority_classes(server).await?;
        plugins::resolve_priority(obj, &classes).map_err(|e| forbidden(res, obj, e))?;
    } else if is_priority_class(res) {
        let classes = priority_classes(server).await?;
        plugins::check_single_default(obj, &classes).map_err(|e| forbidden(res, obj, e))?;
    }
    Ok(())
}

/// On update (not of a subresource), before defaulting: a pod keeps the
/// priority admission gave it; a PriorityClass may not become a second
/// global default.
pub async fn on_update(server: &ApiServer, res: &Resource, sub: Option<&str>, old: &Value, new: &mut Value) -> Result<(), ApiError> {
    if sub.is_some() {
        return Ok(());
    }
    if is_pod(res) {
        plugins::keep_priority(old, new);
    } else if is_priority_class(res) {
        let classes = priority_classes(server).await?;
        plugins::check_single_default(new, &classes).map_err(|e| forbidden(res, new, e))?;
    }
    Ok(())
}

/// The PriorityClasses every cluster has (upstream's API server creates
/// them at start).
pub fn system_priority_classes() -> [Value; 2] {
    [
        serde_json::json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "system-node-critical"}, "value": 2000001000,
            "description": "Used for system critical pods that must not be moved from their current node."}),
        serde_json::json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "system-cluster-critical"}, "value": 2000000000,
            "description": "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."}),
    ]
}

/// Upstream's PriorityClass storage refuses to delete the system classes.
pub fn on_delete(res: &Resource, name: &str) -> Result<(), ApiError> {
    if is_priority_class(res) && crate::admission::plugins::is_system_priority_class(name) {
        let mut e = ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: this is a system priority class and cannot be deleted",
            super::status::qualified(&res.plural, &res.group)
        ));
        e.details = Some(serde_json::json!({"name": name, "group": res.group, "kind": res.plural}));
        return Err(e);
    }
    Ok(())
}
