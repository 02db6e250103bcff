//! Pieces shared by the controllers' specs (apps and batch): the selector
//! rules, "selector must match the template labels", and IntOrString
//! percentages.

use super::gorepr;
use super::meta;
use super::path::Path;
use super::pod;
use super::util::{as_int, get, invalid_raw, Errs, IMMUTABLE, NEGATIVE};
use crate::field_error::FieldError;
use crate::selector::LabelSelector;
use serde_json::{json, Value};

/// What a spec's selector turned out to be.
pub(crate) enum Selector {
    /// No selector: matches nothing.
    Missing,
    /// A selector that converted cleanly.
    Parsed(LabelSelector),
    /// A selector that could not be converted (already reported by validation).
    Invalid,
}

/// Validates `spec.selector` (required; `{}` rejected with
/// `empty selector is invalid for <word>` unless `word` is `None`) and
/// converts it.
pub(crate) fn selector(spec: &Value, empty_word: Option<&str>, path: &Path, errs: &mut Errs) -> Selector {
    let sel_path = path.child("selector");
    let Some(sel) = get(spec, "selector") else {
        errs.push(FieldError::required(&sel_path, ""));
        return Selector::Missing;
    };
    meta::label_selector(Some(sel), &sel_path, errs);
    let n_labels = sel.get("matchLabels").and_then(Value::as_object).map_or(0, |m| m.len());
    let n_exprs = sel.get("matchExpressions").and_then(Value::as_array).map_or(0, Vec::len);
    if let Some(word) = empty_word {
        if n_labels + n_exprs == 0 {
            errs.push(invalid_raw(&sel_path, &gorepr::label_selector(sel), &format!("empty selector is invalid for {word}")));
        }
    }
    match LabelSelector::from_json(sel) {
        Ok(s) => Selector::Parsed(s),
        Err(_) => Selector::Invalid,
    }
}

/// ``spec.template.metadata.labels: Invalid value: map[string]string{...}: `selector` does not match template `labels` ``
/// unless the (non-empty) selector matches. A missing selector matches
/// nothing; an empty one everything.
pub(crate) fn match_template(sel: &Selector, template: Option<&Value>, path: &Path, errs: &mut Errs) {
    let labels = pod::template_labels(template);
    let matches = match sel {
        Selector::Missing => false,
        Selector::Parsed(s) => s.is_empty() || s.matches(labels.and_then(Value::as_object)),
        Selector::Invalid => true,
    };
    if !matches {
        errs.push(invalid_raw(
            &path.child("template").child("metadata").child("labels"),
            &gorepr::string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `spec.selector: Invalid value: v1.LabelSelector{...}: field is immutable`
pub(crate) fn selector_immutable(new: &Value, old: &Value, path: &Path, errs: &mut Errs) {
    let (n, o) = (get(new, "selector"), get(old, "selector"));
    if !super::util::semantic_eq(n, o) {
        let raw = n.map(gorepr::label_selector).unwrap_or_else(|| "null".to_string());
        errs.push(invalid_raw(&path.child("selector"), &raw, IMMUTABLE));
    }
}

/// The percentage of a `"N%"` IntOrString, if it is one.
fn percent(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str).and_then(|s| s.strip_suffix('%')).filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())).and_then(|n| n.parse().ok())
}

/// upstream `getIntOrPercentValue`.
pub(crate) fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => percent(v).unwrap_or_else(|| s.parse().unwrap_or(0)),
        Some(other) => as_int(other).unwrap_or(0),
        None => 0,
    }
}

/// `ValidatePositiveIntOrPercent` of `parent[key]`.
pub(crate) fn positive_int_or_percent(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    match v {
        Some(Value::String(s)) if percent(v).is_none() => {
            let msg = crate::names::regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'",
                "[0-9]+%",
                &["1%", "93%"],
            );
            errs.push(invalid_raw(path, &gorepr::int_or_string(Some(&json!(s))), &msg));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            let n = as_int(other).unwrap_or(0);
            if n < 0 {
                errs.push(FieldError::invalid(path, json!(n), NEGATIVE));
            }
        }
        None => {}
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: Option<&Value>, path: &Path, errs: &mut Errs) {
    if percent(v).is_some_and(|p| p > 100) {
        errs.push(invalid_raw(path, &gorepr::int_or_string(v), "must not be greater than 100%"));
    }
}

/// The checks upstream's `ValidatePodTemplateSpecForReplicaSet` adds for
/// long-running pods: restartPolicy Always, no activeDeadlineSeconds.
pub(crate) fn long_running_template(template: Option<&Value>, kind_word: &str, path: &Path, errs: &mut Errs) {
    let spec_path = path.child("template").child("spec");
    let policy = pod::template_restart_policy(template);
    if policy != "Always" {
        errs.push(FieldError::not_supported(spec_path.child("restartPolicy"), json!(policy), &["Always"]));
    }
    if template.and_then(|t| super::util::at(t, &["spec", "activeDeadlineSeconds"])).is_some() {
        errs.push(FieldError::forbidden(spec_path.child("activeDeadlineSeconds"), format!("activeDeadlineSeconds in {kind_word} is not Supported")));
    }
}
