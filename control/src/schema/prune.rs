//! Pruning of custom resources: drop every field the structural schema
//! does not specify, the way the API server does before storing.
//!
//! At the root and in embedded resources (`x-kubernetes-embedded-resource`)
//! `apiVersion`, `kind` and `metadata` are kept; unknown `metadata` fields
//! (anything that is not an ObjectMeta field) are dropped as well.
//! Beneath `x-kubernetes-preserve-unknown-fields` unknown fields stay, but
//! the fields the schema does specify are still pruned inside.
//! The removed paths are returned: with `?fieldValidation=Strict|Warn` they
//! are exactly the `unknown field "spec.foo"` entries upstream reports.

use super::json_type::flag;
use super::path::{child, index};
use serde_json::Value;

/// The fields of `metav1.ObjectMeta`.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn is_type_or_object_meta(key: &str) -> bool {
    matches!(key, "apiVersion" | "kind" | "metadata")
}

/// Prune a whole custom resource against its CRD version schema; returns
/// the removed paths (`spec.foo`, `spec.items[0].bar`, `metadata.bogus`).
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    prune_value(obj, schema, true)
}

/// Prune any value against a schema node; `resource_root` marks a value
/// that is a whole object (keeps `apiVersion`/`kind`/`metadata`).
pub(crate) fn prune_value(obj: &mut Value, schema: &Value, resource_root: bool) -> Vec<String> {
    let mut out = Vec::new();
    let embedded = resource_root || flag(schema, "x-kubernetes-embedded-resource");
    prune_node(obj, Some(schema), embedded, "", &mut out);
    out
}

fn is_embedded(s: Option<&Value>) -> bool {
    s.is_some_and(|s| flag(s, "x-kubernetes-embedded-resource"))
}

fn items_of(s: Option<&Value>) -> Option<&Value> {
    s.and_then(|s| s.get("items")).filter(|i| i.is_object())
}

/// `additionalProperties`: `None` when absent or `false` (unknown keys go),
/// `Some(None)` for `true` (values kept as-is but pruned like unknowns
/// beneath, as upstream does), `Some(Some(schema))` for a schema.
fn additional(s: &Value) -> Option<Option<&Value>> {
    match s.get("additionalProperties") {
        Some(Value::Bool(true)) => Some(None),
        Some(v @ Value::Object(_)) => Some(Some(v)),
        _ => None,
    }
}

fn prune_node(x: &mut Value, s: Option<&Value>, embedded: bool, path: &str, out: &mut Vec<String>) {
    if let Some(schema) = s.filter(|s| flag(s, "x-kubernetes-preserve-unknown-fields")) {
        skip_prune(x, schema, embedded, path, out);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(schema) = s else {
                out.extend(map.keys().map(|k| child(path, k)));
                map.clear();
                return;
            };
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = additional(schema);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let here = child(path, &k);
                if embedded && is_type_or_object_meta(&k) {
                    if k == "metadata" {
                        if let Some(meta) = map.get_mut("metadata") {
                            prune_object_meta(meta, &here, out);
                        }
                    }
                    continue;
                }
                let Some(v) = map.get_mut(&k) else { continue };
                if let Some(prop) = props.and_then(|p| p.get(&k)) {
                    prune_node(v, Some(prop), is_embedded(Some(prop)), &here, out);
                } else if let Some(values) = extra {
                    prune_node(v, values, is_embedded(values), &here, out);
                } else {
                    out.push(here);
                    map.shift_remove(&k);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = items_of(s);
            for (i, v) in items.iter_mut().enumerate() {
                prune_node(v, item_schema, is_embedded(item_schema), &index(path, i), out);
            }
        }
        _ => {}
    }
}

/// Beneath `x-kubernetes-preserve-unknown-fields`: keep unknown fields,
/// prune inside the specified ones.
fn skip_prune(x: &mut Value, s: &Value, embedded: bool, path: &str, out: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let extra = additional(s);
            for (k, v) in map.iter_mut() {
                let here = child(path, k);
                if embedded && is_type_or_object_meta(k) {
                    if k == "metadata" {
                        prune_object_meta(v, &here, out);
                    }
                    continue;
                }
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    prune_node(v, Some(prop), is_embedded(Some(prop)), &here, out);
                } else if let Some(values) = extra {
                    prune_node(v, values, is_embedded(values), &here, out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_of(Some(s)) {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, item_schema, is_embedded(Some(item_schema)), &index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

/// Drop the keys of an object's `metadata` that ObjectMeta does not have.
fn prune_object_meta(meta: &mut Value, path: &str, out: &mut Vec<String>) {
    let Value::Object(map) = meta else { return };
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in unknown {
        out.push(child(path, &k));
        map.shift_remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn prunes_unknown_fields_and_reports_their_paths() {
        let mut obj = json!({
            "apiVersion": "example.com/v1", "kind": "Foo",
            "metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1},
            "spec": {
                "size": 3, "extra": true,
                "items": [{"name": "a", "junk": 1}, {"name": "b"}],
                "labels": {"k": {"v": "1", "w": "2"}},
                "free": {"anything": {"deep": 1}, "known": {"a": "x", "b": "y"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "x": 1}, "spec": {"any": 1}}
            },
            "other": 1
        });
        let pruned = prune(&mut obj, &crd_schema());
        assert_eq!(
            pruned,
            vec![
                "metadata.bogus",
                "spec.extra",
                "spec.items[0].junk",
                "spec.labels.k.w",
                "spec.free.known.b",
                "spec.template.metadata.x",
                "other",
            ]
        );
        assert_eq!(
            obj,
            json!({
                "apiVersion": "example.com/v1", "kind": "Foo",
                "metadata": {"name": "x", "labels": {"a": "b"}},
                "spec": {
                    "size": 3,
                    "items": [{"name": "a"}, {"name": "b"}],
                    "labels": {"k": {"v": "1"}},
                    "free": {"anything": {"deep": 1}, "known": {"a": "x"}},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}}
                }
            })
        );
    }

    #[test]
    fn keeps_key_order() {
        let mut obj = json!({"spec": {"z": 1, "size": 1, "a": 2}, "apiVersion": "v"});
        prune(&mut obj, &crd_schema());
        assert_eq!(obj.to_string(), r#"{"spec":{"size":1},"apiVersion":"v"}"#);
    }
}
