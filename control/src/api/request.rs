//! Turning a request path and method into what is being asked for.

use super::status::ApiError;
use std::collections::HashMap;

/// A request for a stored resource (or one of its subresources).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Legacy `/watch/` path prefix.
    pub watch_path: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Health(String),
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList { group: String, version: String },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String),
    Resource(ResourceRequest),
    NotFound,
}

pub fn route(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/healthz" | "/livez" | "/readyz" => return Route::Health(trimmed[1..].to_string()),
        "/version" => return Route::Version,
        "/api" => return Route::CoreVersions,
        "/apis" => return Route::Groups,
        "/openapi/v2" => return Route::OpenApiV2,
        "/openapi/v3" => return Route::OpenApiV3Index,
        _ => {}
    }
    if trimmed.starts_with("/healthz/") || trimmed.starts_with("/livez/") || trimmed.starts_with("/readyz/") {
        return Route::Health(trimmed[1..].to_string());
    }
    if let Some(rest) = trimmed.strip_prefix("/openapi/v3/") {
        return Route::OpenApiV3(rest.to_string());
    }
    let parts: Vec<String> = trimmed.split('/').skip(1).map(decode_segment).collect();
    let (group, version, rest) = match parts.first().map(String::as_str) {
        Some("api") if parts.len() >= 2 => (String::new(), parts[1].clone(), &parts[2..]),
        Some("apis") if parts.len() == 2 => return Route::Group(parts[1].clone()),
        Some("apis") if parts.len() >= 3 => (parts[1].clone(), parts[2].clone(), &parts[3..]),
        _ => return Route::NotFound,
    };
    if rest.is_empty() {
        return Route::ResourceList { group, version };
    }
    let mut rest = rest;
    let mut watch_path = false;
    if rest[0] == "watch" {
        watch_path = true;
        rest = &rest[1..];
    }
    let mut namespace = None;
    if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 && group.is_empty() {
        namespace = Some(rest[1].clone());
        if rest.len() > 2 && !(rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize")) {
            rest = &rest[2..];
        }
    } else if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 2 {
        namespace = Some(rest[1].clone());
        rest = &rest[2..];
    }
    if rest.is_empty() {
        return Route::NotFound;
    }
    let plural = rest[0].clone();
    let name = rest.get(1).cloned();
    let subresource = if rest.len() > 2 { Some(rest[2..].join("/")) } else { None };
    // `namespaces/NAME` itself: the namespace is the name, not a scope.
    let namespace = if plural == "namespaces" { None } else { namespace };
    Route::Resource(ResourceRequest { group, version, plural, namespace, name, subresource, watch_path })
}

fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Query parameters (last value wins, like Go's `Get`).
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            map.insert(decode(k), decode(v));
        }
        Query(map)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.0.get(k).map(String::as_str), Some("true") | Some("1"))
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for query parameter {k}: {v:?} is not an integer"))),
        }
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid value: \"{other}\": supported values: \"All\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourceRequest {
        match route(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_kubernetes_paths() {
        let r = res("/api/v1/namespaces/default/pods/web/log");
        assert_eq!((r.plural.as_str(), r.namespace.as_deref(), r.name.as_deref(), r.subresource.as_deref()), ("pods", Some("default"), Some("web"), Some("log")));
        let r = res("/api/v1/namespaces/kube-system");
        assert_eq!((r.plural.as_str(), r.namespace, r.name.as_deref()), ("namespaces", None, Some("kube-system")));
        let r = res("/api/v1/namespaces/x/status");
        assert_eq!((r.plural.as_str(), r.name.as_deref(), r.subresource.as_deref()), ("namespaces", Some("x"), Some("status")));
        let r = res("/apis/apps/v1/namespaces/d/deployments/web/scale");
        assert_eq!((r.group.as_str(), r.version.as_str(), r.subresource.as_deref()), ("apps", "v1", Some("scale")));
        let r = res("/apis/apps/v1/deployments");
        assert_eq!((r.namespace, r.name), (None, None));
        let r = res("/api/v1/watch/namespaces/d/configmaps");
        assert!(r.watch_path);
        assert_eq!(route("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(route("/apis/apps/v1"), Route::ResourceList { group: "apps".into(), version: "v1".into() });
        assert_eq!(route("/nope"), Route::NotFound);
        let q = Query::parse(Some("labelSelector=app%3Dweb&limit=5&watch=true"));
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert!(q.flag("watch"));
    }
}
