//! ControllerRevisions: the template history of DaemonSets and StatefulSets,
//! shared by both controllers (and read by `kubectl rollout history|undo`).
//!
//! A revision is named `<owner>-<hash>`, labelled with the owner's template
//! labels plus `controller-revision-hash`, carries the owner's annotations
//! (so `kubernetes.io/change-cause` shows in `rollout history`), and holds
//! as data the strategic merge patch that puts the template back:
//! `{"spec":{"template":{...,"$patch":"replace"}}}`. Also here: claiming
//! objects (pods, revisions) by controller reference, as upstream's
//! `ControllerRefManager` does.
//!
//! Must not: decide which revision is current for a controller (each
//! controller does that its own way), or write anything but revisions and
//! owner references.

use crate::controllers::util::{controller_of, controller_ref, labels_match};
use crate::controllers::Error;
use crate::selector::LabelSelector;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

/// The label naming a pod's (and a revision's) template revision.
pub const HASH_LABEL: &str = "controller-revision-hash";

/// FNV-1a, 32 bits (what upstream hashes templates with).
pub fn fnv32a(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in *part {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// Upstream's `rand.SafeEncodeString`: every character mapped onto an
/// alphabet without vowels or look-alike digits, so a hash never spells
/// a word.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// The hash of `data` (and the collision count, when there is one) as it
/// appears in names and labels.
pub fn hash(data: &[u8], collision_count: Option<i32>) -> String {
    let h = match collision_count {
        Some(c) => fnv32a(&[data, c.to_string().as_bytes()]),
        None => fnv32a(&[data]),
    };
    safe_encode(&h.to_string())
}

/// `v` with every object's keys sorted, so equal objects serialize alike.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Canonical JSON text of a typed object.
pub fn canonical_bytes<T: serde::Serialize>(obj: &T) -> Vec<u8> {
    serde_json::to_value(obj).map(|v| canonical(&v).to_string().into_bytes()).unwrap_or_default()
}

/// The revision data for `template`: a patch replacing `spec.template`.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    canonical(&json!({"spec": {"template": t}}))
}

/// The template a revision puts back, or None for data not in that form.
pub fn revision_template(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// True when `rev` holds exactly `template`.
pub fn holds_template(rev: &ControllerRevision, template: &PodTemplateSpec) -> bool {
    revision_template(rev).as_ref() == Some(template)
}

/// The revision's hash label ("" when missing).
pub fn hash_label(rev: &ControllerRevision) -> &str {
    rev.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)).map(String::as_str).unwrap_or("")
}

/// Sorted by revision number, then name (upstream's `SortControllerRevisions`).
pub fn sort(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| a.revision.cmp(&b.revision).then_with(|| a.metadata.name.cmp(&b.metadata.name)));
}

/// The highest revision number (0 for none).
pub fn max_revision(revs: &[Arc<ControllerRevision>]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Upstream's `ControllerRevisionName`: the prefix is cut to keep the name
/// a valid object name.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// A revision of `owner` (not yet created) holding `data`.
pub fn new_revision<K: kube::Resource<DynamicType = ()>>(owner: &K, name: String, hash: &str, template: &PodTemplateSpec, data: Value, revision: i64) -> ControllerRevision {
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.to_string());
    let meta = owner.meta();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: meta.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations.clone().filter(|a| !a.is_empty()),
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// What creating a revision came to.
#[derive(Debug)]
pub enum Created {
    /// The revision (new, or an equal one that was already there).
    Revision(Box<ControllerRevision>),
    /// Another template holds the name: bump the collision count and retry.
    Collision,
}

/// Create `rev`; an existing revision of that name holding the same
/// template counts as created.
pub async fn create(api: &Api<ControllerRevision>, rev: &ControllerRevision, template: &PodTemplateSpec) -> Result<Created, Error> {
    match api.create(&PostParams::default(), rev).await {
        Ok(r) => Ok(Created::Revision(Box::new(r))),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let name = rev.metadata.name.clone().unwrap_or_default();
            let existing = api.get(&name).await?;
            if holds_template(&existing, template) {
                Ok(Created::Revision(Box::new(existing)))
            } else {
                Ok(Created::Collision)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Give an existing revision a new number (a rollback to it, or a dedup).
pub async fn renumber(api: &Api<ControllerRevision>, rev: &ControllerRevision, revision: i64) -> Result<ControllerRevision, Error> {
    let name = rev.metadata.name.clone().unwrap_or_default();
    let patch = json!({"metadata": {"resourceVersion": rev.metadata.resource_version}, "revision": revision});
    Ok(api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?)
}

/// DaemonSet history to delete (upstream `cleanupHistory`): `old` are the
/// revisions that are not current, oldest first; as many as exceed
/// `limit` go, oldest first, but never one a live pod still runs.
pub fn daemonset_prune(old: &[Arc<ControllerRevision>], limit: i32, live_hashes: &HashSet<String>) -> Vec<String> {
    let mut to_kill = old.len() as i64 - i64::from(limit.max(0));
    let mut out = Vec::new();
    for rev in old {
        if to_kill <= 0 {
            break;
        }
        if live_hashes.contains(hash_label(rev)) {
            continue;
        }
        out.push(rev.metadata.name.clone().unwrap_or_default());
        to_kill -= 1;
    }
    out
}

/// StatefulSet history to delete (upstream `truncateHistory`): of the
/// revisions (oldest first) neither current, updated nor run by a pod,
/// the oldest beyond `limit`.
pub fn statefulset_prune(revs: &[Arc<ControllerRevision>], limit: i32, live_names: &HashSet<String>) -> Vec<String> {
    let history: Vec<&Arc<ControllerRevision>> = revs.iter().filter(|r| !live_names.contains(r.metadata.name.as_deref().unwrap_or(""))).collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if history.len() <= limit {
        return Vec::new();
    }
    history[..history.len() - limit].iter().map(|r| r.metadata.name.clone().unwrap_or_default()).collect()
}

/// Claim objects for a controller (upstream `ClaimObject`): keep those it
/// controls that still match, adopt matching orphans, release those it
/// controls that no longer match. `also` is an extra condition on a match
/// (a StatefulSet's pods must carry its name). Failed adoptions and
/// releases are logged and skipped; the next reconcile tries again.
pub async fn claim<K>(
    api: &Api<K>,
    owner: OwnerReference,
    owner_deleting: bool,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
    also: impl Fn(&K) -> bool,
) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    for obj in candidates {
        let meta = obj.meta();
        let matches = labels_match(selector, meta.labels.as_ref()) && also(&obj);
        let name = meta.name.clone().unwrap_or_default();
        let uid = meta.uid.clone().unwrap_or_default();
        match controller_of(meta) {
            Some(r) if r.uid == owner.uid => {
                if matches {
                    out.push(obj);
                } else if !owner_deleting {
                    let patch = json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner.uid}], "uid": uid}});
                    match api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
                        Ok(_) => tracing::info!(kind = %K::kind(&()), name, owner = owner.name, "released"),
                        Err(e) => tracing::warn!(kind = %K::kind(&()), name, owner = owner.name, error = %e, "cannot release"),
                    }
                }
            }
            Some(_) => {}
            None => {
                if owner_deleting || !matches || meta.deletion_timestamp.is_some() {
                    continue;
                }
                let patch = json!({"metadata": {"ownerReferences": [owner], "uid": uid}});
                match api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
                    Ok(adopted) => {
                        tracing::info!(kind = %K::kind(&()), name, owner = owner.name, "adopted");
                        out.push(Arc::new(adopted));
                    }
                    Err(e) => tracing::warn!(kind = %K::kind(&()), name, owner = owner.name, error = %e, "cannot adopt"),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .expect("template")
    }

    fn rev(name: &str, n: i64, hash: &str) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(HASH_LABEL.to_string(), hash.to_string())].into()),
                ..Default::default()
            },
            data: None,
            revision: n,
        })
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv32a(&[b""]), 0x811c_9dc5);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c_292c);
        assert_eq!(fnv32a(&[b"foo", b"bar"]), fnv32a(&[b"foobar"]));
    }

    #[test]
    fn hashes_are_safe_stable_and_depend_on_content_and_collisions() {
        let a = hash(&canonical_bytes(&template("nginx:1")), None);
        assert_eq!(a, hash(&canonical_bytes(&template("nginx:1")), None));
        assert_ne!(a, hash(&canonical_bytes(&template("nginx:2")), None));
        assert_ne!(a, hash(&canonical_bytes(&template("nginx:1")), Some(1)));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)), "{a}");
        assert!(!a.is_empty() && a.len() <= 10);
    }

    #[test]
    fn canonical_form_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[{"d":1,"c":2}]}}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"a":{"x":[{"c":2,"d":1}],"y":2},"b":1}"#).expect("json");
        assert_eq!(canonical(&a).to_string(), canonical(&b).to_string());
    }

    #[test]
    fn patch_data_puts_the_template_back() {
        let t = template("nginx:1");
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], json!("replace"));
        assert_eq!(data["spec"]["template"]["spec"]["containers"][0]["image"], json!("nginx:1"));
        let r = ControllerRevision { data: Some(RawExtension(data)), ..Default::default() };
        assert!(holds_template(&r, &t));
        assert!(!holds_template(&r, &template("nginx:2")));
    }

    #[test]
    fn daemonset_history_keeps_the_limit_and_live_revisions() {
        let old = vec![rev("a-1", 1, "h1"), rev("a-2", 2, "h2"), rev("a-3", 3, "h3")];
        let live: HashSet<String> = ["h1".to_string()].into();
        assert_eq!(daemonset_prune(&old, 1, &live), vec!["a-2", "a-3"]);
        assert_eq!(daemonset_prune(&old, 3, &live), Vec::<String>::new());
        assert_eq!(daemonset_prune(&old, 0, &HashSet::new()), vec!["a-1", "a-2", "a-3"]);
    }

    #[test]
    fn statefulset_history_counts_only_dead_revisions() {
        let revs = vec![rev("w-1", 1, "h1"), rev("w-2", 2, "h2"), rev("w-3", 3, "h3"), rev("w-4", 4, "h4")];
        let live: HashSet<String> = ["w-1".to_string(), "w-4".to_string()].into();
        assert_eq!(statefulset_prune(&revs, 1, &live), vec!["w-2"]);
        assert_eq!(statefulset_prune(&revs, 2, &live), Vec::<String>::new());
        assert_eq!(statefulset_prune(&revs, 0, &live), vec!["w-2", "w-3"]);
    }

    #[test]
    fn long_owner_names_are_cut() {
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "abc").len(), 223 + 4);
        assert_eq!(revision_name("web", "abc"), "web-abc");
    }
}
