//! Kernel modules in stage 2, with no udev and no modprobe on the device:
//! - the kernel's own module requests (a vfat mount, an nftables
//!   expression, a socket family) go to this binary: `/run/coracle/modprobe`
//!   links to it and `/proc/sys/kernel/modprobe` names the link;
//! - coldplug: every device's `modalias` under /sys gets its driver, as
//!   udev would at boot (network cards, RNGs);
//! - the modules the node needs (overlay for containerd's snapshots,
//!   bridge/veth/br_netfilter for pod networking, conntrack and nftables
//!   for the service proxy).
//!
//! All load through stage 1's `modules.dep`/`modules.alias` loader. A
//! module that is built in or absent is listed in the step's line, not
//! fatal. Must not: handle hotplug (devices added later).

use crate::stage1::modules::{load_file, Index};
use std::collections::BTreeSet;
use std::path::Path;

pub const NODE_MODULES: &[&str] = &[
    "overlay",
    "bridge",
    "veth",
    "br_netfilter",
    "nf_conntrack",
    "nf_nat",
    "nf_tables",
    "nft_ct",
    "nft_nat",
    "nft_chain_nat",
    "nft_masq",
    "nft_redir",
    "nft_numgen",
    "nft_fib_inet",
    "nft_reject_inet",
    "nft_limit",
    "nft_compat",
];

/// The kernel's usermode helper (`/proc/sys/kernel/modprobe`).
const KERNEL_MODPROBE: &str = "/proc/sys/kernel/modprobe";

/// The whole step: helper, coldplug, the node's modules.
pub fn setup(dir: &Path, run_dir: &Path, sys: &Path, names: &[&str]) -> Result<String, String> {
    let index = Index::load(dir).map_err(|e| e.to_string())?;
    let helper = install_helper(run_dir).map_err(|e| format!("cannot install the kernel's modprobe helper: {e}"))?;
    let mut loaded = BTreeSet::new();
    let mut failed = Vec::new();
    // Loading a bus driver (virtio_pci) makes new devices appear: repeat
    // until a pass loads nothing new.
    for _ in 0..4 {
        let before = loaded.len();
        for alias in modaliases(sys) {
            for m in index.resolve(&alias) {
                load_one(&index, &m, &mut loaded, &mut failed);
            }
        }
        if loaded.len() == before {
            break;
        }
    }
    let devices: Vec<String> = loaded.iter().cloned().collect();
    let mut absent = Vec::new();
    for name in names {
        if index.resolve(name).is_empty() {
            absent.push(*name);
        } else {
            load_one(&index, name, &mut loaded, &mut failed);
        }
    }
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    let mut detail = format!("{} modules loaded or built in ({} for the devices found: {}); kernel requests go to {helper}", loaded.len(), devices.len(), devices.join(","));
    if !absent.is_empty() {
        detail.push_str(&format!("; not in modules.dep (built in or not shipped): {}", absent.join(",")));
    }
    Ok(detail)
}

fn load_one(index: &Index, name: &str, loaded: &mut BTreeSet<String>, failed: &mut Vec<String>) {
    if loaded.contains(name) {
        return;
    }
    match index.order(&[name.to_string()]) {
        Ok(files) => {
            for f in files {
                if let Err(e) = load_file(&f) {
                    failed.push(e.to_string());
                }
            }
            loaded.insert(name.to_string());
        }
        Err(e) => failed.push(e.to_string()),
    }
}

/// Every `modalias` under `sys/devices`.
fn modaliases(sys: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![sys.join("devices")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "modalias" {
                if let Ok(a) = std::fs::read_to_string(e.path()) {
                    let a = a.trim();
                    if !a.is_empty() {
                        out.insert(a.to_string());
                    }
                }
            }
        }
    }
    out
}

/// `RUN_DIR/modprobe` -> this binary, named in the kernel's sysctl.
fn install_helper(run_dir: &Path) -> std::io::Result<String> {
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(run_dir)?;
    let link = run_dir.join("modprobe");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&exe, &link)?;
    std::fs::write(KERNEL_MODPROBE, format!("{}\n", link.display())).map_err(|e| std::io::Error::new(e.kind(), format!("{KERNEL_MODPROBE}: {e}")))?;
    Ok(link.display().to_string())
}

/// `coracle` run as `modprobe` (by the kernel: `modprobe -q -- NAME`):
/// load each named module or alias with its dependencies. No output (the
/// kernel gives the helper no console); the exit status says whether
/// every name resolved and loaded.
pub fn modprobe_main(args: &[String]) -> std::process::ExitCode {
    let release = rustix::system::uname().release().to_string_lossy().into_owned();
    let Ok(index) = Index::load(&Path::new("/lib/modules").join(release)) else { return std::process::ExitCode::FAILURE };
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let mut ok = !names.is_empty();
    for name in names {
        let modules = index.resolve(name);
        if modules.is_empty() {
            ok = false;
        }
        for m in modules {
            match index.order(&[m]) {
                Ok(files) => ok &= files.iter().all(|f| load_file(f).is_ok()),
                Err(_) => ok = false,
            }
        }
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
