//! The three PATCH flavours the API server accepts, applied to JSON values.
//!
//! Owns: RFC 6902 JSON patch ([`json_patch`]), RFC 7386 JSON merge patch
//! ([`merge_patch`]), Kubernetes strategic merge patch
//! ([`strategic_merge_patch`]) driven by the `x-kubernetes-*` extensions of
//! the served schemas, and the table of patch metadata of the built-in
//! types ([`meta::BUILTIN_PATCH_META`]) from which those extensions are
//! written into the OpenAPI definitions.
//!
//! Must not: decode HTTP requests, pick the patch type from the content
//! type, validate or default the patched object, or touch the store. The
//! caller hands in the live object and the patch body and gets back the new
//! object or a [`PatchError`] (whose [`PatchError::http_status`] says how to
//! answer). Strategic merge reads patch metadata only from schema
//! extensions, never from the table directly.

mod element_order;
mod error;
mod json_patch;
mod list_kind;
mod merge_patch;
pub mod meta;
mod pointer;
mod strategic;
mod strategic_list;

pub use error::PatchError;
pub use json_patch::json_patch;
pub use merge_patch::merge_patch;
pub use meta::{annotate_definitions, patch_meta_for, PatchMeta, BUILTIN_PATCH_META};
pub use strategic::strategic_merge_patch;
