//! Field selectors (`--field-selector status.phase=Running,spec.nodeName!=n1`)
//! and reading a dotted field out of an object.

use super::error::SelectorError;
use serde_json::Value;
use std::fmt;

/// One `field=value` (`equals`) or `field!=value` term, value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub equals: bool,
    pub value: String,
}

/// A conjunction of field terms; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// Splits on commas that are not escaped, keeping escapes in the parts.
fn split_terms(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    parts.push(s.get(start..).unwrap_or_default());
    parts
}

/// Cuts a term at the first `!=`, `==` or `=`; the field part has no escapes.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..).unwrap_or_default();
        let field = term.get(..i).unwrap_or_default();
        for (op, equals) in [("!=", false), ("==", true), ("=", true)] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((field, equals, value));
            }
        }
    }
    None
}

/// Resolves `\\`, `\,` and `\=`; other escapes and bare `,`/`=` are errors.
fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '=' {
            return Err(SelectorError::UnescapedChar(c));
        } else {
            out.push(c);
        }
    }
    if escaped {
        return Err(SelectorError::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl FieldSelector {
    /// Parses `a=b,c!=d` (`==` allowed). Values may contain `\,`, `\=` and
    /// `\\`; field names are taken as is (which fields a resource supports
    /// is the caller's check). Empty terms are skipped; `""` selects everything.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = if s.is_empty() { Vec::new() } else { split_terms(s) };
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let (field, equals, raw) = split_term(part)
                .ok_or_else(|| SelectorError::FieldTerm { selector: s.to_string(), term: part.to_string() })?;
            terms.push(FieldTerm { field: field.to_string(), equals, value: unescape(raw)? });
        }
        Ok(FieldSelector { terms })
    }

    /// The terms as `(field, equals, value)`; `equals` is false for `!=`.
    pub fn requirements(&self) -> impl Iterator<Item = (&str, bool, &str)> {
        self.terms.iter().map(|t| (t.field.as_str(), t.equals, t.value.as_str()))
    }

    /// The terms themselves.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// True when there is no term (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every term holds for `obj`; a missing field reads as `""`.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let actual = field_value(obj, &t.field).unwrap_or_default();
            (actual == t.value) == t.equals
        })
    }
}

impl fmt::Display for FieldSelector {
    /// `field=value` / `field!=value` joined by `,`, values re-escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.equals { "=" } else { "!=" };
            write!(f, "{}{op}{}", t.field, escape(&t.value))?;
        }
        Ok(())
    }
}

/// The value at a dotted path (`metadata.name`, `spec.nodeName`,
/// `status.phase`) as text: strings as is, booleans and numbers rendered;
/// `None` when missing, `null`, or not a scalar.
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    let mut node = obj;
    for part in field.split('.') {
        node = node.as_object()?.get(part)?;
    }
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terms(s: &str) -> Result<Vec<(String, bool, String)>, String> {
        FieldSelector::parse(s)
            .map(|f| f.requirements().map(|(a, b, c)| (a.to_string(), b, c.to_string())).collect())
            .map_err(|e| e.to_string())
    }

    fn t(f: &str, eq: bool, v: &str) -> (String, bool, String) {
        (f.to_string(), eq, v.to_string())
    }

    #[test]
    fn parses_terms() {
        assert_eq!(terms(""), Ok(vec![]));
        assert_eq!(terms("metadata.name=web"), Ok(vec![t("metadata.name", true, "web")]));
        assert_eq!(terms("metadata.name==web"), Ok(vec![t("metadata.name", true, "web")]));
        assert_eq!(
            terms("status.phase!=Running,spec.nodeName=n1"),
            Ok(vec![t("spec.nodeName", true, "n1"), t("status.phase", false, "Running")])
        );
        assert_eq!(terms("a=,b="), Ok(vec![t("a", true, ""), t("b", true, "")]));
        assert_eq!(terms("a=b,,"), Ok(vec![t("a", true, "b")]));
        assert_eq!(terms("a!b=c"), Ok(vec![t("a!b", true, "c")]));
    }

    #[test]
    fn escapes_in_values() {
        assert_eq!(terms(r"a=x\,y"), Ok(vec![t("a", true, "x,y")]));
        assert_eq!(terms(r"a=x\=y,b!=\\"), Ok(vec![t("a", true, "x=y"), t("b", false, "\\")]));
        assert_eq!(terms(r"a=x\y"), Err(r"invalid field selector: invalid escape sequence: \y".into()));
        assert_eq!(terms(r"a=x\"), Err(r"invalid field selector: invalid escape sequence: \".into()));
        assert_eq!(terms("a=x=y"), Err("invalid field selector: unescaped character in value: '='".into()));
        let sel = FieldSelector::parse(r"b=p\,q\=r\\s,a!=z");
        let shown = sel.as_ref().map(ToString::to_string).map_err(|e| e.to_string());
        assert_eq!(shown, Ok(r"a!=z,b=p\,q\=r\\s".to_string()));
        let again = shown.and_then(|s| FieldSelector::parse(&s).map_err(|e| e.to_string()));
        assert_eq!(again, sel.map_err(|e| e.to_string()));
    }

    #[test]
    fn odd_input_gives_errors_not_panics() {
        let pieces = ["a", "=", "!", ",", "\\", "é", ""];
        for p in pieces {
            for q in pieces {
                for r in pieces {
                    let s = format!("{p}{q}{r}{q}");
                    if let Ok(sel) = FieldSelector::parse(&s) {
                        let shown = sel.to_string();
                        assert_eq!(FieldSelector::parse(&shown).map(|f| f.to_string()), Ok(shown.clone()), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_terms_without_operator() {
        assert_eq!(terms("a=b,c"), Err("invalid selector: 'a=b,c'; can't understand 'c'".into()));
        assert_eq!(terms("status.phase"), Err("invalid selector: 'status.phase'; can't understand 'status.phase'".into()));
    }

    #[test]
    fn reads_fields() {
        let pod = json!({
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"nodeName": "n1", "hostNetwork": true, "priority": 7},
            "status": {"phase": "Running", "nominatedNodeName": null}
        });
        assert_eq!(field_value(&pod, "metadata.name").as_deref(), Some("web-0"));
        assert_eq!(field_value(&pod, "spec.hostNetwork").as_deref(), Some("true"));
        assert_eq!(field_value(&pod, "spec.priority").as_deref(), Some("7"));
        assert_eq!(field_value(&pod, "status.nominatedNodeName"), None);
        assert_eq!(field_value(&pod, "spec.missing"), None);
        assert_eq!(field_value(&pod, "metadata.name.deeper"), None);
        assert_eq!(field_value(&pod, "spec"), None);

        let matches = |s: &str| FieldSelector::parse(s).map(|f| f.matches(&pod)).map_err(|e| e.to_string());
        assert_eq!(matches(""), Ok(true));
        assert_eq!(matches("metadata.name=web-0"), Ok(true));
        assert_eq!(matches("metadata.name=web-1"), Ok(false));
        assert_eq!(matches("spec.nodeName!=n2,status.phase=Running"), Ok(true));
        assert_eq!(matches("spec.nodeName!=n1"), Ok(false));
        assert_eq!(matches("spec.hostNetwork=true"), Ok(true));
        // A missing field reads as "": kubectl's `spec.nodeName=` finds unscheduled pods.
        assert_eq!(matches("spec.schedulerName="), Ok(true));
        assert_eq!(matches("spec.schedulerName!="), Ok(false));
        assert_eq!(matches("spec.nodeName="), Ok(false));
    }
}
