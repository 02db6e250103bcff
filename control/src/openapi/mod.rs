//! The OpenAPI documents of the served API, generated from the registry.
//!
//! Owns: the definitions table ([`OpenApi::defs`]) that validation,
//! strategic merge and server-side apply walk — built-in schemas from
//! `k8s-openapi`, custom resources' `openAPIV3Schema`s, synthesized list
//! types, with Kubernetes extensions (group-version-kind, patch strategy
//! and merge key, list and map types) applied — and the documents served
//! at `/openapi/v2` (swagger 2.0) and `/openapi/v3[/<group-version>]`
//! (OpenAPI 3.0, one per group-version, content-hashed for caching).
//!
//! Must not: serve HTTP, read the store, or decide what is served — the
//! registry decides; [`build`] is rerun whenever the registry changes.

mod crd;
mod definitions;
mod extensions;
mod operations;
mod refs;
mod v2;
mod v3;

#[cfg(test)]
mod tests;

use crate::registry::Resource;
use crate::schema::Definitions;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crd::definition_name as crd_definition_name;

/// Everything OpenAPI for one registry snapshot.
#[derive(Debug)]
pub struct OpenApi {
    /// All definitions, references written `#/definitions/NAME`, with the
    /// Kubernetes extensions applied.
    pub defs: Definitions,
    /// The swagger 2.0 document is built on first request: kubectl asks for
    /// it only as protobuf (406 here) and uses v3, so most servers never
    /// pay for it.
    paths: Vec<operations::PathItem>,
    v2: std::sync::OnceLock<bytes::Bytes>,
    v3: BTreeMap<String, v3::Document>,
}

/// Build the definitions and documents for `resources`.
pub fn build(resources: &[Arc<Resource>]) -> OpenApi {
    let mut defs = definitions::collect(resources);
    extensions::apply(&mut defs);
    let paths = operations::paths(resources);
    let v3 = v3::documents(&defs, &paths);
    OpenApi { defs, paths, v2: std::sync::OnceLock::new(), v3 }
}

impl OpenApi {
    /// The swagger 2.0 document, serialized.
    pub fn v2_json(&self) -> &bytes::Bytes {
        self.v2.get_or_init(|| bytes::Bytes::from(serde_json::to_vec(&v2::document(&self.defs, &self.paths)).unwrap_or_default()))
    }

    /// The `/openapi/v3` index: each group-version's document URL, with
    /// the document's content hash as query so clients can cache it.
    pub fn v3_index(&self) -> Value {
        let mut paths = Map::new();
        for (gv, doc) in &self.v3 {
            paths.insert(
                gv.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", doc.hash)}),
            );
        }
        json!({ "paths": paths })
    }

    /// The OpenAPI 3.0 document of `api/v1` or `apis/GROUP/VERSION`.
    pub fn v3_group_version_json(&self, path: &str) -> Option<&bytes::Bytes> {
        let path = path.trim_matches('/');
        self.v3.get(path).map(|d| &d.json)
    }

    /// The swagger 2.0 document, parsed (for tests and tools).
    pub fn v2(&self) -> Value {
        serde_json::from_slice(self.v2_json()).unwrap_or(Value::Null)
    }

    /// A group-version's OpenAPI v3 document, parsed (for tests and tools).
    pub fn v3_group_version(&self, path: &str) -> Option<Value> {
        self.v3_group_version_json(path).and_then(|b| serde_json::from_slice(b).ok())
    }

    /// Content hash of a group-version document (the `hash` query value in
    /// the index), for `ETag`/cache headers.
    pub fn v3_hash(&self, path: &str) -> Option<&str> {
        self.v3.get(path.trim_matches('/')).map(|d| d.hash.as_str())
    }

    /// Root schema node of a definition (`io.k8s.api.apps.v1.Deployment`).
    pub fn schema_for(&self, definition: &str) -> Option<&Value> {
        self.defs.get(definition)
    }
}
