//! What the schema says about the shape of a value: granular or atomic
//! maps, atomic / set / map lists and their keys.
//!
//! A [`Node`] keeps both the property node as written (extensions such as
//! `x-kubernetes-patch-merge-key` sit there, next to the `$ref`) and the
//! resolved definition (where `x-kubernetes-map-type` of a type such as
//! LabelSelector sits). An unknown node (no schema, or a
//! preserve-unknown-fields part) makes objects granular maps and lists atomic.

use super::path::{PathElement, Scalar};
use crate::schema::Definitions;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Node<'a> {
    raw: Option<&'a Value>,
    res: Option<&'a Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

impl<'a> Node<'a> {
    pub fn unknown() -> Self {
        Self::default()
    }

    pub fn of(defs: &'a Definitions, node: &'a Value) -> Self {
        if node.is_object() {
            Node { raw: Some(node), res: Some(defs.resolve(node)) }
        } else {
            Node::unknown()
        }
    }

    fn ext(&self, name: &str) -> Option<&'a Value> {
        self.raw
            .and_then(|r| r.get(name))
            .or_else(|| self.res.and_then(|r| r.get(name)))
    }

    fn ext_str(&self, name: &str) -> Option<&'a str> {
        self.ext(name).and_then(Value::as_str)
    }

    /// The schema of field `name` of an object, and whether the field is
    /// declared (a struct field) rather than a map entry.
    pub fn field(&self, defs: &'a Definitions, name: &str) -> (Node<'a>, bool) {
        let Some(res) = self.res else {
            return (Node::unknown(), false);
        };
        if let Some(prop) = res.get("properties").and_then(|p| p.get(name)) {
            return (Node::of(defs, prop), true);
        }
        match res.get("additionalProperties") {
            Some(ap) if ap.is_object() => (Node::of(defs, ap), false),
            _ => (Node::unknown(), false),
        }
    }

    pub fn has_property(&self, name: &str) -> bool {
        self.res
            .and_then(|r| r.get("properties"))
            .and_then(|p| p.get(name))
            .is_some()
    }

    pub fn items(&self, defs: &'a Definitions) -> Node<'a> {
        match self.res.and_then(|r| r.get("items")) {
            Some(items) => Node::of(defs, items),
            None => Node::unknown(),
        }
    }

    pub fn map_atomic(&self) -> bool {
        self.ext_str("x-kubernetes-map-type") == Some("atomic")
    }

    pub fn nullable(&self) -> bool {
        self.ext("nullable").and_then(Value::as_bool) == Some(true)
    }

    fn default_value(&self) -> Option<&'a Value> {
        self.ext("default").filter(|v| !v.is_null())
    }

    fn is_object_like(&self) -> bool {
        self.res.is_some_and(|r| {
            r.get("type").and_then(Value::as_str) == Some("object") || r.get("properties").is_some()
        })
    }

    pub fn list_kind(&self, defs: &'a Definitions) -> ListKind {
        if let Some(kind) = self.ext_str("x-kubernetes-list-type") {
            return match kind {
                "map" => {
                    let keys: Vec<String> = self
                        .ext("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| keys.iter().filter_map(|k| k.as_str().map(String::from)).collect())
                        .unwrap_or_default();
                    if keys.is_empty() {
                        ListKind::Atomic
                    } else {
                        ListKind::Map(keys)
                    }
                }
                "set" => ListKind::Set,
                _ => ListKind::Atomic,
            };
        }
        let merge = self
            .ext_str("x-kubernetes-patch-strategy")
            .is_some_and(|s| s.split(',').any(|part| part.trim() == "merge"));
        if !merge {
            return ListKind::Atomic;
        }
        match self.ext_str("x-kubernetes-patch-merge-key") {
            Some(key) if !key.is_empty() => ListKind::Map(vec![key.to_string()]),
            _ if self.items(defs).is_object_like() => ListKind::Atomic,
            _ => ListKind::Set,
        }
    }
}

/// The path elements of the items of a list, with the schema of its
/// items; `Ok(None)` for an atomic list. `Err` describes the first item
/// that cannot be keyed (`element 0: ...`), in upstream words.
pub(crate) fn list_elements<'a>(
    defs: &'a Definitions,
    node: Node<'a>,
    items: &[Value],
) -> Result<Option<(Node<'a>, Vec<PathElement>)>, String> {
    let item_node = node.items(defs);
    let kind = node.list_kind(defs);
    let mut out = Vec::with_capacity(items.len());
    match kind {
        ListKind::Atomic => return Ok(None),
        ListKind::Set => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(_) => {
                        return Err(format!(
                            "element {i}: associative list without keys has an element that's a map type"
                        ))
                    }
                    Value::Array(_) => {
                        return Err(format!(
                            "element {i}: not supported: associative list with lists as elements"
                        ))
                    }
                    Value::Null => {
                        return Err(format!(
                            "element {i}: associative list without keys has an element that's an explicit null"
                        ))
                    }
                    scalar => out.push(PathElement::Value(Scalar(scalar.clone()))),
                }
            }
        }
        ListKind::Map(keys) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Object(fields) = item else {
                    return Err(format!(
                        "element {i}: associative list with keys has an element that is not a map"
                    ));
                };
                let mut key = Vec::with_capacity(keys.len());
                for name in &keys {
                    let value = match fields.get(name).filter(|v| !v.is_null()) {
                        Some(v) => v.clone(),
                        None => match item_node.field(defs, name).0.default_value() {
                            Some(d) => d.clone(),
                            None => {
                                return Err(format!(
                                    "element {i}: associative list with keys has an element that omits key field {name:?} (and doesn't have default value)"
                                ))
                            }
                        },
                    };
                    key.push((name.clone(), Scalar(value)));
                }
                key.sort();
                out.push(PathElement::Key(key));
            }
        }
    }
    Ok(Some((item_node, out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Definitions {
        let mut d = Definitions::new();
        d.insert(
            "Port",
            json!({"type": "object", "properties": {
                "containerPort": {"type": "integer"},
                "protocol": {"type": "string", "default": "TCP"}
            }}),
        );
        d.insert("Selector", json!({"type": "object", "x-kubernetes-map-type": "atomic"}));
        d
    }

    #[test]
    fn reads_list_kinds_from_extensions() {
        let d = defs();
        let k = |v: Value| Node::of(&d, Box::leak(Box::new(v))).list_kind(&d);
        assert_eq!(
            k(json!({"type": "array", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name", "items": {}})),
            ListKind::Map(vec!["name".into()])
        );
        assert_eq!(
            k(json!({"type": "array", "x-kubernetes-patch-strategy": "merge,retainKeys", "x-kubernetes-patch-merge-key": "name"})),
            ListKind::Map(vec!["name".into()])
        );
        assert_eq!(
            k(json!({"type": "array", "x-kubernetes-patch-strategy": "merge", "items": {"type": "string"}})),
            ListKind::Set
        );
        assert_eq!(
            k(json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                     "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "containerPort"})),
            ListKind::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(k(json!({"type": "array", "x-kubernetes-list-type": "atomic", "x-kubernetes-patch-strategy": "merge"})), ListKind::Atomic);
        assert_eq!(k(json!({"type": "array", "items": {"type": "string"}})), ListKind::Atomic);
        assert_eq!(Node::unknown().list_kind(&d), ListKind::Atomic);
        let selector = json!({"$ref": "#/definitions/Selector"});
        assert!(Node::of(&d, &selector).map_atomic());
    }

    #[test]
    fn keys_items_using_defaults() {
        let d = defs();
        let list = json!({"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
            "items": {"$ref": "#/definitions/Port"}});
        let node = Node::of(&d, &list);
        let (_, pes) = list_elements(&d, node, &[json!({"containerPort": 80})])
            .expect("keyed")
            .expect("not atomic");
        assert_eq!(pes[0].to_fields_v1_key(), "k:{\"containerPort\":80,\"protocol\":\"TCP\"}");
        let err = list_elements(&d, node, &[json!({"protocol": "UDP"})]).expect_err("missing key");
        assert_eq!(
            err,
            "element 0: associative list with keys has an element that omits key field \"containerPort\" (and doesn't have default value)"
        );
    }
}
