//! The datastore: keys to JSON objects, a global revision, and a watch stream.
//!
//! [`Store`] is what the API server needs from any backend: reads at the
//! current revision, compare-and-swap writes, and watches that resume from a
//! revision (or say it was compacted). The embedded backend is SQLite
//! ([`sqlite::SqliteStore`]); other backends (etcd, PostgreSQL) implement the
//! same trait later. Values are opaque bytes here: this layer must not know
//! about Kubernetes objects.

pub mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One stored key at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Arc<Vec<u8>>,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of the latest write to the key.
    pub mod_revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// For `Put`, the new value; for `Delete`, the last value before deletion
    /// (with `mod_revision` set to the deletion's revision).
    pub kv: KeyValue,
    /// The value before this change, when the store still knows it.
    pub prev: Option<Arc<Vec<u8>>>,
    /// True when the key did not exist before this `Put`.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    #[error("key {key} was modified (revision {actual}, expected {expected})")]
    Conflict { key: String, expected: i64, actual: i64 },
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("datastore {path}: {message}")]
    Backend { path: String, message: String },
    #[error("datastore is shutting down")]
    Closed,
}

/// The result of a list: items in key order, and the revision they were read at.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    pub revision: i64,
    /// True when `limit` cut the list and more keys follow.
    pub more: bool,
}

/// A write to apply atomically.
#[derive(Debug, Clone)]
pub enum Write {
    Create { key: String, value: Vec<u8> },
    /// Replace; `expected` is the mod revision the caller read (None = any).
    Update { key: String, value: Vec<u8>, expected: Option<i64> },
    Delete { key: String, expected: Option<i64> },
}

pub trait Store: Send + Sync {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>>;

    /// Keys beginning with `prefix`, after `start_after` (exclusive), at most `limit`.
    fn list(&self, prefix: &str, start_after: Option<&str>, limit: Option<usize>) -> BoxFuture<'_, Result<ListResult, StoreError>>;

    /// Number of keys beginning with `prefix`.
    fn count(&self, prefix: &str) -> BoxFuture<'_, Result<i64, StoreError>>;

    /// Apply one write; the returned key value carries the new revision.
    /// For a delete it is the last value, at the deletion's revision.
    fn write(&self, write: Write) -> BoxFuture<'_, Result<KeyValue, StoreError>>;

    /// Events for keys under `prefix` with revision > `after`, then live ones.
    /// Fails with `Compacted` when history before `after` is gone.
    fn watch(&self, prefix: &str, after: i64) -> BoxFuture<'_, Result<mpsc::Receiver<Event>, StoreError>>;

    fn current_revision(&self) -> i64;

    /// Oldest revision a watch may resume from.
    fn compacted_revision(&self) -> i64;
}
