//! Request bodies in, response bodies out: JSON and YAML, and the content
//! negotiation kubectl uses (Table, aggregated discovery).

use super::status::ApiError;
use bytes::Bytes;
use serde_json::Value;

/// Upstream's request body limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Yaml,
}

/// Decode a request body into an object; the error names what is wrong.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let value: Value = match ct.as_str() {
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" | "application/x-yaml" => {
            serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))?
        }
        crate::proto::CONTENT_TYPE => crate::proto::decode_object(body).map_err(|e| match e {
            crate::proto::ProtoError::Unsupported(_) | crate::proto::ProtoError::UnknownField { .. } => {
                ApiError::unsupported_media_type(e.to_string())
            }
            other => ApiError::bad_request(format!("the request body is not valid protobuf: {other}")),
        })?,
        _ => decode_json(body)?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, not {}",
            kind_of(&value)
        )));
    }
    Ok(value)
}

/// Strict JSON decoding: duplicate keys are rejected (upstream reports them
/// under strict field validation; silently keeping one would lose data).
pub fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the request body is not valid JSON: {e} (line {}, column {})", e.line(), e.column()))
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the client wants back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Json,
    Yaml,
    Table,
    PartialMetadata,
    /// Kubernetes protobuf, preferred by the client; `or_json` when it
    /// also accepts JSON (for objects protobuf cannot carry, like Status).
    Protobuf { or_json: bool },
    /// Nothing the client accepts is served: 406.
    Unacceptable,
}

pub fn negotiate(accept: Option<&str>) -> Wanted {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Wanted::Json };
    let parts: Vec<String> = accept.split(',').map(|part| part.replace(' ', "")).collect();
    for (i, p) in parts.iter().enumerate() {
        let mime = p.split(';').next().unwrap_or("");
        if mime == crate::proto::CONTENT_TYPE && !p.contains("as=") && !p.contains("stream=") {
            let or_json = parts[i + 1..]
                .iter()
                .any(|q| matches!(q.split(';').next().unwrap_or(""), "application/json" | "*/*" | "application/*"));
            return Wanted::Protobuf { or_json };
        }
        if p.contains("as=Table") && p.contains("g=meta.k8s.io") && (mime == "application/json" || mime == "*/*") {
            return Wanted::Table;
        }
        if (p.contains("as=PartialObjectMetadata;") || p.ends_with("as=PartialObjectMetadata") || p.contains("as=PartialObjectMetadataList"))
            && mime == "application/json"
        {
            return Wanted::PartialMetadata;
        }
        match mime {
            "application/json" | "*/*" | "application/*" => return Wanted::Json,
            "application/yaml" => return Wanted::Yaml,
            _ => {}
        }
    }
    Wanted::Unacceptable
}

pub fn encode(value: &Value, wanted: &Wanted) -> (Bytes, &'static str) {
    match wanted {
        Wanted::Yaml => (Bytes::from(serde_yaml::to_string(value).unwrap_or_default()), "application/yaml"),
        _ => (Bytes::from(serde_json::to_vec(value).unwrap_or_default()), "application/json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_negotiates() {
        assert!(decode(Some("application/json"), b"{\"a\":1}").is_ok());
        assert_eq!(decode(Some("application/json"), b"{\"a\":").map_err(|e| e.code).err(), Some(400));
        assert_eq!(decode(Some("application/json"), b"[1]").map_err(|e| e.code).err(), Some(400));
        assert!(decode(Some("application/yaml"), b"a: 1\n").is_ok());
        assert_eq!(decode(Some("application/yaml"), b"a: [").map_err(|e| e.code).err(), Some(400));
        assert_eq!(
            negotiate(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")),
            Wanted::Table
        );
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf, */*")), Wanted::Protobuf { or_json: true });
        assert_eq!(negotiate(Some("application/json, application/vnd.kubernetes.protobuf")), Wanted::Json);
        assert_eq!(negotiate(Some("application/yaml")), Wanted::Yaml);
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf")), Wanted::Protobuf { or_json: false });
        assert_eq!(negotiate(Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")), Wanted::Unacceptable);
        assert_eq!(negotiate(None), Wanted::Json);
    }
}
