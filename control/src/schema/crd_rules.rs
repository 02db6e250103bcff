//! The general rules a CRD `openAPIV3Schema` must follow beyond being
//! structural: only supported keywords and types, no defaults in root
//! metadata, `additionalProperties` not next to `properties`, no
//! `uniqueItems`, and consistent `x-kubernetes-list-type` /
//! `x-kubernetes-list-map-keys` / `x-kubernetes-map-type` settings.

use super::json_type::flag;
use super::path::{child, index};
use super::structural::{
    is_meta_field, list, non_empty_str, object_items, prop_iter, props, props_path, type_of, EMBEDDED, LIST_MAP_KEYS,
    LIST_TYPE, MAP_TYPE, PRESERVE,
};
use crate::field_error::FieldError;
use serde_json::Value;

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// The rule violations of a schema found at `base`, in walk order.
pub(super) fn check(schema: &Value, base: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    generic(
        schema,
        base,
        &Ctx {
            root: true,
            inside_meta: false,
            no_defaults: None,
        },
        &mut out,
    );
    out
}

struct Ctx {
    root: bool,
    inside_meta: bool,
    no_defaults: Option<String>,
}

impl Ctx {
    fn below(&self) -> Ctx {
        Ctx {
            root: false,
            inside_meta: self.inside_meta,
            no_defaults: self.no_defaults.clone(),
        }
    }
}

fn generic(s: &Value, path: &str, ctx: &Ctx, out: &mut Vec<FieldError>) {
    if !s.is_object() {
        out.push(FieldError::invalid(path, s.clone(), "must be a JSON schema object"));
        return;
    }
    let ty = type_of(s);
    match s.get("type") {
        Some(Value::String(t)) if !t.is_empty() && !TYPES.contains(&t.as_str()) => {
            out.push(FieldError::not_supported(
                child(path, "type"),
                Value::from(t.as_str()),
                TYPES,
            ));
        }
        Some(other @ (Value::Array(_) | Value::Object(_) | Value::Number(_) | Value::Bool(_))) => {
            out.push(FieldError::invalid(
                child(path, "type"),
                other.clone(),
                "must be a string",
            ));
        }
        _ => {}
    }
    if s.get("default").is_some() {
        if let Some(reason) = &ctx.no_defaults {
            out.push(FieldError::forbidden(
                child(path, "default"),
                format!("must not be set {reason}"),
            ));
        }
    }
    let unsupported = [
        ("id", non_empty_str(s, "id")),
        ("additionalItems", s.get("additionalItems").is_some()),
        (
            "patternProperties",
            s.get("patternProperties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty()),
        ),
        (
            "definitions",
            s.get("definitions")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty()),
        ),
        ("dependencies", s.get("dependencies").is_some()),
        ("$ref", s.get("$ref").is_some()),
    ];
    for (name, present) in unsupported {
        if present {
            out.push(FieldError::forbidden(
                child(path, name),
                format!("{name} is not supported"),
            ));
        }
    }
    if ty == "null" {
        out.push(FieldError::forbidden(
            child(path, "type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if s.get("items").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        out.push(FieldError::forbidden(
            child(path, "items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.inside_meta && flag(s, EMBEDDED) {
        out.push(FieldError::forbidden(
            child(path, EMBEDDED),
            "must not be used inside of resource meta",
        ));
    }
    if flag(s, "uniqueItems") {
        out.push(FieldError::forbidden(
            child(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(extra) = s.get("additionalProperties") {
        let has_props = props(s).is_some_and(|p| !p.is_empty());
        if has_props && (*extra == Value::Bool(false) || extra.is_object()) {
            out.push(FieldError::forbidden(
                child(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if extra.is_object() {
            let sub = if ctx.inside_meta {
                Ctx {
                    root: false,
                    inside_meta: true,
                    no_defaults: Some("inside additionalProperties applying to object metadata".to_string()),
                }
            } else {
                ctx.below()
            };
            generic(extra, &child(path, "additionalProperties"), &sub, out);
        }
    }
    for (k, p) in prop_iter(s) {
        let mut sub = ctx.below();
        if (ctx.root || flag(s, EMBEDDED)) && is_meta_field(k) {
            sub.inside_meta = true;
            if ctx.root {
                sub.no_defaults = Some(format!("in top-level {k}"));
            }
        }
        generic(p, &props_path(path, k), &sub, out);
    }
    if let Some(not) = s.get("not") {
        generic(not, &child(path, "not"), &ctx.below(), out);
    }
    for name in ["allOf", "oneOf", "anyOf"] {
        for (i, sub) in list(s, name).iter().enumerate() {
            generic(sub, &index(&child(path, name), i), &ctx.below(), out);
        }
    }
    match s.get("items") {
        Some(items @ Value::Object(_)) => generic(items, &child(path, "items"), &ctx.below(), out),
        Some(Value::Array(all)) => {
            for (i, items) in all.iter().enumerate() {
                generic(items, &index(&child(path, "items"), i), &ctx.below(), out);
            }
        }
        _ => {}
    }
    if s.get(PRESERVE) == Some(&Value::Bool(false)) {
        out.push(FieldError::invalid(
            child(path, PRESERVE),
            Value::Bool(false),
            "must be true or undefined",
        ));
    }
    list_and_map_types(s, path, out);
}

fn list_and_map_types(s: &Value, path: &str, out: &mut Vec<FieldError>) {
    let ty = type_of(s);
    let items_path = child(path, "items");
    let list_type = s.get(LIST_TYPE);
    let lt = list_type.and_then(Value::as_str).unwrap_or("");
    let keys_value = s.get(LIST_MAP_KEYS);
    let keys: Vec<&str> = list(s, LIST_MAP_KEYS).iter().filter_map(Value::as_str).collect();
    if let Some(list_type) = list_type {
        let msg = "must be array if x-kubernetes-list-type is specified";
        if ty.is_empty() {
            out.push(FieldError::required(child(path, "type"), msg));
        } else if ty != "array" {
            out.push(FieldError::invalid(child(path, "type"), Value::from(ty), msg));
        }
        if ty == "array" && lt == "set" {
            if let Some(items) = object_items(s) {
                let msg = "must be atomic as item of a list with x-kubernetes-list-type=set";
                match type_of(items) {
                    "array" => {
                        if let Some(inner) = items.get(LIST_TYPE).filter(|t| t.as_str() != Some("atomic")) {
                            out.push(FieldError::invalid(child(&items_path, LIST_TYPE), inner.clone(), msg));
                        }
                    }
                    "object" if items.get(MAP_TYPE).and_then(Value::as_str) != Some("atomic") => {
                        let shown = items.get(LIST_TYPE).cloned().unwrap_or(Value::Null);
                        out.push(FieldError::invalid(child(&items_path, MAP_TYPE), shown, msg));
                    }
                    _ => {}
                }
            }
        }
        if !matches!(lt, "atomic" | "set" | "map") {
            out.push(FieldError::not_supported(
                child(path, LIST_TYPE),
                list_type.clone(),
                &["atomic", "set", "map"],
            ));
        }
        if lt == "map" {
            if keys.is_empty() {
                out.push(FieldError::required(
                    child(path, LIST_MAP_KEYS),
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            match s.get("items") {
                None => out.push(FieldError::required(
                    items_path.clone(),
                    "must have a schema if x-kubernetes-list-type is map",
                )),
                Some(items @ Value::Array(_)) => out.push(FieldError::invalid(
                    items_path.clone(),
                    items.clone(),
                    "must only have a single schema if x-kubernetes-list-type is map",
                )),
                Some(items) if type_of(items) != "object" => out.push(FieldError::invalid(
                    child(&items_path, "type"),
                    Value::from(type_of(items)),
                    "must be object if parent array's x-kubernetes-list-type is map",
                )),
                Some(items) => {
                    let shown = keys_value.cloned().unwrap_or(Value::Null);
                    for (i, k) in keys.iter().enumerate() {
                        match props(items).and_then(|p| p.get(*k)) {
                            Some(p) if matches!(type_of(p), "array" | "object") => out.push(FieldError::invalid(
                                child(&props_path(&items_path, k), "type"),
                                Value::from(type_of(items)),
                                "must be a scalar type if parent array's x-kubernetes-list-type is map",
                            )),
                            Some(_) => {}
                            None => out.push(FieldError::invalid(
                                child(path, LIST_MAP_KEYS),
                                shown.clone(),
                                "entries must all be names of item properties",
                            )),
                        }
                        if keys[..i].contains(k) {
                            out.push(FieldError::invalid(
                                child(path, LIST_MAP_KEYS),
                                shown.clone(),
                                "must not contain duplicate entries",
                            ));
                        }
                    }
                }
            }
        }
    }
    if let Some(map_type) = s.get(MAP_TYPE) {
        let msg = "must be object if x-kubernetes-map-type is specified";
        if ty.is_empty() {
            out.push(FieldError::required(child(path, "type"), msg));
        } else if ty != "object" {
            out.push(FieldError::invalid(child(path, "type"), Value::from(ty), msg));
        }
        if !matches!(map_type.as_str(), Some("atomic" | "granular")) {
            out.push(FieldError::not_supported(
                child(path, MAP_TYPE),
                map_type.clone(),
                &["atomic", "granular"],
            ));
        }
    }
    if !keys.is_empty() {
        let msg = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => out.push(FieldError::required(child(path, LIST_TYPE), msg)),
            Some(t) if lt != "map" => out.push(FieldError::invalid(child(path, LIST_TYPE), t.clone(), msg)),
            Some(_) => {}
        }
    }
    if let Some(items) = object_items(s).filter(|_| matches!(lt, "set" | "map")) {
        if flag(items, "nullable") {
            out.push(FieldError::forbidden(
                child(&items_path, "nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required: Vec<&str> = list(items, "required").iter().filter_map(Value::as_str).collect();
            for k in &keys {
                let Some(p) = props(items).and_then(|ps| ps.get(*k)) else {
                    continue;
                };
                let key_path = props_path(&items_path, k);
                if !required.contains(k) && p.get("default").is_none() {
                    out.push(FieldError::required(
                        child(&key_path, "default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if flag(p, "nullable") {
                    out.push(FieldError::forbidden(
                        child(&key_path, "nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
}
