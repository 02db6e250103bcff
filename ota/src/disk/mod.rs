//! Disks: the GUID partition table and the partitions Coracle uses
//! (`esp` or `boot-a`/`boot-b`, `root-a`, `root-b`, `data`).

pub mod crc32;
pub mod gpt;

/// Partition labels of the A/B layout.
pub const ROOT_A: &str = "root-a";
pub const ROOT_B: &str = "root-b";
pub const DATA: &str = "data";
pub const ESP: &str = "esp";

/// The root partition label of slot `a` or `b`.
pub fn root_label(slot: &str) -> Option<&'static str> {
    match slot {
        "a" => Some(ROOT_A),
        "b" => Some(ROOT_B),
        _ => None,
    }
}

/// Written by the image builder at the start of the data partition: stage 1
/// formats a data partition only when it finds this (never a partition
/// that merely fails to mount: that could be a user's data).
pub const DATA_FIRST_BOOT_MARKER: &[u8] = b"CORACLE-DATA-FIRST-BOOT\n";
