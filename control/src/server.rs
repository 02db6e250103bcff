//! `coracle server`'s control plane process: PKI, datastore, and the HTTPS
//! listener that authenticates requests and hands them to [`ApiServer`].

use crate::api::{self, ApiServer, Call, User};
use crate::pki::{self, Ca, LeafSpec};
use crate::store::sqlite::SqliteStore;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source} (is another server already running on this port?)")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub port: u16,
    pub tls_sans: Vec<String>,
    pub kubeconfig: PathBuf,
    pub node_name: String,
    pub cluster: Arc<crate::config::ClusterConfig>,
    /// Run the scheduler and controllers (off only for API-only tests).
    pub controllers: bool,
}

/// A running control plane.
pub struct Running {
    pub api: Arc<ApiServer>,
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    pub kubeconfig: PathBuf,
    /// Kubeconfig of this host's kubelet (`system:node:NAME`), talking to
    /// the API over loopback like any remote agent would.
    pub node_kubeconfig: PathBuf,
    /// The cluster CA certificate (PEM).
    pub ca_pem: String,
}

/// Serving certificate that can be replaced while connections go on.
#[derive(Debug)]
struct SwappableCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|c| c.clone())
    }
}

fn certified_key(ck: &pki::CertKey) -> Result<CertifiedKey, ServerError> {
    let certs = rustls_pemfile::certs(&mut ck.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let key = rustls_pemfile::private_key(&mut ck.key_pem.as_bytes())
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .ok_or_else(|| ServerError::Tls("serving key file has no private key".into()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| ServerError::Tls(e.to_string()))?;
    Ok(CertifiedKey::new(certs, signing))
}

fn serving_spec(cfg: &ServerConfig) -> LeafSpec {
    let mut dns = vec![
        "localhost".to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        cfg.node_name.clone(),
    ];
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([10, 43, 0, 1])];
    if !cfg.bind_address.is_unspecified() {
        ips.push(cfg.bind_address);
    }
    for san in &cfg.tls_sans {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(san.clone()),
        }
    }
    dns.sort();
    dns.dedup();
    ips.sort();
    ips.dedup();
    LeafSpec { common_name: "coracle-apiserver".into(), dns_names: dns, ips, server: true, ..Default::default() }
}

pub async fn start(cfg: ServerConfig) -> Result<Running, ServerError> {
    let tls_dir = cfg.data_dir.join("tls");
    std::fs::create_dir_all(&tls_dir).map_err(|e| ServerError::Io { path: tls_dir.clone(), source: e })?;
    let ca = Arc::new(Ca::load_or_create(&tls_dir)?);
    let serving = ca.load_or_issue("serving", &serving_spec(&cfg))?;
    let admin_spec = LeafSpec {
        common_name: "system:admin".into(),
        organizations: vec!["system:masters".into()],
        client: true,
        ..Default::default()
    };
    let admin = ca.load_or_issue("client-admin", &admin_spec)?;
    crate::api::node_proxy::start(ca.clone()).map_err(ServerError::Tls)?;

    let store = Arc::new(SqliteStore::open(&cfg.data_dir.join("db").join("state.db"))?);
    let api = ApiServer::with_config(store.clone(), cfg.cluster.clone()).await.map_err(|e| ServerError::Bootstrap(e.message))?;
    api.bootstrap().await.map_err(|e| ServerError::Bootstrap(e.message))?;

    let resolver = Arc::new(SwappableCert(RwLock::new(Arc::new(certified_key(&serving)?))));
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca.cert_pem.as_bytes()) {
        let c = c.map_err(|e| ServerError::Tls(e.to_string()))?;
        roots.add(c).map_err(|e| ServerError::Tls(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver.clone());
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let addr = SocketAddr::new(cfg.bind_address, cfg.port);
    let listener = TcpListener::bind(addr).await.map_err(|e| ServerError::Listen { addr, source: e })?;
    let addr = listener.local_addr().map_err(|e| ServerError::Listen { addr, source: e })?;
    crate::api::services::kubernetes::start(api.clone(), addr).await;

    let host = if cfg.bind_address.is_unspecified() { "127.0.0.1".to_string() } else { cfg.bind_address.to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let external_url = format!("https://{host}:{}", addr.port());
    pki::kubeconfig::write(&cfg.kubeconfig, "default", &external_url, &ca.cert_pem, &admin)?;
    let node_kubeconfig = write_node_kubeconfig(&ca, &cfg, addr.port())?;
    let issuer = crate::auth::TokenIssuer::load(&tls_dir, &cfg.cluster, &ca.cert_pem, &external_url)?;
    crate::auth::register(&cfg.cluster, Arc::new(issuer));

    tokio::spawn(renew_serving(ca.clone(), cfg.clone(), resolver));
    tokio::spawn(accept_loop(listener, acceptor, api.clone()));
    if cfg.controllers {
        let client = crate::controllers::client::in_process(api.clone());
        let clock = crate::controllers::clock::Clock::from_env();
        tokio::spawn(crate::scheduler::run(client.clone(), cfg.cluster.clone(), clock.clone()));
        tokio::spawn(crate::controllers::run(client, cfg.cluster.clone(), clock));
    }
    tracing::info!(%addr, kubeconfig = %cfg.kubeconfig.display(), "API server listening");
    Ok(Running { api, addr, store, kubeconfig: cfg.kubeconfig.clone(), node_kubeconfig, ca_pem: ca.cert_pem.clone() })
}

/// The credentials of the kubelet on the server's own host: a client
/// certificate for `system:node:NAME` in `system:nodes`, the identity a
/// joining agent gets too. Always loopback: the agent on this host never
/// depends on the external address.
fn write_node_kubeconfig(ca: &Ca, cfg: &ServerConfig, port: u16) -> Result<PathBuf, ServerError> {
    let spec = LeafSpec {
        common_name: format!("system:node:{}", cfg.node_name),
        organizations: vec!["system:nodes".into()],
        client: true,
        ..Default::default()
    };
    let cert = ca.load_or_issue(&format!("client-node-{}", cfg.node_name), &spec)?;
    let host = if cfg.bind_address.is_ipv6() && !cfg.bind_address.is_unspecified() { "[::1]" } else { "127.0.0.1" };
    let path = cfg.data_dir.join("agent").join("kubelet.kubeconfig");
    pki::kubeconfig::write(&path, "default", &format!("https://{host}:{port}"), &ca.cert_pem, &cert)?;
    Ok(path)
}

async fn renew_serving(ca: Arc<Ca>, cfg: ServerConfig, resolver: Arc<SwappableCert>) {
    let path = ca.dir().join("serving.crt");
    loop {
        let pem = std::fs::read_to_string(&path).unwrap_or_default();
        let wait = pki::seconds_until_renewal(&pem).clamp(60, 3600);
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
        let pem = std::fs::read_to_string(&path).unwrap_or_default();
        if !pki::needs_renewal(&pem) {
            continue;
        }
        match ca.load_or_issue("serving", &serving_spec(&cfg)).and_then(|ck| {
            certified_key(&ck).map_err(|e| pki::PkiError::Cert { what: "serving".into(), message: e.to_string() })
        }) {
            Ok(key) => {
                if let Ok(mut slot) = resolver.0.write() {
                    *slot = Arc::new(key);
                }
                tracing::info!(path = %path.display(), "serving certificate renewed");
            }
            Err(e) => tracing::error!(error = %e, "serving certificate renewal failed"),
        }
    }
}

async fn accept_loop(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, api: Arc<ApiServer>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| pki::subject_of(c.as_ref()))
                .map(|(name, groups)| {
                    let mut groups = groups;
                    groups.push("system:authenticated".into());
                    User { name, groups, uid: None }
                });
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let api = api.clone();
                let user = user.clone();
                async move { Ok::<_, std::convert::Infallible>(serve(api, req, user).await) }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

const OPEN_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

async fn serve(api: Arc<ApiServer>, req: Request<Incoming>, user: Option<User>) -> Response<api::Body> {
    let path = req.uri().path().to_string();
    let open = OPEN_PATHS.iter().any(|p| path == *p || path.starts_with(&format!("{p}/")));
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let user = match (user, bearer) {
        (Some(u), _) => Some(u),
        (None, Some(token)) => match crate::auth::authenticate::bearer(&api, &token).await {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::info!(path, error = %e, "bearer token refused");
                // Health and version stay open even to a bad token (upstream
                // answers 401 there too; kept open as this server always did).
                if !open {
                    return api::error_response(&api::status::ApiError::unauthorized());
                }
                None
            }
        },
        (None, None) => None,
    };
    let user = match user {
        Some(u) => u,
        None if open => User { name: "system:anonymous".into(), groups: vec!["system:unauthenticated".into()], uid: None },
        None => return api::error_response(&api::status::ApiError::unauthorized()),
    };
    if api::node_proxy::handles(&path) {
        return api::node_proxy::serve(api, req, user).await;
    }
    let header = |name: http::header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let accept = header(http::header::ACCEPT);
    let content_type = header(http::header::CONTENT_TYPE);
    let user_agent = header(http::header::USER_AGENT);
    let method = req.method().clone();
    let query = api::request::Query::parse(req.uri().query());
    let body: Bytes = match Limited::new(req.into_body(), api::codec::MAX_BODY + 1).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return api::error_response(&api::status::ApiError::too_large(format!(
                "Request entity too large: limit is {}",
                api::codec::MAX_BODY
            )))
        }
    };
    if body.len() > api::codec::MAX_BODY {
        return api::error_response(&api::status::ApiError::too_large(format!("Request entity too large: limit is {}", api::codec::MAX_BODY)));
    }
    let started = std::time::Instant::now();
    let call = Call { method: method.clone(), query, accept, content_type, user, user_agent, body };
    let resp = api.handle(&path, call).await;
    tracing::debug!(%method, path, code = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    resp
}

/// Default data directory, like k3s' /var/lib/rancher/k3s.
pub fn default_data_dir() -> &'static Path {
    Path::new("/var/lib/coracle")
}
