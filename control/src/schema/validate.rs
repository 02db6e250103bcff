//! OpenAPI v3 validation of custom resources against their CRD schema.
//!
//! Covers type (with `nullable` and `x-kubernetes-int-or-string`), format,
//! enum, required, minimum/maximum (and their exclusive forms), multipleOf,
//! minLength/maxLength, pattern, minItems/maxItems/uniqueItems,
//! minProperties/maxProperties, allOf/anyOf/oneOf/not, properties and
//! additionalProperties (schema or boolean), then the
//! `x-kubernetes-list-type` set/map uniqueness and embedded-resource
//! `apiVersion`/`kind` checks (see `list_checks`). Messages keep the upstream
//! wording: `spec.size: Invalid value: 20: spec.size in body should be less
//! than or equal to 10`, `spec.x: Required value`, `spec.color: Unsupported
//! value: "pink": supported values: "red", "blue"`.
//!
//! Not covered: `x-kubernetes-validations` (CEL rules are ignored), and
//! metadata rules beyond what the schema itself says (name format etc. is
//! the caller's ObjectMeta validation). CRD schemas carry no `$ref`, so this
//! walker does not take [`super::Definitions`].

use super::formats::valid_format;
use crate::goquote::go_quote;
use crate::json_eq::json_eq as json_equal;
use super::json_type::{
    declared_types, flag, go_number, in_body, is_integral, matches_type, type_error,
};
use super::list_checks;
use super::path::{child, index, join};
use crate::field_error::{ErrorType, FieldError};
use regex::Regex;
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};

/// Validate a custom resource (or any value) against an OpenAPI v3 schema.
pub fn validate(obj: &Value, schema: &Value) -> Vec<FieldError> {
    validate_at(obj, schema, "")
}

/// Like [`validate`], with every field path below `base` (used to check a
/// schema's `default` values at `...properties[x].default`). Message
/// subjects stay relative to the validated value, as upstream prints them.
pub fn validate_at(obj: &Value, schema: &Value, base: &str) -> Vec<FieldError> {
    let mut validator = Validator {
        base,
        patterns: HashMap::new(),
    };
    let mut out = Vec::new();
    validator.node(obj, schema, "", &mut out);
    out.extend(list_checks::check(obj, schema, base));
    out
}

struct Validator<'b> {
    base: &'b str,
    patterns: HashMap<String, Option<Regex>>,
}

/// The types a node accepts: its `type`, or integer and string for
/// `x-kubernetes-int-or-string`.
fn effective_types(s: &Value) -> Vec<&str> {
    let declared = declared_types(s);
    if declared.is_empty() && flag(s, "x-kubernetes-int-or-string") {
        return vec!["integer", "string"];
    }
    declared
}

/// A non-negative whole number keyword (`maxLength: 5`).
fn count_keyword(s: &Value, name: &str) -> Option<u64> {
    let n = s.get(name)?.as_number()?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `data` is a multiple of `factor`, with the tolerance upstream allows.
fn is_multiple(data: f64, factor: f64) -> bool {
    let mult = if factor < 1.0 {
        (1.0 / factor) * data
    } else {
        data / factor
    };
    if !mult.is_finite() {
        return false;
    }
    let whole = mult.trunc();
    if mult == whole {
        return true;
    }
    (mult - whole).abs() / (mult.abs() + whole.abs()) < 1e-9
}

impl Validator<'_> {
    fn field(&self, rel: &str) -> String {
        join(self.base, rel)
    }

    fn invalid(&self, rel: &str, value: Value, detail: String) -> FieldError {
        FieldError::invalid(self.field(rel), value, detail)
    }

    /// Errors about a junctor (`allOf`, ...): no value, subject without "in body".
    fn junctor_error(&self, rel: &str, message: &str) -> FieldError {
        let detail = if rel.is_empty() {
            message.to_string()
        } else {
            format!("{rel} {message}")
        };
        self.invalid(rel, Value::String(String::new()), detail)
    }

    fn node(&mut self, v: &Value, s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        if !s.is_object() {
            return;
        }
        let types = effective_types(s);
        if v.is_null() {
            if !flag(s, "nullable") && !types.is_empty() {
                out.push(type_error(&self.field(rel), rel, v, &types.join(",")));
            }
            return;
        }
        if !types.is_empty() && !types.iter().any(|t| matches_type(v, t)) {
            out.push(type_error(&self.field(rel), rel, v, &types.join(",")));
            return;
        }
        self.junctors(v, s, rel, out);
        match v {
            Value::String(text) => self.string(v, text, s, rel, out),
            Value::Number(n) => self.number(v, n, s, rel, out),
            Value::Array(items) => self.array(items, s, rel, out),
            _ => {}
        }
        self.enumeration(v, s, rel, out);
        if let Value::Object(map) = v {
            self.object(map, s, rel, out);
        }
    }

    fn sub(&mut self, v: &Value, s: &Value, rel: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        self.node(v, s, rel, &mut errs);
        errs
    }

    fn junctors(&mut self, v: &Value, s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        if let Some(all) = s.get("allOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let mut failed = 0;
            for sub in all {
                let errs = self.sub(v, sub, rel);
                if !errs.is_empty() {
                    failed += 1;
                    out.extend(errs);
                }
            }
            if failed > 0 {
                let none = if failed == all.len() { ". None validated" } else { "" };
                out.push(self.junctor_error(rel, &format!("must validate all the schemas (allOf){none}")));
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let mut best: Option<Vec<FieldError>> = None;
            let mut matched = false;
            for sub in any {
                let errs = self.sub(v, sub, rel);
                if errs.is_empty() {
                    matched = true;
                    break;
                }
                if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if !matched {
                out.push(self.junctor_error(rel, "must validate at least one schema (anyOf)"));
                out.extend(best.unwrap_or_default());
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let mut best: Option<Vec<FieldError>> = None;
            let mut valid = 0;
            for sub in one {
                let errs = self.sub(v, sub, rel);
                if errs.is_empty() {
                    valid += 1;
                } else if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if valid == 0 {
                out.push(self.junctor_error(rel, "must validate one and only one schema (oneOf). Found none valid"));
                out.extend(best.unwrap_or_default());
            } else if valid > 1 {
                out.push(self.junctor_error(
                    rel,
                    &format!("must validate one and only one schema (oneOf). Found {valid} valid alternatives"),
                ));
            }
        }
        if let Some(not) = s.get("not").filter(|n| n.is_object()) {
            if self.sub(v, not, rel).is_empty() {
                out.push(self.junctor_error(rel, "must not validate the schema (not)"));
            }
        }
    }

    fn pattern_matches(&mut self, pattern: &str, text: &str) -> Option<bool> {
        let re = self
            .patterns
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).ok());
        re.as_ref().map(|re| re.is_match(text))
    }

    fn string(&mut self, v: &Value, text: &str, s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        let len = text.chars().count() as u64;
        if let Some(max) = count_keyword(s, "maxLength") {
            if len > max {
                out.push(FieldError::new(
                    ErrorType::TooLong,
                    self.field(rel),
                    None,
                    format!("may not be more than {}", plural(max, "byte", "bytes")),
                ));
            }
        }
        if let Some(min) = count_keyword(s, "minLength") {
            if len < min {
                out.push(self.invalid(
                    rel,
                    v.clone(),
                    format!("{} should be at least {min} chars long", in_body(rel)),
                ));
            }
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
            if self.pattern_matches(pattern, text) == Some(false) {
                out.push(self.invalid(rel, v.clone(), format!("{} should match '{pattern}'", in_body(rel))));
            }
        }
        if let Some(format) = s.get("format").and_then(Value::as_str) {
            if !valid_format(format, text) {
                out.push(self.invalid(
                    rel,
                    v.clone(),
                    format!("{} must be of type {format}: {}", in_body(rel), go_quote(text)),
                ));
            }
        }
    }

    fn number(&mut self, v: &Value, n: &Number, s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        let Some(x) = n.as_f64() else { return };
        if let Some(factor) = s.get("multipleOf").and_then(Value::as_number) {
            if let Some(f) = factor.as_f64().filter(|f| *f > 0.0) {
                let exact = match (n.as_i64(), factor.as_i64()) {
                    (Some(a), Some(b)) if is_integral(n) && b != 0 => Some(a % b == 0),
                    _ => None,
                };
                if !exact.unwrap_or_else(|| is_multiple(x, f)) {
                    out.push(self.invalid(
                        rel,
                        v.clone(),
                        format!("{} should be a multiple of {}", in_body(rel), go_number(factor)),
                    ));
                }
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_number) {
            let m = max.as_f64().unwrap_or(f64::INFINITY);
            if flag(s, "exclusiveMaximum") {
                if x >= m {
                    out.push(self.invalid(
                        rel,
                        v.clone(),
                        format!("{} should be less than {}", in_body(rel), go_number(max)),
                    ));
                }
            } else if x > m {
                out.push(self.invalid(
                    rel,
                    v.clone(),
                    format!("{} should be less than or equal to {}", in_body(rel), go_number(max)),
                ));
            }
        }
        if let Some(min) = s.get("minimum").and_then(Value::as_number) {
            let m = min.as_f64().unwrap_or(f64::NEG_INFINITY);
            if flag(s, "exclusiveMinimum") {
                if x <= m {
                    out.push(self.invalid(
                        rel,
                        v.clone(),
                        format!("{} should be greater than {}", in_body(rel), go_number(min)),
                    ));
                }
            } else if x < m {
                out.push(self.invalid(
                    rel,
                    v.clone(),
                    format!("{} should be greater than or equal to {}", in_body(rel), go_number(min)),
                ));
            }
        }
    }

    fn array(&mut self, items: &[Value], s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        let len = items.len() as u64;
        if let Some(min) = count_keyword(s, "minItems") {
            if len < min {
                out.push(self.invalid(
                    rel,
                    Value::from(len),
                    format!("{} should have at least {min} items", in_body(rel)),
                ));
            }
        }
        if let Some(max) = count_keyword(s, "maxItems") {
            if len > max {
                out.push(too_many(self.field(rel), len, max));
            }
        }
        if flag(s, "uniqueItems") {
            let mut seen = HashSet::new();
            if !items.iter().all(|x| seen.insert(list_checks::canonical(x))) {
                out.push(self.invalid(
                    rel,
                    Value::String(String::new()),
                    format!("{} shouldn't contain duplicates", in_body(rel)),
                ));
            }
        }
        if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
            for (i, x) in items.iter().enumerate() {
                self.node(x, item_schema, &index(rel, i), out);
            }
        }
    }

    fn enumeration(&mut self, v: &Value, s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        let Some(allowed) = s.get("enum").and_then(Value::as_array).filter(|e| !e.is_empty()) else {
            return;
        };
        if allowed.iter().any(|a| json_equal(a, v)) {
            return;
        }
        let names: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        out.push(FieldError::not_supported(self.field(rel), v.clone(), &refs));
    }

    fn object(&mut self, map: &Map<String, Value>, s: &Value, rel: &str, out: &mut Vec<FieldError>) {
        let count = map.len() as u64;
        if let Some(max) = count_keyword(s, "maxProperties") {
            if count > max {
                out.push(too_many(self.field(rel), count, max));
            }
        }
        if let Some(min) = count_keyword(s, "minProperties") {
            if count < min {
                out.push(self.invalid(
                    rel,
                    Value::from(count),
                    format!("{} should have at least {min} properties", in_body(rel)),
                ));
            }
        }
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    out.push(FieldError::required(self.field(&child(rel, name)), ""));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let extra = s.get("additionalProperties");
        for (k, x) in map {
            let here = child(rel, k);
            if let Some(prop) = props.and_then(|p| p.get(k)) {
                self.node(x, prop, &here, out);
            } else {
                match extra {
                    Some(values @ Value::Object(_)) => self.node(x, values, &here, out),
                    Some(Value::Bool(false)) => {
                        out.push(self.invalid(
                            rel,
                            Value::String(k.clone()),
                            format!("{} is a forbidden property", in_body(&here)),
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `Too many: 5: must have at most 3 items`.
pub(crate) fn too_many(field: String, actual: u64, max: u64) -> FieldError {
    FieldError::new(
        ErrorType::TooMany,
        field,
        Some(Value::from(actual)),
        format!("must have at most {}", plural(max, "item", "items")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn crd() -> Value {
        json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "required": ["color", "x"], "properties": {
                "color": {"type": "string", "enum": ["red", "blue"]},
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "x": {"type": "string"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
                "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1, "multipleOf": 0.25},
                "port": {"x-kubernetes-int-or-string": true},
                "note": {"type": "string", "nullable": true},
                "when": {"type": "string", "format": "date-time"},
                "items": {"type": "array", "maxItems": 3, "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "count": {"type": "integer", "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}}
                }}},
                "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}}
            }}
        }})
    }

    fn valid_obj() -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"color": "red", "x": "y", "size": 3, "name": "abc", "ratio": 0.5, "port": "http",
                "note": null, "when": "2024-01-02T03:04:05Z",
                "items": [{"name": "a", "count": 0, "tags": ["t"]}], "labels": {"a": "b"}}})
    }

    #[test]
    fn a_valid_object_passes() {
        assert_eq!(messages(&validate(&valid_obj(), &crd())), Vec::<String>::new());
        let mut obj = valid_obj();
        obj["spec"]["port"] = json!(8080);
        assert!(validate(&obj, &crd()).is_empty());
    }

    #[test]
    fn enum_bounds_and_required_use_upstream_wording() {
        let obj = json!({"spec": {"color": "pink", "size": 20}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec![
                "spec.x: Required value",
                "spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\"",
                "spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10",
            ]
        );
        let obj = json!({"spec": {"color": "red", "x": "", "size": 0}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec!["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"]
        );
    }

    #[test]
    fn strings_numbers_and_formats() {
        let obj = json!({"spec": {"color": "red", "x": "y", "name": "Bad", "ratio": 1, "when": "tomorrow"}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec![
                "spec.name: Invalid value: \"Bad\": spec.name in body should match '^[a-z]+$'",
                "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
                "spec.when: Invalid value: \"tomorrow\": spec.when in body must be of type date-time: \"tomorrow\"",
            ]
        );
        let obj = json!({"spec": {"color": "red", "x": "y", "name": "toolongname", "ratio": 0.3}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec![
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.ratio: Invalid value: 0.3: spec.ratio in body should be a multiple of 0.25",
            ]
        );
        let obj = json!({"spec": {"color": "red", "x": "y", "name": "a"}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec!["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"]
        );
    }

    #[test]
    fn types_nullable_and_int_or_string() {
        let obj =
            json!({"spec": {"color": "red", "x": null, "size": "3", "port": true, "note": null, "labels": {"a": 1}}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec![
                "spec.x: Invalid value: \"null\": spec.x in body must be of type string: \"null\"",
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
                "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
            ]
        );
    }

    #[test]
    fn nested_arrays_of_objects() {
        let obj = json!({"spec": {"color": "red", "x": "y", "items": [
            {"name": "a", "count": -1}, {"count": 2, "tags": ["ok", 5]}, {"name": "c"}, {"name": "d"}
        ], "labels": {"a": "1", "b": "2", "c": "3"}}});
        assert_eq!(
            messages(&validate(&obj, &crd())),
            vec![
                "spec.items: Too many: 4: must have at most 3 items",
                "spec.items[0].count: Invalid value: -1: spec.items[0].count in body should be greater than or equal to 0",
                "spec.items[1].name: Required value",
                "spec.items[1].tags[1]: Invalid value: \"integer\": spec.items[1].tags[1] in body must be of type string: \"integer\"",
                "spec.labels: Too many: 3: must have at most 2 items",
            ]
        );
    }

    #[test]
    fn junctors() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 5}]},
            "b": {"type": "string", "anyOf": [{"pattern": "^x"}, {"pattern": "^y"}]},
            "c": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
            "d": {"type": "string", "not": {"enum": ["forbidden"]}}
        }});
        assert!(validate(&json!({"a": 3, "b": "xy", "c": 20, "d": "ok"}), &schema).is_empty());
        let obj = json!({"a": 9, "b": "zz", "c": 5, "d": "forbidden"});
        assert_eq!(
            messages(&validate(&obj, &schema)),
            vec![
                "a: Invalid value: 9: a in body should be less than or equal to 5",
                "a: Invalid value: \"\": a must validate all the schemas (allOf)",
                "b: Invalid value: \"\": b must validate at least one schema (anyOf)",
                "b: Invalid value: \"zz\": b in body should match '^x'",
                "c: Invalid value: \"\": c must validate one and only one schema (oneOf). Found 2 valid alternatives",
                "d: Invalid value: \"\": d must not validate the schema (not)",
            ]
        );
    }

    #[test]
    fn additional_properties_false_and_min_counts() {
        let schema = json!({"type": "object", "minProperties": 2, "properties": {
            "list": {"type": "array", "minItems": 2, "items": {"type": "string"}}
        }, "additionalProperties": false});
        assert_eq!(
            messages(&validate(&json!({"list": ["a"], "extra": 1}), &schema)),
            vec![
                "list: Invalid value: 1: list in body should have at least 2 items",
                // upstream names the parent object and gives the key as the value
                "Invalid value: \"extra\": extra in body is a forbidden property",
            ]
        );
        assert_eq!(
            messages(&validate(&json!({"list": ["a", "b"]}), &schema)),
            vec!["Invalid value: 1: in body should have at least 2 properties"]
        );
    }

    #[test]
    fn list_types_are_unique() {
        let schema = json!({"type": "object", "properties": {
            "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {"type": "object", "required": ["port"], "properties": {
                    "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}}
        }});
        let obj = json!({"set": [1, 2, 1.0],
            "ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}]});
        assert_eq!(
            messages(&validate(&obj, &schema)),
            vec![
                "set[2]: Duplicate value: 1.0",
                "ports[2]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            ]
        );
    }

    #[test]
    fn embedded_resources_need_type_meta() {
        let schema = json!({"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}
        }});
        assert!(validate(&json!({"template": {"apiVersion": "v1", "kind": "Pod"}}), &schema).is_empty());
        assert_eq!(
            messages(&validate(&json!({"template": {"apiVersion": ""}}), &schema)),
            vec![
                "template.apiVersion: Invalid value: \"\": must not be empty",
                "template.kind: Required value: must not be empty",
            ]
        );
    }

    #[test]
    fn paths_below_a_base() {
        let schema = json!({"type": "integer", "maximum": 10});
        assert_eq!(
            messages(&validate_at(&json!(20), &schema, "x.default")),
            vec!["x.default: Invalid value: 20: in body should be less than or equal to 10"]
        );
    }
}
