//! RFC 6902 JSON patch (`application/json-patch+json`).

use super::pointer::{self, array_index, quote, ArrayIndex};
use crate::json_eq::json_eq;
use super::PatchError;
use serde_json::Value;

/// Apply a JSON patch (an array of operations) to `doc`. All operations
/// apply or none does; the error names the failing operation by its
/// position and kind and says why it failed.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let operations = patch.as_array().ok_or_else(|| {
        PatchError::Malformed(format!(
            "json patch must be a JSON array of operations, got: {patch}"
        ))
    })?;
    let mut out = doc.clone();
    for (index, raw) in operations.iter().enumerate() {
        let operation = Operation::parse(raw).map_err(|(op, message)| {
            PatchError::JsonPatchOperation {
                index,
                op,
                message,
            }
        })?;
        operation
            .apply(&mut out)
            .map_err(|reason| PatchError::JsonPatchOperation {
                index,
                op: Some(operation.kind.name().to_string()),
                message: format!(
                    "jsonpatch {} operation does not apply: {reason}",
                    operation.kind.name()
                ),
            })?;
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "add" => Kind::Add,
            "remove" => Kind::Remove,
            "replace" => Kind::Replace,
            "move" => Kind::Move,
            "copy" => Kind::Copy,
            "test" => Kind::Test,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Add => "add",
            Kind::Remove => "remove",
            Kind::Replace => "replace",
            Kind::Move => "move",
            Kind::Copy => "copy",
            Kind::Test => "test",
        }
    }
}

/// A pointer with the text it was written as.
struct Location<'p> {
    text: &'p str,
    tokens: Vec<String>,
}

struct Operation<'p> {
    kind: Kind,
    path: Location<'p>,
    from: Option<Location<'p>>,
    value: Option<&'p Value>,
}

type ParseError = (Option<String>, String);

impl<'p> Operation<'p> {
    fn parse(raw: &'p Value) -> Result<Operation<'p>, ParseError> {
        let fields = raw.as_object().ok_or_else(|| {
            (None, format!("jsonpatch operation must be a JSON object, got: {raw}"))
        })?;
        let name = match fields.get("op") {
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                return Err((None, format!("jsonpatch operation has an invalid \"op\": {other}")))
            }
            None => {
                return Err((None, "jsonpatch operation is missing the \"op\" field".into()))
            }
        };
        let kind = Kind::from_name(name).ok_or_else(|| {
            (
                Some(name.to_string()),
                format!(
                    "jsonpatch operation {} is not supported: op must be one of add, remove, replace, move, copy, test",
                    quote(name)
                ),
            )
        })?;
        let fail = |message: String| (Some(kind.name().to_string()), message);
        let location = |field: &str| -> Result<Location<'p>, ParseError> {
            let text = match fields.get(field) {
                Some(Value::String(text)) => text.as_str(),
                Some(other) => {
                    return Err(fail(format!(
                        "jsonpatch {} operation has an invalid \"{field}\": {other}",
                        kind.name()
                    )))
                }
                None => {
                    return Err(fail(format!(
                        "jsonpatch {} operation is missing the \"{field}\" field",
                        kind.name()
                    )))
                }
            };
            let tokens = pointer::parse(text).map_err(|why| {
                fail(format!(
                    "jsonpatch {} operation has an invalid \"{field}\" {}: {why}",
                    kind.name(),
                    quote(text)
                ))
            })?;
            Ok(Location { text, tokens })
        };
        let path = location("path")?;
        let from = match kind {
            Kind::Move | Kind::Copy => Some(location("from")?),
            _ => None,
        };
        let value = fields.get("value");
        if value.is_none() && matches!(kind, Kind::Add | Kind::Replace | Kind::Test) {
            return Err(fail(format!(
                "jsonpatch {} operation is missing the \"value\" field",
                kind.name()
            )));
        }
        Ok(Operation {
            kind,
            path,
            from,
            value,
        })
    }

    fn apply(&self, doc: &mut Value) -> Result<(), String> {
        let value = || self.value.cloned().unwrap_or(Value::Null);
        match (self.kind, &self.from) {
            (Kind::Add, _) => add(doc, &self.path, value()),
            (Kind::Remove, _) => remove(doc, &self.path, "path").map(drop),
            (Kind::Replace, _) => replace(doc, &self.path, value()),
            (Kind::Test, _) => test(doc, &self.path, &value()),
            (Kind::Move, Some(from)) => {
                if from.tokens == self.path.tokens {
                    return pointer::get(doc, &from.tokens)
                        .map(drop)
                        .ok_or_else(|| missing(from.text, "from path"));
                }
                if self.path.tokens.starts_with(&from.tokens) {
                    return Err(format!(
                        "cannot move {} into its own child {}",
                        quote(from.text),
                        quote(self.path.text)
                    ));
                }
                let moved = remove(doc, from, "from path")?;
                add(doc, &self.path, moved)
            }
            (Kind::Copy, Some(from)) => {
                let copied = pointer::get(doc, &from.tokens)
                    .cloned()
                    .ok_or_else(|| missing(from.text, "from path"))?;
                add(doc, &self.path, copied)
            }
            (Kind::Move | Kind::Copy, None) => Err("missing \"from\"".into()),
        }
    }
}

fn missing(text: &str, what: &str) -> String {
    format!("doc is missing {what}: {}", quote(text))
}

fn out_of_bounds(index: usize, len: usize, text: &str) -> String {
    format!(
        "index {index} is out of bounds for an array of length {len} at path {}",
        quote(text)
    )
}

fn invalid_index(token: &str, text: &str) -> String {
    format!("invalid array index {} in path {}", quote(token), quote(text))
}

fn add(doc: &mut Value, at: &Location<'_>, value: Value) -> Result<(), String> {
    let Some((last, parent_tokens)) = at.tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match pointer::get_mut(doc, parent_tokens) {
        Some(Value::Object(map)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            let len = list.len();
            match array_index(last) {
                Some(ArrayIndex::End) => list.push(value),
                Some(ArrayIndex::At(i)) if i <= len => list.insert(i, value),
                Some(ArrayIndex::At(i)) => return Err(out_of_bounds(i, len, at.text)),
                None => return Err(invalid_index(last, at.text)),
            }
            Ok(())
        }
        _ => Err(missing(at.text, "path")),
    }
}

fn remove(doc: &mut Value, at: &Location<'_>, what: &str) -> Result<Value, String> {
    let Some((last, parent_tokens)) = at.tokens.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match pointer::get_mut(doc, parent_tokens) {
        Some(Value::Object(map)) => map.shift_remove(last).ok_or_else(|| missing(at.text, what)),
        Some(Value::Array(list)) => {
            let len = list.len();
            match array_index(last) {
                Some(ArrayIndex::At(i)) if i < len => Ok(list.remove(i)),
                Some(ArrayIndex::At(i)) => Err(out_of_bounds(i, len, at.text)),
                Some(ArrayIndex::End) => Err(out_of_bounds(len, len, at.text)),
                None => Err(invalid_index(last, at.text)),
            }
        }
        _ => Err(missing(at.text, what)),
    }
}

fn replace(doc: &mut Value, at: &Location<'_>, value: Value) -> Result<(), String> {
    let Some((last, parent_tokens)) = at.tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let slot = match pointer::get_mut(doc, parent_tokens) {
        Some(Value::Object(map)) => map.get_mut(last),
        Some(Value::Array(list)) => {
            let len = list.len();
            match array_index(last) {
                Some(ArrayIndex::At(i)) if i < len => list.get_mut(i),
                Some(ArrayIndex::At(i)) => return Err(out_of_bounds(i, len, at.text)),
                Some(ArrayIndex::End) => return Err(out_of_bounds(len, len, at.text)),
                None => return Err(invalid_index(last, at.text)),
            }
        }
        _ => None,
    };
    let slot = slot.ok_or_else(|| missing(at.text, "path"))?;
    *slot = value;
    Ok(())
}

fn test(doc: &Value, at: &Location<'_>, expected: &Value) -> Result<(), String> {
    let actual = pointer::get(doc, &at.tokens).ok_or_else(|| missing(at.text, "path"))?;
    if json_eq(actual, expected) {
        Ok(())
    } else {
        Err(format!(
            "testing value {} failed: found {actual}, expected {expected}",
            quote(at.text)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                         "annotations": {"example.com/owner": "team~a"}},
            "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]}
        })
    }

    fn apply(patch: Value) -> Result<Value, PatchError> {
        json_patch(&pod(), &patch)
    }

    fn message(result: Result<Value, PatchError>) -> String {
        match result {
            Ok(v) => panic!("expected an error, got {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn add_replace_remove_with_escapes() -> Result<(), PatchError> {
        let out = apply(json!([
            {"op": "add", "path": "/metadata/labels/env", "value": "prod"},
            {"op": "replace", "path": "/spec/containers/1/image", "value": "redis:7"},
            {"op": "remove", "path": "/metadata/labels/tier"},
            {"op": "replace", "path": "/metadata/annotations/example.com~1owner", "value": "b"},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "c"}},
            {"op": "add", "path": "/spec/containers/0", "value": {"name": "z"}}
        ]))?;
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
        assert_eq!(out["metadata"]["annotations"]["example.com/owner"], json!("b"));
        let names: Vec<&Value> = out["spec"]["containers"]
            .as_array()
            .map(|l| l.iter().map(|c| &c["name"]).collect())
            .unwrap_or_default();
        assert_eq!(names, [&json!("z"), &json!("a"), &json!("b"), &json!("c")]);
        assert_eq!(out["spec"]["containers"][2]["image"], json!("redis:7"));
        Ok(())
    }

    #[test]
    fn add_replaces_existing_member_in_place() -> Result<(), PatchError> {
        let out = apply(json!([{"op": "add", "path": "/metadata/labels/app", "value": "x"}]))?;
        assert_eq!(out["metadata"]["labels"], json!({"app": "x", "tier": "front"}));
        let keys: Vec<&String> = out["metadata"]["labels"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["app", "tier"]);
        Ok(())
    }

    #[test]
    fn remove_of_missing_key_names_path() {
        let err = apply(json!([
            {"op": "add", "path": "/metadata/labels/a", "value": "1"},
            {"op": "remove", "path": "/metadata/labels/x"}
        ]));
        assert_eq!(
            err,
            Err(PatchError::JsonPatchOperation {
                index: 1,
                op: Some("remove".into()),
                message: r#"jsonpatch remove operation does not apply: doc is missing path: "/metadata/labels/x""#.into(),
            })
        );
    }

    #[test]
    fn test_operation_failure_stops_the_patch() {
        let err = apply(json!([
            {"op": "test", "path": "/metadata/labels/app", "value": "db"},
            {"op": "remove", "path": "/metadata/labels/app"}
        ]));
        assert_eq!(
            message(err),
            r#"jsonpatch test operation does not apply: testing value "/metadata/labels/app" failed: found "web", expected "db""#
        );
        let ok = apply(json!([
            {"op": "test", "path": "/spec/containers/0", "value": {"image": "nginx", "name": "a"}},
            {"op": "remove", "path": "/metadata/labels/app"}
        ]));
        assert_eq!(ok.map(|v| v["metadata"]["labels"].clone()), Ok(json!({"tier": "front"})));
        assert_eq!(
            message(apply(json!([{"op": "test", "path": "/metadata/nope", "value": null}]))),
            r#"jsonpatch test operation does not apply: doc is missing path: "/metadata/nope""#
        );
    }

    #[test]
    fn array_bounds_are_checked() {
        assert_eq!(
            message(apply(json!([{"op": "add", "path": "/spec/containers/3", "value": {}}]))),
            r#"jsonpatch add operation does not apply: index 3 is out of bounds for an array of length 2 at path "/spec/containers/3""#
        );
        assert_eq!(
            message(apply(json!([{"op": "remove", "path": "/spec/containers/2"}]))),
            r#"jsonpatch remove operation does not apply: index 2 is out of bounds for an array of length 2 at path "/spec/containers/2""#
        );
        assert_eq!(
            message(apply(json!([{"op": "replace", "path": "/spec/containers/-", "value": 1}]))),
            r#"jsonpatch replace operation does not apply: index 2 is out of bounds for an array of length 2 at path "/spec/containers/-""#
        );
        assert_eq!(
            message(apply(json!([{"op": "remove", "path": "/spec/containers/01"}]))),
            r#"jsonpatch remove operation does not apply: invalid array index "01" in path "/spec/containers/01""#
        );
        assert!(apply(json!([{"op": "add", "path": "/spec/containers/2", "value": {}}])).is_ok());
    }

    #[test]
    fn move_and_copy() -> Result<(), PatchError> {
        let out = apply(json!([
            {"op": "copy", "from": "/metadata/labels", "path": "/spec/selector"},
            {"op": "move", "from": "/spec/containers/1", "path": "/spec/containers/0"}
        ]))?;
        assert_eq!(out["spec"]["selector"], json!({"app": "web", "tier": "front"}));
        assert_eq!(out["spec"]["containers"][0]["name"], json!("b"));
        assert_eq!(
            message(apply(json!([{"op": "move", "from": "/metadata", "path": "/metadata/x"}]))),
            r#"jsonpatch move operation does not apply: cannot move "/metadata" into its own child "/metadata/x""#
        );
        assert_eq!(
            message(apply(json!([{"op": "copy", "from": "/nope", "path": "/x"}]))),
            r#"jsonpatch copy operation does not apply: doc is missing from path: "/nope""#
        );
        assert_eq!(
            message(apply(json!([{"op": "move", "from": "/nope", "path": "/x"}]))),
            r#"jsonpatch move operation does not apply: doc is missing from path: "/nope""#
        );
        Ok(())
    }

    #[test]
    fn add_needs_an_existing_parent() {
        assert_eq!(
            message(apply(json!([{"op": "add", "path": "/spec/template/metadata", "value": {}}]))),
            r#"jsonpatch add operation does not apply: doc is missing path: "/spec/template/metadata""#
        );
        assert_eq!(
            message(apply(json!([{"op": "replace", "path": "/status", "value": {}}]))),
            r#"jsonpatch replace operation does not apply: doc is missing path: "/status""#
        );
    }

    #[test]
    fn root_operations() -> Result<(), PatchError> {
        assert_eq!(apply(json!([{"op": "replace", "path": "", "value": {"a": 1}}]))?, json!({"a": 1}));
        assert_eq!(
            message(apply(json!([{"op": "remove", "path": ""}]))),
            "jsonpatch remove operation does not apply: cannot remove the whole document"
        );
        Ok(())
    }

    #[test]
    fn malformed_operations_are_reported_with_their_index() {
        assert_eq!(
            apply(json!({"op": "add"})).map_err(|e| e.http_status()),
            Err(400)
        );
        let err = apply(json!([{"op": "add", "path": "/a", "value": 1}, {"op": "frob", "path": "/a"}]));
        assert!(matches!(&err, Err(PatchError::JsonPatchOperation { index: 1, .. })));
        assert_eq!(
            message(err),
            r#"jsonpatch operation "frob" is not supported: op must be one of add, remove, replace, move, copy, test"#
        );
        assert_eq!(
            message(apply(json!([{"op": "add", "path": "/a"}]))),
            r#"jsonpatch add operation is missing the "value" field"#
        );
        assert_eq!(
            message(apply(json!([{"op": "remove"}]))),
            r#"jsonpatch remove operation is missing the "path" field"#
        );
        assert_eq!(
            message(apply(json!([{"op": "move", "path": "/a"}]))),
            r#"jsonpatch move operation is missing the "from" field"#
        );
        assert_eq!(
            message(apply(json!([{"op": "remove", "path": "metadata"}]))),
            r#"jsonpatch remove operation has an invalid "path" "metadata": a JSON pointer must be empty or start with "/""#
        );
        assert_eq!(message(apply(json!([3]))), "jsonpatch operation must be a JSON object, got: 3");
    }

    #[test]
    fn add_with_null_value_is_allowed() -> Result<(), PatchError> {
        let out = apply(json!([{"op": "add", "path": "/metadata/x", "value": null}]))?;
        assert_eq!(out["metadata"].get("x"), Some(&Value::Null));
        Ok(())
    }
}
