//! Selector errors, worded like upstream's parse errors.

use crate::field_error::{aggregate, FieldError};

/// Why a label or field selector was rejected. `Display` is the message a
/// kubectl user sees in the 400 BadRequest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectorError {
    /// An unexpected token between requirements, e.g.
    /// `found '(', expected: ',' or 'end of string'`.
    #[error("found '{found}', expected: {expected}")]
    Unexpected { found: String, expected: &'static str },
    /// A requirement of a `-l` string could not be parsed or is invalid.
    #[error("unable to parse requirement: {0}")]
    Requirement(RequirementError),
    /// A requirement of a JSON `LabelSelector` is invalid.
    #[error("{0}")]
    InvalidRequirement(RequirementError),
    /// `matchExpressions[].operator` is not In, NotIn, Exists or DoesNotExist.
    #[error("{0:?} is not a valid label selector operator")]
    UnknownOperator(String),
    /// A JSON `LabelSelector` of the wrong shape (e.g. `matchLabels` not an object).
    #[error("invalid label selector: {0}")]
    Malformed(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A backslash not followed by `\`, `,` or `=` in a field selector value.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A bare `,` or `=` inside a field selector value.
    #[error("invalid field selector: unescaped character in value: {0:?}")]
    UnescapedChar(char),
}

/// What is wrong inside one label requirement.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequirementError {
    /// `found 'x', expected: identifier` and friends.
    #[error("found '{found}', expected: {expected}")]
    Unexpected { found: String, expected: &'static str },
    /// `in` / `notin` not followed by `(` (upstream prints no comma here).
    #[error("found '{0}' expected: '('")]
    ExpectedOpenParen(String),
    /// Invalid key or values, as field errors (`values[0][app]: Invalid value: ...`).
    #[error("{}", aggregate(.0))]
    Invalid(Vec<FieldError>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_read_like_upstream() {
        let e = SelectorError::Unexpected { found: "(".into(), expected: "',' or 'end of string'" };
        assert_eq!(e.to_string(), "found '(', expected: ',' or 'end of string'");
        let e = SelectorError::Requirement(RequirementError::Invalid(vec![FieldError::invalid("", json!("x/y/z"), "bad")]));
        assert_eq!(e.to_string(), "unable to parse requirement: Invalid value: \"x/y/z\": bad");
        assert_eq!(SelectorError::UnescapedChar('=').to_string(), "invalid field selector: unescaped character in value: '='");
        assert_eq!(SelectorError::UnknownOperator("Gt".into()).to_string(), "\"Gt\" is not a valid label selector operator");
    }
}
