//! Raspberry Pi boot partitions: firmware tryboot A/B. The disk (GPT) starts
//! with three FAT partitions: `esp` holding only `autoboot.txt`, which
//! the firmware reads from the first partition and which names the boot
//! partition (`[all]`) and the one a tryboot uses (`[tryboot]`); then
//! `boot-a` and `boot-b`, each a complete firmware boot partition for its
//! slot (firmware, kernel, device tree, initramfs, `config.txt`,
//! `cmdline.txt` with `coracle.slot=`). PID 1 blesses a tryboot by
//! rewriting `autoboot.txt` (init/src/pid1/bless.rs); an update writes the
//! other slot's boot and root partitions and reboots with `0 tryboot`.
//! Must not: know how FAT is written (esp.rs) or how the disk is laid out.

use crate::board::Board;
use crate::packages::PackageSet;
use crate::tree::{Node, Tree};
use anyhow::{bail, Context};
use std::path::Path;

/// GPT names of the slots' boot partitions.
pub const BOOT_A: &str = "boot-a";
pub const BOOT_B: &str = "boot-b";

/// `autoboot.txt`: boot `default` unless the firmware was asked for a
/// tryboot, then `tried`. `tryboot_a_b=1` makes a tryboot read the normal
/// `config.txt` of the tried partition (not `tryboot.txt`).
pub fn autoboot_txt(default: usize, tried: usize) -> String {
    format!("[all]\ntryboot_a_b=1\nboot_partition={default}\n[tryboot]\nboot_partition={tried}\n")
}

/// The kernel command line of `slot`.
pub fn cmdline_txt(board: &Board, slot: &str, disk_guid: &str) -> String {
    format!("{} coracle.slot={slot} coracle.disk={disk_guid}\n", board.cmdline)
}

/// File names on every boot partition.
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";

/// `config.txt` of `slot`: 64-bit, the kernel and initramfs written here,
/// then the board's lines.
pub fn config_txt(board: &Board, slot: &str, version: &str) -> String {
    let mut s = format!("# Coracle {version}, slot {slot} ({}): written by coracle-build.\narm_64bit=1\nkernel={KERNEL}\ninitramfs {INITRD} followkernel\n", board.name);
    for l in &board.config_txt {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// The files of `slot`'s boot partition.
#[allow(clippy::too_many_arguments)]
pub fn boot_tree(set: &PackageSet, board: &Board, kernel_root: &Path, kernel_version: &str, kernel_image: &Path, initrd: &[u8], slot: &str, disk_guid: &str, version: &str) -> anyhow::Result<Tree> {
    let mut t = Tree::new();
    for f in &board.boot_files {
        let src = board.packages.iter().filter_map(|p| set.get(p)).map(|p| p.root.join(f)).find(|p| p.is_file());
        let Some(src) = src else { bail!("board {}: boot file {f} is in none of the board's packages ({})", board.name, board.packages.join(", ")) };
        t.insert(base_name(f), Node::File { mode: 0o644, src });
    }
    let Some(dtb) = &board.device_tree else { bail!("board {}: a Raspberry Pi board needs device_tree in board.toml", board.name) };
    let dtb_path = ["usr/lib", "lib"].iter().map(|d| kernel_root.join(d).join(format!("linux-image-{kernel_version}")).join(dtb)).find(|p| p.is_file());
    let Some(dtb_path) = dtb_path else { bail!("board {}: the kernel package has no device tree {dtb} (under usr/lib/linux-image-{kernel_version}/)", board.name) };
    t.insert(base_name(dtb), Node::File { mode: 0o644, src: dtb_path });
    t.insert(KERNEL, Node::File { mode: 0o644, src: kernel_image.to_path_buf() });
    t.add_data(INITRD, 0o644, initrd.to_vec());
    t.add_data("config.txt", 0o644, config_txt(board, slot, version));
    t.add_data("cmdline.txt", 0o644, cmdline_txt(board, slot, disk_guid));
    Ok(t)
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The `esp` partition's files: `autoboot.txt` only.
pub fn select_tree(default: usize, tried: usize) -> Tree {
    let mut t = Tree::new();
    t.add_data("autoboot.txt", 0o644, autoboot_txt(default, tried));
    t
}

/// 1-based partition number of `name` in `layout`.
pub fn number(layout: &[(String, u64)], name: &str) -> anyhow::Result<usize> {
    layout.iter().position(|(n, _)| n == name).map(|i| i + 1).context(format!("the layout has no partition {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoboot_is_what_bless_promotes() {
        let text = autoboot_txt(2, 3);
        assert_eq!(text, "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n");
        // The firmware's limit.
        assert!(text.len() <= 512);
        let layout = vec![("esp".to_string(), 1), ("boot-a".to_string(), 1), ("boot-b".to_string(), 1)];
        assert_eq!(number(&layout, BOOT_B).expect("boot-b"), 3);
        assert!(number(&layout, "root-a").is_err());
    }
}
