//! Label and field selectors: parsing, matching and canonical printing.
//!
//! Owns: the kubectl `-l` string syntax (`a=b,c!=d,e in (x,y),!f`), the
//! `metav1.LabelSelector` JSON form (`matchLabels` / `matchExpressions`)
//! and its validation, the `--field-selector` syntax with its `\,` `\=` `\\`
//! escapes, and reading a dotted field (`spec.nodeName`) out of an object.
//! Errors read like upstream's, because the API server hands them to kubectl
//! users as 400 BadRequest messages.
//! Must not: decide which fields a resource supports in field selectors, nor
//! what a missing (`null`) selector means for a given resource — callers own
//! both.

mod error;
mod field;
mod label;
mod label_json;
mod lexer;

pub use error::{RequirementError, SelectorError};
pub use field::{field_value, FieldSelector, FieldTerm};
pub use label::{LabelSelector, Operator, Requirement};
pub use label_json::validate_label_selector;
