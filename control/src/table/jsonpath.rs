//! The subset of Kubernetes JSONPath that CRD printer columns use:
//! `.field`, `['quoted.key']`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`,
//! `..field`, unions `[0,2]` / `['a','b']`, and filters
//! `[?(@.type=="Ready")]` with `==`, `!=`, `<`, `<=`, `>`, `>=` or a bare
//! existence test `[?(@.x)]`. An optional `$` and surrounding `{...}` are
//! accepted. Missing keys yield no results rather than an error, as for
//! printer columns upstream.

use serde_json::Value;

/// A JSONPath that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    #[error("unrecognized character in JSONPath {path:?} at position {pos}")]
    Unexpected { path: String, pos: usize },
    #[error("unterminated {what} in JSONPath {path:?}")]
    Unterminated { path: String, what: &'static str },
    #[error("invalid array index {text:?} in JSONPath {path:?}")]
    BadIndex { path: String, text: String },
}

/// Evaluates `path` against `obj`, returning every match in document order.
pub fn eval(obj: &Value, path: &str) -> Result<Vec<Value>, JsonPathError> {
    Ok(Path::parse(path)?.eval(obj))
}

/// A parsed JSONPath, reusable across objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// `.name` or `['name', ...]`.
    Keys(Vec<String>),
    /// `.*` / `[*]`.
    Wildcard,
    /// `..`: the node and all its descendants.
    Descend,
    /// `[i]`, `[i:j:k]`, unions of those.
    Indices(Vec<IndexSel>),
    /// `[?(...)]`.
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum IndexSel {
    One(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    test: Option<(Op, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@...` (relative to the element) or `$...` (relative to the root).
    Path {
        root: bool,
        segments: Vec<Segment>,
    },
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Path {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Path, JsonPathError> {
        let mut trimmed = text.trim();
        if let Some(inner) = trimmed.strip_prefix('{') {
            trimmed = inner
                .strip_suffix('}')
                .ok_or_else(|| JsonPathError::Unterminated {
                    path: text.to_string(),
                    what: "template braces",
                })?;
        }
        let mut p = Parser {
            chars: trimmed.chars().collect(),
            pos: 0,
            text,
        };
        if p.peek() == Some('$') {
            p.pos += 1;
        }
        let segments = p.segments(false)?;
        if p.pos < p.chars.len() {
            return Err(p.unexpected());
        }
        Ok(Path { segments })
    }

    /// Every value the path selects in `obj`.
    pub fn eval(&self, obj: &Value) -> Vec<Value> {
        run(&self.segments, vec![obj], obj)
            .into_iter()
            .cloned()
            .collect()
    }
}

struct Parser<'t> {
    chars: Vec<char>,
    pos: usize,
    text: &'t str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn unexpected(&self) -> JsonPathError {
        JsonPathError::Unexpected {
            path: self.text.to_string(),
            pos: self.pos,
        }
    }

    fn unterminated(&self, what: &'static str) -> JsonPathError {
        JsonPathError::Unterminated {
            path: self.text.to_string(),
            what,
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char, what: &'static str) -> Result<(), JsonPathError> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.unexpected()),
            None => Err(self.unterminated(what)),
        }
    }

    /// Characters that end a field name (inside a filter, also operators).
    fn ends_field(c: char, in_filter: bool) -> bool {
        matches!(c, '.' | '[' | ']')
            || (in_filter && (c.is_whitespace() || matches!(c, '=' | '!' | '<' | '>' | ')' | ',')))
    }

    fn field_name(&mut self, in_filter: bool) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                if let Some(next) = self.peek_at(1) {
                    name.push(next);
                    self.pos += 2;
                    continue;
                }
            }
            if Self::ends_field(c, in_filter) {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// A sequence of segments; inside a filter it stops at the first
    /// character that cannot continue a path.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, JsonPathError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '.' if self.peek_at(1) == Some('.') => {
                    self.pos += 2;
                    out.push(Segment::Descend);
                    self.dotted(&mut out, in_filter)?;
                }
                '.' => {
                    self.pos += 1;
                    self.dotted(&mut out, in_filter)?;
                }
                '[' => out.push(self.bracket()?),
                _ if in_filter && Self::ends_field(c, true) => break,
                _ if out.is_empty() && !Self::ends_field(c, in_filter) => {
                    // A leading name without a dot ("spec.replicas").
                    let name = self.field_name(in_filter);
                    out.push(Segment::Keys(vec![name]));
                }
                _ => return Err(self.unexpected()),
            }
        }
        Ok(out)
    }

    /// What follows a `.` or `..`: a name, `*`, or nothing (before `[`/end).
    fn dotted(&mut self, out: &mut Vec<Segment>, in_filter: bool) -> Result<(), JsonPathError> {
        if self.peek() == Some('*') {
            self.pos += 1;
            out.push(Segment::Wildcard);
            return Ok(());
        }
        let name = self.field_name(in_filter);
        if !name.is_empty() {
            out.push(Segment::Keys(vec![name]));
        } else if self.peek() == Some('.') {
            return Err(self.unexpected());
        }
        Ok(())
    }

    fn bracket(&mut self) -> Result<Segment, JsonPathError> {
        self.pos += 1; // '['
        self.skip_spaces();
        let seg = match self.peek() {
            None => return Err(self.unterminated("bracket")),
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.skip_spaces();
                self.expect('(', "filter")?;
                let filter = self.filter()?;
                self.skip_spaces();
                self.expect(')', "filter")?;
                Segment::Filter(Box::new(filter))
            }
            Some('\'' | '"') => {
                let mut keys = vec![self.quoted()?];
                loop {
                    self.skip_spaces();
                    if self.peek() != Some(',') {
                        break;
                    }
                    self.pos += 1;
                    self.skip_spaces();
                    keys.push(self.quoted()?);
                }
                Segment::Keys(keys)
            }
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ']') {
                    self.pos += 1;
                }
                let inner: String = self.chars[start..self.pos].iter().collect();
                Segment::Indices(self.indices(&inner)?)
            }
        };
        self.skip_spaces();
        self.expect(']', "bracket")?;
        Ok(seg)
    }

    fn indices(&self, inner: &str) -> Result<Vec<IndexSel>, JsonPathError> {
        let bad = || JsonPathError::BadIndex {
            path: self.text.to_string(),
            text: inner.to_string(),
        };
        let int = |s: &str| -> Result<Option<i64>, JsonPathError> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse::<i64>().map(Some).map_err(|_| bad())
            }
        };
        let mut out = Vec::new();
        for part in inner.split(',') {
            let pieces: Vec<&str> = part.split(':').collect();
            let sel = match pieces.as_slice() {
                [one] => IndexSel::One(int(one)?.ok_or_else(bad)?),
                [a, b] => IndexSel::Slice(int(a)?, int(b)?, None),
                [a, b, c] => IndexSel::Slice(int(a)?, int(b)?, int(c)?),
                _ => return Err(bad()),
            };
            out.push(sel);
        }
        Ok(out)
    }

    fn quoted(&mut self) -> Result<String, JsonPathError> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            Some(_) => return Err(self.unexpected()),
            None => return Err(self.unterminated("quoted string")),
        };
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.unterminated("quoted string")),
                Some('\\') => {
                    let Some(next) = self.peek_at(1) else {
                        return Err(self.unterminated("quoted string"));
                    };
                    s.push(match next {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                    self.pos += 2;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn filter(&mut self) -> Result<Filter, JsonPathError> {
        self.skip_spaces();
        let left = self.operand()?;
        self.skip_spaces();
        if self.peek() == Some(')') {
            return Ok(Filter { left, test: None });
        }
        let op = match (self.peek(), self.peek_at(1)) {
            (Some('='), Some('=')) => Op::Eq,
            (Some('!'), Some('=')) => Op::Ne,
            (Some('<'), Some('=')) => Op::Le,
            (Some('>'), Some('=')) => Op::Ge,
            (Some('<'), _) => Op::Lt,
            (Some('>'), _) => Op::Gt,
            (None, _) => return Err(self.unterminated("filter")),
            _ => return Err(self.unexpected()),
        };
        self.pos += if matches!(op, Op::Lt | Op::Gt) { 1 } else { 2 };
        self.skip_spaces();
        let right = self.operand()?;
        Ok(Filter {
            left,
            test: Some((op, right)),
        })
    }

    fn operand(&mut self) -> Result<Operand, JsonPathError> {
        match self.peek() {
            Some(c @ ('@' | '$')) => {
                self.pos += 1;
                let segments = self.segments(true)?;
                Ok(Operand::Path {
                    root: c == '$',
                    segments,
                })
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            Some(c) if c == '-' || c == '+' || c.is_ascii_digit() || c == '.' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                let number = text.parse::<i64>().ok().map(Value::from).or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                });
                number
                    .map(Operand::Literal)
                    .ok_or(JsonPathError::Unexpected {
                        path: self.text.to_string(),
                        pos: start,
                    })
            }
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "true" => Ok(Operand::Literal(Value::Bool(true))),
                    "false" => Ok(Operand::Literal(Value::Bool(false))),
                    "null" | "nil" => Ok(Operand::Literal(Value::Null)),
                    _ => Err(JsonPathError::Unexpected {
                        path: self.text.to_string(),
                        pos: start,
                    }),
                }
            }
            None => Err(self.unterminated("filter")),
        }
    }
}

fn run<'a>(segments: &[Segment], mut nodes: Vec<&'a Value>, root: &'a Value) -> Vec<&'a Value> {
    for seg in segments {
        nodes = step(seg, nodes, root);
        if nodes.is_empty() {
            break;
        }
    }
    nodes
}

fn step<'a>(seg: &Segment, nodes: Vec<&'a Value>, root: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for node in nodes {
        match seg {
            Segment::Keys(keys) => {
                if let Value::Object(map) = node {
                    out.extend(keys.iter().filter_map(|k| map.get(k)));
                }
            }
            Segment::Wildcard => match node {
                Value::Object(map) => out.extend(map.values()),
                Value::Array(list) => out.extend(list.iter()),
                _ => {}
            },
            Segment::Descend => descend(node, &mut out),
            Segment::Indices(sels) => {
                if let Value::Array(list) = node {
                    for sel in sels {
                        select(list, *sel, &mut out);
                    }
                }
            }
            Segment::Filter(filter) => {
                if let Value::Array(list) = node {
                    out.extend(list.iter().filter(|item| matches(filter, item, root)));
                }
            }
        }
    }
    out
}

fn descend<'a>(node: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(node);
    match node {
        Value::Object(map) => map.values().for_each(|v| descend(v, out)),
        Value::Array(list) => list.iter().for_each(|v| descend(v, out)),
        _ => {}
    }
}

fn select<'a>(list: &'a [Value], sel: IndexSel, out: &mut Vec<&'a Value>) {
    let len = i64::try_from(list.len()).unwrap_or(i64::MAX);
    let resolve = |i: i64| if i < 0 { i + len } else { i };
    let at = |i: i64| usize::try_from(i).ok().and_then(|i| list.get(i));
    match sel {
        IndexSel::One(i) => out.extend(at(resolve(i))),
        IndexSel::Slice(start, end, step) => {
            let step = step.unwrap_or(1);
            if step <= 0 {
                return;
            }
            let start = resolve(start.unwrap_or(0)).clamp(0, len);
            let end = resolve(end.unwrap_or(len)).clamp(0, len);
            let mut i = start;
            while i < end {
                out.extend(at(i));
                i += step;
            }
        }
    }
}

fn operand_value<'a>(op: &'a Operand, item: &'a Value, root: &'a Value) -> Option<&'a Value> {
    match op {
        Operand::Literal(v) => Some(v),
        Operand::Path {
            root: from_root,
            segments,
        } => {
            let start = if *from_root { root } else { item };
            run(segments, vec![start], root).into_iter().next()
        }
    }
}

fn matches(filter: &Filter, item: &Value, root: &Value) -> bool {
    let left = operand_value(&filter.left, item, root);
    let Some((op, right)) = &filter.test else {
        return left.is_some();
    };
    let (Some(left), Some(right)) = (left, operand_value(right, item, root)) else {
        return false;
    };
    compare(*op, left, right)
}

fn compare(op: Op, left: &Value, right: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ordering) {
        (_, None) => false,
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        // Order comparisons are defined for numbers and strings only.
        (_, Some(_)) if matches!(left, Value::Bool(_) | Value::Null) => false,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj() -> Value {
        json!({
            "metadata": {"name": "x", "labels": {"app": "web", "app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}, {"port": 8080}]},
            "status": {"conditions": [
                {"type": "Synced", "status": "True", "lastTransitionTime": "2024-05-01T11:00:00Z"},
                {"type": "Ready", "status": "False", "reason": "Waiting"}
            ], "score": 1.5}
        })
    }

    fn ev(path: &str) -> Vec<Value> {
        match eval(&obj(), path) {
            Ok(v) => v,
            Err(e) => vec![json!(format!("error: {e}"))],
        }
    }

    #[test]
    fn fields_and_indices() {
        assert_eq!(ev(".spec.replicas"), vec![json!(3)]);
        assert_eq!(ev("{.spec.replicas}"), vec![json!(3)]);
        assert_eq!(ev("$.spec.replicas"), vec![json!(3)]);
        assert_eq!(ev("spec.replicas"), vec![json!(3)]);
        assert_eq!(ev(".metadata.labels.app"), vec![json!("web")]);
        assert_eq!(ev(".spec.ports[0].port"), vec![json!(80)]);
        assert_eq!(ev(".spec.ports[-1].port"), vec![json!(8080)]);
        assert_eq!(
            ev(".spec.ports[*].port"),
            vec![json!(80), json!(443), json!(8080)]
        );
        assert_eq!(ev(".spec.ports[0:2].port"), vec![json!(80), json!(443)]);
        assert_eq!(ev(".spec.ports[0,2].port"), vec![json!(80), json!(8080)]);
        assert_eq!(ev(".spec.ports[::2].port"), vec![json!(80), json!(8080)]);
        assert_eq!(ev(".spec.ports[7].port"), Vec::<Value>::new());
        assert_eq!(ev(".spec.missing.deeper"), Vec::<Value>::new());
    }

    #[test]
    fn quoted_and_escaped_keys() {
        assert_eq!(
            ev(".metadata.labels['app.kubernetes.io/name']"),
            vec![json!("web")]
        );
        assert_eq!(
            ev(".metadata.labels[\"app.kubernetes.io/name\"]"),
            vec![json!("web")]
        );
        assert_eq!(
            ev(".metadata.labels.app\\.kubernetes\\.io/name"),
            vec![json!("web")]
        );
        assert_eq!(ev(".metadata['name','missing']"), vec![json!("x")]);
    }

    #[test]
    fn filters() {
        assert_eq!(
            ev(".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("False")]
        );
        assert_eq!(
            ev(".status.conditions[?(@.type=='Synced')].lastTransitionTime"),
            vec![json!("2024-05-01T11:00:00Z")]
        );
        assert_eq!(
            ev(".status.conditions[?( @.type != 'Ready' )].type"),
            vec![json!("Synced")]
        );
        assert_eq!(
            ev(".status.conditions[?(@.reason)].type"),
            vec![json!("Ready")]
        );
        assert_eq!(
            ev(".spec.ports[?(@.port>100)].port"),
            vec![json!(443), json!(8080)]
        );
        assert_eq!(
            ev(".spec.ports[?(@.port<=443)].port"),
            vec![json!(80), json!(443)]
        );
        assert_eq!(ev(".spec.ports[?(@.port==443.0)].port"), vec![json!(443)]);
        assert_eq!(
            ev(".status.conditions[?(@.type==\"Nope\")].status"),
            Vec::<Value>::new()
        );
        assert_eq!(
            ev(".spec.ports[?(@.port==$.spec.ports[1].port)].port"),
            vec![json!(443)]
        );
    }

    #[test]
    fn recursive_descent_and_wildcard() {
        assert_eq!(ev("..port"), vec![json!(80), json!(443), json!(8080)]);
        assert_eq!(ev(".metadata.labels.*"), vec![json!("web"), json!("web")]);
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(
            eval(&obj(), ".a[0"),
            Err(JsonPathError::Unterminated { .. })
        ));
        assert!(matches!(
            eval(&obj(), ".a[x]"),
            Err(JsonPathError::BadIndex { .. })
        ));
        assert!(matches!(
            eval(&obj(), ".a[?(@.b ~ 1)]"),
            Err(JsonPathError::Unexpected { .. })
        ));
        assert!(matches!(
            eval(&obj(), ".a['b]"),
            Err(JsonPathError::Unterminated { .. })
        ));
        assert!(matches!(
            eval(&obj(), "{.a"),
            Err(JsonPathError::Unterminated { .. })
        ));
        assert!(eval(&obj(), ".a]").is_err());
        assert_eq!(
            JsonPathError::Unexpected {
                path: ".a]".into(),
                pos: 2
            }
            .to_string(),
            "unrecognized character in JSONPath \".a]\" at position 2"
        );
    }
}
