//! API semantics driven in process through `ApiServer::handle` on a real
//! SQLite store: paging, 410s, dry run, conflicts, preconditions,
//! finalizers, generateName, deletecollection.

use bytes::Bytes;
use coracle_control::api::request::Query;
use coracle_control::api::{ApiServer, Call, User};
use coracle_control::store::sqlite::SqliteStore;
use coracle_control::store::{Store, Write};
use http::Method;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;

struct Fixture {
    api: Arc<ApiServer>,
    store: Arc<SqliteStore>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.store.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("coracle-api-{}", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteStore::open(&dir.join("state.db")).expect("store"));
    let api = ApiServer::new(store.clone()).await.expect("api server");
    api.bootstrap().await.expect("bootstrap");
    Fixture { api, store, dir }
}

fn admin() -> User {
    User { name: "admin".into(), groups: vec!["system:masters".into()], uid: None }
}

impl Fixture {
    async fn call(&self, method: Method, path_and_query: &str, body: Option<Value>, content_type: &str) -> (u16, Value) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let call = Call {
            method,
            query: Query::parse(Some(query)),
            accept: Some("application/json".into()),
            content_type: Some(content_type.into()),
            user: admin(),
            user_agent: Some("test/1".into()),
            body: body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        };
        let resp = self.api.handle(path, call).await;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None, "application/json").await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body), "application/json").await
    }
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

#[tokio::test]
async fn list_pages_with_continue_and_expires_tokens() {
    let f = fixture().await;
    for i in 0..25 {
        assert_eq!(f.post(CMS, cm(&format!("c{i:02}"), json!({}))).await.0, 201);
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let q = if token.is_empty() { format!("{CMS}?limit=10") } else { format!("{CMS}?limit=10&continue={token}") };
        let (code, list) = f.get(&q).await;
        assert_eq!(code, 200, "{list}");
        pages += 1;
        names.extend(list["items"].as_array().into_iter().flatten().filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string)));
        match list["metadata"]["continue"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert_eq!(names.first().map(String::as_str), Some("c00"));
    assert_eq!(names.last().map(String::as_str), Some("c24"));

    // A token older than the kept history is refused with 410 Expired.
    let (_, first) = f.get(&format!("{CMS}?limit=10")).await;
    let stale = first["metadata"]["continue"].as_str().expect("token").to_string();
    let old_rv: i64 = first["metadata"]["resourceVersion"].as_str().and_then(|r| r.parse().ok()).expect("rv");
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = f.store.clone();
            tokio::spawn(async move {
                let key = format!("/core/leases/churn/{w}");
                store.write(Write::Create { key: key.clone(), value: b"{}".to_vec() }).await.expect("create");
                // Enough writes that the store trims history past old_rv (it keeps
                // 8,000 revisions and trims every 2,000 writes).
                for _ in 0..760 {
                    store.write(Write::Update { key: key.clone(), value: b"{}".to_vec(), expected: None }).await.expect("update");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    assert!(f.store.compacted_revision() > old_rv, "history was not trimmed");
    let (code, status) = f.get(&format!("{CMS}?limit=10&continue={stale}")).await;
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["reason"], "Expired");
    // So is a watch from a trimmed revision.
    let (code, status) = f.get(&format!("{CMS}?watch=true&resourceVersion={old_rv}")).await;
    assert_eq!(code, 410, "{status}");
}

#[tokio::test]
async fn dry_run_conflicts_preconditions_and_generate_name() {
    let f = fixture().await;
    let (code, obj) = f.post(&format!("{CMS}?dryRun=All"), cm("dry", json!({}))).await;
    assert_eq!(code, 201);
    assert_eq!(obj["metadata"]["name"], "dry");
    assert_eq!(f.get(&format!("{CMS}/dry")).await.0, 404, "dry run must not store");

    let (_, created) = f.post(CMS, cm("c", json!({}))).await;
    let rv = created["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let mut changed = created.clone();
    changed["data"]["k"] = json!("new");
    assert_eq!(f.call(Method::PUT, &format!("{CMS}/c"), Some(changed.clone()), "application/json").await.0, 200);
    // The same stale resourceVersion again: 409 Conflict.
    changed["data"]["k"] = json!("newer");
    changed["metadata"]["resourceVersion"] = json!(rv);
    let (code, status) = f.call(Method::PUT, &format!("{CMS}/c"), Some(changed), "application/json").await;
    assert_eq!(code, 409);
    assert!(status["message"].as_str().unwrap_or("").contains("the object has been modified"), "{status}");

    let (code, status) = f
        .call(Method::DELETE, &format!("{CMS}/c"), Some(json!({"preconditions": {"uid": "not-the-uid"}})), "application/json")
        .await;
    assert_eq!(code, 409, "{status}");
    assert!(status["message"].as_str().unwrap_or("").contains("Precondition failed: UID in precondition: not-the-uid"), "{status}");
    assert_eq!(f.get(&format!("{CMS}/c")).await.0, 200);

    let (code, generated) = f.post(CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}})).await;
    assert_eq!(code, 201);
    let name = generated["metadata"]["name"].as_str().unwrap_or("");
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let f = fixture().await;
    let mut obj = cm("held", json!({}));
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    f.post(CMS, obj).await;
    let (code, deleting) = f.call(Method::DELETE, &format!("{CMS}/held"), None, "application/json").await;
    assert_eq!(code, 200);
    assert!(deleting["metadata"]["deletionTimestamp"].is_string(), "{deleting}");
    let (code, still) = f.get(&format!("{CMS}/held")).await;
    assert_eq!(code, 200);
    assert_eq!(still["metadata"]["finalizers"], json!(["example.com/hold"]));
    let (code, _) = f
        .call(Method::PATCH, &format!("{CMS}/held"), Some(json!({"metadata": {"finalizers": null}})), "application/merge-patch+json")
        .await;
    assert_eq!(code, 200);
    assert_eq!(f.get(&format!("{CMS}/held")).await.0, 404, "gone once the last finalizer is removed");
}

#[tokio::test]
async fn deletecollection_honours_the_label_selector() {
    let f = fixture().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        f.post(CMS, cm(name, json!({"tier": tier}))).await;
    }
    let (code, _) = f.call(Method::DELETE, &format!("{CMS}?labelSelector=tier%3Dweb"), None, "application/json").await;
    assert_eq!(code, 200);
    let (_, list) = f.get(CMS).await;
    let names: Vec<&str> = list["items"].as_array().into_iter().flatten().filter_map(|i| i["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["c"]);
    let (code, status) = f.get(&format!("{CMS}?labelSelector=tier+in+(")).await;
    assert_eq!(code, 400, "{status}");
    let (code, status) = f.get(&format!("{CMS}?fieldSelector=spec.nope%3Dx")).await;
    assert_eq!(code, 400);
    assert_eq!(status["message"], "field label not supported: spec.nope");
}

#[tokio::test]
async fn protobuf_requests_and_responses() {
    let f = fixture().await;
    let created = cm("pb", json!({"app": "web"}));
    // Ask for protobuf, as client-go does; the answer decodes to what JSON says.
    let get = |accept: &'static str| {
        let api = f.api.clone();
        async move {
            let call = Call {
                method: Method::GET,
                query: Query::default(),
                accept: Some(accept.into()),
                content_type: None,
                user: admin(),
                user_agent: None,
                body: Bytes::new(),
            };
            let resp = api.handle(&format!("{CMS}/pb"), call).await;
            let ct = resp.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            (ct, resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default())
        }
    };
    // Create with a protobuf body built from JSON by the server's own encoder.
    let body = coracle_control::proto::encode_object(&created).expect("encode");
    let call = Call {
        method: Method::POST,
        query: Query::default(),
        accept: Some("application/vnd.kubernetes.protobuf, application/json".into()),
        content_type: Some("application/vnd.kubernetes.protobuf".into()),
        user: admin(),
        user_agent: None,
        body: Bytes::from(body),
    };
    let resp = f.api.handle(CMS, call).await;
    assert_eq!(resp.status().as_u16(), 201);
    let (ct, pb) = get("application/vnd.kubernetes.protobuf, application/json").await;
    assert_eq!(ct, "application/vnd.kubernetes.protobuf");
    let from_pb = coracle_control::proto::decode_object(&pb).expect("decode response");
    let (ct, js) = get("application/json").await;
    assert_eq!(ct, "application/json");
    let from_json: Value = serde_json::from_slice(&js).expect("json");
    assert_eq!(from_pb, from_json);
    assert_eq!(from_json["metadata"]["labels"]["app"], "web");
}
