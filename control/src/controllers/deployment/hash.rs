//! The `pod-template-hash` of a Deployment's pod template: a stable FNV-32a
//! hash of the template (and of `status.collisionCount` when set), written
//! with the same alphabet as upstream, so ReplicaSets are named
//! `<deployment>-<hash>` as on any cluster. Also template equality that
//! ignores that label.

use k8s_openapi::api::core::v1::PodTemplateSpec;

pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Characters upstream encodes the hash with.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv32a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

const FNV_OFFSET: u32 = 0x811c_9dc5;

pub fn compute(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let text = serde_json::to_vec(template).unwrap_or_default();
    let mut h = fnv32a(&text, FNV_OFFSET);
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv32a(&bytes, h);
    }
    h.to_string().bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut() {
        if let Some(l) = m.labels.as_mut() {
            l.remove(POD_TEMPLATE_HASH);
            if l.is_empty() {
                m.labels = None;
            }
        }
        if m.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            m.annotations = None;
        }
    }
    t
}

/// Equal templates, but for the `pod-template-hash` label.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str, extra: Option<(&str, &str)>) -> PodTemplateSpec {
        let mut labels = json!({"app": "web"});
        if let Some((k, v)) = extra {
            labels[k] = json!(v);
        }
        serde_json::from_value(json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image}]}})).expect("template")
    }

    #[test]
    fn the_hash_is_stable_and_looks_like_upstream() {
        let t = template("nginx:1", None);
        let h = compute(&t, None);
        assert_eq!(h, compute(&t.clone(), None));
        assert!(!h.is_empty() && h.len() <= 10 && h.bytes().all(|b| ALPHANUMS.contains(&b)), "{h}");
        assert_ne!(h, compute(&template("nginx:2", None), None));
        assert_ne!(h, compute(&t, Some(1)), "a collision count gives another name");
        assert_ne!(compute(&t, Some(0)), compute(&t, Some(1)));
        // FNV-32a of the empty input is the offset basis.
        assert_eq!(fnv32a(b"", FNV_OFFSET), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a", FNV_OFFSET), 0xe40c_292c);
    }

    #[test]
    fn equality_ignores_the_hash_label() {
        let a = template("nginx:1", None);
        let b = template("nginx:1", Some((POD_TEMPLATE_HASH, "abc")));
        assert!(equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &template("nginx:2", Some((POD_TEMPLATE_HASH, "abc")))));
        assert!(!equal_ignore_hash(&a, &template("nginx:1", Some(("tier", "x")))));
    }
}
