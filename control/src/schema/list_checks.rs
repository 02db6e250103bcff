//! Checks that follow a custom resource's schema skeleton after OpenAPI
//! validation: `x-kubernetes-list-type: set|map` uniqueness
//! (`spec.ports[1]: Duplicate value: ...`) and the `apiVersion`/`kind` an
//! embedded resource (`x-kubernetes-embedded-resource`) must carry.

use super::json_type::{flag, is_integral};
use super::path::{child, index};
use crate::field_error::FieldError;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// List-type and embedded-resource errors of `obj` against `schema`, with
/// field paths below `base`.
pub(crate) fn check(obj: &Value, schema: &Value, base: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    walk(obj, schema, base, true, &mut out);
    out
}

fn walk(v: &Value, s: &Value, path: &str, root: bool, out: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    match v {
        Value::Object(map) => {
            if !root && flag(s, "x-kubernetes-embedded-resource") {
                type_meta(map, path, out);
            }
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, x) in map {
                if let Some(prop) = props.and_then(|p| p.get(k)).or(extra) {
                    walk(x, prop, &child(path, k), false, out);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = s.get("items").filter(|i| i.is_object());
            match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => set_duplicates(items, path, out),
                Some("map") => map_duplicates(items, s, item_schema, path, out),
                _ => {}
            }
            if let Some(item_schema) = item_schema {
                for (i, x) in items.iter().enumerate() {
                    walk(x, item_schema, &index(path, i), false, out);
                }
            }
        }
        _ => {}
    }
}

fn set_duplicates(items: &[Value], path: &str, out: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, x) in items.iter().enumerate() {
        if !seen.insert(canonical(x)) {
            out.push(FieldError::duplicate(index(path, i), x.clone()));
        }
    }
}

fn map_duplicates(items: &[Value], s: &Value, item_schema: Option<&Value>, path: &str, out: &mut Vec<FieldError>) {
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        return;
    }
    let mut seen = HashSet::new();
    for (i, x) in items.iter().enumerate() {
        let Some(entry) = x.as_object() else { continue };
        let mut key = Map::new();
        for k in &keys {
            let value = entry.get(*k).cloned().or_else(|| {
                item_schema
                    .and_then(|is| is.get("properties"))
                    .and_then(|p| p.get(*k))
                    .and_then(|p| p.get("default"))
                    .cloned()
            });
            if let Some(value) = value {
                key.insert((*k).to_string(), value);
            }
        }
        let key = Value::Object(key);
        if !seen.insert(canonical(&key)) {
            out.push(FieldError::duplicate(index(path, i), key));
        }
    }
}

/// An embedded resource must say what it is.
fn type_meta(map: &Map<String, Value>, path: &str, out: &mut Vec<FieldError>) {
    for name in ["apiVersion", "kind"] {
        match map.get(name) {
            None => out.push(FieldError::required(child(path, name), "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                out.push(FieldError::invalid(
                    child(path, name),
                    Value::String(String::new()),
                    "must not be empty",
                ));
            }
            Some(Value::String(_)) => {}
            Some(other) => out.push(FieldError::invalid(
                child(path, name),
                other.clone(),
                "must be a string",
            )),
        }
    }
}

/// A string equal for equal JSON values (object keys sorted, `1` == `1.0`).
pub(crate) fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) if is_integral(n) && !n.is_i64() && !n.is_u64() => {
            out.push_str(&format!("{}", n.as_f64().unwrap_or(0.0) as i128));
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = map.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}
