//! `/exec/NS/POD/CONTAINER` and `/attach/...`: kubectl's WebSocket
//! channel protocol (`v5.channel.k8s.io`, or `v4`) bridged to the runtime's
//! streaming server over SPDY.
//!
//! Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (a `metav1.Status` JSON,
//! carrying the exit code as `NonZeroExitCode`), 4 resize (JSON
//! `{"Width":..,"Height":..}`), and in v5 255 = close (`[255, 0]` ends
//! stdin). The runtime speaks the same status format (v4) on its error
//! stream, so that stream is passed through unchanged. Failures after the
//! upgrade travel as a Status on channel 3, as upstream's API server does.

use super::spdy::{Conn, Stream, StreamTx};
use super::websocket::{self, Message, Reader, Writer};
use super::{text, Body};
use crate::context::Context;
use crate::cri::api;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Sub-protocols served, most preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// What the request asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    /// From the kubelet query (`input`/`output`/`error`, or the API's
    /// `stdin`/`stdout`/`stderr` names).
    pub fn parse(pairs: &[(String, String)]) -> StreamOptions {
        let on = |names: &[&str]| {
            pairs.iter().any(|(k, v)| names.contains(&k.as_str()) && matches!(v.as_str(), "1" | "true" | "True"))
        };
        let tty = on(&["tty"]);
        StreamOptions {
            command: pairs.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect(),
            stdin: on(&["input", "stdin"]),
            stdout: on(&["output", "stdout"]),
            // A terminal has one output stream.
            stderr: on(&["error", "stderr"]) && !tty,
            tty,
        }
    }
}

/// The sub-protocol to answer with, from the client's offer.
pub fn choose_protocol(offered: &[String]) -> Option<&'static str> {
    PROTOCOLS.iter().copied().find(|p| offered.iter().any(|o| o == p))
}

/// A failure Status for channel 3.
pub fn failure(message: &str) -> Vec<u8> {
    let s = json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    });
    serde_json::to_vec(&s).unwrap_or_default()
}

fn status_json(code: u16, reason: &str, message: &str) -> Response<Body> {
    let s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    let mut resp = Response::new(super::full(serde_json::to_vec(&s).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

pub async fn serve(ctx: Arc<Context>, exec: bool, ns: &str, pod: &str, container: &str, mut req: Request<Incoming>) -> Response<Body> {
    let opts = StreamOptions::parse(&super::query_pairs(req.uri().query()));
    if exec && opts.command.is_empty() {
        return status_json(400, "BadRequest", "you must specify at least 1 command");
    }
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return status_json(400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr");
    }
    if !websocket::is_websocket(req.headers()) {
        return status_json(
            400,
            "BadRequest",
            "this kubelet streams exec and attach over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io); SPDY is served for port-forward",
        );
    }
    let offered = websocket::offered_protocols(req.headers());
    let Some(protocol) = choose_protocol(&offered) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("requested protocol(s) are not supported: [{}]; supports [{}]", offered.join(" "), PROTOCOLS.join(" ")),
        );
    };
    let Some(key) = req.headers().get(http::header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let target = Target { ns: ns.to_string(), pod: pod.to_string(), container: container.to_string(), exec };
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => session(ctx, target, opts, protocol == PROTOCOLS[0], hyper_util::rt::TokioIo::new(io)).await,
            Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
        }
    });
    let mut resp = Response::new(super::full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
    h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(protocol));
    if let Ok(v) = http::HeaderValue::from_str(&websocket::accept_key(&key)) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

struct Target {
    ns: String,
    pod: String,
    container: String,
    exec: bool,
}

/// The running container's ID, by the kubelet's CRI labels.
pub async fn find_container(ctx: &Context, ns: &str, pod: &str, container: &str) -> Result<String, String> {
    let labels: HashMap<String, String> = [
        ("io.kubernetes.pod.namespace", ns),
        ("io.kubernetes.pod.name", pod),
        ("io.kubernetes.container.name", container),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let filter = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: api::ContainerState::ContainerRunning as i32 }),
        label_selector: labels,
        ..Default::default()
    };
    let list = ctx.cri.list_containers(api::ListContainersRequest { filter: Some(filter) }).await.map_err(|e| e.to_string())?;
    list.containers
        .into_iter()
        .max_by_key(|c| c.created_at)
        .map(|c| c.id)
        .ok_or_else(|| format!("container not found ({container:?})"))
}

/// Open the runtime's streams for `opts` (error first, like client-go).
async fn runtime_streams(ctx: &Context, t: &Target, opts: &StreamOptions) -> Result<(Conn, Streams), String> {
    let id = find_container(ctx, &t.ns, &t.pod, &t.container).await.map_err(|e| format!("unable to upgrade connection: {e}"))?;
    let url = if t.exec {
        let r = api::ExecRequest { container_id: id, cmd: opts.command.clone(), tty: opts.tty, stdin: opts.stdin, stdout: opts.stdout, stderr: opts.stderr };
        ctx.cri.exec(r).await.map(|r| r.url)
    } else {
        let r = api::AttachRequest { container_id: id, stdin: opts.stdin, tty: opts.tty, stdout: opts.stdout, stderr: opts.stderr };
        ctx.cri.attach(r).await.map(|r| r.url)
    }
    .map_err(|e| format!("error {} container: {}", if t.exec { "executing command in" } else { "attaching to" }, e.message()))?;
    let conn = super::cri_stream::connect(&url, "v4.channel.k8s.io").await.map_err(|e| e.to_string())?;
    let open = |kind: &'static str| {
        let conn = conn.clone();
        async move { conn.open(vec![("streamtype".into(), kind.into())]).await.map_err(|e| format!("opening the {kind} stream: {e}")) }
    };
    let error = open("error").await?;
    let stdin = if opts.stdin { Some(open("stdin").await?) } else { None };
    let stdout = if opts.stdout { Some(open("stdout").await?) } else { None };
    let stderr = if opts.stderr { Some(open("stderr").await?) } else { None };
    let resize = if opts.tty { Some(open("resize").await?) } else { None };
    Ok((conn, Streams { error, stdin, stdout, stderr, resize }))
}

struct Streams {
    error: Stream,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

async fn session<IO>(ctx: Arc<Context>, t: Target, opts: StreamOptions, v5: bool, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Vec<u8>)>(32);
    let writer = tokio::spawn(async move {
        let mut w = Writer::new(write);
        while let Some((op, payload)) = out_rx.recv().await {
            if op == websocket::OP_CLOSE {
                break;
            }
            if w.send(op, &payload).await.is_err() {
                return;
            }
        }
        w.close().await;
    });
    let send = |channel: u8, data: &[u8]| {
        let mut m = Vec::with_capacity(data.len() + 1);
        m.push(channel);
        m.extend_from_slice(data);
        (websocket::OP_BINARY, m)
    };
    let (conn, streams) = match runtime_streams(&ctx, &t, &opts).await {
        Ok(x) => x,
        Err(message) => {
            tracing::info!(pod = %format!("{}/{}", t.ns, t.pod), container = t.container, message, "exec/attach failed");
            let _ = out_tx.send(send(ERROR, &failure(&message))).await;
            let _ = out_tx.send((websocket::OP_CLOSE, Vec::new())).await;
            let _ = writer.await;
            return;
        }
    };
    // Tell the client the streams are up: an empty message on the lowest
    // output channel, as upstream does.
    let first = if opts.stdout { STDOUT } else if opts.stderr { STDERR } else { ERROR };
    let _ = out_tx.send(send(first, &[])).await;

    let Streams { mut error, stdin, stdout, stderr, resize } = streams;
    let stdin_tx: Option<StreamTx> = stdin.map(|s| s.tx);
    let resize_tx: Option<StreamTx> = resize.map(|s| s.tx);
    let input = tokio::spawn(client_input(Reader::new(read), stdin_tx, resize_tx, v5, out_tx.clone(), conn.clone()));
    let pump = |s: Option<Stream>, channel: u8| {
        let out = out_tx.clone();
        async move {
            if let Some(mut s) = s {
                while let Some(d) = s.rx.recv().await {
                    if out.send(send(channel, &d)).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let collect_error = async {
        let mut status = Vec::new();
        while let Some(d) = error.rx.recv().await {
            status.extend_from_slice(&d);
        }
        status
    };
    let (_, _, status) = tokio::join!(pump(stdout, STDOUT), pump(stderr, STDERR), collect_error);
    if !status.is_empty() {
        let _ = out_tx.send(send(ERROR, &status)).await;
    }
    let _ = out_tx.send((websocket::OP_CLOSE, Vec::new())).await;
    let _ = writer.await;
    input.abort();
    conn.close().await;
}

/// kubectl → runtime: stdin, resize, close; answers pings.
async fn client_input<R: tokio::io::AsyncRead + Unpin>(
    mut r: Reader<R>,
    mut stdin: Option<StreamTx>,
    resize: Option<StreamTx>,
    v5: bool,
    out: mpsc::Sender<(u8, Vec<u8>)>,
    conn: Conn,
) {
    loop {
        let msg = match r.next().await {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => break,
        };
        let data = match msg {
            Message::Binary(d) | Message::Text(d) => d,
            Message::Ping(p) => {
                let _ = out.send((websocket::OP_PONG, p)).await;
                continue;
            }
            Message::Pong => continue,
            Message::Close => break,
        };
        let Some((&channel, payload)) = data.split_first() else { continue };
        match channel {
            STDIN => {
                if let Some(s) = &stdin {
                    if !payload.is_empty() && s.write(Bytes::copy_from_slice(payload)).await.is_err() {
                        stdin = None;
                    }
                }
            }
            RESIZE => {
                if let Some(s) = &resize {
                    let _ = s.write(Bytes::copy_from_slice(payload)).await;
                }
            }
            CLOSE if v5 && payload.first() == Some(&STDIN) => {
                if let Some(s) = stdin.take() {
                    s.close().await;
                }
            }
            _ => {}
        }
    }
    // The client is gone: nothing more will come; let the runtime see it.
    if let Some(s) = stdin.take() {
        s.close().await;
    }
    conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        super::super::query_pairs(Some(s))
    }

    #[test]
    fn options_from_kubelet_and_api_queries() {
        let o = StreamOptions::parse(&q("command=sh&command=-c&command=exit+3&input=1&output=1&error=1"));
        assert_eq!(o.command, vec!["sh", "-c", "exit 3"]);
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        let t = StreamOptions::parse(&q("stdin=true&stdout=true&stderr=true&tty=true"));
        assert!(t.tty && !t.stderr && t.stdin);
    }

    #[test]
    fn prefers_v5() {
        let offer = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(choose_protocol(&offer(&["v4.channel.k8s.io", "v5.channel.k8s.io"])), Some("v5.channel.k8s.io"));
        assert_eq!(choose_protocol(&offer(&["v4.channel.k8s.io", "channel.k8s.io"])), Some("v4.channel.k8s.io"));
        assert_eq!(choose_protocol(&offer(&["base64.channel.k8s.io"])), None);
    }

    #[test]
    fn failures_are_statuses() {
        let v: serde_json::Value = serde_json::from_slice(&failure("container not found (\"c\")")).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["message"], "Internal error occurred: container not found (\"c\")");
        assert_eq!(v["code"], 500);
    }
}
