//! Lists in a strategic merge patch: replace, union of primitives, or
//! merge of objects by key, with the `$patch` directive in elements.

use super::element_order::normalize;
use super::list_kind::{list_kind, ListKind};
use super::strategic::{describe, directive, Directive, Merger, PATCH_DIRECTIVE};
use crate::json_eq::json_eq;
use super::PatchError;
use serde_json::Value;

/// The `$patch` directive of a list element, if it carries one.
fn element_directive(element: &Value, place: &str) -> Result<Option<Directive>, PatchError> {
    match element.as_object().and_then(|m| m.get(PATCH_DIRECTIVE)) {
        Some(value) => directive(value, place).map(Some),
        None => Ok(None),
    }
}

impl<'a> Merger<'a> {
    /// Merge the patch list into the live list held by property `prop`.
    pub(super) fn merge_list(
        &self,
        live: Option<&[Value]>,
        patch: &[Value],
        prop: Option<&'a Value>,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let kind = list_kind(self.defs, prop);
        match &kind {
            ListKind::Replace => replace_list(patch, path),
            ListKind::Union => union(live, patch, path),
            ListKind::ByKeys(keys) => {
                let items = prop.and_then(|p| self.defs.items(p));
                self.merge_by_keys(live, patch, &kind, keys, items, path)
            }
        }
    }

    fn merge_by_keys(
        &self,
        live: Option<&[Value]>,
        patch: &[Value],
        kind: &ListKind,
        keys: &[String],
        items: Option<&'a Value>,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let missing_key = |element: &Value| PatchError::MissingMergeKey {
            field: describe(path).to_string(),
            key: keys.join(","),
            element: element.to_string(),
        };
        let mut replace = false;
        let mut deletions = Vec::new();
        let mut changes = Vec::new();
        for (i, element) in patch.iter().enumerate() {
            let place = format!("{path}[{i}]");
            let Value::Object(fields) = element else {
                return Err(missing_key(element));
            };
            match element_directive(element, &place)? {
                Some(Directive::Replace) => {
                    replace = true;
                    continue;
                }
                Some(Directive::Delete) => {
                    deletions.push(kind.identity(element).ok_or_else(|| missing_key(element))?);
                    continue;
                }
                Some(Directive::Merge) | None => {}
            }
            let id = kind.identity(element).ok_or_else(|| missing_key(element))?;
            changes.push((place, fields, id));
        }

        let server: &[Value] = if replace { &[] } else { live.unwrap_or(&[]) };
        let deleted = |element: &Value| {
            kind.identity(element)
                .is_some_and(|id| deletions.iter().any(|d| json_eq(d, &id)))
        };
        let mut merged: Vec<Value> = server.iter().filter(|e| !deleted(e)).cloned().collect();
        for (place, fields, id) in &changes {
            let found = merged
                .iter()
                .position(|e| kind.identity(e).is_some_and(|x| json_eq(&x, id)));
            match found {
                Some(at) => {
                    let current = merged.get(at).and_then(Value::as_object);
                    match self.merge_object(current, fields, items, place)? {
                        Some(updated) => {
                            if let Some(slot) = merged.get_mut(at) {
                                *slot = Value::Object(updated);
                            }
                        }
                        None => {
                            merged.remove(at);
                        }
                    }
                }
                None => {
                    if let Some(added) = self.merge_object(None, fields, items, place)? {
                        merged.push(Value::Object(added));
                    }
                }
            }
        }
        let order: Vec<Value> = changes.into_iter().map(|(_, _, id)| id).collect();
        Ok(normalize(merged, &order, server, |v| kind.identity(v)))
    }
}

/// The patch list replaces the live one; directive elements are dropped.
fn replace_list(patch: &[Value], path: &str) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(patch.len());
    for (i, element) in patch.iter().enumerate() {
        if element_directive(element, &format!("{path}[{i}]"))?.is_none() {
            out.push(element.clone());
        }
    }
    Ok(out)
}

/// Set union of primitives: live elements first, duplicates dropped.
fn union(live: Option<&[Value]>, patch: &[Value], path: &str) -> Result<Vec<Value>, PatchError> {
    let mut replace = false;
    let mut additions = Vec::new();
    for (i, element) in patch.iter().enumerate() {
        match element_directive(element, &format!("{path}[{i}]"))? {
            Some(Directive::Replace) => replace = true,
            Some(Directive::Merge) => {}
            Some(Directive::Delete) => {
                return Err(PatchError::InvalidDirective(format!(
                    "$patch: delete is not supported in the list of primitive values at {}; use $deleteFromPrimitiveList",
                    describe(path)
                )))
            }
            None if element.is_object() => {
                return Err(PatchError::NoMergeKey {
                    field: describe(path).to_string(),
                })
            }
            None => additions.push(element.clone()),
        }
    }
    let server: &[Value] = if replace { &[] } else { live.unwrap_or(&[]) };
    let mut merged: Vec<Value> = Vec::with_capacity(server.len() + additions.len());
    for element in server.iter().chain(&additions) {
        if !merged.iter().any(|m| json_eq(m, element)) {
            merged.push(element.clone());
        }
    }
    Ok(normalize(merged, &additions, server, |v| Some(v.clone())))
}
