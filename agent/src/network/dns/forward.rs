//! Forwarding names outside the cluster to the host's resolvers: the
//! configured list if there is one (a device's DHCP-given servers),
//! otherwise the `nameserver` lines of the resolv.conf (re-read when it
//! changes), never the cluster DNS address itself. Queries pass through
//! as bytes; each goes out from a fresh socket (random port) and only an
//! answer with the same id counts. Must not: wait on an upstream longer
//! than its timeout.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(2);

/// The nameservers of a resolv.conf, without `skip`.
pub fn parse_resolv_conf(text: &str, skip: IpAddr) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let ip: IpAddr = words.next()?.split('%').next()?.parse().ok()?;
            (ip != skip && !ip.is_unspecified()).then_some(SocketAddr::new(ip, 53))
        })
        .collect()
}

pub struct Upstreams {
    fixed: Vec<SocketAddr>,
    resolv_conf: PathBuf,
    skip: IpAddr,
    cached: Mutex<(Option<SystemTime>, Vec<SocketAddr>)>,
}

impl Upstreams {
    pub fn new(fixed: Vec<SocketAddr>, resolv_conf: PathBuf, skip: IpAddr) -> Self {
        Upstreams { fixed, resolv_conf, skip, cached: Mutex::new((None, Vec::new())) }
    }

    /// The servers to ask, in order.
    pub fn current(&self) -> Vec<SocketAddr> {
        if !self.fixed.is_empty() {
            return self.fixed.clone();
        }
        let mtime = std::fs::metadata(&self.resolv_conf).and_then(|m| m.modified()).ok();
        let mut c = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 != mtime || mtime.is_none() {
            let list = std::fs::read_to_string(&self.resolv_conf).map(|t| parse_resolv_conf(&t, self.skip)).unwrap_or_default();
            if list.is_empty() {
                tracing::warn!(path = %self.resolv_conf.display(), "dns: no upstream nameserver; names outside the cluster get SERVFAIL");
            }
            *c = (mtime, list);
        }
        c.1.clone()
    }
}

fn id_of(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// Asks the upstreams over UDP in turn; `None` when none answered.
pub async fn udp(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    let id = id_of(query)?;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else { continue };
        if sock.connect(up).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Ok(Ok(n)) if id_of(&buf[..n]) == Some(id) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                Ok(Ok(_)) => continue,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        tracing::debug!(upstream = %up, "dns: upstream did not answer");
    }
    None
}

/// Asks the upstreams over TCP in turn.
pub async fn tcp(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(query.len()).ok()?;
    for up in upstreams {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(up).await.ok()?;
            let mut msg = len.to_be_bytes().to_vec();
            msg.extend_from_slice(query);
            s.write_all(&msg).await.ok()?;
            let n = s.read_u16().await.ok()? as usize;
            let mut buf = vec![0u8; n];
            s.read_exact(&mut buf).await.ok()?;
            Some(buf)
        };
        if let Ok(Some(answer)) = tokio::time::timeout(TIMEOUT, attempt).await {
            return Some(answer);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_without_the_cluster_dns() {
        let text = "# generated\nsearch lan\nnameserver 10.43.0.10\nnameserver 192.168.1.1\nnameserver fe80::1%eth0\nnameserver 0.0.0.0\noptions ndots:1\n";
        let got = parse_resolv_conf(text, "10.43.0.10".parse().unwrap());
        assert_eq!(got, vec!["192.168.1.1:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
    }

    #[tokio::test]
    async fn udp_forwarding_returns_the_upstream_answer() {
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            // A stray answer with another id first, then the real one.
            let mut wrong = buf[..n].to_vec();
            wrong[0] ^= 0xFF;
            up.send_to(&wrong, from).await.unwrap();
            let mut answer = buf[..n].to_vec();
            answer[2] |= 0x80;
            up.send_to(&answer, from).await.unwrap();
        });
        let q = super::super::wire::build_query(0x1234, "example.com", 1);
        let a = udp(&[addr], &q).await.unwrap();
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80);
    }
}
