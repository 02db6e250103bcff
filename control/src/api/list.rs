//! LIST: label and field selectors, `limit`/`continue` chunking.

use super::request::Query;
use super::status::ApiError;
use super::ApiServer;
use crate::registry::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use base64::Engine;
use serde_json::{json, Value};

pub struct Listed {
    pub items: Vec<Value>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Parsed selectors of a list or watch.
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

/// Fields every resource can be selected by; more per kind below.
fn field_supported(res: &Resource, field: &str) -> bool {
    if field == "metadata.name" || field == "metadata.namespace" {
        return true;
    }
    if res.custom.is_some() {
        return false;
    }
    let extra: &[&str] = match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => &["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
        ("", "Event") | ("events.k8s.io", "Event") => &[
            "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
            "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
            "reportingComponent", "source", "type", "regarding.kind", "regarding.name", "regarding.namespace",
        ],
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Node") => &["spec.unschedulable"],
        ("", "ReplicationController") => &["status.replicas"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        ("batch", "Job") => &["status.successful"],
        ("certificates.k8s.io", "CertificateSigningRequest") => &["spec.signerName"],
        _ => &[],
    };
    extra.contains(&field)
}

impl Filter {
    pub fn parse(res: &Resource, query: &Query) -> Result<Filter, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for (field, _, _) in fields.requirements() {
            if !field_supported(res, field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(Filter { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(super::object::labels(obj)) && self.fields.matches(obj)
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.requirements().next().is_none()
    }
}

/// Decode a stored value and stamp its resourceVersion.
pub fn decode_stored(kv: &crate::store::KeyValue) -> Option<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value).ok()?;
    super::object::meta_mut(&mut obj).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    Some(obj)
}

fn encode_continue(rev: i64, key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key}).to_string())
}

fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?.to_string();
    Ok((rev, start))
}

pub async fn list(server: &ApiServer, res: &Resource, ns: Option<&str>, query: &Query) -> Result<Listed, ApiError> {
    let filter = Filter::parse(res, query)?;
    let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let prefix = res.list_prefix(ns);
    let (mut start, mut token_rev) = (None, None);
    if let Some(token) = query.get("continue") {
        let (rev, key) = decode_continue(token)?;
        if rev < server.store.compacted_revision() {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        start = Some(key);
        token_rev = Some(rev);
    }
    let mut items = Vec::new();
    let mut revision;
    let mut continue_token = None;
    loop {
        let want = limit.map(|l| (l - items.len()).max(1));
        let page = server.store.list(&prefix, start.as_deref(), want.map(|w| w.max(64))).await?;
        revision = token_rev.unwrap_or(page.revision);
        let mut last_key = None;
        let mut cut = false;
        for kv in &page.items {
            last_key = Some(kv.key.clone());
            let Some(obj) = decode_stored(kv) else {
                tracing::warn!(key = %kv.key, "stored object is not valid JSON; skipped");
                continue;
            };
            if filter.matches(&obj) {
                items.push(obj);
                if Some(items.len()) == limit {
                    cut = true;
                    break;
                }
            }
        }
        if cut {
            let key = last_key.unwrap_or_default();
            let more_after = server.store.list(&prefix, Some(&key), Some(1)).await?;
            if !more_after.items.is_empty() {
                continue_token = Some(encode_continue(revision, &key));
            }
            break;
        }
        if !page.more {
            break;
        }
        start = last_key;
    }
    Ok(Listed { items, revision, continue_token })
}
