//! Boards: `boards/NAME/board.toml` (what hardware needs: architecture,
//! kernel, boot method, modules, firmware, partition sizes) and
//! `boards/runtime.toml` (what every root filesystem runs: which files of
//! which package). Must not: know how packages are fetched or images made.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How the board boots.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Boot {
    /// UEFI firmware, systemd-boot, one UKI per slot with boot counting.
    Uefi,
    /// Raspberry Pi firmware with tryboot A/B (`autoboot.txt`).
    Rpi,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub dir: PathBuf,
    pub description: String,
    /// Debian architecture (`amd64`, `arm64`).
    pub arch: String,
    /// Rust target the `coracle` binary is built for.
    pub rust_target: String,
    pub boot: Boot,
    /// Debian kernel package (a meta package such as `linux-image-amd64`
    /// is resolved to the real image package by `lock`). Empty when the
    /// kernel comes from `--bsp`.
    #[serde(default)]
    pub kernel: String,
    /// The board needs a user-supplied kernel/BSP directory (`--bsp DIR`).
    #[serde(default)]
    pub needs_bsp: bool,
    /// What to do when `--bsp` is missing (where to get it).
    #[serde(default)]
    pub bsp_help: String,
    /// Kernel command line (the builder adds `coracle.slot=` and `coracle.disk=`).
    pub cmdline: String,
    /// Packages for booting (boot loader, firmware): all their files are
    /// available to the boot steps; only `firmware` paths reach the root.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Modules stage 1 loads to reach the root and data partitions.
    pub initramfs_modules: Vec<String>,
    /// Modules in the root filesystem: paths under `lib/modules/VERSION/`
    /// (a trailing `/` takes a whole directory) or module names; their
    /// dependencies come along.
    pub modules: Vec<String>,
    /// Firmware files or directories under `lib/firmware/` to keep.
    #[serde(default)]
    pub firmware: Vec<String>,
    pub disk: DiskLayout,
    #[serde(default)]
    pub qemu: Option<Qemu>,
    /// Raspberry Pi: the device tree, a path under the kernel package's
    /// `usr/lib/linux-image-VERSION/` (`broadcom/bcm2711-rpi-4-b.dtb`).
    #[serde(default)]
    pub device_tree: Option<String>,
    /// Raspberry Pi: the firmware files every boot partition holds, as
    /// paths in the board's packages (`usr/lib/raspi-firmware/start4.elf`).
    #[serde(default)]
    pub boot_files: Vec<String>,
    /// Raspberry Pi: lines of `config.txt` besides the kernel and initramfs
    /// ones the builder writes.
    #[serde(default)]
    pub config_txt: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskLayout {
    /// ESP (UEFI) or each of boot-a/boot-b (Raspberry Pi), MiB.
    pub boot_mib: u64,
    /// Each root slot, MiB.
    pub root_mib: u64,
    /// The data partition in the image (grown to fill the disk on first boot), MiB.
    pub data_mib: u64,
    /// Raspberry Pi: the first partition (`esp`, FAT), which holds only
    /// `autoboot.txt`, MiB.
    #[serde(default = "default_select_mib")]
    pub select_mib: u64,
}

fn default_select_mib() -> u64 {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    pub binary: String,
    pub machine: String,
    #[serde(default)]
    pub cpu: Option<String>,
    /// UEFI code (read-only) and the variable store template (copied).
    pub firmware_code: String,
    pub firmware_vars: String,
    pub memory_mib: u32,
    /// Name of systemd-boot's removable-media loader (`BOOTX64.EFI`).
    #[serde(default)]
    pub efi_boot_name: Option<String>,
}

/// `boards/runtime.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Files of the root filesystem, by package.
    pub rootfs: Vec<PackageFiles>,
    /// Tools stage 1 runs (mkfs.ext4, e2fsck, resize2fs, partx, losetup).
    pub initramfs: Vec<PackageFiles>,
    /// Packages that only provide shared libraries (found by ELF needs):
    /// always candidates, whatever the other packages declare.
    #[serde(default)]
    pub libraries: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFiles {
    pub package: String,
    /// Paths in the package (`usr/bin/containerd`; `usr/lib/cni/` for a directory).
    pub files: Vec<String>,
}

/// The boards directory: `--boards`, `$CORACLE_BOARDS`, `./boards`, or the
/// one next to this crate's source.
pub fn boards_dir(given: Option<&Path>) -> PathBuf {
    if let Some(d) = given {
        return d.to_path_buf();
    }
    if let Ok(d) = std::env::var("CORACLE_BOARDS") {
        return PathBuf::from(d);
    }
    if Path::new("boards/runtime.toml").exists() {
        return PathBuf::from("boards");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("boards")
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| e.path().join("board.toml").exists()).filter_map(|e| e.file_name().to_str().map(str::to_string)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

pub fn load(dir: &Path, name: &str) -> anyhow::Result<Board> {
    let path = dir.join(name).join("board.toml");
    if name.is_empty() || name.contains('/') || !path.exists() {
        let known = names(dir);
        bail!("unknown board {name:?}: boards are {} (each is a folder with board.toml in {})", if known.is_empty() { "(none found)".to_string() } else { known.join(", ") }, dir.display());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut b: Board = toml::from_str(&text).with_context(|| format!("{}: invalid board description", path.display()))?;
    b.name = name.to_string();
    b.dir = dir.join(name);
    if b.kernel.is_empty() && !b.needs_bsp {
        bail!("{}: a board needs a kernel package or needs_bsp = true", path.display());
    }
    Ok(b)
}

pub fn runtime(dir: &Path) -> anyhow::Result<Runtime> {
    let path = dir.join("runtime.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid runtime description", path.display()))
}

impl Board {
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("packages.lock")
    }

    /// Rust's architecture name (`x86_64`, `aarch64`).
    pub fn rust_arch(&self) -> &str {
        self.rust_target.split('-').next().unwrap_or("")
    }

    /// UEFI architecture suffix (`x64`, `aa64`).
    pub fn efi_arch(&self) -> &'static str {
        match self.arch.as_str() {
            "arm64" => "aa64",
            _ => "x64",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_in_the_repository_parses() {
        let dir = boards_dir(None);
        let names = names(&dir);
        assert!(names.contains(&"qemu-x86_64".to_string()), "{names:?}");
        for n in names {
            let b = load(&dir, &n).unwrap_or_else(|e| panic!("{n}: {e:#}"));
            assert!(!b.initramfs_modules.is_empty() || b.needs_bsp, "{n}");
            if b.boot == Boot::Rpi {
                assert!(b.device_tree.is_some(), "{n}: a Raspberry Pi board names its device tree");
                assert!(b.needs_bsp || !b.boot_files.is_empty(), "{n}: the firmware files");
            }
        }
        runtime(&dir).expect("runtime.toml");
    }

    #[test]
    fn an_unknown_board_names_the_known_ones() {
        let e = load(&boards_dir(None), "pdp-11").expect_err("unknown").to_string();
        assert!(e.contains("unknown board \"pdp-11\"") && e.contains("qemu-x86_64"), "{e}");
    }
}
