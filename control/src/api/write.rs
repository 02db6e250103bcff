//! The object lifecycle: get, create, update, patch, apply, delete.
//!
//! Every write takes the same path: decode → server-owned metadata →
//! defaulting → validation (field schema, then type-specific rules) →
//! managed fields → compare-and-swap in the store. Updates retry on a store
//! conflict only when the client did not pin a resourceVersion.

use super::list::decode_stored;
use super::object::{self, meta_mut};
use super::request::Query;
use super::status::{success_status, ApiError};
use super::{ApiServer, Call};
use crate::registry::{CustomInfo, Resource, ScalePaths};
use crate::store::{StoreError, Write};
use serde_json::{json, Value};

/// Read one object or 404.
pub async fn get(server: &ApiServer, res: &Resource, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
    let kv = server
        .store
        .get(&res.key(ns, name))
        .await?
        .ok_or_else(|| ApiError::not_found(&res.plural, &res.group, name))?;
    decode_stored(&kv).ok_or_else(|| ApiError::internal(format!("stored object {} is corrupt", kv.key)))
}

fn rv_of(obj: &Value) -> Option<&str> {
    object::meta_str(obj, "resourceVersion")
}

fn manager(query: &Query, user_agent: Option<&str>, default: &str) -> String {
    if let Some(m) = query.get("fieldManager") {
        return m.to_string();
    }
    user_agent
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| default.to_string())
}

/// Field validation: type errors are always fatal; unknown fields are an
/// error under `fieldValidation=Strict` (kubectl's default) and are
/// dropped, as decoding into the Go type does upstream, otherwise: with a
/// warning under Warn (the server default), silently under Ignore.
fn check_fields(server: &ApiServer, res: &Resource, obj: &mut Value, query: &Query) -> Result<(), ApiError> {
    let (strict, warn) = match query.get("fieldValidation") {
        None | Some("Warn") => (false, true),
        Some("Ignore") => (false, false),
        Some("Strict") => (true, false),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {v}. Valid values are \"Ignore\", \"Warn\", \"Strict\""
            )))
        }
    };
    let unknown = if let Some(custom) = &res.custom {
        let errors = crate::schema::validate::validate(obj, &custom.schema);
        if !errors.is_empty() {
            return Err(ApiError::invalid(&res.kind, &res.group, object::name(obj).unwrap_or(""), &errors));
        }
        crate::schema::prune::prune(obj, &custom.schema)
    } else {
        let openapi = server.openapi();
        let Some(schema) = openapi.schema_for(&res.definition) else { return Ok(()) };
        let errors = crate::schema::types::type_errors(obj, &openapi.defs, schema);
        if !errors.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {}",
                res.kind,
                res.version,
                res.kind,
                crate::field_error::aggregate(&errors)
            )));
        }
        crate::schema::strict::drop_unknown_fields(obj, &openapi.defs, schema)
    };
    if strict && !unknown.is_empty() {
        return Err(ApiError::bad_request(crate::schema::strict::strict_decoding_message(&unknown)));
    }
    if warn {
        for field in &unknown {
            super::warn(format!("unknown field {field:?}"));
        }
    }
    Ok(())
}

/// Custom resources: drop fields their schema does not have (also what the
/// server itself wrote) and apply the schema's defaults.
fn normalize(res: &Resource, obj: &mut Value) {
    // Go omits empty metadata lists: the last finalizer removed by a patch
    // leaves no `finalizers: []` behind.
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["finalizers", "ownerReferences"] {
            if meta.get(field).and_then(Value::as_array).is_some_and(|a| a.is_empty()) {
                meta.remove(field);
            }
        }
    }
    if let Some(custom) = &res.custom {
        crate::schema::prune::prune(obj, &custom.schema);
        crate::schema::defaults::apply_defaults(obj, &custom.schema);
    }
}

fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let errors = crate::admission::validate(&res.group, &res.kind, obj, old);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&res.kind, &res.group, object::name(obj).unwrap_or(""), &errors))
    }
}

fn track(server: &ApiServer, res: &Resource, old: Option<&Value>, new: &mut Value, manager: &str, sub: Option<&str>) -> Result<(), ApiError> {
    let openapi = server.openapi();
    let empty = json!({});
    let schema = match &res.custom {
        Some(c) => &c.schema,
        None => openapi.schema_for(&res.definition).unwrap_or(&empty),
    };
    crate::apply::track_update(old, new, manager, &res.api_version(), sub, &object::now(), &openapi.defs, schema)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The NamespaceLifecycle admission step of a create: the namespace must
/// exist and must not be terminating. `obj` names the object in the error
/// (its name, else its generateName, as upstream).
async fn check_namespace(server: &ApiServer, res: &Resource, ns: Option<&str>, obj: &Value) -> Result<(), ApiError> {
    let Some(ns) = ns else { return Ok(()) };
    if !res.namespaced {
        return Ok(());
    }
    let table = server.registry.table();
    let Some(nsres) = table.get("", "v1", "namespaces") else { return Ok(()) };
    match server.store.get(&nsres.key(None, ns)).await? {
        None => Err(ApiError::not_found("namespaces", "", ns)),
        Some(kv) => {
            let namespace = decode_stored(&kv).unwrap_or(Value::Null);
            if namespace.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
                Err(namespace_terminating(res, ns, obj))
            } else {
                Ok(())
            }
        }
    }
}

/// `configmaps "x" is forbidden: unable to create new content in namespace
/// ns because it is being terminated`, with the NamespaceTerminating cause.
fn namespace_terminating(res: &Resource, ns: &str, obj: &Value) -> ApiError {
    let name = object::name(obj).or_else(|| object::meta_str(obj, "generateName")).unwrap_or("Unknown");
    let mut e = ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
        super::status::qualified(&res.plural, &res.group)
    ));
    let mut details = json!({"name": name, "kind": res.plural, "causes": [{
        "reason": "NamespaceTerminating",
        "message": format!("namespace {ns} is being terminated"),
        "field": "metadata.namespace",
    }]});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    e.details = Some(details);
    e
}

/// Set apiVersion/kind, reject mismatches.
fn check_type(res: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "the kind \"{kind}\" in the request body does not match the resource \"{}\" (kind \"{}\") of the URL",
            res.plural, res.kind
        )));
    }
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !api_version.is_empty() && api_version != res.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    obj["kind"] = json!(res.kind);
    obj["apiVersion"] = json!(res.api_version());
    Ok(())
}

fn check_namespace_match(res: &Resource, obj: &mut Value, ns: Option<&str>) -> Result<(), ApiError> {
    let m = meta_mut(obj);
    if res.namespaced {
        let body_ns = m.get("namespace").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        match (body_ns, ns) {
            (Some(b), Some(u)) if b != u => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            (_, Some(u)) => {
                m.insert("namespace".into(), json!(u));
            }
            (_, None) => return Err(ApiError::bad_request("a namespace must be given for a namespaced resource")),
        }
    } else {
        m.remove("namespace");
    }
    Ok(())
}

fn tracks_generation(res: &Resource) -> bool {
    res.status || res.custom.is_some()
}

/// Status the server sets on create for types whose status it owns.
fn initial_status(res: &Resource, obj: &mut Value) {
    if !res.status {
        return;
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
    // (A Namespace's phase and `kubernetes` finalizer come from its defaults.)
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => obj["status"] = json!({"phase": "Pending"}),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd_status(obj),
        _ => {}
    }
}

pub async fn create(server: &ApiServer, res: &Resource, ns: Option<&str>, mut obj: Value, query: &Query) -> Result<Value, ApiError> {
    check_type(res, &mut obj)?;
    check_namespace_match(res, &mut obj, ns)?;
    check_fields(server, res, &mut obj, query)?;
    check_namespace(server, res, ns, &obj).await?;
    if rv_of(&obj).is_some() {
        return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
    }
    {
        let m = meta_mut(&mut obj);
        let has_name = m.get("name").and_then(Value::as_str).map(|s| !s.is_empty()).unwrap_or(false);
        if !has_name {
            if let Some(prefix) = m.get("generateName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                let name = format!("{prefix}{}", object::random_suffix());
                m.insert("name".into(), json!(name));
            }
        }
    }
    let mgr = manager(query, None, "unknown");
    admit_new(server, res, ns, obj, Some(&mgr), query.dry_run()?).await
}

/// The part of every create after the request checks: server-owned
/// metadata, initial status, defaulting, validation, managed fields (unless
/// server-side apply already set them: `manager` None), then the store.
async fn admit_new(server: &ApiServer, res: &Resource, ns: Option<&str>, mut obj: Value, manager: Option<&str>, dry_run: bool) -> Result<Value, ApiError> {
    {
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(object::now()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("resourceVersion");
        if tracks_generation(res) {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    initial_status(res, &mut obj);
    normalize(res, &mut obj);
    super::plugins::on_create(server, res, &mut obj).await?;
    crate::admission::default(&res.group, &res.kind, &mut obj);
    validate(res, &obj, None)?;
    if let Some(mgr) = manager {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if m.get("managedFields").and_then(Value::as_array).map(|a| a.is_empty()).unwrap_or(false) {
                m.remove("managedFields");
            }
        }
        track(server, res, None, &mut obj, mgr, None)?;
    }
    let allocated = server.services.on_create(res, &mut obj)?;
    let created = store_create(server, res, ns, obj, dry_run).await?;
    if let (false, Some(txn)) = (dry_run, allocated) {
        txn.commit();
    }
    Ok(created)
}

async fn store_create(server: &ApiServer, res: &Resource, ns: Option<&str>, obj: Value, dry_run: bool) -> Result<Value, ApiError> {
    let name = object::name(&obj).unwrap_or("").to_string();
    if dry_run {
        if server.store.get(&res.key(ns, &name)).await?.is_some() {
            return Err(ApiError::already_exists(&res.plural, &res.group, &name));
        }
        return Ok(obj);
    }
    let bytes = super::list::encode_stored(&obj)?;
    match server.store.write(Write::Create { key: res.key(ns, &name), value: bytes }).await {
        Ok(kv) => {
            after_write(server, res).await;
            decode_stored(&kv).ok_or_else(|| ApiError::internal("stored object is corrupt"))
        }
        Err(StoreError::AlreadyExists(_)) => Err(ApiError::already_exists(&res.plural, &res.group, &name)),
        Err(e) => Err(e.into()),
    }
}

async fn after_write(server: &ApiServer, res: &Resource) {
    if res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition" {
        if let Err(e) = server.refresh_crds().await {
            tracing::warn!(error = %e.message, "reloading custom resource definitions failed");
        }
    }
}

/// What changes when a client writes `new` over `old` through `sub`.
fn prepare_update(res: &Resource, sub: Option<&str>, old: &Value, mut new: Value) -> Value {
    new["kind"] = json!(res.kind);
    new["apiVersion"] = json!(res.api_version());
    if sub == Some("status") {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(s) => merged["status"] = s,
            None => {
                if let Some(o) = merged.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        // Clients may still move their own metadata bookkeeping.
        if let Some(mf) = object::meta(&new).and_then(|m| m.get("managedFields")).cloned() {
            meta_mut(&mut merged).insert("managedFields".into(), mf);
        }
        return merged;
    }
    {
        let old_meta = object::meta(old).cloned().unwrap_or_default();
        let m = meta_mut(&mut new);
        for k in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name"] {
            match old_meta.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
    }
    // A binding sets the pod's PodScheduled condition along with its node.
    if res.status && sub != Some("binding") {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if res.group == "apiextensions.k8s.io" {
            crd_status(&mut new);
        }
    }
    if res.group.is_empty() && res.kind == "Namespace" && sub != Some("finalize") {
        // A namespace's spec.finalizers only change through `finalize`.
        match old.pointer("/spec/finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }
    if tracks_generation(res) && object::spec_part(old) != object::spec_part(&new) {
        let g = object::meta(old).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    new
}

type PatchFn = Box<dyn Fn(&Value) -> Result<Value, ApiError> + Send + Sync>;
type ApplyFn = Box<dyn Fn(Option<&Value>) -> Result<Value, ApiError> + Send + Sync>;

pub enum Change {
    /// Replace with this object (client rv is checked).
    Replace(Value),
    /// Derive the new object from the current one.
    Patch(PatchFn),
    /// Server-side apply: the result carries its own managed fields.
    Apply(ApplyFn),
}

/// The shared update path of PUT and PATCH (and apply on an existing object).
#[allow(clippy::too_many_arguments)]
pub async fn update(server: &ApiServer, res: &Resource, ns: Option<&str>, name: &str, sub: Option<&str>, change: &Change, mgr: &str, query: &Query) -> Result<(u16, Value), ApiError> {
    let dry_run = query.dry_run()?;
    for _attempt in 0..16 {
        let current = match get(server, res, ns, name).await {
            Ok(c) => c,
            Err(e) if e.code == 404 => {
                if let Change::Apply(f) = change {
                    let mut obj = f(None)?;
                    check_namespace_match(res, &mut obj, ns)?;
                    check_type(res, &mut obj)?;
                    check_namespace(server, res, ns, &obj).await?;
                    let created = admit_new(server, res, ns, obj, None, dry_run).await?;
                    return Ok((201, created));
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let current_rv = rv_of(&current).unwrap_or("").to_string();
        let (mut new, pinned) = match change {
            Change::Replace(body) => {
                let pinned = rv_of(body).map(str::to_string);
                (body.clone(), pinned)
            }
            Change::Patch(f) => {
                let patched = f(&current)?;
                let pinned = rv_of(&patched).filter(|rv| *rv != current_rv).map(str::to_string);
                (patched, pinned)
            }
            Change::Apply(f) => (f(Some(&current))?, None),
        };
        if let Some(rv) = &pinned {
            if *rv != current_rv {
                return Err(ApiError::modified(&res.plural, &res.group, name));
            }
        }
        if object::name(&new).map(|n| n != name).unwrap_or(false) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                object::name(&new).unwrap_or("")
            )));
        }
        check_namespace_match(res, &mut new, ns).or_else(|e| if res.namespaced { Err(e) } else { Ok(()) })?;
        if !matches!(change, Change::Apply(_)) {
            check_fields(server, res, &mut new, query)?;
        }
        let mut new = prepare_update(res, sub, &current, new);
        normalize(res, &mut new);
        super::plugins::on_update(server, res, sub, &current, &mut new).await?;
        crate::admission::default(&res.group, &res.kind, &mut new);
        super::services::prepare_update(res, &current, &mut new);
        // A binding only sets spec.nodeName (which pod updates may not
        // change) and a condition; it is not a field manager's write.
        if sub != Some("binding") {
            validate(res, &new, Some(&current))?;
            if !matches!(change, Change::Apply(_)) {
                track(server, res, Some(&current), &mut new, mgr, sub)?;
            }
        }
        meta_mut(&mut new).insert("resourceVersion".into(), json!(current_rv));
        let allocated = server.services.on_update(res, &mut new)?;
        if object::comparable(&new) == object::comparable(&current) && managed_same(&new, &current) {
            return Ok((200, current));
        }
        if dry_run {
            return Ok((200, new));
        }
        // Last finalizer gone from an object being deleted: it goes now;
        // but a pod in graceful deletion waits for its kubelet's final
        // delete (grace 0), whatever updates its status meanwhile.
        let pod_grace_left = res.plural == "pods"
            && res.group.is_empty()
            && new.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) > 0;
        if object::deleting(&new) && object::finalizers(&new).is_empty() && !namespace_finalizers_left(res, &new) && !pod_grace_left {
            let expected = current_rv.parse().ok();
            match server.store.write(Write::Delete { key: res.key(ns, name), expected }).await {
                Ok(_) => {
                    after_write(server, res).await;
                    server.services.on_deleted(res, &current);
                    return Ok((200, new));
                }
                Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                Err(StoreError::Conflict { .. }) => return Err(ApiError::modified(&res.plural, &res.group, name)),
                Err(e) => return Err(e.into()),
            }
        }
        let bytes = super::list::encode_stored(&new)?;
        let expected = current_rv.parse().ok();
        match server.store.write(Write::Update { key: res.key(ns, name), value: bytes, expected }).await {
            Ok(kv) => {
                if let Some(txn) = allocated {
                    txn.commit();
                }
                after_write(server, res).await;
                return Ok((200, decode_stored(&kv).ok_or_else(|| ApiError::internal("stored object is corrupt"))?));
            }
            Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
            Err(StoreError::Conflict { .. }) => return Err(ApiError::modified(&res.plural, &res.group, name)),
            Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(&res.plural, &res.group, name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(&res.plural, &res.group, name, "too many concurrent writers; try again"))
}

fn managed_same(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut mf = object::meta(v).and_then(|m| m.get("managedFields")).cloned().unwrap_or(Value::Null);
        if let Some(arr) = mf.as_array_mut() {
            for e in arr {
                if let Some(o) = e.as_object_mut() {
                    o.remove("time");
                }
            }
        }
        mf
    };
    strip(a) == strip(b)
}

fn namespace_finalizers_left(res: &Resource, obj: &Value) -> bool {
    res.group.is_empty()
        && res.kind == "Namespace"
        && obj.pointer("/spec/finalizers").and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false)
}

#[allow(clippy::too_many_arguments)]
pub async fn replace(server: &ApiServer, res: &Resource, ns: Option<&str>, name: &str, sub: Option<&str>, mut obj: Value, query: &Query) -> Result<(u16, Value), ApiError> {
    let mgr = manager(query, None, "unknown");
    if sub == Some("scale") {
        return scale_update(server, res, ns, name, &mgr, query, move |_| Ok(obj.clone())).await;
    }
    if !matches!(sub, None | Some("status") | Some("finalize")) {
        return Err(ApiError::method_not_allowed(format!("{}/{} does not support update", res.plural, sub.unwrap_or(""))));
    }
    check_type(res, &mut obj)?;
    update(server, res, ns, name, sub, &Change::Replace(obj), &mgr, query).await
}

pub async fn patch(server: &ApiServer, res: &Resource, ns: Option<&str>, name: &str, sub: Option<&str>, call: &Call) -> Result<(u16, Value), ApiError> {
    let ct = call.content_type.as_deref().unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
    let openapi = server.openapi();
    let schema = match &res.custom {
        Some(c) => c.schema.clone(),
        None => openapi.schema_for(&res.definition).cloned().unwrap_or(json!({})),
    };
    let defs = openapi.defs.clone();
    let query = &call.query;
    if ct == "application/apply-patch+yaml" {
        let applied = super::codec::decode(Some("application/yaml"), &call.body)?;
        let mgr = query.get("fieldManager").map(str::to_string).ok_or_else(|| {
            ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
        })?;
        let force = query.flag("force");
        let api_version = res.api_version();
        let sub_owned = sub.map(str::to_string);
        let res_kind = res.kind.clone();
        let group = res.group.clone();
        let mut applied_checked = applied.clone();
        check_type(res, &mut applied_checked)?;
        check_fields(server, res, &mut applied_checked, query)?;
        let name_owned = name.to_string();
        let f = move |live: Option<&Value>| -> Result<Value, ApiError> {
            let req = crate::apply::ApplyRequest {
                manager: &mgr,
                force,
                api_version: &api_version,
                subresource: sub_owned.as_deref(),
                now: &object::now(),
            };
            crate::apply::apply(live, &applied_checked, &req, &defs, &schema).map_err(|e| match e {
                crate::apply::ApplyError::Conflicts(_) => {
                    let mut err = ApiError::new(409, "Conflict", e.to_string());
                    err.details = Some(json!({"name": name_owned, "group": group, "kind": res_kind}));
                    err
                }
                other => ApiError::bad_request(other.to_string()),
            })
        };
        return update(server, res, ns, name, sub, &Change::Apply(Box::new(f)), "", query).await;
    }
    let patch_body = super::codec::decode_json(&call.body)?;
    let mgr = manager(query, call.user_agent.as_deref(), "unknown");
    let kind = ct.clone();
    if kind == "application/strategic-merge-patch+json" && res.custom.is_some() {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let apply_patch = move |current: &Value| -> Result<Value, ApiError> {
        let bad = |e: crate::patch::PatchError| ApiError::new(422, "Invalid", e.to_string());
        match kind.as_str() {
            "application/json-patch+json" => crate::patch::json_patch(current, &patch_body).map_err(bad),
            "application/merge-patch+json" => {
                if !patch_body.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                Ok(crate::patch::merge_patch(current, &patch_body))
            }
            "application/strategic-merge-patch+json" => crate::patch::strategic_merge_patch(current, &patch_body, &defs, &schema).map_err(bad),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format ({other:?}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
            ))),
        }
    };
    if sub == Some("scale") {
        let scale_res = res.clone();
        return scale_update(server, res, ns, name, &mgr, query, move |current_obj| {
            let scale = to_scale(&scale_res, current_obj)?;
            apply_patch(&scale)
        })
        .await;
    }
    update(server, res, ns, name, sub, &Change::Patch(Box::new(apply_patch)), &mgr, query).await
}

fn get_path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.trim_start_matches('.').split('.').try_fold(obj, |v, k| v.get(k))
}

fn set_path(obj: &mut Value, dotted: &str, value: Value) {
    let parts: Vec<&str> = dotted.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i == parts.len() - 1 {
            cur[*p] = value;
            return;
        }
        if cur.get(*p).is_none() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
}

/// The autoscaling/v1 Scale view of an object.
pub fn to_scale(res: &Resource, obj: &Value) -> Result<Value, ApiError> {
    let paths = res.scale.clone().ok_or_else(|| ApiError::not_found(&format!("{}/scale", res.plural), &res.group, ""))?;
    let spec = get_path(obj, &paths.spec_replicas).cloned().unwrap_or(json!(0));
    let status = get_path(obj, &paths.status_replicas).cloned().unwrap_or(json!(0));
    let mut selector = paths.label_selector.as_ref().and_then(|p| get_path(obj, p)).cloned();
    if res.custom.is_none() {
        // Built-ins: the selector string derives from spec.selector.
        selector = obj.pointer("/spec/selector").and_then(|s| crate::selector::LabelSelector::from_json(s).ok()).map(|s| json!(s.to_string()));
    }
    let m = object::meta(obj).cloned().unwrap_or_default();
    let mut meta = json!({});
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = m.get(k) {
            meta[k] = v.clone();
        }
    }
    let mut out = json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta, "spec": {"replicas": spec}, "status": {"replicas": status}});
    if let Some(s) = selector {
        out["status"]["selector"] = s;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn scale_update(
    server: &ApiServer,
    res: &Resource,
    ns: Option<&str>,
    name: &str,
    mgr: &str,
    query: &Query,
    new_scale: impl Fn(&Value) -> Result<Value, ApiError> + Send + Sync + 'static,
) -> Result<(u16, Value), ApiError> {
    let paths: ScalePaths = res.scale.clone().ok_or_else(|| ApiError::not_found(&res.plural, &res.group, name))?;
    let scale_res = res.clone();
    let f = move |current: &Value| -> Result<Value, ApiError> {
        let scale = new_scale(current)?;
        let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        if !replicas.as_i64().map(|r| r >= 0).unwrap_or(false) {
            return Err(ApiError::invalid("Scale", "autoscaling", object::name(current).unwrap_or(""), &[
                crate::field_error::FieldError::invalid("spec.replicas", replicas, "must be greater than or equal to 0"),
            ]));
        }
        if let Some(rv) = rv_of(&scale) {
            if Some(rv) != rv_of(current) {
                return Err(ApiError::modified(&scale_res.plural, &scale_res.group, object::name(current).unwrap_or("")));
            }
        }
        let mut out = current.clone();
        set_path(&mut out, &paths.spec_replicas, replicas);
        Ok(out)
    };
    let (code, obj) = update(server, res, ns, name, None, &Change::Patch(Box::new(f)), mgr, query).await?;
    Ok((code, to_scale(res, &obj)?))
}

/// POST to a subresource of a named object (binding, eviction, ...).
#[allow(clippy::too_many_arguments)]
pub async fn create_subresource(server: &ApiServer, res: &Resource, ns: Option<&str>, name: &str, sub: Option<&str>, body: Value, query: &Query) -> Result<(u16, Value), ApiError> {
    match (res.kind.as_str(), sub) {
        ("Pod", Some("binding")) => {
            let node = body.pointer("/target/name").and_then(Value::as_str).unwrap_or("").to_string();
            if node.is_empty() {
                return Err(ApiError::invalid("Binding", "", name, &[crate::field_error::FieldError::required("target.name", "")]));
            }
            let pod_name = name.to_string();
            let f = move |current: &Value| -> Result<Value, ApiError> {
                if let Some(existing) = current.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    return Err(ApiError::conflict("pods/binding", "", &pod_name, &format!("pod {pod_name} is already assigned to node \"{existing}\"")));
                }
                if object::deleting(current) {
                    return Err(ApiError::conflict("pods/binding", "", &pod_name, "pod is being deleted, cannot be assigned to a host"));
                }
                let mut out = current.clone();
                out["spec"]["nodeName"] = json!(node);
                let scheduled = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": object::now()});
                if !out["status"].is_object() {
                    out["status"] = json!({});
                }
                let conditions = &mut out["status"]["conditions"];
                match conditions.as_array_mut() {
                    Some(list) => match list.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled")) {
                        Some(c) => *c = scheduled,
                        None => list.push(scheduled),
                    },
                    None => *conditions = json!([scheduled]),
                }
                Ok(out)
            };
            let mgr = manager(query, None, "default-scheduler");
            update(server, res, ns, name, Some("binding"), &Change::Patch(Box::new(f)), &mgr, query).await?;
            Ok((201, success_status(name, "", "pods", None)))
        }
        ("Pod", Some("eviction")) => {
            let opts = body.get("deleteOptions").cloned().unwrap_or(json!({}));
            delete(server, res, ns, name, opts, query).await?;
            Ok((201, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({}/{})",
            res.plural,
            sub.unwrap_or("")
        ))),
    }
}

pub async fn delete(server: &ApiServer, res: &Resource, ns: Option<&str>, name: &str, opts: Value, query: &Query) -> Result<(u16, Value), ApiError> {
    let dry_run = query.dry_run()? || opts.get("dryRun").and_then(Value::as_array).map(|a| a.iter().any(|v| v == "All")).unwrap_or(false);
    let grace = query.int("gracePeriodSeconds")?.or_else(|| opts.get("gracePeriodSeconds").and_then(Value::as_i64));
    let policy = query
        .get("propagationPolicy")
        .map(str::to_string)
        .or_else(|| opts.get("propagationPolicy").and_then(Value::as_str).map(str::to_string));
    let orphan_flag = match query.get("orphanDependents") {
        Some(v) => Some(v == "true"),
        None => opts.get("orphanDependents").and_then(Value::as_bool),
    };
    if let Some(p) = &policy {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            )));
        }
        if orphan_flag.is_some() {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"{p}\": orphanDependents and deletionPropagation cannot be both set"
            )));
        }
    }
    let is_namespace = res.group.is_empty() && res.kind == "Namespace";
    if is_namespace && IMMORTAL_NAMESPACES.contains(&name) {
        let mut e = ApiError::forbidden(format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"));
        e.details = Some(json!({"name": name, "kind": "namespaces"}));
        return Err(e);
    }
    let default_orphan = orphan_by_default(res);
    if default_orphan && policy.is_none() && orphan_flag.is_none() && res.kind == "Job" {
        super::warn(JOB_ORPHAN_WARNING.to_string());
    }
    super::plugins::on_delete(res, name)?;
    for _ in 0..16 {
        let current = get(server, res, ns, name).await?;
        if let Some(pre_uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
            let actual = object::uid(&current).unwrap_or("");
            if pre_uid != actual {
                return Err(ApiError::conflict(&res.plural, &res.group, name, &format!(
                    "Precondition failed: UID in precondition: {pre_uid}, UID in object meta: {actual}"
                )));
            }
        }
        let current_rv = rv_of(&current).unwrap_or("").to_string();
        if let Some(pre_rv) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str) {
            if pre_rv != current_rv {
                return Err(ApiError::conflict(&res.plural, &res.group, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {pre_rv}, ResourceVersion in object meta: {current_rv}"
                )));
            }
        }
        // A terminating namespace goes only once its spec.finalizers are done.
        if is_namespace && object::deleting(&current) && namespace_finalizers_left(res, &current) {
            return Ok((200, current));
        }
        let is_pod = res.group.is_empty() && res.kind == "Pod";
        // A pod whose graceful deletion is under way keeps its finalizers.
        let finalizers = if is_pod && object::deleting(&current) {
            object::finalizers(&current)
        } else {
            gc_finalizers(&object::finalizers(&current), orphan_flag, policy.as_deref(), default_orphan)
        };
        // Graceful deletion: a pod on a node is stopped by its kubelet first.
        let pod_grace = if is_pod {
            let on_node = current.pointer("/spec/nodeName").and_then(Value::as_str).map(|s| !s.is_empty()).unwrap_or(false);
            let finished = matches!(current.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded") | Some("Failed"));
            let g = grace.or_else(|| current.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64)).unwrap_or(30);
            (on_node && !finished && g > 0).then_some(g)
        } else {
            None
        };
        let namespace_fin = is_namespace && !object::deleting(&current);
        let keep = !finalizers.is_empty() || pod_grace.is_some() || namespace_fin;
        let expected = current_rv.parse().ok();
        if keep {
            if object::deleting(&current) && pod_grace.is_none() && finalizers == object::finalizers(&current) {
                return Ok((200, current));
            }
            let mut next = current.clone();
            let m = meta_mut(&mut next);
            if !m.contains_key("deletionTimestamp") || m.get("deletionTimestamp").map(Value::is_null).unwrap_or(true) {
                let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(pod_grace.unwrap_or(0));
                m.insert("deletionTimestamp".into(), json!(object::format_time(when)));
            }
            m.insert("deletionGracePeriodSeconds".into(), json!(pod_grace.unwrap_or(0)));
            m.insert("finalizers".into(), json!(finalizers));
            if finalizers.is_empty() {
                m.remove("finalizers");
            }
            m.remove("resourceVersion");
            if namespace_fin {
                next["status"]["phase"] = json!("Terminating");
            }
            if dry_run {
                return Ok((200, next));
            }
            let bytes = super::list::encode_stored(&next)?;
            match server.store.write(Write::Update { key: res.key(ns, name), value: bytes, expected }).await {
                Ok(kv) => return Ok((200, decode_stored(&kv).unwrap_or(next))),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(&res.plural, &res.group, name)),
                Err(e) => return Err(e.into()),
            }
        }
        if dry_run {
            return Ok((200, success_status(name, &res.group, &res.plural, object::uid(&current))));
        }
        if res.group == "apiextensions.k8s.io" && res.kind == "CustomResourceDefinition" {
            delete_custom_objects(server, &current).await?;
        }
        match server.store.write(Write::Delete { key: res.key(ns, name), expected }).await {
            Ok(_) => {
                after_write(server, res).await;
                server.services.on_deleted(res, &current);
                return Ok((200, success_status(name, &res.group, &res.plural, object::uid(&current))));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(&res.plural, &res.group, name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(&res.plural, &res.group, name, "too many concurrent writers; try again"))
}

/// Namespaces the NamespaceLifecycle admission never lets go.
const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

const JOB_ORPHAN_WARNING: &str = "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning";

/// Whether dependents are orphaned when a delete names no propagation
/// policy: upstream keeps Orphan for batch/v1 Jobs and the legacy workload
/// group versions; everything else is collected in the background.
fn orphan_by_default(res: &Resource) -> bool {
    matches!(
        (res.group.as_str(), res.version.as_str(), res.kind.as_str()),
        ("extensions", "v1beta1", "ReplicaSet" | "ReplicationController" | "DaemonSet" | "Deployment")
            | ("apps", "v1beta1", "Deployment" | "StatefulSet")
            | ("apps", "v1beta2", "ReplicaSet" | "DaemonSet" | "Deployment" | "StatefulSet")
            | ("batch", "v1", "Job")
            | ("batch", "v1beta1", "CronJob")
    )
}

/// The finalizers an object keeps when it is deleted: the garbage
/// collector's `orphan` / `foregroundDeletion` follow the request's
/// `orphanDependents`, else its propagationPolicy, else the one already on
/// the object, else the type's default. Unchanged (same set) when nothing
/// changes, so a repeated delete is a no-op.
fn gc_finalizers(current: &[String], orphan_flag: Option<bool>, policy: Option<&str>, default_orphan: bool) -> Vec<String> {
    let existing = current.iter().find_map(|f| match f.as_str() {
        "orphan" => Some(true),
        "foregroundDeletion" => Some(false),
        _ => None,
    });
    let (orphan, foreground) = match (orphan_flag, policy) {
        (Some(o), _) => (o, false),
        (None, Some(p)) => (p == "Orphan", p == "Foreground"),
        (None, None) => match existing {
            Some(o) => (o, !o),
            None => (default_orphan, false),
        },
    };
    let mut out: Vec<String> = current.iter().filter(|f| *f != "orphan" && *f != "foregroundDeletion").cloned().collect();
    if orphan {
        out.push("orphan".into());
    }
    if foreground {
        out.push("foregroundDeletion".into());
    }
    let same = out.len() == current.len() && out.iter().all(|f| current.contains(f));
    if same {
        current.to_vec()
    } else {
        out
    }
}

pub async fn delete_collection(server: &ApiServer, res: &Resource, ns: Option<&str>, opts: Value, query: &Query) -> Result<Value, ApiError> {
    let listed = super::list::list(server, res, ns, query).await?;
    let mut deleted = Vec::new();
    for obj in listed.items {
        let name = object::name(&obj).unwrap_or("").to_string();
        let obj_ns = object::namespace(&obj).map(str::to_string);
        match delete(server, res, obj_ns.as_deref(), &name, opts.clone(), query).await {
            Ok(_) => deleted.push(obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": {}, "items": deleted}))
}

// ---- CustomResourceDefinitions -------------------------------------------

fn crd_status(crd: &mut Value) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let now = object::now();
    let versions: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false)).filter_map(|v| v.get("name").cloned()).collect())
        .unwrap_or_default();
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": versions,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
}

/// The served resources a CRD defines.
pub fn crd_resources(crd: &Value) -> Vec<Resource> {
    let Some(spec) = crd.get("spec") else { return Vec::new() };
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("").to_string();
    let names = spec.get("names").cloned().unwrap_or(json!({}));
    let s = |k: &str| names.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let list = |k: &str| -> Vec<String> {
        names.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let kind = s("kind");
    let crd_name = object::name(crd).unwrap_or("").to_string();
    let mut out = Vec::new();
    for v in spec.get("versions").and_then(Value::as_array).into_iter().flatten() {
        if !v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            continue;
        }
        let version = v.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let schema = v.pointer("/schema/openAPIV3Schema").cloned().unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        let scale = v.pointer("/subresources/scale").map(|sc| ScalePaths {
            spec_replicas: sc.get("specReplicasPath").and_then(Value::as_str).unwrap_or(".spec.replicas").trim_start_matches('.').to_string(),
            status_replicas: sc.get("statusReplicasPath").and_then(Value::as_str).unwrap_or(".status.replicas").trim_start_matches('.').to_string(),
            label_selector: sc.get("labelSelectorPath").and_then(Value::as_str).map(|p| p.trim_start_matches('.').to_string()),
        });
        out.push(Resource {
            group: group.clone(),
            version: version.clone(),
            kind: kind.clone(),
            plural: s("plural"),
            singular: if s("singular").is_empty() { kind.to_lowercase() } else { s("singular") },
            namespaced,
            short_names: list("shortNames"),
            categories: list("categories"),
            verbs: crate::registry::ALL_VERBS.to_vec(),
            status: v.pointer("/subresources/status").is_some(),
            scale,
            extra_subresources: Vec::new(),
            definition: crate::openapi::crd_definition_name(&group, &version, &kind),
            schema_fn: None,
            stored: true,
            custom: Some(CustomInfo {
                schema,
                printer_columns: v.get("additionalPrinterColumns").and_then(Value::as_array).cloned().unwrap_or_default(),
                crd_name: crd_name.clone(),
                storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
            }),
        });
    }
    out
}

async fn delete_custom_objects(server: &ApiServer, crd: &Value) -> Result<(), ApiError> {
    let Some(res) = crd_resources(crd).into_iter().next() else { return Ok(()) };
    let listed = server.store.list(&res.key_prefix(), None, None).await?;
    for kv in listed.items {
        match server.store.write(Write::Delete { key: kv.key.clone(), expected: None }).await {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod gc_tests {
    use super::{gc_finalizers, namespace_terminating};
    use serde_json::json;

    #[test]
    fn terminating_namespace_refusal_names_the_object_and_the_cause() {
        let registry = crate::registry::Registry::new();
        let table = registry.table();
        let Some(res) = table.get("apps", "v1", "deployments") else { panic!("deployments are served") };
        let e = namespace_terminating(&res, "team", &json!({"metadata": {"generateName": "web-"}}));
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(e.message, "deployments.apps \"web-\" is forbidden: unable to create new content in namespace team because it is being terminated");
        assert_eq!(
            e.details,
            Some(json!({"name": "web-", "group": "apps", "kind": "deployments", "causes": [
                {"reason": "NamespaceTerminating", "message": "namespace team is being terminated", "field": "metadata.namespace"}]}))
        );
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn propagation_decides_the_gc_finalizers() {
        assert_eq!(gc_finalizers(&[], None, Some("Background"), false), v(&[]));
        assert_eq!(gc_finalizers(&[], None, Some("Foreground"), false), v(&["foregroundDeletion"]));
        assert_eq!(gc_finalizers(&[], None, Some("Orphan"), false), v(&["orphan"]));
        assert_eq!(gc_finalizers(&[], Some(true), None, false), v(&["orphan"]));
        assert_eq!(gc_finalizers(&v(&["orphan"]), Some(false), None, true), v(&[]));
        // The default applies only when neither the request nor the object says.
        assert_eq!(gc_finalizers(&[], None, None, true), v(&["orphan"]));
        assert_eq!(gc_finalizers(&[], None, None, false), v(&[]));
        assert_eq!(gc_finalizers(&v(&["foregroundDeletion"]), None, None, true), v(&["foregroundDeletion"]));
        // A later delete switches the policy; other finalizers stay.
        assert_eq!(gc_finalizers(&v(&["a/b", "foregroundDeletion"]), None, Some("Orphan"), false), v(&["a/b", "orphan"]));
        assert_eq!(gc_finalizers(&v(&["a/b", "orphan"]), None, Some("Background"), false), v(&["a/b"]));
        // Same set: order kept.
        assert_eq!(gc_finalizers(&v(&["orphan", "a/b"]), None, Some("Orphan"), false), v(&["orphan", "a/b"]));
    }
}
