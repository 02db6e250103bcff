//! The two operations: a server-side apply, and the bookkeeping of an
//! ordinary write (create, update, patch).

use super::compare::compare;
use super::conflict::Conflict;
use super::fieldset::FieldSet;
use super::last_applied;
use super::managed::{self, Entry, APPLY, UPDATE};
use super::merge::merge;
use super::path::{path_string, values_equal};
use super::prune::prune;
use super::shape::Node;
use super::tofieldset::{field_set, strip_meta};
use super::{ApplyError, ApplyRequest};
use crate::schema::Definitions;
use serde_json::{Map, Value};

/// Metadata the server sets: kept from the live object when the merge
/// would drop them (a configuration saying `creationTimestamp: null`).
const SYSTEM_METADATA: &[&str] = &[
    "creationTimestamp",
    "uid",
    "generation",
    "selfLink",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Which top-level fields a write through an endpoint may touch.
#[derive(Clone, Copy)]
enum Scope {
    All,
    /// The main resource of a type with a status: everything but `status`.
    ExceptStatus,
    /// The `status` subresource: `status` (and metadata).
    Status,
}

impl Scope {
    fn of(root: Node<'_>, subresource: Option<&str>) -> Self {
        match subresource {
            Some("status") => Scope::Status,
            Some(_) => Scope::All,
            None if root.has_property("status") => Scope::ExceptStatus,
            None => Scope::All,
        }
    }

    fn keeps(self, field: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::ExceptStatus => field != "status",
            Scope::Status => matches!(field, "status" | "metadata" | "apiVersion" | "kind"),
        }
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

fn write_managed_fields(obj: &mut Value, entries: Vec<Entry>) {
    let encoded = managed::encode(entries);
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    if encoded.is_empty() {
        if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        return;
    }
    // replacing an existing key keeps its place, so an unchanged object serialises the same
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("managedFields".into(), Value::Array(encoded));
    }
}

/// `apps/v1, Kind=Deployment` (`/v1, Kind=Pod` for the core group), as Go prints a GVK.
fn gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// Server-side apply of `applied` onto `live` (`None`: the object does
/// not exist yet and is created from the configuration). Returns the new
/// object with `metadata.managedFields` updated; the caller still runs
/// defaulting, admission, validation and the store write on it.
///
/// When the manager is `kubectl` and the live object carries the
/// client-side `last-applied-configuration` annotation, conflicts on
/// fields that annotation still describes are taken over without
/// `force`, and the annotation is rewritten, as upstream does.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest<'_>,
    defs: &Definitions,
    schema: &Value,
) -> Result<Value, ApplyError> {
    let root = Node::of(defs, schema);
    let Value::Object(applied_map) = applied else {
        return Err(ApplyError::Invalid("the apply configuration must be a JSON object".into()));
    };
    if applied
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|mf| !mf.is_null())
    {
        return Err(ApplyError::Invalid("metadata.managedFields must be nil".into()));
    }
    let patch_version = applied.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if patch_version != req.api_version {
        return Err(ApplyError::Invalid(format!(
            "Incorrect version specified in apply patch. Specified patch version: {patch_version}, expected: {}",
            req.api_version
        )));
    }
    let scope = Scope::of(root, req.subresource);
    let mut config_map = applied_map.clone();
    config_map.retain(|k, _| scope.keeps(k));
    let config = Value::Object(config_map);

    // what the configuration sets: checked strictly, owned by the applier
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    let config_set = field_set(defs, root, &config, true).map_err(|e| {
        ApplyError::Invalid(format!("failed to create typed patch object ({}): {e}", gvk(req.api_version, kind)))
    })?;
    let mut applier_set = config_set.clone();
    strip_meta(&mut applier_set);

    let mut entries = match live.and_then(|l| l.get("metadata")).and_then(|m| m.get("managedFields")) {
        Some(mf) if !mf.is_null() => managed::decode(mf)
            .map_err(|e| ApplyError::Internal(format!("failed to decode managed fields: {e}")))?,
        _ => Vec::new(),
    };
    let empty = Value::Object(Map::new());
    let live_full = live.unwrap_or(&empty);
    let live_obj = without_managed_fields(live_full);
    let me = entries
        .iter()
        .position(|e| e.is(req.manager, APPLY, req.api_version, req.subresource));

    // the live managedFields ride along untouched (the configuration has none) and are replaced at the end
    let mut merged = merge(defs, root, Some(live_full), Some(&config)).unwrap_or_else(|| Value::Object(Map::new()));
    restore_system_metadata(&live_obj, &mut merged);
    if let Some(previous) = me.map(|i| &entries[i].set) {
        let mut owned = config_set.clone();
        for (i, e) in entries.iter().enumerate() {
            if Some(i) != me {
                owned.union_with(&e.set);
            }
        }
        prune(defs, root, &mut merged, previous, &owned);
    }

    let merged_obj = without_managed_fields(&merged);
    let diff = compare(defs, root, &live_obj, &merged_obj);
    let changed = diff.changed();
    let mut conflicts: Vec<(usize, FieldSet)> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != me)
        .map(|(i, e)| (i, e.set.intersection(&changed)))
        .filter(|(_, overlap)| !overlap.is_empty())
        .collect();
    if !conflicts.is_empty() && !req.force {
        let allowed = if req.manager == last_applied::KUBECTL {
            last_applied::allowed_conflicts(defs, root, &live_obj)
        } else {
            None
        };
        let blocking: Vec<(usize, FieldSet)> = match &allowed {
            Some(allowed) => conflicts
                .iter()
                .map(|(i, set)| (*i, set.difference(allowed)))
                .filter(|(_, set)| !set.is_empty())
                .collect(),
            None => std::mem::take(&mut conflicts),
        };
        if !blocking.is_empty() {
            return Err(ApplyError::Conflicts(describe_conflicts(&entries, &blocking)));
        }
    }
    for (i, taken) in &conflicts {
        entries[*i].set = entries[*i].set.difference(taken);
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != me {
            e.set = e.set.difference(&diff.removed);
        }
    }
    let object_changed = !values_equal(&live_obj, &merged_obj);
    match me {
        Some(i) => {
            let e = &mut entries[i];
            e.set = applier_set;
            e.api_version = req.api_version.to_string();
            if object_changed || e.time.is_none() {
                e.time = Some(req.now.to_string());
            }
        }
        None => entries.push(Entry {
            manager: req.manager.to_string(),
            operation: APPLY.into(),
            api_version: req.api_version.to_string(),
            time: Some(req.now.to_string()),
            subresource: req.subresource.map(String::from),
            set: applier_set,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    managed::cap_update_managers(&mut entries);
    if req.manager == last_applied::KUBECTL {
        last_applied::sync_annotation(&mut merged, applied);
    }
    write_managed_fields(&mut merged, entries);
    Ok(merged)
}

fn restore_system_metadata(live: &Value, merged: &mut Value) {
    let Some(live_meta) = live.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for field in SYSTEM_METADATA {
        if let (Some(v), false) = (live_meta.get(*field), meta.contains_key(*field)) {
            meta.insert((*field).to_string(), v.clone());
        }
    }
}

/// Conflicts grouped by manager (in identifier order), fields in set order.
fn describe_conflicts(entries: &[Entry], sets: &[(usize, FieldSet)]) -> Vec<Conflict> {
    let mut out: Vec<Conflict> = Vec::new();
    for (i, set) in sets {
        let Some(e) = entries.get(*i) else { continue };
        for path in set.path_elements() {
            out.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: path_string(&path),
            });
        }
    }
    out.sort_by_key(Conflict::identity);
    out
}

/// Record an ordinary write (create when `old` is `None`, update, patch)
/// in `new`'s `metadata.managedFields`: what changed from `old` becomes
/// owned by `(manager, Update, api_version, subresource)` and leaves
/// every other entry; what was removed leaves every entry; empty entries
/// go. Call it on the object as it will be stored (after the strategy
/// reset status or spec), before the store write.
///
/// `managedFields` sent by the client replace the stored ones when they
/// are valid and non-empty; `[]` or `[{}]` clears them (then only this
/// write is recorded); anything else keeps the stored ones. Writes to a
/// subresource always keep the stored ones.
#[allow(clippy::too_many_arguments)]
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    now: &str,
    defs: &Definitions,
    schema: &Value,
) -> Result<(), ApplyError> {
    if !new.is_object() {
        return Err(ApplyError::Invalid("the object must be a JSON object".into()));
    }
    let root = Node::of(defs, schema);
    let scope = Scope::of(root, subresource);
    let sent = new.get("metadata").and_then(|m| m.get("managedFields")).filter(|v| !v.is_null());
    let from_old = || {
        old.and_then(|o| o.get("metadata"))
            .and_then(|m| m.get("managedFields"))
            .filter(|v| !v.is_null())
            .and_then(|mf| managed::decode(mf).ok())
            .unwrap_or_default()
    };
    let mut entries = match (subresource, sent) {
        (None, Some(mf)) if managed::is_reset(mf) => Vec::new(),
        (None, Some(mf)) => match managed::decode(mf) {
            Ok(entries) if !entries.is_empty() => entries,
            _ => from_old(),
        },
        _ => from_old(),
    };
    let old_obj = old.map(without_managed_fields).unwrap_or_else(|| Value::Object(Map::new()));
    let new_obj = without_managed_fields(new);
    let mut diff = compare(defs, root, &old_obj, &new_obj);
    diff.retain_top_fields(|f| scope.keeps(f));
    let changed = diff.changed();
    for e in entries.iter_mut() {
        e.set = e.set.difference(&changed).difference(&diff.removed);
    }
    let mut current = changed;
    strip_meta(&mut current);
    if !current.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager, UPDATE, api_version, subresource)) {
            Some(e) => {
                e.set.union_with(&current);
                e.time = Some(now.to_string());
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: UPDATE.into(),
                api_version: api_version.to_string(),
                time: Some(now.to_string()),
                subresource: subresource.map(String::from),
                set: current,
            }),
        }
    }
    entries.retain(|e| !e.set.is_empty());
    managed::cap_update_managers(&mut entries);
    write_managed_fields(new, entries);
    Ok(())
}
