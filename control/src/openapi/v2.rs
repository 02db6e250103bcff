//! The swagger 2.0 document served at `/openapi/v2`: every path and every
//! definition in one document.

use super::operations::{Location, Operation, Param, ParamType, PathItem};
use super::refs::{to_v2, V2_PREFIX};
use crate::schema::Definitions;
use serde_json::{json, Map, Value};

pub fn document(defs: &Definitions, paths: &[PathItem]) -> Value {
    let mut out_paths = Map::new();
    for item in paths {
        let mut entry = Map::new();
        for op in &item.operations {
            entry.insert(op.method.into(), operation(op));
        }
        entry.insert("parameters".into(), Value::Array(item.params.iter().map(param).collect()));
        out_paths.insert(item.path.clone(), Value::Object(entry));
    }
    let mut definitions = Map::new();
    for (name, schema) in &defs.0 {
        let mut schema = schema.clone();
        to_v2(&mut schema);
        definitions.insert(name.clone(), schema);
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": out_paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer token authentication"}
        },
        "security": [{"BearerToken": []}]
    })
}

fn param(p: &Param) -> Value {
    let mut out = Map::new();
    out.insert("uniqueItems".into(), Value::Bool(true));
    out.insert(
        "type".into(),
        json!(match p.kind {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        }),
    );
    out.insert("description".into(), Value::String(p.description.clone()));
    out.insert("name".into(), json!(p.name));
    out.insert(
        "in".into(),
        json!(match p.location {
            Location::Path => "path",
            Location::Query => "query",
        }),
    );
    if p.required {
        out.insert("required".into(), Value::Bool(true));
    }
    Value::Object(out)
}

fn reference(definition: &str) -> Value {
    json!({"$ref": format!("{V2_PREFIX}{definition}")})
}

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        params.push(json!({"name": "body", "in": "body", "required": true, "schema": reference(&body.definition)}));
    }
    params.extend(op.params.iter().map(param));
    let mut responses = Map::new();
    for r in &op.responses {
        let mut resp = Map::new();
        resp.insert("description".into(), json!(r.description));
        if let Some(def) = &r.definition {
            resp.insert("schema".into(), reference(def));
        }
        responses.insert(r.code.into(), Value::Object(resp));
    }
    let consumes: Vec<&str> = match &op.body {
        Some(body) => body.content_types.to_vec(),
        None => vec!["*/*"],
    };
    json!({
        "description": op.description,
        "consumes": consumes,
        "produces": op.produces,
        "schemes": ["https"],
        "tags": [op.tag],
        "operationId": op.id,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk.to_value()
    })
}
