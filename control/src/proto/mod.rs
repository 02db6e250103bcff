//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) request
//! bodies, decoded to the same JSON objects every other path handles.
//!
//! Owns the `k8s\0` envelope (`runtime.Unknown`), the wire format and the
//! field tables of the kinds decoded so far (those kubectl and helm send
//! as protobuf: ConfigMap, Secret, Namespace, ServiceAccount, Service and
//! the self reviews). Responses stay JSON, which every client accepts.
//! Must not guess: a kind or field without a table is an error that says so.

mod decode;
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
