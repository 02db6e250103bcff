//! Kubernetes extensions on the built-in definitions that `k8s-openapi`'s
//! schemas do not carry: patch strategies and merge keys (from the patch
//! metadata table), list types and map keys next to them, and atomic
//! struct types. Clients compute strategic merge patches from the first;
//! server-side apply reads the others.

use crate::patch::meta::annotate_definitions;
use crate::schema::Definitions;
use serde_json::{json, Value};

/// Lists whose `x-kubernetes-list-type` upstream is not simply `map` keyed
/// by the patch merge key: `None` keys means `atomic`.
const LIST_OVERRIDES: &[(&str, &str, Option<&[&str]>)] = &[
    ("io.k8s.api.core.v1.Container", "ports", Some(&["containerPort", "protocol"])),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", Some(&["containerPort", "protocol"])),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", Some(&["port", "protocol"])),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", Some(&["topologyKey", "whenUnsatisfiable"])),
    // Merge keys for strategic merge, but duplicates are allowed.
    ("io.k8s.api.core.v1.NodeStatus", "addresses", None),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", None),
    ("io.k8s.api.batch.v1.JobStatus", "conditions", None),
];

/// Struct types that upstream marks `x-kubernetes-map-type: atomic`
/// (replaced as a whole by server-side apply).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
];

const LIST_TYPE: &str = "x-kubernetes-list-type";
const LIST_MAP_KEYS: &str = "x-kubernetes-list-map-keys";

/// Add all extensions to the built-in definitions present in `defs`.
pub fn apply(defs: &mut Definitions) {
    annotate_definitions(defs);
    for meta in crate::patch::meta::BUILTIN_PATCH_META {
        let Some(prop) = meta.node_mut(defs) else { continue };
        if prop.get("type").and_then(Value::as_str) != Some("array") || prop.contains_key(LIST_TYPE) {
            continue;
        }
        let merges = meta.strategy.split(',').any(|s| s == "merge");
        let overridden = LIST_OVERRIDES
            .iter()
            .find(|(d, p, _)| *d == meta.definition && *p == meta.property)
            .map(|(_, _, keys)| *keys);
        match (overridden, meta.merge_key) {
            (Some(None), _) => {
                prop.insert(LIST_TYPE.into(), json!("atomic"));
            }
            (Some(Some(keys)), _) => {
                prop.insert(LIST_TYPE.into(), json!("map"));
                prop.insert(LIST_MAP_KEYS.into(), json!(keys));
            }
            (None, Some(key)) if merges => {
                prop.insert(LIST_TYPE.into(), json!("map"));
                prop.insert(LIST_MAP_KEYS.into(), json!([key]));
            }
            (None, None) if merges => {
                prop.insert(LIST_TYPE.into(), json!("set"));
            }
            _ => {}
        }
    }
    for name in ATOMIC_STRUCTS {
        if let Some(Value::Object(def)) = defs.0.get_mut(*name) {
            def.entry("x-kubernetes-map-type").or_insert_with(|| json!("atomic"));
        }
    }
}
