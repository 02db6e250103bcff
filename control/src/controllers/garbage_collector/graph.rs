//! The dependency graph: every object the API serves, by uid, with its
//! owner references, and the reverse index owner uid → dependents. Fed by
//! the metadata watches; it only decides which uids need a look, never
//! writes anything (the workers verify against the API before acting).

use super::discovery::Served;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub block: bool,
}

impl From<&OwnerReference> for Owner {
    fn from(r: &OwnerReference) -> Self {
        Self {
            uid: r.uid.clone(),
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            block: r.block_owner_deletion.unwrap_or(false),
        }
    }
}

/// What the collector remembers of one object.
#[derive(Debug, Clone)]
pub struct Node {
    pub res: Arc<Served>,
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<Owner>,
    pub deleting: bool,
    /// `foregroundDeletion` finalizer: waits for its dependents.
    pub foreground: bool,
    /// `orphan` finalizer: its dependents are to be released.
    pub orphan: bool,
}

impl Node {
    pub fn from_meta(res: Arc<Served>, meta: &ObjectMeta) -> Option<(String, Node)> {
        let uid = meta.uid.clone().filter(|u| !u.is_empty())?;
        let has = |f: &str| meta.finalizers.as_ref().map(|fs| fs.iter().any(|x| x == f)).unwrap_or(false);
        let node = Node {
            res,
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            owners: meta.owner_references.iter().flatten().map(Owner::from).collect(),
            deleting: meta.deletion_timestamp.is_some(),
            foreground: has("foregroundDeletion"),
            orphan: has("orphan"),
        };
        Some((uid, node))
    }

    /// Being deleted and waiting for its dependents to go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.foreground
    }

    /// Whether this node is the object an owner reference of an object in
    /// `namespace` names (a namespaced owner must share the namespace).
    pub fn is(&self, owner: &Owner, namespace: Option<&str>) -> bool {
        let (group, _) = super::discovery::split_api_version(&owner.api_version);
        self.res.ar.kind == owner.kind
            && self.res.ar.group == group
            && self.name == owner.name
            && (!self.res.namespaced || self.namespace.as_deref() == namespace)
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

/// How an owner reference looks from the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The owner is in the graph and not waiting for its dependents.
    Solid,
    /// The owner is being deleted in the foreground.
    Waiting,
    /// Not in the graph (or a different object has its uid): ask the API.
    Unknown,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How `owner`, referenced from an object in `namespace`, looks.
    pub fn seen(&self, owner: &Owner, namespace: Option<&str>) -> Seen {
        match self.nodes.get(&owner.uid) {
            Some(n) if n.is(owner, namespace) && n.deleting_dependents() => Seen::Waiting,
            Some(n) if n.is(owner, namespace) => Seen::Solid,
            _ => Seen::Unknown,
        }
    }

    fn all_solid(&self, node: &Node) -> bool {
        node.owners.iter().all(|o| self.seen(o, node.namespace.as_deref()) == Seen::Solid)
    }

    /// The dependents (uid, node) of `uid` the graph knows.
    pub fn dependents_of(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }

    /// Whether `uid` has dependents that hold it back (blockOwnerDeletion).
    pub fn blocking_dependents(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents_of(uid)
            .into_iter()
            .filter(|(_, n)| n.owners.iter().any(|o| o.uid == uid && o.block))
            .collect()
    }

    fn owner_waiting(&self, uid: &str) -> bool {
        self.nodes.get(uid).map(Node::deleting_dependents).unwrap_or(false)
    }

    /// Record the current state of an object; returns the uids to look at.
    pub fn upsert(&mut self, uid: &str, node: Node) -> Vec<String> {
        let mut out = Vec::new();
        let old = self.nodes.insert(uid.to_string(), node.clone());
        let old_owners = old.as_ref().map(|o| o.owners.clone()).unwrap_or_default();
        for o in &old_owners {
            let still = node.owners.iter().find(|n| n.uid == o.uid);
            if still.is_none() {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(uid);
                    if set.is_empty() {
                        self.dependents.remove(&o.uid);
                    }
                }
            }
            // A dependent let go of (or stopped blocking) a waiting owner.
            if still.map(|n| n.block != o.block).unwrap_or(true) && self.owner_waiting(&o.uid) {
                out.push(o.uid.clone());
            }
        }
        for o in &node.owners {
            self.dependents.entry(o.uid.clone()).or_default().insert(uid.to_string());
        }
        let owners_changed = old.as_ref().map(|o| o.owners != node.owners).unwrap_or(true);
        if owners_changed && !node.deleting && !self.all_solid(&node) {
            out.push(uid.to_string());
        }
        let was_waiting = old.as_ref().map(Node::deleting_dependents).unwrap_or(false);
        if node.deleting_dependents() && !was_waiting {
            out.push(uid.to_string());
            out.extend(self.dependents.get(uid).into_iter().flatten().cloned());
        }
        let was_orphaning = old.as_ref().map(|o| o.deleting && o.orphan).unwrap_or(false);
        if node.deleting && node.orphan && !was_orphaning {
            out.push(uid.to_string());
        }
        // Its own state moved while dependents wait on it being deleted.
        if node.deleting && !old.as_ref().map(|o| o.deleting).unwrap_or(false) {
            out.extend(node.owners.iter().filter(|o| self.owner_waiting(&o.uid)).map(|o| o.uid.clone()));
        }
        out.sort();
        out.dedup();
        out
    }

    /// An object is gone; returns the uids to look at (its dependents, and
    /// owners waiting for it).
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut out = Vec::new();
        let Some(node) = self.nodes.remove(uid) else { return out };
        for o in &node.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
            if o.block && self.owner_waiting(&o.uid) {
                out.push(o.uid.clone());
            }
        }
        out.extend(self.dependents.get(uid).into_iter().flatten().cloned());
        out.sort();
        out.dedup();
        out
    }

    /// After a fresh list of one resource: forget its objects not in
    /// `listed` (deleted while the watch was down).
    pub fn retain_listed(&mut self, group: &str, plural: &str, listed: &HashSet<String>) -> Vec<String> {
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(uid, n)| n.res.same_resource(group, plural) && !listed.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut out = Vec::new();
        for uid in gone {
            out.extend(self.remove(&uid));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Every object with an owner the graph does not show as solid (after
    /// the first sync: dangling candidates).
    pub fn suspects(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.deleting_dependents() || (n.deleting && n.orphan) || (!n.deleting && !self.all_solid(n)))
            .map(|(uid, _)| uid.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::discovery::ApiResource;

    fn cm_res() -> Arc<Served> {
        Arc::new(Served {
            ar: ApiResource { group: "".into(), version: "v1".into(), api_version: "v1".into(), kind: "ConfigMap".into(), plural: "configmaps".into() },
            namespaced: true,
            verbs: vec!["list".into(), "watch".into(), "delete".into()],
        })
    }

    fn node(name: &str, owners: &[(&str, &str, bool)]) -> Node {
        Node {
            res: cm_res(),
            namespace: Some("default".into()),
            name: name.into(),
            owners: owners
                .iter()
                .map(|(uid, n, block)| Owner { uid: uid.to_string(), api_version: "v1".into(), kind: "ConfigMap".into(), name: n.to_string(), block: *block })
                .collect(),
            deleting: false,
            foreground: false,
            orphan: false,
        }
    }

    #[test]
    fn a_dependent_of_an_unseen_owner_is_looked_at() {
        let mut g = Graph::default();
        assert_eq!(g.upsert("d", node("dep", &[("o", "owner", false)])), vec!["d".to_string()]);
        // Once the owner is there, nothing to do for an unchanged dependent.
        assert!(g.upsert("o", node("owner", &[])).is_empty());
        assert!(g.upsert("d", node("dep", &[("o", "owner", false)])).is_empty());
        let here = Some("default");
        assert_eq!(g.seen(&node("dep", &[("o", "owner", false)]).owners[0], here), Seen::Solid);
        // Same uid, other name: not that owner.
        assert_eq!(g.seen(&node("dep", &[("o", "other", false)]).owners[0], here), Seen::Unknown);
        // A namespaced owner in another namespace is not an owner.
        assert_eq!(g.seen(&node("dep", &[("o", "owner", false)]).owners[0], Some("elsewhere")), Seen::Unknown);
    }

    #[test]
    fn removing_an_owner_points_at_its_dependents() {
        let mut g = Graph::default();
        g.upsert("o", node("owner", &[]));
        g.upsert("d1", node("d1", &[("o", "owner", false)]));
        g.upsert("d2", node("d2", &[("o", "owner", true)]));
        assert_eq!(g.remove("o"), vec!["d1".to_string(), "d2".to_string()]);
        assert_eq!(g.suspects().len(), 2);
    }

    #[test]
    fn foreground_deletion_waits_for_blocking_dependents() {
        let mut g = Graph::default();
        g.upsert("o", node("owner", &[]));
        g.upsert("d1", node("d1", &[("o", "owner", false)]));
        g.upsert("d2", node("d2", &[("o", "owner", true)]));
        let mut owner = node("owner", &[]);
        owner.deleting = true;
        owner.foreground = true;
        assert_eq!(g.upsert("o", owner), vec!["d1".to_string(), "d2".to_string(), "o".to_string()]);
        assert_eq!(g.blocking_dependents("o").len(), 1);
        // The non-blocking dependent going does not wake the owner.
        assert!(g.remove("d1").is_empty());
        assert_eq!(g.remove("d2"), vec!["o".to_string()]);
        assert!(g.blocking_dependents("o").is_empty());
    }

    #[test]
    fn orphaning_and_relists() {
        let mut g = Graph::default();
        g.upsert("o", node("owner", &[]));
        g.upsert("d", node("d", &[("o", "owner", false)]));
        let mut owner = node("owner", &[]);
        owner.deleting = true;
        owner.orphan = true;
        assert_eq!(g.upsert("o", owner.clone()), vec!["o".to_string()]);
        assert!(g.upsert("o", owner).is_empty(), "no change, nothing to do");
        // The dependent lets go of its owner.
        assert!(g.upsert("d", node("d", &[])).is_empty());
        assert!(g.dependents_of("o").is_empty());
        // A relist without the owner forgets it.
        let listed: HashSet<String> = ["d".to_string()].into();
        g.upsert("d", node("d", &[("o", "owner", false)]));
        assert_eq!(g.retain_listed("", "configmaps", &listed), vec!["d".to_string()]);
        assert!(g.get("o").is_none());
        assert_eq!(g.len(), 1);
    }
}
