//! The stable identity of StatefulSet pods: names `<set>-<ordinal>`, the
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`
//! labels, hostname and subdomain, and the claims `<claim>-<set>-<ordinal>`
//! made from the volumeClaimTemplates. Also the PVC owner references the
//! retention policy asks for.
//!
//! Pure functions; no I/O.

use super::history::HASH_LABEL;
use crate::controllers::util::pod_from_template;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `web-12` -> ("web", 12); None when the name does not end in `-<digits>`
/// or the ordinal does not fit an int32.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse::<i32>().ok()?))
}

pub fn ordinal_of(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref()?).map(|(_, o)| o)
}

/// The pod's name says it belongs to `set`.
pub fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    pod.metadata.name.as_deref().and_then(parent_and_ordinal).map(|(p, _)| Some(p) == set.metadata.name.as_deref()).unwrap_or(false)
}

pub fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set_name(set))
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

/// `spec.ordinals.start` (0 by default).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start).unwrap_or(0).max(0)
}

pub fn in_range(set: &StatefulSet, ordinal: i32) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && i64::from(ordinal) < i64::from(start) + i64::from(replicas(set))
}

/// The revision a pod was made from (its `controller-revision-hash` label).
pub fn pod_revision(pod: &Pod) -> &str {
    pod.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)).map(String::as_str).unwrap_or("")
}

pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The claims of ordinal `ordinal`, in template order, as they are to be
/// created (labels: the template's plus the set's matchLabels).
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let Some(spec) = set.spec.as_ref() else { return Vec::new() };
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|t| {
            let template_name = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&template_name, set_name(set), ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels).filter(|l| !l.is_empty()),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// Volumes of the claims first (template order), then the template's own
/// volumes not named like a claim template.
fn with_claim_volumes(set: &StatefulSet, ordinal: i32, volumes: Vec<Volume>) -> Vec<Volume> {
    let templates = set.spec.as_ref().and_then(|s| s.volume_claim_templates.clone()).unwrap_or_default();
    let names: Vec<String> = templates.iter().map(|t| t.metadata.name.clone().unwrap_or_default()).collect();
    let mut out: Vec<Volume> = names
        .iter()
        .map(|n| Volume {
            name: n.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim_name(n, set_name(set), ordinal), read_only: None }),
            ..Default::default()
        })
        .collect();
    out.extend(volumes.into_iter().filter(|v| !names.contains(&v.name)));
    out
}

/// The pod for `ordinal` made from `template` (a revision's), labelled
/// with that revision's name.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let name = pod_name(set, ordinal);
    let mut pod = pod_from_template(template, set, &format!("{}-", set_name(set)), Some(&name));
    pod.metadata.generate_name = Some(format!("{}-", set_name(set)));
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(HASH_LABEL.into(), revision.into());
    let service = set.spec.as_ref().and_then(|s| s.service_name.clone()).filter(|s| !s.is_empty());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    spec.subdomain = service;
    let volumes = spec.volumes.take().unwrap_or_default();
    let volumes = with_claim_volumes(set, ordinal, volumes);
    spec.volumes = Some(volumes).filter(|v| !v.is_empty());
    pod
}

/// Upstream `identityMatches`.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal_of(pod) else { return false };
    let label = |k: &str| pod.metadata.labels.as_ref().and_then(|l| l.get(k)).cloned();
    is_member(set, pod)
        && pod.metadata.namespace == set.metadata.namespace
        && label(POD_NAME_LABEL).as_deref() == pod.metadata.name.as_deref()
        && label(POD_INDEX_LABEL) == Some(ordinal.to_string())
}

/// Upstream `storageMatches`: every claim template is mounted from the
/// pod's own claim.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal_of(pod) else { return false };
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    set.spec.as_ref().and_then(|s| s.volume_claim_templates.as_deref()).unwrap_or(&[]).iter().all(|t| {
        let n = t.metadata.name.clone().unwrap_or_default();
        volumes
            .iter()
            .find(|v| v.name == n)
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name == claim_name(&n, set_name(set), ordinal))
            .unwrap_or(false)
    })
}

/// `whenScaled`/`whenDeleted` say Delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub delete_when_scaled: bool,
    pub delete_when_deleted: bool,
}

pub fn retention(set: &StatefulSet) -> Retention {
    let p = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    Retention {
        delete_when_scaled: p.and_then(|p| p.when_scaled.as_deref()) == Some("Delete"),
        delete_when_deleted: p.and_then(|p| p.when_deleted.as_deref()) == Some("Delete"),
    }
}

/// The owner references a claim should have (upstream
/// `updateClaimOwnerRefForSetAndPod`): the set's when claims go with the
/// set, the pod's when the pod is scaled away and claims go with it.
/// Other owners are kept.
pub fn claim_owners(current: &[OwnerReference], set: &OwnerReference, pod: &OwnerReference, policy: Retention, scaled_down: bool) -> Vec<OwnerReference> {
    let want_set = policy.delete_when_deleted && !(policy.delete_when_scaled && scaled_down);
    let want_pod = policy.delete_when_scaled && scaled_down;
    let mut out: Vec<OwnerReference> = current.iter().filter(|r| (r.uid != set.uid || want_set) && (r.uid != pod.uid || want_pod)).cloned().collect();
    for (want, r) in [(want_set, set), (want_pod, pod)] {
        if want && !out.iter().any(|o| o.uid == r.uid) {
            out.push(r.clone());
        }
    }
    out
}

/// A claim made for an earlier pod of this name, owned by it, that the
/// garbage collector is about to delete (upstream `hasStaleOwnerRef`).
pub fn claim_is_stale(claim: &PersistentVolumeClaim, pod_name: &str, pod_uid: Option<&str>) -> bool {
    claim.metadata.owner_references.as_deref().unwrap_or(&[]).iter().any(|r| r.kind == "Pod" && r.name == pod_name && Some(r.uid.as_str()) != pod_uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {
                "replicas": 3,
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": [{"name": "cfg", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }))
        .expect("set")
    }

    #[test]
    fn ordinals_come_from_names() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-x1"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None);
    }

    #[test]
    fn new_pods_carry_their_identity_and_claims() {
        let s = set();
        let template = s.spec.as_ref().map(|sp| sp.template.clone()).unwrap_or_default();
        let pod = new_pod(&s, &template, 2, "web-abc");
        let v = serde_json::to_value(&pod).expect("json");
        assert_eq!(v["metadata"]["name"], json!("web-2"));
        assert_eq!(v["metadata"]["generateName"], json!("web-"));
        assert_eq!(v["metadata"]["namespace"], json!("ns"));
        assert_eq!(v["metadata"]["labels"], json!({"app": "web", "apps.kubernetes.io/pod-index": "2", "controller-revision-hash": "web-abc", "statefulset.kubernetes.io/pod-name": "web-2"}));
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], json!("StatefulSet"));
        assert_eq!(v["spec"]["hostname"], json!("web-2"));
        assert_eq!(v["spec"]["subdomain"], json!("nginx"));
        assert_eq!(v["spec"]["volumes"], json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}}, {"name": "cfg", "emptyDir": {}}]));
        assert!(identity_matches(&s, &pod));
        assert!(storage_matches(&s, &pod));
        let claims = claims_for(&s, 2);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("data-web-2"));
        assert_eq!(claims[0].metadata.labels.as_ref().map(|l| l.len()), Some(2));
    }

    #[test]
    fn start_ordinal_shifts_the_range() {
        let mut s = set();
        assert!(in_range(&s, 0) && in_range(&s, 2) && !in_range(&s, 3));
        if let Some(sp) = s.spec.as_mut() {
            sp.ordinals = Some(k8s_openapi::api::apps::v1::StatefulSetOrdinals { start: Some(5) });
        }
        assert!(!in_range(&s, 4) && in_range(&s, 5) && in_range(&s, 7) && !in_range(&s, 8));
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        let r = |uid: &str, kind: &str| OwnerReference { uid: uid.into(), kind: kind.into(), name: uid.into(), api_version: "v1".into(), ..Default::default() };
        let (set, pod, other) = (r("s", "StatefulSet"), r("p", "Pod"), r("o", "Thing"));
        let uids = |v: Vec<OwnerReference>| v.into_iter().map(|r| r.uid).collect::<Vec<_>>();
        let policy = |scaled: bool, deleted: bool| Retention { delete_when_scaled: scaled, delete_when_deleted: deleted };
        assert_eq!(uids(claim_owners(&[set.clone(), other.clone()], &set, &pod, policy(false, false), false)), vec!["o"]);
        assert_eq!(uids(claim_owners(&[], &set, &pod, policy(false, true), false)), vec!["s"]);
        assert_eq!(uids(claim_owners(&[], &set, &pod, policy(true, false), false)), Vec::<String>::new());
        assert_eq!(uids(claim_owners(&[], &set, &pod, policy(true, false), true)), vec!["p"]);
        assert_eq!(uids(claim_owners(std::slice::from_ref(&set), &set, &pod, policy(true, true), true)), vec!["p"]);
        assert_eq!(uids(claim_owners(std::slice::from_ref(&pod), &set, &pod, policy(true, true), false)), vec!["s"]);
    }
}
