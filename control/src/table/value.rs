//! Lenient readers over JSON objects: a missing, `null` or mistyped field
//! reads as the Go zero value (empty string, 0, false, empty list), which is
//! what upstream's printers see for an unset field.

use serde_json::{Map, Value};

/// The value at `path`, or `None` when absent or `null`.
pub(super) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// The string at `path`, if it is a string.
pub(super) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)?.as_str()
}

/// The string at `path`, or `""`.
pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

/// The integer at `path` (a float is truncated), if it is a number.
pub(super) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    let n = get(v, path)?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if let Some(u) = n.as_u64() {
        return Some(i64::try_from(u).unwrap_or(i64::MAX));
    }
    // Saturating float-to-int conversion; stored objects only hold whole numbers here.
    n.as_f64().map(|f| f as i64)
}

/// The integer at `path`, or 0.
pub(super) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path`, if it is a boolean.
pub(super) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path)?.as_bool()
}

/// The boolean at `path`, or false.
pub(super) fn bool_at(v: &Value, path: &[&str]) -> bool {
    opt_bool(v, path).unwrap_or(false)
}

/// The array at `path`, or an empty slice.
pub(super) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, if it is an object.
pub(super) fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path)?.as_object()
}

/// The number of entries of the object at `path` (0 when absent).
pub(super) fn obj_len(v: &Value, path: &[&str]) -> usize {
    obj_at(v, path).map(Map::len).unwrap_or(0)
}

/// An int-or-string / quantity field rendered as text (`"50%"`, `3`, `"1Gi"`).
pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The first element of `list` whose `key` field equals `value`.
pub(super) fn find_by<'a>(list: &'a [Value], key: &str, value: &str) -> Option<&'a Value> {
    list.iter().find(|item| str_at(item, &[key]) == value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_reads() {
        let v = json!({"a": {"b": 3, "s": "x", "n": null, "f": 2.9, "l": [1]}});
        assert_eq!(int_at(&v, &["a", "b"]), 3);
        assert_eq!(int_at(&v, &["a", "f"]), 2);
        assert_eq!(int_at(&v, &["a", "s"]), 0);
        assert_eq!(str_at(&v, &["a", "s"]), "x");
        assert_eq!(str_at(&v, &["a", "b"]), "");
        assert!(get(&v, &["a", "n"]).is_none());
        assert_eq!(arr_at(&v, &["a", "l"]).len(), 1);
        assert_eq!(arr_at(&v, &["a", "s"]).len(), 0);
        assert_eq!(obj_len(&v, &["a"]), 5);
        assert!(!bool_at(&v, &["a", "b"]));
    }
}
