//! LIST: label and field selectors, `limit`/`continue` chunking.

use super::request::Query;
use super::status::ApiError;
use super::ApiServer;
use crate::registry::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use base64::Engine;
use serde_json::{json, Value};

pub struct Listed<T = Value> {
    pub items: Vec<T>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// A listed item as stored, with its parsed form when the filter needed it.
pub struct Stored {
    pub kv: crate::store::KeyValue,
    parsed: Option<Value>,
}

impl Stored {
    /// The object with its resourceVersion.
    pub fn into_object(self) -> Option<Value> {
        match self.parsed {
            Some(mut obj) => {
                super::object::meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.kv.mod_revision.to_string()));
                Some(obj)
            }
            None => decode_stored(&self.kv),
        }
    }
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

/// Serialize an object for the store: apiVersion, kind and metadata first,
/// and no resourceVersion (the store's revision is the resourceVersion). The
/// fixed shape lets a list splice stored bytes without parsing them.
pub fn encode_stored(obj: &Value) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&StoredForm(obj)).map_err(|e| ApiError::internal(format!("encoding object for the store: {e}")))
}

struct StoredForm<'a>(&'a Value);
struct MetaWithoutRevision<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for StoredForm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(root) = self.0.as_object() else { return self.0.serialize(s) };
        let mut m = s.serialize_map(Some(root.len()))?;
        for key in ["apiVersion", "kind"] {
            if let Some(v) = root.get(key) {
                m.serialize_entry(key, v)?;
            }
        }
        match root.get("metadata") {
            Some(Value::Object(meta)) => m.serialize_entry("metadata", &MetaWithoutRevision(meta))?,
            Some(other) => m.serialize_entry("metadata", other)?,
            None => {}
        }
        for (k, v) in root.iter().filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl serde::Serialize for MetaWithoutRevision<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0.iter().filter(|(k, _)| k.as_str() != "resourceVersion") {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Append the stored bytes of `kv` to `out` with metadata.resourceVersion
/// set, without parsing: stored objects start `{"apiVersion":..,"kind":..,
/// "metadata":{` (see [`encode_stored`]). Returns false (and appends
/// nothing) for bytes not of that shape.
fn splice_revision(kv: &crate::store::KeyValue, out: &mut Vec<u8>) -> bool {
    const KEY: &[u8] = b"\"metadata\":{";
    let raw = kv.value.as_slice();
    if !raw.starts_with(b"{\"apiVersion\":") {
        return false;
    }
    let Some(at) = raw.windows(KEY.len()).position(|w| w == KEY) else { return false };
    let after = at + KEY.len();
    out.extend_from_slice(&raw[..after]);
    out.extend_from_slice(format!("\"resourceVersion\":\"{}\"", kv.mod_revision).as_bytes());
    if raw.get(after) != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(&raw[after..]);
    true
}

/// The JSON body of a list, built from stored bytes.
pub fn list_body(res: &Resource, listed: Listed<Stored>) -> Vec<u8> {
    let mut metadata = json!({"resourceVersion": listed.revision.to_string()});
    if let Some(c) = &listed.continue_token {
        metadata["continue"] = json!(c);
    }
    let head = json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": metadata}).to_string();
    let total: usize = listed.items.iter().map(|i| i.kv.value.len() + 40).sum();
    let mut out = Vec::with_capacity(head.len() + total + 16);
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in listed.items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !splice_revision(&item.kv, &mut out) {
            let obj = item.into_object().unwrap_or(Value::Null);
            out.extend_from_slice(&serde_json::to_vec(&obj).unwrap_or_default());
        }
    }
    out.extend_from_slice(b"]}");
    out
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

/// List and decode: for callers that need the objects themselves.
pub async fn list(server: &ApiServer, res: &Resource, ns: Option<&str>, query: &Query) -> Result<Listed, ApiError> {
    let stored = list_stored(server, res, ns, query).await?;
    Ok(Listed {
        items: stored.items.into_iter().filter_map(Stored::into_object).collect(),
        revision: stored.revision,
        continue_token: stored.continue_token,
    })
}

/// The stored items a list selects, in key order, with paging. Objects are
/// parsed only when a selector has to look at them.
pub async fn list_stored(server: &ApiServer, res: &Resource, ns: Option<&str>, query: &Query) -> Result<Listed<Stored>, ApiError> {
    let filter = Filter::parse(res, query)?;
    let everything = filter.is_everything();
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
        for kv in page.items {
            last_key = Some(kv.key.clone());
            let parsed = if everything {
                None
            } else {
                let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
                    tracing::warn!(key = %kv.key, "stored object is not valid JSON; skipped");
                    continue;
                };
                if !filter.matches(&obj) {
                    continue;
                }
                Some(obj)
            };
            items.push(Stored { kv, parsed });
            if Some(items.len()) == limit {
                cut = true;
                break;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyValue;
    use std::sync::Arc;

    fn kv(value: Vec<u8>) -> KeyValue {
        KeyValue { key: "/core/configmaps/ns/a".into(), value: Arc::new(value), create_revision: 3, mod_revision: 7 }
    }

    #[test]
    fn spliced_revision_equals_decoded_object() {
        // Keys in an unusual order, a stale resourceVersion, and the string
        // "metadata":{ inside data: none of it may confuse the splice.
        for obj in [
            json!({"data": {"x": "\"metadata\":{"}, "metadata": {"name": "a", "resourceVersion": "1"}, "kind": "ConfigMap", "apiVersion": "v1"}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        ] {
            let stored = kv(encode_stored(&obj).expect("encode"));
            let mut out = Vec::new();
            assert!(splice_revision(&stored, &mut out));
            let spliced: Value = serde_json::from_slice(&out).expect("spliced bytes are JSON");
            assert_eq!(Some(spliced.clone()), decode_stored(&stored));
            assert_eq!(spliced["metadata"]["resourceVersion"], "7");
        }
        // Bytes of another shape are left to the decoding path.
        assert!(!splice_revision(&kv(br#"{"kind":"ConfigMap","metadata":{}}"#.to_vec()), &mut Vec::new()));
    }
}
