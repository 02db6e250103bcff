//! The host name: `network.hostname`, else `node.name`, else what the
//! kernel already has (unless it is a placeholder), else `coracle-XXXXXX`
//! from the first Ethernet interface's MAC address, so the devices of a
//! fleet booted from one image get distinct node names.

use crate::machine::MachineConfig;

/// Pick the host name; `current` is the kernel's, `mac` the first
/// Ethernet address (`aa:bb:cc:dd:ee:ff`).
pub fn choose(cfg: &MachineConfig, current: &str, mac: Option<&str>) -> String {
    if let Some(h) = cfg.network.hostname.as_ref().or(cfg.node.name.as_ref()) {
        return h.clone();
    }
    let current = current.trim();
    if !current.is_empty() && !matches!(current, "(none)" | "localhost" | "coracle") {
        return current.to_string();
    }
    match mac.map(|m| m.split(':').skip(3).collect::<String>()).filter(|s| s.len() == 6) {
        Some(tail) => format!("coracle-{}", tail.to_ascii_lowercase()),
        None => "coracle".into(),
    }
}

pub fn setup(cfg: &MachineConfig) -> Result<String, String> {
    let current = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mac = super::net::ethernet_interfaces().first().and_then(|i| i.mac.clone());
    let name = choose(cfg, &current, mac.as_deref());
    rustix::system::sethostname(name.as_bytes()).map_err(|e| format!("cannot set the host name to {name}: {e}"))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> MachineConfig {
        crate::machine::parse(&format!("apiVersion: coracle.dev/v1alpha1\nkind: MachineConfig\n{yaml}"), "m.yaml").expect("valid")
    }

    #[test]
    fn config_then_kernel_then_mac() {
        assert_eq!(choose(&cfg("network:\n  hostname: shelf-7\nnode:\n  name: n1\n"), "x", None), "shelf-7");
        assert_eq!(choose(&cfg("node:\n  name: n1\n"), "x", None), "n1");
        assert_eq!(choose(&cfg(""), "edge\n", None), "edge");
        assert_eq!(choose(&cfg(""), "(none)\n", Some("52:54:00:AB:cd:0f")), "coracle-abcd0f");
        assert_eq!(choose(&cfg(""), "localhost", None), "coracle");
    }
}
