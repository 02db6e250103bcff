//! Kernel switches node networking needs: IPv4 forwarding (pods reach
//! the world and other nodes through this host), bridged traffic through
//! netfilter (service replies between pods on one bridge are un-NATed),
//! and `route_localnet` (NodePorts on 127.0.0.1, as kube-proxy's iptables
//! mode). A switch that cannot be set is a warning naming what breaks.

use std::path::Path;

const SWITCHES: &[(&str, &str)] = &[
    ("/proc/sys/net/ipv4/ip_forward", "pods cannot reach other nodes or the outside"),
    (
        "/proc/sys/net/bridge/bridge-nf-call-iptables",
        "load the br_netfilter module: a pod calling a service backed by a pod on the same node gets no answer",
    ),
    ("/proc/sys/net/ipv4/conf/all/route_localnet", "NodePorts do not answer on 127.0.0.1"),
];

/// Sets every switch to 1; returns the warnings.
pub fn enable() -> Vec<String> {
    let mut warnings = Vec::new();
    for (path, breaks) in SWITCHES {
        if let Err(e) = set(Path::new(path)) {
            tracing::warn!(sysctl = %path, error = %e, consequence = %breaks, "network: cannot enable kernel switch");
            warnings.push(format!("{path}: {e}: {breaks}"));
        }
    }
    warnings
}

fn set(path: &Path) -> std::io::Result<()> {
    if std::fs::read_to_string(path)?.trim() == "1" {
        return Ok(());
    }
    std::fs::write(path, "1\n")
}
