//! `POST .../serviceaccounts/NAME/token`: TokenRequest, what
//! `kubectl create token` calls.
//!
//! Defaults and checks the requested lifetime (1 h by default, at least
//! 10 minutes, at most the server's maximum with a warning), binds the
//! token to a Pod, Secret or Node if asked (the object must exist; a pod
//! must run as this service account), and answers with the signed token
//! and its expiration. Writes nothing.

use super::claims::{self, Binding, Lifetime, ObjRef};
use super::keys::{self, issuer_for};
use crate::api::status::ApiError;
use crate::api::ApiServer;
use crate::field_error::FieldError;
use serde_json::{json, Value};

const KIND: &str = "TokenRequest";
const GROUP: &str = "authentication.k8s.io";

fn invalid(name: &str, errors: &[FieldError]) -> ApiError {
    let mut e = ApiError::invalid(KIND, GROUP, name, errors);
    e.message = format!("{KIND}.{GROUP} \"{name}\" is invalid: {}", crate::field_error::aggregate(errors));
    e
}

async fn get(api: &ApiServer, plural: &str, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
    let table = api.registry.table();
    let res = table.get("", "v1", plural).ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
    let kv = api.store.get(&res.key(ns, name)).await?.ok_or_else(|| ApiError::not_found(plural, "", name))?;
    serde_json::from_slice(&kv.value).map_err(|_| ApiError::internal(format!("stored {plural} {name} is corrupt")))
}

fn obj_ref(obj: &Value) -> ObjRef {
    let m = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or("").to_string();
    ObjRef { name: m("name"), uid: m("uid") }
}

/// Check `spec.expirationSeconds` (after defaulting).
pub fn validate_expiration(seconds: i64) -> Option<FieldError> {
    let field = "spec.expirationSeconds";
    if seconds < keys::MIN_EXPIRATION_SECONDS {
        return Some(FieldError::invalid(field, json!(seconds), "may not specify a duration less than 10 minutes"));
    }
    if seconds > 1 << 32 {
        return Some(FieldError::invalid(field, json!(seconds), "may not specify a duration larger than 2^32 seconds"));
    }
    None
}

/// Answer a TokenRequest for ServiceAccount `ns/name`.
pub async fn create(api: &ApiServer, ns: &str, name: &str, mut req: Value) -> Result<Value, ApiError> {
    let issuer = issuer_for(&api.config).ok_or_else(|| ApiError::internal("this server has no service account token issuer"))?;
    let kind = req.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != KIND {
        return Err(ApiError::bad_request(format!("not a {KIND}: {kind}")));
    }
    if !req.is_object() {
        return Err(ApiError::bad_request("request body must be a TokenRequest object"));
    }
    req["kind"] = json!(KIND);
    req["apiVersion"] = json!(format!("{GROUP}/v1"));
    let body_ns = req.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    if !body_ns.is_empty() && body_ns != ns {
        let e = FieldError::invalid("metadata.namespace", json!(body_ns), "must match the service account namespace if specified");
        return Err(invalid(name, &[e]));
    }
    let body_name = req.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if !body_name.is_empty() && body_name != name {
        let e = FieldError::invalid("metadata.name", json!(body_name), "must match the service account name if specified");
        return Err(invalid(name, &[e]));
    }
    let sa = get(api, "serviceaccounts", Some(ns), name).await?;
    let now = jiff::Timestamp::now();
    req["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": crate::api::object::format_time(now)});
    if !req.get("spec").is_some_and(Value::is_object) {
        req["spec"] = json!({});
    }
    let mut seconds = req.pointer("/spec/expirationSeconds").and_then(Value::as_i64).unwrap_or(keys::DEFAULT_EXPIRATION_SECONDS);
    if let Some(err) = validate_expiration(seconds) {
        // Upstream validates the request after naming it, and reports it unnamed.
        return Err(invalid("", &[err]));
    }
    if issuer.max_expiration_seconds > 0 && seconds > issuer.max_expiration_seconds {
        crate::api::warn(format!(
            "requested expiration of {seconds} seconds shortened to {} seconds",
            issuer.max_expiration_seconds
        ));
        seconds = issuer.max_expiration_seconds;
    }
    req["spec"]["expirationSeconds"] = json!(seconds);
    let audiences: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| issuer.audiences.clone());
    req["spec"]["audiences"] = json!(audiences);

    let mut binding = Binding { namespace: ns.to_string(), service_account: obj_ref(&sa), ..Default::default() };
    if let Some(r) = req.pointer("/spec/boundObjectRef").filter(|r| r.is_object()).cloned() {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (api_version, kind, bound_name, want_uid) = (s("apiVersion"), s("kind"), s("name"), s("uid"));
        let bound = match (api_version.as_str(), kind.as_str()) {
            ("v1", "Pod") => {
                let pod = get(api, "pods", Some(ns), &bound_name).await?;
                let pod_sa = pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("");
                if pod_sa != name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                    )));
                }
                let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
                if !node.is_empty() {
                    // The node is optional: a node that cannot be read is left out.
                    binding.node = get(api, "nodes", None, node).await.ok().map(|n| obj_ref(&n));
                }
                let p = obj_ref(&pod);
                binding.pod = Some(p.clone());
                p
            }
            ("v1", "Secret") => {
                let secret = obj_ref(&get(api, "secrets", Some(ns), &bound_name).await?);
                binding.secret = Some(secret.clone());
                secret
            }
            ("v1", "Node") => {
                let node = obj_ref(&get(api, "nodes", None, &bound_name).await?);
                binding.node = Some(node.clone());
                node
            }
            _ => {
                let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
                return Err(ApiError::bad_request(format!("cannot bind token to object of type {group}/{version}, Kind={kind}")));
            }
        };
        if !want_uid.is_empty() && want_uid != bound.uid {
            return Err(ApiError::conflict(
                &kind,
                "",
                &bound_name,
                &format!(
                    "the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
    }

    let issued_at = now.as_second();
    let mut life = Lifetime { issued_at, expires_at: issued_at + seconds, warn_after: None };
    if binding.pod.is_some() && seconds == keys::WARN_ONLY_EXPIRATION_SECONDS && audiences == issuer.audiences {
        life = Lifetime { issued_at, expires_at: issued_at + keys::EXTENDED_EXPIRATION_SECONDS, warn_after: Some(issued_at + seconds) };
    }
    let jti = uuid::Uuid::new_v4().to_string();
    let token = issuer
        .sign(&claims::bound(&issuer.issuer, &audiences, &binding, life, &jti))
        .map_err(|e| ApiError::internal(format!("failed to sign token: {e}")))?;
    let expires = jiff::Timestamp::from_second(issued_at + seconds).unwrap_or(now);
    req["status"] = json!({"token": token, "expirationTimestamp": crate::api::object::format_time(expires)});
    tracing::info!(namespace = ns, serviceaccount = name, expiration_seconds = seconds, jti, "issued service account token");
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_limits() {
        assert_eq!(
            validate_expiration(60).map(|e| e.to_string()),
            Some("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes".into())
        );
        assert!(validate_expiration(600).is_none());
        assert!(validate_expiration(1 << 32).is_none());
        assert!(validate_expiration((1 << 32) + 1).is_some());
    }

    /// kubectl sends TokenRequests as protobuf and takes the answer so.
    #[test]
    fn token_requests_travel_as_protobuf() {
        use k8s_pb::api::authentication::v1 as authn;
        use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
        use prost::Message;
        let req = authn::TokenRequest {
            metadata: None,
            spec: Some(authn::TokenRequestSpec {
                audiences: vec![],
                expiration_seconds: Some(600),
                bound_object_ref: Some(authn::BoundObjectReference {
                    kind: Some("Pod".into()),
                    api_version: Some("v1".into()),
                    name: Some("web".into()),
                    u_id: None,
                }),
            }),
            status: None,
        };
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some("authentication.k8s.io/v1".into()), kind: Some("TokenRequest".into()) }),
            raw: Some(req.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = b"k8s\0".to_vec();
        body.extend(unknown.encode_to_vec());
        let got = crate::proto::decode_object(&body).expect("decode");
        assert_eq!(got["spec"], json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"}, "expirationSeconds": 600}));
        let answer = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {"name": "default", "namespace": "ns"},
            "spec": {"audiences": ["a"], "expirationSeconds": 3600},
            "status": {"token": "t", "expirationTimestamp": "2030-01-01T00:00:00Z"},
        });
        let bytes = crate::proto::encode_object(&answer).expect("encode");
        assert_eq!(crate::proto::decode_object(&bytes).expect("decode again")["status"], answer["status"]);
    }
}
