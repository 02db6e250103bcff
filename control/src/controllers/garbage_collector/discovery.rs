//! What the API serves, as a client learns it through discovery: the
//! resources to watch and to empty (one preferred version per resource),
//! and the mapping of an owner reference's apiVersion/kind to a resource.
//! Shared by the garbage collector and the namespace controller.

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use std::collections::HashMap;
use std::sync::Arc;

/// One served resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub ar: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Served {
    fn new(ar: ApiResource, caps: &ApiCapabilities) -> Self {
        Self { ar, namespaced: caps.scope == Scope::Namespaced, verbs: caps.operations.clone() }
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `pods` / `deployments.apps`: how upstream names a resource in messages.
    pub fn group_resource(&self) -> String {
        if self.ar.group.is_empty() {
            self.ar.plural.clone()
        } else {
            format!("{}.{}", self.ar.plural, self.ar.group)
        }
    }

    /// Identity across versions (the storage of a resource is shared).
    pub fn same_resource(&self, group: &str, plural: &str) -> bool {
        self.ar.group == group && self.ar.plural == plural
    }
}

/// A discovery snapshot.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The preferred version of every resource.
    pub preferred: Vec<Arc<Served>>,
    /// Every served (group, version, kind).
    by_gvk: HashMap<(String, String, String), Arc<Served>>,
    /// (group, kind) to its preferred resource, for versions not served.
    by_gk: HashMap<(String, String), Arc<Served>>,
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

impl Catalog {
    pub fn from_discovery(d: &Discovery) -> Self {
        let mut c = Catalog::default();
        for group in d.groups() {
            for (ar, caps) in group.recommended_resources() {
                let s = Arc::new(Served::new(ar, &caps));
                c.by_gk.insert((s.ar.group.clone(), s.ar.kind.clone()), s.clone());
                c.preferred.push(s);
            }
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let s = Arc::new(Served::new(ar, &caps));
                    c.by_gvk.insert((s.ar.group.clone(), s.ar.version.clone(), s.ar.kind.clone()), s);
                }
            }
        }
        c
    }

    #[cfg(test)]
    pub fn from_list(list: Vec<Served>) -> Self {
        let mut c = Catalog::default();
        for s in list {
            let s = Arc::new(s);
            c.by_gvk.insert((s.ar.group.clone(), s.ar.version.clone(), s.ar.kind.clone()), s.clone());
            c.by_gk.entry((s.ar.group.clone(), s.ar.kind.clone())).or_insert_with(|| s.clone());
            c.preferred.push(s);
        }
        c
    }

    /// The resource an owner reference points at.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Arc<Served>> {
        let (g, v) = split_api_version(api_version);
        self.by_gvk
            .get(&(g.to_string(), v.to_string(), kind.to_string()))
            .or_else(|| self.by_gk.get(&(g.to_string(), kind.to_string())))
            .cloned()
    }

    /// Resources the garbage collector watches: those it can list, watch
    /// and delete, except events (ignored by upstream's collector too:
    /// they churn and are never owners).
    pub fn collectable(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.preferred.iter().filter(|s| {
            s.supports("list") && s.supports("watch") && s.supports("delete") && !(s.ar.plural == "events" && matches!(s.ar.group.as_str(), "" | "events.k8s.io"))
        })
    }
}

/// Ask the API server (aggregated discovery, else the per-group documents).
pub async fn discover(client: &kube::Client) -> Result<Catalog, kube::Error> {
    let d = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "aggregated discovery failed; asking each group");
            Discovery::new(client.clone()).run().await?
        }
    };
    Ok(Catalog::from_discovery(&d))
}
