//! The embedded datastore: SQLite in WAL mode.
//!
//! One writer thread owns the write connection and commits whatever writes
//! are queued in one transaction (group commit), with `synchronous=FULL`:
//! a write is acknowledged only after its transaction is durable, so it
//! survives `kill -9` and power loss. Readers use a small pool of read-only
//! connections (WAL lets them run beside the writer).
//!
//! Tables: `kv` holds live keys; `log` holds recent changes for watch resume
//! and is trimmed to the last [`HISTORY`] revisions by the writer itself; the
//! WAL is checkpointed and truncated, so the files stay near the size of live
//! data however many updates are written.

use super::{BoxFuture, Event, EventKind, KeyValue, ListResult, Store, StoreError, Write};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Revisions of history kept for watch resume.
pub const HISTORY: i64 = 8000;
/// Writes committed in one transaction at most.
const MAX_BATCH: usize = 256;
const READERS: usize = 4;

struct WriteReq {
    write: Write,
    reply: oneshot::Sender<Result<KeyValue, StoreError>>,
}

struct Shared {
    path: PathBuf,
    revision: AtomicI64,
    compacted: AtomicI64,
    events: broadcast::Sender<Arc<Event>>,
    readers: Mutex<Vec<Connection>>,
    /// Set by `close`: no connection is opened or kept after it, so the
    /// filesystem can be unmounted (a device powering off).
    closed: AtomicBool,
}

pub struct SqliteStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<std_mpsc::Sender<WriteReq>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn backend(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend { path: path.display().to_string(), message: e.to_string() }
}

fn open(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| backend(path, e))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(|e| backend(path, e))?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    created INTEGER NOT NULL,
    create_rev INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

impl SqliteStore {
    /// Open (or create) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| backend(path, e))?;
        }
        let conn = open(path, false)?;
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA journal_size_limit = 4194304;
             PRAGMA wal_autocheckpoint = 1000;",
        )
        .map_err(|e| backend(path, e))?;
        conn.execute_batch(SCHEMA).map_err(|e| backend(path, e))?;
        let meta = |name: &str| -> Result<i64, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0))
                .optional()
                .map(|v| v.unwrap_or(0))
                .map_err(|e| backend(path, e))
        };
        let mut revision = meta("revision")?;
        if revision == 0 {
            revision = 1;
        }
        let compacted = meta("compacted")?;
        let mut readers = Vec::new();
        for _ in 0..READERS {
            readers.push(open(path, true)?);
        }
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            events,
            readers: Mutex::new(readers),
            closed: AtomicBool::new(false),
        });
        let (tx, rx) = std_mpsc::channel();
        let writer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, writer_shared, rx))
            .map_err(|e| backend(path, e))?;
        tracing::info!(path = %path.display(), revision, compacted, "datastore opened");
        Ok(Self { shared, writer: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)) })
    }

    /// Stop accepting writes, wait for the writer to finish its queue, and
    /// close every connection (reads after this fail).
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Ok(mut pool) = self.shared.readers.lock() {
            pool.clear();
        }
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Ok(mut t) = self.thread.lock() {
            if let Some(handle) = t.take() {
                let _ = handle.join();
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            if shared.closed.load(Ordering::SeqCst) {
                return Err(backend(&shared.path, "the datastore is closed (shutting down)"));
            }
            let conn = shared.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match conn {
                Some(c) => c,
                None => open(&shared.path, true)?,
            };
            let result = f(&conn).map_err(|e| backend(&shared.path, e));
            if let Ok(mut pool) = shared.readers.lock() {
                if pool.len() < READERS && !shared.closed.load(Ordering::SeqCst) {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| backend(&self.shared.path, e))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Upper bound for keys beginning with `prefix` (prefixes end in '/').
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.push('\u{10FFFF}');
    end
}

fn row_kv(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        create_revision: r.get(1)?,
        mod_revision: r.get(2)?,
        value: Arc::new(r.get(3)?),
    })
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        let key = key.to_string();
        Box::pin(async move {
            self.with_reader(move |c| {
                c.prepare_cached("SELECT key, create_rev, mod_rev, value FROM kv WHERE key = ?1")?
                    .query_row([&key], row_kv)
                    .optional()
            })
            .await
        })
    }

    fn list(&self, prefix: &str, start_after: Option<&str>, limit: Option<usize>) -> BoxFuture<'_, Result<ListResult, StoreError>> {
        let prefix = prefix.to_string();
        let start = start_after.map(str::to_string);
        Box::pin(async move {
            let rev = self.current_revision();
            let (items, more) = self
                .with_reader(move |c| {
                    let end = prefix_end(&prefix);
                    let inclusive = start.is_none();
                    let lower = start.unwrap_or_else(|| prefix.clone());
                    let fetch = limit.map(|l| l as i64 + 1).unwrap_or(-1);
                    let sql = if inclusive {
                        "SELECT key, create_rev, mod_rev, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                    } else {
                        "SELECT key, create_rev, mod_rev, value FROM kv WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                    };
                    let mut stmt = c.prepare_cached(sql)?;
                    let mut items = stmt
                        .query_map(params![lower, end, fetch], row_kv)?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    let more = matches!(limit, Some(l) if items.len() > l);
                    if let Some(l) = limit {
                        items.truncate(l);
                    }
                    Ok((items, more))
                })
                .await?;
            Ok(ListResult { items, revision: rev, more })
        })
    }

    fn count(&self, prefix: &str) -> BoxFuture<'_, Result<i64, StoreError>> {
        let prefix = prefix.to_string();
        Box::pin(async move {
            self.with_reader(move |c| {
                c.prepare_cached("SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2")?
                    .query_row(params![prefix, prefix_end(&prefix)], |r| r.get(0))
            })
            .await
        })
    }

    fn write(&self, write: Write) -> BoxFuture<'_, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            let sent = match self.writer.lock() {
                Ok(w) => w.as_ref().map(|tx| tx.send(WriteReq { write, reply }).is_ok()).unwrap_or(false),
                Err(_) => false,
            };
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn watch(&self, prefix: &str, after: i64) -> BoxFuture<'_, Result<mpsc::Receiver<Event>, StoreError>> {
        let prefix = prefix.to_string();
        Box::pin(async move {
            let mut live = self.shared.events.subscribe();
            let compacted = self.compacted_revision();
            if after < compacted {
                return Err(StoreError::Compacted { requested: after, compacted });
            }
            let history_prefix = prefix.clone();
            let history = self
                .with_reader(move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT rev, key, deleted, created, create_rev, value FROM log \
                         WHERE rev > ?1 AND key >= ?2 AND key < ?3 ORDER BY rev",
                    )?;
                    let rows = stmt.query_map(params![after, history_prefix, prefix_end(&history_prefix)], |r| {
                        let deleted: bool = r.get(2)?;
                        Ok(Event {
                            kind: if deleted { EventKind::Delete } else { EventKind::Put },
                            created: r.get(3)?,
                            prev: None,
                            kv: KeyValue {
                                mod_revision: r.get(0)?,
                                key: r.get(1)?,
                                create_revision: r.get(4)?,
                                value: Arc::new(r.get(5)?),
                            },
                        })
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .await?;
            // History may have been trimmed while we read it.
            let compacted = self.compacted_revision();
            if after < compacted {
                return Err(StoreError::Compacted { requested: after, compacted });
            }
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(async move {
                let mut last = after;
                for ev in history {
                    last = ev.kv.mod_revision;
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                loop {
                    match live.recv().await {
                        Ok(ev) => {
                            if ev.kv.mod_revision <= last || !ev.kv.key.starts_with(&prefix) {
                                continue;
                            }
                            last = ev.kv.mod_revision;
                            if tx.send((*ev).clone()).await.is_err() {
                                return;
                            }
                        }
                        // A watcher too slow to keep up is closed; it resumes
                        // from its last revision.
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(prefix, skipped = n, "watch fell behind; closing it");
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
            Ok(rx)
        })
    }

    fn current_revision(&self) -> i64 {
        self.shared.revision.load(Ordering::SeqCst)
    }

    fn compacted_revision(&self) -> i64 {
        self.shared.compacted.load(Ordering::SeqCst)
    }
}

struct Applied {
    kv: KeyValue,
    event: Event,
}

fn apply_one(tx: &Connection, rev: i64, write: Write) -> Result<Applied, StoreError> {
    let current = |key: &str| -> rusqlite::Result<Option<KeyValue>> {
        tx.prepare_cached("SELECT key, create_rev, mod_rev, value FROM kv WHERE key = ?1")?
            .query_row([key], row_kv)
            .optional()
    };
    let wrap = |e: rusqlite::Error| StoreError::Backend { path: "sqlite".into(), message: e.to_string() };
    match write {
        Write::Create { key, value } => {
            if current(&key).map_err(wrap)?.is_some() {
                return Err(StoreError::AlreadyExists(key));
            }
            put(tx, &key, rev, rev, &value, true).map_err(wrap)?;
            let kv = KeyValue { key, value: Arc::new(value), create_revision: rev, mod_revision: rev };
            Ok(Applied { event: Event { kind: EventKind::Put, kv: kv.clone(), prev: None, created: true }, kv })
        }
        Write::Update { key, value, expected } => {
            let old = current(&key).map_err(wrap)?.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            if let Some(expected) = expected {
                if expected != old.mod_revision {
                    return Err(StoreError::Conflict { key, expected, actual: old.mod_revision });
                }
            }
            put(tx, &key, old.create_revision, rev, &value, false).map_err(wrap)?;
            let kv = KeyValue { key, value: Arc::new(value), create_revision: old.create_revision, mod_revision: rev };
            Ok(Applied {
                event: Event { kind: EventKind::Put, kv: kv.clone(), prev: Some(old.value), created: false },
                kv,
            })
        }
        Write::Delete { key, expected } => {
            let old = current(&key).map_err(wrap)?.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            if let Some(expected) = expected {
                if expected != old.mod_revision {
                    return Err(StoreError::Conflict { key, expected, actual: old.mod_revision });
                }
            }
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1").and_then(|mut s| s.execute([&key])).map_err(wrap)?;
            tx.prepare_cached("INSERT INTO log (rev, key, deleted, created, create_rev, value) VALUES (?1, ?2, 1, 0, ?3, ?4)")
                .and_then(|mut s| s.execute(params![rev, key, old.create_revision, old.value.as_slice()]))
                .map_err(wrap)?;
            let kv = KeyValue { key, value: old.value.clone(), create_revision: old.create_revision, mod_revision: rev };
            Ok(Applied {
                event: Event { kind: EventKind::Delete, kv: kv.clone(), prev: Some(old.value), created: false },
                kv,
            })
        }
    }
}

fn put(tx: &Connection, key: &str, create_rev: i64, rev: i64, value: &[u8], created: bool) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO kv (key, create_rev, mod_rev, value) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![key, create_rev, rev, value])?;
    tx.prepare_cached("INSERT INTO log (rev, key, deleted, created, create_rev, value) VALUES (?1, ?2, 0, ?3, ?4, ?5)")?
        .execute(params![rev, key, created, create_rev, value])?;
    Ok(())
}

fn writer_loop(mut conn: Connection, shared: Arc<Shared>, rx: std_mpsc::Receiver<WriteReq>) {
    let mut since_maintenance = 0usize;
    let mut last_maintenance = Instant::now();
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(req) => req,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                if since_maintenance > 0 {
                    maintenance(&conn, &shared, true);
                    since_maintenance = 0;
                    last_maintenance = Instant::now();
                }
                continue;
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        since_maintenance += batch.len();
        commit_batch(&mut conn, &shared, batch);
        if since_maintenance >= 2000 || last_maintenance.elapsed() > Duration::from_secs(30) {
            maintenance(&conn, &shared, false);
            since_maintenance = 0;
            last_maintenance = Instant::now();
        }
    }
    maintenance(&conn, &shared, true);
    tracing::info!(path = %shared.path.display(), "datastore closed");
}

fn commit_batch(conn: &mut Connection, shared: &Shared, batch: Vec<WriteReq>) {
    let mut rev = shared.revision.load(Ordering::SeqCst);
    type Reply = oneshot::Sender<Result<KeyValue, StoreError>>;
    let mut results: Vec<(Reply, Result<Applied, StoreError>)> = Vec::new();
    let outcome = (|| -> rusqlite::Result<()> {
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for req in batch {
            // Each write gets its own savepoint so one failing CAS does not
            // abort the others in the batch.
            let sp_rev = rev + 1;
            let result = {
                let sp = tx.savepoint()?;
                let r = apply_one(&sp, sp_rev, req.write);
                if r.is_ok() {
                    sp.commit()?;
                }
                r
            };
            if result.is_ok() {
                rev = sp_rev;
            }
            results.push((req.reply, result));
        }
        tx.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('revision', ?1)", [rev])?;
        tx.commit()
    })();
    match outcome {
        Ok(()) => {
            shared.revision.store(rev, Ordering::SeqCst);
            for (reply, result) in results {
                match result {
                    Ok(applied) => {
                        let _ = shared.events.send(Arc::new(applied.event));
                        let _ = reply.send(Ok(applied.kv));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(path = %shared.path.display(), error = %e, "datastore commit failed");
            for (reply, _) in results {
                let _ = reply.send(Err(backend(&shared.path, &e)));
            }
        }
    }
}

/// Trim watch history, return free pages, checkpoint and truncate the WAL.
fn maintenance(conn: &Connection, shared: &Shared, idle: bool) {
    let rev = shared.revision.load(Ordering::SeqCst);
    let keep_from = rev - HISTORY;
    let result = (|| -> rusqlite::Result<()> {
        if keep_from > shared.compacted.load(Ordering::SeqCst) {
            conn.execute("DELETE FROM log WHERE rev <= ?1", [keep_from])?;
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('compacted', ?1)", [keep_from])?;
            shared.compacted.store(keep_from, Ordering::SeqCst);
        }
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free > 256 {
            conn.execute_batch("PRAGMA incremental_vacuum;")?;
        }
        let mode = if idle { "TRUNCATE" } else { "PASSIVE" };
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(path = %shared.path.display(), error = %e, "datastore maintenance failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("coracle-store-{}", uuid::Uuid::new_v4()));
        dir.join("state.db")
    }

    #[tokio::test]
    async fn create_update_delete_and_conflicts() {
        let path = tmp();
        let s = SqliteStore::open(&path).expect("open");
        let a = s.write(Write::Create { key: "/core/cm/ns/a".into(), value: b"1".to_vec() }).await.expect("create");
        assert!(matches!(
            s.write(Write::Create { key: "/core/cm/ns/a".into(), value: b"x".to_vec() }).await,
            Err(StoreError::AlreadyExists(_))
        ));
        let b = s
            .write(Write::Update { key: "/core/cm/ns/a".into(), value: b"2".to_vec(), expected: Some(a.mod_revision) })
            .await
            .expect("update");
        assert!(b.mod_revision > a.mod_revision);
        assert_eq!(b.create_revision, a.create_revision);
        assert!(matches!(
            s.write(Write::Update { key: "/core/cm/ns/a".into(), value: b"3".to_vec(), expected: Some(a.mod_revision) }).await,
            Err(StoreError::Conflict { .. })
        ));
        let got = s.get("/core/cm/ns/a").await.expect("get").expect("present");
        assert_eq!(got.value.as_slice(), b"2");
        s.write(Write::Delete { key: "/core/cm/ns/a".into(), expected: None }).await.expect("delete");
        assert!(s.get("/core/cm/ns/a").await.expect("get").is_none());
        drop(s);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn list_pages_by_prefix_and_survives_reopen() {
        let path = tmp();
        {
            let s = SqliteStore::open(&path).expect("open");
            for i in 0..10 {
                s.write(Write::Create { key: format!("/core/cm/ns/k{i:02}"), value: vec![i] }).await.expect("create");
            }
            s.write(Write::Create { key: "/core/cmx/ns/other".into(), value: vec![] }).await.expect("create");
        }
        let s = SqliteStore::open(&path).expect("reopen");
        let page = s.list("/core/cm/", None, Some(4)).await.expect("list");
        assert_eq!(page.items.len(), 4);
        assert!(page.more);
        let rest = s.list("/core/cm/", Some(&page.items[3].key), None).await.expect("list");
        assert_eq!(rest.items.len(), 6);
        assert!(!rest.more);
        assert_eq!(s.count("/core/cm/").await.expect("count"), 10);
        assert!(s.current_revision() >= 11);
        drop(s);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[tokio::test]
    async fn watch_replays_history_then_live() {
        let path = tmp();
        let s = SqliteStore::open(&path).expect("open");
        let first = s.write(Write::Create { key: "/core/cm/ns/a".into(), value: b"1".to_vec() }).await.expect("create");
        s.write(Write::Update { key: "/core/cm/ns/a".into(), value: b"2".to_vec(), expected: None }).await.expect("update");
        let mut w = s.watch("/core/cm/", first.mod_revision).await.expect("watch");
        let ev = w.recv().await.expect("history event");
        assert_eq!(ev.kv.value.as_slice(), b"2");
        s.write(Write::Delete { key: "/core/cm/ns/a".into(), expected: None }).await.expect("delete");
        let ev = w.recv().await.expect("live event");
        assert_eq!(ev.kind, EventKind::Delete);
        assert_eq!(ev.kv.value.as_slice(), b"2");
        drop(s);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    fn files_size(dir: &Path) -> u64 {
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
    }

    /// 200,000 updates of the same 10 Leases: the database files (db + wal)
    /// stay under 10 MB throughout, the way k3s' kine does not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lease_renewals_do_not_grow_the_database() {
        let path = tmp();
        let dir = path.parent().expect("dir").to_path_buf();
        let s = Arc::new(SqliteStore::open(&path).expect("open"));
        let value = |i: usize| format!("{{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{{\"name\":\"node-x\",\"namespace\":\"kube-node-lease\",\"uid\":\"6f1c2d3e-0000-4000-8000-000000000000\"}},\"spec\":{{\"holderIdentity\":\"node-x\",\"leaseDurationSeconds\":40,\"renewTime\":\"2026-01-01T00:00:{:02}.000000Z\"}}}}", i % 60).into_bytes();
        let mut largest = 0;
        let mut tasks = Vec::new();
        for l in 0..10 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("/coordination.k8s.io/leases/kube-node-lease/node-{l}");
                s.write(Write::Create { key: key.clone(), value: value(0) }).await.expect("create");
                for i in 1..20_000 {
                    s.write(Write::Update { key: key.clone(), value: value(i), expected: None }).await.expect("update");
                }
            }));
        }
        while !tasks.iter().all(|t| t.is_finished()) {
            largest = largest.max(files_size(&dir));
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        for t in tasks {
            t.await.expect("writer");
        }
        assert!(s.current_revision() >= 200_000);
        s.close();
        let after = files_size(&dir);
        assert!(largest < 10_000_000, "database files reached {largest} bytes while renewing leases");
        assert!(after < 10_000_000, "database files are {after} bytes after 200,000 lease updates");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
