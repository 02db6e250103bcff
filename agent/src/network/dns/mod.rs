//! Cluster DNS, served in process on the cluster DNS address, port 53,
//! UDP and TCP (what CoreDNS does in k3s). The address goes on the
//! loopback interface as a /32 unless it is already local (not on a dummy
//! interface: kernels built without `dummy` exist, `lo` always does; pods
//! reach it through their gateway, the bridge, like any host address).
//! Only one agent per host can serve a given address. Names in the cluster domain and
//! PTRs of cluster addresses are answered from the informer caches
//! ([`records`]), never waiting on the API; the rest is forwarded
//! ([`forward`]). Must not: answer for the cluster domain before the
//! caches are filled (SERVFAIL until then, so clients retry).

pub mod forward;
pub mod records;
pub mod wire;

use super::cache::Caches;
use super::netlink;
use forward::Upstreams;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// The interface the cluster DNS address is put on.
pub const LINK: &str = "lo";
/// Forwarded queries in flight at most (more are answered SERVFAIL).
const MAX_IN_FLIGHT: usize = 512;
const TCP_IDLE: Duration = Duration::from_secs(10);

pub struct Dns {
    pub zone: String,
    pub caches: Caches,
    pub upstreams: Upstreams,
}

/// What to do with one message.
enum Step {
    Reply(Vec<u8>),
    Forward(wire::Query),
    Drop,
}

impl Dns {
    fn step(&self, msg: &[u8], limit: Option<usize>) -> Step {
        let q = match wire::parse_query(msg) {
            Ok(q) => q,
            Err(Some(id)) => return Step::Reply(wire::error(id, None, wire::RCODE_FORMERR)),
            Err(None) => return Step::Drop,
        };
        if q.opcode != 0 {
            return Step::Reply(wire::error(q.id, Some(&q), wire::RCODE_NOTIMP));
        }
        let limit = limit.unwrap_or_else(|| q.edns.map_or(512, |s| s.min(wire::EDNS_SIZE) as usize));
        let services = self.caches.services.state();
        let slices = self.caches.slices.state();
        let services: Vec<_> = services.iter().map(|s| &**s).collect();
        let slices: Vec<_> = slices.iter().map(|s| &**s).collect();
        let view = records::View { zone: &self.zone, services: &services, slices: &slices };
        match view.resolve(&q.name, q.qtype) {
            _ if q.qclass != wire::CLASS_IN => Step::Forward(q),
            records::Outcome::Forward => Step::Forward(q),
            records::Outcome::Answer(_) if !self.caches.is_ready() => Step::Reply(wire::error(q.id, Some(&q), wire::RCODE_SERVFAIL)),
            records::Outcome::Answer(r) => Step::Reply(wire::encode(&q, &r, limit)),
        }
    }

    async fn forward(&self, msg: &[u8], q: &wire::Query, tcp: bool) -> Vec<u8> {
        let ups = self.upstreams.current();
        let answer = if tcp { forward::tcp(&ups, msg).await } else { forward::udp(&ups, msg).await };
        answer.unwrap_or_else(|| wire::error(q.id, Some(q), wire::RCODE_SERVFAIL))
    }
}

/// Serves until aborted.
pub async fn run(ip: IpAddr, dns: Arc<Dns>) {
    let IpAddr::V4(v4) = ip else {
        tracing::warn!(cluster_dns = %ip, "dns: only an IPv4 cluster DNS address is served");
        return;
    };
    loop {
        if !netlink::is_local(ip) {
            if let Err(e) = netlink::ensure_address(LINK, v4).await {
                tracing::warn!(cluster_dns = %ip, error = %e, "dns: cannot put the cluster DNS address on {LINK}; retrying in 10s");
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        }
        let addr = SocketAddr::new(ip, 53);
        let udp = match tokio::net::UdpSocket::bind(addr).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(addr = %addr, error = %e, "dns: cannot listen (UDP); retrying in 10s");
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        let tcp = match tokio::net::TcpListener::bind(addr).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(addr = %addr, error = %e, "dns: cannot listen (TCP); retrying in 10s");
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        tracing::info!(addr = %addr, zone = %dns.zone, "dns: serving the cluster domain");
        tokio::join!(serve_udp(udp, dns.clone()), serve_tcp(tcp, dns.clone()));
        return;
    }
}

async fn serve_udp(sock: Arc<tokio::net::UdpSocket>, dns: Arc<Dns>) {
    let mut inflight = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        while inflight.try_join_next().is_some() {}
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "dns: UDP receive failed");
                continue;
            }
        };
        let msg = buf[..n].to_vec();
        match dns.step(&msg, None) {
            Step::Reply(r) => {
                let _ = sock.send_to(&r, from).await;
            }
            Step::Drop => {}
            Step::Forward(q) if inflight.len() >= MAX_IN_FLIGHT => {
                let _ = sock.send_to(&wire::error(q.id, Some(&q), wire::RCODE_SERVFAIL), from).await;
            }
            Step::Forward(q) => {
                let (sock, dns) = (sock.clone(), dns.clone());
                inflight.spawn(async move {
                    let r = dns.forward(&msg, &q, false).await;
                    let _ = sock.send_to(&r, from).await;
                });
            }
        }
    }
}

async fn serve_tcp(listener: tokio::net::TcpListener, dns: Arc<Dns>) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else { continue };
        if conns.len() >= MAX_IN_FLIGHT {
            continue;
        }
        conns.spawn(serve_conn(stream, dns.clone()));
    }
}

async fn serve_conn(mut s: tokio::net::TcpStream, dns: Arc<Dns>) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, s.read_u16()).await else { return };
        let mut msg = vec![0u8; len as usize];
        if tokio::time::timeout(TCP_IDLE, s.read_exact(&mut msg)).await.map_or(true, |r| r.is_err()) {
            return;
        }
        let reply = match dns.step(&msg, Some(65535)) {
            Step::Reply(r) => r,
            Step::Drop => return,
            Step::Forward(q) => dns.forward(&msg, &q, true).await,
        };
        let Ok(n) = u16::try_from(reply.len()) else { return };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Takes the cluster DNS address off the loopback interface (clean stop).
pub async fn remove_address(ip: IpAddr) {
    if let IpAddr::V4(v4) = ip {
        if let Err(e) = netlink::remove_address(LINK, v4).await {
            tracing::warn!(cluster_dns = %ip, error = %e, "dns: cannot remove the cluster DNS address");
        }
    }
}
