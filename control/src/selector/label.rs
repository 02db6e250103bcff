//! Label selectors: the requirement model, the `-l` string parser, matching
//! and the canonical string form.

use super::error::{RequirementError, SelectorError};
use super::lexer::{tokenize, Tok};
use crate::field_error::FieldError;
use crate::names;
use serde_json::{Map, Value};
use std::fmt;

/// How a requirement compares a label. `==` parses to [`Operator::Equals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    /// Label value, as an integer, is greater than the single value.
    Gt,
    /// Label value, as an integer, is less than the single value.
    Lt,
}

/// One `key op values` term. `values` is sorted and free of duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// A label value as text: strings as is, `null` as empty, anything else as JSON.
fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Requirement {
    /// Checks a requirement the way upstream's `NewRequirement` does and
    /// normalises its values. `key_path` is the field path printed for a bad
    /// key (`""` when parsing strings, `"key"` for JSON selectors).
    pub fn new(key: &str, operator: Operator, values: Vec<String>, key_path: &str) -> Result<Self, Vec<FieldError>> {
        let mut errs = Vec::new();
        let key_errs = names::qualified_name(key);
        if !key_errs.is_empty() {
            errs.push(FieldError::invalid(key_path, Value::String(key.to_string()), key_errs.join("; ")));
        }
        let list = || Value::Array(values.iter().cloned().map(Value::String).collect());
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                errs.push(FieldError::invalid("values", list(), "for 'in', 'notin' operators, values set can't be empty"));
            }
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                errs.push(FieldError::invalid("values", list(), "exact-match compatibility requires one single value"));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(FieldError::invalid("values", list(), "values set must be empty for exists and does not exist"));
            }
            Operator::Gt | Operator::Lt => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid("values", list(), "for 'Gt', 'Lt' operators, exactly one value is required"));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            Value::String(v.clone()),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = names::label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(format!("values[{i}][{key}]"), Value::String(v.clone()), msgs.join("; ")));
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement { key: key.to_string(), operator, values })
    }

    /// Whether a label set satisfies this requirement. `NotIn`/`!=` match
    /// objects without the label; `Gt`/`Lt` need an integer label value.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels.and_then(|l| l.get(&self.key)).map(label_text);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| has(&v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !has(&v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt | Operator::Lt => {
                let (Some(actual), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), self.values.as_slice()) else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else { return false };
                if self.operator == Operator::Gt { actual > bound } else { actual < bound }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::Exists => return write!(f, "{}", self.key),
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
            Operator::Gt => ">",
            Operator::Lt => "<",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
        };
        let values = self.values.join(",");
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            write!(f, "{}{op}({values})", self.key)
        } else {
            write!(f, "{}{op}{values}", self.key)
        }
    }
}

impl fmt::Display for LabelSelector {
    /// Requirements sorted by key, joined by `,` — upstream's canonical form,
    /// which [`LabelSelector::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Builds a selector from requirements, sorting them by key (stable).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// Parses kubectl's `-l` syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h`,
    /// plus `==`, `>` and `<`. The empty (or blank) string selects everything.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut p = Parser { items: tokenize(s), pos: 0 };
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = p.lookahead(Ctx::Values);
            match tok {
                Tok::Ident | Tok::Bang => {
                    requirements.push(p.requirement().map_err(SelectorError::Requirement)?);
                    let (tok, lit) = p.consume(Ctx::Values);
                    match tok {
                        Tok::End => break,
                        Tok::Comma => {
                            let (next, next_lit) = p.lookahead(Ctx::Values);
                            if next != Tok::Ident && next != Tok::Bang {
                                return Err(SelectorError::Unexpected { found: next_lit, expected: "identifier after ','" });
                            }
                        }
                        _ => return Err(SelectorError::Unexpected { found: lit, expected: "',' or 'end of string'" }),
                    }
                }
                Tok::End => break,
                _ => return Err(SelectorError::Unexpected { found: lit, expected: "!, identifier, or 'end of string'" }),
            }
        }
        Ok(Self::from_requirements(requirements))
    }

    /// True when every requirement holds for `labels` (absent = no labels).
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True for the selector without requirements (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

/// Whether `in` / `notin` are keywords (operator position) or plain words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Operator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self.items.get(self.pos).or(self.items.last()).cloned().unwrap_or((Tok::End, String::new()));
        match tok {
            Tok::In | Tok::NotIn if ctx == Ctx::Values => (Tok::Ident, lit),
            _ => (tok, lit),
        }
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let item = self.lookahead(ctx);
        self.pos += 1;
        item
    }

    fn requirement(&mut self) -> Result<Requirement, RequirementError> {
        let (mut tok, mut key) = self.consume(Ctx::Values);
        let negated = tok == Tok::Bang;
        if negated {
            (tok, key) = self.consume(Ctx::Values);
        }
        if tok != Tok::Ident {
            return Err(RequirementError::Unexpected { found: key, expected: "identifier" });
        }
        let key_errs = names::qualified_name(&key);
        if !key_errs.is_empty() {
            return Err(RequirementError::Invalid(vec![FieldError::invalid("", Value::String(key), key_errs.join("; "))]));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        let unary = matches!(next, Tok::End | Tok::Comma);
        if negated || unary {
            let op = if negated { Operator::DoesNotExist } else { Operator::Exists };
            return Requirement::new(&key, op, Vec::new(), "key").map_err(RequirementError::Invalid);
        }
        let (tok, lit) = self.consume(Ctx::Operator);
        let (op, values) = match tok {
            Tok::In => (Operator::In, self.set_values()?),
            Tok::NotIn => (Operator::NotIn, self.set_values()?),
            Tok::Eq | Tok::DoubleEq => (Operator::Equals, self.exact_value()?),
            Tok::NotEq => (Operator::NotEquals, self.exact_value()?),
            Tok::Gt => (Operator::Gt, self.exact_value()?),
            Tok::Lt => (Operator::Lt, self.exact_value()?),
            _ => return Err(RequirementError::Unexpected { found: lit, expected: BINARY_OPERATORS }),
        };
        Requirement::new(&key, op, values, "key").map_err(RequirementError::Invalid)
    }

    /// `( v1, v2, ... )`; empty entries (`()`, `(,a)`) stand for the empty value.
    fn set_values(&mut self) -> Result<Vec<String>, RequirementError> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(RequirementError::ExpectedOpenParen(lit));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Ident | Tok::Comma => {
                let values = self.identifier_list()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Tok::ClosePar {
                    return Err(RequirementError::Unexpected { found: lit, expected: "')'" });
                }
                Ok(values)
            }
            Tok::ClosePar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(RequirementError::Unexpected { found: lit, expected: "',', ')' or identifier" }),
        }
    }

    /// The inside of `( ... )`, leaving the `)` unconsumed.
    fn identifier_list(&mut self) -> Result<Vec<String>, RequirementError> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Ident => {
                    values.push(lit);
                    let (next, next_lit) = self.lookahead(Ctx::Values);
                    match next {
                        Tok::Comma => continue,
                        Tok::ClosePar => return Ok(values),
                        _ => return Err(RequirementError::Unexpected { found: next_lit, expected: "',' or ')'" }),
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (next, _) = self.lookahead(Ctx::Values);
                    if next == Tok::ClosePar {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if next == Tok::Comma {
                        self.consume(Ctx::Values);
                        values.push(String::new());
                    }
                }
                _ => return Err(RequirementError::Unexpected { found: lit, expected: "',', or identifier" }),
            }
        }
    }

    /// The single value after `=`, `!=`, `>`, `<`; nothing at all means `""`.
    fn exact_value(&mut self) -> Result<Vec<String>, RequirementError> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if matches!(tok, Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Ident {
            Ok(vec![lit])
        } else {
            Err(RequirementError::Unexpected { found: lit, expected: "identifier" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn valid_strings_and_canonical_form() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("a=b", "a=b"),
            ("a==b", "a=b"),
            (" a = b , c != d ", "a=b,c!=d"),
            ("x=1,a=2", "a=2,x=1"),
            ("e in (y,x),f notin (z)", "e in (x,y),f notin (z)"),
            ("e in(x , y , x)", "e in (x,y)"),
            ("g,!h", "g,!h"),
            ("!h,g", "g,!h"),
            ("a=", "a="),
            ("a=,b", "a=,b"),
            ("a in ()", "a in ()"),
            ("a in (,x)", "a in (,x)"),
            ("a in (x,)", "a in (,x)"),
            ("a notin (x,,y)", "a notin (,x,y)"),
            ("n>5,m<3", "m<3,n>5"),
            ("example.com/app=web", "example.com/app=web"),
            ("in=notin", "in=notin"),
            ("a in (in,notin)", "a in (in,notin)"),
            ("app=web,tier in (a,b)", "app=web,tier in (a,b)"),
        ];
        for (input, canonical) in cases {
            let sel = match LabelSelector::parse(input) {
                Ok(sel) => sel,
                Err(e) => panic!("{input:?}: {e}"),
            };
            assert_eq!(sel.to_string(), canonical, "{input:?}");
            let again = LabelSelector::parse(canonical).map_err(|e| e.to_string());
            assert_eq!(again, Ok(sel), "round trip of {input:?}");
        }
        assert!(LabelSelector::parse("").map(|s| s.is_empty()).unwrap_or(false));
    }

    #[test]
    fn structure_of_parsed_requirements() {
        let sel = LabelSelector::parse("b in (y,x),!c,a").map_err(|e| e.to_string());
        let Ok(sel) = sel else { panic!("{sel:?}") };
        let r = sel.requirements();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].key.as_str(), r[0].operator), ("a", Operator::Exists));
        assert_eq!((r[1].key.as_str(), r[1].operator, r[1].values.clone()), ("b", Operator::In, vec!["x".to_string(), "y".to_string()]));
        assert_eq!((r[2].key.as_str(), r[2].operator), ("c", Operator::DoesNotExist));
    }

    #[test]
    fn syntax_errors_name_the_token() {
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a=b("), "found '(', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(err("a=b,,c"), "found ',', expected: identifier after ','");
        assert_eq!(err("=b"), "found '=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("(a)"), "found '(', expected: !, identifier, or 'end of string'");
        assert_eq!(err("a b"), "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt");
        assert_eq!(err("!=b"), "found '!=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("!,a"), "unable to parse requirement: found ',', expected: identifier");
        assert_eq!(err("a in x"), "unable to parse requirement: found 'x' expected: '('");
        assert_eq!(err("a in (x"), "unable to parse requirement: found '', expected: ',' or ')'");
        assert_eq!(err("a in (x y)"), "unable to parse requirement: found 'y', expected: ',' or ')'");
        assert_eq!(err("a in (="), "unable to parse requirement: found '=', expected: ',', ')' or identifier");
        assert_eq!(err("a in (,="), "unable to parse requirement: found '=', expected: ',', or identifier");
        assert_eq!(err("a=!b"), "unable to parse requirement: found '!', expected: identifier");
        assert_eq!(err("a=(b)"), "unable to parse requirement: found '(', expected: identifier");
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
    }

    #[test]
    fn invalid_keys_and_values() {
        let e = err("x/y/z=a");
        assert!(e.starts_with("unable to parse requirement: Invalid value: \"x/y/z\": a qualified name must consist of"), "{e}");
        let e = err("-app");
        assert!(e.starts_with("unable to parse requirement: Invalid value: \"-app\": name part must consist of"), "{e}");
        let e = err("app=-web");
        assert!(e.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-web\": a valid label must be an empty string"), "{e}");
        let e = err(&format!("app={}", "v".repeat(64)));
        assert!(e.contains("must be no more than 63 characters"), "{e}");
        assert_eq!(
            err("a>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn odd_input_gives_errors_not_panics() {
        let pieces = ["a", "!", "=", "==", "!=", "in", "notin", "(", ")", ",", " ", ">", "<", "é", "\\", "x/y", ""];
        for p in pieces {
            for q in pieces {
                for r in pieces {
                    let s = format!("{p}{q}{r}{p}");
                    if let Ok(sel) = LabelSelector::parse(&s) {
                        let shown = sel.to_string();
                        assert_eq!(LabelSelector::parse(&shown).map_err(|e| e.to_string()), Ok(sel), "{s:?} -> {shown:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn matching_like_upstream() {
        let web = labels(json!({"app": "web", "tier": "front", "n": "7"}));
        let none = Map::new();
        let cases: &[(&str, bool, bool)] = &[
            // selector, matches `web`, matches an object without labels
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app=db", false, false),
            ("app!=db", true, true),
            ("app!=web", false, true),
            ("app in (db,web)", true, false),
            ("app notin (db)", true, true),
            ("app notin (web)", false, true),
            ("app", true, false),
            ("!app", false, true),
            ("missing", false, false),
            ("!missing", true, true),
            ("app=web,tier=front", true, false),
            ("app=web,tier=back", false, false),
            ("n>5", true, false),
            ("n<5", false, false),
            ("n>7", false, false),
            ("app>1", false, false),
            ("tier=", false, false),
        ];
        for (s, on_web, on_none) in cases {
            let sel = match LabelSelector::parse(s) {
                Ok(sel) => sel,
                Err(e) => panic!("{s}: {e}"),
            };
            assert_eq!(sel.matches(Some(&web)), *on_web, "{s} on web");
            assert_eq!(sel.matches(Some(&none)), *on_none, "{s} on empty labels");
            assert_eq!(sel.matches(None), *on_none, "{s} on absent labels");
        }
        let empty_value = labels(json!({"tier": ""}));
        assert!(LabelSelector::parse("tier=").map(|s| s.matches(Some(&empty_value))).unwrap_or(false));
        assert!(LabelSelector::parse("tier in ()").map(|s| s.matches(Some(&empty_value))).unwrap_or(false));
    }
}
