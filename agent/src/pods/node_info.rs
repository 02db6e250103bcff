//! What pod workers need to know about this host: its IPs (hostIP), CPU
//! count and memory (OOM scores, resource references without limits).

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// The node's address: the configured one, or the address of the
/// interface the default route leaves by (no packet is sent).
pub fn host_ip(configured: Option<IpAddr>) -> IpAddr {
    if let Some(ip) = configured {
        return ip;
    }
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|s| {
        s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        s.local_addr()
    });
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn memory_bytes() -> i128 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    crate::node::capacity::meminfo_field(&text, "MemTotal").map(i128::from).unwrap_or(1 << 30)
}

pub fn cpu_milli() -> i128 {
    std::thread::available_parallelism().map(|n| n.get() as i128 * 1000).unwrap_or(1000)
}
