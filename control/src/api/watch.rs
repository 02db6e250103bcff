//! WATCH: a stream of `{"type": ..., "object": ...}` lines, resumable from a
//! resourceVersion, with bookmarks and 410 Gone for compacted history.

use super::list::{decode_stored, Filter};
use super::request::Query;
use super::status::ApiError;
use super::{ApiServer, Body};
use crate::registry::Resource;
use crate::store::{EventKind, StoreError};
use bytes::Bytes;
use futures_util::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const BOOKMARK_EVERY: Duration = Duration::from_secs(15);

fn object_line(kind: &str, obj: &Value, metadata_only: bool) -> Bytes {
    if metadata_only {
        line(kind, &super::partial(obj))
    } else {
        line(kind, obj)
    }
}

fn line(kind: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn bookmark(res: &Resource, rev: i64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line("BOOKMARK", &json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta}))
}

/// `metadata_only`: the client asked for PartialObjectMetadata (a
/// metadata-only informer); objects are sent as such.
pub async fn watch(server: &Arc<ApiServer>, res: &Arc<Resource>, ns: Option<&str>, query: &Query, metadata_only: bool) -> Result<Response<Body>, ApiError> {
    let filter = Filter::parse(res, query)?;
    let bookmarks = query.flag("allowWatchBookmarks");
    let send_initial = query.flag("sendInitialEvents");
    let timeout = query.int("timeoutSeconds")?.filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let rv = query.get("resourceVersion").map(|s| {
        s.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}: must be an integer")))
    });
    let rv = match rv {
        Some(r) => Some(r?),
        None => None,
    };
    let prefix = res.list_prefix(ns);
    // Unset or "0": the current state as ADDED events first, then changes.
    let mut initial = Vec::new();
    let from = match rv {
        Some(r) if r > 0 && !send_initial => r,
        _ => {
            let page = server.store.list(&prefix, None, None).await?;
            for kv in &page.items {
                if let Some(obj) = decode_stored(kv) {
                    if filter.matches(&obj) {
                        initial.push(obj);
                    }
                }
            }
            page.revision
        }
    };
    let mut events = match server.store.watch(&prefix, from).await {
        Ok(rx) => rx,
        Err(StoreError::Compacted { requested, compacted }) => {
            return Err(ApiError::gone(format!("too old resource version: {requested} ({compacted})")));
        }
        Err(e) => return Err(e.into()),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let res = res.clone();
    tokio::spawn(async move {
        for obj in &initial {
            if tx.send(object_line("ADDED", obj, metadata_only)).await.is_err() {
                return;
            }
        }
        let mut last_rev = from;
        if send_initial && tx.send(bookmark(&res, from, true)).await.is_err() {
            return;
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600 * 24));
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { return };
                    last_rev = ev.kv.mod_revision;
                    let Some(obj) = decode_stored(&ev.kv) else { continue };
                    let kind = match ev.kind {
                        EventKind::Delete => filter.matches(&obj).then_some("DELETED"),
                        EventKind::Put => {
                            let now = filter.matches(&obj);
                            // Without the old value, assume it matched (MODIFIED rather than a duplicate ADDED).
                            let was = !ev.created
                                && (filter.is_everything()
                                    || ev.prev.as_ref().and_then(|p| serde_json::from_slice::<Value>(p).ok()).map(|b| filter.matches(&b)).unwrap_or(true));
                            match (was, now) {
                                (false, true) => Some("ADDED"),
                                (true, true) => Some("MODIFIED"),
                                (true, false) => Some("DELETED"),
                                (false, false) => None,
                            }
                        }
                    };
                    if let Some(kind) = kind {
                        if tx.send(object_line(kind, &obj, metadata_only)).await.is_err() {
                            return;
                        }
                    }
                }
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(bookmark(&res, last_rev, false)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = tokio_stream_from(rx).map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let body: Body = BodyExt::boxed(StreamBody::new(stream));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
