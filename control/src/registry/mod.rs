//! What the API server serves: one [`Resource`] per (group, version, plural).
//!
//! Built-in resources come from [`builtin::all`]; CustomResourceDefinitions
//! add more at run time through [`Registry::set_crds`]. Discovery, OpenAPI,
//! routing and storage keys are all derived from this table, so a resource
//! is added in exactly one place.

pub mod builtin;

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Generates the OpenAPI schema of a built-in type (from `k8s-openapi`).
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// JSON paths (dotted) of the scale subresource's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// CRD-specific serving data.
#[derive(Debug, Clone)]
pub struct CustomInfo {
    /// The version's `openAPIV3Schema` (structural).
    pub schema: Value,
    /// `additionalPrinterColumns` of the version.
    pub printer_columns: Vec<Value>,
    /// Name of the CRD object that defines this resource.
    pub crd_name: String,
    /// Whether this version is the storage version.
    pub storage: bool,
}

#[derive(Clone)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Verbs for discovery; create-only "review" resources have just `create`.
    pub verbs: Vec<&'static str>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Subresources that are not stored objects (`log`, `exec`, `binding`, ...).
    pub extra_subresources: Vec<&'static str>,
    /// OpenAPI definition name (`io.k8s.api.apps.v1.Deployment`).
    pub definition: String,
    pub schema_fn: Option<SchemaFn>,
    /// False for virtual resources that are only POSTed (reviews).
    pub stored: bool,
    pub custom: Option<CustomInfo>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resource({}/{} {})", self.group, self.version, self.plural)
    }
}

pub const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Storage key prefix for all objects of this resource, across versions.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() { "core" } else { &self.group };
        format!("/{}/{}/", group, self.plural)
    }

    /// Storage key of one object (namespace ignored for cluster-scoped).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{}/{}", self.key_prefix(), ns, name),
            _ => format!("{}{}", self.key_prefix(), name),
        }
    }

    /// Prefix for a list, in one namespace or all.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{}/", self.key_prefix(), ns),
            _ => self.key_prefix(),
        }
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        match sub {
            "status" => self.status,
            "scale" => self.scale.is_some(),
            other => self.extra_subresources.contains(&other),
        }
    }
}

/// The live table: built-ins plus whatever CRDs are established.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<RwLock<Arc<Table>>>,
}

#[derive(Default)]
pub struct Table {
    pub resources: Vec<Arc<Resource>>,
    by_path: BTreeMap<(String, String, String), Arc<Resource>>,
}

impl Table {
    fn new(resources: Vec<Resource>) -> Self {
        let resources: Vec<Arc<Resource>> = resources.into_iter().map(Arc::new).collect();
        let by_path = resources
            .iter()
            .map(|r| ((r.group.clone(), r.version.clone(), r.plural.clone()), r.clone()))
            .collect();
        Self { resources, by_path }
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<Resource>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Find by group and kind (any served version, preferring `version`).
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<Resource>> {
        let mut found = None;
        for r in &self.resources {
            if r.group == group && r.kind == kind {
                if r.version == version {
                    return Some(r.clone());
                }
                found.get_or_insert_with(|| r.clone());
            }
        }
        found
    }

    /// Group → versions, in preference order (first is preferred).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.resources {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    pub fn in_group_version<'a>(&'a self, group: &'a str, version: &'a str) -> impl Iterator<Item = &'a Arc<Resource>> + 'a {
        self.resources.iter().filter(move |r| r.group == group && r.version == version)
    }
}

impl Registry {
    pub fn new() -> Self {
        Self { inner: Arc::new(RwLock::new(Arc::new(Table::new(builtin::all())))) }
    }

    /// A consistent snapshot of the table.
    pub fn table(&self) -> Arc<Table> {
        match self.inner.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replace the custom resources with `custom` (built-ins stay).
    pub fn set_custom(&self, custom: Vec<Resource>) {
        let mut all = builtin::all();
        all.extend(custom);
        let table = Arc::new(Table::new(all));
        match self.inner.write() {
            Ok(mut t) => *t = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}
