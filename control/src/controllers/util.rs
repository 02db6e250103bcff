//! Small pieces most controllers need: controller references, pod
//! readiness, label selectors on typed objects, pods from templates.

use crate::selector::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{self as metav1, ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// True when `meta` is controlled by the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).map(|r| r.uid == uid).unwrap_or(false)
}

/// An owner reference to `owner` marking it the controller, with
/// `blockOwnerDeletion` (as upstream's controllers set it).
pub fn controller_ref<K: kube::Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let m = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A typed label selector in the matching form; `None` for a malformed one.
pub fn selector(sel: &metav1::LabelSelector) -> Option<LabelSelector> {
    let v = serde_json::to_value(sel).ok()?;
    LabelSelector::from_json(&v).ok()
}

pub fn labels_match(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let map: serde_json::Map<String, serde_json::Value> =
        labels.map(|l| l.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()).unwrap_or_default();
    sel.matches(Some(&map))
}

/// Pod is Running... and its Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status == "True")
        .unwrap_or(false)
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0);
    match since {
        Some(t) => now.duration_since(t).as_secs() >= i64::from(min_ready_seconds),
        None => false,
    }
}

/// The node a pod is bound to, if any.
pub fn pod_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Not finished and not being deleted: counts towards a controller's replicas.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod_phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// A pod to create from `template`, controlled by `owner`, named
/// `generate_name` + random suffix (or `name` when given).
pub fn pod_from_template<K: kube::Resource<DynamicType = ()>>(
    template: &PodTemplateSpec,
    owner: &K,
    generate_name: &str,
    name: Option<&str>,
) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name: name.map(str::to_string),
            generate_name: if name.is_none() { Some(generate_name.to_string()) } else { None },
            namespace: owner.meta().namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The message of an API error, as upstream puts it in events and conditions.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

/// The API answered with HTTP status `code`.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_selectors_match_labels() {
        let sel: metav1::LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .expect("selector");
        let sel = selector(&sel).expect("valid");
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string()), ("tier".into(), "b".into())].into();
        assert!(labels_match(&sel, Some(&labels)));
        let other: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert!(!labels_match(&sel, Some(&other)));
    }
}
