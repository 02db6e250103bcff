//! Cluster-wide settings shared by the API server, the scheduler and the
//! controllers (the flags upstream splits over kube-apiserver and
//! kube-controller-manager). Defaults are k3s'.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Name of this server (also its leader-election identity prefix).
    pub server_name: String,
    /// Pod network, split into one /24 per node.
    pub cluster_cidr: String,
    /// ClusterIPs are allocated from here; the first address is the
    /// `kubernetes` Service.
    pub service_cidr: String,
    /// Cluster DNS address (10th of the service CIDR).
    pub cluster_dns: String,
    pub cluster_domain: String,
    /// NodePorts are allocated from this inclusive range.
    pub node_port_range: (u16, u16),
    /// How often the node lifecycle controller looks at leases.
    pub node_monitor_period: Duration,
    /// A node whose lease was not renewed for this long is NotReady/unknown.
    pub node_monitor_grace_period: Duration,
    /// Default tolerationSeconds added to pods for the not-ready and
    /// unreachable taints (DefaultTolerationSeconds admission).
    pub default_not_ready_toleration_seconds: i64,
    pub default_unreachable_toleration_seconds: i64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            server_name: "coracle".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            service_cidr: "10.43.0.0/16".into(),
            cluster_dns: "10.43.0.10".into(),
            cluster_domain: "cluster.local".into(),
            node_port_range: (30000, 32767),
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(40),
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
        }
    }
}

/// Parse an IPv4 network `a.b.c.d/len` into its first address and prefix length.
pub fn parse_cidr(cidr: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (ip, len) = cidr.trim().split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((std::net::Ipv4Addr::from(u32::from(ip) & mask), len))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cidrs_parse_to_their_network() {
        assert_eq!(super::parse_cidr("10.43.1.5/16"), Some(([10, 43, 0, 0].into(), 16)));
        assert_eq!(super::parse_cidr("10.43.0.0/33"), None);
        assert_eq!(super::parse_cidr("nonsense"), None);
    }
}
