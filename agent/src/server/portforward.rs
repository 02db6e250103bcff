//! `/portForward/NS/POD`: kubectl's port-forward protocol
//! (`portforward.k8s.io` over SPDY/3.1), reached either through a WebSocket
//! tunnel (`SPDY/3.1+portforward.k8s.io`, what kubectl 1.31+ tries first:
//! each binary message carries raw SPDY bytes) or as a plain SPDY upgrade
//! (kubectl's fallback).
//!
//! kubectl opens an error stream and a data stream per local connection,
//! paired by `requestid`. Each pair becomes one CRI `PortForward` on the
//! pod's sandbox and one SPDY connection to the runtime's streaming server,
//! which dials the port inside the pod's network namespace (so ports bound
//! to the pod's localhost work, as upstream). Bytes and half-closes are
//! passed through both ways; the runtime's error text goes to kubectl's
//! error stream.

use super::spdy::{header, Conn, Stream};
use super::websocket::{self, Message, Reader, Writer};
use super::{text, Body};
use crate::context::Context;
use crate::cri::api;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
pub const PROTOCOL: &str = "portforward.k8s.io";

/// How the client wants the SPDY bytes carried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transport {
    Tunnel,
    Spdy,
}

pub fn transport(headers: &http::HeaderMap) -> Option<Transport> {
    if websocket::is_websocket(headers) {
        return websocket::offered_protocols(headers).iter().any(|p| p == TUNNEL_PROTOCOL).then_some(Transport::Tunnel);
    }
    let spdy = headers.get(http::header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    let proto = headers
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    (spdy && proto).then_some(Transport::Spdy)
}

/// The pod's ready sandbox, by the kubelet's CRI labels.
async fn find_sandbox(ctx: &Context, ns: &str, pod: &str) -> Result<Option<String>, String> {
    let labels: HashMap<String, String> =
        [("io.kubernetes.pod.namespace", ns), ("io.kubernetes.pod.name", pod)].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let filter = api::PodSandboxFilter {
        state: Some(api::PodSandboxStateValue { state: api::PodSandboxState::SandboxReady as i32 }),
        label_selector: labels,
        ..Default::default()
    };
    let list = ctx.cri.list_pod_sandbox(api::ListPodSandboxRequest { filter: Some(filter) }).await.map_err(|e| e.to_string())?;
    Ok(list.items.into_iter().max_by_key(|s| s.created_at).map(|s| s.id))
}

pub async fn serve(ctx: Arc<Context>, ns: &str, pod: &str, mut req: Request<Incoming>) -> Response<Body> {
    let Some(t) = transport(req.headers()) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("port-forward needs an upgrade to {TUNNEL_PROTOCOL} (WebSocket) or SPDY/3.1 with X-Stream-Protocol-Version: {PROTOCOL}"),
        );
    };
    let sandbox = match find_sandbox(&ctx, ns, pod).await {
        Ok(Some(s)) => s,
        Ok(None) => return text(StatusCode::NOT_FOUND, "pod does not exist"),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("listing pod sandboxes: {e}")),
    };
    let key = req.headers().get(http::header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(str::to_string);
    if t == Transport::Tunnel && key.is_none() {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    }
    let upgrade = hyper::upgrade::on(&mut req);
    let name = format!("{ns}/{pod}");
    tokio::spawn(async move {
        let io = match upgrade.await {
            Ok(io) => hyper_util::rt::TokioIo::new(io),
            Err(e) => return tracing::debug!(error = %e, "port-forward upgrade failed"),
        };
        let (conn, incoming) = match t {
            Transport::Spdy => Conn::start(io, true),
            Transport::Tunnel => {
                let (ours, theirs) = tokio::io::duplex(256 * 1024);
                tokio::spawn(tunnel(io, theirs));
                Conn::start(ours, true)
            }
        };
        accept_pairs(ctx, sandbox, name, conn, incoming).await;
    });
    let mut resp = Response::new(super::full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    match t {
        Transport::Tunnel => {
            h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
            h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(TUNNEL_PROTOCOL));
            if let Some(v) = key.and_then(|k| http::HeaderValue::from_str(&websocket::accept_key(&k)).ok()) {
                h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
            }
        }
        Transport::Spdy => {
            h.insert(http::header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
            h.insert("x-stream-protocol-version", http::HeaderValue::from_static(PROTOCOL));
        }
    }
    resp
}

/// WebSocket binary messages ↔ a byte stream.
async fn tunnel<IO, B>(ws: IO, bytes: B)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (ws_read, ws_write) = tokio::io::split(ws);
    let (mut b_read, mut b_write) = tokio::io::split(bytes);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let down = tokio::spawn(async move {
        let mut w = Writer::new(ws_write);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            tokio::select! {
                n = b_read.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => if w.send(websocket::OP_BINARY, &buf[..n]).await.is_err() { return },
                },
                Some(p) = pong_rx.recv() => if w.send(websocket::OP_PONG, &p).await.is_err() { return },
            }
        }
        w.close().await;
    });
    let mut r = Reader::new(ws_read);
    loop {
        match r.next().await {
            Ok(Some(Message::Binary(d))) | Ok(Some(Message::Text(d))) => {
                if b_write.write_all(&d).await.is_err() {
                    break;
                }
            }
            Ok(Some(Message::Ping(p))) => {
                let _ = pong_tx.send(p).await;
            }
            Ok(Some(Message::Pong)) => {}
            Ok(Some(Message::Close)) | Ok(None) | Err(_) => break,
        }
    }
    let _ = b_write.shutdown().await;
    let _ = down.await;
}

/// Pair kubectl's streams by `requestid` and forward each pair.
async fn accept_pairs(ctx: Arc<Context>, sandbox: String, name: String, conn: Conn, mut incoming: tokio::sync::mpsc::Receiver<Stream>) {
    let mut waiting: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(s) = incoming.recv().await {
        let id = header(&s.headers, "requestid").unwrap_or("").to_string();
        let entry = waiting.entry(id.clone()).or_default();
        match header(&s.headers, "streamtype") {
            Some("error") => entry.0 = Some(s),
            Some("data") => entry.1 = Some(s),
            other => {
                tracing::debug!(stream_type = ?other, "port-forward: unexpected stream");
                s.tx.reset().await;
                continue;
            }
        }
        let complete = waiting.get(&id).is_some_and(|(e, d)| e.is_some() && d.is_some());
        if complete {
            if let Some((Some(err), Some(data))) = waiting.remove(&id) {
                tokio::spawn(forward(ctx.clone(), sandbox.clone(), name.clone(), err, data));
            }
        }
    }
    conn.close().await;
}

async fn forward(ctx: Arc<Context>, sandbox: String, name: String, error: Stream, data: Stream) {
    let port_text = header(&data.headers, "port").unwrap_or("").to_string();
    let fail = |message: String| {
        let error_tx = error.tx.clone();
        let data_tx = data.tx.clone();
        async move {
            let _ = error_tx.write(Bytes::from(message)).await;
            error_tx.close().await;
            data_tx.close().await;
        }
    };
    let Ok(port) = port_text.parse::<u16>() else {
        return fail(format!("invalid port {port_text:?} in port-forward request")).await;
    };
    let url = match ctx.cri.port_forward(api::PortForwardRequest { pod_sandbox_id: sandbox.clone(), port: vec![i32::from(port)] }).await {
        Ok(r) => r.url,
        Err(e) => return fail(format!("error forwarding port {port} to pod {sandbox}, uid : {}", e.message())).await,
    };
    let runtime = match super::cri_stream::connect(&url, super::portforward::PROTOCOL).await {
        Ok(c) => c,
        Err(e) => return fail(format!("error forwarding port {port} to pod {sandbox}, uid : {e}")).await,
    };
    let headers = |kind: &str| vec![("streamtype".to_string(), kind.to_string()), ("port".to_string(), port.to_string()), ("requestid".to_string(), "0".to_string())];
    let (r_error, r_data) = match runtime.open(headers("error")).await {
        Ok(e) => {
            e.tx.close().await;
            match runtime.open(headers("data")).await {
                Ok(d) => (e, d),
                Err(err) => return fail(format!("error forwarding port {port} to pod {sandbox}, uid : {err}")).await,
            }
        }
        Err(err) => return fail(format!("error forwarding port {port} to pod {sandbox}, uid : {err}")).await,
    };
    tracing::debug!(pod = name, port, "port-forward connection");
    let Stream { rx: mut k_rx, tx: k_tx, .. } = data;
    let Stream { rx: mut r_rx, tx: r_tx, .. } = r_data;
    let mut r_err_rx = r_error.rx;
    let up = async {
        while let Some(b) = k_rx.recv().await {
            if r_tx.write(b).await.is_err() {
                break;
            }
        }
        r_tx.close().await;
    };
    let down = async {
        while let Some(b) = r_rx.recv().await {
            if k_tx.write(b).await.is_err() {
                break;
            }
        }
        k_tx.close().await;
    };
    let errors = async {
        while let Some(b) = r_err_rx.recv().await {
            let _ = error.tx.write(b).await;
        }
    };
    tokio::join!(up, down, errors);
    error.tx.close().await;
    runtime.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_transports() {
        let mut ws = http::HeaderMap::new();
        ws.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        ws.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("SPDY/3.1+portforward.k8s.io"));
        assert_eq!(transport(&ws), Some(Transport::Tunnel));
        let mut spdy = http::HeaderMap::new();
        spdy.insert(http::header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
        spdy.insert("x-stream-protocol-version", http::HeaderValue::from_static("portforward.k8s.io"));
        assert_eq!(transport(&spdy), Some(Transport::Spdy));
        assert_eq!(transport(&http::HeaderMap::new()), None);
        ws.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("v4.channel.k8s.io"));
        assert_eq!(transport(&ws), None);
    }
}
