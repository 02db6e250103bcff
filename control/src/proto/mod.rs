//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) request
//! bodies, decoded to the same JSON objects every other path handles.
//!
//! Owns the `k8s\0` envelope (`runtime.Unknown`), the wire format and the
//! field tables of the kinds decoded so far (those kubectl and helm send
//! as protobuf: ConfigMap, Secret, Namespace, ServiceAccount, Service and
//! the self reviews). Responses stay JSON, which every client accepts.
//! Must not guess: a kind or field without a table is an error that says so.

mod decode;
mod encode;
mod messages;
mod wire;

use serde_json::{json, Value};
use wire::{Payload, Reader};

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("the protobuf body does not start with the Kubernetes envelope (\"k8s\\0\")")]
    NoEnvelope,
    #[error("the protobuf body ends in the middle of a field")]
    Truncated,
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    #[error("protobuf field {number} of {message} is not supported by this server yet; send the object as application/json")]
    UnknownField { message: String, number: u32 },
    #[error("protobuf field {field} of {message} has the wrong wire type")]
    WireType { message: String, field: String },
    #[error("protobuf encoding of {0} is not supported by this server yet; send it as application/json")]
    Unsupported(String),
}

/// Decode a protobuf-encoded object (envelope and all) into JSON with
/// `apiVersion` and `kind` set.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtoError> {
    let inner = body.strip_prefix(MAGIC).ok_or(ProtoError::NoEnvelope)?;
    let (mut api_version, mut kind, mut raw, mut encoding) = (String::new(), String::new(), None, String::new());
    let mut r = Reader::new(inner);
    while let Some((n, p)) = r.field()? {
        match (n, p) {
            (1, Payload::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((tn, tp)) = t.field()? {
                    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed("TypeMeta is not UTF-8".into()));
                    match (tn, tp) {
                        (1, Payload::Bytes(b)) => api_version = text(b)?,
                        (2, Payload::Bytes(b)) => kind = text(b)?,
                        _ => return Err(ProtoError::UnknownField { message: "runtime.TypeMeta".into(), number: tn }),
                    }
                }
            }
            (2, Payload::Bytes(b)) => raw = Some(b),
            (3, Payload::Bytes(b)) => encoding = String::from_utf8_lossy(b).into_owned(),
            (4, Payload::Bytes(_)) => {}
            _ => return Err(ProtoError::UnknownField { message: "runtime.Unknown".into(), number: n }),
        }
    }
    if !encoding.is_empty() {
        return Err(ProtoError::Malformed(format!("content encoding {encoding:?} is not supported")));
    }
    let message = messages::root(&api_version, &kind).ok_or_else(|| ProtoError::Unsupported(format!("{api_version} {kind}")))?;
    let mut obj = decode::message(message, raw.unwrap_or_default(), 0)?;
    if let Some(map) = obj.as_object_mut() {
        let mut ordered = serde_json::Map::new();
        ordered.insert("apiVersion".into(), json!(api_version));
        ordered.insert("kind".into(), json!(kind));
        ordered.append(map);
        obj = Value::Object(ordered);
    }
    Ok(obj)
}

/// Encode an object or a list (`apiVersion`/`kind` set, as the server
/// produces them) in the Kubernetes protobuf envelope. Fails, naming what,
/// when a kind or field has no table: the caller then answers in JSON.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    let raw = match messages::root(api_version, kind) {
        Some(message) => encode::message(message, &strip(obj), 0)?,
        None => {
            // A list: ListMeta and the items, each an item message.
            let item_kind = kind.strip_suffix("List").unwrap_or("");
            let item = messages::root(api_version, item_kind).ok_or_else(|| ProtoError::Unsupported(format!("{api_version} {kind}")))?;
            let mut w = wire::Writer::default();
            let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
            w.bytes(1, &encode::message("meta.ListMeta", &meta, 1)?);
            for it in obj.get("items").and_then(Value::as_array).into_iter().flatten() {
                w.bytes(2, &encode::message(item, &strip(it), 1)?);
            }
            w.buf
        }
    };
    let mut type_meta = wire::Writer::default();
    type_meta.bytes(1, api_version.as_bytes());
    type_meta.bytes(2, kind.as_bytes());
    let mut unknown = wire::Writer::default();
    unknown.bytes(1, &type_meta.buf);
    unknown.bytes(2, &raw);
    unknown.bytes(3, b"");
    unknown.bytes(4, b"");
    let mut out = MAGIC.to_vec();
    out.extend(unknown.buf);
    Ok(out)
}
