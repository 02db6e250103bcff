//! A custom resource version's `openAPIV3Schema` as an OpenAPI definition.

use super::definitions::{API_VERSION_DOC, KIND_DOC, METADATA_DOC, OBJECT_META};
use super::refs::{walk_mut, V2_PREFIX};
use crate::registry::Resource;
use serde_json::{json, Map, Value};

/// Definition name of a custom kind, as upstream names it: the group with
/// its labels reversed, then version and kind
/// (`stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').filter(|l| !l.is_empty()).rev().collect();
    if reversed.is_empty() {
        format!("{version}.{kind}")
    } else {
        format!("{}.{version}.{kind}", reversed.join("."))
    }
}

/// The definition of a custom resource: its schema with `apiVersion` and
/// `kind` documented and `metadata` replaced by a reference to ObjectMeta.
pub fn definition(r: &Resource, schema: &Value) -> Value {
    let mut root = match schema {
        Value::Object(obj) => obj.clone(),
        _ => {
            // No usable schema: anything goes below the root.
            let mut obj = Map::new();
            obj.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
            obj
        }
    };
    // CRD schemas may not use references; drop any so that every `$ref`
    // in the documents resolves.
    let mut wrapped = Value::Object(std::mem::take(&mut root));
    walk_mut(&mut wrapped, &mut |node| {
        if node.contains_key("$ref") {
            let kept: Map<String, Value> = std::mem::take(node).into_iter().filter(|(k, _)| k != "$ref").collect();
            *node = kept;
        }
    });
    let Value::Object(mut root) = wrapped else { return Value::Object(Map::new()) };

    root.entry("type").or_insert_with(|| Value::String("object".into()));
    if root.get("description").is_none() {
        root.insert("description".into(), Value::String(format!("{} is a custom resource of {}.", r.kind, r.group)));
    }
    let props = root.entry("properties").or_insert_with(|| Value::Object(Map::new()));
    if !props.is_object() {
        *props = Value::Object(Map::new());
    }
    if let Value::Object(props) = props {
        props
            .entry("apiVersion")
            .or_insert_with(|| json!({"description": API_VERSION_DOC, "type": "string"}));
        props.entry("kind").or_insert_with(|| json!({"description": KIND_DOC, "type": "string"}));
        props.insert(
            "metadata".into(),
            json!({"$ref": format!("{V2_PREFIX}{OBJECT_META}"), "description": METADATA_DOC}),
        );
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_upstream() {
        assert_eq!(definition_name("stable.example.com", "v1", "CronTab"), "com.example.stable.v1.CronTab");
        assert_eq!(definition_name("example", "v1alpha1", "Thing"), "example.v1alpha1.Thing");
    }
}
