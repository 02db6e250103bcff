//! A small general-purpose image made from Debian's busybox-static: the
//! image tests, benchmarks and the demo workload of a built disk image use
//! (`coracle.local/busybox:1`), with no registry anywhere.

use super::oci::{self, Entry, ImageConfig};
use std::path::Path;

pub const IMAGE: &str = "coracle.local/busybox:1";

/// The root of the image: the busybox binary at `bin/busybox`, one symlink
/// per applet it lists (`applets`, from `busybox --list`), and the few
/// directories and files programs expect.
pub fn entries(busybox: Vec<u8>, applets: &str) -> Vec<Entry> {
    let mut entries = vec![
        Entry::Dir { path: "bin".into(), mode: 0o755 },
        Entry::File { path: "bin/busybox".into(), mode: 0o755, data: busybox },
        Entry::Dir { path: "etc".into(), mode: 0o755 },
        Entry::File {
            path: "etc/passwd".into(),
            mode: 0o644,
            data: b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n".to_vec(),
        },
        Entry::File { path: "etc/group".into(), mode: 0o644, data: b"root:x:0:\nnobody:x:65534:\n".to_vec() },
        Entry::Dir { path: "tmp".into(), mode: 0o1777 },
        Entry::Dir { path: "root".into(), mode: 0o700 },
        Entry::Dir { path: "var".into(), mode: 0o755 },
        Entry::Dir { path: "var/www".into(), mode: 0o755 },
        Entry::Dir { path: "home".into(), mode: 0o755 },
    ];
    for applet in applets.split_whitespace() {
        if applet != "busybox" && !applet.contains('/') {
            entries.push(Entry::Symlink { path: format!("bin/{applet}"), target: "busybox".into() });
        }
    }
    entries
}

/// Writes the image archive from the busybox binary at `busybox` (built
/// for `arch`), asking the binary for its applets when it can run here.
pub fn write(busybox: &Path, arch: &str, out: &Path) -> Result<(), oci::OciError> {
    let io = |source| oci::OciError::Io { path: busybox.to_path_buf(), source };
    let bin = std::fs::read(busybox).map_err(io)?;
    let applets = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_else(|_| DEFAULT_APPLETS.to_string());
    let cfg = ImageConfig { name: IMAGE.into(), cmd: vec!["sh".into()], arch: arch.into(), ..Default::default() };
    oci::write_archive(&entries(bin, &applets), &cfg, out)
}

/// Applets linked when the binary cannot run on this machine (another
/// architecture): what workloads and tests use.
pub const DEFAULT_APPLETS: &str = "sh ash cat echo ls sleep env printf test true false mkdir rm cp mv ln chmod stat \
    head tail grep sed awk wc sort cut tr date hostname id ps kill nc wget httpd nslookup ip ifconfig ping mount \
    df du find xargs tee touch uname vi yes seq base64 md5sum sha256sum tar gzip";
