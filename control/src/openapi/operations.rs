//! The REST paths of the served resources and their operations, in a form
//! neutral to the OpenAPI version; [`super::v2`] and [`super::v3`] render it.
//!
//! `kubectl` relies on these: `apply`/`create` look for the PATCH
//! operation carrying the resource's `x-kubernetes-group-version-kind` and
//! check that it accepts `fieldValidation`; client-side `apply` checks
//! that it consumes `application/strategic-merge-patch+json`; `explain`
//! finds the kind through the operations of the resource's paths.

use super::definitions::{definition_name, list_definition_name, Gvk, DELETE_OPTIONS, PATCH, SCALE, STATUS};
use crate::registry::Resource;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub location: Location,
    pub description: String,
    pub kind: ParamType,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub definition: String,
    pub content_types: &'static [&'static str],
}

#[derive(Debug, Clone)]
pub struct Response {
    pub code: &'static str,
    pub description: &'static str,
    pub definition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub method: &'static str,
    pub action: &'static str,
    pub id: String,
    pub description: String,
    pub tag: String,
    pub gvk: Gvk,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    /// Media types of the responses.
    pub produces: &'static [&'static str],
}

#[derive(Debug, Clone)]
pub struct PathItem {
    /// Key of the group-version's v3 document: `api/v1`, `apis/apps/v1`.
    pub group_version: String,
    pub path: String,
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

pub const PATCH_TYPES_BUILTIN: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Custom resources do not support strategic merge patch.
pub const PATCH_TYPES_CUSTOM: &[&str] =
    &["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"];
const ANY_BODY: &[&str] = &["*/*"];
const PRODUCES: &[&str] = &["application/json", "application/yaml"];
const PRODUCES_LIST: &[&str] = &["application/json", "application/yaml", "application/json;stream=watch"];

fn query(name: &'static str, kind: ParamType, description: &str) -> Param {
    Param { name, location: Location::Query, description: description.to_string(), kind, required: false }
}

fn pretty() -> Param {
    query("pretty", ParamType::String, "Pretty-print the output when set to 'true'.")
}
fn dry_run() -> Param {
    query(
        "dryRun",
        ParamType::String,
        "When present, the request is fully processed but nothing is persisted. The only valid value is All.",
    )
}
fn field_manager() -> Param {
    query(
        "fieldManager",
        ParamType::String,
        "Name of the actor making the change, used to track field ownership. At most 128 printable characters; required for apply patches.",
    )
}
fn field_validation() -> Param {
    query(
        "fieldValidation",
        ParamType::String,
        "How the server treats unknown and duplicate fields in the object: Ignore (drop them silently), Warn (drop them and return a warning per field; the default) or Strict (fail the request).",
    )
}
fn force() -> Param {
    query(
        "force",
        ParamType::Boolean,
        "Take over fields owned by other managers when an apply patch conflicts with them. Only for apply patches.",
    )
}

fn delete_params() -> Vec<Param> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", ParamType::Integer, "Seconds to wait before the object is deleted; 0 deletes at once. Unset uses the type's default."),
        query("ignoreStoreReadErrorWithClusterBreakingPotential", ParamType::Boolean, "Delete objects that cannot be read from storage (unsafe)."),
        query("orphanDependents", ParamType::Boolean, "Deprecated: use propagationPolicy. Whether dependents are orphaned."),
        query("propagationPolicy", ParamType::String, "Garbage collection of dependents: Orphan, Background or Foreground."),
    ]
}

fn list_params() -> Vec<Param> {
    vec![
        query("allowWatchBookmarks", ParamType::Boolean, "Ask for BOOKMARK events in a watch."),
        query("continue", ParamType::String, "Continue token returned by a previous page of a limited list."),
        query("fieldSelector", ParamType::String, "Restrict the result to objects whose fields match. Defaults to everything."),
        query("labelSelector", ParamType::String, "Restrict the result to objects whose labels match. Defaults to everything."),
        query("limit", ParamType::Integer, "Largest number of items to return; more are reachable through the continue token."),
        query("resourceVersion", ParamType::String, "Which resource version the result must be at least as new as (see resourceVersionMatch)."),
        query("resourceVersionMatch", ParamType::String, "How resourceVersion applies to a list: Exact or NotOlderThan."),
        query("sendInitialEvents", ParamType::Boolean, "With watch=true, start the stream with synthetic events for the current state."),
        query("timeoutSeconds", ParamType::Integer, "Time limit for the call, whatever happens."),
        query("watch", ParamType::Boolean, "Watch for changes and stream them as add, update and remove events."),
    ]
}

fn delete_collection_params() -> Vec<Param> {
    let mut params = delete_params();
    params.extend(list_params().into_iter().filter(|p| !matches!(p.name, "allowWatchBookmarks" | "watch")));
    params.sort_by_key(|p| p.name);
    params
}

fn path_param(name: &'static str, description: String) -> Param {
    Param { name, location: Location::Path, description, kind: ParamType::String, required: true }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`, `StableExampleComV1`.
fn id_prefix(group: &str, version: &str) -> String {
    let group = if group.is_empty() { "core" } else { group.strip_suffix(".k8s.io").unwrap_or(group) };
    let mut out = String::new();
    for label in group.split(['.', '-']) {
        let mut chars = label.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    let mut chars = version.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    out
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let prefix = id_prefix(group, "");
    let mut chars = prefix.chars();
    let mut out = String::new();
    if let Some(first) = chars.next() {
        out.extend(first.to_lowercase());
        out.push_str(chars.as_str());
    }
    format!("{out}_{version}")
}

/// `api/v1` or `apis/GROUP/VERSION`.
pub fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

struct Ctx<'a> {
    r: &'a Resource,
    def: String,
    tag: String,
    prefix: String,
    scope: &'static str,
    gvk: Gvk,
    patch_types: &'static [&'static str],
}

impl Ctx<'_> {
    fn op(&self, method: &'static str, action: &'static str, verb: &str, suffix: &str, description: String) -> Operation {
        Operation {
            method,
            action,
            id: format!("{verb}{}{}{}{suffix}", self.prefix, self.scope, self.r.kind),
            description,
            tag: self.tag.clone(),
            gvk: self.gvk.clone(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            produces: PRODUCES,
        }
    }
}

fn ok(definition: &str) -> Response {
    Response { code: "200", description: "OK", definition: Some(definition.to_string()) }
}
fn created(definition: &str) -> Response {
    Response { code: "201", description: "Created", definition: Some(definition.to_string()) }
}
fn accepted(definition: &str) -> Response {
    Response { code: "202", description: "Accepted", definition: Some(definition.to_string()) }
}
fn unauthorized() -> Response {
    Response { code: "401", description: "Unauthorized", definition: None }
}

/// All paths of all `resources`, sorted by path.
pub fn paths(resources: &[Arc<Resource>]) -> Vec<PathItem> {
    let mut out = Vec::new();
    for r in resources {
        resource_paths(r, &mut out);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn resource_paths(r: &Resource, out: &mut Vec<PathItem>) {
    let gv = group_version_key(&r.group, &r.version);
    let base = format!("/{gv}");
    let ctx = Ctx {
        r,
        def: definition_name(r),
        tag: tag(&r.group, &r.version),
        prefix: id_prefix(&r.group, &r.version),
        scope: if r.namespaced { "Namespaced" } else { "" },
        gvk: Gvk::of(r),
        patch_types: if r.custom.is_some() { PATCH_TYPES_CUSTOM } else { PATCH_TYPES_BUILTIN },
    };
    let has = |verb: &str| r.verbs.contains(&verb);
    let namespace = || path_param("namespace", "Namespace of the objects (a scope for names and authorization).".into());
    let name = || path_param("name", format!("Name of the {}.", r.kind));
    let collection_path = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    let scope_params = || if r.namespaced { vec![namespace(), pretty()] } else { vec![pretty()] };
    let item_params = || if r.namespaced { vec![name(), namespace(), pretty()] } else { vec![name(), pretty()] };

    // Collection: list, create, delete collection.
    let mut ops = Vec::new();
    if has("list") {
        let mut op = ctx.op("get", "list", "list", "", format!("list or watch objects of kind {}", r.kind));
        op.params = list_params();
        op.responses = vec![ok(&list_definition_name(r)), unauthorized()];
        op.produces = PRODUCES_LIST;
        ops.push(op);
    }
    if has("create") {
        let mut op = ctx.op("post", "post", "create", "", format!("create a {}", r.kind));
        op.params = vec![dry_run(), field_manager(), field_validation()];
        op.body = Some(Body { definition: ctx.def.clone(), content_types: ANY_BODY });
        op.responses = vec![ok(&ctx.def), created(&ctx.def), accepted(&ctx.def), unauthorized()];
        ops.push(op);
    }
    if has("create") && !has("patch") {
        // Not served (405). Create-only kinds (reviews, bindings) get this
        // so that `kubectl create -f` finds a PATCH operation accepting
        // fieldValidation and leaves validation to the server; without it
        // kubectl falls back to client-side validation against the
        // protobuf-only /openapi/v2 and fails.
        let mut op = ctx.op("patch", "patch", "patch", "", format!("{} objects cannot be patched; listed to advertise server-side field validation", r.kind));
        op.params = vec![dry_run(), field_manager(), field_validation(), force()];
        op.body = Some(Body { definition: PATCH.into(), content_types: PATCH_TYPES_CUSTOM });
        op.responses = vec![unauthorized()];
        ops.push(op);
    }
    if has("deletecollection") {
        let mut op = ctx.op("delete", "deletecollection", "delete", "", format!("delete a collection of {}", r.kind));
        op.id = format!("delete{}Collection{}{}", ctx.prefix, ctx.scope, r.kind);
        op.params = delete_collection_params();
        op.body = Some(Body { definition: DELETE_OPTIONS.into(), content_types: ANY_BODY });
        op.responses = vec![ok(STATUS), unauthorized()];
        ops.push(op);
    }
    if !ops.is_empty() {
        out.push(PathItem { group_version: gv.clone(), path: collection_path.clone(), params: scope_params(), operations: ops });
    }

    // Namespaced resources can also be listed across all namespaces.
    if r.namespaced && has("list") {
        let mut op = ctx.op("get", "list", "list", "", format!("list or watch objects of kind {}", r.kind));
        op.id = format!("list{}{}ForAllNamespaces", ctx.prefix, r.kind);
        op.params = list_params();
        op.responses = vec![ok(&list_definition_name(r)), unauthorized()];
        op.produces = PRODUCES_LIST;
        out.push(PathItem {
            group_version: gv.clone(),
            path: format!("{base}/{}", r.plural),
            params: vec![pretty()],
            operations: vec![op],
        });
    }

    // One object: read, replace, patch, delete.
    let item_path = format!("{collection_path}/{{name}}");
    let mut ops = object_operations(&ctx, "", &ctx.def, &ctx.gvk, &has);
    if has("delete") {
        let mut op = ctx.op("delete", "delete", "delete", "", format!("delete a {}", r.kind));
        op.params = delete_params();
        op.body = Some(Body { definition: DELETE_OPTIONS.into(), content_types: ANY_BODY });
        op.responses = vec![ok(STATUS), accepted(STATUS), unauthorized()];
        ops.push(op);
    }
    if !ops.is_empty() {
        out.push(PathItem { group_version: gv.clone(), path: item_path.clone(), params: item_params(), operations: ops });
    }

    if r.status && r.stored {
        let ops = object_operations(&ctx, "Status", &ctx.def, &ctx.gvk, &has);
        if !ops.is_empty() {
            out.push(PathItem { group_version: gv.clone(), path: format!("{item_path}/status"), params: item_params(), operations: ops });
        }
    }
    if r.scale.is_some() && r.stored {
        let gvk = Gvk::new("autoscaling", "v1", "Scale");
        let ops = object_operations(&ctx, "Scale", SCALE, &gvk, &has);
        if !ops.is_empty() {
            out.push(PathItem { group_version: gv, path: format!("{item_path}/scale"), params: item_params(), operations: ops });
        }
    }
}

/// get / put / patch of an object or of its `status` / `scale` subresource.
fn object_operations(ctx: &Ctx<'_>, suffix: &str, def: &str, gvk: &Gvk, has: &dyn Fn(&str) -> bool) -> Vec<Operation> {
    let what = match suffix {
        "" => format!("the specified {}", ctx.r.kind),
        "Status" => format!("status of the specified {}", ctx.r.kind),
        _ => format!("scale of the specified {}", ctx.r.kind),
    };
    let mut ops = Vec::new();
    if has("get") {
        let mut op = ctx.op("get", "get", "read", suffix, format!("read {what}"));
        op.gvk = gvk.clone();
        op.responses = vec![ok(def), unauthorized()];
        ops.push(op);
    }
    if has("update") {
        let mut op = ctx.op("put", "put", "replace", suffix, format!("replace {what}"));
        op.gvk = gvk.clone();
        op.params = vec![dry_run(), field_manager(), field_validation()];
        op.body = Some(Body { definition: def.to_string(), content_types: ANY_BODY });
        op.responses = vec![ok(def), created(def), unauthorized()];
        ops.push(op);
    }
    if has("patch") {
        let mut op = ctx.op("patch", "patch", "patch", suffix, format!("partially update {what}"));
        op.gvk = gvk.clone();
        op.params = vec![dry_run(), field_manager(), field_validation(), force()];
        op.body = Some(Body { definition: PATCH.into(), content_types: ctx.patch_types });
        op.responses = vec![ok(def), created(def), unauthorized()];
        ops.push(op);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags_follow_upstream_shape() {
        assert_eq!(id_prefix("", "v1"), "CoreV1");
        assert_eq!(id_prefix("rbac.authorization.k8s.io", "v1"), "RbacAuthorizationV1");
        assert_eq!(tag("rbac.authorization.k8s.io", "v1"), "rbacAuthorization_v1");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(group_version_key("apps", "v1"), "apis/apps/v1");
        assert_eq!(group_version_key("", "v1"), "api/v1");
    }
}
