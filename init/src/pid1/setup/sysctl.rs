//! Kernel settings a Kubernetes node needs: forwarding for pod traffic,
//! bridged traffic through netfilter (the service proxy), inotify limits
//! (many watchers), and the kubelet's protected kernel defaults (panic
//! reboots after 10 s, overcommit on, key quotas).

use std::path::{Path, PathBuf};

pub const NODE_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.conf.all.route_localnet", "1"),
    ("fs.inotify.max_user_instances", "8192"),
    ("fs.inotify.max_user_watches", "524288"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("vm.overcommit_memory", "1"),
    ("kernel.keys.root_maxkeys", "1000000"),
    ("kernel.keys.root_maxbytes", "25000000"),
];

/// `net.ipv4.ip_forward` -> `ROOT/net/ipv4/ip_forward`.
pub fn path(root: &Path, key: &str) -> PathBuf {
    root.join(key.replace('.', "/"))
}

pub fn apply(root: &Path, settings: &[(&str, &str)]) -> Result<String, String> {
    let mut failed = Vec::new();
    for (k, v) in settings {
        if let Err(e) = std::fs::write(path(root, k), v) {
            failed.push(format!("{k}={v}: {e}"));
        }
    }
    if failed.is_empty() {
        Ok(format!("{} settings applied", settings.len()))
    } else {
        Err(format!("{} of {} settings failed: {}", failed.len(), settings.len(), failed.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_sys_paths_and_failures_are_named() {
        assert_eq!(path(Path::new("/proc/sys"), "net.bridge.bridge-nf-call-iptables"), PathBuf::from("/proc/sys/net/bridge/bridge-nf-call-iptables"));
        let dir = std::env::temp_dir().join(format!("coracle-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/ipv4")).expect("dir");
        assert!(apply(&dir, &[("net.ipv4.ip_forward", "1")]).is_ok());
        assert_eq!(std::fs::read_to_string(dir.join("net/ipv4/ip_forward")).expect("written"), "1");
        let e = apply(&dir, &[("net.nope.x", "1")]).expect_err("no such key");
        assert!(e.contains("net.nope.x=1"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
