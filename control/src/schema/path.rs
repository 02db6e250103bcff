//! Field paths printed the way upstream prints them.
//!
//! Object walks use `parent.child` and `parent[3]`; the CRD schema checks
//! name schema keys as `properties[spec]` (`field.Path.Key`).

/// `parent.name`, or `name` at the root.
pub(crate) fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `parent[key]`.
pub(crate) fn key(parent: &str, key: &str) -> String {
    format!("{parent}[{key}]")
}

/// Append a relative path (`a.b`, `[0].c`, or empty) to a base path.
pub(crate) fn join(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string()
    } else if base.is_empty() || rel.starts_with('[') {
        format!("{base}{rel}")
    } else {
        format!("{base}.{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_look_like_upstream() {
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(index(&child("spec", "containers"), 0), "spec.containers[0]");
        assert_eq!(key(&child("x", "properties"), "spec"), "x.properties[spec]");
        assert_eq!(join("a.default", "[1].b"), "a.default[1].b");
        assert_eq!(join("a.default", "b"), "a.default.b");
        assert_eq!(join("", "b"), "b");
    }
}
