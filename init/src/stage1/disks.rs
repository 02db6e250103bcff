//! Find the boot disk and its partitions: every disk the kernel knows
//! (`/sys/block`) whose GPT has the slot's root partition, narrowed by the
//! disk GUID from the command line when given.

use coracle_ota::disk::gpt::Gpt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Disk {
    pub name: String,
    pub dev: PathBuf,
    pub gpt: Gpt,
}

impl Disk {
    /// The device node of partition `label`: the kernel's, or — where the
    /// kernel has no partition-table support (seen on some host kernels,
    /// never on a device image's) — a loop device mapped over its sectors.
    pub fn partition(&self, sys: &Path, dev: &Path, label: &str, read_only: bool) -> Result<PathBuf, String> {
        if let Some(p) = self.partition_dev(sys, dev, label) {
            return Ok(p);
        }
        if self.kernel_has_partitions(sys) {
            return Err(format!("{}: partition {label} has no device node", self.dev.display()));
        }
        let p = self.gpt.by_name(label).ok_or_else(|| format!("{}: no partition labelled {label}", self.dev.display()))?;
        let mut args = vec!["--find".to_string(), "--show".into(), "--offset".into(), p.offset_bytes().to_string(), "--sizelimit".into(), p.size_bytes().to_string()];
        if read_only {
            args.push("--read-only".into());
        }
        args.push(self.dev.to_string_lossy().into_owned());
        let out = std::process::Command::new("losetup").args(&args).output().map_err(|e| format!("cannot run losetup to map {label}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{}: cannot map partition {label}: {}", self.dev.display(), String::from_utf8_lossy(&out.stderr).trim()));
        }
        let node = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        tracing::info!(disk = %self.dev.display(), partition = label, device = %node.display(), "mapped partition as a loop device (no kernel partition support)");
        Ok(node)
    }

    /// Whether the kernel made partition devices for this disk.
    pub fn kernel_has_partitions(&self, sys: &Path) -> bool {
        std::fs::read_dir(sys.join("block").join(&self.name)).map(|d| d.flatten().any(|e| e.path().join("partition").exists())).unwrap_or(false)
    }

    /// The kernel's device node of partition `label`.
    fn partition_dev(&self, sys: &Path, dev: &Path, label: &str) -> Option<PathBuf> {
        let number = self.gpt.by_name(label)?.number;
        let entries = std::fs::read_dir(sys.join("block").join(&self.name)).ok()?;
        for e in entries.flatten() {
            let part = std::fs::read_to_string(e.path().join("partition")).ok();
            if part.and_then(|p| p.trim().parse::<u32>().ok()) == Some(number) {
                return Some(dev.join(e.file_name()));
            }
        }
        None
    }
}

pub fn size_of(dev: &Path) -> std::io::Result<u64> {
    use std::io::Seek;
    let mut f = std::fs::File::open(dev)?;
    f.seek(std::io::SeekFrom::End(0))
}

/// Disks with a readable GPT holding partition `label`.
pub fn find(sys: &Path, dev: &Path, label: &str, disk_guid: Option<&str>) -> Vec<Disk> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys.join("block")) else { return out };
    let mut names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
    names.sort();
    for name in names {
        if name.starts_with("ram") || name.starts_with("zram") || name.starts_with("dm-") {
            continue;
        }
        let node = dev.join(&name);
        let Ok(size) = size_of(&node) else { continue };
        let Ok(mut f) = std::fs::File::open(&node) else { continue };
        let Ok(gpt) = Gpt::read(&mut f, size) else { continue };
        if gpt.by_name(label).is_none() {
            continue;
        }
        if let Some(want) = disk_guid {
            if gpt.disk_guid.to_string() != want {
                continue;
            }
        }
        out.push(Disk { name, dev: node, gpt });
    }
    out
}
