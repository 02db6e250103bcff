//! Checks on a CRD version's `openAPIV3Schema` (apiextensions.k8s.io/v1):
//! the schema must be structural, use only what CRDs support, and carry
//! valid, pruned defaults.
//!
//! Errors come in upstream order: `nullable` at the root, the structural
//! errors (sorted by message, as upstream sorts them), default-value errors
//! (only when the schema is structural), then the general schema rules
//! (`crd_rules`).
//! Paths are built below a base path such as
//! `spec.versions[0].schema.openAPIV3Schema`, e.g.
//! `spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required
//! value: must not be empty for specified object fields`.
//!
//! Not checked: `x-kubernetes-validations` rules (CEL is out of scope; only
//! their absence inside logical junctors is enforced).

use super::crd_rules;
use super::json_type::flag;
use super::path::{child, index, key};
use super::prune::prune_value;
use super::validate::validate_at;
use crate::field_error::FieldError;
use regex::Regex;
use serde_json::{Map, Value};

const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
pub(super) const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
pub(super) const EMBEDDED: &str = "x-kubernetes-embedded-resource";
pub(super) const LIST_TYPE: &str = "x-kubernetes-list-type";
pub(super) const LIST_MAP_KEYS: &str = "x-kubernetes-list-map-keys";
pub(super) const MAP_TYPE: &str = "x-kubernetes-map-type";
const VALIDATIONS: &str = "x-kubernetes-validations";

/// Check a CRD schema, with paths relative to the schema itself
/// (`properties[spec].type`).
pub fn check_structural(schema: &Value) -> Vec<FieldError> {
    check_structural_at(schema, "")
}

/// Check a CRD schema found at `base`
/// (e.g. `spec.versions[0].schema.openAPIV3Schema`).
pub fn check_structural_at(schema: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !schema.is_object() {
        errs.push(FieldError::invalid(
            base,
            schema.clone(),
            "must be a JSON schema object",
        ));
        return errs;
    }
    if flag(schema, "nullable") {
        errs.push(FieldError::forbidden(
            child(base, "nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut structural = Vec::new();
    invariants(schema, Level::Root, base, &mut structural);
    completeness(schema, base, &mut structural);
    structural.sort_by_cached_key(ToString::to_string);
    let is_structural = structural.is_empty();
    errs.extend(structural);
    if is_structural {
        defaults(schema, base, true, false, &mut errs);
    }
    errs.extend(crd_rules::check(schema, base));
    errs
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

pub(super) fn type_of(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or("")
}

pub(super) fn props(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

pub(super) fn prop_iter(s: &Value) -> impl Iterator<Item = (&String, &Value)> {
    props(s).into_iter().flatten()
}

pub(super) fn object_items(s: &Value) -> Option<&Value> {
    s.get("items").filter(|i| i.is_object())
}

pub(super) fn list<'a>(s: &'a Value, name: &str) -> &'a [Value] {
    s.get(name).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub(super) fn non_empty_str(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_str).is_some_and(|v| !v.is_empty())
}

pub(super) fn is_meta_field(k: &str) -> bool {
    matches!(k, "apiVersion" | "kind" | "metadata")
}

pub(super) fn props_path(path: &str, k: &str) -> String {
    key(&child(path, "properties"), k)
}

/// `[{type: integer}, {type: string}]`, the anyOf allowed under
/// `x-kubernetes-int-or-string`.
fn is_int_or_string_any_of(any_of: Option<&Value>) -> bool {
    matches!(any_of.and_then(Value::as_array).map(Vec::as_slice),
        Some([a, b]) if *a == serde_json::json!({"type": "integer"}) && *b == serde_json::json!({"type": "string"}))
}

// ---------------------------------------------------------------------------
// Structural invariants.

fn invariants(s: &Value, lvl: Level, path: &str, out: &mut Vec<FieldError>) {
    let ty = type_of(s);
    let items = object_items(s);
    if ty == "array" && items.is_none() {
        out.push(FieldError::required(child(path, "items"), "must be specified"));
    }
    if let Some(items) = items {
        invariants(items, Level::Item, &child(path, "items"), out);
    }
    for (k, p) in prop_iter(s) {
        invariants(p, Level::Field, &props_path(path, k), out);
    }
    if let Some(extra) = s.get("additionalProperties") {
        if lvl == Level::Root {
            out.push(FieldError::forbidden(
                child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if extra.is_object() {
            invariants(extra, Level::Field, &child(path, "additionalProperties"), out);
        }
    }
    let int_or_string = flag(s, INT_OR_STRING);
    let preserve = flag(s, PRESERVE);
    let embedded = flag(s, EMBEDDED);
    if int_or_string && preserve {
        out.push(FieldError::invalid(
            child(path, PRESERVE),
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(FieldError::invalid(
            child(path, EMBEDDED),
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(s.get("anyOf"));
    let skip_first_all_of = list(s, "allOf")
        .first()
        .is_some_and(|a| is_int_or_string_any_of(a.get("anyOf")));
    value_validation(s, skip_any_of, skip_first_all_of, lvl, path, out);

    let check_meta = lvl == Level::Root || embedded;
    if embedded && ty != "object" {
        let msg = "must be object if x-kubernetes-embedded-resource is true";
        if ty.is_empty() {
            out.push(FieldError::required(child(path, "type"), msg));
        } else {
            out.push(FieldError::invalid(child(path, "type"), Value::from(ty), msg));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(FieldError::required(child(path, "type"), msg));
    }
    if embedded && s.get("additionalProperties").is_some() {
        out.push(FieldError::forbidden(
            child(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(FieldError::invalid(
            child(path, "type"),
            Value::from(ty),
            "must be object at the root",
        ));
    }
    if check_meta {
        for name in ["kind", "apiVersion"] {
            if let Some(p) = props(s).and_then(|ps| ps.get(name)) {
                if type_of(p) != "string" {
                    out.push(FieldError::invalid(
                        child(&props_path(path, name), "type"),
                        Value::from(type_of(p)),
                        "must be string",
                    ));
                }
            }
        }
        if let Some(meta) = props(s).and_then(|ps| ps.get("metadata")) {
            if type_of(meta) != "object" {
                out.push(FieldError::invalid(
                    child(&props_path(path, "metadata"), "type"),
                    Value::from(type_of(meta)),
                    "must be object",
                ));
            }
        }
    }
    if lvl == Level::Root {
        if let Some(meta) = props(s).and_then(|ps| ps.get("metadata")) {
            if !metadata_only_restricts_names(meta) {
                out.push(FieldError::forbidden(
                    props_path(path, "metadata"),
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                ));
            }
        }
    }
    if embedded && !preserve && props(s).is_none_or(Map::is_empty) {
        out.push(FieldError::required(
            child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Root `metadata` may only say `type: object` and constrain `name` /
/// `generateName`.
fn metadata_only_restricts_names(meta: &Value) -> bool {
    let Some(map) = meta.as_object() else { return true };
    map.iter().all(|(k, v)| match k.as_str() {
        "type" | "default" | "example" | "externalDocs" => true,
        "properties" => match v.as_object() {
            Some(p) => p.keys().all(|n| n == "name" || n == "generateName"),
            None => is_zero(v),
        },
        _ => is_zero(v),
    })
}

fn regex_error(pattern: &str) -> Option<String> {
    let err = Regex::new(pattern).err()?;
    let text = err.to_string();
    let reason = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or(text);
    Some(format!("error parsing regexp: {reason}: `{pattern}`"))
}

fn value_validation(
    v: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    lvl: Level,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, sub) in list(v, "anyOf").iter().enumerate() {
            nested(sub, false, false, lvl, &index(&child(path, "anyOf"), i), out);
        }
    }
    for (i, sub) in list(v, "allOf").iter().enumerate() {
        nested(
            sub,
            skip_first_all_of_any_of && i == 0,
            false,
            lvl,
            &index(&child(path, "allOf"), i),
            out,
        );
    }
    for (i, sub) in list(v, "oneOf").iter().enumerate() {
        nested(sub, false, false, lvl, &index(&child(path, "oneOf"), i), out);
    }
    if let Some(not) = v.get("not") {
        nested(not, false, false, lvl, &child(path, "not"), out);
    }
    if let Some(pattern) = v.get("pattern").and_then(Value::as_str) {
        if let Some(reason) = regex_error(pattern) {
            out.push(FieldError::invalid(
                child(path, "pattern"),
                Value::from(pattern),
                format!("must be a valid regular expression, but isn't: {reason}"),
            ));
        }
    }
}

/// A schema under allOf/anyOf/oneOf/not: value validation only.
fn nested(v: &Value, skip_any_of: bool, skip_all_of_any_of: bool, lvl: Level, path: &str, out: &mut Vec<FieldError>) {
    if !v.is_object() {
        return;
    }
    value_validation(v, skip_any_of, skip_all_of_any_of, lvl, path, out);
    if let Some(items) = object_items(v) {
        nested(items, false, false, lvl, &child(path, "items"), out);
    }
    for (k, p) in prop_iter(v) {
        nested(p, false, false, Level::Field, &props_path(path, k), out);
    }
    let forbid = |out: &mut Vec<FieldError>, name: &str, detail: &str| {
        out.push(FieldError::forbidden(child(path, name), detail));
    };
    if !type_of(v).is_empty() {
        forbid(out, "type", "must be empty to be structural");
    }
    if v.get("additionalProperties").is_some() {
        forbid(out, "additionalProperties", "must be undefined to be structural");
    }
    if v.get("default").is_some() {
        forbid(out, "default", "must be undefined to be structural");
    }
    if non_empty_str(v, "title") {
        forbid(out, "title", "must be empty to be structural");
    }
    if non_empty_str(v, "description") {
        forbid(out, "description", "must be empty to be structural");
    }
    if flag(v, "nullable") {
        forbid(out, "nullable", "must be false to be structural");
    }
    for ext in [PRESERVE, EMBEDDED, INT_OR_STRING] {
        if flag(v, ext) {
            forbid(out, ext, "must be false to be structural");
        }
    }
    if !list(v, LIST_MAP_KEYS).is_empty() {
        forbid(out, LIST_MAP_KEYS, "must be empty to be structural");
    }
    if v.get(LIST_TYPE).is_some() {
        forbid(out, LIST_TYPE, "must be undefined to be structural");
    }
    if v.get(MAP_TYPE).is_some() {
        forbid(out, MAP_TYPE, "must be undefined to be structural");
    }
    if !list(v, VALIDATIONS).is_empty() {
        forbid(out, VALIDATIONS, "must be empty to be structural");
    }
    if props(v).is_some_and(|p| p.contains_key("metadata")) {
        out.push(FieldError::forbidden(
            props_path(path, "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

// ---------------------------------------------------------------------------
// Completeness: whatever junctors specify must be specified structurally.

fn completeness(s: &Value, path: &str, out: &mut Vec<FieldError>) {
    junctor_completeness(s, Some(s), path, path, out);
    if let Some(items) = object_items(s) {
        completeness(items, &child(path, "items"), out);
    }
    for (k, p) in prop_iter(s) {
        completeness(p, &props_path(path, k), out);
    }
    if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
        completeness(extra, &child(path, "additionalProperties"), out);
    }
}

fn junctor_completeness(v: &Value, s: Option<&Value>, s_path: &str, v_path: &str, out: &mut Vec<FieldError>) {
    for name in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in list(v, name).iter().enumerate() {
            nested_completeness(sub, s, s_path, &index(&child(v_path, name), i), out);
        }
    }
    if let Some(not) = v.get("not") {
        nested_completeness(not, s, s_path, &child(v_path, "not"), out);
    }
}

fn nested_completeness(v: &Value, s: Option<&Value>, s_path: &str, v_path: &str, out: &mut Vec<FieldError>) {
    if !v.is_object() {
        return;
    }
    junctor_completeness(v, s, s_path, v_path, out);
    if let Some(v_items) = object_items(v) {
        let (sp, vp) = (child(s_path, "items"), child(v_path, "items"));
        match s.and_then(object_items) {
            Some(s_items) => nested_completeness(v_items, Some(s_items), &sp, &vp, out),
            None => out.push(FieldError::required(sp, format!("because it is defined in {vp}"))),
        }
    }
    for (k, vp_schema) in prop_iter(v) {
        let (sp, vp) = (props_path(s_path, k), props_path(v_path, k));
        match s.and_then(props).and_then(|p| p.get(k)) {
            Some(sp_schema) => nested_completeness(vp_schema, Some(sp_schema), &sp, &vp, out),
            None => out.push(FieldError::required(sp, format!("because it is defined in {vp}"))),
        }
    }
}

// ---------------------------------------------------------------------------
// Defaults: pruned, and valid against their own schema.

fn defaults(s: &Value, path: &str, root: bool, inside_meta: bool, out: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let embedded = flag(s, EMBEDDED);
    let inside_meta = inside_meta && !embedded;
    if let Some(default) = s.get("default") {
        if !inside_meta {
            let here = child(path, "default");
            let mut pruned = default.clone();
            prune_value(&mut pruned, s, embedded);
            if pruned != *default {
                out.push(FieldError::invalid(
                    here.clone(),
                    default.clone(),
                    "must not have unknown fields",
                ));
            }
            out.extend(validate_at(default, s, &here));
        }
    }
    if let Some(items) = object_items(s) {
        defaults(items, &child(path, "items"), false, inside_meta, out);
    }
    for (k, p) in prop_iter(s) {
        let meta = inside_meta || ((root || embedded) && is_meta_field(k));
        defaults(p, &props_path(path, k), false, meta, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: &str = "spec.versions[0].schema.openAPIV3Schema";

    fn messages(schema: &Value) -> Vec<String> {
        check_structural_at(schema, BASE)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_structural_schema_passes() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "default": 1, "minimum": 0},
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "any": {"x-kubernetes-preserve-unknown-fields": true},
                "tmpl": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }});
        assert_eq!(messages(&schema), Vec::<String>::new());
    }

    #[test]
    fn missing_types_are_reported_with_upstream_paths() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"properties": {"list": {"type": "array"}, "arr": {"type": "array", "items": {}}}}
        }});
        assert_eq!(
            messages(&schema),
            vec![
                format!("{BASE}.properties[spec].properties[arr].items.type: Required value: must not be empty for specified array items"),
                format!("{BASE}.properties[spec].properties[list].items: Required value: must be specified"),
                format!("{BASE}.properties[spec].type: Required value: must not be empty for specified object fields"),
            ]
        );
        assert_eq!(
            check_structural(&json!({}))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["type: Required value: must not be empty at the root"]
        );
    }

    #[test]
    fn junctors_may_not_declare_types_or_unspecified_fields() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"type": "string"}},
            "anyOf": [{"type": "object", "properties": {"a": {"default": "x"}, "b": {"maxLength": 3}}}]}}});
        let p = format!("{BASE}.properties[spec]");
        assert_eq!(
            messages(&schema),
            vec![
                format!("{p}.anyOf[0].properties[a].default: Forbidden: must be undefined to be structural"),
                format!("{p}.anyOf[0].type: Forbidden: must be empty to be structural"),
                format!("{p}.properties[b]: Required value: because it is defined in {p}.anyOf[0].properties[b]"),
            ]
        );
    }

    #[test]
    fn root_metadata_may_only_restrict_names() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}});
        assert_eq!(
            messages(&schema),
            vec![format!("{BASE}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")]
        );
    }

    #[test]
    fn unsupported_schema_features() {
        let schema = json!({"type": "object", "nullable": true, "properties": {
            "a": {"$ref": "#/definitions/x", "type": "string"},
            "b": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
            "c": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "d": {"type": "thing"},
            "e": {"type": "string", "x-kubernetes-preserve-unknown-fields": false},
            "f": {"type": "string", "pattern": "(unclosed"},
            "g": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "string"}}
        }});
        let got = messages(&schema);
        let p = format!("{BASE}.properties");
        for want in [
            format!("{BASE}.nullable: Forbidden: nullable cannot be true at the root"),
            format!("{p}[a].$ref: Forbidden: $ref is not supported"),
            format!("{p}[b].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"),
            format!("{p}[c].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"),
            format!("{p}[d].type: Unsupported value: \"thing\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""),
            format!("{p}[e].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"),
            format!("{p}[g].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"),
            format!("{p}[g].items.type: Invalid value: \"string\": must be object if parent array's x-kubernetes-list-type is map"),
        ] {
            assert!(got.contains(&want), "missing {want}\nin {got:#?}");
        }
        assert!(
            got.iter().any(|m| m.starts_with(&format!(
                "{p}[f].pattern: Invalid value: \"(unclosed\": must be a valid regular expression"
            ))),
            "{got:#?}"
        );
    }

    #[test]
    fn defaults_must_be_pruned_and_valid() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "default": {"name": "x"}},
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer", "maximum": 10, "default": 20},
                "obj": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 1}}
            }}
        }});
        let p = format!("{BASE}.properties[spec].properties");
        assert_eq!(
            messages(&schema),
            vec![
                format!("{p}[size].default: Invalid value: 20: in body should be less than or equal to 10"),
                format!("{p}[obj].default: Invalid value: {{\"a\":\"x\",\"b\":1}}: must not have unknown fields"),
                format!("{BASE}.properties[metadata].default: Forbidden: must not be set in top-level metadata"),
            ]
        );
    }

    #[test]
    fn embedded_resources_need_an_object_type() {
        let schema = json!({"type": "object", "properties": {
            "t": {"x-kubernetes-embedded-resource": true}
        }});
        assert_eq!(
            messages(&schema),
            vec![
                format!("{BASE}.properties[t].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"),
                format!("{BASE}.properties[t].type: Required value: must be object if x-kubernetes-embedded-resource is true"),
            ]
        );
    }

    #[test]
    fn malformed_schemas_give_errors_not_panics() {
        let junk = json!({"type": ["object"], "properties": {"a": 5, "b": {"items": [1], "pattern": 3,
            "x-kubernetes-list-type": 7, "x-kubernetes-list-map-keys": "k", "required": "a", "allOf": 1,
            "default": {"x": 1}, "maximum": "big", "enum": 4}}, "additionalProperties": true});
        let errs = check_structural(&junk);
        assert!(!errs.is_empty());
        assert!(!check_structural(&json!("string")).is_empty());
        let obj = json!({"a": [1, {"b": null}], "b": {"c": [[[]]]}});
        let _ = crate::schema::validate::validate(&obj, &junk);
        let mut copy = obj.clone();
        let _ = crate::schema::prune::prune(&mut copy, &junk);
        crate::schema::defaults::apply_defaults(&mut copy, &junk);
    }
}
