//! The host name: `network.hostname`, else `node.name`, else what the
//! kernel already has (unless it is a placeholder), else `coracle-XXXXXX`
//! from the first Ethernet interface's MAC address, so the devices of a
//! fleet booted from one image get distinct node names. Also the files the
//! image links to: `/etc/hostname` -> `RUN_DIR/hostname`, and
//! `/etc/machine-id` -> `DATA_DIR/machine-id` (made once, kept across boots
//! and updates).

use crate::machine::MachineConfig;
use std::path::Path;

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

pub fn setup(cfg: &MachineConfig, run_dir: &Path, data_dir: &Path) -> Result<String, String> {
    let current = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mac = super::net::ethernet_interfaces().first().and_then(|i| i.mac.clone());
    let name = choose(cfg, &current, mac.as_deref());
    rustix::system::sethostname(name.as_bytes()).map_err(|e| format!("cannot set the host name to {name}: {e}"))?;
    let file = run_dir.join("hostname");
    super::net::write_atomic(&file, &format!("{name}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    let id = machine_id(data_dir)?;
    Ok(format!("host name {name}, machine id {id}"))
}

/// `DATA_DIR/machine-id`: 32 lowercase hex digits, made once.
pub fn machine_id(data_dir: &Path) -> Result<String, String> {
    let file = data_dir.join("machine-id");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let id = text.trim();
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_string());
        }
    }
    let mut bytes = [0u8; 16];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).map_err(|e| format!("no random bytes for the machine id: {e}"))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    super::net::write_atomic(&file, &format!("{id}\n")).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(id)
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

    #[test]
    fn machine_id_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("coracle-machine-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = machine_id(&dir).expect("made");
        assert_eq!(a.len(), 32);
        assert_eq!(machine_id(&dir).expect("read"), a, "kept across boots");
        std::fs::write(dir.join("machine-id"), "garbage\n").expect("write");
        assert_ne!(machine_id(&dir).expect("remade"), "garbage", "a broken file is replaced");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
