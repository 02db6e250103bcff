//! Removing what an applier stopped applying.
//!
//! A field, map entry or list item goes away when the applier's previous
//! apply set it, its new configuration does not, and no manager (the
//! applier's new configuration included) owns it or, for a field,
//! anything below it. What goes away goes with everything below it, as
//! upstream does; the top-level `metadata` always stays.

use super::fieldset::FieldSet;
use super::path::PathElement;
use super::shape::{list_elements, Node};
use crate::schema::Definitions;
use serde_json::Value;

pub(crate) fn prune(defs: &Definitions, node: Node<'_>, value: &mut Value, last: &FieldSet, owned: &FieldSet) {
    walk(defs, node, value, last, Some(owned), true);
}

fn walk(defs: &Definitions, node: Node<'_>, value: &mut Value, last: &FieldSet, owned: Option<&FieldSet>, root: bool) {
    match value {
        Value::Object(map) => {
            if node.map_atomic() {
                return;
            }
            let mut doomed = Vec::new();
            for (key, child) in map.iter_mut() {
                let pe = PathElement::Field(key.clone());
                if !last.touches(&pe) {
                    continue;
                }
                let kept = owned.is_some_and(|o| o.touches(&pe)) || (root && key == "metadata");
                if !kept {
                    doomed.push(key.clone());
                    continue;
                }
                if let Some(below) = last.child(&pe) {
                    let child_node = node.field(defs, key).0;
                    walk(defs, child_node, child, below, owned.and_then(|o| o.child(&pe)), false);
                }
            }
            map.retain(|key, _| !doomed.contains(key));
        }
        Value::Array(items) => {
            let Ok(Some((item_node, pes))) = list_elements(defs, node, items) else {
                return;
            };
            let mut keep = Vec::with_capacity(items.len());
            for (item, pe) in items.iter_mut().zip(&pes) {
                if last.has_member(pe) && !owned.is_some_and(|o| o.has_member(pe)) {
                    keep.push(false);
                    continue;
                }
                keep.push(true);
                if let Some(below) = last.child(pe) {
                    walk(defs, item_node, item, below, owned.and_then(|o| o.child(pe)), false);
                }
            }
            let mut flags = keep.into_iter();
            items.retain(|_| flags.next().unwrap_or(true));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: Value) -> FieldSet {
        FieldSet::from_fields_v1(&v).expect("valid")
    }

    #[test]
    fn removes_only_what_nobody_owns_any_more() {
        let d = Definitions::new();
        let r = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "spec": {"type": "object", "properties": {
                "containers": {"type": "array", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name",
                    "items": {"type": "object"}}}}}});
        let mut obj = json!({
            "metadata": {"name": "x", "labels": {"a": "1", "b": "2", "c": "3"}},
            "spec": {"containers": [{"name": "web", "image": "i"}, {"name": "side", "image": "s"}], "defaulted": 1}
        });
        let last = set(json!({
            "f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}, "k:{\"name\":\"side\"}": {".": {}}}}
        }));
        // now: the applier applies label a only and container side; someone else owns web's image
        let owned = set(json!({
            "f:metadata": {"f:labels": {"f:a": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"side\"}": {".": {}}, "k:{\"name\":\"web\"}": {"f:image": {}}}}
        }));
        prune(&d, Node::of(&d, &r), &mut obj, &last, &owned);
        assert_eq!(
            obj,
            json!({
                "metadata": {"name": "x", "labels": {"a": "1", "c": "3"}},
                "spec": {"containers": [{"name": "side", "image": "s"}], "defaulted": 1}
            })
        );
    }

    #[test]
    fn drops_a_whole_struct_nobody_owns() {
        let d = Definitions::new();
        let r = json!({});
        let mut obj = json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": 2}, "other": 1});
        let last = set(json!({"f:spec": {"f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}));
        prune(&d, Node::of(&d, &r), &mut obj, &last, &FieldSet::new());
        assert_eq!(obj, json!({"metadata": {"name": "x"}, "other": 1}));
    }
}
