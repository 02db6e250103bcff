//! Server-side apply and `metadata.managedFields` tracking.
//!
//! Owns: merging an apply configuration into the live object the way
//! structured-merge-diff does (maps by key, associative lists by their
//! keys or values, atomic values replaced, fields the applier dropped
//! removed unless someone else owns them), apply conflicts and their
//! upstream wording, and the bookkeeping of who owns which field for
//! every write (`Apply` and `Update` entries in `metadata.managedFields`,
//! with the `fieldsV1` format byte for byte).
//!
//! Must not: read or write the store, check permissions, validate,
//! default, or run admission; check `resourceVersion` preconditions; set
//! `uid`, `creationTimestamp` or `generation`. The caller does those
//! around [`apply`] and [`track_update`].
//!
//! Shapes come from the type's schema (see [`crate::schema`]): a list is
//! keyed by `x-kubernetes-list-type: map` + `x-kubernetes-list-map-keys`,
//! or else by `x-kubernetes-patch-strategy: merge` +
//! `x-kubernetes-patch-merge-key`; it is a set with `x-kubernetes-list-type:
//! set` or a merge strategy over scalars; otherwise atomic. Maps are
//! granular unless `x-kubernetes-map-type: atomic`. Without a schema,
//! objects are granular maps and lists are atomic.
//!
//! As upstream, managed fields never list `apiVersion`, `kind`, the
//! `metadata` node itself, `metadata.name`, `namespace`,
//! `creationTimestamp`, `selfLink`, `uid`, `clusterName`, `generation`,
//! `managedFields` or `resourceVersion`. For a type whose schema has a
//! `status` property, writes to the main resource neither apply nor
//! record `status`; writes to the `status` subresource only apply and
//! record `status` and `metadata`.
//!
//! `managedFields` entries are written `Apply` first, then `Update`, each
//! oldest first (ties by manager, apiVersion, subresource), as upstream
//! sorts them; more than ten `Update` entries are folded, oldest first,
//! into `ancient-changes`.

mod compare;
mod conflict;
mod fieldset;
mod last_applied;
mod managed;
mod merge;
mod operation;
mod path;
mod prune;
mod shape;
mod tofieldset;

#[cfg(test)]
mod tests;

pub use conflict::Conflict;
pub use fieldset::FieldSet;
pub use path::PathElement;

use crate::schema::Definitions;
use serde_json::Value;

/// Why an apply (or the bookkeeping of a write) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Fields other managers own would change; HTTP 409 with reason
    /// `Conflict` and one `causes[]` entry per conflict (type `conflict`,
    /// message [`Conflict::message`], field [`Conflict::field`]).
    #[error("{}", conflict::conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The apply configuration is unusable (not an object, an associative
    /// list item without its key, a repeated key, managedFields set, wrong
    /// apiVersion); upstream answers 400 Bad Request with this message.
    #[error("{0}")]
    Invalid(String),
    /// The stored managedFields cannot be read; upstream answers 500.
    #[error("{0}")]
    Internal(String),
}

/// One server-side apply request.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// `?fieldManager=` (required for apply patches).
    pub manager: &'a str,
    /// `?force=true`.
    pub force: bool,
    /// The apiVersion of the endpoint (`apps/v1`); the configuration must say the same.
    pub api_version: &'a str,
    /// `Some("status")` for `/status`.
    pub subresource: Option<&'a str>,
    /// RFC 3339 time for `managedFields[].time`, e.g. `2024-05-01T10:00:00Z`.
    pub now: &'a str,
}

/// The fields `obj` sets, as a manager applying it would own them
/// (metadata the server owns is left out, see the module documentation).
/// Lists that cannot be keyed count as atomic here.
pub fn fields_of(obj: &Value, defs: &Definitions, schema: &Value) -> FieldSet {
    let node = shape::Node::of(defs, schema);
    let mut set = tofieldset::field_set(defs, node, obj, false).unwrap_or_default();
    tofieldset::strip_meta(&mut set);
    set
}

pub use operation::apply;

pub use operation::track_update;
