//! The Kubernetes API: routing, verbs, and the object lifecycle.
//!
//! [`ApiServer::handle`] takes an authenticated request and answers it:
//! discovery and OpenAPI, or a verb on a resource from the
//! [`crate::registry`]. Writes go through [`write`] (defaulting, validation,
//! managed fields, optimistic concurrency) into the [`crate::store::Store`];
//! reads and watches come back out of it. This module does not do TLS or
//! authentication (see [`crate::server`]).

pub mod codec;
pub mod discovery;
mod list;
pub mod node_proxy;
pub mod object;
mod plugins;
pub mod request;
mod reviews;
pub mod services;
pub mod status;
mod watch;
mod write;

use crate::openapi::OpenApi;
use crate::registry::{Registry, Resource};
use crate::store::Store;
use bytes::Bytes;
use codec::Wanted;
use http::{Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use request::{Query, ResourceRequest, Route};
use serde_json::{json, Value};
use status::ApiError;
use std::cell::RefCell;
use std::sync::{Arc, RwLock};

pub type Body = BoxBody<Bytes, std::io::Error>;

tokio::task_local! {
    /// Warnings for the client collected while a request is handled.
    static WARNINGS: RefCell<Vec<String>>;
}

/// Add a warning to the response of the request being handled (shown by
/// kubectl as `Warning: ...`). Outside a request it is only logged.
pub fn warn(message: String) {
    if WARNINGS.try_with(|w| w.borrow_mut().push(message.clone())).is_err() {
        tracing::warn!(message, "warning outside a request");
    }
}

/// Who is asking, as authentication found them.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub uid: Option<String>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// A request as the handlers see it.
pub struct Call {
    pub method: Method,
    pub query: Query,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub user: User,
    pub user_agent: Option<String>,
    pub body: Bytes,
}

pub const KUBERNETES_VERSION: &str = "v1.33.0";

pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub config: Arc<crate::config::ClusterConfig>,
    openapi: RwLock<Arc<OpenApi>>,
    /// Service IPs and node ports in use.
    pub services: services::Allocations,
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn json_response(code: u16, value: &Value, wanted: &Wanted) -> Response<Body> {
    if let Wanted::Protobuf { or_json } = wanted {
        if code < 300 {
            match crate::proto::encode_object(value) {
                Ok(bytes) => {
                    let mut resp = Response::new(full(bytes));
                    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(crate::proto::CONTENT_TYPE));
                    return resp;
                }
                Err(e) if !or_json => {
                    return error_response(&ApiError::new(406, "NotAcceptable", format!("cannot answer in protobuf: {e}")));
                }
                Err(e) => tracing::debug!(error = %e, "answering in JSON"),
            }
        }
    }
    let (bytes, ct) = codec::encode(value, wanted);
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(v) = http::HeaderValue::from_str(ct) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), &Wanted::Json)
}

impl ApiServer {
    /// Serve the built-in resources and the custom ones `store` defines.
    pub async fn new(store: Arc<dyn Store>) -> Result<Arc<Self>, ApiError> {
        Self::with_config(store, Arc::default()).await
    }

    /// As [`ApiServer::new`], with the cluster's settings (service CIDR,
    /// NodePort range, default tolerations).
    pub async fn with_config(store: Arc<dyn Store>, config: Arc<crate::config::ClusterConfig>) -> Result<Arc<Self>, ApiError> {
        let registry = Registry::new();
        registry.set_custom(custom_resources(&*store).await?);
        let openapi = Arc::new(crate::openapi::build(&registry.table().resources));
        let services = services::Allocations::load(&*store, &config).await?;
        Ok(Arc::new(Self { store, registry, config, openapi: RwLock::new(openapi), services }))
    }

    pub fn openapi(&self) -> Arc<OpenApi> {
        match self.openapi.read() {
            Ok(o) => o.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rebuild the registry's custom part and the OpenAPI documents from
    /// the stored CRDs.
    pub async fn refresh_crds(&self) -> Result<(), ApiError> {
        self.registry.set_custom(custom_resources(&*self.store).await?);
        let openapi = Arc::new(crate::openapi::build(&self.registry.table().resources));
        match self.openapi.write() {
            Ok(mut o) => *o = openapi,
            Err(p) => *p.into_inner() = openapi,
        }
        Ok(())
    }

    /// Create the namespaces and system PriorityClasses every cluster has.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        let table = self.registry.table();
        let Some(ns) = table.get("", "v1", "namespaces") else { return Ok(()) };
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.store.get(&ns.key(None, name)).await?.is_none() {
                let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
                match write::create(self, &ns, None, obj, &Query::default()).await {
                    Ok(_) => {}
                    Err(e) if e.code == 409 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(pc) = table.get("scheduling.k8s.io", "v1", "priorityclasses") {
            for obj in plugins::system_priority_classes() {
                let name = object::name(&obj).unwrap_or("").to_string();
                if self.store.get(&pc.key(None, &name)).await?.is_none() {
                    match write::create(self, &pc, None, obj, &Query::default()).await {
                        Ok(_) => {}
                        Err(e) if e.code == 409 => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Answer one request. `call.user` is the authenticated user.
    pub async fn handle(self: &Arc<Self>, path: &str, call: Call) -> Response<Body> {
        let (result, warnings) = WARNINGS
            .scope(RefCell::new(Vec::new()), async {
                let result = self.dispatch(path, &call).await;
                (result, WARNINGS.with(|w| w.take()))
            })
            .await;
        let mut resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                if e.code >= 500 {
                    tracing::error!(path, method = %call.method, code = e.code, message = %e.message, "request failed");
                }
                error_response(&e)
            }
        };
        for w in warnings {
            // RFC 7234 warn-code 299, as the Kubernetes API server sends them.
            let text = format!("299 - {:?}", w);
            if let Ok(v) = http::HeaderValue::from_str(&text) {
                resp.headers_mut().append(http::header::WARNING, v);
            }
        }
        resp
    }

    async fn dispatch(self: &Arc<Self>, path: &str, call: &Call) -> Result<Response<Body>, ApiError> {
        let wanted = codec::negotiate(call.accept.as_deref());
        let accept = call.accept.as_deref().unwrap_or("");
        let table = self.registry.table();
        let get_only = |resp: Value| -> Result<Response<Body>, ApiError> {
            read_only(&call.method, path)?;
            Ok(json_response(200, &resp, &Wanted::Json))
        };
        if let Some(resp) = crate::auth::discovery::serve(self, &call.method, path) {
            return resp;
        }
        let route = request::route(path);
        if wanted == Wanted::Unacceptable && !matches!(route, Route::Health(_)) {
            // kubectl asks for /openapi/v2 as protobuf only, and falls back to v3.
            return Err(ApiError::new(
                406,
                "NotAcceptable",
                format!("none of the media types accepted ({accept}) is served; the server serves application/json, application/yaml and Table"),
            ));
        }
        match route {
            Route::Health(_) => Ok(text(200, "ok")),
            Route::Version => get_only(version()),
            Route::CoreVersions => {
                if discovery::wants_aggregated(accept) {
                    return Ok(aggregated(discovery::aggregated(&table, true)));
                }
                get_only(discovery::core_versions())
            }
            Route::Groups => {
                if discovery::wants_aggregated(accept) {
                    return Ok(aggregated(discovery::aggregated(&table, false)));
                }
                get_only(discovery::groups(&table))
            }
            Route::Group(g) => match discovery::group(&table, &g) {
                Some(doc) => get_only(doc),
                None => Err(not_found_path(path)),
            },
            Route::ResourceList { group, version } => match discovery::resource_list(&table, &group, &version) {
                Some(doc) => get_only(doc),
                None => Err(not_found_path(path)),
            },
            Route::OpenApiV2 => raw_json(&call.method, path, self.openapi().v2_json().clone()),
            Route::OpenApiV3Index => get_only(self.openapi().v3_index()),
            Route::OpenApiV3(gv) => match self.openapi().v3_group_version_json(&gv) {
                Some(doc) => raw_json(&call.method, path, doc.clone()),
                None => Err(not_found_path(path)),
            },
            Route::Resource(req) => {
                let Some(res) = table.get(&req.group, &req.version, &req.plural) else {
                    return Err(not_found_path(path));
                };
                self.resource(res, req, call, wanted).await
            }
            Route::NotFound => Err(not_found_path(path)),
        }
    }

    async fn resource(self: &Arc<Self>, res: Arc<Resource>, req: ResourceRequest, call: &Call, wanted: Wanted) -> Result<Response<Body>, ApiError> {
        if res.namespaced && req.namespace.is_none() && req.name.is_some() {
            return Err(not_found_path(&format!("{}/{}", res.plural, req.name.as_deref().unwrap_or(""))));
        }
        let ns = if res.namespaced { req.namespace.as_deref() } else { None };
        let sub = req.subresource.as_deref();
        if let Some(s) = sub {
            if !res.has_subresource(s) {
                return Err(not_found_path(&format!("{}/{s}", res.plural)));
            }
        }
        let watch = req.watch_path || call.query.flag("watch");
        authorize(&call.user, &call.method, &res, ns, watch, req.name.as_deref(), sub)?;
        if !res.stored {
            if call.method != Method::POST {
                return Err(ApiError::method_not_allowed(format!("{} only supports create", res.plural)));
            }
            let obj = codec::decode(call.content_type.as_deref(), &call.body)?;
            let out = reviews::create(self, &res, obj, &call.user).await?;
            return Ok(json_response(201, &out, &wanted));
        }
        match (&call.method, req.name.as_deref()) {
            (&Method::GET, None) if watch => watch::watch(self, &res, ns, &call.query, wanted == Wanted::PartialMetadata).await,
            (&Method::GET, Some(name)) if watch => {
                let mut q = call.query.clone();
                q.0.insert("fieldSelector".into(), format!("metadata.name={name}"));
                watch::watch(self, &res, ns, &q, wanted == Wanted::PartialMetadata).await
            }
            (&Method::GET, None) if wanted == Wanted::Json => {
                let listed = list::list_stored(self, &res, ns, &call.query).await?;
                let mut resp = Response::new(full(list::list_body(&res, listed)));
                resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                Ok(resp)
            }
            (&Method::GET, None) => {
                let list = list::list(self, &res, ns, &call.query).await?;
                let out = present_list(&res, list, &wanted, &call.query);
                Ok(json_response(200, &out, &wanted))
            }
            (&Method::GET, Some(name)) => {
                let obj = write::get(self, &res, ns, name).await?;
                let out = match sub {
                    Some("scale") => write::to_scale(&res, &obj)?,
                    _ => obj,
                };
                Ok(json_response(200, &present_one(&res, out, &wanted, &call.query), &wanted))
            }
            (&Method::POST, None) => {
                let mut obj = codec::decode(call.content_type.as_deref(), &call.body)?;
                if res.group.is_empty() && res.kind == "Pod" {
                    crate::auth::pod_admission::admit(self, ns.unwrap_or(""), &mut obj).await?;
                }
                let out = write::create(self, &res, ns, obj, &call.query).await?;
                Ok(json_response(201, &out, &wanted))
            }
            (&Method::POST, Some(name)) if res.group.is_empty() && res.kind == "ServiceAccount" && sub == Some("token") => {
                let obj = codec::decode(call.content_type.as_deref(), &call.body)?;
                let out = crate::auth::token_request::create(self, ns.unwrap_or(""), name, obj).await?;
                Ok(json_response(201, &out, &wanted))
            }
            (&Method::POST, Some(name)) => {
                let obj = codec::decode(call.content_type.as_deref(), &call.body)?;
                let (code, out) = write::create_subresource(self, &res, ns, name, sub, obj, &call.query).await?;
                Ok(json_response(code, &out, &wanted))
            }
            (&Method::PUT, Some(name)) => {
                let obj = codec::decode(call.content_type.as_deref(), &call.body)?;
                let (code, out) = write::replace(self, &res, ns, name, sub, obj, &call.query).await?;
                Ok(json_response(code, &out, &wanted))
            }
            (&Method::PATCH, Some(name)) => {
                if call.body.len() > codec::MAX_BODY {
                    return Err(ApiError::too_large(format!("Request entity too large: limit is {}", codec::MAX_BODY)));
                }
                let (code, out) = write::patch(self, &res, ns, name, sub, call).await?;
                Ok(json_response(code, &out, &wanted))
            }
            (&Method::DELETE, Some(name)) => {
                let opts = if call.body.is_empty() { json!({}) } else { codec::decode(call.content_type.as_deref(), &call.body)? };
                let (code, out) = write::delete(self, &res, ns, name, opts, &call.query).await?;
                Ok(json_response(code, &out, &wanted))
            }
            (&Method::DELETE, None) => {
                let opts = if call.body.is_empty() { json!({}) } else { codec::decode(call.content_type.as_deref(), &call.body)? };
                let out = write::delete_collection(self, &res, ns, opts, &call.query).await?;
                Ok(json_response(200, &out, &wanted))
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({} {})",
                call.method, res.plural
            ))),
        }
    }
}

/// The resources the stored CustomResourceDefinitions serve.
async fn custom_resources(store: &dyn Store) -> Result<Vec<Resource>, ApiError> {
    let list = store.list("/apiextensions.k8s.io/customresourcedefinitions/", None, None).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .flat_map(|crd| write::crd_resources(&crd))
        .collect())
}

/// RBAC lands with the ServiceAccount issue; until then only cluster admins
/// (group system:masters) may use the API, and everyone else is told so.
fn authorize(user: &User, method: &Method, res: &Resource, ns: Option<&str>, watch: bool, name: Option<&str>, sub: Option<&str>) -> Result<(), ApiError> {
    if user.is_admin() {
        return Ok(());
    }
    // Anyone authenticated may ask who they are.
    if res.plural == "selfsubjectreviews" || res.plural == "selfsubjectaccessreviews" || res.plural == "selfsubjectrulesreviews" {
        return Ok(());
    }
    let verb = match (method, name) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, None) => "deletecollection",
        (&Method::DELETE, Some(_)) => "delete",
        _ => "get",
    };
    let scope = match ns {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_string(),
    };
    let resource = match sub {
        Some(s) => format!("{}/{s}", res.plural),
        None => res.plural.clone(),
    };
    let qualified = status::qualified(&resource, &res.group);
    let subject = match name {
        Some(n) => format!("{qualified} \"{n}\""),
        None => qualified,
    };
    Err(ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\"{scope}",
        user.name, res.group
    )))
}

fn present_one(res: &Resource, obj: Value, wanted: &Wanted, query: &Query) -> Value {
    match wanted {
        Wanted::Table => table_of(res, vec![obj], query),
        Wanted::PartialMetadata => partial(&obj),
        _ => obj,
    }
}

fn present_list(res: &Resource, list: list::Listed, wanted: &Wanted, query: &Query) -> Value {
    let mut metadata = json!({"resourceVersion": list.revision.to_string()});
    if let Some(c) = &list.continue_token {
        metadata["continue"] = json!(c);
    }
    match wanted {
        Wanted::Table => {
            let mut t = table_of(res, list.items, query);
            t["metadata"] = metadata;
            t
        }
        Wanted::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": list.items.iter().map(partial).collect::<Vec<_>>(),
        }),
        _ => json!({
            "kind": res.list_kind(),
            "apiVersion": res.api_version(),
            "metadata": metadata,
            "items": list.items,
        }),
    }
}

fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn table_of(res: &Resource, items: Vec<Value>, query: &Query) -> Value {
    let include = match query.get("includeObject") {
        Some("None") => crate::table::IncludeObject::None,
        Some("Object") => crate::table::IncludeObject::Object,
        _ => crate::table::IncludeObject::Metadata,
    };
    let columns: Option<Vec<crate::table::PrinterColumn>> = res.custom.as_ref().map(|c| {
        c.printer_columns
            .iter()
            .map(|col| crate::table::PrinterColumn {
                name: col.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                type_: col.get("type").and_then(Value::as_str).unwrap_or("string").to_string(),
                format: col.get("format").and_then(Value::as_str).unwrap_or("").to_string(),
                description: col.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
                priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
                json_path: col.get("jsonPath").and_then(Value::as_str).unwrap_or("").to_string(),
            })
            .collect()
    });
    crate::table::table(&res.group, &res.kind, &items, columns.as_deref(), include, jiff::Timestamp::now())
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("{KUBERNETES_VERSION}+coracle.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("linux/{}", std::env::consts::ARCH),
    })
}

/// Discovery and OpenAPI documents only answer GET (and HEAD).
fn read_only(method: &Method, path: &str) -> Result<(), ApiError> {
    if *method == Method::GET || *method == Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource ({path})")))
    }
}

/// A pre-serialized JSON document, for GET only.
fn raw_json(method: &Method, path: &str, bytes: Bytes) -> Result<Response<Body>, ApiError> {
    read_only(method, path)?;
    let mut resp = Response::new(full(bytes));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(resp)
}

fn aggregated(doc: Value) -> Response<Body> {
    let mut resp = json_response(200, &doc, &Wanted::Json);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
    );
    resp
}

pub fn text(code: u16, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn not_found_path(path: &str) -> ApiError {
    let mut e = ApiError::new(404, "NotFound", "the server could not find the requested resource");
    e.details = Some(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": format!("404 page not found: {path}")}]}));
    e
}
