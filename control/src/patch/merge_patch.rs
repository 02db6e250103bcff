//! RFC 7386 JSON merge patch (`application/merge-patch+json`).

use serde_json::{Map, Value};

/// Apply a JSON merge patch: objects merge key by key, `null` deletes a
/// key, anything else (lists included) replaces what was there.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let Value::Object(changes) = patch else {
        return patch.clone();
    };
    let mut target = match doc {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, change) in changes {
        if change.is_null() {
            target.shift_remove(key);
        } else {
            let merged = merge_patch(target.get(key).unwrap_or(&Value::Null), change);
            target.insert(key.clone(), merged);
        }
    }
    Value::Object(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_deletes_and_maps_merge() {
        let doc = json!({"metadata": {"labels": {"app": "web", "tier": "front"}, "name": "x"},
                         "spec": {"replicas": 1}});
        let patch = json!({"metadata": {"labels": {"tier": null, "env": "prod"}},
                           "spec": {"replicas": 3}});
        assert_eq!(
            merge_patch(&doc, &patch),
            json!({"metadata": {"labels": {"app": "web", "env": "prod"}, "name": "x"},
                   "spec": {"replicas": 3}})
        );
        let labels = merge_patch(&doc, &json!({"metadata": {"labels": null}}));
        assert_eq!(labels, json!({"metadata": {"name": "x"}, "spec": {"replicas": 1}}));
    }

    #[test]
    fn lists_are_replaced_and_new_nulls_dropped() {
        let doc = json!({"a": [1, 2], "b": "x"});
        assert_eq!(
            merge_patch(&doc, &json!({"a": [3], "b": {"c": null, "d": 1}})),
            json!({"a": [3], "b": {"d": 1}})
        );
    }

    #[test]
    fn non_object_patch_replaces_document() {
        assert_eq!(merge_patch(&json!({"a": 1}), &json!(["x"])), json!(["x"]));
        assert_eq!(merge_patch(&json!("s"), &json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn key_order_is_kept() {
        let out = merge_patch(&json!({"a": 1, "b": 2, "c": 3}), &json!({"a": 9, "b": null}));
        let keys: Vec<&String> = out.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["a", "c"]);
    }
}
