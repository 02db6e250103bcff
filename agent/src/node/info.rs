//! Facts about the host the Node shows: `status.nodeInfo`, addresses,
//! the well-known labels.
//!
//! Owns reading them (os-release, machine-id, boot id, kernel release, the
//! address of the default route). Must not talk to the API.

use crate::AgentConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};

/// The kubelet version the node reports: the API server's version, so
/// `kubectl get nodes` shows the same as `kubectl version` (both crates
/// share the workspace version).
pub const KUBELET_VERSION: &str = concat!("v1.33.0+coracle.", env!("CARGO_PKG_VERSION"));

/// GOARCH for the architecture this binary runs on.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `PRETTY_NAME` of an os-release file (quotes and escapes removed).
pub fn os_release_pretty_name(text: &str) -> Option<String> {
    let v = text.lines().find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?;
    let v = v.trim();
    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))).unwrap_or(v);
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Some(out).filter(|s| !s.is_empty())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn os_image() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().and_then(|t| os_release_pretty_name(&t)))
        .unwrap_or_else(|| "Linux".into())
}

/// `status.nodeInfo`. `runtime` is `name://version` from CRI `Version`
/// (empty until the runtime answered).
pub fn node_info(runtime: &str) -> Value {
    let mut system_uuid = read_trimmed("/sys/class/dmi/id/product_uuid").to_lowercase();
    if system_uuid.is_empty() {
        system_uuid = read_trimmed("/proc/device-tree/system-id").trim_end_matches('\0').to_string();
    }
    json!({
        "architecture": go_arch(),
        "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
        "containerRuntimeVersion": runtime,
        "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
        "kubeProxyVersion": "",
        "kubeletVersion": KUBELET_VERSION,
        "machineID": read_trimmed("/etc/machine-id"),
        "operatingSystem": std::env::consts::OS,
        "osImage": os_image(),
        "systemUUID": system_uuid,
    })
}

/// The address the kernel would use to reach the outside world: the
/// source address of the default route (a UDP connect sends nothing).
pub fn default_route_ip() -> Option<IpAddr> {
    for (bind, target) in [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")] {
        let Ok(sock) = UdpSocket::bind(bind) else { continue };
        if sock.connect(target).is_ok() {
            if let Ok(a) = sock.local_addr() {
                if !a.ip().is_unspecified() {
                    return Some(a.ip());
                }
            }
        }
    }
    None
}

/// The node's InternalIP: `--node-ip`, else the default route's address,
/// else loopback (a host with no network at all still gets a node).
pub fn node_ip(cfg: &AgentConfig) -> IpAddr {
    cfg.node_ip.or_else(default_route_ip).unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// `status.addresses`.
pub fn addresses(node_name: &str, ip: IpAddr) -> Value {
    json!([
        {"type": "InternalIP", "address": ip.to_string()},
        {"type": "Hostname", "address": node_name},
    ])
}

/// Labels the kubelet sets (and keeps set) on its Node, plus the role and
/// `--node-label`s.
pub fn labels(cfg: &AgentConfig) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("beta.kubernetes.io/arch".into(), go_arch().into());
    m.insert("beta.kubernetes.io/os".into(), std::env::consts::OS.into());
    m.insert("kubernetes.io/arch".into(), go_arch().into());
    m.insert("kubernetes.io/hostname".into(), cfg.node_name.clone());
    m.insert("kubernetes.io/os".into(), std::env::consts::OS.into());
    if cfg.control_plane {
        m.insert("node-role.kubernetes.io/control-plane".into(), "true".into());
    }
    for (k, v) in &cfg.node_labels {
        m.insert(k.clone(), v.clone());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_name_is_unquoted() {
        let t = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(os_release_pretty_name(t).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(os_release_pretty_name("PRETTY_NAME=Coracle\\ 1").as_deref(), Some("Coracle 1"));
        assert_eq!(os_release_pretty_name("PRETTY_NAME='Alpine'").as_deref(), Some("Alpine"));
        assert_eq!(os_release_pretty_name("ID=x"), None);
        assert_eq!(os_release_pretty_name("PRETTY_NAME=\"\""), None);
    }

    #[test]
    fn labels_have_the_well_known_ones_and_the_role() {
        let mut cfg = AgentConfig::new("n1", "/tmp/x".into());
        cfg.node_labels.push(("team".into(), "edge".into()));
        let l = labels(&cfg);
        assert_eq!(l["kubernetes.io/hostname"], "n1");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(l["team"], "edge");
        assert!(!l.contains_key("node-role.kubernetes.io/control-plane"));
        cfg.control_plane = true;
        assert_eq!(labels(&cfg)["node-role.kubernetes.io/control-plane"], "true");
    }

    #[test]
    fn node_info_names_this_host() {
        let i = node_info("containerd://1.6.20");
        assert_eq!(i["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(i["operatingSystem"], "linux");
        assert!(!i["kernelVersion"].as_str().unwrap_or("").is_empty());
        assert!(!i["bootID"].as_str().unwrap_or("").is_empty());
    }

    #[test]
    fn node_ip_prefers_the_flag() {
        let mut cfg = AgentConfig::new("n1", "/tmp/x".into());
        cfg.node_ip = Some(IpAddr::from([10, 1, 2, 3]));
        assert_eq!(node_ip(&cfg), IpAddr::from([10, 1, 2, 3]));
        let a = addresses(&cfg.node_name, node_ip(&cfg));
        assert_eq!(a[0], json!({"type": "InternalIP", "address": "10.1.2.3"}));
        assert_eq!(a[1], json!({"type": "Hostname", "address": "n1"}));
    }
}
