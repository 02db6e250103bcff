//! The OpenAPI 3.0 documents served at `/openapi/v3/<group-version>`: one
//! per group-version, with that group-version's paths and exactly the
//! schemas they reach (`#/components/schemas/NAME`), plus each document's
//! content hash for the `/openapi/v3` index.

use super::operations::{Location, Operation, Param, ParamType, PathItem};
use super::refs::{referenced_names, to_v3, V2_PREFIX, V3_PREFIX};
use crate::schema::Definitions;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One group-version document and the hash of its serialized form.
#[derive(Debug, Clone)]
pub struct Document {
    /// The serialized document (kept as bytes: as `Value`s the documents
    /// would cost many times their size in memory for the server's life).
    pub json: bytes::Bytes,
    pub hash: String,
}

pub fn documents(defs: &Definitions, paths: &[PathItem]) -> BTreeMap<String, Document> {
    let mut by_gv: BTreeMap<&str, Vec<&PathItem>> = BTreeMap::new();
    for item in paths {
        by_gv.entry(item.group_version.as_str()).or_default().push(item);
    }
    let direct: HashMap<&str, Vec<String>> = defs
        .0
        .iter()
        .map(|(name, schema)| {
            let mut refs = Vec::new();
            referenced_names(schema, V2_PREFIX, &mut refs);
            (name.as_str(), refs)
        })
        .collect();
    let mut converted: HashMap<String, Value> = HashMap::new();

    let mut out = BTreeMap::new();
    for (gv, items) in by_gv {
        let mut out_paths = Map::new();
        let mut seeds: Vec<String> = Vec::new();
        for item in &items {
            let mut entry = Map::new();
            for op in &item.operations {
                entry.insert(op.method.into(), operation(op));
                if let Some(body) = &op.body {
                    seeds.push(body.definition.clone());
                }
                seeds.extend(op.responses.iter().filter_map(|r| r.definition.clone()));
            }
            entry.insert("parameters".into(), Value::Array(item.params.iter().map(param).collect()));
            out_paths.insert(item.path.clone(), Value::Object(entry));
        }

        let reachable = closure(seeds, &direct);
        let mut schemas = Map::new();
        for name in reachable {
            let Some(schema) = defs.get(&name) else { continue };
            let schema = converted
                .entry(name.clone())
                .or_insert_with(|| {
                    let mut s = schema.clone();
                    to_v3(&mut s);
                    s
                })
                .clone();
            schemas.insert(name, schema);
        }

        let value = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": out_paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "BearerToken": {"type": "apiKey", "description": "Bearer token authentication", "name": "authorization", "in": "header"}
                }
            },
            "security": [{"BearerToken": []}]
        });
        let json = bytes::Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let hash = hash_of(&json);
        out.insert(gv.to_string(), Document { json, hash });
    }
    out
}

/// Every definition reachable from `seeds` (sorted).
fn closure(seeds: Vec<String>, direct: &HashMap<&str, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = seeds;
    while let Some(name) = stack.pop() {
        if seen.contains(&name) {
            continue;
        }
        if let Some(next) = direct.get(name.as_str()) {
            stack.extend(next.iter().filter(|n| !seen.contains(*n)).cloned());
        }
        seen.insert(name);
    }
    seen
}

/// Upper-case hex SHA-256 of the document's JSON serialization.
fn hash_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02X}")).collect()
}

fn param(p: &Param) -> Value {
    let kind = match p.kind {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Boolean => "boolean",
    };
    let mut out = Map::new();
    out.insert("name".into(), json!(p.name));
    out.insert(
        "in".into(),
        json!(match p.location {
            Location::Path => "path",
            Location::Query => "query",
        }),
    );
    out.insert("description".into(), Value::String(p.description.clone()));
    if p.required {
        out.insert("required".into(), Value::Bool(true));
    }
    out.insert("schema".into(), json!({"type": kind, "uniqueItems": true}));
    Value::Object(out)
}

fn reference(definition: &str) -> Value {
    json!({"$ref": format!("{V3_PREFIX}{definition}")})
}

fn operation(op: &Operation) -> Value {
    let mut out = Map::new();
    out.insert("tags".into(), json!([op.tag]));
    out.insert("description".into(), json!(op.description));
    out.insert("operationId".into(), json!(op.id));
    out.insert("parameters".into(), Value::Array(op.params.iter().map(param).collect()));
    if let Some(body) = &op.body {
        let mut content = Map::new();
        for media in body.content_types {
            content.insert((*media).into(), json!({"schema": reference(&body.definition)}));
        }
        out.insert("requestBody".into(), json!({"content": content, "required": true}));
    }
    let mut responses = Map::new();
    for r in &op.responses {
        let mut resp = Map::new();
        resp.insert("description".into(), json!(r.description));
        if let Some(def) = &r.definition {
            let mut content = Map::new();
            for media in op.produces {
                content.insert((*media).into(), json!({"schema": reference(def)}));
            }
            resp.insert("content".into(), Value::Object(content));
        }
        responses.insert(r.code.into(), Value::Object(resp));
    }
    out.insert("responses".into(), Value::Object(responses));
    out.insert("x-kubernetes-action".into(), json!(op.action));
    out.insert("x-kubernetes-group-version-kind".into(), op.gvk.to_value());
    Value::Object(out)
}
