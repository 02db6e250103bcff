//! Small helpers shared by the validators: tolerant JSON accessors (a field
//! of the wrong type reads as absent, never panics) and the error
//! constructors upstream uses that `FieldError` has no shortcut for.

use super::path::Path;
use crate::field_error::{ErrorType, FieldError};
use serde_json::{json, Map, Value};

pub(crate) type Errs = Vec<FieldError>;

/// `field is immutable`
pub(crate) const IMMUTABLE: &str = "field is immutable";
/// `must be greater than or equal to 0`
pub(crate) const NEGATIVE: &str = "must be greater than or equal to 0";
/// `must be greater than zero`
pub(crate) const NOT_POSITIVE: &str = "must be greater than zero";

/// The field if present and not `null`.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A string field, `""` when absent (Go's zero value).
pub(crate) fn string<'a>(v: &'a Value, key: &str) -> &'a str {
    str_of(v, key).unwrap_or("")
}

pub(crate) fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(as_int)
}

/// An integer, also from a float with no fraction (`3.0` from YAML).
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
}

pub(crate) fn bool_of(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// A list field, empty when absent or not a list.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub(crate) fn map_of<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// `obj.a.b.c`, or `None` when any step is missing.
pub(crate) fn at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |cur, k| get(cur, k))
}

/// `Not found: "x"`
pub(crate) fn not_found(path: &Path, value: &str) -> FieldError {
    FieldError::new(ErrorType::NotFound, path, Some(json!(value)), "")
}

/// `Too long: may not be more than N bytes`
pub(crate) fn too_long(path: &Path, max: usize) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    FieldError::new(ErrorType::TooLong, path, None, format!("may not be more than {max} {unit}"))
}

/// `Invalid value: <raw>: detail`, for values upstream prints with Go's
/// `%v`/`%#v` (maps, structs, IntOrString) rather than as JSON.
pub(crate) fn invalid_raw(path: &Path, raw: &str, detail: &str) -> FieldError {
    FieldError::new(ErrorType::Invalid, path, None, format!("{raw}: {detail}"))
}

/// `Unsupported value: <raw>: supported values: ...` with a Go-printed value.
pub(crate) fn not_supported_raw(path: &Path, raw: &str, supported: &[&str]) -> FieldError {
    let list = supported.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
    FieldError::new(ErrorType::NotSupported, path, None, format!("{raw}: supported values: {list}"))
}

/// `ValidateNonnegativeField` on an optional integer field of `parent`.
pub(crate) fn nonnegative(parent: &Value, key: &str, path: &Path, errs: &mut Errs) {
    if let Some(n) = int_of(parent, key) {
        if n < 0 {
            errs.push(FieldError::invalid(path.child(key), json!(n), NEGATIVE));
        }
    }
}

/// `ValidatePositiveField` on an optional integer field of `parent`.
pub(crate) fn positive(parent: &Value, key: &str, path: &Path, errs: &mut Errs) {
    if let Some(n) = int_of(parent, key) {
        if n <= 0 {
            errs.push(FieldError::invalid(path.child(key), json!(n), NOT_POSITIVE));
        }
    }
}

/// `ValidateImmutableField`: `Invalid value: <new>: field is immutable`.
pub(crate) fn immutable(new: Option<&Value>, old: Option<&Value>, path: &Path, errs: &mut Errs) {
    if !semantic_eq(new, old) {
        errs.push(FieldError::invalid(path, new.cloned().unwrap_or(Value::Null), IMMUTABLE));
    }
}

/// Equality in the sense of upstream's `Semantic.DeepEqual` on decoded
/// objects: absent, `null`, `[]` and `{}` are all the zero value, and
/// integers compare by value whatever their JSON spelling.
pub(crate) fn semantic_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Null => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(Value::Array(items.iter().map(|i| normalize(Some(i)).unwrap_or(Value::Null)).collect())),
        Value::Object(m) => {
            let mut out: Vec<(String, Value)> =
                m.iter().filter_map(|(k, x)| normalize(Some(x)).map(|x| (k.clone(), x))).collect();
            if out.is_empty() {
                return None;
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Some(Value::Object(out.into_iter().collect()))
        }
        Value::Number(n) => match as_int(&Value::Number(n.clone())) {
            Some(i) => Some(json!(i)),
            None => Some(Value::Number(n.clone())),
        },
        other => Some(other.clone()),
    }
}

/// `IsValidPortNum`
pub(crate) fn port_num_errors(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// `IsValidPortName` (IANA service names).
pub(crate) fn port_name_errors(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if port.is_empty() || !port.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `ValidatePortNumOrName` on an IntOrString port at `path` (absent = 0).
pub(crate) fn port_num_or_name(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    match v {
        Some(Value::String(s)) => {
            for msg in port_name_errors(s) {
                errs.push(FieldError::invalid(path, json!(s), msg));
            }
        }
        other => {
            let n = other.and_then(as_int).unwrap_or(0);
            for msg in port_num_errors(n) {
                errs.push(FieldError::invalid(path, json!(n), msg));
            }
        }
    }
}

/// Each message of a name check as `Invalid value: "<value>": <msg>`.
pub(crate) fn push_msgs(errs: &mut Errs, path: &Path, value: &str, msgs: Vec<String>) {
    for msg in msgs {
        errs.push(FieldError::invalid(path, json!(value), msg));
    }
}

/// The supported-values check upstream writes as a `switch`: empty gives
/// `Required value`, anything else outside `supported` `Unsupported value`.
pub(crate) fn one_of(value: Option<&str>, supported: &[&str], path: &Path, errs: &mut Errs) {
    match value {
        None | Some("") => errs.push(FieldError::required(path, "")),
        Some(v) if supported.contains(&v) => {}
        Some(v) => errs.push(FieldError::not_supported(path, json!(v), supported)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_equality_ignores_empty_and_number_spelling() {
        assert!(semantic_eq(Some(&json!({"a": [], "b": null, "c": 1})), Some(&json!({"c": 1.0}))));
        assert!(semantic_eq(None, Some(&json!({}))));
        assert!(!semantic_eq(Some(&json!({"a": 1})), Some(&json!({"a": 2}))));
    }

    #[test]
    fn port_names_follow_iana_rules() {
        assert!(port_name_errors("http").is_empty());
        assert_eq!(port_name_errors("a--b"), vec!["must not contain consecutive hyphens"]);
        assert_eq!(port_name_errors("123"), vec!["must contain at least one letter (a-z)"]);
        assert_eq!(port_name_errors("this-is-far-too-long")[0], "must be no more than 15 characters");
    }
}
