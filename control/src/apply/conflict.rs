//! Apply conflicts and upstream's wording of them.

use super::managed::{describe, identity};
use std::collections::BTreeMap;

/// One field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation, `Apply` or `Update`.
    pub operation: String,
    /// Its apiVersion (printed for `Update` managers).
    pub api_version: String,
    pub subresource: Option<String>,
    /// The field, as `.spec.replicas` or `.spec.containers[name="web"].image`.
    pub field: String,
}

impl Conflict {
    /// `"kubectl-client-side-apply" using apps/v1`.
    pub fn manager_description(&self) -> String {
        describe(&self.manager, &self.operation, &self.api_version, self.subresource.as_deref())
    }

    /// The message of the matching `causes[]` entry (type `conflict`, field = [`Conflict::field`]):
    /// `conflict with "kubectl-client-side-apply" using apps/v1`.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }

    pub(crate) fn identity(&self) -> String {
        identity(&self.manager, &self.operation, &self.api_version, self.subresource.as_deref())
    }
}

/// `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`, or for
/// several: `Apply failed with 2 conflicts: conflicts with "m" using v1:\n- .a\n- .b`.
pub(crate) fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!("Apply failed with 1 conflict: {}: {}", one.message(), one.field);
    }
    let mut by_manager: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry(c.identity())
            .or_insert_with(|| (c.manager_description(), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (description, fields) in by_manager.values() {
        lines.push(format!("conflicts with {description}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(manager: &str, operation: &str, field: &str) -> Conflict {
        Conflict {
            manager: manager.into(),
            operation: operation.into(),
            api_version: "apps/v1".into(),
            subresource: None,
            field: field.into(),
        }
    }

    #[test]
    fn words_like_upstream() {
        assert_eq!(
            conflicts_message(&[c("kubectl-client-side-apply", "Update", ".spec.replicas")]),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            conflicts_message(&[
                c("kubectl", "Apply", ".spec.replicas"),
                c("hpa", "Update", ".spec.replicas"),
                c("kubectl", "Apply", ".metadata.labels.app"),
            ]),
            "Apply failed with 3 conflicts: conflicts with \"hpa\" using apps/v1:\n- .spec.replicas\nconflicts with \"kubectl\":\n- .spec.replicas\n- .metadata.labels.app"
        );
        assert_eq!(c("kubectl", "Apply", ".a").message(), "conflict with \"kubectl\"");
    }
}
