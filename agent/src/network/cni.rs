//! The CNI network configuration containerd reads (`cni_conf_dir()`):
//! Debian's `bridge` plugin on the agent's bridge with `host-local` IPAM
//! over this node's podCIDR, then `portmap` for hostPorts. containerd adds
//! the loopback interface itself (the `loopback` plugin from the same
//! directory). Must not: run plugins (containerd does).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// File name of the conflist (containerd takes the first in the directory).
pub const FILE: &str = "10-coracle.conflist";

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("podCIDR {0:?} is not an IPv4 network like 10.42.0.0/24")]
    BadCidr(String),
    #[error("writing the CNI config {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// An IPv4 network as `(network address, prefix length)`.
pub fn parse_cidr(cidr: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = cidr.trim().split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| (1..=30).contains(l))?;
    let mask = u32::MAX << (32 - len);
    Some((Ipv4Addr::from(u32::from(ip) & mask), len))
}

/// The gateway of a pod network: its first address (`.1` of a /24).
pub fn gateway(cidr: &str) -> Option<Ipv4Addr> {
    let (net, _) = parse_cidr(cidr)?;
    Some(Ipv4Addr::from(u32::from(net) + 1))
}

/// The conflist text. Pods' egress masquerade is the service proxy's
/// nftables rule (not the bridge plugin's `ipMasq`, which needs iptables);
/// `portmap` (hostPort) is listed only when `iptables` is there for it.
pub fn conflist(bridge: &str, pod_cidr: &str, ipam_data_dir: &Path, portmap: bool) -> Result<String, CniError> {
    let (net, len) = parse_cidr(pod_cidr).ok_or_else(|| CniError::BadCidr(pod_cidr.into()))?;
    let gw = Ipv4Addr::from(u32::from(net) + 1);
    let mut v = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "coracle",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{net}/{len}"), "gateway": gw.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_data_dir.to_string_lossy(),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    if !portmap {
        if let Some(list) = v["plugins"].as_array_mut() {
            list.truncate(1);
        }
    }
    Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n")
}

/// Whether the `portmap` plugin can work here: it programs hostPorts
/// with `iptables`.
pub fn iptables_available() -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_else(|| vec!["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into(), "/bin".into()])
        .iter()
        .any(|d| d.join("iptables").exists())
}

/// Writes the conflist into `dir` (atomically: containerd watches the
/// directory and must never read half a file). Returns whether it changed.
pub fn write(dir: &Path, text: &str) -> Result<bool, CniError> {
    let path = dir.join(FILE);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let err = |source| CniError::Write { path: path.clone(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_has_bridge_with_host_local_and_portmap() {
        let text = conflist("cni7", "10.42.3.0/24", Path::new("/var/lib/coracle/agent/cni/networks"), true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        let b = &v["plugins"][0];
        assert_eq!(b["type"], "bridge");
        assert_eq!(b["bridge"], "cni7");
        assert_eq!(b["isGateway"], true);
        assert_eq!(b["ipMasq"], false, "egress masquerade is the proxy's nftables rule");
        assert_eq!(b["hairpinMode"], true);
        assert_eq!(b["ipam"]["type"], "host-local");
        assert_eq!(b["ipam"]["ranges"][0][0]["subnet"], "10.42.3.0/24");
        assert_eq!(b["ipam"]["ranges"][0][0]["gateway"], "10.42.3.1");
        assert_eq!(b["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(b["ipam"]["dataDir"], "/var/lib/coracle/agent/cni/networks");
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn bad_cidrs_are_refused() {
        let without: serde_json::Value = serde_json::from_str(&conflist("cni7", "10.42.3.0/24", Path::new("/x"), false).unwrap()).unwrap();
        assert_eq!(without["plugins"].as_array().map(Vec::len), Some(1), "no portmap without iptables");
        assert!(conflist("cni0", "10.42.3.0", Path::new("/x"), true).is_err());
        assert!(conflist("cni0", "fd00::/64", Path::new("/x"), true).is_err());
        assert_eq!(gateway("10.42.3.7/24"), Some(Ipv4Addr::new(10, 42, 3, 1)));
    }

    #[test]
    fn write_is_idempotent() {
        let dir = std::env::temp_dir().join(format!("coracle-cni-test-{}", std::process::id()));
        assert!(write(&dir, "a").unwrap());
        assert!(!write(&dir, "a").unwrap());
        assert!(write(&dir, "b").unwrap());
        assert_eq!(std::fs::read_to_string(dir.join(FILE)).unwrap(), "b");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
