//! JSON → protobuf message, driven by the same tables as decoding.
//!
//! Only what the JSON holds is written (proto2 optional fields may be
//! absent). A key the table does not know is an error, so the caller can
//! answer in JSON rather than drop data.

use super::messages::{self, Field, Kind};
use super::wire::Writer;
use super::ProtoError;
use base64::Engine;
use serde_json::{Map, Value};

fn unsupported(message: &str, what: &str) -> ProtoError {
    ProtoError::Unsupported(format!("{message} {what}"))
}

/// Encode `obj` (a JSON object) as message `name`.
pub fn message(name: &str, obj: &Value, depth: usize) -> Result<Vec<u8>, ProtoError> {
    if depth > 64 {
        return Err(ProtoError::Malformed("messages nested too deeply".into()));
    }
    let fields = messages::message(name).ok_or_else(|| ProtoError::Unsupported(name.to_string()))?;
    let map = obj.as_object().ok_or_else(|| unsupported(name, "is not a JSON object"))?;
    if let Some(k) = map.keys().find(|k| !covered(fields, k)) {
        return Err(unsupported(name, &format!("has no protobuf field for {k:?}")));
    }
    let mut w = Writer::default();
    let mut ordered: Vec<&Field> = fields.iter().collect();
    ordered.sort_by_key(|f| f.number);
    for field in ordered {
        if let Kind::Inline(inner) = field.kind {
            // The inner message's fields live in this object.
            let inner_fields = messages::message(inner).ok_or_else(|| ProtoError::Unsupported(inner.to_string()))?;
            let sub: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| inner_fields.iter().any(|f| f.json == k.as_str() || is_inline_of(f, k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let bytes = message(inner, &Value::Object(sub), depth + 1)?;
            w.bytes(field.number, &bytes);
            continue;
        }
        let Some(value) = map.get(field.json) else { continue };
        if value.is_null() {
            continue;
        }
        if field.repeated {
            let items = value.as_array().ok_or_else(|| unsupported(name, &format!("{} is not a list", field.json)))?;
            for item in items {
                write_one(&mut w, name, field, field.kind, item, depth)?;
            }
        } else {
            write_one(&mut w, name, field, field.kind, value, depth)?;
        }
    }
    Ok(w.buf)
}

/// Whether JSON key `k` belongs to a field, directly or through an inline member.
fn covered(fields: &[Field], k: &str) -> bool {
    fields.iter().any(|f| f.json == k || is_inline_of(f, k))
}

fn is_inline_of(field: &Field, k: &str) -> bool {
    match field.kind {
        Kind::Inline(inner) => messages::message(inner).map(|fs| covered(fs, k)).unwrap_or(false),
        _ => false,
    }
}

fn write_one(w: &mut Writer, msg: &str, field: &Field, kind: Kind, v: &Value, depth: usize) -> Result<(), ProtoError> {
    let bad = || unsupported(msg, &format!("field {} has an unexpected JSON type", field.json));
    match kind {
        Kind::Str => w.bytes(field.number, v.as_str().ok_or_else(bad)?.as_bytes()),
        Kind::Bool => w.uint(field.number, u64::from(v.as_bool().ok_or_else(bad)?)),
        // Negative numbers are sign-extended to 64 bits, as protobuf does for int32/int64.
        Kind::I32 | Kind::I64 => w.uint(field.number, v.as_i64().ok_or_else(bad)? as u64),
        Kind::F64 => w.fixed64(field.number, v.as_f64().ok_or_else(bad)?.to_bits()),
        Kind::Bytes => {
            let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().ok_or_else(bad)?).map_err(|_| bad())?;
            w.bytes(field.number, &raw);
        }
        Kind::Msg(inner) => w.bytes(field.number, &message(inner, v, depth + 1)?),
        Kind::Inline(_) => return Err(bad()),
        Kind::Map(value_kind) => {
            for (key, value) in v.as_object().ok_or_else(bad)? {
                let mut entry = Writer::default();
                entry.bytes(1, key.as_bytes());
                let value_field = Field { number: 2, ..*field };
                write_one(&mut entry, msg, &value_field, *value_kind, value, depth)?;
                w.bytes(field.number, &entry.buf);
            }
        }
        Kind::Pick(inner, keys) => {
            // The JSON value is one member of the wrapper: the first listed
            // member whose kind fits the value's JSON type.
            let inner_fields = messages::message(inner).ok_or_else(|| ProtoError::Unsupported(inner.to_string()))?;
            let mut wrapper = Map::new();
            for key in keys.iter() {
                let Some(f) = inner_fields.iter().find(|f| f.json == *key) else { continue };
                let fits = match (f.kind, v) {
                    (_, Value::Array(_)) => f.repeated,
                    (Kind::Msg(_), Value::Object(_)) => !f.repeated,
                    (Kind::Str, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => !f.repeated,
                    _ => false,
                };
                if fits {
                    wrapper.insert(f.json.to_string(), v.clone());
                    break;
                }
            }
            if wrapper.is_empty() {
                return Err(bad());
            }
            // A schema given where a bool could be means "allowed".
            if v.is_object() && inner_fields.iter().any(|f| f.json == "allows") {
                wrapper.insert("allows".into(), Value::Bool(true));
            }
            w.bytes(field.number, &message(inner, &Value::Object(wrapper), depth + 1)?);
        }
        Kind::Time | Kind::MicroTime => {
            let t: jiff::Timestamp = v.as_str().ok_or_else(bad)?.parse().map_err(|_| bad())?;
            let mut m = Writer::default();
            m.uint(1, t.as_second() as u64);
            if t.subsec_nanosecond() != 0 {
                m.uint(2, t.subsec_nanosecond() as u64);
            }
            w.bytes(field.number, &m.buf);
        }
        Kind::IntOrString => {
            let mut m = Writer::default();
            match v {
                Value::String(s) => {
                    m.uint(1, 1);
                    m.bytes(3, s.as_bytes());
                }
                other => {
                    m.uint(1, 0);
                    m.uint(2, other.as_i64().ok_or_else(bad)? as u64);
                }
            }
            w.bytes(field.number, &m.buf);
        }
        Kind::RawJson => {
            let mut m = Writer::default();
            m.bytes(1, &serde_json::to_vec(v).map_err(|_| bad())?);
            w.bytes(field.number, &m.buf);
        }
    }
    Ok(())
}
