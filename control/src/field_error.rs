//! Field-level validation errors, printed the way Kubernetes prints them.
//!
//! `spec.replicas: Invalid value: -1: must be greater than or equal to 0`
//! is what kubectl users know; every validator (built-in admission, CRD
//! schema validation) reports through [`FieldError`] so the API layer can
//! turn a list of them into one `Invalid` Status with causes.

use serde_json::Value;
use std::fmt;

/// The kind of a field error; the `reason` strings match upstream `causes[].reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    Duplicate,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
    Internal,
}

impl ErrorType {
    /// Machine-readable reason (`FieldValueInvalid`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Internal => "InternalError",
        }
    }

    /// Human words (`Invalid value`, ...).
    pub fn words(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// One problem with one field. `field` is the dotted path as upstream
/// prints it: `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: ErrorType, field: impl Into<String>, value: Option<Value>, detail: impl Into<String>) -> Self {
        Self { kind, field: field.into(), value, detail: detail.into() }
    }
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value), detail)
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }
    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value), "")
    }
    /// `Unsupported value: "x": supported values: "a", "b"`
    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let list = supported.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
        Self::new(ErrorType::NotSupported, field, Some(value), format!("supported values: {list}"))
    }

    /// The message without the field path: `Invalid value: "x": detail`.
    pub fn error_body(&self) -> String {
        let mut s = self.kind.words().to_string();
        if let Some(v) = &self.value {
            if !matches!(self.kind, ErrorType::Required | ErrorType::Forbidden | ErrorType::Internal) {
                s.push_str(": ");
                s.push_str(&render_value(v));
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        Value::Object(_) | Value::Array(_) => {
            let s = v.to_string();
            if s.len() > 256 { format!("{}...", &s[..s.char_indices().take_while(|(i, _)| *i < 256).last().map(|(i, c)| i + c.len_utf8()).unwrap_or(0)]) } else { s }
        }
        other => other.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.error_body())
        } else {
            write!(f, "{}: {}", self.field, self.error_body())
        }
    }
}

/// Join errors the way `ErrorList.ToAggregate()` prints them: one error as
/// is, several as `[a, b]`.
pub fn aggregate(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!("[{}]", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_like_upstream() {
        let e = FieldError::invalid("spec.replicas", json!(-1), "must be greater than or equal to 0");
        assert_eq!(e.to_string(), "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
        let e = FieldError::required("metadata.name", "name or generateName is required");
        assert_eq!(e.to_string(), "metadata.name: Required value: name or generateName is required");
        let e = FieldError::not_supported("spec.restartPolicy", json!("Sometimes"), &["Always", "Never"]);
        assert_eq!(e.to_string(), "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\"");
        assert_eq!(aggregate(&[e.clone(), e]).matches("spec.restartPolicy").count(), 2);
    }
}
