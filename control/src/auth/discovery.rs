//! Service account issuer discovery: `/.well-known/openid-configuration`
//! and `/openid/v1/jwks`, so others can verify this cluster's tokens.

use super::keys::issuer_for;
use crate::api::status::ApiError;
use crate::api::{full, ApiServer, Body};
use http::{Method, Response};
use serde_json::{json, Value};

pub const CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// The discovery document.
pub fn configuration(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}

/// Answer `path` if it is one of the discovery documents.
pub fn serve(api: &ApiServer, method: &Method, path: &str) -> Option<Result<Response<Body>, ApiError>> {
    let path = path.trim_end_matches('/');
    if path != CONFIGURATION_PATH && path != JWKS_PATH {
        return None;
    }
    if *method != Method::GET && *method != Method::HEAD {
        return Some(Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({path})"
        ))));
    }
    let Some(issuer) = issuer_for(&api.config) else {
        return Some(Err(ApiError::new(404, "NotFound", "the server could not find the requested resource")));
    };
    let (doc, content_type) = if path == CONFIGURATION_PATH {
        (configuration(&issuer.issuer, &issuer.jwks_uri), "application/json")
    } else {
        (json!({"keys": [issuer.jwk()]}), "application/jwk-set+json")
    };
    let mut resp = Response::new(full(doc.to_string()));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=3600"));
    Some(Ok(resp))
}
