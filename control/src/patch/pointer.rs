//! JSON pointers (RFC 6901): parsing and walking to the value they name.

use serde_json::Value;

/// Split a pointer into its unescaped reference tokens. `""` is the whole
/// document; anything else must start with `/`.
pub(crate) fn parse(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| "a JSON pointer must be empty or start with \"/\"".to_string())?;
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(format!(
                    "invalid escape in JSON pointer token {}: \"~\" must be followed by \"0\" or \"1\"",
                    quote(token)
                ))
            }
        }
    }
    Ok(out)
}

/// A reference token used on an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrayIndex {
    /// `0`, `12`: an element position.
    At(usize),
    /// `-`: one past the last element.
    End,
}

/// Read a token as an array index: decimal digits without a sign or
/// leading zeros, or `-`. `None` when it is neither.
pub(crate) fn array_index(token: &str) -> Option<ArrayIndex> {
    if token == "-" {
        return Some(ArrayIndex::End);
    }
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok().map(ArrayIndex::At)
}

/// The value at `tokens`, if every step exists.
pub(crate) fn get<'v>(mut doc: &'v Value, tokens: &[String]) -> Option<&'v Value> {
    for token in tokens {
        doc = match doc {
            Value::Object(map) => map.get(token)?,
            Value::Array(list) => match array_index(token)? {
                ArrayIndex::At(i) => list.get(i)?,
                ArrayIndex::End => return None,
            },
            _ => return None,
        };
    }
    Some(doc)
}

/// Mutable access to the value at `tokens`, if every step exists.
pub(crate) fn get_mut<'v>(mut doc: &'v mut Value, tokens: &[String]) -> Option<&'v mut Value> {
    for token in tokens {
        doc = match doc {
            Value::Object(map) => map.get_mut(token)?,
            Value::Array(list) => match array_index(token)? {
                ArrayIndex::At(i) => list.get_mut(i)?,
                ArrayIndex::End => return None,
            },
            _ => return None,
        };
    }
    Some(doc)
}

/// A string quoted as JSON, for messages.
pub(crate) fn quote(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_escapes() {
        assert_eq!(parse("").unwrap_or_default(), Vec::<String>::new());
        assert_eq!(
            parse("/metadata/annotations/example.com~1a~0b").unwrap_or_default(),
            vec!["metadata", "annotations", "example.com/a~b"]
        );
        assert_eq!(parse("/").unwrap_or_default(), vec![""]);
        assert!(parse("metadata").is_err());
        assert!(parse("/a~2").is_err());
        assert!(parse("/a~").is_err());
    }

    #[test]
    fn array_indexes_are_strict() {
        assert_eq!(array_index("0"), Some(ArrayIndex::At(0)));
        assert_eq!(array_index("12"), Some(ArrayIndex::At(12)));
        assert_eq!(array_index("-"), Some(ArrayIndex::End));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("+1"), None);
        assert_eq!(array_index(""), None);
        assert_eq!(array_index("99999999999999999999999"), None);
    }

    #[test]
    fn walks_objects_and_arrays() {
        let doc = json!({"a": [{"b": 1}]});
        let path = |p: &str| parse(p).unwrap_or_default();
        assert_eq!(get(&doc, &path("/a/0/b")), Some(&json!(1)));
        assert_eq!(get(&doc, &path("/a/1/b")), None);
        assert_eq!(get(&doc, &path("/a/-")), None);
        assert_eq!(get(&doc, &path("/a/0/b/c")), None);
    }
}
