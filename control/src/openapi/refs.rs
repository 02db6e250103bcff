//! Schema-aware walking of JSON Schema nodes: finding and rewriting `$ref`s.
//!
//! A walk only descends into places that hold schemas (`properties`,
//! `items`, `additionalProperties`, `allOf`, ...), never into values such
//! as `default`, `enum` or `example`, and never treats a property *name*
//! as a keyword: `JSONSchemaProps` has properties called `$ref`, `allOf`
//! and `not`, which must stay untouched.

use serde_json::{Map, Value};

/// Prefix of references inside [`crate::schema::Definitions`] and swagger 2.0.
pub const V2_PREFIX: &str = "#/definitions/";
/// Prefix of references inside an OpenAPI 3.0 document.
pub const V3_PREFIX: &str = "#/components/schemas/";

/// Keywords whose value is a map from names to schemas.
const SCHEMA_MAPS: &[&str] = &["properties", "patternProperties"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keywords whose value is one schema (or, for `items`, a list of them).
const SCHEMA_SINGLE: &[&str] = &["items", "additionalProperties", "not"];

/// Visit `node` and every schema nested in it, parents first.
pub fn walk_mut(node: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Some(obj) = node.as_object_mut() else { return };
    f(obj);
    for key in SCHEMA_MAPS {
        if let Some(Value::Object(children)) = obj.get_mut(*key) {
            for child in children.values_mut() {
                walk_mut(child, f);
            }
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(children)) = obj.get_mut(*key) {
            for child in children.iter_mut() {
                walk_mut(child, f);
            }
        }
    }
    for key in SCHEMA_SINGLE {
        match obj.get_mut(*key) {
            Some(Value::Array(children)) => {
                for child in children.iter_mut() {
                    walk_mut(child, f);
                }
            }
            Some(child @ Value::Object(_)) => walk_mut(child, f),
            _ => {}
        }
    }
}

/// Visit `node` and every schema nested in it (read-only).
pub fn walk(node: &Value, f: &mut dyn FnMut(&Map<String, Value>)) {
    let Some(obj) = node.as_object() else { return };
    f(obj);
    for key in SCHEMA_MAPS {
        if let Some(Value::Object(children)) = obj.get(*key) {
            for child in children.values() {
                walk(child, f);
            }
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(children)) = obj.get(*key) {
            for child in children {
                walk(child, f);
            }
        }
    }
    for key in SCHEMA_SINGLE {
        match obj.get(*key) {
            Some(Value::Array(children)) => {
                for child in children {
                    walk(child, f);
                }
            }
            Some(child @ Value::Object(_)) => walk(child, f),
            _ => {}
        }
    }
}

/// Names of the definitions `node` refers to (with prefix `prefix`).
pub fn referenced_names(node: &Value, prefix: &str, out: &mut Vec<String>) {
    walk(node, &mut |obj| {
        if let Some(name) = obj.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(prefix)) {
            out.push(name.to_string());
        }
    });
}

/// Rewrite a definitions-style schema into OpenAPI 3.0 style: references
/// point into `#/components/schemas/`, and a reference with sibling
/// keywords (a description, extensions) becomes `allOf: [{$ref}]` next to
/// those siblings, since OpenAPI 3.0 ignores siblings of `$ref`.
pub fn to_v3(node: &mut Value) {
    walk_mut(node, &mut |obj| {
        let Some(reference) = obj.get("$ref").and_then(Value::as_str) else { return };
        let reference = match reference.strip_prefix(V2_PREFIX) {
            Some(name) => format!("{V3_PREFIX}{name}"),
            None => reference.to_string(),
        };
        if obj.len() == 1 {
            obj.insert("$ref".into(), Value::String(reference));
            return;
        }
        let mut rebuilt = Map::with_capacity(obj.len());
        let mut target = Map::with_capacity(1);
        target.insert("$ref".into(), Value::String(reference));
        rebuilt.insert("allOf".into(), Value::Array(vec![Value::Object(target)]));
        for (k, v) in std::mem::take(obj) {
            if k != "$ref" {
                rebuilt.insert(k, v);
            }
        }
        *obj = rebuilt;
    });
}

/// Keywords swagger 2.0 cannot express; dropped from the v2 document.
const NOT_IN_V2: &[&str] = &["nullable", "anyOf", "oneOf", "not"];

/// Make a schema fit swagger 2.0: drop the keywords it has no room for.
pub fn to_v2(node: &mut Value) {
    walk_mut(node, &mut |obj| {
        for key in NOT_IN_V2 {
            if obj.contains_key(*key) {
                let kept: Map<String, Value> = std::mem::take(obj).into_iter().filter(|(k, _)| k != key).collect();
                *obj = kept;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v3_wraps_refs_with_siblings_and_keeps_property_names() {
        let mut node = json!({
            "type": "object",
            "properties": {
                "metadata": {"$ref": "#/definitions/a.Meta", "description": "meta"},
                "plain": {"$ref": "#/definitions/a.Plain"},
                "$ref": {"type": "string"},
                "list": {"type": "array", "items": {"$ref": "#/definitions/a.Item"}}
            },
            "default": {"$ref": "#/definitions/not.a.schema"}
        });
        to_v3(&mut node);
        assert_eq!(
            node["properties"]["metadata"],
            json!({"allOf": [{"$ref": "#/components/schemas/a.Meta"}], "description": "meta"})
        );
        assert_eq!(node["properties"]["plain"], json!({"$ref": "#/components/schemas/a.Plain"}));
        assert_eq!(node["properties"]["$ref"], json!({"type": "string"}));
        assert_eq!(node["properties"]["list"]["items"], json!({"$ref": "#/components/schemas/a.Item"}));
        assert_eq!(node["default"], json!({"$ref": "#/definitions/not.a.schema"}));
    }

    #[test]
    fn collects_names_without_values() {
        let node = json!({
            "properties": {"a": {"$ref": "#/definitions/x.A"}, "b": {"additionalProperties": {"$ref": "#/definitions/x.B"}}},
            "enum": [{"$ref": "#/definitions/x.C"}]
        });
        let mut names = Vec::new();
        referenced_names(&node, V2_PREFIX, &mut names);
        assert_eq!(names, vec!["x.A".to_string(), "x.B".to_string()]);
    }

    #[test]
    fn v2_drops_keywords_but_not_properties() {
        let mut node = json!({
            "nullable": true,
            "properties": {"nullable": {"type": "boolean"}, "x": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true}}
        });
        to_v2(&mut node);
        assert_eq!(
            node,
            json!({"properties": {"nullable": {"type": "boolean"}, "x": {"x-kubernetes-int-or-string": true}}})
        );
    }
}
