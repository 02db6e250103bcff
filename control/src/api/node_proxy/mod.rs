//! Streaming through the API server: `pods/log`, `pods/exec`,
//! `pods/attach`, `pods/portforward` and `nodes/proxy/*`.
//!
//! Each request is checked here the way upstream's API server checks it
//! (pod exists, container valid, pod bound to a node, node has an address),
//! then sent to the node's kubelet over HTTPS ([`kubelet`]) at the kubelet's
//! own paths (`/containerLogs/NS/POD/CONTAINER`, `/exec/NS/POD/CONTAINER`,
//! `/attach/...`, `/portForward/NS/POD`, or the path after `proxy/`).
//! Responses stream back unchanged; upgraded connections (WebSocket or
//! SPDY, whatever the client and kubelet agree on) are spliced byte for
//! byte. This module never interprets the streaming protocols and never
//! buffers a body (the handler runs before [`crate::server`] reads it).

pub mod kubelet;
pub mod location;

use super::request::{route, Route};
use super::status::ApiError;
use super::{error_response, full, ApiServer, Body, User};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;
use std::sync::Arc;

pub use kubelet::start;

/// What a streaming path asks for.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Log { ns: String, pod: String },
    Exec { ns: String, pod: String },
    Attach { ns: String, pod: String },
    PortForward { ns: String, pod: String },
    /// `nodes/NAME/proxy/REST`: REST is the raw (still encoded) path.
    NodeProxy { node: String, rest: String },
}

fn target(path: &str) -> Option<Target> {
    let Route::Resource(r) = route(path) else { return None };
    if !r.group.is_empty() || r.version != "v1" || r.watch_path {
        return None;
    }
    let name = r.name?;
    let sub = r.subresource?;
    match (r.plural.as_str(), r.namespace, sub.as_str()) {
        ("pods", Some(ns), "log") => Some(Target::Log { ns, pod: name }),
        ("pods", Some(ns), "exec") => Some(Target::Exec { ns, pod: name }),
        ("pods", Some(ns), "attach") => Some(Target::Attach { ns, pod: name }),
        ("pods", Some(ns), "portforward") => Some(Target::PortForward { ns, pod: name }),
        ("nodes", None, s) if s == "proxy" || s.starts_with("proxy/") => {
            // The rest of the raw path after `/nodes/NAME/proxy`.
            let marker = "/proxy";
            let at = path.find(&format!("/nodes/"))?;
            let after_nodes = &path[at + "/nodes/".len()..];
            let slash = after_nodes.find('/')?;
            let tail = &after_nodes[slash..];
            let rest = tail.strip_prefix(marker)?;
            let rest = if rest.is_empty() { "/".to_string() } else { rest.to_string() };
            Some(Target::NodeProxy { node: name, rest })
        }
        _ => None,
    }
}

/// True when [`serve`] answers this path (checked before the body is read).
pub fn handles(path: &str) -> bool {
    target(path).is_some()
}

/// Answer a streaming request for an authenticated `user`.
pub async fn serve(api: Arc<ApiServer>, req: Request<Incoming>, user: User) -> Response<Body> {
    let path = req.uri().path().to_string();
    let Some(t) = target(&path) else {
        return error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    };
    match proxy(&api, t, req, &user).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(path, code = e.code, message = %e.message, "streaming request refused");
            error_response(&e)
        }
    }
}

/// Query parameters in order, repeated keys kept (`command=sh&command=-c`).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn last<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn flag(q: &[(String, String)], k: &str) -> bool {
    matches!(last(q, k), Some("true") | Some("1") | Some("True"))
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
        && headers.contains_key(http::header::UPGRADE)
}

fn invalid(kind: &str, name: &str, field: &str, message: String) -> ApiError {
    ApiError::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {field}{message}"))
}

/// Kubelet query for `pods/log`, after upstream's PodLogOptions validation.
fn log_query(q: &[(String, String)], pod: &str) -> Result<String, ApiError> {
    let int = |k: &str| -> Result<Option<i64>, ApiError> {
        match last(q, k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for query parameter {k}: {v:?} is not an integer"))),
        }
    };
    let tail = int("tailLines")?;
    let limit = int("limitBytes")?;
    let since = int("sinceSeconds")?;
    let since_time = last(q, "sinceTime").filter(|v| !v.is_empty());
    if let Some(t) = tail.filter(|t| *t < 0) {
        return Err(invalid("PodLogOptions", pod, "tailLines: ", format!("Invalid value: {t}: must be greater than or equal to 0")));
    }
    if let Some(l) = limit.filter(|l| *l < 1) {
        return Err(invalid("PodLogOptions", pod, "limitBytes: ", format!("Invalid value: {l}: must be greater than 0")));
    }
    if let Some(s) = since.filter(|s| *s < 1) {
        return Err(invalid("PodLogOptions", pod, "sinceSeconds: ", format!("Invalid value: {s}: must be greater than 0")));
    }
    if since.is_some() && since_time.is_some() {
        return Err(invalid("PodLogOptions", pod, "", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into()));
    }
    if let Some(t) = since_time {
        if t.parse::<jiff::Timestamp>().is_err() {
            return Err(ApiError::bad_request(format!("invalid value for query parameter sinceTime: {t:?} is not an RFC 3339 time")));
        }
    }
    let mut out = Vec::new();
    for k in ["follow", "previous", "timestamps"] {
        if flag(q, k) {
            out.push(format!("{k}=true"));
        }
    }
    for (k, v) in [("tailLines", tail), ("limitBytes", limit), ("sinceSeconds", since)] {
        if let Some(v) = v {
            out.push(format!("{k}={v}"));
        }
    }
    if let Some(t) = since_time {
        out.push(format!("sinceTime={}", encode(t)));
    }
    Ok(out.join("&"))
}

/// Kubelet query for exec/attach (`command`, `input`, `output`, `error`, `tty`).
fn stream_query(q: &[(String, String)], exec: bool) -> Result<String, ApiError> {
    let mut out = Vec::new();
    if exec {
        let commands: Vec<&str> = q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.as_str()).collect();
        if commands.is_empty() {
            return Err(ApiError::bad_request("you must specify at least 1 command"));
        }
        out.extend(commands.iter().map(|c| format!("command={}", encode(c))));
    }
    let (stdin, stdout, stderr, tty) = (flag(q, "stdin"), flag(q, "stdout"), flag(q, "stderr"), flag(q, "tty"));
    if !stdin && !stdout && !stderr {
        return Err(ApiError::bad_request("you must specify at least 1 of stdin, stdout, stderr"));
    }
    for (on, k) in [(stdin, "input"), (stdout, "output"), (stderr && !tty, "error"), (tty, "tty")] {
        if on {
            out.push(format!("{k}=1"));
        }
    }
    Ok(out.join("&"))
}

async fn get(api: &Arc<ApiServer>, plural: &str, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
    let table = api.registry.table();
    let res = table.get("", "v1", plural).ok_or_else(|| ApiError::internal(format!("resource {plural} is not served")))?;
    super::write::get(api, &res, ns, name).await
}

fn authorize(api: &Arc<ApiServer>, user: &User, method: &Method, plural: &str, ns: Option<&str>, name: &str, sub: &str) -> Result<(), ApiError> {
    let table = api.registry.table();
    let res = table.get("", "v1", plural).ok_or_else(|| ApiError::internal(format!("resource {plural} is not served")))?;
    super::authorize(user, method, &res, ns, false, Some(name), Some(sub))
}

async fn node_endpoint(api: &Arc<ApiServer>, node: &str) -> Result<(String, u16), ApiError> {
    let obj = get(api, "nodes", None, node).await?;
    location::kubelet_endpoint(&obj)
}

async fn proxy(api: &Arc<ApiServer>, t: Target, req: Request<Incoming>, user: &User) -> Result<Response<Body>, ApiError> {
    let q = query_pairs(req.uri().query());
    match t {
        Target::Log { ns, pod } => {
            authorize(api, user, &Method::GET, "pods", Some(&ns), &pod, "log")?;
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return Err(ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource ({} pods/log)", req.method())));
            }
            let obj = get(api, "pods", Some(&ns), &pod).await?;
            let container = location::container(&obj, &pod, last(&q, "container"))?;
            let query = log_query(&q, &pod)?;
            let Some(node) = location::node_name(&obj) else {
                // Upstream answers an unscheduled pod's logs with an empty stream.
                return Ok(text_response(StatusCode::OK, Bytes::new()));
            };
            let (host, port) = node_endpoint(api, node).await?;
            let path = format!("/containerLogs/{}/{}/{}", encode(&ns), encode(&pod), encode(&container));
            let resp = forward(&host, port, path, query, req, false).await?;
            if resp.status().is_success() {
                return Ok(resp);
            }
            Err(kubelet_error(resp).await)
        }
        Target::Exec { ns, pod } | Target::Attach { ns, pod } => {
            let exec = req.uri().path().ends_with("/exec");
            let sub = if exec { "exec" } else { "attach" };
            authorize(api, user, &Method::POST, "pods", Some(&ns), &pod, sub)?;
            let obj = get(api, "pods", Some(&ns), &pod).await?;
            let container = location::container(&obj, &pod, last(&q, "container"))?;
            let query = stream_query(&q, exec)?;
            let Some(node) = location::node_name(&obj) else {
                return Err(ApiError::bad_request(format!("pod {pod} does not have a host assigned")));
            };
            if !is_upgrade(req.headers()) {
                return Err(ApiError::bad_request("Upgrade request required"));
            }
            let (host, port) = node_endpoint(api, node).await?;
            let path = format!("/{sub}/{}/{}/{}", encode(&ns), encode(&pod), encode(&container));
            forward(&host, port, path, query, req, true).await
        }
        Target::PortForward { ns, pod } => {
            authorize(api, user, &Method::POST, "pods", Some(&ns), &pod, "portforward")?;
            let obj = get(api, "pods", Some(&ns), &pod).await?;
            let Some(node) = location::node_name(&obj) else {
                return Err(ApiError::bad_request(format!("pod {pod} does not have a host assigned")));
            };
            if !is_upgrade(req.headers()) {
                return Err(ApiError::bad_request("Upgrade request required"));
            }
            let query: Vec<String> = q.iter().filter(|(k, _)| k == "ports").map(|(_, v)| format!("port={}", encode(v))).collect();
            let (host, port) = node_endpoint(api, node).await?;
            let path = format!("/portForward/{}/{}", encode(&ns), encode(&pod));
            forward(&host, port, path, query.join("&"), req, true).await
        }
        Target::NodeProxy { node, rest } => {
            authorize(api, user, &req.method().clone(), "nodes", None, &node, "proxy")?;
            let (host, port) = node_endpoint(api, &node).await?;
            let query = req.uri().query().unwrap_or("").to_string();
            forward(&host, port, rest, query, req, false).await
        }
    }
}

fn text_response(code: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// An error answer of a kubelet as upstream's API server reports it
/// (the kubelet's text becomes the message).
async fn kubelet_error(resp: Response<Body>) -> ApiError {
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), 50_000).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    if let Ok(status) = serde_json::from_str::<Value>(&text) {
        if status.get("kind").and_then(Value::as_str) == Some("Status") {
            let reason = match status.get("reason").and_then(Value::as_str) {
                Some("BadRequest") => "BadRequest",
                Some("NotFound") => "NotFound",
                Some("Forbidden") => "Forbidden",
                Some("InternalError") => "InternalError",
                _ => "",
            };
            return ApiError::new(code, reason, status.get("message").and_then(Value::as_str).unwrap_or(&text).to_string());
        }
    }
    match code {
        400 => ApiError::bad_request(text),
        404 => ApiError::new(404, "NotFound", text),
        500 => ApiError::internal(format!("Internal error occurred: {text}")),
        _ => ApiError::new(code, "", text),
    }
}

/// Headers of the client's request the kubelet sees.
fn forwarded_headers(from: &HeaderMap, upgrade: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in from {
        let n = name.as_str();
        let hop = matches!(n, "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "host")
            || n.starts_with("proxy-");
        let secret = n == "authorization" || n.starts_with("impersonate-");
        if secret || (hop && !(upgrade && (n == "connection" || n == "upgrade"))) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Send the request to the kubelet and hand back its answer; for an
/// accepted upgrade, splice the two connections.
async fn forward(host: &str, port: u16, path: String, query: String, mut req: Request<Incoming>, upgrade: bool) -> Result<Response<Body>, ApiError> {
    let upgrade = upgrade && is_upgrade(req.headers());
    let addr = location::authority(host, port);
    let pq = if query.is_empty() { path } else { format!("{path}?{query}") };
    let uri: http::Uri = pq.parse().map_err(|e| ApiError::bad_request(format!("invalid kubelet path {pq:?}: {e}")))?;
    let client_upgrade = if upgrade { Some(hyper::upgrade::on(&mut req)) } else { None };
    let (parts, body) = req.into_parts();
    let mut out = Request::new(body);
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    *out.headers_mut() = forwarded_headers(&parts.headers, upgrade);
    if let Ok(v) = HeaderValue::from_str(&addr) {
        out.headers_mut().insert(http::header::HOST, v);
    }
    let mut resp = kubelet::send(&addr, host, out, None).await.map_err(|e| {
        tracing::warn!(addr, error = %e, "kubelet unreachable");
        ApiError::new(502, "", e.to_string())
    })?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::new(502, "", format!("the kubelet at {addr} switched protocols on a plain request")));
        };
        let kubelet_upgrade = hyper::upgrade::on(&mut resp);
        let mut answer = Response::new(full(Bytes::new()));
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *answer.headers_mut() = resp.headers().clone();
        tokio::spawn(async move {
            let (c, k) = match tokio::join!(client_upgrade, kubelet_upgrade) {
                (Ok(c), Ok(k)) => (c, k),
                (c, k) => {
                    tracing::debug!(client = c.is_ok(), kubelet = k.is_ok(), "upgrade not completed");
                    return;
                }
            };
            let mut c = hyper_util::rt::TokioIo::new(c);
            let mut k = hyper_util::rt::TokioIo::new(k);
            match tokio::io::copy_bidirectional(&mut c, &mut k).await {
                Ok((up, down)) => tracing::debug!(addr, up, down, "streaming connection closed"),
                Err(e) => tracing::debug!(addr, error = %e, "streaming connection ended"),
            }
        });
        return Ok(answer);
    }
    let (parts, body) = resp.into_parts();
    let mut answer = Response::new(body.map_err(std::io::Error::other).boxed());
    *answer.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "connection" | "keep-alive" | "transfer-encoding" | "upgrade") {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_streaming_paths() {
        let pod = |s: &str| format!("/api/v1/namespaces/default/pods/web/{s}");
        assert_eq!(target(&pod("log")), Some(Target::Log { ns: "default".into(), pod: "web".into() }));
        assert_eq!(target(&pod("exec")), Some(Target::Exec { ns: "default".into(), pod: "web".into() }));
        assert_eq!(target(&pod("attach")), Some(Target::Attach { ns: "default".into(), pod: "web".into() }));
        assert_eq!(target(&pod("portforward")), Some(Target::PortForward { ns: "default".into(), pod: "web".into() }));
        assert_eq!(target(&pod("status")), None);
        assert_eq!(target("/api/v1/namespaces/default/pods/web"), None);
        assert_eq!(
            target("/api/v1/nodes/n1/proxy/containerLogs/a%2Fb"),
            Some(Target::NodeProxy { node: "n1".into(), rest: "/containerLogs/a%2Fb".into() })
        );
        assert_eq!(target("/api/v1/nodes/n1/proxy"), Some(Target::NodeProxy { node: "n1".into(), rest: "/".into() }));
        assert_eq!(target("/api/v1/nodes/n1/proxy/"), Some(Target::NodeProxy { node: "n1".into(), rest: "/".into() }));
        assert_eq!(target("/api/v1/nodes/n1/status"), None);
        assert!(!handles("/apis/apps/v1/namespaces/default/deployments/web/scale"));
    }

    #[test]
    fn queries_keep_repeated_commands() {
        let q = query_pairs(Some("command=sh&command=-c&command=echo+a%20b&stdout=true&stderr=true&container=c"));
        assert_eq!(stream_query(&q, true).unwrap(), "command=sh&command=%2Dc&command=echo%20a%20b&output=1&error=1");
        let tty = query_pairs(Some("stdin=true&stdout=true&stderr=true&tty=true"));
        assert_eq!(stream_query(&tty, false).unwrap(), "input=1&output=1&tty=1");
        assert_eq!(stream_query(&query_pairs(Some("stdout=true")), true).unwrap_err().message, "you must specify at least 1 command");
        assert_eq!(stream_query(&query_pairs(Some("command=ls")), true).unwrap_err().code, 400);
    }

    #[test]
    fn log_options_are_validated_and_passed_on() {
        let q = query_pairs(Some("follow=true&tailLines=5&timestamps=true&limitBytes=10&container=c"));
        assert_eq!(log_query(&q, "p").unwrap(), "follow=true&timestamps=true&tailLines=5&limitBytes=10");
        let e = log_query(&query_pairs(Some("tailLines=-1")), "p").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (422, "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"));
        assert_eq!(log_query(&query_pairs(Some("sinceSeconds=3&sinceTime=2024-01-01T00:00:00Z")), "p").unwrap_err().code, 422);
        assert_eq!(log_query(&query_pairs(Some("sinceTime=2024-01-01T00:00:00Z")), "p").unwrap(), "sinceTime=2024%2D01%2D01T00%3A00%3A00Z");
        assert_eq!(log_query(&query_pairs(Some("tailLines=x")), "p").unwrap_err().code, 400);
    }

    #[test]
    fn secrets_and_hop_headers_stay_here() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.append("x-stream-protocol-version", HeaderValue::from_static("v4.channel.k8s.io"));
        h.append("x-stream-protocol-version", HeaderValue::from_static("v5.channel.k8s.io"));
        let up = forwarded_headers(&h, true);
        assert!(up.get("authorization").is_none());
        assert_eq!(up.get_all("x-stream-protocol-version").iter().count(), 2);
        assert!(up.get("upgrade").is_some());
        let plain = forwarded_headers(&h, false);
        assert!(plain.get("upgrade").is_none() && plain.get("connection").is_none());
        assert!(is_upgrade(&h));
    }
}
