//! How a list merges in a strategic merge patch, read from the schema
//! extensions of the property that holds it.
//!
//! Extensions sit on the referring property node (next to `$ref`); for
//! inline schemas (CRDs) the property node is the concrete node, so the
//! resolved node is consulted only when the property node has nothing.

use crate::schema::Definitions;
use serde_json::Value;

/// The merge behaviour of one list field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// The patch list replaces the live list (no strategy, `replace`,
    /// `x-kubernetes-list-type: atomic`, or no schema information).
    Replace,
    /// Set union of primitives, live order first (`merge` without a merge
    /// key, or `x-kubernetes-list-type: set`).
    Union,
    /// Elements are objects identified by these keys and merged pairwise
    /// (`merge` with `x-kubernetes-patch-merge-key`, or
    /// `x-kubernetes-list-type: map` with `x-kubernetes-list-map-keys`).
    ByKeys(Vec<String>),
}

impl ListKind {
    /// What identifies an element: the values of the keys for a keyed
    /// list (`None` if the element has none of them), the element itself
    /// otherwise.
    pub(crate) fn identity(&self, element: &Value) -> Option<Value> {
        match self {
            ListKind::ByKeys(keys) => {
                let fields = element.as_object()?;
                let values: Vec<Value> = keys
                    .iter()
                    .map(|k| fields.get(k).cloned().unwrap_or(Value::Null))
                    .collect();
                if values.iter().all(Value::is_null) {
                    None
                } else {
                    Some(Value::Array(values))
                }
            }
            ListKind::Union | ListKind::Replace => Some(element.clone()),
        }
    }
}

/// An extension of a property: on the property node, else on the node it
/// refers to.
pub(crate) fn extension<'a>(defs: &'a Definitions, prop: &'a Value, name: &str) -> Option<&'a Value> {
    prop.get(name).or_else(|| defs.resolve(prop).get(name))
}

/// The tokens of `x-kubernetes-patch-strategy` (`merge,retainKeys`).
pub(crate) fn patch_strategies<'a>(defs: &'a Definitions, prop: Option<&'a Value>) -> Vec<&'a str> {
    prop.and_then(|p| extension(defs, p, "x-kubernetes-patch-strategy"))
        .and_then(Value::as_str)
        .map(|s| s.split(',').map(str::trim).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default()
}

/// The merge behaviour of the list held by property `prop`.
pub(crate) fn list_kind(defs: &Definitions, prop: Option<&Value>) -> ListKind {
    let Some(prop) = prop else {
        return ListKind::Replace;
    };
    let strategies = patch_strategies(defs, Some(prop));
    if !strategies.is_empty() {
        if !strategies.contains(&"merge") {
            return ListKind::Replace;
        }
        return match extension(defs, prop, "x-kubernetes-patch-merge-key").and_then(Value::as_str) {
            Some(key) if !key.is_empty() => ListKind::ByKeys(vec![key.to_string()]),
            _ => ListKind::Union,
        };
    }
    match extension(defs, prop, "x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListKind::Union,
        Some("map") => {
            let keys: Vec<String> = extension(defs, prop, "x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).map(String::from).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                ListKind::Replace
            } else {
                ListKind::ByKeys(keys)
            }
        }
        _ => ListKind::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_patch_strategy_before_list_type() {
        let defs = Definitions::new();
        let kind = |p: Value| list_kind(&defs, Some(&p));
        assert_eq!(
            kind(json!({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "port",
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"]})),
            ListKind::ByKeys(vec!["port".into()])
        );
        assert_eq!(kind(json!({"x-kubernetes-patch-strategy": "merge"})), ListKind::Union);
        assert_eq!(
            kind(json!({"x-kubernetes-patch-strategy": "replace", "x-kubernetes-list-type": "set"})),
            ListKind::Replace
        );
        assert_eq!(
            kind(json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["a", "b"]})),
            ListKind::ByKeys(vec!["a".into(), "b".into()])
        );
        assert_eq!(kind(json!({"x-kubernetes-list-type": "set"})), ListKind::Union);
        assert_eq!(kind(json!({"x-kubernetes-list-type": "atomic"})), ListKind::Replace);
        assert_eq!(kind(json!({"type": "array"})), ListKind::Replace);
        assert_eq!(list_kind(&defs, None), ListKind::Replace);
    }

    #[test]
    fn identity_of_keyed_elements() {
        let kind = ListKind::ByKeys(vec!["port".into(), "protocol".into()]);
        assert_eq!(kind.identity(&json!({"port": 80, "x": 1})), Some(json!([80, null])));
        assert_eq!(kind.identity(&json!({"x": 1})), None);
        assert_eq!(kind.identity(&json!("a")), None);
        assert_eq!(ListKind::Union.identity(&json!("a")), Some(json!("a")));
    }
}
