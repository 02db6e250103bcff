//! httpGet for probes and hooks: a small HTTP/1.1 client over a TCP
//! stream (TLS without certificate verification for HTTPS, as the kubelet
//! does), following redirects as upstream's prober does: only to the same
//! host name, at most 10; a redirect elsewhere ends the probe with that
//! response (a warning, counted as success).
//!
//! It sends `Connection: close` and reads the head plus at most 10 KiB of
//! body. Errors read like Go's client (`Get "URL": ...`), as they end up in
//! events.

use super::tcp;
use super::worker::Outcome;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The User-Agent of probes, as upstream: `kube-probe/MAJOR.MINOR`.
pub const PROBE_USER_AGENT: &str = "kube-probe/1.33";
/// The User-Agent of httpGet lifecycle hooks.
pub const HOOK_USER_AGENT: &str = "kube-lifecycle/1.33";

/// Upstream reads at most this much of a probe's response body.
const MAX_BODY: usize = 10 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 10;

/// An http(s) URL as the prober builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Host name or IP address, without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query as given (may be empty).
    pub path: String,
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", tcp::host_port(&self.host, self.port), self.path)
    }
}

impl Url {
    pub fn new(https: bool, host: &str, port: u16, path: &str) -> Url {
        let path = if path.is_empty() || path.starts_with('/') || path.starts_with('?') { path.to_string() } else { format!("/{path}") };
        Url { https, host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port, path }
    }

    /// The request target: the path (at least "/"), with bytes HTTP does not
    /// allow there percent-encoded.
    fn request_target(&self) -> String {
        let p = if self.path.is_empty() || self.path.starts_with('?') { format!("/{}", self.path) } else { self.path.clone() };
        let mut out = String::with_capacity(p.len());
        for b in p.bytes() {
            if b <= b' ' || b >= 0x7f || b == b'"' || b == b'#' {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push(b as char);
            }
        }
        out
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, location: &str) -> Result<Url, String> {
        let loc = location.split('#').next().unwrap_or_default().trim();
        let scheme_end = loc.find(':').filter(|i| {
            let s = &loc[..*i];
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && !s.contains('/')
        });
        if let Some(i) = scheme_end {
            let https = match loc[..i].to_ascii_lowercase().as_str() {
                "http" => false,
                "https" => true,
                other => return Err(format!("unsupported protocol scheme \"{other}\"")),
            };
            let rest = loc[i + 1..].strip_prefix("//").ok_or_else(|| format!("invalid redirect location {location:?}"))?;
            return authority(https, rest);
        }
        if let Some(rest) = loc.strip_prefix("//") {
            return authority(self.https, rest);
        }
        let path = if loc.starts_with('/') {
            loc.to_string()
        } else if loc.starts_with('?') {
            format!("{}{loc}", self.path.split('?').next().unwrap_or_default())
        } else {
            let base = self.path.split('?').next().unwrap_or_default();
            let dir = base.rfind('/').map(|i| &base[..=i]).unwrap_or("/");
            format!("{dir}{loc}")
        };
        Ok(Url { path, ..self.clone() })
    }
}

/// `host[:port]/path` after a scheme.
fn authority(https: bool, rest: &str) -> Result<Url, String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(end);
    let auth = auth.rsplit('@').next().unwrap_or_default();
    let default = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = auth.strip_prefix('[') {
        let close = v6.find(']').ok_or_else(|| format!("invalid host {auth:?}"))?;
        (&v6[..close], v6[close + 1..].strip_prefix(':'))
    } else {
        match auth.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        }
    };
    let port = match port {
        None | Some("") => default,
        Some(p) => p.parse().map_err(|_| format!("invalid port {p:?} after host"))?,
    };
    if host.is_empty() {
        return Err("no Host in request URL".into());
    }
    Ok(Url::new(https, host, port, path))
}

/// What a GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// At most 10 KiB.
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses a response head (status line and headers, without the blank
/// line): returns the status code and the headers.
pub fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let malformed = || format!("malformed HTTP response {:?}", status_line);
    let (version, rest) = status_line.split_once(' ').ok_or_else(malformed)?;
    if !version.starts_with("HTTP/1.") {
        return Err(malformed());
    }
    let code = rest.split(' ').next().unwrap_or_default();
    if code.len() != 3 {
        return Err(format!("malformed HTTP status code {code:?}"));
    }
    let status: u16 = code.parse().map_err(|_| format!("malformed HTTP status code {code:?}"))?;
    if !(100..=999).contains(&status) {
        return Err(format!("malformed HTTP status code {code:?}"));
    }
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (n, v) = line.split_once(':').ok_or_else(|| format!("malformed MIME header line: {line}"))?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    Ok((status, headers))
}

/// One GET as the prober or a hook sends it.
#[derive(Debug, Clone)]
pub struct Get {
    pub url: Url,
    /// `httpHeaders` of the handler (a `Host` header sets the Host).
    pub headers: Vec<(String, String)>,
    pub user_agent: &'static str,
}

impl Get {
    fn request(&self, url: &Url, host_header: Option<&str>) -> Result<Vec<u8>, String> {
        let mut req = format!("GET {} HTTP/1.1\r\n", url.request_target());
        let host = host_header.map(str::to_string).unwrap_or_else(|| tcp::host_port(&url.host, url.port));
        req.push_str(&format!("Host: {host}\r\n"));
        let has = |n: &str| self.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
        if !has("user-agent") {
            req.push_str(&format!("User-Agent: {}\r\n", self.user_agent));
        }
        if !has("accept") {
            req.push_str("Accept: */*\r\n");
        }
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("host") || n.eq_ignore_ascii_case("connection") {
                continue;
            }
            let bad_name = n.is_empty() || n.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b':');
            if bad_name || v.contains(['\r', '\n']) {
                return Err(format!("net/http: invalid header field name or value {n:?}"));
            }
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        Ok(req.into_bytes())
    }

    fn host_header(&self) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host")).map(|(_, v)| v.as_str())
    }

    /// Sends the GET, following redirects to the same host name; returns
    /// the final URL and response. The error reads like Go's client's.
    pub async fn send(&self, timeout: Option<Duration>) -> Result<(Url, Response), String> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut url = self.url.clone();
        let mut host_header = self.host_header().map(str::to_string);
        let mut redirects = 0;
        loop {
            let resp = once(self, &url, host_header.as_deref(), deadline).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
            let location = resp.header("location").filter(|_| matches!(resp.status, 301 | 302 | 303 | 307 | 308));
            let Some(location) = location else { return Ok((url, resp)) };
            let next = url.join(location).map_err(|e| format!("Get \"{location}\": {e}"))?;
            if next.host != self.url.host {
                return Ok((url, resp));
            }
            redirects += 1;
            if redirects >= MAX_REDIRECTS {
                return Err(format!("Get \"{next}\": stopped after {MAX_REDIRECTS} redirects"));
            }
            // A custom Host survives only relative redirects, as in Go.
            if !scheme_less(location) {
                host_header = None;
            }
            url = next;
        }
    }
}

fn scheme_less(location: &str) -> bool {
    !location.contains("://") && !location.starts_with("//")
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

const AWAITING_HEADERS: &str = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
const READING_BODY: &str = "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

async fn within<T>(deadline: Option<Instant>, late: &str, f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, f).await.unwrap_or_else(|_| Err(late.to_string())),
        None => f.await,
    }
}

async fn once(get: &Get, url: &Url, host_header: Option<&str>, deadline: Option<Instant>) -> Result<Response, String> {
    let request = get.request(url, host_header)?;
    let mut io: Box<dyn Io> = within(deadline, AWAITING_HEADERS, async {
        let tcp = tcp::dial(&url.host, url.port, None).await?;
        if !url.https {
            return Ok(Box::new(tcp) as Box<dyn Io>);
        }
        let name = ServerName::try_from(url.host.clone()).map_err(|e| format!("tls: invalid server name {:?}: {e}", url.host))?;
        let tls =
            tokio_rustls::TlsConnector::from(tls_config()?).connect(name, tcp).await.map_err(|e| format!("tls: {}", tcp::os_text(&e)))?;
        Ok(Box::new(tls) as Box<dyn Io>)
    })
    .await?;
    let mut buf = Vec::new();
    let (status, headers, body_start) = within(deadline, AWAITING_HEADERS, async {
        io.write_all(&request).await.map_err(|e| format!("write: {}", tcp::os_text(&e)))?;
        io.flush().await.map_err(|e| format!("write: {}", tcp::os_text(&e)))?;
        loop {
            let end = read_head(&mut io, &mut buf).await?;
            let (status, headers) = parse_head(&buf[..end])?;
            // Skip informational responses (100 Continue and the like).
            if (100..200).contains(&status) && status != 101 {
                buf.drain(..end + 4);
                continue;
            }
            return Ok((status, headers, end + 4));
        }
    })
    .await?;
    let mut resp = Response { status, headers, body: Vec::new() };
    let rest = buf.split_off(body_start);
    resp.body = within(deadline, READING_BODY, read_body(&mut io, &resp, rest)).await?;
    Ok(resp)
}

/// Reads until the end of the head; returns the offset of "\r\n\r\n".
async fn read_head(io: &mut Box<dyn Io>, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(i);
        }
        if buf.len() > MAX_HEAD {
            return Err("net/http: server response headers exceeded 65536 bytes; aborted".into());
        }
        let n = io.read(&mut chunk).await.map_err(|e| format!("read: {}", tcp::os_text(&e)))?;
        if n == 0 {
            return Err(if buf.is_empty() { "EOF".into() } else { "unexpected EOF".into() });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads at most MAX_BODY bytes of the body (content-length, chunked or
/// until the connection closes).
async fn read_body(io: &mut Box<dyn Io>, resp: &Response, mut buf: Vec<u8>) -> Result<Vec<u8>, String> {
    if matches!(resp.status, 204 | 304) {
        return Ok(Vec::new());
    }
    let chunked = resp.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length: Option<usize> = if chunked { None } else { resp.header("content-length").and_then(|v| v.parse().ok()) };
    let want = length.map(|l| l.min(MAX_BODY));
    // Raw bytes to read: enough for the body and, when chunked, its framing.
    let raw_cap = want.unwrap_or(if chunked { MAX_BODY * 2 + 1024 } else { MAX_BODY });
    let mut chunk = [0u8; 4096];
    while buf.len() < raw_cap {
        if chunked && dechunk(&buf).1 {
            break;
        }
        let n = io.read(&mut chunk).await;
        match n {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // TLS servers often close without close_notify; what was read counts.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("read: {}", tcp::os_text(&e))),
        }
    }
    let mut body = if chunked { dechunk(&buf).0 } else { buf };
    body.truncate(want.unwrap_or(MAX_BODY));
    Ok(body)
}

/// Decodes as much of a chunked body as is complete; true once the last
/// chunk was seen.
fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut rest = raw;
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return (out, false) };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16) else { return (out, true) };
        if size == 0 {
            return (out, true);
        }
        let data = &rest[eol + 2..];
        if data.len() < size {
            out.extend_from_slice(data);
            return (out, false);
        }
        out.extend_from_slice(&data[..size]);
        if out.len() >= MAX_BODY {
            return (out, true);
        }
        rest = data.get(size + 2..).unwrap_or_default();
    }
}

/// An httpGet probe: 200-399 succeeds (a redirect left unfollowed is a
/// warning), anything else fails with upstream's message.
pub async fn probe(get: &Get, timeout: Duration) -> Outcome {
    match get.send(Some(timeout)).await {
        Err(e) => Outcome::Failure(e),
        Ok((_, resp)) => status_outcome(&resp),
    }
}

/// The probe result of a response, as upstream decides it.
pub fn status_outcome(resp: &Response) -> Outcome {
    match resp.status {
        200..=299 => Outcome::Success,
        300..=399 => Outcome::Warning(format!("Probe terminated redirects, Response body: {}", String::from_utf8_lossy(&resp.body))),
        s => Outcome::Failure(format!("HTTP probe failed with statuscode: {s}")),
    }
}

/// Client TLS settings that accept any server certificate (still checking
/// the handshake signatures), as the kubelet's prober does.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2").expect("test"), (200, vec![("Content-Length".into(), "2".into())]));
        assert_eq!(parse_head(b"HTTP/1.0 503 Service Unavailable").expect("test").0, 503);
        assert_eq!(parse_head(b"HTTP/1.1 302").expect("test").0, 302);
        assert!(parse_head(b"SSH-2.0-OpenSSH_9.2").expect_err("should fail").starts_with("malformed HTTP response"));
        assert!(parse_head(b"HTTP/1.1 2000 OK").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon here").is_err());
    }

    #[test]
    fn statuses_map_to_outcomes_like_upstream() {
        let r = |status| Response { status, headers: vec![], body: b"moved".to_vec() };
        assert_eq!(status_outcome(&r(200)), Outcome::Success);
        assert_eq!(status_outcome(&r(204)), Outcome::Success);
        assert_eq!(status_outcome(&r(302)), Outcome::Warning("Probe terminated redirects, Response body: moved".into()));
        assert_eq!(status_outcome(&r(399)), Outcome::Warning("Probe terminated redirects, Response body: moved".into()));
        assert_eq!(status_outcome(&r(400)), Outcome::Failure("HTTP probe failed with statuscode: 400".into()));
        assert_eq!(status_outcome(&r(500)), Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
        assert_eq!(status_outcome(&r(199)), Outcome::Failure("HTTP probe failed with statuscode: 199".into()));
    }

    #[test]
    fn urls_print_and_join_like_go() {
        let u = Url::new(false, "10.42.0.5", 8080, "/healthz?x=1");
        assert_eq!(u.to_string(), "http://10.42.0.5:8080/healthz?x=1");
        assert_eq!(Url::new(true, "fd00::5", 443, "ready").to_string(), "https://[fd00::5]:443/ready");
        assert_eq!(u.join("/other").expect("test").to_string(), "http://10.42.0.5:8080/other");
        assert_eq!(u.join("sibling").expect("test").to_string(), "http://10.42.0.5:8080/sibling");
        assert_eq!(u.join("?y=2").expect("test").to_string(), "http://10.42.0.5:8080/healthz?y=2");
        assert_eq!(u.join("https://example.com/x").expect("test").to_string(), "https://example.com:443/x");
        assert_eq!(u.join("//10.42.0.5:9090").expect("test").to_string(), "http://10.42.0.5:9090");
        assert_eq!(u.join("http://[fd00::1]:81/a#frag").expect("test").to_string(), "http://[fd00::1]:81/a");
        assert!(u.join("ftp://x/").is_err());
        assert_eq!(Url::new(false, "h", 1, "").request_target(), "/");
        assert_eq!(Url::new(false, "h", 1, "/a b\"").request_target(), "/a%20b%22");
    }

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"), (b"abcde".to_vec(), true));
        assert_eq!(dechunk(b"3\r\nab"), (b"ab".to_vec(), false));
    }

    /// Serves each connection with `answer(request_head)`; returns the port.
    async fn server(answer: impl Fn(String) -> String + Send + Sync + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("test");
        let port = listener.local_addr().expect("test").port();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let reply = answer(String::from_utf8_lossy(&buf).into_owned());
                    let _ = s.write_all(reply.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        port
    }

    fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Get {
        Get {
            url: Url::new(false, "127.0.0.1", port, path),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            user_agent: PROBE_USER_AGENT,
        }
    }

    #[tokio::test]
    async fn statuses_from_a_real_server() {
        let port = server(|req| {
            let path = req.split(' ').nth(1).unwrap_or_default().to_string();
            match path.as_str() {
                "/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into(),
                "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".into(),
                "/continue" => "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n".into(),
                _ => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops".into(),
            }
        })
        .await;
        let t = Duration::from_secs(2);
        assert_eq!(probe(&get(port, "/ok", &[]), t).await, Outcome::Success);
        assert_eq!(get(port, "/chunked", &[]).send(Some(t)).await.expect("test").1.body, b"ok");
        assert_eq!(probe(&get(port, "/continue", &[]), t).await, Outcome::Success);
        assert_eq!(probe(&get(port, "/fail", &[]), t).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
    }

    #[tokio::test]
    async fn sends_upstream_headers_and_custom_ones() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let port = server(move |req| {
            let _ = tx.send(req);
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into()
        })
        .await;
        let g = get(port, "/h", &[("X-Custom", "yes"), ("Host", "example.test")]);
        assert_eq!(probe(&g, Duration::from_secs(2)).await, Outcome::Success);
        let req = rx.recv().await.expect("test");
        assert!(req.starts_with("GET /h HTTP/1.1\r\n"), "{req}");
        for line in ["Host: example.test", "User-Agent: kube-probe/1.33", "Accept: */*", "X-Custom: yes", "Connection: close"] {
            assert!(req.contains(&format!("{line}\r\n")), "{line} missing in {req}");
        }
        let bad = get(port, "/h", &[("X-Bad", "a\r\nInjected: 1")]);
        assert!(matches!(probe(&bad, Duration::from_secs(2)).await, Outcome::Failure(m) if m.contains("invalid header")));
    }

    #[tokio::test]
    async fn follows_same_host_redirects_only() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("test").local_addr().expect("test").port();
        let port = server(move |req| {
            let path = req.split(' ').nth(1).unwrap_or_default().to_string();
            match path.as_str() {
                "/start" => "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n".into(),
                "/next" => format!("HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{closed}/final\r\n\r\n"),
                "/away" => "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 5\r\n\r\nbye!!".into(),
                "/loop" => "HTTP/1.1 307 Again\r\nLocation: /loop\r\n\r\n".into(),
                _ => "HTTP/1.1 404 Not Found\r\n\r\n".into(),
            }
        })
        .await;
        let t = Duration::from_secs(2);
        // Same host name on another port is followed (there: refused).
        match probe(&get(port, "/start", &[]), t).await {
            Outcome::Failure(m) => {
                assert_eq!(m, format!("Get \"http://127.0.0.1:{closed}/final\": dial tcp 127.0.0.1:{closed}: connect: connection refused"))
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(probe(&get(port, "/away", &[]), t).await, Outcome::Warning("Probe terminated redirects, Response body: bye!!".into()));
        assert_eq!(
            probe(&get(port, "/loop", &[]), t).await,
            Outcome::Failure(format!("Get \"http://127.0.0.1:{port}/loop\": stopped after 10 redirects"))
        );
    }

    #[tokio::test]
    async fn refused_and_silent_servers_fail_like_go() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("test");
        let port = l.local_addr().expect("test").port();
        // Accepts (the kernel does) but never answers.
        let out = probe(&get(port, "/", &[]), Duration::from_secs(1)).await;
        assert_eq!(
            out,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ))
        );
        drop(l);
        let out = probe(&get(port, "/x", &[]), Duration::from_secs(1)).await;
        assert_eq!(
            out,
            Outcome::Failure(format!("Get \"http://127.0.0.1:{port}/x\": dial tcp 127.0.0.1:{port}: connect: connection refused"))
        );
    }

    #[tokio::test]
    async fn https_without_verification() {
        let key = rcgen::KeyPair::generate().expect("test");
        let cert = rcgen::CertificateParams::new(vec!["self-signed.test".into()]).expect("test").self_signed(&key).expect("test");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("test")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("test"))
            .expect("test");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("test");
        let port = listener.local_addr().expect("test").port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(s).await else { continue };
                let mut buf = [0u8; 2048];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure").await;
                let _ = tls.shutdown().await;
            }
        });
        let g = Get { url: Url::new(true, "127.0.0.1", port, "/"), headers: vec![], user_agent: PROBE_USER_AGENT };
        let (_, resp) = g.send(Some(Duration::from_secs(3))).await.expect("test");
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"secure"[..]));
        // Plain HTTP against the TLS port fails instead of hanging.
        let plain = get(port, "/", &[]);
        assert!(matches!(probe(&plain, Duration::from_secs(2)).await, Outcome::Failure(_)));
    }
}
