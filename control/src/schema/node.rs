//! A built-in schema node seen through its `$ref`.
//!
//! Built-in schemas put `x-kubernetes-*` extensions on the referring
//! property (`{"$ref": "...IntOrString", "x-kubernetes-int-or-string": true}`)
//! or on the definition itself (Quantity, IntOrString), so a [`Node`]
//! keeps both the raw property and the resolved definition.

use super::json_type::{declared_types, flag};
use super::Definitions;
use serde_json::Value;

/// What a map node says about keys it does not list.
pub(crate) enum Extra<'a> {
    /// No `additionalProperties`, or `false`: unlisted keys are unknown.
    None,
    /// `additionalProperties: true`: anything goes.
    Any,
    /// `additionalProperties: {schema}`: values follow that schema.
    Schema(Node<'a>),
}

#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub raw: &'a Value,
    pub res: &'a Value,
    defs: &'a Definitions,
}

impl<'a> Node<'a> {
    pub fn new(defs: &'a Definitions, raw: &'a Value) -> Self {
        Node {
            raw,
            res: defs.resolve(raw),
            defs,
        }
    }

    /// An extension flag set to `true` on the property or its definition.
    pub fn flag(&self, name: &str) -> bool {
        flag(self.raw, name) || flag(self.res, name)
    }

    /// The `$ref` this node was reached through, if any.
    pub fn reference(&self) -> Option<&'a str> {
        self.raw.get("$ref").and_then(Value::as_str).or_else(|| {
            self.raw
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|all| all.first())
                .and_then(|first| first.get("$ref"))
                .and_then(Value::as_str)
        })
    }

    pub fn has_properties(&self) -> bool {
        self.res.get("properties").is_some_and(Value::is_object)
    }

    pub fn property(&self, name: &str) -> Option<Node<'a>> {
        self.res
            .get("properties")
            .and_then(|p| p.get(name))
            .map(|p| Node::new(self.defs, p))
    }

    pub fn items(&self) -> Option<Node<'a>> {
        match self.res.get("items") {
            Some(i) if i.is_object() => Some(Node::new(self.defs, i)),
            _ => None,
        }
    }

    pub fn extra(&self) -> Extra<'a> {
        match self.res.get("additionalProperties") {
            Some(Value::Bool(true)) => Extra::Any,
            Some(v @ Value::Object(_)) => Extra::Schema(Node::new(self.defs, v)),
            _ => Extra::None,
        }
    }

    /// Declared types, or the type implied by `properties` / `items`.
    pub fn types(&self) -> Vec<&'a str> {
        let declared = declared_types(self.res);
        if !declared.is_empty() {
            return declared;
        }
        let declared = declared_types(self.raw);
        if !declared.is_empty() {
            return declared;
        }
        if self.has_properties() {
            vec!["object"]
        } else if self.items().is_some() {
            vec!["array"]
        } else {
            Vec::new()
        }
    }
}
