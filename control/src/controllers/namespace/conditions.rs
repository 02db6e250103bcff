//! The status conditions the namespace controller keeps on a terminating
//! namespace, with upstream's types, reasons and messages.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;

/// What one pass over the namespace's content found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub discovery_error: Option<String>,
    pub delete_errors: Vec<String>,
    /// `pods.` / `widgets.example.com` → objects left.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer → objects that still carry it.
    pub finalizers: BTreeMap<String, usize>,
}

const TYPES: [(&str, &str, &str); 5] = [
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
];

/// The failing conditions (type, reason, message) the totals call for.
fn failing(t: &Totals) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if let Some(e) = &t.discovery_error {
        out.push(("NamespaceDeletionDiscoveryFailure", "DiscoveryFailed", e.clone()));
    }
    if !t.delete_errors.is_empty() {
        let mut msgs = t.delete_errors.clone();
        msgs.sort();
        out.push((
            "NamespaceDeletionContentFailure",
            "ContentDeletionFailed",
            format!("Failed to delete all resource types, {} remaining: {}", msgs.len(), msgs.join(", ")),
        ));
    }
    let remaining: Vec<String> = t.remaining.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r} has {n} resource instances")).collect();
    if !remaining.is_empty() {
        out.push(("NamespaceContentRemaining", "SomeResourcesRemain", format!("Some resources are remaining: {}", remaining.join(", "))));
    }
    let fins: Vec<String> = t.finalizers.iter().filter(|(_, n)| **n > 0).map(|(f, n)| format!("{f} in {n} resource instances")).collect();
    if !fins.is_empty() {
        out.push((
            "NamespaceFinalizersRemaining",
            "SomeFinalizersRemain",
            format!("Some content in the namespace has finalizers remaining: {}", fins.join(", ")),
        ));
    }
    out
}

/// The namespace's conditions after this pass, or `None` when nothing
/// changed. Conditions of other types are kept; a transition time moves
/// only when a status flips.
pub fn update(existing: &[NamespaceCondition], totals: &Totals, now: Timestamp) -> Option<Vec<NamespaceCondition>> {
    let failing = failing(totals);
    let mut out = existing.to_vec();
    let mut changed = false;
    for (type_, ok_reason, ok_message) in TYPES {
        let (status, reason, message) = match failing.iter().find(|(t, _, _)| *t == type_) {
            Some((_, r, m)) => ("True", *r, m.clone()),
            None => ("False", ok_reason, ok_message.to_string()),
        };
        match out.iter_mut().find(|c| c.type_ == type_) {
            None => {
                out.push(NamespaceCondition {
                    type_: type_.to_string(),
                    status: status.to_string(),
                    reason: Some(reason.to_string()),
                    message: Some(message),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(c) => {
                if c.status != status || c.reason.as_deref() != Some(reason) || c.message.as_deref() != Some(message.as_str()) {
                    if c.status != status {
                        c.last_transition_time = Some(Time(now));
                    }
                    c.status = status.to_string();
                    c.reason = Some(reason.to_string());
                    c.message = Some(message);
                    changed = true;
                }
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_clear_sets_the_ok_variants_once() {
        let now = Timestamp::UNIX_EPOCH;
        let c = update(&[], &Totals::default(), now).unwrap_or_default();
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|c| c.status == "False"));
        let content = c.iter().find(|c| c.type_ == "NamespaceContentRemaining").cloned().unwrap_or_default();
        assert_eq!(content.reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(content.message.as_deref(), Some("All content successfully removed"));
        assert_eq!(update(&c, &Totals::default(), now), None, "no change, no update");
    }

    #[test]
    fn remaining_content_and_finalizers_are_reported() {
        let mut t = Totals::default();
        t.remaining.insert("pods.".into(), 2);
        t.remaining.insert("widgets.example.com".into(), 1);
        t.finalizers.insert("example.com/hold".into(), 1);
        t.delete_errors.push("b failed".into());
        t.delete_errors.push("a failed".into());
        let c = update(&[], &t, Timestamp::UNIX_EPOCH).unwrap_or_default();
        let get = |ty: &str| c.iter().find(|c| c.type_ == ty).cloned().unwrap_or_default();
        let r = get("NamespaceContentRemaining");
        assert_eq!((r.status.as_str(), r.reason.as_deref()), ("True", Some("SomeResourcesRemain")));
        assert_eq!(r.message.as_deref(), Some("Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances"));
        let f = get("NamespaceFinalizersRemaining");
        assert_eq!(f.reason.as_deref(), Some("SomeFinalizersRemain"));
        assert_eq!(f.message.as_deref(), Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"));
        let e = get("NamespaceDeletionContentFailure");
        assert_eq!(e.message.as_deref(), Some("Failed to delete all resource types, 2 remaining: a failed, b failed"));
        assert_eq!(get("NamespaceDeletionDiscoveryFailure").status, "False");
        // Content gone: flips back, with a new transition time.
        let later = Timestamp::from_second(100).unwrap_or(Timestamp::UNIX_EPOCH);
        let c2 = update(&c, &Totals::default(), later).unwrap_or_default();
        let r2 = c2.iter().find(|c| c.type_ == "NamespaceContentRemaining").cloned().unwrap_or_default();
        assert_eq!(r2.status, "False");
        assert_eq!(r2.last_transition_time, Some(Time(later)));
    }
}
