//! tcpSocket probes (a connect succeeds or not) and the TCP dialing the
//! HTTP handler shares, with errors worded as upstream's (Go) dialer
//! words them, since they end up in events users compare with k3s.

use super::worker::Outcome;
use std::time::Duration;
use tokio::net::TcpStream;

/// `host:port`, with brackets for IPv6 addresses (Go's JoinHostPort).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to `host:port` within `timeout`; the error reads like Go's,
/// e.g. "dial tcp 10.42.0.5:8080: connect: connection refused".
pub async fn dial(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream, String> {
    let addr = host_port(host, port);
    let connect = TcpStream::connect((host, port));
    let result = match timeout {
        Some(t) => match tokio::time::timeout(t, connect).await {
            Ok(r) => r,
            Err(_) => return Err(format!("dial tcp {addr}: i/o timeout")),
        },
        None => connect.await,
    };
    result.map_err(|e| dial_error(host, &addr, &e))
}

fn dial_error(host: &str, addr: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let op = match e.kind() {
        K::ConnectionRefused => "connect: connection refused".to_string(),
        K::HostUnreachable => "connect: no route to host".to_string(),
        K::NetworkUnreachable => "connect: network is unreachable".to_string(),
        K::TimedOut => "i/o timeout".to_string(),
        K::AddrNotAvailable => "connect: cannot assign requested address".to_string(),
        _ if host.parse::<std::net::IpAddr>().is_err() => return format!("dial tcp: lookup {host}: {}", os_text(e)),
        _ => os_text(e),
    };
    format!("dial tcp {addr}: {op}")
}

/// The OS's text without Rust's " (os error N)" suffix, lower-cased first
/// letter like Go's syscall errors.
pub fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s[..],
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A tcpSocket probe: success when the connection opens.
pub async fn probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    match dial(host, port, Some(timeout)).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_port_succeeds_closed_port_fails_like_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test");
        let port = listener.local_addr().expect("test").port();
        assert_eq!(probe("127.0.0.1", port, Duration::from_secs(1)).await, Outcome::Success);
        drop(listener);
        assert_eq!(
            probe("127.0.0.1", port, Duration::from_secs(1)).await,
            Outcome::Failure(format!("dial tcp 127.0.0.1:{port}: connect: connection refused"))
        );
    }

    #[test]
    fn ipv6_gets_brackets() {
        assert_eq!(host_port("fd00::1", 80), "[fd00::1]:80");
        assert_eq!(host_port("10.0.0.1", 80), "10.0.0.1:80");
    }

    #[test]
    fn os_text_reads_like_go() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(os_text(&e), "connection refused");
    }
}
