//! OpenAPI schemas of the served types, as plain JSON Schema values.
//!
//! Every piece that needs to know the shape of an object (strict field
//! validation, strategic merge patch, server-side apply, CRD pruning, the
//! OpenAPI documents) walks the same schemas through [`Definitions`]: a map
//! from definition name (`io.k8s.api.apps.v1.Deployment`) to its schema.
//! A schema node may be `{"$ref": "#/definitions/NAME", ...}` (or
//! `#/components/schemas/NAME`); [`Definitions::resolve`] follows such
//! references so callers only ever look at concrete nodes.

use serde_json::Value;
use std::collections::BTreeMap;

mod crd_rules;
pub mod defaults;
pub mod formats;
mod json_type;
mod list_checks;
mod node;
mod path;
pub mod prune;
pub mod strict;
pub mod structural;
pub mod types;
pub mod validate;


/// Named schemas: definition name to JSON Schema node.
#[derive(Debug, Clone, Default)]
pub struct Definitions(pub BTreeMap<String, Value>);

impl Definitions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, schema: Value) {
        self.0.insert(name.into(), schema);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The definition a `$ref` string points at, if it is one of ours.
    pub fn lookup_ref(&self, reference: &str) -> Option<&Value> {
        let name = reference
            .strip_prefix("#/definitions/")
            .or_else(|| reference.strip_prefix("#/components/schemas/"))
            .or_else(|| reference.strip_prefix("#/$defs/"))?;
        self.0.get(name)
    }

    /// Follow `$ref` (directly, or as the single entry of `allOf`) until a
    /// concrete node is reached. Unknown references resolve to the node
    /// itself, so a caller sees an object without `properties` rather than
    /// a panic.
    pub fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let reference = node.get("$ref").and_then(Value::as_str).or_else(|| {
                match node.get("allOf").and_then(Value::as_array) {
                    Some(all) if all.len() == 1 => all[0].get("$ref").and_then(Value::as_str),
                    _ => None,
                }
            });
            match reference.and_then(|r| self.lookup_ref(r)) {
                Some(next) => node = next,
                None => return node,
            }
        }
        node
    }

    /// The schema of property `name` of an object node, resolved.
    pub fn property<'a>(&'a self, node: &'a Value, name: &str) -> Option<&'a Value> {
        let node = self.resolve(node);
        node.get("properties")
            .and_then(|p| p.get(name))
            .map(|p| self.resolve(p))
    }

    /// The schema of the items of an array node, resolved.
    pub fn items<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        let node = self.resolve(node);
        node.get("items").map(|i| self.resolve(i))
    }

    /// The schema of the values of a map node (`additionalProperties`), resolved.
    pub fn additional_properties<'a>(&'a self, node: &'a Value) -> Option<&'a Value> {
        let node = self.resolve(node);
        match node.get("additionalProperties") {
            Some(v) if v.is_object() => Some(self.resolve(v)),
            _ => None,
        }
    }
}

/// Read an `x-kubernetes-*` (or any) extension from a node, without
/// following references: extensions live on the referring property.
pub fn extension<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_refs_and_properties() {
        let mut defs = Definitions::new();
        defs.insert(
            "a.B",
            json!({"type": "object", "properties": {"x": {"type": "string"}}}),
        );
        let node = json!({"$ref": "#/definitions/a.B", "description": "d"});
        assert_eq!(
            defs.property(&node, "x"),
            Some(&json!({"type": "string"}))
        );
        let node = json!({"allOf": [{"$ref": "#/components/schemas/a.B"}]});
        assert!(defs.property(&node, "x").is_some());
        assert!(defs.property(&node, "y").is_none());
    }
}
