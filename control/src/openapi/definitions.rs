//! The definitions table: schemas of the served built-in types (generated
//! from `k8s-openapi` through schemars), the meta types every document
//! needs, synthesized `...List` types, and the custom resources' schemas.

use super::crd;
use super::refs::V2_PREFIX;
use crate::registry::Resource;
use crate::schema::Definitions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

pub const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

pub const API_VERSION_DOC: &str = "Versioned schema this object is written in (group/version, or just the version for the core group). The server converts recognised versions to the one it serves.";
pub const KIND_DOC: &str = "CamelCase name of the REST resource this object represents; the server can infer it from the endpoint. Cannot be updated.";
pub const METADATA_DOC: &str = "Standard object metadata: name, namespace, labels, annotations and the server-managed fields.";

/// A group/version/kind as the `x-kubernetes-group-version-kind` extension
/// writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self { group: group.into(), version: version.into(), kind: kind.into() }
    }

    pub fn of(r: &Resource) -> Self {
        Self::new(&r.group, &r.version, &r.kind)
    }

    /// `{"group": .., "kind": .., "version": ..}`: the same object shape on
    /// operations and (inside a list) on definitions, because `kubectl
    /// explain` compares them for deep equality.
    pub fn to_value(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

/// Name under which a resource's root type is defined.
pub fn definition_name(r: &Resource) -> String {
    if r.custom.is_some() && r.definition.is_empty() {
        crd::definition_name(&r.group, &r.version, &r.kind)
    } else {
        r.definition.clone()
    }
}

/// Name of the synthesized list type of a resource.
pub fn list_definition_name(r: &Resource) -> String {
    format!("{}List", definition_name(r))
}

/// A schemars generator that writes references as `#/definitions/NAME`
/// and keeps siblings of `$ref` (descriptions on properties).
fn generator() -> SchemaGenerator {
    SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms = Vec::new();
        })
        .into_generator()
}

/// Every definition for `resources`, with GVK extensions on the root types.
pub fn collect(resources: &[Arc<Resource>]) -> Definitions {
    let mut gen = generator();
    for r in resources {
        if let Some(schema_fn) = r.schema_fn {
            let _ = schema_fn(&mut gen);
        }
    }
    let _ = gen.subschema_for::<meta::ObjectMeta>();
    let _ = gen.subschema_for::<meta::ListMeta>();
    let _ = gen.subschema_for::<meta::Status>();
    let _ = gen.subschema_for::<meta::DeleteOptions>();
    let _ = gen.subschema_for::<meta::Patch>();
    let _ = gen.subschema_for::<meta::Time>();
    let _ = gen.subschema_for::<meta::MicroTime>();
    let _ = gen.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();

    let mut defs = Definitions::new();
    for (name, schema) in gen.take_definitions(false) {
        defs.insert(name, schema);
    }

    for r in resources {
        let name = definition_name(r);
        if let Some(info) = &r.custom {
            defs.insert(name.clone(), crd::definition(r, &info.schema));
        }
        add_gvk(&mut defs, &name, Gvk::of(r));
        if r.verbs.contains(&"list") {
            let list = list_definition_name(r);
            if !defs.0.contains_key(&list) {
                defs.insert(list.clone(), list_definition(r, &name));
            }
            add_gvk(&mut defs, &list, Gvk::new(&r.group, &r.version, &r.list_kind()));
        }
    }
    add_gvk(&mut defs, STATUS, Gvk::new("", "v1", "Status"));
    add_gvk(&mut defs, SCALE, Gvk::new("autoscaling", "v1", "Scale"));
    // DeleteOptions is accepted by every built-in group-version. Custom
    // groups are left out so that a CRD change leaves the built-in
    // documents (and their hashes) alone.
    let mut group_versions: Vec<(&str, &str)> = Vec::new();
    for r in resources.iter().filter(|r| r.custom.is_none()) {
        if !group_versions.contains(&(r.group.as_str(), r.version.as_str())) {
            group_versions.push((&r.group, &r.version));
        }
    }
    for (group, version) in group_versions {
        add_gvk(&mut defs, DELETE_OPTIONS, Gvk::new(group, version, "DeleteOptions"));
    }
    defs
}

/// Append `gvk` to the definition's `x-kubernetes-group-version-kind` list.
fn add_gvk(defs: &mut Definitions, name: &str, gvk: Gvk) {
    let Some(Value::Object(def)) = defs.0.get_mut(name) else { return };
    let entry = def.entry(GVK_EXTENSION).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(list) = entry {
        let value = gvk.to_value();
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

fn list_definition(r: &Resource, item: &str) -> Value {
    let mut props = Map::new();
    props.insert("apiVersion".into(), json!({"description": API_VERSION_DOC, "type": "string"}));
    props.insert(
        "items".into(),
        json!({
            "description": format!("The {} objects of the list.", r.kind),
            "type": "array",
            "items": {"$ref": format!("{V2_PREFIX}{item}")}
        }),
    );
    props.insert("kind".into(), json!({"description": KIND_DOC, "type": "string"}));
    props.insert(
        "metadata".into(),
        json!({"$ref": format!("{V2_PREFIX}{LIST_META}"), "description": "Standard list metadata: resourceVersion and continue token."}),
    );
    json!({
        "description": format!("{} is a list of {} objects.", r.list_kind(), r.kind),
        "type": "object",
        "properties": props,
        "required": ["items"]
    })
}
