//! The API server as a client of kubelets: one HTTP/1.1 connection over TLS
//! per request, authenticated with a client certificate from the cluster CA
//! (`kube-apiserver-kubelet-client`, group `system:masters`). Like upstream's
//! default, the kubelet's serving certificate is not verified (kubelets
//! serve self-signed certificates); the TLS handshake signature still is.

use crate::pki::{self, Ca, CertKey, LeafSpec};
use http::{Request, Response};
use hyper::body::Incoming;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

/// Name of the credential files under the CA directory.
const CERT_NAME: &str = "client-kube-apiserver-kubelet";

pub const CLIENT_CN: &str = "kube-apiserver-kubelet-client";

static CONFIG: OnceLock<RwLock<Option<Arc<rustls::ClientConfig>>>> = OnceLock::new();

fn slot() -> &'static RwLock<Option<Arc<rustls::ClientConfig>>> {
    CONFIG.get_or_init(|| RwLock::new(None))
}

fn spec() -> LeafSpec {
    LeafSpec {
        common_name: CLIENT_CN.into(),
        organizations: vec!["system:masters".into()],
        client: true,
        ..Default::default()
    }
}

/// Issue (or load) the kubelet client certificate and keep it fresh.
pub fn start(ca: Arc<Ca>) -> Result<(), String> {
    install(&ca)?;
    tokio::spawn(async move {
        loop {
            let pem = std::fs::read_to_string(ca.dir().join(format!("{CERT_NAME}.crt"))).unwrap_or_default();
            let wait = pki::seconds_until_renewal(&pem).clamp(60, 3600);
            tokio::time::sleep(Duration::from_secs(wait as u64)).await;
            if let Err(e) = install(&ca) {
                tracing::error!(error = %e, "kubelet client certificate renewal failed");
            }
        }
    });
    Ok(())
}

fn install(ca: &Ca) -> Result<(), String> {
    let ck = ca.load_or_issue(CERT_NAME, &spec()).map_err(|e| e.to_string())?;
    let config = client_config(&ck)?;
    match slot().write() {
        Ok(mut s) => *s = Some(Arc::new(config)),
        Err(p) => *p.into_inner() = Some(Arc::new(config)),
    }
    Ok(())
}

/// A TLS client configuration presenting `ck`, for tests and [`start`].
pub fn client_config(ck: &CertKey) -> Result<rustls::ClientConfig, String> {
    let certs = rustls_pemfile::certs(&mut ck.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let key = rustls_pemfile::private_key(&mut ck.key_pem.as_bytes())
        .map_err(|e| e.to_string())?
        .ok_or("kubelet client key file has no private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_client_auth_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any serving certificate (upstream's default for kubelets), but
/// checks the handshake is signed by the key of the certificate shown.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a kubelet could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("the API server has no kubelet client certificate yet")]
    NoCredentials,
    #[error("error dialing backend: dial tcp {addr}: {message}")]
    Dial { addr: String, message: String },
    #[error("error dialing backend: TLS handshake with {addr}: {message}")]
    Tls { addr: String, message: String },
    #[error("error talking to the kubelet at {addr}: {message}")]
    Http { addr: String, message: String },
}

/// Send `req` to the kubelet at `addr` (`host:port`) with the installed
/// credentials (or `config`); the connection serves upgrades.
pub async fn send(addr: &str, host: &str, req: Request<Incoming>, config: Option<Arc<rustls::ClientConfig>>) -> Result<Response<Incoming>, KubeletError> {
    let config = match config {
        Some(c) => c,
        None => slot().read().ok().and_then(|s| s.clone()).ok_or(KubeletError::NoCredentials)?,
    };
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| KubeletError::Dial { addr: addr.into(), message: "i/o timeout".into() })?
        .map_err(|e| KubeletError::Dial { addr: addr.into(), message: format!("connect: {e}") })?;
    let _ = tcp.set_nodelay(true);
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|e| KubeletError::Tls { addr: addr.into(), message: e.to_string() })?,
    };
    let tls = tokio::time::timeout(Duration::from_secs(10), tokio_rustls::TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| KubeletError::Tls { addr: addr.into(), message: "timeout".into() })?
        .map_err(|e| KubeletError::Tls { addr: addr.into(), message: e.to_string() })?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| KubeletError::Http { addr: addr.into(), message: e.to_string() })?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    sender.send_request(req).await.map_err(|e| KubeletError::Http { addr: addr.into(), message: e.to_string() })
}
