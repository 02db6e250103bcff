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
    parse_mem_total(&text).unwrap_or(1 << 30)
}

fn parse_mem_total(text: &str) -> Option<i128> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: i128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn cpu_milli() -> i128 {
    std::thread::available_parallelism().map(|n| n.get() as i128 * 1000).unwrap_or(1000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo() {
        assert_eq!(super::parse_mem_total("MemTotal:       16314532 kB\nMemFree: 1 kB\n"), Some(16314532 * 1024));
        assert_eq!(super::parse_mem_total("nothing"), None);
    }
}
