//! Errors of applying a patch, worded for the kubectl user.

use thiserror::Error;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// The patch body has the wrong overall shape (a JSON patch that is not
    /// an array, a strategic merge patch that is not an object).
    #[error("{0}")]
    Malformed(String),

    /// Operation number `index` (0-based) of a JSON patch failed; `op` is
    /// its kind (`add`, `remove`, ...) when it had a valid one.
    #[error("{message}")]
    JsonPatchOperation {
        index: usize,
        op: Option<String>,
        message: String,
    },

    /// A strategic merge patch directive (`$patch`, `$retainKeys`,
    /// `$setElementOrder/...`, `$deleteFromPrimitiveList/...`) has an
    /// invalid value or is used where it cannot apply.
    #[error("{0}")]
    InvalidDirective(String),

    /// An element of a list merged by key lacks the key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// Path of the list in the object, `spec.template.spec.containers`.
        field: String,
        /// The merge key (or keys, comma-separated).
        key: String,
        /// The offending patch element, as JSON.
        element: String,
    },

    /// A list declared as mergeable without a merge key holds objects.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKey { field: String },
}

impl PatchError {
    /// The HTTP status the API server answers with: 400 for a body that is
    /// not a patch at all, 422 for a patch that does not apply.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::Malformed(_) => 400,
            _ => 422,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(PatchError::Malformed("x".into()).http_status(), 400);
        let e = PatchError::MissingMergeKey {
            field: "spec.containers".into(),
            key: "name".into(),
            element: r#"{"image":"nginx"}"#.into(),
        };
        assert_eq!(e.http_status(), 422);
        assert_eq!(
            e.to_string(),
            r#"map: {"image":"nginx"} does not contain declared merge key: name"#
        );
    }
}
