//! JSON type names, type checks and number printing shared by the walkers.
//!
//! Type mismatches are reported the way custom resource validation words
//! them: `spec.replicas: Invalid value: "string": spec.replicas in body
//! must be of type integer: "string"`.

use crate::field_error::FieldError;
use serde_json::{Number, Value};

/// The OpenAPI type name of a JSON value (`integer` for whole numbers).
pub(crate) fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integral(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A whole number, whether it was written `3` or `3.0`.
pub(crate) fn is_integral(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// Whether `v` is of OpenAPI type `ty` (unknown type names accept anything).
pub(crate) fn matches_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => matches!(v, Value::Number(n) if is_integral(n)),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// The `type` of a schema node: a string, or a list of strings.
pub(crate) fn declared_types(node: &Value) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A boolean flag (`nullable`, `x-kubernetes-*`) that is literally `true`.
pub(crate) fn flag(node: &Value, name: &str) -> bool {
    node.get(name).and_then(Value::as_bool) == Some(true)
}

/// `spec.x in body` (the subject of kube-openapi messages).
pub(crate) fn in_body(path: &str) -> String {
    if path.is_empty() {
        "in body".to_string()
    } else {
        format!("{path} in body")
    }
}

/// The wrong-type error: value is the actual type name, as upstream shows it.
pub(crate) fn type_error(field: &str, name: &str, value: &Value, expected: &str) -> FieldError {
    let actual = value_type(value);
    FieldError::invalid(
        field,
        Value::String(actual.to_string()),
        format!("{} must be of type {expected}: \"{actual}\"", in_body(name)),
    )
}

/// Print a float64 like Go's `%v`: shortest digits, exponent form when the
/// exponent is below -4 or at least 6 (`1e+06`, `0.5`, `10`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    if f == 0.0 {
        return "0".to_string();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => return format!("{f}"),
    };
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Print a schema number (`maximum: 10`) the way Go prints its float64.
pub(crate) fn go_number(n: &Number) -> String {
    n.as_f64().map(go_float).unwrap_or_else(|| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
    }

    #[test]
    fn type_names_and_matching() {
        assert_eq!(value_type(&json!(3)), "integer");
        assert_eq!(value_type(&json!(3.0)), "integer");
        assert_eq!(value_type(&json!(3.5)), "number");
        assert!(matches_type(&json!(3), "number"));
        assert!(!matches_type(&json!(3.5), "integer"));
    }

    #[test]
    fn type_error_wording() {
        let e = type_error("spec.replicas", "spec.replicas", &json!("3"), "integer");
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        );
    }
}
