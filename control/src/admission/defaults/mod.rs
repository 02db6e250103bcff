//! Defaulting: the values upstream fills in when it decodes an object
//! (`SetDefaults_*`), plus the few create-time fill-ins of the registry
//! strategies that users see on every object (Job selector labels,
//! Namespace finalizer and phase, Pod phase and QoS class, canonical
//! quantities). Never overwrites a value the client set.

mod apps;
mod batch;
mod core;
mod other;
pub(crate) mod pod;

use super::quantity::Quantity;
use serde_json::{json, Value};

/// Applies upstream defaults for `group`/`kind` to `obj` in place.
pub(crate) fn apply(group: &str, kind: &str, obj: &mut Value) {
    match (group, kind) {
        ("", "Pod") => pod::pod(obj),
        ("", "PodTemplate") => {
            if let Some(t) = obj_mut(obj, "template") {
                pod::template(t);
            }
        }
        ("", "Service") => core::service(obj),
        ("", "Secret") => core::secret(obj),
        ("", "Namespace") => core::namespace(obj),
        ("", "PersistentVolumeClaim") => core::persistent_volume_claim(obj),
        ("", "PersistentVolume") => core::persistent_volume(obj),
        ("", "Node") => core::node(obj),
        ("apps", "Deployment") => apps::deployment(obj),
        ("apps", "ReplicaSet") => apps::replica_set(obj),
        ("apps", "DaemonSet") => apps::daemon_set(obj),
        ("apps", "StatefulSet") => apps::stateful_set(obj),
        ("batch", "Job") => batch::job(obj),
        ("batch", "CronJob") => batch::cron_job(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => other::binding(obj),
        ("storage.k8s.io", "StorageClass") => other::storage_class(obj),
        ("scheduling.k8s.io", "PriorityClass") => other::priority_class(obj),
        _ => {}
    }
}

/// `v[key]` as an object, created as `{}` when absent or `null`. `None`
/// when `v` is not an object or `v[key]` is something else.
pub(crate) fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = json!({});
    }
    slot.is_object().then_some(slot)
}

/// Sets `v[key]` when it is absent or `null`.
pub(crate) fn set_default(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

/// Calls `f` on every element of the list `v[key]`.
pub(crate) fn each_mut(v: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

/// Rewrites every parseable quantity of the map `v[key]` in canonical
/// form (`0.5` → `500m`), as a decode/encode round trip upstream does.
pub(crate) fn canonical_quantities(v: &mut Value, key: &str) {
    if let Some(m) = v.get_mut(key).and_then(Value::as_object_mut) {
        for q in m.values_mut() {
            canonical_quantity(q);
        }
    }
}

/// One quantity in canonical form, left alone when it does not parse.
pub(crate) fn canonical_quantity(q: &mut Value) {
    if let Ok(parsed) = Quantity::from_json(q) {
        *q = Value::String(parsed.to_string());
    }
}

/// The `str` at `v[key]`, if any.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
