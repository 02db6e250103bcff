//! Kubernetes strategic merge patch (`application/strategic-merge-patch+json`)
//! on maps, and its map-level directives.
//!
//! Maps merge key by key (`null` deletes); lists merge as their schema
//! property says (see `strategic_list`). Directives in a map:
//! `$patch: replace | delete | merge`, `$retainKeys: [..]`,
//! `$deleteFromPrimitiveList/<field>: [..]`, `$setElementOrder/<field>: [..]`.
//! No directive key survives into the result. Where the schema says nothing
//! (unknown field, preserved unknown fields) maps merge like a JSON merge
//! patch and lists are replaced.

use super::element_order::normalize;
use super::list_kind::{list_kind, patch_strategies, ListKind};
use crate::json_eq::json_eq;
use super::PatchError;
use crate::schema::Definitions;
use serde_json::{Map, Value};

pub(super) const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Apply a strategic merge patch to `doc`. `schema` is the schema node of
/// the object's type (for example the `io.k8s.api.apps.v1.Deployment`
/// definition); nested types are reached through `defs`.
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    defs: &Definitions,
    schema: &Value,
) -> Result<Value, PatchError> {
    let Value::Object(changes) = patch else {
        return Err(PatchError::Malformed(format!(
            "strategic merge patch must be a JSON object, got: {patch}"
        )));
    };
    let merger = Merger { defs };
    let merged = merger.merge_object(doc.as_object(), changes, Some(schema), "")?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// What a `$patch` directive asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Directive {
    Replace,
    Delete,
    Merge,
}

/// Read the value of a `$patch` directive found at `place`.
pub(super) fn directive(value: &Value, place: &str) -> Result<Directive, PatchError> {
    match value.as_str() {
        Some("replace") => Ok(Directive::Replace),
        Some("delete") => Ok(Directive::Delete),
        Some("merge") => Ok(Directive::Merge),
        _ => Err(PatchError::InvalidDirective(format!(
            "unknown patch type: {value} at {}: $patch must be one of \"replace\", \"delete\", \"merge\"",
            describe(place)
        ))),
    }
}

/// A field path for messages; the root has none.
pub(super) fn describe(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Walks patch and live object together with the schema.
pub(super) struct Merger<'a> {
    pub(super) defs: &'a Definitions,
}

impl<'a> Merger<'a> {
    /// The (unresolved) schema node of field `key` of an object of type
    /// `node`: a declared property, else the map value schema.
    fn child(&self, node: Option<&'a Value>, key: &str) -> Option<&'a Value> {
        let node = self.defs.resolve(node?);
        if let Some(prop) = node.get("properties").and_then(|p| p.get(key)) {
            return Some(prop);
        }
        node.get("additionalProperties").filter(|v| v.is_object())
    }

    /// Merge `patch` into the map `live` (absent: merge into nothing).
    /// `None` means the map is deleted (`$patch: delete`).
    pub(super) fn merge_object(
        &self,
        live: Option<&Map<String, Value>>,
        patch: &Map<String, Value>,
        node: Option<&'a Value>,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        let mut live = live;
        if let Some(value) = patch.get(PATCH_DIRECTIVE) {
            match directive(value, path)? {
                Directive::Delete => return Ok(None),
                Directive::Replace => live = None,
                Directive::Merge => {}
            }
        }
        let mut out = live.cloned().unwrap_or_default();
        if let Some(keep) = patch.get(RETAIN_KEYS) {
            retain_keys(&mut out, patch, keep, path)?;
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                delete_from_primitive_list(&mut out, field, value, path)?;
            }
        }
        for (key, value) in patch {
            if is_directive_key(key) {
                continue;
            }
            if value.is_null() {
                out.shift_remove(key);
                continue;
            }
            let prop = self.child(node, key);
            match self.merge_value(out.get(key), value, prop, &join(path, key))? {
                Some(merged) => {
                    out.insert(key.clone(), merged);
                }
                None => {
                    out.shift_remove(key);
                }
            }
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
                let prop = self.child(node, field);
                let server = live.and_then(|l| l.get(field)).and_then(Value::as_array);
                self.set_element_order(&mut out, field, value, prop, server, path)?;
            }
        }
        Ok(Some(out))
    }

    /// Merge one field value; `None` means the field goes away.
    fn merge_value(
        &self,
        live: Option<&Value>,
        patch: &Value,
        prop: Option<&'a Value>,
        path: &str,
    ) -> Result<Option<Value>, PatchError> {
        match patch {
            Value::Object(changes) => {
                let replace = patch_strategies(self.defs, prop).contains(&"replace");
                let base = if replace { None } else { live.and_then(Value::as_object) };
                Ok(self.merge_object(base, changes, prop, path)?.map(Value::Object))
            }
            Value::Array(items) => {
                let base = live.and_then(Value::as_array).map(Vec::as_slice);
                Ok(Some(Value::Array(self.merge_list(base, items, prop, path)?)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Reorder the merged list `field` of `out` per `$setElementOrder/<field>`.
    fn set_element_order(
        &self,
        out: &mut Map<String, Value>,
        field: &str,
        order: &Value,
        prop: Option<&'a Value>,
        server: Option<&Vec<Value>>,
        path: &str,
    ) -> Result<(), PatchError> {
        let invalid = |why: String| {
            PatchError::InvalidDirective(format!(
                "invalid $setElementOrder/{field} directive at {}: {why}",
                describe(path)
            ))
        };
        let Value::Array(order) = order else {
            return Err(invalid(format!("it must be a list, got: {order}")));
        };
        let kind = list_kind(self.defs, prop);
        if kind == ListKind::Replace {
            return Ok(());
        }
        let mut order_ids = Vec::with_capacity(order.len());
        for element in order {
            let id = match (&kind, element) {
                (ListKind::Union, Value::Object(_) | Value::Array(_)) => None,
                _ => kind.identity(element),
            };
            match id {
                Some(id) => order_ids.push(id),
                None => {
                    return Err(invalid(match &kind {
                        ListKind::ByKeys(keys) => format!(
                            "element {element} does not contain the merge key {}",
                            keys.join(",")
                        ),
                        _ => format!("element {element} is not a primitive value"),
                    }))
                }
            }
        }
        if let Some(Value::Array(list)) = out.get_mut(field) {
            let merged = std::mem::take(list);
            let server = server.map(Vec::as_slice).unwrap_or(&[]);
            *list = normalize(merged, &order_ids, server, |v| kind.identity(v));
        }
        Ok(())
    }
}

/// `$retainKeys`: drop every live key not listed. Keys the patch sets must
/// be listed too.
fn retain_keys(
    out: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    keep: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let names: Option<Vec<&str>> = keep
        .as_array()
        .and_then(|list| list.iter().map(Value::as_str).collect());
    let Some(names) = names else {
        return Err(PatchError::InvalidDirective(format!(
            "invalid $retainKeys directive at {}: it must be a list of field names, got: {keep}",
            describe(path)
        )));
    };
    if let Some((key, _)) = patch
        .iter()
        .find(|(k, v)| !is_directive_key(k) && !v.is_null() && !names.contains(&k.as_str()))
    {
        return Err(PatchError::InvalidDirective(format!(
            "the patch sets field {key:?} at {} which is not listed in $retainKeys {keep}",
            describe(path)
        )));
    }
    out.retain(|k, _| names.contains(&k.as_str()));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: remove the listed values.
fn delete_from_primitive_list(
    out: &mut Map<String, Value>,
    field: &str,
    values: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let remove = match values {
        Value::Null => return Ok(()),
        Value::Array(list) if list.iter().all(|v| !v.is_object() && !v.is_array()) => list,
        other => {
            return Err(PatchError::InvalidDirective(format!(
                "invalid $deleteFromPrimitiveList/{field} directive at {}: it must be a list of primitive values, got: {other}",
                describe(path)
            )))
        }
    };
    if let Some(Value::Array(list)) = out.get_mut(field) {
        list.retain(|element| !remove.iter().any(|r| json_eq(r, element)));
    }
    Ok(())
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
