//! The set of fields an object sets: what an applier owns after applying it.
//!
//! Leaves (scalars, atomic lists and maps), map entries that are not
//! declared struct fields, fields set to null or `{}`, and every item of
//! an associative list are members; a granular struct that has content is
//! only a path to its fields. Apply configurations are walked strictly (an
//! item without its key or a repeated key is an error); stored objects
//! leniently (such a list counts as atomic, a repeated key is owned whole).

use super::fieldset::FieldSet;
use super::path::{path_string, PathElement};
use super::shape::{list_elements, Node};
use crate::schema::Definitions;
use serde_json::Value;
use std::collections::BTreeMap;

/// Paths never recorded in managed fields (upstream strips them too).
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

pub(crate) fn strip_meta(set: &mut FieldSet) {
    for path in STRIPPED {
        let path: Vec<PathElement> = path.iter().map(|p| PathElement::field(p)).collect();
        set.remove(&path);
    }
}

/// The fields of `value` (relative to it). `Err` only when `strict`.
pub(crate) fn field_set(
    defs: &Definitions,
    node: Node<'_>,
    value: &Value,
    strict: bool,
) -> Result<FieldSet, String> {
    let mut path = Vec::new();
    walk(defs, node, value, strict, &mut path).map(|(set, _)| set)
}

/// Returns the set below `value` and whether `value` is itself a leaf.
fn walk(
    defs: &Definitions,
    node: Node<'_>,
    value: &Value,
    strict: bool,
    path: &mut Vec<PathElement>,
) -> Result<(FieldSet, bool), String> {
    match value {
        Value::Object(map) => {
            if node.map_atomic() {
                return Ok((FieldSet::new(), true));
            }
            let mut set = FieldSet::new();
            for (key, child_value) in map {
                let (child_node, declared) = node.field(defs, key);
                let pe = PathElement::Field(key.clone());
                path.push(pe.clone());
                let (child, leaf) = walk(defs, child_node, child_value, strict, path)?;
                path.pop();
                let empty_map = child_value.as_object().is_some_and(|m| m.is_empty());
                if leaf || child_value.is_null() || empty_map || !declared {
                    set.insert_member(pe.clone());
                }
                set.insert_child(pe, child);
            }
            Ok((set, false))
        }
        Value::Array(items) => {
            let (item_node, pes) = match list_elements(defs, node, items) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok((FieldSet::new(), true)),
                Err(e) if strict => return Err(format!("{}: {e}", path_string(path))),
                Err(_) => return Ok((FieldSet::new(), true)),
            };
            let mut counts: BTreeMap<&PathElement, usize> = BTreeMap::new();
            for pe in &pes {
                *counts.entry(pe).or_default() += 1;
            }
            if strict {
                if let Some(pe) = pes.iter().find(|pe| counts.get(pe).copied().unwrap_or(0) > 1) {
                    return Err(format!("{}: duplicate entries for key {pe}", path_string(path)));
                }
            }
            let mut set = FieldSet::new();
            for (item, pe) in items.iter().zip(pes.iter()) {
                set.insert_member(pe.clone());
                if counts.get(pe).copied().unwrap_or(0) > 1 {
                    continue;
                }
                path.push(pe.clone());
                let (child, _) = walk(defs, item_node, item, strict, path)?;
                path.pop();
                set.insert_child(pe.clone(), child);
            }
            Ok((set, false))
        }
        _ => Ok((FieldSet::new(), true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> (Definitions, Value) {
        let mut d = Definitions::new();
        d.insert(
            "Meta",
            json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "finalizers": {"type": "array", "items": {"type": "string"},
                    "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"}
            }}),
        );
        d.insert(
            "Container",
            json!({"type": "object", "properties": {
                "name": {"type": "string"}, "image": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}},
                "resources": {"type": "object", "properties": {"limits": {"type": "object", "additionalProperties": {"type": "string"}}}}
            }}),
        );
        let root = json!({"type": "object", "properties": {
            "metadata": {"$ref": "#/definitions/Meta"},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "containers": {"type": "array", "items": {"$ref": "#/definitions/Container"},
                    "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}
        }});
        (d, root)
    }

    #[test]
    fn owns_leaves_items_and_map_entries() {
        let (d, root) = schema();
        let obj = json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "a", "labels": {"app": "web"}, "finalizers": ["x"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "containers": [{"name": "web", "image": "nginx", "args": ["-v"], "resources": {}}],
                "extra": {"deep": {"x": 1}}
            }
        });
        let mut set = field_set(&d, Node::of(&d, &root), &obj, true).expect("valid");
        strip_meta(&mut set);
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:finalizers": {"v:\"x\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:args": {}, "f:image": {}, "f:name": {}, "f:resources": {}
                    }},
                    "f:extra": {"f:deep": {".": {}, "f:x": {}}},
                    "f:replicas": {},
                    "f:selector": {}
                }
            })
        );
    }

    #[test]
    fn strict_walk_rejects_bad_lists_lenient_walk_does_not() {
        let (d, root) = schema();
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        assert_eq!(
            field_set(&d, Node::of(&d, &root), &dup, true).expect_err("duplicate"),
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
        let lenient = field_set(&d, Node::of(&d, &root), &dup, false).expect("lenient");
        assert_eq!(lenient.to_fields_v1(), json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {}}}}));
        let missing = json!({"spec": {"containers": [{"image": "x"}]}});
        assert_eq!(
            field_set(&d, Node::of(&d, &root), &missing, true).expect_err("missing key"),
            ".spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        );
        let lenient = field_set(&d, Node::of(&d, &root), &missing, false).expect("lenient");
        assert_eq!(lenient.to_fields_v1(), json!({"f:spec": {"f:containers": {}}}));
    }
}
