//! The kubelet's HTTPS endpoint (port `cfg.kubelet_port`), which the API
//! server proxies `kubectl logs/exec/attach/port-forward` and
//! `nodes/NAME/proxy/...` to.
//!
//! Paths as upstream's kubelet serves them: `/healthz`,
//! `/containerLogs/NS/POD/CONTAINER` ([`logs`]), `/exec/NS/POD/CONTAINER`
//! and `/attach/...` ([`exec`]), `/portForward/NS/POD` ([`portforward`]),
//! `/logs/` (node log files, [`node_logs`]). Only clients with a
//! certificate from the cluster CA in group `system:masters` get in
//! ([`tls`]). This module owns no pod state: it reads the pod from the API,
//! the containers from CRI, and the log files from disk.

pub mod cri_log;
pub mod cri_stream;
pub mod exec;
pub mod logs;
pub mod node_logs;
pub mod portforward;
pub mod spdy;
pub mod tls;
pub mod websocket;

use crate::context::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A plain-text answer, as the kubelet's handlers give errors.
pub fn text(code: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(full(body.into()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Query parameters in order, repeated keys kept.
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The endpoint's task: serve until the agent stops; a port in use or a
/// missing CA is retried, never fatal.
pub async fn run(ctx: Arc<Context>) {
    let acceptor = loop {
        match acceptor(&ctx) {
            Ok(a) => break a,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet endpoint not ready, retrying in 5s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), ctx.cfg.kubelet_port);
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for the kubelet endpoint (is another kubelet on this port?), retrying in 5s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    tracing::info!(%addr, "kubelet endpoint listening");
    serve(listener, acceptor, ctx).await
}

pub fn acceptor(ctx: &Context) -> Result<tokio_rustls::TlsAcceptor, tls::TlsError> {
    let ca = tls::ca_from_kubeconfig(&ctx.cfg.agent_dir().join("kubelet.kubeconfig"))?;
    let ips: Vec<IpAddr> = ctx.cfg.node_ip.into_iter().chain([IpAddr::from([127, 0, 0, 1])]).collect();
    let (cert, key) = tls::serving_pair(&ctx.cfg.agent_dir().join("tls"), &ctx.cfg.node_name, &ips)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(&cert, &key, &ca)?)))
}

/// Accept connections on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, ctx: Arc<Context>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "kubelet endpoint: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let who = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| tls::subject(c.as_ref()));
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let ctx = ctx.clone();
                let who = who.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(ctx, req, who).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "kubelet endpoint: connection ended");
            }
        });
    }
}

/// Route one request.
pub async fn handle(ctx: Arc<Context>, req: Request<Incoming>, who: Option<(String, Vec<String>)>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let parts: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let first = parts.first().map(String::as_str).unwrap_or("");
    if first == "healthz" {
        return text(StatusCode::OK, "ok");
    }
    let (user, groups) = who.unwrap_or_default();
    if !tls::allowed(&groups) {
        let verb = if req.method() == http::Method::GET { "get" } else { "create" };
        let sub = match first {
            "containerLogs" | "exec" | "attach" | "portForward" => "proxy",
            "logs" => "log",
            _ => "proxy",
        };
        tracing::info!(user, path, "kubelet endpoint: forbidden");
        return text(StatusCode::FORBIDDEN, format!("Forbidden (user={user}, verb={verb}, resource=nodes, subresource={sub})"));
    }
    let rest: Vec<&str> = parts.iter().skip(1).map(String::as_str).collect();
    match (first, rest.as_slice()) {
        ("containerLogs", [ns, pod, container]) => logs::serve(&ctx, ns, pod, container, req.uri().query()).await,
        ("exec" | "attach", [ns, pod, container] | [ns, pod, _, container]) => {
            exec::serve(ctx.clone(), first == "exec", ns, pod, container, req).await
        }
        ("portForward", [ns, pod] | [ns, pod, _]) => portforward::serve(ctx.clone(), ns, pod, req).await,
        ("logs", _) => node_logs::serve(&ctx.cfg.node_log_dir, &rest.join("/"), path.ends_with('/')).await,
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}
