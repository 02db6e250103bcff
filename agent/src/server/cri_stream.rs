//! Client of the runtime's streaming server: the URL a CRI `Exec`,
//! `Attach` or `PortForward` call returns (containerd serves plain HTTP on
//! 127.0.0.1 and a random port). The connection is upgraded to SPDY/3.1,
//! the one transport that half-closes stdin, with the sub-protocol named in
//! `X-Stream-Protocol-Version` (`v4.channel.k8s.io` for exec/attach,
//! `portforward.k8s.io` for port-forward).

use super::spdy::Conn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("runtime streaming URL {url:?} is not http://HOST:PORT/PATH")]
    Url { url: String },
    #[error("cannot connect to the runtime's streaming server at {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("runtime streaming server at {addr} refused the upgrade: {message}")]
    Refused { addr: String, message: String },
}

/// `(host:port, path)` of an `http://` URL.
pub fn split_url(url: &str) -> Result<(String, String), StreamError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| StreamError::Url { url: url.to_string() })?;
    let (addr, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if addr.is_empty() {
        return Err(StreamError::Url { url: url.to_string() });
    }
    Ok((addr.to_string(), path.to_string()))
}

/// Upgrade to SPDY at `url` speaking `protocol`.
pub async fn connect(url: &str, protocol: &str) -> Result<Conn, StreamError> {
    let (addr, path) = split_url(url)?;
    let mut tcp = tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| StreamError::Connect { addr: addr.clone(), source: std::io::ErrorKind::TimedOut.into() })?
        .map_err(|e| StreamError::Connect { addr: addr.clone(), source: e })?;
    let _ = tcp.set_nodelay(true);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.map_err(|e| StreamError::Connect { addr: addr.clone(), source: e })?;
    // Read the response head byte by byte: nothing after it may be consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(StreamError::Refused { addr, message: "response head too large".into() });
        }
        let n = tcp.read(&mut byte).await.map_err(|e| StreamError::Connect { addr: addr.clone(), source: e })?;
        if n == 0 {
            return Err(StreamError::Refused { addr, message: "connection closed before a response".into() });
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "101" {
        let mut body = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), tcp.read(&mut body)).await.ok().and_then(Result::ok).unwrap_or(0);
        let first = head.lines().next().unwrap_or("").to_string();
        let text = String::from_utf8_lossy(&body[..n]).trim().to_string();
        return Err(StreamError::Refused { addr, message: if text.is_empty() { first } else { format!("{first}: {text}") } });
    }
    let (conn, _) = Conn::start(tcp, false);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_runtime_urls() {
        assert_eq!(split_url("http://127.0.0.1:3456/exec/abc").unwrap(), ("127.0.0.1:3456".into(), "/exec/abc".into()));
        assert_eq!(split_url("http://[::1]:1").unwrap(), ("[::1]:1".into(), "/".into()));
        assert!(split_url("https://x/y").is_err());
        assert!(split_url("http:///y").is_err());
    }
}
